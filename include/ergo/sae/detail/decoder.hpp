// SPDX-License-Identifier: MIT
#pragma once

/// \file decoder.hpp
/// \brief Pieces every SAE step shares (private): the encoder's linear part, the reconstruction
/// loss and ∂L/∂x̂, and the dense decoder's forward and backward pass.

#include "../../core/types.hpp"
#include "../loss.hpp"
#include "../weights.hpp"
#include "../workspace.hpp"

#include <type_traits>

namespace ergo::sae::detail {

/// \brief c = op(a) op(b) (op = transpose when TA / TB) for a training step: on ws.bf16 (bf16
/// operands, fp32 accumulation) when it is set and Scalar is float, else Eigen's product.
template <bool TA, bool TB, class Scalar, class A, class B>
void gemm(Workspace<Scalar>& ws, Matrix<Scalar>& c, const A& a, const B& b) {
  if constexpr (std::is_same_v<Scalar, float>) {
    if (ws.bf16) {
      ws.bf16->multiply(c, a, TA, b, TB);
      return;
    }
  }
  if constexpr (!TA && !TB) c.noalias() = a * b;
  if constexpr (!TA && TB) c.noalias() = a * b.transpose();
  if constexpr (TA && !TB) c.noalias() = a.transpose() * b;
  if constexpr (TA && TB) c.noalias() = a.transpose() * b.transpose();
}

/// \brief The encoder's input u = x − b_dec (or x when `pre_bias` is false), in one pass.
/// x: d × n; u: d × n (resized).
template <class Scalar, class X>
void centre_input(const Weights<Scalar>& w, bool pre_bias, const X& x, Matrix<Scalar>& u) {
  if (pre_bias)
    u = x.colwise() - w.decoder_bias;
  else
    u = x;
}

/// \brief Pre-activations of an inference chunk: u = x − b_dec (or x when `pre_bias` is false),
/// h = W_enc u + b_enc. x: d × n; u: d × n; h: m × n (both resized).
template <class Scalar, class X>
void pre_activations(const Weights<Scalar>& w, bool pre_bias, const X& x, Matrix<Scalar>& u,
                     Matrix<Scalar>& h) {
  centre_input(w, pre_bias, x, u);
  h.noalias() = w.encoder * u;
  h.colwise() += w.encoder_bias;
}

/// \brief From ws.xhat (d × B): the reconstruction term (1/B) Σ‖x − x̂‖² and the batch variance
/// into `t`, and ws.dxhat = ∂L_rec/∂x̂ = (2/B)(x̂ − x). Returns the reconstruction term.
template <class Scalar>
double finish_reconstruction(const Eigen::Ref<const Matrix<Scalar>>& x, Workspace<Scalar>& ws,
                             LossTerms& t) {
  const Index B = x.cols();
  ws.dxhat = ws.xhat - x;
  const double rec = static_cast<double>(ws.dxhat.squaredNorm()) / static_cast<double>(B);
  const Vector<Scalar> mean = x.rowwise().mean();
  t.batch_variance =
      static_cast<double>((x.colwise() - mean).squaredNorm()) / static_cast<double>(B);
  ws.dxhat *= static_cast<Scalar>(2.0 / static_cast<double>(B));
  t.reconstruction = rec;
  return rec;
}

/// \brief Dense decode of the codes Z (m × B), the reconstruction loss terms, and the decoder's
/// backward pass: ∇W_dec, ∇b_dec and ws.dz = W_decᵀ ∂L/∂x̂ (m × B).
template <class Scalar>
void dense_decode_backward(const Weights<Scalar>& w, const Eigen::Ref<const Matrix<Scalar>>& x,
                           const Matrix<Scalar>& Z, Workspace<Scalar>& ws, LossTerms& t,
                           Weights<Scalar>& grad) {
  gemm<false, false>(ws, ws.xhat, w.decoder, Z);
  ws.xhat.colwise() += w.decoder_bias;
  finish_reconstruction(x, ws, t);
  gemm<false, true>(ws, grad.decoder, ws.dxhat, Z);
  grad.decoder_bias = ws.dxhat.rowwise().sum();
  gemm<true, false>(ws, ws.dz, w.decoder, ws.dxhat);
}

}  // namespace ergo::sae::detail

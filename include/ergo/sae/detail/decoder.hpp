// SPDX-License-Identifier: MIT
#pragma once

/// \file decoder.hpp
/// \brief Pieces every SAE step shares (private): the encoder's linear part, the reconstruction
/// loss and ∂L/∂x̂, and the dense decoder's forward and backward pass.

#include "../../core/parallel.hpp"
#include "../../core/types.hpp"
#include "../loss.hpp"
#include "../weights.hpp"
#include "../workspace.hpp"

#include <algorithm>
#include <type_traits>
#include <vector>

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

/// \brief The encoder's input u = x − b_dec (or x when `pre_bias` is false), in one pass split
/// over the columns. x: d × n; u: d × n (resized).
template <class Scalar, class X>
void centre_input(const Weights<Scalar>& w, bool pre_bias, const X& x, Matrix<Scalar>& u) {
  u.resize(x.rows(), x.cols());
  ergo::detail::parallel_for(
      x.cols(), ergo::detail::grain_for(x.rows()), [&](Index b, Index e, int) {
        if (pre_bias)
          u.middleCols(b, e - b) = x.middleCols(b, e - b).colwise() - w.decoder_bias;
        else
          u.middleCols(b, e - b) = x.middleCols(b, e - b);
      });
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

/// \brief Per-thread partial sums of the reconstruction pass over the columns of a batch x
/// (d × B): column(b, th) sets ws.dxhat.col(b) = ∂L_rec/∂x̂_b = (2/B)(x̂_b − x_b) from ws.xhat and
/// adds to thread th's sums; finish() writes the reconstruction term (1/B) Σ‖x − x̂‖² and the batch
/// variance into a LossTerms. One pass over x, x̂ and ∂x̂, so a decoder can call column() while
/// x̂_b is still in cache. The variance is summed about the first sample x_0,
/// Σ‖x_b − x̄‖² = Σ‖x_b − x_0‖² − B‖x̄ − x_0‖², which avoids the cancellation of the raw moments
/// when ‖x̄‖ is large against the spread.
template <class Scalar, class X>
class ReconstructionSums {
 public:
  ReconstructionSums(const X& x, Workspace<Scalar>& ws)
      : m_x(x),
        m_ws(ws),
        m_threads(std::max(ergo::num_threads(), 1)),
        m_rec(static_cast<size_t>(m_threads), 0.0),
        m_spread(static_cast<size_t>(m_threads), 0.0),
        m_sum(Matrix<Scalar>::Zero(x.rows(), m_threads)),
        m_scale(static_cast<Scalar>(2.0 / static_cast<double>(x.cols()))) {
    ws.dxhat.resize(x.rows(), x.cols());
  }

  void column(Index b, int th) {
    auto r = m_ws.dxhat.col(b);
    r = m_ws.xhat.col(b) - m_x.col(b);
    m_rec[static_cast<size_t>(th)] += static_cast<double>(r.squaredNorm());
    r *= m_scale;
    const auto shifted = m_x.col(b) - m_x.col(0);
    m_sum.col(th) += shifted;
    m_spread[static_cast<size_t>(th)] += static_cast<double>(shifted.squaredNorm());
  }

  /// Writes t.reconstruction and t.batch_variance; returns the reconstruction term.
  double finish(LossTerms& t) const {
    const double B = static_cast<double>(m_x.cols());
    double rec = 0.0, spread = 0.0;
    for (int th = 0; th < m_threads; ++th) {
      rec += m_rec[static_cast<size_t>(th)];
      spread += m_spread[static_cast<size_t>(th)];
    }
    const double centre = (m_sum.template cast<double>().rowwise().sum()).squaredNorm() / B;
    t.reconstruction = rec / B;
    t.batch_variance = std::max(0.0, spread - centre) / B;
    return t.reconstruction;
  }

 private:
  const X& m_x;
  Workspace<Scalar>& m_ws;
  int m_threads;
  std::vector<double> m_rec, m_spread;
  Matrix<Scalar> m_sum;
  Scalar m_scale;
};

/// \brief From ws.xhat (d × B): the reconstruction term (1/B) Σ‖x − x̂‖² and the batch variance
/// into `t`, and ws.dxhat = ∂L_rec/∂x̂ = (2/B)(x̂ − x), in one pass split over the columns.
/// Returns the reconstruction term.
template <class Scalar>
double finish_reconstruction(const Eigen::Ref<const Matrix<Scalar>>& x, Workspace<Scalar>& ws,
                             LossTerms& t) {
  ReconstructionSums<Scalar, Eigen::Ref<const Matrix<Scalar>>> sums(x, ws);
  ergo::detail::parallel_for(x.cols(), ergo::detail::grain_for(x.rows()),
                             [&](Index b, Index e, int th) {
                               for (Index j = b; j < e; ++j) sums.column(j, th);
                             });
  return sums.finish(t);
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

// SPDX-License-Identifier: MIT
#pragma once

/// \file dense_step.hpp
/// \brief The fused dense training step of the elementwise architectures (ReLU-L1, JumpReLU,
/// p-annealing), templated on an activation policy and a penalty policy (private).
///
/// Five GEMMs per step (W_enc·U, W_dec·Z, ∂x̂·Zᵀ, W_decᵀ·∂x̂, ∂H·Uᵀ) plus two fused elementwise
/// passes over the m × B codes: the forward pass (bias, activation, penalty value, L0 and firing
/// counts) and the backward pass (penalty gradient, activation mask, encoder-bias sums and the
/// threshold pseudo-gradient), each one OpenMP loop over samples with per-thread accumulators.

#include "../../core/parallel.hpp"
#include "../../core/types.hpp"
#include "../loss.hpp"
#include "../weights.hpp"
#include "../workspace.hpp"
#include "decoder.hpp"

#include <type_traits>

namespace ergo::sae::detail {

/// \brief Loss and gradients of a batch x (d × B) for z = Activation(W_enc u + b_enc) and the
/// elementwise penalty λ (1/B) Σ ρ(z): writes ∇W_enc, ∇b_enc, ∇W_dec, ∇b_dec (and ∇θ through
/// the activation) into `grad`, ws.fired, and returns the loss terms.
/// \param pre_bias u = x − b_dec (true) or u = x
/// \param act activation policy (activation.hpp) \param pen penalty policy (penalty.hpp), built
///        with λ/B = lw.sparsity / B
template <class Scalar, class Activation, class Penalty>
LossTerms step_dense(const Weights<Scalar>& w, bool pre_bias,
                     const Eigen::Ref<const Matrix<Scalar>>& x, const LossWeights& lw,
                     const Activation& act, const Penalty& pen, Workspace<Scalar>& ws,
                     Weights<Scalar>& grad) {
  static_assert(!Penalty::kNeedsThreshold || Activation::kHasThreshold,
                "step_dense: this penalty's gradient reaches the threshold only (L0 "
                "straight-through estimator); pair it with an activation that has one (JumpRelu)");
  static_assert(std::is_trivially_copyable_v<Activation> && std::is_trivially_copyable_v<Penalty>,
                "step_dense: activation and penalty policies must be small trivially copyable "
                "objects (the fused loops copy them per sample; keep arrays outside, by pointer)");
  const Index m = w.encoder.rows(), B = x.cols();
  [[maybe_unused]] const int nt = Eigen::nbThreads();
  LossTerms t;

  ws.u = x;
  if (pre_bias) ws.u.colwise() -= w.decoder_bias;
  ws.h.noalias() = w.encoder * ws.u;
  Matrix<Scalar>& Z = Activation::kSeparateCodes ? ws.z : ws.h;  // else z overwrites h

  // per-thread accumulators: [0] firing counts, [1] θ gradient or Σ_b z, [2] Σ_b ∂L/∂h
  ws.scratch.assign(static_cast<size_t>(3 * nt * m), Scalar(0));
  const Scalar* benc = w.encoder_bias.data();
  double pen_sum = 0.0, l0_sum = 0.0;
  ERGO_OMP(omp parallel for schedule(static) num_threads(nt) reduction(+ : pen_sum, l0_sum) if (ergo::detail::worth_splitting(m * B)))
  for (Index b = 0; b < B; ++b) {
    const Activation a = act;  // private copies: their members stay in registers
    const Penalty pn = pen;
    Scalar* cnt = ws.scratch.data() +
                  static_cast<size_t>(ergo::detail::thread_index()) * static_cast<size_t>(m);
    Scalar* hc = ws.h.data() + b * m;
    Scalar* zc = Z.data() + b * m;
    Scalar p_acc = 0, l0 = 0;
    for (Index i = 0; i < m; ++i) {
      const Scalar hv = hc[i] + benc[i];
      if constexpr (Activation::kSeparateCodes) hc[i] = hv;
      Scalar on;
      const Scalar zv = a.forward(hv, i, on);
      zc[i] = zv;
      cnt[i] += on;
      l0 += on;
      pn.add_value(p_acc, zv, on, i);
    }
    pen_sum += static_cast<double>(p_acc);
    l0_sum += static_cast<double>(l0);
  }
  for (Index i = 0; i < m; ++i) {
    Scalar c = 0;
    for (int th = 0; th < nt; ++th) c += ws.scratch[static_cast<size_t>(th * m + i)];
    ws.fired[static_cast<size_t>(i)] = c > Scalar(0);
  }
  const double invB = 1.0 / static_cast<double>(B);
  t.l0 = l0_sum * invB;
  t.sparsity = lw.sparsity * pen_sum * invB;

  dense_decode_backward(w, x, Z, ws, t, grad);

  // elementwise backward, fused with Σ_b ∂L/∂h (encoder-bias gradient) and the θ pseudo-gradient
  const size_t off1 = static_cast<size_t>(nt * m), off2 = static_cast<size_t>(2 * nt * m);
  ERGO_OMP(omp parallel for schedule(static) num_threads(nt) if (ergo::detail::worth_splitting(m * B)))
  for (Index b = 0; b < B; ++b) {
    const Activation a = act;  // private copies (see the forward loop)
    const Penalty pn = pen;
    const size_t tid = static_cast<size_t>(ergo::detail::thread_index()) * static_cast<size_t>(m);
    Scalar* acc1 = ws.scratch.data() + off1 + tid;
    Scalar* gb = ws.scratch.data() + off2 + tid;
    Scalar* dz = ws.dz.data() + b * m;
    const Scalar* zc = Z.data() + b * m;
    const Scalar* hc = ws.h.data() + b * m;
    for (Index i = 0; i < m; ++i) {
      if constexpr (Activation::kHasThreshold)
        if (a.in_window(hc[i], i))  // rectangle kernel K(u) = 1[|u| < 1/2]
          acc1[i] +=
              a.threshold_part(pn.add_gradient(dz[i], zc[i], i), i) - pn.threshold_gradient();
      const Scalar g = a.active(hc[i], zc[i], i) ? pn.add_gradient(dz[i], zc[i], i) : Scalar(0);
      dz[i] = g;
      gb[i] += g;
      if constexpr (Penalty::kSumsCodes) acc1[i] += zc[i];
    }
  }
  grad.encoder.noalias() = ws.dz * ws.u.transpose();
  for (Index i = 0; i < m; ++i) {
    Scalar s1 = 0, s2 = 0;
    for (int th = 0; th < nt; ++th) {
      s1 += ws.scratch[off1 + static_cast<size_t>(th * m + i)];
      s2 += ws.scratch[off2 + static_cast<size_t>(th * m + i)];
    }
    grad.encoder_bias(i) = s2;
    if constexpr (Activation::kHasThreshold) act.set_threshold_gradient(i, s1);
    if constexpr (Penalty::kSumsCodes) pen.finish_latent(i, s1, w.decoder, grad.decoder);
  }
  if (pre_bias) grad.decoder_bias.noalias() -= w.encoder.transpose() * grad.encoder_bias;
  t.total = t.reconstruction + t.sparsity;
  return t;
}

}  // namespace ergo::sae::detail

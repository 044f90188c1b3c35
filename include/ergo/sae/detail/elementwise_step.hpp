// SPDX-License-Identifier: MIT
#pragma once

/// \file elementwise_step.hpp
/// \brief The training step of the elementwise architectures (ReLU-L1, JumpReLU, p-annealing),
/// templated on an activation policy and a penalty policy, with a dense and a sparse backward
/// pass chosen per batch by its density (private).
///
/// Both paths share the encoder GEMM H = W_enc·U and one fused forward pass over the m × B
/// pre-activations (bias, activation, penalty value, L0, firing counts, and the number of entries
/// that need a gradient: the active ones, plus for a thresholded activation those inside the
/// straight-through kernel's window). Then, with ρ that number over m·B:
///
/// - dense (ρ >= Workspace::sparse_kernel_density): four more GEMMs (W_dec·Z, ∂x̂·Zᵀ,
///   W_decᵀ·∂x̂, ∂H·Uᵀ) and a fused elementwise backward pass: 10·B·d·m FLOP;
/// - sparse (ρ below it): the entries are gathered into per-sample lists (SparseCodes) and the
///   decode, ∂L/∂z at those entries, ∇W_dec and ∇W_enc cost O(ρ·m·B·d) with the kernels of
///   sparse_step.hpp: ≈ 2·B·d·m + 8·ρ·m·B·d FLOP.
///
/// The two paths compute the same sums in a different order: results agree to rounding
/// (tests/sae/elementwise_step_test.cpp). The crossover default is measured (docs/sae.md,
/// "Activation-sparse steps").

#include "../../core/parallel.hpp"
#include "../../core/types.hpp"
#include "../loss.hpp"
#include "../weights.hpp"
#include "../workspace.hpp"
#include "decoder.hpp"
#include "sparse_step.hpp"

#include <type_traits>

namespace ergo::sae::detail {

/// \brief Fills the sparse codes ws.codes (index, value) with the entries (i, b) of the m × B
/// codes Z for which needs(H(i, b), Z(i, b), i) holds, in latent order per sample.
/// ws.codes.start must already hold the prefix sums of the per-sample counts of such entries
/// (B + 1 values).
template <class Scalar, class Needs>
void gather_codes(const Matrix<Scalar>& H, const Matrix<Scalar>& Z, Workspace<Scalar>& ws,
                  const Needs& needs) {
  const Index m = Z.rows(), B = Z.cols();
  auto& c = ws.codes;
  c.reserve(B, m, c.start[static_cast<size_t>(B)]);
  [[maybe_unused]] const int nt = Eigen::nbThreads();
  ERGO_OMP(omp parallel for schedule(static) num_threads(nt) if (ergo::detail::worth_splitting(m * B)))
  for (Index b = 0; b < B; ++b) {
    const Scalar* hc = H.data() + b * m;
    const Scalar* zc = Z.data() + b * m;
    Index e = c.start[static_cast<size_t>(b)];
    for (Index i = 0; i < m; ++i)
      if (needs(hc[i], zc[i], i)) {
        c.index[static_cast<size_t>(e)] = static_cast<std::int32_t>(i);
        c.value[static_cast<size_t>(e)] = zc[i];
        ++e;
      }
  }
}

/// \brief gather_codes from the entries the forward pass collected in `lists` (the same entries,
/// in the same order), or by scanning H and Z when a list overflowed.
template <class Scalar, class Needs>
void codes_from_lists(const EntryLists<Scalar>& lists, const Matrix<Scalar>& H,
                      const Matrix<Scalar>& Z, Workspace<Scalar>& ws, const Needs& needs) {
  if (!lists.complete()) return gather_codes(H, Z, ws, needs);
  ws.codes.reserve(Z.cols(), Z.rows(), ws.codes.start[static_cast<size_t>(Z.cols())]);
  lists.copy_to(ws.codes);
}

/// \brief Ends a forward pass that left per-thread firing counts in ws.scratch[0, nt·m) and the
/// per-sample counts of entries that need a gradient in ws.codes.start[1..B]: sets ws.fired,
/// turns the counts into offsets (start[B] = nnz), and picks the path: sparse when
/// nnz < ws.sparse_kernel_density · m · B (stored in ws.sparse_path and returned).
template <class Scalar>
bool finish_forward_counts(Workspace<Scalar>& ws, Index m, Index B, int nt) {
  for (Index i = 0; i < m; ++i) {
    Scalar s = 0;
    for (int th = 0; th < nt; ++th) s += ws.scratch[static_cast<size_t>(th * m + i)];
    ws.fired[static_cast<size_t>(i)] = s > Scalar(0);
  }
  auto& start = ws.codes.start;
  for (Index b = 0; b < B; ++b) start[static_cast<size_t>(b + 1)] += start[static_cast<size_t>(b)];
  ws.sparse_path = static_cast<double>(start[static_cast<size_t>(B)]) <
                   ws.sparse_kernel_density * static_cast<double>(m) * static_cast<double>(B);
  return ws.sparse_path;
}

/// \brief Loss and gradients of a batch x (d × B) for z = Activation(W_enc u + b_enc) and the
/// elementwise penalty λ (1/B) Σ ρ(z): writes ∇W_enc, ∇b_enc, ∇W_dec, ∇b_dec (and ∇θ through
/// the activation) into `grad`, ws.fired, and returns the loss terms. The codes stay in ws.h
/// (ReLU) or ws.z (activations with separate codes).
/// \param pre_bias u = x − b_dec (true) or u = x
/// \param act activation policy (activation.hpp) \param pen penalty policy (penalty.hpp), built
///        with λ/B = lw.sparsity / B
template <class Scalar, class Activation, class Penalty>
LossTerms step_elementwise(const Weights<Scalar>& w, bool pre_bias,
                           const Eigen::Ref<const Matrix<Scalar>>& x, const LossWeights& lw,
                           const Activation& act, const Penalty& pen, Workspace<Scalar>& ws,
                           Weights<Scalar>& grad) {
  static_assert(!Penalty::kNeedsThreshold || Activation::kHasThreshold,
                "step_elementwise: this penalty's gradient reaches the threshold only (L0 "
                "straight-through estimator); pair it with an activation that has one (JumpRelu)");
  static_assert(std::is_trivially_copyable_v<Activation> && std::is_trivially_copyable_v<Penalty>,
                "step_elementwise: activation and penalty policies must be small trivially "
                "copyable objects (the fused loops copy them per sample; keep arrays outside, by "
                "pointer)");
  const Index m = w.encoder.rows(), B = x.cols();
  [[maybe_unused]] const Index d = w.encoder.cols();
  [[maybe_unused]] const int nt = Eigen::nbThreads();
  LossTerms t;

  centre_input(w, pre_bias, x, ws.u);
  detail::gemm<false, false>(ws, ws.h, w.encoder, ws.u);
  Matrix<Scalar>& Z = Activation::kSeparateCodes ? ws.z : ws.h;  // else z overwrites h
  // an entry needs a gradient when ∂L/∂z passes to h, or it feeds the θ pseudo-gradient
  auto needs_gradient = [](const Activation& a, Scalar hv, Scalar zv, Index i) {
    if constexpr (Activation::kHasThreshold) return a.active(hv, zv, i) || a.in_window(hv, i);
    return a.active(hv, zv, i);
  };

  // per-thread accumulators: [0] firing counts, [1] θ gradient or Σ_b z, [2] Σ_b ∂L/∂h
  ws.scratch.assign(static_cast<size_t>(3 * nt * m), Scalar(0));
  auto& c = ws.codes;
  c.start.resize(static_cast<size_t>(B + 1));
  c.start[0] = 0;
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
    Index need = 0;
    for (Index i = 0; i < m; ++i) {
      const Scalar hv = hc[i] + benc[i];
      if constexpr (Activation::kSeparateCodes) hc[i] = hv;
      Scalar on;
      const Scalar zv = a.forward(hv, i, on);
      zc[i] = zv;
      cnt[i] += on;
      l0 += on;
      pn.add_value(p_acc, zv, on, i);
      need += needs_gradient(a, hv, zv, i) ? 1 : 0;
    }
    c.start[static_cast<size_t>(b + 1)] = need;
    pen_sum += static_cast<double>(p_acc);
    l0_sum += static_cast<double>(l0);
  }
  const bool sparse = finish_forward_counts(ws, m, B, nt);
  [[maybe_unused]] const Index nnz = c.nnz();
  const double invB = 1.0 / static_cast<double>(B);
  t.l0 = l0_sum * invB;
  t.sparsity = lw.sparsity * pen_sum * invB;

  const size_t off1 = static_cast<size_t>(nt * m), off2 = static_cast<size_t>(2 * nt * m);
  if (!sparse) {
    dense_decode_backward(w, x, Z, ws, t, grad);
    // elementwise backward, fused with Σ_b ∂L/∂h (encoder-bias gradient) and the θ
    // pseudo-gradient
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
    detail::gemm<false, true>(ws, grad.encoder, ws.dz, ws.u);
  } else {
    // gather the entries that need a gradient (same predicate and order as the count above)
    gather_codes(ws.h, Z, ws,
                 [&](Scalar hv, Scalar zv, Index i) { return needs_gradient(act, hv, zv, i); });
    sparse_decode_reconstruction(w, x, ws, t, [](Index, int) {});
    // ∂L/∂z = d_i · ∂x̂_b at each entry, then the activation's mask, the penalty's gradient and
    // the θ pseudo-gradient (per-thread accumulators, as in the dense pass)
    ERGO_OMP(omp parallel for schedule(static) num_threads(nt) if (ergo::detail::worth_splitting(nnz * d)))
    for (Index b = 0; b < B; ++b) {
      const Activation a = act;
      const Penalty pn = pen;
      const size_t tid = static_cast<size_t>(ergo::detail::thread_index()) * static_cast<size_t>(m);
      Scalar* acc1 = ws.scratch.data() + off1 + tid;
      const Scalar* hc = ws.h.data() + b * m;
      const auto dxc = ws.dxhat.col(b);
      for (Index e = c.start[static_cast<size_t>(b)]; e < c.start[static_cast<size_t>(b + 1)];
           ++e) {
        const size_t es = static_cast<size_t>(e);
        const Index i = c.index[es];
        const Scalar zv = c.value[es], hv = hc[i];
        const Scalar dz = w.decoder.col(i).dot(dxc);
        if constexpr (Activation::kHasThreshold)
          if (a.in_window(hv, i))
            acc1[i] += a.threshold_part(pn.add_gradient(dz, zv, i), i) - pn.threshold_gradient();
        c.grad[es] = a.active(hv, zv, i) ? pn.add_gradient(dz, zv, i) : Scalar(0);
        if constexpr (Penalty::kSumsCodes) acc1[i] += zv;
      }
    }
    sparse_backward(w, ws, grad, false);  // ∇W_dec, ∇W_enc, ∇b_enc
    grad.decoder_bias = ws.dxhat.rowwise().sum();
  }
  for (Index i = 0; i < m; ++i) {
    Scalar s1 = 0, s2 = 0;
    for (int th = 0; th < nt; ++th) {
      s1 += ws.scratch[off1 + static_cast<size_t>(th * m + i)];
      s2 += ws.scratch[off2 + static_cast<size_t>(th * m + i)];
    }
    if (!sparse) grad.encoder_bias(i) = s2;
    if constexpr (Activation::kHasThreshold) act.set_threshold_gradient(i, s1);
    if constexpr (Penalty::kSumsCodes) pen.finish_latent(i, s1, w.decoder, grad.decoder);
  }
  if (pre_bias) grad.decoder_bias.noalias() -= w.encoder.transpose() * grad.encoder_bias;
  t.total = t.reconstruction + t.sparsity;
  return t;
}

}  // namespace ergo::sae::detail

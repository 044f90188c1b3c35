// SPDX-License-Identifier: MIT
#pragma once

/// \file structured.hpp
/// \brief The paper's structured SAE (Liu et al., §5.5): z = S + R with a sparse ReLU branch
/// S = ReLU(W_enc u + b_enc) under a p-annealed L_p^p penalty and a dense linear branch
/// R = W_R u + b_R (on latents 0..h−1) under the nuclear norm (γ/√B) ‖R‖_* of its batch matrix.

#include "../../core/error.hpp"
#include "../detail/decoder.hpp"
#include "../detail/elementwise_step.hpp"
#include "../detail/kernels.hpp"
#include "../detail/nuclear_norm.hpp"
#include "../detail/sparse_step.hpp"
#include "../loss.hpp"
#include "../penalty.hpp"
#include "../weights.hpp"
#include "../workspace.hpp"
#include "base.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace ergo::sae::arch {

/// \brief Structured (registry name "structured"; no SAELens equivalent).
///
/// The loss is L_rec + λ_t (1/B) Σ [(S + ε_p)^p − ε_p^p] + (γ/√B) ‖R‖_*; docs/sae.md explains the
/// batch reading of the nuclear norm. The dense branch starts at zero (rank 0) and grows only as
/// far as the loss pays for it. L0 and firing are measured on S.
struct Structured : Base {
  /// \brief Hyper-parameters of the structured SAE (SparseAutoencoderParams::structured).
  struct Params {
    /// ε_p of the sparse branch's penalty (z + ε_p)^p − ε_p^p (> 0). Default 1e-6.
    double p_epsilon = 1e-6;
    /// Width h of the dense branch R (its rows add to latents 0..h−1), in [1, d_sae]; -1 means
    /// h = d_sae (z = S + R over every latent). Default -1.
    Index dense_width = -1;

    /// h with -1 resolved.
    Index width(Index d_sae) const { return dense_width < 0 ? d_sae : dense_width; }

    template <class Self, class F>
    static void for_each(Self& self, F&& f) {
      f("p_epsilon", self.p_epsilon);
      f("dense_width", self.dense_width);
    }
    void check(const std::string& who, const std::string& prefix, Index /*d_in*/,
               Index d_sae) const {
      check_positive(who, prefix + "p_epsilon", p_epsilon);
      check_arg(dense_width == -1 || (dense_width >= 1 && dense_width <= d_sae), who,
                prefix + "dense_width",
                ergo::detail::str_cat("-1 or a value in [1, d_sae = ", d_sae, "]"), dense_width);
    }
  };

  static constexpr Traits traits = [] {
    Traits t;
    t.sparse_activation = true;
    t.sparse_by_density = true;  // the sparse branch S (sparse kernels below a density)
    t.anneals_p = true;
    t.sparse_branch = true;
    t.batch_coupled = true;  // (γ/√B)‖R‖_* of the whole batch
    return t;
  }();

  /// \brief Dense-branch buffers of a training step (kept in the Workspace).
  template <class Scalar>
  struct Buffers {
    Matrix<Scalar> r, dr;                ///< h × B: R and ∂L/∂R
    Matrix<Scalar> p, g;                 ///< d × d: W_dec,h W_R and ∂x̂ uᵀ (sparse path)
    Vector<Scalar> xhat_bias;            ///< d: b_dec (+ W_dec,h b_R when factored; sparse path)
    detail::NuclearWorkspace nuclear;    ///< factorisations of the nuclear norm
    detail::EntryLists<Scalar> entries;  ///< active entries of S, collected by the forward pass
    std::vector<double> sums;            ///< per-thread penalty and L0 sums of the forward pass
  };

  /// "W_dense" (h × d, scales with the input) and "b_dense" (h × 1), both zero at start.
  static std::vector<TensorSpec> tensors(const Params& ap, Index d_in, Index d_sae) {
    TensorSpec w, b;
    w.name = "W_dense";
    w.rows = ap.width(d_sae);
    w.cols = d_in;
    w.scales_with_input = true;
    b.name = "b_dense";
    b.rows = ap.width(d_sae);
    return {w, b};
  }

  /// z = S + R for a chunk x (d × n) into out (m × n).
  template <class S>
  static void encode(const SparseAutoencoder<S>& sae, const Params&, const InputRef<S>& x,
                     OutputRef<S> out, EncodeBuffers<S>& buf) {
    const Weights<S>& w = sae.weights();
    detail::pre_activations(w, sae.params().apply_b_dec_to_input, x, buf.u, buf.h);
    out = buf.h.cwiseMax(S(0));
    const Matrix<S>& dense = w.extras[0].value;
    const Index hr = dense.rows();
    out.topRows(hr).noalias() += dense * buf.u;
    out.topRows(hr).colwise() += w.extras[1].value.col(0);
  }

  /// S = ReLU(W_enc u + b_enc) of all of x (d × N) → m × N.
  template <class S>
  static Matrix<S> encode_sparse(const SparseAutoencoder<S>& sae, const Params&,
                                 const InputRef<S>& x, Index /*chunk*/) {
    const Weights<S>& w = sae.weights();
    Matrix<S> u = x;
    if (sae.params().apply_b_dec_to_input) u.colwise() -= w.decoder_bias;
    Matrix<S> h = w.encoder * u;
    h.colwise() += w.encoder_bias;
    return h.cwiseMax(S(0));
  }

  template <class S>
  static void prepare(const SparseAutoencoder<S>& sae, const Params& ap, Workspace<S>& ws,
                      Index B) {
    const Index hr = ap.width(sae.d_sae());
    ws.z.resize(sae.d_sae(), B);
    ws.dz.resize(sae.d_sae(), B);
    auto& bb = ws.template buffers<Buffers<S>>();
    bb.r.resize(hr, B);
    bb.dr.resize(hr, B);
  }

  template <class S>
  static LossTerms forward_backward(const SparseAutoencoder<S>& sae, const Params& ap,
                                    const InputRef<S>& x, const LossWeights& lw, Workspace<S>& ws,
                                    Weights<S>& grad);

  /// Mean over the last batch of Σ_i ((S_i + ε_p)^p − ε_p^p): from the codes after a sparse step,
  /// else from S, kept in ws.h.
  template <class S>
  static double lp_penalty(const SparseAutoencoder<S>&, const Params& ap, const Workspace<S>& ws,
                           double p) {
    if (!ws.sparse_path) return LpPenalty<S>::mean_value(ws.h, p, ap.p_epsilon);
    const auto& c = ws.codes;
    const Eigen::Map<const Matrix<S>> values(c.value.data(), c.nnz(), 1);
    return LpPenalty<S>::mean_value(values, p, ap.p_epsilon) / static_cast<double>(c.batch());
  }
};

/// The step: S with its L_p^p penalty (L1 while p = 1), R added to the first h latents, the
/// decode, the nuclear-norm penalty on R, and every gradient.
///
/// Two paths, the same step to rounding (tests/sae/elementwise_step_test.cpp):
/// - dense (S denser than Workspace::sparse_kernel_density): z = S + R, dense decode and GEMM
///   gradients, ≈ 10·B·d·m + 6·B·d·h FLOP;
/// - sparse: S's active entries through the sparse kernels (detail/sparse_step.hpp), and R's
///   part of the decode and of the gradients without forming R when that is cheaper: R is
///   linear in u, so W_dec,h R = (W_dec,h W_R) u + W_dec,h b_R, ∇W_R = W_dec,hᵀ (∂x̂ uᵀ) and R's
///   part of ∇W_dec is (∂x̂ uᵀ) W_Rᵀ + (Σ_b ∂x̂_b) b_Rᵀ, all with d × d or d × h products
///   (6·d²·h + 4·B·d² FLOP instead of 6·B·d·h when h is large).
template <class S>
LossTerms Structured::forward_backward(const SparseAutoencoder<S>& sae, const Params& ap,
                                       const InputRef<S>& x, const LossWeights& lw,
                                       Workspace<S>& ws, Weights<S>& grad) {
  const Weights<S>& w = sae.weights();
  const bool pre_bias = sae.params().apply_b_dec_to_input;
  const Index m = sae.d_sae(), d = sae.d_in(), B = x.cols();
  const Matrix<S>& dense = w.extras[0].value;
  const Matrix<S>& dense_bias = w.extras[1].value;
  Matrix<S>& g_dense = grad.extras[0].value;
  Matrix<S>& g_dense_bias = grad.extras[1].value;
  auto& bb = ws.template buffers<Buffers<S>>();
  const Index hr = dense.rows();
  [[maybe_unused]] const int nt = Eigen::nbThreads();
  LossTerms t;
  detail::centre_input(w, pre_bias, x, ws.u);
  // The nuclear norm in three stages: prepare, decompose (below, beside other work), finish.
  const bool nuclear = lw.nuclear > 0.0;
  if (nuclear) NuclearNormPenalty::prepare(dense, dense_bias, ws.u, bb.nuclear);
  detail::gemm<false, false>(ws, ws.h, w.encoder, ws.u);
  // One read-only pass over h for S = ReLU(h + b_enc): its penalty, L0, firing counts and
  // per-sample counts, and its active entries, collected for the sparse path as they are found.
  // Blocks of 16 entries are vectorised; only blocks with an active entry are visited one by one.
  // S itself is written into ws.h only when the dense path (or a scan for the codes) needs it.
  const S p = static_cast<S>(lw.p);
  const LpPenalty<S> lp(0.0, lw.p, ap.p_epsilon);
  auto& c = ws.codes;
  c.start.resize(static_cast<size_t>(B + 1));
  c.start[0] = 0;
  ws.scratch.assign(static_cast<size_t>(nt * m), S(0));
  double pen = 0.0, l0 = 0.0;
  bb.entries.reset(nt);
  bb.sums.assign(static_cast<size_t>(2 * std::max(nt, 1)), 0.0);
  const double entry_share = ws.sparse_kernel_density * static_cast<double>(m);
  auto forward_s = [&] {
    ergo::detail::parallel_for(B, ergo::detail::grain_for(m), [&](Index b0, Index b1, int th) {
      S* cnt = ws.scratch.data() + static_cast<size_t>(th) * static_cast<size_t>(m);
      auto& list = bb.entries.parts[static_cast<size_t>(th)];
      list.start(b0, static_cast<Index>(std::min(entry_share * static_cast<double>(b1 - b0),
                                                 static_cast<double>(m * (b1 - b0)))));
      const S* benc = w.encoder_bias.data();
      double pen_t = 0.0, l0_t = 0.0;
      for (Index b = b0; b < b1; ++b) {
        const S* hc = ws.h.data() + b * m;
        Index n = 0;
        double pb = 0.0;
        auto visit = [&](Index i, S s) {
          ++n;
          cnt[i] += S(1);
          pb += p == S(1) ? static_cast<double>(s) : static_cast<double>(lp.value(s));
          list.add(i, s);
        };
        constexpr Index kW = 16;
        using Block = Eigen::Array<S, kW, 1>;
        Index i = 0;
        for (; i + kW <= m; i += kW) {
          const Block sv =
              (Eigen::Map<const Block>(hc + i) + Eigen::Map<const Block>(benc + i)).max(S(0));
          if ((sv > S(0)).any())
            for (Index j = 0; j < kW; ++j)
              if (sv(j) > S(0)) visit(i + j, sv(j));
        }
        for (; i < m; ++i) {
          const S sv = std::max(hc[i] + benc[i], S(0));
          if (sv > S(0)) visit(i, sv);
        }
        c.start[static_cast<size_t>(b + 1)] = n;
        pen_t += pb;
        l0_t += static_cast<double>(n);
      }
      bb.sums[static_cast<size_t>(2 * th)] = pen_t;
      bb.sums[static_cast<size_t>(2 * th + 1)] = l0_t;
    });
    for (size_t th = 0; th < bb.sums.size(); th += 2) {
      pen += bb.sums[th];
      l0 += bb.sums[th + 1];
    }
  };
  // The sparse path's products with R: factored (through W_dec,h W_R, d × d) when cheaper.
  const auto dec_h = w.decoder.leftCols(hr);
  const double dd = static_cast<double>(d), hd = static_cast<double>(hr),
               bd = static_cast<double>(B);
  const bool factored = 6.0 * dd * dd * hd + 4.0 * bd * dd * dd < 6.0 * bd * dd * hd;
  // With a non-zero R, the eigen-decomposition runs on one thread while the other makes this pass
  // and, on a factored sparse path, forms W_dec,h W_R (neither touches the other's data; a BLAS
  // call inside runs on its one thread).
  bool sparse = false;
  ergo::detail::run_side_by_side(
      nuclear && bb.nuclear.pending ? nt : 1,
      [&] {
        forward_s();
        sparse = detail::finish_forward_counts(ws, m, B, nt);
        if (!sparse || !bb.entries.complete())
          ergo::detail::parallel_for(B, ergo::detail::grain_for(m), [&](Index b0, Index b1, int) {
            for (Index b = b0; b < b1; ++b)
              ws.h.col(b) = (ws.h.col(b) + w.encoder_bias).cwiseMax(S(0));
          });
        if (sparse) {
          detail::codes_from_lists(bb.entries, ws.h, ws.h, ws,
                                   [](S, S s, Index) { return s > S(0); });
          if (factored) bb.p.noalias() = dec_h * dense;  // d × d
        }
      },
      [&] {
        if (nuclear) NuclearNormPenalty::decompose(bb.nuclear);
      });
  const double invB = 1.0 / static_cast<double>(B);
  t.l0 = l0 * invB;
  t.sparsity = lw.sparsity * pen * invB;
  const S lam_b = static_cast<S>(lw.sparsity * invB);
  auto penalty_gradient = [&](S s) { return lam_b * (p == S(1) ? S(1) : lp.derivative(s)); };
  if (!sparse) {
    bb.r.noalias() = dense * ws.u;
    bb.r.colwise() += dense_bias.col(0);
    ws.z = ws.h;
    ws.z.topRows(hr) += bb.r;
    detail::dense_decode_backward(w, x, ws.z, ws, t, grad);
    bb.dr = ws.dz.topRows(hr);
    for (Index b = 0; b < B; ++b)
      for (Index i = 0; i < m; ++i) {
        const S s = ws.h(i, b);
        ws.dz(i, b) = s > S(0) ? ws.dz(i, b) + penalty_gradient(s) : S(0);
      }
    detail::gemm<false, true>(ws, grad.encoder, ws.dz, ws.u);
    grad.encoder_bias = ws.dz.rowwise().sum();
    g_dense.noalias() = bb.dr * ws.u.transpose();
    g_dense_bias = bb.dr.rowwise().sum();
  } else {
    // R's part of x̂ first, so that the decode of S can finish each sample while it is in cache:
    // its reconstruction terms, ∂L/∂x̂_b and ∂L/∂S at its active entries
    bb.xhat_bias = w.decoder_bias;
    if (factored) {
      ws.xhat.noalias() = bb.p * ws.u;
      bb.xhat_bias.noalias() += dec_h * dense_bias.col(0);
    } else {
      bb.r.noalias() = dense * ws.u;
      bb.r.colwise() += dense_bias.col(0);
      ws.xhat.noalias() = dec_h * bb.r;
    }
    detail::sparse_decode_reconstruction(
        w, x, ws, t,
        [&](Index b, int) {
          const auto dxc = ws.dxhat.col(b);
          for (Index e = c.start[static_cast<size_t>(b)]; e < c.start[static_cast<size_t>(b + 1)];
               ++e) {
            const size_t es = static_cast<size_t>(e);
            c.grad[es] = w.decoder.col(c.index[es]).dot(dxc) + penalty_gradient(c.value[es]);
          }
        },
        &bb.xhat_bias);
    detail::sparse_backward(w, ws, grad, false);  // S's part of ∇W_dec, ∇W_enc, ∇b_enc
    grad.decoder_bias = ws.dxhat.rowwise().sum();
    if (factored) {
      bb.g.noalias() = ws.dxhat * ws.u.transpose();  // ∂x̂ uᵀ, d × d
      g_dense.noalias() = dec_h.transpose() * bb.g;
      g_dense_bias.col(0).noalias() = dec_h.transpose() * grad.decoder_bias;
      grad.decoder.leftCols(hr).noalias() += bb.g * dense.transpose();
      detail::add_outer(grad.decoder.leftCols(hr), grad.decoder_bias, dense_bias.col(0));
    } else {
      bb.dr.noalias() = dec_h.transpose() * ws.dxhat;
      g_dense.noalias() = bb.dr * ws.u.transpose();
      g_dense_bias = bb.dr.rowwise().sum();
      grad.decoder.leftCols(hr).noalias() += ws.dxhat * bb.r.transpose();
    }
  }
  if (nuclear) {
    t.nuclear = NuclearNormPenalty::finish(lw.nuclear, dense, dense_bias, bb.nuclear, g_dense,
                                           g_dense_bias);
  }
  if (pre_bias) {
    grad.decoder_bias.noalias() -= w.encoder.transpose() * grad.encoder_bias;
    grad.decoder_bias.noalias() -= dense.transpose() * g_dense_bias.col(0);
  }
  t.total = t.reconstruction + t.sparsity + t.nuclear;
  return t;
}

}  // namespace ergo::sae::arch

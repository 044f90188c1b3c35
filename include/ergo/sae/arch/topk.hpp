// SPDX-License-Identifier: MIT
#pragma once

/// \file topk.hpp
/// \brief The TopK SAE (Gao et al. 2024): z = ReLU(TopK_k(W_enc (x − b_dec) + b_enc)) per sample,
/// loss L_rec (+ α L_aux); trained with the sparse kernels.

#include "../../core/error.hpp"
#include "../../core/parallel.hpp"
#include "../detail/decoder.hpp"
#include "../detail/sparse_codes.hpp"
#include "../detail/sparse_step.hpp"
#include "../loss.hpp"
#include "../weights.hpp"
#include "../workspace.hpp"
#include "base.hpp"

#include <algorithm>
#include <string>

namespace ergo::sae::arch {

/// \brief TopK (registry name "topk", SAELens "topk"): exact control of L0; fast sparse backward.
struct TopK : Base {
  /// \brief Hyper-parameters of TopK (SparseAutoencoderParams::topk).
  struct Params {
    Index k = 32;  ///< active latents per sample, in [1, d_sae]. Default 32.

    template <class Self, class F>
    static void for_each(Self& self, F&& f) {
      f("k", self.k);
    }
    void check(const std::string& who, const std::string& prefix, Index /*d_in*/,
               Index d_sae) const {
      check_arg(k >= 1 && k <= d_sae, who, prefix + "k",
                ergo::detail::str_cat("a value in [1, d_sae = ", d_sae, "]"), k);
    }
  };

  static constexpr Traits traits = [] {
    Traits t;
    t.has_k = true;
    t.sparse_kernels = true;
    t.sparse_activation = true;
    t.aux_k = true;
    t.saelens_native = true;
    return t;
  }();

  /// The k largest pre-activations of each column of x (d × n), then ReLU, into out (m × n).
  template <class S>
  static void encode(const SparseAutoencoder<S>& sae, const Params& ap, const InputRef<S>& x,
                     OutputRef<S> out, EncodeBuffers<S>& buf) {
    detail::pre_activations(sae.weights(), sae.params().apply_b_dec_to_input, x, buf.u, buf.h);
    const Index k = ap.k, m = sae.d_sae();
    buf.idx.resize(static_cast<size_t>(k));
    buf.val.resize(static_cast<size_t>(k));
    out.setZero();
    for (Index b = 0; b < x.cols(); ++b) {
      detail::top_k_column(buf.h.col(b).data(), m, k, buf.idx.data(), buf.val.data());
      for (Index j = 0; j < k; ++j)
        out(buf.idx[static_cast<size_t>(j)], b) = std::max(buf.val[static_cast<size_t>(j)], S(0));
    }
  }

  template <class S>
  static void prepare(const SparseAutoencoder<S>& sae, const Params& ap, Workspace<S>& ws,
                      Index B) {
    ws.codes.reserve(B, sae.d_sae(), ap.k * B);
  }

  /// The sparse step with a per-sample top-k selection.
  template <class S>
  static LossTerms forward_backward(const SparseAutoencoder<S>& sae, const Params& ap,
                                    const InputRef<S>& x, const LossWeights& lw, Workspace<S>& ws,
                                    Weights<S>& grad) {
    const Weights<S>& w = sae.weights();
    auto select = [&](Workspace<S>& wsp, Index B) { return select_per_sample(w, ap.k, wsp, B); };
    return detail::step_sparse(w, sae.params().apply_b_dec_to_input, x, lw, ws, grad, select);
  }

  template <class S>
  static void config(const SparseAutoencoder<S>&, const Params& ap, Config& c) {
    c.k = ap.k;
  }

  /// \brief Keeps the k largest entries of each column of ws.h + b_enc (m × B; ws.h is only read)
  /// as the sparse codes ws.codes, values clamped at 0. Returns false: b_enc is not in ws.h.
  template <class S>
  static bool select_per_sample(const Weights<S>& w, Index k, Workspace<S>& ws, Index B) {
    const Index m = w.encoder.rows();
    [[maybe_unused]] const int nt = Eigen::nbThreads();
    auto& c = ws.codes;
    ERGO_OMP(omp parallel for schedule(static) num_threads(nt) if (ergo::detail::worth_splitting(m * B)))
    for (Index b = 0; b < B; ++b) {
      detail::top_k_column(ws.h.col(b).data(), m, k, c.index.data() + b * k, c.value.data() + b * k,
                           w.encoder_bias.data());
      for (Index e = b * k; e < (b + 1) * k; ++e)
        c.value[static_cast<size_t>(e)] = std::max(c.value[static_cast<size_t>(e)], S(0));
    }
    for (Index b = 0; b <= B; ++b) c.start[static_cast<size_t>(b)] = b * k;
    return false;
  }
};

}  // namespace ergo::sae::arch

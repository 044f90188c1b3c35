// SPDX-License-Identifier: MIT
#pragma once

/// \file p_anneal.hpp
/// \brief The p-annealing SAE (Karvonen et al. 2024): z = ReLU(W_enc (x − b_dec) + b_enc), loss
/// L_rec + λ_t (1/B) Σ [(z_i + ε_p)^p − ε_p^p] with p annealed from 1 towards p_end by the
/// trainer, which rescales λ at each switch.

#include "../../core/error.hpp"
#include "../activation.hpp"
#include "../detail/decoder.hpp"
#include "../detail/elementwise_step.hpp"
#include "../loss.hpp"
#include "../penalty.hpp"
#include "../weights.hpp"
#include "../workspace.hpp"
#include "base.hpp"

#include <string>

namespace ergo::sae::arch {

/// \brief p-annealing (registry name "p_anneal", infers like SAELens "standard"): the paper's
/// baseline.
struct PAnneal : Base {
  /// \brief Hyper-parameters of p-annealing (SparseAutoencoderParams::p_anneal); the schedule of
  /// p is the trainer's (TrainerParams::p_start, p_end, ...).
  struct Params {
    /// ε_p in (z + ε_p)^p − ε_p^p, which keeps the gradient p(z + ε_p)^{p−1} finite for p < 1
    /// (> 0). Default 1e-6.
    double p_epsilon = 1e-6;

    template <class Self, class F>
    static void for_each(Self& self, F&& f) {
      f("p_epsilon", self.p_epsilon);
    }
    void check(const std::string& who, const std::string& prefix, Index /*d_in*/,
               Index /*d_sae*/) const {
      check_positive(who, prefix + "p_epsilon", p_epsilon);
    }
  };

  static constexpr Traits traits = [] {
    Traits t;
    t.sparse_activation = true;
    t.sparse_by_density = true;
    t.anneals_p = true;
    return t;
  }();

  /// z = ReLU(W_enc u + b_enc) for a chunk x (d × n) into out (m × n).
  template <class S>
  static void encode(const SparseAutoencoder<S>& sae, const Params&, const InputRef<S>& x,
                     OutputRef<S> out, EncodeBuffers<S>& buf) {
    detail::pre_activations(sae.weights(), sae.params().apply_b_dec_to_input, x, buf.u, buf.h);
    out = buf.h.cwiseMax(S(0));
  }

  template <class S>
  static void prepare(const SparseAutoencoder<S>& sae, const Params&, Workspace<S>& ws, Index B) {
    ws.dz.resize(sae.d_sae(), B);  // z lives in h (in-place ReLU)
  }

  /// The dense step with a ReLU and the L_p^p penalty (the L1 penalty while p = 1).
  template <class S>
  static LossTerms forward_backward(const SparseAutoencoder<S>& sae, const Params& ap,
                                    const InputRef<S>& x, const LossWeights& lw, Workspace<S>& ws,
                                    Weights<S>& grad) {
    const Weights<S>& w = sae.weights();
    const bool pre = sae.params().apply_b_dec_to_input;
    const double lam_b = lw.sparsity * (1.0 / static_cast<double>(x.cols()));
    if (static_cast<S>(lw.p) == S(1))
      return detail::step_elementwise(w, pre, x, lw, Relu<S>{}, L1Penalty<S>(lam_b), ws, grad);
    return detail::step_elementwise(w, pre, x, lw, Relu<S>{},
                                    LpPenalty<S>(lam_b, lw.p, ap.p_epsilon), ws, grad);
  }

  /// Mean over the last batch of Σ_i ((z_i + ε_p)^p − ε_p^p) (z is kept in ws.h).
  template <class S>
  static double lp_penalty(const SparseAutoencoder<S>&, const Params& ap, const Workspace<S>& ws,
                           double p) {
    return LpPenalty<S>::mean_value(ws.h, p, ap.p_epsilon);
  }
};

}  // namespace ergo::sae::arch

// SPDX-License-Identifier: MIT
#pragma once

/// \file relu_l1.hpp
/// \brief The ReLU-L1 SAE: z = ReLU(W_enc (x − b_dec) + b_enc), loss L_rec + λ (1/B) Σ z_i, or
/// with decoder_norm_penalty λ (1/B) Σ z_i ‖d_i‖ (Anthropic's "April update").

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

/// \brief ReLU-L1 (registry name "relu_l1", SAELens "standard"): the classic baseline.
struct ReluL1 : Base {
  /// \brief Hyper-parameters of ReLU-L1 (SparseAutoencoderParams::relu_l1).
  struct Params {
    /// Weight the L1 penalty of latent i by ‖d_i‖ (Anthropic "April update"); usually combined
    /// with unit_norm_decoder = false. Default false.
    bool decoder_norm_penalty = false;

    template <class Self, class F>
    static void for_each(Self& self, F&& f) {
      f("decoder_norm_penalty", self.decoder_norm_penalty);
    }
    void check(const std::string& /*who*/, const std::string& /*prefix*/, Index /*d_in*/,
               Index /*d_sae*/) const {}
  };

  static constexpr Traits traits = [] {
    Traits t;
    t.sparse_activation = true;
    t.sparse_by_density = true;
    t.saelens_native = true;
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

  /// The dense step with a ReLU and the (decoder-norm-weighted) L1 penalty.
  template <class S>
  static LossTerms forward_backward(const SparseAutoencoder<S>& sae, const Params& ap,
                                    const InputRef<S>& x, const LossWeights& lw, Workspace<S>& ws,
                                    Weights<S>& grad) {
    const Weights<S>& w = sae.weights();
    const bool pre = sae.params().apply_b_dec_to_input;
    const double lam_b = lw.sparsity * (1.0 / static_cast<double>(x.cols()));
    if (ap.decoder_norm_penalty) {
      const Vector<S> norms = w.decoder.colwise().norm().transpose();  // ‖d_i‖, per latent
      return detail::step_elementwise(w, pre, x, lw, Relu<S>{},
                                      DecoderNormL1Penalty<S>(lam_b, norms.data()), ws, grad);
    }
    return detail::step_elementwise(w, pre, x, lw, Relu<S>{}, L1Penalty<S>(lam_b), ws, grad);
  }
};

}  // namespace ergo::sae::arch

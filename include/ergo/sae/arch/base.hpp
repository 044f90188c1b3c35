// SPDX-License-Identifier: MIT
#pragma once

/// \file base.hpp
/// \brief The interface of an SAE architecture: its traits, the tensors it adds, and the default
/// hooks every architecture class inherits (arch::Base).
///
/// An architecture is a stateless class in namespace ergo::sae::arch, one header each
/// (arch/relu_l1.hpp, arch/topk.hpp, ...), registered by one row of the table in registry.hpp.
/// SparseAutoencoder dispatches to it at run time (by the Architecture enum, or by name through
/// the registry); everything inside a hook is compiled for that architecture. It provides
/// (S is the scalar type; "default" = inherited from arch::Base):
///
/// - `struct Params`: its hyper-parameters, documented fields with defaults; `check(who, prefix,
///   d_in, d_sae)`; `for_each(self, f)` calling f(name, field) for each (files, CLI, Config).
/// - `static constexpr Traits traits`: what the trainer, io and evaluation need to know.
/// - `tensors(params, d_in, d_sae)` (default: none): the tensors it adds to W_enc, b_enc, W_dec,
///   b_dec, as TensorSpec.
/// - `encode(sae, params, x, out, buffers)`: inference codes of a chunk x (d × n) into out (m × n).
/// - `prepare(sae, params, workspace, B)`: sizes its training buffers for batch size B.
/// - `forward_backward(sae, params, x, loss_weights, workspace, grad)`: the training step, the
///   loss terms and every gradient.
/// - `after_step(sae, params, workspace, trainer_params)` (default: nothing): what happens after
///   the optimiser step (clamp θ, update a threshold).
/// - `lp_penalty(sae, params, workspace, p)` (needed with `traits.anneals_p`; default 0): mean
///   L_p^p of the last batch's codes, for the trainer's λ rescaling.
/// - `config(sae, params, config)` (default: nothing): export fields beyond the
///   hyper-parameters (k, threshold).
/// - `encode_sparse(sae, params, x, chunk)` (default: encode): the sparse part of the codes,
///   when the codes have a dense part.
///
/// Training steps are built from the shared kernels: detail::step_elementwise<Activation, Penalty>
/// (activation.hpp, penalty.hpp) for elementwise activations, detail::step_sparse with a
/// selection for sparse codes; see docs/sae.md, "Adding an architecture".

#include "../../core/types.hpp"
#include "../weights.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace ergo::sae {

template <class Scalar_>
class SparseAutoencoder;

/// \brief What the rest of the library needs to know about an architecture.
struct Traits {
  /// Has a hyper-parameter "k" (active latents per sample): CLI --k, Config::k, SAELens k.
  bool has_k = false;
  /// Has a per-latent inference threshold "threshold" (m × 1): exported as SAELens "jumprelu".
  bool has_threshold = false;
  /// Honours SparseAutoencoderParams::apply_b_dec_to_input (encodes x − b_dec); false for an
  /// encoder that sees x itself (the Unmixer).
  bool pre_bias = true;
  /// The training step keeps the codes as sparse lists and uses the sparse kernels
  /// (detail/sparse_step.hpp: sparse decode, AuxK, chunked sparse backward).
  bool sparse_kernels = false;
  /// The training step has a dense and a sparse path and takes the sparse kernels when fewer
  /// than Workspace::sparse_kernel_density of the batch's code entries need a gradient
  /// (detail/elementwise_step.hpp; the Structured SAE's S).
  bool sparse_by_density = false;
  /// The codes are exactly 0 outside a data-dependent active set after the activation (ReLU,
  /// JumpReLU, TopK, ...), so the sparse kernels compute the same step; false for dense codes.
  bool sparse_activation = false;
  /// AuxK applies: the trainer passes α, k_aux and the dead-latent flags (needs sparse_kernels).
  bool aux_k = false;
  /// The penalty is L_p^p: the trainer anneals p and rescales λ (needs lp_penalty).
  bool anneals_p = false;
  /// encode_sparse() differs from encode() (the Structured SAE's sparse branch S); L0 and
  /// firing statistics are measured on it.
  bool sparse_branch = false;
  /// A SAELens file whose architecture is this one's SAELens name loads as this architecture
  /// (ReluL1 for "standard", TopK for "topk", JumpReLU for "jumprelu").
  bool saelens_native = false;
  /// A loss term couples the samples of a batch beyond a mean over samples (the Structured
  /// SAE's nuclear norm of the batch matrix): data-parallel training refuses it (docs/scale.md).
  /// BatchTopK's batch-wide selection and AuxK's normalisation are reduced across ranks instead.
  bool batch_coupled = false;
};

/// \brief A tensor an architecture adds to W_enc, b_enc, W_dec and b_dec.
struct TensorSpec {
  std::string name;       ///< SAELens-style name ("threshold", "W_dense", ...)
  Index rows = 0;         ///< rows (> 0)
  Index cols = 1;         ///< columns (1 for a vector)
  double init = 0.0;      ///< initial value of every entry
  bool trainable = true;  ///< optimised by the trainer (false: set by a hook, e.g. BatchTopK's θ)
  /// Multiplied by s when an input scale s is folded into the weights (a weight applied to x,
  /// like W_enc); false for thresholds and biases after the encoder.
  bool scales_with_input = false;
};

namespace detail {
template <class T>
struct NonDeduced {
  using type = T;
};
}  // namespace detail

/// A read-only d × n (or m × n) block of samples passed to a hook (S is deduced from the SAE).
template <class S>
using InputRef = Eigen::Ref<const Matrix<typename detail::NonDeduced<S>::type>>;
/// A writable block passed to a hook.
template <class S>
using OutputRef = Eigen::Ref<Matrix<typename detail::NonDeduced<S>::type>>;

/// \brief Scratch of SparseAutoencoder::encode, reused across chunks.
template <class Scalar>
struct EncodeBuffers {
  Matrix<Scalar> u, h;            ///< d × n centred input, m × n pre-activations
  std::vector<std::int32_t> idx;  ///< per-sample selection: indices
  std::vector<Scalar> val;        ///< per-sample selection: values
};

namespace arch {

/// \brief Default hooks, inherited by every architecture (a hook an architecture defines hides
/// the default).
struct Base {
  /// No tensors besides W_enc, b_enc, W_dec, b_dec.
  template <class P>
  static std::vector<TensorSpec> tensors(const P&, Index /*d_in*/, Index /*d_sae*/) {
    return {};
  }
  /// Nothing happens after the optimiser step.
  template <class Sae, class P, class Ws, class TP>
  static void after_step(Sae&, const P&, const Ws&, const TP&) {}
  /// No L_p^p penalty (the trainer asks only when traits.anneals_p).
  template <class Sae, class P, class Ws>
  static double lp_penalty(const Sae&, const P&, const Ws&, double /*p*/) {
    return 0.0;
  }
  /// Nothing to export beyond the hyper-parameters.
  template <class Sae, class P>
  static void config(const Sae&, const P&, Config&) {}
  /// The codes have no dense part: the sparse part is the codes.
  template <class Sae, class P, class X>
  static Matrix<typename Sae::Scalar> encode_sparse(const Sae& sae, const P&, const X& x,
                                                    Index chunk) {
    return sae.encode(x, chunk);
  }
};

}  // namespace arch
}  // namespace ergo::sae

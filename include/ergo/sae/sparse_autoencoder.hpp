// SPDX-License-Identifier: MIT
#pragma once

/// \file sparse_autoencoder.hpp
/// \brief The SparseAutoencoder class: weights, inference (encode / decode) and the training
/// pass, dispatched at run time to the architecture's policy class (registry.hpp, arch/*.hpp);
/// definitions in sparse_autoencoder_impl.hpp.

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "../nn/parameter.hpp"
#include "arch/base.hpp"
#include "loss.hpp"
#include "params.hpp"
#include "registry.hpp"
#include "trainer_params.hpp"
#include "weights.hpp"
#include "workspace.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ergo::sae {

/// \brief A sparse autoencoder (or the ConCA linear unmixer) with hand-written forward and
/// backward passes.
///
/// Shapes (samples are columns): x is d × N, codes z are m × N, W_enc is m × d, W_dec is d × m.
/// Forward passes (u = x − b_dec when apply_b_dec_to_input, else u = x):
/// - ReluL1, PAnneal: z = ReLU(W_enc u + b_enc)
/// - TopK: z = ReLU(TopK_k(W_enc u + b_enc)) per sample
/// - BatchTopK (training): the k·B largest positive pre-activations of the batch; (inference):
///   z = h·1[h > θ] with the exported global threshold θ
/// - JumpReLU: z = h·H(h − θ), h = W_enc u + b_enc
/// - Structured: z = S + R, S = ReLU(W_enc u + b_enc), R = W_R u + b_R added to latents 0..h−1
/// - Unmixer: z = Norm(W_enc x + b_enc) (Norm = identity, LayerNorm or GroupNorm + affine)
/// and x̂ = W_dec z + b_dec for all. Each lives in arch/<name>.hpp.
///
/// \code
/// ergo::sae::SparseAutoencoderParams p;
/// p.architecture = ergo::sae::Architecture::TopK;
/// p.d_in = 64; p.d_sae = 256; p.topk.k = 8;
/// ergo::sae::SparseAutoencoder<float> sae(p, /*seed=*/1);
/// ergo::sae::Trainer<float>({}).fit(sae, X);         // X: 64 × N
/// Eigen::MatrixXf Z = sae.encode(X);                  // 256 × N
/// \endcode
template <class Scalar_>
class SparseAutoencoder {
 public:
  using Scalar = Scalar_;
  using Index = ergo::Index;
  using MatrixType = Matrix<Scalar>;

  /// Creates an SAE with random unit-norm decoder columns (seeded) and W_enc = s·W_decᵀ; the
  /// architecture's own tensors start at their TensorSpec::init. Calls params.check().
  explicit SparseAutoencoder(const SparseAutoencoderParams& params, std::uint64_t seed = 0);
  /// Same, drawing the initial weights from `rng`.
  SparseAutoencoder(const SparseAutoencoderParams& params, Rng& rng);

  const SparseAutoencoderParams& params() const { return m_params; }
  Architecture architecture() const { return m_params.architecture; }
  /// The registry row of the architecture (names, default λ, traits).
  const ArchitectureInfo& info() const { return architecture_info(architecture()); }
  const Traits& traits() const { return info().traits; }
  Index d_in() const { return m_params.d_in; }
  Index d_sae() const { return m_params.d_sae; }

  /// The weights (mutable access is for optimisers, tests and loading checkpoints).
  const Weights<Scalar>& weights() const { return m_w; }
  Weights<Scalar>& weights() { return m_w; }
  /// Named copies of the weights (see Weights::to_map) for export.
  std::map<std::string, Matrix<Scalar>> named_weights() const { return m_w.to_map(); }
  /// \brief Replaces one named weight (value shape-checked against the current one); throws
  /// InvalidArgument naming this architecture's weights for any other name.
  void set_named_weight(const std::string& name, const Eigen::Ref<const Matrix<Scalar>>& value);
  /// Configuration record (architecture names, sizes, k, threshold, normalisation factor and
  /// the architecture's hyper-parameters).
  Config config() const;

  /// BatchTopK inference threshold (0 until the trainer has estimated it; θ_0 for JumpReLU, 0
  /// for an architecture without a threshold).
  double batch_threshold() const {
    return m_w.has_extra("threshold") ? static_cast<double>(m_w.extra("threshold")(0)) : 0.0;
  }
  /// Sets every entry of the threshold to t; throws for an architecture without one.
  void set_batch_threshold(double t) { m_w.extra("threshold").setConstant(static_cast<Scalar>(t)); }
  /// Input scale s the SAE was trained with (already folded into the weights).
  double normalization_factor() const { return m_norm_factor; }
  /// \brief Records that an input scale s > 0 is already folded into the weights (for loading
  /// a saved SAE; fold_input_scale folds and records).
  void set_normalization_factor(double s) {
    check_positive("SparseAutoencoder::set_normalization_factor", "s", s);
    m_norm_factor = s;
  }

  /// \brief Codes of the columns of x (d × N) → m × N, in inference mode (BatchTopK uses its
  /// threshold). Works in chunks of `chunk` columns.
  Matrix<Scalar> encode(const Eigen::Ref<const Matrix<Scalar>>& x, Index chunk = 4096) const;
  /// \brief The sparse part of the codes (m × N): the Structured SAE's S = ReLU(W_enc u + b_enc)
  /// without its dense branch R; encode(x) for every other architecture. L0 is measured on it.
  Matrix<Scalar> encode_sparse(const Eigen::Ref<const Matrix<Scalar>>& x, Index chunk = 4096) const;
  /// \brief x̂ = W_dec z + b_dec for codes z (m × N) → d × N.
  Matrix<Scalar> decode(const Eigen::Ref<const Matrix<Scalar>>& z) const;
  /// \brief decode(encode(x)).
  Matrix<Scalar> reconstruct(const Eigen::Ref<const Matrix<Scalar>>& x) const {
    return decode(encode(x));
  }

  /// \brief Loss and its gradient for a batch x (d × B) in training mode.
  ///
  /// Writes every gradient tensor of `grad` (shaped like weights(); see make_gradients) and
  /// returns the loss terms. Unconstrained gradient: the decoder-norm projection is the
  /// trainer's job (project_decoder_gradient). The workspace is (re)sized on first use.
  /// JumpReLU's θ gradient is the straight-through pseudo-gradient (rectangle kernel).
  LossTerms forward_backward(const Eigen::Ref<const Matrix<Scalar>>& x, const LossWeights& w,
                             Workspace<Scalar>& ws, Weights<Scalar>& grad) const;
  /// \brief Loss terms only (allocates a workspace; for tests and diagnostics).
  LossTerms loss(const Eigen::Ref<const Matrix<Scalar>>& x, const LossWeights& w) const {
    Workspace<Scalar> ws;
    Weights<Scalar> g = make_gradients();
    return forward_backward(x, w, ws, g);
  }
  /// Zero gradients shaped like the weights.
  Weights<Scalar> make_gradients() const { return Weights<Scalar>::zeros_like(m_w); }
  /// \brief The trainable tensors as an nn::ParameterList over (weights, grad) for Adam.
  /// Names: W_enc, b_enc, W_dec, b_dec, then the architecture's trainable tensors: threshold
  /// (JumpReLU), W_dense/b_dense (Structured), norm_weight/norm_bias (Unmixer with a
  /// normalisation).
  nn::ParameterList<Scalar> parameters(Weights<Scalar>& grad);

  /// Removes from each decoder-gradient column its component along the (unit) decoder column.
  void project_decoder_gradient(Weights<Scalar>& grad) const;
  /// Rescales every decoder column to unit L2 norm (columns of norm 0 are left alone).
  void normalize_decoder();
  /// \brief Folds an input scale s into the weights: an SAE trained on s·x becomes one that
  /// takes x and returns the same codes, with x̂ in the units of x (W_enc ← s W_enc, and every
  /// tensor with TensorSpec::scales_with_input such as W_R; W_dec ← W_dec / s, b_dec ← b_dec / s;
  /// as SAELens does). Exact for every architecture. Records s in config().normalization_factor.
  void fold_input_scale(double s);

  /// \brief The architecture's hook after an optimiser step (JumpReLU: θ ← max(θ, 0);
  /// BatchTopK: the threshold's moving average), from the workspace of that step.
  void after_step(const Workspace<Scalar>& ws, const TrainerParams& tp);
  /// Mean over the batch of Σ_i ((z_i + ε_p)^p − ε_p^p) for the sparse codes left in `ws` by the
  /// last forward_backward (PAnneal / Structured; 0 for others); used to rescale λ when p
  /// switches.
  double lp_penalty(const Workspace<Scalar>& ws, double p) const;

  /// The tensors the architecture adds (with the current hyper-parameters and shape).
  std::vector<TensorSpec> extra_tensor_specs() const;

 private:
  void init(Rng& rng);
  void prepare(Workspace<Scalar>& ws, Index B) const;

  SparseAutoencoderParams m_params;
  Weights<Scalar> m_w;
  double m_norm_factor = 1.0;
};

using SparseAutoencoderf = SparseAutoencoder<float>;
using SparseAutoencoderd = SparseAutoencoder<double>;

}  // namespace ergo::sae

#include "sparse_autoencoder_impl.hpp"

// SPDX-License-Identifier: MIT
#pragma once

/// \file sparse_autoencoder.hpp
/// \brief The SparseAutoencoder class: weights, inference (encode / decode), and the
/// hand-written forward and backward pass of every architecture (definitions in
/// sparse_autoencoder_impl.hpp).

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "../nn/parameter.hpp"
#include "detail/numerics.hpp"
#include "detail/sparse_codes.hpp"
#include "params.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ergo::sae {

/// \brief All trainable tensors of an SAE (also used, with the same shapes, for gradients).
///
/// Which members are non-empty depends on the architecture: every SAE has the encoder (m × d),
/// encoder bias (m), decoder (d × m, columns = dictionary atoms) and decoder bias (d); JumpReLU
/// and BatchTopK have `threshold` (m); Structured has the dense branch `dense` (h × d) and
/// `dense_bias` (h); the Unmixer with a normalisation has `norm_weight` and `norm_bias` (m).
template <class Scalar_>
struct SaeWeights {
  using Scalar = Scalar_;
  Matrix<Scalar> encoder;       ///< W_enc, m × d
  Vector<Scalar> encoder_bias;  ///< b_enc, m
  Matrix<Scalar> decoder;       ///< W_dec, d × m
  Vector<Scalar> decoder_bias;  ///< b_dec, d
  Vector<Scalar> threshold;     ///< θ, m (JumpReLU: trained; BatchTopK: inference threshold)
  Matrix<Scalar> dense;         ///< W_R, h × d (Structured)
  Vector<Scalar> dense_bias;    ///< b_R, h (Structured)
  Vector<Scalar> norm_weight;   ///< per-latent gain after LayerNorm/GroupNorm, m (Unmixer)
  Vector<Scalar> norm_bias;     ///< per-latent shift after LayerNorm/GroupNorm, m (Unmixer)

  /// Zero tensors with the shapes of `o`.
  static SaeWeights zeros_like(const SaeWeights& o) {
    SaeWeights g;
    g.encoder = Matrix<Scalar>::Zero(o.encoder.rows(), o.encoder.cols());
    g.encoder_bias = Vector<Scalar>::Zero(o.encoder_bias.size());
    g.decoder = Matrix<Scalar>::Zero(o.decoder.rows(), o.decoder.cols());
    g.decoder_bias = Vector<Scalar>::Zero(o.decoder_bias.size());
    g.threshold = Vector<Scalar>::Zero(o.threshold.size());
    g.dense = Matrix<Scalar>::Zero(o.dense.rows(), o.dense.cols());
    g.dense_bias = Vector<Scalar>::Zero(o.dense_bias.size());
    g.norm_weight = Vector<Scalar>::Zero(o.norm_weight.size());
    g.norm_bias = Vector<Scalar>::Zero(o.norm_bias.size());
    return g;
  }
  /// The non-empty tensors under SAELens-style names: "W_enc" (m × d), "b_enc" (m × 1), "W_dec"
  /// (d × m), "b_dec" (d × 1), "threshold" (m × 1), "W_dense" (h × d), "b_dense" (h × 1),
  /// "norm_weight", "norm_bias" (m × 1).
  std::map<std::string, Matrix<Scalar>> to_map() const {
    std::map<std::string, Matrix<Scalar>> out;
    auto put = [&](const char* name, const auto& t) {
      if (t.size() > 0) out[name] = t;
    };
    put("W_enc", encoder);
    put("b_enc", encoder_bias);
    put("W_dec", decoder);
    put("b_dec", decoder_bias);
    put("threshold", threshold);
    put("W_dense", dense);
    put("b_dense", dense_bias);
    put("norm_weight", norm_weight);
    put("norm_bias", norm_bias);
    return out;
  }
};

/// \brief Preallocated buffers of a training step (reused across steps; allocated on the first
/// step and whenever the batch size changes). Opaque to users; pass the same one every step.
template <class Scalar>
struct SaeWorkspace {
  Index batch = -1;                   ///< batch size the buffers were sized for
  Matrix<Scalar> u, xhat, dxhat;      ///< d × B: centred input, reconstruction, ∂L/∂x̂
  Matrix<Scalar> h, z, dz;            ///< m × B: pre-activations, codes, ∂L/∂z (as needed)
  Matrix<Scalar> r, dr;               ///< h_R × B: Structured dense branch and its gradient
  Matrix<Scalar> nrm;                 ///< m × B: Unmixer normalised pre-activations
  Matrix<Scalar> rstd;                ///< groups × B: Unmixer reciprocal standard deviations
  Matrix<Scalar> enc_grad_t;          ///< d × m: transposed sparse encoder gradient (TopK)
  Matrix<Scalar> aux_target, aux_dhat;  ///< d × B: AuxK residual target and its decode grad
  detail::SparseCodes<Scalar> codes;  ///< TopK / BatchTopK active latents
  detail::SparseCodes<Scalar> aux;    ///< AuxK active dead latents
  std::vector<char> fired;            ///< m: latent fired (> 0) in the last batch
  std::vector<double> thread_acc;     ///< per-thread accumulators (threads × m)
  std::vector<Index> col_gt, col_eq;  ///< BatchTopK per-column counts and offsets
  std::vector<Scalar> sample, cand_val;  ///< BatchTopK threshold sample and candidate values
  std::vector<Index> cand_pos;          ///< BatchTopK candidate positions (b·m + i)
  std::vector<std::pair<Scalar, Index>> cand_work;  ///< BatchTopK nth_element scratch
  std::vector<std::int32_t> dead_list;      ///< AuxK dead latent indices
  std::vector<Scalar> scratch;        ///< per-thread gather buffers (AuxK)
  detail::NuclearWorkspace nuclear;   ///< Structured nuclear-norm factorisations
  double min_positive = 0.0;          ///< BatchTopK: smallest selected positive activation
  bool aux_active = false;            ///< AuxK entries were produced for the last batch
};

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
/// and x̂ = W_dec z + b_dec for all.
///
/// \code
/// ergo::sae::SaeParams p;
/// p.architecture = ergo::sae::Architecture::TopK;
/// p.d_in = 64; p.d_sae = 256; p.k = 8;
/// ergo::sae::SparseAutoencoder<float> sae(p, /*seed=*/1);
/// ergo::sae::SaeTrainer<float>({}).fit(sae, X);      // X: 64 × N
/// Eigen::MatrixXf Z = sae.encode(X);                  // 256 × N
/// \endcode
template <class Scalar_>
class SparseAutoencoder {
 public:
  using Scalar = Scalar_;
  using Index = ergo::Index;
  using MatrixType = Matrix<Scalar>;

  /// Creates an SAE with random unit-norm decoder columns (seeded) and W_enc = s·W_decᵀ.
  explicit SparseAutoencoder(const SaeParams& params, std::uint64_t seed = 0);
  /// Same, drawing the initial weights from `rng`.
  SparseAutoencoder(const SaeParams& params, Rng& rng);

  const SaeParams& params() const { return m_params; }
  Architecture architecture() const { return m_params.architecture; }
  Index d_in() const { return m_params.d_in; }
  Index d_sae() const { return m_params.d_sae; }

  /// The weights (mutable access is for optimisers, tests and loading checkpoints).
  const SaeWeights<Scalar>& weights() const { return m_w; }
  SaeWeights<Scalar>& weights() { return m_w; }
  /// Named copies of the weights (see SaeWeights::to_map) for export.
  std::map<std::string, Matrix<Scalar>> named_weights() const { return m_w.to_map(); }
  /// Replaces one named weight (shape-checked against the current one).
  void set_named_weight(const std::string& name, const Eigen::Ref<const Matrix<Scalar>>& value);
  /// Configuration record (architecture names, sizes, k, threshold, normalisation factor).
  SaeConfig config() const;

  /// BatchTopK inference threshold (0 until the trainer has estimated it).
  double batch_threshold() const {
    return m_w.threshold.size() > 0 ? static_cast<double>(m_w.threshold(0)) : 0.0;
  }
  void set_batch_threshold(double t) { m_w.threshold.setConstant(static_cast<Scalar>(t)); }
  /// Input scale s the SAE was trained with (already folded into the weights).
  double normalization_factor() const { return m_norm_factor; }

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
                             SaeWorkspace<Scalar>& ws, SaeWeights<Scalar>& grad) const;
  /// \brief Loss terms only (allocates a workspace; for tests and diagnostics).
  LossTerms loss(const Eigen::Ref<const Matrix<Scalar>>& x, const LossWeights& w) const {
    SaeWorkspace<Scalar> ws;
    SaeWeights<Scalar> g = make_gradients();
    return forward_backward(x, w, ws, g);
  }
  /// Zero gradients shaped like the trainable weights.
  SaeWeights<Scalar> make_gradients() const;
  /// \brief The trainable tensors as an nn::ParameterList over (weights, grad) for Adam.
  /// Names: W_enc, b_enc, W_dec, b_dec, and threshold (JumpReLU), W_dense/b_dense
  /// (Structured), norm_weight/norm_bias (Unmixer with a normalisation).
  nn::ParameterList<Scalar> parameters(SaeWeights<Scalar>& grad);

  /// Removes from each decoder-gradient column its component along the (unit) decoder column.
  void project_decoder_gradient(SaeWeights<Scalar>& grad) const;
  /// Rescales every decoder column to unit L2 norm (columns of norm 0 are left alone).
  void normalize_decoder();
  /// \brief Folds an input scale s into the weights: an SAE trained on s·x becomes one that
  /// takes x and returns the same codes, with x̂ in the units of x (W_enc ← s W_enc,
  /// W_R ← s W_R, W_dec ← W_dec / s, b_dec ← b_dec / s; as SAELens does). Exact for every
  /// architecture. Records s in config().normalization_factor.
  void fold_input_scale(double s);

  /// Mean over the batch of Σ_i ((z_i + ε_p)^p − ε_p^p) for the sparse codes left in `ws` by the
  /// last forward_backward (PAnneal / Structured); used to rescale λ when p switches.
  double lp_penalty(const SaeWorkspace<Scalar>& ws, double p) const;

 private:
  void init(Rng& rng);
  void prepare(SaeWorkspace<Scalar>& ws, Index B) const;
  LossTerms step_dense(const Eigen::Ref<const Matrix<Scalar>>& x, const LossWeights& w,
                       SaeWorkspace<Scalar>& ws, SaeWeights<Scalar>& grad) const;
  LossTerms step_sparse(const Eigen::Ref<const Matrix<Scalar>>& x, const LossWeights& w,
                        SaeWorkspace<Scalar>& ws, SaeWeights<Scalar>& grad) const;
  LossTerms step_structured(const Eigen::Ref<const Matrix<Scalar>>& x, const LossWeights& w,
                            SaeWorkspace<Scalar>& ws, SaeWeights<Scalar>& grad) const;
  LossTerms step_unmixer(const Eigen::Ref<const Matrix<Scalar>>& x, const LossWeights& w,
                         SaeWorkspace<Scalar>& ws, SaeWeights<Scalar>& grad) const;
  void select_batch_topk(SaeWorkspace<Scalar>& ws, Index B) const;
  double aux_forward(const Eigen::Ref<const Matrix<Scalar>>& x, const LossWeights& w,
                     SaeWorkspace<Scalar>& ws, Index B) const;
  void sparse_backward(SaeWorkspace<Scalar>& ws, SaeWeights<Scalar>& grad, bool with_aux) const;
  double finish_reconstruction(const Eigen::Ref<const Matrix<Scalar>>& x,
                               SaeWorkspace<Scalar>& ws, LossTerms& t) const;
  void dense_decode_backward(const Eigen::Ref<const Matrix<Scalar>>& x, const Matrix<Scalar>& Z,
                             SaeWorkspace<Scalar>& ws, LossTerms& t,
                             SaeWeights<Scalar>& grad) const;

  SaeParams m_params;
  SaeWeights<Scalar> m_w;
  double m_norm_factor = 1.0;
};

using SparseAutoencoderf = SparseAutoencoder<float>;
using SparseAutoencoderd = SparseAutoencoder<double>;

}  // namespace ergo::sae

#include "sparse_autoencoder_impl.hpp"

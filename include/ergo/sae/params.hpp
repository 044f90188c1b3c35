// SPDX-License-Identifier: MIT
#pragma once

/// \file params.hpp
/// \brief Architectures, hyper-parameters, named weights and loss terms of ergo's sparse
/// autoencoders (SAEs).
///
/// Samples are columns: activations X are d × B, codes Z are m × B, the encoder W_enc is m × d
/// and the decoder W_dec is d × m (its columns are the dictionary atoms). SAELens stores W_enc as
/// [d_in, d_sae] and W_dec as [d_sae, d_in] in C order; those buffers are exactly our
/// column-major m × d and d × m matrices, so checkpoints map over without copies.

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <map>
#include <string>
#include <vector>

namespace ergo::sae {

/// \brief SAE architecture (the activation and the sparsity penalty it is trained with).
enum class Architecture {
  ReluL1,      ///< z = ReLU(W_enc(x − b_dec) + b_enc); penalty λ Σ z_i (optionally λ Σ z_i‖d_i‖)
  TopK,        ///< keep the k largest pre-activations of each sample (then ReLU); no penalty
  BatchTopK,   ///< keep the k·B largest positive pre-activations of the batch; exports a threshold
  JumpReLU,    ///< z = h·H(h − θ) with per-latent θ; penalty λ Σ H(h − θ) (L0) via a rectangle STE
  PAnneal,     ///< ReLU with penalty λ_t Σ z_i^p, p annealed from 1 towards 0 (λ rescaled)
  Structured,  ///< z = S + R: S sparse ReLU branch (p-annealed), R dense branch with γ‖R‖_* (paper)
  Unmixer      ///< ConCA linear unmixer: ẑ = Norm(W_enc x + b_enc), penalty λ Σ |g(ẑ)|
};

/// \brief Name of an architecture: "relu_l1", "topk", "batchtopk", "jumprelu", "p_anneal",
/// "structured", "unmixer".
inline const char* to_string(Architecture a) {
  switch (a) {
    case Architecture::ReluL1: return "relu_l1";
    case Architecture::TopK: return "topk";
    case Architecture::BatchTopK: return "batchtopk";
    case Architecture::JumpReLU: return "jumprelu";
    case Architecture::PAnneal: return "p_anneal";
    case Architecture::Structured: return "structured";
    case Architecture::Unmixer: return "unmixer";
  }
  return "unknown";
}

/// \brief Parses a name produced by to_string(Architecture); throws InvalidArgument otherwise.
inline Architecture architecture_from_string(const std::string& s) {
  for (Architecture a : {Architecture::ReluL1, Architecture::TopK, Architecture::BatchTopK,
                         Architecture::JumpReLU, Architecture::PAnneal, Architecture::Structured,
                         Architecture::Unmixer})
    if (s == to_string(a)) return a;
  throw_invalid("architecture_from_string", "s",
                "one of relu_l1, topk, batchtopk, jumprelu, p_anneal, structured, unmixer", s);
}

/// \brief The architecture name SAELens uses for an SAE that computes the same inference
/// function, or "" when SAELens has none ("standard", "topk", "jumprelu"; BatchTopK is exported
/// as "jumprelu" with its threshold, as SAELens does; p-annealing infers like "standard").
inline const char* saelens_architecture(Architecture a) {
  switch (a) {
    case Architecture::ReluL1: return "standard";
    case Architecture::TopK: return "topk";
    case Architecture::BatchTopK: return "jumprelu";
    case Architecture::JumpReLU: return "jumprelu";
    case Architecture::PAnneal: return "standard";
    default: return "";
  }
}

/// \brief The function g of the ConCA unmixer's sparsity penalty λ Σ |g(ẑ)|.
enum class UnmixerActivation {
  Softplus,    ///< g(u) = log(1 + e^u)
  EluPlusOne,  ///< g(u) = ELU(u) + 1 = u + 1 (u > 0), e^u (u <= 0)
  Selu,        ///< g(u) = SELU(u) = s·u (u > 0), s·α(e^u − 1) (u <= 0); penalty on |g|
  ClampedExp   ///< g(u) = exp(min(u, c)), c = SaeParams::exp_clamp
};
inline const char* to_string(UnmixerActivation g) {
  switch (g) {
    case UnmixerActivation::Softplus: return "softplus";
    case UnmixerActivation::EluPlusOne: return "elu+1";
    case UnmixerActivation::Selu: return "selu";
    case UnmixerActivation::ClampedExp: return "exp";
  }
  return "unknown";
}

/// \brief Normalisation after the unmixer's linear encoder.
enum class UnmixerNorm {
  None,       ///< ẑ = W_enc x + b_enc
  LayerNorm,  ///< normalise each code over its m latents, then a learned per-latent affine map
  GroupNorm   ///< the same over `groups` contiguous blocks of m / groups latents
};
inline const char* to_string(UnmixerNorm n) {
  switch (n) {
    case UnmixerNorm::None: return "none";
    case UnmixerNorm::LayerNorm: return "layernorm";
    case UnmixerNorm::GroupNorm: return "groupnorm";
  }
  return "unknown";
}

/// \brief Shape and architecture hyper-parameters of a SparseAutoencoder (training settings are
/// in SaeTrainParams). Every field has a default; check() validates them.
struct SaeParams {
  Architecture architecture = Architecture::TopK;  ///< which SAE
  Index d_in = 0;   ///< input dimension d (> 0)
  Index d_sae = 0;  ///< number of latents m (> 0)
  /// TopK / BatchTopK: active latents per sample (per sample on average for BatchTopK), in [1, m].
  Index k = 32;
  /// ReluL1: weight the L1 penalty of latent i by ‖d_i‖ (Anthropic "April update"); usually
  /// combined with unit_norm_decoder = false.
  bool decoder_norm_penalty = false;
  /// Keep decoder columns at unit norm (the trainer removes the gradient component parallel to
  /// each column and renormalises after every step). Default true.
  bool unit_norm_decoder = true;
  /// Subtract b_dec from the input before encoding (pre-encoder bias). Default true; the
  /// Unmixer ignores it (its encoder is purely linear, as in ConCA).
  bool apply_b_dec_to_input = true;
  /// Encoder initialisation W_enc = encoder_init_scale · W_decᵀ (> 0). Default 1.
  double encoder_init_scale = 1.0;
  /// JumpReLU: initial threshold θ_i (> 0). Default 0.01 (SAELens "step" mode).
  double init_threshold = 0.01;
  /// JumpReLU: bandwidth ε of the rectangle kernel K(u) = 1[|u| < 1/2] (> 0). Default 0.01.
  double bandwidth = 0.01;
  /// PAnneal / Structured: ε_p in the penalty (z + ε_p)^p − ε_p^p, which keeps the gradient
  /// p(z + ε_p)^{p−1} finite for p < 1 (> 0). Default 1e-6.
  double p_epsilon = 1e-6;
  /// Structured: width h of the dense branch R (its rows add to latents 0..h−1), in [1, m];
  /// -1 means h = m (z = S + R over every latent, paper.md §5.5). Default -1.
  Index dense_width = -1;
  /// Unmixer: the function g in the penalty λ Σ|g(ẑ)|. Default softplus.
  UnmixerActivation unmixer_activation = UnmixerActivation::Softplus;
  /// Unmixer: normalisation after the linear encoder. Default none.
  UnmixerNorm unmixer_norm = UnmixerNorm::None;
  /// Unmixer GroupNorm: number of groups (divides m). Default 32 (falls back to gcd-free check).
  Index groups = 32;
  /// Unmixer: clamp c of the clamped exponential g(u) = exp(min(u, c)). Default 10.
  double exp_clamp = 10.0;
  /// Unmixer LayerNorm/GroupNorm: variance guard ε (> 0). Default 1e-5.
  double norm_eps = 1e-5;

  /// Width of the Structured dense branch with -1 resolved.
  Index resolved_dense_width() const { return dense_width < 0 ? d_sae : dense_width; }

  void check() const {
    const char* who = "SaeParams::check";
    check_arg(d_in > 0, who, "d_in", "> 0", d_in);
    check_arg(d_sae > 0, who, "d_sae", "> 0", d_sae);
    check_arg(d_sae <= Index(2147483647), who, "d_sae", "< 2^31", d_sae);
    if (architecture == Architecture::TopK || architecture == Architecture::BatchTopK)
      check_arg(k >= 1 && k <= d_sae, who, "k", ergo::detail::str_cat("a value in [1, d_sae = ", d_sae, "]"),
                k);
    check_positive(who, "encoder_init_scale", encoder_init_scale);
    check_positive(who, "init_threshold", init_threshold);
    check_positive(who, "bandwidth", bandwidth);
    check_positive(who, "p_epsilon", p_epsilon);
    check_positive(who, "norm_eps", norm_eps);
    if (architecture == Architecture::Structured)
      check_arg(dense_width == -1 || (dense_width >= 1 && dense_width <= d_sae), who,
                "dense_width", ergo::detail::str_cat("-1 or a value in [1, d_sae = ", d_sae, "]"),
                dense_width);
    if (architecture == Architecture::Unmixer && unmixer_norm == UnmixerNorm::GroupNorm)
      check_arg(groups >= 1 && d_sae % groups == 0, who, "groups",
                ergo::detail::str_cat("a divisor of d_sae = ", d_sae), groups);
  }
};

/// \brief Configuration record for export (io writes it as SAELens-style cfg.json).
struct SaeConfig {
  std::string architecture;          ///< ergo's name (to_string(Architecture))
  std::string saelens_architecture;  ///< SAELens equivalent, or "" if none
  Index d_in = 0;
  Index d_sae = 0;
  Index k = 0;                        ///< TopK/BatchTopK k, else 0
  double threshold = 0.0;            ///< BatchTopK global inference threshold, else 0
  /// Input scale s used during training (x' = s·x, so that E‖x'‖ = √d); 1 if none.
  double normalization_factor = 1.0;
  /// True when s has been folded into the weights (the SAE then takes raw x); the trainer
  /// always folds, so an exported SAE needs no input scaling.
  bool normalization_folded = true;
  bool apply_b_dec_to_input = true;
  std::map<std::string, std::string> extra;  ///< architecture details (activation, norm, ...)
};

/// \brief Per-step weights of the loss terms (set by the trainer from its schedules).
struct LossWeights {
  double sparsity = 0.0;  ///< λ_t: L1 / L0 / L_p / g-penalty coefficient (after warm-up)
  double p = 1.0;         ///< current exponent of the L_p^p penalty (PAnneal, Structured)
  double nuclear = 0.0;   ///< γ: nuclear-norm weight of the Structured dense branch
  double aux = 0.0;       ///< α: AuxK weight (TopK / BatchTopK); 0 disables AuxK
  Index aux_k = 0;        ///< AuxK k_aux (> 0 when aux > 0)
  const std::vector<char>* dead = nullptr;  ///< per-latent dead flags for AuxK (size m)
};

/// \brief The value of each loss term for one batch (averaged over its B samples).
struct LossTerms {
  double total = 0.0;           ///< the optimised objective
  double reconstruction = 0.0;  ///< (1/B) Σ_b ‖x_b − x̂_b‖²
  double sparsity = 0.0;        ///< weighted penalty (λ_t · ...)
  double nuclear = 0.0;         ///< (γ/B) ‖R‖_*
  double aux = 0.0;             ///< α · L_aux
  double l0 = 0.0;              ///< mean number of non-zero codes per sample (S for Structured)
  double batch_variance = 0.0;  ///< (1/B) Σ_b ‖x_b − x̄‖² (batch mean x̄), for a batch FVU
};

}  // namespace ergo::sae

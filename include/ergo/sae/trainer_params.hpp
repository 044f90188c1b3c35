// SPDX-License-Identifier: MIT
#pragma once

/// \file trainer_params.hpp
/// \brief TrainerParams: the training hyper-parameters of sae::Trainer (optimiser, schedules,
/// AuxK, dead latents, BatchTopK threshold, p-annealing, nuclear norm, input scaling).

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../nn/schedule.hpp"

#include <cstdint>

namespace ergo::sae {

/// \brief Training hyper-parameters of sae::Trainer (defaults follow the SAE libraries
/// SAELens, dictionary_learning and sparsify; see docs/sae.md for the table). check() throws
/// InvalidArgument naming the field.
struct TrainerParams {
  Index steps = 2000;       ///< optimisation steps (> 0)
  Index batch_size = 4096;  ///< samples per step (> 0; the data must have at least this many)
  double lr = 2e-4;         ///< base Adam learning rate (> 0)
  double beta1 = 0.9;       ///< Adam β1, [0, 1)
  double beta2 = 0.999;     ///< Adam β2, [0, 1)
  double adam_eps = 1e-8;   ///< Adam ε (> 0)
  double lr_warmup_fraction = 0.01;  ///< linear lr warm-up over this fraction of steps, [0, 1]
  nn::Decay lr_decay = nn::Decay::Linear;  ///< decay after decay start (Constant, Linear, Cosine)
  double lr_decay_start_fraction = 0.8;    ///< decay runs over the last 20 % of steps, [0, 1)
  double lr_min_ratio = 0.0;               ///< final lr / base lr, [0, 1]
  /// λ of the sparsity penalty (>= 0); negative means the architecture's default
  /// (default_sparsity_coefficient, from the registry).
  double sparsity_coefficient = -1.0;
  double sparsity_warmup_fraction = 0.05;  ///< λ ramps linearly from 0 over this fraction, [0, 1]
  double grad_clip = 1.0;                  ///< global gradient-norm clip (<= 0 disables)
  /// AuxK weight α (TopK / BatchTopK; 0 disables). Default 1/32 (OpenAI, dictionary_learning).
  double aux_coefficient = 1.0 / 32.0;
  Index aux_k = -1;  ///< AuxK k_aux; -1 means d_in / 2 (at least 1)
  /// A latent is dead when it has not fired for this many samples (counted in samples, not
  /// steps). Default 10,000,000 (OpenAI, dictionary_learning, sparsify).
  Index dead_window_samples = 10000000;
  double threshold_ema = 0.01;  ///< BatchTopK: θ ← (1−a)θ + a·min positive code, (0, 1]
  double p_start = 1.0;         ///< PAnneal / Structured: initial p, (0, 1]
  double p_end = 0.2;           ///< final p, (0, p_start]; 0.2 avoids the degenerate p = 0
  double anneal_start_fraction = 0.5;  ///< p starts changing at this fraction of steps, [0, 1)
  Index p_updates = 10;                ///< number of p switches (>= 1), equally spaced to the end
  Index p_rescale_window = 10;         ///< batches averaged to rescale λ at a switch (>= 1)
  /// Structured: γ of (γ/√B)‖R‖_* (>= 0). Dividing by √B (not B) makes the term independent of
  /// the batch size, since ‖R‖_* grows like √B for a fixed per-sample code distribution, and puts
  /// γ on the scale of a per-sample L1 weight. Default 10 (≈ 3λ): with γ ≲ λ the dense branch
  /// alone reconstructs the input and the sparse branch dies (apps/sae_concepts).
  double nuclear_coefficient = 10.0;
  bool normalize_input = true;  ///< scale inputs so that E‖x‖ = √d, fold s into the weights after
  Index normalization_samples = 100000;  ///< samples used to estimate s (> 0)
  bool init_decoder_bias = true;  ///< b_dec ← geometric median of a sample (else keep b_dec)
  Index geometric_median_samples = 4096;    ///< sample size for the median (> 0)
  Index geometric_median_iterations = 100;  ///< Weiszfeld iterations (> 0)
  std::uint64_t seed = 0;  ///< data order and subsets (the SAE's init has its own seed)
  int threads = 0;         ///< threads for Eigen and ergo loops during fit (0 = leave as set)
  Index log_every = 100;   ///< steps between callback events and history rows (> 0)

  void check() const {
    const char* who = "TrainerParams::check";
    check_arg(steps > 0, who, "steps", "> 0", steps);
    check_arg(batch_size > 0, who, "batch_size", "> 0", batch_size);
    check_positive(who, "lr", lr);
    check_arg(beta1 >= 0 && beta1 < 1, who, "beta1", "a value in [0, 1)", beta1);
    check_arg(beta2 >= 0 && beta2 < 1, who, "beta2", "a value in [0, 1)", beta2);
    check_positive(who, "adam_eps", adam_eps);
    check_range(who, "lr_warmup_fraction", lr_warmup_fraction, 0.0, 1.0);
    check_arg(lr_decay_start_fraction >= 0 && lr_decay_start_fraction < 1, who,
              "lr_decay_start_fraction", "a value in [0, 1)", lr_decay_start_fraction);
    check_range(who, "lr_min_ratio", lr_min_ratio, 0.0, 1.0);
    check_range(who, "sparsity_warmup_fraction", sparsity_warmup_fraction, 0.0, 1.0);
    check_arg(aux_coefficient >= 0, who, "aux_coefficient", ">= 0", aux_coefficient);
    check_arg(aux_k == -1 || aux_k > 0, who, "aux_k", "-1 or > 0", aux_k);
    check_arg(dead_window_samples > 0, who, "dead_window_samples", "> 0", dead_window_samples);
    check_arg(threshold_ema > 0 && threshold_ema <= 1, who, "threshold_ema", "a value in (0, 1]",
              threshold_ema);
    check_arg(p_start > 0 && p_start <= 1, who, "p_start", "a value in (0, 1]", p_start);
    check_arg(p_end > 0 && p_end <= p_start, who, "p_end", "a value in (0, p_start]", p_end);
    check_arg(anneal_start_fraction >= 0 && anneal_start_fraction < 1, who, "anneal_start_fraction",
              "a value in [0, 1)", anneal_start_fraction);
    check_arg(p_updates >= 1, who, "p_updates", ">= 1", p_updates);
    check_arg(p_rescale_window >= 1, who, "p_rescale_window", ">= 1", p_rescale_window);
    check_arg(nuclear_coefficient >= 0, who, "nuclear_coefficient", ">= 0", nuclear_coefficient);
    check_arg(normalization_samples > 0, who, "normalization_samples", "> 0",
              normalization_samples);
    check_arg(geometric_median_samples > 0, who, "geometric_median_samples", "> 0",
              geometric_median_samples);
    check_arg(geometric_median_iterations > 0, who, "geometric_median_iterations", "> 0",
              geometric_median_iterations);
    check_arg(threads >= 0, who, "threads", ">= 0", threads);
    check_arg(log_every > 0, who, "log_every", "> 0", log_every);
  }
};

}  // namespace ergo::sae

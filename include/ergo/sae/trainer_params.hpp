// SPDX-License-Identifier: MIT
#pragma once

/// \file trainer_params.hpp
/// \brief TrainerParams: the training hyper-parameters of sae::Trainer (optimiser, schedules,
/// AuxK, dead latents, BatchTopK threshold, p-annealing, nuclear norm, input scaling).

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../nn/schedule.hpp"
#include "workspace.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

namespace ergo::sae {

struct SparseAutoencoderParams;

/// \brief Training hyper-parameters of sae::Trainer (defaults follow the SAE libraries
/// SAELens, dictionary_learning and sparsify; see docs/sae.md for the table). check() throws
/// InvalidArgument naming the field.
///
/// Settings that depend on the SAE's width or on the run's length are "auto" by default (a
/// negative value) and are replaced by resolved(), which the trainer calls at the start of a run
/// (so a user who sets a value gets exactly that value):
///
/// | field | auto rule | why |
/// |---|---|---|
/// | lr | 2e-4 / √(d_sae / 16384) | the 1/√width scaling of the TopK SAE papers (Gao et al. 2024),
/// dictionary_learning and sparsify; 1.13e-3 at d_sae = 512 | | lr_warmup_fraction | min(1000,
/// ⌈steps/20⌉) steps | dictionary_learning's 1000 steps, at most 5 % of a short run | |
/// sparsity_warmup_fraction | min(2000, ⌈steps/10⌉) steps | dictionary_learning's 2000 steps, at
/// most 10 % of a short run | | dead_window_samples | min(10⁷, max(batch, ⌈steps·batch/10⌉)) | 10⁷
/// samples (OpenAI, dictionary_learning, sparsify), at most a tenth of the samples the run sees |
/// | threshold_start_fraction | min(1000, ⌈steps/10⌉) steps | BatchTopK: dictionary_learning starts
/// the threshold average at step 1000 | | threshold_lr_scale | √d_in | JumpReLU: θ lives on the
/// scale of the pre-activations (O(1) with inputs at E‖x‖ = √d), the encoder's entries on 1/√d, and
/// Adam moves both by ≈ lr a step; the factor gives θ the encoder's relative speed | |
/// sparsity_coefficient | the architecture's default λ (registry) | |
struct TrainerParams {
  Index steps = 2000;       ///< optimisation steps (> 0)
  Index batch_size = 4096;  ///< samples per step (> 0; the data must have at least this many)
  /// Base Adam learning rate (> 0); negative (default) = auto, 2e-4 / √(d_sae / 16384).
  double lr = -1.0;
  double beta1 = 0.9;      ///< Adam β1, [0, 1)
  double beta2 = 0.999;    ///< Adam β2, [0, 1)
  double adam_eps = 1e-8;  ///< Adam ε (> 0)
  /// Linear lr warm-up over this fraction of the steps, [0, 1]; negative (default) = auto,
  /// min(1000, ⌈steps/20⌉) steps.
  double lr_warmup_fraction = -1.0;
  nn::Decay lr_decay = nn::Decay::Linear;  ///< decay after decay start (Constant, Linear, Cosine)
  double lr_decay_start_fraction = 0.8;    ///< decay runs over the last 20 % of steps, [0, 1)
  double lr_min_ratio = 0.0;               ///< final lr / base lr, [0, 1]
  /// λ of the sparsity penalty (>= 0); negative means the architecture's default
  /// (default_sparsity_coefficient, from the registry).
  double sparsity_coefficient = -1.0;
  /// λ ramps linearly from 0 over this fraction of the steps, [0, 1]; negative (default) =
  /// auto, min(2000, ⌈steps/10⌉) steps.
  double sparsity_warmup_fraction = -1.0;
  double grad_clip = 1.0;  ///< global gradient-norm clip (<= 0 disables)
  /// AuxK weight α (TopK / BatchTopK; 0 disables). Default 1/32 (OpenAI, dictionary_learning).
  double aux_coefficient = 1.0 / 32.0;
  Index aux_k = -1;  ///< AuxK k_aux; -1 means d_in / 2 (at least 1)
  /// A latent is dead when it has not fired for this many samples (counted in samples, not
  /// steps; > 0). Negative (default) = auto, min(10⁷, max(batch, ⌈steps·batch/10⌉)): 10⁷ is
  /// the window of OpenAI, dictionary_learning and sparsify.
  Index dead_window_samples = -1;
  double threshold_ema = 0.01;  ///< BatchTopK: θ ← (1−a)θ + a·min positive code, (0, 1]
  /// BatchTopK: θ is averaged from this fraction of the steps on (earlier batches, while the
  /// encoder is still moving fast, are ignored), [0, 1); negative (default) = auto,
  /// min(1000, ⌈steps/10⌉) steps.
  double threshold_start_fraction = -1.0;
  /// JumpReLU: the thresholds' learning rate is lr · threshold_lr_scale (> 0); negative
  /// (default) = auto, √d_in.
  double threshold_lr_scale = -1.0;
  double p_start = 1.0;                ///< PAnneal / Structured: initial p, (0, 1]
  double p_end = 0.2;                  ///< final p, (0, p_start]; 0.2 avoids the degenerate p = 0
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
  /// ReLU-L1, JumpReLU, p-annealing: a step runs the sparse kernels when fewer than this share
  /// of the batch's code entries need a gradient, else the dense GEMMs; both give the same step
  /// to rounding. 0 = always dense; > 1 = always sparse. Default: the crossover measured at the
  /// reference shape (kDefaultSparseKernelDensity; docs/sae.md, "Activation-sparse steps").
  double sparse_kernel_density = kDefaultSparseKernelDensity;
  /// Run the step's encoder and decoder GEMMs in bf16 (operands rounded to bfloat16, products
  /// accumulated in float; weights, gradients and Adam state stay float) through oneDNN
  /// (core/bf16_gemm.hpp). Needs a float SAE, a build with oneDNN (ERGO_HAVE_DNNL) and a CPU
  /// with AVX512_BF16; Trainer::begin throws otherwise. Off by default: docs/sae.md
  /// ("bf16 GEMMs") measures its speed and its effect on dictionary recovery.
  bool bf16_gemm = false;
  Index log_every = 100;  ///< steps between callback events and history rows (> 0)

  void check() const {
    const char* who = "TrainerParams::check";
    check_arg(steps > 0, who, "steps", "> 0", steps);
    check_arg(batch_size > 0, who, "batch_size", "> 0", batch_size);
    check_arg(lr > 0 || lr < 0, who, "lr", "> 0 (or negative for auto)", lr);
    check_arg(beta1 >= 0 && beta1 < 1, who, "beta1", "a value in [0, 1)", beta1);
    check_arg(beta2 >= 0 && beta2 < 1, who, "beta2", "a value in [0, 1)", beta2);
    check_positive(who, "adam_eps", adam_eps);
    check_arg(lr_warmup_fraction <= 1.0, who, "lr_warmup_fraction",
              "a value in [0, 1] (or negative for auto)", lr_warmup_fraction);
    check_arg(lr_decay_start_fraction >= 0 && lr_decay_start_fraction < 1, who,
              "lr_decay_start_fraction", "a value in [0, 1)", lr_decay_start_fraction);
    check_range(who, "lr_min_ratio", lr_min_ratio, 0.0, 1.0);
    check_arg(sparsity_warmup_fraction <= 1.0, who, "sparsity_warmup_fraction",
              "a value in [0, 1] (or negative for auto)", sparsity_warmup_fraction);
    check_arg(aux_coefficient >= 0, who, "aux_coefficient", ">= 0", aux_coefficient);
    check_arg(aux_k == -1 || aux_k > 0, who, "aux_k", "-1 or > 0", aux_k);
    check_arg(dead_window_samples != 0, who, "dead_window_samples", "> 0 (or negative for auto)",
              dead_window_samples);
    check_arg(threshold_ema > 0 && threshold_ema <= 1, who, "threshold_ema", "a value in (0, 1]",
              threshold_ema);
    check_arg(threshold_start_fraction < 1.0, who, "threshold_start_fraction",
              "a value in [0, 1) (or negative for auto)", threshold_start_fraction);
    check_arg(threshold_lr_scale > 0 || threshold_lr_scale < 0, who, "threshold_lr_scale",
              "> 0 (or negative for auto)", threshold_lr_scale);
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
    check_arg(sparse_kernel_density >= 0, who, "sparse_kernel_density", ">= 0",
              sparse_kernel_density);
    check_arg(log_every > 0, who, "log_every", "> 0", log_every);
  }

  /// \brief A copy with every auto setting replaced by its rule (see the table above) for an
  /// SAE with parameters `p` (d_in, d_sae, architecture); set values are kept as they are. The
  /// trainer trains with resolved(sae.params()). Defined in trainer.hpp.
  TrainerParams resolved(const SparseAutoencoderParams& p) const;
  /// \brief True when no setting is auto.
  bool is_resolved() const {
    return lr > 0 && lr_warmup_fraction >= 0 && sparsity_warmup_fraction >= 0 &&
           dead_window_samples > 0 && threshold_start_fraction >= 0 && threshold_lr_scale > 0 &&
           sparsity_coefficient >= 0;
  }

  /// Steps of the lr warm-up (of a resolved copy): ⌊lr_warmup_fraction · steps⌋.
  Index lr_warmup_steps() const { return fraction_steps(lr_warmup_fraction); }
  /// Steps of the λ warm-up (of a resolved copy): ⌊sparsity_warmup_fraction · steps⌋.
  Index sparsity_warmup_steps() const { return fraction_steps(sparsity_warmup_fraction); }
  /// First step of the BatchTopK threshold average: ⌊threshold_start_fraction · steps⌋.
  Index threshold_start_step() const { return fraction_steps(threshold_start_fraction); }

  /// \brief The fraction of `steps` whose ⌊fraction · steps⌋ is exactly n (n <= steps), for the
  /// auto rules that are counted in steps.
  static double fraction_for_steps(Index n, Index steps) {
    if (steps <= 0 || n <= 0) return 0.0;
    if (n >= steps) return 1.0;
    return (static_cast<double>(n) + 0.5) / static_cast<double>(steps);
  }

 private:
  Index fraction_steps(double f) const {
    return f <= 0 ? 0 : static_cast<Index>(f * static_cast<double>(steps));
  }
};

namespace detail {
/// ⌈a / b⌉ for a >= 0, b > 0.
inline Index ceil_div(Index a, Index b) {
  return (a + b - 1) / b;
}

/// The auto rules of TrainerParams (see its table) for a run of `tp.steps` steps of
/// `tp.batch_size` samples, an SAE with d_in inputs and d_sae latents, and the architecture's
/// default λ.
inline TrainerParams resolve_trainer_params(TrainerParams tp, Index d_in, Index d_sae,
                                            double default_sparsity) {
  tp.check();
  const Index T = tp.steps, B = tp.batch_size;
  if (tp.lr < 0) tp.lr = 2e-4 / std::sqrt(static_cast<double>(d_sae) / 16384.0);
  if (tp.lr_warmup_fraction < 0)
    tp.lr_warmup_fraction =
        TrainerParams::fraction_for_steps(std::min<Index>(1000, ceil_div(T, 20)), T);
  if (tp.sparsity_warmup_fraction < 0)
    tp.sparsity_warmup_fraction =
        TrainerParams::fraction_for_steps(std::min<Index>(2000, ceil_div(T, 10)), T);
  if (tp.dead_window_samples < 0) {
    const double seen = static_cast<double>(T) * static_cast<double>(B);
    const double w = std::min(1e7, std::max(static_cast<double>(B), std::ceil(seen / 10.0)));
    tp.dead_window_samples = static_cast<Index>(w);
  }
  if (tp.threshold_start_fraction < 0) {
    const Index n = std::min<Index>(1000, ceil_div(T, 10));
    tp.threshold_start_fraction = n >= T ? 0.0 : TrainerParams::fraction_for_steps(n, T);
  }
  if (tp.threshold_lr_scale < 0) tp.threshold_lr_scale = std::sqrt(static_cast<double>(d_in));
  if (tp.sparsity_coefficient < 0) tp.sparsity_coefficient = default_sparsity;
  return tp;
}

/// One line with the resolved settings ("lr 0.00113 (auto), lr warm-up 50 steps (auto), ...");
/// the BatchTopK threshold start and the JumpReLU threshold lr only when `batch_threshold` /
/// `trained_threshold`.
inline std::string describe_trainer_params(const TrainerParams& given, const TrainerParams& r,
                                           bool batch_threshold, bool trained_threshold) {
  auto tag = [](bool is_auto) { return is_auto ? " (auto)" : ""; };
  std::string s = ergo::detail::str_cat(
      "lr ", r.lr, tag(given.lr < 0), ", lr warm-up ", r.lr_warmup_steps(), " steps",
      tag(given.lr_warmup_fraction < 0), ", sparsity coefficient ", r.sparsity_coefficient,
      tag(given.sparsity_coefficient < 0), ", sparsity warm-up ", r.sparsity_warmup_steps(),
      " steps", tag(given.sparsity_warmup_fraction < 0), ", dead-latent window ",
      r.dead_window_samples, " samples", tag(given.dead_window_samples < 0));
  if (batch_threshold)
    s += ergo::detail::str_cat(", threshold average from step ", r.threshold_start_step(),
                               tag(given.threshold_start_fraction < 0));
  if (trained_threshold)
    s += ergo::detail::str_cat(", threshold lr x", r.threshold_lr_scale,
                               tag(given.threshold_lr_scale < 0));
  return s;
}
}  // namespace detail

}  // namespace ergo::sae

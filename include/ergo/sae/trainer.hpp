// SPDX-License-Identifier: MIT
#pragma once

/// \file trainer.hpp
/// \brief sae::Trainer: Adam with learning-rate warm-up and decay, sparsity-coefficient warm-up,
/// global gradient clipping, unit-norm decoder (projected gradient + renormalisation), decoder
/// bias at the geometric median, AuxK with dead-latent tracking in samples, p-annealing, the
/// BatchTopK threshold estimate, input scaling to E‖x‖ = √d folded back into the weights,
/// callbacks, and a NumericalIssue status with a hint on a non-finite loss.

#include "../core/callback.hpp"
#include "../core/communicator.hpp"
#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/random.hpp"
#include "../core/status.hpp"
#include "../core/types.hpp"
#include "../nn/optimizer.hpp"
#include "../nn/parameter.hpp"
#include "../nn/schedule.hpp"
#include "detail/data_parallel.hpp"
#include "detail/geometric_median.hpp"
#include "params.hpp"
#include "registry.hpp"
#include "sparse_autoencoder.hpp"
#include "trainer_params.hpp"
#include "training_check.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace ergo::sae {

inline TrainerParams TrainerParams::resolved(const SparseAutoencoderParams& p) const {
  return detail::resolve_trainer_params(*this, p.d_in, p.d_sae,
                                        default_sparsity_coefficient(p.architecture));
}

/// \brief The input scale s = √d / mean‖x‖ that makes E‖s·x‖ = √d (1 when mean_norm is not
/// positive and finite). \param mean_norm mean L2 norm of the inputs \param d input dimension
inline double input_scale(double mean_norm, Index d) {
  return mean_norm > 0.0 && std::isfinite(mean_norm) ? std::sqrt(static_cast<double>(d)) / mean_norm
                                                     : 1.0;
}

/// \brief b_dec ← the geometric median of the columns of `sample` (d × n, already scaled like
/// the training inputs), by Weiszfeld's iteration in double (tolerance 1e-5, as the SAE
/// libraries), at most `iterations` steps.
template <class Scalar>
void init_decoder_bias(SparseAutoencoder<Scalar>& sae, const Matrix<Scalar>& sample,
                       Index iterations) {
  const char* who = "init_decoder_bias";
  check_shape(who, "sample", sample, sae.d_in(), -1);
  check_arg(sample.cols() > 0, who, "sample", "at least one column", sample.cols());
  check_arg(iterations > 0, who, "iterations", "> 0", iterations);
  const Vector<double> med = detail::geometric_median(sample, iterations, 1e-5);
  sae.weights().decoder_bias = med.template cast<Scalar>();
}

/// \brief One record of the training history (every log_every steps and at the end).
struct TrainRecord {
  Index step = 0;
  double loss = 0, reconstruction = 0, sparsity = 0, aux = 0, nuclear = 0;
  double fvu = 0;            ///< batch FVU = reconstruction / batch variance about the batch mean
  double l0 = 0;             ///< mean active latents per sample
  double dead_fraction = 0;  ///< latents silent for dead_window_samples samples
  double lr = 0, sparsity_coefficient = 0, p = 1;
};

/// \brief What fit() and fit_stream() did.
struct TrainResult {
  Outcome outcome;                    ///< Success, Stopped (callback) or NumericalIssue (+ hint)
  Index steps = 0;                    ///< steps completed
  Index samples_seen = 0;             ///< steps · batch size
  double seconds = 0.0;               ///< wall time of the training loop
  double samples_per_second = 0.0;    ///< throughput of the training loop
  double normalization_factor = 1.0;  ///< s (inputs were scaled by s; already folded)
  LossTerms last;                     ///< loss terms of the last step
  double dead_fraction = 0.0;         ///< at the end
  double sparsity_coefficient = 0;    ///< final λ (after p-annealing rescales)
  double p = 1.0;                     ///< final p
  std::vector<TrainRecord> history;   ///< every log_every steps and at the end
  TrainerParams resolved;             ///< the settings used (TrainerParams::resolved)
  /// Signs of an untrained SAE (check.warning is empty unless it looks untrained; the message is
  /// also passed to the callback's on_note).
  TrainingCheck check;
};

/// \brief Trains a SparseAutoencoder with Adam and the SAE training tricks.
///
/// \code
/// ergo::sae::TrainerParams tp;
/// tp.steps = 3000; tp.batch_size = 1024; tp.lr = 1e-3;
/// ergo::ProgressBar bar(std::cerr);
/// auto result = ergo::sae::Trainer<float>(tp).fit(sae, X, &bar);   // X: d × N
/// if (!result.outcome.ok()) std::cerr << result.outcome.message << "\n";
/// \endcode
///
/// Each step: λ_t = λ·min(1, (t+1)/T_λ); loss and gradient (SparseAutoencoder::forward_backward);
/// stop on a non-finite loss or gradient; remove the decoder-gradient component parallel to
/// each decoder column; clip the global gradient norm; Adam step with lr(t) from nn::LrSchedule;
/// renormalise the decoder columns; the architecture's after-step hook (JumpReLU clamps θ at 0,
/// BatchTopK updates its threshold's moving average); update the samples-since-fired counters
/// and, for an L_p^p penalty (Traits::anneals_p), the p-annealing schedule. AuxK applies to the
/// architectures with Traits::aux_k.
///
/// Data-parallel training (docs/scale.md): given a Communicator of R > 1 ranks, every rank holds
/// a replica of the SAE and trains on its share of each global batch of batch_size samples
/// (share_of(batch_size, rank, R) columns); gradients, loss terms, firing counts, BatchTopK's
/// selection, AuxK's normalisation and p-annealing's statistics are reduced so that every rank
/// takes the step one process would take on the whole global batch (equal to rounding).
template <class Scalar_>
class Trainer {
 public:
  using Scalar = Scalar_;
  /// A source of training batches: fills its argument (d × B) with the next raw batch.
  using BatchSource = std::function<void(Eigen::Ref<Matrix<Scalar>>)>;

  explicit Trainer(TrainerParams params = {}) : m_p(params), m_r(params) { m_p.check(); }
  /// \brief A data-parallel trainer over the ranks of `comm` (which must outlive it). Every
  /// rank constructs it with the same params and calls the same methods.
  Trainer(TrainerParams params, const Communicator& comm)
      : m_p(params), m_r(params), m_comm(&comm) {
    m_p.check();
  }
  /// The settings as given (auto settings negative).
  const TrainerParams& params() const { return m_p; }
  /// The settings of the current (or last) run, with every auto setting resolved for its SAE
  /// (TrainerParams::resolved); equal to params() before begin().
  const TrainerParams& resolved_params() const { return m_r; }
  const Communicator& communicator() const { return *m_comm; }
  /// True when training is data-parallel (a communicator of more than one rank).
  bool distributed() const { return m_comm->size() > 1; }
  /// This rank's share of a global batch of `global_batch` samples.
  Share batch_share(Index global_batch) const {
    return share_of(global_batch, m_comm->rank(), m_comm->size());
  }

  /// \brief Trains on the columns of `data` (d × N, N >= batch_size), reshuffled every epoch.
  /// Data-parallel: every rank passes the same data and uses its share of each batch.
  TrainResult fit(SparseAutoencoder<Scalar>& sae, const Eigen::Ref<const Matrix<Scalar>>& data,
                  Callback* cb = nullptr) {
    const char* who = "Trainer::fit";
    check_shape(who, "data", data, sae.d_in(), -1);
    check_arg(data.cols() >= m_p.batch_size, who, "data",
              ergo::detail::str_cat("at least batch_size = ", m_p.batch_size, " columns"),
              data.cols());
    check_finite(who, "data", data);
    if (distributed()) check_same_data(data);
    ThreadLimit threads(m_p.threads);
    Rng rng(derive_seed(m_p.seed, 1));
    const Index N = data.cols(), d = sae.d_in();
    // input scale and b_dec initialisation from random subsets
    double s = 1.0;
    if (m_p.normalize_input) {
      const IndexVector perm = rng.permutation(N);
      const Index n = std::min(N, m_p.normalization_samples);
      double norm_sum = 0.0;
      for (Index j = 0; j < n; ++j) norm_sum += static_cast<double>(data.col(perm(j)).norm());
      s = input_scale(norm_sum / static_cast<double>(n), d);
    }
    if (m_p.init_decoder_bias) {
      const IndexVector perm = rng.permutation(N);
      const Index n = std::min(N, m_p.geometric_median_samples);
      Matrix<Scalar> sample(d, n);
      for (Index j = 0; j < n; ++j) sample.col(j) = data.col(perm(j)) * static_cast<Scalar>(s);
      init_decoder_bias(sae, sample, m_p.geometric_median_iterations);
    }
    IndexVector order = rng.permutation(N);
    Index pos = 0;
    const Scalar ss = static_cast<Scalar>(s);
    const Share sh = batch_share(m_p.batch_size);  // the whole batch in one process
    auto fill = [&](Eigen::Ref<Matrix<Scalar>> out) {
      for (Index b = 0; b < m_p.batch_size; ++b) {  // every rank draws the whole global batch
        if (pos == N) {
          order = rng.permutation(N);
          pos = 0;
        }
        const Index c = order(pos++);
        if (b >= sh.offset && b < sh.offset + sh.count) out.col(b - sh.offset) = data.col(c) * ss;
      }
    };
    return loop(sae, fill, s, cb);
  }

  /// \brief Trains on batches drawn from `next_batch` (each call fills a d × batch_size
  /// matrix). The scale s and b_dec are estimated from the first
  /// ceil(normalization_samples / batch_size) batches, which are not trained on.
  /// Data-parallel: `next_batch` fills this rank's share (d × batch_share(batch_size).count) of
  /// the next global batch; the scale and the median's sample are reduced over ranks.
  TrainResult fit_stream(SparseAutoencoder<Scalar>& sae, const BatchSource& next_batch,
                         Callback* cb = nullptr) {
    const char* who = "Trainer::fit_stream";
    check_arg(static_cast<bool>(next_batch), who, "next_batch", "a callable", "an empty function");
    ThreadLimit threads(m_p.threads);
    const Index d = sae.d_in(), B = m_p.batch_size;
    const Share sh = batch_share(B);
    const bool dp = distributed();
    Matrix<Scalar> buf(d, sh.count);
    double s = 1.0;
    Matrix<Scalar> sample;
    if (m_p.normalize_input || m_p.init_decoder_bias) {
      const Index nb =
          m_p.normalize_input
              ? (std::max(m_p.normalization_samples, m_p.geometric_median_samples) + B - 1) / B
              : (m_p.geometric_median_samples + B - 1) / B;
      double norm_sum = 0.0;
      Index count = 0;
      const Index ns = std::min(m_p.geometric_median_samples, nb * B);
      sample.setZero(d, ns);
      for (Index j = 0; j < nb; ++j) {
        collective(*m_comm, [&] {
          next_batch(buf);
          check_finite(who, "next_batch output", buf);
        });
        for (Index b = 0; b < sh.count; ++b) {
          norm_sum += static_cast<double>(buf.col(b).norm());
          const Index g = j * B + sh.offset + b;  // position in the global stream
          if (g < ns) sample.col(g) = buf.col(b);
        }
      }
      count = nb * B;
      if (dp) {  // every rank's norms, and the sample's columns from the ranks that hold them
        m_comm->allreduce_sum(&norm_sum, 1);
        if (m_p.init_decoder_bias) m_comm->allreduce_sum(sample);
      }
      if (m_p.normalize_input) s = input_scale(norm_sum / static_cast<double>(count), d);
      if (m_p.init_decoder_bias) {
        sample *= static_cast<Scalar>(s);
        init_decoder_bias(sae, sample, m_p.geometric_median_iterations);
      }
    }
    const Scalar ss = static_cast<Scalar>(s);
    auto fill = [&](Eigen::Ref<Matrix<Scalar>> out) {
      next_batch(out);
      if (ss != Scalar(1)) out *= ss;
    };
    return loop(sae, fill, s, cb);
  }

  // ---- step-level API (used by fit; exposed for benchmarks and custom loops) ---------------

  /// \brief Starts a training run on `sae`: fresh Adam state, counters and schedules. The SAE's
  /// storage must not be reallocated until the run ends.
  void begin(SparseAutoencoder<Scalar>& sae) {
    m_sae = &sae;
    m_r = m_p.resolved(sae.params());
    m_grad = sae.make_gradients();
    m_list = sae.parameters(m_grad);
    for (auto& prm : m_list)  // JumpReLU's trained thresholds
      if (prm.name == "threshold") prm.lr_scale = m_r.threshold_lr_scale;
    nn::AdamParams ap;
    ap.lr = m_r.lr;
    ap.beta1 = m_r.beta1;
    ap.beta2 = m_r.beta2;
    ap.eps = m_r.adam_eps;
    m_adam = std::make_unique<nn::Adam<Scalar>>(ap);
    m_sched.base = m_r.lr;
    m_sched.warmup_steps = m_r.lr_warmup_steps();
    m_sched.total_steps = m_r.steps;
    m_sched.decay = m_r.lr_decay;
    m_sched.min_ratio = m_r.lr_min_ratio;
    m_sched.decay_start =
        static_cast<Index>(m_r.lr_decay_start_fraction * static_cast<double>(m_r.steps));
    if (m_sched.decay != nn::Decay::Constant &&
        m_sched.total_steps <= std::max(m_sched.warmup_steps, m_sched.decay_start))
      m_sched.decay = nn::Decay::Constant;
    m_sched.check();
    const Index m = sae.d_sae();
    m_since.assign(static_cast<size_t>(m), 0);
    m_dead.assign(static_cast<size_t>(m), 0);
    m_lambda = m_r.sparsity_coefficient;
    m_p_cur = m_r.p_start;
    m_switch = 0;
    m_lp_cur = m_lp_next = 0.0;
    m_step = 0;
    m_failed = false;
    m_grad_norm = 0.0;
    m_monitor.begin(sae.weights().decoder, /*from_start=*/true);
    m_ws.bf16.reset();
    if (m_r.bf16_gemm) {
      check_arg(std::is_same_v<Scalar, float>, "Trainer::begin", "bf16_gemm",
                "a float SAE (Scalar = float)", "a double SAE");
      m_ws.bf16 = std::make_shared<Bf16Gemm>();  // throws when this build or CPU has no bf16
    }
  }

  /// \brief One line with the settings of the run (after begin()): the resolved values, each
  /// auto one marked "(auto)".
  std::string describe_settings() const {
    bool trained = false;
    for (const auto& prm : m_list) trained = trained || prm.name == "threshold";
    const bool batch = m_sae && m_sae->traits().has_threshold && !trained;
    return detail::describe_trainer_params(m_p, m_r, batch, trained);
  }

  /// \brief The signs of an untrained SAE for the run so far (see training_check.hpp).
  TrainingCheck training_check(const SparseAutoencoder<Scalar>& sae,
                               const TrainingCheckLimits& limits = {}) const {
    return m_monitor.result(sae.weights().decoder, limits);
  }

  /// \brief One optimisation step on an already-scaled batch (d × B). Returns the loss terms
  /// (computed before the update). After a non-finite loss or gradient, failed() is true and
  /// the weights are left unchanged.
  LossTerms step(SparseAutoencoder<Scalar>& sae, const Eigen::Ref<const Matrix<Scalar>>& batch) {
    check_arg(m_sae == &sae, "Trainer::step", "sae", "the SAE given to begin()",
              "another SAE (call begin() first)");
    const Traits& traits = sae.traits();
    const bool dp = distributed();
    if (dp) check_data_parallel(sae);
    const BatchShare share = dp ? detail::make_share(*m_comm, batch.cols()) : BatchShare{};
    const Index B = dp ? share.total : batch.cols();  // the global batch
    const double warm = static_cast<double>(m_r.sparsity_warmup_steps());
    const double ramp = warm > 0 ? std::min(1.0, static_cast<double>(m_step + 1) / warm) : 1.0;
    LossWeights w;
    w.sparsity = m_lambda * ramp;
    w.p = m_p_cur;
    w.nuclear = m_r.nuclear_coefficient;
    if (traits.aux_k && m_r.aux_coefficient > 0) {
      w.aux = m_r.aux_coefficient;
      w.aux_k = m_r.aux_k > 0 ? m_r.aux_k : std::max<Index>(1, sae.d_in() / 2);
      w.dead = &m_dead;
    }
    w.share = share;
    m_ws.sparse_kernel_density = m_r.sparse_kernel_density;
    LossTerms t = sae.forward_backward(batch, w, m_ws, m_grad);
    if (dp) t = reduce(sae, batch, t, share);
    m_last = t;
    m_last_sparsity = w.sparsity;
    if (!std::isfinite(t.total)) {
      m_failed = true;
      return t;
    }
    if (sae.params().unit_norm_decoder) sae.project_decoder_gradient(m_grad);
    m_grad_norm = nn::clip_grad_norm(m_list, m_r.grad_clip);
    if (!std::isfinite(m_grad_norm)) {
      m_failed = true;
      return t;
    }
    m_adam->step(m_list, m_sched.lr(m_step));
    if (sae.params().unit_norm_decoder) sae.normalize_decoder();
    m_ws.step = m_step;
    sae.after_step(m_ws, m_r);  // the architecture's hook (clamp θ, threshold average)
    // dead-latent bookkeeping, in samples
    const Index m = sae.d_sae();
    for (Index i = 0; i < m; ++i) {
      const size_t si = static_cast<size_t>(i);
      m_since[si] = m_ws.fired[si] ? 0 : m_since[si] + B;
      m_dead[si] = m_since[si] >= m_r.dead_window_samples ? 1 : 0;
    }
    m_monitor.record(m_ws.fired, t.batch_variance > 0 ? t.reconstruction / t.batch_variance
                                                      : std::numeric_limits<double>::quiet_NaN());
    if (traits.anneals_p) anneal(sae);
    ++m_step;
    return t;
  }

  /// \brief The trainer's state after begin(): Adam moments ("adam.<param>.exp_avg", ...),
  /// "step", "sparsity_coefficient", "p", "p_switch", "lp_cur", "lp_next" (1 × 1) and
  /// "samples_since_fired" (m × 1), for checkpoints that resume training exactly (together with
  /// the SAE's named weights and the data stream's position).
  std::map<std::string, Matrix<double>> state() const {
    std::map<std::string, Matrix<double>> out;
    if (m_adam)
      for (const auto& kv : m_adam->state()) out["adam." + kv.first] = kv.second;
    auto scalar = [](double v) { return Matrix<double>::Constant(1, 1, v); };
    out["step"] = scalar(static_cast<double>(m_step));
    out["sparsity_coefficient"] = scalar(m_lambda);
    out["p"] = scalar(m_p_cur);
    out["p_switch"] = scalar(static_cast<double>(m_switch));
    out["lp_cur"] = scalar(m_lp_cur);
    out["lp_next"] = scalar(m_lp_next);
    Matrix<double> since(static_cast<Index>(m_since.size()), 1);
    for (size_t i = 0; i < m_since.size(); ++i)
      since(static_cast<Index>(i), 0) = static_cast<double>(m_since[i]);
    out["samples_since_fired"] = since;
    return out;
  }
  /// \brief Restores state() output; call begin(sae) first (with the SAE's weights restored).
  void set_state(const std::map<std::string, Matrix<double>>& s) {
    const char* who = "Trainer::set_state";
    check_arg(m_sae != nullptr, who, "state", "a trainer started with begin(sae)", "no begin()");
    auto scalar = [&](const char* key) {
      auto f = s.find(key);
      if (f == s.end() || f->second.size() != 1)
        throw_invalid(who, "state", ergo::detail::str_cat("a 1 x 1 \"", key, "\" entry"), "none");
      return f->second(0, 0);
    };
    std::map<std::string, Matrix<double>> adam;
    for (const auto& kv : s)
      if (kv.first.rfind("adam.", 0) == 0) adam[kv.first.substr(5)] = kv.second;
    auto fs = adam.find("step");
    if (fs != adam.end() && fs->second.size() == 1 && fs->second(0, 0) > 0)
      m_adam->set_state(m_list, adam);
    m_step = static_cast<Index>(scalar("step"));
    m_lambda = scalar("sparsity_coefficient");
    m_p_cur = scalar("p");
    m_switch = static_cast<Index>(scalar("p_switch"));
    m_lp_cur = scalar("lp_cur");
    m_lp_next = scalar("lp_next");
    auto f = s.find("samples_since_fired");
    if (f == s.end()) throw_invalid(who, "state", "a samples_since_fired entry", "none");
    check_shape(who, "samples_since_fired", f->second, static_cast<Index>(m_since.size()), 1);
    for (size_t i = 0; i < m_since.size(); ++i) {
      m_since[i] = static_cast<Index>(f->second(static_cast<Index>(i), 0));
      m_dead[i] = m_since[i] >= m_r.dead_window_samples ? 1 : 0;
    }
    m_monitor.mark_resumed();
  }

  bool failed() const { return m_failed; }
  Index steps_done() const { return m_step; }
  /// Learning rate used at step s.
  double lr_at(Index s) const { return m_sched.lr(s); }
  /// Current λ (before warm-up) and p.
  double sparsity_coefficient() const { return m_lambda; }
  double current_p() const { return m_p_cur; }
  /// Global gradient norm of the last step (before clipping).
  double last_grad_norm() const { return m_grad_norm; }
  /// Samples since each latent last fired (size m).
  const std::vector<Index>& samples_since_fired() const { return m_since; }
  /// Fraction of latents that are dead (silent for dead_window_samples samples).
  double dead_fraction() const {
    if (m_dead.empty()) return 0.0;
    Index n = 0;
    for (char c : m_dead) n += c ? 1 : 0;
    return static_cast<double>(n) / static_cast<double>(m_dead.size());
  }

 private:
  // p-annealing: p switches at p_updates equally spaced steps from anneal_start to the end; at
  // each switch λ ← λ · mean L_p(p_cur) / mean L_p(p_next) over the last p_rescale_window batches.
  // The next switch: its step `at` and the p it switches to; false when every switch is done.
  bool next_switch(Index& at, double& p_next) const {
    if (m_switch >= m_r.p_updates) return false;
    const double start = m_r.anneal_start_fraction * static_cast<double>(m_r.steps);
    const double span = static_cast<double>(m_r.steps) - start;
    at = static_cast<Index>(start + span * static_cast<double>(m_switch) /
                                        static_cast<double>(m_r.p_updates));
    p_next = m_r.p_start + (m_r.p_end - m_r.p_start) * static_cast<double>(m_switch + 1) /
                               static_cast<double>(m_r.p_updates);
    return true;
  }
  // This step's batch enters the λ rescaling of the next switch.
  bool in_rescale_window(Index at) const { return m_step + 1 + m_r.p_rescale_window > at; }

  void anneal(SparseAutoencoder<Scalar>& sae) {
    Index at = 0;
    double p_next = 0.0;
    if (!next_switch(at, p_next)) return;
    if (in_rescale_window(at)) {
      // data-parallel: the global values, reduced with the step's statistics
      m_lp_cur += distributed() ? m_lp_step[0] : sae.lp_penalty(m_ws, m_p_cur);
      m_lp_next += distributed() ? m_lp_step[1] : sae.lp_penalty(m_ws, p_next);
    }
    if (m_step + 1 >= at) {
      if (m_lp_cur > 0.0 && m_lp_next > 0.0) m_lambda *= m_lp_cur / m_lp_next;
      m_p_cur = p_next;
      ++m_switch;
      m_lp_cur = m_lp_next = 0.0;
    }
  }

  // Data-parallel reductions of a step (detail/data_parallel.hpp): the gradients (one sum), then
  // the loss terms, firing counts, L_p^p values and batch moments (one sum in double).
  LossTerms reduce(SparseAutoencoder<Scalar>& sae, const Eigen::Ref<const Matrix<Scalar>>& batch,
                   const LossTerms& t, const BatchShare& share) {
    const double w = static_cast<double>(batch.cols()) / static_cast<double>(share.total);
    detail::reduce_gradients(*m_comm, m_list, w, m_pack);
    m_lp_step[0] = m_lp_step[1] = 0.0;
    Index at = 0;
    double p_next = 0.0;
    if (sae.traits().anneals_p && next_switch(at, p_next) && in_rescale_window(at)) {
      m_lp_step[0] = sae.lp_penalty(m_ws, m_p_cur);
      m_lp_step[1] = sae.lp_penalty(m_ws, p_next);
    }
    return detail::reduce_statistics(*m_comm, batch, t, share.total, m_ws.fired, m_lp_step,
                                     m_stats);
  }
  // Throws (on every rank alike) for a loss that is not a mean over samples.
  void check_data_parallel(const SparseAutoencoder<Scalar>& sae) const {
    check_arg(!(sae.traits().batch_coupled && m_r.nuclear_coefficient > 0), "Trainer::step",
              "architecture",
              "a loss that is a mean over samples for data-parallel training (docs/scale.md)",
              ergo::detail::str_cat(to_string(sae.architecture()),
                                    " with nuclear_coefficient > 0 (the nuclear norm couples "
                                    "the batch)"));
  }
  // Data-parallel fit(): every rank must pass the same data (same shape and checksum).
  void check_same_data(const Eigen::Ref<const Matrix<Scalar>>& data) const {
    double sum = 0.0;
    for (Index j = 0; j < data.cols(); ++j)
      sum += static_cast<double>(data.col(j).template cast<double>().sum());
    double v[4] = {static_cast<double>(data.cols()), -static_cast<double>(data.cols()), sum, -sum};
    m_comm->allreduce_max(v, 4);
    check_arg(v[0] == -v[1] && v[2] == -v[3], "Trainer::fit", "data",
              "the same data on every rank (data-parallel fit)",
              "different column counts or contents on some ranks");
  }

  template <class Fill>
  TrainResult loop(SparseAutoencoder<Scalar>& sae, Fill& fill, double s, Callback* cb) {
    TrainResult rep;
    rep.normalization_factor = s;
    begin(sae);
    const Index B = m_p.batch_size, d = sae.d_in();
    Matrix<Scalar> batch(d, batch_share(B).count);
    Stopwatch sw;
    ProgressEvent ev;
    ev.phase = "sae";
    ev.total = m_p.steps;
    rep.resolved = m_r;
    if (cb) {
      cb->on_note("sae: " + describe_settings());
      cb->on_begin(ev);
    }
    auto make_row = [&](Index step) {
      TrainRecord r;
      r.step = step;
      r.loss = m_last.total;
      r.reconstruction = m_last.reconstruction;
      r.sparsity = m_last.sparsity;
      r.aux = m_last.aux;
      r.nuclear = m_last.nuclear;
      r.fvu = m_last.batch_variance > 0 ? m_last.reconstruction / m_last.batch_variance : 0.0;
      r.l0 = m_last.l0;
      r.dead_fraction = dead_fraction();
      r.lr = m_sched.lr(std::max<Index>(0, step - 1));
      r.sparsity_coefficient = m_last_sparsity;
      r.p = m_p_cur;
      return r;
    };
    auto fill_event = [&](const TrainRecord& r) {
      ev.step = r.step;
      ev.loss = r.loss;
      ev.elapsed_seconds = sw.seconds();
      ev.items_per_second =
          ev.elapsed_seconds > 0 ? static_cast<double>(r.step * B) / ev.elapsed_seconds : 0.0;
      ev.extra = {{"l0", r.l0}, {"fvu", r.fvu}, {"dead", r.dead_fraction}};
    };
    for (Index t = 0; t < m_p.steps; ++t) {
      collective(*m_comm, [&] { fill(batch); });  // a rank failing to read stops every rank
      step(sae, batch);
      if (m_failed) {
        rep.outcome.status = Status::NumericalIssue;
        rep.outcome.message = ergo::detail::str_cat(
            "Trainer::fit: non-finite loss or gradient at step ", t, " (reconstruction ",
            m_last.reconstruction, ", sparsity ", m_last.sparsity, ", gradient norm ", m_grad_norm,
            "); try a smaller learning rate (lr = ", m_r.lr,
            "), keep grad_clip > 0 and normalize_input = true, and check the data for very "
            "large values");
        break;
      }
      const bool log_now = (m_step % m_p.log_every == 0) || m_step == m_p.steps;
      if (log_now) {
        const TrainRecord r = make_row(m_step);
        rep.history.push_back(r);
        if (cb) {
          fill_event(r);
          if (!cb->on_progress(ev)) {
            rep.outcome.status = Status::Stopped;
            rep.outcome.message = ergo::detail::str_cat("stopped by the callback at step ", m_step);
            break;
          }
        }
      }
    }
    rep.seconds = sw.seconds();
    rep.steps = m_step;
    rep.samples_seen = m_step * B;
    rep.samples_per_second =
        rep.seconds > 0 ? static_cast<double>(rep.samples_seen) / rep.seconds : 0;
    rep.last = m_last;
    rep.dead_fraction = dead_fraction();
    rep.sparsity_coefficient = m_lambda;
    rep.p = m_p_cur;
    if (rep.outcome.status == Status::Success) rep.check = training_check(sae);
    if (s != 1.0) sae.fold_input_scale(s);
    if (cb && rep.check.looks_untrained()) cb->on_note("warning: " + rep.check.warning);
    if (cb) {
      fill_event(make_row(m_step));
      cb->on_end(ev, rep.outcome.message);
    }
    m_sae = nullptr;
    return rep;
  }

  TrainerParams m_p, m_r;  // as given, and resolved for the current run
  SparseAutoencoder<Scalar>* m_sae = nullptr;
  detail::TrainingMonitor<Scalar> m_monitor;
  Weights<Scalar> m_grad;
  nn::ParameterList<Scalar> m_list;
  std::unique_ptr<nn::Adam<Scalar>> m_adam;
  nn::LrSchedule m_sched;
  Workspace<Scalar> m_ws;
  std::vector<Index> m_since;
  std::vector<char> m_dead;
  LossTerms m_last;
  double m_last_sparsity = 0.0;
  double m_lambda = 0.0, m_p_cur = 1.0, m_lp_cur = 0.0, m_lp_next = 0.0, m_grad_norm = 0.0;
  Index m_switch = 0, m_step = 0;
  bool m_failed = false;
  const Communicator* m_comm = &local_communicator();
  std::vector<Scalar> m_pack;   // data-parallel: the packed gradients
  std::vector<double> m_stats;  // data-parallel: the packed statistics
  double m_lp_step[2] = {0.0, 0.0};
};

}  // namespace ergo::sae

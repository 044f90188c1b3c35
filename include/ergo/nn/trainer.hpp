// SPDX-License-Identifier: MIT
#pragma once

/// \file trainer.hpp
/// \brief Mini-batch training of a NextTokenModel: seeded shuffling, epochs or a step budget,
/// Adam/AdamW or SGD with a learning-rate schedule and gradient clipping, validation loss, early
/// stopping with best-parameter restore, callbacks, and a clean stop on non-finite numbers.
///
/// \code
/// ergo::nn::TrainerParams tp;
/// tp.epochs = 100; tp.batch_size = 512; tp.adam.lr = 1e-3; tp.patience = 5;
/// ergo::nn::Trainer<float> trainer(tp);
/// ergo::ProgressBar bar(std::cerr);
/// ergo::nn::TrainResult r = trainer.fit(model, x_train, y_train, x_val, y_val, &bar);
/// if (!r.ok()) std::cerr << ergo::to_string(r.status) << ": " << r.message << "\n";
/// \endcode
///
/// Exact resume: after any fit (for instance one stopped by a callback), `trainer.state()` holds
/// everything the run needs to continue (parameters, optimizer moments, step, position in the
/// epoch, shuffling permutation and RNG, early-stopping bookkeeping). A Trainer with the same
/// TrainerParams, given that state with `resume()`, continues on the same data to exactly the
/// parameters an uninterrupted run reaches (same thread count). With ergo::io::Checkpoint:
/// \code
/// ck.put_map(trainer.state().values, "trainer."); ck.set_string("trainer.rng",
/// trainer.state().rng);
/// // ... later, in a new process:
/// ergo::nn::TrainerState st{ck.get_map("trainer."), ck.get_string("trainer.rng")};
/// trainer.resume(st);
/// trainer.fit(model, x, y, x_val, y_val);   // continues where the saved run stopped
/// \endcode

#include "../core/callback.hpp"
#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/status.hpp"
#include "../core/types.hpp"
#include "detail/trainer_run.hpp"
#include "next_token_model.hpp"
#include "optimizer.hpp"
#include "parameter.hpp"
#include "schedule.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ergo::nn {

/// \brief Which optimizer the Trainer uses.
enum class OptimizerKind {
  Adam,  ///< Adam / AdamW (TrainerParams::adam)
  Sgd    ///< SGD with momentum (TrainerParams::sgd)
};

/// \brief Training-loop settings.
struct TrainerParams {
  Index epochs = 100;      ///< passes over the training set (>= 1; ignored if max_steps > 0)
  Index max_steps = 0;     ///< if > 0, train for exactly this many steps (across epochs)
  Index batch_size = 512;  ///< samples per step (>= 1; paper: 512); capped at the data size
  bool shuffle = true;     ///< reshuffle the training set at every epoch
  bool drop_last = false;  ///< skip an epoch's final partial batch
  std::uint64_t seed = 0;  ///< seed of the shuffling
  OptimizerKind optimizer = OptimizerKind::Adam;
  AdamParams adam;                ///< Adam settings (paper: lr 1e-3, no weight decay)
  SgdParams sgd;                  ///< SGD settings
  Index warmup_steps = 0;         ///< linear learning-rate warm-up length, >= 0
  Decay decay = Decay::Constant;  ///< learning-rate decay after warm-up, until the last step
  double min_lr_ratio = 0.0;      ///< final learning rate of a decay, as a fraction, [0, 1]
  double clip_norm = 0.0;         ///< global gradient-norm clipping threshold (0 = off), >= 0
  Index eval_every = 0;           ///< steps between validation evaluations (0 = at each epoch end)
  Index patience = 0;         ///< stop after this many evaluations without improvement (0 = off)
  double min_delta = 0.0;     ///< an improvement must exceed this (nats), >= 0
  bool restore_best = true;   ///< with validation data, end with the best-validation parameters
  Index progress_every = 10;  ///< steps between Callback::on_progress events (0 = epoch ends)
  /// \throws InvalidArgument naming the first field out of range
  void check() const {
    const char* who = "TrainerParams::check";
    if (max_steps <= 0) check_arg(epochs >= 1, who, "epochs", ">= 1 (or max_steps > 0)", epochs);
    check_arg(max_steps >= 0, who, "max_steps", ">= 0", max_steps);
    check_arg(batch_size >= 1, who, "batch_size", ">= 1", batch_size);
    if (optimizer == OptimizerKind::Adam)
      adam.check();
    else
      sgd.check();
    check_arg(warmup_steps >= 0, who, "warmup_steps", ">= 0", warmup_steps);
    check_range(who, "min_lr_ratio", min_lr_ratio, 0.0, 1.0);
    check_arg(clip_norm >= 0 && std::isfinite(clip_norm), who, "clip_norm", "a finite value >= 0",
              clip_norm);
    check_arg(eval_every >= 0, who, "eval_every", ">= 0", eval_every);
    check_arg(patience >= 0, who, "patience", ">= 0", patience);
    check_arg(min_delta >= 0, who, "min_delta", "a value >= 0", min_delta);
    check_arg(progress_every >= 0, who, "progress_every", ">= 0", progress_every);
  }
};

/// \brief One evaluation point of a training run.
struct TrainRecord {
  Index step = 0;   ///< optimizer steps taken
  Index epoch = 0;  ///< epoch in progress (0-based)
  double train_loss =
      std::numeric_limits<double>::quiet_NaN();  ///< mean batch loss since the previous record
  double val_loss =
      std::numeric_limits<double>::quiet_NaN();  ///< validation loss (NaN without data)
  double lr = 0.0;                               ///< learning rate of the last step
};

/// \brief What a training run did.
struct TrainResult {
  Status status = Status::Success;  ///< Success, Stopped (callback) or NumericalIssue
  std::string message;  ///< why it stopped early (early stopping, callback, non-finite value)
  Index steps = 0;      ///< optimizer steps taken
  Index epochs = 0;     ///< complete passes over the training set
  double train_loss =
      std::numeric_limits<double>::quiet_NaN();  ///< mean batch loss of the last record window
  double val_loss =
      std::numeric_limits<double>::quiet_NaN();  ///< validation loss of the returned parameters
  double best_val_loss = std::numeric_limits<double>::quiet_NaN();  ///< best validation loss seen
  Index best_step = -1;                                             ///< step of best_val_loss
  bool restored_best = false;        ///< the parameters were rolled back to best_step
  std::vector<TrainRecord> history;  ///< one record per evaluation (or per epoch without val data)
  double seconds = 0.0;              ///< wall time
  double samples_per_second = 0.0;   ///< training throughput
  bool ok() const { return status == Status::Success; }
};

/// \brief Where a training run stopped, for resuming it exactly (Trainer::state / resume).
///
/// `values` holds named matrices (all stored as double, which is exact for float and double
/// models): "param.<name>" (the model's parameters when the run stopped, before any
/// restore-best roll-back), "optimizer.<key>" (Adam/SGD state()), "best.<name>" (the best
/// validation parameters, if kept), "perm" (N × 1, the current epoch's order) and 1 × 1
/// counters: "step", "epoch", "position", "epochs_done", "n_train", "batch_size",
/// "since_best", "best_step", "best_val_loss", "last_val", "window_sum", "window_n". `rng` is
/// the shuffling Rng's state() text. The state is plain data: save it anywhere (io::Checkpoint
/// stores both parts exactly).
struct TrainerState {
  std::map<std::string, Matrix<double>> values;  ///< named matrices (see above)
  std::string rng;                               ///< Rng::state() of the shuffling generator
  /// True for a default-constructed state (no run to resume).
  bool empty() const { return values.empty(); }
};

/// \brief Trains a NextTokenModel by mini-batch gradient descent on softmax cross-entropy.
///
/// Data: contexts x (n × N int32 for discrete models, input_dim × N for dense ones) and targets
/// y (1 × N int32 in [0, |V|)), optionally a validation set of the same kind. The whole data set
/// is validated once up front: a shape mismatch, a value out of range or a NaN/Inf entry throws
/// InvalidArgument before any step. During training, a non-finite loss, gradient norm or
/// validation loss stops the run with Status::NumericalIssue and a message that names the step
/// and suggests remedies; no update is applied from the failing step, and with restore_best and
/// validation data the best parameters seen are restored.
/// The run is reproducible: the same seeds and thread count give identical parameters, and a run
/// stopped at any step and continued with state() / resume() ends where an uninterrupted run
/// does.
/// \tparam Scalar_ the model's scalar type
template <class Scalar_>
class Trainer {
 public:
  using Scalar = Scalar_;
  using Index = Eigen::Index;

  /// \throws InvalidArgument if `params.check()` fails
  explicit Trainer(TrainerParams params = {}) : m_params(std::move(params)) { m_params.check(); }
  const TrainerParams& params() const { return m_params; }

  /// \brief Where the last fit() stopped (empty before the first fit). Saving it together with
  /// nothing else is enough to continue the run later with resume().
  const TrainerState& state() const { return m_state; }
  /// \brief Makes the next fit() continue the run that produced `state` instead of starting
  /// afresh: the model's parameters, the optimizer, the schedule position, the data order and
  /// the early-stopping bookkeeping are restored from it. The same TrainerParams and training
  /// data must be used (the data size and batch size are checked). TrainResult::steps and
  /// epochs count from the start of the original run; history, seconds and throughput cover the
  /// resumed part only. The state is consumed by that fit().
  /// \throws InvalidArgument if `state` is empty
  void resume(TrainerState state) {
    check_arg(!state.empty(), "Trainer::resume", "state", "a state from Trainer::state()",
              "an empty state");
    m_resume = std::move(state);
  }

  /// \brief Trains on discrete contexts without validation data.
  TrainResult fit(NextTokenModel<Scalar>& model, const Eigen::Ref<const IntMatrix>& x,
                  const Eigen::Ref<const IntRowVector>& y, Callback* cb = nullptr) {
    const IntMatrix xv(x.rows(), 0);
    const IntRowVector yv(0);
    return fit_impl(model, x, y, false, Eigen::Ref<const IntMatrix>(xv),
                    Eigen::Ref<const IntRowVector>(yv), cb);
  }
  /// \brief Trains on discrete contexts with a validation set (x_val: n × M, y_val: 1 × M).
  TrainResult fit(NextTokenModel<Scalar>& model, const Eigen::Ref<const IntMatrix>& x,
                  const Eigen::Ref<const IntRowVector>& y, const Eigen::Ref<const IntMatrix>& x_val,
                  const Eigen::Ref<const IntRowVector>& y_val, Callback* cb = nullptr) {
    return fit_impl(model, x, y, true, x_val, y_val, cb);
  }
  /// \brief Trains on dense contexts without validation data.
  TrainResult fit(NextTokenModel<Scalar>& model, const Eigen::Ref<const Matrix<Scalar>>& x,
                  const Eigen::Ref<const IntRowVector>& y, Callback* cb = nullptr) {
    const Matrix<Scalar> xv(x.rows(), 0);
    const IntRowVector yv(0);
    return fit_impl(model, x, y, false, Eigen::Ref<const Matrix<Scalar>>(xv),
                    Eigen::Ref<const IntRowVector>(yv), cb);
  }
  /// \brief Trains on dense contexts with a validation set.
  TrainResult fit(NextTokenModel<Scalar>& model, const Eigen::Ref<const Matrix<Scalar>>& x,
                  const Eigen::Ref<const IntRowVector>& y,
                  const Eigen::Ref<const Matrix<Scalar>>& x_val,
                  const Eigen::Ref<const IntRowVector>& y_val, Callback* cb = nullptr) {
    return fit_impl(model, x, y, true, x_val, y_val, cb);
  }

 private:
  static constexpr const char* kWho = "Trainer::fit";

  template <class XRef>
  static void validate(const NextTokenModel<Scalar>& model, const XRef& x,
                       const Eigen::Ref<const IntRowVector>& y, const char* xname,
                       const char* yname) {
    using XS = typename XRef::Scalar;
    if constexpr (std::is_same<XS, std::int32_t>::value) {
      check_arg(model.discrete_input(), kWho, xname,
                "dense contexts (input_dim x N real matrix) for this model", "discrete contexts");
      model.encoder().check(x, kWho, xname);
    } else {
      check_arg(!model.discrete_input(), kWho, xname,
                "discrete contexts (n x N int32 matrix) for this model", "a dense matrix");
      check_shape(kWho, xname, x, model.input_dim(), -1);
      check_finite(kWho, xname, x);
    }
    check_shape(kWho, yname, y, 1, x.cols());
    for (Index b = 0; b < y.size(); ++b)
      if (y[b] < 0 || y[b] >= model.vocab_size())
        throw_invalid(kWho, detail::str_cat(yname, "[", b, "]"),
                      detail::str_cat("a token in [0, ", model.vocab_size(), ")"), y[b]);
  }

  static std::string divergence_hint() {
    return "the training diverged; try a smaller learning rate, gradient clipping "
           "(TrainerParams::clip_norm), a learning-rate warm-up (TrainerParams::warmup_steps), "
           "and check the inputs' scale";
  }

  static double scalar_of(const TrainerState& st, const std::string& key) {
    auto it = st.values.find(key);
    if (it == st.values.end() || it->second.size() != 1)
      throw_invalid(kWho, "resume state", detail::str_cat("a 1 x 1 \"", key, "\" entry"), "none");
    return it->second(0, 0);
  }
  static Index index_of(const TrainerState& st, const std::string& key) {
    const double v = scalar_of(st, key);
    check_arg(v == std::floor(v) && std::abs(v) < 9.0e15, kWho, "resume state " + key, "an integer",
              v);
    return static_cast<Index>(v);
  }
  static Matrix<double> one(double v) { return Matrix<double>::Constant(1, 1, v); }
  /// The resume-state entry `key` with shape rows × cols (throws if missing or misshapen).
  static const Matrix<double>& state_entry(const TrainerState& st, const std::string& key,
                                           Index rows, Index cols) {
    auto it = st.values.find(key);
    if (it == st.values.end())
      throw_invalid(kWho, "resume state", "an entry \"" + key + "\"", "none");
    check_shape(kWho, "resume state " + key, it->second, rows, cols);
    return it->second;
  }

  /// The state of one fit() call.
  template <class XRef>
  using Run = detail::TrainerRun<Scalar, XRef, TrainResult>;

  /// Validates the data, then starts (or resumes), trains and finishes one run.
  template <class XRef>
  TrainResult fit_impl(NextTokenModel<Scalar>& model, const XRef& x,
                       const Eigen::Ref<const IntRowVector>& y, bool has_val, const XRef& xv,
                       const Eigen::Ref<const IntRowVector>& yv, Callback* cb) {
    validate(model, x, y, "x", "y");
    if (has_val) {
      validate(model, xv, yv, "x_val", "y_val");
      has_val = xv.cols() > 0;
    }
    check_arg(x.cols() >= 1, kWho, "x", "at least one sample", x.cols());
    Run<XRef> s(model, x, y, has_val, xv, yv, cb, m_params.seed);
    start_run(s);
    if (!m_resume.empty()) restore_run(s);
    while (!s.stop && s.r.steps < s.total) run_epoch(s);
    finish_run(s);
    return std::move(s.r);
  }

  /// Sets up the schedule, optimizer, buffers and data order, and reports on_begin.
  template <class XRef>
  void start_run(Run<XRef>& s) {
    const TrainerParams& p = m_params;
    s.B = std::min(p.batch_size, s.N);
    const Index per_epoch = p.drop_last ? s.N / s.B : (s.N + s.B - 1) / s.B;
    s.total = p.max_steps > 0 ? p.max_steps : p.epochs * per_epoch;
    s.schedule.base = p.optimizer == OptimizerKind::Adam ? p.adam.lr : p.sgd.lr;
    s.schedule.warmup_steps = std::min(p.warmup_steps, s.total);
    s.schedule.total_steps = s.total;
    s.schedule.decay = s.schedule.warmup_steps < s.total ? p.decay : Decay::Constant;
    s.schedule.min_ratio = p.min_lr_ratio;
    s.schedule.check();

    if (p.optimizer == OptimizerKind::Adam)
      s.adam = std::make_unique<Adam<Scalar>>(p.adam);
    else
      s.sgd = std::make_unique<Sgd<Scalar>>(p.sgd);
    s.params = s.model.parameters();
    s.model.reserve(s.B);

    s.xb.resize(s.x.rows(), s.B);
    s.yb.resize(s.B);
    s.perm.resize(static_cast<size_t>(s.N));
    for (Index i = 0; i < s.N; ++i) s.perm[static_cast<size_t>(i)] = i;

    s.clock.restart();
    s.ev.phase = "train";
    s.ev.total = s.total;
    s.ev.extra.assign(1, {"lr", s.schedule.lr(0)});
    if (s.cb) s.cb->on_begin(s.ev);
    s.last_lr = s.schedule.lr(0);
  }

  /// Continues the run saved in m_resume (consumed): parameters, optimizer, order, counters.
  template <class XRef>
  void restore_run(Run<XRef>& s) {
    const TrainerState st = std::move(m_resume);
    m_resume = TrainerState{};
    const Index N = s.N;
    check_arg(index_of(st, "n_train") == N, kWho, "x",
              "the training set of the resumed run (same size)",
              detail::str_cat(N, " samples instead of ", index_of(st, "n_train")));
    check_arg(index_of(st, "batch_size") == s.B, kWho, "params().batch_size",
              detail::str_cat("the resumed run's batch size ", index_of(st, "batch_size")), s.B);
    auto& params = s.params;
    for (auto& prm : params)
      prm.value = state_entry(st, "param." + prm.name, prm.value.rows(), prm.value.cols())
                      .template cast<Scalar>();
    s.r.steps = index_of(st, "step");
    if (s.r.steps > 0) {
      std::map<std::string, Matrix<double>> opt;
      for (const auto& kv : st.values)
        if (kv.first.rfind("optimizer.", 0) == 0) opt[kv.first.substr(10)] = kv.second;
      if (s.adam)
        s.adam->set_state(params, opt);
      else
        s.sgd->set_state(params, opt);
    }
    if (!params.empty() && st.values.count("best." + params[0].name)) {
      s.best.resize(params.size());
      for (size_t i = 0; i < params.size(); ++i)
        s.best[i] = state_entry(st, "best." + params[i].name, params[i].value.rows(),
                                params[i].value.cols())
                        .template cast<Scalar>();
    }
    const Matrix<double>& pm = state_entry(st, "perm", N, 1);
    for (Index i = 0; i < N; ++i) {
      const double v = pm(i, 0);
      check_arg(v >= 0 && v < static_cast<double>(N) && v == std::floor(v), kWho,
                "resume state perm", detail::str_cat("indices in [0, ", N, ")"), v);
      s.perm[static_cast<size_t>(i)] = static_cast<Index>(v);
    }
    s.rng.set_state(st.rng);
    s.r.epochs = index_of(st, "epochs_done");
    s.epoch = index_of(st, "epoch");
    s.pos = index_of(st, "position");
    check_arg(s.pos >= 0 && s.pos < N, kWho, "resume state position",
              detail::str_cat("a value in [0, ", N, ")"), s.pos);
    s.since_best = index_of(st, "since_best");
    s.r.best_step = index_of(st, "best_step");
    s.r.best_val_loss = scalar_of(st, "best_val_loss");
    s.last_val = scalar_of(st, "last_val");
    s.window_sum = scalar_of(st, "window_sum");
    s.window_n = index_of(st, "window_n");
    s.last_lr = s.schedule.lr(std::max<Index>(0, s.r.steps - 1));
  }

  /// Runs the rest of the epoch in progress (shuffling first at its start) batch by batch.
  template <class XRef>
  void run_epoch(Run<XRef>& s) {
    const TrainerParams& p = m_params;
    if (s.pos == 0 && p.shuffle) s.rng.shuffle(s.perm);
    bool completed = true;  // every batch of this epoch was processed
    for (; s.pos < s.N; s.pos += s.B) {
      if (s.stop || s.r.steps >= s.total) {
        completed = false;
        break;
      }
      const Index n = std::min(s.B, s.N - s.pos);
      if (p.drop_last && n < s.B) break;
      if (!train_step(s, n)) {
        completed = false;
        break;
      }
    }
    if (s.r.status == Status::NumericalIssue) return;  // (stop is set: no further epoch)
    if (completed) end_epoch(s);
  }

  /// One optimizer step on the n samples at s.pos; false (after fail()) on a non-finite value.
  template <class XRef>
  bool train_step(Run<XRef>& s, Index n) {
    const TrainerParams& p = m_params;
    for (Index i = 0; i < n; ++i) {
      const Index src = s.perm[static_cast<size_t>(s.pos + i)];
      s.xb.col(i) = s.x.col(src);
      s.yb[i] = s.y[src];
    }
    const double loss = s.model.loss_and_grad_unchecked(s.xb.leftCols(n), s.yb.leftCols(n));
    if (!std::isfinite(loss)) {
      fail(s, detail::str_cat("non-finite training loss (", loss, ")"));
      return false;
    }
    const double norm = clip_grad_norm(s.params, p.clip_norm);
    if (!std::isfinite(norm)) {
      fail(s, detail::str_cat("non-finite gradient norm (", norm, ")"));
      return false;
    }
    s.last_lr = s.schedule.lr(s.r.steps);
    if (s.adam)
      s.adam->step(s.params, s.last_lr);
    else
      s.sgd->step(s.params, s.last_lr);
    ++s.r.steps;
    s.samples += n;
    s.window_sum += loss * static_cast<double>(n);
    s.window_n += n;
    s.progress_sum += loss * static_cast<double>(n);
    s.progress_n += n;
    if (s.has_val && p.eval_every > 0 && s.r.steps % p.eval_every == 0) record(s, s.epoch);
    if (s.cb && p.progress_every > 0 && s.r.steps % p.progress_every == 0) {
      s.make_event(s.r.steps, s.epoch, s.progress_sum / static_cast<double>(s.progress_n));
      s.progress_sum = 0.0;
      s.progress_n = 0;
      if (!s.cb->on_progress(s.ev)) s.callback_stop();
    }
    return true;
  }

  /// Counts a completed epoch, records it (unless records follow eval_every) and moves on.
  template <class XRef>
  void end_epoch(Run<XRef>& s) {
    const TrainerParams& p = m_params;
    ++s.r.epochs;
    // (also after a callback stop at the epoch's last batch, as an uninterrupted run would)
    if (p.eval_every == 0 || !s.has_val) {
      record(s, s.epoch);
      if (!s.stop && s.cb && p.progress_every == 0) {
        s.make_event(s.r.steps, s.epoch, s.r.train_loss);
        if (!s.cb->on_progress(s.ev)) s.callback_stop();
      }
    }
    s.pos = 0;
    ++s.epoch;
  }

  /// Records the window's train loss and, with validation data, evaluates and early-stops.
  template <class XRef>
  void record(Run<XRef>& s, Index epoch) {
    TrainRecord rec;
    rec.step = s.r.steps;
    rec.epoch = epoch;
    rec.train_loss = s.window_n > 0 ? s.window_sum / static_cast<double>(s.window_n)
                                    : std::numeric_limits<double>::quiet_NaN();
    rec.lr = s.last_lr;
    s.window_sum = 0.0;
    s.window_n = 0;
    if (!std::isnan(rec.train_loss)) s.r.train_loss = rec.train_loss;
    if (s.has_val) {
      s.last_val = s.model.evaluate_unchecked(s.xv, s.yv);
      s.last_eval_step = s.r.steps;
      rec.val_loss = s.last_val;
    }
    s.r.history.push_back(rec);
    if (!s.has_val) return;
    if (!std::isfinite(s.last_val))
      fail(s, detail::str_cat("non-finite validation loss (", s.last_val, ")"));
    else
      early_stopping(s);
  }

  /// Keeps the best validation point (and its parameters) and stops after `patience` misses.
  template <class XRef>
  void early_stopping(Run<XRef>& s) {
    const TrainerParams& p = m_params;
    TrainResult& r = s.r;
    if (std::isnan(r.best_val_loss) || s.last_val < r.best_val_loss - p.min_delta) {
      r.best_val_loss = s.last_val;
      r.best_step = r.steps;
      s.since_best = 0;
      if (p.restore_best) {
        s.best.resize(s.params.size());
        for (size_t i = 0; i < s.params.size(); ++i) s.best[i] = s.params[i].value;
      }
    } else if (++s.since_best >= p.patience && p.patience > 0) {
      r.message = detail::str_cat("early stopping at step ", r.steps,
                                  ": no validation "
                                  "improvement larger than ",
                                  p.min_delta, " in ", p.patience, " evaluations (best ",
                                  r.best_val_loss, " at step ", r.best_step, ")");
      s.stop = true;
    }
  }

  /// Saves the state, takes a final record, restores the best parameters and reports on_end.
  template <class XRef>
  void finish_run(Run<XRef>& s) {
    TrainResult& r = s.r;
    const Index last_epoch = s.pos == 0 && s.epoch > 0 ? s.epoch - 1 : s.epoch;
    save_state(s);
    // A final record if steps were taken since the last one (step budget, callback stop).
    if (r.status != Status::NumericalIssue &&
        (s.window_n > 0 || (s.has_val && r.steps > 0 && s.last_eval_step != r.steps)))
      record(s, last_epoch);
    r.val_loss = s.last_val;
    if (s.has_val && m_params.restore_best && !s.best.empty() && r.best_step != r.steps) {
      for (size_t i = 0; i < s.params.size(); ++i) s.params[i].value = s.best[i];
      r.restored_best = true;
      r.val_loss = r.best_val_loss;
      if (r.status == Status::NumericalIssue)
        r.message += detail::str_cat("; parameters restored to the best validation point (step ",
                                     r.best_step, ")");
    }
    r.seconds = s.clock.seconds();
    r.samples_per_second = r.seconds > 0 ? static_cast<double>(s.samples) / r.seconds : 0.0;
    if (s.cb) {
      s.make_event(r.steps, last_epoch, r.train_loss);
      s.ev.val_loss = r.val_loss;
      s.cb->on_end(s.ev, r.message);
    }
  }

  /// Ends the run with Status::NumericalIssue, naming `what`, the step and the remedies.
  template <class XRef>
  static void fail(Run<XRef>& s, const std::string& what) {
    s.r.status = Status::NumericalIssue;
    s.r.message =
        detail::str_cat(kWho, "(): ", what, " at step ", s.r.steps, " (epoch ", s.r.epochs,
                        ", learning rate ", s.last_lr, "): ", divergence_hint());
    s.stop = true;
  }

  /// Stores in m_state what a resumed run needs (taken before the final record and any
  /// restore-best).
  template <class XRef>
  void save_state(const Run<XRef>& s) {
    const TrainResult& r = s.r;
    m_state = TrainerState{};
    auto& v = m_state.values;
    for (const auto& prm : s.params) v["param." + prm.name] = prm.value.template cast<double>();
    for (const auto& kv : s.adam ? s.adam->state() : s.sgd->state())
      v["optimizer." + kv.first] = kv.second;
    for (size_t i = 0; i < s.best.size(); ++i)
      v["best." + s.params[i].name] = s.best[i].template cast<double>();
    Matrix<double> pm(s.N, 1);
    for (Index i = 0; i < s.N; ++i) pm(i, 0) = static_cast<double>(s.perm[static_cast<size_t>(i)]);
    v["perm"] = std::move(pm);
    const std::pair<const char*, double> counters[] = {
        {"step", static_cast<double>(r.steps)},
        {"epoch", static_cast<double>(s.epoch)},
        {"position", static_cast<double>(s.pos)},
        {"epochs_done", static_cast<double>(r.epochs)},
        {"n_train", static_cast<double>(s.N)},
        {"batch_size", static_cast<double>(s.B)},
        {"since_best", static_cast<double>(s.since_best)},
        {"best_step", static_cast<double>(r.best_step)},
        {"best_val_loss", r.best_val_loss},
        {"last_val", s.last_val},
        {"window_sum", s.window_sum},
        {"window_n", static_cast<double>(s.window_n)}};
    for (const auto& c : counters) v[c.first] = one(c.second);
    m_state.rng = s.rng.state();
  }

  TrainerParams m_params;
  TrainerState m_resume;  // consumed by the next fit()
  TrainerState m_state;   // where the last fit() stopped
};

}  // namespace ergo::nn

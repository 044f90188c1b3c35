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

#include "../core/callback.hpp"
#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/status.hpp"
#include "../core/types.hpp"
#include "next_token_model.hpp"
#include "optimizer.hpp"
#include "parameter.hpp"
#include "schedule.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
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

/// \brief Trains a NextTokenModel by mini-batch gradient descent on softmax cross-entropy.
///
/// Data: contexts x (n × N int32 for discrete models, input_dim × N for dense ones) and targets
/// y (1 × N int32 in [0, |V|)), optionally a validation set of the same kind. The whole data set
/// is validated once up front: a shape mismatch, a value out of range or a NaN/Inf entry throws
/// InvalidArgument before any step. During training, a non-finite loss, gradient norm or
/// validation loss stops the run with Status::NumericalIssue and a message that names the step
/// and suggests remedies; no update is applied from the failing step, and with restore_best and
/// validation data the best parameters seen are restored.
/// The run is reproducible: the same seeds and thread count give identical parameters.
/// \tparam Scalar_ the model's scalar type
template <class Scalar_>
class Trainer {
 public:
  using Scalar = Scalar_;
  using Index = Eigen::Index;

  /// \throws InvalidArgument if `params.check()` fails
  explicit Trainer(TrainerParams params = {}) : m_params(std::move(params)) { m_params.check(); }
  const TrainerParams& params() const { return m_params; }

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

  template <class XRef>
  TrainResult fit_impl(NextTokenModel<Scalar>& model, const XRef& x,
                       const Eigen::Ref<const IntRowVector>& y, bool has_val, const XRef& xv,
                       const Eigen::Ref<const IntRowVector>& yv, Callback* cb) {
    using XS = typename XRef::Scalar;
    const TrainerParams& p = m_params;
    validate(model, x, y, "x", "y");
    if (has_val) {
      validate(model, xv, yv, "x_val", "y_val");
      has_val = xv.cols() > 0;
    }
    const Index N = x.cols();
    check_arg(N >= 1, kWho, "x", "at least one sample", N);

    const Index B = std::min(p.batch_size, N);
    const Index per_epoch = p.drop_last ? N / B : (N + B - 1) / B;
    const Index total = p.max_steps > 0 ? p.max_steps : p.epochs * per_epoch;
    LrSchedule schedule;
    schedule.base = p.optimizer == OptimizerKind::Adam ? p.adam.lr : p.sgd.lr;
    schedule.warmup_steps = std::min(p.warmup_steps, total);
    schedule.total_steps = total;
    schedule.decay = schedule.warmup_steps < total ? p.decay : Decay::Constant;
    schedule.min_ratio = p.min_lr_ratio;
    schedule.check();

    std::unique_ptr<Adam<Scalar>> adam;
    std::unique_ptr<Sgd<Scalar>> sgd;
    if (p.optimizer == OptimizerKind::Adam)
      adam = std::make_unique<Adam<Scalar>>(p.adam);
    else
      sgd = std::make_unique<Sgd<Scalar>>(p.sgd);
    ParameterList<Scalar> params = model.parameters();
    model.reserve(B);

    Eigen::Matrix<XS, Eigen::Dynamic, Eigen::Dynamic> xb(x.rows(), B);
    IntRowVector yb(B);
    std::vector<Index> perm(static_cast<size_t>(N));
    for (Index i = 0; i < N; ++i) perm[static_cast<size_t>(i)] = i;
    Rng rng(p.seed);
    std::vector<Matrix<Scalar>> best;

    TrainResult r;
    Stopwatch clock;
    ProgressEvent ev;
    ev.phase = "train";
    ev.total = total;
    ev.extra.assign(1, {"lr", schedule.lr(0)});
    if (cb) cb->on_begin(ev);

    double window_sum = 0.0, progress_sum = 0.0, last_lr = schedule.lr(0);
    Index window_n = 0, progress_n = 0, samples = 0, since_best = 0;
    double last_val = std::numeric_limits<double>::quiet_NaN();
    Index last_eval_step = -1;
    bool stop = false;

    auto make_event = [&](Index step, Index epoch, double loss) {
      ev.step = step;
      ev.epoch = epoch;
      ev.loss = loss;
      ev.val_loss = last_val;
      ev.elapsed_seconds = clock.seconds();
      ev.items_per_second =
          ev.elapsed_seconds > 0 ? static_cast<double>(samples) / ev.elapsed_seconds : 0.0;
      ev.extra.assign(1, {"lr", last_lr});
    };
    auto callback_stop = [&]() {
      r.status = Status::Stopped;
      r.message = detail::str_cat("stopped by a callback at step ", r.steps);
      stop = true;
    };
    auto fail = [&](const std::string& what) {
      r.status = Status::NumericalIssue;
      r.message = detail::str_cat(kWho, "(): ", what, " at step ", r.steps, " (epoch ", r.epochs,
                                  ", learning rate ", last_lr, "): ", divergence_hint());
      stop = true;
    };
    // Records the window's train loss and, with validation data, evaluates and early-stops.
    auto record = [&](Index epoch) {
      TrainRecord rec;
      rec.step = r.steps;
      rec.epoch = epoch;
      rec.train_loss = window_n > 0 ? window_sum / static_cast<double>(window_n)
                                    : std::numeric_limits<double>::quiet_NaN();
      rec.lr = last_lr;
      window_sum = 0.0;
      window_n = 0;
      if (!std::isnan(rec.train_loss)) r.train_loss = rec.train_loss;
      if (has_val) {
        last_val = model.evaluate_unchecked(xv, yv);
        last_eval_step = r.steps;
        rec.val_loss = last_val;
        if (!std::isfinite(last_val)) {
          r.history.push_back(rec);
          fail(detail::str_cat("non-finite validation loss (", last_val, ")"));
          return;
        }
        if (std::isnan(r.best_val_loss) || last_val < r.best_val_loss - p.min_delta) {
          r.best_val_loss = last_val;
          r.best_step = r.steps;
          since_best = 0;
          if (p.restore_best) {
            best.resize(params.size());
            for (size_t i = 0; i < params.size(); ++i) best[i] = params[i].value;
          }
        } else if (++since_best >= p.patience && p.patience > 0) {
          r.message = detail::str_cat("early stopping at step ", r.steps,
                                      ": no validation "
                                      "improvement larger than ",
                                      p.min_delta, " in ", p.patience, " evaluations (best ",
                                      r.best_val_loss, " at step ", r.best_step, ")");
          stop = true;
        }
      }
      r.history.push_back(rec);
    };

    Index epoch = 0;
    while (!stop && r.steps < total) {
      if (p.shuffle) rng.shuffle(perm);
      bool completed = true;  // every batch of this epoch was processed
      for (Index start = 0; start < N; start += B) {
        if (stop || r.steps >= total) {
          completed = false;
          break;
        }
        const Index n = std::min(B, N - start);
        if (p.drop_last && n < B) break;
        for (Index i = 0; i < n; ++i) {
          const Index src = perm[static_cast<size_t>(start + i)];
          xb.col(i) = x.col(src);
          yb[i] = y[src];
        }
        const double loss = model.loss_and_grad_unchecked(xb.leftCols(n), yb.leftCols(n));
        if (!std::isfinite(loss)) {
          fail(detail::str_cat("non-finite training loss (", loss, ")"));
          completed = false;
          break;
        }
        const double norm = clip_grad_norm(params, p.clip_norm);
        if (!std::isfinite(norm)) {
          fail(detail::str_cat("non-finite gradient norm (", norm, ")"));
          completed = false;
          break;
        }
        last_lr = schedule.lr(r.steps);
        if (adam)
          adam->step(params, last_lr);
        else
          sgd->step(params, last_lr);
        ++r.steps;
        samples += n;
        window_sum += loss * static_cast<double>(n);
        window_n += n;
        progress_sum += loss * static_cast<double>(n);
        progress_n += n;
        if (has_val && p.eval_every > 0 && r.steps % p.eval_every == 0) record(epoch);
        if (cb && p.progress_every > 0 && r.steps % p.progress_every == 0) {
          make_event(r.steps, epoch, progress_sum / static_cast<double>(progress_n));
          progress_sum = 0.0;
          progress_n = 0;
          if (!cb->on_progress(ev)) callback_stop();
        }
      }
      if (r.status == Status::NumericalIssue) break;
      if (completed) {
        ++r.epochs;
        if (!stop && (p.eval_every == 0 || !has_val)) {
          record(epoch);
          if (cb && p.progress_every == 0) {
            make_event(r.steps, epoch, r.train_loss);
            if (!cb->on_progress(ev)) callback_stop();
          }
        }
      }
      ++epoch;
    }
    const Index last_epoch = epoch > 0 ? epoch - 1 : 0;
    // A final record if steps were taken since the last one (step budget, callback stop).
    if (r.status != Status::NumericalIssue &&
        (window_n > 0 || (has_val && r.steps > 0 && last_eval_step != r.steps)))
      record(last_epoch);
    r.val_loss = last_val;
    if (has_val && p.restore_best && !best.empty() && r.best_step != r.steps) {
      for (size_t i = 0; i < params.size(); ++i) params[i].value = best[i];
      r.restored_best = true;
      r.val_loss = r.best_val_loss;
      if (r.status == Status::NumericalIssue)
        r.message += detail::str_cat("; parameters restored to the best validation point (step ",
                                     r.best_step, ")");
    }
    r.seconds = clock.seconds();
    r.samples_per_second = r.seconds > 0 ? static_cast<double>(samples) / r.seconds : 0.0;
    if (cb) {
      make_event(r.steps, last_epoch, r.train_loss);
      ev.val_loss = r.val_loss;
      cb->on_end(ev, r.message);
    }
    return r;
  }

  TrainerParams m_params;
};

}  // namespace ergo::nn

// SPDX-License-Identifier: MIT
#pragma once

/// \file trainer_run.hpp
/// \brief Private: the state of one nn::Trainer::fit() call (data, optimizer, data order,
/// running sums, early-stopping bookkeeping and the result being assembled) and its event
/// helpers. The Trainer's private member functions (trainer.hpp) each update one part of it.

#include "../../core/callback.hpp"
#include "../../core/random.hpp"
#include "../../core/status.hpp"
#include "../../core/types.hpp"
#include "../next_token_model.hpp"
#include "../optimizer.hpp"
#include "../parameter.hpp"
#include "../schedule.hpp"
#include "common.hpp"

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

namespace ergo::nn::detail {

/// \brief Everything one Trainer::fit() works on.
/// \tparam Scalar the model's scalar type
/// \tparam XRef `Eigen::Ref` of the contexts: int32 (discrete) or Scalar (dense)
/// \tparam Result nn::TrainResult (a parameter so that this header needs nothing of trainer.hpp)
template <class Scalar, class XRef, class Result>
struct TrainerRun {
  using XS = typename XRef::Scalar;
  TrainerRun(NextTokenModel<Scalar>& model_in, const XRef& x_in,
             const Eigen::Ref<const IntRowVector>& y_in, bool has_val_in, const XRef& xv_in,
             const Eigen::Ref<const IntRowVector>& yv_in, Callback* cb_in, std::uint64_t seed)
      : model(model_in),
        x(x_in),
        y(y_in),
        has_val(has_val_in),
        xv(xv_in),
        yv(yv_in),
        cb(cb_in),
        N(x_in.cols()),
        rng(seed) {}

  NextTokenModel<Scalar>& model;
  const XRef& x;                             ///< training contexts (N columns)
  const Eigen::Ref<const IntRowVector>& y;   ///< training targets (1 × N)
  bool has_val;                              ///< validation data is present (M >= 1)
  const XRef& xv;                            ///< validation contexts (M columns)
  const Eigen::Ref<const IntRowVector>& yv;  ///< validation targets (1 × M)
  Callback* cb;                              ///< may be null
  Index N;                                   ///< training samples
  Index B = 0;                               ///< batch size (TrainerParams::batch_size capped at N)
  Index total = 0;                           ///< steps of the whole run
  LrSchedule schedule;                       ///< learning rate per step
  std::unique_ptr<Adam<Scalar>> adam;        ///< the optimizer: one of adam and sgd is set
  std::unique_ptr<Sgd<Scalar>> sgd;
  ParameterList<Scalar> params;                          ///< the model's parameters
  Eigen::Matrix<XS, Eigen::Dynamic, Eigen::Dynamic> xb;  ///< the batch's contexts (B columns)
  IntRowVector yb;                                       ///< the batch's targets
  std::vector<Index> perm;                               ///< the current epoch's order
  Rng rng;                                               ///< shuffling generator
  std::vector<Matrix<Scalar>> best;                      ///< parameters at best_step (restore_best)
  Result r;                                              ///< the result being assembled
  Stopwatch clock;                                       ///< restarted when training starts
  ProgressEvent ev;                                      ///< the last event sent to cb
  double window_sum = 0.0;                               ///< Σ loss·n since the last record
  Index window_n = 0;                                    ///< samples since the last record
  double progress_sum = 0.0;  ///< Σ loss·n since the last progress event
  Index progress_n = 0;       ///< samples since the last progress event
  Index samples = 0;          ///< samples trained on in this fit()
  Index since_best = 0;       ///< evaluations since the best validation loss
  double last_lr = 0.0;       ///< learning rate of the last step
  double last_val = std::numeric_limits<double>::quiet_NaN();  ///< latest validation loss
  Index last_eval_step = -1;                                   ///< step of last_val
  bool stop = false;                                           ///< the run ends at the next check
  Index epoch = 0;                                             ///< epoch in progress (0-based)
  Index pos = 0;  ///< start of the epoch's next batch in perm

  /// Fills `ev` for a progress or end event.
  void make_event(Index step, Index epoch_now, double loss) {
    ev.step = step;
    ev.epoch = epoch_now;
    ev.loss = loss;
    ev.val_loss = last_val;
    ev.elapsed_seconds = clock.seconds();
    ev.items_per_second =
        ev.elapsed_seconds > 0 ? static_cast<double>(samples) / ev.elapsed_seconds : 0.0;
    ev.extra.assign(1, {"lr", last_lr});
  }
  /// Ends the run with Status::Stopped because a callback asked to.
  void callback_stop() {
    r.status = Status::Stopped;
    r.message = str_cat("stopped by a callback at step ", r.steps);
    stop = true;
  }
};

}  // namespace ergo::nn::detail

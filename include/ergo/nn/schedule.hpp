// SPDX-License-Identifier: MIT
#pragma once

/// \file schedule.hpp
/// \brief Learning-rate schedules: constant, linear warm-up, then constant, linear or cosine decay.
///
/// \code
/// ergo::nn::LrSchedule s;
/// s.base = 1e-3; s.warmup_steps = 100; s.total_steps = 10000; s.decay = ergo::nn::Decay::Cosine;
/// s.check();
/// double lr = s.lr(step);   // step counted from 0
/// \endcode

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "detail/common.hpp"

#include <algorithm>
#include <cmath>

namespace ergo::nn {

/// \brief How the learning rate decays after warm-up.
enum class Decay {
  Constant,  ///< stays at the base rate
  Linear,    ///< falls linearly to min_ratio · base at total_steps
  Cosine     ///< half-cosine from base to min_ratio · base at total_steps
};

/// \brief A learning-rate schedule: lr(step) = base · factor(step), steps counted from 0.
///
/// factor(s) = (s + 1) / warmup_steps during warm-up (s < warmup_steps), then
/// Constant: 1; Linear: 1 − (1 − min_ratio) · p; Cosine: min_ratio + (1 − min_ratio) · (1 +
/// cos(π p)) / 2, with p = (s − warmup_steps) / (total_steps − warmup_steps) clamped to [0, 1].
/// Optionally decay starts later than the end of warm-up (`decay_start`), as in SAELens.
struct LrSchedule {
  double base = 1e-3;      ///< base learning rate, > 0
  Index warmup_steps = 0;  ///< linear warm-up length, >= 0
  Index total_steps = 0;   ///< last step of the decay (needed for Linear/Cosine), >= warmup
  Decay decay = Decay::Constant;
  double min_ratio = 0.0;  ///< final lr as a fraction of base, [0, 1]
  Index decay_start = -1;  ///< step at which decay begins; -1 means at the end of warm-up

  /// \throws InvalidArgument naming the first field out of range
  void check() const {
    check_positive("LrSchedule::check", "base", base);
    check_arg(warmup_steps >= 0, "LrSchedule::check", "warmup_steps", ">= 0", warmup_steps);
    check_range("LrSchedule::check", "min_ratio", min_ratio, 0.0, 1.0);
    check_arg(decay_start >= -1, "LrSchedule::check", "decay_start", ">= -1", decay_start);
    if (decay != Decay::Constant)
      check_arg(total_steps > start(), "LrSchedule::check", "total_steps",
                detail::str_cat("> decay start ", start(), " for a decaying schedule"),
                total_steps);
  }
  /// Multiplier of `base` at step `s` (0-based; negative steps count as 0).
  double factor(Index s) const {
    s = std::max<Index>(s, 0);
    if (s < warmup_steps) return static_cast<double>(s + 1) / static_cast<double>(warmup_steps);
    if (decay == Decay::Constant || s < start()) return 1.0;
    const double p = std::clamp(static_cast<double>(s - start()) /
                                    static_cast<double>(std::max<Index>(1, total_steps - start())),
                                0.0, 1.0);
    if (decay == Decay::Linear) return 1.0 - (1.0 - min_ratio) * p;
    constexpr double kPi = 3.14159265358979323846;
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + std::cos(kPi * p));
  }
  /// Learning rate at step `s`.
  double lr(Index s) const { return base * factor(s); }

 private:
  Index start() const {
    return decay_start >= 0 ? std::max(decay_start, warmup_steps) : warmup_steps;
  }
};

}  // namespace ergo::nn

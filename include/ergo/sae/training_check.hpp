// SPDX-License-Identifier: MIT
#pragma once

/// \file training_check.hpp
/// \brief Does a trained SAE look untrained? Three measurable signs, tracked during a run by
/// sae::Trainer and reported in TrainResult::check (the CLI prints the warning):
///
/// - the reconstruction explains almost nothing: the mean batch FVU of the last steps > 0.9
///   (an SAE that returns b_dec, the median, has FVU ≈ 1);
/// - most latents never fired during the run (fraction > 0.5): a latent that never fires gets
///   no reconstruction gradient, so its encoder row and decoder column stay at initialisation;
/// - the dictionary did not move: the mean |cos(W_dec column, its initial value)| over (up to
///   1024 evenly spaced) columns > 0.9. A trained column points at a feature, which a random
///   initial column matches with |cos| ≈ 1/√d up to a few times that (the best of a few
///   hundred random directions in d = 64 is ≈ 0.4), so a trained dictionary is far below 0.9.

#include "../core/types.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

namespace ergo::sae {

/// \brief The limits above which TrainingCheck calls an SAE untrained.
struct TrainingCheckLimits {
  double fvu = 0.9;             ///< mean FVU of the last steps above this
  double never_fired = 0.5;     ///< fraction of latents that never fired above this
  double decoder_cosine = 0.9;  ///< mean |cos(W_dec column, initial column)| above this
};

/// \brief The signs of an untrained SAE measured over a training run (NaN when not measured:
/// never_fired_fraction and decoder_init_cosine are not measured over a resumed segment).
struct TrainingCheck {
  double fvu = std::numeric_limits<double>::quiet_NaN();  ///< mean batch FVU, last <= 20 steps
  double never_fired_fraction = std::numeric_limits<double>::quiet_NaN();
  double decoder_init_cosine = std::numeric_limits<double>::quiet_NaN();
  /// Empty unless the SAE looks untrained: names each sign that exceeds its limit, and what to
  /// try.
  std::string warning;
  bool looks_untrained() const { return !warning.empty(); }
};

namespace detail {

/// Tracks the signs during a run: a copy of up to 1024 initial decoder columns, which latents
/// ever fired, and the batch FVUs of the last 20 steps.
template <class Scalar>
class TrainingMonitor {
 public:
  static constexpr Index kColumns = 1024;
  static constexpr size_t kLastSteps = 20;

  /// \param decoder W_dec (d × m) at the start of the run \param from_start false for a resumed
  /// segment (the initial weights are unknown: only the FVU is measured)
  void begin(const Matrix<Scalar>& decoder, bool from_start) {
    const Index m = decoder.cols();
    m_from_start = from_start;
    m_ever.assign(static_cast<size_t>(m), 0);
    m_fvu.clear();
    m_cols.clear();
    const Index n = std::min(m, kColumns);
    for (Index j = 0; j < n; ++j) m_cols.push_back(j * m / n);
    m_init.resize(decoder.rows(), n);
    for (Index j = 0; j < n; ++j) m_init.col(j) = decoder.col(m_cols[static_cast<size_t>(j)]);
  }
  /// A resumed segment: the initial weights and the firing history are unknown.
  void mark_resumed() { m_from_start = false; }

  /// After a step: which latents fired (size m) and the batch FVU.
  void record(const std::vector<char>& fired, double fvu) {
    for (size_t i = 0; i < fired.size() && i < m_ever.size(); ++i) m_ever[i] |= fired[i];
    if (std::isfinite(fvu)) {
      m_fvu.push_back(fvu);
      if (m_fvu.size() > kLastSteps) m_fvu.erase(m_fvu.begin());
    }
  }

  /// The signs for the current decoder (d × m, the same SAE) against `limits`.
  TrainingCheck result(const Matrix<Scalar>& decoder,
                       const TrainingCheckLimits& limits = {}) const {
    TrainingCheck c;
    if (!m_fvu.empty()) {
      double s = 0;
      for (double f : m_fvu) s += f;
      c.fvu = s / static_cast<double>(m_fvu.size());
    }
    if (m_from_start && !m_ever.empty()) {
      Index never = 0;
      for (char e : m_ever) never += e ? 0 : 1;
      c.never_fired_fraction = static_cast<double>(never) / static_cast<double>(m_ever.size());
      double s = 0;
      Index n = 0;
      for (size_t j = 0; j < m_cols.size(); ++j) {
        const auto now = decoder.col(m_cols[j]).template cast<double>();
        const auto then = m_init.col(static_cast<Index>(j)).template cast<double>();
        const double den = now.norm() * then.norm();
        if (den > 0) {
          s += std::abs(now.dot(then)) / den;
          ++n;
        }
      }
      if (n > 0) c.decoder_init_cosine = s / static_cast<double>(n);
    }
    std::string why;
    auto add = [&](bool bad, const std::string& text) {
      if (bad) why += (why.empty() ? "" : "; ") + text;
    };
    add(c.fvu > limits.fvu, "the reconstruction explains almost nothing (FVU " + fmt(c.fvu) +
                                " > " + fmt(limits.fvu) + ")");
    add(c.never_fired_fraction > limits.never_fired,
        "most latents never fired (" + fmt(100 * c.never_fired_fraction) + " % > " +
            fmt(100 * limits.never_fired) + " %)");
    add(c.decoder_init_cosine > limits.decoder_cosine,
        "the dictionary barely moved from its random initialisation (mean |cos| " +
            fmt(c.decoder_init_cosine) + " > " + fmt(limits.decoder_cosine) + ")");
    if (!why.empty())
      c.warning = "the SAE looks untrained: " + why +
                  ". Try more steps, a larger learning rate (or leave lr at auto), a smaller "
                  "sparsity coefficient, and check that the inputs are normalised";
    return c;
  }

 private:
  static std::string fmt(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
  }
  bool m_from_start = true;
  std::vector<char> m_ever;
  std::vector<double> m_fvu;
  std::vector<Index> m_cols;
  Matrix<Scalar> m_init;
};

}  // namespace detail
}  // namespace ergo::sae

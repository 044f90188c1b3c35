// SPDX-License-Identifier: MIT
#pragma once

/// \file callback.hpp
/// \brief Progress and training callbacks. The library prints nothing unless given one.
///
/// Long-running routines (training, permutation tests, sweeps) take a `Callback*` (nullptr means
/// silent) and report `ProgressEvent`s to it. A callback can stop the work early by returning
/// false from on_progress. ProgressBar prints a one-line bar with loss, throughput and ETA;
/// CsvLogger writes one row per event; CallbackList fans out to several callbacks.

#include "types.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace ergo {

/// \brief One report from a long-running routine.
struct ProgressEvent {
  std::string phase;  ///< what is running, e.g. "train", "permutation-null"
  Index step = 0;     ///< units of work done so far (steps, permutations, ...)
  Index total = 0;    ///< units of work planned (0 if unknown)
  Index epoch = 0;    ///< current epoch where that applies (0-based)
  double loss = std::numeric_limits<double>::quiet_NaN();      ///< latest training loss, if any
  double val_loss = std::numeric_limits<double>::quiet_NaN();  ///< latest validation loss, if any
  double items_per_second = 0.0;  ///< throughput in samples (or units) per second
  double elapsed_seconds = 0.0;   ///< wall time since the routine began
  /// Further named values (e.g. {"l0", 31.8}); shown by ProgressBar and CsvLogger.
  std::vector<std::pair<std::string, double>> extra;
};

/// \brief Receives progress from long-running routines. Every method has a silent default.
class Callback {
 public:
  virtual ~Callback() = default;
  /// Called once before the work starts (step = 0).
  virtual void on_begin(const ProgressEvent&) {}
  /// Called periodically; return false to ask the routine to stop (it then reports Stopped).
  virtual bool on_progress(const ProgressEvent&) { return true; }
  /// Called once after the work ends, with the final state and a message (empty on success).
  virtual void on_end(const ProgressEvent&, const std::string& /*message*/) {}
  /// A line of information for the user (the settings a routine resolved, a warning about its
  /// result); may come before on_begin or after on_end.
  virtual void on_note(const std::string& /*note*/) {}
};

/// \brief Forwards every event to several callbacks; stops if any asks to.
class CallbackList : public Callback {
 public:
  CallbackList() = default;
  explicit CallbackList(std::vector<Callback*> callbacks) : m_callbacks(std::move(callbacks)) {}
  void add(Callback* cb) {
    if (cb) m_callbacks.push_back(cb);
  }
  void on_begin(const ProgressEvent& e) override {
    for (auto* c : m_callbacks) c->on_begin(e);
  }
  bool on_progress(const ProgressEvent& e) override {
    bool go = true;
    for (auto* c : m_callbacks) go = c->on_progress(e) && go;
    return go;
  }
  void on_note(const std::string& note) override {
    for (auto* c : m_callbacks) c->on_note(note);
  }
  void on_end(const ProgressEvent& e, const std::string& msg) override {
    for (auto* c : m_callbacks) c->on_end(e, msg);
  }

 private:
  std::vector<Callback*> m_callbacks;
};

namespace detail {
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", s / 60, s % 60);
  return buf;
}
}  // namespace detail

/// \brief A one-line terminal progress bar: phase, bar, step/total, loss, throughput, ETA.
///
/// Redraws at most every `min_interval_seconds` (default 0.1 s) with a carriage return; prints a
/// newline at the end. Writes to the stream given (std::cerr in the examples).
class ProgressBar : public Callback {
 public:
  explicit ProgressBar(std::ostream& os, int width = 28, double min_interval_seconds = 0.1)
      : m_os(os), m_width(width), m_interval(min_interval_seconds) {}

  void on_begin(const ProgressEvent& e) override {
    m_last_draw = -1e9;
    draw(e, true);
  }
  bool on_progress(const ProgressEvent& e) override {
    draw(e, false);
    return true;
  }
  void on_end(const ProgressEvent& e, const std::string& msg) override {
    draw(e, true);
    m_os << "\n";
    if (!msg.empty()) m_os << "  " << msg << "\n";
    m_os.flush();
  }
  /// Prints the note on its own line.
  void on_note(const std::string& note) override {
    m_os << note << "\n";
    m_os.flush();
  }

 private:
  void draw(const ProgressEvent& e, bool force) {
    if (!force && e.elapsed_seconds - m_last_draw < m_interval) return;
    m_last_draw = e.elapsed_seconds;
    const double frac =
        e.total > 0 ? std::min(1.0, static_cast<double>(e.step) / static_cast<double>(e.total))
                    : 0.0;
    const int filled = static_cast<int>(frac * m_width);
    std::ostringstream line;
    line << "\r" << e.phase << " [" << std::string(static_cast<size_t>(filled), '#')
         << std::string(static_cast<size_t>(m_width - filled), '.') << "] " << e.step;
    if (e.total > 0) line << "/" << e.total;
    line << std::setprecision(4);
    if (std::isfinite(e.loss)) line << " loss " << e.loss;
    if (std::isfinite(e.val_loss)) line << " val " << e.val_loss;
    for (const auto& kv : e.extra) line << " " << kv.first << " " << kv.second;
    if (e.items_per_second > 0) line << " " << std::setprecision(3) << e.items_per_second << "/s";
    const double eta = (frac > 0 && frac < 1) ? e.elapsed_seconds * (1 - frac) / frac : 0.0;
    line << " " << detail::format_duration(e.elapsed_seconds);
    if (e.total > 0 && frac < 1) line << " eta " << detail::format_duration(eta);
    line << "   ";
    m_os << line.str();
    m_os.flush();
  }

  std::ostream& m_os;
  int m_width;
  double m_interval;
  double m_last_draw = -1e9;
};

/// \brief Writes one CSV row per progress event: phase,step,total,epoch,loss,val_loss,
/// items_per_second,elapsed_seconds, then the `extra` values (names taken from the first event).
class CsvLogger : public Callback {
 public:
  explicit CsvLogger(std::ostream& os) : m_os(os) {}
  void on_begin(const ProgressEvent& e) override { write(e); }
  bool on_progress(const ProgressEvent& e) override {
    write(e);
    return true;
  }
  void on_end(const ProgressEvent& e, const std::string&) override {
    write(e);
    m_os.flush();
  }

 private:
  void write(const ProgressEvent& e) {
    if (!m_header_written) {
      m_os << "phase,step,total,epoch,loss,val_loss,items_per_second,elapsed_seconds";
      for (const auto& kv : e.extra) {
        m_os << "," << kv.first;
        m_extra_names.push_back(kv.first);
      }
      m_os << "\n";
      m_header_written = true;
    }
    m_os << e.phase << "," << e.step << "," << e.total << "," << e.epoch << ","
         << std::setprecision(9) << e.loss << "," << e.val_loss << "," << e.items_per_second << ","
         << e.elapsed_seconds;
    for (const auto& name : m_extra_names) {
      double v = std::numeric_limits<double>::quiet_NaN();
      for (const auto& kv : e.extra)
        if (kv.first == name) v = kv.second;
      m_os << "," << v;
    }
    m_os << "\n";
  }

  std::ostream& m_os;
  bool m_header_written = false;
  std::vector<std::string> m_extra_names;
};

/// \brief Wall-clock stopwatch for filling ProgressEvent::elapsed_seconds.
class Stopwatch {
 public:
  Stopwatch() : m_start(std::chrono::steady_clock::now()) {}
  void restart() { m_start = std::chrono::steady_clock::now(); }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
  }

 private:
  std::chrono::steady_clock::time_point m_start;
};

}  // namespace ergo

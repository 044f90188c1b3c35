// SPDX-License-Identifier: MIT
#pragma once

/// \file status.hpp
/// \brief Outcome of an algorithm that can fail for numerical rather than input reasons.

#include <string>

namespace ergo {

/// \brief What happened to an iterative algorithm (training, a solver).
///
/// Bad input never produces a Status: it throws. A Status reports algorithmic outcomes.
enum class Status {
  Success,         ///< finished as asked
  NotConverged,    ///< stopped at its iteration or time limit before its tolerance
  NumericalIssue,  ///< a loss, gradient or intermediate became non-finite; see the message
  Stopped          ///< a callback asked to stop early
};

/// \brief "Success", "NotConverged", "NumericalIssue" or "Stopped".
inline const char* to_string(Status s) {
  switch (s) {
    case Status::Success:
      return "Success";
    case Status::NotConverged:
      return "NotConverged";
    case Status::NumericalIssue:
      return "NumericalIssue";
    case Status::Stopped:
      return "Stopped";
  }
  return "Unknown";
}

/// \brief A Status with a human-readable message (empty on success).
struct Outcome {
  Status status = Status::Success;
  std::string message;
  bool ok() const { return status == Status::Success; }
};

}  // namespace ergo

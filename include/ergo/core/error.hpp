// SPDX-License-Identifier: MIT
#pragma once

/// \file error.hpp
/// \brief Exception types, check helpers and the ERGO_ASSERT / ERGO_CHECK macros.
///
/// Three tiers:
/// - bad user input throws ergo::InvalidArgument (a std::invalid_argument) whose message reads
///   "who(): what: expected X, got Y";
/// - runtime trouble outside the caller's control (a file, an exhausted limit) throws
///   ergo::RuntimeError (a std::runtime_error);
/// - a broken internal contract is caught by ERGO_ASSERT (debug builds) or ERGO_CHECK (always),
///   which throw ergo::LogicError naming the file and line.

#include "types.hpp"

#include <Eigen/Core>

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ergo {

/// Bad input to a public function: wrong shape, non-finite data, out-of-range parameter.
class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// A failure that is not the caller's argument: an I/O error, a resource limit.
class RuntimeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A violated internal contract (a bug in ergo): raised by ERGO_CHECK / ERGO_ASSERT.
class LogicError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {

/// Concatenates anything streamable into a string.
template <class... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

}  // namespace detail

/// \brief Builds the canonical message "who(): what: expected X, got Y".
/// \param who the public function or method, e.g. "ConceptModel::posterior"
/// \param what the argument or field, e.g. "x"
template <class Expected, class Got>
std::string make_message(const std::string& who, const std::string& what, const Expected& expected,
                         const Got& got) {
  return detail::str_cat(who, "(): ", what, ": expected ", expected, ", got ", got);
}

/// \brief Throws InvalidArgument with the canonical message.
template <class Expected, class Got>
[[noreturn]] void throw_invalid(const std::string& who, const std::string& what,
                                const Expected& expected, const Got& got) {
  throw InvalidArgument(make_message(who, what, expected, got));
}

/// \brief Throws InvalidArgument unless `cond`; the message is only built on failure.
template <class Expected, class Got>
void check_arg(bool cond, const std::string& who, const std::string& what, const Expected& expected,
               const Got& got) {
  if (!cond) throw_invalid(who, what, expected, got);
}

/// \brief Checks that a matrix is rows × cols. Pass -1 for a dimension that may be anything.
template <class Derived>
void check_shape(const std::string& who, const std::string& what,
                 const Eigen::EigenBase<Derived>& m, Index rows, Index cols) {
  const bool ok = (rows < 0 || m.rows() == rows) && (cols < 0 || m.cols() == cols);
  if (!ok) {
    auto dim = [](Index v) { return v < 0 ? std::string("any") : std::to_string(v); };
    throw_invalid(who, what, detail::str_cat("shape ", dim(rows), " x ", dim(cols)),
                  detail::str_cat(m.rows(), " x ", m.cols()));
  }
}

/// \brief Number of non-finite (NaN or ±inf) entries of a dense expression.
template <class Derived>
Index count_non_finite(const Eigen::DenseBase<Derived>& m) {
  Index bad = 0;
  for (Index j = 0; j < m.cols(); ++j)
    for (Index i = 0; i < m.rows(); ++i)
      if (!std::isfinite(static_cast<double>(m(i, j)))) ++bad;
  return bad;
}

/// \brief Throws InvalidArgument naming how many entries are NaN or infinite.
template <class Derived>
void check_finite(const std::string& who, const std::string& what,
                  const Eigen::DenseBase<Derived>& m) {
  const Index bad = count_non_finite(m);
  if (bad > 0)
    throw_invalid(who, what, "all entries finite",
                  detail::str_cat(bad, " non-finite of ", m.size()));
}

/// \brief Throws InvalidArgument unless lo <= value <= hi.
template <class T>
void check_range(const std::string& who, const std::string& what, const T& value, const T& lo,
                 const T& hi) {
  if (!(value >= lo && value <= hi))
    throw_invalid(who, what, detail::str_cat("a value in [", lo, ", ", hi, "]"), value);
}

/// \brief Throws InvalidArgument unless value > 0 (NaN fails).
template <class T>
void check_positive(const std::string& who, const std::string& what, const T& value) {
  if (!(value > T(0))) throw_invalid(who, what, "a positive value", value);
}

namespace detail {
[[noreturn]] inline void contract_failure(const char* expr, const char* file, int line,
                                          const std::string& msg) {
  throw LogicError(str_cat("ergo internal check failed: ", expr, " at ", file, ":", line,
                           msg.empty() ? "" : " (", msg, msg.empty() ? "" : ")"));
}
}  // namespace detail

}  // namespace ergo

/// Always-on internal contract: throws ergo::LogicError with file, line and message.
#define ERGO_CHECK(cond, msg)                                                      \
  do {                                                                             \
    if (!(cond)) ::ergo::detail::contract_failure(#cond, __FILE__, __LINE__, msg); \
  } while (0)

/// Debug-only internal contract (compiled out with NDEBUG).
#ifdef NDEBUG
#define ERGO_ASSERT(cond) \
  do {                    \
  } while (0)
#else
#define ERGO_ASSERT(cond) ERGO_CHECK(cond, "")
#endif

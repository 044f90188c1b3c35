// SPDX-License-Identifier: MIT
#pragma once

/// \file types.hpp
/// \brief Scalar and shape aliases shared by every module, and per-scalar numeric traits.
///
/// Conventions: samples are columns (a batch of n vectors of size d is a d × n column-major
/// matrix); scalars are template parameters (float for training, double for exact inference
/// and statistics).

#include <Eigen/Core>

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace ergo {

using Index = Eigen::Index;

/// Dynamic column-major matrix; columns are samples.
template <class Scalar>
using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
/// Dynamic column vector.
template <class Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
/// Dynamic row vector (one value per sample, e.g. a per-column reduction).
template <class Scalar>
using RowVector = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;

/// Discrete data (concept values, observed tokens): 32-bit integers, samples are columns.
using IntMatrix = Eigen::Matrix<std::int32_t, Eigen::Dynamic, Eigen::Dynamic>;
using IntVector = Eigen::Matrix<std::int32_t, Eigen::Dynamic, 1>;
using IntRowVector = Eigen::Matrix<std::int32_t, 1, Eigen::Dynamic>;
/// A list of Eigen indices (permutations, selections).
using IndexVector = Eigen::Matrix<Index, Eigen::Dynamic, 1>;

using MatrixXf = Matrix<float>;
using MatrixXd = Matrix<double>;
using VectorXf = Vector<float>;
using VectorXd = Vector<double>;

/// \brief Per-scalar numeric constants, so that no tolerance is a bare literal.
///
/// `eps` is machine epsilon; `sqrt_eps` suits finite differences and "is this zero" tests;
/// `prob_tol` is the tolerance for probability vectors summing to one; `test_tol` is a loose
/// default for comparing two independent computations of the same quantity.
template <class Scalar>
struct ScalarTraits {
  static_assert(std::is_floating_point<Scalar>::value,
                "ergo::ScalarTraits: Scalar must be float, double or long double");
  static constexpr Scalar eps() { return std::numeric_limits<Scalar>::epsilon(); }
  static constexpr Scalar inf() { return std::numeric_limits<Scalar>::infinity(); }
  static constexpr Scalar nan() { return std::numeric_limits<Scalar>::quiet_NaN(); }
  static constexpr Scalar lowest() { return std::numeric_limits<Scalar>::lowest(); }
  /// sqrt(eps): ~3.5e-4 for float, ~1.5e-8 for double.
  static Scalar sqrt_eps() { return static_cast<Scalar>(std::sqrt(eps())); }
  /// Tolerance for "a probability vector sums to one": 1e-4 (float) / 1e-9 (double).
  static constexpr Scalar prob_tol() {
    return std::is_same<Scalar, float>::value ? Scalar(1e-4) : Scalar(1e-9);
  }
  /// Loose agreement between two computations of one quantity: 1e-4 (float) / 1e-10 (double).
  static constexpr Scalar test_tol() {
    return std::is_same<Scalar, float>::value ? Scalar(1e-4) : Scalar(1e-10);
  }
};

}  // namespace ergo

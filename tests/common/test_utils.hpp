// SPDX-License-Identifier: MIT
#pragma once

// Shared helpers for ergo's GoogleTest suites: EXPECT_EIGEN_NEAR, typed-test scalar lists, and
// problem-size shrinking under sanitizers.

#include <ergo/core.hpp>

#include <gtest/gtest.h>

#include <sstream>
#include <string>

namespace ergo::test {

/// Max-abs comparison of two Eigen expressions of equal shape, with a readable failure message.
template <class A, class B>
::testing::AssertionResult eigen_near(const char* a_expr, const char* b_expr, const char*,
                                      const Eigen::DenseBase<A>& a, const Eigen::DenseBase<B>& b,
                                      double tol) {
  if (a.rows() != b.rows() || a.cols() != b.cols())
    return ::testing::AssertionFailure()
           << a_expr << " is " << a.rows() << "x" << a.cols() << " but " << b_expr << " is "
           << b.rows() << "x" << b.cols();
  double worst = 0.0;
  Index wi = 0, wj = 0;
  for (Index j = 0; j < a.cols(); ++j)
    for (Index i = 0; i < a.rows(); ++i) {
      const double d = std::abs(static_cast<double>(a.derived().coeff(i, j)) -
                                static_cast<double>(b.derived().coeff(i, j)));
      if (!(d <= worst)) {  // also catches NaN
        worst = d;
        wi = i;
        wj = j;
      }
    }
  if (worst <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << a_expr << " and " << b_expr << " differ by " << worst << " > " << tol << " at (" << wi
         << ", " << wj << "): " << a.derived().coeff(wi, wj) << " vs " << b.derived().coeff(wi, wj);
}

/// Scaling factor for problem sizes: 1 normally, smaller under sanitizers (slower builds).
inline double size_scale() {
#ifdef ERGO_SANITIZE_BUILD
  return 0.25;
#else
  return 1.0;
#endif
}
inline Index scaled(Index n, Index at_least = 1) {
  const Index s = static_cast<Index>(static_cast<double>(n) * size_scale());
  return s < at_least ? at_least : s;
}

using FloatTypes = ::testing::Types<float, double>;

}  // namespace ergo::test

#define EXPECT_EIGEN_NEAR(a, b, tol) EXPECT_PRED_FORMAT3(::ergo::test::eigen_near, a, b, tol)
#define ASSERT_EIGEN_NEAR(a, b, tol) ASSERT_PRED_FORMAT3(::ergo::test::eigen_near, a, b, tol)

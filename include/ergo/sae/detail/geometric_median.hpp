// SPDX-License-Identifier: MIT
#pragma once

/// \file geometric_median.hpp
/// \brief Geometric median by Weiszfeld's iteration (private to the sae module; the trainer
/// initialises the decoder bias with it).

#include "../../core/types.hpp"

#include <algorithm>
#include <cmath>

namespace ergo::sae::detail {

/// \brief Geometric median of the columns of `x` (d × n) by Weiszfeld's iteration, in double.
///
/// Starts at the mean; each iteration m ← Σ_b w_b x_b / Σ_b w_b with w_b = 1/‖x_b − m‖ (distances
/// below `tiny` are floored to avoid the singular weight at a data point). Stops when the step is
/// below tol · (1 + ‖m‖) or after max_iter iterations.
template <class Derived>
Vector<double> geometric_median(const Eigen::MatrixBase<Derived>& x, Index max_iter, double tol) {
  const Matrix<double> xd = x.template cast<double>();
  Vector<double> med = xd.rowwise().mean();
  const double tiny = 1e-12 * (1.0 + xd.cwiseAbs().maxCoeff());
  for (Index it = 0; it < max_iter; ++it) {
    Vector<double> acc = Vector<double>::Zero(xd.rows());
    double wsum = 0.0;
    for (Index b = 0; b < xd.cols(); ++b) {
      const double w = 1.0 / std::max((xd.col(b) - med).norm(), tiny);
      acc.noalias() += w * xd.col(b);
      wsum += w;
    }
    acc /= wsum;
    const double step = (acc - med).norm();
    med = acc;
    if (step < tol * (1.0 + med.norm())) break;
  }
  return med;
}

}  // namespace ergo::sae::detail

// SPDX-License-Identifier: MIT
#pragma once

/// \file gradcheck.hpp
/// \brief Finite-difference gradient checks for hand-written backward passes (use double).
///
/// Central differences g ≈ (f(θ + h) − f(θ − h)) / 2h have truncation error h² |f'''| / 6 and
/// rounding error ≈ eps |f| / h; with h ≈ 1e-6 · max(1, |θ|) in double both are ≲ 1e-9 for the
/// smooth O(1) losses used here, so an analytic gradient that is right agrees to ~1e-8 relative,
/// and one that is wrong is off by O(1). Kinks (ReLU at 0) break the estimate only when an input
/// lies within h of the kink, which random inputs avoid with probability ≈ 1 − 1e-6 per entry.
///
/// \code
/// ergo::nn::NextTokenModel<double> model(...);
/// auto params = model.parameters();
/// model.loss_and_grad(x, y);                                   // analytic gradients
/// auto r = ergo::nn::check_gradients(params, [&] { return model.evaluate(x, y); });
/// EXPECT_LT(r.max_rel_error, 1e-6);
/// \endcode

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "parameter.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace ergo::nn {

/// \brief Outcome of a gradient check.
struct GradCheckResult {
  double max_abs_error = 0.0;   ///< max |analytic − numeric| over the checked entries
  double max_rel_error = 0.0;   ///< max |a − n| / max(|a|, |n|, floor)
  std::string worst;            ///< "name[i]" of the entry with the largest relative error
  double worst_analytic = 0.0;  ///< analytic value at `worst`
  double worst_numeric = 0.0;   ///< numeric value at `worst`
  Index checked = 0;            ///< number of entries compared
};

/// \brief Central-difference gradient of a scalar function of a matrix.
/// \param f    callable double(const Matrix<double>&)
/// \param x    point (any shape)
/// \param h    relative step: entry i moves by h · max(1, |x_i|)
/// \return matrix of the shape of x with ∂f/∂x_i
template <class F>
Matrix<double> numerical_gradient(F&& f, Matrix<double> x, double h = 1e-6) {
  check_positive("numerical_gradient", "h", h);
  Matrix<double> g(x.rows(), x.cols());
  for (Index i = 0; i < x.size(); ++i) {
    const double xi = x(i);
    const double step = h * std::max(1.0, std::abs(xi));
    x(i) = xi + step;
    const double fp = f(static_cast<const Matrix<double>&>(x));
    x(i) = xi - step;
    const double fm = f(static_cast<const Matrix<double>&>(x));
    x(i) = xi;
    g(i) = (fp - fm) / (2.0 * step);
  }
  return g;
}

/// \brief Compares two gradients entrywise. \param analytic, numeric same shape
/// \param floor smallest denominator of the relative error (makes tiny gradients absolute)
template <class DA, class DN>
GradCheckResult compare_gradients(const Eigen::MatrixBase<DA>& analytic,
                                  const Eigen::MatrixBase<DN>& numeric, double floor = 1e-3,
                                  const std::string& name = "x") {
  check_shape("compare_gradients", "numeric", numeric, analytic.rows(), analytic.cols());
  GradCheckResult r;
  for (Index j = 0; j < analytic.cols(); ++j)
    for (Index i = 0; i < analytic.rows(); ++i) {
      const double a = static_cast<double>(analytic(i, j));
      const double n = static_cast<double>(numeric(i, j));
      const double abs_err = std::abs(a - n);
      const double rel = abs_err / std::max({std::abs(a), std::abs(n), floor});
      r.max_abs_error = std::max(r.max_abs_error, abs_err);
      if (!(rel <= r.max_rel_error)) {  // also records NaN
        r.max_rel_error = rel;
        r.worst = detail::str_cat(name, "[", i + j * analytic.rows(), "]");
        r.worst_analytic = a;
        r.worst_numeric = n;
      }
      ++r.checked;
    }
  return r;
}

/// \brief Checks the gradients already stored in `params` against central differences of `loss`.
///
/// \param params  parameter views whose `grad` holds the analytic gradient of loss() at the
///                current values (the grads are copied first, so loss() may overwrite them)
/// \param loss    callable returning the loss (double) for the current parameter values
/// \param h       relative finite-difference step (see numerical_gradient)
/// \param max_per_param  check at most this many evenly spaced entries of each parameter
///                (0 = all)
/// \param floor   smallest denominator of the relative error
/// Every parameter value is restored exactly afterwards.
template <class Scalar, class LossFn>
GradCheckResult check_gradients(ParameterList<Scalar>& params, LossFn&& loss, double h = 1e-6,
                                Index max_per_param = 0, double floor = 1e-3) {
  check_positive("check_gradients", "h", h);
  GradCheckResult total;
  std::vector<Matrix<double>> analytic;
  for (const auto& p : params) analytic.push_back(p.grad.template cast<double>());
  for (size_t k = 0; k < params.size(); ++k) {
    auto& p = params[k];
    const Index n = p.size();
    const Index count = max_per_param > 0 ? std::min(max_per_param, n) : n;
    for (Index c = 0; c < count; ++c) {
      const Index i = count == n ? c : (c * n) / count;
      Scalar* v = p.value.data() + i;
      const Scalar orig = *v;
      const double step = h * std::max(1.0, std::abs(static_cast<double>(orig)));
      const Scalar up = static_cast<Scalar>(static_cast<double>(orig) + step);
      const Scalar down = static_cast<Scalar>(static_cast<double>(orig) - step);
      *v = up;
      const double fp = loss();
      *v = down;
      const double fm = loss();
      *v = orig;
      // The actual (rounded) perturbation, which differs from 2·step in float.
      const double width = static_cast<double>(up) - static_cast<double>(down);
      const Matrix<double> a = Matrix<double>::Constant(1, 1, analytic[k](i));
      const Matrix<double> num = Matrix<double>::Constant(1, 1, (fp - fm) / width);
      const GradCheckResult r = compare_gradients(a, num, floor);
      total.max_abs_error = std::max(total.max_abs_error, r.max_abs_error);
      if (!(r.max_rel_error <= total.max_rel_error)) {
        total.max_rel_error = r.max_rel_error;
        total.worst = detail::str_cat(p.name, "[", i, "]");
        total.worst_analytic = r.worst_analytic;
        total.worst_numeric = r.worst_numeric;
      }
      ++total.checked;
    }
  }
  for (size_t k = 0; k < params.size(); ++k) params[k].grad = analytic[k].template cast<Scalar>();
  return total;
}

}  // namespace ergo::nn

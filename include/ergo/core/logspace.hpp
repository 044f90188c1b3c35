// SPDX-License-Identifier: MIT
#pragma once

/// \file logspace.hpp
/// \brief Numerically safe log-sum-exp, softmax and log-softmax over the columns of a matrix, and
/// the Helmert basis of the sum-zero subspace (coordinates of centred log-probabilities).
///
/// Every function treats each column as one distribution (samples are columns). A column of all
/// −inf has log-sum-exp −inf; softmax of such a column is refused (it is not a distribution).
/// NaN inputs propagate to the affected column only.

#include "error.hpp"
#include "types.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ergo {

/// \brief exp of a log-space array expression that maps −inf to exactly 0.
///
/// Eigen's vectorised exp clamps very negative inputs and returns ~1e-308 (double) for −inf
/// instead of 0; log-space code must use this wherever an exact zero matters.
template <class Derived>
auto exp_of_log(const Eigen::ArrayBase<Derived>& a) {
  using Scalar = typename Derived::Scalar;
  return (a == -std::numeric_limits<Scalar>::infinity()).select(Scalar(0), a.exp());
}

/// \brief log(exp(a) + exp(b)) without overflow.
template <class Scalar>
Scalar log_add_exp(Scalar a, Scalar b) {
  if (a == -std::numeric_limits<Scalar>::infinity()) return b;
  if (b == -std::numeric_limits<Scalar>::infinity()) return a;
  const Scalar m = std::max(a, b);
  return m + std::log1p(std::exp(-std::abs(a - b)));
}

/// \brief log Σ_i exp(v_i) of a vector expression (−inf for an empty or all −inf vector).
template <class Derived>
typename Derived::Scalar log_sum_exp(const Eigen::DenseBase<Derived>& v) {
  using Scalar = typename Derived::Scalar;
  const Scalar neg_inf = -std::numeric_limits<Scalar>::infinity();
  if (v.size() == 0) return neg_inf;
  const Scalar m = v.maxCoeff();
  if (m == neg_inf || !std::isfinite(m)) return m;  // all −inf, or +inf / NaN present
  return m + std::log((v.derived().array() - m).exp().sum());
}

/// \brief Column-wise log-sum-exp.
/// \param m  k × n matrix (each column one set of log-weights)
/// \return   1 × n row vector, entry j = log Σ_i exp(m(i, j))
template <class Derived>
RowVector<typename Derived::Scalar> log_sum_exp_cols(const Eigen::MatrixBase<Derived>& m) {
  using Scalar = typename Derived::Scalar;
  const Scalar neg_inf = -std::numeric_limits<Scalar>::infinity();
  RowVector<Scalar> out(m.cols());
  if (m.rows() == 0) {
    out.setConstant(neg_inf);
    return out;
  }
  const RowVector<Scalar> mx = m.colwise().maxCoeff();
  for (Index j = 0; j < m.cols(); ++j) {
    const Scalar c = mx[j];
    if (!std::isfinite(c)) {
      out[j] = c;  // all −inf → −inf; +inf → +inf; NaN → NaN
      continue;
    }
    out[j] = c + std::log((m.col(j).array() - c).exp().sum());
  }
  return out;
}

/// \brief Subtracts each column's log-sum-exp in place: columns become log-probabilities.
/// \param m k × n matrix of log-weights, overwritten with log-softmax of each column
/// Accepts plain matrices, blocks and Maps (Eigen's const-cast idiom for writable expressions).
template <class Derived>
void log_softmax_cols_inplace(const Eigen::MatrixBase<Derived>& m_) {
  auto& m = const_cast<Eigen::MatrixBase<Derived>&>(m_);
  const auto lse = log_sum_exp_cols(m);
  m.rowwise() -= lse;
}

/// \brief Column-wise log-softmax.
/// \param m k × n log-weights \return k × n log-probabilities (each column log-sums to 0)
template <class Derived>
Matrix<typename Derived::Scalar> log_softmax_cols(const Eigen::MatrixBase<Derived>& m) {
  Matrix<typename Derived::Scalar> out = m;
  log_softmax_cols_inplace(out);
  return out;
}

/// \brief Column-wise softmax in place.
/// \param m k × n log-weights, overwritten with probabilities (each column sums to one)
/// \throws InvalidArgument if a column is all −inf (no distribution) or holds +inf / NaN
template <class Derived>
void softmax_cols_inplace(const Eigen::MatrixBase<Derived>& m_) {
  auto& m = const_cast<Eigen::MatrixBase<Derived>&>(m_);
  using Scalar = typename Derived::Scalar;
  for (Index j = 0; j < m.cols(); ++j) {
    if (m.rows() == 0) break;
    const Scalar c = m.col(j).maxCoeff();
    if (!std::isfinite(c))
      throw_invalid("softmax_cols", "m", "columns with a finite maximum",
                    detail::str_cat("column ", j, " with maximum ", c));
    m.col(j) = exp_of_log(m.col(j).array() - c).matrix();
    m.col(j) /= m.col(j).sum();
  }
}

/// \brief Column-wise softmax. \param m k × n \return k × n probabilities
template <class Derived>
Matrix<typename Derived::Scalar> softmax_cols(const Eigen::MatrixBase<Derived>& m) {
  Matrix<typename Derived::Scalar> out = m;
  softmax_cols_inplace(out);
  return out;
}

/// \brief Orthonormal basis of the sum-zero subspace of ℝ^ℓ (Helmert contrasts).
///
/// Column j (j = 0..ℓ−2) is (1, …, 1, −(j+1), 0, …, 0)/sqrt((j+1)(j+2)) with j+1 ones.
/// \param l dimension ℓ ≥ 2 \return ℓ × (ℓ−1) matrix V with VᵀV = I and Vᵀ1 = 0
inline Matrix<double> helmert_basis(Index l) {
  check_arg(l >= 2, "helmert_basis", "l", "at least 2", l);
  Matrix<double> v = Matrix<double>::Zero(l, l - 1);
  for (Index j = 0; j < l - 1; ++j) {
    const double jj = static_cast<double>(j + 1);
    const double s = 1.0 / std::sqrt(jj * (jj + 1.0));
    v.col(j).head(j + 1).setConstant(s);
    v(j + 1, j) = -jj * s;
  }
  return v;
}

/// \brief log(p) that refuses negative or NaN input and maps 0 to −inf explicitly.
template <class Scalar>
Scalar safe_log(Scalar p) {
  if (!(p >= Scalar(0))) throw_invalid("safe_log", "p", "a non-negative probability", p);
  return p == Scalar(0) ? -std::numeric_limits<Scalar>::infinity() : std::log(p);
}

/// \brief Stable log(1 − exp(x)) for x ≤ 0 (Mächler's log1mexp).
template <class Scalar>
Scalar log1m_exp(Scalar x) {
  if (x > Scalar(0)) throw_invalid("log1m_exp", "x", "x <= 0", x);
  return x > Scalar(-0.6931471805599453) ? std::log(-std::expm1(x)) : std::log1p(-std::exp(x));
}

}  // namespace ergo

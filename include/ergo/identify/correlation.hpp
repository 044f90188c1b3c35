// SPDX-License-Identifier: MIT
#pragma once

/// \file correlation.hpp
/// \brief Pearson and Spearman correlations (vectors and row-by-row matrices), average ranks, and
/// the mean correlation coefficient (MCC) with an optimal one-to-one matching.
///
/// Shapes: rows are variables, columns are samples. X is p × N, Y is q × N; the correlation
/// matrix is p × q. A zero-variance row has correlation 0 with everything (documented choice: a
/// constant feature carries no information about any target).
///
/// MCC (Hyvärinen & Morioka 2016; Khemakhem et al. 2020), pinned here because implementations
/// disagree: with C_ij = |corr(t_i, f_j)| over the k true factors t_i and
/// the d learned dimensions f_j, MCC = (1/k) Σ_i C_{i,π(i)} for the injective π maximising the
/// sum (k ≤ d). When k > d only d factors can be matched and the unmatched ones count as 0.
/// Spearman uses *average* ranks for ties (scipy's convention), which matters for discrete data.
///
/// \code
/// ergo::identify::MccResult m = ergo::identify::mcc(T, F);                            // in-sample
/// ergo::identify::MccResult h = ergo::identify::mcc_out_of_sample(T_tr, F_tr, T_te, F_te);  //
/// match on train \endcode

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "assignment.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace ergo::identify {

/// \brief Which correlation coefficient.
enum class CorrelationKind {
  Pearson,   ///< linear correlation
  Spearman,  ///< Pearson on average ranks (monotone association)
};

/// \brief "pearson" or "spearman".
inline const char* to_string(CorrelationKind k) {
  return k == CorrelationKind::Pearson ? "pearson" : "spearman";
}

/// \brief Average ranks (1-based; ties get the mean of the ranks they span).
/// \param x length-N vector (finite) \return length-N row vector of ranks
template <class Derived>
RowVector<double> average_ranks(const Eigen::DenseBase<Derived>& x_in) {
  const auto& x = x_in.eval();
  const Index n = x.size();
  std::vector<Index> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), Index(0));
  std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) {
    return static_cast<double>(x(a)) < static_cast<double>(x(b));
  });
  RowVector<double> r(n);
  Index i = 0;
  while (i < n) {
    Index j = i;
    while (j + 1 < n && static_cast<double>(x(order[static_cast<size_t>(j + 1)])) ==
                            static_cast<double>(x(order[static_cast<size_t>(i)])))
      ++j;
    const double avg = 0.5 * static_cast<double>(i + j) + 1.0;
    for (Index t = i; t <= j; ++t) r(order[static_cast<size_t>(t)]) = avg;
    i = j + 1;
  }
  return r;
}

namespace detail {
// Rows centred and scaled to unit norm (zero rows stay zero), in double.
template <class Derived>
Matrix<double> standardized_rows(const Eigen::MatrixBase<Derived>& x, CorrelationKind kind) {
  Matrix<double> z(x.rows(), x.cols());
  if (kind == CorrelationKind::Spearman)
    for (Index i = 0; i < x.rows(); ++i) z.row(i) = average_ranks(x.row(i));
  else
    z = x.template cast<double>();
  const double n = static_cast<double>(z.cols());
  for (Index i = 0; i < z.rows(); ++i) {
    const double scale = z.cols() > 0 ? z.row(i).cwiseAbs().maxCoeff() : 0.0;
    z.row(i).array() -= z.row(i).mean();
    const double nrm = z.row(i).norm();
    // A constant row leaves only rounding after centring: each entry off by a few ulps of the
    // values, so a norm below 16·eps·sqrt(N)·max|x| is treated as zero variance.
    if (nrm > 16.0 * ScalarTraits<double>::eps() * std::sqrt(n) * scale)
      z.row(i) /= nrm;
    else
      z.row(i).setZero();
  }
  return z;
}
}  // namespace detail

/// \brief Correlation of every row of X with every row of Y.
/// \param x p × N \param y q × N (same N ≥ 2, finite) \return p × q correlations in [−1, 1]
template <class DX, class DY>
Matrix<double> correlation_matrix(const Eigen::MatrixBase<DX>& x_in,
                                  const Eigen::MatrixBase<DY>& y_in,
                                  CorrelationKind kind = CorrelationKind::Pearson) {
  const char* who = "correlation_matrix";
  const auto& x = x_in.eval();  // expressions are evaluated once; plain matrices are not copied
  const auto& y = y_in.eval();
  check_arg(x.cols() == y.cols(), who, "y", ergo::detail::str_cat(x.cols(), " columns (as x)"),
            y.cols());
  check_arg(x.cols() >= 2, who, "x", "at least 2 samples (columns)", x.cols());
  check_finite(who, "x", x);
  check_finite(who, "y", y);
  const Matrix<double> zx = detail::standardized_rows(x, kind);
  const Matrix<double> zy = detail::standardized_rows(y, kind);
  Matrix<double> c(x.rows(), y.rows());
  c.noalias() = zx * zy.transpose();
  return c.cwiseMax(-1.0).cwiseMin(1.0);
}

/// \brief Correlation of two vectors of equal length N ≥ 2 (0 if either is constant).
template <class DA, class DB>
double correlation(const Eigen::MatrixBase<DA>& a, const Eigen::MatrixBase<DB>& b,
                   CorrelationKind kind = CorrelationKind::Pearson) {
  check_arg(a.size() == b.size(), "correlation", "b", ergo::detail::str_cat("size ", a.size()),
            b.size());
  return correlation_matrix(a.reshaped().transpose(), b.reshaped().transpose(), kind)(0, 0);
}

/// \brief Pearson correlation of two vectors. \sa correlation
template <class DA, class DB>
double pearson(const Eigen::MatrixBase<DA>& a, const Eigen::MatrixBase<DB>& b) {
  return correlation(a, b, CorrelationKind::Pearson);
}

/// \brief Spearman rank correlation (average ranks for ties). \sa correlation
template <class DA, class DB>
double spearman(const Eigen::MatrixBase<DA>& a, const Eigen::MatrixBase<DB>& b) {
  return correlation(a, b, CorrelationKind::Spearman);
}

/// \brief Result of an MCC computation.
struct MccResult {
  double mcc = 0.0;            ///< mean over the k factors of the matched |correlation|
  Vector<double> matched;      ///< k: matched |correlation| per factor (0 if unmatched)
  IndexVector assignment;      ///< k: learned dimension matched to each factor (−1: none)
  Matrix<double> correlation;  ///< k × d signed correlations used for the score
  CorrelationKind kind = CorrelationKind::Pearson;
};

/// \brief In-sample MCC between true factors T (k × N) and learned dimensions F (d × N).
template <class DT, class DF>
MccResult mcc(const Eigen::MatrixBase<DT>& t, const Eigen::MatrixBase<DF>& f,
              CorrelationKind kind = CorrelationKind::Pearson) {
  MccResult r;
  r.kind = kind;
  r.correlation = correlation_matrix(t, f, kind);
  const Assignment a = linear_sum_assignment(r.correlation.cwiseAbs(), true);
  r.assignment = a.row_to_col;
  r.matched = Vector<double>::Zero(t.rows());
  for (Index i = 0; i < t.rows(); ++i)
    if (r.assignment[i] >= 0) r.matched[i] = std::abs(r.correlation(i, r.assignment[i]));
  r.mcc = r.matched.mean();
  return r;
}

/// \brief Out-of-sample MCC: the matching is learned on (T_train, F_train) and scored with
/// |correlation| on (T_test, F_test) (ICE-BeeM's mean_corr_coef_out_of_sample).
/// \param t_train k × N1 \param f_train d × N1 \param t_test k × N2 \param f_test d × N2
template <class DT1, class DF1, class DT2, class DF2>
MccResult mcc_out_of_sample(const Eigen::MatrixBase<DT1>& t_train,
                            const Eigen::MatrixBase<DF1>& f_train,
                            const Eigen::MatrixBase<DT2>& t_test,
                            const Eigen::MatrixBase<DF2>& f_test,
                            CorrelationKind kind = CorrelationKind::Pearson) {
  const char* who = "mcc_out_of_sample";
  check_arg(t_test.rows() == t_train.rows(), who, "t_test",
            ergo::detail::str_cat(t_train.rows(), " rows"), t_test.rows());
  check_arg(f_test.rows() == f_train.rows(), who, "f_test",
            ergo::detail::str_cat(f_train.rows(), " rows"), f_test.rows());
  const MccResult train = mcc(t_train, f_train, kind);
  MccResult r;
  r.kind = kind;
  r.assignment = train.assignment;
  r.correlation = correlation_matrix(t_test, f_test, kind);
  r.matched = Vector<double>::Zero(t_test.rows());
  for (Index i = 0; i < t_test.rows(); ++i)
    if (r.assignment[i] >= 0) r.matched[i] = std::abs(r.correlation(i, r.assignment[i]));
  r.mcc = r.matched.mean();
  return r;
}

}  // namespace ergo::identify

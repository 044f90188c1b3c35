// SPDX-License-Identifier: MIT
#pragma once

/// \file alignment_null.hpp
/// \brief The permutation null of the concept-alignment score (docs/sae.md, "The null of the
/// alignment score"): the score max_i corr(g(z_i), p_k) is a maximum over every feature, so
/// even codes unrelated to the concepts score above 0, and more so the more features they have.
/// The null permutes the samples of the concept posteriors relative to the features (one
/// permutation of the columns, shared by every concept, so the concepts keep their joint
/// distribution) and recomputes the maximum; its 95th and 99th percentiles are the thresholds a
/// real score must pass.
///
/// \code
/// ergo::Rng rng(7);
/// ergo::sae::AlignmentNull null = ergo::sae::alignment_null(z, p, 200, rng);  // z m × N, p K × N
/// double thr = null.mean_p99;             // threshold of the mean over concepts at 1 %
/// double pv = null.mean_p_value(observed_mean);
/// \endcode

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "../identify/resampling.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace ergo::sae {

/// \brief Null distribution of the max-over-features alignment score (alignment_null).
struct AlignmentNull {
  Index permutations = 0;           ///< B
  Matrix<double> values;            ///< K × B: max_i corr(g(z_i), p_k ∘ π_b) per concept k
  std::vector<double> mean_values;  ///< B: the mean over concepts of column b of `values`
  std::vector<double> p95, p99;     ///< per concept: 95th and 99th percentiles of its row
  double mean_p95 = std::numeric_limits<double>::quiet_NaN();  ///< percentiles of mean_values
  double mean_p99 = std::numeric_limits<double>::quiet_NaN();

  /// Phipson–Smyth p-value (1 + #{null ≥ observed}) / (B + 1) of concept k's observed score.
  double p_value(Index k, double observed) const {
    check_range("AlignmentNull::p_value", "k", k, Index(0), values.rows() - 1);
    std::vector<double> row(static_cast<size_t>(values.cols()));
    for (Index b = 0; b < values.cols(); ++b) row[static_cast<size_t>(b)] = values(k, b);
    return identify::permutation_p_value(observed, row);
  }
  /// p-value of an observed mean over concepts.
  double mean_p_value(double observed) const {
    return identify::permutation_p_value(observed, mean_values);
  }
};

namespace detail {

/// Rows of g(z) (g = exp with z clamped at 700, or the identity) centred and scaled to unit norm,
/// in double; a constant row becomes 0 (it correlates 0 with everything).
template <class DZ>
Matrix<double> standardized_rows(const Eigen::MatrixBase<DZ>& z, bool exp_codes) {
  Matrix<double> f = z.template cast<double>();
  if (exp_codes) f = f.cwiseMin(700.0).array().exp().matrix();
  const Vector<double> mu = f.rowwise().mean();
  f.colwise() -= mu;
  for (Index i = 0; i < f.rows(); ++i) {
    const double n = f.row(i).norm();
    if (n > 0.0 && std::isfinite(n))
      f.row(i) /= n;
    else
      f.row(i).setZero();
  }
  return f;
}

}  // namespace detail

/// \brief Permutation null of the alignment score of codes z (m × N) against concept targets
/// p (K × N): for b = 1..B, a uniform permutation π_b of the N samples is applied to the columns
/// of p (the same permutation for every concept), and values(k, b) = max_i Pearson(g(z_i),
/// p_k ∘ π_b), with g = exp (clamped at 700, as concept_alignment) when `exp_codes`, else the
/// identity. The maximum is signed, as the score's. Features are processed in row blocks of
/// `block`, so memory is O(block · N + N · K · chunk) whatever m.
/// \param z m × N codes \param p K × N targets (finite) \param permutations B ≥ 1; the p-value
/// can reach 1/(B + 1), so the 1 % threshold needs B ≥ 99 \param rng the permutations' source
/// \param exp_codes score exp(z) (the paper's score) or z \param block feature rows per block
template <class DZ>
AlignmentNull alignment_null(const Eigen::MatrixBase<DZ>& z,
                             const Eigen::Ref<const Matrix<double>>& p, Index permutations,
                             Rng& rng, bool exp_codes = true, Index block = 1024) {
  const char* who = "alignment_null";
  const Index N = z.cols(), K = p.rows(), m = z.rows();
  check_arg(p.cols() == N, who, "p", ergo::detail::str_cat(N, " columns (as z)"), p.cols());
  check_arg(N > 1, who, "z", "at least two columns", N);
  check_arg(K >= 1 && m >= 1, who, "z, p", "at least one feature and one concept",
            ergo::detail::str_cat(m, " features, ", K, " concepts"));
  check_arg(permutations >= 1, who, "permutations", "at least 1", permutations);
  check_arg(block >= 1, who, "block", "at least 1", block);
  check_finite(who, "p", p);
  // Targets centred and scaled to unit norm: a permutation changes neither, so corr = f · t_π.
  Matrix<double> t = p;
  t.colwise() -= t.rowwise().mean().eval();
  for (Index k = 0; k < K; ++k) {
    const double n = t.row(k).norm();
    if (n > 0.0)
      t.row(k) /= n;
    else
      t.row(k).setZero();
  }
  std::vector<IndexVector> perms;
  perms.reserve(static_cast<size_t>(permutations));
  for (Index b = 0; b < permutations; ++b) perms.push_back(rng.permutation(N));
  AlignmentNull out;
  out.permutations = permutations;
  out.values = Matrix<double>::Constant(K, permutations, -std::numeric_limits<double>::infinity());
  const Index chunk = std::max<Index>(1, 256 / K);  // permutations per product
  Matrix<double> tp, c;
  for (Index r0 = 0; r0 < m; r0 += block) {
    const Index rows = std::min(block, m - r0);
    const Matrix<double> f = detail::standardized_rows(z.middleRows(r0, rows), exp_codes);
    for (Index b0 = 0; b0 < permutations; b0 += chunk) {
      const Index nb = std::min(chunk, permutations - b0);
      tp.resize(N, nb * K);
      for (Index b = 0; b < nb; ++b) {
        const IndexVector& pi = perms[static_cast<size_t>(b0 + b)];
        for (Index k = 0; k < K; ++k)
          for (Index j = 0; j < N; ++j) tp(j, b * K + k) = t(k, pi[j]);
      }
      c.noalias() = f * tp;  // rows × (nb · K)
      for (Index b = 0; b < nb; ++b)
        for (Index k = 0; k < K; ++k)
          out.values(k, b0 + b) = std::max(out.values(k, b0 + b), c.col(b * K + k).maxCoeff());
    }
  }
  out.mean_values.assign(static_cast<size_t>(permutations), 0.0);
  for (Index b = 0; b < permutations; ++b)
    out.mean_values[static_cast<size_t>(b)] = out.values.col(b).mean();
  for (Index k = 0; k < K; ++k) {
    std::vector<double> row(static_cast<size_t>(permutations));
    for (Index b = 0; b < permutations; ++b) row[static_cast<size_t>(b)] = out.values(k, b);
    out.p95.push_back(identify::quantile(row, 0.95));
    out.p99.push_back(identify::quantile(row, 0.99));
  }
  out.mean_p95 = identify::quantile(out.mean_values, 0.95);
  out.mean_p99 = identify::quantile(out.mean_values, 0.99);
  return out;
}

}  // namespace ergo::sae

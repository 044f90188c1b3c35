// SPDX-License-Identifier: MIT
#pragma once

/// \file streaming.hpp
/// \brief Out-of-core and multi-process identifiability statistics: the held-out ridge fit
/// (λ by GCV on the training rows), its held-out R², held-out CCA and a permutation null,
/// from moments accumulated in one pass over blocks of samples and summed across ranks.
///
/// Every statistic here is a function of the first and second moments of (f, t) on the
/// training rows and on the test rows: n, Σu, Σv, Σuuᵀ (d × d), Σuvᵀ (d × k), Σvvᵀ (k × k) with
/// u = f − shift_f, v = t − shift_t (a fixed shift, e.g. the first block's mean, keeps the
/// one-pass sums accurate). Blocks can come from memory-mapped files in any order and from
/// any rank; reduce() sums the moments over a Communicator. Results equal the in-memory
/// RidgeRegression (cv = Gcv) / r2_scores / Cca (Gram method) on the same split to rounding.
///
/// The split is a seeded rule on the sample's global index (or its group id), so that each
/// block's rows are classified without a global shuffle: row i is a test row when
/// hash(seed, key_i) < test_fraction (splitmix64; key = i, or the group id with groups).
///
/// Permutation null: for p = 0..P−1 the targets are permuted within each run of
/// `permutation_block` consecutive rows (separately among its training and its test rows), by a
/// generator seeded from (seed, p, block index), so the null does not depend on how blocks are
/// read or on the number of ranks; each permutation's held-out R² (at the observed λ) is
/// computed from its own cross-products. This is a restricted (within-block) permutation null:
/// valid when the rows of a block are exchangeable under H0 (docs/identify.md, "Out of core").
///
/// \code
/// ergo::identify::StreamingIdentify acc(d, k, params);        // d features, k targets
/// for (each block of rows [i0, i0 + n)) acc.add(F_block, T_block, i0);  // d × n, k × n
/// acc.reduce(comm);                                         // sum over ranks (MPI), optional
/// ergo::identify::StreamingReport r = acc.finish();          // λ, W, b, held-out R², CCA, null
/// \endcode

#include "../core/communicator.hpp"
#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "cca.hpp"
#include "ridge.hpp"
#include "ridge_params.hpp"

#include <Eigen/Eigenvalues>
#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace ergo::identify {

/// \brief Settings of StreamingIdentify.
struct StreamingParams {
  double test_fraction = 0.2;  ///< share of rows (or groups) held out, in (0, 1)
  std::uint64_t seed = 0;      ///< seeds the split and the permutations
  Index permutations = 0;      ///< permutation-null size P (0: off)
  /// Rows per permutation block (>= 2); add() calls must start at multiples of it when P > 0.
  Index permutation_block = 4096;
  /// λ grid relative to the mean eigenvalue of the training Gram (as RidgeParams; its cv,
  /// folds and block_size are not used: λ is chosen by GCV).
  RidgeParams ridge;

  void check() const {
    const char* who = "StreamingParams::check";
    check_arg(test_fraction > 0.0 && test_fraction < 1.0, who, "test_fraction", "a value in (0, 1)",
              test_fraction);
    check_arg(permutations >= 0, who, "permutations", ">= 0", permutations);
    check_arg(permutation_block >= 2, who, "permutation_block", ">= 2", permutation_block);
    ridge.check();
  }
};

/// \brief True when the sample with this key (global index or group id) is a test sample.
inline bool streaming_is_test(std::int64_t key, double test_fraction, std::uint64_t seed) {
  std::uint64_t z =
      derive_seed(seed ^ 0x73706c6974ULL, static_cast<std::uint64_t>(key));  // "split"
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53 < test_fraction;
}

/// \brief Shifted first and second moments of a set of (f, t) pairs (see the file comment).
struct PairMoments {
  double n = 0;
  Vector<double> sf, st;                ///< Σu (d), Σv (k)
  Matrix<double> ff, ft, tt;            ///< Σuuᵀ (d × d), Σuvᵀ (d × k), Σvvᵀ (k × k)
  std::vector<Matrix<double>> ft_perm;  ///< Σ u v_πᵀ per permutation (d × k each)

  void reset(Index d, Index k, Index perms) {
    n = 0;
    sf.setZero(d);
    st.setZero(k);
    ff.setZero(d, d);
    ft.setZero(d, k);
    tt.setZero(k, k);
    ft_perm.assign(static_cast<size_t>(perms), Matrix<double>::Zero(d, k));
  }
  /// Every number, in a fixed order (for one allreduce).
  template <class F>
  void for_each_block(F&& f) {
    f(&n, 1);
    f(sf.data(), sf.size());
    f(st.data(), st.size());
    f(ff.data(), ff.size());
    f(ft.data(), ft.size());
    f(tt.data(), tt.size());
    for (auto& m : ft_perm) f(m.data(), m.size());
  }
};

/// \brief What StreamingIdentify::finish() computes.
struct StreamingReport {
  Index n_train = 0, n_test = 0;
  double lambda = 0.0;           ///< chosen absolute λ (GCV on the training rows)
  double relative_lambda = 0.0;  ///< λ / mean eigenvalue of the training Gram
  Matrix<double> w;              ///< k × d map fitted on the training rows
  Vector<double> b;              ///< k intercept
  R2Scores test_r2;              ///< held-out R² of W f + b
  Vector<double> cca;            ///< held-out canonical correlations (fit on train, Gram path)
  CcaSummary cca_summary;        ///< their mean, min, κ_w
  Vector<double> null_r2;        ///< held-out variance-weighted R² per permutation (P)
  double p_value = std::numeric_limits<double>::quiet_NaN();  ///< (1 + #{null ≥ obs}) / (P + 1)
};

/// \brief One-pass, block-wise, rank-summable identifiability statistics (see the file comment).
class StreamingIdentify {
 public:
  /// \param d features \param k targets \param shift_f, shift_t subtracted before summing (size
  /// d and k; empty = 0); every rank must use the same shifts
  StreamingIdentify(Index d, Index k, StreamingParams params = {}, Vector<double> shift_f = {},
                    Vector<double> shift_t = {})
      : m_p(std::move(params)),
        m_d(d),
        m_k(k),
        m_shift_f(std::move(shift_f)),
        m_shift_t(std::move(shift_t)) {
    const char* who = "StreamingIdentify";
    m_p.check();
    check_arg(d >= 1 && k >= 1, who, "d, k", "at least one feature and one target",
              ergo::detail::str_cat(d, ", ", k));
    if (m_shift_f.size() == 0) m_shift_f.setZero(d);
    if (m_shift_t.size() == 0) m_shift_t.setZero(k);
    check_arg(m_shift_f.size() == d && m_shift_t.size() == k, who, "shift_f, shift_t",
              ergo::detail::str_cat("sizes ", d, " and ", k),
              ergo::detail::str_cat(m_shift_f.size(), " and ", m_shift_t.size()));
    m_train.reset(d, k, m_p.permutations);
    m_test.reset(d, k, m_p.permutations);
  }

  /// \brief Adds samples first_row, first_row + 1, ... (global indices) in the columns of
  /// f (d × n) and t (k × n). \param groups optional group id per column (keys the split)
  template <class DF, class DT>
  void add(const Eigen::MatrixBase<DF>& f, const Eigen::MatrixBase<DT>& t, Index first_row,
           const std::int64_t* groups = nullptr) {
    const char* who = "StreamingIdentify::add";
    check_shape(who, "f", f, m_d, -1);
    check_shape(who, "t", t, m_k, f.cols());
    check_finite(who, "f", f);
    check_finite(who, "t", t);
    check_arg(m_p.permutations == 0 || first_row % m_p.permutation_block == 0, who, "first_row",
              ergo::detail::str_cat("a multiple of permutation_block = ", m_p.permutation_block),
              first_row);
    const Index n = f.cols(), pb = m_p.permutation_block;
    for (Index b0 = 0; b0 < n; b0 += pb) {  // one permutation block at a time
      const Index len = std::min(pb, n - b0);
      std::vector<Index> rows[2];
      for (Index i = b0; i < b0 + len; ++i) {
        const std::int64_t key = groups ? groups[i] : static_cast<std::int64_t>(first_row + i);
        rows[streaming_is_test(key, m_p.test_fraction, m_p.seed) ? 1 : 0].push_back(i);
      }
      for (int s = 0; s < 2; ++s)
        add_rows(f, t, rows[s], (first_row + b0) / pb, s == 0 ? m_train : m_test, s);
    }
  }

  /// \brief Sums the moments of every rank (each rank added its own rows); collective.
  void reduce(const Communicator& comm) {
    if (comm.size() == 1) return;
    for (PairMoments* m : {&m_train, &m_test})
      m->for_each_block([&](double* p, Index c) { comm.allreduce_sum(p, c); });
  }

  /// \brief The statistics (see StreamingReport). Needs at least 3 training and 2 test rows.
  StreamingReport finish() const;

  const PairMoments& train() const { return m_train; }
  const PairMoments& test() const { return m_test; }

 private:
  template <class DF, class DT>
  void add_rows(const Eigen::MatrixBase<DF>& f, const Eigen::MatrixBase<DT>& t,
                const std::vector<Index>& rows, Index block, PairMoments& acc, int split) {
    const Index n = static_cast<Index>(rows.size());
    if (n == 0) return;
    Matrix<double> u(m_d, n), v(m_k, n);
    for (Index q = 0; q < n; ++q) {
      u.col(q) = f.col(rows[static_cast<size_t>(q)]).template cast<double>() - m_shift_f;
      v.col(q) = t.col(rows[static_cast<size_t>(q)]).template cast<double>() - m_shift_t;
    }
    acc.n += static_cast<double>(n);
    acc.sf += u.rowwise().sum();
    acc.st += v.rowwise().sum();
    acc.ff.template selfadjointView<Eigen::Lower>().rankUpdate(u);
    acc.ft.noalias() += u * v.transpose();
    acc.tt.noalias() += v * v.transpose();
    Matrix<double> vp(m_k, n);
    for (Index p = 0; p < m_p.permutations; ++p) {
      Rng rng(derive_seed(derive_seed(m_p.seed, static_cast<std::uint64_t>(p) + 1),
                          static_cast<std::uint64_t>(2 * block + split)));
      const IndexVector perm = rng.permutation(n);
      for (Index q = 0; q < n; ++q) vp.col(q) = v.col(perm[q]);
      acc.ft_perm[static_cast<size_t>(p)].noalias() += u * vp.transpose();
    }
  }

  StreamingParams m_p;
  Index m_d, m_k;
  Vector<double> m_shift_f, m_shift_t;
  PairMoments m_train, m_test;
};

namespace detail {

// Centred covariance blocks of a moment set (divided by n − 1): Cff, Cft, Ctt and the means of u,
// v.
struct CentredMoments {
  Matrix<double> ff, ft, tt;
  Vector<double> mu, mv;
  double n = 0;
};
inline CentredMoments centre(const PairMoments& m, const Matrix<double>& ft) {
  CentredMoments c;
  c.n = m.n;
  c.mu = m.sf / m.n;
  c.mv = m.st / m.n;
  Matrix<double> ff = m.ff;
  ff.template triangularView<Eigen::StrictlyUpper>() = ff.transpose();
  c.ff = ff - m.n * c.mu * c.mu.transpose();
  c.ft = ft - m.n * c.mu * c.mv.transpose();
  c.tt = m.tt - m.n * c.mv * c.mv.transpose();
  return c;
}

// Held-out R² of (W, β) (prediction v̂ = W u + β in shifted coordinates) from test moments.
inline R2Scores r2_from_moments(const PairMoments& te, const Matrix<double>& ft,
                                const Matrix<double>& w, const Vector<double>& beta) {
  const Index k = w.rows();
  Matrix<double> ff = te.ff;
  ff.template triangularView<Eigen::StrictlyUpper>() = ff.transpose();
  R2Scores r;
  r.per_output.resize(k);
  double sse_all = 0.0, sst_all = 0.0, sum = 0.0;
  Index finite = 0;
  for (Index j = 0; j < k; ++j) {
    const Vector<double> wj = w.row(j).transpose();
    const double bj = beta[j];
    const double sse =
        std::max(0.0, te.tt(j, j) - 2.0 * wj.dot(ft.col(j)) - 2.0 * bj * te.st[j] +
                          wj.dot(ff * wj) + 2.0 * bj * wj.dot(te.sf) + te.n * bj * bj);
    const double mean = te.st[j] / te.n;
    const double sst = std::max(0.0, te.tt(j, j) - te.n * mean * mean);
    sse_all += sse;
    sst_all += sst;
    const double floor = ScalarTraits<double>::eps() * te.n * std::max(1.0, mean * mean);
    r.per_output[j] = sst > floor ? 1.0 - sse / sst : std::numeric_limits<double>::quiet_NaN();
    if (std::isfinite(r.per_output[j])) {
      sum += r.per_output[j];
      ++finite;
    }
  }
  if (finite > 0) r.mean = sum / static_cast<double>(finite);
  if (sst_all > 0.0) r.variance_weighted = 1.0 - sse_all / sst_all;
  r.mse = sse_all / (static_cast<double>(k) * te.n);
  return r;
}

// p × r whitener V_r diag(e_r^{-1/2}) on the numerical range of a covariance (as Cca's Gram path).
inline Matrix<double> whiten(const Matrix<double>& cov, double n) {
  Eigen::SelfAdjointEigenSolver<Matrix<double>> es(cov);
  const Vector<double> e = es.eigenvalues();
  const Index p = cov.rows();
  const double tol = std::max(n, static_cast<double>(p)) * ScalarTraits<double>::eps() *
                     std::max(0.0, e.maxCoeff());
  Index r = 0;
  for (Index i = 0; i < p; ++i) r += e[i] > tol ? 1 : 0;
  Matrix<double> w(p, r);
  for (Index i = 0, c = 0; i < p; ++i)
    if (e[i] > tol) w.col(c++) = es.eigenvectors().col(i) / std::sqrt(e[i]);
  return w;
}

}  // namespace detail

inline StreamingReport StreamingIdentify::finish() const {
  const char* who = "StreamingIdentify::finish";
  check_arg(m_train.n >= 3 && m_test.n >= 2, who, "samples",
            "at least 3 training and 2 test samples",
            ergo::detail::str_cat(m_train.n, " and ", m_test.n));
  StreamingReport rep;
  rep.n_train = static_cast<Index>(m_train.n);
  rep.n_test = static_cast<Index>(m_test.n);
  const detail::CentredMoments tr = detail::centre(m_train, m_train.ft);
  // ridge on the training rows: eigenbasis of the centred Gram, GCV over the relative grid
  Eigen::SelfAdjointEigenSolver<Matrix<double>> es(tr.ff);
  const Vector<double> e = es.eigenvalues().cwiseMax(0.0);
  const Matrix<double>& V = es.eigenvectors();
  double scale = e.sum() / static_cast<double>(m_d);
  if (!(scale > 0.0)) scale = 1.0;
  const RidgeParams& rp = m_p.ridge;
  Vector<double> grid;
  if (!rp.lambdas.empty()) {
    grid =
        Eigen::Map<const Vector<double>>(rp.lambdas.data(), static_cast<Index>(rp.lambdas.size()));
  } else {
    grid.resize(rp.grid_size);
    const double lo = std::log(rp.grid_min), hi = std::log(rp.grid_max);
    for (Index i = 0; i < rp.grid_size; ++i) {
      const double a =
          rp.grid_size == 1 ? 1.0 : static_cast<double>(i) / static_cast<double>(rp.grid_size - 1);
      grid[i] = scale * std::exp(lo + a * (hi - lo));
    }
  }
  const Matrix<double> q = V.transpose() * tr.ft;
  const Vector<double> sst = tr.tt.diagonal();
  const double nd = tr.n;
  const bool weighted = rp.selection == RidgeSelection::VarianceWeighted;
  Index best_l = grid.size() - 1;
  double best = -std::numeric_limits<double>::infinity();
  const Matrix<double> q2 = q.array().square().matrix();
  for (Index l = 0; l < grid.size(); ++l) {
    const double lam = grid[l];
    const Vector<double> den = (e.array() + lam).matrix();
    const Vector<double> wgt = ((e.array() + 2.0 * lam) / den.array().square()).matrix();
    const double shrink = 1.0 - (1.0 + (e.array() / den.array()).sum()) / nd;
    double s = 0.0, wsum = 0.0;
    for (Index j = 0; j < m_k; ++j) {
      if (!(sst[j] > 0.0) || !(shrink > 0.0)) continue;
      const double r2 =
          1.0 - (std::max(0.0, sst[j] - q2.col(j).dot(wgt)) / (shrink * shrink)) / sst[j];
      const double wj = weighted ? sst[j] : 1.0;
      s += wj * r2;
      wsum += wj;
    }
    if (wsum > 0.0 && s / wsum > best) {
      best = s / wsum;
      best_l = l;
    }
  }
  rep.lambda = grid[best_l];
  rep.relative_lambda = rep.lambda / scale;
  const Vector<double> inv = (e.array() + rep.lambda).inverse().matrix();
  const Matrix<double> solver = V * inv.asDiagonal() * V.transpose();  // (G + λI)⁻¹
  auto fit = [&](const Matrix<double>& cross_centred, const Vector<double>& mv, Matrix<double>& w,
                 Vector<double>& beta) {
    w = (solver * cross_centred).transpose();  // k × d
    beta = mv - w * tr.mu;                     // shifted coordinates: v̂ = W u + β
  };
  Vector<double> beta;
  fit(tr.ft, tr.mv, rep.w, beta);
  rep.b = beta + m_shift_t - rep.w * m_shift_f;
  rep.test_r2 = detail::r2_from_moments(m_test, m_test.ft, rep.w, beta);
  // CCA: directions from the training covariances, correlations on the test rows
  {
    const double n1 = tr.n - 1.0;
    const Matrix<double> cf = tr.ff / n1, ct = tr.tt / n1, cft = tr.ft / n1;
    const Matrix<double> wf = detail::whiten(cf, tr.n), wt = detail::whiten(ct, tr.n);
    const Index m = std::min(wf.cols(), wt.cols());
    Eigen::BDCSVD<Matrix<double>> svd(wf.transpose() * cft * wt,
                                      Eigen::ComputeThinU | Eigen::ComputeThinV);
    const Matrix<double> a = wf * svd.matrixU().leftCols(m), bb = wt * svd.matrixV().leftCols(m);
    const detail::CentredMoments te = detail::centre(m_test, m_test.ft);
    rep.cca.resize(m);
    for (Index i = 0; i < m; ++i) {
      const double num = a.col(i).dot(te.ft * bb.col(i));
      const double den =
          std::sqrt(a.col(i).dot(te.ff * a.col(i)) * bb.col(i).dot(te.tt * bb.col(i)));
      rep.cca[i] = den > 0.0 ? num / den : 0.0;
    }
    rep.cca_summary = summarize_cca(rep.cca);
  }
  // permutation null at the observed λ
  const Index P = m_p.permutations;
  rep.null_r2.resize(P);
  Index ge = 0;
  for (Index p = 0; p < P; ++p) {
    const size_t ps = static_cast<size_t>(p);
    Matrix<double> wp;
    Vector<double> bp;
    fit(m_train.ft_perm[ps] - m_train.n * tr.mu * tr.mv.transpose(), tr.mv, wp, bp);
    rep.null_r2[p] = detail::r2_from_moments(m_test, m_test.ft_perm[ps], wp, bp).variance_weighted;
    ge += rep.null_r2[p] >= rep.test_r2.variance_weighted ? 1 : 0;
  }
  if (P > 0) rep.p_value = static_cast<double>(1 + ge) / static_cast<double>(P + 1);
  return rep;
}

}  // namespace ergo::identify

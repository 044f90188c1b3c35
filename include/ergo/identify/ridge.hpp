// SPDX-License-Identifier: MIT
#pragma once

/// \file ridge.hpp
/// \brief Affine ridge regression T ≈ W F + b with the penalty chosen by cross-validation over a
/// whole λ grid from one eigendecomposition; held-out R² scores.
///
/// Shapes (samples are columns): F is d × N (inputs), T is k × N (outputs), W is k × d, b has k
/// entries. Inputs may be float or double; everything is computed in double.
///
/// Objective: min_{W,b} Σ_n ‖t_n − W f_n − b‖² + λ ‖W‖_F² (the intercept is not penalised).
///
/// Fast path (perf_limits.md §4d, §6.5): the data are read once in blocks that are centred and
/// accumulated into the d × d Gram with a rank update (SYRK) and into the d × k cross-product,
/// in double, over all cores. The centred Gram is eigendecomposed once (G = V diag(e) Vᵀ); with
/// Q = Vᵀ C the ridge solution for every λ is B(λ) = V diag(1/(e+λ)) Q, and every CV criterion is
/// evaluated from these d × k quantities:
/// - **GCV** (Golub, Heath & Wahba 1979), the rotation-invariant form of leave-one-out:
///   RSS_j(λ) = SST_j − Σ_i Q_ij² (e_i + 2λ)/(e_i + λ)², df(λ) = 1 + Σ_i e_i/(e_i + λ),
///   GCV_j = (RSS_j/N)/(1 − df/N)². Cost O(d k) per λ, independent of N.
/// - **LOO** (exact efficient leave-one-out): e_i/(1 − h_ii) with
///   h_ii = 1/N + Σ_l z_il²/(e_l + λ), z = Vᵀ(f_i − f̄). Cost O(N d (d + n_λ k)); opt-in.
/// - **KFold** (grouped K-fold): per-fold Grams are accumulated in the same pass; the training
///   Gram of fold f is the total minus fold f (re-centred on the training mean), eigendecomposed
///   once per fold, and the held-out sum of squared errors for every λ follows from the fold's
///   own Gram and cross-products without touching the samples again.
///
/// \code
/// ergo::RidgeRegression fit({});            // GCV (no groups) or grouped 5-fold (groups)
/// fit.fit(F_train, T_train, groups_train);
/// ergo::R2Scores r2 = fit.score(F_test, T_test);   // held-out R² per output, mean, weighted
/// double kappa = fit.condition_number();            // of the fitted k × d map
/// \endcode

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "detail/gram.hpp"
#include "resampling.hpp"

#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace ergo {

/// \brief How the ridge penalty is chosen.
enum class RidgeCv {
  Auto,   ///< KFold (grouped) when groups are given, otherwise Gcv
  Gcv,    ///< generalised cross-validation through the eigenbasis (O(d k) per λ)
  Loo,    ///< exact efficient leave-one-out (O(N d k) per λ; for moderate N)
  KFold,  ///< (grouped) K-fold from per-fold Grams
  Fixed,  ///< no search: use lambdas[0] (absolute)
};

/// \brief "auto", "gcv", "loo", "kfold" or "fixed".
inline const char* to_string(RidgeCv m) {
  switch (m) {
    case RidgeCv::Auto: return "auto";
    case RidgeCv::Gcv: return "gcv";
    case RidgeCv::Loo: return "loo";
    case RidgeCv::KFold: return "kfold";
    case RidgeCv::Fixed: return "fixed";
  }
  return "unknown";
}

/// \brief How the penalty search scores a λ across several outputs.
enum class RidgeSelection {
  /// 1 − Σ_j SSE_j / Σ_j SST_j (default): outputs count by their variance, so the choice is
  /// invariant to rotations of the targets (e.g. to which orthonormal basis ilr uses).
  VarianceWeighted,
  /// Mean of the per-output R²_j (scikit-learn's "uniform_average"): every output counts
  /// equally, so the choice depends on the target basis.
  MeanR2,
};

/// \brief Ridge regression settings.
struct RidgeParams {
  /// Penalty selection method. Default Auto: grouped K-fold with groups, GCV without.
  RidgeCv cv = RidgeCv::Auto;
  /// How the CV scores of several outputs are combined (default VarianceWeighted).
  RidgeSelection selection = RidgeSelection::VarianceWeighted;
  /// Number of folds for KFold, ≥ 2 (reduced to the number of groups if there are fewer).
  Index folds = 5;
  /// Absolute penalties to search. Empty (default): a log-spaced relative grid, see below.
  /// With cv = Fixed exactly one value is required.
  std::vector<double> lambdas = {};
  /// Relative grid: λ = r · mean eigenvalue of the centred Gram (tr(G)/d), r log-spaced in
  /// [grid_min, grid_max] with grid_size points. Defaults 1e-8, 1e2, 21 (two points per decade):
  /// from essentially unpenalised to shrinkage that leaves R² near 0.
  double grid_min = 1e-8;
  double grid_max = 1e2;   ///< upper end of the relative grid (> grid_min)
  Index grid_size = 21;    ///< number of grid points (≥ 1)
  /// Seed of the random fold assignment (KFold).
  std::uint64_t seed = 0;
  /// Samples per block in the accumulation pass (memory d × block doubles per thread); ≥ 1.
  /// 256 keeps a block of a few hundred features in L2 between the copy and the rank update
  /// (at d = 256 the pass ran ~15% faster than with 2048 on the reference VM).
  Index block_size = 256;

  void check() const {
    const char* who = "RidgeParams::check";
    check_arg(folds >= 2, who, "folds", "at least 2", folds);
    check_arg(grid_min > 0.0 && std::isfinite(grid_min), who, "grid_min", "a positive value",
              grid_min);
    check_arg(grid_max > grid_min && std::isfinite(grid_max), who, "grid_max",
              detail::str_cat("a finite value > grid_min = ", grid_min), grid_max);
    check_arg(grid_size >= 1, who, "grid_size", "at least 1", grid_size);
    check_arg(block_size >= 1, who, "block_size", "at least 1", block_size);
    for (size_t i = 0; i < lambdas.size(); ++i)
      check_arg(lambdas[i] >= 0.0 && std::isfinite(lambdas[i]), who,
                detail::str_cat("lambdas[", i, "]"), "a finite value >= 0", lambdas[i]);
    if (cv == RidgeCv::Fixed)
      check_arg(lambdas.size() == 1, who, "lambdas", "exactly one value with cv = Fixed",
                lambdas.size());
  }
};

/// \brief R² scores of predictions against truth (k outputs × N samples).
struct R2Scores {
  /// k: 1 − SSE_j/SST_j, SST_j around the mean of the truth given; NaN if SST_j = 0.
  Vector<double> per_output;
  /// Mean of the finite per-output values (sklearn's "uniform_average").
  double mean = std::numeric_limits<double>::quiet_NaN();
  /// 1 − Σ_j SSE_j / Σ_j SST_j ("variance_weighted").
  double variance_weighted = std::numeric_limits<double>::quiet_NaN();
  /// Mean squared error over all outputs and samples.
  double mse = std::numeric_limits<double>::quiet_NaN();
};

/// \brief R² of `pred` against `truth` per output (row), their mean and variance-weighted form.
/// \param truth k × N \param pred k × N (same shape, finite)
template <class DY, class DP>
R2Scores r2_scores(const Eigen::MatrixBase<DY>& truth_in, const Eigen::MatrixBase<DP>& pred_in) {
  const char* who = "r2_scores";
  const auto& truth = truth_in.eval();
  const auto& pred = pred_in.eval();
  check_shape(who, "pred", pred, truth.rows(), truth.cols());
  check_arg(truth.cols() >= 2, who, "truth", "at least 2 samples (columns)", truth.cols());
  const Index k = truth.rows();
  R2Scores r;
  r.per_output.resize(k);
  double sse_all = 0.0, sst_all = 0.0, sum = 0.0;
  Index finite = 0;
  for (Index j = 0; j < k; ++j) {
    const auto y = truth.row(j).template cast<double>();
    const double mean = y.mean();
    const double sst = (y.array() - mean).square().sum();
    const double sse = (y - pred.row(j).template cast<double>()).squaredNorm();
    sse_all += sse;
    sst_all += sst;
    // SST below rounding level of the values means a constant output: R² is undefined.
    const double floor = ScalarTraits<double>::eps() * static_cast<double>(truth.cols()) *
                         std::max(1.0, mean * mean);
    r.per_output[j] = sst > floor ? 1.0 - sse / sst : std::numeric_limits<double>::quiet_NaN();
    if (std::isfinite(r.per_output[j])) {
      sum += r.per_output[j];
      ++finite;
    }
  }
  if (finite > 0) r.mean = sum / static_cast<double>(finite);
  if (sst_all > 0.0) r.variance_weighted = 1.0 - sse_all / sst_all;
  r.mse = sse_all / static_cast<double>(k * truth.cols());
  return r;
}

namespace detail {

/// Result of one ridge solve (weights, intercept, λ path).
struct RidgeSolution {
  Matrix<double> w;        // k × d
  Vector<double> b;        // k
  double lambda = 0.0;     // chosen absolute penalty
  Index best = 0;          // index into lambdas
  Vector<double> lambdas;  // n_λ absolute penalties searched
  Matrix<double> cv_r2;    // n_λ × k cross-validated R² (NaN for constant outputs)
  RidgeCv method = RidgeCv::Gcv;
};

/// Feature-side cache of the ridge CV: Grams and eigendecompositions depend on F only, so
/// refits against permuted targets (permutation nulls) reuse them and cost O(N d k).
class RidgeCvEngine {
 public:
  /// \param fold fold id per sample in [0, n_folds) for KFold; ignored otherwise
  /// The identity pairing's target statistics are accumulated in the same pass as the Grams and
  /// reused by solve() with perm == nullptr.
  template <class DF, class DT>
  void prepare(const Eigen::MatrixBase<DF>& f, const Eigen::MatrixBase<DT>& t, RidgeCv method,
               const IndexVector& fold, Index n_folds, Index block) {
    ERGO_CHECK(method == RidgeCv::Gcv || method == RidgeCv::Loo || method == RidgeCv::KFold ||
                   method == RidgeCv::Fixed,
               "RidgeCvEngine: concrete method expected");
    m_method = method;
    m_d = f.rows();
    m_n = f.cols();
    m_block = block;
    m_shift_f = row_means(f);
    m_shift_t = row_means(t);
    const bool kfold = method == RidgeCv::KFold;
    m_k_folds = kfold ? n_folds : 0;
    m_members.clear();
    m_fold_stats.clear();
    if (kfold) {
      m_members.assign(static_cast<size_t>(n_folds), {});
      for (Index i = 0; i < m_n; ++i) m_members[static_cast<size_t>(fold[i])].push_back(i);
      m_fold_stats.resize(static_cast<size_t>(n_folds));
      for (Index q = 0; q < n_folds; ++q) {
        const auto& mem = m_members[static_cast<size_t>(q)];
        accumulate_pair_stats(f, t, mem.data(), static_cast<Index>(mem.size()), nullptr,
                              m_shift_f, m_shift_t, true, block,
                              m_fold_stats[static_cast<size_t>(q)], &m_ws);
        m_fold_stats[static_cast<size_t>(q)].symmetrize();
      }
      m_total.reset(m_d, t.rows(), true);
      for (const auto& s : m_fold_stats) m_total.add(s);
    } else {
      accumulate_pair_stats(f, t, nullptr, m_n, nullptr, m_shift_f, m_shift_t, true, block,
                            m_total, &m_ws);
      m_total.symmetrize();
    }
    m_have_identity_t = true;
    // Full-data centred Gram and its eigendecomposition.
    m_mean_f = m_total.s / static_cast<double>(m_n);
    eigen_of(centred_gram(m_total.g, m_total.s, m_n), m_e, m_v);
    m_scale = m_d > 0 ? m_e.sum() / static_cast<double>(m_d) : 0.0;
    if (!(m_scale > 0.0)) m_scale = 1.0;  // constant features: any positive scale
    if (kfold) {
      // Per fold, in the eigenbasis V of its training Gram: the fold's own Gram VᵀG_fV, its sum
      // Vᵀs_f and the training mean Vᵀm_f. Then a λ costs one d × d × k product in solve().
      const size_t nf = static_cast<size_t>(n_folds);
      m_e_tr.assign(nf, {});
      m_v_tr.assign(nf, {});
      m_gv_tr.assign(nf, {});
      m_vs_tr.assign(nf, {});
      m_vm_tr.assign(nf, {});
      ERGO_OMP(omp parallel for schedule(dynamic))
      for (Index q = 0; q < n_folds; ++q) {
        const size_t qi = static_cast<size_t>(q);
        const PairStats& fs = m_fold_stats[qi];
        const Index ntr = m_n - fs.n;
        const Matrix<double> g = m_total.g - fs.g;
        eigen_of(centred_gram(g, m_total.s - fs.s, ntr), m_e_tr[qi], m_v_tr[qi]);
        const Matrix<double>& v = m_v_tr[qi];
        m_gv_tr[qi] = v.transpose() * (fs.g * v);
        m_vs_tr[qi] = v.transpose() * fs.s;
        m_vm_tr[qi] = v.transpose() * ((m_total.s - fs.s) / static_cast<double>(std::max<Index>(1, ntr)));
      }
    }
    if (method == RidgeCv::Loo) {
      // z = Vᵀ (u − m) for every sample, d × N.
      m_z.resize(m_d, m_n);
      const Vector<double> centre = m_shift_f + m_mean_f;
      const Index nb = std::max<Index>(1, std::min(block, m_n));
      Matrix<double> w(m_d, nb);
      for (Index s0 = 0; s0 < m_n; s0 += nb) {
        const Index cnt = std::min(nb, m_n - s0);
        for (Index q = 0; q < cnt; ++q) w.col(q) = f.col(s0 + q).template cast<double>() - centre;
        m_z.middleCols(s0, cnt).noalias() = m_v.transpose() * w.leftCols(cnt);
      }
    }
  }

  /// Absolute λ grid from the parameters.
  Vector<double> grid(const RidgeParams& p) const {
    if (!p.lambdas.empty()) {
      Vector<double> g(static_cast<Index>(p.lambdas.size()));
      for (Index i = 0; i < g.size(); ++i) g[i] = p.lambdas[static_cast<size_t>(i)];
      return g;
    }
    Vector<double> g(p.grid_size);
    const double lo = std::log(p.grid_min), hi = std::log(p.grid_max);
    for (Index i = 0; i < p.grid_size; ++i) {
      const double a = p.grid_size == 1 ? 1.0 : static_cast<double>(i) / static_cast<double>(p.grid_size - 1);
      g[i] = m_scale * std::exp(lo + a * (hi - lo));
    }
    return g;
  }

  /// Solves for targets t (k × N) paired as t.col(perm[i]) with f.col(i) (perm null: identity).
  template <class DF, class DT>
  RidgeSolution solve(const Eigen::MatrixBase<DF>& f, const Eigen::MatrixBase<DT>& t,
                      const Index* perm, const RidgeParams& p) {
    const Index k = t.rows();
    std::vector<PairStats> fold_t;
    PairStats total;
    if (perm == nullptr && m_have_identity_t) {
      total = m_total;
    } else {
      const Vector<double> shift_t = row_means(t);  // permutation-invariant
      if (m_k_folds > 0) {
        fold_t.resize(static_cast<size_t>(m_k_folds));
        total.reset(m_d, k, false);
        for (Index q = 0; q < m_k_folds; ++q) {
          const auto& mem = m_members[static_cast<size_t>(q)];
          accumulate_pair_stats(f, t, mem.data(), static_cast<Index>(mem.size()), perm,
                                m_shift_f, shift_t, false, m_block,
                                fold_t[static_cast<size_t>(q)], &m_ws);
          total.add(fold_t[static_cast<size_t>(q)]);
        }
      } else {
        accumulate_pair_stats(f, t, nullptr, m_n, perm, m_shift_f, shift_t, false, m_block,
                              total, &m_ws);
      }
      total.n = m_n;
      m_cur_shift_t = shift_t;
    }
    const Vector<double>& shift_t = (perm == nullptr && m_have_identity_t) ? m_shift_t : m_cur_shift_t;
    const std::vector<PairStats>& folds =
        (perm == nullptr && m_have_identity_t) ? m_fold_stats : fold_t;

    RidgeSolution sol;
    sol.method = m_method;
    sol.lambdas = grid(p);
    const Index nl = sol.lambdas.size();
    const double nd = static_cast<double>(m_n);
    const Vector<double> mean_t = total.t / nd;
    // Centred cross-product and its eigen-coordinates.
    const Matrix<double> cc = total.c - nd * m_mean_f * mean_t.transpose();
    const Matrix<double> q = m_v.transpose() * cc;  // d × k
    const Vector<double> sst = (total.tt.array() - total.t.array().square() / nd).matrix();

    sol.cv_r2.setConstant(nl, k, std::numeric_limits<double>::quiet_NaN());
    if (m_method == RidgeCv::Gcv) {
      const Matrix<double> q2 = q.array().square().matrix();
      for (Index l = 0; l < nl; ++l) {
        const double lam = sol.lambdas[l];
        const Vector<double> den = (m_e.array() + lam).matrix();
        const Vector<double> wgt = ((m_e.array() + 2.0 * lam) / den.array().square()).matrix();
        const double df = 1.0 + (m_e.array() / den.array()).sum();
        const double shrink = 1.0 - df / nd;
        for (Index j = 0; j < k; ++j) {
          if (!(sst[j] > 0.0) || !(shrink > 0.0)) continue;
          const double rss = std::max(0.0, sst[j] - q2.col(j).dot(wgt));
          sol.cv_r2(l, j) = 1.0 - (rss / (shrink * shrink)) / sst[j];
        }
      }
    } else if (m_method == RidgeCv::Loo) {
      loo_path(t, perm, shift_t, mean_t, q, sst, sol);
    } else if (m_method == RidgeCv::KFold) {
      kfold_path(folds, total, sol);
    } else {  // Fixed
      sol.cv_r2.setConstant(nl, k, std::numeric_limits<double>::quiet_NaN());
    }

    // Choose λ maximising the combined CV R² over outputs with variance (first best on ties):
    // variance-weighted, Σ_j SST_j R²_j / Σ_j SST_j = 1 − Σ SSE / Σ SST, or the plain mean.
    const bool weighted = p.selection == RidgeSelection::VarianceWeighted;
    sol.best = nl - 1;
    double best = -std::numeric_limits<double>::infinity();
    for (Index l = 0; l < nl; ++l) {
      double s = 0.0, w = 0.0;
      for (Index j = 0; j < k; ++j)
        if (std::isfinite(sol.cv_r2(l, j))) {
          const double wj = weighted ? sst[j] : 1.0;
          s += wj * sol.cv_r2(l, j);
          w += wj;
        }
      if (w > 0.0 && s / w > best) {
        best = s / w;
        sol.best = l;
      }
    }
    if (m_method == RidgeCv::Fixed) sol.best = 0;
    sol.lambda = sol.lambdas[sol.best];

    // Final map on all samples at the chosen λ.
    const Vector<double> inv = (m_e.array() + sol.lambda).inverse().matrix();
    Matrix<double> bmat = m_v * (inv.asDiagonal() * q);  // d × k
    sol.w = bmat.transpose();
    const Vector<double> mu_f = m_shift_f + m_mean_f;
    const Vector<double> mu_t = shift_t + mean_t;
    sol.b = mu_t - sol.w * mu_f;
    return sol;
  }

  Index n() const { return m_n; }
  Index d() const { return m_d; }
  double scale() const { return m_scale; }
  const Vector<double>& eigenvalues() const { return m_e; }

 private:
  static void eigen_of(const Matrix<double>& g, Vector<double>& e, Matrix<double>& v) {
    if (g.rows() == 0) {
      e.resize(0);
      v.resize(0, 0);
      return;
    }
    Eigen::SelfAdjointEigenSolver<Matrix<double>> es(g);
    ERGO_CHECK(es.info() == Eigen::Success, "eigendecomposition of the Gram failed");
    e = es.eigenvalues().cwiseMax(0.0);  // rounding can make a PSD Gram's zeros slightly negative
    v = es.eigenvectors();
  }

  template <class DT>
  void loo_path(const Eigen::MatrixBase<DT>& t, const Index* perm, const Vector<double>& shift_t,
                const Vector<double>& mean_t, const Matrix<double>& q, const Vector<double>& sst,
                RidgeSolution& sol) const {
    const Index k = t.rows(), nl = sol.lambdas.size();
    const double nd = static_cast<double>(m_n);
    Matrix<double> dinv(m_d, nl);  // 1/(e + λ)
    for (Index l = 0; l < nl; ++l) dinv.col(l) = (m_e.array() + sol.lambdas[l]).inverse().matrix();
    Matrix<double> press = Matrix<double>::Zero(nl, k);
    const Index nb = std::max<Index>(1, std::min(m_block, m_n));
    Matrix<double> y(k, nb), h(nb, nl), pred(k, nb), dq(m_d, k);
    const Vector<double> centre = shift_t + mean_t;
    for (Index s0 = 0; s0 < m_n; s0 += nb) {
      const Index cnt = std::min(nb, m_n - s0);
      for (Index c = 0; c < cnt; ++c) {
        const Index i = s0 + c;
        y.col(c) = t.col(perm ? perm[i] : i).template cast<double>() - centre;
      }
      const auto z = m_z.middleCols(s0, cnt);
      h.topRows(cnt).noalias() = z.array().square().matrix().transpose() * dinv;
      for (Index l = 0; l < nl; ++l) {
        dq = dinv.col(l).asDiagonal() * q;
        pred.leftCols(cnt).noalias() = dq.transpose() * z;
        for (Index c = 0; c < cnt; ++c) {
          const double lev = 1.0 / nd + h(c, l);
          const double scale = 1.0 / (1.0 - lev);
          press.row(l) += ((y.col(c) - pred.col(c)) * scale).array().square().matrix().transpose();
        }
      }
    }
    for (Index l = 0; l < nl; ++l)
      for (Index j = 0; j < k; ++j)
        if (sst[j] > 0.0) sol.cv_r2(l, j) = 1.0 - press(l, j) / sst[j];
  }

  void kfold_path(const std::vector<PairStats>& fold_t, const PairStats& total,
                  RidgeSolution& sol) const {
    // Held-out SSE of fold f for B(λ) = V D(λ) Q (training fit in shifted coordinates):
    //   Σ_i∈f (v_i − c − Bᵀu_i)² = tt − 2 bᵀC_f + bᵀG_f b − 2 c (t_f − bᵀs_f) + n_f c²,
    // with c = m_t − Bᵀm_f, all evaluated in the fold's eigenbasis (b = V dq).
    const Index k = total.t.size(), nl = sol.lambdas.size();
    Matrix<double> sse = Matrix<double>::Zero(nl, k);
    Vector<double> sst = Vector<double>::Zero(k);
    Matrix<double> dq(m_d, k), mdq(m_d, k);
    for (Index qf = 0; qf < m_k_folds; ++qf) {
      const size_t qi = static_cast<size_t>(qf);
      const PairStats& fs = m_fold_stats[qi];  // F-side fold sums
      const PairStats& ft = fold_t[qi];        // T-side fold sums
      const Index nte = fs.n, ntr = m_n - nte;
      if (nte == 0 || ntr == 0) continue;
      const double ntr_d = static_cast<double>(ntr), nte_d = static_cast<double>(nte);
      const Matrix<double>& v = m_v_tr[qi];
      const Vector<double>& e = m_e_tr[qi];
      const Vector<double> mt = (total.t - ft.t) / ntr_d;  // training target mean
      // Training cross-product centred on the training means, in the eigenbasis.
      const Matrix<double> qq = v.transpose() * (total.c - ft.c) - ntr_d * m_vm_tr[qi] * mt.transpose();
      const Matrix<double> vc = v.transpose() * ft.c;  // Vᵀ C_f
      sst += (ft.tt.array() - ft.t.array().square() / nte_d).matrix();
      for (Index l = 0; l < nl; ++l) {
        dq.noalias() = (e.array() + sol.lambdas[l]).inverse().matrix().asDiagonal() * qq;
        mdq.noalias() = m_gv_tr[qi] * dq;
        const Vector<double> c = mt - dq.transpose() * m_vm_tr[qi];  // intercept (shifted)
        const Vector<double> lin_b = dq.transpose() * m_vs_tr[qi];
        for (Index j = 0; j < k; ++j) {
          const double quad = dq.col(j).dot(mdq.col(j));
          const double cross = dq.col(j).dot(vc.col(j));
          const double lin = ft.t[j] - lin_b[j];
          const double s = ft.tt[j] - 2.0 * cross + quad - 2.0 * c[j] * lin + nte_d * c[j] * c[j];
          sse(l, j) += std::max(0.0, s);
        }
      }
    }
    for (Index l = 0; l < nl; ++l)
      for (Index j = 0; j < k; ++j)
        if (sst[j] > 0.0) sol.cv_r2(l, j) = 1.0 - sse(l, j) / sst[j];
  }

  RidgeCv m_method = RidgeCv::Gcv;
  Index m_d = 0, m_n = 0, m_k_folds = 0, m_block = 256;
  Vector<double> m_shift_f, m_shift_t, m_cur_shift_t, m_mean_f;
  PairStats m_total;
  std::vector<PairStats> m_fold_stats;
  std::vector<std::vector<Index>> m_members;
  bool m_have_identity_t = false;
  Vector<double> m_e;
  Matrix<double> m_v;
  double m_scale = 1.0;
  std::vector<Vector<double>> m_e_tr, m_vs_tr, m_vm_tr;
  std::vector<Matrix<double>> m_v_tr, m_gv_tr;
  Matrix<double> m_z;
  PairWorkspace m_ws;
};

/// Resolves Auto and the fold count for n samples and the given groups.
inline RidgeCv resolve_ridge_method(const RidgeParams& p, Index n, const Groups& groups,
                                    Index& n_folds) {
  const Index n_groups = count_groups(groups, n);
  n_folds = std::min(p.folds, n_groups);
  RidgeCv m = p.cv;
  if (m == RidgeCv::Auto) m = (!groups.empty() && n_groups >= 2) ? RidgeCv::KFold : RidgeCv::Gcv;
  if (m == RidgeCv::KFold)
    check_arg(n_groups >= 2, "RidgeRegression::fit", "groups",
              "at least 2 groups (or samples) for K-fold", n_groups);
  return m;
}

}  // namespace detail

/// \brief Affine ridge regression T ≈ W F + b with the penalty chosen by cross-validation.
///
/// Fit F → T for "are the targets linearly decodable"; fit T → F (swap the arguments) for "how
/// much of F do the targets explain". See the file comment for the method and its cost.
class RidgeRegression {
 public:
  /// \param params settings (checked)
  explicit RidgeRegression(RidgeParams params = {}) : m_params(std::move(params)) {
    m_params.check();
  }

  /// \brief Fits W (k × d) and b (k) on F (d × N) and T (k × N), choosing λ by cross-validation.
  /// \param f inputs, d × N (finite) \param t outputs, k × N (finite)
  /// \param groups optional group id per sample; KFold keeps groups within one fold
  /// \return *this
  /// \throws InvalidArgument on mismatched shapes, N < 3, or non-finite data
  template <class DF, class DT>
  RidgeRegression& fit(const Eigen::MatrixBase<DF>& f_in, const Eigen::MatrixBase<DT>& t_in,
                       const Groups& groups = {}) {
    const char* who = "RidgeRegression::fit";
    const auto& f = f_in.eval();  // expressions evaluated once; plain matrices are not copied
    const auto& t = t_in.eval();
    detail::check_pair_data(who, f, t);
    groups.check_size(who, f.cols());
    Index n_folds = 0;
    const RidgeCv method = detail::resolve_ridge_method(m_params, f.cols(), groups, n_folds);
    IndexVector fold;
    if (method == RidgeCv::KFold) {
      Rng rng(m_params.seed);
      fold = fold_assignment(f.cols(), n_folds, rng, groups);
    }
    m_engine.prepare(f, t, method, fold, n_folds, m_params.block_size);
    set_solution(m_engine.solve(f, t, nullptr, m_params));
    return *this;
  }

  /// True after fit().
  bool fitted() const { return m_fitted; }
  /// Fitted map, k × d.
  const Matrix<double>& weights() const { return m_sol.w; }
  /// Fitted intercept, k.
  const Vector<double>& intercept() const { return m_sol.b; }
  /// Chosen absolute penalty λ.
  double lambda() const { return m_sol.lambda; }
  /// Chosen λ relative to the mean eigenvalue of the centred Gram (the grid's unit).
  double relative_lambda() const { return m_sol.lambda / m_engine.scale(); }
  /// The absolute penalties searched (n_λ).
  const Vector<double>& lambdas() const { return m_sol.lambdas; }
  /// Cross-validated R² per λ (rows) and output (columns), n_λ × k; NaN for constant outputs
  /// and for cv = Fixed.
  const Matrix<double>& cv_r2_path() const { return m_sol.cv_r2; }
  /// Cross-validated R² per output at the chosen λ (k).
  Vector<double> cv_r2() const { return m_sol.cv_r2.row(m_sol.best).transpose(); }
  /// Mean over outputs of the cross-validated R² at the chosen λ.
  double cv_r2_mean() const {
    double s = 0.0;
    Index c = 0;
    for (Index j = 0; j < m_sol.cv_r2.cols(); ++j)
      if (std::isfinite(m_sol.cv_r2(m_sol.best, j))) {
        s += m_sol.cv_r2(m_sol.best, j);
        ++c;
      }
    return c > 0 ? s / static_cast<double>(c) : std::numeric_limits<double>::quiet_NaN();
  }
  /// The penalty-selection method actually used (Auto resolved).
  RidgeCv cv_method() const { return m_sol.method; }
  /// Singular values of W, decreasing (min(k, d) values).
  const Vector<double>& singular_values() const { return m_sv; }
  /// σ_max / σ_min of W (+inf if W is singular).
  double condition_number() const { return m_cond; }
  /// Numerical rank of W: singular values above max(k, d) · eps · σ_max (numpy's convention).
  Index rank() const { return m_rank; }
  /// Settings.
  const RidgeParams& params() const { return m_params; }

  /// \brief Predictions W F + b. \param f d × N \return k × N
  template <class DF>
  Matrix<double> predict(const Eigen::MatrixBase<DF>& f) const {
    check_arg(m_fitted, "RidgeRegression::predict", "model", "a fitted model", "not fitted");
    check_arg(f.rows() == m_sol.w.cols(), "RidgeRegression::predict", "f",
              detail::str_cat(m_sol.w.cols(), " rows"), f.rows());
    Matrix<double> out(m_sol.w.rows(), f.cols());
    out.noalias() = m_sol.w * f.template cast<double>();
    out.colwise() += m_sol.b;
    return out;
  }

  /// \brief R² of the predictions for F against T (held-out when F, T are test data).
  /// \param f d × N \param t k × N
  template <class DF, class DT>
  R2Scores score(const Eigen::MatrixBase<DF>& f, const Eigen::MatrixBase<DT>& t) const {
    check_arg(t.rows() == m_sol.w.rows(), "RidgeRegression::score", "t",
              detail::str_cat(m_sol.w.rows(), " rows"), t.rows());
    return r2_scores(t, predict(f));
  }

  /// \internal Installs a solution computed by the engine (used by the permutation null).
  void set_solution(detail::RidgeSolution sol) {
    m_sol = std::move(sol);
    m_fitted = true;
    Eigen::BDCSVD<Matrix<double>> svd(m_sol.w);
    m_sv = svd.singularValues();
    const double smax = m_sv.size() > 0 ? m_sv[0] : 0.0;
    const double tol = static_cast<double>(std::max(m_sol.w.rows(), m_sol.w.cols())) *
                       ScalarTraits<double>::eps() * smax;
    m_rank = 0;
    for (Index i = 0; i < m_sv.size(); ++i)
      if (m_sv[i] > tol) ++m_rank;
    const double smin = m_sv.size() > 0 ? m_sv[m_sv.size() - 1] : 0.0;
    m_cond = smin > 0.0 ? smax / smin : std::numeric_limits<double>::infinity();
  }
  /// \internal The feature-side cache (reused for permutation refits).
  detail::RidgeCvEngine& engine() { return m_engine; }

 private:
  RidgeParams m_params;
  detail::RidgeCvEngine m_engine;
  detail::RidgeSolution m_sol;
  bool m_fitted = false;
  Vector<double> m_sv;
  double m_cond = std::numeric_limits<double>::quiet_NaN();
  Index m_rank = 0;
};

}  // namespace ergo

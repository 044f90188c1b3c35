// SPDX-License-Identifier: MIT
#pragma once

/// \file ridge_engine.hpp
/// \brief The cross-validation engine behind RidgeRegression (ridge.hpp, whose file comment
/// describes the method): one pass over the data, one eigendecomposition per Gram, the whole λ
/// grid scored from d × k quantities. Private to identify.

#include "../../core/error.hpp"
#include "../../core/parallel.hpp"
#include "../../core/random.hpp"
#include "../../core/types.hpp"
#include "../resampling.hpp"
#include "../ridge_params.hpp"
#include "gram.hpp"

#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace ergo::identify {
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
        accumulate_pair_stats(f, t, mem.data(), static_cast<Index>(mem.size()), nullptr, m_shift_f,
                              m_shift_t, true, block, m_fold_stats[static_cast<size_t>(q)], &m_ws);
        m_fold_stats[static_cast<size_t>(q)].symmetrize();
      }
      m_total.reset(m_d, t.rows(), true);
      for (const auto& s : m_fold_stats) m_total.add(s);
    } else {
      accumulate_pair_stats(f, t, nullptr, m_n, nullptr, m_shift_f, m_shift_t, true, block, m_total,
                            &m_ws);
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
        m_vm_tr[qi] =
            v.transpose() * ((m_total.s - fs.s) / static_cast<double>(std::max<Index>(1, ntr)));
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
      const double a =
          p.grid_size == 1 ? 1.0 : static_cast<double>(i) / static_cast<double>(p.grid_size - 1);
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
          accumulate_pair_stats(f, t, mem.data(), static_cast<Index>(mem.size()), perm, m_shift_f,
                                shift_t, false, m_block, fold_t[static_cast<size_t>(q)], &m_ws);
          total.add(fold_t[static_cast<size_t>(q)]);
        }
      } else {
        accumulate_pair_stats(f, t, nullptr, m_n, perm, m_shift_f, shift_t, false, m_block, total,
                              &m_ws);
      }
      total.n = m_n;
      m_cur_shift_t = shift_t;
    }
    const Vector<double>& shift_t =
        (perm == nullptr && m_have_identity_t) ? m_shift_t : m_cur_shift_t;
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
      const Matrix<double> qq =
          v.transpose() * (total.c - ft.c) - ntr_d * m_vm_tr[qi] * mt.transpose();
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

}  // namespace ergo::identify

// SPDX-License-Identifier: MIT
#pragma once

/// \file cca.hpp
/// \brief Canonical correlation analysis between F (d × N) and T (k × N): the "weak"
/// (up-to-invertible-linear) identifiability statistic, fitted on training data and evaluated on
/// held-out data.
///
/// The canonical correlations ρ_1 ≥ … ≥ ρ_m (m = min(rank F, rank T)) are the singular values of
/// Σ_FF^{-1/2} Σ_FT Σ_TT^{-1/2}. Two ways to compute them:
/// - **QR** (default for N ≤ `qr_max_samples`): thin column-pivoted QR of each centred block,
///   Fcᵀ P_F = Q_F R_F and Tcᵀ P_T = Q_T R_T, then the SVD of Q_Fᵀ Q_T (R's cancor; accurate,
///   rank-revealing; O(N (d² + k²))).
/// - **Gram**: the centred covariances accumulated in one blocked pass (as in ridge.hpp), each
///   whitened by its eigendecomposition (pseudo-inverse square root on its numerical range). It
///   squares the conditioning but costs one streaming pass; used for large N and whenever a
///   block is regularised: Σ_FF + r · (tr Σ_FF / d) I and likewise for T (canonical ridge, as in
///   cca-zoo's rCCA), which is what keeps CCA meaningful when d is not ≪ N (with d ≥ N every
///   unregularised canonical correlation is 1 whatever the data; Kornblith et al. 2019). By
///   default the ridge switches itself on for a block of dimension p once N < 10 p.
///
/// Because CCA is invariant to invertible linear maps on either side, the whitened map between F
/// and T has singular values exactly ρ: a held-out ρ_min near 1 means every target direction is
/// linearly and invertibly recoverable, and κ_w = ρ_1/ρ_min is the whitened condition number
/// (docs/identify.md, "CCA computation"). In-sample ρ has a large null floor (docs/identify.md,
/// the three facts at the top); use held-out values.
///
/// \code
/// ergo::identify::Cca cca;
/// cca.fit(F_train, T_train);
/// Eigen::VectorXd rho = cca.evaluate(F_test, T_test);     // held-out spectrum
/// ergo::identify::CcaSummary s = ergo::identify::summarize_cca(rho);          // mean, min, κ_w,
/// R²_CCA \endcode

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "detail/gram.hpp"

#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <limits>

namespace ergo::identify {

/// \brief How Cca computes the canonical directions.
enum class CcaMethod {
  Auto,  ///< Qr when regularization == 0 and N ≤ qr_max_samples, else Gram
  Qr,    ///< column-pivoted QR of each centred block, SVD of Q_Fᵀ Q_T (no regularisation)
  Gram,  ///< eigen-whitened covariances (supports regularisation)
};

/// \brief "auto", "qr" or "gram".
inline const char* to_string(CcaMethod m) {
  switch (m) {
    case CcaMethod::Auto:
      return "auto";
    case CcaMethod::Qr:
      return "qr";
    case CcaMethod::Gram:
      return "gram";
  }
  return "unknown";
}

/// \brief CCA settings.
struct CcaParams {
  /// Number of canonical pairs kept; −1 (default) keeps min(rank F, rank T).
  Index n_components = -1;
  /// Relative ridge r added to each block's covariance as r · (mean eigenvalue) · I.
  /// −1 (default) = automatic per block of dimension p: 0 while N ≥ 10 p, else min(1, p/N)
  /// (shrinkage proportional to the dimension ratio, which sets the spread of a sample
  /// covariance's eigenvalues — a convention, not a tuned value). ≥ 0: that value for both blocks.
  double regularization = -1.0;
  /// Computation method (default Auto).
  CcaMethod method = CcaMethod::Auto;
  /// Auto uses QR up to this many samples (default 20 000), the Gram path above it.
  Index qr_max_samples = 20000;
  /// Samples per block in the Gram pass (≥ 1).
  Index block_size = 256;

  void check() const {
    const char* who = "CcaParams::check";
    check_arg(n_components == -1 || n_components >= 1, who, "n_components", "-1 or at least 1",
              n_components);
    check_arg(regularization == -1.0 || (regularization >= 0.0 && std::isfinite(regularization)),
              who, "regularization", "-1 (automatic) or a finite value >= 0", regularization);
    check_arg(!(method == CcaMethod::Qr && regularization > 0.0), who, "method",
              "Gram or Auto when regularization > 0", "Qr");
    check_arg(qr_max_samples >= 0, who, "qr_max_samples", "a value >= 0", qr_max_samples);
    check_arg(block_size >= 1, who, "block_size", "at least 1", block_size);
  }
};

/// \brief Summary of a canonical correlation spectrum.
struct CcaSummary {
  Vector<double> rho;  ///< the spectrum (m values, in the order of the fitted components)
  double mean = std::numeric_limits<double>::quiet_NaN();  ///< mean ρ ("weak MCC")
  double min = std::numeric_limits<double>::quiet_NaN();   ///< ρ_min: the weakest direction
  double max = std::numeric_limits<double>::quiet_NaN();   ///< ρ_1 (largest)
  double kappa =
      std::numeric_limits<double>::quiet_NaN();  ///< κ_w = ρ_max/ρ_min (+inf if ρ_min ≤ 0)
  double r2 = std::numeric_limits<double>::quiet_NaN();  ///< R²_CCA = mean ρ²
};

/// \brief Mean, min, max, κ_w = max/min and mean ρ² of a spectrum (NaN fields if empty).
inline CcaSummary summarize_cca(const Vector<double>& rho) {
  CcaSummary s;
  s.rho = rho;
  if (rho.size() == 0) return s;
  s.mean = rho.mean();
  s.min = rho.minCoeff();
  s.max = rho.maxCoeff();
  s.kappa = s.min > 0.0 ? s.max / s.min : std::numeric_limits<double>::infinity();
  s.r2 = rho.squaredNorm() / static_cast<double>(rho.size());
  return s;
}

/// \brief Canonical correlation analysis (see the file comment).
class Cca {
 public:
  explicit Cca(CcaParams params = {}) : m_params(params) { m_params.check(); }

  /// \brief Fits the canonical directions on F (d × N) and T (k × N).
  /// \throws InvalidArgument on mismatched N, N < 3 or non-finite data
  template <class DF, class DT>
  Cca& fit(const Eigen::MatrixBase<DF>& f_in, const Eigen::MatrixBase<DT>& t_in) {
    const char* who = "Cca::fit";
    const auto& f = f_in.eval();  // expressions evaluated once; plain matrices are not copied
    const auto& t = t_in.eval();
    detail::check_pair_data(who, f, t);
    m_n = f.cols();
    m_reg_f = resolve_regularization(f.rows());
    m_reg_t = resolve_regularization(t.rows());
    m_method = m_params.method;
    if (m_method == CcaMethod::Qr) m_reg_f = m_reg_t = 0.0;  // automatic ridge off for QR
    if (m_method == CcaMethod::Auto)
      m_method = (m_reg_f == 0.0 && m_reg_t == 0.0 && m_n <= m_params.qr_max_samples)
                     ? CcaMethod::Qr
                     : CcaMethod::Gram;
    m_mean_f = detail::row_means(f);
    m_mean_t = detail::row_means(t);
    if (m_method == CcaMethod::Qr)
      prepare_qr(f, t);
    else
      prepare_gram(f, t);
    finish(nullptr, f, t);
    m_fitted = true;
    return *this;
  }

  /// \internal Refits the directions with T's columns re-paired as t.col(perm[i]) ↔ f.col(i),
  /// reusing the factorisations of each block (they do not change under a permutation).
  template <class DF, class DT>
  void refit_permuted(const Eigen::MatrixBase<DF>& f, const Eigen::MatrixBase<DT>& t,
                      const IndexVector& perm) {
    ERGO_CHECK(m_fitted && perm.size() == m_n, "refit_permuted needs a fitted Cca");
    finish(perm.data(), f, t);
  }

  /// In-sample canonical correlations (m values, decreasing for plain CCA).
  const Vector<double>& correlations() const { return m_rho; }
  /// Canonical weights of F, d × m (variates u = aᵀ(f − mean_f) have unit training variance).
  const Matrix<double>& x_weights() const { return m_a; }
  /// Canonical weights of T, k × m.
  const Matrix<double>& y_weights() const { return m_b; }
  /// Training means of F (d) and T (k).
  const Vector<double>& x_mean() const { return m_mean_f; }
  const Vector<double>& y_mean() const { return m_mean_t; }
  /// Numerical ranks of the centred blocks.
  Index rank_x() const { return m_rank_f; }
  Index rank_y() const { return m_rank_t; }
  /// Number of canonical pairs m.
  Index components() const { return m_a.cols(); }
  /// The method actually used (Auto resolved).
  CcaMethod method() const { return m_method; }
  /// Relative ridges actually used for F's and T's covariances (automatic rule resolved).
  double regularization_x() const { return m_reg_f; }
  double regularization_y() const { return m_reg_t; }
  const CcaParams& params() const { return m_params; }

  /// \brief Canonical variates of F. \param f d × N \return m × N
  template <class DF>
  Matrix<double> transform_x(const Eigen::MatrixBase<DF>& f) const {
    check_arg(m_fitted, "Cca::transform_x", "model", "a fitted model", "not fitted");
    check_arg(f.rows() == m_a.rows(), "Cca::transform_x", "f",
              ergo::detail::str_cat(m_a.rows(), " rows"), f.rows());
    Matrix<double> fc = f.template cast<double>();
    fc.colwise() -= m_mean_f;
    return m_a.transpose() * fc;
  }
  /// \brief Canonical variates of T. \param t k × N \return m × N
  template <class DT>
  Matrix<double> transform_y(const Eigen::MatrixBase<DT>& t) const {
    check_arg(m_fitted, "Cca::transform_y", "model", "a fitted model", "not fitted");
    check_arg(t.rows() == m_b.rows(), "Cca::transform_y", "t",
              ergo::detail::str_cat(m_b.rows(), " rows"), t.rows());
    Matrix<double> tc = t.template cast<double>();
    tc.colwise() -= m_mean_t;
    return m_b.transpose() * tc;
  }

  /// \brief Held-out canonical correlations: Pearson correlation of each pair of variates on
  /// (F, T). \param f d × N \param t k × N (N ≥ 2) \return m values (may be negative)
  template <class DF, class DT>
  Vector<double> evaluate(const Eigen::MatrixBase<DF>& f, const Eigen::MatrixBase<DT>& t) const {
    check_arg(f.cols() == t.cols(), "Cca::evaluate", "t",
              ergo::detail::str_cat(f.cols(), " columns (as f)"), t.cols());
    return paired_correlations(transform_x(f), transform_y(t));
  }

  /// \brief Pearson correlation of row i of u with row i of v (0 for a constant row).
  static Vector<double> paired_correlations(const Matrix<double>& u, const Matrix<double>& v) {
    Vector<double> r(u.rows());
    for (Index i = 0; i < u.rows(); ++i) {
      const RowVector<double> a = u.row(i).array() - u.row(i).mean();
      const RowVector<double> b = v.row(i).array() - v.row(i).mean();
      const double den = a.norm() * b.norm();
      r[i] = den > 0.0 ? a.dot(b) / den : 0.0;
    }
    return r;
  }

 private:
  double resolve_regularization(Index p) const {
    if (m_params.regularization >= 0.0) return m_params.regularization;
    const double pd = static_cast<double>(p), nd = static_cast<double>(m_n);
    return 10.0 * pd <= nd ? 0.0 : std::min(1.0, pd / nd);
  }

  template <class DF, class DT>
  void prepare_qr(const Eigen::MatrixBase<DF>& f, const Eigen::MatrixBase<DT>& t) {
    qr_block(f, m_mean_f, m_qf, m_rf, m_pf, m_rank_f);
    qr_block(t, m_mean_t, m_qt, m_rt, m_pt, m_rank_t);
  }

  template <class D>
  static void qr_block(const Eigen::MatrixBase<D>& m, const Vector<double>& mean, Matrix<double>& q,
                       Matrix<double>& r11, IndexVector& piv, Index& rank) {
    Matrix<double> x = m.template cast<double>().transpose();  // N × p
    x.rowwise() -= mean.transpose();
    Eigen::ColPivHouseholderQR<Matrix<double>> qr(x.rows(), x.cols());
    // Rank threshold: |R_ii| ≤ max(N, p) · eps · |R_00| (numpy's matrix_rank convention).
    qr.setThreshold(static_cast<double>(std::max(x.rows(), x.cols())) *
                    ScalarTraits<double>::eps());
    qr.compute(x);
    rank = qr.rank();
    q = qr.householderQ() * Matrix<double>::Identity(x.rows(), rank);
    r11 = qr.matrixR().topLeftCorner(rank, rank).template triangularView<Eigen::Upper>();
    piv = qr.colsPermutation().indices().template cast<Index>();
  }

  template <class DF, class DT>
  void prepare_gram(const Eigen::MatrixBase<DF>& f, const Eigen::MatrixBase<DT>& t) {
    const Matrix<double> none(0, f.cols());
    detail::PairStats sf, st;
    detail::accumulate_pair_stats(f, none, nullptr, m_n, nullptr, m_mean_f, Vector<double>(), true,
                                  m_params.block_size, sf);
    detail::accumulate_pair_stats(t, none, nullptr, m_n, nullptr, m_mean_t, Vector<double>(), true,
                                  m_params.block_size, st);
    sf.symmetrize();
    st.symmetrize();
    const double nm1 = static_cast<double>(m_n - 1);
    m_cov_f = detail::centred_gram(sf.g, sf.s, m_n) / nm1;
    m_cov_t = detail::centred_gram(st.g, st.s, m_n) / nm1;
    whitener(m_cov_f, m_reg_f, m_wf, m_rank_f);
    whitener(m_cov_t, m_reg_t, m_wt, m_rank_t);
  }

  // W = V_r diag((e_r + reg)^{-1/2}) on the numerical range of the covariance.
  void whitener(const Matrix<double>& cov, double reg, Matrix<double>& w, Index& rank) const {
    const Index p = cov.rows();
    Eigen::SelfAdjointEigenSolver<Matrix<double>> es(cov);
    ERGO_CHECK(es.info() == Eigen::Success, "covariance eigendecomposition failed");
    const Vector<double> e = es.eigenvalues();
    const double emax = std::max(0.0, e.maxCoeff());
    const double ridge = reg * (std::max(0.0, e.sum()) / static_cast<double>(p));
    // Eigenvalues of a Gram are accurate to about eps·e_max·max(N, p): below that they are noise.
    const double tol = static_cast<double>(std::max(m_n, p)) * ScalarTraits<double>::eps() * emax;
    rank = 0;
    for (Index i = 0; i < p; ++i)
      if (e[i] > tol) ++rank;
    w.resize(p, rank);
    Index c = 0;
    for (Index i = 0; i < p; ++i)
      if (e[i] > tol) w.col(c++) = es.eigenvectors().col(i) / std::sqrt(e[i] + ridge);
  }

  template <class DF, class DT>
  void finish(const Index* perm, const Eigen::MatrixBase<DF>& f, const Eigen::MatrixBase<DT>& t) {
    Index m = std::min(m_rank_f, m_rank_t);
    if (m_params.n_components > 0) m = std::min(m, m_params.n_components);
    const double sq = std::sqrt(static_cast<double>(m_n - 1));
    if (m_method == CcaMethod::Qr) {
      Matrix<double> cross(m_rank_f, m_rank_t);
      if (perm == nullptr) {
        cross.noalias() = m_qf.transpose() * m_qt;
      } else {
        Matrix<double> qtp(m_n, m_rank_t);
        for (Index i = 0; i < m_n; ++i) qtp.row(i) = m_qt.row(perm[i]);
        cross.noalias() = m_qf.transpose() * qtp;
      }
      Eigen::BDCSVD<Matrix<double>> svd(cross, Eigen::ComputeThinU | Eigen::ComputeThinV);
      m_rho = svd.singularValues().head(m).cwiseMin(1.0);
      m_a = scatter(m_rf, m_pf, svd.matrixU().leftCols(m), f.rows()) * sq;
      m_b = scatter(m_rt, m_pt, svd.matrixV().leftCols(m), t.rows()) * sq;
    } else {
      detail::PairStats st;
      detail::accumulate_pair_stats(f, t, nullptr, m_n, perm, m_mean_f, m_mean_t, false,
                                    m_params.block_size, st, &m_ws);
      // Means are exact up to rounding, so Σ u vᵀ needs the (tiny) re-centring correction.
      const Matrix<double> cov_ft = (st.c - st.s * st.t.transpose() / static_cast<double>(m_n)) /
                                    static_cast<double>(m_n - 1);
      const Matrix<double> mm = m_wf.transpose() * cov_ft * m_wt;
      Eigen::BDCSVD<Matrix<double>> svd(mm, Eigen::ComputeThinU | Eigen::ComputeThinV);
      m_a = m_wf * svd.matrixU().leftCols(m);
      m_b = m_wt * svd.matrixV().leftCols(m);
      // Actual in-sample correlations of the variates (differ from the singular values when
      // regularised).
      m_rho.resize(m);
      for (Index i = 0; i < m; ++i) {
        const double num = m_a.col(i).dot(cov_ft * m_b.col(i));
        const double den =
            std::sqrt(m_a.col(i).dot(m_cov_f * m_a.col(i)) * m_b.col(i).dot(m_cov_t * m_b.col(i)));
        m_rho[i] = den > 0.0 ? num / den : 0.0;
      }
    }
  }

  // Weights a = P [R11⁻¹ U; 0] in the original coordinates.
  static Matrix<double> scatter(const Matrix<double>& r11, const IndexVector& piv,
                                const Matrix<double>& u, Index p) {
    Matrix<double> sol = r11.template triangularView<Eigen::Upper>().solve(u);
    Matrix<double> a = Matrix<double>::Zero(p, u.cols());
    for (Index i = 0; i < sol.rows(); ++i) a.row(piv[i]) = sol.row(i);
    return a;
  }

  CcaParams m_params;
  CcaMethod m_method = CcaMethod::Qr;
  bool m_fitted = false;
  Index m_n = 0, m_rank_f = 0, m_rank_t = 0;
  double m_reg_f = 0.0, m_reg_t = 0.0;
  Vector<double> m_mean_f, m_mean_t, m_rho;
  Matrix<double> m_a, m_b;
  // QR path caches.
  Matrix<double> m_qf, m_qt, m_rf, m_rt;
  IndexVector m_pf, m_pt;
  // Gram path caches.
  Matrix<double> m_cov_f, m_cov_t, m_wf, m_wt;
  detail::PairWorkspace m_ws;
};

}  // namespace ergo::identify

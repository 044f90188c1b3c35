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
/// Fast path (docs/identify.md, "Performance"): the data are read once in blocks that are centred
/// and accumulated into the d × d Gram with a rank update (SYRK) and into the d × k cross-product,
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
/// ergo::identify::RidgeRegression fit({});            // GCV (no groups) or grouped 5-fold
/// (groups) fit.fit(F_train, T_train, groups_train); ergo::identify::R2Scores r2 =
/// fit.score(F_test, T_test);   // held-out R² per output, mean, weighted double kappa =
/// fit.condition_number();            // of the fitted k × d map \endcode

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "detail/gram.hpp"
#include "detail/ridge_engine.hpp"
#include "resampling.hpp"
#include "ridge_params.hpp"

#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace ergo::identify {

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
              ergo::detail::str_cat(m_sol.w.cols(), " rows"), f.rows());
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
              ergo::detail::str_cat(m_sol.w.rows(), " rows"), t.rows());
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

}  // namespace ergo::identify

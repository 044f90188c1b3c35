// SPDX-License-Identifier: MIT
#pragma once

/// \file probe.hpp
/// \brief Linear probes: L2-regularised logistic regression (binary and multinomial) fitted with
/// LBFGS++, per-concept probe accuracy (the paper's simulation metric), cross-fitted
/// probabilities and calibration measures.
///
/// Shapes: features F are d × N (samples are columns); labels are N integers in [0, K).
/// Binary (K = 2): one weight vector w (d) and intercept b; p(y=1|f) = σ(wᵀf + b).
/// Multinomial (K > 2): W (K × d), b (K); p(y|f) = softmax(W f + b).
///
/// Objective (scikit-learn's convention, so the paper's `LogisticRegression(C=1e-4)` maps
/// directly): minimise ‖W‖²/(2C) + Σ_n −log p(y_n|f_n); the intercept is not penalised. It is
/// optimised divided by N (same minimiser, better scaled). Dependency: LBFGS++ (Debian
/// `liblbfgspp-dev`, header-only in /usr/include; consumers need nothing extra in CMake).
///
/// \code
/// ergo::identify::LogisticRegression probe({.c = 1.0});
/// probe.fit(F_train, y_train);                    // y: labels 0..K−1
/// double acc = probe.accuracy(F_test, y_test);
/// Eigen::MatrixXd p = probe.predict_proba(F_test);  // K × N
/// \endcode

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/status.hpp"
#include "../core/types.hpp"
#include "resampling.hpp"

#include <LBFGS.h>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace ergo::identify {

/// \brief Logistic regression settings.
struct LogisticParams {
  /// Inverse regularisation strength C > 0 (scikit-learn convention): penalty ‖W‖²/(2C).
  /// Default 1.0. The paper's A_s W_s code used C = 1e-4 on Pythia embeddings.
  double c = 1.0;
  /// Fit an unpenalised intercept (default true).
  bool fit_intercept = true;
  /// LBFGS iteration limit (default 500, the paper's max_iter).
  Index max_iterations = 500;
  /// Convergence: Euclidean norm of the gradient of the per-sample objective ≤ tolerance.
  /// Default 1e-6 (scikit-learn's lbfgs stops at a max-abs gradient of 1e-4); lower it when the
  /// weights themselves are the result (e.g. 1e-10 to compare with a closed form).
  double tolerance = 1e-6;
  /// LBFGS memory (correction pairs, default 10).
  Index memory = 10;
  /// Standardise every feature before fitting (default false, scikit-learn's behaviour without a
  /// StandardScaler): centre it (only with an intercept, so a model without one stays without)
  /// and divide by its standard deviation (its root mean square when not centred; constant
  /// features are left unscaled). The penalty then acts on standardised weights, so C means the
  /// same whatever the feature scale. weights() and intercept() are returned in the original
  /// units, so decision_function() takes raw features either way.
  bool standardize = false;

  void check() const {
    const char* who = "LogisticParams::check";
    check_arg(c > 0.0 && std::isfinite(c), who, "c", "a finite value > 0", c);
    check_arg(max_iterations >= 1, who, "max_iterations", "at least 1", max_iterations);
    check_arg(tolerance > 0.0, who, "tolerance", "a value > 0", tolerance);
    check_arg(memory >= 1, who, "memory", "at least 1", memory);
  }
};

namespace detail {

/// \brief Per-sample L2-logistic objective and its gradient at packed parameters.
///
/// theta packs W (rows × d, column-major; rows = 1 for K = 2, else K) followed by the intercepts
/// (rows values) when params.fit_intercept. Value: (Σ_n −log p(y_n|x_n) + ‖W‖²/(2C)) / N.
/// \param x d × N features \param y N labels in [0, k) \param grad resized to theta's size
inline double logistic_objective(const Matrix<double>& x, const IndexVector& y, Index k,
                                 const LogisticParams& params, const Vector<double>& theta,
                                 Vector<double>& grad) {
  const Index n = x.cols(), d = x.rows();
  const double nd = static_cast<double>(n);
  const bool binary = k == 2;
  const Index rows = binary ? 1 : k;
  grad.resize(theta.size());
  const Eigen::Map<const Matrix<double>> w(theta.data(), rows, d);
  Eigen::Map<Matrix<double>> gw(grad.data(), rows, d);
  Matrix<double> z(rows, n);
  z.noalias() = w * x;
  if (params.fit_intercept) z.colwise() += theta.segment(rows * d, rows);
  double loss = 0.0;
  // z becomes the residual p − onehot(y) in place.
  if (binary) {
    for (Index i = 0; i < n; ++i) {
      const double zi = z(0, i);
      const bool pos = y[i] == 1;
      loss += pos ? (zi > 0.0 ? std::log1p(std::exp(-zi)) : -zi + std::log1p(std::exp(zi)))
                  : (zi > 0.0 ? zi + std::log1p(std::exp(-zi)) : std::log1p(std::exp(zi)));
      const double p1 =
          zi >= 0.0 ? 1.0 / (1.0 + std::exp(-zi)) : std::exp(zi) / (1.0 + std::exp(zi));
      z(0, i) = p1 - (pos ? 1.0 : 0.0);
    }
  } else {
    for (Index i = 0; i < n; ++i) {
      const double mx = z.col(i).maxCoeff();
      const double lse = mx + std::log((z.col(i).array() - mx).exp().sum());
      loss += lse - z(y[i], i);
      z.col(i) = (z.col(i).array() - lse).exp().matrix();
      z(y[i], i) -= 1.0;
    }
  }
  const double inv_c = 1.0 / params.c;
  gw.noalias() = z * x.transpose();
  gw += inv_c * w;
  gw /= nd;
  if (params.fit_intercept) grad.segment(rows * d, rows) = z.rowwise().sum() / nd;
  return (loss + 0.5 * inv_c * w.squaredNorm()) / nd;
}

}  // namespace detail

/// \brief L2-regularised logistic regression, binary or multinomial (see the file comment).
class LogisticRegression {
 public:
  explicit LogisticRegression(LogisticParams params = {}) : m_params(params) { m_params.check(); }

  /// \brief Fits the probe.
  /// \param f features, d × N (finite) \param y labels, N integers in [0, K), K ≥ 2
  /// \param n_classes K; −1 (default) uses max(y) + 1 (at least 2)
  /// \return the outcome: Success, or NotConverged / NumericalIssue with a message (the fitted
  ///         weights are the best point reached)
  template <class DF, class DY>
  Outcome fit(const Eigen::MatrixBase<DF>& f_in, const Eigen::DenseBase<DY>& y_in,
              Index n_classes = -1) {
    const char* who = "LogisticRegression::fit";
    const auto& f = f_in.eval();  // expressions evaluated once; plain matrices are not copied
    const auto& y = y_in.eval();
    check_arg(y.size() == f.cols(), who, "y", ergo::detail::str_cat(f.cols(), " labels"), y.size());
    check_arg(f.cols() >= 1 && f.rows() >= 1, who, "f", "a non-empty matrix",
              ergo::detail::str_cat(f.rows(), " x ", f.cols()));
    check_finite(who, "f", f);
    Index ymax = 0;
    for (Index i = 0; i < y.size(); ++i) {
      check_arg(y(i) >= 0, who, "y", "labels >= 0", static_cast<Index>(y(i)));
      ymax = std::max<Index>(ymax, static_cast<Index>(y(i)));
    }
    m_k = n_classes > 0 ? n_classes : std::max<Index>(2, ymax + 1);
    check_arg(m_k >= 2 && ymax < m_k, who, "n_classes",
              ergo::detail::str_cat("at least 2 and > max label ", ymax), m_k);
    m_d = f.rows();
    m_x = f.template cast<double>();
    m_shift = Vector<double>::Zero(m_d);
    m_scale = Vector<double>::Ones(m_d);
    if (m_params.standardize) {
      const double nd = static_cast<double>(m_x.cols());
      if (m_params.fit_intercept) m_shift = m_x.rowwise().mean();
      for (Index j = 0; j < m_d; ++j) {
        const double ss = (m_x.row(j).array() - m_shift[j]).square().sum() / nd;
        if (ss > 0.0 && std::isfinite(ss)) m_scale[j] = std::sqrt(ss);
      }
      m_x = (m_x.colwise() - m_shift).array().colwise() / m_scale.array();
    }
    m_y.resize(y.size());
    for (Index i = 0; i < y.size(); ++i) m_y[i] = static_cast<Index>(y(i));
    const Index rows = binary() ? 1 : m_k;
    const Index n_par = rows * m_d + (m_params.fit_intercept ? rows : 0);
    Vector<double> theta = Vector<double>::Zero(n_par);
    // Start the intercept at the log class frequencies (smoothed): the optimum when W = 0.
    if (m_params.fit_intercept) {
      Vector<double> cnt = Vector<double>::Constant(m_k, 0.5);
      for (Index i = 0; i < m_y.size(); ++i) cnt[m_y[i]] += 1.0;
      if (binary())
        theta[rows * m_d] = std::log(cnt[1] / cnt[0]);
      else
        theta.tail(rows) = cnt.array().log().matrix();
    }
    LBFGSpp::LBFGSParam<double> lp;
    lp.m = static_cast<int>(m_params.memory);
    lp.epsilon = m_params.tolerance;
    lp.epsilon_rel = 0.0;
    lp.max_iterations = static_cast<int>(m_params.max_iterations);
    lp.max_linesearch = 60;
    lp.linesearch = LBFGSpp::LBFGS_LINESEARCH_BACKTRACKING_STRONG_WOLFE;
    LBFGSpp::LBFGSSolver<double, LBFGSpp::LineSearchNocedalWright> solver(lp);
    Objective obj{this, std::numeric_limits<double>::infinity(), theta};
    double fx = std::numeric_limits<double>::quiet_NaN();
    std::string stop_reason;
    m_iterations = 0;
    try {
      m_iterations = solver.minimize(obj, theta, fx);
    } catch (const std::exception& e) {
      // LBFGS++ (0.1.x) throws when its line search cannot progress, and its BFGS update divides
      // by sᵀy, which is 0 once steps stall at rounding level; the objective below aborts as soon
      // as a non-finite point appears. Either way the best point seen is kept.
      stop_reason = e.what();
    }
    // Keep the best finite point the solver evaluated (after an exception `theta` may hold the
    // trial point that failed, and the final iterate is always among the evaluated points).
    if (std::isfinite(obj.best_f)) theta = obj.best_theta;
    Vector<double> g(n_par);
    const double f_final = detail::logistic_objective(m_x, m_y, m_k, m_params, theta, g);
    m_gradient_norm = g.norm();
    Outcome out;
    if (!std::isfinite(f_final) || !std::isfinite(m_gradient_norm)) {
      out = {Status::NumericalIssue, "non-finite loss or gradient; check the feature scale"};
    } else if (m_gradient_norm <= m_params.tolerance) {
      // converged
    } else if (!stop_reason.empty() && m_gradient_norm <= std::sqrt(m_params.tolerance)) {
      // The line search stalled with the gradient within sqrt(tolerance): the objective is flat
      // to rounding there, which is the precision the data allow; counted as converged.
    } else {
      out = {Status::NotConverged,
             ergo::detail::str_cat("gradient norm ", m_gradient_norm, " > tolerance ",
                                   m_params.tolerance, " after ", m_iterations, " iterations",
                                   stop_reason.empty() ? "" : " (" + stop_reason + ")",
                                   "; raise max_iterations, lower C or standardise F")};
    }
    fx = f_final;
    m_evaluations = obj.evaluations;
    m_loss = fx;
    unpack(theta);
    m_x.resize(0, 0);
    m_y.resize(0);
    m_fitted = true;
    m_outcome = out;
    return out;
  }

  /// True for K = 2 (one weight vector).
  bool binary() const { return m_k == 2; }
  /// Number of classes K.
  Index n_classes() const { return m_k; }
  /// Weights: 1 × d for binary (w), K × d for multinomial.
  const Matrix<double>& weights() const { return m_w; }
  /// Intercepts: 1 for binary, K for multinomial (centred to sum 0).
  const Vector<double>& intercept() const { return m_b; }
  /// LBFGS iterations completed (0 if the line search stalled in the first one), objective
  /// evaluations, final objective (per sample) and its gradient norm.
  Index iterations() const { return m_iterations; }
  Index evaluations() const { return m_evaluations; }
  double loss() const { return m_loss; }
  double gradient_norm() const { return m_gradient_norm; }
  /// Outcome of the last fit.
  const Outcome& outcome() const { return m_outcome; }
  const LogisticParams& params() const { return m_params; }

  /// \brief Logits: binary 1 × N (wᵀf + b), multinomial K × N. \param f d × N
  template <class DF>
  Matrix<double> decision_function(const Eigen::MatrixBase<DF>& f) const {
    check_arg(m_fitted, "LogisticRegression::decision_function", "model", "a fitted model",
              "not fitted");
    check_arg(f.rows() == m_d, "LogisticRegression::decision_function", "f",
              ergo::detail::str_cat(m_d, " rows"), f.rows());
    Matrix<double> z(m_w.rows(), f.cols());
    z.noalias() = m_w * f.template cast<double>();
    z.colwise() += m_b;
    return z;
  }

  /// \brief Class probabilities, K × N (binary: row 0 = p(y=0), row 1 = p(y=1)).
  template <class DF>
  Matrix<double> predict_proba(const Eigen::MatrixBase<DF>& f) const {
    const Matrix<double> z = decision_function(f);
    Matrix<double> p(m_k, f.cols());
    if (binary()) {
      for (Index i = 0; i < f.cols(); ++i) {
        p(1, i) = sigmoid(z(0, i));
        p(0, i) = sigmoid(-z(0, i));
      }
    } else {
      for (Index i = 0; i < f.cols(); ++i) {
        const double mx = z.col(i).maxCoeff();
        p.col(i) = (z.col(i).array() - mx).exp().matrix();
        p.col(i) /= p.col(i).sum();
      }
    }
    return p;
  }

  /// \brief Most probable class per sample, 1 × N.
  template <class DF>
  IntRowVector predict(const Eigen::MatrixBase<DF>& f) const {
    const Matrix<double> z = decision_function(f);
    IntRowVector out(f.cols());
    for (Index i = 0; i < f.cols(); ++i) {
      if (binary()) {
        out[i] = z(0, i) > 0.0 ? 1 : 0;
      } else {
        Index best = 0;
        z.col(i).maxCoeff(&best);
        out[i] = static_cast<std::int32_t>(best);
      }
    }
    return out;
  }

  /// \brief Fraction of samples whose predicted class equals y. \param f d × N \param y N labels
  template <class DF, class DY>
  double accuracy(const Eigen::MatrixBase<DF>& f, const Eigen::DenseBase<DY>& y) const {
    check_arg(y.size() == f.cols(), "LogisticRegression::accuracy", "y",
              ergo::detail::str_cat(f.cols(), " labels"), y.size());
    const IntRowVector p = predict(f);
    Index hit = 0;
    for (Index i = 0; i < y.size(); ++i) hit += (p[i] == static_cast<std::int32_t>(y(i))) ? 1 : 0;
    return y.size() > 0 ? static_cast<double>(hit) / static_cast<double>(y.size()) : 0.0;
  }

  /// \brief Mean negative log-likelihood (nats) of y under the probe. \param f d × N
  template <class DF, class DY>
  double log_loss(const Eigen::MatrixBase<DF>& f, const Eigen::DenseBase<DY>& y) const {
    const Matrix<double> p = predict_proba(f);
    double s = 0.0;
    for (Index i = 0; i < y.size(); ++i)
      s -= std::log(std::max(p(static_cast<Index>(y(i)), i), std::numeric_limits<double>::min()));
    return y.size() > 0 ? s / static_cast<double>(y.size()) : 0.0;
  }

  static double sigmoid(double z) {
    return z >= 0.0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
  }
  /// log(1 + exp(z)) without overflow.
  static double softplus(double z) {
    return z > 0.0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
  }

 private:
  // Objective for LBFGS++ that remembers the best finite point and aborts on a non-finite one.
  struct Objective {
    const LogisticRegression* self;
    double best_f;
    Vector<double> best_theta;
    Index evaluations = 0;
    double operator()(const Vector<double>& theta, Vector<double>& grad) {
      ++evaluations;
      if (!theta.allFinite()) throw std::runtime_error("non-finite iterate");
      const double f =
          detail::logistic_objective(self->m_x, self->m_y, self->m_k, self->m_params, theta, grad);
      if (std::isfinite(f) && f < best_f) {
        best_f = f;
        best_theta = theta;
      }
      return f;
    }
  };

  void unpack(const Vector<double>& theta) {
    const Index rows = binary() ? 1 : m_k;
    m_w = Eigen::Map<const Matrix<double>>(theta.data(), rows, m_d);
    m_b = m_params.fit_intercept ? Vector<double>(theta.tail(rows)) : Vector<double>::Zero(rows);
    // Back to the original feature units: w·(f − μ)/σ + b = (w/σ)·f + (b − (w/σ)·μ).
    m_w = m_w.array().rowwise() / m_scale.transpose().array();
    m_b -= m_w * m_shift;
    if (!binary()) m_b.array() -= m_b.mean();  // softmax is invariant to a common shift
  }

  LogisticParams m_params;
  Index m_k = 2, m_d = 0, m_iterations = 0, m_evaluations = 0;
  double m_loss = std::numeric_limits<double>::quiet_NaN();
  double m_gradient_norm = std::numeric_limits<double>::quiet_NaN();
  Matrix<double> m_w;
  Vector<double> m_b;
  Vector<double> m_shift, m_scale;  // standardisation of the features (identity without it)
  Matrix<double> m_x;               // training data (standardised), only during fit
  IndexVector m_y;
  bool m_fitted = false;
  Outcome m_outcome;
};

/// \brief Out-of-fold ("cross-fitted") class probabilities: each sample's probabilities come
/// from a probe trained on the other folds, so they carry no in-sample optimism.
/// \param f d × N \param y N labels in [0, K) \param folds number of folds ≥ 2
/// \param groups optional group id per sample (kept within one fold)
/// \return K × N probabilities
template <class DF, class DY>
Matrix<double> cross_fitted_proba(const Eigen::MatrixBase<DF>& f, const Eigen::DenseBase<DY>& y,
                                  const LogisticParams& params, Index folds, Rng& rng,
                                  const Groups& groups = {}) {
  const char* who = "cross_fitted_proba";
  check_arg(y.size() == f.cols(), who, "y", ergo::detail::str_cat(f.cols(), " labels"), y.size());
  Index k = 2;
  for (Index i = 0; i < y.size(); ++i) k = std::max<Index>(k, static_cast<Index>(y(i)) + 1);
  const IndexVector fold = fold_assignment(f.cols(), folds, rng, groups);
  Matrix<double> out(k, f.cols());
  for (Index q = 0; q < folds; ++q) {
    std::vector<Index> tr, te;
    for (Index i = 0; i < f.cols(); ++i) (fold[i] == q ? te : tr).push_back(i);
    const IndexVector trv = Eigen::Map<IndexVector>(tr.data(), static_cast<Index>(tr.size()));
    const IndexVector tev = Eigen::Map<IndexVector>(te.data(), static_cast<Index>(te.size()));
    IntRowVector ytr(trv.size());
    for (Index i = 0; i < trv.size(); ++i) ytr[i] = static_cast<std::int32_t>(y(trv[i]));
    LogisticRegression probe(params);
    probe.fit(gather_columns(f, trv), ytr, k);
    const Matrix<double> p = probe.predict_proba(gather_columns(f, tev));
    for (Index i = 0; i < tev.size(); ++i) out.col(tev[i]) = p.col(i);
  }
  return out;
}

/// \brief Expected calibration error of predicted probabilities: samples are binned by their
/// top-class confidence into `bins` equal-width bins; ECE = Σ_b (n_b/N) |acc_b − conf_b|.
/// \param proba K × N probabilities \param y N labels
template <class DP, class DY>
double expected_calibration_error(const Eigen::MatrixBase<DP>& proba, const Eigen::DenseBase<DY>& y,
                                  Index bins = 10) {
  check_arg(bins >= 1, "expected_calibration_error", "bins", "at least 1", bins);
  check_arg(y.size() == proba.cols(), "expected_calibration_error", "y",
            ergo::detail::str_cat(proba.cols(), " labels"), y.size());
  std::vector<double> conf(static_cast<size_t>(bins), 0.0), acc(static_cast<size_t>(bins), 0.0);
  std::vector<Index> cnt(static_cast<size_t>(bins), 0);
  for (Index i = 0; i < proba.cols(); ++i) {
    Index top = 0;
    const double c = static_cast<double>(proba.col(i).maxCoeff(&top));
    const auto b = static_cast<size_t>(
        std::min<Index>(bins - 1, static_cast<Index>(c * static_cast<double>(bins))));
    conf[b] += c;
    acc[b] += (top == static_cast<Index>(y(i))) ? 1.0 : 0.0;
    ++cnt[b];
  }
  double ece = 0.0;
  for (size_t b = 0; b < conf.size(); ++b)
    if (cnt[b] > 0) ece += std::abs(acc[b] - conf[b]);
  return proba.cols() > 0 ? ece / static_cast<double>(proba.cols()) : 0.0;
}

/// \brief Held-out linear-probe accuracy per concept (the paper's simulation metric).
///
/// For each concept k a probe predicts c_k from F on the training samples and is scored on the
/// test samples. \param f d × N features \param concepts m × N concept values (row k in
/// [0, |V_k|)) \param split train/test indices \return m accuracies
template <class DF>
Vector<double> probe_accuracy_per_concept(const Eigen::MatrixBase<DF>& f, const IntMatrix& concepts,
                                          const Split& split, const LogisticParams& params = {}) {
  const char* who = "probe_accuracy_per_concept";
  check_arg(concepts.cols() == f.cols(), who, "concepts",
            ergo::detail::str_cat(f.cols(), " columns (as f)"), concepts.cols());
  const Matrix<double> ftr = gather_columns(f, split.train);
  const Matrix<double> fte = gather_columns(f, split.test);
  Vector<double> acc(concepts.rows());
  for (Index k = 0; k < concepts.rows(); ++k) {
    IntRowVector ytr(split.train.size()), yte(split.test.size());
    for (Index i = 0; i < split.train.size(); ++i) ytr[i] = concepts(k, split.train[i]);
    for (Index i = 0; i < split.test.size(); ++i) yte[i] = concepts(k, split.test[i]);
    const Index card = std::max<Index>(2, static_cast<Index>(concepts.row(k).maxCoeff()) + 1);
    LogisticRegression probe(params);
    probe.fit(ftr, ytr, card);
    acc[k] = probe.accuracy(fte, yte);
  }
  return acc;
}

}  // namespace ergo::identify

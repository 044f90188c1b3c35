// SPDX-License-Identifier: MIT
#pragma once

/// \file numerics.hpp
/// \brief Private numerical helpers of the sae module: geometric median (Weiszfeld), the nuclear
/// norm of a factored batch matrix and its gradient, row-wise Pearson correlation matrices, and
/// a small ridge-regularised logistic regression (Newton / IRLS) for the supervised probes.

#include "../../core/types.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Householder>
#include <Eigen/QR>
#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <limits>

namespace ergo::sae::detail {

/// \brief Geometric median of the columns of `x` (d × n) by Weiszfeld's iteration, in double.
///
/// Starts at the mean; each iteration m ← Σ_b w_b x_b / Σ_b w_b with w_b = 1/‖x_b − m‖ (distances
/// below `tiny` are floored to avoid the singular weight at a data point). Stops when the step is
/// below tol · (1 + ‖m‖) or after max_iter iterations.
template <class Derived>
Vector<double> geometric_median(const Eigen::MatrixBase<Derived>& x, Index max_iter, double tol) {
  const Matrix<double> xd = x.template cast<double>();
  Vector<double> med = xd.rowwise().mean();
  const double tiny = 1e-12 * (1.0 + xd.cwiseAbs().maxCoeff());
  for (Index it = 0; it < max_iter; ++it) {
    Vector<double> acc = Vector<double>::Zero(xd.rows());
    double wsum = 0.0;
    for (Index b = 0; b < xd.cols(); ++b) {
      const double w = 1.0 / std::max((xd.col(b) - med).norm(), tiny);
      acc.noalias() += w * xd.col(b);
      wsum += w;
    }
    acc /= wsum;
    const double step = (acc - med).norm();
    med = acc;
    if (step < tol * (1.0 + med.norm())) break;
  }
  return med;
}

/// Reusable storage of nuclear_norm_factored (allocated once, reused across steps).
struct NuclearWorkspace {
  Matrix<double> a, bt, r1, r2, core, gcore, dA;
  Vector<double> ones_q, g1;
  Eigen::HouseholderQR<Matrix<double>> qr_a, qr_b;
};

/// \brief Nuclear norm ‖R‖_* of R = A · M (A: h × r, M: r × B, given as Mᵀ = `bt`), and the
/// gradients ∂‖R‖_*/∂A (h × r, into ws.dA) and G·1 (h, into ws.g1), where G = Σ_{σ_i>tol} u_i v_iᵀ
/// is the (minimum-norm) subgradient of the nuclear norm at R.
///
/// Uses thin QR factorisations A = Q1 R1, Mᵀ = Q2 R2, so R = Q1 (R1 R2ᵀ) Q2ᵀ and only the small
/// core R1 R2ᵀ (≤ r × r) is decomposed by SVD; Q2 is never formed. Cost O((h + B) r²).
/// Singular values below `rel_tol`·σ_max are treated as zero (their subgradient is set to 0).
inline double nuclear_norm_factored(NuclearWorkspace& ws, double rel_tol) {
  const Index h = ws.a.rows(), r = ws.a.cols(), B = ws.bt.rows();
  const Index k1 = std::min(h, r), k2 = std::min(B, r);
  ws.qr_a.compute(ws.a);
  ws.qr_b.compute(ws.bt);
  ws.r1 = ws.qr_a.matrixQR().topRows(k1).template triangularView<Eigen::Upper>();
  ws.r2 = ws.qr_b.matrixQR().topRows(k2).template triangularView<Eigen::Upper>();
  ws.core.noalias() = ws.r1 * ws.r2.transpose();  // k1 × k2
  Eigen::JacobiSVD<Matrix<double>> svd(ws.core, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const auto& s = svd.singularValues();
  const double smax = s.size() > 0 ? s(0) : 0.0;
  Index keep = 0;
  while (keep < s.size() && s(keep) > rel_tol * smax && s(keep) > 0.0) ++keep;
  ws.gcore.noalias() = svd.matrixU().leftCols(keep) * svd.matrixV().leftCols(keep).transpose();
  // ∂/∂A = Q1 · gcore · R2   (h × r);  G·1 = Q1 · gcore · (Q2ᵀ 1)
  Matrix<double> small = Matrix<double>::Zero(h, r);
  small.topRows(k1).noalias() = ws.gcore * ws.r2;
  ws.dA.noalias() = ws.qr_a.householderQ() * small;
  ws.ones_q = Vector<double>::Ones(B);
  ws.ones_q.applyOnTheLeft(ws.qr_b.householderQ().transpose());
  Vector<double> t = Vector<double>::Zero(h);
  t.head(k1).noalias() = ws.gcore * ws.ones_q.head(k2);
  ws.g1.noalias() = ws.qr_a.householderQ() * t;
  return s.head(s.size()).sum();
}

/// \brief Pearson correlations between the rows of `a` (p × n) and the rows of `b` (q × n):
/// a p × q matrix. A row with zero variance correlates 0 with everything (guarded division).
template <class DA, class DB>
Matrix<double> row_correlations(const Eigen::MatrixBase<DA>& a, const Eigen::MatrixBase<DB>& b) {
  auto standardise = [](Matrix<double> m) {
    m.colwise() -= m.rowwise().mean();
    for (Index i = 0; i < m.rows(); ++i) {
      const double nrm = m.row(i).norm();
      if (nrm > 0.0 && std::isfinite(nrm))
        m.row(i) /= nrm;
      else
        m.row(i).setZero();
    }
    return m;
  };
  const Matrix<double> as = standardise(a.template cast<double>());
  const Matrix<double> bs = standardise(b.template cast<double>());
  return as * bs.transpose();
}

/// \brief Ridge-regularised binary logistic regression by Newton's method (IRLS), in double.
///
/// Minimises (1/n) Σ_b [log(1 + e^{s_b}) − y_b s_b] + (l2/2)‖w‖², s_b = wᵀx_b + c (intercept c
/// unpenalised). x: d × n, y: n labels in {0,1}. Returns (w; c) of size d + 1. Stops when the
/// Newton decrement falls below 1e-12 or after max_iter steps. The l2 > 0 term keeps the Hessian
/// positive definite, so separable data do not diverge.
inline Vector<double> fit_logistic(const Eigen::Ref<const Matrix<double>>& x,
                                   const Eigen::Ref<const Vector<double>>& y, double l2,
                                   Index max_iter = 50) {
  const Index d = x.rows(), n = x.cols();
  Vector<double> theta = Vector<double>::Zero(d + 1);
  Matrix<double> xa(d + 1, n);
  xa.topRows(d) = x;
  xa.row(d).setOnes();
  const double inv_n = 1.0 / static_cast<double>(std::max<Index>(n, 1));
  for (Index it = 0; it < max_iter; ++it) {
    const RowVector<double> s = theta.transpose() * xa;
    Vector<double> grad = Vector<double>::Zero(d + 1);
    Vector<double> wts(n);
    Vector<double> resid(n);
    for (Index b = 0; b < n; ++b) {
      const double p = 1.0 / (1.0 + std::exp(-s(b)));
      resid(b) = p - y(b);
      wts(b) = std::max(p * (1.0 - p), 1e-12);
    }
    grad.noalias() = xa * resid * inv_n;
    grad.head(d) += l2 * theta.head(d);
    Matrix<double> hess = (xa * wts.asDiagonal() * xa.transpose()) * inv_n;
    hess.diagonal().head(d).array() += l2;
    hess(d, d) += 1e-12;
    const Vector<double> step = hess.ldlt().solve(grad);
    theta -= step;
    if (grad.dot(step) < 1e-12) break;
  }
  return theta;
}

}  // namespace ergo::sae::detail

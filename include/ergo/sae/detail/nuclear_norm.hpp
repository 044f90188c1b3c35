// SPDX-License-Identifier: MIT
#pragma once

/// \file nuclear_norm.hpp
/// \brief The nuclear norm of a factored batch matrix R = A·M and its gradient with respect to A,
/// through thin QR factorisations of both factors (private to the sae module; used by the
/// nuclear-norm penalty of the Structured SAE).

#include "../../core/types.hpp"

#include <Eigen/Householder>
#include <Eigen/QR>
#include <Eigen/SVD>

#include <algorithm>

namespace ergo::sae::detail {

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

}  // namespace ergo::sae::detail

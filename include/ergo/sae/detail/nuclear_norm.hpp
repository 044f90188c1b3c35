// SPDX-License-Identifier: MIT
#pragma once

/// \file nuclear_norm.hpp
/// \brief The nuclear norm of a factored batch matrix R = A·M and its gradient with respect to A,
/// from the Gram matrices of the factors (private to the sae module; used by the nuclear-norm
/// penalty of the Structured SAE).

#include "../../core/types.hpp"

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <limits>

namespace ergo::sae::detail {

/// Reusable storage of nuclear_norm_factored (allocated once, reused across steps).
struct NuclearWorkspace {
  Matrix<double> a, bt;                 ///< inputs: A (h × r) and Mᵀ (B × r)
  Matrix<double> gram, l, c, cgram, t;  ///< MMᵀ, its square root L, C = A L, CᵀC, P Lᵀ
  Matrix<double> dA;                    ///< output: ∂‖R‖_*/∂A (h × r)
  Vector<double> g1, q;                 ///< output: G·1 (h); scratch
  Eigen::SelfAdjointEigenSolver<Matrix<double>> eig_m, eig_c;
};

/// \brief Nuclear norm ‖R‖_* of R = A · M (A: h × r, M: r × B, given as Mᵀ = `bt`), and the
/// gradients ∂‖R‖_*/∂A (h × r, into ws.dA) and G·1 (h, into ws.g1), where G = Σ_{σ_i>tol} u_i v_iᵀ
/// is the (minimum-norm) subgradient of the nuclear norm at R.
///
/// With M Mᵀ = W Λ Wᵀ and L = W Λ^{1/2} (directions with λ below tol²·λ_max dropped),
/// Q = Mᵀ W Λ^{−1/2} has orthonormal columns and R = (A L) Qᵀ, so R has the singular values of
/// C = A L; with CᵀC = V Σ² Vᵀ and P = V Σ⁻¹ Vᵀ (kept σ only), G = C P Qᵀ, ∂‖R‖_*/∂A = G M
/// = C P Lᵀ and G·1 = C P Λ^{−1/2} Wᵀ (M 1). Everything is a GEMM on the r × r Gram matrices or a
/// product with A, plus two r × r symmetric eigen-decompositions: O((h + B) r² + r³), on all
/// threads. Squaring the factors costs precision below ~1e-7 σ_max, so `rel_tol` (singular values
/// below rel_tol·σ_max count as zero, and their subgradient as 0) should be at least 1e-7.
inline double nuclear_norm_factored(NuclearWorkspace& ws, double rel_tol) {
  const Index h = ws.a.rows(), r = ws.a.cols();
  const double floor = 64.0 * std::numeric_limits<double>::epsilon();
  ws.gram.noalias() = ws.bt.transpose() * ws.bt;  // M Mᵀ (r × r)
  ws.eig_m.compute(ws.gram);
  const Vector<double>& lam = ws.eig_m.eigenvalues();  // increasing
  const double lmax = r > 0 ? std::max(lam(r - 1), 0.0) : 0.0;
  Index first = 0;  // keep λ > max(tol², floor) λ_max
  while (first < r && !(lam(first) > std::max(rel_tol * rel_tol, floor) * lmax)) ++first;
  const Index rk = r - first;
  ws.dA.setZero(h, r);
  ws.g1.setZero(h);
  if (rk == 0) return 0.0;
  const auto w = ws.eig_m.eigenvectors().rightCols(rk);
  const Vector<double> sq = lam.tail(rk).cwiseSqrt();
  ws.l = w * sq.asDiagonal();    // r × rk
  ws.c.noalias() = ws.a * ws.l;  // h × rk
  ws.cgram.noalias() = ws.c.transpose() * ws.c;
  ws.eig_c.compute(ws.cgram);
  const Vector<double> sig = ws.eig_c.eigenvalues().cwiseMax(0.0).cwiseSqrt();  // increasing
  const double smax = sig(rk - 1);
  Index keep0 = 0;
  while (keep0 < rk && !(sig(keep0) > rel_tol * smax && sig(keep0) > 0.0)) ++keep0;
  const Index kk = rk - keep0;
  if (kk == 0) return 0.0;
  const auto v = ws.eig_c.eigenvectors().rightCols(kk);
  const Vector<double> inv = sig.tail(kk).cwiseInverse();
  const Matrix<double> p = v * inv.asDiagonal() * v.transpose();  // rk × rk
  ws.t.noalias() = p * ws.l.transpose();                          // P Lᵀ (rk × r)
  ws.dA.noalias() = ws.c * ws.t;
  ws.q.noalias() = w.transpose() * (ws.bt.transpose() * Vector<double>::Ones(ws.bt.rows()));
  ws.q = ws.q.cwiseQuotient(sq);  // Λ^{−1/2} Wᵀ M 1
  ws.g1.noalias() = ws.c * (p * ws.q);
  return sig.tail(kk).sum();
}

}  // namespace ergo::sae::detail

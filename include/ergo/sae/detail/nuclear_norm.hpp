// SPDX-License-Identifier: MIT
#pragma once

/// \file nuclear_norm.hpp
/// \brief The nuclear norm of a factored batch matrix R = A·M and its gradient with respect to A,
/// from the Gram matrices of the factors (private to the sae module; used by the nuclear-norm
/// penalty of the Structured SAE).

#include "../../core/types.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <limits>

namespace ergo::sae::detail {

/// Reusable storage of nuclear_norm_factored (allocated once, reused across steps).
struct NuclearWorkspace {
  Matrix<double> a, bt;                      ///< inputs: A (h × r) and Mᵀ (B × r)
  Matrix<double> gram, l, agram, cgram, fv;  ///< MMᵀ, its factor F, AᵀA, FᵀAᵀAF, F V
  Matrix<double> k;                          ///< F P Fᵀ (r × r)
  Matrix<double> dA;                         ///< output: ∂‖R‖_*/∂A (h × r)
  Vector<double> g1;                         ///< output: G·1 (h)
  Vector<double> m1, q, fpq;                 ///< M 1, F⁺ M 1, F P F⁺ M 1
  Eigen::LLT<Matrix<double>> llt;
  Eigen::SelfAdjointEigenSolver<Matrix<double>> eig_m, eig_c;
  bool used_cholesky = false;  ///< how the last call factored MMᵀ (for tests)
};

/// \brief Nuclear norm ‖R‖_* of R = A · M (A: h × r, M: r × B, given as Mᵀ = `bt`), and the
/// gradients ∂‖R‖_*/∂A (h × r, into ws.dA) and G·1 (h, into ws.g1), where G = Σ_{σ_i>tol} u_i v_iᵀ
/// is the (minimum-norm) subgradient of the nuclear norm at R.
///
/// Factor M Mᵀ = F Fᵀ (F: r × k): by Cholesky (F = L, k = r) when M Mᵀ is well conditioned, else
/// by its eigen-decomposition W Λ Wᵀ with F = W Λ^{1/2} over the eigenvalues above tol²·λ_max
/// (the others are dropped). Then Q = Mᵀ F⁺ᵀ has orthonormal columns and R = (A F) Qᵀ, so R has
/// the singular values of C = A F, i.e. the square roots of the eigenvalues of
/// CᵀC = Fᵀ (AᵀA) F = V Σ² Vᵀ. With P = V Σ⁻¹ Vᵀ (kept σ only), G = C P Qᵀ, so
/// ∂‖R‖_*/∂A = G Mᵀ = A (F P Fᵀ) and G·1 = A F P F⁺ (M 1). The work is three GEMMs with the tall
/// factors (MMᵀ, AᵀA and A·(F P Fᵀ), O((h + B) r²), on all threads), products of r × r matrices,
/// and one r × r symmetric eigen-decomposition (two when M Mᵀ is near singular). Squaring the
/// factors costs precision below ~1e-7 σ_max, so `rel_tol` (singular values below rel_tol·σ_max
/// count as zero, and their subgradient as 0) should be at least 1e-7.
inline double nuclear_norm_factored(NuclearWorkspace& ws, double rel_tol) {
  const Index h = ws.a.rows(), r = ws.a.cols();
  const double floor = 64.0 * std::numeric_limits<double>::epsilon();
  const double drop = std::max(rel_tol * rel_tol, floor);  // relative eigenvalue floor of MMᵀ
  auto zero = [&] {  // R = 0 up to rel_tol: ‖R‖_* = 0, subgradient 0
    ws.dA.setZero(h, r);
    ws.g1.setZero(h);
    return 0.0;
  };
  if (r == 0) return zero();
  ws.gram.noalias() = ws.bt.transpose() * ws.bt;                             // M Mᵀ (r × r)
  ws.m1.noalias() = ws.bt.transpose() * Vector<double>::Ones(ws.bt.rows());  // M 1
  // Cholesky when every pivot stays well above the eigenvalue floor (pivot² >= λ_min), so no
  // direction would have been dropped; otherwise the eigen-decomposition drops the null space.
  ws.llt.compute(ws.gram);
  const double gmax = ws.gram.diagonal().maxCoeff();
  ws.used_cholesky = ws.llt.info() == Eigen::Success && gmax > 0.0 &&
                     ws.llt.matrixLLT().diagonal().cwiseAbs2().minCoeff() > 1e4 * drop * gmax;
  if (ws.used_cholesky) {
    ws.l = ws.llt.matrixL();
    ws.q = ws.llt.matrixL().solve(ws.m1);  // F⁻¹ M 1
  } else {
    ws.eig_m.compute(ws.gram);
    const Vector<double>& lam = ws.eig_m.eigenvalues();  // increasing
    const double lmax = std::max(lam(r - 1), 0.0);
    Index first = 0;
    while (first < r && !(lam(first) > drop * lmax)) ++first;
    const Index rk = r - first;
    if (rk == 0) return zero();
    const auto w = ws.eig_m.eigenvectors().rightCols(rk);
    const Vector<double> sq = lam.tail(rk).cwiseSqrt();
    ws.l = w * sq.asDiagonal();                        // r × rk
    ws.q = (w.transpose() * ws.m1).cwiseQuotient(sq);  // F⁺ M 1 = Λ^{−1/2} Wᵀ M 1
  }
  ws.agram.noalias() = ws.a.transpose() * ws.a;  // AᵀA (r × r)
  ws.cgram.noalias() = ws.l.transpose() * ws.agram * ws.l;
  ws.eig_c.compute(ws.cgram);
  const Index rk = ws.cgram.rows();
  const Vector<double> sig = ws.eig_c.eigenvalues().cwiseMax(0.0).cwiseSqrt();  // increasing
  const double smax = sig(rk - 1);
  Index keep0 = 0;
  while (keep0 < rk && !(sig(keep0) > rel_tol * smax && sig(keep0) > 0.0)) ++keep0;
  const Index kk = rk - keep0;
  if (kk == 0) return zero();
  const auto v = ws.eig_c.eigenvectors().rightCols(kk);
  const Vector<double> inv = sig.tail(kk).cwiseInverse();
  ws.fv.noalias() = ws.l * v;                                     // F V (r × kk)
  ws.k.noalias() = ws.fv * inv.asDiagonal() * ws.fv.transpose();  // F P Fᵀ (r × r)
  ws.dA.noalias() = ws.a * ws.k;
  ws.fpq.noalias() = ws.fv * (inv.asDiagonal() * (v.transpose() * ws.q));  // F P F⁺ M 1
  ws.g1.noalias() = ws.a * ws.fpq;
  return sig.tail(kk).sum();
}

}  // namespace ergo::sae::detail

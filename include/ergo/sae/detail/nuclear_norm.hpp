// SPDX-License-Identifier: MIT
#pragma once

/// \file nuclear_norm.hpp
/// \brief The nuclear norm of a factored batch matrix R = A·M and its gradient with respect to A,
/// from the Gram matrices of the factors (private to the sae module; used by the nuclear-norm
/// penalty of the Structured SAE).

#include "../../core/parallel.hpp"
#include "../../core/symmetric_eigen.hpp"
#include "../../core/types.hpp"

#include <Eigen/Cholesky>

#include <algorithm>
#include <cmath>
#include <limits>

namespace ergo::sae::detail {

/// Reusable storage of nuclear_norm_factored (allocated once, reused across steps).
struct NuclearWorkspace {
  Matrix<double> a, m;                       ///< inputs: A (h × r) and M (r × B)
  Matrix<double> gram, l, agram, cgram, fv;  ///< MMᵀ, its factor F, AᵀA, FᵀAᵀAF, F V Σ^{-1/2}
  Matrix<double> k;    ///< output of finish: K = F P Fᵀ (r × r), so that ∂‖R‖_*/∂A = A K
  Vector<double> fpq;  ///< output of finish: F P F⁺ M 1 (r), so that G·1 = A F P F⁺ M 1
  Matrix<double> dA;   ///< output of nuclear_norm_gradient: ∂‖R‖_*/∂A = A K (h × r)
  Vector<double> g1;   ///< output of nuclear_norm_gradient: G·1 (h)
  Vector<double> m1, q;  ///< M 1, F⁺ M 1
  Eigen::LLT<Matrix<double>> llt;
  SymmetricEigen eig_m, eig_c;
  bool used_cholesky = false;  ///< how the last call factored MMᵀ (for tests)
  bool pending = false;        ///< nuclear_norm_prepare left CᵀC to decompose (R ≠ 0)
  /// M's last row is all ones (set by the caller): M 1 is then read off the last row of M Mᵀ
  bool ones_row = false;
};

/// \brief Nuclear norm ‖R‖_* of R = A · M (A: h × r, M: r × B), and the gradients ∂‖R‖_*/∂A
/// (h × r, into ws.dA) and G·1 (h, into ws.g1), where G = Σ_{σ_i>tol} u_i v_iᵀ is the
/// (minimum-norm) subgradient of the nuclear norm at R. ws.a and ws.m hold A and M.
///
/// Factor M Mᵀ = F Fᵀ (F: r × k): by Cholesky (F = L, k = r) when M Mᵀ is well conditioned, else
/// by its eigen-decomposition W Λ Wᵀ with F = W Λ^{1/2} over the eigenvalues above tol²·λ_max
/// (the others are dropped). Then Q = Mᵀ F⁺ᵀ has orthonormal columns and R = (A F) Qᵀ, so R has
/// the singular values of C = A F, i.e. the square roots of the eigenvalues of
/// CᵀC = Fᵀ (AᵀA) F = V Σ² Vᵀ. With P = V Σ⁻¹ Vᵀ (kept σ only), G = C P Qᵀ, so
/// ∂‖R‖_*/∂A = G Mᵀ = A (F P Fᵀ) and G·1 = A F P F⁺ (M 1). The work is the two Gram matrices
/// (symmetric rank-k updates with a BLAS, core/symmetric_eigen.hpp; side by side on two threads)
/// and the GEMM A·(F P Fᵀ), O((h + B) r²) in all; products of r × r matrices (triangular with L);
/// and one r × r symmetric eigen-decomposition (two when M Mᵀ is near singular; LAPACK's dsyevd
/// when loaded). Squaring the factors costs precision below ~1e-7 σ_max, so `rel_tol` (singular
/// values below rel_tol·σ_max count as zero, and their subgradient as 0) should be at least 1e-7.
///
/// In four stages, so that the decomposition (one thread) can run beside other work and the
/// caller may form the final h × r product itself (in its own precision): nuclear_norm_prepare
/// (Gram matrices, F, CᵀC; all threads), nuclear_norm_decompose, nuclear_norm_finish (the norm,
/// K = F P Fᵀ and F P F⁺ M 1) and nuclear_norm_gradient (A K and A F P F⁺ M 1).
inline double nuclear_norm_factored(NuclearWorkspace& ws, double rel_tol);

/// The result for R = 0 up to rel_tol: ‖R‖_* = 0, subgradient 0 (K = 0).
inline double nuclear_norm_zero(NuclearWorkspace& ws) {
  ws.k.setZero(ws.a.cols(), ws.a.cols());
  ws.fpq.setZero(ws.a.cols());
  return 0.0;
}

/// Stage 1 of nuclear_norm_factored: forms CᵀC in ws.cgram and sets ws.pending; when R = 0 to
/// tolerance, instead writes the zero result and clears ws.pending. ws.a (h × r) and ws.m
/// (r × B) must have their sizes; `load_m` and `load_a` fill them, side by side on two threads
/// when there are two, each just before the Gram matrix that reads it.
template <class LoadM, class LoadA>
void nuclear_norm_prepare(NuclearWorkspace& ws, double rel_tol, LoadM&& load_m, LoadA&& load_a) {
  const Index r = ws.a.cols();
  const double floor = 64.0 * std::numeric_limits<double>::epsilon();
  const double drop = std::max(rel_tol * rel_tol, floor);  // relative eigenvalue floor of MMᵀ
  ws.pending = false;
  if (r == 0) {
    nuclear_norm_zero(ws);
    return;
  }
  // M Mᵀ and AᵀA (lower triangles, r × r) and M 1: the two Gram matrices side by side, on one
  // thread each when there are two (a symmetric rank-k update gained only 1.4x from a second
  // thread: 13.7 and 9.5 ms at r = 513, B = 4096)
  {
    const int nt = num_threads();
    const ThreadLimit one(nt >= 2 ? 1 : 0);
    ergo::detail::run_side_by_side(
        nt,
        [&] {
          load_m();
          gram_lower(ws.gram, ws.m);
          if (ws.ones_row)
            ws.m1 = ws.gram.row(r - 1).transpose();  // (M Mᵀ)_{r−1,j} = Σ_b M_jb (lower triangle)
          else
            ws.m1.noalias() = ws.m * Vector<double>::Ones(ws.m.cols());
        },
        [&] {
          load_a();
          gram_lower(ws.agram, ws.a.transpose());
        });
  }
  symmetrize_from_lower(ws.agram);
  // Cholesky when every pivot stays well above the eigenvalue floor (pivot² >= λ_min), so no
  // direction would have been dropped; otherwise the eigen-decomposition drops the null space.
  {
    const ThreadLimit one(1);  // at r ≈ 500 the blocked factorisation lost time on two threads
    ws.llt.compute(ws.gram);
  }
  const double gmax = ws.gram.diagonal().maxCoeff();
  ws.used_cholesky = ws.llt.info() == Eigen::Success && gmax > 0.0 &&
                     ws.llt.matrixLLT().diagonal().cwiseAbs2().minCoeff() > 1e4 * drop * gmax;
  if (ws.used_cholesky) {
    const auto low = ws.llt.matrixL();
    ws.q = low.solve(ws.m1);                       // F⁻¹ M 1
    ws.fv.noalias() = ws.agram * low;              // AᵀA L
    ws.cgram.noalias() = low.transpose() * ws.fv;  // Lᵀ AᵀA L
  } else {
    ws.eig_m.compute(ws.gram);
    const Vector<double>& lam = ws.eig_m.eigenvalues();  // increasing
    const double lmax = std::max(lam(r - 1), 0.0);
    Index first = 0;
    while (first < r && !(lam(first) > drop * lmax)) ++first;
    const Index rk = r - first;
    if (rk == 0) {
      nuclear_norm_zero(ws);
      return;
    }
    const auto w = ws.eig_m.eigenvectors().rightCols(rk);
    const Vector<double> sq = lam.tail(rk).cwiseSqrt();
    ws.l = w * sq.asDiagonal();                        // r × rk
    ws.q = (w.transpose() * ws.m1).cwiseQuotient(sq);  // F⁺ M 1 = Λ^{−1/2} Wᵀ M 1
    ws.fv.noalias() = ws.agram * ws.l;
    ws.cgram.noalias() = ws.l.transpose() * ws.fv;
  }
  ws.pending = true;
}

/// Stage 2 of nuclear_norm_factored: the eigen-decomposition of CᵀC, on one thread
/// (core/symmetric_eigen.hpp). It touches only `ws`, so it may run beside other work.
inline void nuclear_norm_decompose(NuclearWorkspace& ws) {
  if (ws.pending) ws.eig_c.compute(ws.cgram);
}

/// Stage 3 of nuclear_norm_factored: K = F P Fᵀ into ws.k and F P F⁺ M 1 into ws.fpq (both
/// zero when R = 0); returns ‖R‖_*.
inline double nuclear_norm_finish(NuclearWorkspace& ws, double rel_tol) {
  if (!ws.pending) return 0.0;  // the zero result is in place
  ws.pending = false;
  const Index rk = ws.cgram.rows();
  const Vector<double> sig = ws.eig_c.eigenvalues().cwiseMax(0.0).cwiseSqrt();  // increasing
  const double smax = sig(rk - 1);
  Index keep0 = 0;
  while (keep0 < rk && !(sig(keep0) > rel_tol * smax && sig(keep0) > 0.0)) ++keep0;
  const Index kk = rk - keep0;
  if (kk == 0) return nuclear_norm_zero(ws);
  const auto v = ws.eig_c.eigenvectors().rightCols(kk);
  const Vector<double> isq = sig.tail(kk).cwiseInverse().cwiseSqrt();  // Σ^{-1/2}
  if (ws.used_cholesky)
    ws.fv.noalias() = ws.llt.matrixL() * v;  // F V (r × kk)
  else
    ws.fv.noalias() = ws.l * v;
  ws.fv = ws.fv * isq.asDiagonal();  // F V Σ^{-1/2}
  gram_lower(ws.k, ws.fv);           // F P Fᵀ (r × r)
  symmetrize_from_lower(ws.k);
  ws.fpq.noalias() = ws.fv * isq.cwiseProduct(v.transpose() * ws.q);  // F P F⁺ M 1
  return sig.tail(kk).sum();
}

/// Stage 4 of nuclear_norm_factored, in double: ws.dA = A K and ws.g1 = A F P F⁺ M 1.
inline void nuclear_norm_gradient(NuclearWorkspace& ws) {
  ws.dA.noalias() = ws.a * ws.k;
  ws.g1.noalias() = ws.a * ws.fpq;
}

inline double nuclear_norm_factored(NuclearWorkspace& ws, double rel_tol) {
  nuclear_norm_prepare(
      ws, rel_tol, [] {}, [] {});
  nuclear_norm_decompose(ws);
  const double nuc = nuclear_norm_finish(ws, rel_tol);
  nuclear_norm_gradient(ws);
  return nuc;
}

}  // namespace ergo::sae::detail

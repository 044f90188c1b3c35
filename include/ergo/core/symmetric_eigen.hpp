// SPDX-License-Identifier: MIT
#pragma once

/// \file symmetric_eigen.hpp
/// \brief Eigen-decomposition of a symmetric double matrix, by LAPACK's divide-and-conquer
/// dsyevd when a LAPACK is loaded in the process (OpenBLAS carries one), else by Eigen's
/// SelfAdjointEigenSolver; and the Gram matrix X Xᵀ by a symmetric rank-k update when Eigen calls
/// a BLAS.
///
/// Like blas.hpp, LAPACK is looked up as a weak symbol: this header needs no LAPACK to compile or
/// link, and a program that links OpenBLAS (the tools and benchmarks, through ERGO_TOOLS_BLAS)
/// gets dsyevd, about twice as fast as Eigen's solver for n ≈ 500 (docs/sae.md,
/// "Activation-sparse steps").
/// The decomposition runs on one thread either way: at n ≈ 500 both solvers lost time when their
/// matrix-vector steps were split across threads (dsyevd 19 ms on one thread, 22-55 ms on two;
/// Eigen's 39 ms and 91 ms).

#include "error.hpp"
#include "parallel.hpp"
#include "types.hpp"

#include <Eigen/Eigenvalues>

#include <climits>
#include <cstddef>
#include <vector>

#if defined(__GNUC__) && defined(__ELF__)
#define ERGO_WEAK_LAPACK 1
// LAPACK's dsyevd under a name of our own (bound to the symbol "dsyevd_"), so that a program
// that also includes a LAPACK header with its own prototype of dsyevd_ still compiles. The two
// trailing arguments are the Fortran lengths of the character arguments.
extern "C" void ergo_weak_dsyevd(const char* jobz, const char* uplo, const int* n, double* a,
                                 const int* lda, double* w, double* work, const int* lwork,
                                 int* iwork, const int* liwork, int* info, std::size_t jobz_len,
                                 std::size_t uplo_len) __asm__("dsyevd_") __attribute__((weak));
#endif

namespace ergo {

/// \brief True when a LAPACK dsyevd is loaded in this process (SymmetricEigen then uses it).
inline bool lapack_available() {
#ifdef ERGO_WEAK_LAPACK
  return ergo_weak_dsyevd != nullptr;
#else
  return false;
#endif
}

/// \brief Eigen-decomposition A = V diag(λ) Vᵀ of a symmetric n × n double matrix, reading only
/// its lower triangle; eigenvalues in increasing order, eigenvectors as orthonormal columns.
///
/// Reusable: the LAPACK workspace is kept between calls of the same size.
/// \code
/// ergo::SymmetricEigen eig;
/// eig.compute(a);                       // a: n × n, lower triangle read
/// const auto& lambda = eig.eigenvalues();  // n, increasing
/// const auto& v = eig.eigenvectors();      // n × n
/// \endcode
class SymmetricEigen {
 public:
  /// \brief Decomposes `a` (square; only its lower triangle is read). Throws InvalidArgument
  /// for a non-square matrix and RuntimeError when neither solver converges.
  void compute(const Matrix<double>& a) {
    if (a.rows() != a.cols())
      throw_invalid("SymmetricEigen::compute", "a", "a square matrix",
                    detail::str_cat(a.rows(), " x ", a.cols()));
    // one thread; inside a parallel region it already runs on the calling thread alone, and the
    // thread count, which other threads read, is left alone
    const ThreadLimit one(detail::in_parallel_region() ? 0 : 1);
    m_used_lapack = false;
    if (compute_lapack(a)) return;
    m_eigen.compute(a);
    if (m_eigen.info() != Eigen::Success)
      throw RuntimeError("SymmetricEigen::compute(): the eigen-decomposition of a " +
                         detail::str_cat(a.rows(), " x ", a.cols()) +
                         " matrix did not converge (non-finite entries?)");
    m_values = m_eigen.eigenvalues();
    m_vectors = m_eigen.eigenvectors();
  }

  /// Eigenvalues, increasing (n).
  const Vector<double>& eigenvalues() const { return m_values; }
  /// Orthonormal eigenvectors, column i for eigenvalue i (n × n).
  const Matrix<double>& eigenvectors() const { return m_vectors; }
  /// Whether the last compute() ran LAPACK's dsyevd (else Eigen's solver).
  bool used_lapack() const { return m_used_lapack; }

 private:
  bool compute_lapack(const Matrix<double>& a) {
#ifdef ERGO_WEAK_LAPACK
    if (ergo_weak_dsyevd == nullptr || a.rows() == 0 || a.rows() > INT_MAX / 4) return false;
    const int n = static_cast<int>(a.rows());
    int info = 0;
    m_vectors = a;  // overwritten by the eigenvectors
    m_values.resize(n);
    if (n != m_work_n) {  // workspace query
      int lwork = -1, liwork = -1, iwq = 0;
      double wq = 0.0;
      ergo_weak_dsyevd("V", "L", &n, m_vectors.data(), &n, m_values.data(), &wq, &lwork, &iwq,
                       &liwork, &info, 1, 1);
      if (info != 0) return false;
      m_work.resize(static_cast<std::size_t>(wq));
      m_iwork.resize(static_cast<std::size_t>(iwq));
      m_work_n = n;
    }
    const int lwork = static_cast<int>(m_work.size()), liwork = static_cast<int>(m_iwork.size());
    ergo_weak_dsyevd("V", "L", &n, m_vectors.data(), &n, m_values.data(), m_work.data(), &lwork,
                     m_iwork.data(), &liwork, &info, 1, 1);
    m_used_lapack = info == 0;
    return m_used_lapack;  // else (no convergence) Eigen's solver tries
#else
    (void)a;
    return false;
#endif
  }

  Matrix<double> m_vectors;
  Vector<double> m_values;
  std::vector<double> m_work;
  std::vector<int> m_iwork;
  int m_work_n = -1;
  bool m_used_lapack = false;
  Eigen::SelfAdjointEigenSolver<Matrix<double>> m_eigen;
};

/// \brief `out` = X Xᵀ (X: n × k; out: n × n). Only the lower triangle is guaranteed: when Eigen
/// calls a BLAS (EIGEN_USE_BLAS) this is a symmetric rank-k update (dsyrk, half a GEMM's work);
/// Eigen's own rank update is not faster than its threaded GEMM, so without a BLAS it is a GEMM.
template <class Derived>
void gram_lower(Matrix<double>& out, const Eigen::MatrixBase<Derived>& x) {
#ifdef EIGEN_USE_BLAS
  out.setZero(x.rows(), x.rows());
  out.template selfadjointView<Eigen::Lower>().rankUpdate(x);
#else
  out.noalias() = x * x.transpose();
#endif
}

/// \brief Copies the lower triangle of the square matrix `a` onto its upper triangle.
inline void symmetrize_from_lower(Matrix<double>& a) {
  const Index n = a.rows();
  for (Index j = 1; j < n; ++j)
    for (Index i = 0; i < j; ++i) a(i, j) = a(j, i);
}

}  // namespace ergo

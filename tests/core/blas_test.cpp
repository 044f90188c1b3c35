// SPDX-License-Identifier: MIT
// The BLAS-dependent parts of core: which OpenBLAS build is loaded and its warnings (blas.hpp),
// SymmetricEigen (LAPACK's dsyevd when loaded, else Eigen's solver) and gram_lower
// (symmetric_eigen.hpp). Compiled into ergo_core_tests (no BLAS: Eigen's paths) and again into
// ergo_blas_tests (linked with the system BLAS, EIGEN_USE_BLAS: dsyrk and dsyevd), see
// tests/CMakeLists.txt.

#include "common/test_utils.hpp"

#include <ergo/core.hpp>

#include <gmock/gmock.h>

#include <string>

using namespace ergo;

namespace {

// A symmetric n × n matrix with the given eigenvalues and a random orthonormal basis.
Matrix<double> with_spectrum(const Vector<double>& lambda, Rng& rng) {
  const Index n = lambda.size();
  const Eigen::HouseholderQR<Matrix<double>> qr(rng.normal_matrix<double>(n, n));
  const Matrix<double> q = qr.householderQ();
  return q * lambda.asDiagonal() * q.transpose();
}

}  // namespace

TEST(BlasBuild, ThreadingAndItsWarning) {
  const std::string threading = openblas_threading();
  EXPECT_EQ(threading.empty(), !openblas_loaded());
#ifdef ERGO_EXPECT_OPENBLAS_OPENMP
  EXPECT_EQ(threading, "OpenMP");  // ergo_fast_gemm linked OpenBLAS's OpenMP build
#endif
  // the pthreads build is named, and only when more than one thread would run
  EXPECT_EQ(blas_warning(1).find("pthreads"), std::string::npos);
  EXPECT_EQ(blas_warning(2).find("pthreads") != std::string::npos, threading == "pthreads");
  if (!openblas_loaded()) {
    EXPECT_EQ(blas_warning(2), "");
    EXPECT_EQ(blas_description(2), eigen_uses_blas() ? "external BLAS (EIGEN_USE_BLAS)" : "Eigen");
  }
}

TEST(SymmetricEigen, TakesLapackExactlyWhenLoaded) {
#ifdef ERGO_EXPECT_LAPACK
  ASSERT_TRUE(lapack_available()) << "this suite links OpenBLAS, which carries LAPACK";
#endif
  Rng rng(1);
  SymmetricEigen eig;
  eig.compute(with_spectrum(Vector<double>::LinSpaced(30, -1.0, 2.0), rng));
  EXPECT_EQ(eig.used_lapack(), lapack_available());
}

TEST(SymmetricEigen, RecoversAPlantedSpectrumFromTheLowerTriangle) {
  Rng rng(2);
  SymmetricEigen eig;
  // sizes below and above LAPACK's divide-and-conquer cut-over (25), a repeated and a zero
  // eigenvalue, and the workspace re-queried when the size changes
  for (const Index n : {1, 7, 60, 7}) {
    Vector<double> lambda = rng.normal_matrix<double>(n, 1);
    if (n > 2) {
      lambda(0) = 0.0;
      lambda(1) = lambda(2);
    }
    Matrix<double> a = with_spectrum(lambda, rng);
    const Matrix<double> full = a;
    a.triangularView<Eigen::StrictlyUpper>().setConstant(1e6);  // never read
    eig.compute(a);
    std::sort(lambda.data(), lambda.data() + n);
    EXPECT_EIGEN_NEAR(eig.eigenvalues(), lambda, 1e-12);
    const Matrix<double>& v = eig.eigenvectors();
    ASSERT_EQ(v.rows(), n);
    ASSERT_EQ(v.cols(), n);
    EXPECT_EIGEN_NEAR(Matrix<double>(v.transpose() * v), Matrix<double>::Identity(n, n), 1e-12);
    EXPECT_EIGEN_NEAR(Matrix<double>(full * v), Matrix<double>(v * eig.eigenvalues().asDiagonal()),
                      1e-12);
  }
}

TEST(SymmetricEigen, RejectsANonSquareMatrix) {
  SymmetricEigen eig;
  try {
    eig.compute(Matrix<double>::Zero(3, 4));
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr(
                              "SymmetricEigen::compute(): a: expected a square matrix, got 3 x 4"));
  }
}

TEST(SymmetricEigen, GramLowerAndSymmetrize) {
  Rng rng(3);
  const Matrix<double> x = rng.normal_matrix<double>(9, 40);
  const Matrix<double> want = x * x.transpose();
  Matrix<double> g;
  gram_lower(g, x);
  ASSERT_EQ(g.rows(), 9);
  ASSERT_EQ(g.cols(), 9);
  EXPECT_EIGEN_NEAR(Matrix<double>(g.triangularView<Eigen::Lower>()),
                    Matrix<double>(want.triangularView<Eigen::Lower>()), 1e-12);
  gram_lower(g, x.transpose());  // Xᵀ X, 40 × 40
  symmetrize_from_lower(g);
  EXPECT_EIGEN_NEAR(g, Matrix<double>(x.transpose() * x), 1e-12);
}

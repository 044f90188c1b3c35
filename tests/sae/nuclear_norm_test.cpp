// SPDX-License-Identifier: MIT
// The nuclear norm of a factored batch matrix and its subgradient (sae/detail/nuclear_norm.hpp)
// against an SVD of the product. Compiled into ergo_sae_tests (Eigen's GEMMs and solver) and
// again into ergo_blas_tests (dsyrk Gram matrices, LAPACK's dsyevd), see tests/CMakeLists.txt.

#include <ergo/sae.hpp>

#include "common/test_utils.hpp"

#include <gtest/gtest.h>

namespace {

using ergo::Index;
using ergo::Matrix;
using ergo::Vector;
namespace sae = ergo::sae;

// ‖A·M‖_* against a Jacobi SVD of the product: the sum of R's `rank` non-zero singular values,
// and the subgradient G = U_rank V_rankᵀ through ∂/∂A = G Mᵀ and G·1, to `tol`; checks which
// factorisation of M Mᵀ was taken.
void check_nuclear(sae::detail::NuclearWorkspace& nw, const Matrix<double>& A,
                   const Matrix<double>& M, double rel_tol, Index rank, bool cholesky, double tol,
                   bool ones_row = false) {
  nw.a = A;
  nw.m = M;
  nw.ones_row = ones_row;
  const double nuc = sae::detail::nuclear_norm_factored(nw, rel_tol);
  EXPECT_EQ(nw.used_cholesky, cholesky);
  Eigen::JacobiSVD<Matrix<double>> svd(A * M, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const auto& sv = svd.singularValues();
  if (rank < sv.size()) {
    ASSERT_LT(sv(rank), 1e-10 * sv(0));  // R has exactly this rank
  }
  EXPECT_NEAR(nuc, sv.head(rank).sum(), tol * sv(0));
  const Matrix<double> G = svd.matrixU().leftCols(rank) * svd.matrixV().leftCols(rank).transpose();
  const double scale = M.cwiseAbs().maxCoeff() * std::sqrt(static_cast<double>(M.cols()));
  EXPECT_EIGEN_NEAR(nw.dA, Matrix<double>(G * M.transpose()), tol * scale);
  EXPECT_EIGEN_NEAR(nw.g1, Vector<double>(G * Vector<double>::Ones(M.cols())), tol * scale);
}

TEST(NuclearNorm, FactoredMatchesTheSvdOfTheProduct) {
  ergo::Rng rng(8);
  sae::detail::NuclearWorkspace nw;
  const Matrix<double> A = rng.normal_matrix<double>(7, 4);
  const Matrix<double> M = rng.normal_matrix<double>(4, 12);
  check_nuclear(nw, A, M, 1e-12, 4, true, 1e-10);  // M Mᵀ well conditioned: Cholesky
  // rank-deficient M (rank 2 in 4 dimensions, as when inputs span a subspace): the
  // eigen-decomposition drops M Mᵀ's null space, which carries nothing
  check_nuclear(nw, A, rng.normal_matrix<double>(4, 2) * rng.normal_matrix<double>(2, 12), 1e-7, 2,
                false, 1e-8);
  // rank-deficient A with a well-conditioned M (the dense branch early in training): Cholesky,
  // and only R's two non-zero singular directions carry a subgradient
  check_nuclear(nw, rng.normal_matrix<double>(7, 2) * rng.normal_matrix<double>(2, 4), M, 1e-7, 2,
                true, 1e-8);
}

TEST(NuclearNorm, LargerFactorsOnBothPaths) {
  // r = 41 > 25: LAPACK's dsyevd takes its divide-and-conquer branch, and the Gram matrices are
  // large enough for the BLAS's blocked kernels; the workspace is reused across sizes
  ergo::Rng rng(9);
  sae::detail::NuclearWorkspace nw;
  const Index h = 90, r = 41, B = 150;
  const Matrix<double> M = rng.normal_matrix<double>(r, B);
  check_nuclear(nw, rng.normal_matrix<double>(h, 15) * rng.normal_matrix<double>(15, r), M, 1e-7,
                15, true, 1e-8);
  check_nuclear(nw, rng.normal_matrix<double>(h, r),
                rng.normal_matrix<double>(r, 20) * rng.normal_matrix<double>(20, B), 1e-7, 20,
                false, 1e-8);
  check_nuclear(nw, rng.normal_matrix<double>(h, r), M, 1e-7, r, true, 1e-8);
}

// M with a last row of ones (the penalty's [U; 1ᵀ]): M 1 read off M Mᵀ gives the same G·1.
TEST(NuclearNorm, OnesRowReadsTheRowSumsOffTheGramMatrix) {
  ergo::Rng rng(10);
  sae::detail::NuclearWorkspace nw;
  Matrix<double> M = rng.normal_matrix<double>(6, 30);
  M.row(5).setOnes();
  const Matrix<double> A = rng.normal_matrix<double>(9, 6);
  check_nuclear(nw, A, M, 1e-7, 6, true, 1e-8, true);
  M.row(5).setConstant(2.0);  // a wrong flag is caught: G·1 then differs
  nw.a = A;
  nw.m = M;
  nw.ones_row = true;
  sae::detail::nuclear_norm_factored(nw, 1e-7);
  const Vector<double> wrong = nw.g1;
  nw.ones_row = false;
  sae::detail::nuclear_norm_factored(nw, 1e-7);
  EXPECT_GT((wrong - nw.g1).cwiseAbs().maxCoeff(), 1e-3);
}

// NuclearNormPenalty's gradient of (γ/√B)‖W_R U + b_R 1ᵀ‖_* against the SVD of R, in double and
// in float (where the last product, [W_R b_R] K, is formed in float): to 1e-8 and 1e-4 of its
// largest entry, the float case against the SVD of its own rounded inputs.
template <class S>
void check_penalty(double tol) {
  ergo::Rng rng(11);
  const Index h = 40, d = 12, B = 60;
  const double gamma = 0.7;
  const Matrix<S> dense = rng.normal_matrix<double>(h, d).cast<S>();
  const Matrix<S> bias = rng.normal_matrix<double>(h, 1).cast<S>();
  const Matrix<S> u = rng.normal_matrix<double>(d, B).cast<S>();
  sae::detail::NuclearWorkspace nw;
  sae::NuclearNormPenalty::prepare(dense, bias, u, nw);
  sae::NuclearNormPenalty::decompose(nw);
  Matrix<S> g_dense = Matrix<S>::Zero(h, d), g_bias = Matrix<S>::Zero(h, 1);
  const double term = sae::NuclearNormPenalty::finish(gamma, dense, bias, nw, g_dense, g_bias);
  const Matrix<double> ud = u.template cast<double>();
  const Matrix<double> R = dense.template cast<double>() * ud +
                           bias.template cast<double>() * Matrix<double>::Ones(1, B);
  Eigen::JacobiSVD<Matrix<double>> svd(R, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const double c = gamma / std::sqrt(static_cast<double>(B));
  const Index rank = d + 1;  // R = [W_R b_R][U; 1ᵀ] has rank d + 1 < min(h, B)
  ASSERT_LT(svd.singularValues()(rank), 1e-10 * svd.singularValues()(0));
  const Matrix<double> G = svd.matrixU().leftCols(rank) * svd.matrixV().leftCols(rank).transpose();
  const Matrix<double> want_dense = c * G * ud.transpose();
  const Vector<double> want_bias = c * G * Vector<double>::Ones(B);
  EXPECT_NEAR(term, c * svd.singularValues().head(rank).sum(), tol * term);
  EXPECT_EIGEN_NEAR(Matrix<double>(g_dense.template cast<double>()), want_dense,
                    tol * want_dense.cwiseAbs().maxCoeff());
  EXPECT_EIGEN_NEAR(Vector<double>(g_bias.col(0).template cast<double>()), want_bias,
                    tol * want_bias.cwiseAbs().maxCoeff());
}

TEST(NuclearNorm, PenaltyGradientInDoubleAndFloat) {
  check_penalty<double>(1e-8);
  check_penalty<float>(1e-4);
}

}  // namespace

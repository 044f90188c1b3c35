// SPDX-License-Identifier: MIT
// StreamingIdentify: one-pass, block-wise statistics equal the in-memory RidgeRegression (GCV),
// r2_scores and Cca (Gram) on the same seeded split, whatever the block sizes; the permutation
// null does not depend on how the blocks are read. (2 ranks: tests/mpi/identify_mpi_test.cpp.)

#include <ergo/identify.hpp>

#include "common/test_utils.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace {

using ergo::Index;
using ergo::Matrix;
namespace id = ergo::identify;

struct StreamingData {
  Matrix<double> f, t;
};

// T = A F + c + noise (k = 3 from d = 6), with a large common offset in F: the shift keeps the
// one-pass sums accurate.
StreamingData streaming_data(Index n) {
  ergo::Rng rng(11);
  StreamingData s;
  s.f.resize(6, n);
  for (Index j = 0; j < n; ++j)
    for (Index i = 0; i < 6; ++i)
      s.f(i, j) = 50.0 + rng.normal() * (1.0 + 0.3 * static_cast<double>(i));
  Matrix<double> a(3, 6);
  for (Index i = 0; i < a.size(); ++i) a(i) = rng.normal();
  s.t = a * s.f;
  for (Index j = 0; j < n; ++j)
    for (Index i = 0; i < 3; ++i) s.t(i, j) += 2.0 + 0.5 * rng.normal();
  return s;
}

id::StreamingReport run_blocks(const StreamingData& s, const id::StreamingParams& p, Index block) {
  id::StreamingIdentify acc(6, 3, p, s.f.col(0), s.t.col(0));
  for (Index i0 = 0; i0 < s.f.cols(); i0 += block) {
    const Index n = std::min(block, s.f.cols() - i0);
    acc.add(s.f.middleCols(i0, n), s.t.middleCols(i0, n), i0);
  }
  return acc.finish();
}

// Rounding: every quantity is a few sums over N = 3000 samples in double followed by a d = 6
// eigendecomposition; reordered sums differ by ≲ N·u relative ≈ 1e-12; the shifted one-pass
// moments lose a further factor (offset/std)² ≈ 50² against the two-pass in-memory centring:
// 1e-12 · 2500 ≈ 3e-9. We allow 1e-7 on R², λ and the map.
constexpr double kTol = 1e-7;

TEST(StreamingIdentify, EqualsTheInMemoryPathOnTheSameSplit) {
  const StreamingData s = streaming_data(3000);
  id::StreamingParams p;
  p.seed = 5;
  const id::StreamingReport r = run_blocks(s, p, 257);
  std::vector<Index> tr, te;
  for (Index i = 0; i < s.f.cols(); ++i)
    (id::streaming_is_test(i, p.test_fraction, p.seed) ? te : tr).push_back(i);
  EXPECT_EQ(r.n_train, static_cast<Index>(tr.size()));
  EXPECT_EQ(r.n_test, static_cast<Index>(te.size()));
  EXPECT_NEAR(static_cast<double>(te.size()) / 3000.0, 0.2, 0.03);  // the hash split's share
  const Matrix<double> ftr = s.f(Eigen::all, tr), ttr = s.t(Eigen::all, tr);
  const Matrix<double> fte = s.f(Eigen::all, te), tte = s.t(Eigen::all, te);
  id::RidgeParams rp;
  rp.cv = id::RidgeCv::Gcv;
  id::RidgeRegression ridge(rp);
  ridge.fit(ftr, ttr);
  const id::R2Scores r2 = ridge.score(fte, tte);
  EXPECT_NEAR(r.lambda / ridge.lambda(), 1.0, kTol);
  EXPECT_EIGEN_NEAR(r.w, ridge.weights(), kTol);
  EXPECT_EIGEN_NEAR(r.b, ridge.intercept(), kTol * 100);  // |b| ~ 300: relative 1e-7
  EXPECT_EIGEN_NEAR(r.test_r2.per_output, r2.per_output, kTol);
  EXPECT_NEAR(r.test_r2.variance_weighted, r2.variance_weighted, kTol);
  EXPECT_NEAR(r.test_r2.mean, r2.mean, kTol);
  id::CcaParams cp;
  cp.method = id::CcaMethod::Gram;
  cp.regularization = 0.0;
  id::Cca cca(cp);
  cca.fit(ftr, ttr);
  EXPECT_EIGEN_NEAR(r.cca, cca.evaluate(fte, tte), kTol);
  EXPECT_GT(r.test_r2.variance_weighted, 0.9);  // a planted linear map
}

TEST(StreamingIdentify, BlockSizesAndThePermutationNullAgree) {
  const StreamingData s = streaming_data(3000);
  id::StreamingParams p;
  p.seed = 2;
  p.permutations = 19;
  p.permutation_block = 500;
  const id::StreamingReport a = run_blocks(s, p, 500), b = run_blocks(s, p, 1500);
  EXPECT_NEAR(a.test_r2.variance_weighted, b.test_r2.variance_weighted, 1e-10);
  ASSERT_EQ(a.null_r2.size(), 19);
  EXPECT_EIGEN_NEAR(a.null_r2, b.null_r2, 1e-10);
  EXPECT_LT(a.null_r2.maxCoeff(), 0.1);  // permuted targets: nothing to predict
  EXPECT_DOUBLE_EQ(a.p_value, 1.0 / 20.0);
  id::StreamingIdentify acc(6, 3, p);
  EXPECT_THROW(acc.add(s.f.middleCols(100, 10), s.t.middleCols(100, 10), 100),
               ergo::InvalidArgument);  // not at a permutation-block boundary
}

}  // namespace

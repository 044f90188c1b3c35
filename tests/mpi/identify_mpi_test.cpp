// SPDX-License-Identifier: MIT
// StreamingIdentify on 2 ranks: each rank adds alternate blocks of rows, reduce() sums the
// moments, and the report equals the one-process blocked run (and so the in-memory path,
// tests/identify/streaming_test.cpp) to rounding, permutation null included.

#include <ergo/identify.hpp>
#include <ergo/mpi.hpp>

#include <gtest/gtest.h>

namespace {

using ergo::Index;
using ergo::Matrix;
namespace id = ergo::identify;

TEST(StreamingIdentifyMpi, TwoRanksEqualOneProcess) {
  const ergo::MpiCommunicator comm;
  ergo::Rng rng(3);
  const Index n = 4000, d = 5, k = 2;
  Matrix<double> f(d, n), a(k, d);
  for (Index i = 0; i < f.size(); ++i) f(i) = 10.0 + rng.normal();
  for (Index i = 0; i < a.size(); ++i) a(i) = rng.normal();
  Matrix<double> t = a * f;
  for (Index i = 0; i < t.size(); ++i) t(i) += 0.3 * rng.normal();
  id::StreamingParams p;
  p.permutations = 9;
  p.permutation_block = 400;
  id::StreamingIdentify one(d, k, p, f.col(0), t.col(0)), two(d, k, p, f.col(0), t.col(0));
  for (Index b = 0; b * 400 < n; ++b) {
    one.add(f.middleCols(b * 400, 400), t.middleCols(b * 400, 400), b * 400);
    if (b % comm.size() == comm.rank())  // this rank's blocks only
      two.add(f.middleCols(b * 400, 400), t.middleCols(b * 400, 400), b * 400);
  }
  two.reduce(comm);
  const id::StreamingReport r1 = one.finish(), r2 = two.finish();
  // Sums of 4000 terms split in two and added: relative 1e-13 at most; 1e-9 absolute on
  // O(1) statistics leaves room for the eigendecomposition's conditioning.
  EXPECT_EQ(r2.n_train + r2.n_test, n);
  EXPECT_NEAR(r2.test_r2.variance_weighted, r1.test_r2.variance_weighted, 1e-9);
  EXPECT_NEAR(r2.lambda / r1.lambda, 1.0, 1e-9);
  EXPECT_LE((r2.w - r1.w).cwiseAbs().maxCoeff(), 1e-9);
  EXPECT_LE((r2.cca - r1.cca).cwiseAbs().maxCoeff(), 1e-9);
  EXPECT_LE((r2.null_r2 - r1.null_r2).cwiseAbs().maxCoeff(), 1e-9);
  EXPECT_EQ(r2.p_value, r1.p_value);
}

}  // namespace

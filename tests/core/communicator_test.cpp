// SPDX-License-Identifier: MIT
// LocalCommunicator (the single-process default), share_of and collective(): what every build
// runs, with or without MPI. The 2-rank behaviour is tested in tests/mpi/ (label mpi).

#include <ergo/core.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace {

using ergo::Index;

TEST(Communicator, LocalIsOneRankAndCollectivesKeepValues) {
  ergo::LocalCommunicator c;
  EXPECT_EQ(c.rank(), 0);
  EXPECT_EQ(c.size(), 1);
  EXPECT_TRUE(c.is_root());
  std::vector<double> v = {1.5, -2.0};
  c.allreduce_sum(v.data(), 2);
  EXPECT_EQ(v, (std::vector<double>{1.5, -2.0}));
  double mn = 3.0;
  c.allreduce_min(&mn, 1);
  EXPECT_EQ(mn, 3.0);
  ergo::Matrix<float> m = ergo::Matrix<float>::Constant(2, 2, 0.25f);
  c.allreduce_sum(m);
  EXPECT_EQ(m(1, 1), 0.25f);
  int x = 7;
  c.broadcast(&x, sizeof x, 0);
  EXPECT_EQ(x, 7);
  EXPECT_THROW(c.broadcast(&x, sizeof x, 1), ergo::InvalidArgument);
  EXPECT_NO_THROW(c.all_ok(true, ""));
  EXPECT_THROW(c.all_ok(false, "bad file"), ergo::RankError);
}

TEST(Communicator, ShareOfSplitsInRankOrder) {
  // 10 items over 4 ranks: 3, 3, 2, 2
  const Index counts[4] = {3, 3, 2, 2}, offsets[4] = {0, 3, 6, 8};
  for (int r = 0; r < 4; ++r) {
    const ergo::Share s = ergo::share_of(10, r, 4);
    EXPECT_EQ(s.count, counts[r]);
    EXPECT_EQ(s.offset, offsets[r]);
  }
  EXPECT_EQ(ergo::share_of(7, 0, 1).count, 7);
  EXPECT_EQ(ergo::share_of(1, 1, 2).count, 0);
  EXPECT_THROW(ergo::share_of(5, 2, 2), ergo::InvalidArgument);
}

TEST(Communicator, CollectiveOnOneRankRethrowsTheOriginalException) {
  ergo::LocalCommunicator c;
  EXPECT_THROW(ergo::collective(c, [] { throw std::out_of_range("x"); }), std::out_of_range);
  int calls = 0;
  ergo::collective(c, [&] { ++calls; });
  EXPECT_EQ(calls, 1);
}

}  // namespace

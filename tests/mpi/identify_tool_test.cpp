// SPDX-License-Identifier: MIT
// `ergo-identify --out-of-core` (tools/identify_streaming.hpp, run in-process) on 2 ranks: the
// same statistics as one process reading every block, rank 0 alone writes the JSON, and a file
// one rank cannot read stops both ranks with that rank's error.

#include "../../tools/identify_streaming.hpp"

#include <ergo/mpi.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace {

using ergo::Index;
using ergo::Matrix;
namespace fs = std::filesystem;
using ::testing::HasSubstr;

const ergo::MpiCommunicator& id_comm() {
  static const ergo::MpiCommunicator c;
  return c;
}

// A scratch folder shared by both ranks (rank 0 creates it and writes the files).
std::string id_shared_dir() {
  char name[256] = {0};
  if (id_comm().is_root()) {
    const std::string p =
        (fs::temp_directory_path() / ("ergo_mpi_identify_" + std::to_string(::getpid()))).string();
    fs::remove_all(p);
    fs::create_directories(p);
    std::snprintf(name, sizeof name, "%s", p.c_str());
    ergo::Rng rng(5);
    const Index n = 2500, d = 6, k = 3;
    Matrix<double> f(d, n), a(k, d);
    for (Index i = 0; i < f.size(); ++i) f(i) = 30.0 + rng.normal();
    for (Index i = 0; i < a.size(); ++i) a(i) = rng.normal();
    Matrix<double> t = a * f;
    for (Index i = 0; i < t.size(); ++i) t(i) += 0.5 * rng.normal();
    ergo::io::write_npy(p + "/F.npy", Matrix<float>(f.cast<float>()));
    ergo::io::write_npy(p + "/T.npy", t);
  }
  id_comm().broadcast(name, sizeof name, 0);
  return name;
}

ergo::tools::StreamingOptions id_options(const std::string& dir, const std::string& json) {
  ergo::tools::StreamingOptions o;
  o.rep_file = dir + "/F.npy";
  o.target_file = dir + "/T.npy";
  o.json_out = json;
  o.params.permutation_block = 300;  // 9 blocks: 5 on rank 0, 4 on rank 1
  o.params.permutations = 19;
  o.params.seed = 7;
  return o;
}

TEST(IdentifyToolMpi, TwoRanksEqualOneProcessAndFailTogether) {
  const std::string dir = id_shared_dir();
  // one process reading every block, by every rank (no file written)
  const auto r1 = ergo::tools::run_streaming_identify(id_options(dir, ""));
  const auto r2 =
      ergo::tools::run_streaming_identify(id_options(dir, dir + "/two.json"), id_comm());
  EXPECT_EQ(r1.ranks, 1);
  EXPECT_EQ(r2.ranks, 2);
  EXPECT_EQ(r2.blocks, 9);
  EXPECT_EQ(r2.report.n_train, r1.report.n_train);
  EXPECT_EQ(r2.report.n_test, r1.report.n_test);
  // sums of 2500 terms split over 2 ranks: relative ~1e-13 (identify_mpi_test.cpp's 1e-9)
  EXPECT_NEAR(r2.report.lambda / r1.report.lambda, 1.0, 1e-9);
  EXPECT_NEAR(r2.report.test_r2.variance_weighted, r1.report.test_r2.variance_weighted, 1e-9);
  EXPECT_LE((r2.report.w - r1.report.w).cwiseAbs().maxCoeff(), 1e-9);
  EXPECT_LE((r2.report.cca - r1.report.cca).cwiseAbs().maxCoeff(), 1e-9);
  EXPECT_LE((r2.report.null_r2 - r1.report.null_r2).cwiseAbs().maxCoeff(), 1e-9);
  EXPECT_EQ(r2.report.p_value, r1.report.p_value);
  EXPECT_GT(r2.report.test_r2.variance_weighted, 0.9);
  id_comm().barrier();
  if (id_comm().is_root()) {
    const auto j = nlohmann::json::parse(ergo::tools::read_text(dir + "/two.json"));
    EXPECT_EQ(j["ranks"], 2);
    EXPECT_EQ(j["mode"], "out_of_core");
  }
  // a target file that rank 1 cannot read: both ranks stop with rank 1's error, nothing written
  auto bad = id_options(dir, dir + "/bad.json");
  if (id_comm().rank() == 1) bad.target_file = dir + "/missing.npy";
  try {
    ergo::tools::run_streaming_identify(bad, id_comm());
    ADD_FAILURE() << "expected RankError";
  } catch (const ergo::RankError& e) {
    EXPECT_EQ(e.failed_rank(), 1);
    EXPECT_THAT(e.what(), HasSubstr("missing.npy"));
  }
  id_comm().barrier();
  EXPECT_FALSE(fs::exists(dir + "/bad.json"));
  id_comm().barrier();
  if (id_comm().is_root()) fs::remove_all(dir);
}

}  // namespace

// SPDX-License-Identifier: MIT
// `ergo-sae train` (tools/sae_train.hpp, run in-process) on 2 ranks: the same weights as one
// process, rank 0 alone writes, --resume continues exactly, and a file one rank cannot read
// stops every rank with a clear error, leaving the last good checkpoint in place.

#include "../../tools/sae_train.hpp"

#include <ergo/mpi.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace {

using ergo::Index;
using ergo::Matrix;
namespace fs = std::filesystem;
using ::testing::HasSubstr;

const ergo::MpiCommunicator& comm() {
  static const ergo::MpiCommunicator c;
  return c;
}

// A scratch folder shared by both ranks (rank 0 creates it; the name is agreed by broadcast).
std::string shared_dir(const std::string& tag) {
  char name[256] = {0};
  if (comm().is_root()) {
    const std::string p =
        (fs::temp_directory_path() / ("ergo_mpi_" + tag + "_" + std::to_string(::getpid())))
            .string();
    fs::remove_all(p);
    fs::create_directories(p);
    std::snprintf(name, sizeof name, "%s", p.c_str());
  }
  comm().broadcast(name, sizeof name, 0);
  return name;
}

std::string write_data(const std::string& dir) {
  const std::string path = dir + "/acts.npy";
  if (comm().is_root()) {
    ergo::Rng rng(7);
    ergo::sae::SyntheticParams sp;
    sp.d = 16;
    sp.n_features = 32;
    sp.samples = 1500;
    sp.mean_active = 3;
    const Matrix<float> X = ergo::sae::make_sparse_features<float>(sp, rng).x;
    ergo::io::write_npy(path, X);
  }
  comm().barrier();
  return path;
}

ergo::tools::TrainOptions options(const std::string& data, const std::string& out) {
  ergo::tools::TrainOptions o;
  o.data = {data};
  o.out = out;
  o.architecture = "batchtopk";
  o.d_sae = 64;
  o.k = 3;
  o.trainer.steps = 30;
  o.trainer.batch_size = 100;
  o.trainer.lr = 3e-3;
  o.trainer.dead_window_samples = 500;
  o.trainer.threads = 1;
  o.trainer.log_every = 10;
  o.trainer.normalization_samples = 1000;
  o.trainer.geometric_median_samples = 200;
  o.buffer_size = 400;
  o.chunk_size = 50;
  o.checkpoint_every = 10;
  o.seed = 3;
  return o;
}

double max_diff(const ergo::sae::SparseAutoencoder<float>& a,
                const ergo::sae::SparseAutoencoder<float>& b) {
  double d = 0.0;
  const auto wb = b.named_weights();
  for (const auto& kv : a.named_weights())
    d = std::max(d, static_cast<double>((kv.second - wb.at(kv.first)).cwiseAbs().maxCoeff()));
  return d;
}

// Float, BatchTopK over 30 steps of 100 samples: the tolerance of sae_data_parallel_test.cpp.
constexpr double kTol = 1e-4;

TEST(SaeToolMpi, TwoRanksTrainResumeAndStopTogether) {
  const std::string dir = shared_dir("tool");
  const std::string data = write_data(dir);
  // the one-process reference, by every rank into its own folder
  const std::string one = dir + "/one_" + std::to_string(comm().rank());
  const auto r1 = ergo::tools::run_train(options(data, one));
  ASSERT_TRUE(r1.outcome.ok()) << r1.outcome.message;
  // 2 ranks
  const auto r2 = ergo::tools::run_train(options(data, dir + "/two"), nullptr, comm());
  ASSERT_TRUE(r2.outcome.ok()) << r2.outcome.message;
  EXPECT_EQ(r2.ranks, 2);
  comm().barrier();
  const auto a = ergo::sae::load_native<float>(one + "/ergo_sae.safetensors");
  const auto b = ergo::sae::load_native<float>(dir + "/two/ergo_sae.safetensors");
  EXPECT_LE(max_diff(a, b), kTol);
  if (comm().is_root()) {
    const auto rep = nlohmann::json::parse(ergo::tools::read_text(dir + "/two/report.json"));
    EXPECT_EQ(rep["ranks"], 2);
  }
  // stop after 10 steps, then resume on 2 ranks: the uninterrupted weights
  auto o = options(data, dir + "/resumed");
  o.stop_after = 10;
  const auto s = ergo::tools::run_train(o, nullptr, comm());
  EXPECT_EQ(s.outcome.status, ergo::Status::Stopped);
  o.stop_after = -1;
  o.resume = true;
  const auto r = ergo::tools::run_train(o, nullptr, comm());
  ASSERT_TRUE(r.outcome.ok()) << r.outcome.message;
  EXPECT_TRUE(r.resumed);
  comm().barrier();
  const auto c = ergo::sae::load_native<float>(dir + "/resumed/ergo_sae.safetensors");
  EXPECT_LE(max_diff(b, c), 1e-6);  // same ranks, same steps: bitwise in practice
  // a data file that rank 1 cannot read: both ranks stop with rank 1's error
  auto bad = options(data, dir + "/bad");
  if (comm().rank() == 1) bad.data = {dir + "/missing.npy"};
  try {
    ergo::tools::run_train(bad, nullptr, comm());
    ADD_FAILURE() << "expected RankError";
  } catch (const ergo::RankError& e) {
    EXPECT_EQ(e.failed_rank(), 1);
    EXPECT_THAT(e.what(), HasSubstr("missing.npy"));
  }
  // a checkpoint that rank 1 cannot read at --resume: both stop, the checkpoint stays
  const std::string ck = dir + "/resumed/checkpoint.safetensors";
  const auto before = fs::file_size(ck);
  auto o2 = options(data, dir + "/resumed");
  o2.resume = true;
  if (comm().rank() == 1) o2.out = dir + "/resumed_elsewhere";  // sees no checkpoint...
  if (comm().rank() == 1) fs::create_directories(o2.out);
  if (comm().rank() == 1) {
    std::FILE* f = std::fopen((o2.out + "/checkpoint.safetensors").c_str(), "wb");
    std::fputs("not a checkpoint", f);  // ...but a corrupt one
    std::fclose(f);
  }
  comm().barrier();
  try {
    ergo::tools::run_train(o2, nullptr, comm());
    ADD_FAILURE() << "expected RankError";
  } catch (const ergo::RankError& e) {
    EXPECT_EQ(e.failed_rank(), 1);
  }
  comm().barrier();
  EXPECT_EQ(fs::file_size(ck), before);
  comm().barrier();
  if (comm().is_root()) fs::remove_all(dir);
}

}  // namespace

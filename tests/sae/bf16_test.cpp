// SPDX-License-Identifier: MIT
// bf16 GEMMs (issue 16 §2): Bf16Gemm against Eigen's float product for every transpose and a
// strided block, a training step with TrainerParams::bf16_gemm against the same step in fp32
// (dense and sparse paths), planted-dictionary recovery in bf16 against fp32, and the errors
// when bf16 cannot run. The bf16 checks skip when this build has no oneDNN or the CPU no
// AVX512_BF16; the errors are checked in either case.

#include <ergo/core/bf16_gemm.hpp>
#include <ergo/sae.hpp>

#include "common/test_utils.hpp"
#include "sae/planted_world.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace bf16_test {

using ergo::Index;
using ergo::Matrix;
namespace sae = ergo::sae;

#define ERGO_REQUIRE_BF16() \
  if (!ergo::bf16_available()) GTEST_SKIP() << ergo::bf16_description()

// Rounding both operands to bf16 (8 significant bits) gives a relative error of about
// 2⁻⁹·√(2/3) ≈ 1.6e-3 per product term, averaging to ≈ 2e-3 of ‖C‖ on Gaussian data; fp32
// alone is ~1e-7. So the error must sit in [1e-4, 1e-2]: below means the bf16 path did not run,
// above means a wrong product.
TEST(Bf16Gemm, MatchesTheFloatProductToBf16Rounding) {
  ERGO_REQUIRE_BF16();
  ergo::Rng rng(16);
  ergo::Bf16Gemm g;
  const Index M = 37, N = 53, K = 129;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const Matrix<float> a = ta ? rng.normal_matrix<float>(K, M) : rng.normal_matrix<float>(M, K);
      const Matrix<float> b = tb ? rng.normal_matrix<float>(N, K) : rng.normal_matrix<float>(K, N);
      const Matrix<float> opa = ta ? Matrix<float>(a.transpose()) : a;
      const Matrix<float> opb = tb ? Matrix<float>(b.transpose()) : b;
      const Matrix<float> want = opa * opb;
      Matrix<float> c;
      g.multiply(c, a, ta, b, tb);
      ASSERT_EQ(c.rows(), M);
      ASSERT_EQ(c.cols(), N);
      const double rel = (c - want).norm() / want.norm();
      EXPECT_GT(rel, 1e-4) << "ta " << ta << " tb " << tb;
      EXPECT_LT(rel, 1e-2) << "ta " << ta << " tb " << tb;
    }
  // a block with an outer stride larger than its rows, and a second call on the cached plan
  const Matrix<float> big = rng.normal_matrix<float>(100, 80), b = rng.normal_matrix<float>(30, 20);
  Matrix<float> c;
  for (int rep = 0; rep < 2; ++rep) {
    g.multiply(c, big.block(5, 3, 40, 30), false, b, false);
    const Matrix<float> want = big.block(5, 3, 40, 30) * b;
    EXPECT_LT((c - want).norm() / want.norm(), 1e-2);
  }
  EXPECT_THROW(g.multiply(c, big, false, b, false), ergo::InvalidArgument);  // 80 vs 30
}

sae::SparseAutoencoderParams shape(sae::Architecture a, Index d_in, Index d_sae) {
  sae::SparseAutoencoderParams p;
  p.architecture = a;
  p.d_in = d_in;
  p.d_sae = d_sae;
  p.topk.k = 8;
  return p;
}

// One trainer step from the same state, fp32 vs bf16: the loss terms agree to bf16 rounding
// and the weights after the step stay close, for a dense-path and a sparse-path architecture,
// and for the dense path of the elementwise step (density 0) and its sparse path (density 2).
TEST(Bf16Gemm, TrainerStepMatchesFp32) {
  ERGO_REQUIRE_BF16();
  ergo::Rng rng(17);
  const Matrix<float> x = rng.normal_matrix<float>(64, 256);
  struct Case {
    sae::Architecture arch;
    double density;
  };
  for (const Case& cs :
       {Case{sae::Architecture::ReluL1, 0.0}, Case{sae::Architecture::ReluL1, 2.0},
        Case{sae::Architecture::TopK, -1.0}, Case{sae::Architecture::Unmixer, -1.0}}) {
    const std::string name =
        std::string(sae::to_string(cs.arch)) + " density " + std::to_string(cs.density);
    sae::TrainerParams tp;
    tp.steps = 10;
    tp.lr = 1e-3;
    tp.normalize_input = false;
    tp.init_decoder_bias = false;
    if (cs.density >= 0) tp.sparse_kernel_density = cs.density;
    sae::SparseAutoencoder<float> m32(shape(cs.arch, 64, 256), 5), m16 = m32;
    sae::Trainer<float> t32(tp);
    tp.bf16_gemm = true;
    sae::Trainer<float> t16(tp);
    t32.begin(m32);
    t16.begin(m16);
    const auto l32 = t32.step(m32, x);
    const auto l16 = t16.step(m16, x);
    EXPECT_NEAR(l16.reconstruction, l32.reconstruction, 1e-2 * l32.reconstruction) << name;
    EXPECT_NE(l16.reconstruction, l32.reconstruction) << name << ": the bf16 path did not run";
    EXPECT_NEAR(l16.l0, l32.l0, 0.05 * l32.l0 + 0.5) << name;
    const Matrix<float>& d32 = m32.weights().decoder;
    EXPECT_LT((m16.weights().decoder - d32).norm() / d32.norm(), 1e-2) << name;
  }
}

// Planted dictionary (the defaults test's world: 64 atoms in d = 32, L0 4, 128 latents): TopK
// and ReLU-L1 trained in bf16 recover it as well as in fp32, within 0.05 MCC, and far above the
// untrained SAE (same bar as defaults_test.cpp: halfway from chance to 1).
TEST(Bf16Gemm, RecoversPlantedDictionaryLikeFp32) {
  ERGO_REQUIRE_BF16();
  const auto data = ergo::test::planted_sae_world();
  for (auto a : {sae::Architecture::TopK, sae::Architecture::ReluL1}) {
    sae::SparseAutoencoderParams p = shape(a, 32, 128);
    p.topk.k = 4;
    sae::SparseAutoencoder<float> m32(p, 3), m16 = m32;
    const double chance = sae::dictionary_mcc(m32.weights().decoder, data.dictionary).mcc;
    sae::TrainerParams tp;
    tp.steps = ergo::test::scaled(1500, 400);
    tp.batch_size = 256;
    tp.threads = 1;
    const auto r32 = sae::Trainer<float>(tp).fit(m32, data.x);
    tp.bf16_gemm = true;
    const auto r16 = sae::Trainer<float>(tp).fit(m16, data.x);
    ASSERT_TRUE(r16.outcome.ok()) << r16.outcome.message;
    const double mcc32 = sae::dictionary_mcc(m32.weights().decoder, data.dictionary).mcc;
    const double mcc16 = sae::dictionary_mcc(m16.weights().decoder, data.dictionary).mcc;
    EXPECT_GT(mcc16, chance + 0.5 * (1.0 - chance)) << sae::to_string(a);
    EXPECT_NEAR(mcc16, mcc32, 0.05) << sae::to_string(a);
  }
}

// bf16 needs a float SAE; without oneDNN or AVX512_BF16 asking for it throws, naming why.
TEST(Bf16Gemm, ErrorsNameTheReason) {
  sae::TrainerParams tp;
  tp.bf16_gemm = true;
  sae::SparseAutoencoder<double> md(shape(sae::Architecture::TopK, 8, 16), 1);
  sae::Trainer<double> td(tp);
  EXPECT_THROW(td.begin(md), ergo::InvalidArgument);
  sae::SparseAutoencoder<float> mf(shape(sae::Architecture::TopK, 8, 16), 1);
  sae::Trainer<float> tf(tp);
  if (ergo::bf16_available()) {
    EXPECT_NO_THROW(tf.begin(mf));
  } else {
    try {
      tf.begin(mf);
      ADD_FAILURE() << "bf16 unavailable, but Trainer::begin did not throw";
    } catch (const ergo::RuntimeError& e) {
      EXPECT_NE(std::string(e.what()).find("not available"), std::string::npos) << e.what();
    }
  }
}

#undef ERGO_REQUIRE_BF16

}  // namespace bf16_test

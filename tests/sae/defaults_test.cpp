// SPDX-License-Identifier: MIT
// Defaults that work without tuning (issue 15 §1): the auto rules of TrainerParams::resolved,
// every dictionary-learning architecture recovering a planted dictionary with the defaults only
// (no lr, no sparsity coefficient), the per-parameter learning rate behind JumpReLU's threshold
// rule, and the "looks untrained" check.

#include <ergo/nn.hpp>
#include <ergo/sae.hpp>

#include "common/test_utils.hpp"
#include "sae/planted_world.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace {

using ergo::Index;
using ergo::Matrix;
namespace sae = ergo::sae;
using ::testing::HasSubstr;

sae::SparseAutoencoderParams shape(sae::Architecture a, Index d_in, Index d_sae) {
  sae::SparseAutoencoderParams p;
  p.architecture = a;
  p.d_in = d_in;
  p.d_sae = d_sae;
  return p;
}

TEST(SaeDefaults, ResolvedFollowsTheDocumentedRules) {
  sae::TrainerParams tp;
  tp.steps = 1000;
  tp.batch_size = 4096;
  EXPECT_FALSE(tp.is_resolved());
  const sae::TrainerParams r = tp.resolved(shape(sae::Architecture::ReluL1, 64, 512));
  EXPECT_TRUE(r.is_resolved());
  EXPECT_NEAR(r.lr, 2e-4 * std::sqrt(32.0), 1e-15);  // 2e-4 / sqrt(512 / 16384) = 1.131e-3
  EXPECT_EQ(r.lr_warmup_steps(), 50);                // min(1000, 1000 / 20)
  EXPECT_EQ(r.sparsity_warmup_steps(), 100);         // min(2000, 1000 / 10)
  EXPECT_EQ(r.dead_window_samples, 409600);          // 1000 · 4096 / 10
  EXPECT_EQ(r.threshold_start_step(), 100);          // min(1000, 1000 / 10)
  EXPECT_DOUBLE_EQ(r.threshold_lr_scale, 8.0);       // sqrt(64)
  EXPECT_DOUBLE_EQ(r.sparsity_coefficient,
                   sae::default_sparsity_coefficient(sae::Architecture::ReluL1));
  // long runs reach the constants of the SAE libraries
  tp.steps = 100000;
  const sae::TrainerParams big = tp.resolved(shape(sae::Architecture::TopK, 64, 16384));
  EXPECT_NEAR(big.lr, 2e-4, 1e-18);
  EXPECT_EQ(big.lr_warmup_steps(), 1000);
  EXPECT_EQ(big.sparsity_warmup_steps(), 2000);
  EXPECT_EQ(big.dead_window_samples, 10000000);
  EXPECT_EQ(big.threshold_start_step(), 1000);
  // a tiny run: every rule stays inside the run
  tp.steps = 3;
  tp.batch_size = 10;
  const sae::TrainerParams tiny = tp.resolved(shape(sae::Architecture::TopK, 4, 8));
  EXPECT_EQ(tiny.lr_warmup_steps(), 1);
  EXPECT_EQ(tiny.sparsity_warmup_steps(), 1);
  EXPECT_EQ(tiny.dead_window_samples, 10);
  EXPECT_LT(tiny.threshold_start_step(), 3);
  EXPECT_NO_THROW(tiny.check());
}

TEST(SaeDefaults, SetValuesAreKept) {
  sae::TrainerParams tp;
  tp.lr = 3e-3;
  tp.lr_warmup_fraction = 0.01;
  tp.sparsity_warmup_fraction = 0.0;
  tp.dead_window_samples = 123;
  tp.threshold_start_fraction = 0.0;
  tp.threshold_lr_scale = 1.0;
  tp.sparsity_coefficient = 0.5;
  const sae::TrainerParams r = tp.resolved(shape(sae::Architecture::JumpReLU, 64, 512));
  EXPECT_EQ(r.lr, 3e-3);
  EXPECT_EQ(r.lr_warmup_fraction, 0.01);
  EXPECT_EQ(r.sparsity_warmup_fraction, 0.0);
  EXPECT_EQ(r.dead_window_samples, 123);
  EXPECT_EQ(r.threshold_start_fraction, 0.0);
  EXPECT_EQ(r.threshold_lr_scale, 1.0);
  EXPECT_EQ(r.sparsity_coefficient, 0.5);
  // and the trainer reports what it used
  sae::SparseAutoencoder<float> m(shape(sae::Architecture::JumpReLU, 64, 512));
  sae::Trainer<float> t(tp);
  t.begin(m);
  EXPECT_EQ(t.resolved_params().lr, 3e-3);
  EXPECT_THAT(t.describe_settings(), HasSubstr("lr 0.003,"));
  EXPECT_THAT(t.describe_settings(), HasSubstr("threshold lr x1"));
  EXPECT_THAT(t.describe_settings(), ::testing::Not(HasSubstr("(auto)")));
}

TEST(SaeDefaults, InvalidSettingsThrowNamingTheField) {
  sae::TrainerParams tp;
  tp.lr = 0.0;
  EXPECT_THAT([&] { tp.check(); },
              ::testing::ThrowsMessage<ergo::InvalidArgument>(
                  HasSubstr("TrainerParams::check(): lr: expected > 0 (or negative for auto)")));
  tp = {};
  tp.lr = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(tp.check(), ergo::InvalidArgument);
  tp = {};
  tp.lr_warmup_fraction = 1.5;
  EXPECT_THROW(tp.check(), ergo::InvalidArgument);
  tp = {};
  tp.dead_window_samples = 0;
  EXPECT_THROW(tp.check(), ergo::InvalidArgument);
  tp = {};
  tp.threshold_lr_scale = 0.0;
  EXPECT_THROW(tp.check(), ergo::InvalidArgument);
}

// A parameter's lr_scale multiplies the optimizer's learning rate: Adam's first step moves every
// entry by lr (the bias-corrected m/√v is ±1), so the scaled parameter moves lr_scale times as far.
TEST(SaeDefaults, ParameterLrScaleMultipliesTheStep) {
  Matrix<double> a = Matrix<double>::Zero(3, 1), b = Matrix<double>::Zero(3, 1);
  Matrix<double> ga = Matrix<double>::Constant(3, 1, 0.7), gb = ga;
  ergo::nn::ParameterList<double> list;
  list.push_back(ergo::nn::make_parameter<double>("a", a, ga));
  list.push_back(ergo::nn::make_parameter<double>("b", b, gb));
  list[1].lr_scale = 8.0;
  ergo::nn::AdamParams ap;
  ap.eps = 1e-12;
  ergo::nn::Adam<double> adam(ap);
  adam.step(list, 1e-3);
  // |step| = lr · |g| / (|g| + eps): 1e-3 up to eps / |g| ≈ 1e-12 relative
  EXPECT_NEAR(a(0), -1e-3, 1e-12);
  EXPECT_NEAR(b(0), -8e-3, 1e-12);
}

// The planted world of the recovery test (sae/planted_world.hpp), learned with 128 latents.
sae::SyntheticData<float> planted() {
  return ergo::test::planted_sae_world();
}

// Defaults only: the SAE's shape (and k = the true L0 for TopK/BatchTopK, a property of the
// data), the run's length and batch; no lr, no sparsity coefficient, no warm-ups.
sae::TrainerParams defaults_only() {
  sae::TrainerParams tp;
  tp.steps = ergo::test::scaled(1500, 400);
  tp.batch_size = 256;
  tp.threads = 1;  // tiny matrices: threads only add synchronisation
  return tp;
}

// Every architecture that learns a sparse dictionary, trained with the defaults, recovers the
// planted dictionary far above chance.
//
// Threshold, derived rather than tuned: chance is the MCC of the untrained SAE (the same
// initialisation), measured in the test; for 128 random unit directions in d = 32 against 64
// atoms it is ≈ 0.45 (each atom's best random match has |cos| ≈ 0.5, the assignment takes a
// little less). "Far above chance" is at least halfway from chance to a perfect dictionary:
// mcc > chance + (1 − chance)/2 ≈ 0.73. A recovered dictionary is near 1 (0.9+ on this world),
// so the margin holds both ways.
//
// Excluded: the Structured SAE and the ConCA unmixer. The planted data have no dense low-rank
// part, so the Structured SAE's dense branch absorbs signal the sparse atoms should carry (docs/
// sae.md: 0.86 with tuned settings, by design not a pure dictionary learner); the unmixer's code is
// dense (softplus > 0 everywhere) and its MCC is at chance by construction (0.36 in docs/sae.md).
// Both are trained by EveryArchitectureTrains in sae_train_test.cpp.
TEST(SaeDefaults, EveryDictionaryArchitectureRecoversPlantedDictionary) {
  const auto data = planted();
  for (auto a : {sae::Architecture::ReluL1, sae::Architecture::TopK, sae::Architecture::BatchTopK,
                 sae::Architecture::JumpReLU, sae::Architecture::PAnneal}) {
    sae::SparseAutoencoderParams p = shape(a, 32, 128);
    p.topk.k = 4;
    p.batchtopk.k = 4;
    sae::SparseAutoencoder<float> m(p, 3);
    const double chance = sae::dictionary_mcc(m.weights().decoder, data.dictionary).mcc;
    const auto rep = sae::Trainer<float>(defaults_only()).fit(m, data.x);
    ASSERT_TRUE(rep.outcome.ok()) << sae::to_string(a) << ": " << rep.outcome.message;
    const double mcc = sae::dictionary_mcc(m.weights().decoder, data.dictionary).mcc;
    EXPECT_LT(chance, 0.6) << sae::to_string(a);
    EXPECT_GT(mcc, chance + 0.5 * (1.0 - chance)) << sae::to_string(a) << ": chance " << chance;
    EXPECT_FALSE(rep.check.looks_untrained()) << sae::to_string(a) << ": " << rep.check.warning;
    EXPECT_TRUE(rep.resolved.is_resolved());
  }
}

// The untrained check fires for an SAE whose weights did not move (lr 1e-9: Adam moves each
// weight by ≈ 1e-9 a step, nothing in 20 steps), and names the reason; a trained SAE does not
// trigger it (above, and here the same SAE after a real run).
TEST(SaeDefaults, UntrainedWarningFiresOnlyForUntrainedSae) {
  const auto data = planted();
  for (auto a : {sae::Architecture::ReluL1, sae::Architecture::TopK}) {
    sae::SparseAutoencoderParams p = shape(a, 32, 128);
    p.topk.k = 4;
    sae::SparseAutoencoder<float> frozen(p, 3);
    sae::TrainerParams tp = defaults_only();
    tp.steps = 20;
    tp.lr = 1e-9;
    const auto rep = sae::Trainer<float>(tp).fit(frozen, data.x);
    ASSERT_TRUE(rep.outcome.ok());
    EXPECT_TRUE(rep.check.looks_untrained()) << sae::to_string(a);
    EXPECT_THAT(rep.check.warning, HasSubstr("the SAE looks untrained"));
    EXPECT_THAT(rep.check.warning, HasSubstr("barely moved"));
    EXPECT_GT(rep.check.decoder_init_cosine, 0.999) << sae::to_string(a);

    sae::SparseAutoencoder<float> trained(p, 3);
    const auto ok = sae::Trainer<float>(defaults_only()).fit(trained, data.x);
    ASSERT_TRUE(ok.outcome.ok());
    EXPECT_FALSE(ok.check.looks_untrained()) << sae::to_string(a) << ": " << ok.check.warning;
    EXPECT_LT(ok.check.fvu, 0.9);
    EXPECT_LT(ok.check.never_fired_fraction, 0.5);
    EXPECT_LT(ok.check.decoder_init_cosine, 0.9);
  }
  // every sign on its own: an SAE with most latents silenced and a huge FVU
  sae::SparseAutoencoder<float> m(shape(sae::Architecture::ReluL1, 32, 128), 3);
  m.weights().encoder_bias.setConstant(-1e6f);  // no latent ever fires: x̂ = b_dec
  sae::TrainerParams tp = defaults_only();
  tp.steps = 20;
  tp.lr = 1e-9;
  const auto rep = sae::Trainer<float>(tp).fit(m, data.x);
  EXPECT_DOUBLE_EQ(rep.check.never_fired_fraction, 1.0);
  EXPECT_GT(rep.check.fvu, 0.9);  // x̂ = the median: FVU ≈ 1
  EXPECT_THAT(rep.check.warning, HasSubstr("most latents never fired"));
  EXPECT_THAT(rep.check.warning, HasSubstr("explains almost nothing"));
}

}  // namespace

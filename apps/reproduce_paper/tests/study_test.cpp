// Tests of apps/reproduce_paper/study.hpp and results.hpp: one run on an easy world separates
// learning from no learning (and the parameter-free references come out exact), the settings
// grid shares a setting between tables, the equivalence summary rejects a planted difference,
// and a finished setting survives the resume round trip only with identical inputs.
#include "common/test_utils.hpp"

#include "reproduce_paper/results.hpp"
#include "reproduce_paper/study.hpp"

#include <filesystem>
#include <iostream>

using namespace ergo;
using namespace ergo::model;
using namespace ergo::identify;
using namespace ergo::repro;

namespace {

double num(const nlohmann::json& j, const char* key) {
  return j.at(key).is_number() ? j.at(key).get<double>() : std::nan("");
}

Setting easy_setting() {
  // m = 3 binary concepts (ℓ = 8), the paper's permuted one-hot with n = ℓ, 16 nuisance bits:
  // easy enough to learn in a CI-sized run, with baselines that cannot cheat.
  PaperWorldParams w;
  w.m = 3;
  w.n_observed = 8;
  w.eta = 0.05;
  w.n_nuisance = 16;
  return repro::detail::make_setting(w, 8, false, test::scaled(20000, 6000),
                                     test::scaled(4000, 2000), "test");
}

RunOptions easy_options() {
  RunOptions o;
  o.hidden = {64, 64};
  o.epochs = 8;
  o.permutations = 0;
  return o;
}

}  // namespace

TEST(ReproduceStudy, TrainedNetworkBeatsTheBaselinesOnAnEasyWorld) {
  const Setting s = easy_setting();
  const RunOptions o = easy_options();
  for (std::uint64_t seed : {11u, 12u}) {
    const RunResult r = run_one(s, o, seed);
    const auto& tr = r.reps.at("trained");
    const auto& un = r.reps.at("untrained");
    const auto& rp = r.reps.at("random_projection");
    const auto& raw = r.reps.at("raw_input");
    const auto& bayes = r.reps.at("bayes_optimal");
    std::cout << "[ seed " << seed << " ] r2_bayes trained " << num(tr, "r2_bayes")
              << ", untrained " << num(un, "r2_bayes") << ", random projection "
              << num(rp, "r2_bayes") << "; gap trained " << num(tr, "gap_own") << ", untrained "
              << num(un, "gap_own") << "\n";
    // Headline (a): held-out R² of F → Bayes representation. Untrained random features of 24
    // bits, 16 of them noise, and an 8-wide random projection of the 48-column one-hot keep
    // little of it (≈ 0 at the reference setting of the main job), while a trained network is
    // near the Bayes predictor (≈ 0.9 there): a 0.3 margin is far from both.
    EXPECT_GT(num(tr, "r2_bayes"), num(un, "r2_bayes") + 0.3) << "seed " << seed;
    EXPECT_GT(num(tr, "r2_bayes"), num(rp, "r2_bayes") + 0.3) << "seed " << seed;
    EXPECT_GT(num(tr, "cca_bayes_mean"), num(un, "cca_bayes_mean")) << "seed " << seed;
    // Learning, in predictive terms: most of the learnable information is learned (the
    // untrained network's own head is no better than predicting without the context).
    EXPECT_LT(num(tr, "gap_own"), 0.5) << "seed " << seed;
    EXPECT_GT(num(un, "gap_own"), 0.8) << "seed " << seed;
    // The references are exact where the model says they must be.
    EXPECT_NEAR(num(bayes, "r2_bayes"), 1.0, 1e-8);
    EXPECT_NEAR(num(bayes, "cca_bayes_min"), 1.0, 1e-6);
    EXPECT_NEAR(num(bayes, "gap_own"), 0.0, 1e-10);
    EXPECT_NEAR(num(bayes, "theory_r2_exact"), 1.0, 1e-10);
    EXPECT_NEAR(num(bayes, "theory_logit_r2_exact"), 1.0, 1e-10);
    EXPECT_GT(num(raw, "r2_clr"), 1.0 - 1e-6);  // why clr is not the headline
    // Every representation has the same keys; the ones without a head have no theory numbers.
    for (const auto& name : representation_names())
      for (auto it = tr.begin(); it != tr.end(); ++it)
        EXPECT_TRUE(r.reps.at(name).contains(it.key())) << name << " lacks " << it.key();
    EXPECT_TRUE(rp.at("theory_r2_exact").is_null());
    EXPECT_GT(r.world.at("n_distinct_contexts").get<Index>(), 8);  // more contexts than d
    EXPECT_GT(r.world.at("n_distinct_test").get<Index>(), 0);
  }
}

TEST(ReproduceStudy, SettingsAreSharedBetweenTablesAndSortedRows) {
  Config c;
  c.exp1_n = {16, 8};
  c.noise_eta = {0.3, 0.05};
  c.exp2_m = {};
  const std::vector<Setting> s = make_settings(c, {});
  // reference + wide + low-dim + tied + η = 0.3 + n = 8: the reference is also η = 0.05 and n = 16.
  ASSERT_EQ(s.size(), 6u);
  EXPECT_EQ(s[0].memberships.size(), 3u);
  std::set<std::string> ids;
  for (const auto& x : s) ids.insert(x.id);
  EXPECT_EQ(ids.size(), s.size());
  EXPECT_EQ(s[0].world.n_nuisance, 32);  // nuisance_ratio 2 × ℓ
}

TEST(ReproduceStudy, EquivalenceSummaryRejectsAPlantedDifference) {
  auto fake = [](Index m, double er, std::vector<double> v) {
    SettingResult r;
    PaperWorldParams w;
    w.m = m;
    w.er_k = er;
    r.setting = repro::detail::make_setting(w, 8, false, 100, 100, "exp2");
    for (double x : v) {
      RunResult run;
      run.reps["trained"] = {{"probe_acc_norm", x}};
      r.runs.push_back(run);
    }
    return r;
  };
  const std::vector<double> base = {0.90, 0.92, 0.91, 0.89, 0.93, 0.90, 0.91, 0.92};
  std::vector<double> shifted = base;
  for (auto& x : shifted) x -= 0.15;  // three margins away
  const std::vector<SettingResult> rs = {fake(7, 1.0, base), fake(7, 2.0, base),
                                         fake(7, 3.0, shifted)};
  const nlohmann::json eq = exp2_equivalence(rs, 0.05, 0.05);
  ASSERT_EQ(eq.size(), 3u);
  EXPECT_TRUE(eq[0].at("equivalent").get<bool>());   // ER1 – ER2: identical values
  EXPECT_FALSE(eq[1].at("equivalent").get<bool>());  // ER1 – ER3
  EXPECT_FALSE(eq[2].at("equivalent").get<bool>());  // ER2 – ER3
  EXPECT_NEAR(eq[1].at("difference").get<double>(), 0.15, 1e-12);
}

TEST(ReproduceStudy, ResumeReusesOnlyAnIdenticalSetting) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(ERGO_BINARY_DIR) / "tests" / "reproduce_resume";
  fs::remove_all(dir);
  SettingResult r;
  r.setting = easy_setting();
  r.seeds = {1, 2};
  for (int i = 0; i < 2; ++i) {
    RunResult run;
    run.world = {{"eps_mean", 0.1 + i}};
    for (const auto& name : representation_names()) run.reps[name] = {{"r2_bayes", 0.5 * i}};
    r.runs.push_back(run);
  }
  r.comparisons = {{"x", 1}};
  const RunOptions o = easy_options();
  save_setting(dir.string(), r, o);
  SettingResult back;
  back.setting = r.setting;
  back.seeds = r.seeds;
  ASSERT_TRUE(load_setting(dir.string(), back, o));
  EXPECT_EQ(back.runs.size(), 2u);
  EXPECT_EQ(back.runs[1].world, r.runs[1].world);
  EXPECT_EQ(back.runs[1].reps.at("raw_input"), r.runs[1].reps.at("raw_input"));
  EXPECT_EQ(back.comparisons, r.comparisons);
  // Different seeds or options: not reused.
  SettingResult other = back;
  other.seeds = {1, 3};
  EXPECT_FALSE(load_setting(dir.string(), other, o));
  RunOptions o2 = o;
  o2.epochs = 9;
  EXPECT_FALSE(load_setting(dir.string(), back, o2));
}

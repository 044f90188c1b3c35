// End-to-end smoke test of the main job: runs `reproduce_paper --quick` (smaller still under
// sanitizers) and checks that results.json has, for every setting and seed, the same metric keys
// for all five representations, finite and in range where they must be, the paired comparisons
// and the equivalence tests; that the CSV, the summary and the figure data exist; and that
// --resume reuses every finished setting.
#include "common/test_utils.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <tuple>

#ifdef ERGO_REPRODUCE_PAPER_EXE

namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << path;
  nlohmann::json j;
  f >> j;
  return j;
}

}  // namespace

TEST(ReproducePaperQuick, WritesCompleteFiniteResults) {
  namespace fs = std::filesystem;
  const fs::path out = fs::path(ERGO_BINARY_DIR) / "tests" / "reproduce_quick_out";
  fs::remove_all(out);
  std::string cmd = std::string("\"") + ERGO_REPRODUCE_PAPER_EXE +
                    "\" --quick --threads 2 --out \"" + out.string() + "\"";
#ifdef ERGO_SANITIZE_BUILD
  // Under ASan/UBSan everything is slower: shrink the quick grid further through a config file.
  const fs::path cfg = fs::path(ERGO_BINARY_DIR) / "tests" / "reproduce_quick_san.json";
  std::ofstream(cfg) << R"({"quick": true, "seeds": 2, "train_samples": 1500, "eval_samples": 800,
    "epochs": 2, "exp1_n": [16], "noise_eta": [0.05], "exp2_samples_per_config": 40,
    "exp2_eval_per_config": 30, "permutations": 19, "max_p_value": 0.1})";
  cmd += " --config \"" + cfg.string() + "\" --no-figures";
#endif
  const std::string log = out.string() + ".log";
  ASSERT_EQ(std::system((cmd + " > \"" + log + "\" 2>&1").c_str()), 0)
      << "command failed: " << cmd << "\nsee " << log;

  nlohmann::json j = read_json((out / "results.json").string());
  ASSERT_TRUE(j.at("config").at("quick").get<bool>());
  EXPECT_GT(j.at("wall_seconds").get<double>(), 0.0);
  const std::vector<std::string> reps = {"trained", "untrained", "random_projection", "raw_input",
                                         "bayes_optimal"};
  EXPECT_EQ(j.at("representations").get<std::vector<std::string>>(), reps);
  // Metrics every representation must report as finite numbers, with their ranges.
  const std::vector<std::tuple<std::string, double, double>> finite = {
      {"dim", 1.0, 1e6},
      {"r2_bayes", -1e9, 1.0 + 1e-9},
      {"cca_bayes_mean", -1.0, 1.0 + 1e-9},
      {"cca_bayes_min", -1.0, 1.0 + 1e-9},
      {"r2_clr", -1e9, 1.0 + 1e-9},
      {"r2_logodds", -1e9, 1.0 + 1e-9},
      {"probe_acc", 0.0, 1.0},
      {"probe_fit_ok", 0.0, 1.0}};
  // ... and those of the representations with their own next-token head.
  const std::vector<std::string> headed = {"trained", "untrained", "bayes_optimal"};
  const std::vector<std::string> theory = {"gap_own",
                                           "theory_r2_linear",
                                           "theory_r2_exact",
                                           "theory_residual_share",
                                           "theory_logit_r2_exact",
                                           "a_rank",
                                           "lhat_rank"};
  std::set<std::string> tables;
  for (const auto& s : j.at("settings")) {
    const std::string id = s.at("id").get<std::string>();
    for (const auto& m : s.at("memberships")) tables.insert(m.at("table").get<std::string>());
    for (const char* p : {"m", "l", "er_k", "n", "n_nuisance", "eta", "d", "vocab"})
      EXPECT_TRUE(s.at("params").contains(p)) << id << " lacks param " << p;
    ASSERT_EQ(s.at("runs").size(), s.at("seeds").size()) << id;
    for (const auto& run : s.at("runs")) {
      for (const char* k : {"ce_bayes", "ce_marginal", "eps_mean", "bayes_acc", "majority_acc",
                            "n_distinct_contexts", "n_distinct_test", "train_epochs"})
        ASSERT_TRUE(run.at("world").at(k).is_number()) << id << " world." << k;
      EXPECT_GT(run.at("world").at("ce_marginal").get<double>(),
                run.at("world").at("ce_bayes").get<double>() - 0.05)
          << id;
      const auto& r = run.at("representations");
      for (const auto& name : reps) {
        ASSERT_TRUE(r.contains(name)) << id << " lacks " << name;
        EXPECT_EQ(r.at(name).size(), r.at("trained").size())
            << id << " " << name << ": keys differ";
        for (const auto& [k, lo, hi] : finite) {
          ASSERT_TRUE(r.at(name).at(k).is_number()) << id << " " << name << "." << k;
          EXPECT_GE(r.at(name).at(k).get<double>(), lo) << id << " " << name << "." << k;
          EXPECT_LE(r.at(name).at(k).get<double>(), hi) << id << " " << name << "." << k;
        }
        EXPECT_EQ(r.at(name).at("cca_bayes_spectrum").size(),
                  static_cast<size_t>(s.at("params").at("vocab").get<int>() - 1));
      }
      for (const auto& name : headed)
        for (const auto& k : theory)
          EXPECT_TRUE(r.at(name).at(k).is_number()) << id << " " << name << "." << k;
      EXPECT_NEAR(r.at("bayes_optimal").at("theory_r2_exact").get<double>(), 1.0, 1e-8) << id;
      EXPECT_TRUE(r.at("raw_input").at("theory_r2_exact").is_null()) << id;
    }
    for (const char* c : {"trained_vs_untrained", "trained_vs_random_projection"})
      EXPECT_TRUE(s.at("comparisons").at(c).at("r2_bayes").at("p_sign").is_number()) << id;
  }
  EXPECT_EQ(tables, (std::set<std::string>{"ablation", "noise", "exp1", "exp2"}));
  ASSERT_GE(j.at("equivalence").size(), 1u);
  EXPECT_TRUE(j.at("equivalence")[0].at("evaluated").get<bool>());
  for (const char* f : {"results.csv", "summary.md", "theorem.dat", "exp1.dat", "fig_theorem.gp",
                        "fig_exp1.gp", "fig_exp2.gp", "learning.dat", "spectrum.dat"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  EXPECT_TRUE(fs::is_directory(out / "settings"));

  // A second run with --resume reuses every setting and writes the same numbers.
  const std::string again = cmd + " --resume > \"" + log + ".2\" 2>&1";
  ASSERT_EQ(std::system(again.c_str()), 0) << again;
  nlohmann::json k = read_json((out / "results.json").string());
  ASSERT_EQ(k.at("settings").size(), j.at("settings").size());
  for (size_t i = 0; i < k.at("settings").size(); ++i) {
    nlohmann::json& first = j.at("settings")[i];
    nlohmann::json& second = k.at("settings")[i];
    EXPECT_FALSE(first.at("reused").get<bool>());
    EXPECT_TRUE(second.at("reused").get<bool>());
    EXPECT_GT(second.at("wall_seconds").get<double>(), 0.0);
    first.erase("reused");
    second.erase("reused");
  }
  EXPECT_EQ(k.at("settings"), j.at("settings"));
  std::ifstream l2(log + ".2");
  const std::string text((std::istreambuf_iterator<char>(l2)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("reused"), std::string::npos);
}

#else

TEST(ReproducePaperQuick, WritesCompleteFiniteResults) {
  GTEST_SKIP() << "reproduce_paper is not built (ERGO_BUILD_EXAMPLES=OFF)";
}

#endif  // ERGO_REPRODUCE_PAPER_EXE

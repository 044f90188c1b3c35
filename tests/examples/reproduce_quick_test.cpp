// End-to-end smoke test of the main job: runs `reproduce_paper --quick` (smaller still under
// sanitizers) and checks that results.json has every metric for every setting, finite and in
// range, and that the CSV, the summary and the figure data exist.
#include "common/test_utils.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

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
  std::string cmd = std::string("\"") + ERGO_REPRODUCE_PAPER_EXE + "\" --quick --threads 1 --out \"" +
                    out.string() + "\"";
#ifdef ERGO_SANITIZE_BUILD
  // Under ASan/UBSan everything is slower: shrink the quick grid further through a config file.
  const fs::path cfg = fs::path(ERGO_BINARY_DIR) / "tests" / "reproduce_quick_san.json";
  std::ofstream(cfg) << R"({"quick": true, "seeds": 1, "train_samples": 1500, "test_samples": 400,
    "epochs": 3, "exp2_m": [3], "exp2_er": [1.0], "permutations": 9})";
  cmd += " --config \"" + cfg.string() + "\" --no-figures";
#endif
  cmd += " > \"" + (out.string() + ".log") + "\" 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "command failed: " << cmd << "\nsee " << out << ".log";

  const nlohmann::json j = read_json((out / "results.json").string());
  ASSERT_TRUE(j.contains("config"));
  ASSERT_TRUE(j.at("config").at("quick").get<bool>());
  const auto& settings = j.at("settings");
  ASSERT_GE(settings.size(), 6u);  // exp1, exp2, four ablations, the noise sweep
  std::set<std::string> experiments;
  // Metrics every setting must report, with the range each must lie in.
  const std::vector<std::tuple<std::string, double, double>> required = {
      {"bayes_ce", 0.0, 20.0},        {"model_ce", 0.0, 20.0},      {"ce_gap", -0.5, 20.0},
      {"r2_clr", -1e9, 1.0},          {"r2_logodds", -1e9, 1.0},    {"r2_reverse", -1e9, 1.0},
      {"cca_mean", -1.0, 1.0 + 1e-9}, {"cca_min", -1.0, 1.0 + 1e-9}, {"cond_map", 1.0, 1e300},
      {"p_perm", 0.0, 1.0},           {"probe_acc", 0.0, 1.0},      {"bayes_acc", 0.0, 1.0},
      {"eps_mean", 0.0, 1.0},         {"eps_median", 0.0, 1.0},     {"theory_residual", 0.0, 1e300},
      {"theory_identity_rel_err", 0.0, 1e300}, {"rep_dim", 1.0, 1e6}, {"l", 2.0, 1e6}};
  for (const auto& s : settings) {
    experiments.insert(s.at("experiment").get<std::string>());
    const auto seeds = s.at("seeds").size();
    ASSERT_GE(seeds, 1u);
    for (const char* p : {"m", "er_k", "n", "eta", "l", "variant"})
      EXPECT_TRUE(s.at("params").contains(p)) << s.at("label") << " lacks param " << p;
    for (const auto& [name, lo, hi] : required) {
      ASSERT_TRUE(s.at("metrics").contains(name)) << s.at("label") << " lacks " << name;
      const auto& values = s.at("metrics").at(name).at("values");
      ASSERT_EQ(values.size(), seeds) << name;
      for (const auto& v : values) {
        ASSERT_TRUE(v.is_number()) << s.at("label") << " " << name << " is not finite";
        EXPECT_GE(v.get<double>(), lo) << s.at("label") << " " << name;
        EXPECT_LE(v.get<double>(), hi) << s.at("label") << " " << name;
      }
    }
  }
  EXPECT_EQ(experiments, (std::set<std::string>{"exp1", "exp2", "ablation", "noise"}));
  for (const char* f : {"results.csv", "summary.md", "exp1.dat", "fig_exp1.gp", "fig_exp2.gp", "scatter.dat", "map.dat"})
    EXPECT_TRUE(std::filesystem::exists(out / f)) << f;
}

#else

TEST(ReproducePaperQuick, WritesCompleteFiniteResults) {
  GTEST_SKIP() << "reproduce_paper is not built (ERGO_BUILD_EXAMPLES=OFF)";
}

#endif  // ERGO_REPRODUCE_PAPER_EXE

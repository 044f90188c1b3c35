// reproduce_paper: the simulation study of Liu et al., "I Predict Therefore I Am" (arXiv
// 2503.08980), built to decide the theorem rather than only fit it. In every world it trains a
// next-token network and compares five representations of the same held-out contexts, paired by
// seed: the trained network, the same network untrained, a random projection of the input, the
// raw input, and the exact Bayes-optimal representation. It measures (a) whether training learns
// the Bayes predictor, (b) Theorem 3.1's exact statement without fitting anything, against ε, and
// (c) the paper's two trends (observed variables; graph structure and scale, with an equivalence
// test). Writes results.json, results.csv, summary.md, figures and one resumable file per setting
// into --out.
//
//   reproduce_paper [--quick] [--config FILE.json] [--out DIR] [--seeds K] [--threads T] [--resume]
//
// See docs/reproducing-the-paper.md for the design, every key of results.json, and the results.
#include "config.hpp"
#include "figures.hpp"
#include "results.hpp"
#include "study.hpp"

#include <ergo/io/atomic_write.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using namespace ergo;
using namespace ergo::identify;
using namespace ergo::repro;

/// Peak resident memory of this process in MB (Linux; NaN elsewhere).
double peak_rss_mb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return std::nan("");
}

const SettingResult* find_member(const std::vector<SettingResult>& rs, const std::string& table,
                                 const std::string& label) {
  for (const auto& r : rs)
    for (const auto& m : r.setting.memberships)
      if (m.table == table && m.label == label) return &r;
  return nullptr;
}

/// "" when everything was computed in this invocation; otherwise how many settings --resume
/// reused and how long they took when they were computed.
std::string reuse_note(const std::vector<SettingResult>& rs) {
  int reused = 0;
  double earlier = 0;
  for (const auto& r : rs)
    if (r.reused) {
      ++reused;
      earlier += r.wall_seconds;
    }
  if (reused == 0) return "";
  return " in this invocation; " + std::to_string(reused) + " of " + std::to_string(rs.size()) +
         " settings reused from an earlier run (--resume), where they took " +
         std::to_string(static_cast<int>(earlier)) + " s";
}

std::string summary_markdown(const Config& cfg, const std::vector<SettingResult>& rs,
                             const nlohmann::json& equivalence, const std::map<Index, double>& eta2,
                             double seconds, double rss, const std::string& figure_note) {
  std::ostringstream os;
  os << "# reproduce_paper — summary\n\n"
     << "ergo " << ergo::version() << "; " << cfg.seeds << " seeds per setting (base seed "
     << cfg.seed << "); " << (cfg.quick ? "quick grid" : "full grid") << "; "
     << static_cast<int>(seconds) << " s wall, " << static_cast<int>(rss) << " MB peak"
     << reuse_note(rs) << ". Every number is measured on held-out "
     << "evaluation contexts (grouped by distinct informative context), mean ± std over seeds.\n\n";
  const SettingResult* ref = find_member(rs, "ablation", "reference (d = ℓ)");
  if (ref) {
    os << "## (a) Learning: the reference setting (m = " << cfg.m
       << ", n = ℓ, d = ℓ, η = " << cfg.eta << ")\n\n"
       << "r2_bayes: held-out R² of a ridge map F → Bayes representation; cca_bayes_*: held-out "
       << "canonical correlations with it (over all |V| − 1 directions); gap: (CE − CE_Bayes) / "
       << "(CE_marginal − CE_Bayes); r2_clr: R² against the centred joint log-posterior (met "
       << "exactly by the raw input); probe_acc_norm: (acc − majority) / (Bayes − majority).\n\n"
       << representations_table(*ref, {{"r2_bayes", "R² → Bayes"},
                                       {"cca_bayes_mean", "mean ρ"},
                                       {"cca_bayes_min", "ρ_min"},
                                       {"gap_own", "gap (own head)"},
                                       {"gap_readout", "gap (readout)"},
                                       {"r2_clr", "R² → clr"},
                                       {"r2_logodds", "R² → log-odds"},
                                       {"probe_acc_norm", "probe acc. (norm.)"}})
       << "\nPaired differences across seeds (mean [bootstrap 95 %] wins/n; exact sign test):\n\n"
       << comparisons_table(*ref) << "\n";
  }
  os << "## Ablations (m = " << cfg.m << ", n = ℓ): the trained network\n\n"
     << "κ(L̂): condition number of the unembedding differences; logit R² exact: the stacked "
     << "identity L̂ᵀF = Lᵀλ + Δβ − Δh in token-logit space; R² exact: the same solved for F "
     << "(median [quartiles]: pinv(L̂ᵀ) amplifies errors along weak directions of L̂).\n\n"
     << settings_table(rs, "ablation",
                       {{"rank L̂", "trained", "lhat_rank", 1},
                        {"κ(L̂)", "trained", "lhat_condition", 1},
                        {"gap (own)", "trained", "gap_own"},
                        {"R² → Bayes", "trained", "r2_bayes"},
                        {"mean ρ", "trained", "cca_bayes_mean"},
                        {"ρ_min", "trained", "cca_bayes_min"},
                        {"R² → Bayes, untrained", "untrained", "r2_bayes"},
                        {"logit R² exact", "trained", "theory_logit_r2_exact"},
                        {"R² exact", "trained", "theory_r2_exact", 3, true}})
     << "\n## (b) The theorem against ε (noise sweep, m = " << cfg.m << ", n = ℓ, d = ℓ)\n\n"
     << "Parameter-free: A, b and the residual pinv(L̂ᵀ)Δh come from the world and the "
     << "representation's own unembedding. R² linear: R²(F; Aλ + b); residual share: "
     << "var(residual)/var(F), centred; logit: the same for the stacked identity in token-logit "
     << "space (the Bayes representation's exact form has R² = 1 in both by construction).\n\n"
     << settings_table(
            rs, "noise",
            {{"mean ε", "world", "eps_mean"},
             {"Bayes: R² linear", "bayes_optimal", "theory_r2_linear"},
             {"Bayes: residual share", "bayes_optimal", "theory_residual_share"},
             {"Bayes: logit R² linear", "bayes_optimal", "theory_logit_r2_linear"},
             {"Bayes: logit residual share", "bayes_optimal", "theory_logit_residual_share"},
             {"trained: gap", "trained", "gap_own"},
             {"trained: logit R² linear", "trained", "theory_logit_r2_linear"},
             {"trained: logit R² exact", "trained", "theory_logit_r2_exact"},
             {"trained: logit residual share", "trained", "theory_logit_residual_share"},
             {"trained: R² exact", "trained", "theory_r2_exact", 3, true}})
     << "\n## (c) Experiment 1: observed bits n (m = " << cfg.m << ", d = ℓ)\n\n"
     << "Normalised probe accuracy (acc − majority)/(Bayes − majority) per representation, "
     << "median [quartiles] over seeds (it is a ratio whose denominator is small in some worlds "
     << "at small n).\n\n"
     << settings_table(rs, "exp1",
                       {{"distinct contexts", "world", "n_distinct_contexts", 0},
                        {"Bayes acc.", "world", "bayes_acc"},
                        {"majority acc.", "world", "majority_acc"},
                        {"trained acc.", "trained", "probe_acc"},
                        {"raw-input acc.", "raw_input", "probe_acc"},
                        {"trained", "trained", "probe_acc_norm", 2, true},
                        {"untrained", "untrained", "probe_acc_norm", 2, true},
                        {"random proj.", "random_projection", "probe_acc_norm", 2, true},
                        {"raw input", "raw_input", "probe_acc_norm", 2, true},
                        {"Bayes repr.", "bayes_optimal", "probe_acc_norm", 2, true}})
     << "\n## (c) Experiment 2: graph structure and scale (Boolean-function observations)\n\n"
     << "η calibrated per m to mean ε ≈ " << cfg.exp2_target_eps << ":";
  for (const auto& [m, e] : eta2) os << " m = " << m << ": η = " << repro::detail::num_id(e) << ";";
  os << "\n\n"
     << settings_table(rs, "exp2",
                       {{"edges", "world", "edges", 1},
                        {"mean ε", "world", "eps_mean"},
                        {"gap (own)", "trained", "gap_own"},
                        {"Bayes acc.", "world", "bayes_acc"},
                        {"trained acc.", "trained", "probe_acc"},
                        {"trained", "trained", "probe_acc_norm"},
                        {"untrained", "untrained", "probe_acc_norm"},
                        {"raw input", "raw_input", "probe_acc_norm"},
                        {"Bayes repr.", "bayes_optimal", "probe_acc_norm"}})
     << "\nEquivalence across graphs (Welch TOST on the trained network's normalised probe "
        "accuracy, "
     << "margin ±" << cfg.equivalence_margin << ", α = " << cfg.alpha << " per side):\n\n"
     << equivalence_table(equivalence) << "\n"
     << figure_note << "\n";
  return os.str();
}

/// The command-line flags that override the configuration.
struct Flags {
  Config cli;
  std::string config_file;
  bool quick = false, no_figures = false, verbose = false;
  CLI::Option *out = nullptr, *seeds = nullptr, *seed = nullptr, *threads = nullptr;
};

void add_flags(CLI::App& app, Flags& f) {
  app.add_flag("--quick", f.quick, "reduced grid for a smoke test (seconds)");
  app.add_option("--config", f.config_file, "JSON file with any of the configuration keys");
  f.out = app.add_option("--out", f.cli.out, "output folder");
  f.seeds = app.add_option("--seeds", f.cli.seeds, "repetitions per setting");
  f.seed = app.add_option("--seed", f.cli.seed, "base seed");
  f.threads = app.add_option("--threads", f.cli.threads, "repetitions run in parallel");
  app.add_flag("--resume", f.cli.resume,
               "reuse the settings already finished in --out with identical inputs");
  app.add_flag("--no-figures", f.no_figures,
               "do not render figures (data and scripts are still written)");
  app.add_flag("--progress", f.verbose,
               "show a progress bar for every training run (with --threads 1)");
}

/// The configuration. Precedence: defaults < --quick (or "quick": true in the file) < the file
/// < command-line flags.
Config load_config(const Flags& f) {
  nlohmann::json file_json = nlohmann::json::object();
  if (!f.config_file.empty()) {
    std::ifstream in(f.config_file);
    if (!in)
      throw_invalid("reproduce_paper config", "--config", "a readable JSON file", f.config_file);
    try {
      in >> file_json;
    } catch (const nlohmann::json::exception& e) {
      throw_invalid("reproduce_paper config", "--config", "valid JSON",
                    f.config_file + ": " + e.what());
    }
  }
  Config cfg;
  if (f.quick || (file_json.is_object() && file_json.value("quick", false))) apply_quick(cfg);
  merge_json(cfg, file_json);
  if (f.out->count()) cfg.out = f.cli.out;
  if (f.seeds->count()) cfg.seeds = f.cli.seeds;
  if (f.seed->count()) cfg.seed = f.cli.seed;
  if (f.threads->count()) cfg.threads = f.cli.threads;
  if (f.cli.resume) cfg.resume = true;
  if (f.no_figures) cfg.figures = false;
  check(cfg);
  return cfg;
}

/// Runs every seed of one setting, `threads` repetitions side by side, advancing `bar`.
void run_setting(SettingResult& r, const Config& cfg, const RunOptions& opts, int threads,
                 bool verbose, const Stopwatch& clock, ProgressBar& bar, ProgressEvent& ev) {
  const double started = clock.seconds();
  r.runs.assign(r.seeds.size(), RunResult{});
  std::string failure;
  ProgressBar run_bar(std::cerr);
  Callback* cb = verbose && threads == 1 ? &run_bar : nullptr;
  ERGO_OMP(omp parallel for schedule(dynamic, 1) num_threads(threads))
  for (int i = 0; i < cfg.seeds; ++i) {
    try {
      r.runs[static_cast<size_t>(i)] =
          run_one(r.setting, opts, r.seeds[static_cast<size_t>(i)], cb);
    } catch (const std::exception& e) {
      ERGO_OMP(omp critical(repro_failure))
      failure = e.what();
    }
    ERGO_OMP(omp critical(repro_progress)) {
      ++ev.step;
      ev.elapsed_seconds = clock.seconds();
      ev.items_per_second = static_cast<double>(ev.step) / std::max(1e-9, ev.elapsed_seconds);
      bar.on_progress(ev);
    }
  }
  if (!failure.empty())
    throw RuntimeError("reproduce_paper: setting " + r.setting.id + " failed: " + failure +
                       " (finished settings are kept in " + cfg.out +
                       "/settings; rerun with --resume)");
  r.comparisons = paired_comparisons(r, derive_seed(cfg.seed, 9000), cfg.bootstrap);
  r.wall_seconds = clock.seconds() - started;
  save_setting(cfg.out, r, opts);
}

/// Figures, results.json, results.csv and summary.md (printed too), each replaced atomically.
void write_outputs(const Config& cfg, const std::vector<SettingResult>& results,
                   const std::map<Index, double>& eta2, double seconds) {
  const double rss = peak_rss_mb();
  const nlohmann::json equivalence = exp2_equivalence(results, cfg.equivalence_margin, cfg.alpha);
  std::vector<Figure> figs = {theorem_figure(results), exp1_figure(results),
                              exp2_figure(results, cfg.exp2_er)};
  if (const SettingResult* ref = find_member(results, "ablation", "reference (d = ℓ)")) {
    figs.push_back(learning_figure(*ref));
    figs.push_back(spectrum_figure(*ref));
  }
  const std::string fig_note = write_figures(cfg.out, figs, cfg.figures);

  nlohmann::json j;
  j["ergo_version"] = ergo::version();
  j["config"] = to_json(cfg);
  j["wall_seconds"] = seconds;  // this invocation; each setting records its own
  j["peak_rss_mb"] = repro::detail::num(rss);
  j["representations"] = representation_names();
  j["exp2_eta"] = nlohmann::json::object();
  for (const auto& [m, e] : eta2) j["exp2_eta"][std::to_string(m)] = e;
  j["settings"] = nlohmann::json::array();
  for (const auto& r : results) j["settings"].push_back(setting_json(r));
  j["equivalence"] = equivalence;
  io::atomic_write_file(cfg.out + "/results.json", j.dump(1) + "\n");
  io::atomic_write_file(cfg.out + "/results.csv", results_csv(results));
  const std::string md = summary_markdown(cfg, results, equivalence, eta2, seconds, rss, fig_note);
  io::atomic_write_file(cfg.out + "/summary.md", md);
  std::cout << md;
  std::cerr << fig_note << "\nwrote " << cfg.out << "/results.json, results.csv, summary.md\n";
}

/// The whole study: calibration, every setting (reused with --resume), the outputs.
void run_study(const Config& cfg, bool verbose) {
  io::make_directories(cfg.out);
  // Every run is single-threaded (repetitions run side by side instead), so a seed gives the
  // same numbers whatever --threads is.
  set_num_threads(1);
  Stopwatch clock;
  // Experiment 2's noise, calibrated per m so that mean ε matches across m.
  std::map<Index, double> eta2;
  for (Index m : cfg.exp2_m) {
    eta2[m] = calibrate_exp2_eta(cfg, m);
    std::cerr << "reproduce_paper: exp 2, m = " << m << ": η = " << repro::detail::num_id(eta2[m])
              << " gives mean ε ≈ " << cfg.exp2_target_eps << "\n";
  }
  const std::vector<Setting> settings = make_settings(cfg, eta2);
  const RunOptions opts = RunOptions::from(cfg);
  std::vector<std::uint64_t> seeds;
  for (int r = 0; r < cfg.seeds; ++r)
    seeds.push_back(derive_seed(cfg.seed, static_cast<std::uint64_t>(r)));
  const int threads = std::max(1, std::min(cfg.threads, cfg.seeds));
  std::cerr << "reproduce_paper: " << settings.size() << " settings × " << cfg.seeds << " seeds, "
            << threads << " in parallel → " << cfg.out << "/\n";

  std::vector<SettingResult> results;
  ProgressBar bar(std::cerr);
  ProgressEvent ev;
  ev.phase = "study";
  ev.total = static_cast<Index>(settings.size()) * cfg.seeds;
  bar.on_begin(ev);
  int reused = 0;
  for (const Setting& s : settings) {
    SettingResult r;
    r.setting = s;
    r.seeds = seeds;
    if (cfg.resume && load_setting(cfg.out, r, opts)) {
      ++reused;
      ev.step += cfg.seeds;
    } else {
      run_setting(r, cfg, opts, threads, verbose, clock, bar, ev);
    }
    results.push_back(std::move(r));
  }
  bar.on_end(ev, reused
                     ? std::to_string(reused) + " setting(s) reused from " + cfg.out + "/settings"
                     : "");
  write_outputs(cfg, results, eta2, clock.seconds());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ergo reproduce_paper: a decisive simulation study of 'I Predict Therefore I Am'"};
  Flags flags;
  add_flags(app, flags);
  CLI11_PARSE(app, argc, argv);
  try {
    run_study(load_config(flags), flags.verbose);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "reproduce_paper: " << e.what() << "\n";
    return 1;
  }
}

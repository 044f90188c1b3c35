// reproduce_paper: the simulation study of Liu et al., "I Predict Therefore I Am" (arXiv
// 2503.08980), end to end. It builds latent concept worlds, trains next-token predictors on them,
// and measures on held-out data whether the learned representation f_x(x) is a linear function of
// the concepts' log-posteriors — across the settings the paper varies (experiment 1: number of
// observed variables; experiment 2: ER-k graphs × number of concepts) and ablations the theory
// says should fail (representation too small, collapsed unembedding, untrained network, more
// noise). Writes results.json, results.csv, summary.md and figures into --out.
//
//   reproduce_paper [--quick] [--config FILE.json] [--out DIR] [--seeds K] [--threads T] ...
//
// See docs/reproducing-the-paper.md for the setup choices and the status of the default run.
#include "reproduce/config.hpp"
#include "reproduce/figures.hpp"
#include "reproduce/results.hpp"

#include <ergo/identify.hpp>
#include <ergo/io/atomic_write.hpp>
#include <ergo/model.hpp>
#include <ergo/nn.hpp>
#include <ergo/theory.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace {

using namespace ergo;
using repro::Config;
using repro::SettingResult;

enum class Variant { Trained, LowDim, Tied, Untrained };

/// One setting: the world, the network variant, and how it is labelled in the outputs.
struct Spec {
  std::string experiment, label;
  PaperWorldParams world;
  Variant variant = Variant::Trained;
  nlohmann::json params;
};

std::vector<Spec> make_specs(const Config& c) {
  std::vector<Spec> specs;
  auto base = [&](Index m, double er, Index n, double eta) {
    PaperWorldParams w;
    w.m = m;
    w.er_k = er;
    w.n_observed = n;
    w.eta = eta;
    w.tau = c.tau;
    return w;
  };
  const Index l1 = Index(1) << c.exp1_m;
  for (Index n : c.exp1_n)
    specs.push_back({"exp1", "n=" + std::to_string(n), base(c.exp1_m, c.exp1_er, n, c.eta),
                     Variant::Trained, {}});
  for (double k : c.exp2_er)
    for (Index m : c.exp2_m)
      specs.push_back({"exp2", "ER" + std::to_string(static_cast<int>(k)) + " m=" + std::to_string(m),
                       base(m, k, -1, c.eta), Variant::Trained, {}});
  const PaperWorldParams ref = base(c.exp1_m, c.exp1_er, l1, c.eta);
  specs.push_back({"ablation", "reference (d = l-1)", ref, Variant::Trained, {}});
  if (c.ablation_low_dim) specs.push_back({"ablation", "d = (l-1)/4", ref, Variant::LowDim, {}});
  if (c.ablation_tied) specs.push_back({"ablation", "tied unembedding", ref, Variant::Tied, {}});
  if (c.ablation_untrained) specs.push_back({"ablation", "untrained network", ref, Variant::Untrained, {}});
  for (double e : c.noise_eta)
    specs.push_back({"noise", "eta=" + std::to_string(e).substr(0, 4), base(c.exp1_m, c.exp1_er, l1, e),
                     Variant::Trained, {}});
  for (auto& s : specs) {
    const Index l = Index(1) << s.world.m;
    s.params = {{"m", s.world.m},
                {"er_k", s.world.er_k},
                {"n", s.world.n_observed < 0 ? l : s.world.n_observed},
                {"eta", s.world.eta},
                {"tau", s.world.tau},
                {"l", l},
                {"variant", s.variant == Variant::Trained     ? "trained"
                            : s.variant == Variant::LowDim    ? "low_dim"
                            : s.variant == Variant::Tied      ? "tied_unembedding"
                                                              : "untrained"}};
  }
  return specs;
}

/// Everything measured for one setting and one seed (also keeps what the figures need).
struct RunOutput {
  std::map<std::string, double> metrics;
  Matrix<double> scatter;  ///< rows: concept, true log-odds, predicted (test samples)
  Matrix<double> map;      ///< fitted F → log-odds map, m × d (normalised rows)
};

double accuracy(const IntRowVector& pred, const IntRowVector& truth) {
  return (pred.array() == truth.array()).cast<double>().mean();
}

RunOutput run_one(const Spec& spec, const Config& cfg, std::uint64_t seed, Callback* cb) {
  RunOutput out;
  auto& M = out.metrics;
  Rng world_rng(derive_seed(seed, 0)), data_rng(derive_seed(seed, 1));
  const auto world = make_paper_world<double>(spec.world, world_rng);
  const Index l = world.joint_size(), m = world.concept_count();
  const Samples train = world.sample(cfg.train_samples, data_rng);
  const Samples test = world.sample(cfg.test_samples, data_rng);
  const Index n_val = std::max<Index>(1, cfg.train_samples / 10), n_fit = cfg.train_samples - n_val;

  // ---- the next-token predictor
  nn::NextTokenParams np;
  np.hidden = cfg.hidden;
  np.rep_dim = spec.variant == Variant::LowDim ? std::max<Index>(1, (l - 1) / 4) : l - 1;
  np.activation = nn::Activation::LeakyRelu;
  np.negative_slope = 0.2;
  np.seed = derive_seed(seed, 2);
  np.freeze_fy = spec.variant == Variant::Tied;
  nn::NextTokenModel<float> model(world.x_cardinalities(), world.vocab_size(), np);
  if (spec.variant == Variant::Tied) {
    // Collapse the unembedding: every token shares one of two vectors (rank(L̂) = 1, so the
    // diversity condition fails for any ℓ > 2), and f_y stays frozen during training.
    auto& w = model.fy().weight();
    for (Index j = 0; j < w.cols(); ++j) w.col(j) = w.col(j % 2);
  }
  nn::TrainResult tr;
  if (spec.variant != Variant::Untrained) {
    nn::TrainerParams tp;
    tp.epochs = cfg.epochs;
    tp.batch_size = cfg.batch;
    tp.seed = derive_seed(seed, 3);
    tp.adam.lr = cfg.lr;
    tp.decay = nn::Decay::Cosine;
    tp.min_lr_ratio = 0.05;
    tp.patience = cfg.patience;
    tp.progress_every = 0;
    nn::Trainer<float> trainer(tp);
    tr = trainer.fit(model, train.x.leftCols(n_fit), train.y.leftCols(n_fit), train.x.rightCols(n_val),
                     train.y.rightCols(n_val), cb);
  }
  M["train_status_ok"] = tr.ok() ? 1.0 : 0.0;
  M["train_epochs"] = static_cast<double>(tr.epochs);
  M["train_seconds"] = tr.seconds;
  const double bayes_ce = world.bayes_cross_entropy(test.x, test.y);
  const double model_ce = model.cross_entropy(test.x, test.y);
  M["bayes_ce"] = bayes_ce;
  M["model_ce"] = model_ce;
  M["ce_gap"] = model_ce - bayes_ce;
  M["ce_gap_rel"] = (model_ce - bayes_ce) / bayes_ce;
  M["rep_dim"] = static_cast<double>(np.rep_dim);
  M["l"] = static_cast<double>(l);

  // ---- representations and targets on held-out data
  const Matrix<double> f_test = model.representations(test.x).cast<double>();
  const Matrix<double> f_train = model.representations(train.x.leftCols(n_fit)).cast<double>();
  const Matrix<double> lp_test = world.log_posterior(test.x);
  const Matrix<double> t_clr = ilr(lp_test);            // (ℓ−1) × N: the joint log-posterior, centred
  const Matrix<double> t_odds = world.log_odds(test.x);  // m × N

  IdentifiabilityParams ip;
  ip.name = "f_x(x)";
  ip.target_name = "ilr(log p(c|x))";
  ip.n_permutations = cfg.permutations;
  ip.n_bootstrap = 0;
  ip.mcc = false;
  ip.seed = derive_seed(seed, 4);
  const IdentifiabilityReport rc = check_identifiability(f_test, t_clr, ip);
  M["r2_clr"] = rc.forward.test.mean;
  M["r2_clr_vw"] = rc.forward.test.variance_weighted;
  M["r2_reverse"] = rc.reverse.test.mean;
  M["cca_mean"] = rc.cca.test.mean;
  M["cca_min"] = rc.cca.test.min;
  M["kappa_w"] = rc.cca.test.kappa;
  M["cond_map"] = rc.forward.condition_number;
  M["p_perm"] = rc.null_rho_min.p_value;
  M["null_rho_min_p95"] = rc.null_rho_min.p95;
  M["identified"] = rc.verdict.identified ? 1.0 : 0.0;

  ip.target_name = "log-odds of each concept";
  ip.n_permutations = 0;
  ip.reverse = false;
  const IdentifiabilityReport ro = check_identifiability(f_test, t_odds, ip);
  M["r2_logodds"] = ro.forward.test.mean;
  M["cca_min_logodds"] = ro.cca.test.min;

  // ---- the paper's metric: linear-probe accuracy per concept (probe fitted on training
  // representations, scored on the held-out ones), beside the Bayes-optimal accuracy from x
  const Matrix<double> lmarg = world.log_marginals(test.x);
  double probe_sum = 0, bayes_sum = 0;
  for (Index k = 0; k < m; ++k) {
    LogisticRegression probe(LogisticParams{});
    const Index n_probe = std::min<Index>(n_fit, 5000);
    probe.fit(f_train.leftCols(n_probe), train.c.row(k).leftCols(n_probe), 2);
    const double acc = probe.accuracy(f_test, test.c.row(k));
    IntRowVector bayes_pred = (lmarg.row(world.marginal_offset(k) + 1).array() >
                               lmarg.row(world.marginal_offset(k)).array())
                                  .cast<std::int32_t>();
    const double bacc = accuracy(bayes_pred, test.c.row(k));
    M["probe_acc_c" + std::to_string(k)] = acc;
    probe_sum += acc;
    bayes_sum += bacc;
  }
  M["probe_acc"] = probe_sum / static_cast<double>(m);
  M["bayes_acc"] = bayes_sum / static_cast<double>(m);

  // ---- the theorem's own objects for this world and the learned unembedding (paper.md §2.4)
  const IdentifiabilityTheory<double> th(world, model.fy().weight().cast<double>());
  const TheoryPrediction tp_pred = th.predict(test.x);
  M["theory_r2"] = r2_scores(f_test, tp_pred.predicted).mean;
  M["theory_residual"] = tp_pred.mean_residual_norm / tp_pred.mean_affine_norm;
  const IdentityCheck idc = th.check(test.x, f_test);
  M["theory_identity_rel_err"] = idc.rms_error / idc.rhs_scale;
  M["diversity_rank"] = static_cast<double>(th.l_hat_spectrum().rank);
  M["diversity_sigma_min"] = th.l_hat_spectrum().sigma_min;

  // ---- ε statistics
  RowVector<double> eps = world.epsilon(test.x, test.y);
  M["eps_mean"] = eps.mean();
  std::sort(eps.data(), eps.data() + eps.size());
  M["eps_median"] = eps[eps.size() / 2];

  // ---- figure material: predicted vs true log-odds, and the fitted map
  RidgeRegression lo_fit;
  const Index half = f_test.cols() / 2;
  lo_fit.fit(f_test.leftCols(half), t_odds.leftCols(half));
  const Matrix<double> pred = lo_fit.predict(f_test.rightCols(f_test.cols() - half));
  const Index shown = std::min<Index>(pred.cols(), 400);
  out.scatter.resize(3, shown * m);
  for (Index k = 0; k < m; ++k)
    for (Index s = 0; s < shown; ++s) {
      out.scatter(0, k * shown + s) = static_cast<double>(k);
      out.scatter(1, k * shown + s) = t_odds(k, half + s);
      out.scatter(2, k * shown + s) = pred(k, s);
    }
  out.map = lo_fit.weights();
  for (Index k = 0; k < out.map.rows(); ++k) {
    const double mx = out.map.row(k).cwiseAbs().maxCoeff();
    if (mx > 0) out.map.row(k) /= mx;
  }
  return out;
}

std::string summary_markdown(const Config& cfg, const std::vector<SettingResult>& rs, double seconds,
                             const std::string& figure_note) {
  const std::vector<std::pair<std::string, std::string>> cols = {
      {"ce_gap_rel", "CE gap (rel.)"},  {"r2_clr", "R² → clr"},     {"r2_logodds", "R² → log-odds"},
      {"cca_min", "ρ_min (clr)"},       {"probe_acc", "probe acc."}, {"bayes_acc", "Bayes acc."},
      {"theory_identity_rel_err", "identity err."}, {"eps_mean", "mean ε"}};
  std::ostringstream os;
  os << "# reproduce_paper — summary\n\n"
     << "ergo " << ergo::version() << ", " << cfg.seeds << " seeds per setting, " << cfg.train_samples
     << " training / " << cfg.test_samples << " held-out samples, " << (cfg.quick ? "quick grid" : "full grid")
     << ", " << static_cast<int>(seconds) << " s. Every number is held-out, mean ± std over seeds.\n"
     << "CE gap = (model − Bayes cross-entropy) / Bayes; R² → clr: ridge f_x(x) → ilr(log p(c|x));\n"
     << "R² → log-odds: f_x(x) → per-concept log-odds; ρ_min: smallest held-out canonical\n"
     << "correlation with ilr(log p(c|x)); probe acc.: logistic probe of c_k from f_x(x); Bayes acc.:\n"
     << "the best any predictor of c_k from x can do; identity err.: relative RMS error of the\n"
     << "theorem's stacked identity L̂ᵀ f_x(x) = Lᵀλ(x) + Δβ − Δh(x) for the trained network\n"
     << "(0 for the Bayes-optimal predictor).\n\n";
  const char* titles[][2] = {{"exp1", "Experiment 1: invertibility (observed bits n)"},
                             {"exp2", "Experiment 2: graph structure and scale"},
                             {"ablation", "Ablations (m = 4, n = ℓ)"},
                             {"noise", "Noise sweep (m = 4, n = ℓ)"}};
  for (const auto& t : titles) os << "## " << t[1] << "\n\n" << repro::markdown_table(rs, t[0], cols) << "\n";
  os << figure_note << "\n";
  return os.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ergo reproduce_paper: the simulation study of 'I Predict Therefore I Am'"};
  Config cfg;
  std::string config_file;
  bool quick = false;
  app.add_flag("--quick", quick, "reduced grid for a smoke test (under a minute)");
  app.add_option("--config", config_file, "JSON file with any of the configuration keys");
  auto* o_out = app.add_option("--out", cfg.out, "output folder");
  auto* o_seeds = app.add_option("--seeds", cfg.seeds, "repetitions per setting");
  auto* o_seed = app.add_option("--seed", cfg.seed, "base seed");
  auto* o_threads = app.add_option("--threads", cfg.threads, "threads for Eigen/OpenMP");
  bool no_figures = false;
  app.add_flag("--no-figures", no_figures, "do not render figures (data and scripts are still written)");
  bool verbose = false;
  app.add_flag("--progress", verbose, "show a progress bar for every training run");
  CLI11_PARSE(app, argc, argv);

  try {
    Config file_cfg;
    nlohmann::json file_json = nlohmann::json::object();
    if (!config_file.empty()) {
      std::ifstream f(config_file);
      if (!f) throw_invalid("reproduce_paper config", "--config", "a readable JSON file", config_file);
      try {
        f >> file_json;
      } catch (const nlohmann::json::exception& e) {
        throw_invalid("reproduce_paper config", "--config", "valid JSON", config_file + ": " + e.what());
      }
    }
    // Precedence: defaults < --quick (or "quick": true in the file) < the file < command-line flags.
    const std::string cli_out = cfg.out;
    const int cli_seeds = cfg.seeds, cli_threads = cfg.threads;
    const std::uint64_t cli_seed = cfg.seed;
    cfg = Config{};
    if (quick || (file_json.is_object() && file_json.value("quick", false))) repro::apply_quick(cfg);
    repro::merge_json(cfg, file_json);
    if (o_out->count()) cfg.out = cli_out;
    if (o_seeds->count()) cfg.seeds = cli_seeds;
    if (o_seed->count()) cfg.seed = cli_seed;
    if (o_threads->count()) cfg.threads = cli_threads;
    if (no_figures) cfg.figures = false;
    repro::check(cfg);
    set_num_threads(cfg.threads);
    io::make_directories(cfg.out);

    const auto specs = make_specs(cfg);
    std::cerr << "reproduce_paper: " << specs.size() << " settings × " << cfg.seeds << " seeds → "
              << cfg.out << "/\n";
    Stopwatch clock;
    std::vector<SettingResult> results;
    ProgressBar bar(std::cerr);
    ProgressEvent ev;
    ev.phase = "study";
    ev.total = static_cast<Index>(specs.size()) * cfg.seeds;
    bar.on_begin(ev);
    RunOutput figure_run;
    bool have_figure_run = false;
    ProgressBar run_bar(std::cerr);
    for (size_t si = 0; si < specs.size(); ++si) {
      SettingResult r{specs[si].experiment, specs[si].label, specs[si].params, {}, {}};
      for (int rep = 0; rep < cfg.seeds; ++rep) {
        const std::uint64_t seed = derive_seed(derive_seed(cfg.seed, si), static_cast<std::uint64_t>(rep));
        r.seeds.push_back(seed);
        RunOutput o = run_one(specs[si], cfg, seed, verbose ? &run_bar : nullptr);
        for (const auto& [k, v] : o.metrics) r.add(k, v);
        if (!have_figure_run && specs[si].experiment == "ablation" && rep == 0) {
          figure_run = std::move(o);
          have_figure_run = true;
        }
        ++ev.step;
        ev.elapsed_seconds = clock.seconds();
        ev.items_per_second = static_cast<double>(ev.step) / std::max(1e-9, ev.elapsed_seconds);
        ev.extra = {{"R2clr", r.mean("r2_clr")}, {"probe", r.mean("probe_acc")}};
        bar.on_progress(ev);
      }
      results.push_back(std::move(r));
    }
    bar.on_end(ev, "");
    const double seconds = clock.seconds();

    std::vector<repro::Figure> figs = {repro::exp1_figure(results), repro::exp2_figure(results, cfg.exp2_er)};
    if (have_figure_run) {
      std::ostringstream sc;
      sc.precision(6);
      for (Index s = 0; s < figure_run.scatter.cols(); ++s)
        sc << figure_run.scatter(0, s) << " " << figure_run.scatter(1, s) << " " << figure_run.scatter(2, s) << "\n";
      figs.push_back(repro::scatter_figure(sc.str(), "reference setting (m = 4, n = ℓ), seed 0: held-out"));
      figs.push_back(repro::heatmap_figure(figure_run.map,
                                           "fitted map f_x(x) → log-odds (rows scaled to max |w| = 1)",
                                           "representation coordinate", "concept k"));
    }
    const std::string fig_note = repro::write_figures(cfg.out, figs, cfg.figures);
    io::atomic_write_file(cfg.out + "/results.json", repro::results_json(repro::to_json(cfg), results, seconds));
    io::atomic_write_file(cfg.out + "/results.csv", repro::results_csv(results));
    io::atomic_write_file(cfg.out + "/summary.md", summary_markdown(cfg, results, seconds, fig_note));
    std::cout << summary_markdown(cfg, results, seconds, fig_note);
    std::cerr << fig_note << "\nwrote " << cfg.out << "/results.json, results.csv, summary.md\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "reproduce_paper: " << e.what() << "\n";
    return 1;
  }
}

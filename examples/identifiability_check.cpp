// identifiability_check: is a representation F an invertible affine function of the concepts'
// (transformed) log-posteriors? Prints the IdentifiabilityReport and writes it as JSON (and CSV).
//
// Sources of F and T (--source):
//   train  (default) a concept world (docs/model.md), a next-token model trained on it (ergo::nn);
//          F = f_x(x) on fresh contexts, T = the chosen transform of log p(c|x); baseline: the
//          same architecture untrained, and the one-hot context itself. Also prints Theorem 3.1's
//          quantities for the trained unembedding (ergo::theory): notes on d vs ℓ, the
//          stacked-identity error, the residual.
//   exact  the Bayes-optimal predictor f_x(x) = log p(y|x) (|V| dims) mixed by a random
//          invertible matrix plus noise (--noise); baselines: random features and the one-hot
//          context.
//   files  F and T from .npy files (C-order [N, d] and [N, k]) or .csv files (one sample per
//          line), --features and --targets; optional group ids (--groups, [N] integers).
//
//   identifiability_check [--source train|exact|files] [--concepts 3] [--samples 20000]
//       [--epochs 30] [--target ilr|alr|clr|log_odds|concept_clr|probability]
//       [--permutations 200] [--bootstrap 1000] [--json report.json] [--csv report.csv]
//       [--features F.npy --targets T.npy [--groups G.npy]] [--seed 1] [--threads 1]
#include <ergo/identify.hpp>
#include <ergo/io.hpp>
#include <ergo/model.hpp>
#include <ergo/nn.hpp>
#include <ergo/theory.hpp>

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

ergo::identify::TargetKind parse_target(const std::string& s) {
  static const std::map<std::string, ergo::identify::TargetKind> kinds = {
      {"clr", ergo::identify::TargetKind::Clr},
      {"ilr", ergo::identify::TargetKind::Ilr},
      {"alr", ergo::identify::TargetKind::Alr},
      {"log_odds", ergo::identify::TargetKind::LogOdds},
      {"concept_clr", ergo::identify::TargetKind::ConceptClr},
      {"probability", ergo::identify::TargetKind::Probability}};
  auto it = kinds.find(s);
  if (it == kinds.end())
    ergo::throw_invalid("identifiability_check", "--target",
                        "ilr, alr, clr, log_odds, concept_clr or probability", s);
  return it->second;
}

// The context itself, one-hot per observed variable: (Σ_j card_j) × N. In the paper's worlds
// log p(c|x) = log p(c) + Σ_j log p(x_j|c) − log p(x) is affine in this encoding up to the
// constant log p(x), so centred targets are an exact affine function of the raw input: the
// baseline every representation must beat (a representation that learned nothing beyond its
// input must not pass).
ergo::MatrixXd context_one_hot(const ergo::model::ConceptWorld<double>& world,
                               const ergo::IntMatrix& x) {
  const auto& e = world.x_emission();
  ergo::MatrixXd out = ergo::MatrixXd::Zero(e.total_cardinality(), x.cols());
  for (ergo::Index s = 0; s < x.cols(); ++s)
    for (ergo::Index j = 0; j < e.size(); ++j) out(e.offset(j) + x(j, s), s) = 1.0;
  return out;
}

// A numeric CSV file (one sample per line, comma-separated, an optional non-numeric header
// line) as a matrix with samples as columns: columns × lines.
ergo::MatrixXd read_csv_samples(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ergo::RuntimeError("cannot open " + path);
  std::vector<std::vector<double>> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<double> row;
    std::stringstream ss(line);
    std::string cell;
    bool numeric = true;
    while (std::getline(ss, cell, ',')) {
      char* end = nullptr;
      const double v = std::strtod(cell.c_str(), &end);
      if (end == cell.c_str()) numeric = false;
      row.push_back(v);
    }
    if (!numeric) {
      if (rows.empty()) continue;  // header
      throw ergo::RuntimeError(path + ": non-numeric value on data line " +
                               std::to_string(rows.size() + 1));
    }
    if (!rows.empty() && row.size() != rows[0].size())
      throw ergo::RuntimeError(path + ": line " + std::to_string(rows.size() + 1) + " has " +
                               std::to_string(row.size()) + " values, expected " +
                               std::to_string(rows[0].size()));
    rows.push_back(std::move(row));
  }
  if (rows.empty()) throw ergo::RuntimeError(path + ": no data");
  ergo::MatrixXd m(static_cast<ergo::Index>(rows[0].size()), static_cast<ergo::Index>(rows.size()));
  for (size_t j = 0; j < rows.size(); ++j)
    for (size_t i = 0; i < rows[j].size(); ++i)
      m(static_cast<ergo::Index>(i), static_cast<ergo::Index>(j)) = rows[j][i];
  return m;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

ergo::MatrixXd read_samples(const std::string& path) {
  return ends_with(path, ".csv") ? read_csv_samples(path) : ergo::io::read_npy<double>(path);
}

// T for contexts x: joint transforms use log p(c|x); per-concept ones the stacked marginals.
ergo::MatrixXd make_t(const ergo::model::ConceptWorld<double>& world, const ergo::IntMatrix& x,
                      ergo::identify::TargetKind kind) {
  if (kind == ergo::identify::TargetKind::LogOdds || kind == ergo::identify::TargetKind::ConceptClr)
    return ergo::identify::make_targets(kind, world.log_marginals(x),
                                        world.graph().cardinalities());
  return ergo::identify::make_targets(kind, world.log_posterior(x));
}

/// Command-line options (the statistics' defaults come from IdentifiabilityParams).
struct Options {
  std::string source = "train", target = "ilr", json_path = "identifiability_report.json";
  std::string csv_path, features_path, targets_path, groups_path;
  std::uint64_t seed = 1;
  ergo::Index n_samples = 20000, n_eval = 10000, epochs = 30;
  double noise = 0.05;
  int threads = 1;
  ergo::model::PaperWorldParams wp;
  ergo::identify::IdentifiabilityParams ip;
  Options() { wp.m = 3; }
};

/// F, T, optional groups and the baselines (first: the one-hot context, a reference only).
struct Problem {
  ergo::MatrixXd f, t;
  ergo::identify::Groups groups;
  std::vector<std::pair<std::string, ergo::MatrixXd>> baselines;
};

void add_options(CLI::App& app, Options& o) {
  app.add_option("--source", o.source, "train, exact or files")
      ->check(CLI::IsMember({"train", "exact", "files"}))
      ->capture_default_str();
  app.add_option("--concepts", o.wp.m, "binary concepts m (ℓ = 2^m)")
      ->check(CLI::Range(1, 8))
      ->capture_default_str();
  app.add_option("--eta", o.wp.eta, "bit-flip noise of the observed context bits, (0, 0.5)")
      ->capture_default_str();
  app.add_option("--samples", o.n_samples, "training samples for the next-token model")
      ->capture_default_str();
  app.add_option("--eval-samples", o.n_eval, "fresh contexts on which F and T are compared")
      ->capture_default_str();
  app.add_option("--epochs", o.epochs, "training epochs")->capture_default_str();
  app.add_option("--noise", o.noise, "exact source: noise sd added after the invertible map")
      ->capture_default_str();
  app.add_option("--target", o.target, "target transform of the log-posteriors")
      ->capture_default_str();
  app.add_option("--permutations", o.ip.n_permutations, "permutations of the null (0: off)")
      ->capture_default_str();
  app.add_option("--bootstrap", o.ip.n_bootstrap, "bootstrap replicates (0: off)")
      ->capture_default_str();
  app.add_option("--json", o.json_path, "write the report as JSON here ('' to skip)")
      ->capture_default_str();
  app.add_option("--csv", o.csv_path, "also write the report as key,value CSV here");
  app.add_option("--features", o.features_path, "files source: F as .npy [N, d] or .csv (N lines)");
  app.add_option("--targets", o.targets_path, "files source: T as .npy [N, k] or .csv (N lines)");
  app.add_option("--groups", o.groups_path, "files source: optional group ids, .npy [N] or .csv");
  app.add_option("--seed", o.seed, "random seed")->capture_default_str();
  app.add_option("--threads", o.threads, "threads for Eigen and ergo")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
}

/// --source files: F, T and the groups from files.
Problem load_files(Options& o) {
  if (o.features_path.empty() || o.targets_path.empty())
    ergo::throw_invalid("identifiability_check", "--features/--targets", "both paths", "missing");
  Problem p;
  p.f = read_samples(o.features_path);
  p.t = read_samples(o.targets_path);
  if (!o.groups_path.empty()) {
    if (ends_with(o.groups_path, ".csv")) {
      const ergo::MatrixXd g = read_csv_samples(o.groups_path);
      std::vector<ergo::Index> ids(static_cast<size_t>(g.size()));
      for (ergo::Index i = 0; i < g.size(); ++i)
        ids[static_cast<size_t>(i)] = static_cast<ergo::Index>(g(i));
      p.groups = ids;
    } else {
      p.groups = ergo::io::read_npy_labels(o.groups_path).reshaped().eval();
    }
  }
  o.ip.name = o.features_path;
  o.ip.target_name = o.targets_path;
  return p;
}

/// --source train: a next-token model trained on the world; F = its f_x on `eval`, baseline the
/// untrained network. Prints Theorem 3.1's quantities for the trained unembedding.
void train_source(Options& o, const ergo::model::ConceptWorld<double>& world,
                  const ergo::model::Samples& eval, ergo::Rng& data_rng, Problem& p) {
  ergo::nn::NextTokenParams np;
  np.hidden = {128, 128};
  np.rep_dim = std::max<ergo::Index>(1, world.joint_size() - 1);
  np.seed = ergo::derive_seed(o.seed, 3);
  ergo::nn::NextTokenModel<float> model(world.x_cardinalities(), world.vocab_size(), np);
  ergo::nn::NextTokenParams np0 = np;
  np0.seed = ergo::derive_seed(o.seed, 4);
  const ergo::nn::NextTokenModel<float> untrained(world.x_cardinalities(), world.vocab_size(), np0);
  const ergo::model::Samples train = world.sample(o.n_samples, data_rng);
  const ergo::model::Samples val =
      world.sample(std::max<ergo::Index>(1, o.n_samples / 5), data_rng);
  ergo::nn::TrainerParams tp;
  tp.epochs = o.epochs;
  tp.patience = 5;
  tp.seed = ergo::derive_seed(o.seed, 5);
  ergo::ProgressBar bar(std::cerr);
  ergo::nn::Trainer<float> trainer(tp);
  const auto tr = trainer.fit(model, train.x, train.y, val.x, val.y, &bar);
  std::cout << "next-token model: d = " << model.rep_dim() << ", " << tr.epochs
            << " epochs, test CE " << model.cross_entropy(eval.x, eval.y) << " nats vs Bayes "
            << world.bayes_cross_entropy(eval.x, eval.y) << "\n";
  p.f = model.representations(eval.x).cast<double>();
  p.baselines.emplace_back("untrained", untrained.representations(eval.x).cast<double>());
  o.ip.name = "trained f_x";

  const ergo::theory::IdentifiabilityTheory<double> th(world, model.unembedding());
  const ergo::theory::IdentityCheck chk = th.check(eval.x, p.f);
  const ergo::theory::TheoryPrediction pr = th.predict(eval.x);
  std::cout << "theory: tokens r + 1 = " << th.tokens().size()
            << ", rank L̂ = " << th.l_hat_spectrum().rank
            << ", σ_min(L̂) = " << th.l_hat_spectrum().sigma_min
            << ", rank A = " << th.a_spectrum().rank << "\n"
            << "  stacked identity L̂ᵀf_x = Lᵀλ + Δβ − Δh: rms error " << chk.rms_error
            << " (rhs scale " << chk.rhs_scale << ")\n"
            << "  residual term: mean |pinv(L̂ᵀ)Δh| = " << pr.mean_residual_norm
            << " vs mean |Aλ + b| = " << pr.mean_affine_norm << ", mean ε = " << pr.mean_epsilon
            << "\n";
  for (const auto& note : th.notes()) std::cout << "  note: " << note << "\n";
}

/// --source train or exact: a concept world, T its transformed log-posteriors on fresh contexts.
Problem simulate(Options& o) {
  Problem p;
  const ergo::identify::TargetKind kind = parse_target(o.target);
  ergo::Rng world_rng(ergo::derive_seed(o.seed, 0)), data_rng(ergo::derive_seed(o.seed, 1));
  const auto world = ergo::model::make_paper_world<double>(o.wp, world_rng);
  const ergo::model::Samples eval = world.sample(o.n_eval, data_rng);
  p.t = make_t(world, eval.x, kind);
  p.baselines.emplace_back("context one-hot", context_one_hot(world, eval.x));
  o.ip.target_name = std::string(ergo::identify::to_string(kind)) + "(log p(c|x))";
  std::cout << "world: m = " << o.wp.m << " binary concepts, ℓ = " << world.joint_size() << ", "
            << world.context_size() << " observed bits (η = " << o.wp.eta
            << "), |V| = " << world.vocab_size() << "\n";
  if (o.source == "train") {
    train_source(o, world, eval, data_rng, p);
    return p;
  }
  // exact: F = M · log p(y|x) + noise with M random and well conditioned.
  const ergo::MatrixXd lp = world.log_predictive(eval.x);
  ergo::Rng rng(ergo::derive_seed(o.seed, 2));
  const ergo::MatrixXd m = rng.normal_matrix<double>(lp.rows(), lp.rows()) +
                           2.0 * ergo::MatrixXd::Identity(lp.rows(), lp.rows());
  p.f = m * lp + rng.normal_matrix<double>(lp.rows(), lp.cols(), 0.0, o.noise);
  p.baselines.emplace_back("random", rng.normal_matrix<double>(lp.rows(), lp.cols()));
  o.ip.name = "exact predictor (random invertible mix + noise)";
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ergo identifiability_check: held-out R², CCA, nulls and a verdict for F vs T"};
  Options o;
  add_options(app, o);
  CLI11_PARSE(app, argc, argv);
  try {
    ergo::set_num_threads(o.threads);
    o.ip.seed = ergo::derive_seed(o.seed, 9);
    const Problem p = o.source == "files" ? load_files(o) : simulate(o);
    std::vector<ergo::identify::Baseline> baselines;
    // The one-hot context is a reference point (reported, not used for selectivity): the
    // selectivity compares F with the untrained network / random features.
    for (size_t i = 0; i < p.baselines.size(); ++i)
      baselines.push_back(
          {p.baselines[i].first, p.baselines[i].second, o.source == "files" || i > 0});
    const ergo::identify::IdentifiabilityReport rep =
        ergo::identify::check_identifiability(p.f, p.t, o.ip, p.groups, baselines);
    std::cout << "\n";
    rep.write_summary(std::cout);
    if (!o.json_path.empty()) {
      std::ostringstream js;
      rep.write_json(js);
      ergo::io::atomic_write_file(o.json_path, js.str());
      std::cout << "report written to " << o.json_path << "\n";
    }
    if (!o.csv_path.empty()) {
      std::ostringstream cs;
      rep.write_csv(cs);
      ergo::io::atomic_write_file(o.csv_path, cs.str());
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
}

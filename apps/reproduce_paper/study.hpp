// SPDX-License-Identifier: MIT
#pragma once

// The study of apps/reproduce_paper: its settings, one run (a world, a trained network
// and the five representations compared on the same held-out contexts, every metric), and the
// per-setting aggregation with paired comparisons across seeds. Metric names are documented in
// docs/reproducing-the-paper.md ("results.json").

#include "config.hpp"

#include <ergo/identify.hpp>
#include <ergo/model.hpp>
#include <ergo/nn.hpp>
#include <ergo/theory.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ergo::repro {

/// The five representations, in the order of every table.
inline const std::vector<std::string>& representation_names() {
  static const std::vector<std::string> names = {"trained", "untrained", "random_projection",
                                                 "raw_input", "bayes_optimal"};
  return names;
}

/// One table row a setting appears in (a setting can appear in several tables).
struct Membership {
  std::string table;   ///< "ablation", "noise", "exp1", "exp2"
  std::string label;   ///< row label in that table
  double order = 0.0;  ///< rows of a table are sorted by it (n, η, or the order of definition)
};

/// One setting: a world family, its parameters, the network width and variant, sizes.
struct Setting {
  std::string id;                       ///< unique, file-name safe (resume files)
  std::vector<Membership> memberships;  ///< tables and labels
  model::PaperWorldParams world;               ///< world parameters (η calibrated for exp 2)
  Index rep_dim = 0;                    ///< d of the network
  bool tied = false;                    ///< collapsed, frozen unembedding
  Index train_samples = 0, eval_samples = 0;
  nlohmann::json params;                ///< what defines the setting (written to results.json)
};

inline bool same_run(const Setting& a, const Setting& b) { return a.id == b.id; }

namespace detail {

inline std::string num_id(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

inline Setting make_setting(const model::PaperWorldParams& w, Index d, bool tied, Index n_train,
                            Index n_eval, const std::string& family) {
  Setting s;
  s.world = w;
  s.rep_dim = d;
  s.tied = tied;
  s.train_samples = n_train;
  s.eval_samples = n_eval;
  const Index l = Index(1) << w.m;
  s.id = family + "-m" + std::to_string(w.m) + "-er" + num_id(w.er_k) + "-n" +
         std::to_string(w.informative_size()) + "-eta" + num_id(w.eta) + "-d" + std::to_string(d) +
         (tied ? "-tied" : "");
  s.params = {{"family", family},
              {"m", w.m},
              {"l", l},
              {"er_k", w.er_k},
              {"n", w.informative_size()},
              {"n_nuisance", w.n_nuisance},
              {"eta", w.eta},
              {"tau", w.tau},
              {"context", w.context == model::ContextKind::PermutedOneHot ? "permuted_one_hot"
                                                                   : "boolean_functions"},
              {"token", w.token == model::TokenKind::Table ? "table" : "additive"},
              {"d", d},
              {"vocab", l + 1},
              {"tied_unembedding", tied},
              {"train_samples", n_train},
              {"eval_samples", n_eval}};
  if (w.context == model::ContextKind::BooleanFunctions)
    s.params["parents_per_observation"] = w.parents_per_observation;
  return s;
}

inline void add_setting(std::vector<Setting>& out, Setting s, Membership mem) {
  for (auto& e : out)
    if (same_run(e, s)) {
      e.memberships.push_back(std::move(mem));
      return;
    }
  s.memberships.push_back(std::move(mem));
  out.push_back(std::move(s));
}

}  // namespace detail

/// Nuisance bits of a world family whose reference world has n informative bits:
/// round(nuisance_ratio × n).
inline Index nuisance_bits(const Config& c, Index n) {
  return static_cast<Index>(std::llround(c.nuisance_ratio * static_cast<double>(n)));
}

/// World parameters of the reference family (m binary concepts, permuted one-hot with n = ℓ).
inline model::PaperWorldParams reference_world(const Config& c) {
  ergo::model::PaperWorldParams w;
  w.m = c.m;
  w.er_k = c.er_k;
  w.eta = c.eta;
  w.tau = c.tau;
  const Index l = Index(1) << c.m;
  w.n_observed = l;
  w.n_nuisance = nuisance_bits(c, l);
  w.context = model::ContextKind::PermutedOneHot;
  w.token = model::TokenKind::Table;
  return w;
}

/// World parameters of experiment 2 at m concepts and ER-k (η filled in by calibration).
inline model::PaperWorldParams exp2_world(const Config& c, Index m, double er_k, double eta) {
  ergo::model::PaperWorldParams w;
  w.m = m;
  w.er_k = er_k;
  w.eta = eta;
  w.tau = c.exp2_tau;
  w.context = model::ContextKind::BooleanFunctions;
  w.n_observed = c.exp2_observations_per_concept * m;
  w.parents_per_observation = c.exp2_parents;
  w.n_nuisance = nuisance_bits(c, w.n_observed);
  w.token = model::TokenKind::Additive;
  return w;
}

/// Mean ε over `pilots` exp-2 worlds (ER-2, seeds derived from `seed`) at noise η.
inline double exp2_mean_epsilon(const Config& c, Index m, double eta, std::uint64_t seed,
                                int pilots = 3, Index samples = 2000) {
  double total = 0.0;
  for (int p = 0; p < pilots; ++p) {
    Rng wr(derive_seed(seed, static_cast<std::uint64_t>(p)));
    const auto w = ergo::model::make_paper_world<double>(exp2_world(c, m, 2.0, eta), wr);
    Rng dr(derive_seed(seed, static_cast<std::uint64_t>(1000 + p)));
    const model::Samples s = w.sample(samples, dr);
    total += w.epsilon(s.x, s.y).mean();
  }
  return total / pilots;
}

/// η at which the mean ε of the exp-2 worlds with m concepts is the target (bisection; mean ε
/// increases with η). If the target is below the ε reachable at η → 0, the smallest η is used.
inline double calibrate_exp2_eta(const Config& c, Index m) {
  const std::uint64_t seed = derive_seed(c.seed, 7000 + static_cast<std::uint64_t>(m));
  double lo = 1e-4, hi = 0.45;
  if (exp2_mean_epsilon(c, m, lo, seed) >= c.exp2_target_eps) return lo;
  if (exp2_mean_epsilon(c, m, hi, seed) <= c.exp2_target_eps) return hi;
  for (int it = 0; it < 14; ++it) {
    const double mid = std::sqrt(lo * hi);  // geometric: ε changes fastest at small η
    (exp2_mean_epsilon(c, m, mid, seed) < c.exp2_target_eps ? lo : hi) = mid;
  }
  return std::sqrt(lo * hi);
}

/// Every setting of the configured grid, each once (a setting shared by several tables carries
/// several memberships). `exp2_eta` gives the calibrated η per exp-2 m (calibrate_exp2_eta).
inline std::vector<Setting> make_settings(const Config& c, const std::map<Index, double>& exp2_eta) {
  using detail::make_setting;
  std::vector<Setting> out;
  const model::PaperWorldParams ref = reference_world(c);
  const Index l = Index(1) << c.m;
  const Index nt = c.train_samples, ne = c.eval_samples;
  detail::add_setting(out, make_setting(ref, l, false, nt, ne, "ref"), {"ablation", "reference (d = ℓ)", 0});
  if (c.ablation_wide)
    detail::add_setting(out, make_setting(ref, 2 * l, false, nt, ne, "ref"), {"ablation", "d = 2ℓ", 1});
  if (c.ablation_low_dim)
    detail::add_setting(out, make_setting(ref, std::max<Index>(1, l / 4), false, nt, ne, "ref"),
                        {"ablation", "d = ℓ/4", 2});
  if (c.ablation_tied)
    detail::add_setting(out, make_setting(ref, l, true, nt, ne, "ref"),
                        {"ablation", "collapsed unembedding", 3});
  for (double e : c.noise_eta) {
    ergo::model::PaperWorldParams w = ref;
    w.eta = e;
    detail::add_setting(out, make_setting(w, l, false, nt, ne, "ref"), {"noise", "η = " + detail::num_id(e), e});
  }
  for (Index n : c.exp1_n) {
    ergo::model::PaperWorldParams w = ref;
    w.n_observed = n;
    detail::add_setting(out, make_setting(w, l, false, nt, ne, "ref"), {"exp1", "n = " + std::to_string(n), static_cast<double>(n)});
  }
  for (Index m : c.exp2_m)
    for (double k : c.exp2_er) {
      const Index lm = Index(1) << m;
      const model::PaperWorldParams w = exp2_world(c, m, k, exp2_eta.at(m));
      detail::add_setting(out,
                          make_setting(w, lm, false, c.exp2_samples_per_config * lm,
                                       c.exp2_eval_per_config * lm, "exp2"),
                          {"exp2", "ER" + detail::num_id(k) + " m = " + std::to_string(m),
                           100.0 * static_cast<double>(m) + k});
    }
  return out;
}

// ------------------------------------------------------------------------------ one run ----

/// Everything measured in one run (a setting and a seed): world-level numbers and, per
/// representation, the same metric keys (null where a metric does not apply).
struct RunResult {
  nlohmann::json world = nlohmann::json::object();
  std::map<std::string, nlohmann::json> reps;
};

namespace detail {

inline nlohmann::json num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

inline nlohmann::json vec(const Vector<double>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (Index i = 0; i < v.size(); ++i) a.push_back(num(v[i]));
  return a;
}

/// Normalised predictive gap (CE − CE_Bayes) / (CE_marginal − CE_Bayes): 0 at the Bayes limit,
/// 1 for a predictor that learned nothing about x.
inline double normalised_gap(double ce, double ce_bayes, double ce_marginal) {
  const double learnable = ce_marginal - ce_bayes;
  return learnable > 0.0 ? (ce - ce_bayes) / learnable : std::numeric_limits<double>::quiet_NaN();
}

template <class S>
IntMatrix gather_int(const Eigen::MatrixBase<S>& m, const IndexVector& idx) {
  IntMatrix out(m.rows(), idx.size());
  for (Index i = 0; i < idx.size(); ++i) out.col(i) = m.col(idx[i]);
  return out;
}

inline IntRowVector gather_row(const IntRowVector& v, const IndexVector& idx) {
  IntRowVector out(idx.size());
  for (Index i = 0; i < idx.size(); ++i) out[i] = v[idx[i]];
  return out;
}

/// Mean cross-entropy of tokens y under log-probabilities lp (|V| × N).
inline double cross_entropy_of(const Matrix<double>& lp, const IntRowVector& y) {
  double s = 0.0;
  for (Index i = 0; i < y.size(); ++i) s -= lp(y[i], i);
  return s / static_cast<double>(y.size());
}

}  // namespace detail

/// Per-run inputs that do not depend on the setting (sizes of the statistics, switches).
struct RunOptions {
  int permutations = 199;
  double max_p_value = 0.01;
  Index null_max_vocab = 64;
  Index readout_max_vocab = 64;
  double probe_c = 1.0;
  double test_fraction = 0.25;
  std::vector<Index> hidden = {128, 128};
  Index epochs = 10, batch = 256, patience = 3;
  double lr = 2e-3;

  /// Every field, as results.hpp's resume fingerprint records them.
  nlohmann::json to_json() const {
    return {{"permutations", permutations}, {"max_p_value", max_p_value},
            {"null_max_vocab", null_max_vocab}, {"readout_max_vocab", readout_max_vocab},
            {"probe_c", probe_c}, {"test_fraction", test_fraction}, {"hidden", hidden},
            {"epochs", epochs}, {"batch", batch}, {"patience", patience}, {"lr", lr}};
  }

  static RunOptions from(const Config& c) {
    RunOptions o;
    o.permutations = c.permutations;
    o.max_p_value = c.max_p_value;
    o.null_max_vocab = c.null_max_vocab;
    o.readout_max_vocab = c.readout_max_vocab;
    o.probe_c = c.probe_c;
    o.test_fraction = c.test_fraction;
    o.hidden = c.hidden;
    o.epochs = c.epochs;
    o.batch = c.batch;
    o.patience = c.patience;
    o.lr = c.lr;
    return o;
  }
};

/// One run: builds the world of `s` from `seed`, trains the network, builds the five
/// representations of fresh evaluation contexts, splits those contexts into fitting and scoring
/// parts grouped by distinct informative context, and measures everything on the scoring part.
inline RunResult run_one(const Setting& s, const RunOptions& o, std::uint64_t seed, Callback* cb = nullptr) {
  using detail::num;
  Stopwatch clock;

  RunResult out;
  Rng world_rng(derive_seed(seed, 0)), data_rng(derive_seed(seed, 1));
  const auto world = ergo::model::make_paper_world<double>(s.world, world_rng);
  const Index l = world.joint_size(), m = world.concept_count(), vocab = world.vocab_size();
  const Index n_inf = s.world.informative_size();
  const model::Samples train = world.sample(s.train_samples, data_rng);
  const model::Samples eval = world.sample(s.eval_samples, data_rng);

  // ---- the next-token network; `untrained` is the same network at its initialisation
  nn::NextTokenParams np;
  np.hidden = o.hidden;
  np.rep_dim = s.rep_dim;
  np.activation = nn::Activation::LeakyRelu;
  np.negative_slope = 0.2;
  np.seed = derive_seed(seed, 2);
  np.freeze_fy = s.tied;
  nn::NextTokenModel<float> model(world.x_cardinalities(), vocab, np);
  if (s.tied) {
    // Every token shares one of two vectors: rank(L̂) = 1, so diversity fails for any ℓ > 1;
    // f_y stays frozen during training.
    auto& w = model.fy().weight();
    for (Index j = 0; j < w.cols(); ++j) w.col(j) = w.col(j % 2);
  }
  const nn::NextTokenModel<float> untrained_model = model;
  const Index n_val = std::max<Index>(1, s.train_samples / 10), n_fit = s.train_samples - n_val;
  nn::TrainerParams tp;
  tp.epochs = o.epochs;
  tp.batch_size = o.batch;
  tp.seed = derive_seed(seed, 3);
  tp.adam.lr = o.lr;
  tp.decay = nn::Decay::Cosine;
  tp.min_lr_ratio = 0.05;
  tp.patience = o.patience;
  tp.progress_every = 0;
  nn::Trainer<float> trainer(tp);
  const nn::TrainResult tr = trainer.fit(model, train.x.leftCols(n_fit), train.y.leftCols(n_fit),
                                         train.x.rightCols(n_val), train.y.rightCols(n_val), cb);

  // ---- the five representations of the evaluation contexts
  const identify::Groups groups = ergo::identify::distinct_column_groups(eval.x.topRows(n_inf));
  const Matrix<double> onehot = world.one_hot<double>(eval.x);
  Rng proj_rng(derive_seed(seed, 5));
  const Matrix<double> projection =
      proj_rng.normal_matrix<double>(s.rep_dim, onehot.rows(), 0.0,
                                     1.0 / std::sqrt(static_cast<double>(onehot.rows())));
  std::map<std::string, Matrix<double>> rep;
  rep["trained"] = model.representations(eval.x).cast<double>();
  rep["untrained"] = untrained_model.representations(eval.x).cast<double>();
  rep["random_projection"] = projection * onehot;
  rep["raw_input"] = onehot;
  rep["bayes_optimal"] = ergo::theory::bayes_representation(world, eval.x);
  // Heads (unembeddings) of the representations that are next-token predictors.
  std::map<std::string, Matrix<double>> head;
  head["trained"] = model.fy().weight().cast<double>();
  head["untrained"] = untrained_model.fy().weight().cast<double>();
  head["bayes_optimal"] = ergo::theory::bayes_unembedding(vocab);

  // ---- targets
  const Matrix<double>& target_bayes = rep.at("bayes_optimal");
  const Matrix<double> target_clr = ergo::identify::ilr(world.log_posterior(eval.x));
  const Matrix<double> target_odds = world.log_odds(eval.x);

  ergo::identify::IdentifiabilityParams ip;
  ip.test_fraction = o.test_fraction;
  ip.n_bootstrap = 0;
  ip.mcc = false;
  ip.reverse = false;
  ip.seed = derive_seed(seed, 4);  // same seed and groups: the same split for every fit
  ip.thresholds.max_p_value = o.max_p_value;
  // The Gram path of CCA runs on GEMMs; column-pivoted QR (the default below 20 000 samples) is
  // level-2 and ~10× slower at the ℓ = 256 of experiment 2. Same estimator.
  ip.cca.method = identify::CcaMethod::Gram;
  const bool run_null = o.permutations > 0 && vocab <= o.null_max_vocab;
  ergo::identify::IdentifiabilityParams ip_null = ip;
  ip_null.n_permutations = run_null ? o.permutations : 0;
  ip.n_permutations = 0;

  std::map<std::string, ergo::identify::IdentifiabilityReport> rb, rc, ro;
  for (const auto& name : representation_names()) {
    ip_null.name = ip.name = name;
    rb[name] = ergo::identify::check_identifiability(rep.at(name), target_bayes, ip_null, groups);
    rc[name] = check_identifiability(rep.at(name), target_clr, ip, groups);
    ro[name] = check_identifiability(rep.at(name), target_odds, ip, groups);
  }
  const identify::Split split = rb.at("trained").split;

  // ---- world-level numbers on the scoring contexts
  const IntMatrix x_te = detail::gather_int(eval.x, split.test);
  const IntMatrix c_te = detail::gather_int(eval.c, split.test);
  const IntMatrix c_tr = detail::gather_int(eval.c, split.train);
  const IntRowVector y_te = detail::gather_row(eval.y, split.test);
  const IntRowVector y_tr = detail::gather_row(eval.y, split.train);
  const double ce_bayes = world.bayes_cross_entropy(x_te, y_te);
  const double ce_marg = world.marginal_cross_entropy(y_te);
  Vector<double> bayes_acc(m), maj_acc(m);
  {
    // Majority: the class a probe without features learns, i.e. the more frequent value on the
    // fitting contexts (the grouped split can make the scoring part's mix of contexts uneven).
    const Matrix<double> lmarg = world.log_marginals(x_te);
    for (Index k = 0; k < m; ++k) {
      const Index off = world.marginal_offset(k);
      const int maj = 2 * c_tr.row(k).cast<double>().sum() > static_cast<double>(c_tr.cols()) ? 1 : 0;
      double hit = 0, hit_maj = 0;
      for (Index i = 0; i < x_te.cols(); ++i) {
        const int map = lmarg(off + 1, i) > lmarg(off, i) ? 1 : 0;
        hit += map == c_te(k, i);
        hit_maj += maj == c_te(k, i);
      }
      bayes_acc[k] = hit / static_cast<double>(x_te.cols());
      maj_acc[k] = hit_maj / static_cast<double>(x_te.cols());
    }
  }
  auto& W = out.world;
  W["l"] = l;
  W["vocab"] = vocab;
  W["d"] = s.rep_dim;
  W["n_informative"] = n_inf;
  W["n_nuisance"] = s.world.n_nuisance;
  W["input_width"] = onehot.rows();
  W["edges"] = static_cast<Index>(world.graph().edges().size());
  W["eta"] = s.world.eta;
  W["n_eval"] = eval.size();
  W["n_distinct_contexts"] = rb.at("trained").n_groups;
  W["n_distinct_train"] = rb.at("trained").n_train_groups;
  W["n_distinct_test"] = rb.at("trained").n_test_groups;
  W["n_fit"] = split.train.size();
  W["n_test"] = split.test.size();
  W["ce_bayes"] = num(ce_bayes);
  W["ce_marginal"] = num(ce_marg);
  W["learnable_nats"] = num(ce_marg - ce_bayes);
  W["eps_mean"] = num(world.epsilon(x_te, y_te).mean());
  W["bayes_acc"] = num(bayes_acc.mean());
  W["majority_acc"] = num(maj_acc.mean());
  W["bayes_acc_c"] = detail::vec(bayes_acc);
  W["majority_acc_c"] = detail::vec(maj_acc);
  W["train_ok"] = tr.ok();
  W["train_message"] = tr.message;
  W["train_epochs"] = tr.epochs;
  W["train_seconds"] = num(tr.seconds);
  W["val_ce"] = num(tr.val_loss);
  W["null_permutations"] = run_null ? o.permutations : 0;

  // ---- per representation
  for (const auto& name : representation_names()) {
    const Matrix<double>& F = rep.at(name);
    const Matrix<double> f_tr = ergo::identify::gather_columns(F, split.train), f_te = ergo::identify::gather_columns(F, split.test);
    nlohmann::json R = nlohmann::json::object();
    R["dim"] = F.rows();
    // (a) the Bayes representation: held-out R² and canonical correlations, padded to |V| − 1
    // directions (a representation that misses a direction has canonical correlation 0 there).
    const identify::IdentifiabilityReport& b = rb.at(name);
    R["r2_bayes"] = num(b.forward.test.variance_weighted);
    Vector<double> rho = Vector<double>::Zero(target_bayes.rows());
    const Vector<double>& got = b.cca.test.rho;
    std::vector<double> sorted(got.data(), got.data() + got.size());
    std::sort(sorted.begin(), sorted.end(), std::greater<double>());
    for (size_t i = 0; i < sorted.size() && static_cast<Index>(i) < rho.size(); ++i)
      rho[static_cast<Index>(i)] = sorted[i];
    R["cca_bayes_min"] = num(rho.minCoeff());
    R["cca_bayes_mean"] = num(rho.mean());
    R["cca_bayes_spectrum"] = detail::vec(rho);
    R["p_r2_bayes"] = num(b.null_r2.p_value);
    R["p_rho_min_vs_null_rho_1"] = num(b.null_rho_min_vs_max.p_value);
    R["null_rho_1_p95"] = num(b.null_rho_min_vs_max.p95);
    // the targets that need no learning (clr: exactly affine in the input) and the concepts
    R["r2_clr"] = num(rc.at(name).forward.test.variance_weighted);
    R["r2_logodds"] = num(ro.at(name).forward.test.variance_weighted);
    // predictive gap of the representation's own head, and of a fitted linear softmax readout
    double gap_own = std::numeric_limits<double>::quiet_NaN();
    if (name == "trained")
      gap_own = detail::normalised_gap(model.cross_entropy(x_te, y_te), ce_bayes, ce_marg);
    else if (name == "untrained")
      gap_own = detail::normalised_gap(untrained_model.cross_entropy(x_te, y_te), ce_bayes, ce_marg);
    else if (name == "bayes_optimal")
      gap_own = detail::normalised_gap(
          detail::cross_entropy_of(log_softmax_cols((head.at(name).transpose() * f_te).eval()), y_te),
          ce_bayes, ce_marg);
    R["gap_own"] = num(gap_own);
    double gap_readout = std::numeric_limits<double>::quiet_NaN();
    if (vocab <= o.readout_max_vocab) {
      ergo::identify::LogisticParams lp;
      lp.c = o.probe_c;
      lp.standardize = true;
      lp.tolerance = 1e-5;  // the CE it is scored by is stable to ~1e-5 nats long before 1e-6
      ergo::identify::LogisticRegression readout(lp);
      readout.fit(f_tr, y_tr, vocab);
      gap_readout = detail::normalised_gap(readout.log_loss(f_te, y_te), ce_bayes, ce_marg);
    }
    R["gap_readout"] = num(gap_readout);
    // (c) linear probes of every concept (standardised features), beside Bayes and majority
    Vector<double> acc(m), acc_norm(m);
    Index converged = 0;
    for (Index k = 0; k < m; ++k) {
      ergo::identify::LogisticParams lp;
      lp.c = o.probe_c;
      lp.standardize = true;
      lp.tolerance = 1e-5;  // accuracy does not move below this
      ergo::identify::LogisticRegression probe(lp);
      if (probe.fit(f_tr, c_tr.row(k), 2).ok()) ++converged;
      acc[k] = probe.accuracy(f_te, c_te.row(k));
      const double room = bayes_acc[k] - maj_acc[k];
      acc_norm[k] = room > 0.01 ? (acc[k] - maj_acc[k]) / room : std::numeric_limits<double>::quiet_NaN();
    }
    const double room = bayes_acc.sum() - maj_acc.sum();
    R["probe_acc"] = num(acc.mean());
    R["probe_acc_norm"] =
        num(room > 0.01 * static_cast<double>(m) ? (acc.sum() - maj_acc.sum()) / room
                                                 : std::numeric_limits<double>::quiet_NaN());
    R["probe_acc_c"] = detail::vec(acc);
    R["probe_acc_norm_c"] = detail::vec(acc_norm);
    R["probe_fit_ok"] = static_cast<double>(converged) / static_cast<double>(m);
    // (b) the theorem, parameter-free, for the representations with their own head
    const char* theory_keys[] = {"theory_r2_linear", "theory_r2_exact", "theory_residual_share",
                                 "theory_logit_r2_linear", "theory_logit_r2_exact",
                                 "theory_logit_residual_share", "a_rank", "a_condition",
                                 "lhat_rank", "lhat_condition"};
    for (const char* k : theory_keys) R[k] = nullptr;
    if (head.count(name)) {
      const theory::IdentifiabilityTheory<double> th(world, head.at(name));
      const theory::TheoremFit t = th.assess(x_te, f_te);
      R["theory_r2_linear"] = num(t.r2_linear);
      R["theory_r2_exact"] = num(t.r2_exact);
      R["theory_residual_share"] = num(t.residual_share);
      R["theory_logit_r2_linear"] = num(t.logit_r2_linear);
      R["theory_logit_r2_exact"] = num(t.logit_r2_exact);
      R["theory_logit_residual_share"] = num(t.logit_residual_share);
      R["a_rank"] = th.a_identified_spectrum().rank;
      R["a_condition"] = num(th.a_identified_spectrum().condition);
      R["lhat_rank"] = th.l_hat_spectrum().rank;
      R["lhat_condition"] = num(th.l_hat_spectrum().condition);
    }
    out.reps[name] = std::move(R);
  }
  W["run_seconds"] = clock.seconds();
  return out;
}

// ----------------------------------------------------------------------- aggregation ----

/// A setting measured over several seeds, with its per-seed runs and summaries.
struct SettingResult {
  Setting setting;
  std::vector<std::uint64_t> seeds;
  std::vector<RunResult> runs;
  nlohmann::json comparisons = nlohmann::json::object();
  double wall_seconds = 0;  ///< time the setting took when it was computed
  bool reused = false;      ///< loaded by --resume instead of computed in this invocation
};

/// Per-seed values of a scalar metric of one representation ("world" for world-level ones);
/// null values become NaN.
inline std::vector<double> values(const SettingResult& r, const std::string& rep, const std::string& key) {
  std::vector<double> v;
  for (const auto& run : r.runs) {
    const nlohmann::json& j = rep == "world" ? run.world : run.reps.at(rep);
    v.push_back(j.contains(key) && j.at(key).is_number() ? j.at(key).get<double>()
                                                         : std::numeric_limits<double>::quiet_NaN());
  }
  return v;
}

/// Mean and sample standard deviation of the finite values (NaN if none; std 0 for one value),
/// and how many were finite.
struct MeanStd {
  double mean = std::numeric_limits<double>::quiet_NaN(), sd = std::numeric_limits<double>::quiet_NaN();
  Index n = 0;
};

inline MeanStd mean_std(const std::vector<double>& v) {
  MeanStd r;
  double s = 0.0;
  for (double x : v)
    if (std::isfinite(x)) {
      s += x;
      ++r.n;
    }
  if (r.n == 0) return r;
  r.mean = s / static_cast<double>(r.n);
  double ss = 0.0;
  for (double x : v)
    if (std::isfinite(x)) ss += (x - r.mean) * (x - r.mean);
  r.sd = r.n > 1 ? std::sqrt(ss / static_cast<double>(r.n - 1)) : 0.0;
  return r;
}

/// The metrics paired comparisons are made on (higher is better for all but gaps).
inline const std::vector<std::string>& compared_metrics() {
  static const std::vector<std::string> k = {"r2_bayes", "cca_bayes_mean", "cca_bayes_min",
                                             "gap_readout", "probe_acc_norm", "r2_logodds",
                                             "r2_clr"};
  return k;
}

/// Paired comparisons trained − untrained and trained − random_projection across the seeds.
inline nlohmann::json paired_comparisons(const SettingResult& r, std::uint64_t seed, int n_bootstrap) {
  nlohmann::json out = nlohmann::json::object();
  for (const char* other : {"untrained", "random_projection", "raw_input"}) {
    nlohmann::json c = nlohmann::json::object();
    for (const auto& key : compared_metrics()) {
      Rng rng(derive_seed(seed, std::hash<std::string>{}(std::string(other) + key) & 0xffffffff));
      const identify::PairedComparison pc =
          ergo::identify::compare_paired(values(r, "trained", key), values(r, other, key), rng, n_bootstrap);
      c[key] = {{"n", pc.n},
                {"mean", detail::num(pc.mean)},
                {"sd", detail::num(pc.sd)},
                {"t_lo", detail::num(pc.t_lo)},
                {"t_hi", detail::num(pc.t_hi)},
                {"boot_lo", detail::num(pc.boot_lo)},
                {"boot_hi", detail::num(pc.boot_hi)},
                {"positive", pc.positive},
                {"negative", pc.negative},
                {"ties", pc.ties},
                {"p_sign", detail::num(pc.p_sign)}};
    }
    out[std::string("trained_vs_") + other] = std::move(c);
  }
  return out;
}

/// Experiment 2's "holds across graphs": for every m, TOST equivalence of the trained network's
/// normalised probe accuracy between each pair of ER-k settings.
inline nlohmann::json exp2_equivalence(const std::vector<SettingResult>& rs, double margin, double alpha) {
  nlohmann::json out = nlohmann::json::array();
  std::vector<const SettingResult*> e2;
  for (const auto& r : rs)
    if (r.setting.params.at("family") == "exp2") e2.push_back(&r);
  for (size_t i = 0; i < e2.size(); ++i)
    for (size_t j = i + 1; j < e2.size(); ++j) {
      const auto& a = *e2[i];
      const auto& b = *e2[j];
      if (a.setting.world.m != b.setting.world.m) continue;
      const identify::EquivalenceTest t = ergo::identify::equivalence_test(values(a, "trained", "probe_acc_norm"),
                                                 values(b, "trained", "probe_acc_norm"), margin, alpha);
      out.push_back({{"m", a.setting.world.m},
                     {"a", "ER" + detail::num_id(a.setting.world.er_k)},
                     {"b", "ER" + detail::num_id(b.setting.world.er_k)},
                     {"metric", "trained.probe_acc_norm"},
                     {"n_a", t.n_a},
                     {"n_b", t.n_b},
                     {"mean_a", detail::num(t.mean_a)},
                     {"mean_b", detail::num(t.mean_b)},
                     {"difference", detail::num(t.difference)},
                     {"ci_lo", detail::num(t.ci_lo)},
                     {"ci_hi", detail::num(t.ci_hi)},
                     {"ci_level", 1.0 - 2.0 * alpha},
                     {"margin", margin},
                     {"p_value", detail::num(t.p_value)},
                     {"evaluated", t.evaluated},
                     {"equivalent", t.equivalent}});
    }
  return out;
}

}  // namespace ergo::repro

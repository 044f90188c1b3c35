// SPDX-License-Identifier: MIT
#pragma once

// One run of apps/reproduce_paper (a setting and a seed): a world, a trained network and the
// five representations compared on the same held-out contexts, every metric. Metric names are
// documented in docs/reproducing-the-paper.md ("results.json").

#include "settings.hpp"

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

// ------------------------------------------------------------------------------ one run ----

/// Everything measured in one run (a setting and a seed): world-level numbers and, per
/// representation, the same metric keys (null where a metric does not apply).
struct RunResult {
  nlohmann::json world = nlohmann::json::object();
  std::map<std::string, nlohmann::json> reps;
};

namespace detail {

inline nlohmann::json num(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

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
    return {{"permutations", permutations},
            {"max_p_value", max_p_value},
            {"null_max_vocab", null_max_vocab},
            {"readout_max_vocab", readout_max_vocab},
            {"probe_c", probe_c},
            {"test_fraction", test_fraction},
            {"hidden", hidden},
            {"epochs", epochs},
            {"batch", batch},
            {"patience", patience},
            {"lr", lr}};
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

/// The next-token network trained on `train`, the same network at its initialisation, and the
/// training outcome.
struct Networks {
  nn::NextTokenModel<float> trained;
  nn::NextTokenModel<float> untrained;
  nn::TrainResult result;
};

/// Builds the network of setting `s` (seeded by `seed`) and trains it, 10 % of `train` held out
/// for early stopping.
inline Networks train_network(const Setting& s, const RunOptions& o,
                              const model::ConceptWorld<double>& world, const model::Samples& train,
                              std::uint64_t seed, Callback* cb) {
  nn::NextTokenParams np;
  np.hidden = o.hidden;
  np.rep_dim = s.rep_dim;
  np.activation = nn::Activation::LeakyRelu;
  np.negative_slope = 0.2;
  np.seed = derive_seed(seed, 2);
  np.freeze_fy = s.tied;
  nn::NextTokenModel<float> model(world.x_cardinalities(), world.vocab_size(), np);
  if (s.tied) {
    // Every token shares one of two vectors: rank(L̂) = 1, so diversity fails for any ℓ > 1;
    // f_y stays frozen during training.
    auto& w = model.fy().weight();
    for (Index j = 0; j < w.cols(); ++j) w.col(j) = w.col(j % 2);
  }
  const nn::NextTokenModel<float> untrained = model;
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
  nn::TrainResult tr = trainer.fit(model, train.x.leftCols(n_fit), train.y.leftCols(n_fit),
                                   train.x.rightCols(n_val), train.y.rightCols(n_val), cb);
  return {std::move(model), untrained, std::move(tr)};
}

/// The evaluation contexts of one run with everything the metrics need: the five
/// representations, the heads of those that predict tokens, the targets, the reports against
/// each target (one grouped split shared by all), and the scoring part's contexts.
struct Evaluation {
  std::map<std::string, Matrix<double>> rep;   ///< name → dim × N
  std::map<std::string, Matrix<double>> head;  ///< name → dim × |V| unembedding
  identify::Groups groups;                     ///< distinct informative contexts
  Index input_width = 0;                       ///< rows of the one-hot input
  /// Reports against the Bayes representation (with the null), ilr(log p(c|x)), the log-odds.
  std::map<std::string, identify::IdentifiabilityReport> bayes, clr, odds;
  identify::Split split;       ///< fit / score samples
  IntMatrix x_te, c_te, c_tr;  ///< scoring contexts, their concepts; fitting concepts
  IntRowVector y_te, y_tr;     ///< next tokens on each part
  bool null_run = false;       ///< the permutation null was computed
};

/// Representations, heads and targets of `eval`, and the three reports of every representation.
inline Evaluation evaluate_representations(const Setting& s, const RunOptions& o,
                                           const model::ConceptWorld<double>& world,
                                           const model::Samples& eval, const Networks& net,
                                           std::uint64_t seed) {
  Evaluation e;
  e.groups = identify::distinct_column_groups(eval.x.topRows(s.world.informative_size()));
  const Matrix<double> onehot = world.one_hot<double>(eval.x);
  e.input_width = onehot.rows();
  Rng proj_rng(derive_seed(seed, 5));
  const Matrix<double> projection = proj_rng.normal_matrix<double>(
      s.rep_dim, onehot.rows(), 0.0, 1.0 / std::sqrt(static_cast<double>(onehot.rows())));
  e.rep["trained"] = net.trained.representations(eval.x).cast<double>();
  e.rep["untrained"] = net.untrained.representations(eval.x).cast<double>();
  e.rep["random_projection"] = projection * onehot;
  e.rep["raw_input"] = onehot;
  e.rep["bayes_optimal"] = theory::bayes_representation(world, eval.x);
  e.head["trained"] = net.trained.fy().weight().cast<double>();
  e.head["untrained"] = net.untrained.fy().weight().cast<double>();
  e.head["bayes_optimal"] = theory::bayes_unembedding(world.vocab_size());

  const Matrix<double>& target_bayes = e.rep.at("bayes_optimal");
  const Matrix<double> target_clr = identify::ilr(world.log_posterior(eval.x));
  const Matrix<double> target_odds = world.log_odds(eval.x);
  identify::IdentifiabilityParams ip;
  ip.test_fraction = o.test_fraction;
  ip.n_bootstrap = 0;
  ip.mcc = false;
  ip.reverse = false;
  ip.seed = derive_seed(seed, 4);  // same seed and groups: the same split for every fit
  ip.thresholds.max_p_value = o.max_p_value;
  // The Gram path of CCA runs on GEMMs; column-pivoted QR (the default below 20 000 samples) is
  // level-2 and ~10× slower at the ℓ = 256 of experiment 2. Same estimator.
  ip.cca.method = identify::CcaMethod::Gram;
  e.null_run = o.permutations > 0 && world.vocab_size() <= o.null_max_vocab;
  identify::IdentifiabilityParams ip_null = ip;
  ip_null.n_permutations = e.null_run ? o.permutations : 0;
  ip.n_permutations = 0;
  for (const auto& name : representation_names()) {
    ip_null.name = ip.name = name;
    e.bayes[name] =
        identify::check_identifiability(e.rep.at(name), target_bayes, ip_null, e.groups);
    e.clr[name] = identify::check_identifiability(e.rep.at(name), target_clr, ip, e.groups);
    e.odds[name] = identify::check_identifiability(e.rep.at(name), target_odds, ip, e.groups);
  }
  e.split = e.bayes.at("trained").split;
  e.x_te = detail::gather_int(eval.x, e.split.test);
  e.c_te = detail::gather_int(eval.c, e.split.test);
  e.c_tr = detail::gather_int(eval.c, e.split.train);
  e.y_te = detail::gather_row(eval.y, e.split.test);
  e.y_tr = detail::gather_row(eval.y, e.split.train);
  return e;
}

/// Per-concept Bayes (MAP) accuracy and majority-class accuracy on the scoring contexts.
/// Majority: the class a probe without features learns, i.e. the more frequent value on the
/// fitting contexts (the grouped split can make the scoring part's mix of contexts uneven).
inline void concept_ceilings(const model::ConceptWorld<double>& world, const Evaluation& e,
                             Vector<double>& bayes_acc, Vector<double>& maj_acc) {
  const Index m = world.concept_count();
  bayes_acc.resize(m);
  maj_acc.resize(m);
  const Matrix<double> lmarg = world.log_marginals(e.x_te);
  for (Index k = 0; k < m; ++k) {
    const Index off = world.marginal_offset(k);
    const int maj =
        2 * e.c_tr.row(k).cast<double>().sum() > static_cast<double>(e.c_tr.cols()) ? 1 : 0;
    double hit = 0, hit_maj = 0;
    for (Index i = 0; i < e.x_te.cols(); ++i) {
      const int map = lmarg(off + 1, i) > lmarg(off, i) ? 1 : 0;
      hit += map == e.c_te(k, i);
      hit_maj += maj == e.c_te(k, i);
    }
    bayes_acc[k] = hit / static_cast<double>(e.x_te.cols());
    maj_acc[k] = hit_maj / static_cast<double>(e.x_te.cols());
  }
}

/// Cross-entropies of the scoring contexts and the per-concept accuracy ceilings.
struct Ceilings {
  double ce_bayes = 0, ce_marginal = 0;
  Vector<double> bayes_acc, maj_acc;  ///< per concept
};

/// World-level numbers of the run (results.json "world"; documented key by key in
/// docs/reproducing-the-paper.md).
inline nlohmann::json world_numbers(const Setting& s, const RunOptions& o,
                                    const model::ConceptWorld<double>& world,
                                    const model::Samples& eval, const Evaluation& e,
                                    const Ceilings& ceil, const nn::TrainResult& tr) {
  using detail::num;
  const identify::IdentifiabilityReport& b = e.bayes.at("trained");
  nlohmann::json W = nlohmann::json::object();
  W["l"] = world.joint_size();
  W["vocab"] = world.vocab_size();
  W["d"] = s.rep_dim;
  W["n_informative"] = s.world.informative_size();
  W["n_nuisance"] = s.world.n_nuisance;
  W["input_width"] = e.input_width;
  W["edges"] = static_cast<Index>(world.graph().edges().size());
  W["eta"] = s.world.eta;
  W["n_eval"] = eval.size();
  W["n_distinct_contexts"] = b.n_groups;
  W["n_distinct_train"] = b.n_train_groups;
  W["n_distinct_test"] = b.n_test_groups;
  W["n_fit"] = e.split.train.size();
  W["n_test"] = e.split.test.size();
  W["ce_bayes"] = num(ceil.ce_bayes);
  W["ce_marginal"] = num(ceil.ce_marginal);
  W["learnable_nats"] = num(ceil.ce_marginal - ceil.ce_bayes);
  W["eps_mean"] = num(world.epsilon(e.x_te, e.y_te).mean());
  W["bayes_acc"] = num(ceil.bayes_acc.mean());
  W["majority_acc"] = num(ceil.maj_acc.mean());
  W["bayes_acc_c"] = detail::vec(ceil.bayes_acc);
  W["majority_acc_c"] = detail::vec(ceil.maj_acc);
  W["train_ok"] = tr.ok();
  W["train_message"] = tr.message;
  W["train_epochs"] = tr.epochs;
  W["train_seconds"] = num(tr.seconds);
  W["val_ce"] = num(tr.val_loss);
  W["null_permutations"] = e.null_run ? o.permutations : 0;
  return W;
}

/// (a) Against the Bayes representation: held-out R², the canonical correlations padded to
/// |V| − 1 directions (a representation that misses a direction has correlation 0 there), and
/// the null; the targets that need no learning (clr) and the concepts' log-odds.
inline void score_fits(const std::string& name, const Evaluation& e, nlohmann::json& R) {
  using detail::num;
  const identify::IdentifiabilityReport& b = e.bayes.at(name);
  R["r2_bayes"] = num(b.forward.test.variance_weighted);
  Vector<double> rho = Vector<double>::Zero(e.rep.at("bayes_optimal").rows());
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
  R["r2_clr"] = num(e.clr.at(name).forward.test.variance_weighted);
  R["r2_logodds"] = num(e.odds.at(name).forward.test.variance_weighted);
}

/// Predictive gap of the representation's own head (trained, untrained, Bayes), and of a fitted
/// linear softmax readout where |V| ≤ readout_max_vocab.
inline void score_gaps(const std::string& name, const RunOptions& o, const Evaluation& e,
                       const Networks& net, const Ceilings& ceil, const Matrix<double>& f_tr,
                       const Matrix<double>& f_te, Index vocab, nlohmann::json& R) {
  using detail::normalised_gap;
  double gap_own = std::numeric_limits<double>::quiet_NaN();
  if (name == "trained")
    gap_own =
        normalised_gap(net.trained.cross_entropy(e.x_te, e.y_te), ceil.ce_bayes, ceil.ce_marginal);
  else if (name == "untrained")
    gap_own = normalised_gap(net.untrained.cross_entropy(e.x_te, e.y_te), ceil.ce_bayes,
                             ceil.ce_marginal);
  else if (name == "bayes_optimal")
    gap_own =
        normalised_gap(detail::cross_entropy_of(
                           log_softmax_cols((e.head.at(name).transpose() * f_te).eval()), e.y_te),
                       ceil.ce_bayes, ceil.ce_marginal);
  R["gap_own"] = detail::num(gap_own);
  double gap_readout = std::numeric_limits<double>::quiet_NaN();
  if (vocab <= o.readout_max_vocab) {
    identify::LogisticParams lp;
    lp.c = o.probe_c;
    lp.standardize = true;
    lp.tolerance = 1e-5;  // the CE it is scored by is stable to ~1e-5 nats long before 1e-6
    identify::LogisticRegression readout(lp);
    readout.fit(f_tr, e.y_tr, vocab);
    gap_readout = normalised_gap(readout.log_loss(f_te, e.y_te), ceil.ce_bayes, ceil.ce_marginal);
  }
  R["gap_readout"] = detail::num(gap_readout);
}

/// (c) Linear probes of every concept on standardised features, beside Bayes and majority.
inline void score_probes(const RunOptions& o, const Evaluation& e, const Ceilings& ceil,
                         const Matrix<double>& f_tr, const Matrix<double>& f_te,
                         nlohmann::json& R) {
  using detail::num;
  const Index m = ceil.bayes_acc.size();
  Vector<double> acc(m), acc_norm(m);
  Index converged = 0;
  for (Index k = 0; k < m; ++k) {
    identify::LogisticParams lp;
    lp.c = o.probe_c;
    lp.standardize = true;
    lp.tolerance = 1e-5;  // accuracy does not move below this
    identify::LogisticRegression probe(lp);
    if (probe.fit(f_tr, e.c_tr.row(k), 2).ok()) ++converged;
    acc[k] = probe.accuracy(f_te, e.c_te.row(k));
    const double room = ceil.bayes_acc[k] - ceil.maj_acc[k];
    acc_norm[k] =
        room > 0.01 ? (acc[k] - ceil.maj_acc[k]) / room : std::numeric_limits<double>::quiet_NaN();
  }
  const double room = ceil.bayes_acc.sum() - ceil.maj_acc.sum();
  R["probe_acc"] = num(acc.mean());
  R["probe_acc_norm"] =
      num(room > 0.01 * static_cast<double>(m) ? (acc.sum() - ceil.maj_acc.sum()) / room
                                               : std::numeric_limits<double>::quiet_NaN());
  R["probe_acc_c"] = detail::vec(acc);
  R["probe_acc_norm_c"] = detail::vec(acc_norm);
  R["probe_fit_ok"] = static_cast<double>(converged) / static_cast<double>(m);
}

/// (b) The theorem, parameter-free, for the representations with their own head (null for the
/// others).
inline void score_theory(const std::string& name, const model::ConceptWorld<double>& world,
                         const Evaluation& e, const Matrix<double>& f_te, nlohmann::json& R) {
  using detail::num;
  const char* theory_keys[] = {"theory_r2_linear",
                               "theory_r2_exact",
                               "theory_residual_share",
                               "theory_logit_r2_linear",
                               "theory_logit_r2_exact",
                               "theory_logit_residual_share",
                               "a_rank",
                               "a_condition",
                               "lhat_rank",
                               "lhat_condition"};
  for (const char* k : theory_keys) R[k] = nullptr;
  if (!e.head.count(name)) return;
  const theory::IdentifiabilityTheory<double> th(world, e.head.at(name));
  const theory::TheoremFit t = th.assess(e.x_te, f_te);
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

/// One run: builds the world of `s` from `seed`, trains the network, builds the five
/// representations of fresh evaluation contexts, splits those contexts into fitting and scoring
/// parts grouped by distinct informative context, and measures everything on the scoring part.
inline RunResult run_one(const Setting& s, const RunOptions& o, std::uint64_t seed,
                         Callback* cb = nullptr) {
  Stopwatch clock;
  Rng world_rng(derive_seed(seed, 0)), data_rng(derive_seed(seed, 1));
  const auto world = model::make_paper_world<double>(s.world, world_rng);
  const model::Samples train = world.sample(s.train_samples, data_rng);
  const model::Samples eval = world.sample(s.eval_samples, data_rng);
  const Networks net = train_network(s, o, world, train, seed, cb);
  const Evaluation e = evaluate_representations(s, o, world, eval, net, seed);
  Ceilings ceil;
  ceil.ce_bayes = world.bayes_cross_entropy(e.x_te, e.y_te);
  ceil.ce_marginal = world.marginal_cross_entropy(e.y_te);
  concept_ceilings(world, e, ceil.bayes_acc, ceil.maj_acc);

  RunResult out;
  out.world = world_numbers(s, o, world, eval, e, ceil, net.result);
  for (const auto& name : representation_names()) {
    const Matrix<double>& F = e.rep.at(name);
    const Matrix<double> f_tr = identify::gather_columns(F, e.split.train);
    const Matrix<double> f_te = identify::gather_columns(F, e.split.test);
    nlohmann::json R = nlohmann::json::object();
    R["dim"] = F.rows();
    score_fits(name, e, R);
    score_gaps(name, o, e, net, ceil, f_tr, f_te, world.vocab_size(), R);
    score_probes(o, e, ceil, f_tr, f_te, R);
    score_theory(name, world, e, f_te, R);
    out.reps[name] = std::move(R);
  }
  out.world["run_seconds"] = clock.seconds();
  return out;
}

}  // namespace ergo::repro

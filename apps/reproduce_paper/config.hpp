// SPDX-License-Identifier: MIT
#pragma once

// Configuration of apps/reproduce_paper: defaults, the --quick grid, loading from a JSON
// file (unknown keys, values of the wrong type and out-of-range values are refused, naming the
// key), and its JSON form (written into results.json so that a run can be repeated exactly).
// Every key is documented in docs/reproducing-the-paper.md.

#include <ergo/core.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace ergo::repro {

/// Everything the study varies or fixes. Defaults are the full grid (about 10 minutes on 2 cores).
struct Config {
  // ---- run
  std::uint64_t seed =
      2026;         ///< base seed; repetition r of every setting uses derive_seed(seed, r)
  int seeds = 10;   ///< repetitions per setting (world, data and networks reseeded)
  int threads = 2;  ///< repetitions run in parallel, one thread each
  std::string out = "results";  ///< output folder
  bool quick = false;           ///< reduced grid (the CI smoke test, seconds)
  bool figures = true;          ///< render figures with gnuplot when it is installed
  bool resume = false;          ///< reuse settings already finished in `out` with the same inputs
  // ---- the reference world family (experiment 1, the noise sweep, the ablations)
  Index m = 4;                  ///< binary concepts (ℓ = 2^m configurations)
  double er_k = 1.0;            ///< ER-k graph of the concepts
  double eta = 0.05;            ///< bit-flip noise of the permuted one-hot context
  double tau = 1.0;             ///< temperature of the random next-token logit table
  double nuisance_ratio = 2.0;  ///< nuisance bits = ratio × the family's informative bits n_ref
  Index train_samples = 60000;  ///< training triples (10 % of them for early stopping)
  Index eval_samples = 10000;   ///< fresh contexts every statistic is computed on
  double test_fraction = 0.25;  ///< share of the evaluation contexts (whole groups) held out
  // ---- network and training
  std::vector<Index> hidden = {128, 128};  ///< hidden widths of f_x
  Index epochs = 10;                       ///< maximum epochs (cosine decay over them)
  Index batch = 256;                       ///< mini-batch size
  double lr = 2e-3;                        ///< Adam learning rate (cosine decay to 5 %)
  Index patience = 3;                      ///< early-stopping patience in epochs
  // ---- experiment 1: observed (informative) bits n of the permuted one-hot
  std::vector<Index> exp1_n = {6, 8, 10, 12, 16};
  // ---- the theorem against ε: noise sweep at n = ℓ
  std::vector<double> noise_eta = {0.001, 0.01, 0.05, 0.15, 0.3};
  // ---- ablations of the reference setting (d = ℓ)
  bool ablation_wide = true;     ///< d = 2ℓ
  bool ablation_low_dim = true;  ///< d = ℓ/4 < ℓ: diversity cannot hold
  bool ablation_tied = true;     ///< unembedding collapsed to two frozen vectors (rank L̂ = 1)
  // ---- experiment 2: graph structure and scale (Boolean-function observations)
  std::vector<Index> exp2_m = {7, 8};
  std::vector<double> exp2_er = {1.0, 2.0, 3.0};
  Index exp2_observations_per_concept = 3;  ///< informative observations n = this × m
  Index exp2_parents = 2;                   ///< concepts each observation depends on
  double exp2_target_eps = 0.15;            ///< mean ε the noise η is calibrated to, per m
  double exp2_tau = 1.0;                    ///< temperature of the concept-additive token logits
  Index exp2_samples_per_config = 300;      ///< training triples = this × ℓ
  Index exp2_eval_per_config = 20;          ///< evaluation contexts = this × ℓ
  // ---- statistics
  int permutations = 199;            ///< permutation-null draws (0: off)
  double max_p_value = 0.01;         ///< p-value threshold of the permutation criteria
  Index null_max_vocab = 64;         ///< run the permutation null only where |V| ≤ this
  Index readout_max_vocab = 64;      ///< fit the linear softmax readout only where |V| ≤ this
  double probe_c = 1.0;              ///< inverse L2 strength of the (standardised) logistic probes
  int bootstrap = 10000;             ///< bootstrap resamples of the paired comparisons across seeds
  double equivalence_margin = 0.05;  ///< exp 2: ± margin on normalised probe accuracy
  double alpha = 0.05;               ///< level of each one-sided equivalence test
};

/// Calls v(key, field) for every field, in the order of results.json.
template <class C, class V>
void visit_fields(C& c, V&& v) {
  v("seed", c.seed);
  v("seeds", c.seeds);
  v("threads", c.threads);
  v("out", c.out);
  v("quick", c.quick);
  v("figures", c.figures);
  v("resume", c.resume);
  v("m", c.m);
  v("er_k", c.er_k);
  v("eta", c.eta);
  v("tau", c.tau);
  v("nuisance_ratio", c.nuisance_ratio);
  v("train_samples", c.train_samples);
  v("eval_samples", c.eval_samples);
  v("test_fraction", c.test_fraction);
  v("hidden", c.hidden);
  v("epochs", c.epochs);
  v("batch", c.batch);
  v("lr", c.lr);
  v("patience", c.patience);
  v("exp1_n", c.exp1_n);
  v("noise_eta", c.noise_eta);
  v("ablation_wide", c.ablation_wide);
  v("ablation_low_dim", c.ablation_low_dim);
  v("ablation_tied", c.ablation_tied);
  v("exp2_m", c.exp2_m);
  v("exp2_er", c.exp2_er);
  v("exp2_observations_per_concept", c.exp2_observations_per_concept);
  v("exp2_parents", c.exp2_parents);
  v("exp2_target_eps", c.exp2_target_eps);
  v("exp2_tau", c.exp2_tau);
  v("exp2_samples_per_config", c.exp2_samples_per_config);
  v("exp2_eval_per_config", c.exp2_eval_per_config);
  v("permutations", c.permutations);
  v("max_p_value", c.max_p_value);
  v("null_max_vocab", c.null_max_vocab);
  v("readout_max_vocab", c.readout_max_vocab);
  v("probe_c", c.probe_c);
  v("bootstrap", c.bootstrap);
  v("equivalence_margin", c.equivalence_margin);
  v("alpha", c.alpha);
}

/// The reduced grid of --quick: two seeds, small samples and networks, one setting per table.
inline void apply_quick(Config& c) {
  c.quick = true;
  c.seeds = 2;
  c.train_samples = 4000;
  c.eval_samples = 1600;
  c.hidden = {32, 32};
  c.epochs = 4;
  c.exp1_n = {8, 16};
  c.noise_eta = {0.01, 0.05};
  c.ablation_wide = false;
  c.exp2_m = {5};
  c.exp2_er = {1.0, 2.0};
  c.exp2_samples_per_config = 100;
  c.exp2_eval_per_config = 50;
  c.permutations = 39;
  c.max_p_value = 0.05;
  c.bootstrap = 1000;
}

namespace detail {

template <class T>
void check_in(const std::string& key, const T& v, const T& lo, const T& hi) {
  if (!(v >= lo && v <= hi))
    throw_invalid("reproduce_paper config", key,
                  ergo::detail::str_cat("a value in [", lo, ", ", hi, "]"), v);
}

}  // namespace detail

/// Validates every field; throws InvalidArgument naming the key, the range and the value.
inline void check(const Config& c) {
  using detail::check_in;
  const char* who = "reproduce_paper config";
  check_in<int>("seeds", c.seeds, 1, 1000);
  check_in<int>("threads", c.threads, 1, 256);
  check_arg(!c.out.empty(), who, "out", "a folder name", "\"\"");
  check_in<Index>("m", c.m, 2, 10);
  check_in<double>("er_k", c.er_k, 0.0, 100.0);
  check_arg(c.eta >= 0 && c.eta < 0.5, who, "eta", "a value in [0, 0.5)", c.eta);
  check_arg(c.tau > 0 && std::isfinite(c.tau), who, "tau", "a positive value", c.tau);
  check_in<double>("nuisance_ratio", c.nuisance_ratio, 0.0, 100.0);
  check_in<Index>("train_samples", c.train_samples, 100, 100000000);
  check_in<Index>("eval_samples", c.eval_samples, 100, 10000000);
  check_arg(c.test_fraction > 0 && c.test_fraction < 1, who, "test_fraction", "a value in (0, 1)",
            c.test_fraction);
  check_arg(!c.hidden.empty(), who, "hidden", "at least one width", "[]");
  for (Index w : c.hidden) check_in<Index>("hidden[]", w, 1, 8192);
  check_in<Index>("epochs", c.epochs, 1, 10000);
  check_in<Index>("batch", c.batch, 1, 1 << 20);
  check_arg(c.lr > 0 && c.lr <= 1, who, "lr", "a value in (0, 1]", c.lr);
  check_in<Index>("patience", c.patience, 1, 10000);
  const Index l = Index(1) << c.m;
  for (Index n : c.exp1_n) check_in<Index>("exp1_n[]", n, 1, l);
  for (double e : c.noise_eta)
    check_arg(e >= 0 && e < 0.5, who, "noise_eta[]", "values in [0, 0.5)", e);
  for (Index m : c.exp2_m) check_in<Index>("exp2_m[]", m, 2, 10);
  for (double k : c.exp2_er) check_in<double>("exp2_er[]", k, 0.0, 100.0);
  check_in<Index>("exp2_observations_per_concept", c.exp2_observations_per_concept, 1, 100);
  for (Index m : c.exp2_m) check_in<Index>("exp2_parents", c.exp2_parents, 1, m);
  check_arg(c.exp2_target_eps > 0 && c.exp2_target_eps < 1, who, "exp2_target_eps",
            "a value in (0, 1)", c.exp2_target_eps);
  check_arg(c.exp2_tau > 0 && std::isfinite(c.exp2_tau), who, "exp2_tau", "a positive value",
            c.exp2_tau);
  check_in<Index>("exp2_samples_per_config", c.exp2_samples_per_config, 1, 100000);
  check_in<Index>("exp2_eval_per_config", c.exp2_eval_per_config, 1, 100000);
  check_in<int>("permutations", c.permutations, 0, 100000);
  check_arg(c.max_p_value > 0 && c.max_p_value < 1, who, "max_p_value", "a value in (0, 1)",
            c.max_p_value);
  if (c.permutations > 0)
    check_arg(1.0 / (c.permutations + 1.0) < c.max_p_value, who, "permutations",
              ergo::detail::str_cat(
                  "at least ", static_cast<int>(std::ceil(1.0 / c.max_p_value)),
                  " so that the smallest p-value 1/(B+1) is below max_p_value = ", c.max_p_value),
              c.permutations);
  check_in<Index>("null_max_vocab", c.null_max_vocab, 0, 1 << 20);
  check_in<Index>("readout_max_vocab", c.readout_max_vocab, 0, 1 << 20);
  check_arg(c.probe_c > 0 && std::isfinite(c.probe_c), who, "probe_c", "a positive value",
            c.probe_c);
  check_in<int>("bootstrap", c.bootstrap, 0, 10000000);
  check_arg(c.equivalence_margin > 0 && std::isfinite(c.equivalence_margin), who,
            "equivalence_margin", "a positive value", c.equivalence_margin);
  check_arg(c.alpha > 0 && c.alpha < 0.5, who, "alpha", "a value in (0, 0.5)", c.alpha);
}

/// JSON form of a configuration (every field).
inline nlohmann::json to_json(const Config& c) {
  nlohmann::json j = nlohmann::json::object();
  visit_fields(c, [&](const char* key, const auto& field) { j[key] = field; });
  return j;
}

/// Overwrites the fields present in `j` (a JSON object). Unknown keys and values of the wrong
/// type are refused with InvalidArgument naming the key. Call check() afterwards.
inline void merge_json(Config& c, const nlohmann::json& j) {
  const char* who = "reproduce_paper config";
  if (!j.is_object()) throw_invalid(who, "file", "a JSON object", j.type_name());
  const nlohmann::json known = to_json(c);
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!known.contains(it.key())) {
      std::string keys;
      for (auto k = known.begin(); k != known.end(); ++k)
        keys += (keys.empty() ? "" : ", ") + k.key();
      throw_invalid(who, it.key(), "one of the known keys (" + keys + ")", "an unknown key");
    }
  }
  visit_fields(c, [&](const char* key, auto& field) {
    if (!j.contains(key)) return;
    const nlohmann::json& v = j.at(key);
    // nlohmann converts between number kinds and from booleans silently; refuse what would
    // change meaning (a string for a number, a fraction for an integer, a number for a list).
    const nlohmann::json& ref = known.at(key);
    bool ok =
        (ref.is_number() && v.is_number() && !(ref.is_number_integer() && v.is_number_float())) ||
        (ref.is_boolean() && v.is_boolean()) || (ref.is_string() && v.is_string()) ||
        (ref.is_array() && v.is_array());
    if (ok) {
      try {
        v.get_to(field);
      } catch (const nlohmann::json::exception&) {
        ok = false;
      }
    }
    if (!ok)
      throw_invalid(who, key, ergo::detail::str_cat("a value of the same type as ", ref.dump()),
                    v.dump());
  });
}

/// Reads a JSON config file into `c` (see merge_json); errors name the file.
inline void load_json_file(Config& c, const std::string& path) {
  std::ifstream f(path);
  if (!f) throw_invalid("reproduce_paper config", "--config", "a readable JSON file", path);
  nlohmann::json j;
  try {
    f >> j;
  } catch (const nlohmann::json::exception& e) {
    throw_invalid("reproduce_paper config", "--config", "valid JSON", path + ": " + e.what());
  }
  merge_json(c, j);
}

}  // namespace ergo::repro

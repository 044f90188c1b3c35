// SPDX-License-Identifier: MIT
#pragma once

// Configuration of examples/reproduce_paper.cpp: defaults, the --quick grid, loading from a JSON
// file (unknown keys and out-of-range values are refused, naming the key), and its JSON form
// (written into results.json so that a run can be repeated exactly).

#include <ergo/core.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <set>
#include <string>
#include <vector>

namespace ergo::repro {

/// Everything the study varies or fixes. Defaults are the full grid (under 15 minutes on 2 cores).
struct Config {
  // ---- run
  std::uint64_t seed = 2026;    ///< base seed; setting s, repetition r uses derive_seed chains
  int seeds = 3;                ///< repetitions per setting (world, data and network reseeded)
  int threads = 2;              ///< Eigen/OpenMP threads
  std::string out = "results";  ///< output folder
  bool quick = false;           ///< reduced grid (CI smoke test, < 1 minute)
  bool figures = true;          ///< render figures with gnuplot when it is installed
  // ---- data
  Index train_samples = 20000;  ///< training triples per setting
  Index test_samples = 5000;    ///< held-out triples per setting (all metrics are on these)
  double eta = 0.05;            ///< bit-flip noise of the observations (default for exp1/exp2)
  double tau = 1.0;             ///< temperature of the next-token logits
  // ---- network and training
  std::vector<Index> hidden = {256, 256};  ///< hidden widths of f_x
  Index epochs = 40;                       ///< maximum epochs (early stopping on validation loss)
  Index batch = 256;                       ///< mini-batch size
  double lr = 2e-3;                        ///< Adam learning rate (cosine decay to 5%)
  Index patience = 5;                      ///< early-stopping patience in epochs
  // ---- experiment 1: invertibility (number of observed bits n)
  Index exp1_m = 4;
  double exp1_er = 1.0;
  std::vector<Index> exp1_n = {2, 4, 8, 12, 16};
  // ---- experiment 2: graph structure and scale
  std::vector<Index> exp2_m = {3, 4, 5, 6};
  std::vector<double> exp2_er = {1.0, 2.0, 3.0};
  // ---- ablations (on the exp1 world with n = ℓ)
  bool ablation_low_dim = true;    ///< d = (ℓ − 1) / 4 < ℓ − 1: diversity violated
  bool ablation_tied = true;       ///< all unembedding rows tied to two values
  bool ablation_untrained = true;  ///< random-init network, no training
  std::vector<double> noise_eta = {0.01, 0.15, 0.3};  ///< noise sweep (ε from small to large)
  // ---- statistics
  int permutations = 99;  ///< permutation-null draws per setting and seed
};

/// The reduced grid of --quick: two seeds, small samples, few epochs, a thin sweep.
inline void apply_quick(Config& c) {
  c.quick = true;
  c.seeds = 2;
  c.train_samples = 4000;
  c.test_samples = 1000;
  c.epochs = 8;
  c.hidden = {64, 64};
  c.exp1_n = {4, 16};
  c.exp2_m = {3, 4};
  c.exp2_er = {1.0, 2.0};
  c.noise_eta = {0.3};
  c.permutations = 19;
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
  check_in<int>("seeds", c.seeds, 1, 100);
  check_in<int>("threads", c.threads, 1, 256);
  check_arg(!c.out.empty(), "reproduce_paper config", "out", "a folder name", "\"\"");
  check_in<Index>("train_samples", c.train_samples, 100, 10000000);
  check_in<Index>("test_samples", c.test_samples, 50, 10000000);
  check_arg(c.eta >= 0 && c.eta < 0.5, "reproduce_paper config", "eta", "a value in [0, 0.5)",
            c.eta);
  check_arg(c.tau > 0 && std::isfinite(c.tau), "reproduce_paper config", "tau", "a positive value",
            c.tau);
  check_arg(!c.hidden.empty(), "reproduce_paper config", "hidden", "at least one width", "[]");
  for (Index w : c.hidden) check_in<Index>("hidden[]", w, 1, 8192);
  check_in<Index>("epochs", c.epochs, 1, 10000);
  check_in<Index>("batch", c.batch, 1, 1 << 20);
  check_arg(c.lr > 0 && c.lr <= 1, "reproduce_paper config", "lr", "a value in (0, 1]", c.lr);
  check_in<Index>("patience", c.patience, 1, 10000);
  check_in<Index>("exp1_m", c.exp1_m, 1, 12);
  check_in<double>("exp1_er", c.exp1_er, 0.0, 100.0);
  const Index l1 = Index(1) << c.exp1_m;
  for (Index n : c.exp1_n) check_in<Index>("exp1_n[]", n, 1, l1);
  for (Index m : c.exp2_m) check_in<Index>("exp2_m[]", m, 1, 12);
  for (double k : c.exp2_er) check_in<double>("exp2_er[]", k, 0.0, 100.0);
  for (double e : c.noise_eta)
    check_arg(e >= 0 && e < 0.5, "reproduce_paper config", "noise_eta[]", "values in [0, 0.5)", e);
  check_in<int>("permutations", c.permutations, 0, 100000);
}

/// JSON form of a configuration (every field).
inline nlohmann::json to_json(const Config& c) {
  return nlohmann::json{{"seed", c.seed},
                        {"seeds", c.seeds},
                        {"threads", c.threads},
                        {"out", c.out},
                        {"quick", c.quick},
                        {"figures", c.figures},
                        {"train_samples", c.train_samples},
                        {"test_samples", c.test_samples},
                        {"eta", c.eta},
                        {"tau", c.tau},
                        {"hidden", c.hidden},
                        {"epochs", c.epochs},
                        {"batch", c.batch},
                        {"lr", c.lr},
                        {"patience", c.patience},
                        {"exp1_m", c.exp1_m},
                        {"exp1_er", c.exp1_er},
                        {"exp1_n", c.exp1_n},
                        {"exp2_m", c.exp2_m},
                        {"exp2_er", c.exp2_er},
                        {"ablation_low_dim", c.ablation_low_dim},
                        {"ablation_tied", c.ablation_tied},
                        {"ablation_untrained", c.ablation_untrained},
                        {"noise_eta", c.noise_eta},
                        {"permutations", c.permutations}};
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
  auto get = [&](const char* key, auto& field) {
    if (!j.contains(key)) return;
    try {
      j.at(key).get_to(field);
    } catch (const nlohmann::json::exception&) {
      throw_invalid(who, key,
                    ergo::detail::str_cat("a value of the same type as ", known.at(key).dump()),
                    j.at(key).dump());
    }
  };
  get("seed", c.seed);
  get("seeds", c.seeds);
  get("threads", c.threads);
  get("out", c.out);
  get("quick", c.quick);
  get("figures", c.figures);
  get("train_samples", c.train_samples);
  get("test_samples", c.test_samples);
  get("eta", c.eta);
  get("tau", c.tau);
  get("hidden", c.hidden);
  get("epochs", c.epochs);
  get("batch", c.batch);
  get("lr", c.lr);
  get("patience", c.patience);
  get("exp1_m", c.exp1_m);
  get("exp1_er", c.exp1_er);
  get("exp1_n", c.exp1_n);
  get("exp2_m", c.exp2_m);
  get("exp2_er", c.exp2_er);
  get("ablation_low_dim", c.ablation_low_dim);
  get("ablation_tied", c.ablation_tied);
  get("ablation_untrained", c.ablation_untrained);
  get("noise_eta", c.noise_eta);
  get("permutations", c.permutations);
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

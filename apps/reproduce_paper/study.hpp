// SPDX-License-Identifier: MIT
#pragma once

// The study of apps/reproduce_paper: a setting measured over several seeds, summaries, and the
// paired comparisons across seeds (settings.hpp holds the grid, run.hpp one run). Metric names
// are documented in docs/reproducing-the-paper.md ("results.json").

#include "run.hpp"

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
inline std::vector<double> values(const SettingResult& r, const std::string& rep,
                                  const std::string& key) {
  std::vector<double> v;
  for (const auto& run : r.runs) {
    const nlohmann::json& j = rep == "world" ? run.world : run.reps.at(rep);
    v.push_back(j.contains(key) && j.at(key).is_number()
                    ? j.at(key).get<double>()
                    : std::numeric_limits<double>::quiet_NaN());
  }
  return v;
}

using identify::mean_std;
using identify::MeanStd;

/// The metrics paired comparisons are made on (higher is better for all but gaps).
inline const std::vector<std::string>& compared_metrics() {
  static const std::vector<std::string> k = {"r2_bayes",    "cca_bayes_mean", "cca_bayes_min",
                                             "gap_readout", "probe_acc_norm", "r2_logodds",
                                             "r2_clr"};
  return k;
}

/// Paired comparisons trained − untrained and trained − random_projection across the seeds.
inline nlohmann::json paired_comparisons(const SettingResult& r, std::uint64_t seed,
                                         int n_bootstrap) {
  nlohmann::json out = nlohmann::json::object();
  for (const char* other : {"untrained", "random_projection", "raw_input"}) {
    nlohmann::json c = nlohmann::json::object();
    for (const auto& key : compared_metrics()) {
      Rng rng(derive_seed(seed, std::hash<std::string>{}(std::string(other) + key) & 0xffffffff));
      const identify::PairedComparison pc = ergo::identify::compare_paired(
          values(r, "trained", key), values(r, other, key), rng, n_bootstrap);
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
inline nlohmann::json exp2_equivalence(const std::vector<SettingResult>& rs, double margin,
                                       double alpha) {
  nlohmann::json out = nlohmann::json::array();
  std::vector<const SettingResult*> e2;
  for (const auto& r : rs)
    if (r.setting.params.at("family") == "exp2") e2.push_back(&r);
  for (size_t i = 0; i < e2.size(); ++i)
    for (size_t j = i + 1; j < e2.size(); ++j) {
      const auto& a = *e2[i];
      const auto& b = *e2[j];
      if (a.setting.world.m != b.setting.world.m) continue;
      const identify::EquivalenceTest t =
          ergo::identify::equivalence_test(values(a, "trained", "probe_acc_norm"),
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

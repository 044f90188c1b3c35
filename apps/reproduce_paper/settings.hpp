// SPDX-License-Identifier: MIT
#pragma once

// The settings of apps/reproduce_paper: the world families (reference, experiment 2 with its
// calibrated noise), and the grid of settings every table draws its rows from.

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
  model::PaperWorldParams world;        ///< world parameters (η calibrated for exp 2)
  Index rep_dim = 0;                    ///< d of the network
  bool tied = false;                    ///< collapsed, frozen unembedding
  Index train_samples = 0, eval_samples = 0;
  nlohmann::json params;  ///< what defines the setting (written to results.json)
};

inline bool same_run(const Setting& a, const Setting& b) {
  return a.id == b.id;
}

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
inline std::vector<Setting> make_settings(const Config& c,
                                          const std::map<Index, double>& exp2_eta) {
  using detail::make_setting;
  std::vector<Setting> out;
  const model::PaperWorldParams ref = reference_world(c);
  const Index l = Index(1) << c.m;
  const Index nt = c.train_samples, ne = c.eval_samples;
  detail::add_setting(out, make_setting(ref, l, false, nt, ne, "ref"),
                      {"ablation", "reference (d = ℓ)", 0});
  if (c.ablation_wide)
    detail::add_setting(out, make_setting(ref, 2 * l, false, nt, ne, "ref"),
                        {"ablation", "d = 2ℓ", 1});
  if (c.ablation_low_dim)
    detail::add_setting(out, make_setting(ref, std::max<Index>(1, l / 4), false, nt, ne, "ref"),
                        {"ablation", "d = ℓ/4", 2});
  if (c.ablation_tied)
    detail::add_setting(out, make_setting(ref, l, true, nt, ne, "ref"),
                        {"ablation", "collapsed unembedding", 3});
  for (double e : c.noise_eta) {
    ergo::model::PaperWorldParams w = ref;
    w.eta = e;
    detail::add_setting(out, make_setting(w, l, false, nt, ne, "ref"),
                        {"noise", "η = " + detail::num_id(e), e});
  }
  for (Index n : c.exp1_n) {
    ergo::model::PaperWorldParams w = ref;
    w.n_observed = n;
    detail::add_setting(out, make_setting(w, l, false, nt, ne, "ref"),
                        {"exp1", "n = " + std::to_string(n), static_cast<double>(n)});
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

}  // namespace ergo::repro

// SPDX-License-Identifier: MIT
#pragma once

// The results of part (b) of sae_concepts: summaries over seeds (mean ± std), paired differences
// between codes (paired by seed, per world and pooled over worlds: mean, t and bootstrap
// intervals, exact sign test; identify::compare_paired), and their JSON, CSV and Markdown forms.

#include "study.hpp"

#include <ergo/identify/comparison.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace ergo::saestudy {

/// Everything part (b) produced.
struct StudyResult {
  StudyConfig config;
  std::vector<RunResult> runs;
  double wall_seconds = 0;
};

using identify::mean_std;
using identify::MeanStd;

/// Names of the per-seed aggregates usable in comparisons besides the codes themselves.
inline const char* kBestStandard = "best standard SAE";
inline const char* kBestDense = "best dense baseline";

/// Per-seed values of a statistic of a code (or of an aggregate) in one world ("" = all worlds,
/// world after world, seeds in order). The aggregates take, per seed, the maximum over the
/// standard SAEs or over the dense baselines (PCA, random, untrained) — the best in hindsight.
inline std::vector<double> seed_values(const StudyResult& r, const std::string& world,
                                       const std::string& code, bool raw = false) {
  std::vector<double> out;
  for (const RunResult& run : r.runs) {
    if (!world.empty() && run.world != world) continue;
    double v = std::nan("");
    for (size_t i = 0; i < run.codes.size(); ++i) {
      const CodeScore& cs = run.codes[i];
      const CodeSpec& spec = r.config.codes[i];
      const double x = raw ? cs.align_raw : cs.align_exp;
      const bool member = code == cs.name ||
                          (code == kBestStandard && spec.role == "standard SAE") ||
                          (code == kBestDense && spec.role == "dense baseline");
      if (member) v = std::isnan(v) ? x : std::max(v, x);
    }
    out.push_back(v);
  }
  return out;
}

/// The comparisons A − B reported (paired by seed).
inline std::vector<std::pair<std::string, std::string>> comparison_pairs() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* a : {"structured", "structured_hK"})
    for (const char* b : {kBestStandard, "topk", "batchtopk", "relu_l1", "jumprelu", "p_anneal",
                          kBestDense, "pca", "random", "untrained", "unmixer"})
      out.emplace_back(a, b);
  for (const char* b : {kBestStandard, kBestDense, "pca", "random", "untrained"})
    out.emplace_back("unmixer", b);
  return out;
}

inline nlohmann::json jnum(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

inline nlohmann::json comparison_json(const std::string& a, const std::string& b,
                                      const identify::PairedComparison& c) {
  return {{"a", a},
          {"b", b},
          {"n", c.n},
          {"mean", jnum(c.mean)},
          {"sd", jnum(c.sd)},
          {"t_lo", jnum(c.t_lo)},
          {"t_hi", jnum(c.t_hi)},
          {"boot_lo", jnum(c.boot_lo)},
          {"boot_hi", jnum(c.boot_hi)},
          {"positive", c.positive},
          {"negative", c.negative},
          {"p_sign", jnum(c.p_sign)}};
}

/// Paired comparisons of the exp(z) (or z) alignment in one world ("" = pooled over worlds).
inline std::vector<std::pair<std::pair<std::string, std::string>, identify::PairedComparison>>
compare(const StudyResult& r, const std::string& world, bool raw = false) {
  std::vector<std::pair<std::pair<std::string, std::string>, identify::PairedComparison>> out;
  Rng rng(derive_seed(7, world.size() + (raw ? 100 : 0)));
  for (const auto& ab : comparison_pairs())
    out.emplace_back(ab, identify::compare_paired(seed_values(r, world, ab.first, raw),
                                                  seed_values(r, world, ab.second, raw), rng,
                                                  r.config.bootstrap));
  return out;
}

inline nlohmann::json run_json(const RunResult& run) {
  nlohmann::json codes = nlohmann::json::array();
  for (const CodeScore& cs : run.codes)
    codes.push_back({{"name", cs.name},
                     {"width", cs.width},
                     {"dense_width", cs.dense_width},
                     {"knob", cs.knob},
                     {"l0_code", jnum(cs.l0_code)},
                     {"l0_sparse", jnum(cs.l0_sparse)},
                     {"fvu", jnum(cs.fvu)},
                     {"align_exp", jnum(cs.align_exp)},
                     {"align_raw", jnum(cs.align_raw)},
                     {"per_concept_exp", cs.per_concept_exp},
                     {"null_p95", jnum(cs.null_p95)},
                     {"null_p99", jnum(cs.null_p99)},
                     {"null_p_value", jnum(cs.null_p_value)},
                     {"seconds", cs.seconds},
                     {"status", cs.status}});
  return {{"world", run.world},
          {"seed", run.seed},
          {"concepts", run.concepts},
          {"rep_dim", run.rep_dim},
          {"width", run.width},
          {"ntp_steps", run.ntp_steps},
          {"ntp_loss", run.ntp_loss},
          {"bayes_loss", run.bayes_loss},
          {"probe", run.probe},
          {"probe_per_concept", run.probe_per_concept},
          {"codes", codes}};
}

inline nlohmann::json study_json(const StudyResult& r) {
  nlohmann::json j;
  j["config"] = to_json(r.config);
  j["wall_seconds"] = r.wall_seconds;
  j["runs"] = nlohmann::json::array();
  for (const RunResult& run : r.runs) j["runs"].push_back(run_json(run));
  nlohmann::json summary = nlohmann::json::object(), comps = nlohmann::json::object();
  std::vector<std::string> worlds;
  for (const WorldSpec& w : r.config.worlds) worlds.push_back(w.name);
  worlds.emplace_back("");
  for (const std::string& w : worlds) {
    const std::string key = w.empty() ? "pooled" : w;
    for (const CodeSpec& s : r.config.codes) {
      const MeanStd e = mean_std(seed_values(r, w, s.name)),
                    z = mean_std(seed_values(r, w, s.name, true));
      summary[key][s.name] = {
          {"align_exp", {{"mean", jnum(e.mean)}, {"sd", jnum(e.sd)}, {"n", e.n}}},
          {"align_raw", {{"mean", jnum(z.mean)}, {"sd", jnum(z.sd)}, {"n", z.n}}}};
    }
    for (bool raw : {false, true})
      for (const auto& [ab, c] : compare(r, w, raw))
        comps[key][raw ? "align_raw" : "align_exp"].push_back(
            comparison_json(ab.first, ab.second, c));
  }
  j["summary"] = summary;
  j["comparisons"] = comps;
  return j;
}

/// One CSV row per (world, seed, code).
inline std::string study_csv(const StudyResult& r) {
  std::ostringstream os;
  os << std::setprecision(6)
     << "world,seed,code,role,width,dense_width,knob,l0_code,l0_sparse,fvu,align_exp,align_raw,"
        "null_p95,null_p99,null_p_value,probe,seconds,status\n";
  for (const RunResult& run : r.runs)
    for (size_t i = 0; i < run.codes.size(); ++i) {
      const CodeScore& c = run.codes[i];
      os << run.world << "," << run.seed << "," << c.name << "," << r.config.codes[i].role << ","
         << c.width << "," << c.dense_width << "," << c.knob << "," << c.l0_code << ","
         << c.l0_sparse << "," << c.fvu << "," << c.align_exp << "," << c.align_raw << ","
         << c.null_p95 << "," << c.null_p99 << "," << c.null_p_value << "," << run.probe << ","
         << c.seconds << "," << c.status << "\n";
    }
  return os.str();
}

namespace detail {

inline std::string pm(const MeanStd& m, int prec = 3) {
  return fmt(m.mean, prec) + " ± " + fmt(m.sd, prec);
}

template <class F>
MeanStd over_runs(const StudyResult& r, const std::string& world, F&& f) {
  std::vector<double> v;
  for (const RunResult& run : r.runs)
    if (run.world == world) v.push_back(f(run));
  return mean_std(v);
}

inline void comparison_table(std::ostream& md, const StudyResult& r, const std::string& world,
                             bool raw = false) {
  md << "| A − B | n | mean | 95 % t interval | 95 % bootstrap | A > B | sign test p |\n"
     << "|---|---|---|---|---|---|---|\n";
  for (const auto& [ab, c] : compare(r, world, raw))
    md << "| " << ab.first << " − " << ab.second << " | " << c.n << " | " << fmt(c.mean) << " | ["
       << fmt(c.t_lo) << ", " << fmt(c.t_hi) << "] | [" << fmt(c.boot_lo) << ", " << fmt(c.boot_hi)
       << "] | " << c.positive << "/" << c.n << " | " << fmt(c.p_sign, 4) << " |\n";
  md << "\n";
}

}  // namespace detail

/// The Markdown tables of part (b).
inline std::string study_markdown(const StudyResult& r) {
  std::ostringstream md;
  const StudyConfig& c = r.config;
  md << "## (b) Concept alignment on next-token representations: " << c.seeds << " seeds × "
     << c.worlds.size() << " worlds\n\n"
     << "Per seed: a world drawn from the family, a next-token model (MLP 256-256, LeakyReLU 0.2, "
        "d = ℓ − 1, Adam lr "
     << c.ntp_lr << ", batch " << c.ntp_batch << ", early stopping) trained on " << c.train
     << " contexts, and every code of width m = " << c.width_factor << "·d (PCA: 2d) scored on "
     << c.test
     << " held-out contexts. Score (paper §5.2): per concept k, max over features i of "
        "Pearson(exp(z_i), p(c_k = 1 | x)) (and of z_i), averaged over concepts. SAEs: "
     << c.steps << " Adam steps of " << c.batch << ", lr " << c.lr
     << ", inputs scaled to E‖x‖ = √d. L0(z) counts the non-zeros of the scored code z; L0(S) "
        "those of the structured SAE's sparse branch. Null: "
     << c.permutations
     << " permutations of the test samples of p relative to the codes; the table gives the "
        "mean over seeds of the null's 95th and 99th percentiles of the mean score, and the "
        "largest p-value over seeds. Wall time "
     << detail::fmt(r.wall_seconds / 60.0, 1) << " min.\n\n";
  for (const WorldSpec& w : c.worlds) {
    md << "### World `" << w.name << "`: " << w.description << "\n\n";
    const MeanStd ce = detail::over_runs(r, w.name, [](const RunResult& x) { return x.ntp_loss; });
    const MeanStd bce =
        detail::over_runs(r, w.name, [](const RunResult& x) { return x.bayes_loss; });
    const MeanStd dim = detail::over_runs(
        r, w.name, [](const RunResult& x) { return static_cast<double>(x.rep_dim); });
    md << "d = " << detail::fmt(dim.mean, 0) << "; next-token test cross-entropy "
       << detail::pm(ce, 4) << " nats (Bayes " << detail::pm(bce, 4) << ").\n\n"
       << "| code | role | width | h | knob | L0(z) | L0(S) | FVU | alignment exp(z) | alignment z "
          "| null p95 | null p99 | max p |\n"
       << "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (size_t i = 0; i < c.codes.size(); ++i) {
      const CodeSpec& s = c.codes[i];
      auto f = [&](auto g) {
        return detail::over_runs(r, w.name, [&](const RunResult& x) { return g(x.codes[i]); });
      };
      const MeanStd l0 = f([](const CodeScore& x) { return x.l0_code; });
      const MeanStd l0s = f([](const CodeScore& x) { return x.l0_sparse; });
      const MeanStd fvu = f([](const CodeScore& x) { return x.fvu; });
      const MeanStd ae = f([](const CodeScore& x) { return x.align_exp; });
      const MeanStd ar = f([](const CodeScore& x) { return x.align_raw; });
      const MeanStd n95 = f([](const CodeScore& x) { return x.null_p95; });
      const MeanStd n99 = f([](const CodeScore& x) { return x.null_p99; });
      double pmax = 0;
      Index width = 0, h = 0;
      double knob = 0;
      for (const RunResult& x : r.runs)
        if (x.world == w.name) {
          pmax = std::max(pmax, x.codes[i].null_p_value);
          width = x.codes[i].width;
          h = x.codes[i].dense_width;
          knob = x.codes[i].knob;
        }
      md << "| " << s.name << " | " << s.role << " | " << width << " | "
         << (h > 0 ? std::to_string(h) : "–") << " | "
         << (s.kind == CodeKind::Sae ? detail::fmt(knob, s.knob_is_k ? 0 : 2) : "–") << " | "
         << detail::fmt(l0.mean, 1) << " | " << detail::fmt(l0s.mean, 1) << " | "
         << (s.kind == CodeKind::Sae ? detail::pm(fvu) : "–") << " | " << detail::pm(ae) << " | "
         << detail::pm(ar) << " | " << detail::fmt(n95.mean) << " | " << detail::fmt(n99.mean)
         << " | " << detail::fmt(pmax, 4) << " |\n";
    }
    const MeanStd pr = detail::over_runs(r, w.name, [](const RunResult& x) { return x.probe; });
    md << "| **supervised probe (upper bound)** | – | – | – | – | – | – | – | " << detail::pm(pr)
       << " | " << detail::pm(pr) << " | – | – | – |\n\n"
       << "Paired differences of the exp(z) alignment (A − B, paired by seed):\n\n";
    detail::comparison_table(md, r, w.name);
  }
  md << "### Pooled over both worlds (" << c.seeds * static_cast<Index>(c.worlds.size())
     << " (world, seed) pairs)\n\n";
  md << "Exp(z) alignment (the paper's score):\n\n";
  detail::comparison_table(md, r, "");
  md << "Alignment of z itself (Pearson is invariant to a code's scale, exp(z) is not):\n\n";
  detail::comparison_table(md, r, "", true);
  return md.str();
}

}  // namespace ergo::saestudy

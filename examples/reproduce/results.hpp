// SPDX-License-Identifier: MIT
#pragma once

// Results of examples/reproduce_paper.cpp: one record per setting (an experiment, a label, the
// parameters that define it, and every metric per seed), and the writers of results.json,
// results.csv and summary.md. Files are replaced atomically (ergo::io::atomic_write_file).

#include <ergo/core.hpp>
#include <ergo/io/atomic_write.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace ergo::repro {

/// Mean and sample standard deviation of the finite values (NaN if none; std 0 for one value).
inline std::pair<double, double> mean_std(const std::vector<double>& v) {
  double s = 0, s2 = 0;
  int n = 0;
  for (double x : v)
    if (std::isfinite(x)) {
      s += x;
      ++n;
    }
  if (n == 0) return {std::nan(""), std::nan("")};
  const double mean = s / n;
  for (double x : v)
    if (std::isfinite(x)) s2 += (x - mean) * (x - mean);
  return {mean, n > 1 ? std::sqrt(s2 / (n - 1)) : 0.0};
}

/// One setting of the study, measured over several seeds.
struct SettingResult {
  std::string experiment;  ///< "exp1", "exp2", "ablation", "noise"
  std::string label;       ///< e.g. "n=8", "ER2 m=5", "d<l-1"
  nlohmann::json params;   ///< everything that defines the setting (m, er_k, n, eta, d, ...)
  std::vector<std::uint64_t> seeds;  ///< the per-repetition seeds (reproduce one with them)
  std::map<std::string, std::vector<double>> metrics;  ///< name → one value per seed

  void add(const std::string& name, double value) { metrics[name].push_back(value); }
  double mean(const std::string& name) const {
    auto it = metrics.find(name);
    return it == metrics.end() ? std::nan("") : mean_std(it->second).first;
  }
  double std_dev(const std::string& name) const {
    auto it = metrics.find(name);
    return it == metrics.end() ? std::nan("") : mean_std(it->second).second;
  }
};

inline nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

/// results.json: configuration, version, every setting with per-seed values and mean/std.
inline std::string results_json(const nlohmann::json& config, const std::vector<SettingResult>& rs,
                                double seconds) {
  nlohmann::json j;
  j["ergo_version"] = ergo::version();
  j["config"] = config;
  j["wall_seconds"] = seconds;
  j["settings"] = nlohmann::json::array();
  for (const auto& r : rs) {
    nlohmann::json s;
    s["experiment"] = r.experiment;
    s["label"] = r.label;
    s["params"] = r.params;
    s["seeds"] = r.seeds;
    nlohmann::json m = nlohmann::json::object();
    for (const auto& [name, vals] : r.metrics) {
      nlohmann::json values = nlohmann::json::array();
      for (double v : vals) values.push_back(number_or_null(v));
      const auto [mu, sd] = mean_std(vals);
      m[name] = {{"values", values}, {"mean", number_or_null(mu)}, {"std", number_or_null(sd)}};
    }
    s["metrics"] = m;
    j["settings"].push_back(s);
  }
  return j.dump(2) + "\n";
}

/// results.csv: one row per setting and seed; parameters then metrics as columns.
inline std::string results_csv(const std::vector<SettingResult>& rs) {
  std::vector<std::string> pnames, mnames;
  for (const auto& r : rs) {
    for (auto it = r.params.begin(); it != r.params.end(); ++it)
      if (std::find(pnames.begin(), pnames.end(), it.key()) == pnames.end()) pnames.push_back(it.key());
    for (const auto& kv : r.metrics)
      if (std::find(mnames.begin(), mnames.end(), kv.first) == mnames.end()) mnames.push_back(kv.first);
  }
  std::ostringstream os;
  os.precision(10);
  os << "experiment,label,repetition,seed";
  for (const auto& p : pnames) os << "," << p;
  for (const auto& m : mnames) os << "," << m;
  os << "\n";
  for (const auto& r : rs)
    for (size_t i = 0; i < r.seeds.size(); ++i) {
      os << r.experiment << ",\"" << r.label << "\"," << i << "," << r.seeds[i];
      for (const auto& p : pnames) os << "," << (r.params.contains(p) ? r.params.at(p).dump() : "");
      for (const auto& m : mnames) {
        os << ",";
        auto it = r.metrics.find(m);
        if (it != r.metrics.end() && i < it->second.size() && std::isfinite(it->second[i]))
          os << it->second[i];
      }
      os << "\n";
    }
  return os.str();
}

/// "0.912 ± 0.013" (or "–" when missing).
inline std::string pm(const SettingResult& r, const std::string& name, int digits = 3) {
  const double mu = r.mean(name), sd = r.std_dev(name);
  if (!std::isfinite(mu)) return "–";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f ± %.*f", digits, mu, digits, sd);
  return buf;
}

/// A Markdown table of the chosen metrics (columns) for the settings of one experiment (rows).
inline std::string markdown_table(const std::vector<SettingResult>& rs, const std::string& experiment,
                                  const std::vector<std::pair<std::string, std::string>>& columns) {
  std::ostringstream os;
  os << "| setting |";
  for (const auto& c : columns) os << " " << c.second << " |";
  os << "\n|---|";
  for (size_t i = 0; i < columns.size(); ++i) os << "---|";
  os << "\n";
  for (const auto& r : rs) {
    if (r.experiment != experiment) continue;
    os << "| " << r.label << " |";
    for (const auto& c : columns) os << " " << pm(r, c.first) << " |";
    os << "\n";
  }
  return os.str();
}

}  // namespace ergo::repro

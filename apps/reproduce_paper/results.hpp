// SPDX-License-Identifier: MIT
#pragma once

// Results of apps/reproduce_paper: the JSON form of a setting (per-seed runs, summaries,
// paired comparisons), the per-setting files that make a run resumable, results.csv, and the
// Markdown tables of summary.md. Files are replaced atomically (ergo::io::atomic_write_file).

#include "study.hpp"

#include <ergo/core.hpp>
#include <ergo/io/atomic_write.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace ergo::repro {

/// What must be equal for a finished setting to be reused by --resume: the setting, its seeds,
/// the run options and the library version.
inline nlohmann::json fingerprint(const SettingResult& r, const RunOptions& o) {
  return {{"ergo_version", ergo::version()},
          {"params", r.setting.params},
          {"seeds", r.seeds},
          {"run_options", o.to_json()}};
}

/// Summary of every scalar metric: {"world": {key: {mean, std, n}}, rep: {...}, ...}.
inline nlohmann::json summarize(const SettingResult& r) {
  nlohmann::json s = nlohmann::json::object();
  if (r.runs.empty()) return s;
  auto block = [&](const std::string& rep, const nlohmann::json& first) {
    nlohmann::json b = nlohmann::json::object();
    for (auto it = first.begin(); it != first.end(); ++it) {
      if (!(it.value().is_number() || it.value().is_null() || it.value().is_boolean())) continue;
      const MeanStd ms = mean_std(values(r, rep, it.key()));
      b[it.key()] = {{"mean", detail::num(ms.mean)}, {"std", detail::num(ms.sd)}, {"n", ms.n}};
    }
    s[rep] = std::move(b);
  };
  block("world", r.runs[0].world);
  for (const auto& name : representation_names()) block(name, r.runs[0].reps.at(name));
  return s;
}

/// The JSON object of one setting (as in results.json and in its resume file).
inline nlohmann::json setting_json(const SettingResult& r) {
  nlohmann::json j;
  j["id"] = r.setting.id;
  j["memberships"] = nlohmann::json::array();
  for (const auto& m : r.setting.memberships)
    j["memberships"].push_back({{"table", m.table}, {"label", m.label}, {"order", m.order}});
  j["params"] = r.setting.params;
  j["seeds"] = r.seeds;
  j["runs"] = nlohmann::json::array();
  for (size_t i = 0; i < r.runs.size(); ++i) {
    nlohmann::json reps = nlohmann::json::object();
    for (const auto& [name, v] : r.runs[i].reps) reps[name] = v;
    j["runs"].push_back(
        {{"seed", r.seeds[i]}, {"world", r.runs[i].world}, {"representations", reps}});
  }
  j["summary"] = summarize(r);
  j["comparisons"] = r.comparisons;
  j["wall_seconds"] = r.wall_seconds;
  j["reused"] = r.reused;
  return j;
}

/// Path of a setting's resume file inside the output folder.
inline std::string setting_file(const std::string& out, const Setting& s) {
  return out + "/settings/" + s.id + ".json";
}

/// Writes a finished setting (with its fingerprint) so that --resume can reuse it.
inline void save_setting(const std::string& out, const SettingResult& r, const RunOptions& o) {
  io::make_directories(out + "/settings");
  const nlohmann::json j = {{"fingerprint", fingerprint(r, o)}, {"setting", setting_json(r)}};
  io::atomic_write_file(setting_file(out, r.setting), j.dump(1) + "\n");
}

/// Loads a finished setting if its file exists and its fingerprint matches `r` (whose setting and
/// seeds are filled in); returns false otherwise (a missing, stale or unreadable file is redone).
inline bool load_setting(const std::string& out, SettingResult& r, const RunOptions& o) {
  std::ifstream f(setting_file(out, r.setting));
  if (!f) return false;
  nlohmann::json j;
  try {
    f >> j;
    if (j.at("fingerprint") != fingerprint(r, o)) return false;
    std::vector<RunResult> runs;
    for (const auto& run : j.at("setting").at("runs")) {
      RunResult rr;
      rr.world = run.at("world");
      for (auto it = run.at("representations").begin(); it != run.at("representations").end(); ++it)
        rr.reps[it.key()] = it.value();
      runs.push_back(std::move(rr));
    }
    if (runs.size() != r.seeds.size()) return false;
    r.runs = std::move(runs);
    r.comparisons = j.at("setting").at("comparisons");
    r.wall_seconds = j.at("setting").value("wall_seconds", 0.0);
    r.reused = true;
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

/// results.csv: one row per setting, seed and representation; world columns then metric columns
/// (scalars only; arrays such as the CCA spectrum are in results.json).
inline std::string results_csv(const std::vector<SettingResult>& rs) {
  std::vector<std::string> wkeys, rkeys;
  auto collect = [](const nlohmann::json& j, std::vector<std::string>& keys) {
    for (auto it = j.begin(); it != j.end(); ++it)
      if ((it.value().is_number() || it.value().is_null() || it.value().is_boolean()) &&
          std::find(keys.begin(), keys.end(), it.key()) == keys.end())
        keys.push_back(it.key());
  };
  for (const auto& r : rs)
    for (const auto& run : r.runs) {
      collect(run.world, wkeys);
      for (const auto& [n, v] : run.reps) collect(v, rkeys);
    }
  auto cell = [](const nlohmann::json& j, const std::string& k) -> std::string {
    if (!j.contains(k) || j.at(k).is_null()) return "";
    if (j.at(k).is_boolean()) return j.at(k).get<bool>() ? "1" : "0";
    std::ostringstream os;
    os.precision(10);
    os << j.at(k).get<double>();
    return os.str();
  };
  std::ostringstream os;
  os << "setting,tables,seed,representation";
  for (const auto& k : wkeys) os << ",world." << k;
  for (const auto& k : rkeys) os << "," << k;
  os << "\n";
  for (const auto& r : rs) {
    std::string tables;
    for (const auto& m : r.setting.memberships) tables += (tables.empty() ? "" : ";") + m.table;
    for (size_t i = 0; i < r.runs.size(); ++i)
      for (const auto& name : representation_names()) {
        os << r.setting.id << "," << tables << "," << r.seeds[i] << "," << name;
        for (const auto& k : wkeys) os << "," << cell(r.runs[i].world, k);
        for (const auto& k : rkeys) os << "," << cell(r.runs[i].reps.at(name), k);
        os << "\n";
      }
  }
  return os.str();
}

// ------------------------------------------------------------------------- tables ----

/// "0.912 ± 0.013" (mean ± std over seeds), or "–" when no value is finite.
inline std::string pm(const std::vector<double>& v, int digits = 3) {
  const MeanStd ms = mean_std(v);
  if (ms.n == 0) return "–";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f ± %.*f", digits, ms.mean, digits, ms.sd);
  return buf;
}

/// "+0.412 [0.391, 0.433] 10/10" : mean paired difference, its bootstrap 95 % interval and wins.
inline std::string paired_cell(const nlohmann::json& c, int digits = 3) {
  if (!c.at("mean").is_number()) return "–";
  char buf[128];
  const auto d = [&](const char* k) {
    return c.at(k).is_number() ? c.at(k).get<double>() : std::nan("");
  };
  std::snprintf(buf, sizeof buf, "%+.*f [%+.*f, %+.*f] %d/%d", digits, d("mean"), digits,
                d("boot_lo"), digits, d("boot_hi"), c.at("positive").get<int>(),
                c.at("n").get<int>());
  return buf;
}

/// "0.912 [0.880, 0.950]" (median and quartiles over seeds), or "–" when no value is finite: for
/// heavy-tailed metrics, where a mean ± std would be one seed's outlier.
inline std::string median_iqr(const std::vector<double>& v, int digits = 3) {
  if (mean_std(v).n == 0) return "–";
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.*f [%.*f, %.*f]", digits, ergo::identify::quantile(v, 0.5),
                digits, ergo::identify::quantile(v, 0.25), digits,
                ergo::identify::quantile(v, 0.75));
  return buf;
}

/// A column of a settings table: header, representation ("world" for world-level), metric, and
/// whether to show the median [quartiles] instead of mean ± std.
struct Column {
  std::string header, rep, key;
  int digits = 3;
  bool median = false;
};

/// Rows = the settings in `table` (in order, labelled by their membership), columns as given.
inline std::string settings_table(const std::vector<SettingResult>& rs, const std::string& table,
                                  const std::vector<Column>& cols) {
  std::ostringstream os;
  os << "| setting |";
  for (const auto& c : cols) os << " " << c.header << " |";
  os << "\n|---|";
  for (size_t i = 0; i < cols.size(); ++i) os << "---|";
  os << "\n";
  std::vector<std::pair<const SettingResult*, const Membership*>> rows;
  for (const auto& r : rs)
    for (const auto& m : r.setting.memberships)
      if (m.table == table) rows.emplace_back(&r, &m);
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return a.second->order < b.second->order; });
  for (const auto& [r, m] : rows) {
    os << "| " << m->label << " |";
    for (const auto& c : cols) {
      const std::vector<double> v = values(*r, c.rep, c.key);
      os << " " << (c.median ? median_iqr(v, c.digits) : pm(v, c.digits)) << " |";
    }
    os << "\n";
  }
  return os.str();
}

/// Rows = representations of one setting, columns = metrics.
inline std::string representations_table(
    const SettingResult& r, const std::vector<std::pair<std::string, std::string>>& cols) {
  std::ostringstream os;
  os << "| representation | dim |";
  for (const auto& c : cols) os << " " << c.second << " |";
  os << "\n|---|---|";
  for (size_t i = 0; i < cols.size(); ++i) os << "---|";
  os << "\n";
  for (const auto& name : representation_names()) {
    os << "| " << name << " | " << mean_std(values(r, name, "dim")).mean << " |";
    for (const auto& c : cols) os << " " << pm(values(r, name, c.first)) << " |";
    os << "\n";
  }
  return os.str();
}

/// Rows = compared metrics, columns = trained − other (mean [bootstrap 95 %] wins/n, sign p).
inline std::string comparisons_table(const SettingResult& r) {
  std::ostringstream os;
  os << "| metric | trained − untrained | p (sign) | trained − random_projection | p (sign) | "
        "trained − raw_input | p (sign) |\n|---|---|---|---|---|---|---|\n";
  for (const auto& key : compared_metrics()) {
    os << "| " << key << " |";
    for (const char* other : {"untrained", "random_projection", "raw_input"}) {
      const nlohmann::json& c = r.comparisons.at(std::string("trained_vs_") + other).at(key);
      char p[32];
      if (c.at("p_sign").is_number())
        std::snprintf(p, sizeof p, "%.3g", c.at("p_sign").get<double>());
      else
        std::snprintf(p, sizeof p, "–");
      os << " " << paired_cell(c) << " | " << p << " |";
    }
    os << "\n";
  }
  return os.str();
}

/// The exp-2 equivalence tests as a table.
inline std::string equivalence_table(const nlohmann::json& eq) {
  std::ostringstream os;
  os << "| m | pair | mean a | mean b | difference | 90 % interval | margin | p (TOST) | "
        "equivalent |\n"
        "|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& e : eq) {
    char buf[256];
    auto d = [&](const char* k) {
      return e.at(k).is_number() ? e.at(k).get<double>() : std::nan("");
    };
    std::snprintf(buf, sizeof buf,
                  "| %d | %s – %s | %.3f | %.3f | %+.3f | [%+.3f, %+.3f] | ±%.3f | %.3g | %s |\n",
                  e.at("m").get<int>(), e.at("a").get<std::string>().c_str(),
                  e.at("b").get<std::string>().c_str(), d("mean_a"), d("mean_b"), d("difference"),
                  d("ci_lo"), d("ci_hi"), d("margin"), d("p_value"),
                  !e.at("evaluated").get<bool>()   ? "not evaluated"
                  : e.at("equivalent").get<bool>() ? "yes"
                                                   : "**no**");
    os << buf;
  }
  return os.str();
}

}  // namespace ergo::repro

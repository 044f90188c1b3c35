// SPDX-License-Identifier: MIT
#pragma once

/// \file report_result.hpp
/// \brief IdentifiabilityReport, everything check_identifiability (report.hpp) computes, and
/// its JSON (nlohmann-json), CSV and text writers. Fields are documented one by one in
/// docs/identify.md.

#include "../core/types.hpp"
#include "cca.hpp"
#include "correlation.hpp"
#include "detail/writers.hpp"
#include "resampling.hpp"
#include "ridge.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace ergo::identify {

/// \brief One ridge direction of the report (F → T or T → F).
struct RegressionSummary {
  std::string direction;                                     ///< "F->T" or "T->F"
  RidgeCv cv_method = RidgeCv::Gcv;                          ///< penalty selection actually used
  double lambda = std::numeric_limits<double>::quiet_NaN();  ///< chosen λ (absolute)
  double relative_lambda = std::numeric_limits<double>::quiet_NaN();  ///< λ / mean Gram eigenvalue
  double cv_r2_mean = std::numeric_limits<double>::quiet_NaN();       ///< CV R² (training samples)
  R2Scores train;                  ///< in-sample R² on the training samples (inflation diagnostic)
  R2Scores test;                   ///< held-out R² on the test samples (the headline)
  Vector<double> singular_values;  ///< of the fitted map (outputs × inputs)
  double condition_number = std::numeric_limits<double>::quiet_NaN();  ///< σ_max/σ_min
  Index rank = 0;  ///< numerical rank of the fitted map
};

/// \brief The CCA part of the report.
struct CcaReport {
  CcaMethod method = CcaMethod::Qr;  ///< method actually used
  double regularization_f = 0.0;     ///< relative ridge used on F's covariance
  double regularization_t = 0.0;     ///< relative ridge used on T's covariance
  Index rank_f = 0, rank_t = 0;      ///< numerical ranks of the centred training blocks
  CcaSummary train;                  ///< in-sample spectrum (inflated; compare with the floor)
  CcaSummary test;                   ///< held-out spectrum (the headline)
};

/// \brief One verdict criterion.
struct Criterion {
  std::string name;                                             ///< e.g. "rho_min"
  std::string comparison;                                       ///< ">=", "<=", "<" or ">"
  double value = std::numeric_limits<double>::quiet_NaN();      ///< measured value
  double threshold = std::numeric_limits<double>::quiet_NaN();  ///< threshold
  bool evaluated = false;  ///< false when its inputs are disabled (no null, no baseline)
  bool passed = false;     ///< meaningful only if evaluated
};

/// \brief The verdict: "linearly identified" iff every evaluated criterion passed.
struct Verdict {
  bool identified = false;
  std::vector<Criterion> criteria;
  std::string summary;  ///< one line, e.g. "identified: 6/6 criteria passed"
};

/// \brief Everything check_identifiability computes (documented field by field in
/// docs/identify.md).
struct IdentifiabilityReport {
  std::string name;                              ///< representation name
  std::string target_name;                       ///< target description
  Index n_samples = 0, n_train = 0, n_test = 0;  ///< sample counts
  Index n_groups = 0;                            ///< distinct groups (= n_samples without groups)
  Index n_train_groups = 0, n_test_groups = 0;   ///< distinct groups on each side of the split
  Index d = 0;                                   ///< feature dimension (rows of F)
  Index k = 0;                                   ///< target dimension (rows of T)
  Index n_distinct_targets = 0;  ///< distinct columns of T (few distinct values inflate fits)
  Split split;                   ///< the train/test sample indices every statistic used
  RegressionSummary forward;     ///< F → T
  bool has_reverse = false;
  RegressionSummary reverse;  ///< T → F (if params.reverse)
  CcaReport cca;
  bool has_mcc = false;
  MccResult mcc_pearson;   ///< out-of-sample MCC, Pearson (matched on train)
  MccResult mcc_spearman;  ///< out-of-sample MCC, Spearman (average ranks)
  NullSummary null_r2;     ///< permutation null of the held-out R² (F → T, variance-weighted)
  /// Observed held-out ρ_min against the permutation null of the held-out *largest* ρ_1
  /// (mean, p95 and p-value are those of the null ρ_1).
  NullSummary null_rho_min_vs_max;
  NullSummary null_rho_mean;  ///< permutation null of the held-out mean ρ
  Interval ci_r2;             ///< bootstrap interval of the held-out R² (variance-weighted)
  Interval ci_rho_min;        ///< bootstrap interval of the held-out ρ_min
  Interval ci_rho_mean;       ///< bootstrap interval of the held-out mean ρ
  double wachter_edge = std::numeric_limits<double>::quiet_NaN();  ///< null in-sample ρ_1 bound
  double r2_floor = std::numeric_limits<double>::quiet_NaN();      ///< d/(n_train − 1)
  std::vector<std::string> warnings;             ///< diagnostics worth reading before the verdict
  std::vector<IdentifiabilityReport> baselines;  ///< same report for each baseline
  /// Held-out R² (variance-weighted) of F minus the best selectivity baseline's (NaN without one).
  double selectivity_r2 = std::numeric_limits<double>::quiet_NaN();
  /// Held-out ρ_min of F minus the best selectivity baseline's (NaN without one).
  double selectivity_rho_min = std::numeric_limits<double>::quiet_NaN();
  Verdict verdict;

  /// \brief The report as one JSON object, keys in a fixed order (docs/identify.md, "The
  /// report, field by field"); NaN and ±inf are null, `baselines` holds each baseline's object.
  /// Convert with `nlohmann::json(rep.to_json())` if key order does not matter.
  nlohmann::ordered_json to_json() const;
  /// \brief Writes to_json() as indented JSON followed by a newline.
  void write_json(std::ostream& os) const;
  /// \brief Writes to_json() as long-format CSV: a "key,value" header, then one row per scalar,
  /// keys joined with '.' and "[i]" for array entries (e.g. `verdict.criteria[0].name`); null →
  /// empty field, strings in double quotes.
  void write_csv(std::ostream& os) const;
  /// \brief Writes a human-readable summary (a few lines per section, then the verdict).
  void write_summary(std::ostream& os) const;
};

namespace detail {

/// A JSON value of the report: an object keeps its keys in the order they are written.
using Json = nlohmann::ordered_json;

/// A double as JSON: the number, or null if it is NaN or ±inf.
inline Json json_number(double v) {
  return std::isfinite(v) ? Json(v) : Json(nullptr);
}
/// A vector of doubles as a JSON array (NaN and ±inf entries → null; empty → []).
inline Json json_numbers(const Vector<double>& v) {
  Json a = Json::array();
  for (Index i = 0; i < v.size(); ++i) a.push_back(json_number(v[i]));
  return a;
}
/// A vector of indices as a JSON array of integers.
inline Json json_indices(const IndexVector& v) {
  Json a = Json::array();
  for (Index i = 0; i < v.size(); ++i) a.push_back(v[i]);
  return a;
}
/// R² scores: mean, variance_weighted, mse, per_output.
inline Json json_r2(const R2Scores& r) {
  Json j = Json::object();
  j["mean"] = json_number(r.mean);
  j["variance_weighted"] = json_number(r.variance_weighted);
  j["mse"] = json_number(r.mse);
  j["per_output"] = json_numbers(r.per_output);
  return j;
}
/// One ridge direction (forward or reverse).
inline Json json_regression(const RegressionSummary& r) {
  Json j = Json::object();
  j["direction"] = r.direction;
  j["cv_method"] = to_string(r.cv_method);
  j["lambda"] = json_number(r.lambda);
  j["relative_lambda"] = json_number(r.relative_lambda);
  j["cv_r2_mean"] = json_number(r.cv_r2_mean);
  j["train"] = json_r2(r.train);
  j["test"] = json_r2(r.test);
  j["singular_values"] = json_numbers(r.singular_values);
  j["condition_number"] = json_number(r.condition_number);
  j["rank"] = r.rank;
  return j;
}
/// One canonical-correlation spectrum and its summaries.
inline Json json_cca(const CcaSummary& c) {
  Json j = Json::object();
  j["rho"] = json_numbers(c.rho);
  j["mean"] = json_number(c.mean);
  j["min"] = json_number(c.min);
  j["max"] = json_number(c.max);
  j["kappa_w"] = json_number(c.kappa);
  j["r2_cca"] = json_number(c.r2);
  return j;
}
/// One permutation null.
inline Json json_null(const NullSummary& n) {
  Json j = Json::object();
  j["observed"] = json_number(n.observed);
  j["null_mean"] = json_number(n.mean);
  j["null_p95"] = json_number(n.p95);
  j["p_value"] = json_number(n.p_value);
  j["permutations"] = n.permutations;
  return j;
}
/// One bootstrap interval.
inline Json json_interval(const Interval& c) {
  Json j = Json::object();
  j["estimate"] = json_number(c.estimate);
  j["lo"] = json_number(c.lo);
  j["hi"] = json_number(c.hi);
  j["se"] = json_number(c.se);
  j["level"] = json_number(c.level);
  return j;
}
/// The verdict with its criteria.
inline Json json_verdict(const Verdict& v) {
  Json j = Json::object();
  j["identified"] = v.identified;
  j["summary"] = v.summary;
  Json criteria = Json::array();
  for (const auto& c : v.criteria) {
    Json cj = Json::object();
    cj["name"] = c.name;
    cj["comparison"] = c.comparison;
    cj["value"] = json_number(c.value);
    cj["threshold"] = json_number(c.threshold);
    cj["evaluated"] = c.evaluated;
    cj["passed"] = c.passed;
    criteria.push_back(std::move(cj));
  }
  j["criteria"] = std::move(criteria);
  return j;
}

}  // namespace detail

/// \brief The report as one JSON object (NaN/inf → null); write_json and write_csv print it.
inline nlohmann::ordered_json IdentifiabilityReport::to_json() const {
  using detail::Json;
  using detail::json_number;
  Json j = Json::object();
  j["name"] = name;
  j["target_name"] = target_name;
  Json data = Json::object();
  data["n_samples"] = n_samples;
  data["n_train"] = n_train;
  data["n_test"] = n_test;
  data["n_groups"] = n_groups;
  data["d"] = d;
  data["k"] = k;
  data["n_distinct_targets"] = n_distinct_targets;
  data["n_train_groups"] = n_train_groups;
  data["n_test_groups"] = n_test_groups;
  j["data"] = std::move(data);
  j["forward"] = detail::json_regression(forward);
  if (has_reverse) j["reverse"] = detail::json_regression(reverse);
  Json c = Json::object();
  c["method"] = to_string(cca.method);
  c["regularization_f"] = json_number(cca.regularization_f);
  c["regularization_t"] = json_number(cca.regularization_t);
  c["rank_f"] = cca.rank_f;
  c["rank_t"] = cca.rank_t;
  c["train"] = detail::json_cca(cca.train);
  c["test"] = detail::json_cca(cca.test);
  j["cca"] = std::move(c);
  if (has_mcc) {
    Json m = Json::object();
    m["pearson"] = json_number(mcc_pearson.mcc);
    m["spearman"] = json_number(mcc_spearman.mcc);
    m["pearson_matched"] = detail::json_numbers(mcc_pearson.matched);
    m["assignment"] = detail::json_indices(mcc_pearson.assignment);
    j["mcc"] = std::move(m);
  }
  Json nulls = Json::object();
  nulls["r2"] = detail::json_null(null_r2);
  nulls["rho_min_vs_max"] = detail::json_null(null_rho_min_vs_max);
  nulls["rho_mean"] = detail::json_null(null_rho_mean);
  j["null"] = std::move(nulls);
  Json boot = Json::object();
  boot["r2"] = detail::json_interval(ci_r2);
  boot["rho_min"] = detail::json_interval(ci_rho_min);
  boot["rho_mean"] = detail::json_interval(ci_rho_mean);
  j["bootstrap"] = std::move(boot);
  Json floors = Json::object();
  floors["wachter_edge"] = json_number(wachter_edge);
  floors["r2_floor"] = json_number(r2_floor);
  j["floors"] = std::move(floors);
  Json warns = Json::array();
  for (const auto& w : warnings) warns.push_back(w);
  j["warnings"] = std::move(warns);
  j["selectivity_r2"] = json_number(selectivity_r2);
  j["selectivity_rho_min"] = json_number(selectivity_rho_min);
  j["verdict"] = detail::json_verdict(verdict);
  Json base = Json::array();
  for (const auto& b : baselines) base.push_back(b.to_json());
  j["baselines"] = std::move(base);
  return j;
}

/// \brief Writes to_json() indented by two spaces (invalid UTF-8 in names → U+FFFD).
inline void IdentifiabilityReport::write_json(std::ostream& os) const {
  os << to_json().dump(2, ' ', false, detail::Json::error_handler_t::replace) << '\n';
}
/// \brief Writes to_json() as long-format CSV ("key,value" rows; null → empty).
inline void IdentifiabilityReport::write_csv(std::ostream& os) const {
  os << "key,value\n";
  detail::write_csv_rows(os, "", to_json());
}

/// \brief Writes a human-readable summary (a few lines per section, then the verdict).
inline void IdentifiabilityReport::write_summary(std::ostream& os) const {
  auto num = [](double v) {
    if (!std::isfinite(v)) return std::string(std::isnan(v) ? "n/a" : (v > 0 ? "inf" : "-inf"));
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.4g", v);
    return std::string(buf);
  };
  auto ci = [&](const Interval& c) {
    return std::isfinite(c.lo) ? " [" + num(c.lo) + ", " + num(c.hi) + "]" : std::string();
  };
  os << "identifiability of " << name << " against " << target_name << "\n"
     << "  samples " << n_samples << " (train " << n_train << ", test " << n_test << ", groups "
     << n_groups << "), d = " << d << ", k = " << k << ", distinct targets " << n_distinct_targets
     << "\n"
     << "  held-out R^2 F->T: " << num(forward.test.variance_weighted) << ci(ci_r2)
     << " (variance-weighted; mean over targets " << num(forward.test.mean) << "; in-sample "
     << num(forward.train.variance_weighted) << "; " << to_string(forward.cv_method) << " lambda "
     << num(forward.lambda) << "; kappa(W) " << num(forward.condition_number) << ", rank "
     << forward.rank << ")\n";
  if (has_reverse)
    os << "  held-out R^2 T->F: mean " << num(reverse.test.mean) << ", variance-weighted "
       << num(reverse.test.variance_weighted) << "\n";
  os << "  held-out CCA: mean rho " << num(cca.test.mean) << ci(ci_rho_mean) << ", rho_min "
     << num(cca.test.min) << ci(ci_rho_min) << ", kappa_w " << num(cca.test.kappa)
     << " (in-sample rho_1 " << num(cca.train.max) << ", null edge " << num(wachter_edge) << ")\n";
  if (has_mcc)
    os << "  MCC (matched on train): pearson " << num(mcc_pearson.mcc) << ", spearman "
       << num(mcc_spearman.mcc) << "\n";
  if (null_r2.permutations > 0)
    os << "  permutation null (B = " << null_r2.permutations
       << "): R^2 p = " << num(null_r2.p_value) << " (null mean " << num(null_r2.mean) << ", p95 "
       << num(null_r2.p95) << "); rho_min vs null rho_1: p = " << num(null_rho_min_vs_max.p_value)
       << " (null rho_1 mean " << num(null_rho_min_vs_max.mean) << ", p95 "
       << num(null_rho_min_vs_max.p95) << ")\n";
  for (const auto& b : baselines)
    os << "  baseline " << b.name << ": R^2 " << num(b.forward.test.variance_weighted)
       << ", rho_min " << num(b.cca.test.min) << ", verdict "
       << (b.verdict.identified ? "identified" : "not identified") << "\n";
  if (!baselines.empty())
    os << "  selectivity: R^2 " << num(selectivity_r2) << ", rho_min " << num(selectivity_rho_min)
       << "\n";
  for (const auto& w : warnings) os << "  warning: " << w << "\n";
  os << "  verdict: " << verdict.summary << "\n";
  for (const auto& c : verdict.criteria)
    os << "    " << (c.evaluated ? (c.passed ? "pass " : "FAIL ") : "skip ") << c.name << ": "
       << num(c.value) << " " << c.comparison << " " << num(c.threshold) << "\n";
}

}  // namespace ergo::identify

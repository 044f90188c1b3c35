// SPDX-License-Identifier: MIT
#pragma once

/// \file report_result.hpp
/// \brief IdentifiabilityReport, everything check_identifiability (report.hpp) computes, and
/// its JSON, CSV and text writers. Fields are documented one by one in docs/identify.md.

#include "../core/types.hpp"
#include "cca.hpp"
#include "correlation.hpp"
#include "detail/writers.hpp"
#include "resampling.hpp"
#include "ridge.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <ostream>
#include <string>
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

  /// \brief Writes the report as one JSON object (NaN/inf → null).
  void write_json(std::ostream& os) const;
  /// \brief Writes the report as long-format CSV ("key,value" rows; NaN → empty).
  void write_csv(std::ostream& os) const;
  /// \brief Writes a human-readable summary (a few lines per section, then the verdict).
  void write_summary(std::ostream& os) const;
  /// \internal Describes the report to a sink (JSON or CSV).
  template <class Sink>
  void visit(Sink& s) const;
};

namespace detail {

template <class Sink>
void visit_r2(Sink& s, const char* name, const R2Scores& r) {
  s.begin(name);
  s.field("mean", r.mean);
  s.field("variance_weighted", r.variance_weighted);
  s.field("mse", r.mse);
  s.field("per_output", r.per_output);
  s.end();
}
template <class Sink>
void visit_regression(Sink& s, const char* name, const RegressionSummary& r) {
  s.begin(name);
  s.field("direction", r.direction);
  s.field("cv_method", to_string(r.cv_method));
  s.field("lambda", r.lambda);
  s.field("relative_lambda", r.relative_lambda);
  s.field("cv_r2_mean", r.cv_r2_mean);
  visit_r2(s, "train", r.train);
  visit_r2(s, "test", r.test);
  s.field("singular_values", r.singular_values);
  s.field("condition_number", r.condition_number);
  s.field("rank", r.rank);
  s.end();
}
template <class Sink>
void visit_cca(Sink& s, const char* name, const CcaSummary& c) {
  s.begin(name);
  s.field("rho", c.rho);
  s.field("mean", c.mean);
  s.field("min", c.min);
  s.field("max", c.max);
  s.field("kappa_w", c.kappa);
  s.field("r2_cca", c.r2);
  s.end();
}
template <class Sink>
void visit_null(Sink& s, const char* name, const NullSummary& n) {
  s.begin(name);
  s.field("observed", n.observed);
  s.field("null_mean", n.mean);
  s.field("null_p95", n.p95);
  s.field("p_value", n.p_value);
  s.field("permutations", n.permutations);
  s.end();
}
template <class Sink>
void visit_interval(Sink& s, const char* name, const Interval& c) {
  s.begin(name);
  s.field("estimate", c.estimate);
  s.field("lo", c.lo);
  s.field("hi", c.hi);
  s.field("se", c.se);
  s.field("level", c.level);
  s.end();
}

}  // namespace detail

/// \brief Writes the report as one JSON object (NaN/inf → null).
inline void IdentifiabilityReport::write_json(std::ostream& os) const {
  detail::JsonSink s(os);
  s.begin_document();
  visit(s);
  s.end_document();
}
/// \brief Writes the report as long-format CSV ("key,value" rows; NaN → empty).
inline void IdentifiabilityReport::write_csv(std::ostream& os) const {
  detail::CsvSink s(os);
  s.begin_document();
  visit(s);
  s.end_document();
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

/// \internal Describes the report to a sink (JSON or CSV).
template <class Sink>
void IdentifiabilityReport::visit(Sink& s) const {
  s.field("name", name);
  s.field("target_name", target_name);
  s.begin("data");
  s.field("n_samples", n_samples);
  s.field("n_train", n_train);
  s.field("n_test", n_test);
  s.field("n_groups", n_groups);
  s.field("d", d);
  s.field("k", k);
  s.field("n_distinct_targets", n_distinct_targets);
  s.field("n_train_groups", n_train_groups);
  s.field("n_test_groups", n_test_groups);
  s.end();
  detail::visit_regression(s, "forward", forward);
  if (has_reverse) detail::visit_regression(s, "reverse", reverse);
  s.begin("cca");
  s.field("method", to_string(cca.method));
  s.field("regularization_f", cca.regularization_f);
  s.field("regularization_t", cca.regularization_t);
  s.field("rank_f", cca.rank_f);
  s.field("rank_t", cca.rank_t);
  detail::visit_cca(s, "train", cca.train);
  detail::visit_cca(s, "test", cca.test);
  s.end();
  if (has_mcc) {
    s.begin("mcc");
    s.field("pearson", mcc_pearson.mcc);
    s.field("spearman", mcc_spearman.mcc);
    s.field("pearson_matched", mcc_pearson.matched);
    s.field("assignment", mcc_pearson.assignment);
    s.end();
  }
  s.begin("null");
  detail::visit_null(s, "r2", null_r2);
  detail::visit_null(s, "rho_min_vs_max", null_rho_min_vs_max);
  detail::visit_null(s, "rho_mean", null_rho_mean);
  s.end();
  s.begin("bootstrap");
  detail::visit_interval(s, "r2", ci_r2);
  detail::visit_interval(s, "rho_min", ci_rho_min);
  detail::visit_interval(s, "rho_mean", ci_rho_mean);
  s.end();
  s.begin("floors");
  s.field("wachter_edge", wachter_edge);
  s.field("r2_floor", r2_floor);
  s.end();
  s.field("warnings", warnings);
  s.field("selectivity_r2", selectivity_r2);
  s.field("selectivity_rho_min", selectivity_rho_min);
  s.begin("verdict");
  s.field("identified", verdict.identified);
  s.field("summary", verdict.summary);
  s.begin_list("criteria");
  for (const auto& c : verdict.criteria) {
    s.begin_item();
    s.field("name", c.name);
    s.field("comparison", c.comparison);
    s.field("value", c.value);
    s.field("threshold", c.threshold);
    s.field("evaluated", c.evaluated);
    s.field("passed", c.passed);
    s.end_item();
  }
  s.end_list();
  s.end();
  s.begin_list("baselines");
  for (const auto& b : baselines) {
    s.begin_item();
    b.visit(s);
    s.end_item();
  }
  s.end_list();
}

}  // namespace ergo::identify

// SPDX-License-Identifier: MIT
#pragma once

/// \file report.hpp
/// \brief The identifiability report: held-out ridge R² in both directions, held-out CCA,
/// out-of-sample MCC, permutation nulls, bootstrap intervals, analytic null floors, warnings,
/// baselines with selectivity, and a verdict from configurable thresholds; JSON and CSV output.
///
/// Question answered: is T (k × N, e.g. ilr of the log-posteriors) an invertible affine function
/// of F (d × N, e.g. a network's representation), judged on held-out data against a null?
///
/// Pipeline of check_identifiability (every random step seeded from `params.seed`):
/// 1. train/test split of the samples, grouped when groups are given;
/// 2. ridge F → T and T → F on the training samples, penalty by CV (ridge.hpp); R² on the test
///    samples per output, mean and variance-weighted; singular values and κ of the fitted map;
/// 3. CCA fitted on training samples (cca.hpp); canonical correlations of the held-out variates:
///    mean ρ, ρ_min, κ_w = ρ_1/ρ_min, R²_CCA; the in-sample spectrum beside it;
/// 4. MCC (Pearson and Spearman) matched on training samples, scored on test samples;
/// 5. permutation null: T's training columns are re-paired with F's (whole groups exchanged with
///    groups of the same size when groups exist), the ridge and CCA fits are redone in full
///    (penalty search included; the F-side factorisations are reused, so a refit costs O(N d k))
///    and scored on the untouched test samples; Phipson–Smyth p-values, null mean and 95th
///    percentile for the held-out R² and mean ρ, and for ρ_min against the null distribution of
///    the held-out *largest* canonical correlation ρ_1: every observed direction must beat the
///    best direction chance produces. (The null of ρ_min itself is the minimum of many null
///    correlations, far below 0; beating it says nothing about invertibility.)
/// 6. cluster bootstrap of the test samples (no refit): percentile intervals of the held-out
///    R², ρ_min and mean ρ;
/// 7. analytic floors: the Wachter edge sqrt(λ+) of the in-sample top canonical correlation under
///    independence, λ+ = (sqrt(c1(1−c2)) + sqrt(c2(1−c1)))², c1 = d/n, c2 = k/n; and d/(n−1),
///    the expected in-sample OLS R² under independence;
/// 8. the same report for each baseline representation (same split and seeds), and selectivity
///    = held-out R² of F minus the best baseline's;
/// 9. the verdict.
///
/// R² means the variance-weighted held-out R², 1 − Σ SSE / Σ SST over the k targets: unlike the
/// mean of per-target R²s it does not depend on the basis of the targets (ilr coordinates are
/// one arbitrary orthonormal basis of the centred log-posterior). The per-target values and
/// their mean are in the report too.
///
/// The verdict thresholds (VerdictThresholds) are **conventions** suggested in
/// ident_anchors.md §7.4 from values typical of identified synthetic models (MCC/R² ≳ 0.9) and
/// from null floors; they are **not** numbers from the paper, which states no threshold.
///
/// \code
/// ergo::IdentifiabilityParams p;                    // defaults documented below
/// auto rep = ergo::check_identifiability(F, ergo::ilr(world.log_posterior(x)), p, groups,
///                                        {{"untrained", F_random}});
/// std::cout << rep.verdict.summary << "\n";
/// rep.write_json(std::cout);
/// \endcode

#include "../core/callback.hpp"
#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "cca.hpp"
#include "correlation.hpp"
#include "detail/writers.hpp"
#include "resampling.hpp"
#include "ridge.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <ostream>
#include <string>
#include <vector>

namespace ergo {

/// \brief Thresholds of the verdict. Conventions, not the paper's numbers (see file comment).
struct VerdictThresholds {
  double min_rho_min = 0.9;       ///< held-out ρ_min must be ≥ this
  double min_r2 = 0.9;            ///< held-out variance-weighted R² (F → T) must be ≥ this
  double max_p_value = 0.01;      ///< permutation p-values (R² and ρ_min) must be < this
  double max_kappa_w = 10.0;      ///< held-out κ_w = ρ_1/ρ_min must be ≤ this
  double min_selectivity = 0.2;   ///< R² selectivity over the best baseline must be ≥ this
  /// Also require the lower bootstrap bound of ρ_min to exceed the 95th percentile of the null
  /// distribution of the largest held-out canonical correlation.
  bool require_ci_above_null = true;

  void check() const {
    const char* who = "VerdictThresholds::check";
    check_arg(max_p_value > 0.0 && max_p_value <= 1.0, who, "max_p_value", "a value in (0, 1]",
              max_p_value);
    check_arg(max_kappa_w >= 1.0, who, "max_kappa_w", "a value >= 1", max_kappa_w);
  }
};

/// \brief Settings of check_identifiability.
struct IdentifiabilityParams {
  /// Name of the representation (appears in the report). Default "representation".
  std::string name = "representation";
  /// Description of the targets, e.g. "ilr(log p(c|x))". Default "targets".
  std::string target_name = "targets";
  /// Share of samples (whole groups) held out for testing, in (0, 1). Default 0.25.
  double test_fraction = 0.25;
  /// Ridge settings for both directions (default: GCV, or grouped 5-fold with groups).
  RidgeParams ridge = {};
  /// CCA settings (default: plain CCA via QR up to 20 000 training samples, ridge switched on
  /// automatically for a block of dimension p once n_train < 10 p).
  CcaParams cca = {};
  /// Also fit T → F (how much of F the targets explain). Default true.
  bool reverse = true;
  /// Compute out-of-sample MCC (Pearson and Spearman). Default true.
  bool mcc = true;
  /// Permutations of the null (0 disables the null and its verdict criteria). Default 200, so
  /// the smallest attainable p-value 1/201 is below the default threshold 0.01; check() refuses a
  /// count whose smallest p-value 1/(B+1) cannot pass thresholds.max_p_value.
  Index n_permutations = 200;
  /// Bootstrap replicates (0 disables the intervals). Default 1000.
  Index n_bootstrap = 1000;
  /// Bootstrap interval level in (0, 1). Default 0.95.
  double ci_level = 0.95;
  /// Seed of the split, the folds, the permutations and the bootstrap.
  std::uint64_t seed = 0;
  /// Verdict thresholds (conventions).
  VerdictThresholds thresholds = {};

  void check() const {
    const char* who = "IdentifiabilityParams::check";
    check_arg(test_fraction > 0.0 && test_fraction < 1.0, who, "test_fraction",
              "a value in (0, 1)", test_fraction);
    check_arg(n_permutations >= 0, who, "n_permutations", "a value >= 0", n_permutations);
    check_arg(n_bootstrap >= 0, who, "n_bootstrap", "a value >= 0", n_bootstrap);
    check_arg(ci_level > 0.0 && ci_level < 1.0, who, "ci_level", "a value in (0, 1)", ci_level);
    ridge.check();
    cca.check();
    thresholds.check();
    if (n_permutations > 0)
      check_arg(1.0 / static_cast<double>(n_permutations + 1) < thresholds.max_p_value, who,
                "n_permutations",
                detail::str_cat("a count whose smallest p-value 1/(B+1) is below "
                                "thresholds.max_p_value = ",
                                thresholds.max_p_value, " (at least ",
                                static_cast<Index>(std::ceil(1.0 / thresholds.max_p_value)),
                                "), or 0 to disable the null"),
                n_permutations);
  }
};

/// \brief One ridge direction of the report (F → T or T → F).
struct RegressionSummary {
  std::string direction;          ///< "F->T" or "T->F"
  RidgeCv cv_method = RidgeCv::Gcv;  ///< penalty selection actually used
  double lambda = std::numeric_limits<double>::quiet_NaN();           ///< chosen λ (absolute)
  double relative_lambda = std::numeric_limits<double>::quiet_NaN();  ///< λ / mean Gram eigenvalue
  double cv_r2_mean = std::numeric_limits<double>::quiet_NaN();  ///< CV R² (training samples)
  R2Scores train;                 ///< in-sample R² on the training samples (inflation diagnostic)
  R2Scores test;                  ///< held-out R² on the test samples (the headline)
  Vector<double> singular_values; ///< of the fitted map (outputs × inputs)
  double condition_number = std::numeric_limits<double>::quiet_NaN();  ///< σ_max/σ_min
  Index rank = 0;                 ///< numerical rank of the fitted map
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
  std::string name;        ///< e.g. "rho_min"
  std::string comparison;  ///< ">=", "<=", "<" or ">"
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
  std::string name;         ///< representation name
  std::string target_name;  ///< target description
  Index n_samples = 0, n_train = 0, n_test = 0;  ///< sample counts
  Index n_groups = 0;       ///< distinct groups (= n_samples without groups)
  Index n_train_groups = 0, n_test_groups = 0;  ///< distinct groups on each side of the split
  Index d = 0;              ///< feature dimension (rows of F)
  Index k = 0;              ///< target dimension (rows of T)
  Index n_distinct_targets = 0;  ///< distinct columns of T (few distinct values inflate fits)
  Split split;                   ///< the train/test sample indices every statistic used
  RegressionSummary forward;     ///< F → T
  bool has_reverse = false;
  RegressionSummary reverse;     ///< T → F (if params.reverse)
  CcaReport cca;
  bool has_mcc = false;
  MccResult mcc_pearson;         ///< out-of-sample MCC, Pearson (matched on train)
  MccResult mcc_spearman;        ///< out-of-sample MCC, Spearman (average ranks)
  NullSummary null_r2;           ///< permutation null of the held-out R² (F → T, variance-weighted)
  /// Observed held-out ρ_min against the permutation null of the held-out *largest* ρ_1
  /// (mean, p95 and p-value are those of the null ρ_1).
  NullSummary null_rho_min_vs_max;
  NullSummary null_rho_mean;     ///< permutation null of the held-out mean ρ
  Interval ci_r2;                ///< bootstrap interval of the held-out R² (variance-weighted)
  Interval ci_rho_min;           ///< bootstrap interval of the held-out ρ_min
  Interval ci_rho_mean;          ///< bootstrap interval of the held-out mean ρ
  double wachter_edge = std::numeric_limits<double>::quiet_NaN();  ///< null in-sample ρ_1 bound
  double r2_floor = std::numeric_limits<double>::quiet_NaN();      ///< d/(n_train − 1)
  std::vector<std::string> warnings;  ///< diagnostics worth reading before the verdict
  std::vector<IdentifiabilityReport> baselines;  ///< same report for each baseline
  /// Held-out R² (variance-weighted) of F minus the best selectivity baseline's (NaN without one).
  double selectivity_r2 = std::numeric_limits<double>::quiet_NaN();
  /// Held-out ρ_min of F minus the best selectivity baseline's (NaN without one).
  double selectivity_rho_min = std::numeric_limits<double>::quiet_NaN();
  Verdict verdict;

  /// \brief Writes the report as one JSON object (NaN/inf → null).
  void write_json(std::ostream& os) const {
    detail::JsonSink s(os);
    s.begin_document();
    visit(s);
    s.end_document();
  }
  /// \brief Writes the report as long-format CSV ("key,value" rows; NaN → empty).
  void write_csv(std::ostream& os) const {
    detail::CsvSink s(os);
    s.begin_document();
    visit(s);
    s.end_document();
  }

  /// \brief Writes a human-readable summary (a few lines per section, then the verdict).
  void write_summary(std::ostream& os) const {
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
       << n_groups << "), d = " << d << ", k = " << k << ", distinct targets "
       << n_distinct_targets << "\n"
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
       << " (in-sample rho_1 " << num(cca.train.max) << ", null edge " << num(wachter_edge)
       << ")\n";
    if (has_mcc)
      os << "  MCC (matched on train): pearson " << num(mcc_pearson.mcc) << ", spearman "
         << num(mcc_spearman.mcc) << "\n";
    if (null_r2.permutations > 0)
      os << "  permutation null (B = " << null_r2.permutations << "): R^2 p = "
         << num(null_r2.p_value) << " (null mean " << num(null_r2.mean) << ", p95 "
         << num(null_r2.p95) << "); rho_min vs null rho_1: p = "
         << num(null_rho_min_vs_max.p_value) << " (null rho_1 mean "
         << num(null_rho_min_vs_max.mean) << ", p95 " << num(null_rho_min_vs_max.p95) << ")\n";
    for (const auto& b : baselines)
      os << "  baseline " << b.name << ": R^2 " << num(b.forward.test.variance_weighted) << ", rho_min "
         << num(b.cca.test.min) << ", verdict " << (b.verdict.identified ? "identified" : "not identified")
         << "\n";
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
  void visit(Sink& s) const {
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
    visit_regression(s, "forward", forward);
    if (has_reverse) visit_regression(s, "reverse", reverse);
    s.begin("cca");
    s.field("method", to_string(cca.method));
    s.field("regularization_f", cca.regularization_f);
    s.field("regularization_t", cca.regularization_t);
    s.field("rank_f", cca.rank_f);
    s.field("rank_t", cca.rank_t);
    visit_cca(s, "train", cca.train);
    visit_cca(s, "test", cca.test);
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
    visit_null(s, "r2", null_r2);
    visit_null(s, "rho_min_vs_max", null_rho_min_vs_max);
    visit_null(s, "rho_mean", null_rho_mean);
    s.end();
    s.begin("bootstrap");
    visit_interval(s, "r2", ci_r2);
    visit_interval(s, "rho_min", ci_rho_min);
    visit_interval(s, "rho_mean", ci_rho_mean);
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

 private:
  template <class Sink>
  static void visit_r2(Sink& s, const char* name, const R2Scores& r) {
    s.begin(name);
    s.field("mean", r.mean);
    s.field("variance_weighted", r.variance_weighted);
    s.field("mse", r.mse);
    s.field("per_output", r.per_output);
    s.end();
  }
  template <class Sink>
  static void visit_regression(Sink& s, const char* name, const RegressionSummary& r) {
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
  static void visit_cca(Sink& s, const char* name, const CcaSummary& c) {
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
  static void visit_null(Sink& s, const char* name, const NullSummary& n) {
    s.begin(name);
    s.field("observed", n.observed);
    s.field("null_mean", n.mean);
    s.field("null_p95", n.p95);
    s.field("p_value", n.p_value);
    s.field("permutations", n.permutations);
    s.end();
  }
  template <class Sink>
  static void visit_interval(Sink& s, const char* name, const Interval& c) {
    s.begin(name);
    s.field("estimate", c.estimate);
    s.field("lo", c.lo);
    s.field("hi", c.hi);
    s.field("se", c.se);
    s.field("level", c.level);
    s.end();
  }
};

/// \brief A baseline representation to run the same report on (e.g. an untrained network's
/// features): its name and its d' × N features (double; same samples as F).
struct Baseline {
  std::string name;                           ///< label in the report
  Eigen::Ref<const Matrix<double>> features;  ///< d' × N, same samples (columns) as F
  /// Include in the selectivity (F minus the best such baseline). Set false for reference points
  /// that are reported but are not the comparison the verdict should make (e.g. the raw input).
  bool selectivity = true;
};

namespace detail {

/// Number of distinct columns of m (exact equality).
inline Index count_distinct_columns(const Matrix<double>& m) {
  std::vector<Index> idx(static_cast<size_t>(m.cols()));
  std::iota(idx.begin(), idx.end(), Index(0));
  auto less = [&](Index a, Index b) {
    for (Index r = 0; r < m.rows(); ++r) {
      if (m(r, a) < m(r, b)) return true;
      if (m(r, b) < m(r, a)) return false;
    }
    return false;
  };
  std::sort(idx.begin(), idx.end(), less);
  Index distinct = m.cols() > 0 ? 1 : 0;
  for (size_t i = 1; i < idx.size(); ++i)
    if (less(idx[i - 1], idx[i])) ++distinct;
  return distinct;
}

/// Wachter upper edge of the largest in-sample canonical correlation of independent p- and
/// q-dimensional Gaussian blocks with n samples.
inline double wachter_edge(Index p, Index q, Index n) {
  const double c1 = static_cast<double>(p) / static_cast<double>(n);
  const double c2 = static_cast<double>(q) / static_cast<double>(n);
  if (c1 >= 1.0 || c2 >= 1.0) return 1.0;
  const double a = std::sqrt(c1 * (1.0 - c2)) + std::sqrt(c2 * (1.0 - c1));
  return std::sqrt(std::min(1.0, a * a));
}

inline Criterion make_criterion(const char* name, const char* cmp, double value, double threshold,
                                bool evaluated) {
  Criterion c;
  c.name = name;
  c.comparison = cmp;
  c.value = value;
  c.threshold = threshold;
  c.evaluated = evaluated;
  if (evaluated) {
    const std::string op = cmp;
    if (op == ">=") c.passed = value >= threshold;
    else if (op == "<=") c.passed = value <= threshold;
    else if (op == "<") c.passed = value < threshold;
    else c.passed = value > threshold;
  }
  return c;
}

inline void fill_regression(RegressionSummary& r, const RidgeRegression& fit, const char* dir) {
  r.direction = dir;
  r.cv_method = fit.cv_method();
  r.lambda = fit.lambda();
  r.relative_lambda = fit.relative_lambda();
  r.cv_r2_mean = fit.cv_r2_mean();
  r.singular_values = fit.singular_values();
  r.condition_number = fit.condition_number();
  r.rank = fit.rank();
}

inline Verdict make_verdict(const IdentifiabilityReport& r, const IdentifiabilityParams& p) {
  const VerdictThresholds& t = p.thresholds;
  Verdict v;
  const bool have_null = p.n_permutations > 0;
  v.criteria.push_back(make_criterion("rho_min", ">=", r.cca.test.min, t.min_rho_min, true));
  v.criteria.push_back(
      make_criterion("r2", ">=", r.forward.test.variance_weighted, t.min_r2, true));
  v.criteria.push_back(
      make_criterion("p_value_r2", "<", r.null_r2.p_value, t.max_p_value, have_null));
  v.criteria.push_back(make_criterion("p_value_rho_min_vs_null_rho_1", "<",
                                      r.null_rho_min_vs_max.p_value, t.max_p_value, have_null));
  v.criteria.push_back(make_criterion("rho_min_ci_lo_above_null_rho_1_p95", ">", r.ci_rho_min.lo,
                                      r.null_rho_min_vs_max.p95,
                                      t.require_ci_above_null && have_null && p.n_bootstrap > 0));
  v.criteria.push_back(make_criterion("kappa_w", "<=", r.cca.test.kappa, t.max_kappa_w, true));
  v.criteria.push_back(make_criterion("selectivity_r2", ">=", r.selectivity_r2, t.min_selectivity,
                                      !std::isnan(r.selectivity_r2)));
  Index evaluated = 0, passed = 0;
  for (const auto& c : v.criteria)
    if (c.evaluated) {
      ++evaluated;
      if (c.passed) ++passed;
    }
  v.identified = evaluated > 0 && passed == evaluated;
  v.summary = str_cat(v.identified ? "identified" : "not identified", ": ", passed, "/",
                      evaluated, " evaluated criteria passed");
  for (const auto& c : v.criteria)
    if (c.evaluated && !c.passed)
      v.summary += str_cat("; failed ", c.name, " (", c.value, " ", c.comparison, " ",
                           c.threshold, " is false)");
  return v;
}

}  // namespace detail

/// \brief Runs the identifiability checks of F against T (see the file comment).
/// \param f representation, d × N (finite; float or double)
/// \param t targets, k × N (finite), e.g. ilr / alr / concept log-odds of the log-posteriors
/// \param params settings (checked) \param groups optional group id per sample
/// \param baselines other representations of the same N samples to report and compare against
/// \param cb optional progress callback (phase "permutation-null"); may stop the null early
/// \throws InvalidArgument on mismatched shapes, non-finite data or too few samples/groups
template <class DF, class DT>
IdentifiabilityReport check_identifiability(const Eigen::MatrixBase<DF>& f_in,
                                            const Eigen::MatrixBase<DT>& t_in,
                                            const IdentifiabilityParams& params = {},
                                            const Groups& groups = {},
                                            const std::vector<Baseline>& baselines = {},
                                            Callback* cb = nullptr) {
  const char* who = "check_identifiability";
  const auto& f = f_in.eval();  // expressions evaluated once; plain matrices are not copied
  const auto& t = t_in.eval();
  params.check();
  check_arg(f.cols() == t.cols(), who, "t", detail::str_cat(f.cols(), " columns (as f)"),
            t.cols());
  check_arg(f.rows() >= 1 && t.rows() >= 1, who, "f, t", "at least one row each",
            detail::str_cat(f.rows(), " and ", t.rows()));
  check_finite(who, "f", f);
  check_finite(who, "t", t);
  groups.check_size(who, f.cols());
  for (size_t b = 0; b < baselines.size(); ++b)
    check_arg(baselines[b].features.cols() == f.cols(), who,
              detail::str_cat("baselines[", b, "].features"),
              detail::str_cat(f.cols(), " columns (as f)"), baselines[b].features.cols());

  IdentifiabilityReport r;
  r.name = params.name;
  r.target_name = params.target_name;
  const Index n = f.cols();
  r.n_samples = n;
  r.d = f.rows();
  r.k = t.rows();
  r.n_groups = count_groups(groups, n);

  Rng split_rng(derive_seed(params.seed, 0));
  const Split split = train_test_split(n, params.test_fraction, split_rng, groups);
  r.split = split;
  r.n_train = split.train.size();
  r.n_test = split.test.size();
  check_arg(r.n_train >= 4 && r.n_test >= 3, who, "f",
            "enough samples for at least 4 training and 3 test samples",
            detail::str_cat(r.n_train, " train, ", r.n_test, " test"));
  const Groups g_tr = subset_groups(groups, split.train);
  const Groups g_te = subset_groups(groups, split.test);
  r.n_train_groups = count_groups(g_tr, r.n_train);
  r.n_test_groups = count_groups(g_te, r.n_test);
  const Matrix<double> f_tr = gather_columns(f, split.train), f_te = gather_columns(f, split.test);
  const Matrix<double> t_tr = gather_columns(t, split.train), t_te = gather_columns(t, split.test);
  {
    const Matrix<double> tall = t.template cast<double>();
    r.n_distinct_targets = detail::count_distinct_columns(tall);
  }

  // Forward and reverse ridge.
  RidgeRegression fwd(params.ridge);
  fwd.fit(f_tr, t_tr, g_tr);
  detail::fill_regression(r.forward, fwd, "F->T");
  r.forward.train = fwd.score(f_tr, t_tr);
  const Matrix<double> pred_te = fwd.predict(f_te);
  r.forward.test = r2_scores(t_te, pred_te);
  if (params.reverse) {
    RidgeRegression rev(params.ridge);
    rev.fit(t_tr, f_tr, g_tr);
    detail::fill_regression(r.reverse, rev, "T->F");
    r.reverse.train = rev.score(t_tr, f_tr);
    r.reverse.test = rev.score(t_te, f_te);
    r.has_reverse = true;
  }

  // CCA.
  Cca cca(params.cca);
  cca.fit(f_tr, t_tr);
  r.cca.method = cca.method();
  r.cca.regularization_f = cca.regularization_x();
  r.cca.regularization_t = cca.regularization_y();
  r.cca.rank_f = cca.rank_x();
  r.cca.rank_t = cca.rank_y();
  r.cca.train = summarize_cca(cca.correlations());
  const Matrix<double> u_te = cca.transform_x(f_te), v_te = cca.transform_y(t_te);
  r.cca.test = summarize_cca(Cca::paired_correlations(u_te, v_te));

  // MCC (matching learned on the training samples).
  if (params.mcc) {
    r.mcc_pearson = mcc_out_of_sample(t_tr, f_tr, t_te, f_te, CorrelationKind::Pearson);
    r.mcc_spearman = mcc_out_of_sample(t_tr, f_tr, t_te, f_te, CorrelationKind::Spearman);
    r.has_mcc = true;
  }

  // Permutation null (T's training columns re-paired; F-side factorisations reused).
  if (params.n_permutations > 0) {
    Rng rng(derive_seed(params.seed, 1));
    std::vector<double> n_r2, n_rmax, n_rmean;
    RidgeRegression null_fit(params.ridge);
    Cca null_cca = cca;
    ProgressEvent ev;
    ev.phase = "permutation-null";
    ev.total = params.n_permutations;
    Stopwatch clock;
    if (cb) cb->on_begin(ev);
    const GroupPermuter permuter(r.n_train, g_tr);
    for (Index b = 0; b < params.n_permutations; ++b) {
      const IndexVector perm = permuter(rng);
      null_fit.set_solution(fwd.engine().solve(f_tr, t_tr, perm.data(), params.ridge));
      n_r2.push_back(r2_scores(t_te, null_fit.predict(f_te)).variance_weighted);
      null_cca.refit_permuted(f_tr, t_tr, perm);
      const CcaSummary cs = summarize_cca(null_cca.evaluate(f_te, t_te));
      n_rmax.push_back(cs.max);
      n_rmean.push_back(cs.mean);
      if (cb) {
        ev.step = b + 1;
        ev.elapsed_seconds = clock.seconds();
        if (!cb->on_progress(ev)) {
          r.warnings.push_back(detail::str_cat("permutation null stopped by the callback after ",
                                               b + 1, " of ", params.n_permutations));
          break;
        }
      }
    }
    if (cb) cb->on_end(ev, "");
    r.null_r2 = summarize_null(r.forward.test.variance_weighted, n_r2, true);
    r.null_rho_min_vs_max = summarize_null(r.cca.test.min, n_rmax, true);
    r.null_rho_mean = summarize_null(r.cca.test.mean, n_rmean, true);
  }

  // Cluster bootstrap of the test samples (no refit).
  r.ci_r2.estimate = r.forward.test.variance_weighted;
  r.ci_rho_min.estimate = r.cca.test.min;
  r.ci_rho_mean.estimate = r.cca.test.mean;
  if (params.n_bootstrap > 0) {
    Rng rng(derive_seed(params.seed, 2));
    std::vector<double> b_r2, b_rmin, b_rmean;
    for (Index b = 0; b < params.n_bootstrap; ++b) {
      const IndexVector idx = bootstrap_indices(r.n_test, rng, g_te);
      if (idx.size() < 3) continue;
      const Matrix<double> tt = gather_columns(t_te, idx), pp = gather_columns(pred_te, idx);
      b_r2.push_back(r2_scores(tt, pp).variance_weighted);
      const CcaSummary cs =
          summarize_cca(Cca::paired_correlations(gather_columns(u_te, idx), gather_columns(v_te, idx)));
      b_rmin.push_back(cs.min);
      b_rmean.push_back(cs.mean);
    }
    r.ci_r2 = percentile_interval(r.forward.test.variance_weighted, b_r2, params.ci_level);
    r.ci_rho_min = percentile_interval(r.cca.test.min, b_rmin, params.ci_level);
    r.ci_rho_mean = percentile_interval(r.cca.test.mean, b_rmean, params.ci_level);
  }

  // Analytic floors and warnings.
  r.wachter_edge = detail::wachter_edge(r.d, r.k, r.n_train);
  r.r2_floor = static_cast<double>(r.d) / static_cast<double>(r.n_train - 1);
  const Index n_eff = count_groups(g_tr, r.n_train);
  if (r.n_distinct_targets <= r.d + 1)
    r.warnings.push_back(detail::str_cat(
        "only ", r.n_distinct_targets, " distinct target columns for d = ", r.d,
        ": an affine map can interpolate any assignment of target values (ident_anchors §6.2)"));
  if (static_cast<double>(n_eff) < 10.0 * static_cast<double>(r.d))
    r.warnings.push_back(detail::str_cat("effective training sample size ", n_eff, " < 10 d = ",
                                         10 * r.d, ": in-sample statistics are inflated"));
  if (r.k > r.d)
    r.warnings.push_back(detail::str_cat("target dimension k = ", r.k, " exceeds d = ", r.d,
                                         ": no injective linear map F -> T can exist"));
  if (r.cca.train.max <= 2.0 * r.wachter_edge)
    r.warnings.push_back(detail::str_cat("in-sample top canonical correlation ", r.cca.train.max,
                                         " is within 2x of the null Wachter edge ",
                                         r.wachter_edge));
  if (r.forward.train.variance_weighted <= 2.0 * r.r2_floor)
    r.warnings.push_back(detail::str_cat("in-sample R^2 ", r.forward.train.variance_weighted,
                                         " is within 2x of the null floor d/(n-1) = ", r.r2_floor));
  if (r.forward.rank < std::min(r.k, r.d))
    r.warnings.push_back(detail::str_cat("fitted map F -> T is rank deficient: rank ",
                                         r.forward.rank, " < ", std::min(r.k, r.d)));
  if (!groups.empty() && exchangeable_groups(r.n_train, g_tr) < n_eff)
    r.warnings.push_back(detail::str_cat(
        n_eff - exchangeable_groups(r.n_train, g_tr),
        " training groups have a unique size and keep their own targets under the group-level "
        "permutation (the null is conservative)"));

  // Baselines: the same report on the same split and seeds.
  if (!baselines.empty()) {
    double best_r2 = -std::numeric_limits<double>::infinity();
    double best_rho = -std::numeric_limits<double>::infinity();
    bool any = false;
    for (const auto& bl : baselines) {
      IdentifiabilityParams bp = params;
      bp.name = bl.name;
      IdentifiabilityReport br = check_identifiability(bl.features, t, bp, groups, {}, nullptr);
      if (bl.selectivity) {
        any = true;
        best_r2 = std::max(best_r2, br.forward.test.variance_weighted);
        best_rho = std::max(best_rho, br.cca.test.min);
      }
      r.baselines.push_back(std::move(br));
    }
    if (any) {
      r.selectivity_r2 = r.forward.test.variance_weighted - best_r2;
      r.selectivity_rho_min = r.cca.test.min - best_rho;
    }
  }
  r.verdict = detail::make_verdict(r, params);
  return r;
}

}  // namespace ergo

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
/// The verdict thresholds (VerdictThresholds) are **conventions** (docs/identify.md,
/// "VerdictThresholds"), from values typical of identified synthetic models (MCC/R² ≳ 0.9) and
/// from null floors; they are **not** numbers from the paper, which states no threshold.
///
/// \code
/// ergo::identify::IdentifiabilityParams p;                    // defaults documented below
/// auto rep = ergo::identify::check_identifiability(F, ergo::identify::ilr(world.log_posterior(x)),
/// p, groups,
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
#include "report_params.hpp"
#include "report_result.hpp"
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

namespace ergo::identify {

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
    if (op == ">=")
      c.passed = value >= threshold;
    else if (op == "<=")
      c.passed = value <= threshold;
    else if (op == "<")
      c.passed = value < threshold;
    else
      c.passed = value > threshold;
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
  v.summary = ergo::detail::str_cat(v.identified ? "identified" : "not identified", ": ", passed,
                                    "/", evaluated, " evaluated criteria passed");
  for (const auto& c : v.criteria)
    if (c.evaluated && !c.passed)
      v.summary += ergo::detail::str_cat("; failed ", c.name, " (", c.value, " ", c.comparison, " ",
                                         c.threshold, " is false)");
  return v;
}

/// Permutation null: T's training columns re-paired (groups kept whole), the ridge and CCA refitted
/// with the F-side factorisations of `fwd` and `cca` reused, and scored on the untouched test part.
inline void permutation_null(IdentifiabilityReport& r, RidgeRegression& fwd, const Cca& cca,
                             const Matrix<double>& f_tr, const Matrix<double>& t_tr,
                             const Matrix<double>& f_te, const Matrix<double>& t_te,
                             const Groups& g_tr, const IdentifiabilityParams& params,
                             Callback* cb) {
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
        r.warnings.push_back(
            ergo::detail::str_cat("permutation null stopped by the callback after ", b + 1, " of ",
                                  params.n_permutations));
        break;
      }
    }
  }
  if (cb) cb->on_end(ev, "");
  r.null_r2 = summarize_null(r.forward.test.variance_weighted, n_r2, true);
  r.null_rho_min_vs_max = summarize_null(r.cca.test.min, n_rmax, true);
  r.null_rho_mean = summarize_null(r.cca.test.mean, n_rmean, true);
}

/// Cluster bootstrap of the test samples (no refit): percentile intervals of R², ρ_min, mean ρ.
inline void bootstrap_intervals(IdentifiabilityReport& r, const Matrix<double>& t_te,
                                const Matrix<double>& pred_te, const Matrix<double>& u_te,
                                const Matrix<double>& v_te, const Groups& g_te,
                                const IdentifiabilityParams& params) {
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
      const CcaSummary cs = summarize_cca(
          Cca::paired_correlations(gather_columns(u_te, idx), gather_columns(v_te, idx)));
      b_rmin.push_back(cs.min);
      b_rmean.push_back(cs.mean);
    }
    r.ci_r2 = percentile_interval(r.forward.test.variance_weighted, b_r2, params.ci_level);
    r.ci_rho_min = percentile_interval(r.cca.test.min, b_rmin, params.ci_level);
    r.ci_rho_mean = percentile_interval(r.cca.test.mean, b_rmean, params.ci_level);
  }
}

/// Analytic null floors, and the warnings a reader should see before the verdict.
inline void add_floors_and_warnings(IdentifiabilityReport& r, const Groups& groups,
                                    const Groups& g_tr) {
  r.wachter_edge = wachter_edge(r.d, r.k, r.n_train);
  r.r2_floor = static_cast<double>(r.d) / static_cast<double>(r.n_train - 1);
  const Index n_eff = count_groups(g_tr, r.n_train);
  if (r.n_distinct_targets <= r.d + 1)
    r.warnings.push_back(ergo::detail::str_cat(
        "only ", r.n_distinct_targets, " distinct target columns for d = ", r.d,
        ": an affine map can interpolate any assignment of target values"));
  if (static_cast<double>(n_eff) < 10.0 * static_cast<double>(r.d))
    r.warnings.push_back(ergo::detail::str_cat("effective training sample size ", n_eff,
                                               " < 10 d = ", 10 * r.d,
                                               ": in-sample statistics are inflated"));
  if (r.k > r.d)
    r.warnings.push_back(ergo::detail::str_cat("target dimension k = ", r.k, " exceeds d = ", r.d,
                                               ": no injective linear map F -> T can exist"));
  if (r.cca.train.max <= 2.0 * r.wachter_edge)
    r.warnings.push_back(
        ergo::detail::str_cat("in-sample top canonical correlation ", r.cca.train.max,
                              " is within 2x of the null Wachter edge ", r.wachter_edge));
  if (r.forward.train.variance_weighted <= 2.0 * r.r2_floor)
    r.warnings.push_back(
        ergo::detail::str_cat("in-sample R^2 ", r.forward.train.variance_weighted,
                              " is within 2x of the null floor d/(n-1) = ", r.r2_floor));
  if (r.forward.rank < std::min(r.k, r.d))
    r.warnings.push_back(ergo::detail::str_cat("fitted map F -> T is rank deficient: rank ",
                                               r.forward.rank, " < ", std::min(r.k, r.d)));
  if (!groups.empty() && exchangeable_groups(r.n_train, g_tr) < n_eff)
    r.warnings.push_back(ergo::detail::str_cat(
        n_eff - exchangeable_groups(r.n_train, g_tr),
        " training groups have a unique size and keep their own targets under the group-level "
        "permutation (the null is conservative)"));
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
  check_arg(f.cols() == t.cols(), who, "t", ergo::detail::str_cat(f.cols(), " columns (as f)"),
            t.cols());
  check_arg(f.rows() >= 1 && t.rows() >= 1, who, "f, t", "at least one row each",
            ergo::detail::str_cat(f.rows(), " and ", t.rows()));
  check_finite(who, "f", f);
  check_finite(who, "t", t);
  groups.check_size(who, f.cols());
  for (size_t b = 0; b < baselines.size(); ++b)
    check_arg(baselines[b].features.cols() == f.cols(), who,
              ergo::detail::str_cat("baselines[", b, "].features"),
              ergo::detail::str_cat(f.cols(), " columns (as f)"), baselines[b].features.cols());

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
            ergo::detail::str_cat(r.n_train, " train, ", r.n_test, " test"));
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

  if (params.n_permutations > 0)
    detail::permutation_null(r, fwd, cca, f_tr, t_tr, f_te, t_te, g_tr, params, cb);
  detail::bootstrap_intervals(r, t_te, pred_te, u_te, v_te, g_te, params);
  detail::add_floors_and_warnings(r, groups, g_tr);

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

}  // namespace ergo::identify

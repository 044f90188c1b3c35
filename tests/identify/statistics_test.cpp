// Tests for ergo/identify's statistical layer: grouped splits, folds, permutations and bootstrap
// resamples, p-values (uniform under a true null), the IdentifiabilityReport, its verdict and its
// JSON/CSV output.
#include "common/test_utils.hpp"

#include <ergo/identify.hpp>

#include <gmock/gmock.h>

#ifdef ERGO_TEST_HAVE_NLOHMANN_JSON
#include <nlohmann/json.hpp>
#endif

#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <vector>

using namespace ergo;
using namespace ergo::identify;
using ::testing::HasSubstr;

namespace {

std::vector<Index> blocks_of(Index n, Index size) {
  std::vector<Index> g(static_cast<size_t>(n));
  for (Index i = 0; i < n; ++i) g[static_cast<size_t>(i)] = 1000 + i / size;  // non-contiguous ids
  return g;
}

// Smallest q with P(Binomial(m, p) > q) < alpha.
Index binomial_upper(Index m, double p, double alpha) {
  double cdf = 0.0;
  for (Index q = 0; q <= m; ++q) {
    cdf += std::exp(
        std::lgamma(static_cast<double>(m + 1)) - std::lgamma(static_cast<double>(q + 1)) -
        std::lgamma(static_cast<double>(m - q + 1)) + static_cast<double>(q) * std::log(p) +
        static_cast<double>(m - q) * std::log1p(-p));
    if (1.0 - cdf < alpha) return q;
  }
  return m;
}

}  // namespace

// ------------------------------------------------------------------------------ resampling ----

TEST(IdentifyResampling, GroupedSplitKeepsGroupsWhole) {
  const Index n = 103;
  const auto g = blocks_of(n, 5);
  Rng rng(1);
  const Split s = train_test_split(n, 0.3, rng, g);
  EXPECT_EQ(s.train.size() + s.test.size(), n);
  std::set<Index> train_groups, test_groups;
  for (Index i = 0; i < s.train.size(); ++i)
    train_groups.insert(g[static_cast<size_t>(s.train[i])]);
  for (Index i = 0; i < s.test.size(); ++i) test_groups.insert(g[static_cast<size_t>(s.test[i])]);
  for (Index id : test_groups)
    EXPECT_EQ(train_groups.count(id), 0u) << "group " << id << " straddles";
  // round(0.3 · 103) = 31 samples wanted; groups of 5 overshoot by at most 4.
  EXPECT_GE(s.test.size(), 31);
  EXPECT_LE(s.test.size(), 35);
  Rng again(1);
  EXPECT_EQ(train_test_split(n, 0.3, again, g).test, s.test);  // deterministic per seed
}

TEST(IdentifyResampling, FoldsPermutationsAndBootstrapRespectGroups) {
  const Index n = 60;
  std::vector<Index> g(static_cast<size_t>(n));
  for (Index i = 0; i < n; ++i)
    g[static_cast<size_t>(i)] = i < 40 ? i / 4 : 100 + (i - 40) / 5;  // sizes 4 and 5
  Rng rng(2);
  const IndexVector fold = fold_assignment(n, 3, rng, g);
  std::map<Index, std::set<Index>> folds_of_group;
  std::vector<Index> load(3, 0);
  for (Index i = 0; i < n; ++i) {
    folds_of_group[g[static_cast<size_t>(i)]].insert(fold[i]);
    ++load[static_cast<size_t>(fold[i])];
  }
  for (const auto& kv : folds_of_group) EXPECT_EQ(kv.second.size(), 1u);
  for (Index l : load)
    EXPECT_NEAR(static_cast<double>(l), 20.0, 5.0);  // greedy balance within a group

  const IndexVector p = permute_samples(n, rng, g);
  std::vector<Index> sorted(p.data(), p.data() + n);
  std::sort(sorted.begin(), sorted.end());
  for (Index i = 0; i < n; ++i) ASSERT_EQ(sorted[static_cast<size_t>(i)], i);  // a permutation
  for (Index i = 0; i < n; ++i) {
    // Position j of a group maps to position j of a group of the same size.
    const Index gi = g[static_cast<size_t>(i)], gj = g[static_cast<size_t>(p[i])];
    EXPECT_EQ(gi < 100, gj < 100);
    EXPECT_EQ(gi < 100 ? i % 4 : (i - 40) % 5, gj < 100 ? p[i] % 4 : (p[i] - 40) % 5);
  }
  EXPECT_EQ(exchangeable_groups(n, g), 14);

  const IndexVector b = bootstrap_indices(n, rng, g);
  std::map<Index, Index> copies;
  for (Index i = 0; i < b.size(); ++i) ++copies[b[i]];
  for (const auto& kv : copies) {
    // Every member of a drawn group appears as often as the group was drawn.
    const Index gid = g[static_cast<size_t>(kv.first)];
    for (Index i = 0; i < n; ++i)
      if (g[static_cast<size_t>(i)] == gid) {
        EXPECT_EQ(copies[i], kv.second);
      }
  }
  EXPECT_THROW(fold_assignment(n, 20, rng, g), InvalidArgument);  // 14 groups < 20 folds
}

TEST(IdentifyResampling, PValuesQuantilesAndIntervals) {
  const std::vector<double> null = {0.1, 0.5, 0.2, 0.9};
  EXPECT_DOUBLE_EQ(permutation_p_value(0.6, null), 2.0 / 5.0);  // (1 + #{0.9}) / 5
  EXPECT_DOUBLE_EQ(permutation_p_value(0.15, null, false), 2.0 / 5.0);
  EXPECT_DOUBLE_EQ(quantile({1, 2, 3, 4, 5}, 0.25), 2.0);
  EXPECT_DOUBLE_EQ(quantile({1, 2, 3, 4}, 0.5), 2.5);
  const NullSummary s = summarize_null(0.6, null);
  EXPECT_DOUBLE_EQ(s.mean, 0.425);
  const Interval ci = percentile_interval(0.5, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.8);
  EXPECT_DOUBLE_EQ(ci.lo, 1.0);
  EXPECT_DOUBLE_EQ(ci.hi, 9.0);
}

// ---------------------------------------------------------------- p-values under the null ----

TEST(IdentifyNull, PValuesAreUniformUnderATrueNull) {
  // Independent F and T: under exchangeability P(p ≤ 1/(B+1)) = 1/(B+1) exactly. With B = 19
  // that is 0.05; over m seeds the count of p ≤ 0.05 is Binomial(m, 0.05), and we accept counts
  // below its 0.999 quantile (and the fraction p ≤ 0.5 within Binomial(m, 0.5) bounds).
  const Index m = test::scaled(200, 40);
  IdentifiabilityParams p;
  p.n_permutations = 19;
  p.thresholds.max_p_value = 0.1;  // 19 permutations cannot reach the default 0.01 (refused)
  p.n_bootstrap = 0;
  p.reverse = false;
  p.mcc = false;
  Index low_r2 = 0, low_rho = 0, half_r2 = 0, low_grouped = 0;
  for (Index s = 0; s < m; ++s) {
    Rng rng(derive_seed(77, static_cast<std::uint64_t>(s)));
    const Matrix<double> f = rng.normal_matrix<double>(3, 60);
    const Matrix<double> t = rng.normal_matrix<double>(2, 60);
    p.seed = static_cast<std::uint64_t>(s);
    const IdentifiabilityReport r = check_identifiability(f, t, p);
    low_r2 += r.null_r2.p_value <= 0.05 ? 1 : 0;
    // ρ_min is compared with the null of ρ_1 ≥ ρ_min: conservative, so P(p ≤ 0.05) ≤ 0.05.
    low_rho += r.null_rho_min_vs_max.p_value <= 0.05 ? 1 : 0;
    half_r2 += r.null_r2.p_value <= 0.5 ? 1 : 0;
    // Grouped data (groups of 3 samples sharing a source): group-level null.
    Matrix<double> fg = f, tg = t;
    for (Index i = 0; i < 60; ++i) {
      fg.col(i) = f.col(i / 3 * 3) + 0.3 * f.col(i);
      tg.col(i) = t.col(i / 3 * 3) + 0.3 * t.col(i);
    }
    const IdentifiabilityReport rg = check_identifiability(fg, tg, p, blocks_of(60, 3));
    low_grouped += rg.null_r2.p_value <= 0.05 ? 1 : 0;
  }
  const Index hi = binomial_upper(m, 0.05, 1e-3);
  EXPECT_LE(low_r2, hi);
  EXPECT_LE(low_rho, hi);
  EXPECT_LE(low_grouped, hi);
  // Not degenerate either: at least one small p-value is overwhelmingly likely (P(0) = 0.95^m).
  EXPECT_GE(low_r2 + low_rho + low_grouped, 1);
  const Index hi_half = binomial_upper(m, 0.5, 1e-3);
  EXPECT_LE(half_r2, hi_half);
  EXPECT_GE(half_r2, m - hi_half);
}

// ------------------------------------------------------------------------------- report ----

namespace {
struct Planted {
  Matrix<double> f, t, f_random;
};
Planted planted(Index n, double noise, std::uint64_t seed) {
  Rng rng(seed);
  Planted p;
  p.f = rng.normal_matrix<double>(6, n);
  const Matrix<double> a = rng.normal_matrix<double>(4, 6);
  p.t = a * p.f + rng.normal_matrix<double>(4, n, 0.0, noise);
  p.f_random = rng.normal_matrix<double>(6, n);
  return p;
}
}  // namespace

TEST(IdentifyReport, PlantedMapIsIdentifiedAndBeatsItsBaseline) {
  const Planted d = planted(test::scaled(400, 200), 0.01, 5);
  IdentifiabilityParams p;
  p.n_bootstrap = test::scaled(300, 100);
  // A reference baseline (selectivity = false) is reported but does not enter the selectivity,
  // even though it is as good as F itself.
  const IdentifiabilityReport r = check_identifiability(
      d.f, d.t, p, {}, {{"random", d.f_random}, {"reference copy", d.f, false}});
  EXPECT_TRUE(r.verdict.identified) << r.verdict.summary;
  EXPECT_EQ(r.d, 6);
  EXPECT_EQ(r.k, 4);
  EXPECT_EQ(r.n_train + r.n_test, r.n_samples);
  // Noise sd 0.01 against signals of sd ≈ 2.4: R² ≈ 1 − 2e-5, ρ ≈ 1 − 1e-5.
  EXPECT_GT(r.forward.test.mean, 0.999);
  EXPECT_GT(r.cca.test.min, 0.999);
  EXPECT_DOUBLE_EQ(r.null_r2.p_value, 1.0 / 201.0);
  EXPECT_LT(r.null_rho_min_vs_max.p95, 0.9);
  EXPECT_DOUBLE_EQ(r.null_rho_min_vs_max.p_value, 1.0 / 201.0);
  EXPECT_LE(r.ci_rho_min.lo, r.cca.test.min);
  ASSERT_EQ(r.baselines.size(), 2u);
  EXPECT_EQ(r.baselines[0].name, "random");
  EXPECT_FALSE(r.baselines[0].verdict.identified);
  EXPECT_TRUE(r.baselines[1].verdict.identified);
  EXPECT_EQ(r.baselines[1].forward.test.mean, r.forward.test.mean);  // same split and seeds
  EXPECT_GT(r.selectivity_r2, 0.9);
  EXPECT_TRUE(r.has_reverse);
  EXPECT_EQ(r.forward.rank, 4);
}

TEST(IdentifyReport, IndependentDataIsNotIdentifiedAndGroupsUseKFold) {
  Rng rng(6);
  const Index n = 240;
  const Matrix<double> f = rng.normal_matrix<double>(5, n), t = rng.normal_matrix<double>(3, n);
  IdentifiabilityParams p;
  p.n_permutations = 50;
  p.n_bootstrap = 50;
  // 50 permutations cannot reach p < 0.01 (smallest p is 1/51): refused, naming the argument.
  try {
    (void)check_identifiability(f, t, p, blocks_of(n, 4));
    ADD_FAILURE() << "an unattainable p-value threshold was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("n_permutations"));
  }
  p.thresholds.max_p_value = 0.05;
  const IdentifiabilityReport r = check_identifiability(f, t, p, blocks_of(n, 4));
  EXPECT_FALSE(r.verdict.identified);
  EXPECT_EQ(r.forward.cv_method, RidgeCv::KFold);
  EXPECT_EQ(r.n_groups, 60);
  EXPECT_EQ(r.n_train_groups + r.n_test_groups, 60);
  EXPECT_LT(r.forward.test.variance_weighted, 0.2);
  // Groups stay on one side of the split, and the split is reported.
  for (Index i = 0; i < r.split.test.size(); ++i)
    for (Index j = 0; j < r.split.train.size(); ++j)
      ASSERT_NE(r.split.test[i] / 4, r.split.train[j] / 4);
}

TEST(IdentifyReport, JsonAndCsvOutput) {
  const Planted d = planted(160, 0.5, 7);
  IdentifiabilityParams p;
  p.n_permutations = 20;
  p.thresholds.max_p_value = 0.05;
  p.n_bootstrap = 20;
  p.name = "net \"A\"";
  const IdentifiabilityReport r = check_identifiability(d.f, d.t, p, {}, {{"rand", d.f_random}});
  std::ostringstream js, cs;
  r.write_json(js);
  r.write_csv(cs);
  const std::string json = js.str(), csv = cs.str();
  EXPECT_THAT(json, HasSubstr("\"name\": \"net \\\"A\\\"\""));
  EXPECT_THAT(json, HasSubstr("\"selectivity_r2\": "));
  EXPECT_THAT(csv, HasSubstr("key,value\n"));
  EXPECT_THAT(csv, HasSubstr("forward.test.mean,"));
  EXPECT_THAT(csv, HasSubstr("baselines[0].forward.test.mean,"));
  EXPECT_THAT(csv, HasSubstr("verdict.criteria[6].name,\"selectivity_r2\""));
  EXPECT_EQ(ergo::identify::detail::format_double(0.1), "0.1");
  EXPECT_EQ(std::strtod(ergo::identify::detail::format_double(1.0 / 3.0).c_str(), nullptr),
            1.0 / 3.0);
#ifdef ERGO_TEST_HAVE_NLOHMANN_JSON
  const auto j = nlohmann::json::parse(json);  // throws on invalid JSON
  EXPECT_EQ(j["data"]["n_samples"].get<Index>(), r.n_samples);
  EXPECT_EQ(j["forward"]["test"]["mean"].get<double>(), r.forward.test.mean);  // round-trips
  EXPECT_EQ(j["cca"]["test"]["rho"].size(), static_cast<size_t>(r.cca.test.rho.size()));
  EXPECT_EQ(j["baselines"][0]["name"].get<std::string>(), "rand");
  EXPECT_TRUE(j["baselines"][0]["selectivity_r2"].is_null());  // NaN → null
  EXPECT_EQ(j["verdict"]["identified"].get<bool>(), r.verdict.identified);
#endif
}

TEST(IdentifyReport, RejectsBadInput) {
  const Matrix<double> f = Matrix<double>::Zero(3, 10), t = Matrix<double>::Zero(2, 11);
  try {
    check_identifiability(f, t);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("check_identifiability(): t: expected 10 columns (as f), got 11"));
  }
  IdentifiabilityParams p;
  p.test_fraction = 1.5;
  EXPECT_THROW(check_identifiability(f, f, p), InvalidArgument);
  EXPECT_THROW(check_identifiability(f, f, IdentifiabilityParams{}, std::vector<Index>{1, 2}),
               InvalidArgument);
}

// Tests for ergo/identify/comparison.hpp (Student t, sign test, paired comparisons, TOST
// equivalence) against closed forms, brute force and simulated error rates; and for the pieces
// the main job added to the statistical layer: groups of identical columns, GroupPermuter,
// standardised probes, and the basis invariance of the variance-weighted ridge selection.
#include "common/test_utils.hpp"

#include <ergo/identify.hpp>

#include <Eigen/QR>

#include <cmath>
#include <vector>

using namespace ergo;
using namespace ergo::identify;

namespace {

const double kPi = 3.14159265358979323846;

// P(X ≤ k) for X ~ Binomial(n, 1/2) by summing exact binomial coefficients.
double binomial_half_cdf(Index n, Index k) {
  double c = 1.0, s = 0.0;  // C(n, 0)
  for (Index i = 0; i <= k; ++i) {
    s += c;
    c = c * static_cast<double>(n - i) / static_cast<double>(i + 1);
  }
  return s / std::pow(2.0, static_cast<double>(n));
}

}  // namespace

TEST(IdentifyComparison, StudentTMatchesClosedFormsAndTables) {
  for (double t : {-7.0, -1.3, -0.2, 0.0, 0.4, 2.5, 30.0}) {
    // ν = 1 is Cauchy; ν = 2 has F(t) = 1/2 + t / (2 sqrt(2 + t²)).
    EXPECT_NEAR(student_t_cdf(t, 1.0), 0.5 + std::atan(t) / kPi, 1e-13) << t;
    EXPECT_NEAR(student_t_cdf(t, 2.0), 0.5 + t / (2.0 * std::sqrt(2.0 + t * t)), 1e-13) << t;
  }
  // Standard table values (quantiles to 9 digits).
  EXPECT_NEAR(student_t_quantile(0.975, 10.0), 2.228138852, 1e-8);
  EXPECT_NEAR(student_t_quantile(0.95, 9.0), 1.833112933, 1e-8);
  EXPECT_NEAR(student_t_quantile(0.995, 3.0), 5.840909310, 1e-8);
  EXPECT_NEAR(student_t_quantile(0.025, 10.0), -2.228138852, 1e-8);
  // Large ν approaches the normal: Φ⁻¹(0.975) = 1.959963985.
  EXPECT_NEAR(student_t_quantile(0.975, 1e7), 1.959963985, 1e-6);
  // Incomplete beta identities: I_x(1, 1) = x, I_x(a, 1) = x^a, symmetry.
  EXPECT_NEAR(regularized_incomplete_beta(1.0, 1.0, 0.3), 0.3, 1e-15);
  EXPECT_NEAR(regularized_incomplete_beta(2.5, 1.0, 0.7), std::pow(0.7, 2.5), 1e-14);
  EXPECT_NEAR(regularized_incomplete_beta(3.0, 4.5, 0.2),
              1.0 - regularized_incomplete_beta(4.5, 3.0, 0.8), 1e-14);
  EXPECT_THROW(student_t_cdf(1.0, 0.0), InvalidArgument);
  EXPECT_THROW(student_t_quantile(1.0, 5.0), InvalidArgument);
}

TEST(IdentifyComparison, SignTestIsTheExactBinomialTail) {
  for (Index pos = 0; pos <= 12; ++pos)
    for (Index neg = 0; neg <= 12; ++neg) {
      const Index n = pos + neg;
      const double expect =
          n == 0 ? 1.0 : std::min(1.0, 2.0 * binomial_half_cdf(n, std::min(pos, neg)));
      EXPECT_NEAR(sign_test_p_value(pos, neg), expect, 1e-14) << pos << " " << neg;
    }
  EXPECT_DOUBLE_EQ(sign_test_p_value(10, 0), 2.0 / 1024.0);  // 10/10 wins: p = 0.00195
}

TEST(IdentifyComparison, PairedComparisonOfAPlantedShift) {
  Rng rng(1);
  std::vector<double> a, b;
  for (int i = 0; i < 12; ++i) {
    const double world = rng.normal();  // shared by both methods on seed i
    b.push_back(world);
    a.push_back(world + 0.5 + 0.1 * rng.normal());
  }
  a.push_back(std::nan(""));  // a failed run: left out, not counted
  b.push_back(1.0);
  Rng boot(2);
  const PairedComparison c = compare_paired(a, b, boot, 5000);
  EXPECT_EQ(c.n, 12);
  EXPECT_EQ(c.positive, 12);
  EXPECT_EQ(c.negative, 0);
  EXPECT_DOUBLE_EQ(c.p_sign, 2.0 / 4096.0);
  EXPECT_LT(c.t_lo, 0.5);  // the intervals cover the planted shift and exclude 0
  EXPECT_GT(c.t_hi, 0.5);
  EXPECT_GT(c.t_lo, 0.0);
  EXPECT_LT(c.boot_lo, c.mean);
  EXPECT_GT(c.boot_hi, c.mean);
  EXPECT_GT(c.boot_lo, 0.0);
  // The t interval is mean ± t_{0.975, 11} sd / √12.
  EXPECT_NEAR(c.t_hi - c.mean, student_t_quantile(0.975, 11.0) * c.sd / std::sqrt(12.0), 1e-12);
  EXPECT_THROW(compare_paired({1.0}, {1.0, 2.0}, boot), InvalidArgument);
}

TEST(IdentifyComparison, EquivalenceTestRejectsAPlantedDifferenceAndKeepsItsLevel) {
  const double margin = 0.05;
  Rng rng(3);
  auto group = [&](double mean, double sd, int n) {
    std::vector<double> v;
    for (int i = 0; i < n; ++i) v.push_back(mean + sd * rng.normal());
    return v;
  };
  // Equal means, small spread: equivalence is concluded and the 90 % interval is inside ±δ.
  const EquivalenceTest same = equivalence_test(group(0.9, 0.02, 10), group(0.9, 0.02, 10), margin);
  EXPECT_TRUE(same.evaluated);
  EXPECT_TRUE(same.equivalent);
  EXPECT_GT(same.ci_lo, -margin);
  EXPECT_LT(same.ci_hi, margin);
  // A planted difference of twice the margin is never called equivalent.
  int called = 0;
  for (int r = 0; r < 200; ++r)
    called += equivalence_test(group(0.9, 0.02, 10), group(0.8, 0.02, 10), margin).equivalent;
  EXPECT_EQ(called, 0);
  // At the boundary (true difference = δ) the test is level α: P(equivalent) ≤ 0.05. Over 2000
  // replicates the count stays below the Binomial(2000, 0.05) 0.999 quantile (≈ 131).
  called = 0;
  const int reps = static_cast<int>(test::scaled(2000, 500));
  for (int r = 0; r < reps; ++r)
    called += equivalence_test(group(0.95, 0.03, 10), group(0.9, 0.03, 10), margin).equivalent;
  EXPECT_LE(called, static_cast<int>(0.05 * reps + 3.1 * std::sqrt(0.05 * 0.95 * reps) + 1));
  // The decision is the interval's: equivalent ⇔ (1 − 2α) interval inside (−δ, δ).
  for (int r = 0; r < 50; ++r) {
    const EquivalenceTest e = equivalence_test(group(0.9, 0.03, 8), group(0.88, 0.05, 6), margin);
    EXPECT_EQ(e.equivalent, e.ci_lo > -margin && e.ci_hi < margin);
  }
  // Too few values: not evaluated, never equivalent.
  const EquivalenceTest few = equivalence_test({0.9}, {0.9, 0.91}, margin);
  EXPECT_FALSE(few.evaluated);
  EXPECT_FALSE(few.equivalent);
  EXPECT_THROW(equivalence_test({1, 2}, {1, 2}, 0.0), InvalidArgument);
}

TEST(IdentifyComparison, DistinctColumnGroupsAndTheGroupPermuter) {
  IntMatrix x(2, 6);
  x << 1, 0, 1, 1, 0, 2,  //
      3, 3, 3, 4, 3, 3;
  const Groups g = distinct_column_groups(x);
  EXPECT_EQ(g.ids(), (std::vector<Index>{0, 1, 0, 2, 1, 3}));
  EXPECT_EQ(count_groups(g, 6), 4);
  // GroupPermuter draws exactly what permute_samples draws, and keeps groups together.
  std::vector<Index> ids;
  for (Index i = 0; i < 30; ++i) ids.push_back(i % 7 == 0 ? 100 : i / 3);
  const Groups gg(ids);
  const GroupPermuter permuter(30, gg);
  Rng a(5), b(5);
  for (int r = 0; r < 5; ++r) {
    const IndexVector p = permuter(a);
    EXPECT_EQ(p, permute_samples(30, b, gg));
    std::vector<Index> sorted(p.data(), p.data() + p.size());
    std::sort(sorted.begin(), sorted.end());
    for (Index i = 0; i < 30; ++i) ASSERT_EQ(sorted[static_cast<size_t>(i)], i);
  }
}

TEST(IdentifyComparison, StandardisedProbeIsInvariantToFeatureScale) {
  Rng rng(6);
  const Index n = 400;
  Matrix<double> f = rng.normal_matrix<double>(3, n);
  IntRowVector y(n);
  for (Index i = 0; i < n; ++i) y[i] = f(0, i) - 0.5 * f(2, i) + 0.3 * rng.normal() > 0 ? 1 : 0;
  LogisticParams p;
  p.standardize = true;
  p.c = 0.05;  // strong enough that an unstandardised fit would depend on the scale
  p.tolerance = 1e-10;
  Matrix<double> scaled = f;
  scaled.row(0) *= 1000.0;
  scaled.row(1) = scaled.row(1).array() * 0.001 + 7.0;
  LogisticRegression a(p), b(p);
  ASSERT_TRUE(a.fit(f, y).ok());
  ASSERT_TRUE(b.fit(scaled, y).ok());
  // Same model in standardised units: identical decision values on the raw features of each.
  EXPECT_EIGEN_NEAR(a.decision_function(f), b.decision_function(scaled), 1e-6);
  // Without standardisation the same C gives a different model.
  p.standardize = false;
  LogisticRegression c(p), d(p);
  c.fit(f, y);
  d.fit(scaled, y);
  EXPECT_GT((c.decision_function(f) - d.decision_function(scaled)).cwiseAbs().maxCoeff(), 1e-3);
}

TEST(IdentifyComparison, VarianceWeightedRidgeSelectionIsInvariantToTheTargetBasis) {
  // Targets of very different variance: the mean-R² rule and the variance-weighted rule differ,
  // and only the latter gives the same λ and R² after an orthogonal rotation of the targets.
  Rng rng(7);
  const Index n = 300;
  const Matrix<double> f = rng.normal_matrix<double>(8, n);
  Matrix<double> t(3, n);
  t.row(0) = 10.0 * f.row(0) + rng.normal_matrix<double>(1, n);
  t.row(1) = 0.1 * f.row(1) + rng.normal_matrix<double>(1, n);
  t.row(2) = f.row(2) + 0.5 * f.row(3) + rng.normal_matrix<double>(1, n);
  const Eigen::HouseholderQR<Matrix<double>> qr(rng.normal_matrix<double>(3, 3));
  const Matrix<double> q = qr.householderQ();
  RidgeRegression a, b;
  a.fit(f, t);
  b.fit(f, (q * t).eval());
  EXPECT_DOUBLE_EQ(a.lambda(), b.lambda());
  EXPECT_NEAR(a.score(f, t).variance_weighted, b.score(f, (q * t).eval()).variance_weighted, 1e-10);
}

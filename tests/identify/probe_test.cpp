// Tests for ergo/identify's linear probes (logistic regression with LBFGS++) and the
// counterfactual concept-direction A_s W_s test.
#include "common/test_utils.hpp"

#include <ergo/identify.hpp>

#include <gmock/gmock.h>

#include <cmath>
#include <vector>

using namespace ergo;
using namespace ergo::identify;

namespace {

// Root of 8σ(w) − 6 + w/C = 0 by bisection (monotone increasing in w).
double hand_solved_weight(double c) {
  double lo = -10.0, hi = 10.0;
  for (int it = 0; it < 200; ++it) {
    const double mid = 0.5 * (lo + hi);
    const double g = 8.0 * LogisticRegression::sigmoid(mid) - 6.0 + mid / c;
    (g > 0.0 ? hi : lo) = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace

TEST(IdentifyProbe, BinaryMatchesAHandSolvedCase) {
  // x = +1: three positives, one negative; x = −1: one positive, three negatives. By symmetry
  // b = 0, and stationarity in w reads Σ(p − y)x + w/C = 8σ(w) − 6 + w/C = 0.
  Matrix<double> x(1, 8);
  x << 1, 1, 1, 1, -1, -1, -1, -1;
  IntRowVector y(8);
  y << 1, 1, 1, 0, 1, 0, 0, 0;
  for (double c : {0.05, 1.0, 100.0}) {
    LogisticParams p;
    p.c = c;
    p.tolerance = 1e-10;
    LogisticRegression probe(p);
    const Outcome o = probe.fit(x, y);
    EXPECT_TRUE(o.ok()) << o.message;
    // Gradient norm < 1e-9 on the per-sample objective, whose curvature in w is
    // ≥ σ'(w) ≥ 0.18 here: the weight is within 6e-9 of the root (1e-6 leaves room).
    ASSERT_LT(probe.gradient_norm(), 1e-9);
    EXPECT_NEAR(probe.weights()(0, 0), hand_solved_weight(c), 1e-6) << "C = " << c;
    EXPECT_NEAR(probe.intercept()[0], 0.0, 1e-6);
    EXPECT_TRUE(probe.binary());
  }
  // Unregularised limit: σ(w) → 3/4, w → log 3.
  LogisticParams big;
  big.c = 1e8;
  big.tolerance = 1e-10;
  LogisticRegression probe(big);
  probe.fit(x, y);
  EXPECT_NEAR(probe.weights()(0, 0), std::log(3.0), 1e-5);
  EXPECT_DOUBLE_EQ(probe.accuracy(x, y), 0.75);
}

TEST(IdentifyProbe, GradientMatchesFiniteDifferences) {
  Rng rng(41);
  for (Index k : {2, 4}) {
    const Index d = 3, n = 30, rows = k == 2 ? 1 : k;
    const Matrix<double> x = rng.normal_matrix<double>(d, n);
    IndexVector y(n);
    for (Index i = 0; i < n; ++i)
      y[i] = static_cast<Index>(rng.uniform_int(static_cast<std::uint64_t>(k)));
    LogisticParams p;
    p.c = 0.7;
    const Vector<double> theta = rng.normal_matrix<double>(rows * d + rows, 1, 0.0, 0.5);
    Vector<double> grad, scratch;
    ergo::identify::detail::logistic_objective(x, y, k, p, theta, grad);
    const double h = 1e-6;
    for (Index q = 0; q < theta.size(); ++q) {
      Vector<double> tp = theta, tm = theta;
      tp[q] += h;
      tm[q] -= h;
      const double fd = (ergo::identify::detail::logistic_objective(x, y, k, p, tp, scratch) -
                         ergo::identify::detail::logistic_objective(x, y, k, p, tm, scratch)) /
                        (2.0 * h);
      // Central differences: truncation O(h²) ≈ 1e-12, rounding O(eps·f/h) ≈ 1e-10.
      EXPECT_NEAR(grad[q], fd, 1e-8) << "K = " << k << ", parameter " << q;
    }
  }
}

TEST(IdentifyProbe, MultinomialReachesAStationaryPointAndCalibratedProbabilities) {
  Rng rng(42);
  const Index d = 4, n = 300, k = 3;
  const Matrix<double> centres = rng.normal_matrix<double>(d, k, 0.0, 1.0);
  Matrix<double> x(d, n);
  IntRowVector y(n);
  for (Index i = 0; i < n; ++i) {
    y[i] = static_cast<std::int32_t>(i % k);
    x.col(i) = centres.col(y[i]) + rng.normal_matrix<double>(d, 1, 0.0, 0.8);
  }
  LogisticParams tight;
  tight.tolerance = 1e-10;
  LogisticRegression probe(tight);
  const Outcome o = probe.fit(x, y);
  EXPECT_TRUE(o.ok()) << o.message;
  EXPECT_EQ(probe.n_classes(), 3);
  EXPECT_EQ(probe.weights().rows(), 3);
  // KKT at the returned point (the intercepts' common shift does not change the gradient).
  Vector<double> theta(k * d + k), grad;
  theta.head(k * d) = Eigen::Map<const Vector<double>>(probe.weights().data(), k * d);
  theta.tail(k) = probe.intercept();
  IndexVector yi = y.transpose().cast<Index>();
  ergo::identify::detail::logistic_objective(x, yi, k, probe.params(), theta, grad);
  EXPECT_LT(grad.norm(), 1e-5);  // tolerance 1e-10, or its sqrt after a stalled line search
  const Matrix<double> pr = probe.predict_proba(x);
  EXPECT_EIGEN_NEAR(pr.colwise().sum(), RowVector<double>::Ones(n), 1e-12);
  // At an unregularised-ish optimum with intercepts, the mean predicted probability of each
  // class equals its frequency (intercept stationarity): Σ_n (p_n − onehot) = 0.
  // (The intercept gradient is exactly this difference, bounded by the gradient norm.)
  EXPECT_EIGEN_NEAR(pr.rowwise().mean(), Vector<double>::Constant(k, 1.0 / 3.0), 1e-5);
  EXPECT_LT(expected_calibration_error(pr, y), 0.1);
  Rng cf(43);
  const Matrix<double> oof = cross_fitted_proba(x, y, LogisticParams{}, 5, cf);
  EXPECT_EQ(oof.rows(), 3);
  EXPECT_EIGEN_NEAR(oof.colwise().sum(), RowVector<double>::Ones(n), 1e-12);
}

TEST(IdentifyProbe, SeparableDataReachesFullAccuracy) {
  Rng rng(44);
  const Index d = 5, n = 200;
  for (Index k : {2, 4}) {
    Matrix<double> x(d, n);
    IntRowVector y(n);
    for (Index i = 0; i < n; ++i) {
      y[i] = static_cast<std::int32_t>(i % k);
      x.col(i) = rng.normal_matrix<double>(d, 1, 0.0, 0.3);
      x(y[i], i) += 4.0;  // class c sits 4 (≈ 13 sd) along axis c
    }
    LogisticRegression probe;
    probe.fit(x, y);
    EXPECT_DOUBLE_EQ(probe.accuracy(x, y), 1.0) << "K = " << k;
  }
  // probe_accuracy_per_concept: concept j is the sign of feature j.
  const Matrix<double> f = rng.normal_matrix<double>(3, 400);
  IntMatrix c(2, 400);
  for (Index i = 0; i < 400; ++i) {
    c(0, i) = f(0, i) > 0.0 ? 1 : 0;
    c(1, i) = f(2, i) > 0.0 ? 1 : 0;
  }
  Rng sr(45);
  const Split split = train_test_split(400, 0.25, sr);
  LogisticParams strong;
  strong.c = 1e4;
  const Vector<double> acc = probe_accuracy_per_concept(f, c, split, strong);
  // Separable by a hyperplane through 0: near-perfect held-out accuracy (a few test points may
  // fall in the margin the training sample did not pin down).
  EXPECT_GT(acc.minCoeff(), 0.97);
}

TEST(IdentifyProbe, RejectsBadInput) {
  Matrix<double> x = Matrix<double>::Zero(2, 4);
  IntRowVector y(4);
  y << 0, 1, 0, -1;
  EXPECT_THROW(LogisticRegression().fit(x, y), InvalidArgument);
  LogisticParams p;
  p.c = 0.0;
  EXPECT_THROW(LogisticRegression{p}, InvalidArgument);
  EXPECT_THROW(LogisticRegression().predict(x), InvalidArgument);  // not fitted
}

// -------------------------------------------------------------------- A_s W_s ----

namespace {
// Concept s: pairs base = z + u_s, target = z, where the z's come in mirror pairs
// (t u_s + v, t u_s − v) with v ⟂ u_s. The mirror symmetry forces the logistic optimum onto the
// line of u_s (the objective is strictly convex and invariant under v → −v), so w_s = u_s.
std::vector<ConceptPairs> planted_concepts(const Matrix<double>& u, Index pairs, Rng& rng) {
  const Index d = u.rows();
  std::vector<ConceptPairs> out;
  for (Index s = 0; s < u.cols(); ++s) {
    ConceptPairs cp;
    cp.name = "concept" + std::to_string(s);
    cp.base.resize(d, 2 * pairs);
    cp.target.resize(d, 2 * pairs);
    for (Index i = 0; i < pairs; ++i) {
      Vector<double> v = rng.normal_matrix<double>(d, 1);
      v -= u.col(s) * u.col(s).dot(v);
      const double t = rng.normal();
      for (Index sign : {0, 1}) {
        const Vector<double> z = t * u.col(s) + (sign ? -1.0 : 1.0) * v;
        cp.target.col(2 * i + sign) = z;
        cp.base.col(2 * i + sign) = z + u.col(s);
      }
    }
    out.push_back(cp);
  }
  return out;
}
}  // namespace

TEST(IdentifyConceptDirections, AsWsIsTheIdentityOnPlantedOrthogonalDirections) {
  Rng rng(50);
  const Index d = 10, s = 3;
  Eigen::HouseholderQR<Matrix<double>> qr(rng.normal_matrix<double>(d, s));
  const Matrix<double> u = qr.householderQ() * Matrix<double>::Identity(d, s);  // orthonormal
  const auto concepts = planted_concepts(u, 60, rng);
  ConceptDirectionParams p;
  p.n_permutations = test::scaled(40, 10);
  const ConceptDirectionResult r = concept_direction_test(concepts, p);
  // Directions are exactly u (mean difference is u); probes lie on u up to the optimiser's
  // rounding (the mirror symmetry makes the gradient across u exactly zero at every iterate, so
  // the unit probe weight is u whatever the optimiser's tolerance): G = I and ‖AW − P_S‖ = 0
  // within 1e-6.
  EXPECT_EIGEN_NEAR(r.directions, u, 1e-12);
  EXPECT_EIGEN_NEAR(r.all.g, Matrix<double>::Identity(s, s), 1e-6);
  EXPECT_NEAR(r.all.mean_diagonal, 1.0, 1e-6);
  EXPECT_NEAR(r.all.mean_abs_off_diagonal, 0.0, 1e-6);
  EXPECT_NEAR(r.all.frobenius, 0.0, 1e-6);
  ASSERT_TRUE(r.has_holdout);
  // Hold-out halves (120 pairs per concept split at random, so mirror partners are separated):
  // the probe direction is only close to u, but far above anything the null produces.
  EXPECT_GT(r.holdout.mean_diagonal, 0.8);
  EXPECT_GT(r.holdout.mean_diagonal, r.null_mean_diagonal.p95);
  // Null: shuffled labels carry no direction; the observed diagonal beats every permutation.
  EXPECT_DOUBLE_EQ(r.null_mean_diagonal.p_value, 1.0 / static_cast<double>(p.n_permutations + 1));
  EXPECT_LT(r.null_mean_diagonal.mean, 0.5);
  EXPECT_EQ(r.names[1], "concept1");
}

TEST(IdentifyConceptDirections, StatisticsOfAKnownConfiguration) {
  // Two orthonormal directions; probes rotated by 60° within their plane.
  Matrix<double> a = Matrix<double>::Zero(3, 2), w(3, 2);
  a(0, 0) = 1.0;
  a(1, 1) = 1.0;
  const double c = 0.5, sn = std::sqrt(3.0) / 2.0;
  w << c, -sn, sn, c, 0.0, 0.0;
  const AsWsStatistics st = as_ws_statistics(a, w);
  EXPECT_NEAR(st.mean_diagonal, 0.5, 1e-15);
  EXPECT_NEAR(st.mean_abs_off_diagonal, sn, 1e-15);
  // A W − P_S = [[c−1, −s, 0], [s, c−1, 0], [0, 0, 0]]: Frobenius² = 2(c−1)² + 2s² = 2.
  EXPECT_NEAR(st.frobenius, std::sqrt(2.0), 1e-14);
}

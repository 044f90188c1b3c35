// Tests for ergo/theory/bayes.hpp and IdentifiabilityTheory::assess: the Bayes representation
// reproduces p(y|x) exactly and satisfies Theorem 3.1's exact form to machine precision in the
// paper's square setting; assess() against a direct computation; the projection on the range of
// L̂; the invariance that justifies skipping the token search.
#include "common/test_utils.hpp"

#include <ergo/identify.hpp>
#include <ergo/theory.hpp>

#include <cmath>
#include <numeric>

using namespace ergo;
using namespace ergo::model;
using namespace ergo::theory;
using namespace ergo::identify;

namespace {

ConceptWorld<double> tiny_world(std::uint64_t seed, Index m = 3, Index nuisance = 0) {
  Rng rng(seed);
  PaperWorldParams p;
  p.m = m;  // ℓ = 2^m, |V| = ℓ + 1
  p.eta = 0.1;
  p.n_nuisance = nuisance;
  return make_paper_world<double>(p, rng);
}

double r2_direct(const Matrix<double>& truth, const Matrix<double>& pred) {
  const Matrix<double> c = truth.colwise() - truth.rowwise().mean();
  return 1.0 - (truth - pred).squaredNorm() / c.squaredNorm();
}

}  // namespace

TEST(TheoryBayes, RepresentationAndUnembeddingReproduceThePredictiveExactly) {
  const ConceptWorld<double> w = tiny_world(1);
  Rng rng(2);
  const Samples s = w.sample(test::scaled(300, 100), rng);
  const Matrix<double> f = bayes_representation(w, s.x);
  const Matrix<double> u = bayes_unembedding(w.vocab_size());
  ASSERT_EQ(f.rows(), w.vocab_size() - 1);
  ASSERT_EQ(u.rows(), w.vocab_size() - 1);
  ASSERT_EQ(u.cols(), w.vocab_size());
  EXPECT_EIGEN_NEAR(log_softmax_cols((u.transpose() * f).eval()), w.log_predictive(s.x), 1e-12);
  EXPECT_EIGEN_NEAR((u * u.transpose()).eval(), Matrix<double>::Identity(u.rows(), u.rows()),
                    1e-14);
  EXPECT_THROW(bayes_unembedding(1), InvalidArgument);
}

TEST(TheoryBayes, BayesRepresentationSatisfiesTheExactFormToMachinePrecision) {
  const ConceptWorld<double> w = tiny_world(3);
  const Index l = w.joint_size();
  Rng rng(4);
  const Samples s = w.sample(test::scaled(400, 100), rng);
  const Matrix<double> f = bayes_representation(w, s.x);
  const IdentifiabilityTheory<double> th(w, bayes_unembedding(w.vocab_size()));
  EXPECT_TRUE(th.paper_setting());  // d = r = ℓ, L̂ square and invertible
  const IdentityCheck c = th.check(s.x, f);
  EXPECT_LT(c.max_abs_error, 1e-10);  // sums of ≤ ℓ + 2 terms of size ≤ ~20 in double
  EXPECT_LT(c.max_projected_error, 1e-9);
  const TheoremFit t = th.assess(s.x, f);
  EXPECT_EQ(t.range_dim, l);
  EXPECT_NEAR(t.r2_exact, 1.0, 1e-12);
  EXPECT_NEAR(t.logit_r2_exact, 1.0, 1e-12);
  // The linear form alone is not exact at this ε: the residual carries a real share.
  EXPECT_LT(t.r2_linear, 0.99);
  EXPECT_GT(t.residual_share, 1e-3);
  // Against a direct computation from predict().
  const TheoryPrediction p = th.predict(s.x);
  EXPECT_NEAR(t.r2_linear, r2_direct(f, p.affine), 1e-10);
  const Matrix<double> rc = p.residual.colwise() - p.residual.rowwise().mean();
  const Matrix<double> fc = f.colwise() - f.rowwise().mean();
  EXPECT_NEAR(t.residual_share, rc.squaredNorm() / fc.squaredNorm(), 1e-10);
  EXPECT_NEAR(t.mean_epsilon, p.mean_epsilon, 1e-15);
  // A acts on the ℓ − 1 identifiable directions with full rank.
  EXPECT_EQ(th.a_identified_spectrum().rank, l - 1);
  EXPECT_EQ(th.a_spectrum().rank, l - 1);  // and annihilates constants
}

TEST(TheoryBayes, AssessComparesOnTheRangeOfLHat) {
  // A wide representation: the Bayes representation in the first ℓ coordinates, junk in the
  // other ℓ, and an unembedding that ignores the junk. Next-token probabilities are exact, so
  // the theorem holds on the range of L̂ (the first ℓ coordinates) and assess() must say so.
  const ConceptWorld<double> w = tiny_world(5);
  const Index l = w.joint_size();
  Rng rng(6);
  const Samples s = w.sample(test::scaled(300, 100), rng);
  Matrix<double> f(2 * l, s.size());
  f.topRows(l) = bayes_representation(w, s.x);
  f.bottomRows(l) = rng.normal_matrix<double>(l, s.size());
  Matrix<double> u = Matrix<double>::Zero(2 * l, w.vocab_size());
  u.topRows(l) = bayes_unembedding(w.vocab_size());
  const IdentifiabilityTheory<double> th(w, u);
  const TheoremFit t = th.assess(s.x, f);
  EXPECT_EQ(t.range_dim, l);
  EXPECT_NEAR(t.r2_exact, 1.0, 1e-12);
  EXPECT_NEAR(t.logit_r2_exact, 1.0, 1e-12);
  // A representation that has learned nothing fails the same comparison.
  const TheoremFit bad = th.assess(s.x, rng.normal_matrix<double>(2 * l, s.size()));
  EXPECT_LT(bad.r2_exact, 0.0);
  EXPECT_LT(bad.logit_r2_exact, 0.0);
}

TEST(TheoryBayes, AllTokensNeedNoSearchBecauseTheChoiceOfY0CannotMatter) {
  const ConceptWorld<double> w = tiny_world(7);
  const Index v = w.vocab_size();
  Rng rng(8);
  const Matrix<double> u = rng.normal_matrix<double>(v - 1, v);  // generic: diversity holds
  const IdentifiabilityTheory<double> automatic(w, u);
  std::vector<Index> expect(static_cast<size_t>(v));
  std::iota(expect.begin(), expect.end(), Index(0));
  EXPECT_EQ(automatic.tokens(), expect);
  // Another y_0 and another order of the differences: the same A, b and prediction.
  TheoryParams tp;
  tp.tokens = {3, 8, 0, 5, 1, 2, 4, 6, 7};
  ASSERT_EQ(static_cast<Index>(tp.tokens.size()), v);
  const IdentifiabilityTheory<double> other(w, u, tp);
  EXPECT_EIGEN_NEAR(automatic.a(), other.a(), 1e-9);
  EXPECT_EIGEN_NEAR(automatic.b(), other.b(), 1e-9);
  const Samples s = w.sample(50, rng);
  EXPECT_EIGEN_NEAR(automatic.predict(s.x).predicted, other.predict(s.x).predicted, 1e-8);
}

TEST(TheoryBayes, TheCentredJointLogPosteriorIsExactlyAffineInTheRawInput) {
  // Why R² against clr(log p(c|x)) cannot be the headline: with conditionally independent
  // context variables, log p(c|x) = log p(c) + Σ_j log p(x_j|c) − log p(x) is affine in the
  // one-hot input up to the c-independent log p(x), which centring removes. So the raw input
  // scores R² = 1 on it, nuisance bits or not, without having learned anything.
  const ConceptWorld<double> w = tiny_world(9, 3, 6);
  Rng rng(10);
  const Samples s = w.sample(test::scaled(2000, 500), rng);
  const Matrix<double> x1 = w.one_hot<double>(s.x);
  const Matrix<double> t = ilr(w.log_posterior(s.x));
  // Closed form: an exact least-squares fit (complete orthogonal decomposition, intercept
  // included through the one-hot's constant row sums) leaves only rounding.
  Matrix<double> design(x1.rows() + 1, x1.cols());
  design << x1, RowVector<double>::Ones(x1.cols());
  const Matrix<double> coef =
      design.transpose().completeOrthogonalDecomposition().solve(t.transpose());
  const Matrix<double> fitted = (design.transpose() * coef).transpose();
  EXPECT_LT((fitted - t).cwiseAbs().maxCoeff(), 1e-9);
  // And the library's held-out check, grouped by distinct informative context, agrees.
  IdentifiabilityParams ip;
  ip.n_permutations = 0;
  ip.n_bootstrap = 0;
  ip.mcc = false;
  const IdentifiabilityReport r =
      check_identifiability(x1, t, ip, distinct_column_groups(s.x.topRows(w.joint_size())));
  EXPECT_GT(r.forward.test.variance_weighted, 1.0 - 1e-6);
}

// Tests for ergo/theory: the stacked identity (docs/theory.md, "What is computed") for the exact
// predictor, β and h against brute force, A as the least-squares solution, the dimension notes,
// token selection, lifting matrices and input validation.
#include "common/test_utils.hpp"

#include <ergo/theory.hpp>

#include <gmock/gmock.h>

#include <cmath>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

using namespace ergo;
using namespace ergo::model;
using namespace ergo::theory;
using ::testing::HasSubstr;

namespace {

ConceptWorld<double> small_world(std::uint64_t seed, Index m = 3) {
  Rng rng(seed);
  PaperWorldParams p;
  p.m = m;       // ℓ = 2^m
  p.eta = 0.1;   // full-support context emission
  p.vocab = -1;  // ℓ + 1 softmax tokens (full support)
  return make_paper_world<double>(p, rng);
}

bool any_note_contains(const std::vector<std::string>& notes, const std::string& s) {
  for (const auto& n : notes)
    if (n.find(s) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST(TheoryTheorem, ExactPredictorSatisfiesTheStackedIdentityToMachinePrecision) {
  const ConceptWorld<double> world = small_world(1);
  const Index l = world.joint_size(), v = world.vocab_size();
  ASSERT_EQ(v, l + 1);
  Rng rng(2);
  const Samples s = world.sample(test::scaled(400, 100), rng);
  // The exact predictor: f_x(x)_y = log p(y|x) (d = |V|) with f_y = identity, so that
  // softmax(f_x(x)ᵀ f_y(·)) = p(·|x) exactly.
  const Matrix<double> f = world.log_predictive(s.x);
  const Matrix<double> u = Matrix<double>::Identity(v, v);
  const IdentifiabilityTheory<double> th(world, u);
  EXPECT_EQ(th.token_differences(), l);
  EXPECT_TRUE(th.diversity_holds());
  EXPECT_FALSE(th.paper_setting());  // d = ℓ + 1 ≠ ℓ
  EXPECT_TRUE(any_note_contains(th.notes(), "needs d = ℓ"));
  const IdentityCheck c = th.check(s.x, f);
  // Both sides are sums of ≤ ℓ + 2 terms of magnitude ≤ ~20 computed in double: agreement to
  // 1e-10 is rounding level (observed ~1e-14).
  EXPECT_LT(c.max_abs_error, 1e-10);
  EXPECT_GT(c.rhs_scale, 0.1);  // the identity is not trivially 0 = 0
  // On the range of L̂ = 1^⊥ the prediction is the centred log-predictive.
  const Matrix<double> centred = f.rowwise() - f.colwise().mean();
  const TheoryPrediction p = th.predict(s.x);
  EXPECT_EIGEN_NEAR(p.predicted, centred, 1e-10);
  EXPECT_LT(c.max_projected_error, 1e-10);
  // The residual term is reported, and it is not small: it carries (1 − p(c*|y)) log ε-like
  // terms (docs/theory.md, "The residual term"). Predicted = affine − residual by construction.
  EXPECT_GT(p.mean_residual_norm, 0.0);
  EXPECT_TRUE(std::isfinite(p.mean_residual_norm));
  EXPECT_EIGEN_NEAR(p.affine - p.residual, p.predicted, 1e-12);
  EXPECT_GT(p.mean_epsilon, 0.0);
  EXPECT_LT(p.mean_epsilon, 1.0 - 1.0 / static_cast<double>(l) + 1e-12);
  std::cout << "[ exact predictor ] mean |residual| = " << p.mean_residual_norm
            << ", mean |A lambda + b| = " << p.mean_affine_norm << ", mean eps = " << p.mean_epsilon
            << ", identity error = " << c.max_abs_error << "\n";
}

TEST(TheoryTheorem, BetaAndHMatchBruteForce) {
  const ConceptWorld<double> world = small_world(3);
  const Index l = world.joint_size(), v = world.vocab_size();
  Rng rng(4);
  const Samples s = world.sample(30, rng);
  const Matrix<double> u = rng.normal_matrix<double>(l + 3, v);
  const IdentifiabilityTheory<double> th(world, u);
  const TheoryPrediction p = th.predict(s.x);
  const Matrix<double> log_y = world.y_emission().log_table();  // |V| × ℓ
  const Vector<double> log_prior = world.prior().log_prior();
  for (Index j = 0; j < static_cast<Index>(th.tokens().size()); ++j) {
    const Index y = th.tokens()[static_cast<size_t>(j)];
    // p(c | y) by Bayes from the prior and the emission, term by term.
    Vector<double> post(l);
    for (Index i = 0; i < l; ++i) post[i] = std::exp(log_prior[i] + log_y(y, i));
    post /= post.sum();
    double beta = 0.0;
    for (Index i = 0; i < l; ++i) beta += post[i] * log_y(y, i);
    EXPECT_NEAR(th.beta()[j], beta, 1e-12);
    const Matrix<double> lxy = world.log_posterior_xy(
        s.x, IntRowVector::Constant(s.x.cols(), static_cast<std::int32_t>(y)));
    for (Index n = 0; n < s.x.cols(); ++n) {
      const double h = post.dot(lxy.col(n));
      EXPECT_NEAR(p.h(j, n), h, 1e-11);
      EXPECT_NEAR(p.epsilon(j, n), 1.0 - std::exp(lxy.col(n).maxCoeff()), 1e-12);
    }
  }
}

TEST(TheoryTheorem, AIsTheLeastSquaresSolutionAndAnnihilatesConstants) {
  const ConceptWorld<double> world = small_world(5);
  const Index l = world.joint_size(), v = world.vocab_size();
  Rng rng(6);
  {  // d > r: L̂ has full column rank, so L̂ᵀ A = Lᵀ exactly.
    const Matrix<double> u = rng.normal_matrix<double>(l + 4, v);
    const IdentifiabilityTheory<double> th(world, u);
    EXPECT_TRUE(th.diversity_holds());
    EXPECT_EIGEN_NEAR((th.l_hat().transpose() * th.a()).eval(), th.l_matrix().transpose(), 1e-10);
    EXPECT_EIGEN_NEAR((th.a() * Vector<double>::Ones(l)).eval(), Vector<double>::Zero(l + 4),
                      1e-12);
    EXPECT_EIGEN_NEAR(th.l_matrix().colwise().sum(), RowVector<double>::Zero(l), 1e-14);
    EXPECT_LE(th.a_spectrum().rank, l - 1);
    EXPECT_EIGEN_NEAR((th.l_hat().transpose() * th.b()).eval(), th.delta_beta(), 1e-10);
  }
  {  // d = ℓ and r = ℓ: the paper's square setting.
    const Matrix<double> u = rng.normal_matrix<double>(l, v);
    const IdentifiabilityTheory<double> th(world, u);
    EXPECT_TRUE(th.paper_setting());
    EXPECT_FALSE(any_note_contains(th.notes(), "needs d = ℓ"));
    // L̂ square invertible: pinv(L̂ᵀ) is the inverse.
    EXPECT_EIGEN_NEAR((th.l_hat_pinv_t() * th.l_hat().transpose()).eval(),
                      Matrix<double>::Identity(l, l), 1e-9);
  }
}

TEST(TheoryTheorem, DimensionMismatchAndDiversityFailureAreReported) {
  const ConceptWorld<double> world = small_world(7);
  const Index l = world.joint_size(), v = world.vocab_size();
  Rng rng(8);
  const Matrix<double> u = rng.normal_matrix<double>(3, v);  // d = 3 ≪ ℓ = 8
  const IdentifiabilityTheory<double> th(world, u);
  EXPECT_FALSE(th.diversity_holds());
  EXPECT_EQ(th.l_hat_spectrum().rank, 3);
  EXPECT_TRUE(any_note_contains(th.notes(), "diversity fails"));
  EXPECT_TRUE(any_note_contains(th.notes(), "r > d = 3"));
  EXPECT_TRUE(any_note_contains(th.notes(), "needs d = ℓ"));
  EXPECT_EQ(th.a().rows(), 3);
  EXPECT_EQ(th.a().cols(), l);
  // With tied unembedding rows (two tokens share f_y) automatic selection avoids the tie.
  Matrix<double> tied = rng.normal_matrix<double>(l, v);
  tied.col(1) = tied.col(0);
  TheoryParams p;
  p.n_tokens = l - 1;
  const IdentifiabilityTheory<double> th2(world, tied, p);
  EXPECT_TRUE(th2.tokens_selected_automatically());
  EXPECT_TRUE(th2.diversity_holds());
  // An explicit choice of the tied pair is honoured and makes L̂ rank deficient.
  TheoryParams q;
  q.tokens = {0, 1, 2, 3};
  const IdentifiabilityTheory<double> th3(world, tied, q);
  EXPECT_FALSE(th3.diversity_holds());
  EXPECT_NEAR(th3.l_hat_spectrum().sigma_min, 0.0, 1e-12);
}

TEST(TheoryTheorem, LiftingMatricesBroadcastConceptValues) {
  const ConceptWorld<double> world = small_world(9);
  const Index l = world.joint_size();
  const Matrix<double> u = Matrix<double>::Identity(world.vocab_size(), world.vocab_size());
  const IdentifiabilityTheory<double> th(world, u);
  for (Index k = 0; k < world.concept_count(); ++k) {
    const Matrix<double> b = th.lifting(k);
    ASSERT_EQ(b.rows(), l);
    ASSERT_EQ(b.cols(), 2);
    EXPECT_EIGEN_NEAR(b.rowwise().sum(), Vector<double>::Ones(l), 0.0);
    for (Index i = 0; i < l; ++i) EXPECT_EQ(b(i, world.prior().configs()(k, i)), 1.0);
    // Same blocks as the world's value indicator.
    EXPECT_EIGEN_NEAR(b, world.value_indicator().middleCols(world.marginal_offset(k), 2), 0.0);
    EXPECT_EIGEN_NEAR(th.concept_map(k), (th.a() * b).eval(), 1e-14);
  }
  EXPECT_THROW(th.lifting(world.concept_count()), InvalidArgument);
}

TEST(TheoryTheorem, RejectsBadInput) {
  const ConceptWorld<double> world = small_world(10);
  const Index v = world.vocab_size();
  const Matrix<double> u = Matrix<double>::Identity(v, v);
  try {
    IdentifiabilityTheory<double> th(world, Matrix<double>::Identity(v, v - 1));
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("unembedding: expected 9 columns (one per token), got 8"));
  }
  TheoryParams dup;
  dup.tokens = {0, 2, 2};
  EXPECT_THROW(IdentifiabilityTheory<double>(world, u, dup), InvalidArgument);
  TheoryParams out;
  out.tokens = {0, v};
  EXPECT_THROW(IdentifiabilityTheory<double>(world, u, out), InvalidArgument);
  TheoryParams many;
  many.n_tokens = v;
  EXPECT_THROW(IdentifiabilityTheory<double>(world, u, many), InvalidArgument);
  Matrix<double> bad = u;
  bad(0, 0) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(IdentifiabilityTheory<double>(world, bad), InvalidArgument);
  // A deterministic token emission (zeros in p(y|c)) is refused: β and h need full support.
  const Index l = world.joint_size();
  Matrix<double> table = Matrix<double>::Zero(2, l);
  for (Index i = 0; i < l; ++i) table(i % 2, i) = 1.0;
  const ConceptWorld<double> det(world.prior(), world.x_emission(),
                                 Emission<double>(std::vector<Matrix<double>>{table}));
  EXPECT_THROW(IdentifiabilityTheory<double>(det, Matrix<double>::Identity(2, 2)), InvalidArgument);
}

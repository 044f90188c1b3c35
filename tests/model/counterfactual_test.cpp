// SPDX-License-Identifier: MIT
// Tests for ergo/model/counterfactual.hpp: the two sides of a pair differ in exactly the chosen
// concept, each side's context is drawn from p(x | c) (checked on a deterministic world, where
// the context identifies c), the other concepts follow the prior's marginal, and bad input is
// refused with a message naming the argument.
#include "common/test_utils.hpp"

#include <ergo/model.hpp>

#include <gmock/gmock.h>

#include <cmath>

using namespace ergo;
using namespace ergo::model;
using ::testing::HasSubstr;

namespace counterfactual_test {

ConceptWorld<double> world(Index m, double eta, std::uint64_t seed) {
  Rng rng(seed);
  PaperWorldParams p;
  p.m = m;
  p.eta = eta;
  return make_paper_world<double>(p, rng);
}

}  // namespace counterfactual_test

TEST(Counterfactual, SidesDifferInTheChosenConceptOnly) {
  const auto w = counterfactual_test::world(4, 0.05, 1);
  Rng rng(2);
  const CounterfactualPairs cp = sample_counterfactual_pairs(w, 50, rng);
  ASSERT_EQ(cp.pairs.rows(), 3);
  ASSERT_EQ(cp.pairs.cols(), 200);
  ASSERT_EQ(cp.samples.size(), 400);
  EXPECT_EQ(cp.samples.x.rows(), w.context_size());
  for (Index q = 0; q < cp.pairs.cols(); ++q) {
    const Index b = cp.pairs(0, q), c = cp.pairs(1, q), k = cp.pairs(2, q);
    EXPECT_EQ(k, q / 50);  // concepts in order, 50 pairs each
    EXPECT_EQ(cp.samples.c(k, b), 1);
    EXPECT_EQ(cp.samples.c(k, c), 0);
    for (Index j = 0; j < 4; ++j) {
      if (j != k) {
        EXPECT_EQ(cp.samples.c(j, b), cp.samples.c(j, c));
      }
    }
  }
}

// With η = 0 the permuted one-hot context is a deterministic function of c: the exact posterior
// puts probability 1 on the configuration the sample was drawn for, so each context really is a
// draw from p(x | c) of its own side (a context drawn for the other side would have probability 0).
TEST(Counterfactual, ContextsAreDrawnFromTheirOwnSide) {
  const auto w = counterfactual_test::world(3, 0.0, 3);
  Rng rng(4);
  const CounterfactualPairs cp = sample_counterfactual_pairs(w, 20, rng, {1, 2});
  ASSERT_EQ(cp.pairs.cols(), 40);
  const Matrix<double> lp = w.log_posterior(cp.samples.x);
  const IntRowVector joint = w.prior().joint_indices(cp.samples.c);
  for (Index s = 0; s < cp.samples.size(); ++s) EXPECT_NEAR(lp(joint[s], s), 0.0, 1e-12) << s;
}

// Within concept k's pairs the other concepts are drawn from the prior: the frequency of
// c_j = 1 among 4000 pairs is within 4 binomial standard errors (≤ 4·0.5/√4000 = 0.032) of
// the prior marginal p(c_j = 1).
TEST(Counterfactual, OtherConceptsFollowThePrior) {
  const auto w = counterfactual_test::world(3, 0.05, 5);
  Rng rng(6);
  const Index n = 4000;
  const CounterfactualPairs cp = sample_counterfactual_pairs(w, n, rng, {0});
  const Vector<double> prior = w.log_prior_marginals().array().exp().matrix();
  for (Index j = 1; j < 3; ++j) {
    double freq = 0;
    for (Index q = 0; q < n; ++q) freq += cp.samples.c(j, cp.pairs(0, q));
    const double p1 = prior(w.marginal_offset(j) + 1);
    EXPECT_NEAR(freq / static_cast<double>(n), p1, 4.0 * std::sqrt(p1 * (1 - p1) / n)) << j;
  }
}

TEST(Counterfactual, SetConceptAndSampleGivenConcepts) {
  const auto w = counterfactual_test::world(3, 0.05, 7);
  Rng rng(8);
  const IntMatrix c = w.prior().sample(10, rng);
  const IntMatrix on = set_concept(c, 2, 1);
  EXPECT_TRUE((on.row(2).array() == 1).all());
  EXPECT_TRUE((on.topRows(2) == c.topRows(2)));
  const Samples s = sample_given_concepts(w, on, rng);
  EXPECT_EQ(s.c, on);
  EXPECT_EQ(s.x.cols(), 10);
  EXPECT_EQ(s.y.cols(), 10);
}

TEST(Counterfactual, RefusesBadInput) {
  const auto w = counterfactual_test::world(3, 0.05, 9);
  Rng rng(10);
  EXPECT_THAT([&] { sample_counterfactual_pairs(w, 0, rng); },
              ::testing::ThrowsMessage<std::invalid_argument>(HasSubstr("pairs_per_concept")));
  EXPECT_THAT([&] { sample_counterfactual_pairs(w, 5, rng, {3}); },
              ::testing::ThrowsMessage<std::invalid_argument>(HasSubstr("concepts")));
  IntMatrix bad = w.prior().sample(2, rng);
  bad(1, 0) = 2;
  EXPECT_THAT([&] { sample_given_concepts(w, bad, rng); },
              ::testing::ThrowsMessage<std::invalid_argument>(HasSubstr("values of concept 1")));
  EXPECT_THROW(set_concept(bad, 3, 1), std::invalid_argument);
  // a categorical concept cannot be flipped
  PaperWorldParams p;
  p.m = 2;
  p.cardinality = 3;
  const auto cat = make_paper_world<double>(p, rng);
  EXPECT_THAT([&] { sample_counterfactual_pairs(cat, 5, rng); },
              ::testing::ThrowsMessage<std::invalid_argument>(HasSubstr("binary concepts")));
}

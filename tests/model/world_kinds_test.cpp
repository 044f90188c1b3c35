// Tests for the world kinds of ergo/model.hpp used by the main job: nuisance bits, noisy Boolean
// functions of concept subsets, the concept-additive token, concatenation, one-hot encoding,
// the marginal predictive and the prior marginals — each against brute force or a closed form.
#include "common/test_utils.hpp"

#include <ergo/model.hpp>

#include <gmock/gmock.h>

#include <cmath>
#include <set>

using namespace ergo;
using namespace ergo::model;
using ::testing::HasSubstr;

namespace {

ConceptModel<double> random_model(Index m, double er, std::uint64_t seed) {
  Rng rng(seed);
  return ConceptModel<double>::random(ConceptGraph::random_er(m, er, 2, rng), rng);
}

}  // namespace

TEST(WorldKinds, NuisanceBitsLeaveEveryPosteriorUnchanged) {
  const ConceptModel<double> model = random_model(3, 1.0, 1);
  Rng rng(2);
  const auto informative = Emission<double>::permuted_one_hot(8, 8, 0.1, rng);
  const auto token = Emission<double>::softmax_token(8, 9, 1.0, rng);
  const auto nuisance = Emission<double>::nuisance_bits(8, 5, 0.3);
  EXPECT_EQ(nuisance.size(), 5);
  EXPECT_EIGEN_NEAR(nuisance.prob_table().row(1), RowVector<double>::Constant(8, 0.3), 1e-15);
  const ConceptWorld<double> plain(model, informative, token);
  const ConceptWorld<double> noisy(model, Emission<double>::concatenate(informative, nuisance),
                                   token);
  EXPECT_EQ(noisy.context_size(), 13);
  EXPECT_EQ(noisy.x_emission().permutation(), informative.permutation());
  Rng srng(3);
  const Samples s = noisy.sample(200, srng);
  // The posterior given (informative, nuisance) equals the posterior given the informative part.
  EXPECT_EIGEN_NEAR(noisy.log_posterior(s.x), plain.log_posterior(s.x.topRows(8)), 1e-12);
  EXPECT_EIGEN_NEAR(noisy.log_predictive(s.x), plain.log_predictive(s.x.topRows(8)), 1e-12);
  // The nuisance bits are Bernoulli(0.3) whatever c is: a crude frequency check (4 sd).
  const double freq = s.x.bottomRows(5).cast<double>().mean();
  EXPECT_NEAR(freq, 0.3, 4.0 * std::sqrt(0.3 * 0.7 / 1000.0));
  EXPECT_THROW(Emission<double>::nuisance_bits(8, 0), InvalidArgument);
  EXPECT_THROW(Emission<double>::nuisance_bits(8, 2, 1.0), InvalidArgument);
  EXPECT_THROW(Emission<double>::concatenate(informative, Emission<double>::nuisance_bits(4, 2)),
               InvalidArgument);
}

TEST(WorldKinds, BooleanFunctionObservationsDependOnTheirParentsOnly) {
  const Index m = 4;
  const ConceptModel<double> model = random_model(m, 2.0, 4);
  Rng rng(5);
  const double eta = 0.1;
  const auto e = Emission<double>::random_boolean_functions(model, 12, 2, eta, rng);
  ASSERT_EQ(e.size(), 12);
  const IntMatrix& cfg = model.configs();
  for (Index j = 0; j < e.size(); ++j) {
    const auto p1 = e.prob_table().row(e.offset(j) + 1);
    // Every probability is η or 1 − η (to rounding), and both occur (g_j is not constant).
    Index low = 0, high = 0;
    for (Index i = 0; i < p1.size(); ++i) {
      low += std::abs(p1[i] - eta) < 1e-12;
      high += std::abs(p1[i] - (1.0 - eta)) < 1e-12;
    }
    EXPECT_EQ(low + high, p1.size()) << "observation " << j;
    EXPECT_GT(low, 0) << "observation " << j;
    EXPECT_GT(high, 0) << "observation " << j;
    // p(o_j = 1 | c) depends on exactly two concepts: flipping any other concept never changes
    // it, and flipping each of the two changes it for some configuration.
    Index relevant = 0;
    for (Index k = 0; k < m; ++k) {
      bool changes = false;
      for (Index i = 0; i < model.joint_size(); ++i) {
        IntVector c = cfg.col(i);
        c[k] = 1 - c[k];
        changes = changes || std::abs(p1[model.joint_index(c)] - p1[i]) > 1e-12;
      }
      relevant += changes ? 1 : 0;
    }
    EXPECT_LE(relevant, 2) << "observation " << j;  // a function of 2 may ignore one of them
    EXPECT_GE(relevant, 1) << "observation " << j;
  }
  EXPECT_THROW(Emission<double>::random_boolean_functions(model, 3, 5, eta, rng), InvalidArgument);
  EXPECT_THROW(Emission<double>::random_boolean_functions(model, 3, 2, 0.5, rng), InvalidArgument);
}

TEST(WorldKinds, AdditiveTokenHasNoInteractionsBetweenConcepts) {
  const Index m = 3;
  const ConceptModel<double> model = random_model(m, 1.0, 6);
  Rng rng(7);
  const auto y = Emission<double>::additive_softmax_token(model, 9, 0.7, rng);
  ASSERT_EQ(y.size(), 1);
  ASSERT_EQ(y.cardinality(0), 9);
  EXPECT_EQ(y.zero_count(), 0);
  // log p(y|c) − log p(y'|c) is a logit difference (log Z(c) cancels), so it is additive in the
  // concepts: its double difference over any two concepts vanishes.
  const Matrix<double>& lt = y.log_table();
  const IntMatrix& cfg = model.configs();
  double worst = 0.0, signal = 0.0;
  for (Index i = 0; i < model.joint_size(); ++i) {
    if (cfg(0, i) != 0 || cfg(1, i) != 0) continue;
    IntVector c = cfg.col(i);
    auto idx = [&](int a, int b) {
      IntVector cc = c;
      cc[0] = a;
      cc[1] = b;
      return model.joint_index(cc);
    };
    for (Index v = 1; v < 9; ++v) {
      auto diff = [&](Index j) { return lt(v, j) - lt(0, j); };
      worst = std::max(
          worst, std::abs(diff(idx(1, 1)) - diff(idx(1, 0)) - diff(idx(0, 1)) + diff(idx(0, 0))));
      signal = std::max(signal, std::abs(diff(idx(1, 0)) - diff(idx(0, 0))));
    }
  }
  EXPECT_LT(worst, 1e-12);
  EXPECT_GT(signal, 0.05);  // the concepts do move the logits
}

TEST(WorldKinds, OneHotMarginalPredictiveAndPriorMarginalsMatchBruteForce) {
  PaperWorldParams p;
  p.m = 3;
  p.context = ContextKind::BooleanFunctions;
  p.n_observed = 5;
  p.n_nuisance = 4;
  p.token = TokenKind::Additive;
  p.eta = 0.05;
  Rng rng(8);
  const ConceptWorld<double> w = make_paper_world<double>(p, rng);
  EXPECT_EQ(w.context_size(), 9);
  EXPECT_EQ(w.vocab_size(), 9);  // ℓ + 1
  EXPECT_EQ(p.informative_size(), 5);
  Rng srng(9);
  const Samples s = w.sample(300, srng);
  const Matrix<double> oh = w.one_hot<double>(s.x);
  ASSERT_EQ(oh.rows(), 18);
  for (Index c = 0; c < s.x.cols(); ++c)
    for (Index j = 0; j < 9; ++j) {
      EXPECT_EQ(oh(2 * j + s.x(j, c), c), 1.0);
      EXPECT_EQ(oh(2 * j + 1 - s.x(j, c), c), 0.0);
    }
  // p(y) = Σ_c p(c) p(y|c), enumerated.
  const Vector<double> prior = w.prior().log_prior().array().exp();
  const Matrix<double> py_c = w.y_emission().prob_table();
  const Vector<double> py = py_c * prior;
  EXPECT_EIGEN_NEAR(w.log_marginal_predictive().array().exp().matrix(), py, 1e-14);
  double ce = 0.0;
  for (Index i = 0; i < s.y.size(); ++i) ce -= std::log(py[s.y[i]]);
  EXPECT_NEAR(w.marginal_cross_entropy(s.y), ce / static_cast<double>(s.y.size()), 1e-12);
  // The context can only help: CE_Bayes ≤ CE_marginal in expectation (here by a clear margin).
  EXPECT_LT(w.bayes_cross_entropy(s.x, s.y), w.marginal_cross_entropy(s.y));
  // p(c_k = v) by enumeration.
  const Vector<double> lm = w.log_prior_marginals();
  for (Index k = 0; k < 3; ++k) {
    double p1 = 0.0;
    for (Index i = 0; i < w.joint_size(); ++i)
      if (w.prior().configs()(k, i) == 1) p1 += prior[i];
    EXPECT_NEAR(std::exp(lm[w.marginal_offset(k) + 1]), p1, 1e-14);
    EXPECT_NEAR(std::exp(lm[w.marginal_offset(k)]), 1.0 - p1, 1e-14);
  }
  EXPECT_THROW(w.one_hot<double>(IntMatrix::Constant(9, 2, 2)), InvalidArgument);
  EXPECT_THROW(w.marginal_cross_entropy(IntRowVector::Constant(2, 9)), InvalidArgument);
}

TEST(WorldKinds, OneHotWorldKeepsItsDrawsWhenOnlyNEtaOrNuisanceChange) {
  // The main job pairs settings by seed: the same graph, CPTs, permutation and token table.
  PaperWorldParams a;
  a.m = 3;
  PaperWorldParams b = a;
  b.n_observed = 5;
  b.eta = 0.2;
  b.n_nuisance = 6;
  Rng ra(10), rb(10);
  const auto wa = make_paper_world<double>(a, ra);
  const auto wb = make_paper_world<double>(b, rb);
  EXPECT_EQ(wa.graph().edges(), wb.graph().edges());
  EXPECT_EIGEN_NEAR(wa.prior().log_prior(), wb.prior().log_prior(), 0.0);
  EXPECT_EQ(wa.x_emission().permutation(), wb.x_emission().permutation());
  EXPECT_EIGEN_NEAR(wa.y_emission().prob_table(), wb.y_emission().prob_table(), 0.0);
  EXPECT_EQ(wb.context_size(), 11);
}

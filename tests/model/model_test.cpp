// Tests for ergo/model.hpp: graphs, CPT validation, sampling, exact inference against brute force.
#include "common/test_utils.hpp"

#include <ergo/model.hpp>

#include <gmock/gmock.h>

#include <map>
#include <set>

using namespace ergo;
using namespace ergo::model;
using ::testing::HasSubstr;

namespace {

// A tiny hand-specified world: c0 (binary) → c1 (3 values), c0 → c2 (binary), c1 → c2.
// x: two variables, x0 (3 values) depends on {c0, c1}, x1 (binary) on {c2}; y: 4 tokens on {c1,
// c2}.
template <class S>
struct TinyWorld {
  ConceptGraph g{{2, 3, 2}, {{0, 1}, {0, 2}, {1, 2}}};
  std::vector<Matrix<S>> cpts;
  std::vector<Matrix<S>> xcpt;  // x0: 3 × (2·3), x1: 2 × 2
  Matrix<S> ycpt;               // 4 × (3·2)
  ConceptModel<S> model;
  ConceptWorld<S> world;

  explicit TinyWorld(bool deterministic_x1 = false) {
    Rng rng(11);
    // Written in double, then cast: the brute force below reads the same (cast) numbers.
    cpts.push_back((MatrixXd(2, 1) << 0.35, 0.65).finished().cast<S>());
    MatrixXd c1(3, 2);
    c1 << 0.2, 0.5, 0.3, 0.1, 0.5, 0.4;
    cpts.push_back(c1.cast<S>());
    MatrixXd c2(2, 6);                    // parents (c0, c1): c0 fastest
    c2 << 0.9, 0.3, 0.6, 0.25, 0.5, 0.8,  //
        0.1, 0.7, 0.4, 0.75, 0.5, 0.2;
    cpts.push_back(c2.cast<S>());
    model = ConceptModel<S>(g, cpts);
    MatrixXd x0 = rng.uniform_matrix<double>(3, 6, 0.1, 1.0);
    x0 = (x0.array().rowwise() / x0.colwise().sum().array()).matrix();
    xcpt.push_back(x0.cast<S>());
    MatrixXd x1(2, 2);
    if (deterministic_x1)
      x1 << 1, 0, 0, 1;  // x1 = c2 exactly
    else
      x1 << 0.8, 0.3, 0.2, 0.7;
    xcpt.push_back(x1.cast<S>());
    MatrixXd yc = rng.uniform_matrix<double>(4, 6, 0.1, 1.0);
    yc = (yc.array().rowwise() / yc.colwise().sum().array()).matrix();
    ycpt = yc.cast<S>();
    auto ex = Emission<S>::from_concept_cpts(model, {{0, 1}, {2}}, xcpt);
    auto ey = Emission<S>::from_concept_cpts(model, {{1, 2}}, {ycpt});
    world = ConceptWorld<S>(model, ex, ey);
  }

  // Brute force from the raw CPTs (no use of the library's tables).
  double prior(const IntVector& c) const {
    return static_cast<double>(cpts[0](c[0], 0) * cpts[1](c[1], c[0]) *
                               cpts[2](c[2], c[0] + 2 * c[1]));
  }
  double px(const IntVector& x, const IntVector& c) const {
    return static_cast<double>(xcpt[0](x[0], c[0] + 2 * c[1]) * xcpt[1](x[1], c[2]));
  }
  double py(int y, const IntVector& c) const {
    return static_cast<double>(ycpt(y, c[1] + 3 * c[2]));
  }
  std::vector<IntVector> all_configs() const {
    std::vector<IntVector> out;
    for (int c2 = 0; c2 < 2; ++c2)
      for (int c1 = 0; c1 < 3; ++c1)
        for (int c0 = 0; c0 < 2; ++c0) out.push_back((IntVector(3) << c0, c1, c2).finished());
    return out;  // in joint-index order (c0 fastest)
  }
  IntMatrix all_contexts() const {
    IntMatrix x(2, 6);
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 2; ++b) x.col(a + 3 * b) << a, b;
    return x;
  }
};

template <class S>
double tol() {
  return std::is_same<S, float>::value ? 2e-5 : 1e-12;  // a few ulps of accumulated products
}

}  // namespace

// ----------------------------------------------------------------- graph ----

TEST(ConceptGraphTest, StructureAndTopologicalOrder) {
  ConceptGraph g({2, 3, 2, 2}, {{2, 0}, {0, 1}, {2, 1}, {3, 1}});
  EXPECT_EQ(g.size(), 4);
  EXPECT_EQ(g.joint_size(), 24);
  EXPECT_EQ(g.parents(1), (std::vector<Index>{0, 2, 3}));
  EXPECT_EQ(g.children(2), (std::vector<Index>{0, 1}));
  const auto& order = g.topological_order();
  std::vector<Index> pos(4);
  for (Index i = 0; i < 4; ++i) pos[order[i]] = i;
  for (const auto& e : g.edges()) EXPECT_LT(pos[e.first], pos[e.second]);
  EXPECT_THAT(g.to_string(), HasSubstr("c1 (3 values) <- c0 c2 c3"));
}

TEST(ConceptGraphTest, CycleIsRejectedAndNamed) {
  try {
    ConceptGraph g({2, 2, 2, 2}, {{0, 1}, {1, 2}, {2, 3}, {3, 1}});
    FAIL() << "cycle accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("ConceptGraph::ConceptGraph(): edges: expected an acyclic "
                                    "graph, got the cycle 1 -> 2 -> 3 -> 1"));
  }
  EXPECT_THROW(ConceptGraph({2, 2}, {{0, 0}}), InvalidArgument);          // self-loop
  EXPECT_THROW(ConceptGraph({2, 2}, {{0, 1}, {0, 1}}), InvalidArgument);  // duplicate
  EXPECT_THROW(ConceptGraph({2, 2}, {{0, 2}}), InvalidArgument);          // out of range
  EXPECT_THROW(ConceptGraph({2, 1}, {}), InvalidArgument);                // cardinality 1
}

TEST(ConceptGraphTest, RandomErHasKmEdgesCappedAndIsAcyclic) {
  Rng rng(3);
  for (Index m : {1, 3, 4, 6, 8})
    for (double k : {0.0, 1.0, 2.0, 3.0}) {
      for (int rep = 0; rep < 5; ++rep) {
        // Construction validates acyclicity (it throws on a cycle); check the count.
        const ConceptGraph g = ConceptGraph::random_er(m, k, 2, rng);
        const Index expected =
            std::min<Index>(static_cast<Index>(k * static_cast<double>(m)), m * (m - 1) / 2);
        EXPECT_EQ(g.edge_count(), expected) << "m " << m << " k " << k;
        EXPECT_EQ(static_cast<Index>(g.topological_order().size()), m);
      }
    }
  Rng a(5), b(5);
  EXPECT_EQ(ConceptGraph::random_er(8, 2, 2, a).edges(),
            ConceptGraph::random_er(8, 2, 2, b).edges());
}

// ----------------------------------------------------------------- model ----

TEST(ConceptModelTest, InvalidCptsAreRejected) {
  ConceptGraph g({2, 2}, {{0, 1}});
  std::vector<MatrixXd> ok{(MatrixXd(2, 1) << 0.5, 0.5).finished(),
                           (MatrixXd(2, 2) << 0.1, 0.6, 0.9, 0.4).finished()};
  EXPECT_NO_THROW(ConceptModeld(g, ok));
  auto bad_shape = ok;
  bad_shape[1] = MatrixXd::Constant(2, 1, 0.5);
  try {
    ConceptModeld m(g, bad_shape);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("cpts[1]: expected shape 2 x 2, got 2 x 1"));
  }
  auto bad_sum = ok;
  bad_sum[1](0, 1) = 0.7;
  EXPECT_THROW(ConceptModeld(g, bad_sum), InvalidArgument);
  auto negative = ok;
  negative[0] << -0.5, 1.5;
  EXPECT_THROW(ConceptModeld(g, negative), InvalidArgument);
  auto nan = ok;
  nan[0](0, 0) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(ConceptModeld(g, nan), InvalidArgument);
  EXPECT_THROW(ConceptModeld(g, {ok[0]}), InvalidArgument);  // wrong count
  // The ℓ limit is configurable and enforced with a clear message.
  ConceptGraph big(std::vector<Index>(10, 2), {});
  Rng rng(1);
  try {
    ConceptModeld::random(big, rng, {}, 512);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("max_joint_size = 512"));
    EXPECT_THAT(e.what(), HasSubstr("1024"));
  }
}

TEST(ConceptModelTest, JointIndexingRoundTripsAndPriorMatchesBruteForce) {
  TinyWorld<double> t;
  const auto configs = t.all_configs();
  ASSERT_EQ(t.model.joint_size(), 12);
  double total = 0;
  for (Index i = 0; i < 12; ++i) {
    EXPECT_EQ(t.model.joint_index(configs[i]), i);
    EXPECT_EQ(t.model.config(i), configs[i]);
    EXPECT_NEAR(std::exp(t.model.log_prior()[i]), t.prior(configs[i]), 1e-15);
    total += std::exp(t.model.log_prior()[i]);
  }
  EXPECT_NEAR(total, 1.0, 1e-14);
  EXPECT_THROW(t.model.joint_index((IntVector(3) << 0, 3, 0).finished()), InvalidArgument);
}

TEST(ConceptModelTest, RandomBinaryCptsAreInThePapersRange) {
  Rng rng(2);
  auto model = ConceptModeld::random(ConceptGraph::random_er(5, 2, 2, rng), rng);
  for (Index k = 0; k < 5; ++k) {
    EXPECT_GE(model.cpt(k).row(1).minCoeff(), 0.2);
    EXPECT_LE(model.cpt(k).row(1).maxCoeff(), 0.8);
  }
  auto cat = ConceptModeld::random(ConceptGraph({4, 3}, {{0, 1}}), rng, {0.2, 0.8, 0.5});
  EXPECT_NEAR(cat.cpt(1).colwise().sum().maxCoeff(), 1.0, 1e-12);
}

// -------------------------------------------------------------- inference ----

template <class S>
class WorldInference : public ::testing::Test {};
TYPED_TEST_SUITE(WorldInference, ergo::test::FloatTypes);

TYPED_TEST(WorldInference, PosteriorsMatchBruteForceBayesAndSumToOne) {
  using S = TypeParam;
  TinyWorld<S> t;
  const IntMatrix x = t.all_contexts();
  const Matrix<S> lp = t.world.log_posterior(x);
  const auto configs = t.all_configs();
  for (Index s = 0; s < x.cols(); ++s) {
    std::vector<double> joint(12);
    double z = 0;
    for (Index i = 0; i < 12; ++i) z += joint[i] = t.prior(configs[i]) * t.px(x.col(s), configs[i]);
    for (Index i = 0; i < 12; ++i) EXPECT_NEAR(std::exp(double(lp(i, s))), joint[i] / z, tol<S>());
    EXPECT_NEAR(lp.col(s).array().exp().sum(), S(1), ScalarTraits<S>::prob_tol());
    EXPECT_NEAR(double(t.world.log_evidence(x.col(s))[0]), std::log(z), tol<S>() * 10);
  }
}

TYPED_TEST(WorldInference, PredictiveCrossEntropyMarginalsAndEpsilonMatchBruteForce) {
  using S = TypeParam;
  TinyWorld<S> t;
  const IntMatrix x = t.all_contexts();
  const auto configs = t.all_configs();
  const Matrix<S> lpred = t.world.log_predictive(x);
  const Matrix<S> lmarg = t.world.log_marginals(x);
  ASSERT_EQ(lpred.rows(), 4);
  ASSERT_EQ(lmarg.rows(), 2 + 3 + 2);
  IntRowVector y(x.cols());
  double ce = 0;
  for (Index s = 0; s < x.cols(); ++s) {
    y[s] = static_cast<int>(s % 4);
    std::vector<double> post(12);
    double z = 0;
    for (Index i = 0; i < 12; ++i) z += post[i] = t.prior(configs[i]) * t.px(x.col(s), configs[i]);
    for (auto& p : post) p /= z;
    for (int v = 0; v < 4; ++v) {
      double pv = 0;
      for (Index i = 0; i < 12; ++i) pv += t.py(v, configs[i]) * post[i];
      EXPECT_NEAR(std::exp(double(lpred(v, s))), pv, tol<S>());
      if (v == y[s]) ce -= std::log(pv);
    }
    std::vector<double> marg(7, 0.0);
    for (Index i = 0; i < 12; ++i) {
      marg[configs[i][0]] += post[i];
      marg[2 + configs[i][1]] += post[i];
      marg[5 + configs[i][2]] += post[i];
    }
    for (int r = 0; r < 7; ++r) EXPECT_NEAR(std::exp(double(lmarg(r, s))), marg[r], tol<S>());
    // ε(x, y) = 1 − max_c p(c | x, y) with p(c|x,y) ∝ p(c|x) p(y|c).
    double zxy = 0, best = 0;
    for (Index i = 0; i < 12; ++i) zxy += post[i] * t.py(y[s], configs[i]);
    for (Index i = 0; i < 12; ++i) best = std::max(best, post[i] * t.py(y[s], configs[i]) / zxy);
    EXPECT_NEAR(double(t.world.epsilon(x.col(s), y.segment(s, 1))[0]), 1 - best, tol<S>());
  }
  EXPECT_NEAR(t.world.bayes_cross_entropy(x, y), ce / static_cast<double>(x.cols()), tol<S>() * 10);
  // p(c | y = j) ∝ p(c) p(y = j | c).
  const Matrix<S> lpy = t.world.log_posterior_given_token();
  for (int v = 0; v < 4; ++v) {
    double z = 0;
    for (Index i = 0; i < 12; ++i) z += t.prior(configs[i]) * t.py(v, configs[i]);
    for (Index i = 0; i < 12; ++i)
      EXPECT_NEAR(std::exp(double(lpy(i, v))), t.prior(configs[i]) * t.py(v, configs[i]) / z,
                  tol<S>());
  }
}

TYPED_TEST(WorldInference, LogOddsAndClrOfAPaperWorld) {
  using S = TypeParam;
  Rng rng(4);
  PaperWorldParams p;
  p.m = 3;
  p.n_observed = 5;
  const auto world = make_paper_world<S>(p, rng);
  const auto s = world.sample(50, rng);
  const Matrix<S> marg = world.log_marginals(s.x);
  const Matrix<S> odds = world.log_odds(s.x);
  for (Index k = 0; k < 3; ++k)
    EXPECT_EIGEN_NEAR(odds.row(k), (marg.row(2 * k + 1) - marg.row(2 * k)).eval(), tol<S>());
  const Matrix<S> clr = world.clr(s.x);
  EXPECT_LT(clr.colwise().sum().cwiseAbs().maxCoeff(), S(8) * tol<S>() * 100);
  // clr differences equal log-posterior differences.
  const Matrix<S> lp = world.log_posterior(s.x);
  EXPECT_EIGEN_NEAR((clr.row(3) - clr.row(5)).eval(), (lp.row(3) - lp.row(5)).eval(),
                    tol<S>() * 100);
}

TEST(WorldInferenceDeterministic, ZeroProbabilitiesGiveExactMinusInfinityAndTargetsRefuse) {
  TinyWorld<double> t(/*deterministic_x1=*/true);
  const IntMatrix x = t.all_contexts();
  const MatrixXd lp = t.world.log_posterior(x);
  EXPECT_FALSE(t.world.has_full_support());
  const auto configs = t.all_configs();
  for (Index s = 0; s < x.cols(); ++s)
    for (Index i = 0; i < 12; ++i) {
      const bool impossible = configs[i][2] != x(1, s);  // x1 = c2 exactly
      if (impossible)
        EXPECT_EQ(lp(i, s), -std::numeric_limits<double>::infinity());
      else
        EXPECT_TRUE(std::isfinite(lp(i, s)));
    }
  EXPECT_FALSE(lp.array().isNaN().any());
  try {
    t.world.clr(x);
    FAIL() << "clr accepted -inf";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("36 infinite entries of 72"));
  }
  EXPECT_THROW(t.world.log_marginals(x), InvalidArgument);  // c2's other value has p = 0
}

TEST(WorldInferenceDeterministic, PaperWorldWithEtaZeroRefusesLogOdds) {
  Rng rng(6);
  PaperWorldParams p;
  p.m = 3;
  p.eta = 0.0;
  const auto world = make_paper_world<double>(p, rng);
  const auto s = world.sample(20, rng);
  EXPECT_NO_THROW(world.log_posterior(s.x));
  try {
    world.log_odds(s.x);
    FAIL() << "log_odds accepted an exactly determined concept";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("ConceptWorld::log_odds(): x: expected finite log-odds"));
    EXPECT_THAT(e.what(), HasSubstr("infinite entries of 60"));
  }
  // A context impossible under the model is refused, not turned into NaN.
  IntMatrix two_bits = IntMatrix::Zero(world.context_size(), 1);
  two_bits(0, 0) = two_bits(1, 0) = 1;
  EXPECT_THROW(world.log_posterior(two_bits), InvalidArgument);
}

TEST(WorldInferenceErrors, BadObservationsAreRejected) {
  TinyWorld<double> t;
  IntMatrix x = t.all_contexts();
  x(0, 2) = 3;  // x0 has 3 values
  try {
    t.world.log_posterior(x);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("x: expected values of variable 0 in [0, 3), got 3 in column 2"));
  }
  EXPECT_THROW(t.world.log_posterior(IntMatrix::Zero(3, 2)), InvalidArgument);
  EXPECT_THROW(t.world.bayes_cross_entropy(t.all_contexts(), IntRowVector::Constant(6, 4)),
               InvalidArgument);
  EXPECT_THROW(t.world.log_odds(t.all_contexts()), InvalidArgument);  // c1 has 3 values
  Rng rng(1);
  EXPECT_THROW(Emission<double>::permuted_one_hot(16, 17, 0.1, rng), InvalidArgument);
  EXPECT_THROW(Emission<double>::permuted_one_hot(16, 4, 0.5, rng), InvalidArgument);
  PaperWorldParams p;
  p.tau = 0;
  EXPECT_THROW(make_paper_world<double>(p, rng), InvalidArgument);
}

// --------------------------------------------------------------- sampling ----

TEST(WorldSampling, SameSeedSameSamples) {
  Rng r1(9), r2(9);
  PaperWorldParams p;
  const auto w1 = make_paper_world<double>(p, r1);
  const auto w2 = make_paper_world<double>(p, r2);
  const auto a = w1.sample(200, r1), b = w2.sample(200, r2);
  EXPECT_EQ(a.c, b.c);
  EXPECT_EQ(a.x, b.x);
  EXPECT_EQ(a.y, b.y);
}

TEST(WorldSampling, FrequenciesMatchExactProbabilities) {
  // N = 60000 draws. A frequency with probability p has standard error sqrt(p(1-p)/N) <= 0.00205;
  // we allow 5 standard errors (0.0103), so a correct sampler fails with probability ~1e-6 per
  // check, while a wrong CPT column, parent index or emission would be off by far more.
  TinyWorld<double> t;
  Rng rng(21);
  const Index n = ergo::test::scaled(60000, 15000);
  const auto s = t.world.sample(n, rng);
  const double bound = 5 * 0.5 / std::sqrt(double(n));
  const auto configs = t.all_configs();
  const IntRowVector joint = t.model.joint_indices(s.c);
  std::vector<double> freq(12, 0.0);
  for (Index j = 0; j < n; ++j) freq[joint[j]] += 1.0 / double(n);
  for (Index i = 0; i < 12; ++i) EXPECT_NEAR(freq[i], t.prior(configs[i]), bound) << "config " << i;
  // Context frequencies against the exact evidence p(x) = Σ_c p(c) p(x|c).
  const IntMatrix xs = t.all_contexts();
  const RowVector<double> ev = t.world.log_evidence(xs).array().exp().matrix();
  for (Index a = 0; a < xs.cols(); ++a) {
    double f = 0;
    for (Index j = 0; j < n; ++j) f += (s.x.col(j) == xs.col(a)) ? 1.0 : 0.0;
    EXPECT_NEAR(f / double(n), ev[a], bound);
  }
  // Token frequencies against p(y) = Σ_c p(c) p(y|c).
  for (int v = 0; v < 4; ++v) {
    double py = 0;
    for (Index i = 0; i < 12; ++i) py += t.prior(configs[i]) * t.py(v, configs[i]);
    EXPECT_NEAR((s.y.array() == v).cast<double>().mean(), py, bound);
  }
}

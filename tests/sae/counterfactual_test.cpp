// SPDX-License-Identifier: MIT
// The paper's SAE protocol on simulated counterfactual pairs (sae/counterfactual.hpp) and the
// permutation null of the alignment score (sae/alignment_null.hpp): probes trained on pairs from
// a ConceptWorld track the exact posterior p(c_k = 1 | x); probes on pairs with shuffled sides
// fail; a planted feature exp(z) = p(c_k = 1 | x) is found and passes the null, noise does not;
// the null equals a brute-force recomputation; malformed pairs are refused.

#include <ergo/model.hpp>
#include <ergo/sae.hpp>

#include "common/test_utils.hpp"

#include <gmock/gmock.h>

#include <cmath>
#include <vector>

namespace counterfactual_sae_test {

using namespace ergo;

// Activations linear in the concepts' log-odds (the theorem's f_x = A λ(x) + b, per concept):
// x = A L + 0.1 ε with L the exact log-odds (m × N), A a random d × m matrix, d = m + 4.
struct PairData {
  model::ConceptWorld<double> world;
  model::CounterfactualPairs cp;
  Matrix<double> A, x, post;  // post: m × N exact p(c_k = 1 | x)
};

Matrix<double> activations(const model::ConceptWorld<double>& w, const IntMatrix& ctx,
                           const Matrix<double>& A, Rng& rng) {
  Matrix<double> x = A * w.log_odds(ctx);
  x += 0.1 * rng.normal_matrix<double>(x.rows(), x.cols());
  return x;
}

Matrix<double> posteriors(const model::ConceptWorld<double>& w, const IntMatrix& ctx) {
  const Matrix<double> lm = w.log_marginals(ctx);
  Matrix<double> p(w.concept_count(), ctx.cols());
  for (Index k = 0; k < w.concept_count(); ++k)
    p.row(k) = lm.row(w.marginal_offset(k) + 1).array().exp().matrix();
  return p;
}

PairData make_data(Index pairs_per_concept, std::uint64_t seed) {
  Rng rng(seed);
  model::PaperWorldParams wp;
  wp.m = 4;
  wp.eta = 0.1;
  PairData d{model::make_paper_world<double>(wp, rng), {}, {}, {}, {}};
  d.cp = model::sample_counterfactual_pairs(d.world, pairs_per_concept, rng);
  d.A = rng.normal_matrix<double>(8, 4);
  d.x = activations(d.world, d.cp.samples.x, d.A, rng);
  d.post = posteriors(d.world, d.cp.samples.x);
  return d;
}

double pearson(const RowVector<double>& a, const RowVector<double>& b) {
  return identify::correlation_matrix(a, b)(0, 0);
}

}  // namespace counterfactual_sae_test

using namespace ergo;
using counterfactual_sae_test::make_data;
using counterfactual_sae_test::pearson;

// Probes trained on 400 pairs per concept. In this η = 0.1 world the side label is far from a
// deterministic function of x (16 noisy bits), so the reference for the held-out probabilities is
// the exact posterior used as a classifier of the same samples: the probe must separate the two
// sides about as well (accuracy within 0.05, Pearson with the label within 0.1 — the exact
// posterior is Bayes-optimal under the world's prior, the probe under the pairs' 50/50 law, and
// 800 samples give a standard error of ~0.015 on accuracy), and far above the shuffled-sides null
// of the next test (0.5 ± 0.07, 0 ± 0.15). It must also track p(c_k = 1 | x) itself: Pearson > 0.9
// on the pair samples and, for the probe refitted on all pairs, on 4000 fresh contexts from the
// world's own distribution (not pairs): it estimates a posterior, not only the pair labels.
TEST(SaeCounterfactual, ProbesOnPairsTrackTheExactPosterior) {
  const auto d = make_data(400, 11);
  sae::CounterfactualParams cp;
  const std::vector<sae::PairProbe> probes = sae::fit_pair_probes(d.x, d.cp.pairs, cp);
  ASSERT_EQ(probes.size(), 4u);
  Rng rng(12);
  const model::Samples fresh = d.world.sample(4000, rng);
  const Matrix<double> xf = counterfactual_sae_test::activations(d.world, fresh.x, d.A, rng);
  const Matrix<double> pf = counterfactual_sae_test::posteriors(d.world, fresh.x);
  for (const sae::PairProbe& pr : probes) {
    const Index k = pr.concept_id;
    EXPECT_EQ(pr.pairs, 400);
    EXPECT_EQ(static_cast<Index>(pr.samples.size()), 800);
    EXPECT_EQ(pr.folds, 5);
    RowVector<double> pk(800), lab(800);
    double exact_hits = 0;
    for (Index i = 0; i < 800; ++i) {
      pk[i] = d.post(k, pr.samples[static_cast<size_t>(i)]);
      lab[i] = pr.label[static_cast<size_t>(i)];
      exact_hits += (pk[i] > 0.5) == (lab[i] == 1.0) ? 1.0 : 0.0;
    }
    EXPECT_GT(pr.accuracy, exact_hits / 800.0 - 0.05) << k;
    EXPECT_GT(pr.label_corr, pearson(pk, lab) - 0.1) << k;
    EXPECT_GT(pr.accuracy, 0.65) << k;
    EXPECT_GT(pearson(pr.probability, pk), 0.9) << k;
    const RowVector<double> pfull = pr.full.predict_proba(xf).row(1);
    EXPECT_GT(pearson(pfull, pf.row(k)), 0.9) << k;
  }
}

// Shuffled sides: each pair's base and counterfactual swapped with probability 1/2, so the
// label is independent of x. The held-out probe then cannot predict it: |Pearson(p̂, label)|
// stays within 4 standard errors of 0 (1/√800 = 0.035 → 0.15) and accuracy within 0.5 ± 0.07.
TEST(SaeCounterfactual, ProbesOnShuffledSidesFail) {
  const auto d = make_data(400, 13);
  IntMatrix pairs = d.cp.pairs;
  Rng rng(14);
  for (Index q = 0; q < pairs.cols(); ++q)
    if (rng.bernoulli(0.5)) std::swap(pairs(0, q), pairs(1, q));
  for (const sae::PairProbe& pr : sae::fit_pair_probes(d.x, pairs, {})) {
    EXPECT_LT(std::abs(pr.label_corr), 0.15) << pr.concept_id;
    EXPECT_NEAR(pr.accuracy, 0.5, 0.07) << pr.concept_id;
  }
}

// A code whose feature 7 is log p(c_0 = 1 | x) among 30 Gaussian noise features: for concept 0
// the best feature is 7, exp(z_7) = p exactly (feature_exact_corr = 1), its score equals the
// probe's agreement with the exact posterior, and it passes the null (p = 1/(B + 1)). For the
// other concepts, and for a code of noise only, the best score stays below the null's 99th
// percentile plus a margin, and the noise code's p-values are not small.
TEST(SaeCounterfactual, PlantedFeatureIsFoundAndPassesTheNull) {
  const auto d = make_data(300, 15);
  const Index N = d.x.cols();
  Rng rng(16);
  Matrix<double> z = 0.5 * rng.normal_matrix<double>(30, N);
  z.row(7) = d.post.row(0).array().log().matrix();
  sae::CounterfactualParams cp;
  cp.permutations = 199;
  const auto probes = sae::fit_pair_probes(d.x, d.cp.pairs, cp);
  const sae::PairEvaluation ev = sae::score_pair_features(z, probes, cp, &d.post);
  ASSERT_EQ(ev.concepts.size(), 4u);
  const sae::PairConceptScore& c0 = ev.concepts[0];
  EXPECT_EQ(c0.feature, 7);
  EXPECT_NEAR(c0.feature_exact_corr, 1.0, 1e-9);
  EXPECT_NEAR(c0.corr, c0.probe_exact_corr, 1e-9);
  EXPECT_GT(c0.corr, 0.9);
  EXPECT_DOUBLE_EQ(c0.p_value, 1.0 / 200.0);
  EXPECT_GT(c0.corr, c0.null_p99);
  EXPECT_EQ(c0.permutations, 199);
  // noise only
  const Matrix<double> noise = rng.normal_matrix<double>(30, N);
  const sae::PairEvaluation en = sae::score_pair_features(noise, probes, cp);
  for (const sae::PairConceptScore& s : en.concepts) {
    EXPECT_GT(s.p_value, 0.01) << s.concept_id;
    EXPECT_LT(s.corr, s.null_p99 + 0.05) << s.concept_id;
    EXPECT_TRUE(std::isnan(s.probe_exact_corr));
  }
}

// alignment_null recomputed by brute force with the same permutations (the generator draws B
// permutations of N in order): values(k, b) = max_i Pearson(exp(z_i), p_k ∘ π_b), in blocks
// of 3 features or all at once.
TEST(SaeAlignmentNull, MatchesBruteForce) {
  Rng data(21);
  const Index m = 7, N = 50, K = 2, B = 12;
  const Matrix<double> z = data.normal_matrix<double>(m, N);
  const Matrix<double> p = data.uniform_matrix<double>(K, N);
  for (Index block : {Index(3), Index(1024)}) {
    Rng rng(22), ref(22);
    const sae::AlignmentNull null = sae::alignment_null(z, p, B, rng, true, block);
    ASSERT_EQ(null.values.rows(), K);
    ASSERT_EQ(null.values.cols(), B);
    const Matrix<double> ez = z.array().exp().matrix();
    for (Index b = 0; b < B; ++b) {
      const IndexVector pi = ref.permutation(N);
      Matrix<double> pp(K, N);
      for (Index j = 0; j < N; ++j) pp.col(j) = p.col(pi[j]);
      const Matrix<double> c = identify::correlation_matrix(ez, pp);  // m × K
      for (Index k = 0; k < K; ++k)
        EXPECT_NEAR(null.values(k, b), c.col(k).maxCoeff(), 1e-12) << block << " " << b;
      EXPECT_NEAR(null.mean_values[static_cast<size_t>(b)], null.values.col(b).mean(), 1e-15);
    }
    EXPECT_LE(null.p95[0], null.p99[0]);
    EXPECT_DOUBLE_EQ(null.mean_p_value(1e9), 1.0 / (B + 1));
    EXPECT_DOUBLE_EQ(null.p_value(1, -1e9), 1.0);
  }
}

TEST(SaeCounterfactual, RefusesMalformedPairs) {
  const auto d = make_data(5, 23);
  const sae::CounterfactualParams cp;
  using ::testing::HasSubstr;
  using ::testing::ThrowsMessage;
  const IntMatrix two_rows = d.cp.pairs.topRows(2);
  EXPECT_THAT([&] { sae::fit_pair_probes(d.x, two_rows, cp); },
              ThrowsMessage<std::invalid_argument>(HasSubstr("3 rows")));
  IntMatrix out_of_range = d.cp.pairs;
  out_of_range(1, 3) = static_cast<std::int32_t>(d.x.cols());
  EXPECT_THAT([&] { sae::fit_pair_probes(d.x, out_of_range, cp); },
              ThrowsMessage<std::invalid_argument>(HasSubstr("sample indices in [0, N")));
  IntMatrix both_sides = d.cp.pairs;
  both_sides(0, 1) = both_sides(1, 0);  // pair 0's counterfactual is pair 1's base
  EXPECT_THAT(
      [&] { sae::fit_pair_probes(d.x, both_sides, cp); },
      ThrowsMessage<std::invalid_argument>(HasSubstr("both as base and as counterfactual")));
  IntMatrix lonely = d.cp.pairs.leftCols(6);
  lonely(2, 5) = 9;  // concept 9 has a single pair
  EXPECT_THAT([&] { sae::fit_pair_probes(d.x, lonely, cp); },
              ThrowsMessage<std::invalid_argument>(HasSubstr("at least 2 independent pairs")));
  sae::CounterfactualParams bad;
  bad.folds = 1;
  EXPECT_THAT([&] { sae::fit_pair_probes(d.x, d.cp.pairs, bad); },
              ThrowsMessage<std::invalid_argument>(HasSubstr("folds")));
}

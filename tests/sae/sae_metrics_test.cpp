// SPDX-License-Identifier: MIT
// Metrics and kernels: optimal matching, MCC on planted permutations, FVU definition and
// chunk independence, concept alignment, supervised probe, top-k and batch top-k selection,
// geometric median, planted data statistics (the nuclear norm: nuclear_norm_test.cpp).

#include <ergo/sae.hpp>

#include "common/test_utils.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace {

using ergo::Index;
using ergo::Matrix;
using ergo::Vector;
namespace sae = ergo::sae;

double brute_force_best(const Matrix<double>& w) {
  // rows <= cols: try every injective map by permuting the columns
  std::vector<Index> cols(static_cast<size_t>(w.cols()));
  std::iota(cols.begin(), cols.end(), 0);
  double best = -1e300;
  do {
    double s = 0;
    for (Index i = 0; i < w.rows(); ++i) s += w(i, cols[static_cast<size_t>(i)]);
    best = std::max(best, s);
  } while (std::next_permutation(cols.begin(), cols.end()));
  return best;
}

// mcc_from_similarity uses the optimal one-to-one matching (checked against brute force).
TEST(SaeMetrics, MccUsesOptimalMatching) {
  ergo::Rng rng(1);
  for (int trial = 0; trial < 20; ++trial) {
    const Index r = 1 + static_cast<Index>(rng.uniform_int(5));
    const Index c = r + static_cast<Index>(rng.uniform_int(3));
    const Matrix<double> w = rng.uniform_matrix<double>(r, c);
    const auto res = sae::mcc_from_similarity(w);
    std::vector<char> used(static_cast<size_t>(c), 0);
    double s = 0;
    for (Index i = 0; i < r; ++i) {
      const Index j = res.match[static_cast<size_t>(i)];
      ASSERT_GE(j, 0);
      ASSERT_FALSE(used[static_cast<size_t>(j)]);
      used[static_cast<size_t>(j)] = 1;
      s += w(i, j);
    }
    // exact solver, sums of <= 5 terms: agreement to rounding
    EXPECT_NEAR(res.mcc, brute_force_best(w) / static_cast<double>(r), 1e-12);
    EXPECT_NEAR(res.mcc, s / static_cast<double>(r), 1e-12);
  }
}

TEST(SaeMetrics, DictionaryMccFindsPlantedPermutation) {
  ergo::Rng rng(2);
  const Matrix<double> truth = rng.normal_matrix<double>(16, 10);
  // learned = permuted, sign-flipped, rescaled true atoms plus 5 random distractors
  Matrix<double> learned(16, 15);
  const ergo::IndexVector perm = rng.permutation(15);
  for (Index j = 0; j < 10; ++j) learned.col(perm(j)) = (j % 2 ? -2.0 : 0.5) * truth.col(j);
  for (Index j = 10; j < 15; ++j) learned.col(perm(j)) = rng.normal_matrix<double>(16, 1).col(0);
  const auto r = sae::dictionary_mcc(learned, truth);
  EXPECT_NEAR(r.mcc, 1.0, 1e-12);
  for (Index j = 0; j < 10; ++j) EXPECT_EQ(r.match[static_cast<size_t>(j)], perm(j));
  // codes: planted permutation of correlated rows
  const Matrix<double> codes = rng.normal_matrix<double>(4, 200);
  Matrix<double> lc(6, 200);
  lc.row(2) = codes.row(0) * 3.0;
  lc.row(0) = -codes.row(1);
  lc.row(5) = codes.row(2) + Matrix<double>::Constant(1, 200, 7.0);
  lc.row(1) = codes.row(3);
  lc.row(3) = rng.normal_matrix<double>(1, 200);
  lc.row(4) = rng.normal_matrix<double>(1, 200);
  const auto rc = sae::code_mcc(lc, codes);
  EXPECT_NEAR(rc.mcc, 1.0, 1e-12);
  EXPECT_EQ(rc.match[0], 2);
  EXPECT_EQ(rc.match[2], 5);
}

// FVU = Σ‖x − x̂‖² / Σ‖x − x̄‖² over the whole set, whatever the chunk size.
TEST(SaeMetrics, ReconstructionMetricsFollowTheirDefinitions) {
  ergo::Rng rng(3);
  sae::SparseAutoencoderParams p;
  p.architecture = sae::Architecture::ReluL1;
  p.d_in = 8;
  p.d_sae = 20;
  sae::SparseAutoencoder<double> m(p, rng);
  m.weights().encoder_bias.setConstant(-0.3);
  m.weights().encoder.row(4).setZero();
  m.weights().encoder_bias(4) = -1.0;  // never fires: dead
  m.weights().encoder.row(5).setZero();
  m.weights().encoder_bias(5) = 0.5;  // always fires: dense
  const Matrix<double> x = rng.normal_matrix<double>(8, 137).array() + 2.0;
  const auto a = sae::evaluate_reconstruction(m, x, 0.1, 7);
  const auto b = sae::evaluate_reconstruction(m, x, 0.1, 1000);
  const Matrix<double> xh = m.reconstruct(x);
  const Matrix<double> z = m.encode(x);
  const Vector<double> mean = x.rowwise().mean();
  const double sse = (x - xh).squaredNorm(), tv = (x.colwise() - mean).squaredNorm();
  // independent recomputation in double: agreement to rounding
  EXPECT_NEAR(a.fvu, sse / tv, 1e-12);
  EXPECT_NEAR(a.mse, sse / (137.0 * 8.0), 1e-12);
  EXPECT_NEAR(a.sse, sse / 137.0, 1e-10);
  EXPECT_NEAR(a.l0, static_cast<double>((z.array() != 0).count()) / 137.0, 1e-12);
  EXPECT_NEAR(a.fvu, b.fvu, 1e-12);
  EXPECT_NEAR(a.cosine, b.cosine, 1e-12);
  EXPECT_NEAR(a.explained_variance, 1 - a.fvu, 1e-15);
  EXPECT_DOUBLE_EQ(a.firing_frequency(4), 0.0);
  EXPECT_DOUBLE_EQ(a.firing_frequency(5), 1.0);
  EXPECT_GE(a.dead_fraction, 1.0 / 20.0);
  EXPECT_GE(a.dense_fraction, 1.0 / 20.0);
  // the mean is not counted as explained: a constant offset does not change FVU's denominator
  const auto c = sae::evaluate_reconstruction(m, Matrix<double>(x.array() + 0.0), 0.1, 50);
  EXPECT_NEAR(c.total_variance, tv / 137.0, 1e-12);
}

TEST(SaeMetrics, ConceptAlignmentFindsLogPosteriorFeature) {
  ergo::Rng rng(4);
  const Index N = 500;
  Matrix<double> p(2, N);
  for (Index b = 0; b < N; ++b) {
    p(0, b) = rng.uniform(0.01, 0.99);
    p(1, b) = rng.uniform(0.01, 0.99);
  }
  Matrix<double> z = rng.normal_matrix<double>(5, N);
  z.row(3) = p.row(0).array().log().matrix();  // z_3 = log p_0: exp(z_3) = p_0 exactly
  z.row(1) = 2.0 * p.row(1);                   // z_1 linear in p_1: raw correlation 1
  const auto a = sae::concept_alignment(z, p);
  EXPECT_NEAR(a.exp_corr[0], 1.0, 1e-12);
  EXPECT_EQ(a.exp_feature[0], 3);
  EXPECT_NEAR(a.raw_corr[1], 1.0, 1e-12);
  EXPECT_EQ(a.raw_feature[1], 1);
  EXPECT_LT(a.exp_corr[1], 1.0 - 1e-3);  // exp of a linear function is not linear
  EXPECT_NEAR(a.mean_exp, 0.5 * (a.exp_corr[0] + a.exp_corr[1]), 1e-15);
}

TEST(SaeMetrics, ProbeRecoversLogisticPosterior) {
  ergo::Rng rng(5);
  const Index N = 2000, d = 6;
  const Matrix<double> x = rng.normal_matrix<double>(d, N);
  Vector<double> w(d);
  w << 1.5, -1.0, 0.0, 0.5, 0.0, 2.0;
  Matrix<double> p(1, N);
  ergo::IntMatrix labels(1, N);
  for (Index b = 0; b < N; ++b) {
    p(0, b) = 1.0 / (1.0 + std::exp(-(w.dot(x.col(b)) + 0.3)));
    labels(0, b) = rng.bernoulli(p(0, b)) ? 1 : 0;
  }
  const auto r = sae::probe_alignment(x, labels, p);
  // a well-specified logistic model fitted on 1000 samples: its probabilities track the true
  // ones closely (correlation ≈ 0.99); 0.95 leaves room for sampling noise
  EXPECT_GT(r.corr[0], 0.95);
  // Bayes accuracy for this model is ~0.8; the probe is close to it
  EXPECT_GT(r.accuracy[0], 0.7);
}

TEST(SaeKernels, TopKAndBatchTopKSelection) {
  ergo::Rng rng(6);
  // Groups of 8 entries, G = ⌊m / 8⌋ (group path for k <= G / 2, else all candidates):
  // m = 300: G = 37 and 4 entries in no group (group path for k <= 18); m = 1000: G = 125, none
  // left over; m = 4099: G = 512 and 3 left over (group path for every k below). Values are
  // rounded so that ties are common.
  for (Index m : {Index(300), Index(1000), Index(4099)}) {
    std::vector<float> h(static_cast<size_t>(m));
    for (auto& v : h) v = static_cast<float>(std::round(rng.normal() * 8) / 8);
    h[10] = h[20] = h[30] = 5.0f;          // ties at the top: lower indices are kept first
    h[static_cast<size_t>(m - 1)] = 4.0f;  // the largest but three, in no group when m % 8 != 0
    for (Index k : {1, 3, 4, 17, 31, 64, 100}) {
      std::vector<std::int32_t> idx(static_cast<size_t>(k));
      std::vector<float> val(static_cast<size_t>(k));
      sae::detail::top_k_column(h.data(), m, k, idx.data(), val.data());
      // reference: sort by (value desc, index asc) and take k
      std::vector<std::pair<float, Index>> ref;
      for (Index i = 0; i < m; ++i) ref.push_back({h[static_cast<size_t>(i)], i});
      std::sort(ref.begin(), ref.end(), [](auto a, auto b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
      });
      std::vector<Index> want;
      for (Index j = 0; j < k; ++j) want.push_back(ref[static_cast<size_t>(j)].second);
      std::sort(want.begin(), want.end());
      for (Index j = 0; j < k; ++j) {
        EXPECT_EQ(idx[static_cast<size_t>(j)], want[static_cast<size_t>(j)])
            << "m " << m << " k " << k;
        EXPECT_EQ(val[static_cast<size_t>(j)],
                  h[static_cast<size_t>(want[static_cast<size_t>(j)])]);
      }
      // the same selection of h0 + bias with h0 = h − bias (multiples of 1/8: exact in float)
      std::vector<float> bias(static_cast<size_t>(m)), h0(static_cast<size_t>(m));
      for (size_t i = 0; i < bias.size(); ++i) {
        bias[i] = static_cast<float>(std::round(rng.normal() * 8) / 8);
        h0[i] = h[i] - bias[i];
      }
      std::vector<std::int32_t> idx_b(static_cast<size_t>(k));
      std::vector<float> val_b(static_cast<size_t>(k));
      sae::detail::top_k_column(h0.data(), m, k, idx_b.data(), val_b.data(), bias.data());
      EXPECT_EQ(idx_b, idx) << "with a bias, m " << m << " k " << k;
      EXPECT_EQ(val_b, val) << "with a bias, m " << m << " k " << k;
    }
  }
}

// BatchTopK keeps exactly k·B entries (ties at the threshold included) and they are the largest.
TEST(SaeKernels, BatchTopKKeepsExactlyKB) {
  sae::SparseAutoencoderParams p;
  p.architecture = sae::Architecture::BatchTopK;
  p.d_in = 4;
  p.d_sae = 10;
  p.batchtopk.k = 3;
  sae::SparseAutoencoder<double> m(p, 1);
  m.weights().encoder.setZero();
  // pre-activations = b_enc for every sample: heavy ties across the batch
  for (Index i = 0; i < 10; ++i) m.weights().encoder_bias(i) = static_cast<double>(i % 4);
  ergo::Rng rng(2);
  const Matrix<double> x = rng.normal_matrix<double>(4, 7);
  sae::Workspace<double> ws;
  auto g = m.make_gradients();
  const auto t = m.forward_backward(x, sae::LossWeights{}, ws, g);
  EXPECT_EQ(ws.codes.nnz(), 21);
  EXPECT_NEAR(t.l0, 3.0, 1e-12);
  for (Index e = 0; e < ws.codes.nnz(); ++e) EXPECT_GE(ws.codes.value[static_cast<size_t>(e)], 2.0);
  EXPECT_DOUBLE_EQ(ws.min_positive, 2.0);
}

// BatchTopK on a batch large enough for the sampled threshold (m·B = 65536 > 32768): the kept
// entries are exactly the k·B largest positive pre-activations (brute-force sort).
TEST(SaeKernels, BatchTopKMatchesBruteForce) {
  sae::SparseAutoencoderParams p;
  p.architecture = sae::Architecture::BatchTopK;
  p.d_in = 8;
  p.d_sae = 512;
  p.batchtopk.k = 5;
  ergo::Rng rng(4);
  sae::SparseAutoencoder<double> m(p, rng);
  m.weights().encoder_bias = rng.normal_matrix<double>(512, 1).col(0) * 0.5;
  const Index B = 128;
  const Matrix<double> x = rng.normal_matrix<double>(8, B);
  sae::Workspace<double> ws;
  auto g = m.make_gradients();
  m.forward_backward(x, sae::LossWeights{}, ws, g);
  Matrix<double> u = x;
  u.colwise() -= m.weights().decoder_bias;
  Matrix<double> h = m.weights().encoder * u;
  h.colwise() += m.weights().encoder_bias;
  std::vector<std::pair<double, Index>> all;
  for (Index b = 0; b < B; ++b)
    for (Index i = 0; i < 512; ++i)
      if (h(i, b) > 0) all.push_back({h(i, b), b * 512 + i});
  std::sort(all.begin(), all.end(), [](auto a, auto c) { return a.first > c.first; });
  std::vector<Index> want;
  for (Index j = 0; j < 5 * B; ++j) want.push_back(all[static_cast<size_t>(j)].second);
  std::sort(want.begin(), want.end());
  std::vector<Index> got;
  for (Index b = 0; b < B; ++b)
    for (Index e = ws.codes.start[static_cast<size_t>(b)];
         e < ws.codes.start[static_cast<size_t>(b + 1)]; ++e)
      got.push_back(b * 512 + ws.codes.index[static_cast<size_t>(e)]);
  EXPECT_EQ(got, want);
  EXPECT_DOUBLE_EQ(ws.min_positive, all[static_cast<size_t>(5 * B - 1)].first);
}

TEST(SaeKernels, GeometricMedian) {
  // Weiszfeld on points where the median is known: the vertices of a regular simplex (centre)
  // plus the centre itself (the median then sits exactly on a data point)
  Matrix<double> pts(3, 5);
  pts << 1, -1, 0, 0, 0,  //
      0, 0, 1, -1, 0,     //
      0, 0, 0, 0, 0;
  pts.row(2).setConstant(4.0);
  const Vector<double> med = sae::detail::geometric_median(pts, 200, 1e-12);
  EXPECT_NEAR(med(0), 0.0, 1e-8);  // Weiszfeld converges linearly; 1e-8 after 200 steps
  EXPECT_NEAR(med(1), 0.0, 1e-8);
  EXPECT_NEAR(med(2), 4.0, 1e-8);
}

TEST(SaeSynthetic, FiringRatesAndCorrelation) {
  ergo::Rng rng(9);
  sae::SyntheticParams sp;
  sp.d = 16;
  sp.n_features = 20;
  sp.samples = ergo::test::scaled(20000, 5000);
  sp.mean_active = 3;
  sp.correlation_rank = 2;
  sp.correlation_scale = 1.0;
  const auto data = sae::make_sparse_features<double>(sp, rng);
  EXPECT_NEAR(data.firing_probability.sum(), 3.0, 1e-9);
  const Vector<double> rate = (data.codes.array() > 0).cast<double>().rowwise().mean().matrix();
  for (Index i = 0; i < 20; ++i) {
    const double pi = data.firing_probability(i);
    // binomial standard error √(p(1−p)/N) ≤ 0.007 at N = 5000; 5 standard errors
    EXPECT_NEAR(rate(i), pi, 5 * std::sqrt(pi * (1 - pi) / static_cast<double>(sp.samples)));
  }
  EXPECT_GT(data.firing_probability(0), data.firing_probability(19));  // Zipf ordering
  // the copula makes firing events correlated: mean |corr| of firing indicators well above the
  // ~1/√N ≈ 0.01 of independent firing
  const Matrix<double> fire = (data.codes.array() > 0).cast<double>().matrix();
  const Matrix<double> c = ergo::identify::correlation_matrix(fire, fire);
  const double off = (c.cwiseAbs().sum() - c.diagonal().cwiseAbs().sum()) / (20.0 * 19.0);
  EXPECT_GT(off, 0.05);
  EXPECT_NEAR(data.dictionary.col(3).norm(), 1.0, 1e-12);
  EXPECT_EIGEN_NEAR(data.x, Matrix<double>((data.dictionary * data.codes).colwise() + data.bias),
                    1e-12);
}

}  // namespace

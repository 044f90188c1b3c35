// SPDX-License-Identifier: MIT
// The dense and sparse backward passes of the activation-sparse architectures with an
// elementwise activation (detail/elementwise_step.hpp; the Structured SAE's own step):
// the same batch gives the same loss and gradients on both paths, the density rule picks the
// path, and a whole training run is the same on either path. (Each path's gradients are also
// checked against finite differences in sae_gradient_test.cpp.)

#include <ergo/sae.hpp>

#include "common/test_utils.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace {

using ergo::Index;
using ergo::Matrix;
using ergo::Vector;
namespace sae = ergo::sae;

struct ElementwiseCase {
  std::string name;
  sae::SparseAutoencoderParams params;
  double p = 1.0;
  double nuclear = 0.0;
};

std::vector<ElementwiseCase> elementwise_cases(Index d, Index m) {
  auto base = [&](sae::Architecture a) {
    sae::SparseAutoencoderParams p;
    p.architecture = a;
    p.d_in = d;
    p.d_sae = m;
    return p;
  };
  std::vector<ElementwiseCase> out;
  out.push_back({"relu_l1", base(sae::Architecture::ReluL1)});
  auto dn = base(sae::Architecture::ReluL1);
  dn.relu_l1.decoder_norm_penalty = true;
  dn.unit_norm_decoder = false;
  out.push_back({"relu_l1_decoder_norm", dn});
  out.push_back({"jumprelu", base(sae::Architecture::JumpReLU)});
  out.push_back({"p_anneal_p1", base(sae::Architecture::PAnneal)});
  out.push_back({"p_anneal_p05", base(sae::Architecture::PAnneal), 0.5});
  // full width: R's part through the d × d products; width 4: through R itself
  out.push_back({"structured_full_width", base(sae::Architecture::Structured), 0.6, 0.3});
  auto narrow = base(sae::Architecture::Structured);
  narrow.structured.dense_width = 4;
  out.push_back({"structured_width_4", narrow, 1.0, 0.3});
  return out;
}

// Codes with a chosen density: the pre-activation of latent i is ≈ N(0, ‖w_i‖²) on x ~ N(0, I);
// b_enc = −2‖w_i‖ (or θ_i = 2‖w_i‖ for JumpReLU) leaves P(z_i > 0) ≈ 2.3 %. The Structured SAE's
// dense branch (zero at initialisation) gets random weights, so that R's terms are not 0.
template <class S>
void make_sparse(sae::SparseAutoencoder<S>& model, ergo::Rng& rng) {
  auto& w = model.weights();
  if (w.has_extra("W_dense")) {
    auto& wr = w.extra("W_dense");
    wr = S(0.2) * rng.normal_matrix<S>(wr.rows(), wr.cols());
    auto& br = w.extra("b_dense");
    br = S(0.2) * rng.normal_matrix<S>(br.rows(), br.cols());
  }
  const Vector<S> norms = w.encoder.rowwise().norm();
  if (w.has_extra("threshold")) {
    w.extra("threshold").col(0) = S(2) * norms;
  } else {
    w.encoder_bias = S(-2) * norms;
  }
}

template <class S>
double max_abs(const Matrix<S>& a) {
  return a.size() == 0 ? 0.0 : static_cast<double>(a.cwiseAbs().maxCoeff());
}

// Both paths on one batch in float: same loss terms, L0, firing flags and gradients, to float
// rounding relative to each gradient's largest entry (sums of at most B·m terms reordered:
// 1e-4 is ≈ 1000 float epsilons, far below any wrong term).
TEST(SaeElementwiseStep, SparseAndDensePathsAgree) {
  const Index d = 24, m = 192, B = 160;
  for (const ElementwiseCase& c : elementwise_cases(d, m)) {
    ergo::Rng rng(21);
    sae::SparseAutoencoder<float> model(c.params, rng);
    make_sparse(model, rng);
    model.weights().decoder_bias = rng.normal_matrix<float>(d, 1).col(0) * 0.1f;
    const Matrix<float> x = rng.normal_matrix<float>(d, B);
    sae::LossWeights lw;
    lw.sparsity = 0.4;
    lw.p = c.p;
    lw.nuclear = c.nuclear;
    sae::Workspace<float> dense_ws, sparse_ws;
    dense_ws.sparse_kernel_density = 0.0;
    sparse_ws.sparse_kernel_density = 2.0;
    sae::Weights<float> gd = model.make_gradients(), gs = model.make_gradients();
    const sae::LossTerms td = model.forward_backward(x, lw, dense_ws, gd);
    const sae::LossTerms ts = model.forward_backward(x, lw, sparse_ws, gs);
    ASSERT_FALSE(dense_ws.sparse_path) << c.name;
    ASSERT_TRUE(sparse_ws.sparse_path) << c.name;
    // the state is sparse but not empty: some latents fire, most do not
    ASSERT_GT(td.l0, 0.5) << c.name;
    ASSERT_LT(td.l0, 0.1 * static_cast<double>(m)) << c.name;
    EXPECT_EQ(td.l0, ts.l0) << c.name;
    EXPECT_NEAR(td.reconstruction, ts.reconstruction, 1e-5 * td.reconstruction) << c.name;
    EXPECT_NEAR(td.sparsity, ts.sparsity, 1e-6 * (1.0 + td.sparsity)) << c.name;
    EXPECT_EQ(dense_ws.fired, sparse_ws.fired) << c.name;
    if (model.traits().anneals_p) {  // the λ rescaling's L_p^p means (from the codes when sparse)
      const double ld = model.lp_penalty(dense_ws, 0.7), ls = model.lp_penalty(sparse_ws, 0.7);
      ASSERT_GT(ld, 0.0) << c.name;
      EXPECT_NEAR(ld, ls, 1e-6 * ld) << c.name;
    }
    auto agree = [&](const Matrix<float>& a, const Matrix<float>& b, const char* what) {
      const double scale = std::max(max_abs(a), 1e-30);
      ASSERT_GT(max_abs(a), 0.0) << c.name << " " << what;  // not a trivial 0 == 0
      EXPECT_LT(max_abs(Matrix<float>(a - b)) / scale, 1e-4) << c.name << " " << what;
    };
    agree(gd.encoder, gs.encoder, "W_enc");
    agree(gd.decoder, gs.decoder, "W_dec");
    agree(gd.encoder_bias, gs.encoder_bias, "b_enc");
    agree(gd.decoder_bias, gs.decoder_bias, "b_dec");
    for (size_t q = 0; q < gd.extras.size(); ++q)
      agree(gd.extras[q].value, gs.extras[q].value, gd.extras[q].name.c_str());
  }
}

// EntryLists: parts over contiguous sample ranges land at their offsets in the codes; a part that
// dropped an entry makes the lists incomplete.
TEST(SaeElementwiseStep, EntryListsCopyIntoTheCodesAtTheirOffsets) {
  sae::detail::EntryLists<float> lists;
  lists.reset(2);
  // samples 0..1 on part 0 (entries 3, 5 | 1), samples 2..3 on part 1 (none | 0, 7)
  lists.parts[0].start(0, 10);
  lists.parts[0].add(3, 0.5f);
  lists.parts[0].add(5, 1.5f);
  lists.parts[0].add(1, 2.5f);
  lists.parts[1].start(2, 10);
  lists.parts[1].add(0, 3.5f);
  lists.parts[1].add(7, 4.5f);
  ASSERT_TRUE(lists.complete());
  sae::detail::SparseCodes<float> codes;
  codes.start = {0, 2, 3, 3, 5};
  codes.reserve(4, 8, 5);
  lists.copy_to(codes);
  EXPECT_EQ(codes.index, (std::vector<std::int32_t>{3, 5, 1, 0, 7}));
  EXPECT_EQ(codes.value, (std::vector<float>{0.5f, 1.5f, 2.5f, 3.5f, 4.5f}));
  lists.parts[1].start(2, 1);
  lists.parts[1].add(0, 3.5f);
  EXPECT_TRUE(lists.complete());
  lists.parts[1].add(7, 4.5f);  // over the cap: dropped
  EXPECT_FALSE(lists.complete());
  EXPECT_EQ(lists.parts[1].index.size(), 1u);
  lists.reset(2);  // a new pass: parts not started do not count
  EXPECT_TRUE(lists.complete());
}

// The Structured step collects S's entries per thread, each thread keeping at most its share of
// a sparse batch's entries. A batch whose first half is dense and second half empty takes the
// sparse path overall while the first thread's list overflows: the codes then come from a scan
// of S, and the step still matches the dense path.
TEST(SaeElementwiseStep, StructuredOverflowingEntryListFallsBackToAScan) {
  const Index d = 24, m = 256, B = 400;
  auto p = elementwise_cases(d, m)[5].params;  // structured_full_width
  ASSERT_EQ(p.architecture, sae::Architecture::Structured);
  p.apply_b_dec_to_input = false;
  ergo::Rng rng(4);
  sae::SparseAutoencoder<float> model(p, rng);
  make_sparse(model, rng);
  Matrix<float> x = rng.normal_matrix<float>(d, B);
  x.leftCols(B / 2) *= 2.0f;     // more active codes
  x.rightCols(B / 2).setZero();  // none: b_enc < 0
  const auto& w = model.weights();
  const Matrix<float> s =
      ((w.encoder * x).colwise() + w.encoder_bias).cwiseMax(0.0f);  // S of the batch
  const double mb = static_cast<double>(m * B);
  const double rho = static_cast<double>((s.array() > 0.0f).count()) / mb;
  ASSERT_GT(rho, 0.005);
  ASSERT_EQ((s.rightCols(B / 2).array() > 0.0f).count(), 0);
  sae::LossWeights lw;
  lw.sparsity = 0.4;
  lw.p = 0.6;  // nuclear 0: the forward pass runs on all threads
  sae::Workspace<float> dense_ws, sparse_ws;
  dense_ws.sparse_kernel_density = 0.0;
  sparse_ws.sparse_kernel_density = 1.5 * rho;  // the batch: sparse; its dense half: over
  const ergo::ThreadLimit two(2);
  sae::Weights<float> gd = model.make_gradients(), gs = model.make_gradients();
  const sae::LossTerms td = model.forward_backward(x, lw, dense_ws, gd);
  const sae::LossTerms ts = model.forward_backward(x, lw, sparse_ws, gs);
  ASSERT_TRUE(sparse_ws.sparse_path);
  const auto& lists = sparse_ws.buffers<sae::arch::Structured::Buffers<float>>().entries;
  if (ergo::num_threads() >= 2) {
    EXPECT_FALSE(lists.complete()) << "the first thread's list should have overflowed";
  }
  EXPECT_EQ(td.l0, ts.l0);
  EXPECT_NEAR(td.reconstruction, ts.reconstruction, 1e-5 * td.reconstruction);
  EXPECT_NEAR(model.lp_penalty(dense_ws, 0.7), model.lp_penalty(sparse_ws, 0.7),
              1e-6 * model.lp_penalty(dense_ws, 0.7));
  const std::vector<std::pair<const Matrix<float>*, const Matrix<float>*>> grads = {
      {&gd.encoder, &gs.encoder},
      {&gd.decoder, &gs.decoder},
      {&gd.extras[0].value, &gs.extras[0].value}};
  for (const auto& [a, b] : grads) {
    ASSERT_GT(max_abs(*a), 0.0);
    EXPECT_LT(max_abs(Matrix<float>(*a - *b)) / max_abs(*a), 1e-4);
  }
}

// The default density rule: a sparse batch takes the sparse path and a dense one (a fresh SAE,
// about half of the codes positive) the dense path.
TEST(SaeElementwiseStep, DefaultRuleFollowsTheDensity) {
  const Index d = 16, m = 128, B = 64;
  ergo::Rng rng(3);
  for (const ElementwiseCase& c : elementwise_cases(d, m)) {
    sae::SparseAutoencoder<float> model(c.params, rng);
    const Matrix<float> x = rng.normal_matrix<float>(d, B);
    sae::LossWeights lw;
    lw.sparsity = 0.1;
    lw.p = c.p;
    sae::Workspace<float> ws;  // default sparse_kernel_density
    auto g = model.make_gradients();
    model.forward_backward(x, lw, ws, g);
    EXPECT_FALSE(ws.sparse_path) << c.name << " at initialisation";
    make_sparse(model, rng);
    model.forward_backward(x, lw, ws, g);
    EXPECT_TRUE(ws.sparse_path) << c.name << " with ≈ 2 % active codes";
  }
}

// A training run through the Trainer: the same seed and data give the same weights whether
// every step is dense (sparse_kernel_density 0) or sparse (2), in double to 1e-9 relative.
TEST(SaeElementwiseStep, TrainingIsTheSameOnBothPaths) {
  const Index d = 12, m = 64, N = 600;
  ergo::Rng data_rng(8);
  const Matrix<double> X = data_rng.normal_matrix<double>(d, N);
  for (const ElementwiseCase& c : elementwise_cases(d, m)) {
    std::vector<Matrix<double>> enc;
    for (double density : {0.0, 2.0}) {
      sae::SparseAutoencoder<double> model(c.params, 5);
      sae::TrainerParams tp;
      tp.steps = 15;
      tp.batch_size = 100;
      tp.log_every = 5;
      tp.sparse_kernel_density = density;
      tp.nuclear_coefficient = c.nuclear;
      if (c.p < 1.0) {
        tp.p_start = 1.0;
        tp.p_end = c.p;
        tp.anneal_start_fraction = 0.3;
        tp.p_updates = 2;
        tp.p_rescale_window = 2;
      }
      sae::Trainer<double> trainer(tp);
      trainer.fit(model, X);
      enc.push_back(model.weights().encoder);
      enc.push_back(model.weights().decoder);
    }
    EXPECT_LT(max_abs(Matrix<double>(enc[0] - enc[2])), 1e-9 * max_abs(enc[0])) << c.name;
    EXPECT_LT(max_abs(Matrix<double>(enc[1] - enc[3])), 1e-9 * max_abs(enc[1])) << c.name;
  }
}

}  // namespace

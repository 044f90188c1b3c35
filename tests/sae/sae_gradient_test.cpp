// SPDX-License-Identifier: MIT
// Finite-difference checks of every SAE architecture's hand-written backward pass.

#include <ergo/sae.hpp>

#include "common/test_utils.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace {

using ergo::Index;
using ergo::Matrix;
using ergo::Vector;
namespace sae = ergo::sae;

// Sizes: tiny, so that a full central-difference sweep over every parameter is instant.
constexpr Index kD = 6, kM = 9, kB = 12;

struct Case {
  std::string name;
  sae::SparseAutoencoderParams params;
  sae::LossWeights weights;
};

sae::SparseAutoencoderParams base(sae::Architecture a) {
  sae::SparseAutoencoderParams p;
  p.architecture = a;
  p.d_in = kD;
  p.d_sae = kM;
  p.topk.k = 3;
  p.batchtopk.k = 3;
  return p;
}

// Random weights everywhere (biases and thresholds too), so that no gradient is trivially 0.
template <class S>
void randomise(sae::SparseAutoencoder<S>& m, ergo::Rng& rng) {
  auto& w = m.weights();
  auto fill = [&](auto& t, double sd, double mean = 0.0) {
    for (Index i = 0; i < t.size(); ++i) t.data()[i] = static_cast<S>(rng.normal(mean, sd));
  };
  fill(w.encoder, 0.6);
  fill(w.encoder_bias, 0.3);
  fill(w.decoder, 0.6);
  fill(w.decoder_bias, 0.3);
  if (w.has_extra("threshold")) fill(w.extra("threshold"), 0.1, 0.4);
  if (w.has_extra("W_dense")) fill(w.extra("W_dense"), 0.5);
  if (w.has_extra("b_dense")) fill(w.extra("b_dense"), 0.3);
  if (w.has_extra("norm_weight")) fill(w.extra("norm_weight"), 0.3, 1.0);
  if (w.has_extra("norm_bias")) fill(w.extra("norm_bias"), 0.3);
}

// Distance of every pre-activation from the places where the loss is not differentiable
// (ReLU kink at 0, JumpReLU jump at θ, TopK / BatchTopK selection boundaries, the SELU |g| kink).
// Central differences with step 1e-6 are only valid if this margin is much larger than 1e-6.
double kink_margin(const sae::SparseAutoencoder<double>& m, const Matrix<double>& x) {
  const auto& w = m.weights();
  const auto& p = m.params();
  Matrix<double> u = x;
  if (p.apply_b_dec_to_input && p.architecture != sae::Architecture::Unmixer)
    u.colwise() -= w.decoder_bias;
  Matrix<double> h = w.encoder * u;
  h.colwise() += w.encoder_bias;
  double margin = 1e9;
  switch (p.architecture) {
    case sae::Architecture::JumpReLU:
      margin = (h.colwise() - w.extra("threshold").col(0)).cwiseAbs().minCoeff();
      break;
    case sae::Architecture::TopK:
      for (Index b = 0; b < h.cols(); ++b) {
        Vector<double> c = h.col(b);
        std::sort(c.data(), c.data() + c.size(), std::greater<double>());
        margin = std::min(margin, c(p.topk.k - 1) - c(p.topk.k));
        margin = std::min(margin, std::abs(c(p.topk.k - 1)));
      }
      break;
    case sae::Architecture::BatchTopK: {
      std::vector<double> all(h.data(), h.data() + h.size());
      std::sort(all.begin(), all.end(), std::greater<double>());
      const size_t kk = static_cast<size_t>(p.batchtopk.k * h.cols());
      margin = std::min(all[kk - 1] - all[kk], std::abs(all[kk - 1]));
      break;
    }
    case sae::Architecture::Unmixer:
      margin = 1e9;
      break;  // checked per case through |ẑ|
    default:
      margin = h.cwiseAbs().minCoeff();
  }
  return margin;
}

// The architectures whose step has a dense and a sparse backward pass (elementwise_step.hpp,
// arch/structured.hpp).
bool elementwise(const sae::SparseAutoencoderParams& p) {
  return p.architecture == sae::Architecture::ReluL1 ||
         p.architecture == sae::Architecture::JumpReLU ||
         p.architecture == sae::Architecture::PAnneal ||
         p.architecture == sae::Architecture::Structured;
}

// Central-difference gradient of loss(x, w).total with respect to every trainable tensor, with
// the elementwise step forced onto its dense (density 0) or sparse (density 2) path.
void check_gradients(sae::SparseAutoencoder<double>& m, const Matrix<double>& x,
                     const sae::LossWeights& lw, const std::string& name, double density) {
  sae::Workspace<double> ws;
  ws.sparse_kernel_density = density;
  sae::Weights<double> grad = m.make_gradients();
  m.forward_backward(x, lw, ws, grad);
  if (elementwise(m.params())) {
    EXPECT_EQ(ws.sparse_path, density > 1.0) << name;
  }
  sae::Weights<double> scratch = m.make_gradients();
  auto list = m.parameters(scratch);  // views of the weights (gradients unused here)
  sae::Weights<double> gref = grad;
  auto glist = m.parameters(gref);
  ASSERT_EQ(list.size(), glist.size());
  // step 1e-6: truncation error O(h²·L''') ≈ 1e-12 and rounding O(eps·|L|/h) ≈ 1e-9 for |L| ~ 10,
  // so analytic and numeric gradients agree to ~1e-8; 1e-6·(1 + |g|) leaves a wide margin while
  // any wrong term (typically O(1e-2) or larger) fails.
  const double h = 1e-6, tol = 1e-6;
  for (size_t q = 0; q < list.size(); ++q) {
    if (name.find("jumprelu") != std::string::npos && list[q].name == "threshold") continue;
    for (Index i = 0; i < list[q].value.size(); ++i) {
      double& v = list[q].value.data()[i];
      const double v0 = v;
      v = v0 + h;
      const double lp = m.loss(x, lw).total;
      v = v0 - h;
      const double lm = m.loss(x, lw).total;
      v = v0;
      const double fd = (lp - lm) / (2 * h);
      const double an = glist[q].grad.data()[i];
      EXPECT_NEAR(an, fd, tol * (1 + std::abs(fd)))
          << name << ": " << list[q].name << "[" << i << "]";
    }
  }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  sae::LossWeights lw;
  lw.sparsity = 0.7;
  out.push_back({"relu_l1", base(sae::Architecture::ReluL1), lw});
  {
    auto p = base(sae::Architecture::ReluL1);
    p.relu_l1.decoder_norm_penalty = true;
    p.unit_norm_decoder = false;
    out.push_back({"relu_l1_decoder_norm", p, lw});
  }
  {
    auto p = base(sae::Architecture::ReluL1);
    p.apply_b_dec_to_input = false;
    out.push_back({"relu_l1_no_pre_bias", p, lw});
  }
  out.push_back({"topk", base(sae::Architecture::TopK), sae::LossWeights{}});
  {
    auto p = base(sae::Architecture::BatchTopK);
    p.batchtopk.k = 2;
    out.push_back({"batchtopk", p, sae::LossWeights{}});
  }
  {
    auto p = base(sae::Architecture::JumpReLU);
    p.jumprelu.bandwidth = 0.4;
    out.push_back({"jumprelu", p, lw});
  }
  out.push_back({"p_anneal_p1", base(sae::Architecture::PAnneal), lw});
  {
    sae::LossWeights l2 = lw;
    l2.p = 0.5;
    out.push_back({"p_anneal_p05", base(sae::Architecture::PAnneal), l2});
  }
  {
    sae::LossWeights l3 = lw;
    l3.p = 0.6;
    l3.nuclear = 0.4;
    auto p = base(sae::Architecture::Structured);
    p.structured.dense_width =
        5;  // <= min(B, d + 1): R has full rank 5 and distinct singular values
    out.push_back({"structured_nuclear", p, l3});
    sae::LossWeights l4 = lw;
    l4.p = 0.6;
    out.push_back({"structured_full_width", base(sae::Architecture::Structured), l4});
  }
  for (auto g : {sae::UnmixerActivation::Softplus, sae::UnmixerActivation::EluPlusOne,
                 sae::UnmixerActivation::Selu, sae::UnmixerActivation::ClampedExp})
    for (auto n :
         {sae::UnmixerNorm::None, sae::UnmixerNorm::LayerNorm, sae::UnmixerNorm::GroupNorm}) {
      auto p = base(sae::Architecture::Unmixer);
      p.unmixer.activation = g;
      p.unmixer.norm = n;
      p.unmixer.groups = 3;
      out.push_back({std::string("unmixer_") + sae::to_string(g) + "_" + sae::to_string(n), p, lw});
    }
  return out;
}

TEST(SaeGradient, AllArchitecturesMatchFiniteDifferences) {
  for (const Case& c : cases()) {
    ergo::Rng rng(11);
    sae::SparseAutoencoder<double> m(c.params, rng);
    randomise(m, rng);
    const Matrix<double> x = rng.normal_matrix<double>(kD, kB);
    // seeds are fixed, so this is a deterministic precondition of the finite differences
    ASSERT_GT(kink_margin(m, x), 1e-4) << c.name;
    if (c.params.architecture == sae::Architecture::Unmixer &&
        c.params.unmixer.activation == sae::UnmixerActivation::Selu) {
      const Matrix<double> z = m.encode(x);
      ASSERT_GT(z.cwiseAbs().minCoeff(), 1e-4) << c.name;  // |SELU| kink at 0
    }
    for (double density : {0.0, 2.0}) {
      check_gradients(m, x, c.weights, c.name + (density > 1 ? " (sparse)" : " (dense)"), density);
      if (!elementwise(c.params)) break;  // one path only
    }
  }
}

// JumpReLU's θ gradient is the straight-through pseudo-gradient; compare with the published
// formula evaluated element by element (not through the library's fused loop):
// ∂L/∂θ_i = Σ_b K((h−θ)/ε) [ −(θ_i/ε) ∂L_rec/∂z_bi − λ/(B ε) ],  K(u) = 1[|u| < 1/2].
TEST(SaeGradient, JumpReluThresholdPseudoGradient) {
  auto p = base(sae::Architecture::JumpReLU);
  p.jumprelu.bandwidth = 0.5;
  ergo::Rng rng(5);
  sae::SparseAutoencoder<double> m(p, rng);
  randomise(m, rng);
  const Matrix<double> x = rng.normal_matrix<double>(kD, kB);
  sae::LossWeights lw;
  lw.sparsity = 0.3;
  sae::Workspace<double> ws, ws_sparse;
  ws_sparse.sparse_kernel_density = 2.0;  // forced sparse path, same gradient to rounding
  auto g = m.make_gradients(), g_sparse = m.make_gradients();
  m.forward_backward(x, lw, ws, g);
  m.forward_backward(x, lw, ws_sparse, g_sparse);
  ASSERT_TRUE(ws_sparse.sparse_path);
  const auto& w = m.weights();
  const Vector<double> theta = w.extra("threshold").col(0);
  Matrix<double> u = x;
  u.colwise() -= w.decoder_bias;
  Matrix<double> h = w.encoder * u;
  h.colwise() += w.encoder_bias;
  Matrix<double> z = h;
  for (Index b = 0; b < kB; ++b)
    for (Index i = 0; i < kM; ++i) z(i, b) = h(i, b) > theta(i) ? h(i, b) : 0.0;
  Matrix<double> xh = w.decoder * z;
  xh.colwise() += w.decoder_bias;
  const Matrix<double> dz = w.decoder.transpose() * (2.0 / kB * (xh - x));
  Vector<double> ref = Vector<double>::Zero(kM);
  Index in_window = 0;
  for (Index b = 0; b < kB; ++b)
    for (Index i = 0; i < kM; ++i) {
      const double uu = (h(i, b) - theta(i)) / p.jumprelu.bandwidth;
      if (std::abs(uu) < 0.5) {
        ++in_window;
        ref(i) += -(theta(i) / p.jumprelu.bandwidth) * dz(i, b) -
                  lw.sparsity / (kB * p.jumprelu.bandwidth);
      }
    }
  ASSERT_GT(in_window, 3);  // the kernel window is hit, so the comparison is not 0 == 0
  // same quantities summed in a different order: agreement to rounding (1e-12 ≫ 100·eps·|g|)
  EXPECT_EIGEN_NEAR(Vector<double>(g.extra("threshold").col(0)), ref, 1e-12);
  EXPECT_EIGEN_NEAR(Vector<double>(g_sparse.extra("threshold").col(0)), ref, 1e-12);
}

// AuxK: its gradient equals the finite-difference gradient of the auxiliary loss with the
// residual target e = x − x̂ and the normaliser held fixed (the residual is detached), computed
// here by a brute-force dense re-implementation.
// The TopK step at a shape the finite-difference sizes do not reach: d = 70 (two full 32-row
// chunks of the sparse backward and a ragged one), m = 150 (two full 64-latent tiles and a
// ragged one), two threads. Every gradient, the loss and the batch variance against the dense
// formulas written out from the model's own codes (mask: the selected entries that are > 0).
TEST(SaeGradient, TopKStepMatchesTheDenseFormulasAtChunkAndTileEdges) {
  ergo::ThreadLimit two(2);
  const Index d = 70, m = 150, B = 90;
  sae::SparseAutoencoderParams p;
  p.architecture = sae::Architecture::TopK;
  p.d_in = d;
  p.d_sae = m;
  p.topk.k = 7;
  ergo::Rng rng(19);
  sae::SparseAutoencoder<double> model(p, rng);
  randomise(model, rng);
  const auto& w = model.weights();
  // a large common offset: the batch variance must not suffer from it
  const Matrix<double> x = (rng.normal_matrix<double>(d, B).array() + 40.0).matrix();
  sae::Workspace<double> ws;
  auto g = model.make_gradients();
  const sae::LossTerms t = model.forward_backward(x, sae::LossWeights{}, ws, g);

  const Matrix<double> z = model.encode(x);
  ASSERT_GT((z.array() > 0).count(), B);  // codes fire, and not all of them
  const Matrix<double> u = x.colwise() - w.decoder_bias;
  const Matrix<double> xhat = (w.decoder * z).colwise() + w.decoder_bias;
  const Matrix<double> dxhat = (2.0 / B) * (xhat - x);
  const Matrix<double> dh =
      (w.decoder.transpose() * dxhat).cwiseProduct((z.array() > 0).cast<double>().matrix());
  const Vector<double> gb_enc = dh.rowwise().sum();
  const Vector<double> gb_dec = dxhat.rowwise().sum() - w.encoder.transpose() * gb_enc;
  const Vector<double> mean = x.rowwise().mean();
  EXPECT_NEAR(t.reconstruction, (xhat - x).squaredNorm() / B, 1e-12 * t.reconstruction);
  const double var = (x.colwise() - mean).squaredNorm() / B;
  EXPECT_NEAR(t.batch_variance, var, 1e-10 * var);
  auto close = [](const Matrix<double>& a, const Matrix<double>& b, const char* what) {
    ASSERT_GT(b.cwiseAbs().maxCoeff(), 0.0) << what;
    EXPECT_LT((a - b).cwiseAbs().maxCoeff(), 1e-12 * b.cwiseAbs().maxCoeff()) << what;
  };
  close(g.decoder, dxhat * z.transpose(), "W_dec");
  close(g.encoder, dh * u.transpose(), "W_enc");
  close(g.encoder_bias, gb_enc, "b_enc");
  close(g.decoder_bias, gb_dec, "b_dec");
}

TEST(SaeGradient, AuxKMatchesDetachedFiniteDifferences) {
  auto p = base(sae::Architecture::TopK);
  p.topk.k = 2;
  ergo::Rng rng(7);
  sae::SparseAutoencoder<double> m(p, rng);
  randomise(m, rng);
  const Matrix<double> x = rng.normal_matrix<double>(kD, kB);
  std::vector<char> dead(static_cast<size_t>(kM), 0);
  dead[1] = dead[4] = dead[5] = dead[8] = 1;
  sae::LossWeights on, off;
  on.aux = 0.25;
  on.aux_k = 2;
  on.dead = &dead;
  sae::Workspace<double> ws;
  auto g_on = m.make_gradients(), g_off = m.make_gradients();
  const double l_on = m.forward_backward(x, on, ws, g_on).aux;
  m.forward_backward(x, off, ws, g_off);
  // fixed target and normaliser at the base point
  const Matrix<double> e = x - m.reconstruct(x);  // TopK training and inference agree
  const Vector<double> emean = e.rowwise().mean();
  const double denom = (e.colwise() - emean).squaredNorm();
  auto aux_loss = [&](const sae::SparseAutoencoder<double>& mm) {
    const auto& w = mm.weights();
    Matrix<double> u = x;
    u.colwise() -= w.decoder_bias;
    Matrix<double> h = w.encoder * u;
    h.colwise() += w.encoder_bias;
    double s = 0;
    for (Index b = 0; b < kB; ++b) {
      std::vector<std::pair<double, Index>> cand;
      for (Index i = 0; i < kM; ++i)
        if (dead[static_cast<size_t>(i)]) cand.push_back({h(i, b), i});
      std::sort(cand.begin(), cand.end(), [](auto a, auto c) { return a.first > c.first; });
      Vector<double> eh = Vector<double>::Zero(kD);
      for (Index j = 0; j < on.aux_k; ++j)
        eh += std::max(cand[static_cast<size_t>(j)].first, 0.0) *
              w.decoder.col(cand[static_cast<size_t>(j)].second);
      s += (eh - e.col(b)).squaredNorm();
    }
    return on.aux * s / denom;
  };
  EXPECT_NEAR(l_on, aux_loss(m), 1e-12);  // same value, two implementations
  auto scratch = m.make_gradients();
  auto list = m.parameters(scratch);
  auto gl_on = m.parameters(g_on);
  auto gl_off = m.parameters(g_off);
  const double h = 1e-6;  // see check_gradients for the error budget
  Index nonzero = 0;
  for (size_t q = 0; q < list.size(); ++q)
    for (Index i = 0; i < list[q].value.size(); ++i) {
      double& v = list[q].value.data()[i];
      const double v0 = v;
      v = v0 + h;
      const double lp = aux_loss(m);
      v = v0 - h;
      const double lm = aux_loss(m);
      v = v0;
      const double fd = (lp - lm) / (2 * h);
      const double an = gl_on[q].grad.data()[i] - gl_off[q].grad.data()[i];
      nonzero += std::abs(an) > 1e-8 ? 1 : 0;
      EXPECT_NEAR(an, fd, 1e-6 * (1 + std::abs(fd))) << list[q].name << "[" << i << "]";
    }
  EXPECT_GT(nonzero, 10);
}

// The float path computes the same gradient as the double path (to float precision).
TEST(SaeGradient, FloatAgreesWithDouble) {
  for (const Case& c : cases()) {
    ergo::Rng rng(11);
    sae::SparseAutoencoder<double> md(c.params, rng);
    randomise(md, rng);
    const Matrix<double> x = rng.normal_matrix<double>(kD, kB);
    sae::SparseAutoencoder<float> mf(c.params, 0);
    for (const auto& kv : md.named_weights())
      mf.set_named_weight(kv.first, kv.second.cast<float>());
    sae::Workspace<double> wsd;
    sae::Workspace<float> wsf;
    auto gd = md.make_gradients();
    auto gf = mf.make_gradients();
    const double ld = md.forward_backward(x, c.weights, wsd, gd).total;
    const double lf = mf.forward_backward(x.cast<float>(), c.weights, wsf, gf).total;
    // float rounding over sums of ~100 terms of size ~1: relative error ~1e-5; 1e-3 is generous
    EXPECT_NEAR(lf, ld, 1e-3 * (1 + std::abs(ld))) << c.name;
    const auto dm = gd.to_map();
    for (const auto& kv : gf.to_map()) {
      const Matrix<double> a = kv.second.cast<double>();
      const Matrix<double>& b = dm.at(kv.first);
      EXPECT_LT((a - b).cwiseAbs().maxCoeff(), 1e-3 * (1 + b.cwiseAbs().maxCoeff()))
          << c.name << " " << kv.first;
    }
  }
}

}  // namespace

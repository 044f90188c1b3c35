// Tests for ergo/nn/{layers,embedding,loss,mlp,next_token_model,gradcheck}.hpp: forward values
// against closed forms, finite-difference gradient checks of every layer, the loss, a whole MLP
// and the whole next-token model, and the sparse (embedding-bag, deduplicated) paths against the
// dense ones.
#include "common/test_utils.hpp"

#include <ergo/nn.hpp>

#include <gmock/gmock.h>

#include <cmath>
#include <limits>

using namespace ergo;
using namespace ergo::nn;
using ::testing::HasSubstr;

namespace {

// Gradient-check tolerance on the relative error |a - n| / max(|a|, |n|, 1e-3) (the default floor
// of compare_gradients / check_gradients). Central differences in double with h = 1e-6 have
// truncation error ~h^2 * (third derivative) ~ 1e-12 and rounding error ~eps * |L| / h ~ 2e-10 *
// |L|; with |L| <~ 3 (cross-entropies over <= 10 classes, random weighted sums) the absolute error
// is
// <~ 1e-9, i.e. <~ 1e-6 relative after the 1e-3 floor (measured: <= 6e-10 absolute, 6e-7
// relative). 1e-5 leaves a 10x margin; a wrong gradient is off by O(1).
constexpr double kGradTol = 1e-5;
// Two double computations of the same quantity in a different order: a few hundred ulps.
constexpr double kSameD = 1e-12;
// The same in float (summations of up to ~1000 terms of O(1)): ~1e3 · 6e-8.
constexpr double kSameF = 1e-4;

// Random matrix whose entries stay at least 0.05 away from 0, so no ReLU kink is within the
// finite-difference step.
Matrix<double> away_from_zero(Rng& rng, Index r, Index c) {
  Matrix<double> m = rng.normal_matrix<double>(r, c);
  for (Index i = 0; i < m.size(); ++i)
    if (std::abs(m(i)) < 0.05) m(i) = m(i) < 0 ? -0.05 - m(i) : 0.05 + m(i);
  return m;
}

IntMatrix random_contexts(Rng& rng, const std::vector<Index>& card, Index n) {
  IntMatrix x(static_cast<Index>(card.size()), n);
  for (Index b = 0; b < n; ++b)
    for (Index j = 0; j < x.rows(); ++j)
      x(j, b) = static_cast<std::int32_t>(rng.uniform_int(static_cast<std::uint64_t>(card[j])));
  return x;
}

IntRowVector random_tokens(Rng& rng, Index vocab, Index n) {
  IntRowVector y(n);
  for (Index b = 0; b < n; ++b)
    y[b] = static_cast<std::int32_t>(rng.uniform_int(static_cast<std::uint64_t>(vocab)));
  return y;
}

}  // namespace

// ------------------------------------------------------------------ activations ---------------

TEST(NnActivation, ForwardClosedForms) {
  Matrix<double> z(1, 4), a(1, 4);
  z << -1.0, 0.0, 0.5, 2.0;
  ActivationFunction<double> f{Activation::Relu, 0.2};
  f.forward(z, a);
  EXPECT_EIGEN_NEAR(a, (Matrix<double>(1, 4) << 0, 0, 0.5, 2).finished(), 0.0);
  f.kind = Activation::LeakyRelu;
  f.forward(z, a);
  EXPECT_EIGEN_NEAR(a, (Matrix<double>(1, 4) << -0.2, 0, 0.5, 2).finished(), kSameD);
  f.kind = Activation::Gelu;
  f.forward(z, a);
  // GELU(z) = z Φ(z): Φ(−1) = 0.158655253931457, Φ(0.5) = 0.691462461274013,
  // Φ(2) = 0.977249868051821.
  EXPECT_EIGEN_NEAR(a,
                    (Matrix<double>(1, 4) << -0.158655253931457, 0, 0.5 * 0.691462461274013,
                     2 * 0.977249868051821)
                        .finished(),
                    kSameD);
  f.kind = Activation::Tanh;
  f.forward(z, a);
  EXPECT_NEAR(a(0), std::tanh(-1.0), kSameD);
  f.kind = Activation::Identity;
  f.forward(z, a);
  EXPECT_EIGEN_NEAR(a, z, 0.0);
  f.kind = Activation::LeakyRelu;
  f.forward(z, z);  // in place
  EXPECT_NEAR(z(0), -0.2, kSameD);
}

// For f(z) = Σ w ⊙ φ(z) the gradient is w ⊙ φ'(z), which backward() computes from da = w.
TEST(NnActivation, BackwardMatchesFiniteDifferences) {
  Rng rng(11);
  const Matrix<double> z0 = away_from_zero(rng, 4, 5);
  const Matrix<double> w = rng.normal_matrix<double>(4, 5);
  for (Activation kind : {Activation::Identity, Activation::Relu, Activation::LeakyRelu,
                          Activation::Gelu, Activation::Tanh}) {
    ActivationFunction<double> f{kind, 0.2};
    Matrix<double> a(4, 5), dz(4, 5);
    f.forward(z0, a);
    f.backward(z0, a, w, dz);
    const Matrix<double> num = numerical_gradient(
        [&](const Matrix<double>& z) {
          Matrix<double> out(4, 5);
          f.forward(z, out);
          return (w.array() * out.array()).sum();
        },
        z0);
    const auto r = compare_gradients(dz, num);
    EXPECT_LT(r.max_rel_error, kGradTol) << to_string(kind) << " worst " << r.worst;
  }
}

// ------------------------------------------------------------------ dense layer ---------------

TEST(NnDense, ForwardAndGradients) {
  Rng rng(5);
  Dense<double> layer(3, 4, rng, Init::TorchDefault);
  EXPECT_EQ(layer.weight().rows(), 4);
  EXPECT_EQ(layer.weight().cols(), 3);
  const Matrix<double> x = rng.normal_matrix<double>(3, 6);
  const Matrix<double> w = rng.normal_matrix<double>(4, 6);  // L = Σ w ⊙ y
  Matrix<double> y(4, 6);
  layer.forward(x, y);
  const Matrix<double> expect = (layer.weight() * x).colwise() + layer.bias();
  EXPECT_EIGEN_NEAR(y, expect, kSameD);

  layer.backward_params(x, w);
  Matrix<double> dx(3, 6);
  layer.backward_input(w, dx);
  auto loss = [&]() {
    Matrix<double> out(4, 6);
    layer.forward(x, out);
    return (w.array() * out.array()).sum();
  };
  ParameterList<double> params;
  layer.append_parameters(params, "lin");
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].name, "lin.weight");
  EXPECT_EQ(params[1].name, "lin.bias");
  const auto r = check_gradients(params, loss);
  EXPECT_LT(r.max_rel_error, kGradTol) << r.worst;
  EXPECT_EQ(r.checked, 16);
  const Matrix<double> num = numerical_gradient(
      [&](const Matrix<double>& xx) {
        Matrix<double> out(4, 6);
        layer.forward(xx, out);
        return (w.array() * out.array()).sum();
      },
      x);
  EXPECT_LT(compare_gradients(dx, num).max_rel_error, kGradTol);

  // Accumulation adds a second copy.
  const Matrix<double> gw = layer.weight_grad();
  layer.backward_params(x, w, true);
  EXPECT_EIGEN_NEAR(layer.weight_grad(), 2 * gw, kSameD);

  try {
    layer.forward(Matrix<double>(2, 6), y);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("Dense::forward(): x: expected shape 3 x any, got 2 x 6"));
  }
}

TEST(NnDense, InitialisationSchemes) {
  Rng rng(9);
  Dense<double> torch_default(400, 300, rng, Init::TorchDefault);
  const double r = 1.0 / std::sqrt(400.0);
  EXPECT_LE(torch_default.weight().cwiseAbs().maxCoeff(), r);
  // Uniform(−r, r) has variance r²/3; 120 000 draws estimate it within ~0.5%; 3% is generous.
  EXPECT_NEAR(torch_default.weight().squaredNorm() / 120000.0, r * r / 3.0, 0.03 * r * r / 3.0);
  Dense<double> he(400, 300, rng, Init::He);
  EXPECT_NEAR(he.weight().squaredNorm() / 120000.0, 2.0 / 400.0, 0.03 * 2.0 / 400.0);
  EXPECT_EQ(he.bias().squaredNorm(), 0.0);
  Dense<double> xavier(400, 300, rng, Init::Xavier);
  EXPECT_LE(xavier.weight().cwiseAbs().maxCoeff(), std::sqrt(6.0 / 700.0));
  Rng a(1), b(1);
  EXPECT_EIGEN_NEAR(Dense<double>(5, 4, a).weight(), Dense<double>(5, 4, b).weight(), 0.0);
}

// ------------------------------------------------------------------ embedding -----------------

TEST(NnEmbedding, GatherEqualsOneHotGemmAndScatterEqualsItsTranspose) {
  Rng rng(21);
  const std::vector<Index> card = {2, 3, 4};
  ContextEncoder enc(card);
  EXPECT_EQ(enc.input_dim(), 9);
  EXPECT_EQ(enc.offsets()[2], 5);
  const IntMatrix x = random_contexts(rng, card, 7);
  const IntMatrix active = enc.encode(x);
  EXPECT_EQ(active(2, 0), 5 + x(2, 0));
  const Matrix<double> onehot = enc.one_hot<double>(x);
  EXPECT_EIGEN_NEAR(onehot.colwise().sum(), RowVector<double>::Constant(7, 3.0), 0.0);

  const Matrix<double> w = rng.normal_matrix<double>(5, 9);
  const Vector<double> bias = rng.normal_matrix<double>(5, 1);
  Matrix<double> y(5, 7);
  embedding_bag_forward(w, bias, active, y);
  const Matrix<double> dense = (w * onehot).colwise() + bias;
  EXPECT_EIGEN_NEAR(y, dense, kSameD);
  embedding_bag_forward(w, Vector<double>(), active, y);
  EXPECT_EIGEN_NEAR(y, Matrix<double>(w * onehot), kSameD);

  const Matrix<double> dy = rng.normal_matrix<double>(5, 7);
  Matrix<double> dw(5, 9);
  embedding_bag_backward(dy, active, dw);
  const Matrix<double> dw_dense = dy * onehot.transpose();
  EXPECT_EIGEN_NEAR(dw, dw_dense, kSameD);
  embedding_bag_backward(dy, active, dw, true);
  EXPECT_EIGEN_NEAR(dw, 2 * dw_dense, kSameD);

  IntMatrix bad = x;
  bad(1, 3) = 3;
  try {
    enc.check(bad, "f", "x");
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("f(): x(1, 3): expected a value in [0, 3), got 3"));
  }
  EXPECT_THROW(ContextEncoder({2, 0}), InvalidArgument);
  EXPECT_THROW(ContextEncoder(std::vector<Index>{}), InvalidArgument);
}

TEST(NnEmbedding, UnembeddingGradients) {
  Rng rng(4);
  Unembedding<double> fy(3, 5, rng, Init::TorchDefault, true);
  EXPECT_EQ(fy.weight().rows(), 3);
  EXPECT_EQ(fy.weight().cols(), 5);
  const Matrix<double> f = rng.normal_matrix<double>(3, 4);
  const Matrix<double> w = rng.normal_matrix<double>(5, 4);
  Matrix<double> logits(5, 4);
  fy.forward(f, logits);
  const Matrix<double> expect = (fy.weight().transpose() * f).colwise() + fy.bias();
  EXPECT_EIGEN_NEAR(logits, expect, kSameD);
  fy.backward_params(f, w);
  Matrix<double> df(3, 4);
  fy.backward_input(w, df);
  ParameterList<double> params;
  fy.append_parameters(params, "fy");
  auto loss = [&]() {
    Matrix<double> out(5, 4);
    fy.forward(f, out);
    return (w.array() * out.array()).sum();
  };
  EXPECT_LT(check_gradients(params, loss).max_rel_error, kGradTol);
  const Matrix<double> num = numerical_gradient(
      [&](const Matrix<double>& ff) {
        Matrix<double> out(5, 4);
        fy.forward(ff, out);
        return (w.array() * out.array()).sum();
      },
      f);
  EXPECT_LT(compare_gradients(df, num).max_rel_error, kGradTol);
}

// ------------------------------------------------------------------ loss ----------------------

TEST(NnLoss, CrossEntropyMatchesBruteForceAndIsStable) {
  Rng rng(8);
  const Matrix<double> logits = rng.normal_matrix<double>(6, 5, 0.0, 2.0);
  const IntRowVector y = random_tokens(rng, 6, 5);
  double brute = 0.0;
  for (Index b = 0; b < 5; ++b) {
    double z = 0.0;
    for (Index v = 0; v < 6; ++v) z += std::exp(logits(v, b));
    brute -= std::log(std::exp(logits(y[b], b)) / z);
  }
  brute /= 5.0;
  EXPECT_NEAR(softmax_cross_entropy(logits, y), brute, kSameD);
  const RowVector<double> per = softmax_cross_entropy_per_sample(logits, y);
  EXPECT_NEAR(per.mean(), brute, kSameD);

  // Shifting a column by 1e4 changes nothing mathematically; naive exp would overflow.
  Matrix<double> shifted = logits;
  shifted.col(2).array() += 1e4;
  shifted.col(3).array() -= 1e4;
  EXPECT_NEAR(softmax_cross_entropy(shifted, y), brute, 1e-9);  // 1e4 · eps ≈ 2e-12 per entry
  Matrix<float> big = (logits.cast<float>().array() * 1e3f).matrix();  // exp(1e3) overflows float
  EXPECT_TRUE(std::isfinite(softmax_cross_entropy(big, y)));

  try {
    IntRowVector bad = y;
    bad[1] = 6;
    softmax_cross_entropy(logits, bad);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("softmax_cross_entropy(): y[1]: expected a token in [0, 6), got 6"));
  }
}

TEST(NnLoss, GradientMatchesFiniteDifferencesAndGroupsMatchExpansion) {
  Rng rng(12);
  const Matrix<double> logits = rng.normal_matrix<double>(7, 6);
  const IntRowVector y = random_tokens(rng, 7, 6);
  Matrix<double> g = logits;
  const double loss = softmax_cross_entropy_backward(g, y);
  EXPECT_NEAR(loss, softmax_cross_entropy(logits, y), kSameD);
  // Each gradient column is (softmax − onehot)/B: it sums to zero.
  EXPECT_NEAR(g.colwise().sum().cwiseAbs().maxCoeff(), 0.0, kSameD);
  const Matrix<double> num = numerical_gradient(
      [&](const Matrix<double>& l) { return softmax_cross_entropy(l, y); }, logits);
  EXPECT_LT(compare_gradients(g, num).max_rel_error, kGradTol);

  // Grouped: columns {0: targets 1, 4, 4}, {1: target 0}, {2: targets 6, 2}; the same as the
  // expanded batch of 6 columns (column u repeated once per target), with a bias vector.
  const Matrix<double> base = rng.normal_matrix<double>(7, 3);
  const Vector<double> bias = rng.normal_matrix<double>(7, 1);
  TargetGroups groups;
  groups.start = {0, 3, 4, 6};
  groups.target = {1, 4, 4, 0, 6, 2};
  Matrix<double> expanded(7, 6);
  IntRowVector ye(6);
  const Index owner[6] = {0, 0, 0, 1, 2, 2};
  for (Index b = 0; b < 6; ++b) {
    expanded.col(b) = base.col(owner[b]) + bias;
    ye[b] = groups.target[static_cast<size_t>(b)];
  }
  Matrix<double> ge = expanded;
  const double le = softmax_cross_entropy_backward(ge, ye);
  Matrix<double> gg = base;
  std::vector<double> scratch(16);
  const double lg = grouped_softmax_cross_entropy(gg, groups, 6, true, bias.data(), scratch.data());
  EXPECT_NEAR(lg, le, kSameD);
  Matrix<double> summed = Matrix<double>::Zero(7, 3);
  for (Index b = 0; b < 6; ++b) summed.col(owner[b]) += ge.col(b);
  EXPECT_EIGEN_NEAR(gg, summed, kSameD);
  Matrix<double> untouched = base;
  EXPECT_NEAR(grouped_softmax_cross_entropy(untouched, groups, 6, false, bias.data()), le, kSameD);
}

// ------------------------------------------------------------------ MLP -----------------------

class NnMlpGrad : public ::testing::TestWithParam<Activation> {};

TEST_P(NnMlpGrad, WholeNetworkMatchesFiniteDifferences) {
  Rng rng(31);
  MlpParams p;
  p.widths = {4, 6, 5, 3};
  p.activation = GetParam();
  p.negative_slope = 0.2;
  Mlp<double> mlp(p, rng);
  const Matrix<double> x = rng.normal_matrix<double>(4, 7);
  const Matrix<double> w = rng.normal_matrix<double>(3, 7);  // L = Σ w ⊙ out
  mlp.forward(x);
  mlp.backward(w, true);
  const Matrix<double> dx = mlp.input_grad();
  ParameterList<double> params;
  mlp.append_parameters(params, "fx");
  EXPECT_EQ(params[4].name, "fx.layers.2.weight");
  auto loss = [&]() { return (w.array() * mlp.predict(x).array()).sum(); };
  const auto r = check_gradients(params, loss);
  EXPECT_LT(r.max_rel_error, kGradTol) << to_string(GetParam()) << " worst " << r.worst << " "
                                       << r.worst_analytic << " vs " << r.worst_numeric;
  EXPECT_EQ(r.checked, 4 * 6 + 6 + 6 * 5 + 5 + 5 * 3 + 3);
  const Matrix<double> num = numerical_gradient(
      [&](const Matrix<double>& xx) { return (w.array() * mlp.predict(xx).array()).sum(); }, x);
  EXPECT_LT(compare_gradients(dx, num).max_rel_error, kGradTol);
  // Training-mode forward and const predict agree.
  EXPECT_EIGEN_NEAR(Matrix<double>(mlp.forward(x)), mlp.predict(x), kSameD);
}

INSTANTIATE_TEST_SUITE_P(AllActivations, NnMlpGrad,
                         ::testing::Values(Activation::Relu, Activation::LeakyRelu,
                                           Activation::Gelu, Activation::Tanh,
                                           Activation::Identity),
                         [](const auto& param_info) {
                           return std::string(to_string(param_info.param));
                         });

TEST(NnMlp, MultiHotPathEqualsDenseOneHotPath) {
  Rng rng(41);
  const std::vector<Index> card = {3, 2, 5};
  ContextEncoder enc(card);
  MlpParams p;
  p.widths = {enc.input_dim(), 8, 4};
  p.activate_output = true;
  Mlp<double> a(p, rng);
  Mlp<double> b = a;
  const IntMatrix x = random_contexts(rng, card, 9);
  const Matrix<double> onehot = enc.one_hot<double>(x);
  const Matrix<double> ya = a.forward_multi_hot(enc.encode(x));
  const Matrix<double> yb = b.forward(onehot);
  EXPECT_EIGEN_NEAR(ya, yb, kSameD);
  EXPECT_EIGEN_NEAR(a.predict_multi_hot(enc.encode(x)), yb, kSameD);
  const Matrix<double> w = rng.normal_matrix<double>(4, 9);
  a.backward(w);
  b.backward(w);
  for (Index l = 0; l < 2; ++l) {
    EXPECT_EIGEN_NEAR(a.layer(l).weight_grad(), b.layer(l).weight_grad(), kSameD);
    EXPECT_EIGEN_NEAR(a.layer(l).bias_grad(), b.layer(l).bias_grad(), kSameD);
  }
  IntMatrix bad = enc.encode(x);
  bad(0, 0) = 10;
  EXPECT_THROW(a.forward_multi_hot(bad), InvalidArgument);
  MlpParams q;
  q.widths = {3};
  EXPECT_THROW(q.check(), InvalidArgument);
}

// Workspaces: once reserved, batches of any size up to the capacity reuse the same storage.
TEST(NnMlp, WorkspacesAreReusedAcrossBatchSizes) {
  Rng rng(2);
  MlpParams p;
  p.widths = {5, 16, 3};
  Mlp<float> mlp(p, rng);
  mlp.reserve(64);
  const Matrix<float> x = rng.normal_matrix<float>(5, 64);
  const float* before = mlp.forward(x).data();
  const float* after = mlp.forward(x.leftCols(17)).data();
  EXPECT_EQ(before, after);
  EXPECT_EQ(mlp.capacity(), 64);
  EXPECT_EIGEN_NEAR(Matrix<float>(mlp.forward(x.leftCols(17))), mlp.predict(x.leftCols(17)),
                    kSameF);
}

// ------------------------------------------------------------------ next-token model ----------

TEST(NnNextTokenModel, WholeModelGradientsMatchFiniteDifferences) {
  Rng rng(51);
  const std::vector<Index> card = {2, 3, 2, 4};
  NextTokenParams p;
  p.hidden = {7, 6};
  p.rep_dim = 5;
  p.fy_bias = true;
  p.seed = 3;
  for (bool dedupe : {true, false}) {
    p.dedupe_contexts = dedupe;
    NextTokenModel<double> model(card, 6, p);
    // 40 samples from only 3·2 = 6 distinct first-two-variable patterns: many repeats.
    IntMatrix x = random_contexts(rng, card, 40);
    x.row(2).setZero();
    x.row(3).setConstant(1);
    const IntRowVector y = random_tokens(rng, 6, 40);
    auto params = model.parameters();
    const double loss = model.loss_and_grad(x, y);
    EXPECT_NEAR(loss, model.cross_entropy(x, y), kSameD);
    const auto r = check_gradients(params, [&] { return model.evaluate(x, y); });
    EXPECT_LT(r.max_rel_error, kGradTol)
        << "dedupe " << dedupe << " worst " << r.worst << " " << r.worst_analytic << " vs "
        << r.worst_numeric << " max abs " << r.max_abs_error;
    EXPECT_EQ(r.checked, parameter_count(params));
  }
  // Dense input.
  NextTokenModel<double> dense = NextTokenModel<double>::dense(3, 4, p);
  const Matrix<double> xd = rng.normal_matrix<double>(3, 10);
  const IntRowVector yd = random_tokens(rng, 4, 10);
  auto params = dense.parameters();
  dense.loss_and_grad(xd, yd);
  const auto r = check_gradients(params, [&] { return dense.evaluate(xd, yd); });
  EXPECT_LT(r.max_rel_error, kGradTol) << r.worst;
}

// Merging identical contexts is exact: the same loss and gradients as the plain batch.
TEST(NnNextTokenModel, DeduplicationIsExact) {
  Rng rng(61);
  const std::vector<Index> card = {50};
  NextTokenParams p;
  p.hidden = {32};
  p.rep_dim = 16;
  p.fy_bias = true;
  NextTokenModel<float> a(card, 40, p);
  p.dedupe_contexts = false;
  NextTokenModel<float> b(card, 40, p);
  const IntMatrix x = random_contexts(rng, card, 300);  // ≈ 50 distinct contexts
  const IntRowVector y = random_tokens(rng, 40, 300);
  EXPECT_NEAR(a.loss_and_grad(x, y), b.loss_and_grad(x, y), kSameF);
  const auto pa = a.parameters(), pb = b.parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_EIGEN_NEAR(pa[i].grad, pb[i].grad, kSameF) << pa[i].name;
}

TEST(NnNextTokenModel, TheoryAccessorsAreConsistent) {
  Rng rng(71);
  const std::vector<Index> card = {2, 2, 2};
  NextTokenParams p;
  p.hidden = {16, 16};
  p.rep_dim = 7;
  p.fy_bias = true;
  NextTokenModel<double> model(card, 9, p);
  const IntMatrix x = random_contexts(rng, card, 12);
  const Matrix<double> F = model.representations(x);
  ASSERT_EQ(F.rows(), 7);
  ASSERT_EQ(F.cols(), 12);
  EXPECT_EQ(model.unembedding().rows(), 7);
  EXPECT_EQ(model.unembedding().cols(), 9);
  const Matrix<double> logp = model.log_probs(x);
  // log p(y|x) = f_y(y)ᵀ f_x(x) + β_y − log Σ exp(·)
  Matrix<double> expect =
      (model.unembedding().transpose() * F).colwise() + model.unembedding_bias();
  log_softmax_cols_inplace(expect);
  EXPECT_EIGEN_NEAR(logp, expect, kSameD);
  EXPECT_EIGEN_NEAR(logp.array().exp().colwise().sum().matrix(), RowVector<double>::Ones(12),
                    kSameD);
  // The one-hot dense encoding through the same weights gives the same representations.
  const Matrix<double> onehot = model.encoder().one_hot<double>(x);
  EXPECT_EIGEN_NEAR(model.fx().predict(onehot), F, kSameD);

  // Export names are stable; import into a differently seeded model reproduces everything.
  const auto named = model.export_parameters();
  std::vector<std::string> names;
  for (const auto& kv : named) names.push_back(kv.first);
  EXPECT_THAT(names,
              ::testing::ElementsAre("fx.layers.0.bias", "fx.layers.0.weight", "fx.layers.1.bias",
                                     "fx.layers.1.weight", "fx.layers.2.bias", "fx.layers.2.weight",
                                     "fy.bias", "fy.weight"));
  EXPECT_EQ(named.at("fx.layers.0.weight").rows(), 16);
  EXPECT_EQ(named.at("fx.layers.0.weight").cols(), 6);
  EXPECT_EQ(named.at("fy.weight").rows(), 7);
  p.seed = 99;
  NextTokenModel<double> other(card, 9, p);
  EXPECT_GT((other.representations(x) - F).norm(), 1e-3);
  other.import_parameters(named);
  EXPECT_EIGEN_NEAR(other.representations(x), F, 0.0);
  auto wrong = named;
  wrong["fy.weight"] = Matrix<double>::Zero(9, 7);
  EXPECT_THROW(other.import_parameters(wrong), InvalidArgument);
}

TEST(NnNextTokenModel, RejectsBadInput) {
  NextTokenParams p;
  p.hidden = {4};
  p.rep_dim = 3;
  NextTokenModel<float> model({2, 3}, 5, p);
  IntMatrix x(2, 3);
  x << 0, 1, 1, 0, 2, 3;
  IntRowVector y(3);
  y << 0, 1, 4;
  try {
    model.loss_and_grad(x, y);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("NextTokenModel::loss_and_grad(): x(1, 2): expected a value in [0, 3), "
                          "got 3"));
  }
  x(1, 2) = 2;
  y[2] = 5;
  EXPECT_THROW(model.loss_and_grad(x, y), InvalidArgument);
  y[2] = 4;
  EXPECT_NO_THROW(model.loss_and_grad(x, y));
  EXPECT_THROW(model.loss_and_grad(Matrix<float>::Zero(5, 3), y), InvalidArgument);  // dense
  EXPECT_THROW(model.loss_and_grad(x, IntRowVector::Zero(2)), InvalidArgument);
  NextTokenParams bad = p;
  bad.rep_dim = 0;
  try {
    NextTokenModel<float> m({2}, 3, bad);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("NextTokenParams::check(): rep_dim: expected >= 1"));
  }
  auto dense = NextTokenModel<float>::dense(2, 3, p);
  Matrix<float> xd = Matrix<float>::Zero(2, 3);
  xd(1, 1) = std::numeric_limits<float>::quiet_NaN();
  try {
    dense.loss_and_grad(xd, IntRowVector::Zero(3));
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("x: expected all entries finite, got 1 non-finite of 6"));
  }
}

// Steps below min_parallel_work run on one thread and leave Eigen's thread setting as it was.
TEST(NnNextTokenModel, SmallStepsRestoreTheThreadSetting) {
#ifndef _OPENMP
  GTEST_SKIP() << "built without OpenMP: Eigen always uses one thread";
#else
  const int before = Eigen::nbThreads();
  Eigen::setNbThreads(2);
  NextTokenParams p;
  p.hidden = {8};
  p.rep_dim = 4;
  NextTokenModel<float> model({3, 3}, 5, p);
  Rng rng(1);
  const IntMatrix x = random_contexts(rng, {3, 3}, 20);
  const IntRowVector y = random_tokens(rng, 5, 20);
  EXPECT_TRUE(std::isfinite(model.loss_and_grad(x, y)));
  EXPECT_EQ(Eigen::nbThreads(), 2);
  Eigen::setNbThreads(before);
#endif
}

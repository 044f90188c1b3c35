// Tests for ergo/nn/{parameter,optimizer,schedule}.hpp: Adam/AdamW and SGD against hand-computed
// steps, learning-rate schedules at chosen steps, gradient clipping, state and export round trips.
#include "common/test_utils.hpp"

#include <ergo/nn.hpp>

#include <gmock/gmock.h>

#include <cmath>
#include <limits>

using namespace ergo;
using namespace ergo::nn;
using ::testing::HasSubstr;

namespace {

// A tiny "model": one 3 × 1 parameter with its gradient.
template <class S>
struct OneParam {
  Matrix<S> w, g;
  ParameterList<S> list;
  explicit OneParam(std::initializer_list<double> v) : w(static_cast<Index>(v.size()), 1) {
    Index i = 0;
    for (double x : v) w(i++) = static_cast<S>(x);
    g = Matrix<S>::Zero(w.rows(), 1);
    list.push_back(make_parameter<S>("w", w, g));
  }
  void set_grad(std::initializer_list<double> v) {
    Index i = 0;
    for (double x : v) g(i++) = static_cast<S>(x);
  }
};

// Double-precision Adam arithmetic is exact to a few ulps of the O(1) values below, so 1e-12
// allows rounding differences between the library's and the reference's operation order.
constexpr double kExact = 1e-12;

}  // namespace

// Reference values: θ0 = (1, −2, 0.5), g1 = (0.5, 0.1, −2), g2 = (−1, 0.3, −2), lr = 0.1,
// β = (0.9, 0.999), eps = 1e-8. Step 1: m̂ = g, v̂ = g², so θ1 = θ0 − lr·g/(|g| + eps)
// = (0.900000002, −2.09999999, 0.5999999995). Step 2, coordinate 0: m = 0.9·0.05 − 0.1 = −0.055,
// v = 0.999·0.00025 + 0.001 = 0.00124975, m̂ = m/0.19 = −0.289473684…, v̂ = v/0.001999 =
// 0.625187593…, θ2 = 0.900000002 − 0.1·m̂/(√v̂ + eps) = 0.93661035424….
TEST(NnAdam, MatchesHandComputedSteps) {
  OneParam<double> p({1.0, -2.0, 0.5});
  AdamParams ap;
  ap.lr = 0.1;
  Adam<double> opt(ap);
  p.set_grad({0.5, 0.1, -2.0});
  opt.step(p.list, 0.1);
  EXPECT_NEAR(p.w(0), 0.900000002, kExact);
  EXPECT_NEAR(p.w(1), -2.09999999000000, kExact);
  EXPECT_NEAR(p.w(2), 0.5999999995, kExact);
  p.set_grad({-1.0, 0.3, -2.0});
  opt.step(p.list, 0.1);
  EXPECT_NEAR(p.w(0), 0.9366103542405654, kExact);
  EXPECT_NEAR(p.w(1), -2.19177809779441, kExact);
  EXPECT_NEAR(p.w(2), 0.6999999989999993, kExact);
  EXPECT_EQ(opt.steps(), 2);
  // The optimizer leaves the gradient untouched.
  EXPECT_EQ(p.g(0), -1.0);
}

// AdamW: θ ← θ(1 − lr·wd) before the Adam step; wd = 0.1 gives step 1 θ = 1·0.99 − 0.1 + 2e-9.
TEST(NnAdam, DecoupledWeightDecay) {
  OneParam<double> p({1.0, -2.0, 0.5});
  AdamParams ap;
  ap.lr = 0.1;
  ap.weight_decay = 0.1;
  Adam<double> opt(ap);
  p.set_grad({0.5, 0.1, -2.0});
  opt.step(p.list, 0.1);
  EXPECT_NEAR(p.w(0), 0.890000002, kExact);
  EXPECT_NEAR(p.w(1), -2.07999999000000, kExact);
  EXPECT_NEAR(p.w(2), 0.5949999995, kExact);
  p.set_grad({-1.0, 0.3, -2.0});
  opt.step(p.list, 0.1);
  EXPECT_NEAR(p.w(0), 0.9177103542205653, kExact);
  EXPECT_NEAR(p.w(1), -2.15097809789441, kExact);
  EXPECT_NEAR(p.w(2), 0.6890499990049993, kExact);
}

// L2-in-gradient Adam: g' = g + wd·θ; for coordinate 1, g' = 0.1 − 0.2 = −0.1 flips the step.
TEST(NnAdam, CoupledL2WeightDecay) {
  OneParam<double> p({1.0, -2.0, 0.5});
  AdamParams ap;
  ap.lr = 0.1;
  ap.weight_decay = 0.1;
  ap.decoupled = false;
  Adam<double> opt(ap);
  p.set_grad({0.5, 0.1, -2.0});
  opt.step(p.list, 0.1);
  EXPECT_NEAR(p.w(0), 0.9000000016666666, kExact);
  EXPECT_NEAR(p.w(1), -1.900000009999999, kExact);
  EXPECT_NEAR(p.w(2), 0.5999999994871795, kExact);
  p.set_grad({-1.0, 0.3, -2.0});
  opt.step(p.list, 0.1);
  EXPECT_NEAR(p.w(0), 0.9252635194456061, kExact);
  EXPECT_NEAR(p.w(1), -1.9100134862701348, kExact);
  EXPECT_NEAR(p.w(2), 0.6999862672078199, kExact);
  EXPECT_EQ(p.g(1), 0.3);  // the L2 term is not written into the caller's gradient
}

// Large parameters are updated in parallel chunks; the result must equal an elementwise
// reference exactly in double (same formula per entry).
TEST(NnAdam, ChunkedUpdateMatchesReference) {
  Rng rng(3);
  const Index n = 100003;  // not a multiple of the chunk size
  Matrix<double> w = rng.normal_matrix<double>(n, 1), g = rng.normal_matrix<double>(n, 1);
  Matrix<double> ref = w;
  ParameterList<double> list;
  list.push_back(make_parameter<double>("w", w, g));
  Adam<double> opt;
  opt.step(list, 1e-3);
  for (Index i = 0; i < n; ++i) {
    const double m = 0.1 * g(i), v = 0.001 * g(i) * g(i);
    ref(i) -= 1e-3 / 0.1 * m / (std::sqrt(v) / std::sqrt(0.001) + 1e-8);
  }
  EXPECT_EIGEN_NEAR(w, ref, kExact);
}

TEST(NnAdam, StateRoundTripResumesExactly) {
  OneParam<double> a({1.0, -2.0, 0.5}), b({0, 0, 0});
  Adam<double> opt_a;
  a.set_grad({0.5, 0.1, -2.0});
  opt_a.step(a.list, 1e-2);
  a.set_grad({-1.0, 0.3, 0.7});
  opt_a.step(a.list, 1e-2);
  b.w = a.w;
  Adam<double> opt_b;
  opt_b.set_state(b.list, opt_a.state());
  EXPECT_EQ(opt_b.steps(), 2);
  a.set_grad({0.2, 0.2, 0.2});
  b.set_grad({0.2, 0.2, 0.2});
  opt_a.step(a.list, 1e-2);
  opt_b.step(b.list, 1e-2);
  EXPECT_EIGEN_NEAR(a.w, b.w, 0.0);
}

TEST(NnAdam, RejectsBadInput) {
  AdamParams ap;
  ap.lr = 0;
  try {
    Adam<float> opt(ap);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("AdamParams::check(): lr: expected a positive value, got 0"));
  }
  OneParam<float> p({1, 2, 3});
  Adam<float> opt;
  EXPECT_THROW(opt.step(p.list, std::numeric_limits<double>::quiet_NaN()), InvalidArgument);
  opt.step(p.list, 1e-3);
  OneParam<float> other({1, 2});
  try {
    opt.step(other.list, 1e-3);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("Adam::step(): params: expected the same names and sizes"));
  }
  EXPECT_THROW(opt.set_state(p.list, {}), InvalidArgument);
}

// SGD with momentum μ = 0.9, lr = 0.1, constant gradient 1 from θ0 = 1:
// b1 = 1, θ1 = 0.9; b2 = 1.9, θ2 = 0.71. Nesterov: θ1 = 1 − 0.1(1 + 0.9) = 0.81,
// θ2 = 0.81 − 0.1(1 + 0.9·1.9) = 0.539. Plain SGD with wd = 0.5: θ1 = 1 − 0.1(1 + 0.5) = 0.85.
TEST(NnSgd, MomentumNesterovAndWeightDecay) {
  SgdParams sp;
  sp.lr = 0.1;
  sp.momentum = 0.9;
  OneParam<double> p({1.0});
  Sgd<double> opt(sp);
  p.set_grad({1.0});
  opt.step(p.list, 0.1);
  EXPECT_NEAR(p.w(0), 0.9, kExact);
  opt.step(p.list, 0.1);
  EXPECT_NEAR(p.w(0), 0.71, kExact);

  sp.nesterov = true;
  OneParam<double> q({1.0});
  Sgd<double> nes(sp);
  q.set_grad({1.0});
  nes.step(q.list, 0.1);
  EXPECT_NEAR(q.w(0), 0.81, kExact);
  nes.step(q.list, 0.1);
  EXPECT_NEAR(q.w(0), 0.539, kExact);

  SgdParams plain;
  plain.weight_decay = 0.5;
  OneParam<double> r({1.0});
  Sgd<double> sgd(plain);
  r.set_grad({1.0});
  sgd.step(r.list, 0.1);
  EXPECT_NEAR(r.w(0), 0.85, kExact);
  EXPECT_EQ(r.g(0), 1.0);

  // State round trip: a copy resumed from state() continues identically.
  SgdParams mp;
  mp.lr = 0.1;
  mp.momentum = 0.9;
  OneParam<double> a({1.0}), s({0.0});
  Sgd<double> orig(mp), resumed(mp);
  a.set_grad({1.0});
  orig.step(a.list, 0.1);
  orig.step(a.list, 0.1);
  s.w = a.w;
  resumed.set_state(s.list, orig.state());
  s.set_grad({1.0});
  orig.step(a.list, 0.1);
  resumed.step(s.list, 0.1);
  EXPECT_NEAR(a.w(0), s.w(0), kExact);
  EXPECT_NEAR(a.w(0), 0.71 - 0.1 * (0.9 * 1.9 + 1), kExact);  // b3 = 2.71

  sp.momentum = 0.0;
  EXPECT_THROW(Sgd<double>{sp}, InvalidArgument);  // Nesterov needs momentum
}

// Schedules at chosen steps (base 1 so lr = factor). Warm-up 10: lr(s) = (s+1)/10.
// Cosine to min_ratio 0.1 over steps 10..110: p = (s − 10)/100, lr = 0.1 + 0.9(1 + cos πp)/2.
TEST(NnSchedule, ValuesAtChosenSteps) {
  LrSchedule s;
  s.base = 1.0;
  s.warmup_steps = 10;
  s.total_steps = 110;
  s.min_ratio = 0.1;
  s.decay = Decay::Cosine;
  s.check();
  EXPECT_NEAR(s.lr(0), 0.1, kExact);
  EXPECT_NEAR(s.lr(4), 0.5, kExact);
  EXPECT_NEAR(s.lr(9), 1.0, kExact);
  EXPECT_NEAR(s.lr(10), 1.0, kExact);
  EXPECT_NEAR(s.lr(35), 0.1 + 0.9 * (1 + std::cos(M_PI / 4)) / 2, kExact);  // 0.86819805…
  EXPECT_NEAR(s.lr(60), 0.55, kExact);
  EXPECT_NEAR(s.lr(110), 0.1, kExact);
  EXPECT_NEAR(s.lr(500), 0.1, kExact);

  s.decay = Decay::Linear;
  EXPECT_NEAR(s.lr(35), 0.775, kExact);  // 1 − 0.9·0.25
  EXPECT_NEAR(s.lr(60), 0.55, kExact);
  EXPECT_NEAR(s.lr(110), 0.1, kExact);

  s.decay = Decay::Constant;
  EXPECT_NEAR(s.lr(5), 0.6, kExact);
  EXPECT_NEAR(s.lr(1000), 1.0, kExact);

  // Decay starting later (as in SAELens): flat until step 60, then linear to 0 at 110.
  LrSchedule late;
  late.base = 2.0;
  late.total_steps = 110;
  late.decay = Decay::Linear;
  late.decay_start = 60;
  late.check();
  EXPECT_NEAR(late.lr(0), 2.0, kExact);
  EXPECT_NEAR(late.lr(59), 2.0, kExact);
  EXPECT_NEAR(late.lr(85), 1.0, kExact);
  EXPECT_NEAR(late.lr(110), 0.0, kExact);

  LrSchedule bad;
  bad.decay = Decay::Cosine;
  bad.total_steps = 0;
  EXPECT_THROW(bad.check(), InvalidArgument);
  bad.total_steps = 10;
  bad.min_ratio = 1.5;
  EXPECT_THROW(bad.check(), InvalidArgument);
}

// Large gradients (several threads, several blocks of 512 per thread, a ragged end) in float:
// the blocked norm against a plain double sum, and clipping scales every entry.
TEST(NnParameters, GradientNormOfLargeFloatGradientsSplitOverThreads) {
  ergo::ThreadLimit two(2);
  ergo::Rng rng(3);
  Matrix<float> a = rng.normal_matrix<float>(300, 401), ga = rng.normal_matrix<float>(300, 401);
  Matrix<float> b = rng.normal_matrix<float>(7, 1), gb = 50.0f * rng.normal_matrix<float>(7, 1);
  ParameterList<float> list;
  list.push_back(make_parameter<float>("a", a, ga));
  list.push_back(make_parameter<float>("b", b, gb));
  const double exact = std::sqrt(ga.cast<double>().squaredNorm() + gb.cast<double>().squaredNorm());
  EXPECT_NEAR(global_grad_norm(list), exact, 1e-6 * exact);
  const Matrix<float> ga0 = ga, gb0 = gb;
  EXPECT_NEAR(clip_grad_norm(list, 2.0), exact, 1e-6 * exact);
  const double s = 2.0 / exact;
  EXPECT_LT((ga.cast<double>() - s * ga0.cast<double>()).cwiseAbs().maxCoeff(), 1e-6);
  EXPECT_LT((gb.cast<double>() - s * gb0.cast<double>()).cwiseAbs().maxCoeff(), 1e-6);
  EXPECT_NEAR(global_grad_norm(list), 2.0, 1e-5);
}

TEST(NnParameters, ClippingNormsAndExport) {
  Matrix<double> a(1, 2), ga(1, 2), b(1, 1), gb(1, 1);
  a << 1, 2;
  b << 3;
  ga << 3, 0;
  gb << 4;
  ParameterList<double> list;
  list.push_back(make_parameter<double>("a", a, ga));
  list.push_back(make_parameter<double>("b", b, gb));
  EXPECT_EQ(parameter_count(list), 3);
  EXPECT_NEAR(global_grad_norm(list), 5.0, kExact);
  EXPECT_NEAR(clip_grad_norm(list, 10.0), 5.0, kExact);  // below the threshold: unchanged
  EXPECT_EQ(ga(0), 3.0);
  EXPECT_NEAR(clip_grad_norm(list, 1.0), 5.0, kExact);  // returns the pre-clip norm
  EXPECT_NEAR(ga(0), 0.6, kExact);
  EXPECT_NEAR(gb(0), 0.8, kExact);
  EXPECT_NEAR(global_grad_norm(list), 1.0, kExact);
  gb(0) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_FALSE(grads_finite(list));
  EXPECT_TRUE(std::isnan(clip_grad_norm(list, 1.0)));
  EXPECT_NEAR(ga(0), 0.6, kExact);  // nothing scaled by a NaN
  zero_grad(list);
  EXPECT_TRUE(grads_finite(list));
  EXPECT_EQ(global_grad_norm(list), 0.0);

  auto named = export_parameters(list);
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named["b"](0), 3.0);
  named["a"] << 7, 8;
  import_parameters(list, named);
  EXPECT_EQ(a(1), 8.0);
  named["c"] = Matrix<double>::Zero(1, 1);
  EXPECT_THROW(import_parameters(list, named), InvalidArgument);  // unknown name (strict)
  named.erase("c");
  named["a"] = Matrix<double>::Zero(2, 1);
  try {
    import_parameters(list, named);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("import_parameters(): a: expected shape 1 x 2, got 2 x 1"));
  }
  EXPECT_EQ(a(1), 8.0);  // unchanged after a failed import

  Matrix<double> wrong(2, 2);
  EXPECT_THROW(make_parameter<double>("x", a, wrong), InvalidArgument);
}

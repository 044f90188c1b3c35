// Benchmarks for ergo::nn. The reference step (issue 3): batch 1024, one discrete context variable
// with 1000 classes (one-hot) -> 256 -> 256 (ReLU), vocabulary 1000, softmax cross-entropy, Adam.
// The PyTorch peer is /work/shared/research/perf/mlp_torch.py (same model: embedding + bias + ReLU,
// Linear(256,256) + ReLU, Linear(256,1000), F.cross_entropy, Adam 1e-3; the same synthetic corpus
// of next-token pairs). Every benchmark takes the thread count as its first argument and reports
// ms_per_step, steps_per_s and tokens_per_s counters, so the output lines up with the TSV of
// mlp_torch.py (median ms/step, steps/s, tokens/s). Run e.g.
//   OMP_WAIT_POLICY=PASSIVE build/release/benchmarks/nn_bench --benchmark_filter=Step
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true   (one line)
//
// Beside the library step stand raw-Eigen baselines: the same step hand-written with a dense
// one-hot GEMM (what a straightforward Eigen port does), and the six GEMMs alone (the floor that
// no implementation without merging repeated contexts can beat).
#include <ergo/nn.hpp>

#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <vector>

namespace {

using ergo::Index;
using ergo::IntMatrix;
using ergo::IntRowVector;
using ergo::Matrix;
using ergo::Vector;

constexpr Index kBatch = 1024, kVocab = 1000, kHidden = 256, kCorpusBatches = 64;

// The peer's corpus: B·64 + 1 uniform tokens; step i uses the pairs (t, t+1) of window i mod 64.
struct Corpus {
  IntMatrix x;     // 1 × (B·64)
  IntRowVector y;  // 1 × (B·64)
  Corpus() : x(1, kBatch * kCorpusBatches), y(kBatch * kCorpusBatches) {
    ergo::Rng rng(0);
    std::vector<std::int32_t> t(static_cast<size_t>(kBatch * kCorpusBatches + 1));
    for (auto& v : t) v = static_cast<std::int32_t>(rng.uniform_int(kVocab));
    for (Index i = 0; i < x.cols(); ++i) {
      x(0, i) = t[static_cast<size_t>(i)];
      y[i] = t[static_cast<size_t>(i) + 1];
    }
  }
};

const Corpus& corpus() {
  static const Corpus c;
  return c;
}

void set_counters(benchmark::State& state) {
  const double steps = static_cast<double>(state.iterations());
  state.counters["steps_per_s"] = benchmark::Counter(steps, benchmark::Counter::kIsRate);
  state.counters["tokens_per_s"] =
      benchmark::Counter(steps * static_cast<double>(kBatch), benchmark::Counter::kIsRate);
  state.counters["ms_per_step"] =
      benchmark::Counter(steps * 1e-3, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetLabel(std::to_string(state.range(0)) + " thread(s)");
}

// The library step: NextTokenModel::loss_and_grad + Adam. Arg 1 = merge repeated contexts.
void BM_Step_Library(benchmark::State& state) {
  Eigen::setNbThreads(static_cast<int>(state.range(0)));
  ergo::nn::NextTokenParams p;
  p.hidden = {kHidden};
  p.rep_dim = kHidden;
  p.activation = ergo::nn::Activation::Relu;
  p.activate_output = true;  // h1 = ReLU(Linear(h0)) is f_x(x)
  p.fy_bias = true;          // Linear(256, 1000) has a bias
  p.dedupe_contexts = state.range(1) != 0;
  ergo::nn::NextTokenModel<float> model({kVocab}, kVocab, p);
  ergo::nn::AdamParams ap;
  ap.lr = 1e-3;
  ergo::nn::Adam<float> opt(ap);
  auto params = model.parameters();
  model.reserve(kBatch);
  const Corpus& c = corpus();
  Index i = 0;
  double loss = 0.0;
  for (auto _ : state) {
    const Index off = (i++ % kCorpusBatches) * kBatch;
    loss = model.loss_and_grad_unchecked(c.x.middleCols(off, kBatch), c.y.segment(off, kBatch));
    opt.step(params, 1e-3);
  }
  benchmark::DoNotOptimize(loss);
  set_counters(state);
  state.counters["loss"] = loss;
}
BENCHMARK(BM_Step_Library)
    ->ArgNames({"threads", "dedupe"})
    ->Args({1, 1})
    ->Args({1, 0})
    ->Args({2, 1})
    ->Args({2, 0})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0)
    ->UseRealTime();

// Raw Eigen, written the straightforward way: one-hot input matrix times W0, preallocated buffers,
// columnwise softmax, the same Adam update.
void BM_Step_RawEigenOneHot(benchmark::State& state) {
  Eigen::setNbThreads(static_cast<int>(state.range(0)));
  ergo::Rng rng(1);
  const Index B = kBatch, V = kVocab, H = kHidden;
  std::vector<Matrix<float>> w = {rng.normal_matrix<float>(H, V, 0, 0.02),
                                  rng.normal_matrix<float>(H, H, 0, 0.06),
                                  rng.normal_matrix<float>(V, H, 0, 0.06)};
  std::vector<Vector<float>> b = {Vector<float>::Zero(H), Vector<float>::Zero(H),
                                  Vector<float>::Zero(V)};
  std::vector<Matrix<float>> gw, mw, vw;
  std::vector<Vector<float>> gb, mb, vb;
  for (auto& m : w) {
    gw.push_back(Matrix<float>::Zero(m.rows(), m.cols()));
    mw.push_back(gw.back());
    vw.push_back(gw.back());
  }
  for (auto& v : b) {
    gb.push_back(Vector<float>::Zero(v.size()));
    mb.push_back(gb.back());
    vb.push_back(gb.back());
  }
  Matrix<float> onehot = Matrix<float>::Zero(V, B), h0(H, B), h1(H, B), logits(V, B), d1(H, B),
                d0(H, B);
  const Corpus& c = corpus();
  Index i = 0, t = 0;
  auto adam = [&](auto& p, auto& g, auto& m, auto& v, float c1, float c2) {
    m = 0.9f * m + 0.1f * g;
    v = 0.999f * v + 0.001f * g.cwiseAbs2();
    p.array() -= 1e-3f / c1 * m.array() / ((v.array() / c2).sqrt() + 1e-8f);
  };
  for (auto _ : state) {
    const Index off = (i++ % kCorpusBatches) * B;
    onehot.setZero();
    for (Index j = 0; j < B; ++j) onehot(c.x(0, off + j), j) = 1.0f;
    h0.noalias() = w[0] * onehot;
    h0 = (h0.colwise() + b[0]).cwiseMax(0.0f);
    h1.noalias() = w[1] * h0;
    h1 = (h1.colwise() + b[1]).cwiseMax(0.0f);
    logits.noalias() = w[2] * h1;
    logits.colwise() += b[2];
    for (Index j = 0; j < B; ++j) {
      auto col = logits.col(j);
      col = (col.array() - col.maxCoeff()).exp().matrix();
      col /= col.sum() * static_cast<float>(B);
      col(c.y[off + j]) -= 1.0f / static_cast<float>(B);
    }
    gw[2].noalias() = logits * h1.transpose();
    gb[2] = logits.rowwise().sum();
    d1.noalias() = w[2].transpose() * logits;
    d1 = (h1.array() > 0).select(d1, 0.0f);
    gw[1].noalias() = d1 * h0.transpose();
    gb[1] = d1.rowwise().sum();
    d0.noalias() = w[1].transpose() * d1;
    d0 = (h0.array() > 0).select(d0, 0.0f);
    gw[0].noalias() = d0 * onehot.transpose();
    gb[0] = d0.rowwise().sum();
    ++t;
    const float c1 = 1.0f - std::pow(0.9f, static_cast<float>(t));
    const float c2 = 1.0f - std::pow(0.999f, static_cast<float>(t));
    for (size_t k = 0; k < 3; ++k) {
      adam(w[k], gw[k], mw[k], vw[k], c1, c2);
      adam(b[k], gb[k], mb[k], vb[k], c1, c2);
    }
  }
  benchmark::DoNotOptimize(w[0].data());
  set_counters(state);
}
BENCHMARK(BM_Step_RawEigenOneHot)
    ->ArgNames({"threads"})
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0)
    ->UseRealTime();

// The six GEMMs of the step alone (logits, two logit backward, hidden forward and its two
// backward), at U columns: U = 1024 is the floor without merging contexts; U = 641 is the
// expected number of distinct tokens in 1024 uniform draws from 1000 (1000·(1 − e^{−1.024})).
void BM_Step_GemmFloor(benchmark::State& state) {
  Eigen::setNbThreads(static_cast<int>(state.range(0)));
  const Index U = state.range(1), V = kVocab, H = kHidden;
  ergo::Rng rng(2);
  const Matrix<float> wy = rng.normal_matrix<float>(H, V), w1 = rng.normal_matrix<float>(H, H);
  Matrix<float> a0 = rng.normal_matrix<float>(H, U), a1(H, U), logits(V, U), g1(H, U), g0(H, U),
                gwy(H, V), gw1(H, H);
  for (auto _ : state) {
    a1.noalias() = w1 * a0;
    logits.noalias() = wy.transpose() * a1;
    gwy.noalias() = a1 * logits.transpose();
    g1.noalias() = wy * logits;
    gw1.noalias() = g1 * a0.transpose();
    g0.noalias() = w1.transpose() * g1;
    benchmark::DoNotOptimize(g0.data());
  }
  set_counters(state);
}
BENCHMARK(BM_Step_GemmFloor)
    ->ArgNames({"threads", "cols"})
    ->Args({1, 1024})
    ->Args({1, 641})
    ->Args({2, 1024})
    ->Args({2, 641})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// ---- component kernels -------------------------------------------------------------------------

// Fused softmax cross-entropy + gradient over 1000 × 1024 logits, vs a plain Eigen version.
void BM_SoftmaxCrossEntropy(benchmark::State& state) {
  Eigen::setNbThreads(static_cast<int>(state.range(0)));
  ergo::Rng rng(3);
  const Matrix<float> base = rng.normal_matrix<float>(kVocab, kBatch);
  Matrix<float> logits = base;
  ergo::nn::TargetGroups groups;
  groups.assign_one_per_column(corpus().y.data(), kBatch);
  std::vector<double> scratch(8);
  for (auto _ : state) {
    state.PauseTiming();
    logits = base;
    state.ResumeTiming();
    benchmark::DoNotOptimize(ergo::nn::grouped_softmax_cross_entropy(
        logits, groups, kBatch, true, static_cast<const float*>(nullptr), scratch.data()));
  }
  state.SetLabel(std::to_string(state.range(0)) + " thread(s)");
}
BENCHMARK(BM_SoftmaxCrossEntropy)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_SoftmaxCrossEntropy_RawEigen(benchmark::State& state) {
  ergo::Rng rng(3);
  const Matrix<float> base = rng.normal_matrix<float>(kVocab, kBatch);
  Matrix<float> logits = base;
  const IntRowVector& y = corpus().y;
  for (auto _ : state) {
    state.PauseTiming();
    logits = base;
    state.ResumeTiming();
    const ergo::RowVector<float> mx = logits.colwise().maxCoeff();
    logits = (logits.rowwise() - mx).array().exp().matrix();
    const ergo::RowVector<float> s = logits.colwise().sum();
    double loss = 0;
    for (Index j = 0; j < kBatch; ++j) {
      loss += std::log(static_cast<double>(s[j])) - std::log(static_cast<double>(logits(y[j], j)));
      logits.col(j) /= s[j] * static_cast<float>(kBatch);
      logits(y[j], j) -= 1.0f / static_cast<float>(kBatch);
    }
    benchmark::DoNotOptimize(loss);
  }
}
BENCHMARK(BM_SoftmaxCrossEntropy_RawEigen)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Adam over the reference model's 583 400 parameters, vs three plain Eigen array statements.
void BM_AdamStep(benchmark::State& state) {
  Eigen::setNbThreads(static_cast<int>(state.range(0)));
  ergo::Rng rng(4);
  std::vector<Matrix<float>> w = {rng.normal_matrix<float>(kHidden, kVocab),
                                  rng.normal_matrix<float>(kHidden, kHidden),
                                  rng.normal_matrix<float>(kHidden, kVocab)};
  std::vector<Matrix<float>> g = w;
  ergo::nn::ParameterList<float> list;
  for (size_t k = 0; k < w.size(); ++k)
    list.push_back(ergo::nn::make_parameter<float>("p" + std::to_string(k), w[k], g[k]));
  ergo::nn::Adam<float> opt;
  for (auto _ : state) opt.step(list, 1e-6);
  state.SetLabel(std::to_string(state.range(0)) + " thread(s)");
}
BENCHMARK(BM_AdamStep)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_AdamStep_RawEigen(benchmark::State& state) {
  ergo::Rng rng(4);
  Matrix<float> w = rng.normal_matrix<float>(kHidden, 2 * kVocab + kHidden), g = w,
                m = Matrix<float>::Zero(w.rows(), w.cols()), v = m;
  for (auto _ : state) {
    m = 0.9f * m + 0.1f * g;
    v = 0.999f * v + 0.001f * g.cwiseAbs2();
    w.array() -= 1e-6f * m.array() / (v.array().sqrt() + 1e-8f);
    benchmark::DoNotOptimize(w.data());
  }
}
BENCHMARK(BM_AdamStep_RawEigen)->Unit(benchmark::kMicrosecond)->UseRealTime();

// The sparse first layer: embedding-bag forward + backward vs the dense one-hot GEMMs.
void BM_EmbeddingBag(benchmark::State& state) {
  Eigen::setNbThreads(static_cast<int>(state.range(0)));
  ergo::Rng rng(5);
  const Matrix<float> w = rng.normal_matrix<float>(kHidden, kVocab);
  const Vector<float> b = Vector<float>::Zero(kHidden);
  const Matrix<float> dy = rng.normal_matrix<float>(kHidden, kBatch);
  Matrix<float> y(kHidden, kBatch), dw(kHidden, kVocab);
  const IntMatrix active = corpus().x.leftCols(kBatch);
  for (auto _ : state) {
    ergo::nn::embedding_bag_forward(w, b, active, y);
    ergo::nn::embedding_bag_backward(dy, active, dw);
    benchmark::DoNotOptimize(dw.data());
  }
  state.SetLabel(std::to_string(state.range(0)) + " thread(s)");
}
BENCHMARK(BM_EmbeddingBag)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_EmbeddingBag_RawEigenOneHotGemm(benchmark::State& state) {
  Eigen::setNbThreads(static_cast<int>(state.range(0)));
  ergo::Rng rng(5);
  const Matrix<float> w = rng.normal_matrix<float>(kHidden, kVocab);
  const Matrix<float> dy = rng.normal_matrix<float>(kHidden, kBatch);
  Matrix<float> onehot = Matrix<float>::Zero(kVocab, kBatch), y(kHidden, kBatch),
                dw(kHidden, kVocab);
  for (Index j = 0; j < kBatch; ++j) onehot(corpus().x(0, j), j) = 1.0f;
  for (auto _ : state) {
    y.noalias() = w * onehot;
    dw.noalias() = dy * onehot.transpose();
    benchmark::DoNotOptimize(dw.data());
  }
  state.SetLabel(std::to_string(state.range(0)) + " thread(s)");
}
BENCHMARK(BM_EmbeddingBag_RawEigenOneHotGemm)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace

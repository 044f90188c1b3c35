// Benchmarks for ergo/identify, each library call beside a raw-Eigen baseline where one exists.
//
// The headline: ridge F → T at N = 100 000, d = 256, k = 64 (double) with the penalty chosen by
// cross-validation over a 21-point grid, against (a) raw Eigen normal equations at one fixed λ
// (SYRK + LLT) and (b) scikit-learn's Ridge(alpha=1) (one penalty, no CV), which is timed by
// /work/shared/research/perf/lstsq_py.py and reported in docs/identify.md.
//
//   build/<dir>/benchmarks/identify_bench --benchmark_filter=Ridge
#include <ergo/identify.hpp>

#include <benchmark/benchmark.h>

#include <Eigen/Cholesky>

namespace {

using ergo::Index;
using ergo::Matrix;

struct RidgeData {
  Matrix<double> f, t;
};

// Same generator shape as lstsq_py.py: Y = X W + 0.1 noise (samples are columns here).
const RidgeData& ridge_data() {
  static const RidgeData data = [] {
    ergo::Rng rng(0);
    const Index n = 100000, d = 256, k = 64;
    RidgeData r;
    r.f = rng.normal_matrix<double>(d, n);
    const Matrix<double> w = rng.normal_matrix<double>(k, d);
    r.t.resize(k, n);
    r.t.noalias() = w * r.f;
    r.t += 0.1 * rng.normal_matrix<double>(k, n);
    return r;
  }();
  return data;
}

void BM_RidgeCv(benchmark::State& state) {
  const RidgeData& data = ridge_data();
  ergo::identify::RidgeParams p;
  p.cv = static_cast<ergo::identify::RidgeCv>(state.range(0));
  if (p.cv == ergo::identify::RidgeCv::Fixed) p.lambdas = {1.0};
  double lambda = 0.0;
  for (auto _ : state) {
    ergo::identify::RidgeRegression fit(p);
    fit.fit(data.f, data.t);
    lambda = fit.lambda();
    benchmark::DoNotOptimize(fit.weights().data());
  }
  state.SetLabel(std::string(ergo::identify::to_string(p.cv)) +
                 " lambda=" + std::to_string(lambda));
  state.counters["threads"] = ergo::num_threads();
}
BENCHMARK(BM_RidgeCv)
    ->Arg(static_cast<int>(ergo::identify::RidgeCv::Gcv))
    ->Arg(static_cast<int>(ergo::identify::RidgeCv::KFold))
    ->Arg(static_cast<int>(ergo::identify::RidgeCv::Fixed))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

// Raw Eigen: centre, SYRK Gram, cross-product, LLT at λ = 1 (no search). The floor the library
// call is measured against.
void BM_RawEigenRidgeFixedLambda(benchmark::State& state) {
  const RidgeData& data = ridge_data();
  const Index d = data.f.rows(), k = data.t.rows();
  for (auto _ : state) {
    const Eigen::VectorXd mf = data.f.rowwise().mean(), mt = data.t.rowwise().mean();
    Matrix<double> g = Matrix<double>::Zero(d, d);
    g.selfadjointView<Eigen::Lower>().rankUpdate(data.f);
    g.noalias() -= static_cast<double>(data.f.cols()) * mf * mf.transpose();
    Matrix<double> c(d, k);
    c.noalias() = data.f * data.t.transpose();
    c.noalias() -= static_cast<double>(data.f.cols()) * mf * mt.transpose();
    g.diagonal().array() += 1.0;
    const Matrix<double> w = g.selfadjointView<Eigen::Lower>().llt().solve(c);
    benchmark::DoNotOptimize(w.data());
  }
}
BENCHMARK(BM_RawEigenRidgeFixedLambda)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

void BM_RidgeLooSmall(benchmark::State& state) {
  // Exact LOO costs O(N d k) per λ: shown at a moderate size.
  ergo::Rng rng(1);
  const Matrix<double> f = rng.normal_matrix<double>(64, 20000);
  const Matrix<double> t =
      rng.normal_matrix<double>(16, 64) * f + rng.normal_matrix<double>(16, 20000);
  ergo::identify::RidgeParams p;
  p.cv = ergo::identify::RidgeCv::Loo;
  for (auto _ : state) {
    ergo::identify::RidgeRegression fit(p);
    fit.fit(f, t);
    benchmark::DoNotOptimize(fit.weights().data());
  }
}
BENCHMARK(BM_RidgeLooSmall)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Cca(benchmark::State& state) {
  ergo::Rng rng(2);
  const Index n = state.range(0), d = 64, k = 16;
  const Matrix<double> f = rng.normal_matrix<double>(d, n);
  const Matrix<double> t = rng.normal_matrix<double>(k, d) * f + rng.normal_matrix<double>(k, n);
  ergo::identify::CcaParams p;
  p.method = static_cast<ergo::identify::CcaMethod>(state.range(1));
  for (auto _ : state) {
    ergo::identify::Cca cca(p);
    cca.fit(f, t);
    benchmark::DoNotOptimize(cca.correlations().data());
  }
  state.SetLabel(ergo::identify::to_string(p.method));
}
BENCHMARK(BM_Cca)
    ->Args({20000, static_cast<int>(ergo::identify::CcaMethod::Qr)})
    ->Args({20000, static_cast<int>(ergo::identify::CcaMethod::Gram)})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_Assignment(benchmark::State& state) {
  ergo::Rng rng(3);
  const Index r = state.range(0), c = state.range(1);
  const Matrix<double> cost = rng.uniform_matrix<double>(r, c);
  for (auto _ : state) benchmark::DoNotOptimize(ergo::identify::linear_sum_assignment(cost).total);
}
BENCHMARK(BM_Assignment)->Args({64, 256})->Args({256, 256})->Unit(benchmark::kMicrosecond);

void BM_LogisticProbe(benchmark::State& state) {
  ergo::Rng rng(4);
  const Index d = 64, n = 10000, k = state.range(0);
  const Matrix<double> centres = rng.normal_matrix<double>(d, k);
  Matrix<double> x(d, n);
  ergo::IntRowVector y(n);
  for (Index i = 0; i < n; ++i) {
    y[i] = static_cast<std::int32_t>(i % k);
    x.col(i) = centres.col(y[i]) + rng.normal_matrix<double>(d, 1, 0.0, 2.0);
  }
  for (auto _ : state) {
    ergo::identify::LogisticRegression probe;
    probe.fit(x, y);
    benchmark::DoNotOptimize(probe.weights().data());
  }
}
BENCHMARK(BM_LogisticProbe)->Arg(2)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_IdentifiabilityReport(benchmark::State& state) {
  // A typical simulation-sized report: N = 10 000, d = 32, k = 15, 200 permutations, 1000
  // bootstrap replicates.
  ergo::Rng rng(5);
  const Index n = 10000, d = 32, k = 15;
  const Matrix<double> f = rng.normal_matrix<double>(d, n);
  const Matrix<double> t = rng.normal_matrix<double>(k, d) * f + rng.normal_matrix<double>(k, n);
  for (auto _ : state) {
    const auto rep = ergo::identify::check_identifiability(f, t);
    benchmark::DoNotOptimize(rep.verdict.identified);
  }
}
BENCHMARK(BM_IdentifiabilityReport)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

// Benchmarks for ergo/model.hpp: batched exact inference next to a raw-Eigen GEMM of the same
// shape (issue target: inference within 2x of the GEMM).
//
// Problem: m = 12 binary concepts (ℓ = 4096), n = 64 binary observations (one-hot width 128),
// N = 4096 contexts, double precision. Inference = one-hot encode (128 × N), GEMM
// (ℓ × 128)·(128 × N), add log p(c), column-wise log-sum-exp. The baseline is the GEMM alone,
// C(ℓ × N) = Aᵀ B with A, B of shape 128 × 4096. Both write into preallocated outputs.
// The argument is the thread count (Eigen + OpenMP).
#include <ergo/model.hpp>

#include <benchmark/benchmark.h>

namespace {

constexpr ergo::Index kConcepts = 12, kObserved = 64, kContexts = 4096;

struct Fixture {
  ergo::model::ConceptWorld<double> world;
  ergo::model::Samples samples;
  Fixture() {
    ergo::Rng rng(2026);
    ergo::model::PaperWorldParams p;
    p.m = kConcepts;
    p.er_k = 2;
    p.n_observed = kObserved;
    p.eta = 0.05;
    p.vocab = 64;
    world = ergo::model::make_paper_world<double>(p, rng);
    samples = world.sample(kContexts, rng);
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

void BM_ExactInference(benchmark::State& state) {
  ergo::set_num_threads(static_cast<int>(state.range(0)));
  const auto& f = fixture();
  ergo::MatrixXd out(f.world.joint_size(), kContexts);
  ergo::model::InferenceWorkspace<double> ws;
  f.world.log_posterior(f.samples.x, out, ws);  // warm: touch the buffers once
  for (auto _ : state) {
    f.world.log_posterior(f.samples.x, out, ws);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["contexts/s"] = benchmark::Counter(static_cast<double>(kContexts),
                                                    benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = static_cast<double>(state.range(0));
}

void BM_RawGemmSameShape(benchmark::State& state) {
  ergo::set_num_threads(static_cast<int>(state.range(0)));
  const auto& f = fixture();
  const ergo::Index k = f.world.x_emission().total_cardinality(), l = f.world.joint_size();
  ergo::Rng rng(1);
  const ergo::MatrixXd a = rng.normal_matrix<double>(k, l);
  const ergo::MatrixXd b = rng.normal_matrix<double>(k, kContexts);
  ergo::MatrixXd c(l, kContexts);
  c.noalias() = a.transpose() * b;
  for (auto _ : state) {
    c.noalias() = a.transpose() * b;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * double(k) * double(l) * double(kContexts) * 1e-9,
                         benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = static_cast<double>(state.range(0));
}

void BM_Sampling(benchmark::State& state) {
  const auto& f = fixture();
  ergo::Rng rng(3);
  for (auto _ : state) benchmark::DoNotOptimize(f.world.sample(1024, rng));
  state.counters["samples/s"] =
      benchmark::Counter(1024.0, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(BM_ExactInference)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RawGemmSameShape)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Sampling)->Unit(benchmark::kMillisecond);

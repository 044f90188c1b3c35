// SPDX-License-Identifier: MIT
// Eigen's own GEMM against the system BLAS (OpenBLAS) at the five products of the reference
// SAE step (B = 4096, d = 512, m = 4096, float), in one program so that both run on the same
// data, threads and machine state. Built when a BLAS is found (benchmarks/CMakeLists.txt); this
// file is compiled without EIGEN_USE_BLAS, so `noalias() =` products are Eigen's kernels and
// sgemm_ is the BLAS.
//
// Arguments {shape, threads}; shape 0..4 = H = W_enc U, X̂ = W_dec Z, ∇W_dec = ∂X̂ Zᵀ,
// ∂Z = W_decᵀ ∂X̂, ∇W_enc = ∂Z Uᵀ. Counter gflops = 2·M·N·K per product. The context line
// "gemm" names the BLAS and the kernel it chose (ergo::blas_description()).
//
//   ./gemm_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// OpenBLAS reads OPENBLAS_CORETYPE when it loads: compare runs with and without it
// (`env -u OPENBLAS_CORETYPE ./gemm_bench`).

#include <ergo/core/blas.hpp>
#include <ergo/core/parallel.hpp>
#include <ergo/core/random.hpp>

#include <benchmark/benchmark.h>

#include <Eigen/Core>

extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c, const int* ldc);

namespace {

using ergo::Index;
using ergo::Matrix;

constexpr Index kB = 4096, kD = 512, kM = 4096;

struct Shape {
  const char* name;
  Index rows_a, cols_a, rows_b, cols_b;  // stored shapes of A and B
  bool ta, tb;                           // C = op(A) op(B)
};

// The five products of a dense SAE step (column-major, samples are columns).
constexpr Shape kShapes[5] = {
    {"H=Wenc*U", kM, kD, kD, kB, false, false},    {"Xh=Wdec*Z", kD, kM, kM, kB, false, false},
    {"gWdec=dXh*Zt", kD, kB, kM, kB, false, true}, {"dZ=Wdect*dXh", kD, kM, kD, kB, true, false},
    {"gWenc=dZ*Ut", kM, kB, kD, kB, false, true},
};

struct Operands {
  Matrix<float> a, b, c;
  explicit Operands(const Shape& s) {
    ergo::Rng rng(1);
    a = rng.normal_matrix<float>(s.rows_a, s.cols_a);
    b = rng.normal_matrix<float>(s.rows_b, s.cols_b);
    c.resize(s.ta ? s.cols_a : s.rows_a, s.tb ? s.rows_b : s.cols_b);
  }
};

void finish(benchmark::State& state, const Shape& s) {
  const double M = static_cast<double>(s.ta ? s.cols_a : s.rows_a);
  const double N = static_cast<double>(s.tb ? s.rows_b : s.cols_b);
  const double K = static_cast<double>(s.ta ? s.rows_a : s.cols_a);
  state.counters["gflops"] =
      benchmark::Counter(2.0 * M * N * K * static_cast<double>(state.iterations()) * 1e-9,
                         benchmark::Counter::kIsRate);
  state.SetLabel(s.name);
}

void BM_Gemm_Eigen(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  ergo::set_num_threads(static_cast<int>(state.range(1)));
  Operands o(s);
  auto run = [&] {
    if (s.ta)
      o.c.noalias() = o.a.transpose() * o.b;
    else if (s.tb)
      o.c.noalias() = o.a * o.b.transpose();
    else
      o.c.noalias() = o.a * o.b;
  };
  run();
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(o.c.data());
  }
  finish(state, s);
}

void BM_Gemm_Blas(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  ergo::set_num_threads(static_cast<int>(state.range(1)));
  Operands o(s);
  const int M = static_cast<int>(o.c.rows()), N = static_cast<int>(o.c.cols());
  const int K = static_cast<int>(s.ta ? s.rows_a : s.cols_a);
  const int lda = static_cast<int>(s.rows_a), ldb = static_cast<int>(s.rows_b), ldc = M;
  const char ta = s.ta ? 'T' : 'N', tb = s.tb ? 'T' : 'N';
  const float one = 1.0f, zero = 0.0f;
  auto run = [&] {
    sgemm_(&ta, &tb, &M, &N, &K, &one, o.a.data(), &lda, o.b.data(), &ldb, &zero, o.c.data(), &ldc);
  };
  run();
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(o.c.data());
  }
  finish(state, s);
}

#define ERGO_GEMM_BENCH(fn)                    \
  BENCHMARK(fn)                                \
      ->ArgsProduct({{0, 1, 2, 3, 4}, {1, 2}}) \
      ->ArgNames({"shape", "threads"})         \
      ->Unit(benchmark::kMillisecond)          \
      ->UseRealTime()                          \
      ->MinTime(1.0)

ERGO_GEMM_BENCH(BM_Gemm_Eigen);
ERGO_GEMM_BENCH(BM_Gemm_Blas);

const bool kContext = [] {
  benchmark::AddCustomContext("gemm", ergo::blas_description());
  return true;
}();

}  // namespace

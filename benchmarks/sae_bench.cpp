// SPDX-License-Identifier: MIT
// Speed of one SAE training step (forward, backward, decoder projection, clipping, Adam,
// renormalisation), beside raw-Eigen baselines: the same dense ReLU step written directly in
// Eigen, and the bare GEMM floor (the five products of a dense step).
//
// Reference shape (docs/sae.md, "Advanced", Benchmark): batch 4096, d = 512, 4096 latents, float32.
// Arguments: {threads}. Counters: items_per_second = activations (rows) per second,
// gflops = useful FLOP rate (10·B·d·m per dense step; 2·B·d·m + 8·B·k·d for sparse TopK).
//
//   ./sae_bench --benchmark_filter='Reference' --benchmark_repetitions=3
//   ./sae_bench --benchmark_filter='Arch'    # JumpReLU, decoder-norm L1, L_p^p, Structured,
//   Unmixer
//   ./sae_bench --benchmark_filter='Trained' # activation-sparse steps at L0 ≈ 32 and 128
//   ./sae_bench --benchmark_filter='Bf16'    # the same steps with bf16 GEMMs (oneDNN)
//   ./sae_bench --benchmark_filter='Crossover'  # dense vs sparse path by density (ReLU-L1)
//
// Run on a quiet machine (see `uptime`); pair with research/perf/sae_torch.py for PyTorch.

#include <ergo/sae.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>

namespace {

using ergo::Index;
using ergo::Matrix;
using ergo::Vector;
namespace sae = ergo::sae;

constexpr Index kB = 4096, kD = 512, kM = 4096, kK = 32;

Matrix<float> make_batch(Index d, Index B, std::uint64_t seed) {
  ergo::Rng rng(seed);
  return rng.normal_matrix<float>(d, B);
}

void set_threads(const benchmark::State& state) {
  ergo::set_num_threads(static_cast<int>(state.range(0)));
}

void report(benchmark::State& state, Index B, double flop_per_step) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * B);
  state.counters["gflops"] = benchmark::Counter(
      flop_per_step * static_cast<double>(state.iterations()) * 1e-9, benchmark::Counter::kIsRate);
  state.counters["threads"] = static_cast<double>(state.range(0));
}

// A full trainer step of the library (Trainer::step on a prepared batch). `p_start` < 1 puts an
// L_p^p penalty on its general path (p = p_start throughout).
void sae_step(benchmark::State& state, sae::SparseAutoencoderParams p, Index B, Index d, Index m,
              Index k, double p_start = 1.0, bool bf16 = false) {
  set_threads(state);
  if (bf16 && !ergo::bf16_available()) return state.SkipWithError(ergo::bf16_description().c_str());
  p.d_in = d;
  p.d_sae = m;
  if (sae::has_option(p, "k")) sae::set_option(p, "k", std::to_string(k));
  sae::SparseAutoencoder<float> model(p, 1);
  sae::TrainerParams tp;
  tp.p_start = tp.p_end = p_start;
  tp.steps = 1000000;
  tp.lr = 1e-4;
  tp.aux_coefficient = 0.0;  // the PyTorch reference step has no AuxK
  tp.sparsity_coefficient = 5.0;
  tp.sparsity_warmup_fraction = 0.0;
  tp.lr_warmup_fraction = 0.0;
  tp.bf16_gemm = bf16;
  sae::Trainer<float> trainer(tp);
  trainer.begin(model);
  const Matrix<float> pool[2] = {make_batch(d, B, 1), make_batch(d, B, 2)};
  for (int w = 0; w < 2; ++w) trainer.step(model, pool[w]);  // allocate and touch workspaces
  Index i = 0;
  for (auto _ : state) {
    auto t = trainer.step(model, pool[(i++) & 1]);
    benchmark::DoNotOptimize(t.total);
  }
  const bool sparse = model.traits().sparse_kernels;
  const double Bd = static_cast<double>(B) * static_cast<double>(d);
  const double flop = sparse ? Bd * (2.0 * static_cast<double>(m) + 8.0 * static_cast<double>(k))
                             : 10.0 * Bd * static_cast<double>(m);
  report(state, B, flop);
}

sae::SparseAutoencoderParams arch(sae::Architecture a) {
  sae::SparseAutoencoderParams p;
  p.architecture = a;
  return p;
}

void BM_Reference_ReluL1(benchmark::State& s) {
  sae_step(s, arch(sae::Architecture::ReluL1), kB, kD, kM, kK);
}
void BM_Reference_TopK32(benchmark::State& s) {
  sae_step(s, arch(sae::Architecture::TopK), kB, kD, kM, kK);
}
void BM_Reference_BatchTopK32(benchmark::State& s) {
  sae_step(s, arch(sae::Architecture::BatchTopK), kB, kD, kM, kK);
}
void BM_Small_ReluL1(benchmark::State& s) {
  sae_step(s, arch(sae::Architecture::ReluL1), 1024, 256, 2048, kK);
}
void BM_Small_TopK32(benchmark::State& s) {
  sae_step(s, arch(sae::Architecture::TopK), 1024, 256, 2048, kK);
}

// The other architectures at the reference shape (their own steps; the dense ones share
// detail::step_elementwise with ReLU-L1).
void BM_Arch_JumpReLU(benchmark::State& s) {
  sae_step(s, arch(sae::Architecture::JumpReLU), kB, kD, kM, kK);
}
void BM_Arch_ReluL1DecoderNorm(benchmark::State& s) {
  auto p = arch(sae::Architecture::ReluL1);
  p.relu_l1.decoder_norm_penalty = true;
  p.unit_norm_decoder = false;
  sae_step(s, p, kB, kD, kM, kK);
}
void BM_Arch_PAnnealP05(benchmark::State& s) {
  sae_step(s, arch(sae::Architecture::PAnneal), kB, kD, kM, kK, 0.5);
}
void BM_Arch_StructuredP05(benchmark::State& s) {
  sae_step(s, arch(sae::Architecture::Structured), kB, kD, kM, kK, 0.5);
}
void BM_Arch_UnmixerLayerNorm(benchmark::State& s) {
  auto p = arch(sae::Architecture::Unmixer);
  p.unmixer.norm = sae::UnmixerNorm::LayerNorm;
  sae_step(s, p, kB, kD, kM, kK);
}

// A trainer step at a trained-like state with about `l0` active latents per sample: b_enc = −z
// (θ = z for JumpReLU), z the (1 − l0/m) quantile of the fresh SAE's pre-activations on the
// first batch (x ~ N(0, I)), fires l0 latents per sample on average. The step then takes the sparse
// or dense path by the trainer's rule (`density` < 0: the default; 0: always dense; 2: always
// sparse). Counters: L0 (measured mean over the timed steps) and the useful FLOP rate of the dense
// step (10·B·d·m).
void trained_step(benchmark::State& state, sae::SparseAutoencoderParams p, double p_start,
                  double density, bool bf16 = false) {
  set_threads(state);
  if (bf16 && !ergo::bf16_available()) return state.SkipWithError(ergo::bf16_description().c_str());
  const Index B = kB, d = kD, m = kM, l0 = state.range(1);
  p.d_in = d;
  p.d_sae = m;
  sae::SparseAutoencoder<float> model(p, 1);
  const Matrix<float> pool[2] = {make_batch(d, B, 1), make_batch(d, B, 2)};
  // z: the (1 − l0/m) quantile of the pre-activations W_enc x of the first batch
  auto& w = model.weights();
  Matrix<float> h = w.encoder * pool[0];
  const Index nth = static_cast<Index>(static_cast<double>(h.size()) *
                                       (1.0 - static_cast<double>(l0) / static_cast<double>(m)));
  std::nth_element(h.data(), h.data() + nth, h.data() + h.size());
  const float z = h.data()[nth];
  if (w.has_extra("threshold")) {
    w.extra("threshold").setConstant(z);
  } else {
    w.encoder_bias.setConstant(-z);
  }
  sae::TrainerParams tp;
  tp.p_start = tp.p_end = p_start;
  tp.steps = 1000000;
  tp.lr = 1e-7;  // Adam costs the same at any lr; a tiny one keeps the codes at this density
  tp.aux_coefficient = 0.0;
  tp.sparsity_coefficient = 5.0;
  tp.sparsity_warmup_fraction = 0.0;
  tp.lr_warmup_fraction = 0.0;
  if (density >= 0) tp.sparse_kernel_density = density;
  tp.bf16_gemm = bf16;
  sae::Trainer<float> trainer(tp);
  trainer.begin(model);
  for (int i = 0; i < 2; ++i) trainer.step(model, pool[i]);
  Index i = 0;
  double l0_sum = 0.0;
  for (auto _ : state) {
    auto t = trainer.step(model, pool[(i++) & 1]);
    l0_sum += t.l0;
    benchmark::DoNotOptimize(t.total);
  }
  report(state, B, 10.0 * static_cast<double>(B) * static_cast<double>(d) * static_cast<double>(m));
  state.counters["L0"] = l0_sum / static_cast<double>(std::max<Index>(1, i));
}

// Trained states, default path choice. Arguments {threads, L0}.
void BM_Trained_ReluL1(benchmark::State& s) {
  trained_step(s, arch(sae::Architecture::ReluL1), 1.0, -1);
}
void BM_Trained_JumpReLU(benchmark::State& s) {
  trained_step(s, arch(sae::Architecture::JumpReLU), 1.0, -1);
}
void BM_Trained_PAnnealP05(benchmark::State& s) {
  trained_step(s, arch(sae::Architecture::PAnneal), 0.5, -1);
}
void BM_Trained_Structured(benchmark::State& s) {
  trained_step(s, arch(sae::Architecture::Structured), 0.5, -1);
}
// The crossover of the two paths (ReLU-L1): the same states forced dense or sparse.
// Arguments {threads, L0}.
void BM_Crossover_Dense(benchmark::State& s) {
  trained_step(s, arch(sae::Architecture::ReluL1), 1.0, 0.0);
}
void BM_Crossover_Sparse(benchmark::State& s) {
  trained_step(s, arch(sae::Architecture::ReluL1), 1.0, 2.0);
}

// The same steps with TrainerParams::bf16_gemm (oneDNN bf16 GEMMs; skipped where unavailable).
void BM_Bf16_ReluL1(benchmark::State& s) {
  sae_step(s, arch(sae::Architecture::ReluL1), kB, kD, kM, kK, 1.0, true);
}
void BM_Bf16_TopK32(benchmark::State& s) {
  sae_step(s, arch(sae::Architecture::TopK), kB, kD, kM, kK, 1.0, true);
}
void BM_Bf16_Trained_ReluL1(benchmark::State& s) {
  trained_step(s, arch(sae::Architecture::ReluL1), 1.0, -1, true);
}
void BM_Bf16_Trained_JumpReLU(benchmark::State& s) {
  trained_step(s, arch(sae::Architecture::JumpReLU), 1.0, -1, true);
}
void BM_Bf16_Trained_PAnnealP05(benchmark::State& s) {
  trained_step(s, arch(sae::Architecture::PAnneal), 0.5, -1, true);
}
void BM_Bf16_Trained_Structured(benchmark::State& s) {
  trained_step(s, arch(sae::Architecture::Structured), 0.5, -1, true);
}

// Raw-Eigen baseline: the same dense ReLU-L1 step written directly (five GEMMs, Eigen
// elementwise expressions, hand-rolled Adam), every buffer preallocated.
void BM_Reference_RawEigenRelu(benchmark::State& state) {
  set_threads(state);
  const Index B = kB, d = kD, m = kM;
  ergo::Rng rng(1);
  Matrix<float> Wd = rng.normal_matrix<float>(d, m);
  Wd.colwise().normalize();
  Matrix<float> We = Wd.transpose();
  Vector<float> be = Vector<float>::Zero(m), bd = Vector<float>::Zero(d);
  Matrix<float> gWe(m, d), gWd(d, m), U(d, B), Z(m, B), dZ(m, B), Xh(d, B), dXh(d, B);
  Vector<float> gbe(m), gbd(d);
  Matrix<float> mWe = Matrix<float>::Zero(m, d), vWe = mWe, mWd = Matrix<float>::Zero(d, m),
                vWd = mWd;
  const Matrix<float> pool[2] = {make_batch(d, B, 1), make_batch(d, B, 2)};
  const float lam = 5.0f / static_cast<float>(B), lr = 1e-4f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  int t = 0;
  auto adam = [&](auto& w, auto& g, auto& mm, auto& vv) {
    mm = b1 * mm + (1 - b1) * g;
    vv = b2 * vv + (1 - b2) * g.cwiseAbs2();
    const float c1 = 1 - std::pow(b1, static_cast<float>(t)),
                c2 = 1 - std::pow(b2, static_cast<float>(t));
    w.array() -= (lr / c1) * mm.array() / ((vv.array() / c2).sqrt() + eps);
  };
  auto step = [&](const Matrix<float>& X) {
    ++t;
    U = X.colwise() - bd;
    Z.noalias() = We * U;
    Z = (Z.colwise() + be).cwiseMax(0.0f);
    Xh.noalias() = Wd * Z;
    Xh.colwise() += bd;
    dXh = (2.0f / static_cast<float>(B)) * (Xh - X);
    gWd.noalias() = dXh * Z.transpose();
    gbd = dXh.rowwise().sum();
    dZ.noalias() = Wd.transpose() * dXh;
    dZ = (Z.array() > 0).select(dZ.array() + lam, 0.0f);
    gWe.noalias() = dZ * U.transpose();
    gbe = dZ.rowwise().sum();
    gbd.noalias() -= We.transpose() * gbe;
    for (Index i = 0; i < m; ++i) gWd.col(i) -= gWd.col(i).dot(Wd.col(i)) * Wd.col(i);
    adam(We, gWe, mWe, vWe);
    adam(Wd, gWd, mWd, vWd);
    be -= lr * gbe;
    bd -= lr * gbd;
    Wd.colwise().normalize();
  };
  for (int w = 0; w < 2; ++w) step(pool[w]);
  Index i = 0;
  for (auto _ : state) {
    step(pool[(i++) & 1]);
    benchmark::DoNotOptimize(Wd.data());
  }
  report(state, B, 10.0 * static_cast<double>(B * d * m));
}

// The GEMM floor: only the five products of a dense step (10·B·d·m FLOP).
void BM_Reference_GemmFloor(benchmark::State& state) {
  set_threads(state);
  const Index B = kB, d = kD, m = kM;
  ergo::Rng rng(1);
  const Matrix<float> We = rng.normal_matrix<float>(m, d), Wd = rng.normal_matrix<float>(d, m);
  const Matrix<float> X = make_batch(d, B, 1);
  Matrix<float> Z(m, B), dZ(m, B), Xh(d, B), gWe(m, d), gWd(d, m);
  auto run = [&]() {
    Z.noalias() = We * X;
    Xh.noalias() = Wd * Z;
    gWd.noalias() = Xh * Z.transpose();
    dZ.noalias() = Wd.transpose() * Xh;
    gWe.noalias() = dZ * X.transpose();
  };
  run();
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(gWe.data());
  }
  report(state, B, 10.0 * static_cast<double>(B * d * m));
}

// Encoder GEMM alone: the floor of a sparse TopK step (2·B·d·m FLOP).
void BM_Reference_EncoderGemm(benchmark::State& state) {
  set_threads(state);
  ergo::Rng rng(1);
  const Matrix<float> We = rng.normal_matrix<float>(kM, kD);
  const Matrix<float> X = make_batch(kD, kB, 1);
  Matrix<float> H(kM, kB);
  H.noalias() = We * X;
  for (auto _ : state) {
    H.noalias() = We * X;
    benchmark::DoNotOptimize(H.data());
  }
  report(state, kB, 2.0 * static_cast<double>(kB * kD * kM));
}
// The same product as a bf16 GEMM (ergo::Bf16Gemm: both operands rounded, fp32 accumulation).
void BM_Bf16_EncoderGemm(benchmark::State& state) {
  set_threads(state);
  if (!ergo::bf16_available()) return state.SkipWithError(ergo::bf16_description().c_str());
  ergo::Rng rng(1);
  const Matrix<float> We = rng.normal_matrix<float>(kM, kD);
  const Matrix<float> X = make_batch(kD, kB, 1);
  Matrix<float> H(kM, kB);
  ergo::Bf16Gemm gemm;
  gemm.multiply(H, We, false, X, false);
  for (auto _ : state) {
    gemm.multiply(H, We, false, X, false);
    benchmark::DoNotOptimize(H.data());
  }
  report(state, kB, 2.0 * static_cast<double>(kB * kD * kM));
}

#define ERGO_SAE_BENCH(fn) \
  BENCHMARK(fn)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0)

ERGO_SAE_BENCH(BM_Reference_GemmFloor);
ERGO_SAE_BENCH(BM_Reference_RawEigenRelu);
ERGO_SAE_BENCH(BM_Reference_ReluL1);
ERGO_SAE_BENCH(BM_Reference_EncoderGemm);
ERGO_SAE_BENCH(BM_Reference_TopK32);
ERGO_SAE_BENCH(BM_Reference_BatchTopK32);
ERGO_SAE_BENCH(BM_Small_ReluL1);
ERGO_SAE_BENCH(BM_Small_TopK32);
ERGO_SAE_BENCH(BM_Arch_JumpReLU);
ERGO_SAE_BENCH(BM_Arch_ReluL1DecoderNorm);
ERGO_SAE_BENCH(BM_Arch_PAnnealP05);
ERGO_SAE_BENCH(BM_Arch_StructuredP05);
ERGO_SAE_BENCH(BM_Arch_UnmixerLayerNorm);
ERGO_SAE_BENCH(BM_Bf16_EncoderGemm);
ERGO_SAE_BENCH(BM_Bf16_ReluL1);
ERGO_SAE_BENCH(BM_Bf16_TopK32);

#define ERGO_SAE_TRAINED(fn, ...)            \
  BENCHMARK(fn)                              \
      ->ArgsProduct({{1, 2}, {__VA_ARGS__}}) \
      ->ArgNames({"threads", "L0"})          \
      ->Unit(benchmark::kMillisecond)        \
      ->UseRealTime()                        \
      ->MinTime(3.0)

// the GEMM these steps ran on (Eigen, or OpenBLAS and its kernel; ergo/core/blas.hpp)
const bool kGemmContext = [] {
  benchmark::AddCustomContext("gemm", ergo::blas_description(2));  // warns as for 2 threads
  benchmark::AddCustomContext("bf16", ergo::bf16_description());
  return true;
}();

ERGO_SAE_TRAINED(BM_Trained_ReluL1, 32, 128);
ERGO_SAE_TRAINED(BM_Trained_JumpReLU, 32, 128);
ERGO_SAE_TRAINED(BM_Trained_PAnnealP05, 32, 128);
ERGO_SAE_TRAINED(BM_Trained_Structured, 32, 128);
ERGO_SAE_TRAINED(BM_Bf16_Trained_ReluL1, 32);
ERGO_SAE_TRAINED(BM_Bf16_Trained_JumpReLU, 32);
ERGO_SAE_TRAINED(BM_Bf16_Trained_PAnnealP05, 32);
ERGO_SAE_TRAINED(BM_Bf16_Trained_Structured, 32);
ERGO_SAE_TRAINED(BM_Crossover_Dense, 128, 256, 512, 1024);
ERGO_SAE_TRAINED(BM_Crossover_Sparse, 128, 256, 512, 1024);

}  // namespace

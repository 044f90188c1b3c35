// Benchmarks of ergo::io: .npy reading (zero-copy map, converted copy, float16), streaming
// batches from ActivationSource, and atomic writing, each beside a raw baseline
// (fread into a preallocated matrix, an in-memory Eigen column gather, plain fwrite).
#include <ergo/io.hpp>

#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdio>
#include <string>

namespace {

using namespace ergo;

constexpr Index kDim = 512, kSamples = 16384;  // 32 MiB of float32

const std::string& dir() {
  static const std::string d = [] {
    char t[] = "/tmp/ergo_io_bench_XXXXXX";
    std::string p = ::mkdtemp(t);
    Rng rng(1);
    const MatrixXf X = rng.normal_matrix<float>(kDim, kSamples);
    io::write_npy(p + "/f32.npy", X);
    io::NpyWriteOptions h;
    h.has_dtype = true;
    h.dtype = io::DType::F16;
    io::write_npy(p + "/f16.npy", X, h);
    return p;
  }();
  return d;
}

void BM_NpyMapF32(benchmark::State& st) {  // open + zero-copy view + touch every value
  const std::string p = dir() + "/f32.npy";
  for (auto _ : st) {
    io::NpyFile f(p);
    auto m = f.map<float>();
    benchmark::DoNotOptimize(m.sum());
  }
  st.SetBytesProcessed(st.iterations() * kDim * kSamples * 4);
}
BENCHMARK(BM_NpyMapF32)->Unit(benchmark::kMillisecond);

void BM_NpyReadF32(benchmark::State& st) {  // converted copy (here: same dtype, memcpy)
  const std::string p = dir() + "/f32.npy";
  for (auto _ : st) benchmark::DoNotOptimize(io::read_npy<float>(p).data());
  st.SetBytesProcessed(st.iterations() * kDim * kSamples * 4);
}
BENCHMARK(BM_NpyReadF32)->Unit(benchmark::kMillisecond);

void BM_NpyReadIntoF32(benchmark::State& st) {  // into preallocated storage (no fresh pages)
  const std::string p = dir() + "/f32.npy";
  MatrixXf X(kDim, kSamples);
  for (auto _ : st) {
    io::NpyFile f(p);
    f.view().read_samples(0, kSamples, X.data());
    benchmark::DoNotOptimize(X.data());
  }
  st.SetBytesProcessed(st.iterations() * kDim * kSamples * 4);
}
BENCHMARK(BM_NpyReadIntoF32)->Unit(benchmark::kMillisecond);

void BM_BaselineFread(benchmark::State& st) {  // fread of the data into a preallocated matrix
  const std::string p = dir() + "/f32.npy";
  MatrixXf X(kDim, kSamples);
  for (auto _ : st) {
    std::FILE* f = std::fopen(p.c_str(), "rb");
    std::fseek(f, 128, SEEK_SET);  // the header is 128 bytes here
    benchmark::DoNotOptimize(std::fread(X.data(), 4, static_cast<std::size_t>(X.size()), f));
    std::fclose(f);
  }
  st.SetBytesProcessed(st.iterations() * kDim * kSamples * 4);
}
BENCHMARK(BM_BaselineFread)->Unit(benchmark::kMillisecond);

void BM_NpyReadF16ToFloat(benchmark::State& st) {  // float16 file -> float (table decode)
  const std::string p = dir() + "/f16.npy";
  for (auto _ : st) benchmark::DoNotOptimize(io::read_npy<float>(p).data());
  st.SetItemsProcessed(st.iterations() * kDim * kSamples);
}
BENCHMARK(BM_NpyReadF16ToFloat)->Unit(benchmark::kMillisecond);

void BM_ActivationSourceBatch(benchmark::State& st) {  // shuffled d × 1024 batches from the file
  io::ActivationSourceParams sp;
  sp.batch_size = 1024;
  sp.buffer_size = 8192;
  sp.seed = 1;
  io::ActivationSource<float> src({dir() + "/f32.npy"}, sp);
  MatrixXf B;
  for (auto _ : st) {
    src.next_cycling(B);
    benchmark::DoNotOptimize(B.data());
  }
  st.SetItemsProcessed(st.iterations() * sp.batch_size);
}
BENCHMARK(BM_ActivationSourceBatch)->Unit(benchmark::kMicrosecond);

void BM_BaselineGather(benchmark::State& st) {  // the same batch gathered from memory
  const MatrixXf X = io::read_npy<float>(dir() + "/f32.npy");
  Rng rng(1);
  const IndexVector perm = rng.permutation(kSamples);
  MatrixXf B(kDim, 1024);
  Index pos = 0;
  for (auto _ : st) {
    for (Index c = 0; c < 1024; ++c, pos = (pos + 1) % kSamples) B.col(c) = X.col(perm(pos));
    benchmark::DoNotOptimize(B.data());
  }
  st.SetItemsProcessed(st.iterations() * 1024);
}
BENCHMARK(BM_BaselineGather)->Unit(benchmark::kMicrosecond);

void BM_WriteNpyAtomic(benchmark::State& st) {  // temp file + fsync + rename (4 MiB)
  const MatrixXf X = MatrixXf::Ones(kDim, 2048);
  for (auto _ : st) io::write_npy(dir() + "/w.npy", X);
  st.SetBytesProcessed(st.iterations() * X.size() * 4);
}
BENCHMARK(BM_WriteNpyAtomic)->Unit(benchmark::kMillisecond);

void BM_BaselineFwrite(benchmark::State& st) {  // plain fwrite, no fsync, no rename
  const MatrixXf X = MatrixXf::Ones(kDim, 2048);
  for (auto _ : st) {
    std::FILE* f = std::fopen((dir() + "/w2.bin").c_str(), "wb");
    std::fwrite(X.data(), 4, static_cast<std::size_t>(X.size()), f);
    std::fclose(f);
  }
  st.SetBytesProcessed(st.iterations() * X.size() * 4);
}
BENCHMARK(BM_BaselineFwrite)->Unit(benchmark::kMillisecond);

}  // namespace

// SPDX-License-Identifier: MIT
// Data-parallel SAE step throughput (ERGO_MPI): run under `mpirun -n R` and compare R = 1 with
// R = 2 (docs/scale.md):
//
//   mpirun -n 1 build/benchmarks/sae_mpi_bench [arch] [steps]     # 1 rank × OMP_NUM_THREADS
//   mpirun -n 2 build/benchmarks/sae_mpi_bench [arch] [steps]     # 2 ranks
//
// Reference shape: global batch B = 4096, d = 512, m = 4096 latents, float32 (as sae_bench.cpp).
// Prints samples/s of the global batch, the time of one step, and the time of the step's
// gradient allreduce alone (the same 2·d·m + 2m + d floats, timed separately) as the
// communication time per step. Scaling efficiency = (samples/s at R) / (R · samples/s at 1).
// A timing program, not a Google Benchmark suite: it needs MPI_Init and every rank in step.

#include <ergo/mpi.hpp>
#include <ergo/sae.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  using namespace ergo;
  MpiEnvironment env(argc, argv);
  MpiCommunicator comm;
  const std::string arch = argc > 1 ? argv[1] : "topk";
  const Index steps = argc > 2 ? std::stol(argv[2]) : 10;
  constexpr Index kB = 4096, kD = 512, kM = 4096, kK = 32;
  sae::SparseAutoencoderParams p;
  p.architecture = sae::architecture_from_string(arch);
  p.d_in = kD;
  p.d_sae = kM;
  if (sae::has_option(p, "k")) sae::set_option(p, "k", std::to_string(kK));
  sae::SparseAutoencoder<float> model(p, 1);
  sae::TrainerParams tp;
  tp.steps = steps + 2;
  tp.batch_size = kB;
  sae::Trainer<float> trainer(tp, comm);
  const Share sh = trainer.batch_share(kB);
  Rng rng(7 + static_cast<std::uint64_t>(comm.rank()));
  Matrix<float> x(kD, sh.count);
  for (Index i = 0; i < x.size(); ++i) x(i) = static_cast<float>(rng.normal());
  trainer.begin(model);
  using clock = std::chrono::steady_clock;
  auto seconds = [](clock::time_point a) {
    return std::chrono::duration<double>(clock::now() - a).count();
  };
  for (int w = 0; w < 2; ++w) trainer.step(model, x);  // warm-up: buffers, pages
  comm.barrier();
  const auto t0 = clock::now();
  for (Index s = 0; s < steps; ++s) trainer.step(model, x);
  comm.barrier();
  const double step_s = seconds(t0) / static_cast<double>(steps);
  // the gradient allreduce alone
  Index n = 0;
  for (const auto& kv : model.named_weights()) n += kv.second.size();
  std::vector<float> buf(static_cast<size_t>(n), 1.0f);
  comm.allreduce_sum(buf.data(), n);
  comm.barrier();
  const auto t1 = clock::now();
  for (Index s = 0; s < steps; ++s) comm.allreduce_sum(buf.data(), n);
  const double comm_s = seconds(t1) / static_cast<double>(steps);
  if (comm.is_root())
    std::printf(
        "sae_mpi_bench %s: %d ranks x %d threads, B = %ld, d = %ld, m = %ld: step %.4f s, "
        "%.0f samples/s, gradient allreduce (%ld floats) %.4f s/step (%.1f %% of the step)\n",
        arch.c_str(), comm.size(), Eigen::nbThreads(), static_cast<long>(kB), static_cast<long>(kD),
        static_cast<long>(kM), step_s, static_cast<double>(kB) / step_s, static_cast<long>(n),
        comm_s, 100.0 * comm_s / step_s);
  return 0;
}

// SPDX-License-Identifier: MIT
#pragma once

/// \file blas.hpp
/// \brief Which GEMM runs: Eigen's own kernels, or an external BLAS (OpenBLAS) that the program
/// links, with the kernel OpenBLAS chose and a warning when an environment pin makes it slower
/// than the CPU allows.
///
/// Eigen calls a BLAS for its large products only in translation units compiled with
/// EIGEN_USE_BLAS (CMake: ERGO_USE_BLAS; docs/sae.md, "The fastest GEMM"). OpenBLAS picks its
/// kernel when it loads, from the CPU or from the environment variable OPENBLAS_CORETYPE; a pin
/// to an older kernel (Haswell: AVX2) on an AVX-512 CPU costs it a large share of its speed, and
/// can make it slower than Eigen. OpenBLAS also comes in a pthreads build, whose idle threads
/// spin (sched_yield) for a while after each call: with 2 threads, ergo's own parallel loops then
/// share their cores with spinning threads and ran up to 2x slower (docs/sae.md, "Benchmark");
/// its OpenMP build (Debian: libopenblas0-openmp) shares ergo's OpenMP threads instead, and ergo's
/// tools and benchmarks load it when it is installed. The OpenBLAS functions are looked up as weak
/// symbols, so this header needs no BLAS to compile or link: without OpenBLAS in the process it
/// reports Eigen.

#include <cctype>
#include <cstdlib>
#include <string>

#if defined(__GNUC__) && defined(__ELF__)
#define ERGO_WEAK_OPENBLAS 1
extern "C" {
char* openblas_get_corename(void) __attribute__((weak));
char* openblas_get_config(void) __attribute__((weak));
void openblas_set_num_threads(int) __attribute__((weak));
int openblas_get_parallel(void) __attribute__((weak));
}
#endif

namespace ergo {

/// \brief True when OpenBLAS is loaded in this process.
inline bool openblas_loaded() {
#ifdef ERGO_WEAK_OPENBLAS
  return openblas_get_corename != nullptr;
#else
  return false;
#endif
}

/// \brief True when this translation unit's Eigen products call the external BLAS
/// (EIGEN_USE_BLAS).
inline constexpr bool eigen_uses_blas() {
#ifdef EIGEN_USE_BLAS
  return true;
#else
  return false;
#endif
}

/// \brief OpenBLAS's kernel name ("SkylakeX", "Cooperlake", "Haswell", ...), or "" when OpenBLAS
/// is not loaded.
inline std::string openblas_core() {
#ifdef ERGO_WEAK_OPENBLAS
  if (openblas_get_corename != nullptr) return openblas_get_corename();
#endif
  return {};
}

/// \brief Sets OpenBLAS's own thread count when it is loaded (its threads are not OpenMP's).
inline void set_openblas_threads(int n) {
#ifdef ERGO_WEAK_OPENBLAS
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(n < 1 ? 1 : n);
#else
  (void)n;
#endif
}

/// \brief OpenBLAS's threading: "sequential", "pthreads", "OpenMP", or "" when OpenBLAS is not
/// loaded.
inline std::string openblas_threading() {
#ifdef ERGO_WEAK_OPENBLAS
  if (openblas_get_parallel != nullptr) {
    switch (openblas_get_parallel()) {
      case 0:
        return "sequential";
      case 1:
        return "pthreads";
      case 2:
        return "OpenMP";
      default:
        return "unknown";
    }
  }
#endif
  return {};
}

namespace detail {
inline std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
/// OpenBLAS kernels with AVX-512 (as of 0.3.21-0.3.27).
inline bool avx512_kernel(const std::string& core) {
  const std::string c = lower(core);
  return c == "skylakex" || c == "cooperlake" || c == "sapphirerapids" || c == "zen4";
}
inline bool cpu_has_avx512() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}
}  // namespace detail

/// \brief Warnings about the loaded OpenBLAS, joined by "; ", else "": a kernel without AVX-512
/// on a CPU that has it (typically OPENBLAS_CORETYPE pinned to Haswell), and, when `threads` > 1,
/// the pthreads build (its spinning idle threads slow ergo's own parallel loops).
inline std::string blas_warning(int threads = 1) {
  const std::string core = openblas_core();
  if (core.empty()) return {};
  std::string s;
  if (detail::cpu_has_avx512() && !detail::avx512_kernel(core)) {
    const char* pin = std::getenv("OPENBLAS_CORETYPE");
    s = "OpenBLAS runs its " + core + " kernel on a CPU with AVX-512";
    if (pin != nullptr) s += std::string(" because OPENBLAS_CORETYPE=") + pin + " pins it";
    s += "; its GEMM is slower than this CPU allows (unset OPENBLAS_CORETYPE, or set it to "
         "SkylakeX)";
  }
  if (threads > 1 && openblas_threading() == "pthreads") {
    if (!s.empty()) s += "; ";
    s += "OpenBLAS's pthreads build is loaded: its idle threads spin while ergo's own parallel "
         "loops run, which made them up to 2x slower at 2 threads (install its OpenMP build, "
         "Debian: libopenblas0-openmp, and rebuild)";
  }
  return s;
}

/// \brief One line naming the GEMM of this translation unit: "Eigen" or
/// "OpenBLAS (kernel Cooperlake; OpenBLAS 0.3.21 ... USE_OPENMP ...)", with " [warning]" appended
/// when blas_warning(threads) has one. When OpenBLAS is loaded but this unit's Eigen does not call
/// it, says so.
inline std::string blas_description(int threads = 1) {
  const std::string core = openblas_core();
  std::string s;
  if (core.empty()) {
    s = eigen_uses_blas() ? "external BLAS (EIGEN_USE_BLAS)" : "Eigen";
  } else {
    s = std::string(eigen_uses_blas() ? "OpenBLAS" : "Eigen; OpenBLAS loaded") + " (kernel " + core;
#ifdef ERGO_WEAK_OPENBLAS
    if (openblas_get_config != nullptr) s += std::string("; ") + openblas_get_config();
#endif
    s += ")";
  }
  const std::string w = blas_warning(threads);
  if (!w.empty()) s += " [" + w + "]";
  return s;
}

}  // namespace ergo

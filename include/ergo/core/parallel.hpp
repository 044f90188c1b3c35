// SPDX-License-Identifier: MIT
#pragma once

/// \file parallel.hpp
/// \brief Thread control shared by Eigen's GEMM and ergo's own OpenMP loops.
///
/// ergo's loops use ERGO_OMP(omp parallel for ...) instead of a bare `#pragma omp`, so that code
/// built without OpenMP compiles without "unknown pragma" warnings. Without -fopenmp everything
/// runs on one thread.

#include <Eigen/Core>

#ifdef _OPENMP
#include <omp.h>
#define ERGO_OMP(...) _Pragma(#__VA_ARGS__)
#else
#define ERGO_OMP(...)
#endif

namespace ergo {

/// \brief Sets the number of threads for Eigen's products and ergo's OpenMP loops (n >= 1).
inline void set_num_threads(int n) {
  if (n < 1) n = 1;
  Eigen::setNbThreads(n);
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
}

/// \brief Threads Eigen and ergo will use (1 when built without OpenMP).
inline int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace ergo

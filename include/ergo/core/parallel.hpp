// SPDX-License-Identifier: MIT
#pragma once

/// \file parallel.hpp
/// \brief Thread control shared by Eigen's GEMM and every ergo loop: the thread count, a scoped
/// limit, one grain rule and one parallel loop helper.
///
/// Eigen::nbThreads() is the single thread count: Eigen's products use it, and so do ergo's own
/// loops (parallel_for, and the OpenMP loops written with ERGO_OMP that need a reduction or a
/// dynamic schedule). set_num_threads() sets it (and OpenMP's default); ThreadLimit changes it
/// for a scope.
///
/// The grain rule: a loop is split across threads only when every thread gets at least
/// kParallelGrain elements of work (so the loop as a whole needs ≥ 2·kParallelGrain). A fork/join
/// costs microseconds when the other cores are idle and much more when they are busy; below that
/// amount of work a single thread is faster. `grain_for(cost)` turns the rule into a minimum
/// number of loop iterations per thread when one iteration touches `cost` elements, and
/// `worth_splitting(work)` is the same rule for an ERGO_OMP `if` clause.
///
/// ERGO_OMP(omp parallel for ...) is used instead of a bare `#pragma omp`, so that code built
/// without OpenMP compiles without "unknown pragma" warnings. Without -fopenmp everything runs on
/// one thread.

#include "blas.hpp"
#include "types.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <exception>

#ifdef _OPENMP
#include <omp.h>
#define ERGO_OMP(...) _Pragma(#__VA_ARGS__)
#else
#define ERGO_OMP(...)
#endif

namespace ergo {

/// \brief Sets the number of threads for Eigen's products and ergo's loops, and OpenBLAS's when
/// it is loaded (n >= 1; smaller values mean 1).
inline void set_num_threads(int n) {
  if (n < 1) n = 1;
  Eigen::setNbThreads(n);
  set_openblas_threads(n);  // when OpenBLAS is loaded (blas.hpp)
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
}

/// \brief Threads Eigen and ergo will use (1 when built without OpenMP).
inline int num_threads() {
#ifdef _OPENMP
  return Eigen::nbThreads();
#else
  return 1;
#endif
}

/// \brief Sets the thread count to `n` for the lifetime of the object and restores the previous
/// count afterwards; n < 1 leaves it unchanged.
///
/// Small problems run faster on one thread (Eigen splits any GEMM above ~50 000 multiply-adds per
/// thread, far below the cost of a fork/join on a busy machine), so trainers lower the count for
/// small steps and raise it to a requested count for a run. The setting is process-wide: do not
/// change it from another thread while a limited call runs.
class ThreadLimit {
 public:
  explicit ThreadLimit(int n) : m_prev(num_threads()) {
    if (n >= 1 && n != m_prev) {
      set_num_threads(n);
      m_changed = true;
    }
  }
  ~ThreadLimit() {
    if (m_changed) set_num_threads(m_prev);
  }
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;

 private:
  int m_prev;
  bool m_changed = false;
};

namespace detail {

/// Minimum elements of work per thread before a loop is split (the grain rule, file comment).
constexpr Index kParallelGrain = 32768;

/// Minimum iterations per thread when one iteration touches `cost` elements, at least `min_iters`.
inline Index grain_for(Index cost, Index min_iters = 1) {
  return std::max<Index>(min_iters, kParallelGrain / std::max<Index>(cost, 1));
}

/// True when a loop of `work` elements in total should be split across threads (for ERGO_OMP
/// `if` clauses; the same rule as parallel_for).
inline bool worth_splitting(Index work) {
  return work >= 2 * kParallelGrain;
}

/// True inside an active OpenMP parallel region (more than one thread).
inline bool in_parallel_region() {
#ifdef _OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

/// Index of the calling thread inside an OpenMP parallel region (0 outside or without OpenMP).
inline int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/// Threads to use for `n` iterations when each thread should get at least `grain` of them
/// (1 inside an enclosing parallel region).
inline int loop_threads(Index n, Index grain) {
#ifdef _OPENMP
  const int avail = Eigen::nbThreads();
  if (avail <= 1 || n < 2 * grain || omp_in_parallel()) return 1;
  return static_cast<int>(std::min<Index>(avail, n / std::max<Index>(grain, 1)));
#else
  (void)n;
  (void)grain;
  return 1;
#endif
}

/// \brief Runs `f` and `g` at the same time, `f` on the calling thread and `g` on a second one,
/// when `threads` >= 2 and the caller is not already inside a parallel region (parallel loops
/// inside either then run on its one thread); else f, then g. For a step that cannot be split
/// across threads (`f`) beside independent work (`g`). At most one of them may change the thread
/// count, and only for its own duration (a ThreadLimit). An exception from either is rethrown
/// after both have run (f's when both throw).
template <class F, class G>
void run_side_by_side(int threads, F&& f, G&& g) {
  std::exception_ptr ef, eg;
  auto run = [](auto& fn, std::exception_ptr& e) {
    try {
      fn();
    } catch (...) {
      e = std::current_exception();
    }
  };
#ifdef _OPENMP
  if (threads >= 2 && !in_parallel_region()) {
#pragma omp parallel num_threads(2)
    {
      const int id = omp_get_thread_num();
      if (id == 0) run(f, ef);
      if (id == 1 || omp_get_num_threads() == 1) run(g, eg);
    }
  } else
#else
  (void)threads;
#endif
  {
    run(f, ef);
    run(g, eg);
  }
  if (ef) std::rethrow_exception(ef);
  if (eg) std::rethrow_exception(eg);
}

/// \brief Calls f(begin, end, thread) on a static partition of [0, n) into equal contiguous
/// ranges, one per thread, each of at least `grain` iterations (see grain_for). The partition
/// depends only on n and the thread count, so results are reproducible for a given thread
/// count. `f` must not throw.
template <class F>
void parallel_for(Index n, Index grain, F&& f) {
  const int nt = loop_threads(n, grain);
#ifdef _OPENMP
  if (nt > 1) {
#pragma omp parallel num_threads(nt)
    {
      const int t = omp_get_thread_num();
      const int k = omp_get_num_threads();
      const Index b = n * t / k, e = n * (t + 1) / k;
      f(b, e, t);
    }
    return;
  }
#endif
  (void)nt;
  f(Index(0), n, 0);
}

}  // namespace detail
}  // namespace ergo

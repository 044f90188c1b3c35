// SPDX-License-Identifier: MIT
#pragma once

/// \file parallel.hpp
/// \brief A static-partition parallel loop for the nn module's own elementwise kernels.
///
/// GEMMs are threaded by Eigen. The remaining per-step loops (softmax cross-entropy, Adam,
/// activation passes) use this helper, which splits [0, n) into equal contiguous ranges, one per
/// thread, with as many threads as Eigen::nbThreads() reports (OpenMP builds only; otherwise the
/// loop runs inline). The partition depends only on n and the thread count, so results are
/// reproducible for a given thread count.

#include "../../core/types.hpp"
#include "common.hpp"

#include <Eigen/Core>

#include <algorithm>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace ergo::nn::detail {

/// Threads to use for `n` units of work when each thread should get at least `grain` units.
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

/// \brief Calls f(begin, end, thread) on a static partition of [0, n). `f` must not throw.
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

}  // namespace ergo::nn::detail

namespace ergo::nn::detail {

/// \brief out (+)= Σ_cols g, threaded over row ranges (deterministic for a given thread count).
/// \param g r × c \param out r-vector (written, or added to when `accumulate`)
template <class DG, class DO>
void rowwise_sum(const Eigen::MatrixBase<DG>& g, const Eigen::MatrixBase<DO>& out_,
                 bool accumulate) {
  auto& out = const_cast<Eigen::MatrixBase<DO>&>(out_);
  if (!accumulate) out.setZero();
  const Index rows = g.rows(), cols = g.cols();
  // Threads split the rows (at least 64 rows each) when there is enough work in total.
  const Index grain = std::max<Index>(64, (Index(1) << 16) / std::max<Index>(cols, 1));
  parallel_for(rows, grain, [&](Index r0, Index r1, int) {
    if (r1 <= r0) return;
    auto seg = out.segment(r0, r1 - r0);
    for (Index c = 0; c < cols; ++c) seg += g.col(c).segment(r0, r1 - r0);
  });
}

}  // namespace ergo::nn::detail

namespace ergo::nn::detail {

/// \brief Lowers Eigen's thread count (which also drives parallel_for) to `n` for the guard's
/// lifetime if it is higher, and restores it afterwards; writes nothing otherwise.
///
/// Eigen parallelises any GEMM above ~50 000 multiply-adds per thread, far below the cost of an
/// OpenMP fork/join (microseconds when the other core is idle, milliseconds when it is busy);
/// small models therefore train much faster on one thread. Note that Eigen's thread setting is
/// process-wide: do not change it from another thread while a guarded call runs.
class ThreadLimit {
 public:
  explicit ThreadLimit(int n) : m_prev(Eigen::nbThreads()) {
    if (n >= 1 && n < m_prev) {
      Eigen::setNbThreads(n);
      m_changed = true;
    }
  }
  ~ThreadLimit() {
    if (m_changed) Eigen::setNbThreads(m_prev);
  }
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;

 private:
  int m_prev;
  bool m_changed = false;
};

}  // namespace ergo::nn::detail

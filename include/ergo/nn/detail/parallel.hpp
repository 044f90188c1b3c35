// SPDX-License-Identifier: MIT
#pragma once

/// \file parallel.hpp
/// \brief nn's threaded reduction over columns, on core's parallel_for and grain rule
/// (core/parallel.hpp). GEMMs are threaded by Eigen.

#include "../../core/parallel.hpp"
#include "../../core/types.hpp"
#include "common.hpp"

#include <Eigen/Core>

#include <algorithm>

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
  parallel_for(rows, grain_for(cols, 64), [&](Index r0, Index r1, int) {
    if (r1 <= r0) return;
    auto seg = out.segment(r0, r1 - r0);
    for (Index c = 0; c < cols; ++c) seg += g.col(c).segment(r0, r1 - r0);
  });
}

}  // namespace ergo::nn::detail

// SPDX-License-Identifier: MIT
#pragma once

/// \file kernels.hpp
/// \brief Small private kernels of the sae module: a rank-one update split across threads.

#include "../../core/parallel.hpp"
#include "../../core/types.hpp"

namespace ergo::sae::detail {

/// \brief a += u vᵀ (a: r × c, u: r, v: c), by blocks of columns across threads (Eigen runs an
/// outer product on one thread).
template <class Dst, class U, class V>
void add_outer(Dst&& a, const U& u, const V& v) {
  ergo::detail::parallel_for(
      a.cols(), ergo::detail::grain_for(a.rows()), [&](Index b, Index e, int) {
        a.middleCols(b, e - b).noalias() += u * v.segment(b, e - b).transpose();
      });
}

}  // namespace ergo::sae::detail

// SPDX-License-Identifier: MIT
#pragma once

/// \file kernels.hpp
/// \brief Small private kernels of the sae module: a blocked parallel transpose.

#include "../../core/parallel.hpp"
#include "../../core/types.hpp"

#include <algorithm>

namespace ergo::sae::detail {

/// \brief dst (c × r) = srcᵀ (src: r × c), in 64 × 64 tiles, tiles spread over threads.
template <class Scalar>
void transpose_into(const Matrix<Scalar>& src, Matrix<Scalar>& dst, int nt) {
  const Index r = src.rows(), c = src.cols();
  constexpr Index T = 64;
  const Index tiles_r = (r + T - 1) / T, tiles_c = (c + T - 1) / T;
  const Index tiles = tiles_r * tiles_c;
  (void)nt;
  ERGO_OMP(omp parallel for schedule(static) num_threads(nt) if (ergo::detail::worth_splitting(r * c)))
  for (Index t = 0; t < tiles; ++t) {
    const Index i0 = (t % tiles_r) * T, j0 = (t / tiles_r) * T;
    const Index ni = std::min(T, r - i0), nj = std::min(T, c - j0);
    dst.block(j0, i0, nj, ni) = src.block(i0, j0, ni, nj).transpose();
  }
}

}  // namespace ergo::sae::detail

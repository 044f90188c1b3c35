// SPDX-License-Identifier: MIT
#pragma once

/// \file kernels.hpp
/// \brief Small private kernels of the sae module: thread index, a blocked parallel transpose,
/// and the unmixer's penalty functions g with their derivatives.

#include "../../core/parallel.hpp"
#include "../../core/types.hpp"
#include "../params.hpp"

#include <algorithm>
#include <cmath>

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

/// SELU constants (Klambauer et al. 2017).
constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;

/// \brief g(u) of the unmixer penalty and |g|'s derivative: returns |g(u)| and writes
/// d|g|/du into *dg.
template <class Scalar>
inline Scalar unmixer_penalty(UnmixerActivation g, Scalar u, Scalar clamp, Scalar* dg) {
  switch (g) {
    case UnmixerActivation::Softplus: {
      // log(1 + e^u) computed without overflow; derivative σ(u)
      const Scalar e = std::exp(-std::abs(u));
      *dg = u >= Scalar(0) ? Scalar(1) / (Scalar(1) + e) : e / (Scalar(1) + e);
      return std::max(u, Scalar(0)) + std::log1p(e);
    }
    case UnmixerActivation::EluPlusOne: {
      if (u > Scalar(0)) {
        *dg = Scalar(1);
        return u + Scalar(1);
      }
      const Scalar e = std::exp(u);
      *dg = e;
      return e;
    }
    case UnmixerActivation::Selu: {
      const Scalar s = static_cast<Scalar>(kSeluScale), a = static_cast<Scalar>(kSeluAlpha);
      if (u > Scalar(0)) {
        *dg = s;
        return s * u;
      }
      if (u == Scalar(0)) {
        *dg = Scalar(0);
        return Scalar(0);
      }
      const Scalar e = std::exp(u);
      // g = s a (e^u − 1) < 0 here, so |g| = s a (1 − e^u) and d|g|/du = −s a e^u
      *dg = -s * a * e;
      return s * a * (Scalar(1) - e);
    }
    case UnmixerActivation::ClampedExp: {
      if (u < clamp) {
        const Scalar e = std::exp(u);
        *dg = e;
        return e;
      }
      *dg = Scalar(0);
      return std::exp(clamp);
    }
  }
  *dg = Scalar(0);
  return Scalar(0);
}

}  // namespace ergo::sae::detail

// SPDX-License-Identifier: MIT
#pragma once

/// \file workspace.hpp
/// \brief Workspace: the preallocated buffers of an SAE training step, reused across steps.

#include "../core/bf16_gemm.hpp"
#include "../core/types.hpp"
#include "detail/sparse_codes.hpp"

#include <any>
#include <cstdint>
#include <memory>
#include <vector>

namespace ergo::sae {

namespace detail {

/// Buffers of the sparse kernels beyond the codes themselves (AuxK, the backward's row chunks).
template <class Scalar>
struct SparseStepBuffers {
  Matrix<Scalar> aux_target, aux_dhat;  ///< d × B: AuxK residual target and its decode grad
  /// 32 × B: one chunk of rows of u, ∂x̂ and AuxK's ∂ê, contiguous (the sparse backward; a
  /// shorter last chunk of len rows uses the first len · B values)
  Matrix<Scalar> u_rows, dxhat_rows, aux_rows;
  SparseCodes<Scalar> aux;              ///< AuxK active dead latents
  std::vector<std::int32_t> dead_list;  ///< AuxK dead latent indices
  bool aux_active = false;              ///< AuxK entries were produced for the last batch
};

}  // namespace detail

/// \brief Default density below which the elementwise architectures (ReLU-L1, JumpReLU,
/// p-annealing) take the sparse backward pass: the share of the m × B code entries that need a
/// gradient (detail/elementwise_step.hpp). Measured crossover of the two paths at the
/// reference shape (docs/sae.md, "Activation-sparse steps").
inline constexpr double kDefaultSparseKernelDensity = 0.08;

/// \brief Preallocated buffers of a training step (reused across steps; allocated on the first
/// step and whenever the batch size changes). Opaque to users: pass the same one every step.
///
/// The shared buffers below serve every architecture; an architecture keeps whatever else it
/// needs (the Structured SAE's dense branch, the Unmixer's normalisation statistics, BatchTopK's
/// selection candidates) in its own buffer type, reached through buffers<T>().
template <class Scalar>
struct Workspace {
  Index batch = -1;                   ///< batch size the buffers were sized for
  Matrix<Scalar> u, xhat, dxhat;      ///< d × B: centred input, reconstruction, ∂L/∂x̂
  Matrix<Scalar> h, z, dz;            ///< m × B: pre-activations, codes, ∂L/∂z (as needed)
  std::vector<char> fired;            ///< m: latent fired (> 0) in the last batch
  std::vector<Scalar> scratch;        ///< per-thread accumulators and gather buffers
  detail::SparseCodes<Scalar> codes;  ///< active latents of the batch (sparse kernels)
  double min_positive = 0.0;          ///< smallest selected positive code (sparse kernels)
  Index step = 0;                     ///< the trainer's step (0-based), for the after-step hooks
  /// Elementwise architectures: run the sparse kernels when fewer than this share of the m × B
  /// entries need a gradient (0: always dense; above 1: always sparse). The trainer sets it from
  /// TrainerParams::sparse_kernel_density.
  double sparse_kernel_density = kDefaultSparseKernelDensity;
  bool sparse_path = false;  ///< the last elementwise step took the sparse path
  /// bf16 GEMMs (float SAEs only): when set, the step's encoder and decoder GEMMs run through it
  /// (detail::gemm). The trainer sets it from TrainerParams::bf16_gemm.
  std::shared_ptr<Bf16Gemm> bf16;
  detail::SparseStepBuffers<Scalar> sparse;  ///< AuxK and sparse-gradient buffers

  /// \brief The architecture's own buffers of type T (default-constructed on first use, and
  /// again if the workspace last served an architecture with another buffer type).
  template <class T>
  T& buffers() {
    if (T* p = std::any_cast<T>(&m_arch)) return *p;
    return m_arch.emplace<T>();
  }

 private:
  std::any m_arch;
};

}  // namespace ergo::sae

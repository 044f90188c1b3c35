// SPDX-License-Identifier: MIT
#pragma once

/// \file loss.hpp
/// \brief The per-step weights of an SAE's loss terms (set by the trainer from its schedules) and
/// the values of those terms for one batch.

#include "../core/communicator.hpp"
#include "../core/types.hpp"

#include <vector>

namespace ergo::sae {

/// \brief This rank's part of a data-parallel global batch. Set by the Trainer when its
/// Communicator has more than one rank; the steps whose loss couples samples (BatchTopK's
/// batch-wide selection, AuxK's normalisation) use it to reduce across ranks. With comm ==
/// nullptr (one process) the batch is the whole batch.
struct BatchShare {
  const Communicator* comm = nullptr;  ///< the ranks sharing the global batch (nullptr: none)
  Index offset = 0;                    ///< global index of this rank's first sample
  Index total = 0;                     ///< global batch size (sum of every rank's share)
  /// True when the batch is one rank's share of a larger global batch.
  bool distributed() const { return comm != nullptr && comm->size() > 1; }
};

/// \brief Per-step weights of the loss terms (set by the Trainer from its schedules).
struct LossWeights {
  double sparsity = 0.0;  ///< λ_t: L1 / L0 / L_p / g-penalty coefficient (after warm-up), >= 0
  double p = 1.0;         ///< current exponent of the L_p^p penalty (PAnneal, Structured), (0, 1]
  double nuclear = 0.0;   ///< γ: nuclear-norm weight of the Structured dense branch, >= 0
  double aux = 0.0;       ///< α: AuxK weight (architectures with AuxK); 0 disables AuxK
  Index aux_k = 0;        ///< AuxK k_aux (> 0 when aux > 0)
  const std::vector<char>* dead = nullptr;  ///< per-latent dead flags for AuxK (size m)
  BatchShare share;  ///< data-parallel context (docs/scale.md); empty in one process
};

/// \brief The value of each loss term for one batch (averaged over its B samples).
struct LossTerms {
  double total = 0.0;           ///< the optimised objective
  double reconstruction = 0.0;  ///< (1/B) Σ_b ‖x_b − x̂_b‖²
  double sparsity = 0.0;        ///< weighted penalty (λ_t · ...)
  double nuclear = 0.0;         ///< (γ/√B) ‖R‖_* (Structured)
  double aux = 0.0;             ///< α · L_aux
  double l0 = 0.0;              ///< mean number of non-zero codes per sample (S for Structured)
  double batch_variance = 0.0;  ///< (1/B) Σ_b ‖x_b − x̄‖² (batch mean x̄), for a batch FVU
};

}  // namespace ergo::sae

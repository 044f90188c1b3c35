// SPDX-License-Identifier: MIT
#pragma once

/// \file sae.hpp
/// \brief ergo::sae — sparse autoencoders: ReLU-L1, TopK, BatchTopK, JumpReLU, p-annealing, the
/// paper's structured SAE (z = S + R, nuclear-norm dense branch) and the ConCA linear unmixer;
/// the SAE trainer; reconstruction, dictionary-recovery and concept-alignment metrics; and
/// planted sparse-feature data. Depends on core and nn (optimizers, schedules) only.

#include "core.hpp"
#include "sae/evaluate.hpp"
#include "sae/params.hpp"
#include "sae/sparse_autoencoder.hpp"
#include "sae/synthetic.hpp"
#include "sae/trainer.hpp"

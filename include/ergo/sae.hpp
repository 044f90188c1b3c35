// SPDX-License-Identifier: MIT
#pragma once

/// \file sae.hpp
/// \brief ergo::sae — sparse autoencoders: ReLU-L1, TopK, BatchTopK, JumpReLU, p-annealing, the
/// paper's structured SAE (z = S + R, nuclear-norm dense branch) and the ConCA linear unmixer,
/// each one header in sae/arch/ registered in sae/registry.hpp; the SAE trainer; reconstruction,
/// dictionary-recovery and concept-alignment metrics; planted sparse-feature data; saving and
/// loading (native and SAELens files). Depends on core, nn (optimizers, schedules), identify
/// (assignment, correlation, probe) and io (file layouts). Also: the permutation null of the
/// concept-alignment score and the counterfactual-pair protocol (probes on pairs, features
/// scored against them).

#include "core.hpp"
#include "sae/activation.hpp"
#include "sae/alignment_null.hpp"
#include "sae/counterfactual.hpp"
#include "sae/evaluate.hpp"
#include "sae/params.hpp"
#include "sae/penalty.hpp"
#include "sae/registry.hpp"
#include "sae/serialize.hpp"
#include "sae/sparse_autoencoder.hpp"
#include "sae/synthetic.hpp"
#include "sae/trainer.hpp"
#include "sae/training_check.hpp"

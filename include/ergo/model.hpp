// SPDX-License-Identifier: MIT
#pragma once

/// \file model.hpp
/// \brief ergo::model — latent discrete-concept worlds: ConceptGraph, ConceptModel, Emission,
/// ConceptWorld (sampling and exact batched inference), make_paper_world, counterfactual pairs.

#include "core.hpp"
#include "model/concept_graph.hpp"
#include "model/concept_model.hpp"
#include "model/concept_world.hpp"
#include "model/counterfactual.hpp"
#include "model/emission.hpp"

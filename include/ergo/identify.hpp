// SPDX-License-Identifier: MIT
#pragma once

/// \file identify.hpp
/// \brief ergo::identify — does a representation F (d × N) determine targets T (k × N) up to an
/// invertible affine map? Target transforms of log-posteriors, ridge fits with cross-validated
/// penalties, CCA, correlations and MCC with an optimal rectangular assignment, resampling
/// (grouped splits, permutation nulls, bootstrap), the IdentifiabilityReport with its verdict
/// and JSON/CSV output, logistic probes (LBFGS++), the counterfactual A_s W_s test, and
/// comparisons across seeds (paired differences, sign test, TOST equivalence).
///
/// Samples are columns throughout. Statistics are computed in double; inputs may be float.
/// See docs/identify.md.

#include "core.hpp"
#include "identify/assignment.hpp"
#include "identify/cca.hpp"
#include "identify/comparison.hpp"
#include "identify/concept_directions.hpp"
#include "identify/correlation.hpp"
#include "identify/probe.hpp"
#include "identify/report.hpp"
#include "identify/resampling.hpp"
#include "identify/ridge.hpp"
#include "identify/streaming.hpp"
#include "identify/targets.hpp"

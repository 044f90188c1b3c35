// SPDX-License-Identifier: MIT
#pragma once

/// \file theory.hpp
/// \brief ergo::theory — Theorem 3.1's objects computed exactly for a concept world and an
/// unembedding: L, L̂, the diversity test, A = pinv(L̂ᵀ) Lᵀ, b, the residual h_y(x), the
/// theory-predicted representation, and the per-concept lifting B_k / Ã_k = A B_k of
/// Corollary 4.2; the exact Bayes predictor as a representation and unembedding (bayes.hpp), and
/// the parameter-free comparison of a representation with the theorem (TheoremFit). See
/// docs/theory.md.

#include "core.hpp"
#include "model.hpp"
#include "theory/bayes.hpp"
#include "theory/lifting.hpp"
#include "theory/theorem.hpp"

// SPDX-License-Identifier: MIT
#pragma once

/// \file bayes.hpp
/// \brief The exact Bayes-optimal next-token predictor of a concept world written as a
/// representation and an unembedding, so that it can be compared with a learned f_x and fed to
/// IdentifiabilityTheory like any other predictor.
///
/// Any predictor p(y|x) = softmax_y(f_x(x)ᵀ f_y(y)) is determined by its centred logits. The
/// smallest exact form of the Bayes predictor takes the Helmert basis H of the sum-zero subspace of
/// ℝ^|V| (|V| × (|V|−1), orthonormal columns orthogonal to 1; `helmert_basis`) and sets
///
///     f*_x(x) = Hᵀ log p(y|x)  ∈ ℝ^{|V|−1},      f*_y(y) = row y of H  (unembedding U* = Hᵀ),
///
/// so that U*ᵀ f*_x(x) = H Hᵀ log p(y|x) is log p(y|x) centred over the tokens and the softmax
/// returns p(y|x) exactly. The representation is parameter-free (nothing is fitted) and every
/// Bayes-optimal predictor of width d ≥ |V| − 1 is an affine image of it on the contexts: a
/// learned f_x that has reached the Bayes cross-entropy has canonical correlations 1 with f*_x.
/// With |V| = ℓ + 1 (the paper's diversity setting) the width is d = ℓ and L̂ is square.
///
/// \code
/// ergo::Matrix<double> F_star = ergo::theory::bayes_representation(world, x);   // (|V|−1) × N
/// ergo::theory::IdentifiabilityTheory<double> th(world,
/// ergo::theory::bayes_unembedding(world.vocab_size())); ergo::theory::TheoremFit fit =
/// th.assess(x, F_star);     // r2_exact == 1 to rounding \endcode

#include "../core/error.hpp"
#include "../core/logspace.hpp"
#include "../core/types.hpp"
#include "../model/concept_world.hpp"

namespace ergo::theory {

/// \brief The unembedding of the Bayes representation: U* = Hᵀ, (|V|−1) × |V| (column y is
/// f*_y(y)). \param vocab |V| >= 2
inline Matrix<double> bayes_unembedding(Index vocab) {
  check_arg(vocab >= 2, "bayes_unembedding", "vocab", "at least 2 tokens", vocab);
  return helmert_basis(vocab).transpose();
}

/// \brief The Bayes representation f*_x(x) = Hᵀ log p(y|x) of contexts x: (|V|−1) × N.
/// \param world the concept world \param x n × N contexts (as for
/// model::ConceptWorld::log_posterior)
template <class Scalar>
Matrix<double> bayes_representation(const model::ConceptWorld<Scalar>& world, const IntMatrix& x) {
  const Matrix<double> lp = world.log_predictive(x).template cast<double>();
  check_finite("bayes_representation", "log p(y|x) (use a token emission with full support)", lp);
  return helmert_basis(world.vocab_size()).transpose() * lp;
}

}  // namespace ergo::theory

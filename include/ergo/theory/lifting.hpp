// SPDX-License-Identifier: MIT
#pragma once

/// \file lifting.hpp
/// \brief The per-concept lifting matrix B_k of Corollary 4.2: it broadcasts concept k's
/// posterior over its |V_k| values to all ℓ joint configurations.
///
/// B_k ∈ {0, 1}^{ℓ × |V_k|} with B_k[i, v] = 1 iff configuration c_i has c_k = v (Corollary 4.2;
/// docs/theory.md, "Corollary 4.2"). With it the joint log-posterior of a context whose concepts
/// are nearly determined and independent is ≈ Σ_k B_k log p(c_k | x), and the theorem's map A acts
/// on concept k through Ã_k = A B_k (d × |V_k|): f_x(x₁) − f_x(x₀) ≈ Ã_k (log p(c_k|x₁) − log
/// p(c_k|x₀)) for contexts that differ only in concept k.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../model/concept_model.hpp"

#include <Eigen/Core>

namespace ergo::theory {

/// \brief B_k for concept k of a concept model.
/// \param model the concept model (its configs() give every configuration's values)
/// \param k concept index in [0, m)
/// \return ℓ × |V_k| 0/1 matrix; every row has exactly one 1
template <class Scalar>
Matrix<double> lifting_matrix(const model::ConceptModel<Scalar>& model, Index k) {
  check_arg(k >= 0 && k < model.size(), "lifting_matrix", "k",
            detail::str_cat("a concept index in [0, ", model.size(), ")"), k);
  const Index l = model.joint_size(), card = model.graph().cardinality(k);
  Matrix<double> b = Matrix<double>::Zero(l, card);
  for (Index i = 0; i < l; ++i) b(i, model.configs()(k, i)) = 1.0;
  return b;
}

}  // namespace ergo::theory

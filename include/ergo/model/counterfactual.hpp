// SPDX-License-Identifier: MIT
#pragma once

/// \file counterfactual.hpp
/// \brief Counterfactual pairs from a ConceptWorld (docs/model.md, "Counterfactual pairs"): two
/// contexts whose concepts differ in exactly one binary concept c_k, the other concepts held at
/// the same values, each context drawn afresh from p(x | c) — the simulated version of the
/// paper's pairs of words that differ in one concept (§4, §5.1), on which supervised concept
/// extractors are trained.
///
/// \code
/// ergo::Rng rng(1);
/// auto world = ergo::model::make_paper_world<double>({}, rng);
/// ergo::model::CounterfactualPairs cp = ergo::model::sample_counterfactual_pairs(world, 500, rng);
/// // cp.samples.c / .x / .y: 2·500·m samples; cp.pairs: 3 × (500·m) columns (base, cf, concept)
/// \endcode

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "concept_world.hpp"

#include <vector>

namespace ergo::model {

/// \brief Concept values with concept k set to `value` in every column (the intervention on c_k
/// alone: the other concepts keep their values; descendants are *not* resampled, so the two
/// sides of a pair differ in c_k only). \param c m × N \return m × N
inline IntMatrix set_concept(const IntMatrix& c, Index k, Index value) {
  check_range("set_concept", "k", k, Index(0), c.rows() - 1);
  IntMatrix out = c;
  out.row(k).setConstant(static_cast<std::int32_t>(value));
  return out;
}

/// \brief Contexts and tokens drawn for given concept values: x ~ p(x | c), y ~ p(y | c).
/// \param c m × N concept values (each in [0, |V_k|)) \return Samples with c, x (n × N), y (1 × N)
template <class Scalar>
Samples sample_given_concepts(const ConceptWorld<Scalar>& world, const IntMatrix& c, Rng& rng) {
  const char* who = "sample_given_concepts";
  check_shape(who, "c", c, world.concept_count(), -1);
  for (Index k = 0; k < c.rows(); ++k)
    for (Index j = 0; j < c.cols(); ++j)
      if (c(k, j) < 0 || c(k, j) >= world.graph().cardinality(k))
        throw_invalid(who, "c",
                      ergo::detail::str_cat("values of concept ", k, " in [0, ",
                                            world.graph().cardinality(k), ")"),
                      ergo::detail::str_cat(c(k, j), " at column ", j));
  Samples s;
  s.c = c;
  const IntRowVector joint = world.prior().joint_indices(c);
  s.x = world.x_emission().sample(joint, rng);
  s.y = world.y_emission().sample(joint, rng).row(0);
  return s;
}

/// \brief Counterfactual pairs and the samples they index (sample_counterfactual_pairs).
struct CounterfactualPairs {
  Samples samples;  ///< every context of every pair (columns)
  /// 3 × P: column q = (base index, counterfactual index, concept k) into `samples`; the base has
  /// c_k = 1 and the counterfactual c_k = 0, every other concept equal.
  IntMatrix pairs;
};

/// \brief For each binary concept k in `concepts` (default: all), `pairs_per_concept` pairs: c is
/// drawn from the prior p(c), the two sides are c with c_k = 1 (base) and c with c_k = 0
/// (counterfactual), and each side's x and y are drawn from p(· | c) independently. Within a
/// concept's pairs, c_k is therefore 1/2 on each side and independent of the other concepts,
/// whose joint law is the prior's marginal p(c_{−k}). Samples are stored pair by pair (base at
/// column 2q, counterfactual at 2q + 1).
/// \throws InvalidArgument if a chosen concept is not binary, or pairs_per_concept < 1
template <class Scalar>
CounterfactualPairs sample_counterfactual_pairs(const ConceptWorld<Scalar>& world,
                                                Index pairs_per_concept, Rng& rng,
                                                std::vector<Index> concepts = {}) {
  const char* who = "sample_counterfactual_pairs";
  check_arg(pairs_per_concept >= 1, who, "pairs_per_concept", ">= 1", pairs_per_concept);
  const Index m = world.concept_count();
  if (concepts.empty())
    for (Index k = 0; k < m; ++k) concepts.push_back(k);
  for (Index k : concepts) {
    check_range(who, "concepts", k, Index(0), m - 1);
    check_arg(
        world.graph().cardinality(k) == 2, who, "concepts", "binary concepts",
        ergo::detail::str_cat("concept ", k, " with ", world.graph().cardinality(k), " values"));
  }
  const Index n = pairs_per_concept, P = n * static_cast<Index>(concepts.size());
  IntMatrix c(m, 2 * P);
  CounterfactualPairs out;
  out.pairs.resize(3, P);
  Index q = 0;
  for (Index k : concepts) {
    const IntMatrix base = world.prior().sample(n, rng);
    const IntMatrix on = set_concept(base, k, 1), off = set_concept(base, k, 0);
    for (Index i = 0; i < n; ++i, ++q) {
      c.col(2 * q) = on.col(i);
      c.col(2 * q + 1) = off.col(i);
      out.pairs(0, q) = static_cast<std::int32_t>(2 * q);
      out.pairs(1, q) = static_cast<std::int32_t>(2 * q + 1);
      out.pairs(2, q) = static_cast<std::int32_t>(k);
    }
  }
  out.samples = sample_given_concepts(world, c, rng);
  return out;
}

}  // namespace ergo::model

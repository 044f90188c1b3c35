// SPDX-License-Identifier: MIT
#pragma once

/// \file concept_directions.hpp
/// \brief Counterfactual concept directions and the A_s W_s test of Corollary 4.3.
///
/// Procedure (the paper's §4 and its authors' released code; docs/identify.md): for each concept
/// s with counterfactual pairs (base_i, target_i) of representations,
/// - the concept direction a_s = unit( mean_i (base_i − target_i) );
/// - the probe weight w_s = unit( w ) of an L2 logistic regression separating the bases (label 1)
///   from the targets (label 0);
/// - G = A_s W_s (S × S, G_rs = a_rᵀ w_s), with A_s stacking the a_s as rows and W_s the w_s as
///   columns. Theory predicts G ≈ I: a high mean diagonal and a low mean |off-diagonal|;
/// - ‖A W − P_S‖_F with A = A_sᵀ (d × S), W = W_sᵀ (S × d) and P_S = A (AᵀA)⁺ Aᵀ the projector
///   onto the concept subspace (0 when every w_s equals a_s and the a_s are orthonormal).
///
/// Two controls the published code only had commented out, implemented properly here:
/// - a permuted-label null: the base/target labels are shuffled within each concept before the
///   probe is fitted (B times), giving the null distribution of the mean diagonal;
/// - a real hold-out: the pairs of each concept are split in two halves at random; directions
///   come from one half and probes from the other (the original hold-out used one pair only).
///
/// Caution on the regularisation strength: as C → 0 the L2-logistic weight tends to the
/// difference of the class means, i.e. to a_s itself, so with a tiny C (the paper used 1e-4 on
/// Pythia embeddings) the in-sample diagonal of G approaches 1 by construction. The hold-out and
/// the null are what make the statistic informative.
///
/// Shapes: every base/target block is d × n_s (column i of base pairs with column i of target).
///
/// \code
/// std::vector<ergo::identify::ConceptPairs> pairs = {{"male-female", B0, T0}, {"sing-plural", B1,
/// T1}}; ergo::identify::ConceptDirectionResult r = ergo::identify::concept_direction_test(pairs,
/// {});
/// // r.g (S × S), r.mean_diagonal, r.mean_abs_off_diagonal, r.frobenius, r.null_mean_diagonal
/// \endcode

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "probe.hpp"
#include "resampling.hpp"

#include <Eigen/Core>
#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace ergo::identify {

/// \brief Counterfactual pairs of one concept: column i of `base` and of `target` (both d × n)
/// are representations of the two sides of pair i.
struct ConceptPairs {
  std::string name;       ///< label, e.g. "male-female"
  Matrix<double> base;    ///< d × n representations of the base words
  Matrix<double> target;  ///< d × n representations of the target words
};

/// \brief Settings of concept_direction_test.
struct ConceptDirectionParams {
  /// Probe settings. Default C = 1 (see the caution in the file comment about small C).
  LogisticParams probe = {};
  /// Permutations for the permuted-label null (0 disables). Default 100.
  Index n_permutations = 100;
  /// Compute the split-half hold-out (needs ≥ 2 pairs per concept). Default true.
  bool holdout = true;
  /// Seed of the null and hold-out randomness.
  std::uint64_t seed = 0;

  void check() const {
    probe.check();
    check_arg(n_permutations >= 0, "ConceptDirectionParams::check", "n_permutations",
              "a value >= 0", n_permutations);
  }
};

/// \brief Summary statistics of G = A_s W_s.
struct AsWsStatistics {
  Matrix<double> g;                    ///< S × S, G_rs = a_rᵀ w_s
  double mean_diagonal = 0.0;          ///< mean of G_ss
  double mean_abs_off_diagonal = 0.0;  ///< mean of |G_rs|, r ≠ s (0 when S = 1)
  double frobenius = 0.0;              ///< ‖A W − P_S‖_F
};

/// \brief G, its diagonal and off-diagonal means and ‖A W − P_S‖_F.
/// \param directions d × S unit columns a_s \param probes d × S unit columns w_s
inline AsWsStatistics as_ws_statistics(const Matrix<double>& directions,
                                       const Matrix<double>& probes) {
  check_shape("as_ws_statistics", "probes", probes, directions.rows(), directions.cols());
  const Index s = directions.cols();
  AsWsStatistics r;
  r.g = directions.transpose() * probes;
  r.mean_diagonal = s > 0 ? r.g.diagonal().mean() : 0.0;
  if (s > 1)
    r.mean_abs_off_diagonal =
        (r.g.cwiseAbs().sum() - r.g.diagonal().cwiseAbs().sum()) / static_cast<double>(s * (s - 1));
  // P_S = A (AᵀA)⁺ Aᵀ = U Uᵀ over A's numerical range (thin SVD).
  Eigen::JacobiSVD<Matrix<double>> svd(directions, Eigen::ComputeThinU);
  const auto& sv = svd.singularValues();
  const double tol = static_cast<double>(std::max(directions.rows(), directions.cols())) *
                     ScalarTraits<double>::eps() * (sv.size() ? sv[0] : 0.0);
  Index rank = 0;
  for (Index i = 0; i < sv.size(); ++i)
    if (sv[i] > tol) ++rank;
  const Matrix<double> u = svd.matrixU().leftCols(rank);
  Matrix<double> diff = directions * probes.transpose();
  diff.noalias() -= u * u.transpose();
  r.frobenius = diff.norm();
  return r;
}

/// \brief Unit mean difference of paired columns: unit(mean(base − target)).
/// \param base d × n \param target d × n \return d-vector (zero if the mean difference is 0)
template <class DB, class DT>
Vector<double> concept_direction(const Eigen::MatrixBase<DB>& base,
                                 const Eigen::MatrixBase<DT>& target) {
  check_shape("concept_direction", "target", target, base.rows(), base.cols());
  check_arg(base.cols() >= 1, "concept_direction", "base", "at least one pair", base.cols());
  Vector<double> a =
      (base.template cast<double>() - target.template cast<double>()).rowwise().mean();
  const double n = a.norm();
  if (n > 0.0) a /= n;
  return a;
}

/// \brief Unit logistic weight separating `pos` (label 1) from `neg` (label 0).
/// \param pos d × n1 \param neg d × n0 \param labels_perm optional permutation of the 1+0 labels
/// (for the null; size n1 + n0) \return d-vector
inline Vector<double> probe_direction(const Matrix<double>& pos, const Matrix<double>& neg,
                                      const LogisticParams& params,
                                      const IndexVector* labels_perm = nullptr) {
  check_arg(pos.rows() == neg.rows(), "probe_direction", "neg",
            ergo::detail::str_cat(pos.rows(), " rows"), neg.rows());
  Matrix<double> x(pos.rows(), pos.cols() + neg.cols());
  x << pos, neg;
  IntRowVector y(x.cols());
  for (Index i = 0; i < x.cols(); ++i) y[i] = i < pos.cols() ? 1 : 0;
  if (labels_perm) {
    const IntRowVector y0 = y;
    for (Index i = 0; i < y.size(); ++i) y[i] = y0[(*labels_perm)[i]];
  }
  LogisticRegression probe(params);
  probe.fit(x, y, 2);
  Vector<double> w = probe.weights().row(0).transpose();
  const double n = w.norm();
  if (n > 0.0) w /= n;
  return w;
}

/// \brief Everything the A_s W_s test reports.
struct ConceptDirectionResult {
  std::vector<std::string> names;  ///< S concept names
  Matrix<double> directions;       ///< d × S unit directions a_s (all pairs)
  Matrix<double> probe_weights;    ///< d × S unit probe weights w_s (all pairs)
  Vector<double> probe_accuracy;   ///< S in-sample probe accuracies (bases vs targets)
  AsWsStatistics all;              ///< G = A_s W_s with directions and probes from all pairs
  /// Permuted-label null of the mean diagonal (observed = all.mean_diagonal; larger is better).
  NullSummary null_mean_diagonal;
  /// Permuted-label null of ‖A W − P_S‖_F (smaller is better; p-value counts null ≤ observed).
  NullSummary null_frobenius;
  bool has_holdout = false;  ///< true if the split-half hold-out was computed
  AsWsStatistics holdout;    ///< directions from one half of the pairs, probes from the other
};

/// \brief Runs the A_s W_s test on S concepts (see the file comment).
/// \param concepts S ≥ 1 concepts, each with n_s ≥ 1 pairs of d-dimensional representations
inline ConceptDirectionResult concept_direction_test(const std::vector<ConceptPairs>& concepts,
                                                     const ConceptDirectionParams& params = {}) {
  const char* who = "concept_direction_test";
  params.check();
  check_arg(!concepts.empty(), who, "concepts", "at least one concept", 0);
  const Index d = concepts[0].base.rows();
  const Index s = static_cast<Index>(concepts.size());
  for (size_t c = 0; c < concepts.size(); ++c) {
    const auto& cp = concepts[c];
    check_arg(cp.base.rows() == d && cp.base.cols() >= 1, who,
              ergo::detail::str_cat("concepts[", c, "].base"),
              ergo::detail::str_cat(d, " x n, n >= 1"),
              ergo::detail::str_cat(cp.base.rows(), " x ", cp.base.cols()));
    check_shape(who, ergo::detail::str_cat("concepts[", c, "].target"), cp.target, d,
                cp.base.cols());
    check_finite(who, ergo::detail::str_cat("concepts[", c, "].base"), cp.base);
    check_finite(who, ergo::detail::str_cat("concepts[", c, "].target"), cp.target);
  }
  ConceptDirectionResult r;
  r.directions.resize(d, s);
  r.probe_weights.resize(d, s);
  r.probe_accuracy.resize(s);
  for (Index c = 0; c < s; ++c) {
    const auto& cp = concepts[static_cast<size_t>(c)];
    r.names.push_back(cp.name);
    r.directions.col(c) = concept_direction(cp.base, cp.target);
    Matrix<double> x(d, 2 * cp.base.cols());
    x << cp.base, cp.target;
    IntRowVector y(x.cols());
    for (Index i = 0; i < x.cols(); ++i) y[i] = i < cp.base.cols() ? 1 : 0;
    LogisticRegression probe(params.probe);
    probe.fit(x, y, 2);
    Vector<double> w = probe.weights().row(0).transpose();
    if (w.norm() > 0.0) w /= w.norm();
    r.probe_weights.col(c) = w;
    r.probe_accuracy[c] = probe.accuracy(x, y);
  }
  r.all = as_ws_statistics(r.directions, r.probe_weights);

  if (params.n_permutations > 0) {
    Rng rng(derive_seed(params.seed, 1));
    std::vector<double> null_diag, null_frob;
    Matrix<double> wn(d, s);
    for (Index b = 0; b < params.n_permutations; ++b) {
      for (Index c = 0; c < s; ++c) {
        const auto& cp = concepts[static_cast<size_t>(c)];
        const IndexVector perm = rng.permutation(2 * cp.base.cols());
        wn.col(c) = probe_direction(cp.base, cp.target, params.probe, &perm);
      }
      const AsWsStatistics st = as_ws_statistics(r.directions, wn);
      null_diag.push_back(st.mean_diagonal);
      null_frob.push_back(st.frobenius);
    }
    r.null_mean_diagonal = summarize_null(r.all.mean_diagonal, null_diag, true);
    r.null_frobenius = summarize_null(r.all.frobenius, null_frob, false);
  }

  if (params.holdout) {
    bool ok = true;
    for (const auto& cp : concepts) ok = ok && cp.base.cols() >= 2;
    if (ok) {
      Rng rng(derive_seed(params.seed, 2));
      Matrix<double> dir(d, s), prb(d, s);
      for (Index c = 0; c < s; ++c) {
        const auto& cp = concepts[static_cast<size_t>(c)];
        const Index n = cp.base.cols();
        const IndexVector perm = rng.permutation(n);
        const Index half = n / 2;
        const IndexVector first = perm.head(half), second = perm.tail(n - half);
        dir.col(c) =
            concept_direction(gather_columns(cp.base, first), gather_columns(cp.target, first));
        prb.col(c) = probe_direction(gather_columns(cp.base, second),
                                     gather_columns(cp.target, second), params.probe);
      }
      r.holdout = as_ws_statistics(dir, prb);
      r.has_holdout = true;
    }
  }
  return r;
}

}  // namespace ergo::identify

// SPDX-License-Identifier: MIT
#pragma once

/// \file counterfactual.hpp
/// \brief The paper's SAE protocol end to end (Liu et al., §5.1–5.2; docs/sae.md, "Scoring
/// against counterfactual pairs"): supervised concept extractors trained on counterfactual pairs,
/// cross-fitted, then every SAE feature scored by Pearson(exp(z_i), p̂_k) on held-out samples,
/// with the best feature per concept, the extractor's own score as the upper bound, and a
/// permutation null of the max-over-features score.
///
/// Pairs: a 3 × P integer matrix, column q = (base index, counterfactual index, concept id k)
/// into the columns of the activations. The **base** is the side where the binary concept holds
/// (c_k = 1), the **counterfactual** the side where it does not (c_k = 0); the two should differ
/// in c_k only. Concept ids are any non-negative integers (reported as given).
///
/// The probe of concept k (fit_pair_probes): an L2 logistic regression (identify::
/// LogisticRegression, features standardised on its training set, intercept unpenalised)
/// minimising (1/n) Σ log-loss + (l2/2)‖w‖² over the distinct samples of k's training pairs, with
/// label 1 on base samples and 0 on counterfactual samples. Cross-fitting: k's pairs are grouped
/// so that pairs sharing a sample stay together, the groups are split at random into `folds`
/// folds, and each sample's p̂_k = σ(logit) comes from the probe trained on the other folds.
///
/// \code
/// ergo::sae::CounterfactualParams cp;                       // 5 folds, 200 permutations
/// auto probes = ergo::sae::fit_pair_probes(X, pairs, cp);   // X d × N, pairs 3 × P
/// auto ev = ergo::sae::score_pair_features(sae.encode(X), probes, cp);
/// // ev.concepts[j]: feature, corr, null_p99, p_value, probe_label_corr, feature_label_corr
/// \endcode

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "../identify/correlation.hpp"
#include "../identify/probe.hpp"
#include "alignment_null.hpp"
#include "evaluate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <vector>

namespace ergo::sae {

/// \brief Settings of the counterfactual-pair evaluation.
struct CounterfactualParams {
  /// Cross-fitting folds over each concept's pairs (groups of pairs sharing a sample), ≥ 2; a
  /// concept with fewer groups uses as many folds as it has groups. Default 5.
  Index folds = 5;
  /// Ridge weight on the standardised probe coefficients, > 0. Default 1e-4.
  double l2 = 1e-4;
  /// Permutations of each concept's null, ≥ 1 (the 1 % threshold needs ≥ 99). Default 200.
  Index permutations = 200;
  /// LBFGS iterations of each probe fit, ≥ 1. Default 500.
  Index max_iterations = 500;
  /// Seed of the fold assignment and the permutations. Default 0.
  std::uint64_t seed = 0;

  void check() const {
    const char* who = "CounterfactualParams::check";
    check_arg(folds >= 2, who, "folds", "at least 2", folds);
    check_positive(who, "l2", l2);
    check_arg(permutations >= 1, who, "permutations", "at least 1", permutations);
    check_arg(max_iterations >= 1, who, "max_iterations", "at least 1", max_iterations);
  }
};

/// \brief The cross-fitted probe of one concept (fit_pair_probes).
struct PairProbe {
  Index concept_id = 0;
  Index pairs = 0;                ///< pairs of this concept
  Index folds = 0;                ///< folds used
  std::vector<Index> samples;     ///< distinct sample indices of its pairs, ascending
  std::vector<int> label;         ///< per sample: 1 = base side (c_k = 1), 0 = counterfactual
  RowVector<double> probability;  ///< per sample: held-out p̂_k (1 × samples)
  double accuracy = std::numeric_limits<double>::quiet_NaN();  ///< of p̂_k > 1/2 vs label
  /// Pearson(p̂_k, label) on held-out samples: the supervised extractor's score on the label
  /// scale, the upper bound for a feature's feature_label_corr.
  double label_corr = std::numeric_limits<double>::quiet_NaN();
  identify::LogisticRegression full;  ///< the probe refitted on all its pairs (for new data)
};

namespace detail {

inline IndexVector index_vector(const std::vector<Index>& v) {
  IndexVector out(static_cast<Index>(v.size()));
  for (size_t i = 0; i < v.size(); ++i) out[static_cast<Index>(i)] = v[i];
  return out;
}

inline Index find_root(std::map<Index, Index>& parent, Index a) {
  while (parent[a] != a) a = parent[a] = parent[parent[a]];
  return a;
}

/// The pairs of each concept id, validated against N samples: id → columns of `pairs`.
inline std::map<Index, std::vector<Index>> pairs_by_concept(const IntMatrix& pairs, Index N) {
  const char* who = "fit_pair_probes";
  check_arg(pairs.rows() == 3, who, "pairs", "3 rows (base, counterfactual, concept)",
            pairs.rows());
  check_arg(pairs.cols() >= 1, who, "pairs", "at least one pair", pairs.cols());
  std::map<Index, std::vector<Index>> out;
  for (Index q = 0; q < pairs.cols(); ++q) {
    const Index b = pairs(0, q), c = pairs(1, q), k = pairs(2, q);
    if (b < 0 || b >= N || c < 0 || c >= N)
      throw_invalid(who, "pairs", ergo::detail::str_cat("sample indices in [0, N = ", N, ")"),
                    ergo::detail::str_cat("(", b, ", ", c, ") in pair ", q));
    check_arg(b != c, who, "pairs", "two different samples per pair",
              ergo::detail::str_cat("sample ", b, " twice in pair ", q));
    check_arg(k >= 0, who, "pairs", "concept ids >= 0", ergo::detail::str_cat(k, " in pair ", q));
    out[k].push_back(q);
  }
  return out;
}

/// Distinct samples, labels and group ids of one concept's pairs (groups = connected components
/// of pairs sharing a sample). Throws if a sample is a base in one pair and a counterfactual in
/// another.
inline void concept_samples(const IntMatrix& pairs, const std::vector<Index>& cols, Index k,
                            std::vector<Index>& samples, std::vector<int>& label,
                            std::vector<Index>& group) {
  std::map<Index, Index> parent;
  std::map<Index, int> side;
  for (Index q : cols)
    for (int s = 0; s < 2; ++s) {
      const Index i = pairs(s, q);
      const int lab = s == 0 ? 1 : 0;
      const auto it = side.find(i);
      if (it != side.end() && it->second != lab)
        throw_invalid("fit_pair_probes", "pairs",
                      ergo::detail::str_cat("each sample on one side of concept ", k, "'s pairs"),
                      ergo::detail::str_cat("sample ", i, " both as base and as counterfactual"));
      side[i] = lab;
      parent.emplace(i, i);
    }
  for (Index q : cols) {
    const Index a = find_root(parent, pairs(0, q)), b = find_root(parent, pairs(1, q));
    if (a != b) parent[a] = b;
  }
  samples.clear();
  label.clear();
  group.clear();
  for (const auto& [i, lab] : side) {  // ascending sample index
    samples.push_back(i);
    label.push_back(lab);
    group.push_back(find_root(parent, i));
  }
}

}  // namespace detail

/// \brief Fits the cross-fitted probe of every concept id in `pairs` (see the file comment).
/// \param x d × N activations (finite) \param pairs 3 × P (base, counterfactual, concept)
/// \return one PairProbe per concept id, in increasing id order
template <class DX>
std::vector<PairProbe> fit_pair_probes(const Eigen::MatrixBase<DX>& x, const IntMatrix& pairs,
                                       const CounterfactualParams& params) {
  const char* who = "fit_pair_probes";
  params.check();
  check_arg(x.rows() >= 1 && x.cols() >= 2, who, "x", "a d × N matrix with N >= 2",
            ergo::detail::str_cat(x.rows(), " x ", x.cols()));
  const std::map<Index, std::vector<Index>> by = detail::pairs_by_concept(pairs, x.cols());
  std::vector<PairProbe> out;
  for (const auto& [k, cols] : by) {
    PairProbe pr;
    pr.concept_id = k;
    pr.pairs = static_cast<Index>(cols.size());
    std::vector<Index> group;
    detail::concept_samples(pairs, cols, k, pr.samples, pr.label, group);
    const Index n = static_cast<Index>(pr.samples.size());
    const Matrix<double> xk = identify::gather_columns(x, detail::index_vector(pr.samples));
    // groups → folds at random
    std::vector<Index> roots(group);
    std::sort(roots.begin(), roots.end());
    roots.erase(std::unique(roots.begin(), roots.end()), roots.end());
    check_arg(roots.size() >= 2, who, "pairs",
              ergo::detail::str_cat("at least 2 independent pairs of concept ", k), roots.size());
    Rng rng(derive_seed(params.seed, static_cast<std::uint64_t>(k)));
    rng.shuffle(roots);
    pr.folds = std::min<Index>(params.folds, static_cast<Index>(roots.size()));
    std::map<Index, Index> fold_of;
    for (size_t g = 0; g < roots.size(); ++g) fold_of[roots[g]] = static_cast<Index>(g) % pr.folds;
    IntVector y(n);
    for (Index i = 0; i < n; ++i) y[i] = pr.label[static_cast<size_t>(i)];
    auto fit = [&](const std::vector<Index>& tr) {
      identify::LogisticParams lp;
      lp.c = 1.0 / (params.l2 * static_cast<double>(tr.size()));
      lp.standardize = true;
      lp.max_iterations = params.max_iterations;
      identify::LogisticRegression probe(lp);
      const IndexVector idx = detail::index_vector(tr);
      IntVector ytr(idx.size());
      for (Index i = 0; i < idx.size(); ++i) ytr[i] = y[idx[i]];
      probe.fit(identify::gather_columns(xk, idx), ytr, 2);
      return probe;
    };
    pr.probability.resize(n);
    for (Index f = 0; f < pr.folds; ++f) {
      std::vector<Index> tr, te;
      for (Index i = 0; i < n; ++i)
        (fold_of[group[static_cast<size_t>(i)]] == f ? te : tr).push_back(i);
      const identify::LogisticRegression probe = fit(tr);
      const IndexVector tidx = detail::index_vector(te);
      const Matrix<double> p = probe.predict_proba(identify::gather_columns(xk, tidx));
      for (Index i = 0; i < tidx.size(); ++i) pr.probability[tidx[i]] = p(1, i);
    }
    Index hit = 0;
    for (Index i = 0; i < n; ++i) hit += (pr.probability[i] > 0.5) == (y[i] == 1) ? 1 : 0;
    pr.accuracy = static_cast<double>(hit) / static_cast<double>(n);
    pr.label_corr =
        identify::correlation_matrix(pr.probability, y.transpose().cast<double>())(0, 0);
    std::vector<Index> all(static_cast<size_t>(n));
    std::iota(all.begin(), all.end(), Index(0));
    pr.full = fit(all);
    out.push_back(std::move(pr));
  }
  return out;
}

/// \brief Score of one concept (score_pair_features).
struct PairConceptScore {
  Index concept_id = 0;
  Index pairs = 0, samples = 0;
  Index feature = -1;  ///< argmax_i Pearson(exp(z_i), p̂_k) over the concept's samples
  double corr = std::numeric_limits<double>::quiet_NaN();  ///< that maximum (the paper's score)
  Index feature_raw = -1;                                  ///< the same with z_i
  double corr_raw = std::numeric_limits<double>::quiet_NaN();
  /// Pearson(exp(z_feature), label): the best feature on the label scale
  double feature_label_corr = std::numeric_limits<double>::quiet_NaN();
  double probe_label_corr = std::numeric_limits<double>::quiet_NaN();  ///< the upper bound
  double probe_accuracy = std::numeric_limits<double>::quiet_NaN();
  Index permutations = 0;  ///< null: p̂_k permuted over the concept's samples
  double null_p95 = std::numeric_limits<double>::quiet_NaN();
  double null_p99 = std::numeric_limits<double>::quiet_NaN();
  double p_value = std::numeric_limits<double>::quiet_NaN();  ///< (1 + #null ≥ corr) / (B + 1)
  /// With exact posteriors: Pearson(p̂_k, p(c_k = 1 | x)) and Pearson(exp(z_feature), p(c_k = 1|x))
  double probe_exact_corr = std::numeric_limits<double>::quiet_NaN();
  double feature_exact_corr = std::numeric_limits<double>::quiet_NaN();
};

/// \brief Scores of every concept and their means over concepts.
struct PairEvaluation {
  std::vector<PairConceptScore> concepts;
  double mean_corr = 0, mean_null_p99 = 0, mean_feature_label_corr = 0, mean_probe_label_corr = 0;
};

/// \brief Scores the features z (m × N, the codes of the same N samples the probes were fitted
/// on) against the cross-fitted probes: per concept, over the concept's samples, the feature
/// with the largest Pearson(exp(z_i), p̂_k) (signed; exp as in concept_alignment), its
/// permutation null (alignment_null with `params.permutations`), its label correlation beside
/// the probe's, and — when `exact` (rows indexed by concept id, N columns: p(c_k = 1 | x)) is
/// given — both correlations with the exact posterior.
template <class DZ>
PairEvaluation score_pair_features(const Eigen::MatrixBase<DZ>& z,
                                   const std::vector<PairProbe>& probes,
                                   const CounterfactualParams& params,
                                   const Matrix<double>* exact = nullptr) {
  const char* who = "score_pair_features";
  params.check();
  PairEvaluation ev;
  Rng rng(derive_seed(params.seed, 0x6e756c6c));
  for (const PairProbe& pr : probes) {
    const Index n = static_cast<Index>(pr.samples.size());
    const IndexVector idx = detail::index_vector(pr.samples);
    check_arg(idx.maxCoeff() < z.cols(), who, "z",
              ergo::detail::str_cat("at least ", idx.maxCoeff() + 1, " columns"), z.cols());
    const Matrix<double> zk = identify::gather_columns(z, idx);
    PairConceptScore s;
    s.concept_id = pr.concept_id;
    s.pairs = pr.pairs;
    s.samples = n;
    s.probe_label_corr = pr.label_corr;
    s.probe_accuracy = pr.accuracy;
    const ConceptAlignment al = concept_alignment(zk, Matrix<double>(pr.probability));
    s.feature = al.exp_feature[0];
    s.corr = al.exp_corr[0];
    s.feature_raw = al.raw_feature[0];
    s.corr_raw = al.raw_corr[0];
    RowVector<double> lab(n);
    for (Index i = 0; i < n; ++i) lab[i] = pr.label[static_cast<size_t>(i)];
    const RowVector<double> ef = zk.row(s.feature).cwiseMin(700.0).array().exp().matrix();
    s.feature_label_corr = identify::correlation_matrix(ef, lab)(0, 0);
    const AlignmentNull null =
        alignment_null(zk, Matrix<double>(pr.probability), params.permutations, rng);
    s.permutations = params.permutations;
    s.null_p95 = null.p95[0];
    s.null_p99 = null.p99[0];
    s.p_value = null.p_value(0, s.corr);
    if (exact != nullptr) {
      check_arg(exact->rows() > pr.concept_id && exact->cols() == z.cols(), who, "exact",
                ergo::detail::str_cat("a matrix with > ", pr.concept_id, " rows and ", z.cols(),
                                      " columns"),
                ergo::detail::str_cat(exact->rows(), " x ", exact->cols()));
      RowVector<double> pk(n);
      for (Index i = 0; i < n; ++i) pk[i] = (*exact)(pr.concept_id, idx[i]);
      s.probe_exact_corr = identify::correlation_matrix(pr.probability, pk)(0, 0);
      s.feature_exact_corr = identify::correlation_matrix(ef, pk)(0, 0);
    }
    ev.concepts.push_back(s);
  }
  const double K = static_cast<double>(std::max<size_t>(1, ev.concepts.size()));
  for (const PairConceptScore& s : ev.concepts) {
    ev.mean_corr += s.corr / K;
    ev.mean_null_p99 += s.null_p99 / K;
    ev.mean_feature_label_corr += s.feature_label_corr / K;
    ev.mean_probe_label_corr += s.probe_label_corr / K;
  }
  return ev;
}

}  // namespace ergo::sae

// SPDX-License-Identifier: MIT
#pragma once

/// \file evaluate.hpp
/// \brief SAE metrics: reconstruction (MSE, FVU with a stated definition, cosine, L0, dead and
/// dense fractions), dictionary and code MCC against a ground truth (rectangular assignment),
/// concept alignment as in the paper (best feature per concept by Pearson correlation of exp(z_i)
/// and of z_i with p(c_k|x)), and the supervised linear probe's score as the upper bound.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../identify/assignment.hpp"
#include "../identify/correlation.hpp"
#include "../identify/probe.hpp"
#include "sparse_autoencoder.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ergo::sae {

/// \brief Reconstruction and sparsity metrics of an SAE on an evaluation set.
///
/// Definitions (x̄ = mean of the whole evaluation set, N samples, d dimensions):
/// - mse = (1/(N d)) Σ_b ‖x_b − x̂_b‖² (per element; independent of the batch size);
/// - sse = (1/N) Σ_b ‖x_b − x̂_b‖² (per sample, the training reconstruction term);
/// - total_variance = (1/N) Σ_b ‖x_b − x̄‖² (variance about the mean, summed over dimensions);
/// - fvu = sse / total_variance: fraction of variance unexplained, the ratio of the two sums
///   over the whole set (equivalently, both averaged over dimensions); explained_variance =
///   1 − fvu. Neither per-batch means nor variance about zero are used (cf. the SAELens/SAEBench
///   pitfalls, docs/sae.md "Main functions");
/// - cosine = (1/N) Σ_b cos(x_b, x̂_b) (samples with a zero vector are skipped);
/// - l2_ratio = (1/N) Σ_b ‖x̂_b‖ / ‖x_b‖; relative_bias = E‖x̂‖² / E⟨x, x̂⟩ (1 = unbiased);
/// - l0 = mean number of non-zero codes per sample (the sparse branch S for Structured);
/// - l0_code = mean number of non-zero entries per sample of the code encode(x) itself, the code
///   that decoding and concept alignment use (equal to l0 except for Structured, whose z = S + R
///   is dense on the dense_width latents R adds to);
/// - firing_frequency_i = fraction of samples with z_i ≠ 0; dead_fraction = fraction of latents
///   that never fire on the set; dense_fraction = fraction with frequency > dense_threshold.
struct ReconstructionMetrics {
  Index samples = 0;
  double mse = 0, sse = 0, total_variance = 0, fvu = 0, explained_variance = 0;
  double cosine = 0, l2_ratio = 0, relative_bias = 0;
  double l0 = 0, l0_code = 0, dead_fraction = 0, dense_fraction = 0;
  Vector<double> firing_frequency;  ///< m (of the code l0 counts)
};

/// \brief Evaluates `sae` on the columns of x (d × N), in chunks of `chunk` columns.
template <class Scalar, class Derived>
ReconstructionMetrics evaluate_reconstruction(const SparseAutoencoder<Scalar>& sae,
                                              const Eigen::MatrixBase<Derived>& x,
                                              double dense_threshold = 0.1, Index chunk = 4096) {
  const char* who = "evaluate_reconstruction";
  check_shape(who, "x", x, sae.d_in(), -1);
  check_arg(x.cols() > 0, who, "x", "at least one column", x.cols());
  check_range(who, "dense_threshold", dense_threshold, 0.0, 1.0);
  check_arg(chunk > 0, who, "chunk", "> 0", chunk);
  const Index N = x.cols(), m = sae.d_sae(), d = sae.d_in();
  const Vector<double> mean = x.template cast<double>().rowwise().mean();
  ReconstructionMetrics r;
  r.samples = N;
  r.firing_frequency = Vector<double>::Zero(m);
  double sse = 0, tv = 0, cos_sum = 0, ratio_sum = 0, xh2 = 0, xxh = 0, l0 = 0, l0_code = 0;
  Index cos_n = 0;
  for (Index c0 = 0; c0 < N; c0 += chunk) {
    const Index n = std::min(chunk, N - c0);
    const Matrix<Scalar> xc = x.middleCols(c0, n);
    const Matrix<Scalar> z = sae.encode(xc);
    const Matrix<Scalar> xh = sae.decode(z);
    const Matrix<Scalar> s = sae.traits().sparse_branch ? sae.encode_sparse(xc) : z;
    l0_code += static_cast<double>((z.array() != Scalar(0)).count());
    for (Index b = 0; b < n; ++b) {
      const Vector<double> xb = xc.col(b).template cast<double>();
      const Vector<double> hb = xh.col(b).template cast<double>();
      sse += (xb - hb).squaredNorm();
      tv += (xb - mean).squaredNorm();
      const double nx = xb.norm(), nh = hb.norm();
      if (nx > 0) {
        ratio_sum += nh / nx;
        if (nh > 0) cos_sum += xb.dot(hb) / (nx * nh);
        ++cos_n;
      }
      xh2 += hb.squaredNorm();
      xxh += xb.dot(hb);
      for (Index i = 0; i < m; ++i)
        if (s(i, b) != Scalar(0)) {
          r.firing_frequency(i) += 1.0;
          l0 += 1.0;
        }
    }
  }
  const double Nd = static_cast<double>(N);
  r.sse = sse / Nd;
  r.mse = sse / (Nd * static_cast<double>(d));
  r.total_variance = tv / Nd;
  r.fvu = tv > 0 ? sse / tv : 0.0;
  r.explained_variance = 1.0 - r.fvu;
  r.cosine = cos_n > 0 ? cos_sum / static_cast<double>(cos_n) : 0.0;
  r.l2_ratio = cos_n > 0 ? ratio_sum / static_cast<double>(cos_n) : 0.0;
  r.relative_bias = xxh != 0.0 ? xh2 / xxh : 0.0;
  r.l0 = l0 / Nd;
  r.l0_code = l0_code / Nd;
  r.firing_frequency /= Nd;
  Index dead = 0, dense = 0;
  for (Index i = 0; i < m; ++i) {
    dead += r.firing_frequency(i) == 0.0 ? 1 : 0;
    dense += r.firing_frequency(i) > dense_threshold ? 1 : 0;
  }
  r.dead_fraction = static_cast<double>(dead) / static_cast<double>(m);
  r.dense_fraction = static_cast<double>(dense) / static_cast<double>(m);
  return r;
}

/// \brief Result of matching ground-truth items (rows) to learned items (columns).
struct MatchResult {
  double mcc = 0.0;             ///< mean similarity over the matched pairs
  std::vector<Index> match;     ///< for each true item, the learned item it is matched to, or -1
  std::vector<double> matched;  ///< similarity of each true item to its match (0 if unmatched)
  Matrix<double> similarity;    ///< the n_true × n_learned similarity matrix used
};

/// \brief Mean matched similarity under the maximum-weight one-to-one assignment of the rows
/// of `sim` (true items) to its columns (learned items). With more learned than true items
/// (the usual case) every true item is matched; otherwise only n_learned are, and the mean is
/// over the matched pairs. The assignment is exact (ergo::identify::linear_sum_assignment).
inline MatchResult mcc_from_similarity(const Eigen::Ref<const Matrix<double>>& sim) {
  const char* who = "mcc_from_similarity";
  check_arg(sim.rows() > 0 && sim.cols() > 0, who, "sim", "a non-empty matrix",
            ergo::detail::str_cat(sim.rows(), " x ", sim.cols()));
  check_finite(who, "sim", sim);
  MatchResult r;
  r.similarity = sim;
  const identify::Assignment a = identify::linear_sum_assignment(sim, /*maximize=*/true);
  r.match.assign(a.row_to_col.data(), a.row_to_col.data() + a.row_to_col.size());
  r.matched.assign(static_cast<size_t>(sim.rows()), 0.0);
  double sum = 0.0;
  Index n = 0;
  for (Index i = 0; i < sim.rows(); ++i) {
    const Index j = r.match[static_cast<size_t>(i)];
    if (j < 0) continue;
    r.matched[static_cast<size_t>(i)] = sim(i, j);
    sum += sim(i, j);
    ++n;
  }
  r.mcc = n > 0 ? sum / static_cast<double>(n) : 0.0;
  return r;
}

/// \brief Dictionary MCC: |cosine| between the true atoms (columns of `truth`, d × n) and the
/// learned decoder columns (`learned`, d × m), then mcc_from_similarity. 1 = every true atom
/// has a distinct learned atom pointing the same way (up to sign).
template <class DL, class DT>
MatchResult dictionary_mcc(const Eigen::MatrixBase<DL>& learned,
                           const Eigen::MatrixBase<DT>& truth) {
  check_arg(learned.rows() == truth.rows(), "dictionary_mcc", "learned",
            ergo::detail::str_cat(truth.rows(), " rows (as truth)"), learned.rows());
  Matrix<double> l = learned.template cast<double>();
  Matrix<double> t = truth.template cast<double>();
  for (Index j = 0; j < l.cols(); ++j) {
    const double n = l.col(j).norm();
    if (n > 0) l.col(j) /= n;
  }
  for (Index j = 0; j < t.cols(); ++j) {
    const double n = t.col(j).norm();
    if (n > 0) t.col(j) /= n;
  }
  return mcc_from_similarity((t.transpose() * l).cwiseAbs());
}

/// \brief Code MCC: |Pearson correlation| between true codes (rows of `truth`, n × N) and
/// learned codes (rows of `learned`, m × N), then mcc_from_similarity (the ICA-style MCC).
template <class DL, class DT>
MatchResult code_mcc(const Eigen::MatrixBase<DL>& learned, const Eigen::MatrixBase<DT>& truth) {
  check_arg(learned.cols() == truth.cols(), "code_mcc", "learned",
            ergo::detail::str_cat(truth.cols(), " columns (as truth)"), learned.cols());
  return mcc_from_similarity(identify::correlation_matrix(truth, learned).cwiseAbs());
}

/// \brief Concept alignment (Liu et al., §5.2): for each concept k, the feature i whose exp(z_i)
/// has the largest Pearson correlation with p(c_k | x), and the same with z_i itself.
struct ConceptAlignment {
  std::vector<double> exp_corr;    ///< per concept: max_i corr(exp(z_i), p_k) (signed)
  std::vector<Index> exp_feature;  ///< its feature i
  std::vector<double> raw_corr;    ///< per concept: max_i corr(z_i, p_k) (signed)
  std::vector<Index> raw_feature;  ///< its feature i
  double mean_exp = 0.0;           ///< mean of exp_corr over concepts (the paper's score)
  double mean_raw = 0.0;           ///< mean of raw_corr
};

/// \brief Concept alignment of codes z (m × N) with concept posteriors p (K × N, p(c_k = 1|x)).
/// Correlations are signed (a feature anti-correlated with p_k does not count); features are
/// not required to be distinct across concepts; exp(z) is computed in double with z clamped at
/// 700 to avoid overflow; a constant feature correlates 0.
template <class DZ>
ConceptAlignment concept_alignment(const Eigen::MatrixBase<DZ>& z,
                                   const Eigen::Ref<const Matrix<double>>& p) {
  const char* who = "concept_alignment";
  check_arg(z.cols() == p.cols(), who, "p", ergo::detail::str_cat(z.cols(), " columns (as z)"),
            p.cols());
  check_arg(z.cols() > 1, who, "z", "at least two columns", z.cols());
  check_finite(who, "p", p);
  const Matrix<double> zd = z.template cast<double>();
  const Matrix<double> ez = zd.cwiseMin(700.0).array().exp().matrix();
  const Matrix<double> c_exp = identify::correlation_matrix(p, ez);  // K × m
  const Matrix<double> c_raw = identify::correlation_matrix(p, zd);
  ConceptAlignment a;
  const Index K = p.rows();
  for (Index k = 0; k < K; ++k) {
    Index ie = 0, ir = 0;
    const double be = c_exp.row(k).maxCoeff(&ie);
    const double br = c_raw.row(k).maxCoeff(&ir);
    a.exp_corr.push_back(be);
    a.exp_feature.push_back(ie);
    a.raw_corr.push_back(br);
    a.raw_feature.push_back(ir);
    a.mean_exp += be;
    a.mean_raw += br;
  }
  if (K > 0) {
    a.mean_exp /= static_cast<double>(K);
    a.mean_raw /= static_cast<double>(K);
  }
  return a;
}

/// \brief The supervised upper bound: per concept, a cross-fitted logistic probe on x.
struct ProbeAlignment {
  std::vector<double> corr;      ///< per concept: corr(σ(probe logit), p_k) on held-out folds
  std::vector<double> accuracy;  ///< per concept: held-out accuracy of predicting the label
  double mean_corr = 0.0;
  double mean_accuracy = 0.0;
};

/// \brief Fits, for each binary concept k, a ridge logistic regression of the label c_k from x
/// (d × N, standardised per dimension) with `folds`-fold cross-fitting (sample b is in fold
/// b mod folds), and reports the Pearson correlation of its held-out probabilities with
/// p(c_k = 1 | x) (K × N), as the paper's supervised concept extractor (§5.1).
/// The probe is identify::LogisticRegression (LBFGS) minimising (1/n) Σ log-loss + (l2/2)‖w‖²
/// with an unpenalised intercept.
/// \param x d × N \param labels K × N in {0, 1} \param p K × N
/// \param l2 ridge weight on the standardised coefficients (> 0) \param folds in [2, N]
template <class DX>
ProbeAlignment probe_alignment(const Eigen::MatrixBase<DX>& x, const IntMatrix& labels,
                               const Eigen::Ref<const Matrix<double>>& p, double l2 = 1e-4,
                               Index folds = 2) {
  const char* who = "probe_alignment";
  const Index N = x.cols(), K = labels.rows();
  check_arg(labels.cols() == N, who, "labels", ergo::detail::str_cat(N, " columns (as x)"),
            labels.cols());
  check_shape(who, "p", p, K, N);
  check_positive(who, "l2", l2);
  check_arg(folds >= 2 && folds <= N, who, "folds",
            ergo::detail::str_cat("a value in [2, N = ", N, "]"), folds);
  Matrix<double> xs = x.template cast<double>();
  const Vector<double> mu = xs.rowwise().mean();
  xs.colwise() -= mu;
  for (Index j = 0; j < xs.rows(); ++j) {
    const double sd = std::sqrt(xs.row(j).squaredNorm() / static_cast<double>(N));
    if (sd > 0) xs.row(j) /= sd;
  }
  ProbeAlignment r;
  for (Index k = 0; k < K; ++k) {
    Matrix<double> prob(1, N);
    Index correct = 0;
    for (Index f = 0; f < folds; ++f) {
      std::vector<Index> tr, te;
      for (Index b = 0; b < N; ++b) (b % folds == f ? te : tr).push_back(b);
      Matrix<double> xtr(xs.rows(), static_cast<Index>(tr.size()));
      IntVector ytr(static_cast<Index>(tr.size()));
      for (size_t q = 0; q < tr.size(); ++q) {
        xtr.col(static_cast<Index>(q)) = xs.col(tr[q]);
        ytr(static_cast<Index>(q)) = labels(k, tr[q]) != 0 ? 1 : 0;
      }
      // (1/n) Σ log-loss + (l2/2)‖w‖² is identify's ‖w‖²/(2C) + Σ log-loss divided by n, with
      // C = 1/(l2 n); its gradient tolerance 1e-8 puts the probabilities within ~1e-8 of the
      // exact minimiser's
      identify::LogisticParams lp;
      lp.c = 1.0 / (l2 * static_cast<double>(tr.size()));
      lp.tolerance = 1e-8;
      identify::LogisticRegression probe(lp);
      probe.fit(xtr, ytr, 2);
      Matrix<double> xte(xs.rows(), static_cast<Index>(te.size()));
      for (size_t q = 0; q < te.size(); ++q) xte.col(static_cast<Index>(q)) = xs.col(te[q]);
      const Matrix<double> pte = probe.predict_proba(xte);  // 2 × |te|, row 1 = p(c_k = 1)
      for (size_t q = 0; q < te.size(); ++q) {
        const Index b = te[q];
        prob(0, b) = pte(1, static_cast<Index>(q));
        correct += ((prob(0, b) > 0.5) == (labels(k, b) != 0)) ? 1 : 0;
      }
    }
    const double c = identify::correlation_matrix(prob, p.row(k))(0, 0);
    r.corr.push_back(c);
    r.accuracy.push_back(static_cast<double>(correct) / static_cast<double>(N));
    r.mean_corr += c;
    r.mean_accuracy += r.accuracy.back();
  }
  if (K > 0) {
    r.mean_corr /= static_cast<double>(K);
    r.mean_accuracy /= static_cast<double>(K);
  }
  return r;
}

}  // namespace ergo::sae

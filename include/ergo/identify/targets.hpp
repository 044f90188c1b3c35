// SPDX-License-Identifier: MIT
#pragma once

/// \file targets.hpp
/// \brief Target transforms of log-posteriors: clr, ilr, alr, per-concept log-odds and clr,
/// probabilities.
///
/// Why a transform at all: in a softmax model log p(c|x) = G f(x) − log Z(x)·1, and log Z(x) is
/// not affine in f, so no affine map takes f(x) to the raw log-posterior. Centring over the
/// configurations cancels log Z: clr(log p)(x) = (I − 11ᵀ/ℓ) G f(x) is exactly linear in f. In
/// Theorem 3.1 the columns of L sum to zero, so A annihilates constants and only the centred
/// log-posterior (equivalently the log-odds against a reference configuration) is identified
/// (docs/theory.md, "What is computed": L has zero column sums). The identifiable targets are
/// therefore clr / ilr / alr for the joint
/// posterior, and per-concept log-odds (binary) or per-concept clr (categorical) for marginals.
///
/// Shapes (samples are columns):
/// - joint log-posterior `log_post`: ℓ × N, column n = [log p(c_i | x_n)]_i;
/// - stacked per-concept log-marginals `log_marg`: (Σ_k |V_k|) × N, concept blocks in order,
///   block k holds log p(c_k = v | x_n) for v = 0..|V_k|−1 (ConceptWorld::log_marginals layout).
///
/// Every transform refuses non-finite input (a log-probability of exactly 0 probability is −inf)
/// with the number of offending entries; use floor_log_probabilities() first if clipping is
/// what you want, and report the count it returns.
///
/// \code
/// Eigen::MatrixXd lp = world.log_posterior(x);              // ℓ × N
/// Eigen::MatrixXd T  = ergo::identify::ilr(lp);                       // (ℓ−1) × N, full-rank
/// target Eigen::MatrixXd T2 = ergo::identify::concept_log_odds(world.log_marginals(x), {2, 2, 2,
/// 2});  // 4 × N \endcode

#include "../core/error.hpp"
#include "../core/logspace.hpp"
#include "../core/types.hpp"

#include <Eigen/Core>

#include <cmath>
#include <string>
#include <vector>

namespace ergo::identify {

/// \brief Which target representation of the log-posteriors to use.
enum class TargetKind {
  Clr,         ///< joint centred log-posterior, ℓ × N (rank ℓ−1)
  Ilr,         ///< clr in an orthonormal (Helmert) basis of the sum-zero subspace, (ℓ−1) × N
  Alr,         ///< log-odds against a reference configuration, (ℓ−1) × N
  LogOdds,     ///< per-concept log-odds log p(c_k=1|x) − log p(c_k=0|x), m × N (binary concepts)
  ConceptClr,  ///< per-concept centred log-marginals, (Σ_k |V_k|) × N
  Probability,  ///< exp of the input (joint or stacked marginals), same shape
};

/// \brief "clr", "ilr", "alr", "log_odds", "concept_clr" or "probability".
inline const char* to_string(TargetKind k) {
  switch (k) {
    case TargetKind::Clr:
      return "clr";
    case TargetKind::Ilr:
      return "ilr";
    case TargetKind::Alr:
      return "alr";
    case TargetKind::LogOdds:
      return "log_odds";
    case TargetKind::ConceptClr:
      return "concept_clr";
    case TargetKind::Probability:
      return "probability";
  }
  return "unknown";
}

namespace detail {
template <class Derived>
void check_log_input(const char* who, const char* what, const Eigen::MatrixBase<Derived>& m,
                     Index min_rows) {
  check_arg(m.rows() >= min_rows, who, what, ergo::detail::str_cat("at least ", min_rows, " rows"),
            m.rows());
  check_finite(who, what, m);
}

inline void check_cardinalities(const char* who, const std::vector<Index>& cards, Index rows) {
  check_arg(!cards.empty(), who, "cardinalities", "at least one concept", "none");
  Index total = 0;
  for (size_t k = 0; k < cards.size(); ++k) {
    check_arg(cards[k] >= 2, who, ergo::detail::str_cat("cardinalities[", k, "]"), "at least 2",
              cards[k]);
    total += cards[k];
  }
  check_arg(total == rows, who, "log_marg",
            ergo::detail::str_cat(total, " rows (sum of cardinalities)"), rows);
}
}  // namespace detail

/// \brief Replaces log-probabilities below `log_floor` (including −inf) by `log_floor`, in place.
/// NaN and +inf are left alone (the transforms will refuse them).
/// \param m any matrix of log-probabilities (modified) \param log_floor e.g. log(1e-6)
/// \return the number of clipped entries (report it: a large count means the floor matters)
template <class Derived>
Index floor_log_probabilities(const Eigen::MatrixBase<Derived>& m_, double log_floor) {
  auto& m = const_cast<Eigen::MatrixBase<Derived>&>(m_);
  check_arg(std::isfinite(log_floor), "floor_log_probabilities", "log_floor", "a finite value",
            log_floor);
  using Scalar = typename Derived::Scalar;
  Index clipped = 0;
  for (Index j = 0; j < m.cols(); ++j)
    for (Index i = 0; i < m.rows(); ++i)
      if (static_cast<double>(m(i, j)) < log_floor) {
        m(i, j) = static_cast<Scalar>(log_floor);
        ++clipped;
      }
  return clipped;
}

/// \brief Centred log-ratio: each column minus its mean over rows.
/// \param log_post ℓ × N joint log-posteriors (finite) \return ℓ × N, columns sum to zero
template <class Derived>
Matrix<double> clr(const Eigen::MatrixBase<Derived>& log_post_in) {
  const auto& log_post = log_post_in.eval();  // no copy for plain matrices
  detail::check_log_input("clr", "log_post", log_post, 2);
  Matrix<double> out = log_post.template cast<double>();
  out.rowwise() -= out.colwise().mean();
  return out;
}

/// \brief Isometric log-ratio: clr coordinates in the Helmert basis, Vᵀ log_post.
/// \param log_post ℓ × N (finite) \return (ℓ−1) × N full-rank target
template <class Derived>
Matrix<double> ilr(const Eigen::MatrixBase<Derived>& log_post_in) {
  const auto& log_post = log_post_in.eval();
  detail::check_log_input("ilr", "log_post", log_post, 2);
  const Matrix<double> v = helmert_basis(log_post.rows());
  return v.transpose() * log_post.template cast<double>();  // Vᵀ1 = 0: same as Vᵀ clr
}

/// \brief Additive log-ratio against reference row `reference`: rows i ≠ reference of
/// log_post − log_post.row(reference), in increasing i.
/// \param log_post ℓ × N (finite) \param reference configuration index in [0, ℓ)
/// \return (ℓ−1) × N log-odds r_i(x) = log p(c_i|x) − log p(c_ref|x)
template <class Derived>
Matrix<double> alr(const Eigen::MatrixBase<Derived>& log_post_in, Index reference = 0) {
  const auto& log_post = log_post_in.eval();
  detail::check_log_input("alr", "log_post", log_post, 2);
  check_arg(reference >= 0 && reference < log_post.rows(), "alr", "reference",
            ergo::detail::str_cat("an index in [0, ", log_post.rows(), ")"), reference);
  const Index l = log_post.rows();
  Matrix<double> out(l - 1, log_post.cols());
  for (Index j = 0; j < log_post.cols(); ++j) {
    const double ref = static_cast<double>(log_post(reference, j));
    Index r = 0;
    for (Index i = 0; i < l; ++i)
      if (i != reference) out(r++, j) = static_cast<double>(log_post(i, j)) - ref;
  }
  return out;
}

/// \brief Per-concept log-odds for binary concepts: row k = log p(c_k=1|x) − log p(c_k=0|x).
/// \param log_marg (2m) × N stacked log-marginals \param cardinalities m values, all 2
/// \return m × N
template <class Derived>
Matrix<double> concept_log_odds(const Eigen::MatrixBase<Derived>& log_marg_in,
                                const std::vector<Index>& cardinalities) {
  const auto& log_marg = log_marg_in.eval();
  const char* who = "concept_log_odds";
  detail::check_cardinalities(who, cardinalities, log_marg.rows());
  for (size_t k = 0; k < cardinalities.size(); ++k)
    check_arg(cardinalities[k] == 2, who, ergo::detail::str_cat("cardinalities[", k, "]"),
              "2 (binary concepts; use concept_clr for categorical ones)", cardinalities[k]);
  detail::check_log_input(who, "log_marg", log_marg, 2);
  const Index m = static_cast<Index>(cardinalities.size());
  Matrix<double> out(m, log_marg.cols());
  for (Index k = 0; k < m; ++k)
    out.row(k) = (log_marg.row(2 * k + 1) - log_marg.row(2 * k)).template cast<double>();
  return out;
}

/// \brief Per-concept clr: each concept's block of log-marginals centred over its values.
/// \param log_marg (Σ_k |V_k|) × N \param cardinalities |V_k| per concept
/// \return (Σ_k |V_k|) × N (block k has rank |V_k| − 1)
template <class Derived>
Matrix<double> concept_clr(const Eigen::MatrixBase<Derived>& log_marg_in,
                           const std::vector<Index>& cardinalities) {
  const auto& log_marg = log_marg_in.eval();
  const char* who = "concept_clr";
  detail::check_cardinalities(who, cardinalities, log_marg.rows());
  detail::check_log_input(who, "log_marg", log_marg, 2);
  Matrix<double> out = log_marg.template cast<double>();
  Index off = 0;
  for (Index c : cardinalities) {
    auto blk = out.middleRows(off, c);
    blk.rowwise() -= blk.colwise().mean();
    off += c;
  }
  return out;
}

/// \brief Probabilities exp(log p), same shape (joint posteriors or stacked marginals).
/// This is the belief-simplex target of Shai et al.; not affine in a softmax representation in
/// general, reported beside clr so the data can decide (docs/identify.md).
template <class Derived>
Matrix<double> probabilities(const Eigen::MatrixBase<Derived>& log_p_in) {
  const auto& log_p = log_p_in.eval();
  detail::check_log_input("probabilities", "log_p", log_p, 1);
  return log_p.template cast<double>().array().exp().matrix();
}

/// \brief Applies the transform `kind` (dispatch over the functions above).
/// \param log_p ℓ × N joint log-posteriors (Clr, Ilr, Alr, Probability) or stacked
///        log-marginals (LogOdds, ConceptClr, Probability)
/// \param cardinalities needed for LogOdds / ConceptClr \param reference for Alr
template <class Derived>
Matrix<double> make_targets(TargetKind kind, const Eigen::MatrixBase<Derived>& log_p,
                            const std::vector<Index>& cardinalities = {}, Index reference = 0) {
  switch (kind) {
    case TargetKind::Clr:
      return clr(log_p);
    case TargetKind::Ilr:
      return ilr(log_p);
    case TargetKind::Alr:
      return alr(log_p, reference);
    case TargetKind::LogOdds:
      return concept_log_odds(log_p, cardinalities);
    case TargetKind::ConceptClr:
      return concept_clr(log_p, cardinalities);
    case TargetKind::Probability:
      return probabilities(log_p);
  }
  throw_invalid("make_targets", "kind", "a TargetKind", static_cast<int>(kind));
}

}  // namespace ergo::identify

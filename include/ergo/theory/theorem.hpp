// SPDX-License-Identifier: MIT
#pragma once

/// \file theorem.hpp
/// \brief The objects of Theorem 3.1 computed exactly for a concept world and an unembedding:
/// L, L̂, the diversity test, A, b, the residual h_y(x), the theory-predicted representation, and
/// the per-concept maps Ã_k = A B_k of Corollary 4.2.
///
/// Setting (Liu et al., arXiv 2503.08980, §3; derivation in docs/theory.md, "What is computed").
/// A next-token model p(y|x) = softmax_y(f_x(x)ᵀ f_y(y)) with representation f_x(x) ∈ ℝ^d and
/// unembedding f_y(y) ∈ ℝ^d (given here as the d × |V| matrix U whose column y is f_y(y)).
/// For tokens y_0, y_1, …, y_r:
/// - L ∈ ℝ^{ℓ × r}: column j = p(c | y_j) − p(c | y_0) (every column sums to 0);
/// - L̂ ∈ ℝ^{d × r}: column j = f_y(y_j) − f_y(y_0);
/// - β_y = Σ_c p(c|y) log p(y|c);  h_y(x) = Σ_c p(c|y) log p(c|x, y);  λ(x) = [log p(c_i|x)]_i.
///
/// Exact identity (docs/theory.md, "What is computed", step 2), valid for the Bayes-optimal
/// predictor whatever d:
///
///     L̂ᵀ f_x(x) = Lᵀ λ(x) + (β_{y_j} − β_{y_0})_j − (h_{y_j}(x) − h_{y_0}(x))_j      (r rows)
///
/// Solving it with the pseudo-inverse gives the theorem's form
///
///     f_x(x) = A λ(x) + b − pinv(L̂ᵀ) Δh(x),   A = pinv(L̂ᵀ) Lᵀ (d × ℓ),   b = pinv(L̂ᵀ) Δβ,
///
/// exact on the range of L̂ (f_x's component in the null space of L̂ᵀ is not determined by
/// next-token probabilities). The paper writes A = (L̂ᵀ)⁻¹ L with its matrices transposed relative
/// to ours, and needs d = r = ℓ so that L̂ is square and invertible (the diversity condition).
/// Where the model has d ≠ ℓ (or fewer than ℓ + 1 usable tokens) this class says so in notes()
/// and uses the pseudo-inverse instead of hiding the mismatch. Because Lᵀ 1 = 0, A annihilates
/// constant shifts of λ and rank(A) ≤ ℓ − 1: only centred log-posteriors are identified.
///
/// The residual term pinv(L̂ᵀ) Δh(x) does **not** vanish as ε → 0 in general (docs/theory.md,
/// "The residual term"; an ICLR reviewer's objection): h_y(x) → (1 − p(c*|y)) log ε. So it is
/// computed exactly and its size reported rather than assumed zero.
///
/// \code
/// ergo::theory::IdentifiabilityTheory<double> th(world, unembedding);      // U: d × |V|
/// for (auto& note : th.notes()) std::cout << note << "\n";           // dimension caveats
/// ergo::theory::TheoryPrediction pr = th.predict(samples.x);                // f_x predicted,
/// residual ergo::theory::IdentityCheck chk = th.check(samples.x, F_trained);          // L̂ᵀF vs
/// the right side \endcode

#include "../core/error.hpp"
#include "../core/logspace.hpp"
#include "../core/types.hpp"
#include "../model/concept_world.hpp"
#include "lifting.hpp"

#include <Eigen/Core>
#include <Eigen/QR>
#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <string>
#include <vector>

namespace ergo::theory {

/// \brief Settings of IdentifiabilityTheory.
struct TheoryParams {
  /// Tokens y_0, y_1, …, y_r (y_0 first). Empty (default): chosen automatically (see
  /// select_tokens()).
  std::vector<Index> tokens = {};
  /// Automatic selection only: number r of difference tokens; −1 (default) = min(ℓ, |V| − 1),
  /// the paper's ℓ + 1 tokens when the vocabulary allows.
  Index n_tokens = -1;
  /// Relative rank tolerance: singular values ≤ rank_tol · σ_max count as zero; −1 (default)
  /// uses max(rows, cols) · eps (numpy's matrix_rank convention).
  double rank_tol = -1.0;

  void check() const {
    check_arg(n_tokens == -1 || n_tokens >= 1, "TheoryParams::check", "n_tokens",
              "-1 or at least 1", n_tokens);
    check_arg(rank_tol == -1.0 || (rank_tol >= 0.0 && rank_tol < 1.0), "TheoryParams::check",
              "rank_tol", "-1 or a value in [0, 1)", rank_tol);
  }
};

/// \brief Singular values, numerical rank and conditioning of a matrix.
struct SpectrumInfo {
  Vector<double> singular_values;  ///< decreasing, min(rows, cols) values
  Index rank = 0;                  ///< values above the tolerance
  double sigma_min = 0.0;          ///< smallest of the min(rows, cols) singular values
  double condition = std::numeric_limits<double>::infinity();  ///< σ_max/σ_min (+inf if singular)
};

/// \brief What IdentifiabilityTheory::predict computes for a batch of contexts.
struct TheoryPrediction {
  Matrix<double> lambda;     ///< ℓ × N, λ(x) = log p(c|x)
  Matrix<double> h;          ///< (r+1) × N, h_{y_j}(x) for j = 0..r
  Matrix<double> epsilon;    ///< (r+1) × N, ε(x, y_j) = 1 − max_c p(c|x, y_j)
  Matrix<double> rhs;        ///< r × N, Lᵀλ + Δβ − Δh (what L̂ᵀ f_x(x) must equal)
  Matrix<double> affine;     ///< d × N, A λ(x) + b
  Matrix<double> residual;   ///< d × N, pinv(L̂ᵀ) Δh(x) (subtracted in the theorem)
  Matrix<double> predicted;  ///< d × N, A λ(x) + b − residual: f_x(x) on the range of L̂
  double mean_residual_norm = 0.0;  ///< mean over x of ‖residual(x)‖
  double mean_affine_norm = 0.0;    ///< mean over x of ‖A λ(x) + b‖ (same units, for scale)
  double mean_epsilon = 0.0;        ///< mean of ε over the tokens used and the contexts
};

/// \brief Comparison of a representation F with the theory (IdentifiabilityTheory::check).
struct IdentityCheck {
  Matrix<double> lhs;          ///< r × N, L̂ᵀ F
  Matrix<double> rhs;          ///< r × N, Lᵀλ + Δβ − Δh
  double max_abs_error = 0.0;  ///< max |lhs − rhs|
  double rms_error = 0.0;      ///< root mean square of lhs − rhs
  double rhs_scale = 0.0;      ///< root mean square of the centred rhs (for a relative reading)
  /// max |P F − predicted| with P = pinv(L̂ᵀ) L̂ᵀ the projector onto the range of L̂: how far F
  /// is from the theory-predicted representation where the theory determines it.
  double max_projected_error = 0.0;
  Index n = 0;  ///< samples compared
};

/// \brief Parameter-free agreement of a representation with Theorem 3.1
/// (IdentifiabilityTheory::assess). Nothing is fitted: A, b and the residual come from the world
/// and the unembedding given to the theory.
///
/// R²(X; Ŷ) below is 1 − Σ‖X − Ŷ‖² / Σ‖X − X̄‖² over all coordinates and contexts (variance
/// weighted, invariant to rotations of the coordinates); it is 1 for an exact match and negative
/// when Ŷ is further from X than X's own mean. In representation space F is first projected on
/// the range of L̂ (P = pinv(L̂ᵀ) L̂ᵀ): the directions of f_x outside it do not change any token
/// difference, so the theorem says nothing about them (P = I when L̂ is square and invertible).
struct TheoremFit {
  Index n = 0;          ///< contexts compared
  Index range_dim = 0;  ///< rank of L̂: the dimension of the space F is compared in
  /// R²(P F; A λ + b): the theorem's linear form alone.
  double r2_linear = std::numeric_limits<double>::quiet_NaN();
  /// R²(P F; A λ + b − pinv(L̂ᵀ) Δh): the exact form (1 for the Bayes predictor).
  double r2_exact = std::numeric_limits<double>::quiet_NaN();
  /// var(pinv(L̂ᵀ) Δh) / var(P F), both centred over the contexts: the share of the
  /// representation's variation that the linear form leaves to the residual term.
  double residual_share = std::numeric_limits<double>::quiet_NaN();
  /// The same three in token-logit space (the stacked identity, r rows): R²(L̂ᵀF; Lᵀλ + Δβ),
  /// R²(L̂ᵀF; Lᵀλ + Δβ − Δh) and var(Δh)/var(L̂ᵀF). Unlike the representation-space values they
  /// do not amplify errors along directions where L̂ is small.
  double logit_r2_linear = std::numeric_limits<double>::quiet_NaN();
  double logit_r2_exact = std::numeric_limits<double>::quiet_NaN();
  double logit_residual_share = std::numeric_limits<double>::quiet_NaN();
  double mean_epsilon = std::numeric_limits<double>::quiet_NaN();  ///< mean ε over x and y_j
};

/// \brief Theorem 3.1's quantities for a world and an unembedding (see the file comment).
/// \tparam Scalar_ the world's scalar (computations are in double)
template <class Scalar_>
class IdentifiabilityTheory {
 public:
  using Scalar = Scalar_;

  /// \param world the concept world (copied)
  /// \param unembedding d × |V|, column y = f_y(y) (finite)
  /// \param params token choice and rank tolerance
  /// \throws InvalidArgument on a wrong number of columns, non-finite entries, bad tokens, or an
  ///         emission with zeros (β and h need log p(y|c) where p(c|y) > 0 — full support)
  template <class DU>
  IdentifiabilityTheory(const model::ConceptWorld<Scalar>& world,
                        const Eigen::MatrixBase<DU>& unembedding_in, TheoryParams params = {})
      : m_world(world), m_params(std::move(params)) {
    const char* who = "IdentifiabilityTheory::IdentifiabilityTheory";
    const auto& unembedding = unembedding_in.eval();
    m_params.check();
    const Index v = world.vocab_size();
    check_arg(unembedding.cols() == v, who, "unembedding",
              detail::str_cat(v, " columns (one per token)"), unembedding.cols());
    check_arg(unembedding.rows() >= 1, who, "unembedding", "at least one row", unembedding.rows());
    check_finite(who, "unembedding", unembedding);
    check_arg(world.y_emission().zero_count() == 0, who, "world",
              "a token emission with full support (every p(y|c) > 0)",
              detail::str_cat(world.y_emission().zero_count(), " zero probabilities"));
    m_u = unembedding.template cast<double>();
    m_l = world.joint_size();
    m_d = m_u.rows();
    m_log_y = world.y_emission().log_table().template cast<double>();  // |V| × ℓ
    m_post_y = world.log_posterior_given_token().template cast<double>().array().exp().matrix();

    if (m_params.tokens.empty()) {
      const Index r = m_params.n_tokens > 0 ? m_params.n_tokens : std::min(m_l, v - 1);
      check_arg(r <= v - 1, who, "params.n_tokens", detail::str_cat("at most |V| − 1 = ", v - 1),
                r);
      m_tokens = select_tokens(m_u, r);
      m_auto_tokens = true;
    } else {
      m_tokens = m_params.tokens;
      check_arg(m_tokens.size() >= 2, who, "params.tokens", "at least 2 tokens (y_0 and one more)",
                m_tokens.size());
      std::set<Index> seen;
      for (size_t j = 0; j < m_tokens.size(); ++j) {
        check_arg(m_tokens[j] >= 0 && m_tokens[j] < v, who,
                  detail::str_cat("params.tokens[", j, "]"),
                  detail::str_cat("a token in [0, ", v, ")"), m_tokens[j]);
        check_arg(seen.insert(m_tokens[j]).second, who, detail::str_cat("params.tokens[", j, "]"),
                  "distinct tokens", detail::str_cat("a repeat of ", m_tokens[j]));
      }
    }
    m_r = static_cast<Index>(m_tokens.size()) - 1;
    compute();
  }

  /// Tokens y_0, …, y_r actually used (r + 1 values).
  const std::vector<Index>& tokens() const { return m_tokens; }
  /// True if the tokens were selected automatically.
  bool tokens_selected_automatically() const { return m_auto_tokens; }
  /// Representation dimension d, number of configurations ℓ, number of token differences r.
  Index dim() const { return m_d; }
  Index joint_size() const { return m_l; }
  Index token_differences() const { return m_r; }

  /// L, ℓ × r: column j = p(c | y_j) − p(c | y_0).
  const Matrix<double>& l_matrix() const { return m_L; }
  /// L̂, d × r: column j = f_y(y_j) − f_y(y_0).
  const Matrix<double>& l_hat() const { return m_Lhat; }
  /// pinv(L̂ᵀ), d × r.
  const Matrix<double>& l_hat_pinv_t() const { return m_pinv; }
  /// Spectrum of L̂ (the diversity test) and of L.
  const SpectrumInfo& l_hat_spectrum() const { return m_spec_lhat; }
  const SpectrumInfo& l_spectrum() const { return m_spec_l; }
  /// Diversity: L̂ has full column rank r (its r token differences are linearly independent).
  bool diversity_holds() const { return m_spec_lhat.rank == m_r; }
  /// The paper's exact setting: diversity holds and L̂ is square with d = r = ℓ.
  bool paper_setting() const { return diversity_holds() && m_d == m_r && m_r == m_l; }
  /// A = pinv(L̂ᵀ) Lᵀ, d × ℓ.
  const Matrix<double>& a() const { return m_A; }
  /// Spectrum of A (rank ≤ ℓ − 1 because Lᵀ1 = 0).
  const SpectrumInfo& a_spectrum() const { return m_spec_a; }
  /// Spectrum of A on the sum-zero subspace (A V with V the ℓ × (ℓ−1) Helmert basis): the part of
  /// A that acts on identifiable (centred) log-posteriors. Its rank and condition number are the
  /// meaningful ones, since A's full spectrum always has a zero (Lᵀ1 = 0).
  const SpectrumInfo& a_identified_spectrum() const { return m_spec_a_id; }
  /// b = pinv(L̂ᵀ) Δβ, d.
  const Vector<double>& b() const { return m_b; }
  /// β_{y_j}, j = 0..r.
  const Vector<double>& beta() const { return m_beta; }
  /// Δβ = (β_{y_j} − β_{y_0})_{j=1..r}.
  const Vector<double>& delta_beta() const { return m_dbeta; }
  /// Human-readable statements of where the model departs from the paper's assumptions.
  const std::vector<std::string>& notes() const { return m_notes; }

  /// B_k (ℓ × |V_k|) of Corollary 4.2. \sa lifting_matrix
  Matrix<double> lifting(Index k) const { return lifting_matrix(m_world.prior(), k); }
  /// Ã_k = A B_k (d × |V_k|) of Corollary 4.2.
  Matrix<double> concept_map(Index k) const { return m_A * lifting(k); }

  /// \brief λ, h, ε, the stacked right-hand side and the predicted representation for contexts.
  /// \param x n × N context values (as for model::ConceptWorld::log_posterior)
  TheoryPrediction predict(const IntMatrix& x) const {
    TheoryPrediction p;
    p.lambda = m_world.log_posterior(x).template cast<double>();
    check_finite("IdentifiabilityTheory::predict", "log p(c|x) (use a world with full support)",
                 p.lambda);
    const Index n = x.cols(), r1 = m_r + 1;
    p.h.resize(r1, n);
    p.epsilon.resize(r1, n);
    Matrix<double> m(m_l, n);
    for (Index j = 0; j < r1; ++j) {
      const Index y = m_tokens[static_cast<size_t>(j)];
      // log p(c|x, y) = λ + log p(y|c) − logsumexp_c(λ + log p(y|c)).
      m = p.lambda;
      m.colwise() += m_log_y.row(y).transpose();
      const RowVector<double> lse = log_sum_exp_cols(m);
      m.rowwise() -= lse;
      p.h.row(j).noalias() = m_post_y.col(y).transpose() * m;  // Σ_c p(c|y) log p(c|x,y)
      p.epsilon.row(j) = (1.0 - m.colwise().maxCoeff().array().exp()).matrix();
    }
    const Matrix<double> dh = p.h.bottomRows(m_r).rowwise() - p.h.row(0);
    p.rhs = m_L.transpose() * p.lambda;
    p.rhs.colwise() += m_dbeta;
    p.rhs -= dh;
    p.affine = m_A * p.lambda;
    p.affine.colwise() += m_b;
    p.residual = m_pinv * dh;
    p.predicted = p.affine - p.residual;
    if (n > 0) {
      p.mean_residual_norm = p.residual.colwise().norm().mean();
      p.mean_affine_norm = p.affine.colwise().norm().mean();
      p.mean_epsilon = p.epsilon.mean();
    }
    return p;
  }

  /// \brief Compares a representation F = f_x(x) (d × N) with the theory on contexts x.
  ///
  /// For the Bayes-optimal predictor (the model's softmax equals p(y|x) on the tokens used) the
  /// stacked identity holds exactly, so max_abs_error is at rounding level; for a trained model
  /// it measures how far the model's token log-odds are from Bayes, and max_projected_error how
  /// far F is from the theory-predicted representation on the range of L̂.
  template <class DF>
  IdentityCheck check(const IntMatrix& x, const Eigen::MatrixBase<DF>& f_in) const {
    const char* who = "IdentifiabilityTheory::check";
    const auto& f = f_in.eval();
    check_shape(who, "f", f, m_d, x.cols());
    check_finite(who, "f", f);
    const TheoryPrediction p = predict(x);
    const Matrix<double> fd = f.template cast<double>();
    IdentityCheck c;
    c.n = x.cols();
    c.lhs = m_Lhat.transpose() * fd;
    c.rhs = p.rhs;
    if (c.n == 0) return c;
    const Matrix<double> diff = c.lhs - c.rhs;
    c.max_abs_error = diff.cwiseAbs().maxCoeff();
    c.rms_error = std::sqrt(diff.squaredNorm() / static_cast<double>(diff.size()));
    const Matrix<double> centred = c.rhs.colwise() - c.rhs.rowwise().mean();
    c.rhs_scale = std::sqrt(centred.squaredNorm() / static_cast<double>(centred.size()));
    const Matrix<double> proj = m_pinv * (m_Lhat.transpose() * fd);
    c.max_projected_error = (proj - p.predicted).cwiseAbs().maxCoeff();
    return c;
  }

  /// \brief Parameter-free agreement of a representation F = f_x(x) (d × N) with the theorem on
  /// contexts x (see TheoremFit). Needs at least 2 contexts.
  template <class DF>
  TheoremFit assess(const IntMatrix& x, const Eigen::MatrixBase<DF>& f_in) const {
    const char* who = "IdentifiabilityTheory::assess";
    const auto& f = f_in.eval();
    check_shape(who, "f", f, m_d, x.cols());
    check_arg(x.cols() >= 2, who, "x", "at least 2 contexts", x.cols());
    check_finite(who, "f", f);
    const TheoryPrediction p = predict(x);
    const Matrix<double> fd = f.template cast<double>();
    auto centred_ss = [](const Matrix<double>& m) {
      return (m.colwise() - m.rowwise().mean()).squaredNorm();
    };
    auto r2 = [&](const Matrix<double>& truth, const Matrix<double>& pred, double sst) {
      return sst > 0.0 ? 1.0 - (truth - pred).squaredNorm() / sst
                       : std::numeric_limits<double>::quiet_NaN();
    };
    TheoremFit t;
    t.n = x.cols();
    t.range_dim = m_spec_lhat.rank;
    t.mean_epsilon = p.mean_epsilon;
    const Matrix<double> lhs = m_Lhat.transpose() * fd;  // r × N
    const Matrix<double> pf = m_pinv * lhs;              // P F (d × N)
    const double sst_f = centred_ss(pf);
    t.r2_linear = r2(pf, p.affine, sst_f);
    t.r2_exact = r2(pf, p.predicted, sst_f);
    t.residual_share =
        sst_f > 0.0 ? centred_ss(p.residual) / sst_f : std::numeric_limits<double>::quiet_NaN();
    Matrix<double> linear_rhs = m_L.transpose() * p.lambda;
    linear_rhs.colwise() += m_dbeta;
    const double sst_l = centred_ss(lhs);
    t.logit_r2_linear = r2(lhs, linear_rhs, sst_l);
    t.logit_r2_exact = r2(lhs, p.rhs, sst_l);
    t.logit_residual_share = sst_l > 0.0 ? centred_ss(linear_rhs - p.rhs) / sst_l
                                         : std::numeric_limits<double>::quiet_NaN();
    return t;
  }

  /// \brief Automatic token choice: for every candidate y_0 (all tokens when |V| ≤ 512, else the
  /// first 512), a column-pivoted QR of the differences f_y(y) − f_y(y_0) orders the other tokens
  /// greedily by how much new volume each adds; the y_0 whose first min(r, d) pivots span the
  /// largest log-volume wins, and its first r pivots are y_1..y_r.
  ///
  /// Exception: when every token is used (r = |V| − 1) and d ≥ r, the result is 0, 1, …, |V| − 1
  /// without a search. Changing y_0 then multiplies both sides of the stacked identity by the
  /// same invertible r × r matrix; when L̂ has full column rank r (diversity) that changes
  /// neither its solution set nor A, b and the predicted f_x, and the search would cost |V| QR
  /// factorisations of a d × (|V| − 1) matrix for nothing. (When diversity fails the
  /// least-squares objects depend on y_0 whichever rule picks it.)
  /// \param unembedding d × |V| \param r number of difference tokens, 1 ≤ r ≤ |V| − 1
  /// \return r + 1 distinct tokens, y_0 first
  static std::vector<Index> select_tokens(const Matrix<double>& unembedding, Index r) {
    const Index v = unembedding.cols(), d = unembedding.rows();
    check_arg(r >= 1 && r <= v - 1, "IdentifiabilityTheory::select_tokens", "r",
              detail::str_cat("a value in [1, ", v - 1, "]"), r);
    if (r == v - 1 && d >= r) {
      std::vector<Index> all(static_cast<size_t>(v));
      std::iota(all.begin(), all.end(), Index(0));
      return all;
    }
    const Index candidates = std::min<Index>(v, 512);
    const Index k = std::min(r, d);
    double best = -std::numeric_limits<double>::infinity();
    std::vector<Index> best_tokens;
    Matrix<double> diff(d, v - 1);
    for (Index y0 = 0; y0 < candidates; ++y0) {
      std::vector<Index> others;
      for (Index y = 0; y < v; ++y)
        if (y != y0) {
          diff.col(static_cast<Index>(others.size())) = unembedding.col(y) - unembedding.col(y0);
          others.push_back(y);
        }
      Eigen::ColPivHouseholderQR<Matrix<double>> qr(diff);
      double logvol = 0.0;
      for (Index i = 0; i < k; ++i)
        logvol +=
            std::log(std::max(std::abs(qr.matrixQR()(i, i)), std::numeric_limits<double>::min()));
      if (logvol > best) {
        best = logvol;
        best_tokens.assign(1, y0);
        const auto& perm = qr.colsPermutation().indices();
        for (Index i = 0; i < r; ++i) best_tokens.push_back(others[static_cast<size_t>(perm[i])]);
      }
    }
    return best_tokens;
  }

 private:
  SpectrumInfo spectrum(const Matrix<double>& m) const {
    SpectrumInfo s;
    if (m.size() == 0) return s;
    Eigen::BDCSVD<Matrix<double>> svd(m);
    s.singular_values = svd.singularValues();
    const double smax = s.singular_values[0];
    const double rel =
        m_params.rank_tol >= 0.0
            ? m_params.rank_tol
            : static_cast<double>(std::max(m.rows(), m.cols())) * ScalarTraits<double>::eps();
    for (Index i = 0; i < s.singular_values.size(); ++i)
      if (s.singular_values[i] > rel * smax) ++s.rank;
    s.sigma_min = s.singular_values[s.singular_values.size() - 1];
    if (s.sigma_min > 0.0) s.condition = smax / s.sigma_min;
    return s;
  }

  void compute() {
    const Index y0 = m_tokens[0];
    m_L.resize(m_l, m_r);
    m_Lhat.resize(m_d, m_r);
    for (Index j = 0; j < m_r; ++j) {
      const Index y = m_tokens[static_cast<size_t>(j + 1)];
      m_L.col(j) = m_post_y.col(y) - m_post_y.col(y0);
      m_Lhat.col(j) = m_u.col(y) - m_u.col(y0);
    }
    m_beta.resize(m_r + 1);
    for (Index j = 0; j <= m_r; ++j) {
      const Index y = m_tokens[static_cast<size_t>(j)];
      m_beta[j] = m_post_y.col(y).dot(m_log_y.row(y).transpose());
    }
    m_dbeta = m_beta.tail(m_r).array() - m_beta[0];
    m_spec_lhat = spectrum(m_Lhat);
    m_spec_l = spectrum(m_L);
    // pinv(L̂ᵀ) = U_k S_k⁻¹ V_kᵀ from L̂ = U S Vᵀ (d × r), on L̂'s numerical rank k.
    m_pinv.setZero(m_d, m_r);
    if (m_spec_lhat.rank > 0) {
      Eigen::BDCSVD<Matrix<double>> svd(m_Lhat, Eigen::ComputeThinU | Eigen::ComputeThinV);
      const Index k = m_spec_lhat.rank;
      m_pinv = svd.matrixU().leftCols(k) *
               svd.singularValues().head(k).cwiseInverse().asDiagonal() *
               svd.matrixV().leftCols(k).transpose();
    }
    m_A = m_pinv * m_L.transpose();
    m_b = m_pinv * m_dbeta;
    m_spec_a = spectrum(m_A);
    if (m_l >= 2) m_spec_a_id = spectrum(m_A * helmert_basis(m_l));

    using detail::str_cat;
    if (m_d != m_l)
      m_notes.push_back(str_cat(
          "Theorem 3.1 needs d = ℓ (L̂ square and invertible); here d = ", m_d, " and ℓ = ", m_l,
          ": A = pinv(L̂ᵀ) Lᵀ is the least-squares solution of the stacked identity"));
    if (m_r < m_l)
      m_notes.push_back(str_cat("only r = ", m_r, " token differences (the theorem uses ℓ = ", m_l,
                                "; the vocabulary has ", m_world.vocab_size(),
                                " tokens): L is ℓ × r, not square"));
    if (!diversity_holds())
      m_notes.push_back(str_cat(
          "diversity fails: rank(L̂) = ", m_spec_lhat.rank, " < r = ", m_r,
          (m_r > m_d ? str_cat(" (r > d = ", m_d, " makes this unavoidable)") : std::string())));
    if (m_spec_lhat.rank < m_d)
      m_notes.push_back(str_cat(
          "f_x is determined by next-token probabilities only on the range of L̂ (dimension ",
          m_spec_lhat.rank, " of d = ", m_d, "); its other ", m_d - m_spec_lhat.rank,
          " directions are free, so predictions are compared after projection"));
    m_notes.push_back(str_cat(
        "columns of L sum to zero, so rank(A) <= ℓ − 1 = ", m_l - 1, " (here ", m_spec_a.rank,
        "): only the centred log-posterior (log-odds) is identified, not log p(c|x) itself"));
  }

  model::ConceptWorld<Scalar> m_world;
  TheoryParams m_params;
  std::vector<Index> m_tokens;
  bool m_auto_tokens = false;
  Index m_l = 0, m_d = 0, m_r = 0;
  Matrix<double> m_u, m_log_y, m_post_y, m_L, m_Lhat, m_pinv, m_A;
  Vector<double> m_beta, m_dbeta, m_b;
  SpectrumInfo m_spec_lhat, m_spec_l, m_spec_a, m_spec_a_id;
  std::vector<std::string> m_notes;
};

}  // namespace ergo::theory

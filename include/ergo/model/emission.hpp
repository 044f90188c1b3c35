// SPDX-License-Identifier: MIT
#pragma once

/// \file emission.hpp
/// \brief Emission: how observed discrete variables (the context x, the next token y) are
/// generated from the joint concept configuration c.
///
/// An Emission holds n observed variables; variable j takes values 0..card_j−1 and is described by
/// the table p(o_j = v | c_i) for every joint configuration i. The variables are conditionally
/// independent given c. Tables are stacked into one (Σ_j card_j) × ℓ matrix (variable j occupies
/// rows offset(j) .. offset(j)+card_j−1), which is what batched inference multiplies with one-hot
/// encoded observations.

#include "../core/error.hpp"
#include "../core/logspace.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "concept_model.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace ergo::model {

/// \brief n conditionally independent discrete variables emitted from the joint configuration.
/// \tparam Scalar_ float or double
template <class Scalar_>
class Emission {
 public:
  using Scalar = Scalar_;

  Emission() = default;

  /// \brief Emission from probability tables.
  /// \param tables one card_j × ℓ matrix per variable (card_j >= 2): column i is p(o_j | c_i);
  ///        non-negative, columns summing to one within `tol` (then renormalised exactly)
  /// \param tol tolerance on column sums
  explicit Emission(const std::vector<Matrix<Scalar>>& tables, double tol = 1e-6) {
    const char* who = "Emission::Emission";
    check_arg(!tables.empty(), who, "tables", "at least one variable", "none");
    const Index l = tables[0].cols();
    check_arg(l >= 1, who, "tables[0]", "at least one column (configuration)", l);
    Index rows = 0;
    for (size_t j = 0; j < tables.size(); ++j) {
      const std::string name = detail::str_cat("tables[", j, "]");
      check_arg(tables[j].rows() >= 2, who, name, "at least 2 rows (values)", tables[j].rows());
      check_shape(who, name, tables[j], -1, l);
      check_finite(who, name, tables[j]);
      check_arg(tables[j].minCoeff() >= Scalar(0), who, name, "non-negative entries",
                tables[j].minCoeff());
      m_offsets.push_back(rows);
      m_card.push_back(tables[j].rows());
      rows += tables[j].rows();
    }
    m_prob.resize(rows, l);
    for (size_t j = 0; j < tables.size(); ++j) {
      for (Index i = 0; i < l; ++i) {
        const double s = static_cast<double>(tables[j].col(i).sum());
        check_arg(std::abs(s - 1.0) <= tol, who, detail::str_cat("tables[", j, "]"),
                  detail::str_cat("columns summing to 1 within ", tol),
                  detail::str_cat("column ", i, " summing to ", s));
      }
      m_prob.middleRows(m_offsets[j], m_card[j]) =
          tables[j].array().rowwise() / tables[j].colwise().sum().array();
    }
    finish();
  }

  /// \brief Variables that each depend on a chosen subset of the concepts (issue form (a)).
  /// \param model the concept model (gives ℓ and the configurations)
  /// \param parents parents[j] = the concepts variable j depends on (ascending, may be empty)
  /// \param cpts cpts[j] is card_j × Π_{p ∈ parents[j]} |V_p|, columns = distributions, parent
  ///        configurations in mixed radix (first listed parent fastest)
  static Emission from_concept_cpts(const ConceptModel<Scalar>& model,
                                    const std::vector<std::vector<Index>>& parents,
                                    const std::vector<Matrix<Scalar>>& cpts) {
    const char* who = "Emission::from_concept_cpts";
    check_arg(parents.size() == cpts.size(), who, "cpts",
              detail::str_cat(parents.size(), " tables (one per variable)"), cpts.size());
    const Index l = model.joint_size();
    const IntMatrix& cfg = model.configs();
    std::vector<Matrix<Scalar>> tables;
    for (size_t j = 0; j < parents.size(); ++j) {
      Index pc = 1;
      for (Index p : parents[j]) {
        check_arg(p >= 0 && p < model.size(), who, detail::str_cat("parents[", j, "]"),
                  detail::str_cat("concept indices in [0, ", model.size(), ")"), p);
        pc *= model.graph().cardinality(p);
      }
      check_shape(who, detail::str_cat("cpts[", j, "]"), cpts[j], -1, pc);
      Matrix<Scalar> t(cpts[j].rows(), l);
      for (Index i = 0; i < l; ++i) {
        Index col = 0, stride = 1;
        for (Index p : parents[j]) {
          col += cfg(p, i) * stride;
          stride *= model.graph().cardinality(p);
        }
        t.col(i) = cpts[j].col(col);
      }
      tables.push_back(std::move(t));
    }
    return Emission(tables);
  }

  /// \brief Random form (a): n variables of the given cardinality, each depending on
  /// `parents_per_variable` concepts drawn at random, with Dirichlet(α) CPT columns.
  static Emission random_concept_cpts(const ConceptModel<Scalar>& model, Index n,
                                      Index parents_per_variable, Index cardinality, Rng& rng,
                                      double alpha = 1.0) {
    const char* who = "Emission::random_concept_cpts";
    check_arg(n >= 1, who, "n", ">= 1", n);
    check_range(who, "parents_per_variable", parents_per_variable, Index(0), model.size());
    check_arg(cardinality >= 2, who, "cardinality", ">= 2", cardinality);
    std::vector<std::vector<Index>> parents;
    std::vector<Matrix<Scalar>> cpts;
    for (Index j = 0; j < n; ++j) {
      Index pc = 1;
      std::vector<Index> pa = draw_parents(model, parents_per_variable, rng, pc);
      Matrix<Scalar> t(cardinality, pc);
      for (Index c = 0; c < pc; ++c) t.col(c) = rng.dirichlet<Scalar>(cardinality, alpha);
      parents.push_back(std::move(pa));
      cpts.push_back(std::move(t));
    }
    return from_concept_cpts(model, parents, cpts);
  }

  /// \brief The paper's mixing (its simulation section; docs/model.md): n binary variables,
  /// o = first n entries of P·onehot(i(c)) for a random permutation P, each bit flipped with
  /// probability η. Many-to-one when n < ℓ (every configuration whose permuted index is >= n emits
  /// all zeros, up to noise). η = 0 is deterministic: log-space targets then refuse −inf.
  /// \param l ℓ  \param n observed bits, 1 <= n <= ℓ  \param eta flip probability in [0, 0.5)
  static Emission permuted_one_hot(Index l, Index n, double eta, Rng& rng) {
    const char* who = "Emission::permuted_one_hot";
    check_arg(l >= 1, who, "l", ">= 1", l);
    check_range(who, "n", n, Index(1), l);
    check_arg(eta >= 0 && eta < 0.5, who, "eta", "a value in [0, 0.5)", eta);
    const IndexVector perm = rng.permutation(l);
    std::vector<Matrix<Scalar>> tables(static_cast<size_t>(n), Matrix<Scalar>(2, l));
    for (Index j = 0; j < n; ++j)
      for (Index i = 0; i < l; ++i) {
        const double p1 = perm[i] == j ? 1.0 - eta : eta;
        tables[j](0, i) = static_cast<Scalar>(1.0 - p1);
        tables[j](1, i) = static_cast<Scalar>(p1);
      }
    Emission e(tables);
    e.m_permutation = perm;
    return e;
  }

  /// \brief A stochastic categorical token (issue form (c)): p(y | c_i) = softmax(T_i / τ) with
  /// random logits T ∈ ℝ^{vocab × ℓ}, T_vi ~ N(0, 1). Full support for every τ > 0.
  static Emission softmax_token(Index l, Index vocab, double tau, Rng& rng) {
    const char* who = "Emission::softmax_token";
    check_arg(l >= 1, who, "l", ">= 1", l);
    check_arg(vocab >= 2, who, "vocab", ">= 2", vocab);
    check_positive(who, "tau", tau);
    Matrix<double> logits = rng.normal_matrix<double>(vocab, l) / tau;
    softmax_cols_inplace(logits);
    return Emission(std::vector<Matrix<Scalar>>{logits.cast<Scalar>()});
  }

  /// \brief n binary variables independent of the concepts ("nuisance bits"): p(o_j = 1 | c) = p
  /// for every configuration. They carry no information about c, so they leave every posterior
  /// unchanged, but a predictor that reads its whole input must learn to ignore them.
  /// \param l ℓ \param n number of bits, >= 1 \param p probability of a 1, in (0, 1)
  static Emission nuisance_bits(Index l, Index n, double p = 0.5) {
    const char* who = "Emission::nuisance_bits";
    check_arg(l >= 1, who, "l", ">= 1", l);
    check_arg(n >= 1, who, "n", ">= 1", n);
    check_arg(p > 0.0 && p < 1.0, who, "p", "a value in (0, 1)", p);
    Matrix<Scalar> t(2, l);
    t.row(0).setConstant(static_cast<Scalar>(1.0 - p));
    t.row(1).setConstant(static_cast<Scalar>(p));
    return Emission(std::vector<Matrix<Scalar>>(static_cast<size_t>(n), t));
  }

  /// \brief Binary observations that each depend on a random subset of the concepts (form (a)
  /// with a noisy deterministic mechanism): x_j = g_j(c_{pa_j}) flipped with probability η, where
  /// pa_j is a uniformly drawn set of `parents_per_variable` concepts and g_j a uniformly drawn
  /// Boolean function of their values that is not constant (a constant g_j would be a nuisance
  /// bit). Because each observation sees only part of c, the prior p(c) — and so the concept
  /// graph — shapes the posterior, unlike a one-hot of the joint configuration.
  /// \param model the concept model \param n observations, >= 1
  /// \param parents_per_variable concepts per observation, in [1, m]
  /// \param eta flip probability in [0, 0.5) \param rng random stream
  static Emission random_boolean_functions(const ConceptModel<Scalar>& model, Index n,
                                           Index parents_per_variable, double eta, Rng& rng) {
    const char* who = "Emission::random_boolean_functions";
    check_arg(n >= 1, who, "n", ">= 1", n);
    check_range(who, "parents_per_variable", parents_per_variable, Index(1), model.size());
    check_arg(eta >= 0 && eta < 0.5, who, "eta", "a value in [0, 0.5)", eta);
    std::vector<std::vector<Index>> parents;
    std::vector<Matrix<Scalar>> cpts;
    for (Index j = 0; j < n; ++j) {
      Index pc = 1;
      std::vector<Index> pa = draw_parents(model, parents_per_variable, rng, pc);
      std::vector<int> truth(static_cast<size_t>(pc));
      for (;;) {  // redraw constant functions (probability 2 / 2^pc per draw)
        int ones = 0;
        for (auto& v : truth) ones += (v = rng.uniform() < 0.5 ? 1 : 0);
        if (ones > 0 && ones < pc) break;
      }
      Matrix<Scalar> t(2, pc);
      for (Index c = 0; c < pc; ++c) {
        const double p1 = truth[static_cast<size_t>(c)] ? 1.0 - eta : eta;
        t(0, c) = static_cast<Scalar>(1.0 - p1);
        t(1, c) = static_cast<Scalar>(p1);
      }
      parents.push_back(std::move(pa));
      cpts.push_back(std::move(t));
    }
    return from_concept_cpts(model, parents, cpts);
  }

  /// \brief A categorical token whose logits are additive in the concepts:
  /// p(y | c) = softmax_y( Σ_k a_{y,k,c_k} / (τ √m) ) with a ~ N(0, 1), so every logit has
  /// variance 1/τ², as in softmax_token, but the table has m·|V_k|·|V| free numbers instead of
  /// ℓ·|V|. A predictor can then learn p(y|c) from a number of samples that grows with m, not ℓ,
  /// which keeps next-token learning feasible for large ℓ. Full support for every τ > 0.
  static Emission additive_softmax_token(const ConceptModel<Scalar>& model, Index vocab, double tau,
                                         Rng& rng) {
    const char* who = "Emission::additive_softmax_token";
    check_arg(vocab >= 2, who, "vocab", ">= 2", vocab);
    check_positive(who, "tau", tau);
    const Index m = model.size(), l = model.joint_size();
    std::vector<Index> off(static_cast<size_t>(m));
    Index total = 0;
    for (Index k = 0; k < m; ++k) {
      off[static_cast<size_t>(k)] = total;
      total += model.graph().cardinality(k);
    }
    const Matrix<double> a = rng.normal_matrix<double>(vocab, total);
    const double scale = 1.0 / (tau * std::sqrt(static_cast<double>(m)));
    Matrix<double> logits = Matrix<double>::Zero(vocab, l);
    for (Index i = 0; i < l; ++i)
      for (Index k = 0; k < m; ++k)
        logits.col(i) += a.col(off[static_cast<size_t>(k)] + model.configs()(k, i));
    logits *= scale;
    softmax_cols_inplace(logits);
    return Emission(std::vector<Matrix<Scalar>>{logits.cast<Scalar>()});
  }

  /// \brief The variables of `a` followed by those of `b` (both over the same ℓ configurations).
  /// The result keeps `a`'s permutation() (if any).
  static Emission concatenate(const Emission& a, const Emission& b) {
    const char* who = "Emission::concatenate";
    check_arg(a.size() > 0 && b.size() > 0, who, "a, b", "two non-empty emissions",
              detail::str_cat(a.size(), " and ", b.size(), " variables"));
    check_arg(b.joint_size() == a.joint_size(), who, "b",
              detail::str_cat("tables over ℓ = ", a.joint_size(), " configurations"),
              b.joint_size());
    Emission e;
    e.m_card = a.m_card;
    e.m_card.insert(e.m_card.end(), b.m_card.begin(), b.m_card.end());
    e.m_offsets = a.m_offsets;
    for (Index o : b.m_offsets) e.m_offsets.push_back(o + a.total_cardinality());
    e.m_prob.resize(a.total_cardinality() + b.total_cardinality(), a.joint_size());
    e.m_prob << a.m_prob, b.m_prob;
    e.m_permutation = a.m_permutation;
    e.finish();
    return e;
  }

  /// Number of observed variables n.
  Index size() const { return static_cast<Index>(m_card.size()); }
  /// ℓ, the number of joint configurations the tables cover.
  Index joint_size() const { return m_prob.cols(); }
  Index cardinality(Index j) const { return m_card.at(static_cast<size_t>(j)); }
  const std::vector<Index>& cardinalities() const { return m_card; }
  /// Row offset of variable j in the stacked tables.
  Index offset(Index j) const { return m_offsets.at(static_cast<size_t>(j)); }
  /// Σ_j card_j (rows of the stacked tables, the one-hot width).
  Index total_cardinality() const { return m_prob.rows(); }
  /// Stacked probability tables (Σ card_j) × ℓ.
  const Matrix<Scalar>& prob_table() const { return m_prob; }
  /// Stacked log tables (Σ card_j) × ℓ; −inf where a probability is 0.
  const Matrix<Scalar>& log_table() const { return m_log; }
  /// Log table of variable j: card_j × ℓ.
  auto log_table(Index j) const { return m_log.middleRows(offset(j), cardinality(j)); }
  /// Number of zero probabilities (−inf log entries) in the tables.
  Index zero_count() const { return m_zero_count; }
  /// The permutation used by permuted_one_hot (empty otherwise).
  const IndexVector& permutation() const { return m_permutation; }

  /// \brief Samples the variables for given joint configurations.
  /// \param joint 1 × N joint configuration indices \return n × N observed values
  IntMatrix sample(const IntRowVector& joint, Rng& rng) const {
    IntMatrix out(size(), joint.size());
    for (Index s = 0; s < joint.size(); ++s) {
      const Index i = joint[s];
      check_arg(i >= 0 && i < joint_size(), "Emission::sample", "joint",
                detail::str_cat("indices in [0, ", joint_size(), ")"), i);
      for (Index j = 0; j < size(); ++j) {
        const auto col = m_prob.col(i).segment(m_offsets[j], m_card[j]);
        out(j, s) = static_cast<std::int32_t>(
            m_card[j] == 2 ? (rng.uniform() < static_cast<double>(col[1]) ? 1 : 0)
                           : rng.categorical(col));
      }
    }
    return out;
  }

  /// \brief One-hot encoding of observations: the (Σ_j card_j) × N matrix with a 1 in row
  /// offset(j) + x(j, s) of column s for every variable j (the input a discrete next-token model
  /// sees). \param x n × N observed values \throws InvalidArgument on a bad shape or value
  template <class S = Scalar>
  Matrix<S> one_hot(const IntMatrix& x) const {
    check_observations("Emission::one_hot", "x", x);
    Matrix<S> out = Matrix<S>::Zero(total_cardinality(), x.cols());
    for (Index s = 0; s < x.cols(); ++s)
      for (Index j = 0; j < size(); ++j) out(m_offsets[static_cast<size_t>(j)] + x(j, s), s) = S(1);
    return out;
  }

  /// \brief Checks an n × N observation matrix: shape and every value in [0, card_j).
  void check_observations(const char* who, const char* what, const IntMatrix& x) const {
    check_shape(who, what, x, size(), -1);
    for (Index s = 0; s < x.cols(); ++s)
      for (Index j = 0; j < size(); ++j)
        if (x(j, s) < 0 || x(j, s) >= m_card[j])
          throw_invalid(who, what,
                        detail::str_cat("values of variable ", j, " in [0, ", m_card[j], ")"),
                        detail::str_cat(x(j, s), " in column ", s));
  }

 private:
  // `count` distinct concepts drawn uniformly (ascending), and their number of joint values.
  static std::vector<Index> draw_parents(const ConceptModel<Scalar>& model, Index count, Rng& rng,
                                         Index& configurations) {
    const IndexVector perm = rng.permutation(model.size());
    std::vector<Index> pa(perm.data(), perm.data() + count);
    std::sort(pa.begin(), pa.end());
    configurations = 1;
    for (Index p : pa) configurations *= model.graph().cardinality(p);
    return pa;
  }

  void finish() {
    m_log = m_prob.unaryExpr([](Scalar p) {
      return p > Scalar(0) ? std::log(p) : -std::numeric_limits<Scalar>::infinity();
    });
    m_zero_count = (m_prob.array() == Scalar(0)).count();
  }

  std::vector<Index> m_card, m_offsets;
  Matrix<Scalar> m_prob, m_log;
  Index m_zero_count = 0;
  IndexVector m_permutation;
};

using Emissionf = Emission<float>;
using Emissiond = Emission<double>;

}  // namespace ergo::model

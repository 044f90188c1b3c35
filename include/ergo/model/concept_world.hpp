// SPDX-License-Identifier: MIT
#pragma once

/// \file concept_world.hpp
/// \brief ConceptWorld: the paper's generative model p(x, y) = Σ_c p(x|c) p(y|c) p(c), with
/// ancestral sampling and exact batched inference (docs/model.md).
///
/// Inference over a batch of N contexts is organised as matrix products: the observations are
/// one-hot encoded into a (Σ_j card_j) × N matrix X₁, and the unnormalised log-joint is the GEMM
/// log p(c_i) + [Tᵀ X₁]_{i,s} with T the stacked log-emission tables, followed by a column-wise
/// log-sum-exp. Zero probabilities (deterministic emissions) are handled exactly: a second
/// product counts impossible observations per configuration and sets those entries to −inf, so
/// no 0 · (−inf) = NaN can arise.

#include "../core/error.hpp"
#include "../core/logspace.hpp"
#include "../core/parallel.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "concept_graph.hpp"
#include "concept_model.hpp"
#include "emission.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace ergo::model {

/// \brief N sampled triples (c, x, y); samples are columns.
struct Samples {
  IntMatrix c;     ///< m × N concept values
  IntMatrix x;     ///< n × N observed context values
  IntRowVector y;  ///< 1 × N next tokens
  Index size() const { return c.cols(); }
};

/// \brief Reusable buffers for ConceptWorld's batched inference (avoids page-faulting fresh
/// memory on every call; see docs/model.md).
template <class Scalar>
struct InferenceWorkspace {
  Matrix<Scalar> onehot;  ///< (Σ card_j) × N one-hot observations
  Matrix<Scalar> zeros;   ///< ℓ × N impossible-observation counts (deterministic emissions only)
};

/// \brief A latent concept world: prior, context emission x (n variables), token emission y.
///
/// \code
/// ergo::Rng rng(0);
/// ergo::model::PaperWorldParams p;           // m = 4 binary concepts, ER-1, n = ℓ, η = 0.05
/// auto world = ergo::model::make_paper_world<double>(p, rng);
/// ergo::model::Samples s = world.sample(1000, rng);
/// ergo::MatrixXd lp = world.log_posterior(s.x);   // ℓ × 1000, log p(c | x)
/// double bayes_ce = world.bayes_cross_entropy(s.x, s.y);
/// \endcode
/// \tparam Scalar_ float or double (double recommended: posteriors can be very peaked)
template <class Scalar_>
class ConceptWorld {
 public:
  using Scalar = Scalar_;
  using Samples = ergo::model::Samples;

  ConceptWorld() = default;

  /// \param prior the concept model
  /// \param x the context emission (n variables over the same ℓ configurations)
  /// \param y the next-token emission (exactly one variable; its cardinality is the vocabulary)
  ConceptWorld(ConceptModel<Scalar> prior, Emission<Scalar> x, Emission<Scalar> y)
      : m_prior(std::move(prior)), m_x(std::move(x)), m_y(std::move(y)) {
    const char* who = "ConceptWorld::ConceptWorld";
    const Index l = m_prior.joint_size();
    check_arg(m_x.joint_size() == l, who, "x",
              detail::str_cat("tables over ℓ = ", l, " configurations"), m_x.joint_size());
    check_arg(m_y.joint_size() == l, who, "y",
              detail::str_cat("tables over ℓ = ", l, " configurations"), m_y.joint_size());
    check_arg(m_y.size() == 1, who, "y", "exactly one variable (the next token)", m_y.size());
    // Finite part of the log tables (−inf → 0) and the indicator of zero probabilities.
    m_x_log_finite =
        m_x.log_table().unaryExpr([](Scalar v) { return std::isfinite(v) ? v : Scalar(0); });
    if (m_x.zero_count() > 0)
      m_x_zero = (m_x.prob_table().array() == Scalar(0)).template cast<Scalar>();
    // Concept-value indicator B: ℓ × Σ|V_k| (B(i, off_k + v) = 1 iff configuration i has c_k = v).
    const Index m = m_prior.size();
    Index total = 0;
    for (Index k = 0; k < m; ++k) {
      m_value_offsets.push_back(total);
      total += m_prior.graph().cardinality(k);
    }
    m_indicator.setZero(l, total);
    for (Index i = 0; i < l; ++i)
      for (Index k = 0; k < m; ++k)
        m_indicator(i, m_value_offsets[k] + m_prior.configs()(k, i)) = 1;
  }

  const ConceptModel<Scalar>& prior() const { return m_prior; }
  const ConceptGraph& graph() const { return m_prior.graph(); }
  const Emission<Scalar>& x_emission() const { return m_x; }
  const Emission<Scalar>& y_emission() const { return m_y; }
  /// Number of concepts m.
  Index concept_count() const { return m_prior.size(); }
  /// ℓ, the number of joint configurations.
  Index joint_size() const { return m_prior.joint_size(); }
  /// Number of observed context variables n.
  Index context_size() const { return m_x.size(); }
  /// Cardinalities of the n context variables.
  const std::vector<Index>& x_cardinalities() const { return m_x.cardinalities(); }
  /// Vocabulary size |V| of the next token.
  Index vocab_size() const { return m_y.cardinality(0); }
  /// True when every emission probability is positive (log-space targets are then finite).
  bool has_full_support() const { return m_x.zero_count() == 0 && m_y.zero_count() == 0; }
  /// Row offset of concept k's values in log_marginals() (Σ_{k'<k} |V_k'|).
  Index marginal_offset(Index k) const { return m_value_offsets.at(static_cast<size_t>(k)); }
  /// ℓ × Σ|V_k| indicator B: B(i, marginal_offset(k) + v) = 1 iff configuration i has c_k = v.
  const Matrix<Scalar>& value_indicator() const { return m_indicator; }

  /// \brief Ancestral sampling of N triples (c, x, y): c ~ p(c), x ~ p(x|c), y ~ p(y|c).
  Samples sample(Index n, Rng& rng) const {
    check_arg(n >= 0, "ConceptWorld::sample", "n", ">= 0", n);
    Samples s;
    s.c = m_prior.sample(n, rng);
    const IntRowVector joint = m_prior.joint_indices(s.c);
    s.x = m_x.sample(joint, rng);
    s.y = m_y.sample(joint, rng).row(0);
    return s;
  }

  /// \brief log p(c | x) for a batch of contexts.
  /// \param x n × N context values \return ℓ × N; each column log-sums to 0. Entries are −inf
  /// exactly where a configuration is impossible (only with deterministic emissions).
  /// \throws InvalidArgument on bad shape/values, or a context of probability zero under the model
  Matrix<Scalar> log_posterior(const IntMatrix& x) const {
    Matrix<Scalar> out(joint_size(), x.cols());
    InferenceWorkspace<Scalar> ws;
    log_posterior(x, out, ws);
    return out;
  }

  /// \brief log p(c | x) into preallocated storage (ℓ × N), reusing `ws` across calls.
  void log_posterior(const IntMatrix& x, Eigen::Ref<Matrix<Scalar>> out,
                     InferenceWorkspace<Scalar>& ws) const {
    log_joint(x, out, ws, "ConceptWorld::log_posterior");
    normalise_columns(out, "ConceptWorld::log_posterior", nullptr);
  }

  /// \brief log p(x) for a batch (the evidence): 1 × N.
  RowVector<Scalar> log_evidence(const IntMatrix& x) const {
    Matrix<Scalar> joint(joint_size(), x.cols());
    InferenceWorkspace<Scalar> ws;
    log_joint(x, joint, ws, "ConceptWorld::log_evidence");
    RowVector<Scalar> lse(x.cols());
    normalise_columns(joint, "ConceptWorld::log_evidence", &lse);
    return lse;
  }

  /// \brief log p(c | x, y): ℓ × N. \param x n × N \param y 1 × N tokens in [0, |V|)
  Matrix<Scalar> log_posterior_xy(const IntMatrix& x, const IntRowVector& y) const {
    const char* who = "ConceptWorld::log_posterior_xy";
    check_tokens(who, x, y);
    Matrix<Scalar> out(joint_size(), x.cols());
    InferenceWorkspace<Scalar> ws;
    log_joint(x, out, ws, who);
    for (Index s = 0; s < x.cols(); ++s) out.col(s) += m_y.log_table().row(y[s]).transpose();
    normalise_columns(out, who, nullptr);
    return out;
  }

  /// \brief Per-concept marginals log p(c_k = v | x), concept blocks stacked in order.
  /// \param x n × N \return (Σ_k |V_k|) × N; block k starts at marginal_offset(k)
  /// \throws InvalidArgument naming how many entries are −inf (a value impossible given x)
  Matrix<Scalar> log_marginals(const IntMatrix& x) const {
    const char* who = "ConceptWorld::log_marginals";
    const Matrix<Scalar> lp = log_posterior(x);
    Matrix<Scalar> out = marginalise(lp);
    refuse_non_finite(who, out, "log-marginal");
    return out;
  }

  /// \brief Binary log-odds log p(c_k=1|x) − log p(c_k=0|x) for every concept: m × N.
  /// \throws InvalidArgument if a concept is not binary, or naming how many entries are ±inf
  Matrix<Scalar> log_odds(const IntMatrix& x) const {
    const char* who = "ConceptWorld::log_odds";
    for (Index k = 0; k < concept_count(); ++k)
      check_arg(graph().cardinality(k) == 2, who, "world", "binary concepts only",
                detail::str_cat("concept ", k, " with ", graph().cardinality(k), " values"));
    const Matrix<Scalar> marg = marginalise(log_posterior(x));
    Matrix<Scalar> out(concept_count(), x.cols());
    for (Index k = 0; k < concept_count(); ++k)
      out.row(k) = marg.row(m_value_offsets[k] + 1) - marg.row(m_value_offsets[k]);
    refuse_non_finite(who, out, "log-odds");
    return out;
  }

  /// \brief Centred (clr) log-posterior: log p(c|x) minus its mean over the ℓ configurations.
  /// \return ℓ × N, columns sum to 0 \throws InvalidArgument naming how many entries are −inf
  Matrix<Scalar> clr(const IntMatrix& x) const {
    Matrix<Scalar> lp = log_posterior(x);
    refuse_non_finite("ConceptWorld::clr", lp, "log-posterior");
    lp.rowwise() -= lp.colwise().mean();
    return lp;
  }

  /// \brief Bayes-optimal next-token distribution log p(y|x) = log Σ_c p(y|c) p(c|x): |V| × N.
  Matrix<Scalar> log_predictive(const IntMatrix& x) const {
    const Matrix<Scalar> lp = log_posterior(x);
    const Matrix<Scalar> post = exp_of_log(lp.array()).matrix();
    Matrix<Scalar> pred = m_y.prob_table() * post;
    Matrix<Scalar> out(pred.rows(), pred.cols());
    for (Index s = 0; s < pred.cols(); ++s) {
      if ((pred.col(s).array() > Scalar(0)).all()) {
        out.col(s) = pred.col(s).array().log().matrix();
      } else {  // underflow: recompute this column exactly in log space
        for (Index v = 0; v < pred.rows(); ++v)
          out(v, s) = log_sum_exp((m_y.log_table().row(v).transpose() + lp.col(s)).eval());
      }
    }
    return out;
  }

  /// \brief Exact Bayes cross-entropy of a sample: mean over columns of −log p(y_s | x_s), nats.
  double bayes_cross_entropy(const IntMatrix& x, const IntRowVector& y) const {
    check_tokens("ConceptWorld::bayes_cross_entropy", x, y);
    check_arg(x.cols() > 0, "ConceptWorld::bayes_cross_entropy", "x", "at least one sample", 0);
    const Matrix<Scalar> lp = log_predictive(x);
    double total = 0.0;
    for (Index s = 0; s < x.cols(); ++s) total -= static_cast<double>(lp(y[s], s));
    return total / static_cast<double>(x.cols());
  }

  /// \brief log p(y) = log Σ_c p(y|c) p(c) for every token: the best context-free predictor.
  /// \return |V| entries
  Vector<Scalar> log_marginal_predictive() const {
    Matrix<Scalar> t = m_y.log_table();  // |V| × ℓ
    t.rowwise() += m_prior.log_prior().transpose();
    Vector<Scalar> out(t.rows());
    for (Index v = 0; v < t.rows(); ++v) out[v] = log_sum_exp(t.row(v));
    return out;
  }

  /// \brief Cross-entropy of a sample's tokens under the marginal p(y) (no context): mean over
  /// columns of −log p(y_s), nats. With bayes_cross_entropy it bounds what a context can teach:
  /// CE_marginal − CE_Bayes is the learnable information (an estimate of I(y; x)).
  double marginal_cross_entropy(const IntRowVector& y) const {
    const char* who = "ConceptWorld::marginal_cross_entropy";
    check_arg(y.size() > 0, who, "y", "at least one token", 0);
    const Vector<Scalar> lp = log_marginal_predictive();
    double total = 0.0;
    for (Index s = 0; s < y.size(); ++s) {
      check_arg(y[s] >= 0 && y[s] < vocab_size(), who, "y",
                detail::str_cat("tokens in [0, ", vocab_size(), ")"), y[s]);
      total -= static_cast<double>(lp[y[s]]);
    }
    return total / static_cast<double>(y.size());
  }

  /// \brief Prior marginals log p(c_k = v), stacked like log_marginals(): (Σ_k |V_k|) entries.
  Vector<Scalar> log_prior_marginals() const {
    return marginalise(Matrix<Scalar>(m_prior.log_prior())).col(0);
  }

  /// \brief One-hot encoding of contexts, (Σ_j card_j) × N (see Emission::one_hot).
  template <class S = Scalar>
  Matrix<S> one_hot(const IntMatrix& x) const {
    return m_x.template one_hot<S>(x);
  }

  /// \brief ε(x, y) = 1 − max_c p(c | x, y) (docs/theory.md): 1 × N, in [0, 1 − 1/ℓ].
  RowVector<Scalar> epsilon(const IntMatrix& x, const IntRowVector& y) const {
    const Matrix<Scalar> lp = log_posterior_xy(x, y);
    RowVector<Scalar> eps(x.cols());
    for (Index s = 0; s < x.cols(); ++s) eps[s] = -std::expm1(lp.col(s).maxCoeff());
    return eps;
  }

  /// \brief log p(c | y = j) for every token: ℓ × |V| (column j).
  Matrix<Scalar> log_posterior_given_token() const {
    Matrix<Scalar> out = m_y.log_table().transpose();
    out.colwise() += m_prior.log_prior();
    normalise_columns(out, "ConceptWorld::log_posterior_given_token", nullptr);
    return out;
  }

  /// \brief Marginalises joint log-posteriors (ℓ × N) to stacked per-concept log-marginals
  /// ((Σ|V_k|) × N) by one product with the value indicator, with an exact log-space fallback for
  /// columns whose marginals underflow. Entries may be −inf.
  Matrix<Scalar> marginalise(const Matrix<Scalar>& lp) const {
    check_shape("ConceptWorld::marginalise", "lp", lp, joint_size(), -1);
    const Matrix<Scalar> post = exp_of_log(lp.array()).matrix();
    Matrix<Scalar> marg = m_indicator.transpose() * post;
    Matrix<Scalar> out(marg.rows(), marg.cols());
    for (Index s = 0; s < marg.cols(); ++s) {
      if ((marg.col(s).array() > Scalar(0)).all()) {
        out.col(s) = marg.col(s).array().log().matrix();
        continue;
      }
      for (Index r = 0; r < marg.rows(); ++r) {  // exact: log Σ over configurations with c_k = v
        Scalar acc = -std::numeric_limits<Scalar>::infinity();
        for (Index i = 0; i < joint_size(); ++i)
          if (m_indicator(i, r) != Scalar(0)) acc = log_add_exp(acc, lp(i, s));
        out(r, s) = acc;
      }
    }
    return out;
  }

 private:
  void check_tokens(const char* who, const IntMatrix& x, const IntRowVector& y) const {
    check_arg(y.size() == x.cols(), who, "y",
              detail::str_cat(x.cols(), " tokens (one per column of x)"), y.size());
    for (Index s = 0; s < y.size(); ++s)
      if (y[s] < 0 || y[s] >= vocab_size())
        throw_invalid(who, "y", detail::str_cat("tokens in [0, ", vocab_size(), ")"),
                      detail::str_cat(y[s], " at column ", s));
  }

  // Unnormalised log p(c_i) + log p(x_s | c_i) into out (ℓ × N) via one-hot GEMM(s).
  void log_joint(const IntMatrix& x, Eigen::Ref<Matrix<Scalar>> out, InferenceWorkspace<Scalar>& ws,
                 const char* who) const {
    m_x.check_observations(who, "x", x);
    check_shape(who, "out", out, joint_size(), x.cols());
    const Index n = x.cols(), vars = m_x.size();
    ws.onehot.resize(m_x.total_cardinality(), n);
    ws.onehot.setZero();
    for (Index s = 0; s < n; ++s)
      for (Index j = 0; j < vars; ++j) ws.onehot(m_x.offset(j) + x(j, s), s) = Scalar(1);
    out.noalias() = m_x_log_finite.transpose() * ws.onehot;
    out.colwise() += m_prior.log_prior();
    if (m_x.zero_count() > 0) {
      ws.zeros.resize(joint_size(), n);
      ws.zeros.noalias() = m_x_zero.transpose() * ws.onehot;
      out = (ws.zeros.array() > Scalar(0.5))
                .select(-std::numeric_limits<Scalar>::infinity(), out.array())
                .matrix();
    }
  }

  // Column-wise log-softmax in place (fused per column, parallel over columns). Optionally
  // returns the column log-sum-exps. Refuses columns that are all −inf (impossible context).
  static void normalise_columns(Eigen::Ref<Matrix<Scalar>> m, const char* who,
                                RowVector<Scalar>* lse_out) {
    const Index n = m.cols();
    Index bad_col = -1;
    ERGO_OMP(omp parallel for schedule(static) if (ergo::detail::worth_splitting(n * m.rows())))
    for (Index s = 0; s < n; ++s) {
      auto col = m.col(s);
      const Scalar mx = col.maxCoeff();
      if (!std::isfinite(mx)) {
        ERGO_OMP(omp critical)
        bad_col = s;
        continue;
      }
      const Scalar lse = mx + std::log((col.array() - mx).exp().sum());
      col.array() -= lse;
      if (lse_out) (*lse_out)[s] = lse;
    }
    if (bad_col >= 0)
      throw_invalid(
          who, "x", "contexts with positive probability under the model",
          detail::str_cat("column ", bad_col, " has probability zero (or a non-finite log-joint)"));
  }

  static void refuse_non_finite(const char* who, const Matrix<Scalar>& m, const char* what) {
    const Index bad = count_non_finite(m);
    if (bad > 0)
      throw_invalid(
          who, "x",
          detail::str_cat("finite ", what, " values (emissions with full support, e.g. eta > 0)"),
          detail::str_cat(bad, " infinite entries of ", m.size(),
                          " (a deterministic emission makes some probabilities exactly 0)"));
  }

  ConceptModel<Scalar> m_prior;
  Emission<Scalar> m_x, m_y;
  Matrix<Scalar> m_x_log_finite, m_x_zero, m_indicator;
  std::vector<Index> m_value_offsets;
};

/// \brief How make_paper_world generates the context x from the concepts.
enum class ContextKind {
  /// The paper's mixing: the first n bits of a permuted one-hot of the joint configuration, each
  /// flipped with probability η (Emission::permuted_one_hot). n = ℓ is invertible up to noise.
  PermutedOneHot,
  /// n binary observations, each a noisy Boolean function of a random subset of concepts
  /// (Emission::random_boolean_functions): the prior, hence the graph, shapes the posterior.
  BooleanFunctions,
};

/// \brief How make_paper_world generates the next token y from the concepts.
enum class TokenKind {
  Table,     ///< p(y|c) = softmax of a random ℓ × |V| logit table (Emission::softmax_token)
  Additive,  ///< logits additive in the concepts (Emission::additive_softmax_token)
};

/// \brief The paper's simulation world (docs/model.md), with the knobs the experiments sweep.
struct PaperWorldParams {
  Index m = 4;            ///< number of concepts, >= 1
  Index cardinality = 2;  ///< values per concept, >= 2 (2 = binary, the paper's setting)
  double er_k = 1.0;      ///< ER-k graph: k·m edges (capped at m(m−1)/2), >= 0
  /// Informative context variables n: 1..ℓ for PermutedOneHot, >= 1 for BooleanFunctions;
  /// −1 means ℓ (PermutedOneHot) or 3·m (BooleanFunctions).
  Index n_observed = -1;
  double eta = 0.05;  ///< bit-flip probability, [0, 0.5); 0 makes x deterministic given c
  ContextKind context = ContextKind::PermutedOneHot;  ///< how x is generated
  Index parents_per_observation = 2;  ///< BooleanFunctions: concepts per observation, [1, m]
  /// Nuisance bits appended to x after the n informative variables, independent of c
  /// (Emission::nuisance_bits), >= 0. Default 0.
  Index n_nuisance = 0;
  Index vocab = -1;  ///< next-token vocabulary, >= 2; −1 means ℓ + 1 (diversity needs ℓ+1)
  TokenKind token = TokenKind::Table;  ///< how y is generated
  double tau = 1.0;                    ///< temperature of the random token logits, > 0
  double cpt_low = 0.2;                ///< binary CPTs: p(c_k = 1 | pa) ~ U[cpt_low, cpt_high]
  double cpt_high = 0.8;
  double dirichlet_alpha = 1.0;                 ///< categorical CPT columns ~ Dirichlet(α)
  Index max_joint_size = kDefaultMaxJointSize;  ///< refuse ℓ above this

  /// Informative context variables the world will have (n_observed with −1 resolved).
  Index informative_size() const {
    if (n_observed >= 1) return n_observed;
    if (context == ContextKind::BooleanFunctions) return 3 * m;
    Index l = 1;
    for (Index k = 0; k < m; ++k) l *= cardinality;
    return l;
  }

  void check() const {
    const char* who = "PaperWorldParams::check";
    check_arg(m >= 1, who, "m", ">= 1", m);
    check_arg(cardinality >= 2, who, "cardinality", ">= 2", cardinality);
    check_arg(er_k >= 0, who, "er_k", ">= 0", er_k);
    check_arg(n_observed == -1 || n_observed >= 1, who, "n_observed", "-1 or >= 1", n_observed);
    check_arg(eta >= 0 && eta < 0.5, who, "eta", "a value in [0, 0.5)", eta);
    if (context == ContextKind::BooleanFunctions)
      check_range(who, "parents_per_observation", parents_per_observation, Index(1), m);
    check_arg(n_nuisance >= 0, who, "n_nuisance", ">= 0", n_nuisance);
    check_arg(vocab == -1 || vocab >= 2, who, "vocab", "-1 or >= 2", vocab);
    check_positive(who, "tau", tau);
    RandomCptParams{cpt_low, cpt_high, dirichlet_alpha}.check();
  }
};

/// \brief Builds the paper's world: random ER-k DAG, random CPTs, the context x (the paper's
/// permuted one-hot of the joint configuration truncated to n bits with flip noise η, or noisy
/// Boolean functions of concept subsets), optional nuisance bits after it, and the next token y
/// (a random softmax table or concept-additive logits). Random draws happen in that order, so
/// changing n, η or the nuisance count of a PermutedOneHot world keeps its graph, CPTs,
/// permutation and token table.
template <class Scalar>
ConceptWorld<Scalar> make_paper_world(const PaperWorldParams& p, Rng& rng) {
  p.check();
  ConceptGraph g = ConceptGraph::random_er(p.m, p.er_k, p.cardinality, rng);
  const Index l = g.joint_size();
  check_arg(l <= p.max_joint_size, "make_paper_world", "m",
            detail::str_cat("at most max_joint_size = ", p.max_joint_size, " configurations"),
            detail::str_cat("ℓ = ", l));
  auto prior = ConceptModel<Scalar>::random(
      std::move(g), rng, RandomCptParams{p.cpt_low, p.cpt_high, p.dirichlet_alpha},
      p.max_joint_size);
  const Index n = p.informative_size();
  Emission<Scalar> x;
  if (p.context == ContextKind::PermutedOneHot) {
    check_arg(n <= l, "make_paper_world", "n_observed", detail::str_cat("at most ℓ = ", l), n);
    x = Emission<Scalar>::permuted_one_hot(l, n, p.eta, rng);
  } else {
    x = Emission<Scalar>::random_boolean_functions(prior, n, p.parents_per_observation, p.eta, rng);
  }
  if (p.n_nuisance > 0)
    x = Emission<Scalar>::concatenate(x, Emission<Scalar>::nuisance_bits(l, p.n_nuisance));
  const Index vocab = p.vocab < 0 ? l + 1 : p.vocab;
  auto y = p.token == TokenKind::Table
               ? Emission<Scalar>::softmax_token(l, vocab, p.tau, rng)
               : Emission<Scalar>::additive_softmax_token(prior, vocab, p.tau, rng);
  return ConceptWorld<Scalar>(std::move(prior), std::move(x), std::move(y));
}

using ConceptWorldf = ConceptWorld<float>;
using ConceptWorldd = ConceptWorld<double>;

}  // namespace ergo::model

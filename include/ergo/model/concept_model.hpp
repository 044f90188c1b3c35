// SPDX-License-Identifier: MIT
#pragma once

/// \file concept_model.hpp
/// \brief ConceptModel: conditional probability tables on a ConceptGraph, the prior p(c), joint
/// configuration indexing and ancestral sampling of concepts.

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "concept_graph.hpp"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace ergo::model {

/// \brief How ConceptModel::random draws CPTs.
struct RandomCptParams {
  double binary_low = 0.2;   ///< binary concepts: p(c_k = 1 | pa) ~ U[binary_low, binary_high]
  double binary_high = 0.8;  ///< (the paper's range [0.2, 0.8]); 0 <= low <= high <= 1
  double dirichlet_alpha =
      1.0;  ///< categorical concepts: each column ~ Dirichlet(α, ..., α), α > 0
  void check() const {
    check_range("RandomCptParams::check", "binary_low", binary_low, 0.0, 1.0);
    check_range("RandomCptParams::check", "binary_high", binary_high, binary_low, 1.0);
    check_positive("RandomCptParams::check", "dirichlet_alpha", dirichlet_alpha);
  }
};

/// \brief Default cap on ℓ = Π|V_k| for exact inference (ℓ × N posteriors are dense).
inline constexpr Index kDefaultMaxJointSize = Index(1) << 16;

/// \brief A latent concept model: a ConceptGraph with one CPT per concept.
///
/// The CPT of concept k is a |V_k| × P_k matrix whose column j is the distribution of c_k given
/// parent configuration j; P_k = Π_{p ∈ pa(k)} |V_p| and parent configurations are indexed in mixed
/// radix over the (ascending) parents, the first parent varying fastest. Columns sum to one.
///
/// Joint configurations c = (c_0..c_{m−1}) are indexed in mixed radix with concept 0 varying
/// fastest: i(c) = Σ_k c_k · Π_{k'<k} |V_k'|, so i ∈ [0, ℓ).
///
/// \tparam Scalar_ float or double (double recommended for exact inference)
template <class Scalar_>
class ConceptModel {
 public:
  using Scalar = Scalar_;

  ConceptModel() = default;

  /// \brief Model from user CPTs.
  /// \param graph the DAG
  /// \param cpts one |V_k| × P_k matrix per concept, non-negative, columns summing to one within
  ///        `tol` (then renormalised exactly)
  /// \param max_joint_size refuse models with ℓ above this (exact inference is O(ℓ) per sample)
  /// \param tol tolerance on column sums (default 1e-6)
  ConceptModel(ConceptGraph graph, std::vector<Matrix<Scalar>> cpts,
               Index max_joint_size = kDefaultMaxJointSize, double tol = 1e-6)
      : m_graph(std::move(graph)), m_cpts(std::move(cpts)) {
    const char* who = "ConceptModel::ConceptModel";
    const Index m = m_graph.size();
    const Index l = m_graph.joint_size();
    check_arg(max_joint_size >= 1, who, "max_joint_size", ">= 1", max_joint_size);
    check_arg(l <= max_joint_size, who, "graph",
              detail::str_cat("at most max_joint_size = ", max_joint_size,
                              " joint configurations (raise max_joint_size to allow more)"),
              detail::str_cat("ℓ = ", l));
    check_arg(static_cast<Index>(m_cpts.size()) == m, who, "cpts",
              detail::str_cat(m, " tables (one per concept)"), m_cpts.size());
    for (Index k = 0; k < m; ++k) {
      const std::string name = detail::str_cat("cpts[", k, "]");
      check_shape(who, name, m_cpts[k], m_graph.cardinality(k), parent_configs(k));
      check_finite(who, name, m_cpts[k]);
      check_arg(m_cpts[k].minCoeff() >= Scalar(0), who, name, "non-negative entries",
                m_cpts[k].minCoeff());
      for (Index j = 0; j < m_cpts[k].cols(); ++j) {
        const double s = static_cast<double>(m_cpts[k].col(j).sum());
        check_arg(std::abs(s - 1.0) <= tol, who, name,
                  detail::str_cat("columns summing to 1 within ", tol),
                  detail::str_cat("column ", j, " summing to ", s));
        m_cpts[k].col(j) /= static_cast<Scalar>(s);
      }
    }
    build_index();
  }

  /// \brief Model with random CPTs: binary concepts get p(c_k=1|pa) ~ U[low, high], categorical
  /// ones Dirichlet(α) columns (docs/model.md).
  static ConceptModel random(ConceptGraph graph, Rng& rng, const RandomCptParams& params = {},
                             Index max_joint_size = kDefaultMaxJointSize) {
    params.check();
    std::vector<Matrix<Scalar>> cpts;
    for (Index k = 0; k < graph.size(); ++k) {
      Index pc = 1;
      for (Index p : graph.parents(k)) pc *= graph.cardinality(p);
      const Index card = graph.cardinality(k);
      Matrix<Scalar> t(card, pc);
      for (Index j = 0; j < pc; ++j) {
        if (card == 2) {
          const double p1 = rng.uniform(params.binary_low, params.binary_high);
          t(0, j) = static_cast<Scalar>(1.0 - p1);
          t(1, j) = static_cast<Scalar>(p1);
        } else {
          t.col(j) = rng.dirichlet<Scalar>(card, params.dirichlet_alpha);
        }
      }
      cpts.push_back(std::move(t));
    }
    return ConceptModel(std::move(graph), std::move(cpts), max_joint_size);
  }

  const ConceptGraph& graph() const { return m_graph; }
  /// Number of concepts m.
  Index size() const { return m_graph.size(); }
  /// ℓ, the number of joint configurations.
  Index joint_size() const { return m_configs.cols(); }
  /// CPT of concept k: |V_k| × P_k.
  const Matrix<Scalar>& cpt(Index k) const { return m_cpts.at(static_cast<size_t>(k)); }
  /// Number of parent configurations P_k of concept k.
  Index parent_configs(Index k) const {
    Index pc = 1;
    for (Index p : m_graph.parents(k)) pc *= m_graph.cardinality(p);
    return pc;
  }

  /// All joint configurations: m × ℓ, column i = the values of configuration i.
  const IntMatrix& configs() const { return m_configs; }
  /// Values of joint configuration i (m entries).
  IntVector config(Index i) const {
    check_arg(i >= 0 && i < joint_size(), "ConceptModel::config", "i",
              detail::str_cat("an index in [0, ", joint_size(), ")"), i);
    return m_configs.col(i);
  }
  /// Joint index of a configuration (m values, each in range).
  Index joint_index(const IntVector& c) const {
    check_arg(c.size() == size(), "ConceptModel::joint_index", "c",
              detail::str_cat(size(), " values"), c.size());
    Index i = 0, stride = 1;
    for (Index k = 0; k < size(); ++k) {
      check_arg(c[k] >= 0 && c[k] < m_graph.cardinality(k), "ConceptModel::joint_index",
                detail::str_cat("c[", k, "]"),
                detail::str_cat("a value in [0, ", m_graph.cardinality(k), ")"), c[k]);
      i += c[k] * stride;
      stride *= m_graph.cardinality(k);
    }
    return i;
  }
  /// Joint indices of the columns of an m × N concept matrix: 1 × N.
  IntRowVector joint_indices(const IntMatrix& c) const {
    check_shape("ConceptModel::joint_indices", "c", c, size(), -1);
    IntRowVector out(c.cols());
    for (Index j = 0; j < c.cols(); ++j) out[j] = static_cast<std::int32_t>(joint_index(c.col(j)));
    return out;
  }

  /// log p(c_i) for every joint configuration: ℓ entries (−inf where a CPT entry is 0).
  const Vector<Scalar>& log_prior() const { return m_log_prior; }

  /// Ancestral sampling of N concept vectors: m × N.
  IntMatrix sample(Index n, Rng& rng) const {
    check_arg(n >= 0, "ConceptModel::sample", "n", ">= 0", n);
    IntMatrix c(size(), n);
    for (Index s = 0; s < n; ++s)
      for (Index k : m_graph.topological_order())
        c(k, s) =
            static_cast<std::int32_t>(rng.categorical(m_cpts[k].col(parent_index(k, c.col(s)))));
    return c;
  }

  /// Column of CPT k selected by the parent values inside a full concept vector `c`.
  template <class Derived>
  Index parent_index(Index k, const Eigen::DenseBase<Derived>& c) const {
    Index j = 0, stride = 1;
    for (Index p : m_graph.parents(k)) {
      j += static_cast<Index>(c.derived().coeff(p)) * stride;
      stride *= m_graph.cardinality(p);
    }
    return j;
  }

 private:
  void build_index() {
    const Index m = size(), l = m_graph.joint_size();
    m_configs.resize(m, l);
    for (Index i = 0; i < l; ++i) {
      Index r = i;
      for (Index k = 0; k < m; ++k) {
        m_configs(k, i) = static_cast<std::int32_t>(r % m_graph.cardinality(k));
        r /= m_graph.cardinality(k);
      }
    }
    m_log_prior.setZero(l);
    for (Index i = 0; i < l; ++i)
      for (Index k = 0; k < m; ++k) {
        const Scalar p = m_cpts[k](m_configs(k, i), parent_index(k, m_configs.col(i)));
        m_log_prior[i] += p > Scalar(0) ? std::log(p) : -std::numeric_limits<Scalar>::infinity();
      }
  }

  ConceptGraph m_graph;
  std::vector<Matrix<Scalar>> m_cpts;
  IntMatrix m_configs;
  Vector<Scalar> m_log_prior;
};

using ConceptModelf = ConceptModel<float>;
using ConceptModeld = ConceptModel<double>;

}  // namespace ergo::model

// SPDX-License-Identifier: MIT
#pragma once

/// \file concept_graph.hpp
/// \brief ConceptGraph: a DAG over categorical concepts c_1..c_m (Liu et al., arXiv 2503.08980,
/// §2; docs/model.md).

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"

#include <algorithm>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace ergo::model {

/// \brief A directed acyclic graph over m categorical concepts, each with its own cardinality.
///
/// Concept k takes values 0..|V_k|−1. Edges point from parent to child; p(c) factorises as
/// Π_k p(c_k | pa(c_k)). Parents and children are kept sorted ascending; the topological order is
/// Kahn's algorithm taking the smallest ready index first, so it is deterministic.
///
/// \code
/// ergo::model::ConceptGraph g({2, 2, 3}, {{0, 1}, {0, 2}, {1, 2}});  // 0 → 1 → 2, 0 → 2
/// ergo::Rng rng(1);
/// auto er2 = ergo::model::ConceptGraph::random_er(6, 2.0, 2, rng);    // ER-2 over 6 binary
/// concepts \endcode
class ConceptGraph {
 public:
  using Edge = std::pair<Index, Index>;  ///< (parent, child)

  ConceptGraph() = default;

  /// \param cardinalities |V_k| for k = 0..m−1, each >= 2
  /// \param edges (parent, child) pairs; no self-loops, duplicates or cycles
  /// \throws InvalidArgument naming the offending edge, or the cycle ("2 -> 0 -> 1 -> 2")
  ConceptGraph(std::vector<Index> cardinalities, std::vector<Edge> edges)
      : m_card(std::move(cardinalities)), m_edges(std::move(edges)) {
    const char* who = "ConceptGraph::ConceptGraph";
    const Index m = size();
    check_arg(m >= 1, who, "cardinalities", "at least one concept", "none");
    for (Index k = 0; k < m; ++k)
      check_arg(m_card[k] >= 2, who, detail::str_cat("cardinalities[", k, "]"), ">= 2", m_card[k]);
    m_parents.assign(m, {});
    m_children.assign(m, {});
    for (const Edge& e : m_edges) {
      const auto [p, c] = e;
      check_arg(p >= 0 && p < m && c >= 0 && c < m, who, "edges",
                detail::str_cat("concept indices in [0, ", m, ")"),
                detail::str_cat("edge ", p, " -> ", c));
      check_arg(p != c, who, "edges", "no self-loops", detail::str_cat("edge ", p, " -> ", c));
      check_arg(std::find(m_children[p].begin(), m_children[p].end(), c) == m_children[p].end(),
                who, "edges", "no duplicate edges",
                detail::str_cat("edge ", p, " -> ", c, " twice"));
      m_parents[c].push_back(p);
      m_children[p].push_back(c);
    }
    for (Index k = 0; k < m; ++k) {
      std::sort(m_parents[k].begin(), m_parents[k].end());
      std::sort(m_children[k].begin(), m_children[k].end());
    }
    const std::string cycle = find_cycle();
    if (!cycle.empty()) throw_invalid(who, "edges", "an acyclic graph", "the cycle " + cycle);
    compute_topological_order();
  }

  /// \brief Random DAG in the ER-k convention (NOTEARS `simulate_dag(m, k·m, 'ER')`).
  ///
  /// Draws a random order of the m concepts, then exactly M = min(round(k·m), m(m−1)/2) distinct
  /// pairs uniformly among all pairs, each oriented from the earlier to the later concept in the
  /// order (so the result is acyclic by construction).
  /// \param m number of concepts (>= 1)  \param k expected edges per concept (>= 0)
  /// \param cardinality |V_k| of every concept (>= 2)  \param rng the random stream
  static ConceptGraph random_er(Index m, double k, Index cardinality, Rng& rng) {
    const char* who = "ConceptGraph::random_er";
    check_arg(m >= 1, who, "m", ">= 1", m);
    check_arg(k >= 0 && std::isfinite(k), who, "k", "a finite value >= 0", k);
    check_arg(cardinality >= 2, who, "cardinality", ">= 2", cardinality);
    const Index max_edges = m * (m - 1) / 2;
    const Index want =
        std::min<Index>(static_cast<Index>(std::llround(k * static_cast<double>(m))), max_edges);
    const IndexVector order = rng.permutation(m);
    std::vector<Edge> pairs;  // positions (a < b) in the order
    pairs.reserve(static_cast<size_t>(max_edges));
    for (Index a = 0; a < m; ++a)
      for (Index b = a + 1; b < m; ++b) pairs.emplace_back(a, b);
    rng.shuffle(pairs);
    std::vector<Edge> edges;
    for (Index e = 0; e < want; ++e)
      edges.emplace_back(order[pairs[e].first], order[pairs[e].second]);
    std::sort(edges.begin(), edges.end());
    return ConceptGraph(std::vector<Index>(static_cast<size_t>(m), cardinality), std::move(edges));
  }

  /// Number of concepts m.
  Index size() const { return static_cast<Index>(m_card.size()); }
  /// |V_k|.
  Index cardinality(Index k) const { return m_card.at(static_cast<size_t>(k)); }
  const std::vector<Index>& cardinalities() const { return m_card; }
  /// Parents of concept k, ascending.
  const std::vector<Index>& parents(Index k) const { return m_parents.at(static_cast<size_t>(k)); }
  /// Children of concept k, ascending.
  const std::vector<Index>& children(Index k) const {
    return m_children.at(static_cast<size_t>(k));
  }
  /// A topological order (every parent before its children).
  const std::vector<Index>& topological_order() const { return m_topo; }
  const std::vector<Edge>& edges() const { return m_edges; }
  Index edge_count() const { return static_cast<Index>(m_edges.size()); }

  /// ℓ = Π_k |V_k|, the number of joint configurations; throws if it overflows an Index.
  Index joint_size() const {
    Index l = 1;
    for (Index c : m_card) {
      check_arg(l <= std::numeric_limits<Index>::max() / c, "ConceptGraph::joint_size",
                "cardinalities", "a product that fits in an Index", "overflow");
      l *= c;
    }
    return l;
  }

  /// Human-readable listing: one line per concept with its cardinality and parents.
  std::string to_string() const {
    std::ostringstream os;
    os << "ConceptGraph: " << size() << " concepts, " << edge_count() << " edges\n";
    for (Index k = 0; k < size(); ++k) {
      os << "  c" << k << " (" << m_card[k] << " values)";
      if (!m_parents[k].empty()) {
        os << " <-";
        for (Index p : m_parents[k]) os << " c" << p;
      }
      os << "\n";
    }
    return os.str();
  }

 private:
  // Depth-first search with colours; returns "a -> b -> ... -> a" for the first cycle, or "".
  std::string find_cycle() const {
    const Index m = size();
    std::vector<int> colour(static_cast<size_t>(m), 0);  // 0 new, 1 on stack, 2 done
    std::vector<Index> stack;
    std::string found;
    auto dfs = [&](auto&& self, Index u) -> bool {
      colour[u] = 1;
      stack.push_back(u);
      for (Index v : m_children[u]) {
        if (colour[v] == 1) {
          std::ostringstream os;
          auto it = std::find(stack.begin(), stack.end(), v);
          for (; it != stack.end(); ++it) os << *it << " -> ";
          os << v;
          found = os.str();
          return true;
        }
        if (colour[v] == 0 && self(self, v)) return true;
      }
      stack.pop_back();
      colour[u] = 2;
      return false;
    };
    for (Index k = 0; k < m; ++k)
      if (colour[k] == 0 && dfs(dfs, k)) break;
    return found;
  }

  void compute_topological_order() {
    const Index m = size();
    std::vector<Index> indeg(static_cast<size_t>(m));
    for (Index k = 0; k < m; ++k) indeg[k] = static_cast<Index>(m_parents[k].size());
    m_topo.clear();
    std::vector<Index> ready;
    for (Index k = 0; k < m; ++k)
      if (indeg[k] == 0) ready.push_back(k);
    while (!ready.empty()) {
      const auto it = std::min_element(ready.begin(), ready.end());
      const Index u = *it;
      ready.erase(it);
      m_topo.push_back(u);
      for (Index v : m_children[u])
        if (--indeg[v] == 0) ready.push_back(v);
    }
    ERGO_CHECK(static_cast<Index>(m_topo.size()) == m, "topological order of an acyclic graph");
  }

  std::vector<Index> m_card;
  std::vector<Edge> m_edges;
  std::vector<std::vector<Index>> m_parents, m_children;
  std::vector<Index> m_topo;
};

}  // namespace ergo::model

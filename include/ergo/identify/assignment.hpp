// SPDX-License-Identifier: MIT
#pragma once

/// \file assignment.hpp
/// \brief Rectangular linear assignment (minimum- or maximum-cost one-to-one matching) by the
/// shortest augmenting path method, on doubles.
///
/// Given an r × c cost matrix, find an injective map from the smaller side into the larger that
/// minimises (or maximises) the summed cost. The solver adds one row at a time: a Dijkstra-like
/// search over reduced costs finds the cheapest augmenting path from the new row to a free
/// column, the dual potentials are updated so every reduced cost stays non-negative, and the
/// matching is flipped along the path. Time O(r² c) for r ≤ c; memory O(r + c).
/// References: Jonker & Volgenant (1987); Crouse, "On implementing 2D rectangular assignment
/// algorithms", IEEE TAES 2016.
///
/// \code
/// Eigen::MatrixXd score = corr.cwiseAbs();                    // k × d, k ≤ d
/// ergo::identify::Assignment a = ergo::identify::linear_sum_assignment(score, true);  // maximise
/// // a.row_to_col[i] = column matched to row i; a.total = summed score
/// \endcode

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <Eigen/Core>

#include <cmath>
#include <limits>
#include <vector>

namespace ergo::identify {

/// \brief Result of linear_sum_assignment.
struct Assignment {
  /// Size r: column matched to each row, or −1 if the row is unmatched (only when r > c).
  IndexVector row_to_col;
  /// Size c: row matched to each column, or −1 if the column is unmatched (when c > r).
  IndexVector col_to_row;
  /// Sum of the original costs over matched pairs.
  double total = 0.0;
};

namespace detail {

// Solves min-cost assignment for nr ≤ nc; cost(i, j) accessed through `at`.
template <class At>
void lsap_tall_free(Index nr, Index nc, const At& at, std::vector<Index>& col4row,
                    std::vector<Index>& row4col) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(static_cast<size_t>(nr), 0.0), v(static_cast<size_t>(nc), 0.0);
  std::vector<double> dist(static_cast<size_t>(nc));
  std::vector<Index> pred(static_cast<size_t>(nc));
  std::vector<Index> todo(static_cast<size_t>(nc));  // columns not yet scanned in this search
  std::vector<char> row_seen(static_cast<size_t>(nr)), col_seen(static_cast<size_t>(nc));
  col4row.assign(static_cast<size_t>(nr), -1);
  row4col.assign(static_cast<size_t>(nc), -1);

  for (Index start = 0; start < nr; ++start) {
    std::fill(dist.begin(), dist.end(), inf);
    std::fill(row_seen.begin(), row_seen.end(), 0);
    std::fill(col_seen.begin(), col_seen.end(), 0);
    Index n_todo = nc;
    for (Index j = 0; j < nc; ++j) todo[static_cast<size_t>(nc - 1 - j)] = j;  // any order

    Index i = start;
    double reached = 0.0;  // length of the shortest path found so far
    Index sink = -1;
    while (sink < 0) {
      row_seen[static_cast<size_t>(i)] = 1;
      double best = inf;
      Index best_pos = -1;
      for (Index t = 0; t < n_todo; ++t) {
        const Index j = todo[static_cast<size_t>(t)];
        const double reduced =
            reached + at(i, j) - u[static_cast<size_t>(i)] - v[static_cast<size_t>(j)];
        if (reduced < dist[static_cast<size_t>(j)]) {
          dist[static_cast<size_t>(j)] = reduced;
          pred[static_cast<size_t>(j)] = i;
        }
        // Prefer a free column on ties: it ends the search sooner.
        const double dj = dist[static_cast<size_t>(j)];
        if (dj < best || (dj == best && row4col[static_cast<size_t>(j)] < 0)) {
          best = dj;
          best_pos = t;
        }
      }
      ERGO_CHECK(best_pos >= 0 && best < inf, "assignment search found no finite path");
      reached = best;
      const Index j = todo[static_cast<size_t>(best_pos)];
      todo[static_cast<size_t>(best_pos)] = todo[static_cast<size_t>(n_todo - 1)];
      --n_todo;
      col_seen[static_cast<size_t>(j)] = 1;
      if (row4col[static_cast<size_t>(j)] < 0)
        sink = j;
      else
        i = row4col[static_cast<size_t>(j)];
    }

    // Dual update: keeps reduced costs non-negative and matched edges tight.
    u[static_cast<size_t>(start)] += reached;
    for (Index r = 0; r < nr; ++r)
      if (row_seen[static_cast<size_t>(r)] && r != start)
        u[static_cast<size_t>(r)] +=
            reached - dist[static_cast<size_t>(col4row[static_cast<size_t>(r)])];
    for (Index j = 0; j < nc; ++j)
      if (col_seen[static_cast<size_t>(j)])
        v[static_cast<size_t>(j)] -= reached - dist[static_cast<size_t>(j)];

    // Augment along the predecessor chain from the sink back to `start`.
    Index j = sink;
    for (;;) {
      const Index r = pred[static_cast<size_t>(j)];
      row4col[static_cast<size_t>(j)] = r;
      const Index prev = col4row[static_cast<size_t>(r)];
      col4row[static_cast<size_t>(r)] = j;
      if (r == start) break;
      j = prev;
    }
  }
}

}  // namespace detail

/// \brief Optimal one-to-one assignment on a rectangular cost matrix.
///
/// With r ≤ c every row is matched to a distinct column; with r > c every column is matched to a
/// distinct row (and r − c rows stay unmatched, marked −1).
/// \param cost r × c finite costs (any real scalar type; computed in double)
/// \param maximize maximise the summed cost instead of minimising it
/// \return the matching and its summed (original) cost
/// \throws InvalidArgument on an empty matrix or a non-finite entry
template <class Derived>
Assignment linear_sum_assignment(const Eigen::MatrixBase<Derived>& cost_in, bool maximize = false) {
  const char* who = "linear_sum_assignment";
  const auto& cost = cost_in.eval();
  check_arg(cost.rows() > 0 && cost.cols() > 0, who, "cost", "a non-empty matrix",
            ergo::detail::str_cat(cost.rows(), " x ", cost.cols()));
  check_finite(who, "cost", cost);
  const Matrix<double> c = cost.template cast<double>();
  const double sign = maximize ? -1.0 : 1.0;
  const Index r = c.rows(), k = c.cols();
  std::vector<Index> a4b, b4a;
  Assignment out;
  out.row_to_col = IndexVector::Constant(r, -1);
  out.col_to_row = IndexVector::Constant(k, -1);
  if (r <= k) {
    detail::lsap_tall_free(
        r, k, [&](Index i, Index j) { return sign * c(i, j); }, a4b, b4a);
    for (Index i = 0; i < r; ++i) out.row_to_col[i] = a4b[static_cast<size_t>(i)];
    for (Index j = 0; j < k; ++j) out.col_to_row[j] = b4a[static_cast<size_t>(j)];
  } else {
    detail::lsap_tall_free(
        k, r, [&](Index j, Index i) { return sign * c(i, j); }, a4b, b4a);
    for (Index j = 0; j < k; ++j) out.col_to_row[j] = a4b[static_cast<size_t>(j)];
    for (Index i = 0; i < r; ++i) out.row_to_col[i] = b4a[static_cast<size_t>(i)];
  }
  for (Index i = 0; i < r; ++i)
    if (out.row_to_col[i] >= 0) out.total += c(i, out.row_to_col[i]);
  return out;
}

}  // namespace ergo::identify

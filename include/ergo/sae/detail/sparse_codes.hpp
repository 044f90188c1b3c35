// SPDX-License-Identifier: MIT
#pragma once

/// \file sparse_codes.hpp
/// \brief Compressed sparse codes (per-sample lists of active latents), the per-column top-k
/// selection of the TopK SAE, and the per-latent transposed view used by the sparse backward
/// pass. Private to the sae module.

#include "../../core/parallel.hpp"
#include "../../core/types.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

namespace ergo::sae::detail {

/// \brief Sparse codes of a batch, compressed by sample (CSC over the m × B code matrix), plus
/// the transposed by-latent index used to accumulate gradients without write conflicts.
///
/// Entry e of sample b (start[b] <= e < start[b+1]) is latent index[e] with post-activation
/// value[e] (>= 0; an entry may be 0 when TopK selected a non-positive pre-activation) and
/// pre-activation pre[e]. grad[e] receives ∂L/∂h at that entry during the backward pass.
template <class Scalar>
struct SparseCodes {
  std::vector<Index> start;         ///< B + 1 offsets
  std::vector<std::int32_t> index;  ///< latent of each entry
  std::vector<Scalar> value;        ///< post-activation value
  std::vector<Scalar> grad;         ///< ∂L/∂z, then ∂L/∂h, per entry
  // by-latent view (built by build_latent_view)
  std::vector<Index> lat_start;          ///< m + 1 offsets
  std::vector<std::int32_t> lat_sample;  ///< sample b of each by-latent entry
  std::vector<Scalar> lat_value;         ///< value of each by-latent entry
  std::vector<Scalar> lat_grad;          ///< grad of each by-latent entry
  std::vector<Index> lat_fill;           ///< scratch (m)

  /// Reserves room for `capacity` entries over `batch` samples and `m` latents (no shrinking).
  void reserve(Index batch, Index m, Index capacity) {
    start.resize(static_cast<size_t>(batch + 1));
    if (index.size() < static_cast<size_t>(capacity)) {
      index.resize(static_cast<size_t>(capacity));
      value.resize(static_cast<size_t>(capacity));
      grad.resize(static_cast<size_t>(capacity));
      lat_sample.resize(static_cast<size_t>(capacity));
      lat_value.resize(static_cast<size_t>(capacity));
      lat_grad.resize(static_cast<size_t>(capacity));
    }
    lat_start.resize(static_cast<size_t>(m + 1));
    lat_fill.resize(static_cast<size_t>(m));
  }
  Index batch() const { return static_cast<Index>(start.size()) - 1; }
  Index nnz() const { return start.empty() ? 0 : start.back(); }

  /// Builds lat_start / lat_sample / lat_value / lat_grad from the by-sample lists (counting
  /// sort, O(nnz)); call it once value and grad are final. The values and gradients are copied in
  /// latent order so that the backward pass, which visits each latent's entries d / 32 times,
  /// reads them sequentially.
  void build_latent_view(Index m) {
    std::fill(lat_start.begin(), lat_start.end(), Index(0));
    const Index n = nnz();
    for (Index e = 0; e < n; ++e)
      ++lat_start[static_cast<size_t>(index[static_cast<size_t>(e)]) + 1];
    for (Index i = 0; i < m; ++i)
      lat_start[static_cast<size_t>(i + 1)] += lat_start[static_cast<size_t>(i)];
    std::copy(lat_start.begin(), lat_start.end() - 1, lat_fill.begin());
    const Index B = batch();
    for (Index b = 0; b < B; ++b)
      for (Index e = start[static_cast<size_t>(b)]; e < start[static_cast<size_t>(b + 1)]; ++e) {
        const size_t pos =
            static_cast<size_t>(lat_fill[static_cast<size_t>(index[static_cast<size_t>(e)])]++);
        lat_sample[pos] = static_cast<std::int32_t>(b);
        lat_value[pos] = value[static_cast<size_t>(e)];
        lat_grad[pos] = grad[static_cast<size_t>(e)];
      }
  }
};

/// \brief Code entries collected during a forward pass, so that the sparse path need not scan the
/// m × B codes a second time: one part per thread, each covering one contiguous range of samples
/// in order (as ergo::detail::parallel_for hands them out), each entry appended in latent order.
///
/// A part stops collecting past `cap` entries (its share of a sparse batch's entries): a batch
/// that overflows one is probably dense, and if it still takes the sparse path, complete() is
/// false and the caller gathers the entries by scanning instead.
template <class Scalar>
struct EntryLists {
  struct Part {
    std::vector<std::int32_t> index;
    std::vector<Scalar> value;
    Index first = 0;    ///< first sample of the range
    Index cap = 0;      ///< most entries kept
    bool used = false;  ///< a thread started this part in the current pass
    bool full = false;  ///< an entry was dropped

    /// Starts the range at sample `first_sample`, keeping at most `max_entries` entries.
    void start(Index first_sample, Index max_entries) {
      index.clear();
      value.clear();
      first = first_sample;
      cap = max_entries;
      used = true;
      full = false;
    }
    void add(Index i, Scalar v) {
      if (static_cast<Index>(index.size()) < cap) {
        index.push_back(static_cast<std::int32_t>(i));
        value.push_back(v);
      } else {
        full = true;
      }
    }
  };
  std::vector<Part> parts;

  /// Readies `threads` parts for a new pass (the threads then call parts[t].start).
  void reset(int threads) {
    parts.resize(static_cast<size_t>(std::max(threads, 1)));
    for (Part& p : parts) p.used = false;
  }
  /// True when no part dropped an entry.
  bool complete() const {
    return std::none_of(parts.begin(), parts.end(), [](const Part& p) { return p.used && p.full; });
  }
  /// Copies the entries into `codes` (index, value), whose `start` must hold the per-sample offsets
  /// and whose arrays must have room for them (SparseCodes::reserve). Requires complete().
  void copy_to(SparseCodes<Scalar>& codes) const {
    for (const Part& p : parts) {
      if (!p.used) continue;
      const size_t at = static_cast<size_t>(codes.start[static_cast<size_t>(p.first)]);
      std::copy(p.index.begin(), p.index.end(),
                codes.index.begin() + static_cast<std::ptrdiff_t>(at));
      std::copy(p.value.begin(), p.value.end(),
                codes.value.begin() + static_cast<std::ptrdiff_t>(at));
    }
  }
};

/// top_k_column's selection on the values h[i] (+ bias[i] when kBias).
template <bool kBias, class Scalar>
void top_k_column_impl(const Scalar* h, const Scalar* bias, Index m, Index k, std::int32_t* idx,
                       Scalar* val) {
  struct Cand {
    Scalar v;
    std::int32_t i;
  };
  auto better = [](const Cand& a, const Cand& b) { return a.v > b.v || (a.v == b.v && a.i < b.i); };
  auto at = [h, bias](Index i) {
    if constexpr (kBias) return h[i] + bias[i];
    (void)bias;
    return h[i];
  };
  thread_local std::vector<Cand> cand, work;
  thread_local std::vector<Scalar> gmax;
  thread_local std::vector<std::int32_t> hot;
  // entry r·G + g (r < kRows) belongs to group g; the m − kRows·G last entries to none
  constexpr Index kRows = 8;
  const Index G = m / kRows;
  if (static_cast<Index>(cand.size()) < m + 1) cand.resize(static_cast<size_t>(m + 1));
  Cand* cd = cand.data();
  Index n = 0;
  if (G < 2 * k) {
    for (Index i = 0; i < m; ++i) cd[n++] = {at(i), static_cast<std::int32_t>(i)};
  } else {
    if (static_cast<Index>(gmax.size()) < G) {
      gmax.resize(static_cast<size_t>(G));
      hot.resize(static_cast<size_t>(G));
    }
    Scalar* gm = gmax.data();
    // group maxima: kRows contiguous, vectorised passes
    for (Index g = 0; g < G; ++g) gm[g] = at(g);
    for (Index r = 1; r < kRows; ++r) {
      const Index o = r * G;
      for (Index g = 0; g < G; ++g) {
        const Scalar v = at(o + g);
        gm[g] = gm[g] < v ? v : gm[g];
      }
    }
    const Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>> gmv(gm, G);
    Scalar lo = gmv.minCoeff(), hi = gmv.maxCoeff();  // vectorised
    // invariant: at least k group maxima are >= lo; stop once at most ~1.25 k are
    for (int it = 0; it < 24 && lo < hi; ++it) {
      const Scalar mid = lo + (hi - lo) / Scalar(2);
      if (!(mid > lo)) break;
      std::int32_t c = 0;
      for (Index g = 0; g < G; ++g) c += gm[g] >= mid ? 1 : 0;  // vectorised count
      if (c >= k) {
        lo = mid;
        if (4 * c <= 5 * k) break;
      } else {
        hi = mid;
      }
    }
    std::int32_t* hg = hot.data();
    Index nh = 0;
    for (Index g = 0; g < G; ++g) {
      hg[nh] = static_cast<std::int32_t>(g);
      nh += gm[g] >= lo ? 1 : 0;
    }
    // the entries >= lo of the groups that reach it, row by row: in increasing index order
    for (Index r = 0; r < kRows; ++r) {
      const Index o = r * G;
      for (Index j = 0; j < nh; ++j) {
        const Index i = o + hg[j];
        const Scalar v = at(i);
        cd[n] = {v, static_cast<std::int32_t>(i)};
        n += v >= lo ? 1 : 0;
      }
    }
    for (Index i = kRows * G; i < m; ++i) {
      const Scalar v = at(i);
      cd[n] = {v, static_cast<std::int32_t>(i)};
      n += v >= lo ? 1 : 0;
    }
  }
  // cd[0, n) is in increasing index order; keep its k best in that order
  Index out = 0;
  if (n > k) {
    work.assign(cd, cd + n);
    std::nth_element(work.begin(), work.begin() + (k - 1), work.end(), better);
    const Cand pivot = work[static_cast<size_t>(k - 1)];
    for (Index j = 0; j < n; ++j)
      if (!better(pivot, cd[j])) {  // at least as good as the k-th best
        idx[out] = cd[j].i;
        val[out] = cd[j].v;
        ++out;
      }
  } else {
    for (Index j = 0; j < n; ++j) {
      idx[out] = cd[j].i;
      val[out] = cd[j].v;
      ++out;
    }
  }
}

/// \brief Per-column top-k of `h` (length m), or of h + bias when `bias` (length m) is given:
/// writes the k largest entries' indices (ties: lower index first) into idx and their values into
/// val, ordered by increasing latent index. `h` is only read.
///
/// Branch-light selection: (1) the entries form m / 8 groups, entry r·G + g (r < 8, G = ⌊m / 8⌋)
/// in group g, whose maxima take eight contiguous, vectorised passes; (2) a threshold t with at
/// least k (and, when bisection gets there, at most 1.25 k) group maxima >= t, found by bisection
/// on vectorised counts (t is a lower bound of the k-th largest entry, since k distinct groups
/// each hold an entry >= t); (3) the entries >= t of the groups whose maximum reaches t, and of
/// the m − 8G entries in no group, collected row by row, i.e. in index order (typically ~1.5k
/// candidates); (4) the k-th best candidate (value descending, index ascending) by nth_element
/// on a copy, and an in-order filter. O(m) with a small constant; when k exceeds m / 16 all m
/// entries are candidates.
template <class Scalar>
void top_k_column(const Scalar* h, Index m, Index k, std::int32_t* idx, Scalar* val,
                  const Scalar* bias = nullptr) {
  if (bias != nullptr) return top_k_column_impl<true>(h, bias, m, k, idx, val);
  return top_k_column_impl<false>(h, h, m, k, idx, val);
}

}  // namespace ergo::sae::detail

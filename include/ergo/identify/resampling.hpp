// SPDX-License-Identifier: MIT
#pragma once

/// \file resampling.hpp
/// \brief The statistical layer's resampling tools: sample groups, train/test splits, K-fold
/// assignment, permutations (at group level when groups exist), cluster bootstrap indices,
/// permutation p-values and percentile intervals.
///
/// Samples are indexed 0..N−1 (the columns of F and T). A *group* is a set of samples that share
/// a source (one sequence, one document): they are dependent, so they are always kept on the
/// same side of a split, in the same fold, permuted together and resampled together.
///
/// \code
/// ergo::Rng rng(7);
/// ergo::identify::Groups groups(sequence_id);                 // one id per sample (optional)
/// auto split = ergo::identify::train_test_split(N, 0.25, rng, groups);
/// ergo::IndexVector folds = ergo::identify::fold_assignment(N, 5, rng, groups);
/// ergo::IndexVector perm = ergo::identify::permute_samples(N, rng, groups);   // T.col(perm[i])
/// pairs F.col(i) \endcode

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ergo::identify {

/// \brief Optional group id per sample (samples that share a source share an id).
///
/// Constructible from `std::vector<Index>`, `IntRowVector`, `IntVector` or `IndexVector`; the
/// ids are arbitrary integers (they need not be contiguous). Default-constructed = no groups:
/// every sample is its own group.
class Groups {
 public:
  Groups() = default;
  /// \param ids one group id per sample (size N), or empty for "no groups"
  Groups(std::vector<Index> ids) : m_ids(std::move(ids)) {}  // NOLINT: implicit on purpose
  /// \param ids integer vector (row or column) with one group id per sample
  template <class Derived>
  Groups(const Eigen::DenseBase<Derived>& ids) {  // NOLINT: implicit on purpose
    static_assert(std::is_integral<typename Derived::Scalar>::value,
                  "ergo::identify::Groups: group ids must be integers");
    m_ids.resize(static_cast<size_t>(ids.size()));
    for (Index i = 0; i < ids.size(); ++i)
      m_ids[static_cast<size_t>(i)] = static_cast<Index>(ids(i));
  }
  /// True when no group ids were given.
  bool empty() const { return m_ids.empty(); }
  /// Number of ids given (N, or 0 when empty).
  Index size() const { return static_cast<Index>(m_ids.size()); }
  /// The raw ids.
  const std::vector<Index>& ids() const { return m_ids; }

  /// \brief Throws unless empty or of size n (who: the calling function's name).
  void check_size(const std::string& who, Index n) const {
    check_arg(empty() || size() == n, who, "groups", ergo::detail::str_cat("empty or ", n, " ids"),
              size());
  }

 private:
  std::vector<Index> m_ids;
};

namespace detail {

/// Members of each group (sample indices in increasing order); groups ordered by id value.
/// With no ids, every sample is a singleton group.
inline std::vector<std::vector<Index>> group_members(const Groups& groups, Index n) {
  std::vector<std::vector<Index>> members;
  if (groups.empty()) {
    members.resize(static_cast<size_t>(n));
    for (Index i = 0; i < n; ++i) members[static_cast<size_t>(i)].push_back(i);
    return members;
  }
  std::map<Index, size_t> label;
  for (Index i = 0; i < n; ++i) label.emplace(groups.ids()[static_cast<size_t>(i)], 0);
  size_t next = 0;
  for (auto& kv : label) kv.second = next++;
  members.resize(label.size());
  for (Index i = 0; i < n; ++i) members[label[groups.ids()[static_cast<size_t>(i)]]].push_back(i);
  return members;
}

/// Concatenates a list of index lists into one IndexVector.
inline IndexVector concat_indices(const std::vector<const std::vector<Index>*>& parts) {
  size_t total = 0;
  for (const auto* p : parts) total += p->size();
  IndexVector out(static_cast<Index>(total));
  Index k = 0;
  for (const auto* p : parts)
    for (Index v : *p) out[k++] = v;
  return out;
}

}  // namespace detail

/// \brief Groups of identical columns: samples whose columns of `x` are equal share a group.
///
/// Use it to keep repeated inputs on one side of every split (a context that occurs in both the
/// fitting and the scoring samples lets any injective representation interpolate it). Group ids
/// are 0, 1, … in order of first appearance. \param x k × N integer matrix (e.g. the informative
/// rows of discrete contexts)
template <class Derived>
Groups distinct_column_groups(const Eigen::DenseBase<Derived>& x) {
  static_assert(std::is_integral<typename Derived::Scalar>::value,
                "ergo::identify::distinct_column_groups: columns must be integer");
  std::map<std::vector<Index>, Index> seen;
  std::vector<Index> ids(static_cast<size_t>(x.cols()));
  std::vector<Index> key(static_cast<size_t>(x.rows()));
  for (Index s = 0; s < x.cols(); ++s) {
    for (Index r = 0; r < x.rows(); ++r) key[static_cast<size_t>(r)] = static_cast<Index>(x(r, s));
    const auto it = seen.emplace(key, static_cast<Index>(seen.size())).first;
    ids[static_cast<size_t>(s)] = it->second;
  }
  return Groups(std::move(ids));
}

/// \brief Number of distinct groups among n samples (n when no groups are given).
inline Index count_groups(const Groups& groups, Index n) {
  groups.check_size("count_groups", n);
  return static_cast<Index>(detail::group_members(groups, n).size());
}

/// \brief Indices of a train/test split.
struct Split {
  IndexVector train;  ///< sample indices used for fitting, increasing order
  IndexVector test;   ///< held-out sample indices, increasing order
};

/// \brief Random train/test split; whole groups go to one side.
///
/// Groups are shuffled and assigned to the test side until it holds at least
/// round(test_fraction · n) samples (at least one group on each side).
/// \param n number of samples (≥ 2)
/// \param test_fraction share of samples held out, in (0, 1)
/// \param rng random source (advanced)
/// \param groups optional group id per sample (size n)
/// \return sorted train and test index lists
/// \throws InvalidArgument if n < 2, the fraction is outside (0, 1) or there is only one group
inline Split train_test_split(Index n, double test_fraction, Rng& rng, const Groups& groups = {}) {
  const char* who = "train_test_split";
  check_arg(n >= 2, who, "n", "at least 2 samples", n);
  check_arg(test_fraction > 0.0 && test_fraction < 1.0, who, "test_fraction", "a value in (0, 1)",
            test_fraction);
  groups.check_size(who, n);
  auto members = detail::group_members(groups, n);
  const Index g = static_cast<Index>(members.size());
  check_arg(g >= 2, who, "groups", "at least 2 distinct groups", g);
  IndexVector order = rng.permutation(g);
  const double want = std::round(test_fraction * static_cast<double>(n));
  std::vector<char> is_test(static_cast<size_t>(g), 0);
  Index n_test = 0, g_test = 0;
  for (Index t = 0; t < g; ++t) {
    if (static_cast<double>(n_test) >= want && g_test > 0) break;
    if (g_test == g - 1) break;  // keep at least one group for training
    const size_t grp = static_cast<size_t>(order[t]);
    is_test[grp] = 1;
    n_test += static_cast<Index>(members[grp].size());
    ++g_test;
  }
  std::vector<Index> train, test;
  for (size_t grp = 0; grp < members.size(); ++grp)
    for (Index v : members[grp]) (is_test[grp] ? test : train).push_back(v);
  std::sort(train.begin(), train.end());
  std::sort(test.begin(), test.end());
  Split s;
  s.train = Eigen::Map<IndexVector>(train.data(), static_cast<Index>(train.size()));
  s.test = Eigen::Map<IndexVector>(test.data(), static_cast<Index>(test.size()));
  return s;
}

/// \brief K-fold assignment: fold id in [0, k) per sample, whole groups in one fold.
///
/// Without groups, a random permutation is dealt round-robin (fold sizes differ by at most one).
/// With groups, groups are shuffled, ordered by decreasing size (ties keep the shuffled order)
/// and each goes to the fold with the fewest samples so far.
/// \param n number of samples \param k number of folds, 2 ≤ k ≤ number of groups
/// \return IndexVector of size n with values in [0, k)
inline IndexVector fold_assignment(Index n, Index k, Rng& rng, const Groups& groups = {}) {
  const char* who = "fold_assignment";
  groups.check_size(who, n);
  auto members = detail::group_members(groups, n);
  const Index g = static_cast<Index>(members.size());
  check_arg(k >= 2 && k <= g, who, "k", ergo::detail::str_cat("a value in [2, ", g, "] (groups)"),
            k);
  IndexVector fold(n);
  IndexVector order = rng.permutation(g);
  if (groups.empty()) {
    for (Index t = 0; t < g; ++t) fold[order[t]] = t % k;
    return fold;
  }
  std::vector<Index> ord(order.data(), order.data() + g);
  std::stable_sort(ord.begin(), ord.end(), [&](Index a, Index b) {
    return members[static_cast<size_t>(a)].size() > members[static_cast<size_t>(b)].size();
  });
  std::vector<Index> load(static_cast<size_t>(k), 0);
  for (Index grp : ord) {
    const auto f = static_cast<Index>(std::min_element(load.begin(), load.end()) - load.begin());
    for (Index v : members[static_cast<size_t>(grp)]) fold[v] = f;
    load[static_cast<size_t>(f)] += static_cast<Index>(members[static_cast<size_t>(grp)].size());
  }
  return fold;
}

/// \brief Draws the pairing permutations of a permutation null (see permute_samples); the group
/// structure is analysed once, so drawing B permutations costs O(B n).
class GroupPermuter {
 public:
  /// \param n number of samples \param groups optional group id per sample
  GroupPermuter(Index n, const Groups& groups = {}) : m_n(n), m_plain(groups.empty()) {
    groups.check_size("GroupPermuter", n);
    if (m_plain) return;
    m_members = detail::group_members(groups, n);
    std::map<size_t, std::vector<size_t>> by_size;
    for (size_t grp = 0; grp < m_members.size(); ++grp)
      by_size[m_members[grp].size()].push_back(grp);
    for (auto& kv : by_size) m_by_size.push_back(std::move(kv.second));
  }

  /// One permutation p: pairing F.col(i) with T.col(p[i]) breaks the F–T association.
  IndexVector operator()(Rng& rng) const {
    if (m_plain) return rng.permutation(m_n);
    IndexVector p(m_n);
    for (const auto& same : m_by_size) {
      std::vector<size_t> src = same;
      rng.shuffle(src);
      for (size_t t = 0; t < same.size(); ++t) {
        const auto& dst_m = m_members[same[t]];
        const auto& src_m = m_members[src[t]];
        for (size_t j = 0; j < dst_m.size(); ++j) p[dst_m[j]] = src_m[j];
      }
    }
    return p;
  }

 private:
  Index m_n = 0;
  bool m_plain = true;
  std::vector<std::vector<Index>> m_members;
  std::vector<std::vector<size_t>> m_by_size;  // groups of equal size, by increasing size
};

/// \brief A random pairing permutation for a permutation null.
///
/// Returns p such that pairing F.col(i) with T.col(p[i]) breaks the F–T association. Without
/// groups p is a uniform random permutation of 0..n−1. With groups, whole groups exchange their
/// targets with other groups *of the same size* (position j of one group takes position j of the
/// other, positions in increasing sample order); a group whose size is unique keeps its own
/// targets. This keeps within-group dependence intact, which a row shuffle destroys (a row
/// shuffle makes the null too optimistic when samples of a group are alike). For many draws on
/// the same groups, use GroupPermuter (the same draws, without re-analysing the groups).
/// \param n number of samples \param groups optional group id per sample
/// \return IndexVector of size n, a permutation of 0..n−1
inline IndexVector permute_samples(Index n, Rng& rng, const Groups& groups = {}) {
  return GroupPermuter(n, groups)(rng);
}

/// \brief Number of groups that can exchange targets in permute_samples (groups whose size is
/// shared by at least one other group); n when no groups are given.
inline Index exchangeable_groups(Index n, const Groups& groups = {}) {
  groups.check_size("exchangeable_groups", n);
  if (groups.empty()) return n;
  auto members = detail::group_members(groups, n);
  std::map<size_t, Index> count;
  for (const auto& m : members) ++count[m.size()];
  Index ex = 0;
  for (const auto& kv : count)
    if (kv.second > 1) ex += kv.second;
  return ex;
}

/// \brief Cluster-bootstrap resample: draws as many groups as there are, with replacement, and
/// returns the concatenated sample indices (size varies with groups of unequal size).
/// Without groups this is the ordinary bootstrap (n indices drawn with replacement).
inline IndexVector bootstrap_indices(Index n, Rng& rng, const Groups& groups = {}) {
  groups.check_size("bootstrap_indices", n);
  check_arg(n >= 1, "bootstrap_indices", "n", "at least 1 sample", n);
  if (groups.empty()) {
    IndexVector out(n);
    for (Index i = 0; i < n; ++i)
      out[i] = static_cast<Index>(rng.uniform_int(static_cast<std::uint64_t>(n)));
    return out;
  }
  auto members = detail::group_members(groups, n);
  std::vector<const std::vector<Index>*> parts;
  parts.reserve(members.size());
  for (size_t t = 0; t < members.size(); ++t)
    parts.push_back(&members[static_cast<size_t>(rng.uniform_int(members.size()))]);
  return detail::concat_indices(parts);
}

/// \brief Restricts group ids to a subset of samples: the ids of `idx` in that order (empty in,
/// empty out). Use it to carry groups into a train or test subset.
inline Groups subset_groups(const Groups& groups, const IndexVector& idx) {
  if (groups.empty()) return {};
  std::vector<Index> ids(static_cast<size_t>(idx.size()));
  for (Index i = 0; i < idx.size(); ++i)
    ids[static_cast<size_t>(i)] = groups.ids()[static_cast<size_t>(idx[i])];
  return Groups(std::move(ids));
}

/// \brief Permutation p-value with the +1 correction (Phipson & Smyth 2010):
/// (1 + #{null ≥ observed}) / (B + 1) for `greater` (large statistic = evidence), or with ≤.
/// NaN null values count as at least as extreme (conservative). Never returns 0.
inline double permutation_p_value(double observed, const std::vector<double>& null_values,
                                  bool greater = true) {
  Index extreme = 0;
  for (double v : null_values)
    if (std::isnan(v) || std::isnan(observed) || (greater ? v >= observed : v <= observed))
      ++extreme;
  return static_cast<double>(1 + extreme) / static_cast<double>(null_values.size() + 1);
}

/// \brief The q-quantile (q in [0, 1]) of finite values with linear interpolation (type 7,
/// numpy's default). NaN when no value is finite.
inline double quantile(std::vector<double> values, double q) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return std::isnan(v); }),
               values.end());
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const double pos = q * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return values[lo] + frac * (values[hi] - values[lo]);
}

/// \brief Summary of a permutation null for one statistic.
struct NullSummary {
  double observed = std::numeric_limits<double>::quiet_NaN();  ///< statistic on the real pairing
  double mean = std::numeric_limits<double>::quiet_NaN();      ///< mean of the null values
  double p95 = std::numeric_limits<double>::quiet_NaN();       ///< 95th percentile of the null
  double p_value = std::numeric_limits<double>::quiet_NaN();   ///< Phipson–Smyth p-value
  Index permutations = 0;                                      ///< B
};

/// \brief Builds a NullSummary from the observed value and the B null values.
inline NullSummary summarize_null(double observed, const std::vector<double>& null_values,
                                  bool greater = true) {
  NullSummary s;
  s.observed = observed;
  s.permutations = static_cast<Index>(null_values.size());
  if (null_values.empty()) return s;
  double sum = 0.0;
  Index cnt = 0;
  for (double v : null_values)
    if (!std::isnan(v)) {
      sum += v;
      ++cnt;
    }
  s.mean = cnt > 0 ? sum / static_cast<double>(cnt) : std::numeric_limits<double>::quiet_NaN();
  s.p95 = quantile(null_values, greater ? 0.95 : 0.05);
  s.p_value = permutation_p_value(observed, null_values, greater);
  return s;
}

/// \brief A point estimate with a percentile bootstrap interval.
struct Interval {
  double estimate = std::numeric_limits<double>::quiet_NaN();  ///< value on the full sample
  double lo = std::numeric_limits<double>::quiet_NaN();        ///< lower percentile bound
  double hi = std::numeric_limits<double>::quiet_NaN();        ///< upper percentile bound
  double se = std::numeric_limits<double>::quiet_NaN();        ///< bootstrap standard deviation
  double level = 0.95;                                         ///< coverage level
};

/// \brief Percentile interval of bootstrap replicates at `level` (e.g. 0.95 → 2.5 %, 97.5 %).
inline Interval percentile_interval(double estimate, const std::vector<double>& replicates,
                                    double level = 0.95) {
  check_arg(level > 0.0 && level < 1.0, "percentile_interval", "level", "a value in (0, 1)", level);
  Interval ci;
  ci.estimate = estimate;
  ci.level = level;
  if (replicates.empty()) return ci;
  ci.lo = quantile(replicates, 0.5 * (1.0 - level));
  ci.hi = quantile(replicates, 1.0 - 0.5 * (1.0 - level));
  double m = 0.0, m2 = 0.0;
  Index cnt = 0;
  for (double v : replicates)
    if (!std::isnan(v)) {
      ++cnt;
      const double delta = v - m;
      m += delta / static_cast<double>(cnt);
      m2 += delta * (v - m);
    }
  if (cnt > 1) ci.se = std::sqrt(m2 / static_cast<double>(cnt - 1));
  return ci;
}

/// \brief Gathers columns: out.col(i) = m.col(idx[i]) (cast to double).
template <class Derived>
Matrix<double> gather_columns(const Eigen::MatrixBase<Derived>& m, const IndexVector& idx) {
  Matrix<double> out(m.rows(), idx.size());
  for (Index i = 0; i < idx.size(); ++i) {
    check_arg(idx[i] >= 0 && idx[i] < m.cols(), "gather_columns", "idx",
              ergo::detail::str_cat("indices in [0, ", m.cols(), ")"), idx[i]);
    out.col(i) = m.col(idx[i]).template cast<double>();
  }
  return out;
}

}  // namespace ergo::identify

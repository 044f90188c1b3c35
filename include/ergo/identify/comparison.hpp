// SPDX-License-Identifier: MIT
#pragma once

/// \file comparison.hpp
/// \brief Comparisons of a statistic across repetitions (seeds): the paired difference of two
/// methods measured on the same seeds (mean, t interval, bootstrap interval, exact sign test) and
/// the two one-sided tests (TOST) of equivalence of two independent groups within a margin.
///
/// These answer the questions a simulation study asks of its per-seed numbers: "is A better than
/// B on the same worlds?" (compare_paired) and "are A and B the same up to ±δ?"
/// (equivalence_test). A difference that is not significant is not evidence of equivalence; only
/// the equivalence test can support "holds across settings", and only for the margin it states.
///
/// \code
/// std::vector<double> trained = {...}, untrained = {...};   // one value per seed, same seeds
/// ergo::Rng rng(1);
/// ergo::identify::PairedComparison c = ergo::identify::compare_paired(trained, untrained, rng);
/// // c.mean, [c.boot_lo, c.boot_hi], c.positive / c.negative, c.p_sign
/// ergo::identify::EquivalenceTest e = ergo::identify::equivalence_test(er1, er3, 0.05);  // Welch
/// TOST, α = 0.05
/// // e.equivalent: the 90% interval of the difference lies inside (−0.05, 0.05)
/// \endcode

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "resampling.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace ergo::identify {

namespace detail {

/// Continued fraction of the regularised incomplete beta function (modified Lentz), valid for
/// x < (a + 1)/(a + b + 2).
inline double incomplete_beta_cf(double a, double b, double x) {
  const double tiny = 1e-300, eps = 1e-15;
  double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::abs(d) < tiny) d = tiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
    d = 1.0 + aa * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1.0 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
    d = 1.0 + aa * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1.0 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::abs(del - 1.0) < eps) break;
  }
  return h;
}

}  // namespace detail

/// \brief Regularised incomplete beta function I_x(a, b) for a, b > 0 and x in [0, 1].
inline double regularized_incomplete_beta(double a, double b, double x) {
  const char* who = "regularized_incomplete_beta";
  check_arg(a > 0.0 && b > 0.0, who, "a, b", "positive values", ergo::detail::str_cat(a, ", ", b));
  check_arg(x >= 0.0 && x <= 1.0, who, "x", "a value in [0, 1]", x);
  if (x == 0.0 || x == 1.0) return x;
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  if (x < (a + 1.0) / (a + b + 2.0))
    return std::exp(log_front) * detail::incomplete_beta_cf(a, b, x) / a;
  return 1.0 - std::exp(log_front) * detail::incomplete_beta_cf(b, a, 1.0 - x) / b;
}

/// \brief Cumulative distribution function of Student's t with ν > 0 degrees of freedom.
inline double student_t_cdf(double t, double nu) {
  check_arg(nu > 0.0, "student_t_cdf", "nu", "a positive number of degrees of freedom", nu);
  if (std::isnan(t)) return std::numeric_limits<double>::quiet_NaN();
  if (std::isinf(t)) return t > 0 ? 1.0 : 0.0;
  const double tail = 0.5 * regularized_incomplete_beta(0.5 * nu, 0.5, nu / (nu + t * t));
  return t > 0.0 ? 1.0 - tail : tail;
}

/// \brief Quantile of Student's t: the t with student_t_cdf(t, ν) = p, p in (0, 1).
inline double student_t_quantile(double p, double nu) {
  const char* who = "student_t_quantile";
  check_arg(p > 0.0 && p < 1.0, who, "p", "a value in (0, 1)", p);
  check_arg(nu > 0.0, who, "nu", "a positive number of degrees of freedom", nu);
  double lo = -1.0, hi = 1.0;
  while (student_t_cdf(lo, nu) > p) lo *= 2.0;
  while (student_t_cdf(hi, nu) < p) hi *= 2.0;
  for (int i = 0; i < 200 && hi - lo > 1e-13 * std::max(1.0, std::abs(hi)); ++i) {
    const double mid = 0.5 * (lo + hi);
    (student_t_cdf(mid, nu) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

/// \brief Exact two-sided sign test: p = P(min(X, n − X) ≤ min(positive, negative)) for
/// X ~ Binomial(n, 1/2), n = positive + negative (ties are left out before calling). 1 when n = 0.
inline double sign_test_p_value(Index positive, Index negative) {
  check_arg(positive >= 0 && negative >= 0, "sign_test_p_value", "positive, negative",
            "counts >= 0", ergo::detail::str_cat(positive, ", ", negative));
  const Index n = positive + negative;
  if (n == 0) return 1.0;
  const Index k = std::min(positive, negative);
  double tail = 0.0;  // P(X ≤ k), summed in log space
  for (Index i = 0; i <= k; ++i)
    tail += std::exp(
        std::lgamma(static_cast<double>(n) + 1.0) - std::lgamma(static_cast<double>(i) + 1.0) -
        std::lgamma(static_cast<double>(n - i) + 1.0) - static_cast<double>(n) * std::log(2.0));
  return std::min(1.0, 2.0 * tail);
}

/// \brief Mean and sample standard deviation of the finite values (NaN if none; std 0 for one
/// value), and how many were finite.
struct MeanStd {
  double mean = std::numeric_limits<double>::quiet_NaN(),
         sd = std::numeric_limits<double>::quiet_NaN();
  Index n = 0;
};

inline MeanStd mean_std(const std::vector<double>& v) {
  MeanStd r;
  double s = 0.0;
  for (double x : v)
    if (std::isfinite(x)) {
      s += x;
      ++r.n;
    }
  if (r.n == 0) return r;
  r.mean = s / static_cast<double>(r.n);
  double ss = 0.0;
  for (double x : v)
    if (std::isfinite(x)) ss += (x - r.mean) * (x - r.mean);
  r.sd = r.n > 1 ? std::sqrt(ss / static_cast<double>(r.n - 1)) : 0.0;
  return r;
}

/// \brief Paired difference a − b over repetitions (compare_paired).
struct PairedComparison {
  Index n = 0;                                             ///< pairs with both values finite
  Index positive = 0;                                      ///< pairs with a > b
  Index negative = 0;                                      ///< pairs with a < b
  Index ties = 0;                                          ///< pairs with a == b
  double mean = std::numeric_limits<double>::quiet_NaN();  ///< mean of a − b
  double sd = std::numeric_limits<double>::quiet_NaN();    ///< sample standard deviation of a − b
  double level = 0.95;                                     ///< level of both intervals
  double t_lo = std::numeric_limits<double>::quiet_NaN();  ///< t interval of the mean (n ≥ 2)
  double t_hi = std::numeric_limits<double>::quiet_NaN();
  double boot_lo = std::numeric_limits<double>::quiet_NaN();  ///< percentile bootstrap interval
  double boot_hi = std::numeric_limits<double>::quiet_NaN();
  double p_sign = std::numeric_limits<double>::quiet_NaN();  ///< exact two-sided sign test
};

/// \brief Compares two methods measured on the same repetitions: a[i] and b[i] come from the same
/// seed. Pairs where either value is NaN or infinite are left out (and not counted in n).
/// \param a, b one value per repetition (same length)
/// \param rng random source of the bootstrap (advanced)
/// \param n_bootstrap bootstrap resamples of the pairs (0: no bootstrap interval), default 10 000
/// \param level coverage of the t and bootstrap intervals, in (0, 1), default 0.95
inline PairedComparison compare_paired(const std::vector<double>& a, const std::vector<double>& b,
                                       Rng& rng, Index n_bootstrap = 10000, double level = 0.95) {
  const char* who = "compare_paired";
  check_arg(a.size() == b.size(), who, "b", ergo::detail::str_cat(a.size(), " values (as a)"),
            b.size());
  check_arg(n_bootstrap >= 0, who, "n_bootstrap", "a value >= 0", n_bootstrap);
  check_arg(level > 0.0 && level < 1.0, who, "level", "a value in (0, 1)", level);
  std::vector<double> d;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::isfinite(a[i]) && std::isfinite(b[i])) d.push_back(a[i] - b[i]);
  PairedComparison c;
  c.level = level;
  c.n = static_cast<Index>(d.size());
  if (d.empty()) return c;
  double s = 0.0;
  for (double v : d) {
    s += v;
    c.positive += v > 0.0;
    c.negative += v < 0.0;
    c.ties += v == 0.0;
  }
  c.mean = s / static_cast<double>(c.n);
  c.p_sign = sign_test_p_value(c.positive, c.negative);
  if (c.n >= 2) {
    double ss = 0.0;
    for (double v : d) ss += (v - c.mean) * (v - c.mean);
    c.sd = std::sqrt(ss / static_cast<double>(c.n - 1));
    const double half = student_t_quantile(0.5 + 0.5 * level, static_cast<double>(c.n - 1)) * c.sd /
                        std::sqrt(static_cast<double>(c.n));
    c.t_lo = c.mean - half;
    c.t_hi = c.mean + half;
  } else {
    c.sd = 0.0;
  }
  if (n_bootstrap > 0) {
    std::vector<double> means;
    means.reserve(static_cast<size_t>(n_bootstrap));
    for (Index r = 0; r < n_bootstrap; ++r) {
      double m = 0.0;
      for (Index i = 0; i < c.n; ++i) m += d[rng.uniform_int(static_cast<std::uint64_t>(c.n))];
      means.push_back(m / static_cast<double>(c.n));
    }
    c.boot_lo = quantile(means, 0.5 * (1.0 - level));
    c.boot_hi = quantile(means, 1.0 - 0.5 * (1.0 - level));
  }
  return c;
}

/// \brief Two one-sided tests of equivalence (equivalence_test).
struct EquivalenceTest {
  Index n_a = 0, n_b = 0;  ///< finite values in each group
  double mean_a = std::numeric_limits<double>::quiet_NaN();
  double mean_b = std::numeric_limits<double>::quiet_NaN();
  double difference = std::numeric_limits<double>::quiet_NaN();  ///< mean_a − mean_b
  double se = std::numeric_limits<double>::quiet_NaN();          ///< Welch standard error
  double df = std::numeric_limits<double>::quiet_NaN();          ///< Welch–Satterthwaite df
  double margin = 0.0;                                           ///< δ: equivalent means |Δ| < δ
  double alpha = 0.05;                                           ///< level of each one-sided test
  double ci_lo = std::numeric_limits<double>::quiet_NaN();  ///< (1 − 2α) interval of the difference
  double ci_hi = std::numeric_limits<double>::quiet_NaN();
  double p_value = std::numeric_limits<double>::quiet_NaN();  ///< max of the two one-sided p-values
  bool evaluated = false;   ///< false when a group has fewer than 2 finite values
  bool equivalent = false;  ///< p_value < α (equivalently the interval lies inside (−δ, δ))
};

/// \brief Welch two one-sided tests (Schuirmann's TOST) of |mean_a − mean_b| < margin for two
/// independent groups (e.g. per-seed values of two settings). H0: the difference is ≤ −δ or
/// ≥ δ; equivalence is concluded when both one-sided tests reject at level α, which is the same
/// as the (1 − 2α) Welch interval of the difference lying inside (−δ, δ). NaN/inf values are
/// left out. \param margin δ > 0, in the units of the statistic \param alpha in (0, 0.5)
inline EquivalenceTest equivalence_test(const std::vector<double>& a, const std::vector<double>& b,
                                        double margin, double alpha = 0.05) {
  const char* who = "equivalence_test";
  check_arg(margin > 0.0 && std::isfinite(margin), who, "margin", "a finite value > 0", margin);
  check_arg(alpha > 0.0 && alpha < 0.5, who, "alpha", "a value in (0, 0.5)", alpha);
  auto moments = [](const std::vector<double>& v, Index& n, double& mean, double& var) {
    n = 0;
    double s = 0.0;
    for (double x : v)
      if (std::isfinite(x)) {
        s += x;
        ++n;
      }
    mean = n > 0 ? s / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
    double ss = 0.0;
    for (double x : v)
      if (std::isfinite(x)) ss += (x - mean) * (x - mean);
    var = n > 1 ? ss / static_cast<double>(n - 1) : std::numeric_limits<double>::quiet_NaN();
  };
  EquivalenceTest e;
  e.margin = margin;
  e.alpha = alpha;
  double va = 0.0, vb = 0.0;
  moments(a, e.n_a, e.mean_a, va);
  moments(b, e.n_b, e.mean_b, vb);
  if (e.n_a < 2 || e.n_b < 2) return e;
  e.evaluated = true;
  e.difference = e.mean_a - e.mean_b;
  const double wa = va / static_cast<double>(e.n_a), wb = vb / static_cast<double>(e.n_b);
  e.se = std::sqrt(wa + wb);
  if (!(e.se > 0.0)) {  // both groups constant: the difference is known exactly
    e.df = static_cast<double>(e.n_a + e.n_b - 2);
    e.ci_lo = e.ci_hi = e.difference;
    e.equivalent = std::abs(e.difference) < margin;
    e.p_value = e.equivalent ? 0.0 : 1.0;
    return e;
  }
  e.df = (wa + wb) * (wa + wb) /
         (wa * wa / static_cast<double>(e.n_a - 1) + wb * wb / static_cast<double>(e.n_b - 1));
  const double p_lower = 1.0 - student_t_cdf((e.difference + margin) / e.se, e.df);  // H0: Δ ≤ −δ
  const double p_upper = student_t_cdf((e.difference - margin) / e.se, e.df);  // H0: Δ ≥ δ
  e.p_value = std::max(p_lower, p_upper);
  const double half = student_t_quantile(1.0 - alpha, e.df) * e.se;
  e.ci_lo = e.difference - half;
  e.ci_hi = e.difference + half;
  e.equivalent = e.p_value < alpha;
  return e;
}

}  // namespace ergo::identify

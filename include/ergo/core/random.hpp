// SPDX-License-Identifier: MIT
#pragma once

/// \file random.hpp
/// \brief A portable seeded random number generator with ergo's own distributions.
///
/// std::mt19937_64's output sequence is fixed by the C++ standard, but the standard library's
/// distributions (std::normal_distribution, ...) differ between implementations. Every
/// distribution here is written out in terms of the raw 64-bit stream, so the same seed gives the
/// same numbers with every compiler and standard library (up to the last bits of std::log /
/// std::exp / std::cos, which IEEE-conforming libms agree on for these inputs in practice).

#include "error.hpp"
#include "types.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace ergo {

/// \brief SplitMix64 step: a bijective 64-bit mixer used to derive independent seeds.
inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// \brief Derives the seed of an independent stream `stream` from a base seed.
///
/// Use it to reseed the world, the data and the network of one experiment from one user seed:
/// `Rng world(derive_seed(seed, 0)), data(derive_seed(seed, 1));`.
inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
  return splitmix64(splitmix64(seed) ^ splitmix64(stream + 0x632be59bd9b4e019ULL));
}

/// \brief Seeded random number generator (mt19937_64) with portable distributions.
///
/// \code
/// ergo::Rng rng(42);
/// double u = rng.uniform();            // [0, 1)
/// double z = rng.normal();             // N(0, 1)
/// Index k = rng.categorical(probs);    // index drawn from a probability vector
/// \endcode
class Rng {
 public:
  using result_type = std::uint64_t;

  explicit Rng(std::uint64_t seed = 0) : m_engine(seed), m_seed(seed) {}

  /// The seed this generator was constructed (or last reseeded) with.
  std::uint64_t seed() const { return m_seed; }
  /// Restarts the stream from `seed`.
  void reseed(std::uint64_t seed) {
    m_engine.seed(seed);
    m_seed = seed;
    m_has_spare = false;
  }

  /// Raw 64 random bits (also makes Rng a UniformRandomBitGenerator).
  std::uint64_t operator()() { return m_engine(); }
  static constexpr std::uint64_t min() { return 0; }
  static constexpr std::uint64_t max() { return ~std::uint64_t(0); }

  /// Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(m_engine() >> 11) * 0x1.0p-53; }
  /// Uniform double in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Uniform double in (0, 1): never exactly zero (safe to log).
  double uniform_open() { return (static_cast<double>(m_engine() >> 11) + 0.5) * 0x1.0p-53; }

  /// Uniform integer in [0, n), unbiased (rejection on the 64-bit stream). n must be > 0.
  std::uint64_t uniform_int(std::uint64_t n) {
    check_arg(n > 0, "Rng::uniform_int", "n", "n > 0", n);
    const std::uint64_t limit = max() - (max() % n + 1) % n;  // largest multiple of n, minus one
    std::uint64_t r;
    do {
      r = m_engine();
    } while (r > limit);
    return r % n;
  }
  /// Uniform Index in [lo, hi] (inclusive).
  Index uniform_index(Index lo, Index hi) {
    check_arg(hi >= lo, "Rng::uniform_index", "hi", detail::str_cat(">= lo = ", lo), hi);
    return lo + static_cast<Index>(uniform_int(static_cast<std::uint64_t>(hi - lo) + 1));
  }

  /// Standard normal draw (Box–Muller; the second value of each pair is cached).
  double normal() {
    if (m_has_spare) {
      m_has_spare = false;
      return m_spare;
    }
    const double u1 = uniform_open();
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 6.283185307179586476925286766559 * u2;
    m_spare = r * std::sin(theta);
    m_has_spare = true;
    return r * std::cos(theta);
  }
  /// Normal draw with the given mean and standard deviation.
  double normal(double mean, double stddev) { return mean + stddev * normal(); }

  /// Bernoulli draw: true with probability p (p in [0, 1]).
  bool bernoulli(double p) {
    check_range("Rng::bernoulli", "p", p, 0.0, 1.0);
    return uniform() < p;
  }

  /// Gamma(shape, 1) draw (Marsaglia–Tsang; shape < 1 through the U^(1/shape) boost).
  double gamma(double shape) {
    check_positive("Rng::gamma", "shape", shape);
    if (shape < 1.0) {
      const double u = uniform_open();
      return gamma(shape + 1.0) * std::pow(u, 1.0 / shape);
    }
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x, v;
      do {
        x = normal();
        v = 1.0 + c * x;
      } while (v <= 0.0);
      v = v * v * v;
      const double u = uniform_open();
      if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
      if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
    }
  }

  /// Dirichlet(alpha) draw; alpha entries must be positive. Returns a probability vector.
  template <class Scalar = double>
  Vector<Scalar> dirichlet(const Vector<double>& alpha) {
    check_arg(alpha.size() > 0, "Rng::dirichlet", "alpha", "a non-empty vector", "size 0");
    Vector<double> g(alpha.size());
    for (Index i = 0; i < alpha.size(); ++i) {
      check_positive("Rng::dirichlet", detail::str_cat("alpha[", i, "]"), alpha[i]);
      g[i] = gamma(alpha[i]);
    }
    double s = g.sum();
    if (!(s > 0.0)) {  // every gamma underflowed (tiny alphas): fall back to a random vertex
      g.setZero();
      g[static_cast<Index>(uniform_int(static_cast<std::uint64_t>(alpha.size())))] = 1.0;
      s = 1.0;
    }
    return (g / s).template cast<Scalar>();
  }
  /// Symmetric Dirichlet(alpha, ..., alpha) of dimension k.
  template <class Scalar = double>
  Vector<Scalar> dirichlet(Index k, double alpha) {
    return dirichlet<Scalar>(Vector<double>::Constant(k, alpha));
  }

  /// Index drawn from an unnormalised non-negative weight vector (must have a positive sum).
  template <class Derived>
  Index categorical(const Eigen::DenseBase<Derived>& weights) {
    double total = 0.0;
    for (Index i = 0; i < weights.size(); ++i) {
      const double w = static_cast<double>(weights.derived().coeff(i));
      check_arg(w >= 0.0 && std::isfinite(w), "Rng::categorical", "weights",
                "finite non-negative entries", w);
      total += w;
    }
    check_arg(total > 0.0, "Rng::categorical", "weights", "a positive sum", total);
    const double u = uniform() * total;
    double acc = 0.0;
    Index last_positive = 0;
    for (Index i = 0; i < weights.size(); ++i) {
      const double w = static_cast<double>(weights.derived().coeff(i));
      if (w > 0.0) last_positive = i;
      acc += w;
      if (u < acc) return i;
    }
    return last_positive;  // rounding put u at the very end
  }

  /// Random permutation of 0..n-1 (Fisher–Yates).
  IndexVector permutation(Index n) {
    check_arg(n >= 0, "Rng::permutation", "n", "n >= 0", n);
    IndexVector p(n);
    for (Index i = 0; i < n; ++i) p[i] = i;
    shuffle(p.data(), n);
    return p;
  }

  /// Shuffles `n` elements in place (Fisher–Yates with our unbiased uniform_int).
  template <class T>
  void shuffle(T* data, Index n) {
    for (Index i = n - 1; i > 0; --i) {
      const Index j = static_cast<Index>(uniform_int(static_cast<std::uint64_t>(i) + 1));
      std::swap(data[i], data[j]);
    }
  }
  template <class T>
  void shuffle(std::vector<T>& v) {
    shuffle(v.data(), static_cast<Index>(v.size()));
  }

  /// Matrix of i.i.d. N(mean, stddev²) entries.
  template <class Scalar>
  Matrix<Scalar> normal_matrix(Index rows, Index cols, double mean = 0.0, double stddev = 1.0) {
    Matrix<Scalar> m(rows, cols);
    for (Index j = 0; j < cols; ++j)
      for (Index i = 0; i < rows; ++i) m(i, j) = static_cast<Scalar>(normal(mean, stddev));
    return m;
  }
  /// Matrix of i.i.d. U[lo, hi) entries.
  template <class Scalar>
  Matrix<Scalar> uniform_matrix(Index rows, Index cols, double lo = 0.0, double hi = 1.0) {
    Matrix<Scalar> m(rows, cols);
    for (Index j = 0; j < cols; ++j)
      for (Index i = 0; i < rows; ++i) m(i, j) = static_cast<Scalar>(uniform(lo, hi));
    return m;
  }

  /// Complete state (engine, cached normal) as text, for checkpoints; restore with set_state.
  std::string state() const {
    std::ostringstream os;
    os << m_seed << ' ' << m_has_spare << ' ';
    os.precision(17);
    os << std::hexfloat << m_spare << ' ' << std::defaultfloat << m_engine;
    return os.str();
  }
  /// Restores a state produced by state(); throws InvalidArgument on malformed text.
  void set_state(const std::string& s) {
    std::istringstream is(s);
    std::uint64_t seed = 0;
    bool has_spare = false;
    std::string spare_text;
    std::mt19937_64 engine;
    is >> seed >> has_spare >> spare_text >> engine;
    if (!is)
      throw_invalid("Rng::set_state", "s", "text produced by Rng::state()", "malformed text");
    m_seed = seed;
    m_has_spare = has_spare;
    m_spare = std::strtod(spare_text.c_str(), nullptr);
    m_engine = engine;
  }

 private:
  std::mt19937_64 m_engine;
  std::uint64_t m_seed;
  bool m_has_spare = false;
  double m_spare = 0.0;
};

}  // namespace ergo

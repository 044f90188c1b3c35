// SPDX-License-Identifier: MIT
#pragma once

/// \file synthetic.hpp
/// \brief Planted sparse-feature data with a known dictionary, for testing and benchmarking
/// SAEs: features fire with Zipf-like probabilities, correlated through a low-rank Gaussian
/// copula, with folded-normal magnitudes, along random unit directions.

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"

#include <algorithm>
#include <cmath>

namespace ergo::sae {

/// \brief Parameters of make_sparse_features (defaults: a small SynthSAEBench-like world).
struct SyntheticParams {
  Index d = 64;              ///< input dimension (> 0)
  Index n_features = 256;    ///< number of true features / atoms (> 0)
  Index samples = 20000;     ///< number of samples N (> 0)
  double mean_active = 8.0;  ///< expected number of active features per sample, (0, n_features)
  /// Firing probability p_i = min(p_cap, c·(i+1)^(−zipf_exponent)) with c set so that
  /// Σ p_i = mean_active. Default 0.5 (SynthSAEBench). >= 0.
  double zipf_exponent = 0.5;
  double p_cap = 0.5;  ///< largest firing probability, (0, 1]
  /// Correlated firing: feature i fires iff g_i > Φ⁻¹(1 − p_i), g = (L η + ε)/√(1 + ‖L_i‖²) with
  /// η ~ N(0, I_r), ε ~ N(0, I), L_ij ~ N(0, correlation_scale²). rank 0 = independent firing.
  Index correlation_rank = 4;
  double correlation_scale = 0.5;  ///< >= 0
  double magnitude_mean = 1.0;     ///< magnitudes |N(mean, std²)| (> 0)
  double magnitude_std = 0.25;     ///< >= 0
  double noise_std = 0.0;          ///< isotropic Gaussian noise added to x (>= 0)
  double bias_norm = 0.5;          ///< norm of a random constant offset added to every x (>= 0)

  void check() const {
    const char* who = "SyntheticParams::check";
    check_arg(d > 0, who, "d", "> 0", d);
    check_arg(n_features > 0, who, "n_features", "> 0", n_features);
    check_arg(samples > 0, who, "samples", "> 0", samples);
    check_arg(mean_active > 0 && mean_active < static_cast<double>(n_features) * p_cap, who,
              "mean_active", "a value in (0, n_features · p_cap)", mean_active);
    check_arg(zipf_exponent >= 0, who, "zipf_exponent", ">= 0", zipf_exponent);
    check_arg(p_cap > 0 && p_cap <= 1, who, "p_cap", "a value in (0, 1]", p_cap);
    check_arg(correlation_rank >= 0, who, "correlation_rank", ">= 0", correlation_rank);
    check_arg(correlation_scale >= 0, who, "correlation_scale", ">= 0", correlation_scale);
    check_positive(who, "magnitude_mean", magnitude_mean);
    check_arg(magnitude_std >= 0, who, "magnitude_std", ">= 0", magnitude_std);
    check_arg(noise_std >= 0, who, "noise_std", ">= 0", noise_std);
    check_arg(bias_norm >= 0, who, "bias_norm", ">= 0", bias_norm);
  }
};

/// \brief Planted data: x = D a + bias + noise.
template <class Scalar>
struct SyntheticData {
  Matrix<Scalar> x;                   ///< d × N samples
  Matrix<Scalar> codes;               ///< n × N true feature activations a (>= 0, sparse)
  Matrix<Scalar> dictionary;          ///< d × n unit-norm true atoms D
  Vector<Scalar> bias;                ///< d constant offset
  Vector<double> firing_probability;  ///< n marginal firing probabilities p_i
};

namespace detail {
/// Standard normal quantile Φ⁻¹(q), q in (0, 1), by bisection on Φ (60 halvings: full double
/// resolution over [−40, 40]).
inline double normal_quantile(double q) {
  double lo = -40.0, hi = 40.0;
  for (int it = 0; it < 200 && hi - lo > 1e-13; ++it) {
    const double mid = 0.5 * (lo + hi);
    const double cdf = 0.5 * std::erfc(-mid / std::sqrt(2.0));
    (cdf < q ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}
}  // namespace detail

/// \brief Draws planted sparse-feature data (see SyntheticParams). Reproducible from `rng`.
template <class Scalar>
SyntheticData<Scalar> make_sparse_features(const SyntheticParams& p, Rng& rng) {
  p.check();
  const Index d = p.d, n = p.n_features, N = p.samples, r = p.correlation_rank;
  SyntheticData<Scalar> out;
  // Zipf-like firing probabilities with Σ p_i = mean_active (bisection on the scale c)
  auto total = [&](double c) {
    double s = 0;
    for (Index i = 0; i < n; ++i)
      s += std::min(p.p_cap, c * std::pow(static_cast<double>(i + 1), -p.zipf_exponent));
    return s;
  };
  double lo = 0.0, hi = 1.0;
  while (total(hi) < p.mean_active) hi *= 2.0;
  for (int it = 0; it < 200; ++it) {
    const double mid = 0.5 * (lo + hi);
    (total(mid) < p.mean_active ? lo : hi) = mid;
  }
  out.firing_probability.resize(n);
  Vector<double> thr(n);
  for (Index i = 0; i < n; ++i) {
    out.firing_probability(i) =
        std::min(p.p_cap, hi * std::pow(static_cast<double>(i + 1), -p.zipf_exponent));
    thr(i) = detail::normal_quantile(1.0 - out.firing_probability(i));
  }
  // dictionary and offset
  out.dictionary = rng.normal_matrix<Scalar>(d, n);
  for (Index j = 0; j < n; ++j) out.dictionary.col(j).normalize();
  out.bias = rng.normal_matrix<Scalar>(d, 1).col(0);
  if (out.bias.norm() > Scalar(0)) out.bias *= static_cast<Scalar>(p.bias_norm) / out.bias.norm();
  // copula loadings
  const Matrix<double> L =
      rng.normal_matrix<double>(n, std::max<Index>(r, 1), 0.0, p.correlation_scale);
  Vector<double> denom(n);
  for (Index i = 0; i < n; ++i) denom(i) = r > 0 ? std::sqrt(1.0 + L.row(i).squaredNorm()) : 1.0;
  out.codes = Matrix<Scalar>::Zero(n, N);
  Vector<double> eta(std::max<Index>(r, 1));
  for (Index b = 0; b < N; ++b) {
    for (Index q = 0; q < r; ++q) eta(q) = rng.normal();
    for (Index i = 0; i < n; ++i) {
      double g = rng.normal();
      if (r > 0) g += L.row(i).head(r).dot(eta.head(r));
      if (g / denom(i) > thr(i))
        out.codes(i, b) =
            static_cast<Scalar>(std::abs(rng.normal(p.magnitude_mean, p.magnitude_std)));
    }
  }
  out.x = out.dictionary * out.codes;
  out.x.colwise() += out.bias;
  if (p.noise_std > 0) out.x += rng.normal_matrix<Scalar>(d, N, 0.0, p.noise_std);
  return out;
}

}  // namespace ergo::sae

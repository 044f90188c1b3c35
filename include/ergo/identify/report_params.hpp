// SPDX-License-Identifier: MIT
#pragma once

/// \file report_params.hpp
/// \brief Settings of check_identifiability (report.hpp): the verdict thresholds, the
/// IdentifiabilityParams and the Baseline representations to compare against.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "cca.hpp"
#include "ridge.hpp"

#include <Eigen/Core>

#include <cmath>
#include <cstdint>
#include <string>

namespace ergo::identify {

/// \brief Thresholds of the verdict. Conventions, not the paper's numbers (see file comment).
struct VerdictThresholds {
  double min_rho_min = 0.9;      ///< held-out ρ_min must be ≥ this
  double min_r2 = 0.9;           ///< held-out variance-weighted R² (F → T) must be ≥ this
  double max_p_value = 0.01;     ///< permutation p-values (R² and ρ_min) must be < this
  double max_kappa_w = 10.0;     ///< held-out κ_w = ρ_1/ρ_min must be ≤ this
  double min_selectivity = 0.2;  ///< R² selectivity over the best baseline must be ≥ this
  /// Also require the lower bootstrap bound of ρ_min to exceed the 95th percentile of the null
  /// distribution of the largest held-out canonical correlation.
  bool require_ci_above_null = true;

  void check() const {
    const char* who = "VerdictThresholds::check";
    check_arg(max_p_value > 0.0 && max_p_value <= 1.0, who, "max_p_value", "a value in (0, 1]",
              max_p_value);
    check_arg(max_kappa_w >= 1.0, who, "max_kappa_w", "a value >= 1", max_kappa_w);
  }
};

/// \brief Settings of check_identifiability.
struct IdentifiabilityParams {
  /// Name of the representation (appears in the report). Default "representation".
  std::string name = "representation";
  /// Description of the targets, e.g. "ilr(log p(c|x))". Default "targets".
  std::string target_name = "targets";
  /// Share of samples (whole groups) held out for testing, in (0, 1). Default 0.25.
  double test_fraction = 0.25;
  /// Ridge settings for both directions (default: GCV, or grouped 5-fold with groups).
  RidgeParams ridge = {};
  /// CCA settings (default: plain CCA via QR up to 20 000 training samples, ridge switched on
  /// automatically for a block of dimension p once n_train < 10 p).
  CcaParams cca = {};
  /// Also fit T → F (how much of F the targets explain). Default true.
  bool reverse = true;
  /// Compute out-of-sample MCC (Pearson and Spearman). Default true.
  bool mcc = true;
  /// Permutations of the null (0 disables the null and its verdict criteria). Default 200, so
  /// the smallest attainable p-value 1/201 is below the default threshold 0.01; check() refuses a
  /// count whose smallest p-value 1/(B+1) cannot pass thresholds.max_p_value.
  Index n_permutations = 200;
  /// Bootstrap replicates (0 disables the intervals). Default 1000.
  Index n_bootstrap = 1000;
  /// Bootstrap interval level in (0, 1). Default 0.95.
  double ci_level = 0.95;
  /// Seed of the split, the folds, the permutations and the bootstrap.
  std::uint64_t seed = 0;
  /// Verdict thresholds (conventions).
  VerdictThresholds thresholds = {};

  void check() const {
    const char* who = "IdentifiabilityParams::check";
    check_arg(test_fraction > 0.0 && test_fraction < 1.0, who, "test_fraction", "a value in (0, 1)",
              test_fraction);
    check_arg(n_permutations >= 0, who, "n_permutations", "a value >= 0", n_permutations);
    check_arg(n_bootstrap >= 0, who, "n_bootstrap", "a value >= 0", n_bootstrap);
    check_arg(ci_level > 0.0 && ci_level < 1.0, who, "ci_level", "a value in (0, 1)", ci_level);
    ridge.check();
    cca.check();
    thresholds.check();
    if (n_permutations > 0)
      check_arg(1.0 / static_cast<double>(n_permutations + 1) < thresholds.max_p_value, who,
                "n_permutations",
                ergo::detail::str_cat("a count whose smallest p-value 1/(B+1) is below "
                                      "thresholds.max_p_value = ",
                                      thresholds.max_p_value, " (at least ",
                                      static_cast<Index>(std::ceil(1.0 / thresholds.max_p_value)),
                                      "), or 0 to disable the null"),
                n_permutations);
  }
};

/// \brief A baseline representation to run the same report on (e.g. an untrained network's
/// features): its name and its d' × N features (double; same samples as F).
struct Baseline {
  std::string name;                           ///< label in the report
  Eigen::Ref<const Matrix<double>> features;  ///< d' × N, same samples (columns) as F
  /// Include in the selectivity (F minus the best such baseline). Set false for reference points
  /// that are reported but are not the comparison the verdict should make (e.g. the raw input).
  bool selectivity = true;
};

}  // namespace ergo::identify

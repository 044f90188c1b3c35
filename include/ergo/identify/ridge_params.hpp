// SPDX-License-Identifier: MIT
#pragma once

/// \file ridge_params.hpp
/// \brief Settings of RidgeRegression (ridge.hpp): the penalty selection method, how several
/// outputs are combined in the CV score, and RidgeParams.

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <vector>

namespace ergo::identify {

/// \brief How the ridge penalty is chosen.
enum class RidgeCv {
  Auto,   ///< KFold (grouped) when groups are given, otherwise Gcv
  Gcv,    ///< generalised cross-validation through the eigenbasis (O(d k) per λ)
  Loo,    ///< exact efficient leave-one-out (O(N d k) per λ; for moderate N)
  KFold,  ///< (grouped) K-fold from per-fold Grams
  Fixed,  ///< no search: use lambdas[0] (absolute)
};

/// \brief "auto", "gcv", "loo", "kfold" or "fixed".
inline const char* to_string(RidgeCv m) {
  switch (m) {
    case RidgeCv::Auto:
      return "auto";
    case RidgeCv::Gcv:
      return "gcv";
    case RidgeCv::Loo:
      return "loo";
    case RidgeCv::KFold:
      return "kfold";
    case RidgeCv::Fixed:
      return "fixed";
  }
  return "unknown";
}

/// \brief How the penalty search scores a λ across several outputs.
enum class RidgeSelection {
  /// 1 − Σ_j SSE_j / Σ_j SST_j (default): outputs count by their variance, so the choice is
  /// invariant to rotations of the targets (e.g. to which orthonormal basis ilr uses).
  VarianceWeighted,
  /// Mean of the per-output R²_j (scikit-learn's "uniform_average"): every output counts
  /// equally, so the choice depends on the target basis.
  MeanR2,
};

/// \brief Ridge regression settings.
struct RidgeParams {
  /// Penalty selection method. Default Auto: grouped K-fold with groups, GCV without.
  RidgeCv cv = RidgeCv::Auto;
  /// How the CV scores of several outputs are combined (default VarianceWeighted).
  RidgeSelection selection = RidgeSelection::VarianceWeighted;
  /// Number of folds for KFold, ≥ 2 (reduced to the number of groups if there are fewer).
  Index folds = 5;
  /// Absolute penalties to search. Empty (default): a log-spaced relative grid, see below.
  /// With cv = Fixed exactly one value is required.
  std::vector<double> lambdas = {};
  /// Relative grid: λ = r · mean eigenvalue of the centred Gram (tr(G)/d), r log-spaced in
  /// [grid_min, grid_max] with grid_size points. Defaults 1e-8, 1e2, 21 (two points per decade):
  /// from essentially unpenalised to shrinkage that leaves R² near 0.
  double grid_min = 1e-8;
  double grid_max = 1e2;  ///< upper end of the relative grid (> grid_min)
  Index grid_size = 21;   ///< number of grid points (≥ 1)
  /// Seed of the random fold assignment (KFold).
  std::uint64_t seed = 0;
  /// Samples per block in the accumulation pass (memory d × block doubles per thread); ≥ 1.
  /// 256 keeps a block of a few hundred features in L2 between the copy and the rank update
  /// (at d = 256 the pass ran ~15% faster than with 2048 on the reference VM).
  Index block_size = 256;

  void check() const {
    const char* who = "RidgeParams::check";
    check_arg(folds >= 2, who, "folds", "at least 2", folds);
    check_arg(grid_min > 0.0 && std::isfinite(grid_min), who, "grid_min", "a positive value",
              grid_min);
    check_arg(grid_max > grid_min && std::isfinite(grid_max), who, "grid_max",
              ergo::detail::str_cat("a finite value > grid_min = ", grid_min), grid_max);
    check_arg(grid_size >= 1, who, "grid_size", "at least 1", grid_size);
    check_arg(block_size >= 1, who, "block_size", "at least 1", block_size);
    for (size_t i = 0; i < lambdas.size(); ++i)
      check_arg(lambdas[i] >= 0.0 && std::isfinite(lambdas[i]), who,
                ergo::detail::str_cat("lambdas[", i, "]"), "a finite value >= 0", lambdas[i]);
    if (cv == RidgeCv::Fixed)
      check_arg(lambdas.size() == 1, who, "lambdas", "exactly one value with cv = Fixed",
                lambdas.size());
  }
};

}  // namespace ergo::identify

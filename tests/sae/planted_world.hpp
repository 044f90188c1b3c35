// SPDX-License-Identifier: MIT
#pragma once

// The planted world of the sae suite's recovery tests (defaults_test.cpp, bf16_test.cpp): 64 unit
// atoms in d = 32 (2× overcomplete), 4 active per sample on average (Zipf frequencies,
// correlated firing), 8000 samples (2000 under sanitizers), seed 2024.

#include <ergo/sae.hpp>

#include "common/test_utils.hpp"

namespace ergo::test {

inline sae::SyntheticData<float> planted_sae_world() {
  Rng rng(2024);
  sae::SyntheticParams sp;
  sp.d = 32;
  sp.n_features = 64;
  sp.samples = scaled(8000, 2000);
  sp.mean_active = 4;
  return sae::make_sparse_features<float>(sp, rng);
}

}  // namespace ergo::test

// SPDX-License-Identifier: MIT
#pragma once

/// \file common.hpp
/// \brief Makes ergo's core detail helpers visible inside ergo::nn::detail, so that
/// `detail::str_cat` and `detail::parallel_for` mean the same thing in every nn header.

#include "../../core/error.hpp"
#include "../../core/parallel.hpp"

namespace ergo::nn::detail {
using ::ergo::detail::grain_for;
using ::ergo::detail::loop_threads;
using ::ergo::detail::parallel_for;
using ::ergo::detail::str_cat;
}  // namespace ergo::nn::detail

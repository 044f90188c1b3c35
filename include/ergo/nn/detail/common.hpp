// SPDX-License-Identifier: MIT
#pragma once

/// \file common.hpp
/// \brief Makes ergo's core detail helpers visible inside ergo::nn::detail, so that
/// `detail::str_cat` means the same thing in every nn header.

#include "../../core/error.hpp"

namespace ergo::nn::detail {
using ::ergo::detail::str_cat;
}  // namespace ergo::nn::detail

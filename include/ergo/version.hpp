// ergo: does next-token prediction learn human-interpretable concepts?
// SPDX-License-Identifier: MIT
#pragma once

/// \file version.hpp
/// \brief The single source of ergo's version (CMake reads it from here).

#define ERGO_VERSION_MAJOR 0
#define ERGO_VERSION_MINOR 1
#define ERGO_VERSION_PATCH 0

#define ERGO_STRINGIFY_DETAIL(x) #x
#define ERGO_STRINGIFY(x) ERGO_STRINGIFY_DETAIL(x)
#define ERGO_VERSION_STRING          \
  ERGO_STRINGIFY(ERGO_VERSION_MAJOR) \
  "." ERGO_STRINGIFY(ERGO_VERSION_MINOR) "." ERGO_STRINGIFY(ERGO_VERSION_PATCH)

namespace ergo {
/// \brief The library version as "major.minor.patch".
inline constexpr const char* version() {
  return ERGO_VERSION_STRING;
}
}  // namespace ergo

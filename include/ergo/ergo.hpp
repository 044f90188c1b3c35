// SPDX-License-Identifier: MIT
#pragma once

/// \file ergo.hpp
/// \brief Includes every ergo module. `io` (file formats, checkpoints, streaming) needs
/// nlohmann-json and is included when <nlohmann/json.hpp> is available; `identify`'s probes need
/// LBFGS++ (<LBFGS.h>, Debian liblbfgspp-dev).

#include "core.hpp"
#include "identify.hpp"
#include "model.hpp"
#include "nn.hpp"
#include "sae.hpp"
#include "theory.hpp"
#if defined(__has_include)
#if __has_include(<nlohmann/json.hpp>)
#include "io.hpp"
#endif
#endif

// SPDX-License-Identifier: MIT
#pragma once

/// \file ergo.hpp
/// \brief Includes every ergo module. Besides Eigen, ergo needs two header-only libraries, both
/// part of the ergo::ergo CMake target: nlohmann-json (identify's report, io's file formats;
/// Debian nlohmann-json3-dev) and LBFGS++ (identify's probes; Debian liblbfgspp-dev).

#include "core.hpp"
#include "identify.hpp"
#include "io.hpp"
#include "model.hpp"
#include "nn.hpp"
#include "sae.hpp"
#include "theory.hpp"

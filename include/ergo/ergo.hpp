// SPDX-License-Identifier: MIT
#pragma once

/// \file ergo.hpp
/// \brief Includes every ergo module.

#include "core.hpp"
#include "model.hpp"

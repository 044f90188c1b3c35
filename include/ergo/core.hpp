// SPDX-License-Identifier: MIT
#pragma once

/// \file core.hpp
/// \brief ergo::core — aliases, Status, errors, portable RNG, log-space helpers, callbacks, the
/// Communicator of data-parallel code.

#include "core/bf16_gemm.hpp"
#include "core/blas.hpp"
#include "core/callback.hpp"
#include "core/communicator.hpp"
#include "core/error.hpp"
#include "core/logspace.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"
#include "core/status.hpp"
#include "core/symmetric_eigen.hpp"
#include "core/types.hpp"
#include "version.hpp"

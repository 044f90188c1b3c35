// SPDX-License-Identifier: MIT
#pragma once

/// \file io.hpp
/// \brief ergo::io — NumPy .npy and .safetensors read/write (memory-mapped, atomic), SAE
/// checkpoints in SAELens / sparsify / dictionary_learning layouts, generic training
/// checkpoints, and streaming activation sources.
///
/// Depends on core and nlohmann-json (header-only) and POSIX (mmap, fsync, rename).

#include "io/activation_source.hpp"
#include "io/atomic_write.hpp"
#include "io/checkpoint.hpp"
#include "io/dtype.hpp"
#include "io/error.hpp"
#include "io/mmap.hpp"
#include "io/npy.hpp"
#include "io/sae_metadata.hpp"
#include "io/saelens.hpp"
#include "io/safetensors.hpp"
#include "io/tensor.hpp"

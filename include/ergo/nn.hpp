// SPDX-License-Identifier: MIT
#pragma once

/// \file nn.hpp
/// \brief ergo::nn — dense layers and activations with hand-written backward passes, MLPs,
/// discrete-context encoding (embedding-bag), the unembedding f_y, softmax cross-entropy,
/// optimizers (Adam/AdamW, SGD), learning-rate schedules, gradient clipping, the next-token model
/// p(y|x) = softmax(f_y(y)ᵀ f_x(x)) with its trainer, and finite-difference gradient checks.

#include "core.hpp"
#include "nn/embedding.hpp"
#include "nn/gradcheck.hpp"
#include "nn/layers.hpp"
#include "nn/loss.hpp"
#include "nn/mlp.hpp"
#include "nn/next_token_model.hpp"
#include "nn/optimizer.hpp"
#include "nn/parameter.hpp"
#include "nn/schedule.hpp"
#include "nn/trainer.hpp"

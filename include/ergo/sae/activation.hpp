// SPDX-License-Identifier: MIT
#pragma once

/// \file activation.hpp
/// \brief Activation policies of the elementwise SAE step
/// (detail::step_elementwise<Activation, Penalty>):
/// ReLU and JumpReLU with its straight-through threshold gradient.
///
/// An activation policy maps a pre-activation h_i (bias included) to a code z_i, says whether
/// latent i is active (the gradient ∂L/∂z_i flows to h_i only then), and, if it has a threshold,
/// adds the straight-through pseudo-gradient of θ. Its interface, used in the fused loops:
///
/// - `kSeparateCodes`: z needs its own buffer (h is kept for the backward pass); else z
///   overwrites h;
/// - `kHasThreshold`: has a per-latent threshold θ with a pseudo-gradient (in_window,
///   threshold_part, set_threshold_gradient);
/// - `forward(Scalar h, Index i, Scalar& on)` → z_i from h_i, with on = 1 if latent i fires;
/// - `active(Scalar h, Scalar z, Index i)` → whether ∂L/∂z_i passes to h_i.
///
/// Sparse activations that select latents across a sample or a batch (TopK, BatchTopK) are not
/// elementwise; they live with the sparse kernels (detail/sparse_step.hpp).

#include "../core/types.hpp"

#include <algorithm>
#include <cmath>

namespace ergo::sae {

/// \brief z = ReLU(h) = max(h, 0); active where z > 0.
template <class Scalar>
struct Relu {
  static constexpr bool kSeparateCodes = false;  ///< z overwrites h (ReLU keeps what it needs)
  static constexpr bool kHasThreshold = false;
  Scalar forward(Scalar h, Index /*i*/, Scalar& on) const {
    const Scalar z = std::max(h, Scalar(0));
    on = z > Scalar(0) ? Scalar(1) : Scalar(0);
    return z;
  }
  bool active(Scalar /*h*/, Scalar z, Index /*i*/) const { return z > Scalar(0); }
};

/// \brief z = h·H(h − θ_i) with a per-latent threshold θ (Rajamanoharan et al. 2024).
///
/// Straight-through pseudo-gradient with the rectangle kernel K(u) = 1[|u| < ½] and bandwidth ε:
/// ∂z_i/∂θ_i ≈ −(θ_i/ε) K((h_i − θ_i)/ε). The gradient to h flows through the mask H(h − θ) only.
template <class Scalar>
class JumpRelu {
 public:
  static constexpr bool kSeparateCodes = true;  ///< h is needed again for the θ gradient
  static constexpr bool kHasThreshold = true;

  /// \param theta θ (m values) \param theta_grad where the θ gradient goes (m values)
  /// \param bandwidth ε > 0
  JumpRelu(const Scalar* theta, Scalar* theta_grad, double bandwidth)
      : m_theta(theta), m_theta_grad(theta_grad), m_inv_bw(static_cast<Scalar>(1.0 / bandwidth)) {}

  Scalar forward(Scalar h, Index i, Scalar& on) const {
    on = h > m_theta[i] ? Scalar(1) : Scalar(0);
    return on * h;
  }
  bool active(Scalar h, Scalar /*z*/, Index i) const { return h > m_theta[i]; }
  /// True when (h − θ_i)/ε falls inside the rectangle kernel's window.
  bool in_window(Scalar h, Index i) const {
    return std::abs((h - m_theta[i]) * m_inv_bw) < Scalar(0.5);
  }
  /// −(θ_i/ε)·∂L/∂z_i: this element's straight-through contribution to ∂L/∂θ_i.
  Scalar threshold_part(Scalar dz, Index i) const { return -(m_theta[i] * m_inv_bw) * dz; }
  /// 1/ε (the penalty's straight-through term uses the same kernel).
  Scalar inverse_bandwidth() const { return m_inv_bw; }
  void set_threshold_gradient(Index i, Scalar g) const { m_theta_grad[i] = g; }

 private:
  const Scalar* m_theta;
  Scalar* m_theta_grad;
  Scalar m_inv_bw;
};

}  // namespace ergo::sae

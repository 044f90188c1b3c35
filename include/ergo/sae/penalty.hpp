// SPDX-License-Identifier: MIT
#pragma once

/// \file penalty.hpp
/// \brief Sparsity penalties as policies: L1, decoder-norm-weighted L1, L_p^p, the L0
/// straight-through estimator (elementwise, used by detail::step_elementwise<Activation, Penalty>),
/// and the nuclear norm of a dense branch (used by the Structured SAE).
///
/// An elementwise penalty P(z) = λ (1/B) Σ_b Σ_i ρ(z_bi) is built for one step with λ/B and
/// whatever else it needs (the decoder norms, p). Its interface, used in the fused loops:
///
/// - `kNeedsThreshold`: its gradient reaches θ only (needs an activation with a threshold);
/// - `kSumsCodes`: needs Σ_b z_bi per latent at the end (finish_latent);
/// - `add_value(Scalar& acc, Scalar z, Scalar on, Index i)`: acc += ρ(z_i) (unweighted);
/// - `add_gradient(Scalar dz, Scalar z, Index i)` → ∂L/∂z_i + (λ/B) ρ'(z_i);
/// - `threshold_gradient()` → the penalty's part of ∂L/∂θ_i inside the kernel window;
/// - `finish_latent(i, Σ_b z_bi, W_dec, ∇W_dec)`: gradient terms outside z (decoder norms).
///
/// The value of the loss term is λ (1/B) Σ acc; the step multiplies by λ/B once. A penalty is a
/// small trivially copyable object: the fused loops take a private copy per sample, so that its
/// members live in registers (an object shared into an OpenMP region is read through a pointer
/// that the compiler cannot tell apart from the stores of the loop).

#include "../core/types.hpp"
#include "detail/kernels.hpp"
#include "detail/nuclear_norm.hpp"

#include <cmath>

namespace ergo::sae {

/// \brief L1: ρ(z) = z (codes are >= 0).
template <class Scalar>
class L1Penalty {
 public:
  static constexpr bool kNeedsThreshold = false;
  static constexpr bool kSumsCodes = false;
  /// \param lambda_over_b λ/B
  explicit L1Penalty(double lambda_over_b) : m_lam(static_cast<Scalar>(lambda_over_b)) {}
  void add_value(Scalar& acc, Scalar z, Scalar /*on*/, Index /*i*/) const { acc += z; }
  Scalar add_gradient(Scalar dz, Scalar /*z*/, Index /*i*/) const { return dz + m_lam; }
  Scalar threshold_gradient() const { return Scalar(0); }
  template <class Dec, class GDec>
  void finish_latent(Index, Scalar, const Dec&, GDec&) const {}

 private:
  Scalar m_lam;
};

/// \brief Decoder-norm-weighted L1 (Anthropic's "April update"): ρ_i(z) = z‖d_i‖, so the
/// penalty also has a gradient (λ/B) Σ_b z_bi d_i/‖d_i‖ on decoder column i.
template <class Scalar>
class DecoderNormL1Penalty {
 public:
  static constexpr bool kNeedsThreshold = false;
  static constexpr bool kSumsCodes = true;
  /// \param lambda_over_b λ/B \param decoder_norms ‖d_i‖ for the m decoder columns (kept by the
  ///        caller for the step)
  DecoderNormL1Penalty(double lambda_over_b, const Scalar* decoder_norms)
      : m_lam(static_cast<Scalar>(lambda_over_b)), m_w(decoder_norms) {}
  void add_value(Scalar& acc, Scalar z, Scalar /*on*/, Index i) const { acc += z * m_w[i]; }
  Scalar add_gradient(Scalar dz, Scalar /*z*/, Index i) const { return dz + m_lam * m_w[i]; }
  Scalar threshold_gradient() const { return Scalar(0); }
  /// ∇W_dec[:, i] += (λ/B) (Σ_b z_bi) d_i / ‖d_i‖ (nothing for a zero column).
  template <class Dec, class GDec>
  void finish_latent(Index i, Scalar sum_z, const Dec& decoder, GDec& grad_decoder) const {
    if (m_w[i] > Scalar(0)) grad_decoder.col(i) += (m_lam * sum_z / m_w[i]) * decoder.col(i);
  }

 private:
  Scalar m_lam;
  const Scalar* m_w;
};

/// \brief L_p^p with a floor: ρ(z) = (z + ε_p)^p − ε_p^p on positive codes, whose derivative
/// p (z + ε_p)^{p−1} stays finite for p < 1 (p-annealing; Karvonen et al. 2024). For p = 1 use
/// L1Penalty (the same value up to ε_p, and the step the trainer takes before annealing starts).
template <class Scalar>
class LpPenalty {
 public:
  static constexpr bool kNeedsThreshold = false;
  static constexpr bool kSumsCodes = false;
  /// \param lambda_over_b λ/B \param p exponent in (0, 1] \param epsilon ε_p > 0
  LpPenalty(double lambda_over_b, double p, double epsilon)
      : m_p(static_cast<Scalar>(p)),
        m_eps(static_cast<Scalar>(epsilon)),
        m_eps_p(std::pow(m_eps, m_p)),
        m_lam_p(static_cast<Scalar>(lambda_over_b) * m_p) {}
  void add_value(Scalar& acc, Scalar z, Scalar /*on*/, Index /*i*/) const {
    if (z > Scalar(0)) acc += value(z);
  }
  Scalar add_gradient(Scalar dz, Scalar z, Index /*i*/) const {
    return dz + m_lam_p * std::pow(z + m_eps, m_p - Scalar(1));
  }
  Scalar threshold_gradient() const { return Scalar(0); }
  template <class Dec, class GDec>
  void finish_latent(Index, Scalar, const Dec&, GDec&) const {}

  /// ρ(z) = (z + ε_p)^p − ε_p^p.
  Scalar value(Scalar z) const { return std::pow(z + m_eps, m_p) - m_eps_p; }
  /// ρ'(z) = p (z + ε_p)^{p−1}.
  Scalar derivative(Scalar z) const { return m_p * std::pow(z + m_eps, m_p - Scalar(1)); }

  /// \brief Mean over the columns of `z` (m × B codes) of Σ_i ρ(z_i) over positive entries, in
  /// double (the trainer's λ rescaling when p switches). 0 for an empty batch.
  template <class Derived>
  static double mean_value(const Eigen::MatrixBase<Derived>& z, double p, double epsilon) {
    const Scalar ps = static_cast<Scalar>(p);
    const Scalar eps_p = static_cast<Scalar>(epsilon);
    const Scalar eps_pp = std::pow(eps_p, ps);
    double s = 0.0;
    for (Index b = 0; b < z.cols(); ++b)
      for (Index i = 0; i < z.rows(); ++i) {
        const Scalar v = z(i, b);
        if (v > Scalar(0)) s += static_cast<double>(std::pow(v + eps_p, ps) - eps_pp);
      }
    return z.cols() > 0 ? s / static_cast<double>(z.cols()) : 0.0;
  }

 private:
  Scalar m_p, m_eps, m_eps_p, m_lam_p;
};

/// \brief The L0 penalty ρ(z) = H(h − θ) (1 per active latent) with the straight-through
/// gradient of the JumpReLU paper: no gradient to z or h; ∂/∂θ_i ≈ −(1/ε) K((h_i − θ_i)/ε).
template <class Scalar>
class L0StePenalty {
 public:
  static constexpr bool kNeedsThreshold = true;
  static constexpr bool kSumsCodes = false;
  /// \param lambda_over_b λ/B \param bandwidth ε > 0 (the activation's)
  L0StePenalty(double lambda_over_b, double bandwidth)
      : m_lam(static_cast<Scalar>(lambda_over_b)), m_inv_bw(static_cast<Scalar>(1.0 / bandwidth)) {}
  void add_value(Scalar& acc, Scalar /*z*/, Scalar on, Index /*i*/) const { acc += on; }
  Scalar add_gradient(Scalar dz, Scalar /*z*/, Index /*i*/) const { return dz; }
  Scalar threshold_gradient() const { return m_lam * m_inv_bw; }
  template <class Dec, class GDec>
  void finish_latent(Index, Scalar, const Dec&, GDec&) const {}

 private:
  Scalar m_lam, m_inv_bw;
};

/// \brief The nuclear norm (γ/√B) ‖R‖_* of a dense linear branch R = W_R U + b_R 1ᵀ (h × B), and
/// its gradient with respect to W_R (h × d) and b_R (h).
///
/// R = [W_R b_R] [U; 1ᵀ] has rank <= d + 1, so the norm and its gradient come from the
/// (d+1) × (d+1) Gram matrices of the factors, a Cholesky factorisation and one symmetric
/// eigen-decomposition (detail::nuclear_norm_factored), in double. Dividing by √B rather than B
/// makes the term independent of the batch size, since ‖R‖_* grows like √B.
///
/// Three calls per step, in order: prepare, decompose (one thread: it may run beside other
/// work), finish, which adds (γ/√B) ∂‖R‖_*/∂W_R to ∇W_R and ∂/∂b_R to ∇b_R and returns the term.
class NuclearNormPenalty {
 public:
  /// \brief Stage 1 (all threads): the factors A = [W_R b_R] and M = [U; 1ᵀ] in double, their
  /// Gram matrices and CᵀC (detail::nuclear_norm_prepare; each factor is converted on the thread
  /// that forms its Gram matrix).
  /// \param dense W_R (h × d) \param bias b_R (h × 1) \param u U (d × B)
  /// \param ws reusable factorisation storage
  template <class Scalar>
  static void prepare(const Matrix<Scalar>& dense, const Matrix<Scalar>& bias,
                      const Matrix<Scalar>& u, detail::NuclearWorkspace& ws) {
    const Index hr = dense.rows(), d = dense.cols(), B = u.cols();
    ws.a.resize(hr, d + 1);
    ws.m.resize(d + 1, B);
    ws.ones_row = true;
    detail::nuclear_norm_prepare(
        ws, kRelTol,
        [&] {
          ws.m.topRows(d) = u.template cast<double>();
          ws.m.row(d).setOnes();
        },
        [&] {
          ws.a.leftCols(d) = dense.template cast<double>();
          ws.a.col(d) = bias.col(0).template cast<double>();
        });
  }

  /// \brief Stage 2 (one thread; may run beside work that does not touch `ws`): the
  /// eigen-decomposition.
  static void decompose(detail::NuclearWorkspace& ws) { detail::nuclear_norm_decompose(ws); }

  /// \brief Stage 3 (all threads): adds the gradients (γ/√B) [W_R b_R] K to [∇W_R ∇b_R] and
  /// returns the term (γ/√B) ‖R‖_*. K = F P Fᵀ ((d+1) × (d+1)) comes from the factorisation in
  /// double; the h × (d+1) product is formed in Scalar from the weights themselves (the result
  /// is a Scalar gradient, and a float GEMM costs half a double one).
  /// \param gamma γ >= 0 \param dense W_R (h × d) \param bias b_R (h × 1) \param ws as prepared
  /// \param grad_dense ∇W_R (h × d) \param grad_bias ∇b_R (h × 1)
  template <class Scalar>
  static double finish(double gamma, const Matrix<Scalar>& dense, const Matrix<Scalar>& bias,
                       detail::NuclearWorkspace& ws, Matrix<Scalar>& grad_dense,
                       Matrix<Scalar>& grad_bias) {
    const bool nonzero = ws.pending;
    const double nuc = detail::nuclear_norm_finish(ws, kRelTol);
    if (!nonzero) return 0.0;  // R = 0: the subgradient is 0
    const Index d = dense.cols();
    const double c = gamma / std::sqrt(static_cast<double>(ws.m.cols()));
    const Matrix<Scalar> kc = (c * ws.k).template cast<Scalar>();  // c K, symmetric
    grad_dense.noalias() += dense * kc.topLeftCorner(d, d);
    detail::add_outer(grad_dense, bias.col(0), kc.col(d).head(d));  // K is symmetric
    grad_bias.col(0).noalias() += dense * kc.col(d).head(d);
    grad_bias.col(0) += kc(d, d) * bias.col(0);
    return c * nuc;
  }

 private:
  // singular values below 1e-7 σ_max are numerically zero for the Gram factorisation
  static constexpr double kRelTol = 1e-7;
};

}  // namespace ergo::sae

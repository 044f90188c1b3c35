// SPDX-License-Identifier: MIT
#pragma once

/// \file unmixer.hpp
/// \brief The ConCA linear unmixer: ẑ = Norm(W_enc x + b_enc), Norm ∈ {none, LayerNorm,
/// GroupNorm} with a learned per-latent gain and shift, linear decoder, and the penalty
/// λ (1/B) Σ |g(ẑ_i)| with g ∈ {softplus, ELU + 1, SELU, exp(min(u, c))}: if ẑ_i ≈ log p(c_i | x),
/// then exp(ẑ_i) is a probability and should be sparse.

#include "../../core/error.hpp"
#include "../detail/decoder.hpp"
#include "../loss.hpp"
#include "../weights.hpp"
#include "../workspace.hpp"
#include "base.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace ergo::sae {

/// \brief The function g of the ConCA unmixer's sparsity penalty λ Σ |g(ẑ)|.
enum class UnmixerActivation {
  Softplus,    ///< g(u) = log(1 + e^u)
  EluPlusOne,  ///< g(u) = ELU(u) + 1 = u + 1 (u > 0), e^u (u <= 0)
  Selu,        ///< g(u) = SELU(u) = s·u (u > 0), s·α(e^u − 1) (u <= 0); penalty on |g|
  ClampedExp   ///< g(u) = exp(min(u, c)), c = arch::Unmixer::Params::exp_clamp
};

/// \brief "softplus", "elu+1", "selu", "exp".
inline const char* to_string(UnmixerActivation g) {
  switch (g) {
    case UnmixerActivation::Softplus:
      return "softplus";
    case UnmixerActivation::EluPlusOne:
      return "elu+1";
    case UnmixerActivation::Selu:
      return "selu";
    case UnmixerActivation::ClampedExp:
      return "exp";
  }
  return "unknown";
}

/// \brief Parses a name of to_string(UnmixerActivation); false (and `out` unchanged) otherwise.
inline bool from_string(const std::string& s, UnmixerActivation& out) {
  for (auto g : {UnmixerActivation::Softplus, UnmixerActivation::EluPlusOne,
                 UnmixerActivation::Selu, UnmixerActivation::ClampedExp})
    if (s == to_string(g)) {
      out = g;
      return true;
    }
  return false;
}

/// \brief The accepted names, for error messages.
inline const char* choices(UnmixerActivation) {
  return "softplus, elu+1, selu or exp";
}

/// \brief Normalisation after the unmixer's linear encoder.
enum class UnmixerNorm {
  None,       ///< ẑ = W_enc x + b_enc
  LayerNorm,  ///< normalise each code over its m latents, then a learned per-latent affine map
  GroupNorm   ///< the same over `groups` contiguous blocks of m / groups latents
};

/// \brief "none", "layernorm", "groupnorm".
inline const char* to_string(UnmixerNorm n) {
  switch (n) {
    case UnmixerNorm::None:
      return "none";
    case UnmixerNorm::LayerNorm:
      return "layernorm";
    case UnmixerNorm::GroupNorm:
      return "groupnorm";
  }
  return "unknown";
}

/// \brief Parses a name of to_string(UnmixerNorm); false (and `out` unchanged) otherwise.
inline bool from_string(const std::string& s, UnmixerNorm& out) {
  for (auto n : {UnmixerNorm::None, UnmixerNorm::LayerNorm, UnmixerNorm::GroupNorm})
    if (s == to_string(n)) {
      out = n;
      return true;
    }
  return false;
}

/// \brief The accepted names, for error messages.
inline const char* choices(UnmixerNorm) {
  return "none, layernorm or groupnorm";
}

namespace detail {

/// SELU constants (Klambauer et al. 2017).
constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;

/// \brief g(u) of the unmixer penalty and |g|'s derivative: returns |g(u)| and writes
/// d|g|/du into *dg.
template <class Scalar>
inline Scalar unmixer_penalty(UnmixerActivation g, Scalar u, Scalar clamp, Scalar* dg) {
  switch (g) {
    case UnmixerActivation::Softplus: {
      // log(1 + e^u) computed without overflow; derivative σ(u)
      const Scalar e = std::exp(-std::abs(u));
      *dg = u >= Scalar(0) ? Scalar(1) / (Scalar(1) + e) : e / (Scalar(1) + e);
      return std::max(u, Scalar(0)) + std::log1p(e);
    }
    case UnmixerActivation::EluPlusOne: {
      if (u > Scalar(0)) {
        *dg = Scalar(1);
        return u + Scalar(1);
      }
      const Scalar e = std::exp(u);
      *dg = e;
      return e;
    }
    case UnmixerActivation::Selu: {
      const Scalar s = static_cast<Scalar>(kSeluScale), a = static_cast<Scalar>(kSeluAlpha);
      if (u > Scalar(0)) {
        *dg = s;
        return s * u;
      }
      if (u == Scalar(0)) {
        *dg = Scalar(0);
        return Scalar(0);
      }
      const Scalar e = std::exp(u);
      // g = s a (e^u − 1) < 0 here, so |g| = s a (1 − e^u) and d|g|/du = −s a e^u
      *dg = -s * a * e;
      return s * a * (Scalar(1) - e);
    }
    case UnmixerActivation::ClampedExp: {
      if (u < clamp) {
        const Scalar e = std::exp(u);
        *dg = e;
        return e;
      }
      *dg = Scalar(0);
      return std::exp(clamp);
    }
  }
  *dg = Scalar(0);
  return Scalar(0);
}

}  // namespace detail

namespace arch {

/// \brief The ConCA unmixer (registry name "unmixer"; no SAELens equivalent). Its code is dense:
/// a log-posterior, not a sparse code. The encoder sees x itself (no pre-encoder bias).
struct Unmixer : Base {
  /// \brief Hyper-parameters of the unmixer (SparseAutoencoderParams::unmixer).
  struct Params {
    UnmixerActivation activation = UnmixerActivation::Softplus;  ///< g. Default softplus.
    UnmixerNorm norm = UnmixerNorm::None;  ///< normalisation after the encoder. Default none.
    Index groups = 32;        ///< GroupNorm: number of groups (divides d_sae). Default 32.
    double exp_clamp = 10.0;  ///< c in g(u) = exp(min(u, c)). Default 10.
    double norm_eps = 1e-5;   ///< LayerNorm/GroupNorm variance guard ε (> 0). Default 1e-5.

    /// Number of normalisation groups: 0 (none), 1 (LayerNorm) or groups.
    Index group_count() const {
      return norm == UnmixerNorm::None ? 0 : (norm == UnmixerNorm::LayerNorm ? 1 : groups);
    }

    template <class Self, class F>
    static void for_each(Self& self, F&& f) {
      f("unmixer_activation", self.activation);
      f("unmixer_norm", self.norm);
      f("groups", self.groups);
      f("exp_clamp", self.exp_clamp);
      f("norm_eps", self.norm_eps);
    }
    void check(const std::string& who, const std::string& prefix, Index /*d_in*/,
               Index d_sae) const {
      check_positive(who, prefix + "norm_eps", norm_eps);
      if (norm == UnmixerNorm::GroupNorm)
        check_arg(groups >= 1 && d_sae % groups == 0, who, prefix + "groups",
                  ergo::detail::str_cat("a divisor of d_sae = ", d_sae), groups);
    }
  };

  static constexpr Traits traits = [] {
    Traits t;
    t.pre_bias = false;
    return t;
  }();

  /// \brief Normalisation buffers of a training step (kept in the Workspace).
  template <class Scalar>
  struct Buffers {
    Matrix<Scalar> nrm;   ///< m × B normalised pre-activations
    Matrix<Scalar> rstd;  ///< groups × B reciprocal standard deviations
  };

  /// With a normalisation: "norm_weight" (m × 1, ones) and "norm_bias" (m × 1, zeros).
  static std::vector<TensorSpec> tensors(const Params& ap, Index /*d_in*/, Index d_sae) {
    if (ap.norm == UnmixerNorm::None) return {};
    TensorSpec gain, shift;
    gain.name = "norm_weight";
    gain.rows = d_sae;
    gain.init = 1.0;
    shift.name = "norm_bias";
    shift.rows = d_sae;
    return {gain, shift};
  }

  /// ẑ = Norm(W_enc x + b_enc) for a chunk x (d × n) into out (m × n).
  template <class S>
  static void encode(const SparseAutoencoder<S>& sae, const Params& ap, const InputRef<S>& x,
                     OutputRef<S> out, EncodeBuffers<S>& buf) {
    const Weights<S>& w = sae.weights();
    Matrix<S>& h = buf.h;
    h.noalias() = w.encoder * x;
    h.colwise() += w.encoder_bias;
    if (ap.norm == UnmixerNorm::None) {
      out = h;
      return;
    }
    const Index G = ap.group_count(), gs = sae.d_sae() / G;
    const auto nw = w.extras[0].value.col(0), nb = w.extras[1].value.col(0);
    for (Index b = 0; b < x.cols(); ++b)
      for (Index g = 0; g < G; ++g) {
        auto blk = h.col(b).segment(g * gs, gs);
        const S mu = blk.mean();
        const S var = (blk.array() - mu).square().mean();
        const S r = S(1) / std::sqrt(var + static_cast<S>(ap.norm_eps));
        out.col(b).segment(g * gs, gs) = ((blk.array() - mu) * r * nw.segment(g * gs, gs).array() +
                                          nb.segment(g * gs, gs).array())
                                             .matrix();
      }
  }

  template <class S>
  static void prepare(const SparseAutoencoder<S>& sae, const Params& ap, Workspace<S>& ws,
                      Index B) {
    ws.dz.resize(sae.d_sae(), B);
    if (ap.norm == UnmixerNorm::None) return;
    ws.z.resize(sae.d_sae(), B);
    auto& bb = ws.template buffers<Buffers<S>>();
    bb.nrm.resize(sae.d_sae(), B);
    bb.rstd.resize(ap.group_count(), B);
  }

  template <class S>
  static LossTerms forward_backward(const SparseAutoencoder<S>& sae, const Params& ap,
                                    const InputRef<S>& x, const LossWeights& lw, Workspace<S>& ws,
                                    Weights<S>& grad);

 private:
  template <class S>
  static void normalize_forward(const Weights<S>& w, const Params& ap, Workspace<S>& ws, Index B);
  template <class S>
  static void normalize_backward(const Weights<S>& w, const Params& ap, Workspace<S>& ws,
                                 Weights<S>& grad, Index B);
};

/// The step: linear encoder, optional normalisation, dense decode, the g-penalty on ẑ, and the
/// backward pass through the normalisation.
template <class S>
LossTerms Unmixer::forward_backward(const SparseAutoencoder<S>& sae, const Params& ap,
                                    const InputRef<S>& x, const LossWeights& lw, Workspace<S>& ws,
                                    Weights<S>& grad) {
  const Weights<S>& w = sae.weights();
  const Index m = sae.d_sae(), B = x.cols();
  LossTerms t;
  detail::gemm<false, false>(ws, ws.h, w.encoder, x);
  ws.h.colwise() += w.encoder_bias;
  const bool normed = ap.norm != UnmixerNorm::None;
  if (normed) normalize_forward(w, ap, ws, B);
  const Matrix<S>& Z = normed ? ws.z : ws.h;
  detail::dense_decode_backward(w, x, Z, ws, t, grad);
  const double invB = 1.0 / static_cast<double>(B);
  const S lam_b = static_cast<S>(lw.sparsity * invB);
  const S clamp = static_cast<S>(ap.exp_clamp);
  double pen = 0.0, l0 = 0.0;
  std::fill(ws.fired.begin(), ws.fired.end(), char(0));
  for (Index b = 0; b < B; ++b)
    for (Index i = 0; i < m; ++i) {
      S dg;
      const S gv = detail::unmixer_penalty(ap.activation, Z(i, b), clamp, &dg);
      pen += static_cast<double>(gv);
      ws.dz(i, b) += lam_b * dg;
      if (Z(i, b) != S(0)) {
        l0 += 1.0;
        ws.fired[static_cast<size_t>(i)] = 1;
      }
    }
  t.sparsity = lw.sparsity * pen * invB;
  t.l0 = l0 * invB;
  if (normed) normalize_backward(w, ap, ws, grad, B);
  detail::gemm<false, true>(ws, grad.encoder, ws.dz, x);
  grad.encoder_bias = ws.dz.rowwise().sum();
  t.total = t.reconstruction + t.sparsity;
  return t;
}

/// ws.z = gain ⊙ (h − μ_g)/σ_g + shift per group, keeping the normalised values and 1/σ_g.
template <class S>
void Unmixer::normalize_forward(const Weights<S>& w, const Params& ap, Workspace<S>& ws, Index B) {
  auto& bb = ws.template buffers<Buffers<S>>();
  const Index G = ap.group_count(), gs = ws.h.rows() / G;
  const S neps = static_cast<S>(ap.norm_eps);
  for (Index b = 0; b < B; ++b)
    for (Index g = 0; g < G; ++g) {
      auto blk = ws.h.col(b).segment(g * gs, gs);
      const S mu = blk.mean();
      const S var = (blk.array() - mu).square().mean();
      const S r = S(1) / std::sqrt(var + neps);
      bb.rstd(g, b) = r;
      bb.nrm.col(b).segment(g * gs, gs) = ((blk.array() - mu) * r).matrix();
    }
  ws.z = (bb.nrm.array().colwise() * w.extras[0].value.col(0).array()).matrix();
  ws.z.colwise() += w.extras[1].value.col(0);
}

/// ∇gain, ∇shift, and ws.dz ← ∂L/∂h through the normalisation (∂L/∂ẑ in, per group).
template <class S>
void Unmixer::normalize_backward(const Weights<S>& w, const Params& ap, Workspace<S>& ws,
                                 Weights<S>& grad, Index B) {
  auto& bb = ws.template buffers<Buffers<S>>();
  const Index G = ap.group_count(), gs = ws.h.rows() / G;
  grad.extras[0].value = (ws.dz.cwiseProduct(bb.nrm)).rowwise().sum();
  grad.extras[1].value = ws.dz.rowwise().sum();
  ws.dz = (ws.dz.array().colwise() * w.extras[0].value.col(0).array()).matrix();  // ∂L/∂n
  const S inv_gs = S(1) / static_cast<S>(gs);
  for (Index b = 0; b < B; ++b)
    for (Index g = 0; g < G; ++g) {
      auto dn = ws.dz.col(b).segment(g * gs, gs);
      auto nv = bb.nrm.col(b).segment(g * gs, gs);
      const S mean_dn = dn.sum() * inv_gs;
      const S mean_dnn = dn.dot(nv) * inv_gs;
      dn = (bb.rstd(g, b) * (dn.array() - mean_dn - nv.array() * mean_dnn)).matrix();
    }
}

}  // namespace arch
}  // namespace ergo::sae

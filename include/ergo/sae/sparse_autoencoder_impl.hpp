// SPDX-License-Identifier: MIT
#pragma once

// Definitions of SparseAutoencoder (included at the end of sparse_autoencoder.hpp).
//
// Every pass is hand-written. Dense architectures use five GEMMs per step (W_enc·U, W_dec·Z,
// ∂x̂·Zᵀ, W_decᵀ·∂x̂, ∂H·Uᵀ) plus fused elementwise loops; TopK/BatchTopK use one dense GEMM
// (the encoder) and O(B·k·d) sparse kernels for the decode and every gradient.

#include "detail/kernels.hpp"
#include "sparse_autoencoder.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace ergo::sae {

// ---------------------------------------------------------------------------------------------
// construction, weights, config

template <class Scalar>
SparseAutoencoder<Scalar>::SparseAutoencoder(const SaeParams& params, std::uint64_t seed)
    : m_params(params) {
  m_params.check();
  Rng rng(seed);
  init(rng);
}

template <class Scalar>
SparseAutoencoder<Scalar>::SparseAutoencoder(const SaeParams& params, Rng& rng)
    : m_params(params) {
  m_params.check();
  init(rng);
}

template <class Scalar>
void SparseAutoencoder<Scalar>::init(Rng& rng) {
  const Index d = d_in(), m = d_sae();
  m_w.decoder = rng.template normal_matrix<Scalar>(d, m);
  normalize_decoder();
  m_w.encoder = static_cast<Scalar>(m_params.encoder_init_scale) * m_w.decoder.transpose();
  m_w.encoder_bias = Vector<Scalar>::Zero(m);
  m_w.decoder_bias = Vector<Scalar>::Zero(d);
  if (architecture() == Architecture::JumpReLU)
    m_w.threshold = Vector<Scalar>::Constant(m, static_cast<Scalar>(m_params.init_threshold));
  if (architecture() == Architecture::BatchTopK) m_w.threshold = Vector<Scalar>::Zero(m);
  if (architecture() == Architecture::Structured) {
    // zero dense branch: R starts at rank 0 and grows only as far as the loss pays for it
    const Index h = m_params.resolved_dense_width();
    m_w.dense = Matrix<Scalar>::Zero(h, d);
    m_w.dense_bias = Vector<Scalar>::Zero(h);
  }
  if (architecture() == Architecture::Unmixer && m_params.unmixer_norm != UnmixerNorm::None) {
    m_w.norm_weight = Vector<Scalar>::Ones(m);
    m_w.norm_bias = Vector<Scalar>::Zero(m);
  }
}

template <class Scalar>
void SparseAutoencoder<Scalar>::set_named_weight(const std::string& name,
                                                 const Eigen::Ref<const Matrix<Scalar>>& value) {
  const char* who = "SparseAutoencoder::set_named_weight";
  auto assign_matrix = [&](Matrix<Scalar>& t) {
    check_shape(who, name, value, t.rows(), t.cols());
    t = value;
  };
  auto assign_vector = [&](Vector<Scalar>& t) {
    check_shape(who, name, value, t.size(), 1);
    t = value.col(0);
  };
  if (name == "W_enc") return assign_matrix(m_w.encoder);
  if (name == "W_dec") return assign_matrix(m_w.decoder);
  if (name == "W_dense" && m_w.dense.size() > 0) return assign_matrix(m_w.dense);
  if (name == "b_enc") return assign_vector(m_w.encoder_bias);
  if (name == "b_dec") return assign_vector(m_w.decoder_bias);
  if (name == "threshold" && m_w.threshold.size() > 0) return assign_vector(m_w.threshold);
  if (name == "b_dense" && m_w.dense_bias.size() > 0) return assign_vector(m_w.dense_bias);
  if (name == "norm_weight" && m_w.norm_weight.size() > 0) return assign_vector(m_w.norm_weight);
  if (name == "norm_bias" && m_w.norm_bias.size() > 0) return assign_vector(m_w.norm_bias);
  throw_invalid(who, "name", "a weight of this architecture (see named_weights())", name);
}

template <class Scalar>
SaeConfig SparseAutoencoder<Scalar>::config() const {
  SaeConfig c;
  c.architecture = to_string(architecture());
  c.saelens_architecture = saelens_architecture(architecture());
  c.d_in = d_in();
  c.d_sae = d_sae();
  const bool has_k =
      architecture() == Architecture::TopK || architecture() == Architecture::BatchTopK;
  c.k = has_k ? m_params.k : 0;
  c.threshold = architecture() == Architecture::BatchTopK ? batch_threshold() : 0.0;
  c.normalization_factor = m_norm_factor;
  c.normalization_folded = true;
  c.apply_b_dec_to_input =
      architecture() != Architecture::Unmixer && m_params.apply_b_dec_to_input;
  if (architecture() == Architecture::JumpReLU)
    c.extra["bandwidth"] = ergo::detail::str_cat(m_params.bandwidth);
  if (architecture() == Architecture::Structured)
    c.extra["dense_width"] = ergo::detail::str_cat(m_params.resolved_dense_width());
  if (architecture() == Architecture::Unmixer) {
    c.extra["activation"] = to_string(m_params.unmixer_activation);
    c.extra["norm"] = to_string(m_params.unmixer_norm);
    if (m_params.unmixer_norm == UnmixerNorm::GroupNorm)
      c.extra["groups"] = ergo::detail::str_cat(m_params.groups);
  }
  if (architecture() == Architecture::ReluL1 && m_params.decoder_norm_penalty)
    c.extra["decoder_norm_penalty"] = "true";
  return c;
}

template <class Scalar>
SaeWeights<Scalar> SparseAutoencoder<Scalar>::make_gradients() const {
  return SaeWeights<Scalar>::zeros_like(m_w);
}

template <class Scalar>
nn::ParameterList<Scalar> SparseAutoencoder<Scalar>::parameters(SaeWeights<Scalar>& g) {
  nn::ParameterList<Scalar> list;
  list.push_back(nn::make_parameter<Scalar>("W_enc", m_w.encoder, g.encoder));
  list.push_back(nn::make_parameter<Scalar>("b_enc", m_w.encoder_bias, g.encoder_bias));
  list.push_back(nn::make_parameter<Scalar>("W_dec", m_w.decoder, g.decoder));
  list.push_back(nn::make_parameter<Scalar>("b_dec", m_w.decoder_bias, g.decoder_bias));
  if (architecture() == Architecture::JumpReLU)
    list.push_back(nn::make_parameter<Scalar>("threshold", m_w.threshold, g.threshold));
  if (architecture() == Architecture::Structured) {
    list.push_back(nn::make_parameter<Scalar>("W_dense", m_w.dense, g.dense));
    list.push_back(nn::make_parameter<Scalar>("b_dense", m_w.dense_bias, g.dense_bias));
  }
  if (m_w.norm_weight.size() > 0) {
    list.push_back(nn::make_parameter<Scalar>("norm_weight", m_w.norm_weight, g.norm_weight));
    list.push_back(nn::make_parameter<Scalar>("norm_bias", m_w.norm_bias, g.norm_bias));
  }
  return list;
}

template <class Scalar>
void SparseAutoencoder<Scalar>::project_decoder_gradient(SaeWeights<Scalar>& g) const {
  const Index m = d_sae();
  for (Index i = 0; i < m; ++i) {
    const auto col = m_w.decoder.col(i);
    const Scalar n2 = col.squaredNorm();
    if (n2 > Scalar(0)) g.decoder.col(i) -= (g.decoder.col(i).dot(col) / n2) * col;
  }
}

template <class Scalar>
void SparseAutoencoder<Scalar>::normalize_decoder() {
  for (Index i = 0; i < m_w.decoder.cols(); ++i) {
    const Scalar n = m_w.decoder.col(i).norm();
    if (n > Scalar(0)) m_w.decoder.col(i) /= n;
  }
}

template <class Scalar>
void SparseAutoencoder<Scalar>::fold_input_scale(double s) {
  check_positive("SparseAutoencoder::fold_input_scale", "s", s);
  const Scalar ss = static_cast<Scalar>(s);
  m_w.encoder *= ss;
  if (m_w.dense.size() > 0) m_w.dense *= ss;
  m_w.decoder /= ss;
  m_w.decoder_bias /= ss;
  m_norm_factor *= s;
}

// ---------------------------------------------------------------------------------------------
// inference

template <class Scalar>
Matrix<Scalar> SparseAutoencoder<Scalar>::encode(const Eigen::Ref<const Matrix<Scalar>>& x,
                                                 Index chunk) const {
  const char* who = "SparseAutoencoder::encode";
  check_shape(who, "x", x, d_in(), -1);
  check_arg(chunk > 0, who, "chunk", "> 0", chunk);
  const Index m = d_sae(), N = x.cols();
  Matrix<Scalar> out(m, N);
  Matrix<Scalar> u, h, nrm;
  std::vector<std::int32_t> idx;
  std::vector<Scalar> val;
  const Architecture a = architecture();
  for (Index c0 = 0; c0 < N; c0 += chunk) {
    const Index n = std::min(chunk, N - c0);
    auto xc = x.middleCols(c0, n);
    auto oc = out.middleCols(c0, n);
    if (a == Architecture::Unmixer) {
      h.noalias() = m_w.encoder * xc;
      h.colwise() += m_w.encoder_bias;
      if (m_params.unmixer_norm == UnmixerNorm::None) {
        oc = h;
        continue;
      }
      const Index G = m_params.unmixer_norm == UnmixerNorm::LayerNorm ? 1 : m_params.groups;
      const Index gs = m / G;
      for (Index b = 0; b < n; ++b)
        for (Index g = 0; g < G; ++g) {
          auto blk = h.col(b).segment(g * gs, gs);
          const Scalar mu = blk.mean();
          const Scalar var = (blk.array() - mu).square().mean();
          const Scalar r = Scalar(1) / std::sqrt(var + static_cast<Scalar>(m_params.norm_eps));
          oc.col(b).segment(g * gs, gs) =
              ((blk.array() - mu) * r * m_w.norm_weight.segment(g * gs, gs).array() +
               m_w.norm_bias.segment(g * gs, gs).array())
                  .matrix();
        }
      continue;
    }
    u = xc;
    if (m_params.apply_b_dec_to_input) u.colwise() -= m_w.decoder_bias;
    h.noalias() = m_w.encoder * u;
    h.colwise() += m_w.encoder_bias;
    switch (a) {
      case Architecture::ReluL1:
      case Architecture::PAnneal: oc = h.cwiseMax(Scalar(0)); break;
      case Architecture::Structured: {
        oc = h.cwiseMax(Scalar(0));
        const Index hr = m_w.dense.rows();
        oc.topRows(hr).noalias() += m_w.dense * u;
        oc.topRows(hr).colwise() += m_w.dense_bias;
        break;
      }
      case Architecture::JumpReLU:
      case Architecture::BatchTopK:
        for (Index b = 0; b < n; ++b)
          for (Index i = 0; i < m; ++i) oc(i, b) = h(i, b) > m_w.threshold(i) ? h(i, b) : Scalar(0);
        break;
      case Architecture::TopK: {
        const Index k = m_params.k;
        idx.resize(static_cast<size_t>(k));
        val.resize(static_cast<size_t>(k));
        oc.setZero();
        for (Index b = 0; b < n; ++b) {
          detail::top_k_column(h.col(b).data(), m, k, idx.data(), val.data());
          for (Index j = 0; j < k; ++j)
            oc(idx[static_cast<size_t>(j)], b) = std::max(val[static_cast<size_t>(j)], Scalar(0));
        }
        break;
      }
      default: break;
    }
  }
  return out;
}

template <class Scalar>
Matrix<Scalar> SparseAutoencoder<Scalar>::encode_sparse(const Eigen::Ref<const Matrix<Scalar>>& x,
                                                        Index chunk) const {
  if (architecture() != Architecture::Structured) return encode(x, chunk);
  check_shape("SparseAutoencoder::encode_sparse", "x", x, d_in(), -1);
  Matrix<Scalar> u = x;
  if (m_params.apply_b_dec_to_input) u.colwise() -= m_w.decoder_bias;
  Matrix<Scalar> h = m_w.encoder * u;
  h.colwise() += m_w.encoder_bias;
  return h.cwiseMax(Scalar(0));
}

template <class Scalar>
Matrix<Scalar> SparseAutoencoder<Scalar>::decode(const Eigen::Ref<const Matrix<Scalar>>& z) const {
  check_shape("SparseAutoencoder::decode", "z", z, d_sae(), -1);
  Matrix<Scalar> out = m_w.decoder * z;
  out.colwise() += m_w.decoder_bias;
  return out;
}

// ---------------------------------------------------------------------------------------------
// training pass

template <class Scalar>
void SparseAutoencoder<Scalar>::prepare(SaeWorkspace<Scalar>& ws, Index B) const {
  const Index d = d_in(), m = d_sae();
  if (ws.batch == B && ws.u.rows() == d && static_cast<Index>(ws.fired.size()) == m) return;
  ws.batch = B;
  ws.u.resize(d, B);
  ws.xhat.resize(d, B);
  ws.dxhat.resize(d, B);
  ws.h.resize(m, B);
  ws.fired.assign(static_cast<size_t>(m), 0);
  switch (architecture()) {
    case Architecture::ReluL1:
    case Architecture::PAnneal: ws.dz.resize(m, B); break;  // z lives in h (in-place ReLU)
    case Architecture::JumpReLU:
      ws.z.resize(m, B);
      ws.dz.resize(m, B);
      break;
    case Architecture::TopK:
    case Architecture::BatchTopK:
      ws.enc_grad_t.resize(d, m);
      ws.codes.reserve(B, m, m_params.k * B);
      break;
    case Architecture::Structured: {
      const Index hr = m_params.resolved_dense_width();
      ws.z.resize(m, B);
      ws.dz.resize(m, B);
      ws.r.resize(hr, B);
      ws.dr.resize(hr, B);
      break;
    }
    case Architecture::Unmixer:
      ws.dz.resize(m, B);
      if (m_params.unmixer_norm != UnmixerNorm::None) {
        const Index G = m_params.unmixer_norm == UnmixerNorm::LayerNorm ? 1 : m_params.groups;
        ws.z.resize(m, B);
        ws.nrm.resize(m, B);
        ws.rstd.resize(G, B);
      }
      break;
  }
}

template <class Scalar>
LossTerms SparseAutoencoder<Scalar>::forward_backward(const Eigen::Ref<const Matrix<Scalar>>& x,
                                                      const LossWeights& w,
                                                      SaeWorkspace<Scalar>& ws,
                                                      SaeWeights<Scalar>& grad) const {
  const char* who = "SparseAutoencoder::forward_backward";
  check_shape(who, "x", x, d_in(), -1);
  check_arg(x.cols() > 0, who, "x", "at least one column", x.cols());
  check_shape(who, "grad.encoder", grad.encoder, d_sae(), d_in());
  check_shape(who, "grad.decoder", grad.decoder, d_in(), d_sae());
  if (w.aux > 0.0 && w.dead != nullptr)
    check_arg(static_cast<Index>(w.dead->size()) == d_sae(), who, "w.dead",
              ergo::detail::str_cat("size d_sae = ", d_sae()), w.dead->size());
  prepare(ws, x.cols());
  switch (architecture()) {
    case Architecture::ReluL1:
    case Architecture::PAnneal:
    case Architecture::JumpReLU: return step_dense(x, w, ws, grad);
    case Architecture::TopK:
    case Architecture::BatchTopK: return step_sparse(x, w, ws, grad);
    case Architecture::Structured: return step_structured(x, w, ws, grad);
    case Architecture::Unmixer: return step_unmixer(x, w, ws, grad);
  }
  return {};
}

// Dense decode of the code Z, the reconstruction loss terms, and the decoder's backward pass:
// ∇W_dec, ∇b_dec and ws.dz = W_decᵀ ∂L/∂x̂.
template <class Scalar>
void SparseAutoencoder<Scalar>::dense_decode_backward(const Eigen::Ref<const Matrix<Scalar>>& x,
                                                      const Matrix<Scalar>& Z,
                                                      SaeWorkspace<Scalar>& ws, LossTerms& t,
                                                      SaeWeights<Scalar>& grad) const {
  ws.xhat.noalias() = m_w.decoder * Z;
  ws.xhat.colwise() += m_w.decoder_bias;
  finish_reconstruction(x, ws, t);
  grad.decoder.noalias() = ws.dxhat * Z.transpose();
  grad.decoder_bias = ws.dxhat.rowwise().sum();
  ws.dz.noalias() = m_w.decoder.transpose() * ws.dxhat;
}

template <class Scalar>
double SparseAutoencoder<Scalar>::finish_reconstruction(const Eigen::Ref<const Matrix<Scalar>>& x,
                                                        SaeWorkspace<Scalar>& ws,
                                                        LossTerms& t) const {
  const Index B = x.cols();
  ws.dxhat = ws.xhat - x;
  const double rec = static_cast<double>(ws.dxhat.squaredNorm()) / static_cast<double>(B);
  const Vector<Scalar> mean = x.rowwise().mean();
  t.batch_variance =
      static_cast<double>((x.colwise() - mean).squaredNorm()) / static_cast<double>(B);
  ws.dxhat *= static_cast<Scalar>(2.0 / static_cast<double>(B));
  t.reconstruction = rec;
  return rec;
}

// Dense ReLU-family step: ReluL1, PAnneal, JumpReLU.
template <class Scalar>
LossTerms SparseAutoencoder<Scalar>::step_dense(const Eigen::Ref<const Matrix<Scalar>>& x,
                                                const LossWeights& w, SaeWorkspace<Scalar>& ws,
                                                SaeWeights<Scalar>& grad) const {
  const Index d = d_in(), m = d_sae(), B = x.cols();
  (void)d;
  [[maybe_unused]] const int nt = Eigen::nbThreads();
  const Architecture a = architecture();
  const bool jump = a == Architecture::JumpReLU;
  const bool pann = a == Architecture::PAnneal;
  const bool dnp = a == Architecture::ReluL1 && m_params.decoder_norm_penalty;
  LossTerms t;

  ws.u = x;
  if (m_params.apply_b_dec_to_input) ws.u.colwise() -= m_w.decoder_bias;
  ws.h.noalias() = m_w.encoder * ws.u;
  Matrix<Scalar>& Z = jump ? ws.z : ws.h;  // ReLU writes z over h

  // per-thread accumulators: [0] firing counts, [1] θ gradient or Σ_b z, [2] Σ_b ∂L/∂h
  ws.scratch.assign(static_cast<size_t>(3 * nt * m), Scalar(0));
  Vector<Scalar> pen_w = Vector<Scalar>::Ones(m);  // per-latent L1 weight (‖d_i‖ or 1)
  if (dnp) pen_w = m_w.decoder.colwise().norm().transpose();
  const Scalar* benc = m_w.encoder_bias.data();
  const Scalar* theta = jump ? m_w.threshold.data() : nullptr;
  const Scalar* pw = pen_w.data();
  const Scalar p = static_cast<Scalar>(w.p);
  const Scalar eps_p = static_cast<Scalar>(m_params.p_epsilon);
  const Scalar eps_pp = std::pow(eps_p, p);
  double pen_sum = 0.0, l0_sum = 0.0;
  ERGO_OMP(omp parallel for schedule(static) num_threads(nt) reduction(+ : pen_sum, l0_sum) if (ergo::detail::worth_splitting(m * B)))
  for (Index b = 0; b < B; ++b) {
    Scalar* cnt = ws.scratch.data() + static_cast<size_t>(ergo::detail::thread_index()) * static_cast<size_t>(m);
    Scalar* hc = ws.h.data() + b * m;
    Scalar* zc = Z.data() + b * m;
    Scalar pen = 0, l0 = 0;
    if (jump) {
      for (Index i = 0; i < m; ++i) {
        const Scalar hv = hc[i] + benc[i];
        hc[i] = hv;
        const Scalar on = hv > theta[i] ? Scalar(1) : Scalar(0);
        zc[i] = on * hv;
        cnt[i] += on;
        l0 += on;
      }
      pen = l0;
    } else if (pann && p != Scalar(1)) {
      for (Index i = 0; i < m; ++i) {
        const Scalar zv = std::max(hc[i] + benc[i], Scalar(0));
        zc[i] = zv;
        if (zv > Scalar(0)) {
          cnt[i] += Scalar(1);
          l0 += Scalar(1);
          pen += std::pow(zv + eps_p, p) - eps_pp;
        }
      }
    } else {
      for (Index i = 0; i < m; ++i) {
        const Scalar zv = std::max(hc[i] + benc[i], Scalar(0));
        zc[i] = zv;
        const Scalar on = zv > Scalar(0) ? Scalar(1) : Scalar(0);
        cnt[i] += on;
        l0 += on;
        pen += zv * pw[i];
      }
    }
    pen_sum += static_cast<double>(pen);
    l0_sum += static_cast<double>(l0);
  }
  for (Index i = 0; i < m; ++i) {
    Scalar c = 0;
    for (int th = 0; th < nt; ++th) c += ws.scratch[static_cast<size_t>(th * m + i)];
    ws.fired[static_cast<size_t>(i)] = c > Scalar(0);
  }
  const double invB = 1.0 / static_cast<double>(B);
  t.l0 = l0_sum * invB;
  t.sparsity = w.sparsity * pen_sum * invB;

  dense_decode_backward(x, Z, ws, t, grad);

  // elementwise backward, fused with Σ_b ∂L/∂h (encoder-bias gradient) and the θ pseudo-gradient
  const Scalar lam_b = static_cast<Scalar>(w.sparsity * invB);
  const Scalar inv_bw = static_cast<Scalar>(1.0 / m_params.bandwidth);
  const size_t off1 = static_cast<size_t>(nt * m), off2 = static_cast<size_t>(2 * nt * m);
  ERGO_OMP(omp parallel for schedule(static) num_threads(nt) if (ergo::detail::worth_splitting(m * B)))
  for (Index b = 0; b < B; ++b) {
    const size_t tid = static_cast<size_t>(ergo::detail::thread_index()) * static_cast<size_t>(m);
    Scalar* acc1 = ws.scratch.data() + off1 + tid;
    Scalar* gb = ws.scratch.data() + off2 + tid;
    Scalar* dz = ws.dz.data() + b * m;
    const Scalar* zc = Z.data() + b * m;
    if (jump) {
      const Scalar* hc = ws.h.data() + b * m;
      for (Index i = 0; i < m; ++i) {
        const Scalar u = (hc[i] - theta[i]) * inv_bw;
        if (std::abs(u) < Scalar(0.5))  // rectangle kernel K(u) = 1[|u| < 1/2]
          acc1[i] += -(theta[i] * inv_bw) * dz[i] - lam_b * inv_bw;
        const Scalar g = hc[i] > theta[i] ? dz[i] : Scalar(0);
        dz[i] = g;
        gb[i] += g;
      }
    } else if (pann && p != Scalar(1)) {
      for (Index i = 0; i < m; ++i) {
        const Scalar g =
            zc[i] > Scalar(0) ? dz[i] + lam_b * p * std::pow(zc[i] + eps_p, p - Scalar(1)) : Scalar(0);
        dz[i] = g;
        gb[i] += g;
      }
    } else {
      for (Index i = 0; i < m; ++i) {
        const Scalar g = zc[i] > Scalar(0) ? dz[i] + lam_b * pw[i] : Scalar(0);
        dz[i] = g;
        gb[i] += g;
        if (dnp) acc1[i] += zc[i];
      }
    }
  }
  grad.encoder.noalias() = ws.dz * ws.u.transpose();
  for (Index i = 0; i < m; ++i) {
    Scalar s1 = 0, s2 = 0;
    for (int th = 0; th < nt; ++th) {
      s1 += ws.scratch[off1 + static_cast<size_t>(th * m + i)];
      s2 += ws.scratch[off2 + static_cast<size_t>(th * m + i)];
    }
    grad.encoder_bias(i) = s2;
    if (jump) grad.threshold(i) = s1;
    if (dnp && pen_w(i) > Scalar(0))
      grad.decoder.col(i) += (lam_b * s1 / pen_w(i)) * m_w.decoder.col(i);
  }
  if (m_params.apply_b_dec_to_input)
    grad.decoder_bias.noalias() -= m_w.encoder.transpose() * grad.encoder_bias;
  t.total = t.reconstruction + t.sparsity;
  return t;
}

// BatchTopK selection: adds b_enc to the pre-activations in ws.h and keeps the k·B largest
// positive entries of the batch (ties broken by position: column, then latent). A threshold t0
// is estimated from a strided sample (oversampled so that at least k·B entries reach it, with a
// fallback if not); one pass adds the bias and counts the entries >= t0 per column, a second
// collects them (typically ~1.5 k·B candidates) and nth_element finds the exact k·B-th best.
template <class Scalar>
void SparseAutoencoder<Scalar>::select_batch_topk(SaeWorkspace<Scalar>& ws, Index B) const {
  const Index m = d_sae();
  const Index n = m * B, kk = m_params.k * B;
  [[maybe_unused]] const int nt = Eigen::nbThreads();
  Scalar* H = ws.h.data();
  const Scalar* benc = m_w.encoder_bias.data();
  // 1. threshold estimate from a strided sample (stride coprime to m: every latent is sampled)
  constexpr Index kSample = 32768;
  Index stride = std::max<Index>(1, n / kSample);
  while (stride > 1 && std::gcd(stride, m) != 1) ++stride;
  ws.sample.clear();
  Index ns = 0;
  for (Index j = 0; j < n; j += stride, ++ns) {
    const Scalar v = H[j] + benc[j % m];
    if (v > Scalar(0)) ws.sample.push_back(v);
  }
  const double r = static_cast<double>(kk) * static_cast<double>(ns) / static_cast<double>(n);
  std::vector<Index> ranks;  // candidate sample ranks (largest first), increasingly conservative
  for (double f : {1.5, 4.0})
    ranks.push_back(static_cast<Index>(std::ceil(f * r + 3.0 * std::sqrt(r) + 8.0)));
  const Scalar tiny = std::numeric_limits<Scalar>::denorm_min();  // "> 0" as ">= tiny"
  auto threshold_at = [&](Index rank) {
    if (rank >= static_cast<Index>(ws.sample.size())) return tiny;
    std::nth_element(ws.sample.begin(), ws.sample.begin() + rank, ws.sample.end(),
                     std::greater<Scalar>());
    return std::max(ws.sample[static_cast<size_t>(rank)], tiny);
  };
  ws.col_gt.assign(static_cast<size_t>(B), 0);
  const Scalar tries[3] = {threshold_at(ranks[0]), threshold_at(ranks[1]), tiny};
  Scalar lo = tiny;
  for (int attempt = 0; attempt < 3; ++attempt) {
    // 2. (first time: add the bias) and count the entries >= lo per column
    lo = tries[attempt];
    const bool add = attempt == 0;
    ERGO_OMP(omp parallel for schedule(static) num_threads(nt) if (ergo::detail::worth_splitting(n)))
    for (Index b = 0; b < B; ++b) {
      Scalar* hc = H + b * m;
      Index c = 0;
      if (add) {
        for (Index i = 0; i < m; ++i) {
          hc[i] += benc[i];
          c += hc[i] >= lo ? 1 : 0;
        }
      } else {
        for (Index i = 0; i < m; ++i) c += hc[i] >= lo ? 1 : 0;
      }
      ws.col_gt[static_cast<size_t>(b)] = c;
    }
    Index total = 0;
    for (Index b = 0; b < B; ++b) total += ws.col_gt[static_cast<size_t>(b)];
    if (total >= kk || lo == tiny) break;  // else the estimate was too high: lower it
  }
  // 3. collect the candidates in position order
  Index total = 0;
  ws.col_eq.resize(static_cast<size_t>(B + 1));
  for (Index b = 0; b < B; ++b) {
    ws.col_eq[static_cast<size_t>(b)] = total;
    total += ws.col_gt[static_cast<size_t>(b)];
  }
  ws.col_eq[static_cast<size_t>(B)] = total;
  ws.cand_val.resize(static_cast<size_t>(total));
  ws.cand_pos.resize(static_cast<size_t>(total));
  ERGO_OMP(omp parallel for schedule(static) num_threads(nt) if (ergo::detail::worth_splitting(n)))
  for (Index b = 0; b < B; ++b) {
    const Scalar* hc = H + b * m;
    Index e = ws.col_eq[static_cast<size_t>(b)];
    for (Index i = 0; i < m; ++i)
      if (hc[i] >= lo) {
        ws.cand_val[static_cast<size_t>(e)] = hc[i];
        ws.cand_pos[static_cast<size_t>(e)] = b * m + i;
        ++e;
      }
  }
  // 4. the exact kk-th best candidate (value descending, position ascending) as a pivot
  Scalar pv = lo;
  Index ppos = n;
  if (total > kk) {
    ws.cand_work.resize(static_cast<size_t>(total));
    for (Index e = 0; e < total; ++e)
      ws.cand_work[static_cast<size_t>(e)] = {ws.cand_val[static_cast<size_t>(e)],
                                              ws.cand_pos[static_cast<size_t>(e)]};
    auto better = [](const std::pair<Scalar, Index>& a, const std::pair<Scalar, Index>& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    std::nth_element(ws.cand_work.begin(), ws.cand_work.begin() + (kk - 1), ws.cand_work.end(),
                     better);
    pv = ws.cand_work[static_cast<size_t>(kk - 1)].first;
    ppos = ws.cand_work[static_cast<size_t>(kk - 1)].second;
  }
  // 5. the selected entries, in position order, as compressed codes
  auto& st = ws.codes.start;
  std::fill(st.begin(), st.end(), Index(0));
  Index e_out = 0;
  Scalar min_pos = std::numeric_limits<Scalar>::max();
  for (Index e = 0; e < total; ++e) {
    const Scalar v = ws.cand_val[static_cast<size_t>(e)];
    const Index pos = ws.cand_pos[static_cast<size_t>(e)];
    if (v > pv || (v == pv && pos <= ppos)) {
      ws.codes.index[static_cast<size_t>(e_out)] = static_cast<std::int32_t>(pos % m);
      ws.codes.value[static_cast<size_t>(e_out)] = v;
      ++st[static_cast<size_t>(pos / m + 1)];
      min_pos = std::min(min_pos, v);
      ++e_out;
    }
  }
  for (Index b = 0; b < B; ++b) st[static_cast<size_t>(b + 1)] += st[static_cast<size_t>(b)];
  ws.min_positive = e_out > 0 ? static_cast<double>(min_pos) : 0.0;
}

// AuxK: decode the residual from the top-k_aux dead latents (no b_dec), variance-normalised.
template <class Scalar>
double SparseAutoencoder<Scalar>::aux_forward(const Eigen::Ref<const Matrix<Scalar>>& x,
                                              const LossWeights& w, SaeWorkspace<Scalar>& ws,
                                              Index B) const {
  const Index m = d_sae(), d = d_in();
  [[maybe_unused]] const int nt = Eigen::nbThreads();
  (void)nt;
  (void)d;
  ws.aux_active = false;
  ws.dead_list.clear();
  for (Index i = 0; i < m; ++i)
    if ((*w.dead)[static_cast<size_t>(i)]) ws.dead_list.push_back(static_cast<std::int32_t>(i));
  const Index nd = static_cast<Index>(ws.dead_list.size());
  if (nd == 0 || w.aux_k <= 0) return 0.0;
  const Index kk = std::min(w.aux_k, nd);
  ws.aux_target.resize(d, B);
  ws.aux_dhat.resize(d, B);
  ws.aux.reserve(B, m, kk * B);
  ws.aux_target = x - ws.xhat;  // e = x − x̂ (a constant: no gradient flows into it)
  const Vector<Scalar> emean = ws.aux_target.rowwise().mean();
  const double denom = static_cast<double>((ws.aux_target.colwise() - emean).squaredNorm());
  if (!(denom > 0.0)) return 0.0;
  ws.scratch.assign(static_cast<size_t>(nt * nd), Scalar(0));
  const Scalar coef = static_cast<Scalar>(2.0 * w.aux / denom);
  for (Index b = 0; b <= B; ++b) ws.aux.start[static_cast<size_t>(b)] = b * kk;
  double sq = 0.0;
  ERGO_OMP(omp parallel for schedule(static) num_threads(nt) reduction(+ : sq) if (ergo::detail::worth_splitting(nd * B)))
  for (Index b = 0; b < B; ++b) {
    Scalar* tmp = ws.scratch.data() + static_cast<size_t>(ergo::detail::thread_index()) * static_cast<size_t>(nd);
    for (Index j = 0; j < nd; ++j) tmp[j] = ws.h(ws.dead_list[static_cast<size_t>(j)], b);
    std::int32_t* idx = ws.aux.index.data() + b * kk;
    Scalar* val = ws.aux.value.data() + b * kk;
    detail::top_k_column(tmp, nd, kk, idx, val);
    auto eh = ws.aux_dhat.col(b);
    eh.setZero();
    for (Index j = 0; j < kk; ++j) {
      idx[j] = ws.dead_list[static_cast<size_t>(idx[j])];
      val[j] = std::max(val[j], Scalar(0));
      if (val[j] > Scalar(0)) eh.noalias() += val[j] * m_w.decoder.col(idx[j]);
    }
    eh -= ws.aux_target.col(b);  // ê − e
    sq += static_cast<double>(eh.squaredNorm());
    eh *= coef;  // ∂(α L_aux)/∂ê
  }
  ERGO_OMP(omp parallel for schedule(static) num_threads(nt) if (ergo::detail::worth_splitting(kk * B * d)))
  for (Index b = 0; b < B; ++b)
    for (Index e = b * kk; e < (b + 1) * kk; ++e) {
      const size_t es = static_cast<size_t>(e);
      ws.aux.grad[es] = ws.aux.value[es] > Scalar(0)
                            ? m_w.decoder.col(ws.aux.index[es]).dot(ws.aux_dhat.col(b))
                            : Scalar(0);
    }
  ws.aux_active = true;
  return w.aux * sq / denom;
}

// Sparse backward of TopK/BatchTopK (and AuxK): per-latent accumulation of the decoder
// gradient, the (transposed) encoder gradient and the encoder-bias gradient, O(B·k·d).
// The d rows are processed in chunks of 32 (two cache lines per column): the chunk of U and
// ∂x̂ (2 · 32 · B values) stays in L2 while every active entry is visited, instead of streaming
// whole random columns of U and ∂x̂ from memory for each entry.
template <class Scalar>
void SparseAutoencoder<Scalar>::sparse_backward(SaeWorkspace<Scalar>& ws, SaeWeights<Scalar>& grad,
                                                bool with_aux) const {
  const Index m = d_sae(), d = d_in();
  [[maybe_unused]] const int nt = Eigen::nbThreads();
  ws.codes.build_latent_view(m);
  if (with_aux) ws.aux.build_latent_view(m);
  [[maybe_unused]] const Index work = ws.codes.nnz() * d;
  constexpr Index kChunk = 32;
  for (Index c0 = 0; c0 < d; c0 += kChunk) {
    const Index len = std::min(kChunk, d - c0);
    const bool first = c0 == 0;
    ERGO_OMP(omp parallel for schedule(dynamic, 64) num_threads(nt) if (ergo::detail::worth_splitting(work)))
    for (Index i = 0; i < m; ++i) {
      Scalar* gdec = grad.decoder.data() + i * d + c0;
      Scalar* genc = ws.enc_grad_t.data() + i * d + c0;
      Scalar gb = 0;
      if (len == kChunk) {
        using Chunk = Eigen::Map<Eigen::Array<Scalar, kChunk, 1>>;
        using CChunk = Eigen::Map<const Eigen::Array<Scalar, kChunk, 1>>;
        Eigen::Array<Scalar, kChunk, 1> ad = Eigen::Array<Scalar, kChunk, 1>::Zero();
        Eigen::Array<Scalar, kChunk, 1> ae = Eigen::Array<Scalar, kChunk, 1>::Zero();
        auto run = [&](const detail::SparseCodes<Scalar>& c, const Matrix<Scalar>& src) {
          for (Index q = c.lat_start[static_cast<size_t>(i)];
               q < c.lat_start[static_cast<size_t>(i + 1)]; ++q) {
            const size_t e = static_cast<size_t>(c.lat_entry[static_cast<size_t>(q)]);
            const Index b = c.lat_sample[static_cast<size_t>(q)];
            ad += c.value[e] * CChunk(src.data() + b * d + c0);
            ae += c.grad[e] * CChunk(ws.u.data() + b * d + c0);
            gb += c.grad[e];
          }
        };
        run(ws.codes, ws.dxhat);
        if (with_aux) run(ws.aux, ws.aux_dhat);
        Chunk{gdec} = ad;
        Chunk{genc} = ae;
      } else {
        Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>> gd(gdec, len), ge(genc, len);
        gd.setZero();
        ge.setZero();
        auto run = [&](const detail::SparseCodes<Scalar>& c, const Matrix<Scalar>& src) {
          for (Index q = c.lat_start[static_cast<size_t>(i)];
               q < c.lat_start[static_cast<size_t>(i + 1)]; ++q) {
            const size_t e = static_cast<size_t>(c.lat_entry[static_cast<size_t>(q)]);
            const Index b = c.lat_sample[static_cast<size_t>(q)];
            gd += c.value[e] * src.col(b).segment(c0, len).array();
            ge += c.grad[e] * ws.u.col(b).segment(c0, len).array();
            gb += c.grad[e];
          }
        };
        run(ws.codes, ws.dxhat);
        if (with_aux) run(ws.aux, ws.aux_dhat);
      }
      if (first) grad.encoder_bias(i) = gb;
    }
  }
  detail::transpose_into(ws.enc_grad_t, grad.encoder, nt);
}

template <class Scalar>
LossTerms SparseAutoencoder<Scalar>::step_sparse(const Eigen::Ref<const Matrix<Scalar>>& x,
                                                 const LossWeights& w, SaeWorkspace<Scalar>& ws,
                                                 SaeWeights<Scalar>& grad) const {
  const Index d = d_in(), m = d_sae(), B = x.cols();
  [[maybe_unused]] const int nt = Eigen::nbThreads();
  (void)d;
  (void)nt;
  LossTerms t;
  ws.u = x;
  if (m_params.apply_b_dec_to_input) ws.u.colwise() -= m_w.decoder_bias;
  ws.h.noalias() = m_w.encoder * ws.u;
  auto& c = ws.codes;
  const bool batch = architecture() == Architecture::BatchTopK;
  const Index k = m_params.k;
  if (!batch) {
    ERGO_OMP(omp parallel for schedule(static) num_threads(nt) if (ergo::detail::worth_splitting(m * B)))
    for (Index b = 0; b < B; ++b) {
      ws.h.col(b) += m_w.encoder_bias;
      detail::top_k_column(ws.h.col(b).data(), m, k, c.index.data() + b * k, c.value.data() + b * k);
      for (Index e = b * k; e < (b + 1) * k; ++e)
        c.value[static_cast<size_t>(e)] = std::max(c.value[static_cast<size_t>(e)], Scalar(0));
    }
    for (Index b = 0; b <= B; ++b) c.start[static_cast<size_t>(b)] = b * k;
  } else {
    select_batch_topk(ws, B);  // adds b_enc itself (fused with its counting pass)
  }
  const Index nnz = c.nnz();
  std::fill(ws.fired.begin(), ws.fired.end(), char(0));
  Index l0 = 0;
  for (Index e = 0; e < nnz; ++e)
    if (c.value[static_cast<size_t>(e)] > Scalar(0)) {
      ++l0;
      ws.fired[static_cast<size_t>(c.index[static_cast<size_t>(e)])] = 1;
    }
  t.l0 = static_cast<double>(l0) / static_cast<double>(B);

  // sparse decode: x̂_b = b_dec + Σ_e v_e d_{i_e}
  ERGO_OMP(omp parallel for schedule(static) num_threads(nt) if (ergo::detail::worth_splitting(nnz * d)))
  for (Index b = 0; b < B; ++b) {
    auto xc = ws.xhat.col(b);
    xc = m_w.decoder_bias;
    for (Index e = c.start[static_cast<size_t>(b)]; e < c.start[static_cast<size_t>(b + 1)]; ++e) {
      const Scalar v = c.value[static_cast<size_t>(e)];
      if (v != Scalar(0)) xc.noalias() += v * m_w.decoder.col(c.index[static_cast<size_t>(e)]);
    }
  }
  finish_reconstruction(x, ws, t);
  const bool with_aux = w.aux > 0.0 && w.dead != nullptr && w.aux_k > 0;
  ws.aux_active = false;
  t.aux = with_aux ? aux_forward(x, w, ws, B) : 0.0;
  const bool aux_active = ws.aux_active;
  // ∂L/∂h at the active entries (∂L/∂z masked by the ReLU on the selected value)
  ERGO_OMP(omp parallel for schedule(static) num_threads(nt) if (ergo::detail::worth_splitting(nnz * d)))
  for (Index b = 0; b < B; ++b)
    for (Index e = c.start[static_cast<size_t>(b)]; e < c.start[static_cast<size_t>(b + 1)]; ++e) {
      const size_t es = static_cast<size_t>(e);
      c.grad[es] = c.value[es] > Scalar(0) ? m_w.decoder.col(c.index[es]).dot(ws.dxhat.col(b))
                                           : Scalar(0);
    }
  sparse_backward(ws, grad, aux_active);
  grad.decoder_bias = ws.dxhat.rowwise().sum();
  if (m_params.apply_b_dec_to_input)
    grad.decoder_bias.noalias() -= m_w.encoder.transpose() * grad.encoder_bias;
  t.total = t.reconstruction + t.aux;
  return t;
}

template <class Scalar>
LossTerms SparseAutoencoder<Scalar>::step_structured(const Eigen::Ref<const Matrix<Scalar>>& x,
                                                     const LossWeights& w,
                                                     SaeWorkspace<Scalar>& ws,
                                                     SaeWeights<Scalar>& grad) const {
  const Index d = d_in(), m = d_sae(), B = x.cols();
  const Index hr = m_w.dense.rows();
  LossTerms t;
  ws.u = x;
  if (m_params.apply_b_dec_to_input) ws.u.colwise() -= m_w.decoder_bias;
  ws.h.noalias() = m_w.encoder * ws.u;
  ws.h.colwise() += m_w.encoder_bias;
  ws.h = ws.h.cwiseMax(Scalar(0));  // S (sparse branch)
  const Scalar p = static_cast<Scalar>(w.p);
  const Scalar eps_p = static_cast<Scalar>(m_params.p_epsilon);
  const Scalar eps_pp = std::pow(eps_p, p);
  double pen = 0.0, l0 = 0.0;
  std::fill(ws.fired.begin(), ws.fired.end(), char(0));
  for (Index b = 0; b < B; ++b)
    for (Index i = 0; i < m; ++i) {
      const Scalar s = ws.h(i, b);
      if (s > Scalar(0)) {
        l0 += 1.0;
        ws.fired[static_cast<size_t>(i)] = 1;
        pen += p == Scalar(1) ? static_cast<double>(s)
                              : static_cast<double>(std::pow(s + eps_p, p) - eps_pp);
      }
    }
  const double invB = 1.0 / static_cast<double>(B);
  t.l0 = l0 * invB;
  t.sparsity = w.sparsity * pen * invB;
  ws.r.noalias() = m_w.dense * ws.u;
  ws.r.colwise() += m_w.dense_bias;
  ws.z = ws.h;
  ws.z.topRows(hr) += ws.r;
  dense_decode_backward(x, ws.z, ws, t, grad);
  ws.dr = ws.dz.topRows(hr);
  const Scalar lam_b = static_cast<Scalar>(w.sparsity * invB);
  for (Index b = 0; b < B; ++b)
    for (Index i = 0; i < m; ++i) {
      const Scalar s = ws.h(i, b);
      ws.dz(i, b) = s > Scalar(0)
                        ? ws.dz(i, b) + lam_b * (p == Scalar(1)
                                                     ? Scalar(1)
                                                     : p * std::pow(s + eps_p, p - Scalar(1)))
                        : Scalar(0);
    }
  grad.encoder.noalias() = ws.dz * ws.u.transpose();
  grad.encoder_bias = ws.dz.rowwise().sum();
  grad.dense.noalias() = ws.dr * ws.u.transpose();
  grad.dense_bias = ws.dr.rowwise().sum();
  if (w.nuclear > 0.0) {
    // (γ/√B) ‖R‖_*, R = [W_R b_R] [U; 1ᵀ]: see detail::nuclear_norm_factored
    auto& nw = ws.nuclear;
    nw.a.resize(hr, d + 1);
    nw.a.leftCols(d) = m_w.dense.template cast<double>();
    nw.a.col(d) = m_w.dense_bias.template cast<double>();
    nw.bt.resize(B, d + 1);
    nw.bt.leftCols(d) = ws.u.transpose().template cast<double>();
    nw.bt.col(d).setOnes();
    // singular values below 1e-10 σ_max are numerically zero for double factorisations
    const double nuc = detail::nuclear_norm_factored(nw, 1e-10);
    const double c = w.nuclear / std::sqrt(static_cast<double>(B));
    t.nuclear = c * nuc;
    grad.dense += (c * nw.dA.leftCols(d)).template cast<Scalar>();
    grad.dense_bias += (c * nw.dA.col(d)).template cast<Scalar>();
  }
  if (m_params.apply_b_dec_to_input) {
    grad.decoder_bias.noalias() -= m_w.encoder.transpose() * grad.encoder_bias;
    grad.decoder_bias.noalias() -= m_w.dense.transpose() * grad.dense_bias;
  }
  t.total = t.reconstruction + t.sparsity + t.nuclear;
  return t;
}

template <class Scalar>
LossTerms SparseAutoencoder<Scalar>::step_unmixer(const Eigen::Ref<const Matrix<Scalar>>& x,
                                                  const LossWeights& w, SaeWorkspace<Scalar>& ws,
                                                  SaeWeights<Scalar>& grad) const {
  const Index m = d_sae(), B = x.cols();
  LossTerms t;
  ws.h.noalias() = m_w.encoder * x;
  ws.h.colwise() += m_w.encoder_bias;
  const bool normed = m_params.unmixer_norm != UnmixerNorm::None;
  const Index G = !normed ? 0 : (m_params.unmixer_norm == UnmixerNorm::LayerNorm ? 1 : m_params.groups);
  const Index gs = normed ? m / G : m;
  const Scalar neps = static_cast<Scalar>(m_params.norm_eps);
  if (normed) {
    for (Index b = 0; b < B; ++b)
      for (Index g = 0; g < G; ++g) {
        auto blk = ws.h.col(b).segment(g * gs, gs);
        const Scalar mu = blk.mean();
        const Scalar var = (blk.array() - mu).square().mean();
        const Scalar r = Scalar(1) / std::sqrt(var + neps);
        ws.rstd(g, b) = r;
        ws.nrm.col(b).segment(g * gs, gs) = ((blk.array() - mu) * r).matrix();
      }
    ws.z = (ws.nrm.array().colwise() * m_w.norm_weight.array()).matrix();
    ws.z.colwise() += m_w.norm_bias;
  }
  const Matrix<Scalar>& Z = normed ? ws.z : ws.h;
  dense_decode_backward(x, Z, ws, t, grad);
  const double invB = 1.0 / static_cast<double>(B);
  const Scalar lam_b = static_cast<Scalar>(w.sparsity * invB);
  const Scalar clamp = static_cast<Scalar>(m_params.exp_clamp);
  double pen = 0.0, l0 = 0.0;
  std::fill(ws.fired.begin(), ws.fired.end(), char(0));
  for (Index b = 0; b < B; ++b)
    for (Index i = 0; i < m; ++i) {
      Scalar dg;
      const Scalar gv = detail::unmixer_penalty(m_params.unmixer_activation, Z(i, b), clamp, &dg);
      pen += static_cast<double>(gv);
      ws.dz(i, b) += lam_b * dg;
      if (Z(i, b) != Scalar(0)) {
        l0 += 1.0;
        ws.fired[static_cast<size_t>(i)] = 1;
      }
    }
  t.sparsity = w.sparsity * pen * invB;
  t.l0 = l0 * invB;
  if (normed) {
    grad.norm_weight = (ws.dz.cwiseProduct(ws.nrm)).rowwise().sum();
    grad.norm_bias = ws.dz.rowwise().sum();
    ws.dz = (ws.dz.array().colwise() * m_w.norm_weight.array()).matrix();  // ∂L/∂n
    const Scalar inv_gs = Scalar(1) / static_cast<Scalar>(gs);
    for (Index b = 0; b < B; ++b)
      for (Index g = 0; g < G; ++g) {
        auto dn = ws.dz.col(b).segment(g * gs, gs);
        auto nv = ws.nrm.col(b).segment(g * gs, gs);
        const Scalar mean_dn = dn.sum() * inv_gs;
        const Scalar mean_dnn = dn.dot(nv) * inv_gs;
        dn = (ws.rstd(g, b) * (dn.array() - mean_dn - nv.array() * mean_dnn)).matrix();
      }
  }
  grad.encoder.noalias() = ws.dz * x.transpose();
  grad.encoder_bias = ws.dz.rowwise().sum();
  t.total = t.reconstruction + t.sparsity;
  return t;
}

template <class Scalar>
double SparseAutoencoder<Scalar>::lp_penalty(const SaeWorkspace<Scalar>& ws, double p) const {
  const Scalar ps = static_cast<Scalar>(p);
  const Scalar eps_p = static_cast<Scalar>(m_params.p_epsilon);
  const Scalar eps_pp = std::pow(eps_p, ps);
  double s = 0.0;
  for (Index b = 0; b < ws.h.cols(); ++b)
    for (Index i = 0; i < ws.h.rows(); ++i) {
      const Scalar z = ws.h(i, b);
      if (z > Scalar(0)) s += static_cast<double>(std::pow(z + eps_p, ps) - eps_pp);
    }
  return ws.h.cols() > 0 ? s / static_cast<double>(ws.h.cols()) : 0.0;
}

}  // namespace ergo::sae

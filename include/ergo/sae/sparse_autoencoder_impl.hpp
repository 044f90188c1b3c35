// SPDX-License-Identifier: MIT
#pragma once

// Definitions of SparseAutoencoder (included at the end of sparse_autoencoder.hpp). Everything
// architecture-specific is a hook of the architecture's class (arch/*.hpp), reached through
// visit_params; what is here is the same for every architecture.

#include "sparse_autoencoder.hpp"

#include <algorithm>

namespace ergo::sae {

// ---------------------------------------------------------------------------------------------
// construction, weights, config

template <class Scalar>
SparseAutoencoder<Scalar>::SparseAutoencoder(const SparseAutoencoderParams& params,
                                             std::uint64_t seed)
    : m_params(params) {
  m_params.check();
  Rng rng(seed);
  init(rng);
}

template <class Scalar>
SparseAutoencoder<Scalar>::SparseAutoencoder(const SparseAutoencoderParams& params, Rng& rng)
    : m_params(params) {
  m_params.check();
  init(rng);
}

template <class Scalar>
std::vector<TensorSpec> SparseAutoencoder<Scalar>::extra_tensor_specs() const {
  return visit_params(m_params, [&](auto tag, const auto& ap, const char*) {
    using A = typename decltype(tag)::type;
    return A::tensors(ap, d_in(), d_sae());
  });
}

template <class Scalar>
void SparseAutoencoder<Scalar>::init(Rng& rng) {
  const Index d = d_in(), m = d_sae();
  m_w.decoder = rng.template normal_matrix<Scalar>(d, m);
  normalize_decoder();
  m_w.encoder = static_cast<Scalar>(m_params.encoder_init_scale) * m_w.decoder.transpose();
  m_w.encoder_bias = Vector<Scalar>::Zero(m);
  m_w.decoder_bias = Vector<Scalar>::Zero(d);
  m_w.extras.clear();
  for (const TensorSpec& t : extra_tensor_specs())
    m_w.extras.push_back(
        {t.name, Matrix<Scalar>::Constant(t.rows, t.cols, static_cast<Scalar>(t.init))});
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
  if (name == "b_enc") return assign_vector(m_w.encoder_bias);
  if (name == "b_dec") return assign_vector(m_w.decoder_bias);
  std::string names = "W_enc, b_enc, W_dec, b_dec";
  for (auto& t : m_w.extras) {
    if (t.name == name) return assign_matrix(t.value);
    names += ", " + t.name;
  }
  throw_invalid(who, "name",
                ergo::detail::str_cat("a weight of ", to_string(architecture()), " (", names, ")"),
                "\"" + name + "\"");
}

template <class Scalar>
Config SparseAutoencoder<Scalar>::config() const {
  Config c;
  c.architecture = to_string(architecture());
  c.saelens_architecture = saelens_architecture(architecture());
  c.d_in = d_in();
  c.d_sae = d_sae();
  c.normalization_factor = m_norm_factor;
  c.normalization_folded = true;
  c.apply_b_dec_to_input = traits().pre_bias && m_params.apply_b_dec_to_input;
  for (const auto& kv : options(m_params)) c.extra[kv.first] = kv.second;
  visit_params(m_params, [&](auto tag, const auto& ap, const char*) {
    using A = typename decltype(tag)::type;
    A::config(*this, ap, c);
  });
  return c;
}

template <class Scalar>
nn::ParameterList<Scalar> SparseAutoencoder<Scalar>::parameters(Weights<Scalar>& g) {
  check_arg(g.extras.size() == m_w.extras.size(), "SparseAutoencoder::parameters", "grad",
            "gradients from make_gradients()",
            ergo::detail::str_cat(g.extras.size(), " extra tensors for ", m_w.extras.size()));
  nn::ParameterList<Scalar> list;
  list.push_back(nn::make_parameter<Scalar>("W_enc", m_w.encoder, g.encoder));
  list.push_back(nn::make_parameter<Scalar>("b_enc", m_w.encoder_bias, g.encoder_bias));
  list.push_back(nn::make_parameter<Scalar>("W_dec", m_w.decoder, g.decoder));
  list.push_back(nn::make_parameter<Scalar>("b_dec", m_w.decoder_bias, g.decoder_bias));
  const std::vector<TensorSpec> specs = extra_tensor_specs();
  for (size_t q = 0; q < specs.size(); ++q)
    if (specs[q].trainable)
      list.push_back(
          nn::make_parameter<Scalar>(specs[q].name, m_w.extras[q].value, g.extras[q].value));
  return list;
}

template <class Scalar>
void SparseAutoencoder<Scalar>::project_decoder_gradient(Weights<Scalar>& g) const {
  ergo::detail::parallel_for(d_sae(), ergo::detail::grain_for(d_in()), [&](Index b, Index e, int) {
    for (Index i = b; i < e; ++i) {
      const auto col = m_w.decoder.col(i);
      const Scalar n2 = col.squaredNorm();
      if (n2 > Scalar(0)) g.decoder.col(i) -= (g.decoder.col(i).dot(col) / n2) * col;
    }
  });
}

template <class Scalar>
void SparseAutoencoder<Scalar>::normalize_decoder() {
  ergo::detail::parallel_for(m_w.decoder.cols(), ergo::detail::grain_for(m_w.decoder.rows()),
                             [&](Index b, Index e, int) {
                               for (Index i = b; i < e; ++i) {
                                 const Scalar n = m_w.decoder.col(i).norm();
                                 if (n > Scalar(0)) m_w.decoder.col(i) /= n;
                               }
                             });
}

template <class Scalar>
void SparseAutoencoder<Scalar>::fold_input_scale(double s) {
  check_positive("SparseAutoencoder::fold_input_scale", "s", s);
  const Scalar ss = static_cast<Scalar>(s);
  m_w.encoder *= ss;
  const std::vector<TensorSpec> specs = extra_tensor_specs();
  for (size_t q = 0; q < specs.size(); ++q)
    if (specs[q].scales_with_input) m_w.extras[q].value *= ss;
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
  const Index N = x.cols();
  Matrix<Scalar> out(d_sae(), N);
  EncodeBuffers<Scalar> buf;
  visit_params(m_params, [&](auto tag, const auto& ap, const char*) {
    using A = typename decltype(tag)::type;
    for (Index c0 = 0; c0 < N; c0 += chunk) {
      const Index n = std::min(chunk, N - c0);
      A::encode(*this, ap, x.middleCols(c0, n), out.middleCols(c0, n), buf);
    }
  });
  return out;
}

template <class Scalar>
Matrix<Scalar> SparseAutoencoder<Scalar>::encode_sparse(const Eigen::Ref<const Matrix<Scalar>>& x,
                                                        Index chunk) const {
  check_shape("SparseAutoencoder::encode_sparse", "x", x, d_in(), -1);
  return visit_params(m_params, [&](auto tag, const auto& ap, const char*) {
    using A = typename decltype(tag)::type;
    return A::encode_sparse(*this, ap, x, chunk);
  });
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
void SparseAutoencoder<Scalar>::prepare(Workspace<Scalar>& ws, Index B) const {
  const Index d = d_in(), m = d_sae();
  if (ws.batch == B && ws.u.rows() == d && static_cast<Index>(ws.fired.size()) == m) return;
  ws.batch = B;
  ws.u.resize(d, B);
  ws.xhat.resize(d, B);
  ws.dxhat.resize(d, B);
  ws.h.resize(m, B);
  ws.fired.assign(static_cast<size_t>(m), 0);
  visit_params(m_params, [&](auto tag, const auto& ap, const char*) {
    using A = typename decltype(tag)::type;
    A::prepare(*this, ap, ws, B);
  });
}

template <class Scalar>
LossTerms SparseAutoencoder<Scalar>::forward_backward(const Eigen::Ref<const Matrix<Scalar>>& x,
                                                      const LossWeights& w, Workspace<Scalar>& ws,
                                                      Weights<Scalar>& grad) const {
  const char* who = "SparseAutoencoder::forward_backward";
  check_shape(who, "x", x, d_in(), -1);
  check_arg(x.cols() > 0, who, "x", "at least one column", x.cols());
  check_shape(who, "grad.encoder", grad.encoder, d_sae(), d_in());
  check_shape(who, "grad.decoder", grad.decoder, d_in(), d_sae());
  check_arg(grad.extras.size() == m_w.extras.size(), who, "grad", "gradients from make_gradients()",
            ergo::detail::str_cat(grad.extras.size(), " extra tensors for ", m_w.extras.size()));
  if (w.aux > 0.0 && w.dead != nullptr)
    check_arg(static_cast<Index>(w.dead->size()) == d_sae(), who, "w.dead",
              ergo::detail::str_cat("size d_sae = ", d_sae()), w.dead->size());
  prepare(ws, x.cols());
  return visit_params(m_params, [&](auto tag, const auto& ap, const char*) {
    using A = typename decltype(tag)::type;
    return A::forward_backward(*this, ap, x, w, ws, grad);
  });
}

template <class Scalar>
void SparseAutoencoder<Scalar>::after_step(const Workspace<Scalar>& ws, const TrainerParams& tp) {
  visit_params(m_params, [&](auto tag, const auto& ap, const char*) {
    using A = typename decltype(tag)::type;
    A::after_step(*this, ap, ws, tp);
  });
}

template <class Scalar>
double SparseAutoencoder<Scalar>::lp_penalty(const Workspace<Scalar>& ws, double p) const {
  return visit_params(m_params, [&](auto tag, const auto& ap, const char*) {
    using A = typename decltype(tag)::type;
    return A::lp_penalty(*this, ap, ws, p);
  });
}

}  // namespace ergo::sae

// SPDX-License-Identifier: MIT
#pragma once

/// \file mlp.hpp
/// \brief Multi-layer perceptron built from a list of widths, with preallocated workspaces so a
/// training step (forward + backward) allocates nothing once the largest batch has been seen.
///
/// widths = {n_0, n_1, …, n_L} gives L dense layers n_{l} → n_{l+1}; the activation follows every
/// layer but the last (and the last too if `activate_output`). The input is either dense
/// (n_0 × B) or multi-hot (k × B active coordinates, e.g. the one-hot encoding of a discrete
/// context, see ContextEncoder), in which case the first layer is an embedding-bag gather.
///
/// \code
/// ergo::Rng rng(7);
/// ergo::nn::MlpParams p;
/// p.widths = {10, 64, 64, 3};
/// ergo::nn::Mlp<float> mlp(p, rng);
/// ergo::Matrix<float> x = rng.normal_matrix<float>(10, 32);
/// auto y = mlp.forward(x);            // 3 × 32 view into the MLP's workspace
/// mlp.output_grad() = y;              // dL/dy for L = ‖y‖²/2
/// mlp.backward();                     // fills every layer's weight_grad() / bias_grad()
/// ergo::Matrix<float> y2 = mlp.predict(x);   // inference without touching the workspaces
/// \endcode

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "detail/parallel.hpp"
#include "embedding.hpp"
#include "layers.hpp"
#include "parameter.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace ergo::nn {

/// \brief Architecture of an Mlp.
struct MlpParams {
  /// {input, hidden…, output} sizes, at least two entries, each >= 1. No default: must be set.
  std::vector<Index> widths;
  Activation activation =
      Activation::LeakyRelu;       ///< nonlinearity between layers (paper: LeakyReLU)
  double negative_slope = 0.2;     ///< LeakyReLU slope for z <= 0 (paper: 0.2); finite
  bool activate_output = false;    ///< also apply the activation after the last layer
  bool bias = true;                ///< dense layers have biases
  Init init = Init::TorchDefault;  ///< weight initialisation (see Init)
  /// \throws InvalidArgument naming the first field out of range
  void check() const {
    check_arg(widths.size() >= 2, "MlpParams::check", "widths",
              "at least 2 entries (input and output sizes)", widths.size());
    for (size_t i = 0; i < widths.size(); ++i)
      check_arg(widths[i] >= 1, "MlpParams::check", detail::str_cat("widths[", i, "]"), ">= 1",
                widths[i]);
    check_arg(std::isfinite(negative_slope), "MlpParams::check", "negative_slope", "a finite value",
              negative_slope);
  }
};

/// \brief Multi-layer perceptron with hand-written backward pass.
///
/// SHAPES: dense input n_0 × B; multi-hot input k × B (int32 coordinates in [0, n_0)); output
/// n_L × B. Parameter names (prefix P): "P.layers.l.weight" (n_{l+1} × n_l), "P.layers.l.bias".
/// \tparam Scalar_ float (training) or double (gradient checks)
template <class Scalar_>
class Mlp {
 public:
  using Scalar = Scalar_;
  using Index = Eigen::Index;
  /// A view of B leading columns of a workspace.
  using ColsView = Eigen::Block<Matrix<Scalar>, Eigen::Dynamic, Eigen::Dynamic, true>;

  Mlp() = default;
  /// \brief Builds and initialises the layers (drawn from `rng` in layer order).
  /// \throws InvalidArgument if `params.check()` fails
  Mlp(const MlpParams& params, Rng& rng) : m_params(params) {
    m_params.check();
    m_act.kind = params.activation;
    m_act.negative_slope = static_cast<Scalar>(params.negative_slope);
    const Index L = static_cast<Index>(params.widths.size()) - 1;
    for (Index l = 0; l < L; ++l)
      m_layers.emplace_back(width(l), width(l + 1), rng, params.init, params.bias);
    m_z.resize(static_cast<size_t>(L));
    m_a.resize(static_cast<size_t>(L));
    m_g.resize(static_cast<size_t>(L));
  }

  const MlpParams& params() const { return m_params; }
  Index input_dim() const { return width(0); }
  Index output_dim() const { return width(num_layers()); }
  Index num_layers() const { return static_cast<Index>(m_layers.size()); }
  Dense<Scalar>& layer(Index l) { return m_layers.at(static_cast<size_t>(l)); }
  const Dense<Scalar>& layer(Index l) const { return m_layers.at(static_cast<size_t>(l)); }
  const ActivationFunction<Scalar>& activation() const { return m_act; }
  /// Whether layer l is followed by the activation.
  bool activated(Index l) const { return l + 1 < num_layers() || m_params.activate_output; }

  /// \brief Sizes the workspaces for batches of up to `batch` columns (done automatically by
  /// forward; call it up front to keep the first step's allocation out of a timed loop).
  void reserve(Index batch) {
    if (batch <= m_cap) return;
    for (Index l = 0; l < num_layers(); ++l) {
      const auto i = static_cast<size_t>(l);
      m_z[i].resize(width(l + 1), batch);
      if (activated(l)) m_a[i].resize(width(l + 1), batch);
      m_g[i].resize(width(l + 1), batch);
    }
    m_cap = batch;
  }
  /// Columns the workspaces currently hold.
  Index capacity() const { return m_cap; }

  /// \brief Training-mode forward pass for a dense input; keeps what backward() needs.
  /// \param x n_0 × B \return n_L × B view of the output, valid until the next forward call
  /// \throws InvalidArgument on a shape mismatch
  template <class DX>
  ColsView forward(const Eigen::MatrixBase<DX>& x) {
    check_shape("Mlp::forward", "x", x, input_dim(), -1);
    const Index B = x.cols();
    reserve(B);
    if (m_x.rows() != input_dim() || m_x.cols() < m_cap) m_x.resize(input_dim(), m_cap);
    m_x.leftCols(B) = x;
    m_batch = B;
    m_multi_hot = false;
    m_z[0].leftCols(B).noalias() = m_layers[0].weight() * m_x.leftCols(B);
    finish_layer(0, B, true);
    for (Index l = 1; l < num_layers(); ++l) run_layer(l, B);
    return output_view();
  }

  /// \brief Training-mode forward pass for a multi-hot input: sample b has ones at the
  /// coordinates active(:, b) (a repeated coordinate counts twice); the first layer is applied as
  /// an embedding-bag gather, identical to forward(one-hot matrix) up to summation order.
  /// \param active k × B int32 coordinates in [0, n_0) \return n_L × B view of the output
  /// \throws InvalidArgument on a coordinate out of range
  ColsView forward_multi_hot(const Eigen::Ref<const IntMatrix>& active) {
    for (Index b = 0; b < active.cols(); ++b)
      for (Index j = 0; j < active.rows(); ++j)
        if (active(j, b) < 0 || active(j, b) >= input_dim())
          throw_invalid("Mlp::forward_multi_hot", detail::str_cat("active(", j, ", ", b, ")"),
                        detail::str_cat("a coordinate in [0, ", input_dim(), ")"), active(j, b));
    return forward_multi_hot_unchecked(active);
  }

  /// forward_multi_hot without the range check (for callers that validated their data once).
  ColsView forward_multi_hot_unchecked(const Eigen::Ref<const IntMatrix>& active) {
    const Index B = active.cols();
    reserve(B);
    if (m_active.rows() != active.rows() || m_active.cols() < m_cap)
      m_active.resize(active.rows(), m_cap);
    m_active.leftCols(B) = active;
    m_batch = B;
    m_multi_hot = true;
    embedding_bag_forward(m_layers[0].weight(), m_layers[0].bias(), m_active.leftCols(B),
                          m_z[0].leftCols(B));
    finish_layer(0, B, false);
    for (Index l = 1; l < num_layers(); ++l) run_layer(l, B);
    return output_view();
  }

  /// The output of the last forward pass (n_L × B).
  ColsView output() { return output_view(); }

  /// \brief Writable n_L × B view for dL/d(output) of the last forward batch: fill it, then call
  /// backward(). Writing here directly avoids a copy.
  ColsView output_grad() {
    ERGO_CHECK(m_batch > 0, "Mlp::output_grad() needs a forward pass first");
    return m_g.back().leftCols(m_batch);
  }

  /// \brief Backward pass from output_grad(): overwrites every layer's weight_grad() and
  /// bias_grad(). With `need_input_grad` and a dense input, input_grad() is filled as well.
  void backward(bool need_input_grad = false) {
    ERGO_CHECK(m_batch > 0, "Mlp::backward() needs a forward pass first");
    const Index B = m_batch;
    for (Index l = num_layers() - 1; l >= 0; --l) {
      const auto i = static_cast<size_t>(l);
      auto g = m_g[i].leftCols(B);
      if (activated(l)) activation_backward(l, B);
      Dense<Scalar>& layer = m_layers[i];
      if (l == 0 && m_multi_hot)
        embedding_bag_backward(g, m_active.leftCols(B), layer.weight_grad());
      else if (l == 0)
        layer.weight_grad().noalias() = g * m_x.leftCols(B).transpose();
      else
        layer.weight_grad().noalias() = g * m_a[i - 1].leftCols(B).transpose();
      if (layer.has_bias()) detail::rowwise_sum(g, layer.bias_grad(), false);
      if (l > 0) {
        m_g[i - 1].leftCols(B).noalias() = layer.weight().transpose() * g;
      } else if (need_input_grad && !m_multi_hot) {
        if (m_gx.rows() != input_dim() || m_gx.cols() < m_cap) m_gx.resize(input_dim(), m_cap);
        m_gx.leftCols(B).noalias() = layer.weight().transpose() * g;
      }
    }
  }
  /// \brief Backward pass from a given dL/d(output). \param dout n_L × B (B of the last forward)
  template <class DG>
  void backward(const Eigen::MatrixBase<DG>& dout, bool need_input_grad = false) {
    check_shape("Mlp::backward", "dout", dout, output_dim(), m_batch);
    output_grad() = dout;
    backward(need_input_grad);
  }
  /// dL/d(input) (n_0 × B) after backward(true) on a dense input.
  ColsView input_grad() {
    ERGO_CHECK(m_gx.cols() >= m_batch && m_gx.rows() == input_dim(),
               "Mlp::input_grad() needs backward(true) after a dense forward pass");
    return m_gx.leftCols(m_batch);
  }

  /// \brief Inference on a dense input (const; allocates its result and temporaries).
  /// \param x n_0 × N \return n_L × N
  template <class DX>
  Matrix<Scalar> predict(const Eigen::MatrixBase<DX>& x) const {
    check_shape("Mlp::predict", "x", x, input_dim(), -1);
    Matrix<Scalar> out(output_dim(), x.cols());
    for (Index c0 = 0; c0 < x.cols(); c0 += kPredictChunk) {
      const Index n = std::min(kPredictChunk, x.cols() - c0);
      Matrix<Scalar> z(width(1), n);
      z.noalias() = m_layers[0].weight() * x.middleCols(c0, n);
      if (m_layers[0].has_bias()) z.colwise() += m_layers[0].bias();
      out.middleCols(c0, n) = predict_rest(std::move(z));
    }
    return out;
  }
  /// \brief Inference on a multi-hot input. \param active k × N coordinates in [0, n_0)
  /// \return n_L × N \throws InvalidArgument on a coordinate out of range
  Matrix<Scalar> predict_multi_hot(const Eigen::Ref<const IntMatrix>& active) const {
    for (Index b = 0; b < active.cols(); ++b)
      for (Index j = 0; j < active.rows(); ++j)
        if (active(j, b) < 0 || active(j, b) >= input_dim())
          throw_invalid("Mlp::predict_multi_hot", detail::str_cat("active(", j, ", ", b, ")"),
                        detail::str_cat("a coordinate in [0, ", input_dim(), ")"), active(j, b));
    Matrix<Scalar> out(output_dim(), active.cols());
    for (Index c0 = 0; c0 < active.cols(); c0 += kPredictChunk) {
      const Index n = std::min(kPredictChunk, active.cols() - c0);
      Matrix<Scalar> z(width(1), n);
      embedding_bag_forward(m_layers[0].weight(), m_layers[0].bias(), active.middleCols(c0, n), z);
      out.middleCols(c0, n) = predict_rest(std::move(z));
    }
    return out;
  }

  /// \brief Appends "prefix.layers.l.weight" / ".bias" for every layer, in layer order.
  void append_parameters(ParameterList<Scalar>& list, const std::string& prefix) {
    for (Index l = 0; l < num_layers(); ++l)
      m_layers[static_cast<size_t>(l)].append_parameters(list,
                                                         detail::str_cat(prefix, ".layers.", l));
  }

 private:
  static constexpr Index kPredictChunk = 2048;
  static constexpr Index kTile = 16;  // columns per elementwise tile (256 rows × 16 = 16 KiB)

  Index width(Index i) const { return m_params.widths[static_cast<size_t>(i)]; }

  ColsView output_view() {
    const auto last = static_cast<size_t>(num_layers() - 1);
    return activated(num_layers() - 1) ? m_a[last].leftCols(m_batch) : m_z[last].leftCols(m_batch);
  }

  // Layer l >= 1 of a training forward pass: Z_l = W_l A_{l−1}, then bias and activation.
  void run_layer(Index l, Index B) {
    const auto i = static_cast<size_t>(l);
    m_z[i].leftCols(B).noalias() = m_layers[i].weight() * m_a[i - 1].leftCols(B);
    finish_layer(l, B, true);
  }

  // Z_l += b_l (if add_bias), A_l = φ(Z_l) (if activated), in column tiles over the threads.
  void finish_layer(Index l, Index B, bool add_bias) {
    const auto i = static_cast<size_t>(l);
    const bool bias = add_bias && m_layers[i].has_bias();
    const bool act = activated(l);
    if (!bias && !act) return;
    Matrix<Scalar>& z = m_z[i];
    Matrix<Scalar>& a = m_a[i];
    const Vector<Scalar>& b = m_layers[i].bias();
    const Index grain = detail::grain_for(z.rows(), kTile);
    detail::parallel_for(B, grain, [&](Index c0, Index c1, int) {
      for (Index c = c0; c < c1; c += kTile) {
        const Index n = std::min(kTile, c1 - c);
        auto zt = z.middleCols(c, n);
        if (bias) zt.colwise() += b;
        if (act) m_act.forward(zt, a.middleCols(c, n));
      }
    });
  }

  // G_l ← G_l ⊙ φ'(Z_l) in place, in column tiles over the threads.
  void activation_backward(Index l, Index B) {
    const auto i = static_cast<size_t>(l);
    Matrix<Scalar>& z = m_z[i];
    Matrix<Scalar>& a = m_a[i];
    Matrix<Scalar>& g = m_g[i];
    const Index grain = detail::grain_for(z.rows(), kTile);
    detail::parallel_for(B, grain, [&](Index c0, Index c1, int) {
      for (Index c = c0; c < c1; c += kTile) {
        const Index n = std::min(kTile, c1 - c);
        auto gt = g.middleCols(c, n);
        m_act.backward(z.middleCols(c, n), a.middleCols(c, n), gt, gt);
      }
    });
  }

  // Inference from the first layer's pre-activation (bias included) onwards.
  Matrix<Scalar> predict_rest(Matrix<Scalar> h) const {
    if (activated(0)) m_act.forward(h, h);
    for (Index l = 1; l < num_layers(); ++l) {
      const auto& layer = m_layers[static_cast<size_t>(l)];
      Matrix<Scalar> z(layer.out_features(), h.cols());
      z.noalias() = layer.weight() * h;
      if (layer.has_bias()) z.colwise() += layer.bias();
      if (activated(l)) m_act.forward(z, z);
      h.swap(z);
    }
    return h;
  }

  MlpParams m_params;
  ActivationFunction<Scalar> m_act;
  std::vector<Dense<Scalar>> m_layers;
  // Workspaces (capacity m_cap columns): per layer pre-activation Z, activation A (activated
  // layers only) and gradient G (dL/dA, turned into dL/dZ in place during backward).
  Index m_cap = 0, m_batch = 0;
  bool m_multi_hot = false;
  Matrix<Scalar> m_x, m_gx;  // dense input copy and its gradient
  IntMatrix m_active;        // multi-hot input copy
  std::vector<Matrix<Scalar>> m_z, m_a, m_g;
};

}  // namespace ergo::nn

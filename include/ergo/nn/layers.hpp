// SPDX-License-Identifier: MIT
#pragma once

/// \file layers.hpp
/// \brief Elementwise activations (identity, ReLU, LeakyReLU, GELU, tanh) and the dense layer
/// y = W x + b, each with a hand-written backward pass.
///
/// Samples are columns: a batch of B inputs of size n is an n × B matrix. Forward and backward
/// passes write into caller-provided storage (any writable Eigen expression: a Matrix, a block of
/// a preallocated workspace, a Map), so a training step can run without allocating.
///
/// \code
/// ergo::Rng rng(1);
/// ergo::nn::Dense<float> layer(3, 4, rng);                        // W: 4 × 3, b: 4
/// ergo::Matrix<float> x = rng.normal_matrix<float>(3, 8), y(4, 8), dy(4, 8), dx(3, 8);
/// layer.forward(x, y);                                           // y = W x + b
/// ergo::nn::ActivationFunction<float> act{ergo::nn::Activation::LeakyRelu, 0.2f};
/// act.forward(y, y);                                             // in place is fine
/// dy.setOnes();
/// layer.backward_params(x, dy);                                  // dW = dy xᵀ, db = Σ_cols dy
/// layer.backward_input(dy, dx);                                  // dx = Wᵀ dy
/// \endcode

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "parameter.hpp"

#include <cmath>
#include <string>

namespace ergo::nn {

/// \brief Elementwise nonlinearity applied between dense layers.
enum class Activation {
  Identity,   ///< φ(z) = z
  Relu,       ///< φ(z) = max(z, 0); φ'(0) taken as 0 (as PyTorch)
  LeakyRelu,  ///< φ(z) = z for z > 0, slope · z otherwise (the paper uses slope 0.2)
  Gelu,       ///< φ(z) = z Φ(z) = z (1 + erf(z/√2)) / 2 (exact form, PyTorch's default)
  Tanh        ///< φ(z) = tanh z
};

/// \brief "Identity", "Relu", "LeakyRelu", "Gelu" or "Tanh".
inline const char* to_string(Activation a) {
  switch (a) {
    case Activation::Identity:
      return "Identity";
    case Activation::Relu:
      return "Relu";
    case Activation::LeakyRelu:
      return "LeakyRelu";
    case Activation::Gelu:
      return "Gelu";
    case Activation::Tanh:
      return "Tanh";
  }
  return "Unknown";
}

/// \brief An activation with its parameter, and its forward and backward passes.
/// \tparam Scalar float or double
template <class Scalar>
struct ActivationFunction {
  Activation kind = Activation::Relu;    ///< which nonlinearity
  Scalar negative_slope = Scalar(0.01);  ///< LeakyReLU slope for z <= 0 (ignored otherwise)

  /// \brief a = φ(z), elementwise. `a` may be `z` itself.
  /// \param z any shape \param a_ same shape as z (written)
  template <class DZ, class DA>
  void forward(const Eigen::MatrixBase<DZ>& z, const Eigen::MatrixBase<DA>& a_) const {
    auto a = const_cast<Eigen::MatrixBase<DA>&>(a_).array();
    const auto zz = z.array();
    switch (kind) {
      case Activation::Identity:
        a = zz;
        break;
      case Activation::Relu:
        a = zz.cwiseMax(Scalar(0));
        break;
      case Activation::LeakyRelu:
        a = (zz > Scalar(0)).select(zz, negative_slope * zz);
        break;
      case Activation::Gelu:
        a = zz.unaryExpr([](Scalar v) {
          return Scalar(0.5) * v * (Scalar(1) + std::erf(v * Scalar(kInvSqrt2)));
        });
        break;
      case Activation::Tanh:
        a = zz.tanh();
        break;
    }
  }

  /// \brief dz = da ⊙ φ'(z), elementwise. `dz` may be `da` itself.
  /// \param z pre-activation \param a the forward output φ(z) (used by tanh) \param da dL/da
  /// \param dz_ dL/dz (written); all four of one shape
  template <class DZ, class DA, class DG, class DO>
  void backward(const Eigen::MatrixBase<DZ>& z, const Eigen::MatrixBase<DA>& a,
                const Eigen::MatrixBase<DG>& da, const Eigen::MatrixBase<DO>& dz_) const {
    auto dz = const_cast<Eigen::MatrixBase<DO>&>(dz_).array();
    const auto zz = z.array();
    const auto g = da.array();
    switch (kind) {
      case Activation::Identity:
        dz = g;
        break;
      case Activation::Relu:
        dz = (zz > Scalar(0)).select(g, Scalar(0));
        break;
      case Activation::LeakyRelu:
        dz = (zz > Scalar(0)).select(g, negative_slope * g);
        break;
      case Activation::Gelu:
        dz = g * zz.unaryExpr([](Scalar v) {
          const Scalar cdf = Scalar(0.5) * (Scalar(1) + std::erf(v * Scalar(kInvSqrt2)));
          const Scalar pdf = Scalar(kInvSqrt2Pi) * std::exp(Scalar(-0.5) * v * v);
          return cdf + v * pdf;
        });
        break;
      case Activation::Tanh:
        dz = g * (Scalar(1) - a.array().square());
        break;
    }
  }

  /// True if backward() reads only z (not a) — all but tanh.
  bool backward_needs_output() const { return kind == Activation::Tanh; }

 private:
  static constexpr double kInvSqrt2 = 0.70710678118654752440;
  static constexpr double kInvSqrt2Pi = 0.39894228040143267794;
};

/// \brief Weight initialisation of a dense layer with fan-in `in` and fan-out `out`.
enum class Init {
  TorchDefault,  ///< W, b ~ U(−1/√in, 1/√in): torch.nn.Linear's default
  He,            ///< W ~ N(0, 2/in), b = 0 (Kaiming normal, for ReLU-family nets)
  Xavier         ///< W ~ U(−√(6/(in+out)), √(6/(in+out))), b = 0 (Glorot uniform)
};

/// \brief "TorchDefault", "He" or "Xavier".
inline const char* to_string(Init i) {
  switch (i) {
    case Init::TorchDefault:
      return "TorchDefault";
    case Init::He:
      return "He";
    case Init::Xavier:
      return "Xavier";
  }
  return "Unknown";
}

/// \brief Fills W and b (may be empty) by the scheme `init`, drawing W column by column and then
/// b from `rng` (portable: the same seed gives the same weights everywhere).
/// \param fan_in, fan_out  the layer's input and output sizes; -1 means W.cols() and W.rows()
/// (the unembedding, stored d × V, passes fan_in = d explicitly)
template <class Scalar>
void init_dense(Matrix<Scalar>& w, Vector<Scalar>& b, Init init, Rng& rng, Index fan_in = -1,
                Index fan_out = -1) {
  const double in = static_cast<double>(fan_in >= 0 ? fan_in : w.cols());
  const double out = static_cast<double>(fan_out >= 0 ? fan_out : w.rows());
  switch (init) {
    case Init::TorchDefault: {
      const double r = in > 0 ? 1.0 / std::sqrt(in) : 0.0;
      w = rng.uniform_matrix<Scalar>(w.rows(), w.cols(), -r, r);
      if (b.size() > 0) b = rng.uniform_matrix<Scalar>(b.size(), 1, -r, r);
      break;
    }
    case Init::He:
      w = rng.normal_matrix<Scalar>(w.rows(), w.cols(), 0.0, in > 0 ? std::sqrt(2.0 / in) : 0.0);
      b.setZero();
      break;
    case Init::Xavier: {
      const double r = (in + out) > 0 ? std::sqrt(6.0 / (in + out)) : 0.0;
      w = rng.uniform_matrix<Scalar>(w.rows(), w.cols(), -r, r);
      b.setZero();
      break;
    }
  }
}

/// \brief Fully connected layer y = W x + b.
///
/// SHAPES: W is out × in, b is out (absent without bias); x is in × B, y is out × B.
/// Parameter names (with prefix P): "P.weight" (out × in), "P.bias" (out).
/// \tparam Scalar_ float or double
template <class Scalar_>
class Dense {
 public:
  using Scalar = Scalar_;
  using Index = Eigen::Index;

  Dense() = default;
  /// \brief Zero-initialised layer. \param in fan-in (>= 1) \param out fan-out (>= 1)
  /// \throws InvalidArgument if a size is < 1
  Dense(Index in, Index out, bool bias = true) { resize(in, out, bias); }
  /// \brief Layer initialised by `init` from `rng`.
  Dense(Index in, Index out, Rng& rng, Init init = Init::TorchDefault, bool bias = true) {
    resize(in, out, bias);
    reset_parameters(rng, init);
  }

  Index in_features() const { return m_w.cols(); }
  Index out_features() const { return m_w.rows(); }
  bool has_bias() const { return m_has_bias; }

  /// Redraws W and b (see Init).
  void reset_parameters(Rng& rng, Init init = Init::TorchDefault) {
    init_dense(m_w, m_b, init, rng);
  }

  Matrix<Scalar>& weight() { return m_w; }  ///< out × in
  const Matrix<Scalar>& weight() const { return m_w; }
  Vector<Scalar>& bias() { return m_b; }  ///< out (size 0 without bias)
  const Vector<Scalar>& bias() const { return m_b; }
  Matrix<Scalar>& weight_grad() { return m_gw; }  ///< out × in
  const Matrix<Scalar>& weight_grad() const { return m_gw; }
  Vector<Scalar>& bias_grad() { return m_gb; }  ///< out
  const Vector<Scalar>& bias_grad() const { return m_gb; }

  /// \brief y = W x + b. \param x in × B \param y_ out × B (written; must not alias x)
  template <class DX, class DY>
  void forward(const Eigen::MatrixBase<DX>& x, const Eigen::MatrixBase<DY>& y_) const {
    auto& y = const_cast<Eigen::MatrixBase<DY>&>(y_);
    check_shape("Dense::forward", "x", x, in_features(), -1);
    check_shape("Dense::forward", "y", y, out_features(), x.cols());
    y.noalias() = m_w * x;
    if (m_has_bias) y.colwise() += m_b;
  }

  /// \brief Parameter gradients from the layer input and dL/dy: dW = dy xᵀ, db = Σ_cols dy.
  /// \param x in × B (the forward input) \param dy out × B
  /// \param accumulate add to the stored gradients instead of overwriting them
  template <class DX, class DG>
  void backward_params(const Eigen::MatrixBase<DX>& x, const Eigen::MatrixBase<DG>& dy,
                       bool accumulate = false) {
    check_shape("Dense::backward_params", "x", x, in_features(), -1);
    check_shape("Dense::backward_params", "dy", dy, out_features(), x.cols());
    if (accumulate) {
      m_gw.noalias() += dy * x.transpose();
      if (m_has_bias) m_gb.noalias() += dy.rowwise().sum();
    } else {
      m_gw.noalias() = dy * x.transpose();
      if (m_has_bias) m_gb.noalias() = dy.rowwise().sum();
    }
  }

  /// \brief Input gradient dx = Wᵀ dy. \param dy out × B \param dx_ in × B (written)
  template <class DG, class DO>
  void backward_input(const Eigen::MatrixBase<DG>& dy, const Eigen::MatrixBase<DO>& dx_) const {
    auto& dx = const_cast<Eigen::MatrixBase<DO>&>(dx_);
    check_shape("Dense::backward_input", "dy", dy, out_features(), -1);
    check_shape("Dense::backward_input", "dx", dx, in_features(), dy.cols());
    dx.noalias() = m_w.transpose() * dy;
  }

  /// \brief Appends views "prefix.weight" and (with bias) "prefix.bias" to `list`.
  /// The views stay valid while this layer is neither resized nor moved.
  void append_parameters(ParameterList<Scalar>& list, const std::string& prefix) {
    list.push_back(make_parameter<Scalar>(prefix + ".weight", m_w, m_gw));
    if (m_has_bias) list.push_back(make_parameter<Scalar>(prefix + ".bias", m_b, m_gb));
  }

 private:
  void resize(Index in, Index out, bool bias) {
    check_arg(in >= 1, "Dense::Dense", "in", ">= 1", in);
    check_arg(out >= 1, "Dense::Dense", "out", ">= 1", out);
    m_has_bias = bias;
    m_w = Matrix<Scalar>::Zero(out, in);
    m_gw = Matrix<Scalar>::Zero(out, in);
    m_b = Vector<Scalar>::Zero(bias ? out : 0);
    m_gb = Vector<Scalar>::Zero(bias ? out : 0);
  }

  Matrix<Scalar> m_w, m_gw;
  Vector<Scalar> m_b, m_gb;
  bool m_has_bias = true;
};

}  // namespace ergo::nn

// SPDX-License-Identifier: MIT
#pragma once

/// \file optimizer.hpp
/// \brief Adam / AdamW and SGD with momentum over a ParameterList.
///
/// \code
/// ergo::nn::Adam<float> opt({.lr = 1e-3});
/// ergo::nn::ParameterList<float> params = model.parameters();
/// ... compute gradients into params ...
/// ergo::nn::clip_grad_norm(params, 1.0);
/// opt.step(params, schedule.lr(step));   // explicit learning rate for this step
/// \endcode
///
/// The optimizers keep per-parameter state (moments) matched to the list by position and
/// checked by name and size; `state()` / `set_state()` expose it as named matrices so that a
/// checkpoint can resume training exactly.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "parameter.hpp"

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace ergo::nn {

/// \brief Adam / AdamW hyper-parameters.
struct AdamParams {
  double lr = 1e-3;            ///< base learning rate (> 0); step() may be given another
  double beta1 = 0.9;          ///< first-moment decay, [0, 1)
  double beta2 = 0.999;        ///< second-moment decay, [0, 1)
  double eps = 1e-8;           ///< denominator guard, > 0
  double weight_decay = 0.0;   ///< >= 0; decoupled (AdamW) if `decoupled`, else added to grad
  bool decoupled = true;       ///< AdamW (Loshchilov & Hutter) when true, L2-in-gradient when false
  void check() const {
    check_positive("AdamParams::check", "lr", lr);
    check_arg(beta1 >= 0 && beta1 < 1, "AdamParams::check", "beta1", "a value in [0, 1)", beta1);
    check_arg(beta2 >= 0 && beta2 < 1, "AdamParams::check", "beta2", "a value in [0, 1)", beta2);
    check_positive("AdamParams::check", "eps", eps);
    check_arg(weight_decay >= 0, "AdamParams::check", "weight_decay", "a value >= 0",
              weight_decay);
  }
};

/// \brief Adam with bias correction (Kingma & Ba 2015), optionally with decoupled weight decay.
///
/// Update at step t (1-based), with g the gradient:
///   m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;
///   θ ← θ − lr · [ (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + eps) + wd · θ ]   (AdamW)
template <class Scalar_>
class Adam {
 public:
  using Scalar = Scalar_;
  explicit Adam(AdamParams params = {}) : m_params(params) { m_params.check(); }

  const AdamParams& params() const { return m_params; }
  /// Number of steps taken so far.
  Index steps() const { return m_t; }

  /// One update of every parameter with learning rate `lr` (use params().lr for the base rate).
  void step(ParameterList<Scalar>& list, double lr) {
    ensure_state(list);
    ++m_t;
    const double b1 = m_params.beta1, b2 = m_params.beta2;
    const double c1 = 1.0 - std::pow(b1, static_cast<double>(m_t));
    const double c2 = 1.0 - std::pow(b2, static_cast<double>(m_t));
    const Scalar step_size = static_cast<Scalar>(lr / c1);
    const Scalar inv_sqrt_c2 = static_cast<Scalar>(1.0 / std::sqrt(c2));
    const Scalar eps = static_cast<Scalar>(m_params.eps);
    const Scalar wd = static_cast<Scalar>(m_params.weight_decay);
    const Scalar lr_s = static_cast<Scalar>(lr);
    const Scalar sb1 = static_cast<Scalar>(b1), sb2 = static_cast<Scalar>(b2);
    for (size_t i = 0; i < list.size(); ++i) {
      auto& p = list[i];
      auto m = m_m[i].reshaped();
      auto v = m_v[i].reshaped();
      auto theta = p.value.reshaped();
      auto g = p.grad.reshaped();
      if (wd != Scalar(0) && !m_params.decoupled) g += wd * theta;
      m = sb1 * m + (Scalar(1) - sb1) * g;
      v = sb2 * v + (Scalar(1) - sb2) * g.cwiseAbs2();
      if (wd != Scalar(0) && m_params.decoupled) theta *= (Scalar(1) - lr_s * wd);
      theta.array() -= step_size * m.array() / (v.array().sqrt() * inv_sqrt_c2 + eps);
    }
  }

  /// Optimizer state as named matrices: "<name>.exp_avg", "<name>.exp_avg_sq", and "step".
  std::map<std::string, Matrix<double>> state() const {
    std::map<std::string, Matrix<double>> out;
    for (size_t i = 0; i < m_names.size(); ++i) {
      out[m_names[i] + ".exp_avg"] = m_m[i].template cast<double>();
      out[m_names[i] + ".exp_avg_sq"] = m_v[i].template cast<double>();
    }
    out["step"] = Matrix<double>::Constant(1, 1, static_cast<double>(m_t));
    return out;
  }
  /// Restores state() output for the parameters in `list` (matched by name and shape).
  void set_state(const ParameterList<Scalar>& list,
                 const std::map<std::string, Matrix<double>>& s) {
    m_names.clear();
    m_m.clear();
    m_v.clear();
    for (const auto& p : list) {
      auto fm = s.find(p.name + ".exp_avg");
      auto fv = s.find(p.name + ".exp_avg_sq");
      if (fm == s.end() || fv == s.end())
        throw_invalid("Adam::set_state", "state", "moments for parameter " + p.name, "none");
      check_shape("Adam::set_state", p.name + ".exp_avg", fm->second, p.value.rows(),
                  p.value.cols());
      check_shape("Adam::set_state", p.name + ".exp_avg_sq", fv->second, p.value.rows(),
                  p.value.cols());
      m_names.push_back(p.name);
      m_m.push_back(fm->second.template cast<Scalar>());
      m_v.push_back(fv->second.template cast<Scalar>());
    }
    auto fs = s.find("step");
    if (fs == s.end() || fs->second.size() != 1)
      throw_invalid("Adam::set_state", "state", "a 1 x 1 \"step\" entry", "none");
    m_t = static_cast<Index>(fs->second(0, 0));
  }
  /// Forgets all moments and the step count.
  void reset() {
    m_names.clear();
    m_m.clear();
    m_v.clear();
    m_t = 0;
  }

 private:
  void ensure_state(const ParameterList<Scalar>& list) {
    if (m_names.empty()) {
      for (const auto& p : list) {
        m_names.push_back(p.name);
        m_m.push_back(Matrix<Scalar>::Zero(p.value.rows(), p.value.cols()));
        m_v.push_back(Matrix<Scalar>::Zero(p.value.rows(), p.value.cols()));
      }
      return;
    }
    check_arg(list.size() == m_names.size(), "Adam::step", "params",
              detail::str_cat(m_names.size(), " parameters (as on the first step)"), list.size());
    for (size_t i = 0; i < list.size(); ++i)
      check_arg(list[i].name == m_names[i] && list[i].size() == m_m[i].size(), "Adam::step",
                "params", "the same names and sizes as on the first step",
                detail::str_cat(list[i].name, " of size ", list[i].size()));
  }

  AdamParams m_params;
  Index m_t = 0;
  std::vector<std::string> m_names;
  std::vector<Matrix<Scalar>> m_m, m_v;
};

/// \brief SGD hyper-parameters.
struct SgdParams {
  double lr = 1e-2;           ///< base learning rate, > 0
  double momentum = 0.0;      ///< [0, 1); 0 is plain SGD
  bool nesterov = false;      ///< Nesterov momentum (needs momentum > 0)
  double weight_decay = 0.0;  ///< L2 added to the gradient, >= 0
  void check() const {
    check_positive("SgdParams::check", "lr", lr);
    check_arg(momentum >= 0 && momentum < 1, "SgdParams::check", "momentum", "a value in [0, 1)",
              momentum);
    check_arg(weight_decay >= 0, "SgdParams::check", "weight_decay", "a value >= 0",
              weight_decay);
    check_arg(!nesterov || momentum > 0, "SgdParams::check", "nesterov",
              "momentum > 0 when nesterov is set", momentum);
  }
};

/// \brief SGD with (optionally Nesterov) momentum: b ← μ b + g; θ ← θ − lr · (g + μ b if
/// Nesterov, else b). With μ = 0 this is θ ← θ − lr · g.
template <class Scalar_>
class Sgd {
 public:
  using Scalar = Scalar_;
  explicit Sgd(SgdParams params = {}) : m_params(params) { m_params.check(); }
  const SgdParams& params() const { return m_params; }
  Index steps() const { return m_t; }

  void step(ParameterList<Scalar>& list, double lr) {
    if (m_buf.empty())
      for (const auto& p : list) m_buf.push_back(Matrix<Scalar>::Zero(p.value.rows(), p.value.cols()));
    check_arg(m_buf.size() == list.size(), "Sgd::step", "params",
              detail::str_cat(m_buf.size(), " parameters"), list.size());
    ++m_t;
    const Scalar mu = static_cast<Scalar>(m_params.momentum);
    const Scalar wd = static_cast<Scalar>(m_params.weight_decay);
    const Scalar lr_s = static_cast<Scalar>(lr);
    for (size_t i = 0; i < list.size(); ++i) {
      auto& p = list[i];
      auto g = p.grad.reshaped();
      auto theta = p.value.reshaped();
      if (wd != Scalar(0)) g += wd * theta;
      if (mu == Scalar(0)) {
        theta -= lr_s * g;
        continue;
      }
      auto b = m_buf[i].reshaped();
      b = mu * b + g;
      if (m_params.nesterov)
        theta -= lr_s * (g + mu * b);
      else
        theta -= lr_s * b;
    }
  }

 private:
  SgdParams m_params;
  Index m_t = 0;
  std::vector<Matrix<Scalar>> m_buf;
};

}  // namespace ergo::nn

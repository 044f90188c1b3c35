// SPDX-License-Identifier: MIT
#pragma once

/// \file optimizer.hpp
/// \brief Adam / AdamW and SGD with momentum over a ParameterList.
///
/// \code
/// ergo::nn::AdamParams ap;
/// ap.lr = 1e-3;
/// ergo::nn::Adam<float> opt(ap);
/// ergo::nn::ParameterList<float> params = model.parameters();
/// ... compute gradients into params ...
/// ergo::nn::clip_grad_norm(params, 1.0);
/// opt.step(params, schedule.lr(step));   // explicit learning rate for this step
/// \endcode
///
/// The optimizers keep per-parameter state (moments) matched to the list by position and
/// checked by name and size; `state()` / `set_state()` expose it as named matrices so that a
/// checkpoint can resume training exactly. They never modify the gradients they are given.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "detail/parallel.hpp"
#include "parameter.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace ergo::nn {

/// \brief Adam / AdamW hyper-parameters.
struct AdamParams {
  double lr = 1e-3;           ///< base learning rate (> 0); step() may be given another
  double beta1 = 0.9;         ///< first-moment decay, [0, 1)
  double beta2 = 0.999;       ///< second-moment decay, [0, 1)
  double eps = 1e-8;          ///< denominator guard, > 0
  double weight_decay = 0.0;  ///< >= 0; decoupled (AdamW) if `decoupled`, else added to grad
  bool decoupled = true;      ///< AdamW (Loshchilov & Hutter) when true, L2-in-gradient when false
  /// \throws InvalidArgument naming the first field out of range
  void check() const {
    check_positive("AdamParams::check", "lr", lr);
    check_arg(beta1 >= 0 && beta1 < 1, "AdamParams::check", "beta1", "a value in [0, 1)", beta1);
    check_arg(beta2 >= 0 && beta2 < 1, "AdamParams::check", "beta2", "a value in [0, 1)", beta2);
    check_positive("AdamParams::check", "eps", eps);
    check_arg(weight_decay >= 0, "AdamParams::check", "weight_decay", "a value >= 0", weight_decay);
  }
};

namespace detail {
inline void check_step_lr(const char* who, double lr) {
  check_arg(lr >= 0 && std::isfinite(lr), who, "lr", "a finite value >= 0", lr);
}
}  // namespace detail

/// \brief Adam with bias correction (Kingma & Ba 2015), optionally with decoupled weight decay.
///
/// Update at step t (1-based), with g the gradient (plus wd · θ when weight decay is not
/// decoupled):
///   m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;
///   θ ← θ (1 − lr · wd)   (AdamW only);
///   θ ← θ − lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + eps).
/// This is exactly torch.optim.Adam / AdamW (amsgrad off). The update is one fused pass over each
/// parameter in L1-sized chunks, split across Eigen::nbThreads() threads for large parameters.
/// \tparam Scalar_ float or double (the moments are kept in this type)
template <class Scalar_>
class Adam {
 public:
  using Scalar = Scalar_;
  /// \throws InvalidArgument if `params.check()` fails
  explicit Adam(AdamParams params = {}) : m_params(params) { m_params.check(); }

  const AdamParams& params() const { return m_params; }
  /// Number of steps taken so far.
  Index steps() const { return m_t; }

  /// \brief One update of every parameter with learning rate `lr` (use params().lr for the base).
  /// \param list the same parameters (names, sizes, order) on every call
  /// \param lr   learning rate for this step, finite and >= 0
  /// \throws InvalidArgument if the list differs from the first call's or lr is invalid
  void step(ParameterList<Scalar>& list, double lr) {
    detail::check_step_lr("Adam::step", lr);
    ensure_state(list);
    ++m_t;
    const double b1 = m_params.beta1, b2 = m_params.beta2;
    const double c1 = 1.0 - std::pow(b1, static_cast<double>(m_t));
    const double c2 = 1.0 - std::pow(b2, static_cast<double>(m_t));
    const Scalar inv_sqrt_c2 = static_cast<Scalar>(1.0 / std::sqrt(c2));
    const Scalar eps = static_cast<Scalar>(m_params.eps);
    const Scalar wd = static_cast<Scalar>(m_params.weight_decay);
    const bool l2 = wd != Scalar(0) && !m_params.decoupled;
    const bool decoupled = wd != Scalar(0) && m_params.decoupled;
    const Scalar sb1 = static_cast<Scalar>(b1), sb2 = static_cast<Scalar>(b2);
    const Scalar ob1 = static_cast<Scalar>(1.0 - b1), ob2 = static_cast<Scalar>(1.0 - b2);
    using Arr = Eigen::Array<Scalar, Eigen::Dynamic, 1>;
    for (size_t i = 0; i < list.size(); ++i) {
      const double lr_i = lr * list[i].lr_scale;  // == lr when lr_scale == 1
      const Scalar step_size = static_cast<Scalar>(lr_i / c1);
      const Scalar decay = static_cast<Scalar>(1.0 - lr_i * m_params.weight_decay);
      Scalar* theta_p = list[i].value.data();
      const Scalar* g_p = list[i].grad.data();
      Scalar* m_p = m_m[i].data();
      Scalar* v_p = m_v[i].data();
      detail::parallel_for(list[i].size(), detail::grain_for(1), [&](Index begin, Index end, int) {
        for (Index c = begin; c < end; c += kChunk) {
          const Index n = std::min(kChunk, end - c);
          Eigen::Map<Arr> theta(theta_p + c, n), m(m_p + c, n), v(v_p + c, n);
          Eigen::Map<const Arr> g(g_p + c, n);
          if (l2) {
            m = sb1 * m + ob1 * (g + wd * theta);
            v = sb2 * v + ob2 * (g + wd * theta).square();
          } else {
            m = sb1 * m + ob1 * g;
            v = sb2 * v + ob2 * g.square();
          }
          if (decoupled) theta *= decay;
          theta -= step_size * m / (v.sqrt() * inv_sqrt_c2 + eps);
        }
      });
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
  /// \brief Restores state() output for the parameters in `list` (matched by name and shape).
  /// \throws InvalidArgument if an entry is missing, mis-shaped or the step count is invalid
  void set_state(const ParameterList<Scalar>& list,
                 const std::map<std::string, Matrix<double>>& s) {
    std::vector<std::string> names;
    std::vector<Matrix<Scalar>> mm, vv;
    for (const auto& p : list) {
      auto fm = s.find(p.name + ".exp_avg");
      auto fv = s.find(p.name + ".exp_avg_sq");
      if (fm == s.end() || fv == s.end())
        throw_invalid("Adam::set_state", "state", "moments for parameter " + p.name, "none");
      check_shape("Adam::set_state", p.name + ".exp_avg", fm->second, p.value.rows(),
                  p.value.cols());
      check_shape("Adam::set_state", p.name + ".exp_avg_sq", fv->second, p.value.rows(),
                  p.value.cols());
      names.push_back(p.name);
      mm.push_back(fm->second.template cast<Scalar>());
      vv.push_back(fv->second.template cast<Scalar>());
    }
    auto fs = s.find("step");
    if (fs == s.end() || fs->second.size() != 1)
      throw_invalid("Adam::set_state", "state", "a 1 x 1 \"step\" entry", "none");
    const double t = fs->second(0, 0);
    check_arg(t >= 0 && t == std::floor(t), "Adam::set_state", "step", "a non-negative integer", t);
    m_names = std::move(names);
    m_m = std::move(mm);
    m_v = std::move(vv);
    m_t = static_cast<Index>(t);
  }
  /// Forgets all moments and the step count.
  void reset() {
    m_names.clear();
    m_m.clear();
    m_v.clear();
    m_t = 0;
  }

 private:
  static constexpr Index kChunk = 1024;  // 4 arrays × 1024 floats stay in L1

  void ensure_state(const ParameterList<Scalar>& list) {
    if (m_names.empty() && m_t == 0) {
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
  /// \throws InvalidArgument naming the first field out of range
  void check() const {
    check_positive("SgdParams::check", "lr", lr);
    check_arg(momentum >= 0 && momentum < 1, "SgdParams::check", "momentum", "a value in [0, 1)",
              momentum);
    check_arg(weight_decay >= 0, "SgdParams::check", "weight_decay", "a value >= 0", weight_decay);
    check_arg(!nesterov || momentum > 0, "SgdParams::check", "nesterov",
              "momentum > 0 when nesterov is set", momentum);
  }
};

/// \brief SGD with (optionally Nesterov) momentum, as torch.optim.SGD with dampening 0.
///
/// With g' = g + wd · θ:  b ← μ b + g' (b = g' on the first step);
/// θ ← θ − lr · (g' + μ b if Nesterov, else b). With μ = 0 this is θ ← θ − lr · g'.
template <class Scalar_>
class Sgd {
 public:
  using Scalar = Scalar_;
  /// \throws InvalidArgument if `params.check()` fails
  explicit Sgd(SgdParams params = {}) : m_params(params) { m_params.check(); }
  const SgdParams& params() const { return m_params; }
  Index steps() const { return m_t; }

  /// \brief One update with learning rate `lr` (finite, >= 0).
  /// \throws InvalidArgument if the list differs from the first call's or lr is invalid
  void step(ParameterList<Scalar>& list, double lr) {
    detail::check_step_lr("Sgd::step", lr);
    if (m_t == 0 && m_buf.empty()) {
      for (const auto& p : list) {
        m_names.push_back(p.name);
        m_buf.push_back(Matrix<Scalar>::Zero(p.value.rows(), p.value.cols()));
      }
    }
    check_arg(m_buf.size() == list.size(), "Sgd::step", "params",
              detail::str_cat(m_buf.size(), " parameters (as on the first step)"), list.size());
    for (size_t i = 0; i < list.size(); ++i)
      check_arg(list[i].name == m_names[i] && list[i].size() == m_buf[i].size(), "Sgd::step",
                "params", "the same names and sizes as on the first step",
                detail::str_cat(list[i].name, " of size ", list[i].size()));
    ++m_t;
    const Scalar mu = static_cast<Scalar>(m_params.momentum);
    const Scalar wd = static_cast<Scalar>(m_params.weight_decay);
    for (size_t i = 0; i < list.size(); ++i) {
      auto& p = list[i];
      const Scalar lr_s = static_cast<Scalar>(lr * p.lr_scale);
      auto theta = p.value.array();
      const auto g = p.grad.array() + wd * theta;  // lazily evaluated; θ is read before written
      if (mu == Scalar(0)) {
        theta -= lr_s * g;
        continue;
      }
      auto b = m_buf[i].array();
      b = mu * b + g;
      if (m_params.nesterov)
        theta -= lr_s * (g + mu * b);
      else
        theta -= lr_s * b;
    }
  }

  /// Momentum buffers as named matrices ("<name>.momentum_buffer") and "step".
  std::map<std::string, Matrix<double>> state() const {
    std::map<std::string, Matrix<double>> out;
    for (size_t i = 0; i < m_names.size(); ++i)
      out[m_names[i] + ".momentum_buffer"] = m_buf[i].template cast<double>();
    out["step"] = Matrix<double>::Constant(1, 1, static_cast<double>(m_t));
    return out;
  }
  /// \brief Restores state() output for `list`. \throws InvalidArgument on a missing entry
  void set_state(const ParameterList<Scalar>& list,
                 const std::map<std::string, Matrix<double>>& s) {
    std::vector<std::string> names;
    std::vector<Matrix<Scalar>> bufs;
    for (const auto& p : list) {
      auto fb = s.find(p.name + ".momentum_buffer");
      if (fb == s.end())
        throw_invalid("Sgd::set_state", "state", "a momentum buffer for " + p.name, "none");
      check_shape("Sgd::set_state", p.name + ".momentum_buffer", fb->second, p.value.rows(),
                  p.value.cols());
      names.push_back(p.name);
      bufs.push_back(fb->second.template cast<Scalar>());
    }
    auto fs = s.find("step");
    if (fs == s.end() || fs->second.size() != 1)
      throw_invalid("Sgd::set_state", "state", "a 1 x 1 \"step\" entry", "none");
    const double t = fs->second(0, 0);
    check_arg(t >= 0 && t == std::floor(t), "Sgd::set_state", "step", "a non-negative integer", t);
    m_names = std::move(names);
    m_buf = std::move(bufs);
    m_t = static_cast<Index>(t);
  }
  /// Forgets the momentum buffers and the step count.
  void reset() {
    m_names.clear();
    m_buf.clear();
    m_t = 0;
  }

 private:
  SgdParams m_params;
  Index m_t = 0;
  std::vector<std::string> m_names;
  std::vector<Matrix<Scalar>> m_buf;
};

}  // namespace ergo::nn

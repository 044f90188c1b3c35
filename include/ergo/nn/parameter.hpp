// SPDX-License-Identifier: MIT
#pragma once

/// \file parameter.hpp
/// \brief Non-owning views of trainable tensors and their gradients, shared by every optimizer.
///
/// Optimizers in ergo never know about layers: a model hands them a ParameterList, a list of
/// (name, value, gradient) views over its own storage. The same optimizers therefore serve the
/// next-token MLP and the sparse autoencoders.
///
/// \code
/// ergo::Matrix<float> w(4, 3), gw(4, 3);
/// ergo::nn::ParameterList<float> list;
/// list.push_back(ergo::nn::make_parameter<float>("enc.weight", w, gw));
/// double norm = ergo::nn::clip_grad_norm(list, 1.0);   // global L2 norm before clipping
/// auto named = ergo::nn::export_parameters(list);       // {"enc.weight": 4 x 3 matrix}
/// \endcode

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/types.hpp"
#include "detail/common.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ergo::nn {

/// \brief A view of one trainable tensor (any shape, stored contiguously) and its gradient.
/// \tparam Scalar_ float or double
template <class Scalar_>
struct Parameter {
  using Scalar = Scalar_;
  std::string name;  ///< stable name, e.g. "fx.layers.0.weight" (used for export and state)
  Eigen::Map<Matrix<Scalar>> value;  ///< rows × cols view of the parameter
  Eigen::Map<Matrix<Scalar>> grad;   ///< gradient, same shape
  /// Multiplies the learning rate the optimizer is given for this parameter (> 0; default 1):
  /// a per-parameter learning rate, like a PyTorch parameter group's lr.
  double lr_scale = 1.0;

  /// \param n name \param v, g value and gradient storage (rows · cols contiguous scalars each)
  Parameter(std::string n, Scalar* v, Scalar* g, Index rows, Index cols)
      : name(std::move(n)), value(v, rows, cols), grad(g, rows, cols) {}
  /// Number of scalars.
  Index size() const { return value.size(); }
};

/// \brief An ordered list of parameter views; optimizers match their state to it by position.
template <class Scalar>
using ParameterList = std::vector<Parameter<Scalar>>;

/// \brief Makes a Parameter viewing `value` and `grad` (which must have the same shape and must
/// not be resized while the view is in use).
/// \throws InvalidArgument if the shapes differ
template <class Scalar, class DV, class DG>
Parameter<Scalar> make_parameter(std::string name, Eigen::PlainObjectBase<DV>& value,
                                 Eigen::PlainObjectBase<DG>& grad) {
  check_arg(value.rows() == grad.rows() && value.cols() == grad.cols(), "make_parameter",
            name + ".grad", detail::str_cat("shape ", value.rows(), " x ", value.cols()),
            detail::str_cat(grad.rows(), " x ", grad.cols()));
  return Parameter<Scalar>(std::move(name), value.data(), grad.data(), value.rows(), value.cols());
}

/// \brief Total number of scalars in a parameter list.
template <class Scalar>
Index parameter_count(const ParameterList<Scalar>& params) {
  Index n = 0;
  for (const auto& p : params) n += p.size();
  return n;
}

/// \brief Global L2 norm of all gradients, ‖(g_1, …, g_P)‖₂, accumulated in double (float
/// gradients: squares summed in float over blocks of 512 entries, the block sums in double).
/// A non-finite gradient entry makes the result non-finite (NaN or +inf).
template <class Scalar>
double global_grad_norm(const ParameterList<Scalar>& params) {
  double s = 0.0;
  std::vector<double> part(static_cast<size_t>(std::max(num_threads(), 1)));
  for (const auto& p : params) {
    // per-thread partial sums in double over contiguous ranges (reproducible per thread count)
    std::fill(part.begin(), part.end(), 0.0);
    const Scalar* g = p.grad.data();
    // float: blocks of 512 summed in float (vectorised), the block sums in double (converting
    // every entry to double cost 4× more); double: one vectorised sum
    detail::parallel_for(p.grad.size(), detail::grain_for(1), [&](Index b, Index e, int t) {
      using Array = Eigen::Array<Scalar, Eigen::Dynamic, 1>;
      double acc = 0.0;
      if constexpr (std::is_same_v<Scalar, double>) {
        acc = Eigen::Map<const Array>(g + b, e - b).square().sum();
      } else {
        constexpr Index kBlock = 512;
        for (Index i = b; i < e; i += kBlock)
          acc += static_cast<double>(
              Eigen::Map<const Array>(g + i, std::min(kBlock, e - i)).square().sum());
      }
      part[static_cast<size_t>(t)] = acc;
    });
    for (double v : part) s += v;
  }
  return std::sqrt(s);
}

/// \brief True if every gradient entry is finite.
template <class Scalar>
bool grads_finite(const ParameterList<Scalar>& params) {
  for (const auto& p : params)
    if (!p.grad.allFinite()) return false;
  return true;
}

/// \brief Global gradient-norm clipping: if ‖g‖ > max_norm, scales every gradient by
/// max_norm / ‖g‖ (so the clipped norm is exactly max_norm). Returns the norm before clipping.
/// max_norm <= 0 disables clipping; a non-finite norm is returned unchanged and nothing is scaled
/// (the caller should stop: see Status::NumericalIssue).
template <class Scalar>
double clip_grad_norm(ParameterList<Scalar>& params, double max_norm) {
  const double norm = global_grad_norm(params);
  if (max_norm > 0.0 && norm > max_norm && std::isfinite(norm)) {
    const Scalar scale = static_cast<Scalar>(max_norm / norm);
    for (auto& p : params) {
      Scalar* g = p.grad.data();
      detail::parallel_for(p.grad.size(), detail::grain_for(1), [&](Index b, Index e, int) {
        Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>(g + b, e - b) *= scale;
      });
    }
  }
  return norm;
}

/// \brief Sets every gradient to zero.
template <class Scalar>
void zero_grad(ParameterList<Scalar>& params) {
  for (auto& p : params) p.grad.setZero();
}

/// \brief Copies every parameter value into a name → matrix map (the export format that the `io`
/// module writes to safetensors). Shapes are those of the views (rows × cols).
template <class Scalar>
std::map<std::string, Matrix<Scalar>> export_parameters(const ParameterList<Scalar>& params) {
  std::map<std::string, Matrix<Scalar>> out;
  for (const auto& p : params) out[p.name] = p.value;
  return out;
}

/// \brief Copies values from a name → matrix map into the parameters (matched by name).
///
/// \param params  destination views
/// \param named   source matrices; every parameter must be present with its exact shape
/// \param strict  if true (default), a name in `named` that matches no parameter is an error too
/// \throws InvalidArgument naming the missing/unknown parameter or the shape mismatch; nothing is
///         modified unless every check passes
template <class Scalar, class Source>
void import_parameters(ParameterList<Scalar>& params, const std::map<std::string, Source>& named,
                       bool strict = true) {
  const char* who = "import_parameters";
  for (const auto& p : params) {
    auto it = named.find(p.name);
    if (it == named.end()) throw_invalid(who, "named", "an entry for parameter " + p.name, "none");
    check_shape(who, p.name, it->second, p.value.rows(), p.value.cols());
    check_finite(who, p.name, it->second);
  }
  if (strict) {
    for (const auto& kv : named) {
      bool known = false;
      for (const auto& p : params) known = known || p.name == kv.first;
      if (!known)
        throw_invalid(who, "named", "only names of this model's parameters",
                      "unknown entry " + kv.first);
    }
  }
  for (auto& p : params) p.value = named.find(p.name)->second.template cast<Scalar>();
}

}  // namespace ergo::nn

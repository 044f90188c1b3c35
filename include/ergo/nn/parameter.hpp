// SPDX-License-Identifier: MIT
#pragma once

/// \file parameter.hpp
/// \brief Non-owning views of trainable tensors and their gradients, shared by every optimizer.
///
/// Optimizers in ergo never know about layers: a model hands them a ParameterList, a list of
/// (name, value, gradient) views over its own storage. The same optimizers therefore serve the
/// next-token MLP and the sparse autoencoders.

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace ergo::nn {

/// \brief A view of one trainable tensor (any shape, stored contiguously) and its gradient.
template <class Scalar_>
struct Parameter {
  using Scalar = Scalar_;
  std::string name;  ///< stable name, e.g. "fx.layers.0.weight" (used for export and state)
  Eigen::Map<Matrix<Scalar>> value;  ///< rows × cols view of the parameter
  Eigen::Map<Matrix<Scalar>> grad;   ///< gradient, same shape

  Parameter(std::string n, Scalar* v, Scalar* g, Index rows, Index cols)
      : name(std::move(n)), value(v, rows, cols), grad(g, rows, cols) {}
  Index size() const { return value.size(); }
};

template <class Scalar>
using ParameterList = std::vector<Parameter<Scalar>>;

/// \brief Makes a Parameter viewing `value` and `grad` (which must have the same shape and must
/// not be resized while the view is in use).
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

/// \brief Global L2 norm of all gradients (accumulated in double).
template <class Scalar>
double global_grad_norm(const ParameterList<Scalar>& params) {
  double s = 0.0;
  for (const auto& p : params) s += p.grad.template cast<double>().squaredNorm();
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
/// max_norm / ‖g‖. Returns the norm before clipping. max_norm <= 0 disables clipping.
template <class Scalar>
double clip_grad_norm(ParameterList<Scalar>& params, double max_norm) {
  const double norm = global_grad_norm(params);
  if (max_norm > 0.0 && norm > max_norm && std::isfinite(norm)) {
    const Scalar scale = static_cast<Scalar>(max_norm / norm);
    for (auto& p : params) p.grad *= scale;
  }
  return norm;
}

/// \brief Sets every gradient to zero.
template <class Scalar>
void zero_grad(ParameterList<Scalar>& params) {
  for (auto& p : params) p.grad.setZero();
}

}  // namespace ergo::nn

// SPDX-License-Identifier: MIT
#pragma once

/// \file loss.hpp
/// \brief Softmax cross-entropy over the columns of a logit matrix, computed stably with
/// log-sum-exp, and its gradient fused into the same pass.
///
/// For logits l ∈ ℝ^{V×B} and targets y ∈ {0..V−1}^B the loss is the mean negative log-likelihood
///   L = (1/B) Σ_b [ log Σ_v exp l_{vb} − l_{y_b b} ]      (nats),
/// with gradient ∂L/∂l_{vb} = (softmax(l_b)_v − [v = y_b]) / B. Each column is processed while it
/// sits in L1: max, exp, sum, log, then the gradient overwrites the logits in place.
///
/// \code
/// ergo::Matrix<float> logits = ...;                    // V × B
/// ergo::IntRowVector y = ...;                          // 1 × B, values in [0, V)
/// double loss = ergo::nn::softmax_cross_entropy(logits, y);        // logits unchanged
/// double same = ergo::nn::softmax_cross_entropy_backward(logits, y); // logits ← dL/dlogits
/// \endcode

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "detail/parallel.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace ergo::nn {

/// \brief Targets grouped by logit column: column u carries the targets
/// `target[start[u]] … target[start[u+1] − 1]` (one per sample sharing that column).
///
/// Identical contexts in a batch have identical logits; a model can compute one column per
/// distinct context and attach all of its samples' targets to it (see NextTokenModel). The loss
/// and gradient are then exactly those of the expanded batch.
struct TargetGroups {
  std::vector<Index> start = {0};    ///< size U + 1, non-decreasing, start[0] = 0
  std::vector<std::int32_t> target;  ///< size start[U], each in [0, V)
  /// Number of columns U.
  Index columns() const { return static_cast<Index>(start.size()) - 1; }
  /// Number of targets (samples).
  Index total() const { return static_cast<Index>(target.size()); }
  /// One target per column (the ordinary, ungrouped case). Reuses capacity (no allocation once
  /// large enough).
  void assign_one_per_column(const std::int32_t* y, Index n) {
    start.resize(static_cast<size_t>(n) + 1);
    target.resize(static_cast<size_t>(n));
    for (Index i = 0; i <= n; ++i) start[static_cast<size_t>(i)] = i;
    for (Index i = 0; i < n; ++i) target[static_cast<size_t>(i)] = y[i];
  }
};

namespace detail {

/// One column of V logits: adds `bias` (if non-null), returns Σ_t (lse − l_t) over the nt
/// targets in double; if `grad`, overwrites the column with scale · (nt · softmax − Σ_t e_t).
/// Non-finite logits give a non-finite loss (the caller detects it).
template <class Scalar>
double softmax_ce_column(Scalar* l, Index V, const Scalar* bias, const std::int32_t* targets,
                         Index nt, Scalar scale, bool grad) {
  Eigen::Map<Vector<Scalar>> col(l, V);
  if (bias != nullptr) col += Eigen::Map<const Vector<Scalar>>(bias, V);
  const Scalar m = col.maxCoeff();
  double picked = 0.0;
  for (Index t = 0; t < nt; ++t) picked += static_cast<double>(l[targets[t]]);
  Scalar s;
  if (grad) {
    col = (col.array() - m).exp().matrix();
    s = col.sum();
  } else {
    s = (col.array() - m).exp().sum();
  }
  const double lse = static_cast<double>(m) + std::log(static_cast<double>(s));
  if (grad) {
    col *= scale * static_cast<Scalar>(nt) / s;
    for (Index t = 0; t < nt; ++t) l[targets[t]] -= scale;
  }
  return static_cast<double>(nt) * lse - picked;
}

/// Checks targets against V and the logits' shape; `who` names the public function.
template <class DL>
void check_ce_inputs(const char* who, const Eigen::MatrixBase<DL>& logits,
                     const Eigen::Ref<const IntRowVector>& y) {
  check_arg(logits.rows() >= 1, who, "logits", "at least one row (vocabulary size >= 1)",
            logits.rows());
  check_shape(who, "y", y, 1, logits.cols());
  for (Index b = 0; b < y.size(); ++b)
    if (y[b] < 0 || y[b] >= logits.rows())
      throw_invalid(who, detail::str_cat("y[", b, "]"),
                    detail::str_cat("a token in [0, ", logits.rows(), ")"), y[b]);
}

}  // namespace detail

/// \brief Grouped softmax cross-entropy (see TargetGroups), optionally with a per-row bias and the
/// gradient written in place. The work is split over columns across Eigen::nbThreads() threads.
///
/// \param logits_     V × U logits (unchanged if !grad; else overwritten with dL/dlogits)
/// \param groups      U groups of targets in [0, V) (not range-checked here: internal fast path)
/// \param denominator the loss is Σ (lse − l_t) / denominator (usually groups.total())
/// \param grad        write the gradient ∂L/∂logits into logits_
/// \param bias        V-vector added to every column first (pass nullptr for none)
/// \param thread_loss scratch of at least Eigen::nbThreads() doubles, or nullptr (then the work is
///                    single-threaded); lets a caller stay allocation-free
/// \return the loss L (double)
template <class DL>
double grouped_softmax_cross_entropy(const Eigen::MatrixBase<DL>& logits_,
                                     const TargetGroups& groups, Index denominator, bool grad,
                                     const typename DL::Scalar* bias = nullptr,
                                     double* thread_loss = nullptr) {
  using Scalar = typename DL::Scalar;
  auto& logits = const_cast<Eigen::MatrixBase<DL>&>(logits_);
  static_assert(static_cast<int>(DL::IsRowMajor) == 0,
                "grouped_softmax_cross_entropy: logits must be column-major");
  ERGO_CHECK(logits.cols() == groups.columns(), "logits and groups disagree on the column count");
  ERGO_CHECK(logits.innerStride() == 1, "logits columns must be contiguous");
  const Index V = logits.rows(), U = logits.cols();
  const Scalar scale = Scalar(1) / static_cast<Scalar>(denominator);
  double total = 0.0;
  auto work = [&](Index c0, Index c1, int t) {
    double acc = 0.0;
    for (Index u = c0; u < c1; ++u) {
      const Index s0 = groups.start[static_cast<size_t>(u)];
      const Index s1 = groups.start[static_cast<size_t>(u) + 1];
      acc += detail::softmax_ce_column(&logits.coeffRef(0, u), V, bias, groups.target.data() + s0,
                                       s1 - s0, scale, grad);
    }
    if (thread_loss != nullptr)
      thread_loss[t] = acc;
    else
      total = acc;
  };
  if (thread_loss != nullptr) {
    const Index grain = detail::grain_for(V, 4);  // columns
    const int nt = detail::loop_threads(U, grain);
    for (int t = 0; t < nt; ++t) thread_loss[t] = 0.0;
    detail::parallel_for(U, grain, work);
    for (int t = 0; t < nt; ++t) total += thread_loss[t];
  } else {
    work(0, U, 0);
  }
  return total / static_cast<double>(denominator);
}

/// \brief Mean softmax cross-entropy (nats) of targets y under column logits (unchanged).
/// \param logits V × B \param y 1 × B, entries in [0, V)
/// \throws InvalidArgument on a shape mismatch or a target out of range
template <class DL>
double softmax_cross_entropy(const Eigen::MatrixBase<DL>& logits,
                             const Eigen::Ref<const IntRowVector>& y) {
  using Scalar = typename DL::Scalar;
  detail::check_ce_inputs("softmax_cross_entropy", logits, y);
  if (y.size() == 0) return 0.0;
  Matrix<Scalar> work = logits;  // the column kernel works in place; keep the input intact
  double total = 0.0;
  for (Index b = 0; b < y.size(); ++b) {
    const std::int32_t t = y[b];
    total +=
        detail::softmax_ce_column(&work.coeffRef(0, b), work.rows(),
                                  static_cast<const Scalar*>(nullptr), &t, 1, Scalar(1), false);
  }
  return total / static_cast<double>(y.size());
}

/// \brief Per-sample cross-entropies −log softmax(logits_b)[y_b]. \return 1 × B (double)
template <class DL>
RowVector<double> softmax_cross_entropy_per_sample(const Eigen::MatrixBase<DL>& logits,
                                                   const Eigen::Ref<const IntRowVector>& y) {
  using Scalar = typename DL::Scalar;
  detail::check_ce_inputs("softmax_cross_entropy_per_sample", logits, y);
  Matrix<Scalar> work = logits;
  RowVector<double> out(y.size());
  for (Index b = 0; b < y.size(); ++b) {
    const std::int32_t t = y[b];
    out[b] =
        detail::softmax_ce_column(&work.coeffRef(0, b), work.rows(),
                                  static_cast<const Scalar*>(nullptr), &t, 1, Scalar(1), false);
  }
  return out;
}

/// \brief Mean softmax cross-entropy; overwrites the logits with ∂L/∂logits = (softmax − onehot)/B.
/// \param logits_ V × B (column-major, contiguous columns) \param y 1 × B in [0, V)
/// \return the mean loss (nats), as softmax_cross_entropy
/// \throws InvalidArgument on a shape mismatch or a target out of range
template <class DL>
double softmax_cross_entropy_backward(const Eigen::MatrixBase<DL>& logits_,
                                      const Eigen::Ref<const IntRowVector>& y) {
  using Scalar = typename DL::Scalar;
  static_assert(static_cast<int>(DL::IsRowMajor) == 0,
                "softmax_cross_entropy_backward: logits must be column-major");
  auto& logits = const_cast<Eigen::MatrixBase<DL>&>(logits_);
  detail::check_ce_inputs("softmax_cross_entropy_backward", logits, y);
  check_arg(logits.innerStride() == 1, "softmax_cross_entropy_backward", "logits",
            "contiguous columns (inner stride 1)", logits.innerStride());
  if (y.size() == 0) return 0.0;
  double total = 0.0;
  const Scalar scale = Scalar(1) / static_cast<Scalar>(y.size());
  for (Index b = 0; b < y.size(); ++b) {
    const std::int32_t t = y[b];
    total += detail::softmax_ce_column(&logits.coeffRef(0, b), logits.rows(),
                                       static_cast<const Scalar*>(nullptr), &t, 1, scale, true);
  }
  return total / static_cast<double>(y.size());
}

}  // namespace ergo::nn

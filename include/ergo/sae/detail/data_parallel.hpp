// SPDX-License-Identifier: MIT
#pragma once

/// \file data_parallel.hpp
/// \brief The reductions of a data-parallel SAE training step (private; used by sae::Trainer
/// when its Communicator has more than one rank; docs/scale.md).
///
/// Every rank computes the loss and gradients of its share of the global batch as the mean over
/// its own B_r samples; scaled by w_r = B_r / B and summed over ranks they are the means over
/// the global batch that one process would compute. One sum carries every gradient
/// (≈ 2·d·m + 2m + d scalars), one small sum in double carries the loss terms, the firing
/// counts (m), the L_p^p statistics of p-annealing and the batch variance (d + 1).

#include "../../core/communicator.hpp"
#include "../../core/error.hpp"
#include "../../core/types.hpp"
#include "../../nn/parameter.hpp"
#include "../loss.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace ergo::sae::detail {

/// \brief The share of every rank from one sum of the local batch sizes; throws the same
/// InvalidArgument on every rank if some rank holds no sample.
inline BatchShare make_share(const Communicator& comm, Index local) {
  const int R = comm.size(), r = comm.rank();
  std::vector<std::int64_t> sizes(static_cast<std::size_t>(R), 0);
  sizes[static_cast<std::size_t>(r)] = local;
  comm.allreduce_sum(sizes.data(), R);
  BatchShare s;
  s.comm = &comm;
  for (int q = 0; q < R; ++q) {
    const Index c = sizes[static_cast<std::size_t>(q)];
    check_arg(c > 0, "Trainer::step", "batch",
              ergo::detail::str_cat("at least one sample on every rank (rank ", q, " of ", R, ")"),
              "0 samples");
    if (q < r) s.offset += c;
    s.total += c;
  }
  return s;
}

/// \brief Sums w · (every gradient) over ranks into the gradients (one allreduce). `pack` is
/// reused scratch.
template <class Scalar>
void reduce_gradients(const Communicator& comm, nn::ParameterList<Scalar>& list, double w,
                      std::vector<Scalar>& pack) {
  Index n = 0;
  for (const auto& p : list) n += p.size();
  pack.resize(static_cast<std::size_t>(n));
  const Scalar ws = static_cast<Scalar>(w);
  Index off = 0;
  for (const auto& p : list) {
    Eigen::Map<Vector<Scalar>>(pack.data() + off, p.size()) =
        Eigen::Map<const Vector<Scalar>>(p.grad.data(), p.size()) * ws;
    off += p.size();
  }
  comm.allreduce_sum(pack.data(), n);
  off = 0;
  for (auto& p : list) {
    Eigen::Map<Vector<Scalar>>(p.grad.data(), p.size()) =
        Eigen::Map<const Vector<Scalar>>(pack.data() + off, p.size());
    off += p.size();
  }
}

/// \brief Sums the loss terms (weighted by w = B_r / total), the firing flags (into counts), two
/// L_p^p values (weighted by w) and the first two moments of the batch over ranks; returns the
/// global loss terms, sets `fired` to "fired on some rank" and `lp` to the global values.
template <class Scalar>
LossTerms reduce_statistics(const Communicator& comm, const Eigen::Ref<const Matrix<Scalar>>& x,
                            const LossTerms& t, Index total, std::vector<char>& fired, double lp[2],
                            std::vector<double>& buf) {
  const double w = static_cast<double>(x.cols()) / static_cast<double>(total);
  const Index d = x.rows(), m = static_cast<Index>(fired.size());
  constexpr Index kHead = 9;  // 6 loss terms, 2 L_p values, Σ‖x‖²
  buf.assign(static_cast<std::size_t>(kHead + d + m), 0.0);
  const double terms[6] = {t.total, t.reconstruction, t.sparsity, t.aux, t.nuclear, t.l0};
  for (int i = 0; i < 6; ++i) buf[static_cast<std::size_t>(i)] = w * terms[i];
  buf[6] = w * lp[0];
  buf[7] = w * lp[1];
  Eigen::Map<Vector<double>> sum(buf.data() + kHead, d);
  for (Index b = 0; b < x.cols(); ++b) {
    const Vector<double> xb = x.col(b).template cast<double>();
    buf[8] += xb.squaredNorm();
    sum += xb;
  }
  for (Index i = 0; i < m; ++i)
    buf[static_cast<std::size_t>(kHead + d + i)] = fired[static_cast<std::size_t>(i)] ? 1.0 : 0.0;
  comm.allreduce_sum(buf.data(), static_cast<Index>(buf.size()));
  LossTerms g;
  g.total = buf[0];
  g.reconstruction = buf[1];
  g.sparsity = buf[2];
  g.aux = buf[3];
  g.nuclear = buf[4];
  g.l0 = buf[5];
  lp[0] = buf[6];
  lp[1] = buf[7];
  // the global batch's variance about its mean: (Σ‖x‖² − ‖Σx‖²/B) / B
  const double B = static_cast<double>(total);
  g.batch_variance = std::max(0.0, (buf[8] - sum.squaredNorm() / B) / B);
  for (Index i = 0; i < m; ++i)
    fired[static_cast<std::size_t>(i)] = buf[static_cast<std::size_t>(kHead + d + i)] > 0.0;
  return g;
}

}  // namespace ergo::sae::detail

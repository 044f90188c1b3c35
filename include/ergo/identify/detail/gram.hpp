// SPDX-License-Identifier: MIT
#pragma once

/// \file gram.hpp
/// \brief Private: blocked, centred, multi-threaded accumulation of the sufficient statistics
/// of a pair (F, T): Σ u uᵀ (a rank update, SYRK), Σ u, Σ u vᵀ, Σ v, Σ v² with
/// u = f − shift_f and v = t − shift_t, in double, over a subset of samples.

#include "../../core/error.hpp"
#include "../../core/parallel.hpp"
#include "../../core/types.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <vector>

namespace ergo::identify::detail {

/// The input checks shared by the pair fits (ridge, CCA): F (d × N) and T (k × N) with the same
/// N >= 3, at least one row each, all entries finite.
template <class MF, class MT>
void check_pair_data(const char* who, const MF& f, const MT& t) {
  check_arg(f.cols() == t.cols(), who, "t", ergo::detail::str_cat(f.cols(), " columns (as f)"),
            t.cols());
  check_arg(f.cols() >= 3, who, "f", "at least 3 samples (columns)", f.cols());
  check_arg(f.rows() >= 1 && t.rows() >= 1, who, "f, t", "at least one row each",
            ergo::detail::str_cat(f.rows(), " and ", t.rows()));
  check_finite(who, "f", f);
  check_finite(who, "t", t);
}

/// Sums over a set of samples, relative to a fixed shift. g holds only its lower triangle until
/// symmetrize() is called.
struct PairStats {
  Index n = 0;
  Matrix<double> g;   // d × d: Σ u uᵀ (if with_gram)
  Vector<double> s;   // d: Σ u
  Matrix<double> c;   // d × k: Σ u vᵀ
  Vector<double> t;   // k: Σ v
  Vector<double> tt;  // k: Σ v² per output

  void reset(Index d, Index k, bool with_gram) {
    n = 0;
    if (with_gram)
      g.setZero(d, d);
    else
      g.resize(0, 0);
    s.setZero(d);
    c.setZero(d, k);
    t.setZero(k);
    tt.setZero(k);
  }
  void add(const PairStats& o) {
    n += o.n;
    if (g.size() > 0) g += o.g;
    s += o.s;
    c += o.c;
    t += o.t;
    tt += o.tt;
  }
  void symmetrize() {
    if (g.size() > 0) g.template triangularView<Eigen::StrictlyUpper>() = g.transpose();
  }
};

/// Per-thread buffers of accumulate_pair_stats, kept by callers that accumulate repeatedly (folds,
/// permutation refits) so that no fresh memory is touched per call (a fresh page costs ~15 µs on
/// the development VMs; docs/identify.md, "Performance").
struct PairWorkspace {
  std::vector<PairStats> part;
  std::vector<Matrix<double>> wf, wt;
};

/// Accumulates PairStats over samples idx[0..n_idx) (or 0..n_idx−1 when idx is null), pairing
/// F.col(i) with T.col(perm[i]) (or T.col(i) when perm is null). Work is split into blocks of
/// `block` samples that are copied (cast, centred) into per-thread workspaces; each thread keeps
/// its own sums (no nested parallelism: Eigen's GEMM runs single-threaded inside the region).
template <class DF, class DT>
void accumulate_pair_stats(const Eigen::MatrixBase<DF>& f, const Eigen::MatrixBase<DT>& tm,
                           const Index* idx, Index n_idx, const Index* perm,
                           const Vector<double>& shift_f, const Vector<double>& shift_t,
                           bool with_gram, Index block, PairStats& out,
                           PairWorkspace* workspace = nullptr) {
  const Index d = f.rows(), k = tm.rows();
  out.reset(d, k, with_gram);
  if (n_idx <= 0) return;
  block = std::max<Index>(1, std::min(block, n_idx));
  const Index n_chunks = (n_idx + block - 1) / block;
  int n_threads = 1;
#ifdef _OPENMP
  n_threads = static_cast<int>(std::min<Index>(omp_get_max_threads(), n_chunks));
#endif
  PairWorkspace local;
  PairWorkspace& ws = workspace ? *workspace : local;
  if (ws.part.size() < static_cast<size_t>(n_threads)) {
    ws.part.resize(static_cast<size_t>(n_threads));
    ws.wf.resize(static_cast<size_t>(n_threads));
    ws.wt.resize(static_cast<size_t>(n_threads));
  }
  for (int i = 0; i < n_threads; ++i) {
    // resize() keeps the allocation when the size is unchanged.
    ws.wf[static_cast<size_t>(i)].resize(d, block);
    ws.wt[static_cast<size_t>(i)].resize(k, block);
  }
  ERGO_OMP(omp parallel num_threads(n_threads)) {
    const int tid = ergo::detail::thread_index();
    PairStats& acc = ws.part[static_cast<size_t>(tid)];
    acc.reset(d, k, with_gram);
    Matrix<double>& wf = ws.wf[static_cast<size_t>(tid)];
    Matrix<double>& wt = ws.wt[static_cast<size_t>(tid)];
    ERGO_OMP(omp for schedule(static))
    for (Index ch = 0; ch < n_chunks; ++ch) {
      const Index start = ch * block;
      const Index nb = std::min(block, n_idx - start);
      for (Index q = 0; q < nb; ++q) {
        const Index i = idx ? idx[start + q] : start + q;
        const Index j = perm ? perm[i] : i;
        wf.col(q) = f.col(i).template cast<double>() - shift_f;
        wt.col(q) = tm.col(j).template cast<double>() - shift_t;
      }
      const auto u = wf.leftCols(nb);
      const auto v = wt.leftCols(nb);
      if (with_gram) acc.g.template selfadjointView<Eigen::Lower>().rankUpdate(u);
      acc.s += u.rowwise().sum();
      acc.c.noalias() += u * v.transpose();
      acc.t += v.rowwise().sum();
      acc.tt += v.rowwise().squaredNorm();
      acc.n += nb;
    }
  }
  for (int i = 0; i < n_threads; ++i) out.add(ws.part[static_cast<size_t>(i)]);
}

/// Row means of a d × N matrix in double.
template <class D>
Vector<double> row_means(const Eigen::MatrixBase<D>& m) {
  Vector<double> mu = Vector<double>::Zero(m.rows());
  if (m.cols() == 0) return mu;
  for (Index j = 0; j < m.cols(); ++j) mu += m.col(j).template cast<double>();
  return mu / static_cast<double>(m.cols());
}

/// Σ (u − m)(u − m)ᵀ from Σ u uᵀ (full symmetric), Σ u and n: g − s sᵀ / n.
inline Matrix<double> centred_gram(const Matrix<double>& g, const Vector<double>& s, Index n) {
  Matrix<double> out = g;
  if (n > 0) out.noalias() -= (s / static_cast<double>(n)) * s.transpose();
  return out;
}

}  // namespace ergo::identify::detail

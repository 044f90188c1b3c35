// SPDX-License-Identifier: MIT
#pragma once

/// \file sparse_step.hpp
/// \brief The sparse training step and its kernels (private): codes kept as per-sample lists of
/// active latents (SparseCodes), sparse decode, AuxK on dead latents, and the chunked per-latent
/// backward pass. TopK and BatchTopK use them with their own selection; the elementwise
/// architectures (elementwise_step.hpp) use the decode and backward kernels when a batch is
/// sparse enough.
///
/// Cost: one dense GEMM for the encoder, then O(B·k·d) for the decode, ∂L/∂z at the active
/// entries, the decoder gradient and the encoder gradient (per latent, without write
/// conflicts): ≈ 2·B·d·m + 8·B·k·d FLOP per step.

#include "../../core/parallel.hpp"
#include "../../core/types.hpp"
#include "../loss.hpp"
#include "../weights.hpp"
#include "../workspace.hpp"
#include "decoder.hpp"
#include "sparse_codes.hpp"

#include <algorithm>
#include <cstdint>

namespace ergo::sae::detail {

/// \brief Sparse decode of the codes ws.codes: ws.xhat_b = b_dec + Σ_e v_e d_{i_e} (d × B), with
/// the zero entries skipped; then `after(b, thread)` runs on each column while x̂_b is in cache.
/// With `onto`, the decode adds to what ws.xhat holds (another part of the reconstruction), and
/// `*onto` (d) takes b_dec's place: ws.xhat_b += *onto + Σ_e v_e d_{i_e}.
template <class Scalar, class After>
void sparse_decode(const Weights<Scalar>& wt, Workspace<Scalar>& ws, After&& after,
                   const Vector<Scalar>* onto = nullptr) {
  const auto& c = ws.codes;
  const Index B = c.batch(), d = wt.decoder.rows();
  const Index per_sample = B > 0 ? std::max<Index>(1, c.nnz() * d / B) : 1;
  ergo::detail::parallel_for(
      B, ergo::detail::grain_for(per_sample), [&](Index b0, Index b1, int th) {
        for (Index b = b0; b < b1; ++b) {
          auto xc = ws.xhat.col(b);
          if (onto)
            xc += *onto;
          else
            xc = wt.decoder_bias;
          // the non-zero entries four at a time: one pass over x̂_b per four decoder columns
          std::int32_t nz[4];
          Scalar nv[4];
          int q = 0;
          for (Index e = c.start[static_cast<size_t>(b)]; e < c.start[static_cast<size_t>(b + 1)];
               ++e) {
            const Scalar v = c.value[static_cast<size_t>(e)];
            if (v == Scalar(0)) continue;
            nz[q] = c.index[static_cast<size_t>(e)];
            nv[q] = v;
            if (++q == 4) {
              xc.noalias() += nv[0] * wt.decoder.col(nz[0]) + nv[1] * wt.decoder.col(nz[1]) +
                              nv[2] * wt.decoder.col(nz[2]) + nv[3] * wt.decoder.col(nz[3]);
              q = 0;
            }
          }
          for (int j = 0; j < q; ++j) xc.noalias() += nv[j] * wt.decoder.col(nz[j]);
          after(b, th);
        }
      });
}

/// \brief sparse_decode (with `onto` as there) followed by finish_reconstruction, fused column
/// by column; `after(b, thread)` then runs on each column while ∂L/∂x̂_b is in cache.
template <class Scalar, class After>
double sparse_decode_reconstruction(const Weights<Scalar>& wt,
                                    const Eigen::Ref<const Matrix<Scalar>>& x,
                                    Workspace<Scalar>& ws, LossTerms& t, After&& after,
                                    const Vector<Scalar>* onto = nullptr) {
  ReconstructionSums<Scalar, Eigen::Ref<const Matrix<Scalar>>> sums(x, ws);
  sparse_decode(
      wt, ws,
      [&](Index b, int th) {
        sums.column(b, th);
        after(b, th);
      },
      onto);
  return sums.finish(t);
}

/// \brief Data-parallel AuxK normaliser: Σ_b ‖e_b − ē‖² over the global batch (ē its global
/// mean; two sums over ranks), times B_r / B so that the trainer's weighting of this rank's
/// mean-form terms by B_r / B restores the global normaliser. e: this rank's d × B_r residuals.
template <class Scalar>
double aux_denominator(const Matrix<Scalar>& e, const BatchShare& share) {
  Vector<double> sum = Vector<double>::Zero(e.rows());
  for (Index b = 0; b < e.cols(); ++b) sum += e.col(b).template cast<double>();
  share.comm->allreduce_sum(sum.data(), sum.size());
  const Vector<double> mean = sum / static_cast<double>(share.total);
  double sq = 0.0;
  for (Index b = 0; b < e.cols(); ++b)
    sq += (e.col(b).template cast<double>() - mean).squaredNorm();
  share.comm->allreduce_sum(&sq, 1);
  return sq * static_cast<double>(e.cols()) / static_cast<double>(share.total);
}

/// \brief AuxK: decodes the residual e = x − x̂ (held constant) from the ReLU of the top-k_aux
/// pre-activations among the dead latents, without b_dec, and returns α L_aux with
/// L_aux = Σ_b ‖ê_b − e_b‖² / Σ_b ‖e_b − ē‖². Fills ws.sparse.aux (codes and ∂L/∂h of the
/// entries) and ws.sparse.aux_dhat (∂(α L_aux)/∂ê, d × B). x: d × B. The pre-activations are
/// ws.h, plus b_enc unless `h_has_bias`.
template <class Scalar>
double aux_forward(const Weights<Scalar>& wt, const Eigen::Ref<const Matrix<Scalar>>& x,
                   const LossWeights& w, Workspace<Scalar>& ws, Index B, bool h_has_bias) {
  const Index m = wt.encoder.rows(), d = wt.encoder.cols();
  auto& sp = ws.sparse;
  [[maybe_unused]] const int nt = Eigen::nbThreads();
  (void)nt;
  (void)d;
  sp.aux_active = false;
  sp.dead_list.clear();
  for (Index i = 0; i < m; ++i)
    if ((*w.dead)[static_cast<size_t>(i)]) sp.dead_list.push_back(static_cast<std::int32_t>(i));
  const Index nd = static_cast<Index>(sp.dead_list.size());
  if (nd == 0 || w.aux_k <= 0) return 0.0;
  const Index kk = std::min(w.aux_k, nd);
  sp.aux_target.resize(d, B);
  sp.aux_dhat.resize(d, B);
  sp.aux.reserve(B, m, kk * B);
  sp.aux_target = x - ws.xhat;  // e = x − x̂ (a constant: no gradient flows into it)
  double denom = 0.0;
  if (w.share.distributed()) {
    denom = aux_denominator(sp.aux_target, w.share);
  } else {
    const Vector<Scalar> emean = sp.aux_target.rowwise().mean();
    denom = static_cast<double>((sp.aux_target.colwise() - emean).squaredNorm());
  }
  if (!(denom > 0.0)) return 0.0;
  ws.scratch.assign(static_cast<size_t>(nt * nd), Scalar(0));
  const Scalar coef = static_cast<Scalar>(2.0 * w.aux / denom);
  for (Index b = 0; b <= B; ++b) sp.aux.start[static_cast<size_t>(b)] = b * kk;
  double sq = 0.0;
  ERGO_OMP(omp parallel for schedule(static) num_threads(nt) reduction(+ : sq) if (ergo::detail::worth_splitting(nd * B)))
  for (Index b = 0; b < B; ++b) {
    Scalar* tmp = ws.scratch.data() +
                  static_cast<size_t>(ergo::detail::thread_index()) * static_cast<size_t>(nd);
    for (Index j = 0; j < nd; ++j) {
      const Index i = sp.dead_list[static_cast<size_t>(j)];
      tmp[j] = h_has_bias ? ws.h(i, b) : ws.h(i, b) + wt.encoder_bias(i);
    }
    std::int32_t* idx = sp.aux.index.data() + b * kk;
    Scalar* val = sp.aux.value.data() + b * kk;
    detail::top_k_column(tmp, nd, kk, idx, val);
    auto eh = sp.aux_dhat.col(b);
    eh.setZero();
    for (Index j = 0; j < kk; ++j) {
      idx[j] = sp.dead_list[static_cast<size_t>(idx[j])];
      val[j] = std::max(val[j], Scalar(0));
      if (val[j] > Scalar(0)) eh.noalias() += val[j] * wt.decoder.col(idx[j]);
    }
    eh -= sp.aux_target.col(b);  // ê − e
    sq += static_cast<double>(eh.squaredNorm());
    eh *= coef;  // ∂(α L_aux)/∂ê
  }
  ERGO_OMP(omp parallel for schedule(static) num_threads(nt) if (ergo::detail::worth_splitting(kk * B * d)))
  for (Index b = 0; b < B; ++b)
    for (Index e = b * kk; e < (b + 1) * kk; ++e) {
      const size_t es = static_cast<size_t>(e);
      sp.aux.grad[es] = sp.aux.value[es] > Scalar(0)
                            ? wt.decoder.col(sp.aux.index[es]).dot(sp.aux_dhat.col(b))
                            : Scalar(0);
    }
  sp.aux_active = true;
  return w.aux * sq / denom;
}

/// Rows of ∇W_dec / ∇W_enc handled per pass of the sparse backward (two cache lines per column).
constexpr int kBackwardChunk = 32;

/// \brief Latent i's share of the sparse backward over one chunk of len rows (Len: len at compile
/// time, or Eigen::Dynamic for the last, shorter chunk): writes ∇W_dec's chunk in place (gdec) and
/// returns ∇W_enc's chunk in `ge` and ∇b_enc(i) in `gb`. The chunk's rows of u, ∂x̂ and AuxK's ∂ê
/// are read from ws.sparse.u_rows, dxhat_rows and aux_rows (len × B).
template <int Len, class Scalar, class Out>
void latent_chunk(Index i, Index len, const Workspace<Scalar>& ws, bool with_aux, Scalar* gdec,
                  Out& ge, Scalar& gb) {
  using CChunk = Eigen::Map<const Eigen::Array<Scalar, Len, 1>>;
  using Acc = Eigen::Array<Scalar, Len, 1, 0, (Len == Eigen::Dynamic ? kBackwardChunk : Len), 1>;
  Acc gd = Acc::Zero(len);
  ge.setZero(len);
  gb = 0;
  const Scalar* u = ws.sparse.u_rows.data();
  auto run = [&](const detail::SparseCodes<Scalar>& c, const Scalar* src) {
    for (Index q = c.lat_start[static_cast<size_t>(i)]; q < c.lat_start[static_cast<size_t>(i + 1)];
         ++q) {
      const size_t e = static_cast<size_t>(q);
      const Index at = c.lat_sample[e] * len;
      gd += c.lat_value[e] * CChunk(src + at, len);
      ge += c.lat_grad[e] * CChunk(u + at, len);
      gb += c.lat_grad[e];
    }
  };
  run(ws.codes, ws.sparse.dxhat_rows.data());
  if (with_aux) run(ws.sparse.aux, ws.sparse.aux_rows.data());
  Eigen::Map<Eigen::Array<Scalar, Len, 1>>(gdec, len) = gd;
}

/// \brief Sparse backward (and AuxK's): per-latent accumulation of the decoder gradient, the
/// encoder gradient and the encoder-bias gradient, O(B·k·d).
///
/// The d rows are processed in chunks of 32 (two cache lines per column). Each chunk's rows of U
/// and ∂x̂ are first copied into contiguous len × B buffers (2 · 32 · B values, 512 KiB at
/// B = 4096 in float), which then stay in L2 while every active entry is visited: read in place,
/// with columns 2 KiB apart (d = 512), they fell into 1/16 of L2's sets and came from L3 (the copy
/// halved the backward's time). Latents are taken 64 at a time; their chunks of ∇W_enc (rows of
/// a 64 × 32 block) are gathered in a tile that stays in L1 and written out as 32 runs of 64
/// consecutive values, so ∇W_enc is written once, in whole cache lines, with no m × d buffer and
/// no transpose.
template <class Scalar>
void sparse_backward(const Weights<Scalar>& wt, Workspace<Scalar>& ws, Weights<Scalar>& grad,
                     bool with_aux) {
  const Index m = wt.encoder.rows(), d = wt.encoder.cols(), B = ws.u.cols();
  [[maybe_unused]] const int nt = Eigen::nbThreads();
  ws.codes.build_latent_view(m);
  if (with_aux) ws.sparse.aux.build_latent_view(m);
  [[maybe_unused]] const Index work = ws.codes.nnz() * d;
  constexpr Index kChunk = kBackwardChunk, kLatents = 64;
  const Index blocks = (m + kLatents - 1) / kLatents;
  auto& sp = ws.sparse;
  sp.u_rows.resize(kChunk, B);  // allocated once; a chunk of len rows uses the first len · B
  sp.dxhat_rows.resize(kChunk, B);
  if (with_aux) sp.aux_rows.resize(kChunk, B);
  for (Index c0 = 0; c0 < d; c0 += kChunk) {
    const Index len = std::min(kChunk, d - c0);
    const bool first = c0 == 0;
    ergo::detail::parallel_for(B, ergo::detail::grain_for(len), [&](Index b0, Index b1, int) {
      auto copy = [&](Matrix<Scalar>& to, const Matrix<Scalar>& from) {
        Eigen::Map<Matrix<Scalar>>(to.data(), len, B).middleCols(b0, b1 - b0) =
            from.block(c0, b0, len, b1 - b0);
      };
      copy(sp.u_rows, ws.u);
      copy(sp.dxhat_rows, ws.dxhat);
      if (with_aux) copy(sp.aux_rows, sp.aux_dhat);
    });
    ERGO_OMP(omp parallel for schedule(dynamic, 1) num_threads(nt) if (ergo::detail::worth_splitting(work)))
    for (Index blk = 0; blk < blocks; ++blk) {
      const Index i0 = blk * kLatents, n = std::min(kLatents, m - i0);
      Eigen::Array<Scalar, kLatents, Eigen::Dynamic, 0, kLatents, kChunk> tile(kLatents, len);
      for (Index i = i0; i < i0 + n; ++i) {
        Scalar* gdec = grad.decoder.data() + i * d + c0;
        Scalar gb;
        if (len == kChunk) {
          Eigen::Array<Scalar, kChunk, 1> ge;
          latent_chunk<kChunk>(i, len, ws, with_aux, gdec, ge, gb);
          tile.row(i - i0) = ge.transpose();
        } else {
          Eigen::Array<Scalar, Eigen::Dynamic, 1, 0, kChunk, 1> ge;
          latent_chunk<Eigen::Dynamic>(i, len, ws, with_aux, gdec, ge, gb);
          tile.row(i - i0) = ge.transpose();
        }
        if (first) grad.encoder_bias(i) = gb;
      }
      grad.encoder.block(i0, c0, n, len) = tile.topRows(n);
    }
  }
}

/// \brief The sparse training step: one dense encoder GEMM, `select` builds the sparse codes
/// ws.codes (adding b_enc itself), then O(B·k·d) kernels decode, add AuxK when lw asks for it,
/// and compute every gradient. Writes ∇W_enc, ∇b_enc, ∇W_dec, ∇b_dec into `grad` and ws.fired.
/// \param select callable (Workspace&, Index B) -> bool: fills ws.codes from the pre-activations
/// ws.h (m × B) + b_enc; returns whether it added b_enc into ws.h (AuxK reads them afterwards)
template <class Scalar, class Select>
LossTerms step_sparse(const Weights<Scalar>& wt, bool pre_bias,
                      const Eigen::Ref<const Matrix<Scalar>>& x, const LossWeights& w,
                      Workspace<Scalar>& ws, Weights<Scalar>& grad, Select&& select) {
  const Index B = x.cols();
  LossTerms t;
  centre_input(wt, pre_bias, x, ws.u);
  gemm<false, false>(ws, ws.h, wt.encoder, ws.u);
  auto& c = ws.codes;
  const bool h_has_bias = select(ws, B);  // b_enc: fused with the selection's own pass
  const Index nnz = c.nnz();
  std::fill(ws.fired.begin(), ws.fired.end(), char(0));
  Index l0 = 0;
  for (Index e = 0; e < nnz; ++e)
    if (c.value[static_cast<size_t>(e)] > Scalar(0)) {
      ++l0;
      ws.fired[static_cast<size_t>(c.index[static_cast<size_t>(e)])] = 1;
    }
  t.l0 = static_cast<double>(l0) / static_cast<double>(B);

  // with each column's ∂L/∂x̂_b: ∂L/∂h at its active entries (∂L/∂z masked by the ReLU on the
  // selected value), while the decoder columns just read are in cache
  sparse_decode_reconstruction(wt, x, ws, t, [&](Index b, int) {
    for (Index e = c.start[static_cast<size_t>(b)]; e < c.start[static_cast<size_t>(b + 1)]; ++e) {
      const size_t es = static_cast<size_t>(e);
      c.grad[es] =
          c.value[es] > Scalar(0) ? wt.decoder.col(c.index[es]).dot(ws.dxhat.col(b)) : Scalar(0);
    }
  });
  const bool with_aux = w.aux > 0.0 && w.dead != nullptr && w.aux_k > 0;
  ws.sparse.aux_active = false;
  t.aux = with_aux ? aux_forward(wt, x, w, ws, B, h_has_bias) : 0.0;
  const bool aux_active = ws.sparse.aux_active;
  sparse_backward(wt, ws, grad, aux_active);
  grad.decoder_bias = ws.dxhat.rowwise().sum();
  if (pre_bias) grad.decoder_bias.noalias() -= wt.encoder.transpose() * grad.encoder_bias;
  t.total = t.reconstruction + t.aux;
  return t;
}

}  // namespace ergo::sae::detail

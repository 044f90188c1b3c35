// SPDX-License-Identifier: MIT
#pragma once

/// \file batch_topk.hpp
/// \brief The BatchTopK SAE (Bussmann et al. 2024): in training, the k·B largest positive
/// pre-activations of the batch; at inference z = h·1[h > θ] with a global threshold θ estimated
/// during training (an EMA of the smallest selected activation). Loss L_rec (+ α L_aux).

#include "../../core/error.hpp"
#include "../../core/parallel.hpp"
#include "../detail/decoder.hpp"
#include "../detail/sparse_step.hpp"
#include "../loss.hpp"
#include "../trainer_params.hpp"
#include "../weights.hpp"
#include "../workspace.hpp"
#include "base.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ergo::sae::arch {

/// \brief BatchTopK (registry name "batchtopk", exported as SAELens "jumprelu" with its
/// threshold): L0 = k on average but adaptive per sample.
struct BatchTopK : Base {
  /// \brief Hyper-parameters of BatchTopK (SparseAutoencoderParams::batchtopk).
  struct Params {
    Index k =
        32;  ///< active latents per sample on average (k·B per batch), in [1, d_sae]. Default 32.

    template <class Self, class F>
    static void for_each(Self& self, F&& f) {
      f("k", self.k);
    }
    void check(const std::string& who, const std::string& prefix, Index /*d_in*/,
               Index d_sae) const {
      check_arg(k >= 1 && k <= d_sae, who, prefix + "k",
                ergo::detail::str_cat("a value in [1, d_sae = ", d_sae, "]"), k);
    }
  };

  static constexpr Traits traits = [] {
    Traits t;
    t.has_k = true;
    t.has_threshold = true;
    t.sparse_kernels = true;
    t.sparse_activation = true;
    t.aux_k = true;
    return t;
  }();

  /// \brief Selection scratch of a training step (kept in the Workspace).
  template <class Scalar>
  struct Buffers {
    std::vector<Index> col_gt, col_eq;                ///< per-column counts and offsets
    std::vector<Scalar> sample, cand_val;             ///< threshold sample, candidate values
    std::vector<Index> cand_pos;                      ///< candidate positions (b·m + i)
    std::vector<std::pair<Scalar, Index>> cand_work;  ///< nth_element scratch
  };

  /// "threshold" (m × 1): the global inference threshold θ (every entry equal), 0 until
  /// training has estimated it; set by after_step, not by the optimiser.
  template <class P>
  static std::vector<TensorSpec> tensors(const P&, Index /*d_in*/, Index d_sae) {
    TensorSpec t;
    t.name = "threshold";
    t.rows = d_sae;
    t.init = 0.0;
    t.trainable = false;
    return {t};
  }

  /// z = h·1[h > θ] for a chunk x (d × n) into out (m × n).
  template <class S>
  static void encode(const SparseAutoencoder<S>& sae, const Params&, const InputRef<S>& x,
                     OutputRef<S> out, EncodeBuffers<S>& buf) {
    const Weights<S>& w = sae.weights();
    detail::pre_activations(w, sae.params().apply_b_dec_to_input, x, buf.u, buf.h);
    const Matrix<S>& thr = w.extras[0].value;
    for (Index b = 0; b < x.cols(); ++b)
      for (Index i = 0; i < sae.d_sae(); ++i) out(i, b) = buf.h(i, b) > thr(i) ? buf.h(i, b) : S(0);
  }

  template <class S>
  static void prepare(const SparseAutoencoder<S>& sae, const Params& ap, Workspace<S>& ws,
                      Index B) {
    ws.codes.reserve(B, sae.d_sae(), ap.k * B);
  }

  /// The sparse step with the batch-wide selection.
  template <class S>
  static LossTerms forward_backward(const SparseAutoencoder<S>& sae, const Params& ap,
                                    const InputRef<S>& x, const LossWeights& lw, Workspace<S>& ws,
                                    Weights<S>& grad) {
    const Weights<S>& w = sae.weights();
    auto select = [&](Workspace<S>& wsp, Index B) {
      select_batch(w, ap.k, wsp, B, lw.share);
      return true;  // b_enc was added to ws.h
    };
    return detail::step_sparse(w, sae.params().apply_b_dec_to_input, x, lw, ws, grad, select);
  }

  /// θ ← (1 − a) θ + a · (smallest selected activation of the batch), a = threshold_ema, from
  /// step tp.threshold_start_step() on (θ starts at that batch's value).
  template <class S>
  static void after_step(SparseAutoencoder<S>& sae, const Params&, const Workspace<S>& ws,
                         const TrainerParams& tp) {
    if (!(ws.min_positive > 0.0) || ws.step < tp.threshold_start_step()) return;
    const double th = sae.batch_threshold();
    sae.set_batch_threshold(th <= 0.0 ? ws.min_positive
                                      : (1.0 - tp.threshold_ema) * th +
                                            tp.threshold_ema * ws.min_positive);
  }

  template <class S>
  static void config(const SparseAutoencoder<S>& sae, const Params& ap, Config& c) {
    c.k = ap.k;
    c.threshold = sae.batch_threshold();
  }

  /// \brief Adds b_enc to the pre-activations in ws.h (m × B) and keeps the k·B largest positive
  /// entries of the batch (ties broken by position: column, then latent) as ws.codes.
  ///
  /// A threshold t0 is estimated from a strided sample (oversampled so that at least k·B entries
  /// reach it, with a fallback if not); one pass adds the bias and counts the entries >= t0 per
  /// column, a second collects them (typically ~1.5 k·B candidates) and nth_element finds the
  /// exact k·B-th best. Sets ws.min_positive to the smallest selected value.
  ///
  /// Data-parallel (`share` distributed, ws.h this rank's B_r columns of a global batch of B):
  /// the k·B largest entries of the global batch, with the same ties as one process (global
  /// position = global column, then latent). The threshold estimate and the candidate counts are
  /// reduced, and the exact k·B-th value is found by bisection on the candidates' bit patterns
  /// (global_pivot; one small sum per halving). ws.min_positive is the global minimum.
  template <class Scalar>
  static void select_batch(const Weights<Scalar>& w, Index k, Workspace<Scalar>& ws, Index B,
                           const BatchShare& share = {}) {
    const Index m = w.encoder.rows();
    const bool dp = share.distributed();
    const Index n = m * B, kk = k * B, kk_sel = dp ? k * share.total : kk;
    auto& bb = ws.template buffers<Buffers<Scalar>>();
    [[maybe_unused]] const int nt = Eigen::nbThreads();
    Scalar* H = ws.h.data();
    const Scalar* benc = w.encoder_bias.data();
    // 1. threshold estimate from a strided sample (stride coprime to m: every latent is sampled)
    constexpr Index kSample = 32768;
    Index stride = std::max<Index>(1, n / kSample);
    while (stride > 1 && std::gcd(stride, m) != 1) ++stride;
    bb.sample.clear();
    Index ns = 0;
    for (Index j = 0; j < n; j += stride, ++ns) {
      const Scalar v = H[j] + benc[j % m];
      if (v > Scalar(0)) bb.sample.push_back(v);
    }
    const double r = static_cast<double>(kk) * static_cast<double>(ns) / static_cast<double>(n);
    std::vector<Index> ranks;  // candidate sample ranks (largest first), increasingly conservative
    for (double f : {1.5, 4.0})
      ranks.push_back(static_cast<Index>(std::ceil(f * r + 3.0 * std::sqrt(r) + 8.0)));
    const Scalar tiny = std::numeric_limits<Scalar>::denorm_min();  // "> 0" as ">= tiny"
    auto threshold_at = [&](Index rank) {
      if (rank >= static_cast<Index>(bb.sample.size())) return tiny;
      std::nth_element(bb.sample.begin(), bb.sample.begin() + rank, bb.sample.end(),
                       std::greater<Scalar>());
      return std::max(bb.sample[static_cast<size_t>(rank)], tiny);
    };
    bb.col_gt.assign(static_cast<size_t>(B), 0);
    Scalar tries[3] = {threshold_at(ranks[0]), threshold_at(ranks[1]), tiny};
    if (dp) {  // one threshold for every rank: the smallest estimate
      double t2[2] = {static_cast<double>(tries[0]), static_cast<double>(tries[1])};
      share.comm->allreduce_min(t2, 2);
      tries[0] = static_cast<Scalar>(t2[0]);
      tries[1] = static_cast<Scalar>(t2[1]);
    }
    Scalar lo = tiny;
    for (int attempt = 0; attempt < 3; ++attempt) {
      // 2. (first time: add the bias) and count the entries >= lo per column
      lo = tries[attempt];
      const bool add = attempt == 0;
      ERGO_OMP(omp parallel for schedule(static) num_threads(nt) if (ergo::detail::worth_splitting(n)))
      for (Index b = 0; b < B; ++b) {
        Scalar* hc = H + b * m;
        Index c = 0;
        if (add) {
          for (Index i = 0; i < m; ++i) {
            hc[i] += benc[i];
            c += hc[i] >= lo ? 1 : 0;
          }
        } else {
          for (Index i = 0; i < m; ++i) c += hc[i] >= lo ? 1 : 0;
        }
        bb.col_gt[static_cast<size_t>(b)] = c;
      }
      std::int64_t total = 0;
      for (Index b = 0; b < B; ++b) total += bb.col_gt[static_cast<size_t>(b)];
      if (dp) share.comm->allreduce_sum(&total, 1);
      if (total >= kk_sel || lo == tiny) break;  // else the estimate was too high: lower it
    }
    // 3. collect the candidates in position order
    Index total = 0;
    bb.col_eq.resize(static_cast<size_t>(B + 1));
    for (Index b = 0; b < B; ++b) {
      bb.col_eq[static_cast<size_t>(b)] = total;
      total += bb.col_gt[static_cast<size_t>(b)];
    }
    bb.col_eq[static_cast<size_t>(B)] = total;
    bb.cand_val.resize(static_cast<size_t>(total));
    bb.cand_pos.resize(static_cast<size_t>(total));
    ERGO_OMP(omp parallel for schedule(static) num_threads(nt) if (ergo::detail::worth_splitting(n)))
    for (Index b = 0; b < B; ++b) {
      const Scalar* hc = H + b * m;
      Index e = bb.col_eq[static_cast<size_t>(b)];
      for (Index i = 0; i < m; ++i)
        if (hc[i] >= lo) {
          bb.cand_val[static_cast<size_t>(e)] = hc[i];
          bb.cand_pos[static_cast<size_t>(e)] = b * m + i;
          ++e;
        }
    }
    // 4. the exact kk-th best candidate (value descending, position ascending) as a pivot
    Scalar pv = lo;
    Index ppos = n;
    if (dp) {
      global_pivot(bb, total, kk_sel, share, pv, ppos, n);
      ws.codes.reserve(B, m, std::min(kk_sel, n));  // this rank may hold up to k·B of them
    } else if (total > kk) {
      bb.cand_work.resize(static_cast<size_t>(total));
      for (Index e = 0; e < total; ++e)
        bb.cand_work[static_cast<size_t>(e)] = {bb.cand_val[static_cast<size_t>(e)],
                                                bb.cand_pos[static_cast<size_t>(e)]};
      auto better = [](const std::pair<Scalar, Index>& a, const std::pair<Scalar, Index>& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
      };
      std::nth_element(bb.cand_work.begin(), bb.cand_work.begin() + (kk - 1), bb.cand_work.end(),
                       better);
      pv = bb.cand_work[static_cast<size_t>(kk - 1)].first;
      ppos = bb.cand_work[static_cast<size_t>(kk - 1)].second;
    }
    // 5. the selected entries, in position order, as compressed codes
    auto& st = ws.codes.start;
    std::fill(st.begin(), st.end(), Index(0));
    Index e_out = 0;
    Scalar min_pos = std::numeric_limits<Scalar>::max();
    for (Index e = 0; e < total; ++e) {
      const Scalar v = bb.cand_val[static_cast<size_t>(e)];
      const Index pos = bb.cand_pos[static_cast<size_t>(e)];
      if (v > pv || (v == pv && pos <= ppos)) {
        ws.codes.index[static_cast<size_t>(e_out)] = static_cast<std::int32_t>(pos % m);
        ws.codes.value[static_cast<size_t>(e_out)] = v;
        ++st[static_cast<size_t>(pos / m + 1)];
        min_pos = std::min(min_pos, v);
        ++e_out;
      }
    }
    for (Index b = 0; b < B; ++b) st[static_cast<size_t>(b + 1)] += st[static_cast<size_t>(b)];
    ws.min_positive = e_out > 0 ? static_cast<double>(min_pos) : 0.0;
    if (dp) {
      double mp = e_out > 0 ? ws.min_positive : std::numeric_limits<double>::infinity();
      share.comm->allreduce_min(&mp, 1);
      ws.min_positive = std::isfinite(mp) ? mp : 0.0;
    }
  }

  /// \brief Data-parallel pivot: the global kk-th best candidate (value descending, global
  /// position ascending) as this rank's (pv, ppos) for the rule "v > pv or (v == pv and
  /// pos <= ppos)". Candidates are positive, so their bit patterns order like their values: a
  /// bisection on the pattern with a global count per halving finds the kk-th largest value pv
  /// exactly; the ties at pv are then taken in rank order, then local position order.
  template <class Scalar, class Buf>
  static void global_pivot(const Buf& bb, Index total, Index kk, const BatchShare& share,
                           Scalar& pv, Index& ppos, Index n) {
    using Bits = std::conditional_t<sizeof(Scalar) == 4, std::uint32_t, std::uint64_t>;
    static_assert(sizeof(Scalar) == sizeof(Bits), "BatchTopK: float or double scalars");
    const Communicator& comm = *share.comm;
    auto key = [](Scalar v) {
      Bits b;
      std::memcpy(&b, &v, sizeof b);
      return b;
    };
    auto value = [](Bits b) {
      Scalar v;
      std::memcpy(&v, &b, sizeof v);
      return v;
    };
    auto count_ge = [&](Scalar t) {
      std::int64_t c = 0;
      for (Index e = 0; e < total; ++e) c += bb.cand_val[static_cast<size_t>(e)] >= t ? 1 : 0;
      comm.allreduce_sum(&c, 1);
      return c;
    };
    std::int64_t all = total;
    comm.allreduce_sum(&all, 1);
    if (all <= kk) return;  // every candidate is selected (pv = lo, ppos = n)
    double mx = 0.0;
    for (Index e = 0; e < total; ++e)
      mx = std::max(mx, static_cast<double>(bb.cand_val[static_cast<size_t>(e)]));
    comm.allreduce_max(&mx, 1);
    // invariant: count_ge(value(lo)) >= kk > count_ge(value(hi))
    Bits lo = key(pv), hi = key(static_cast<Scalar>(mx)) + 1;
    while (hi - lo > 1) {
      const Bits mid = lo + (hi - lo) / 2;
      (count_ge(value(mid)) >= kk ? lo : hi) = mid;
    }
    pv = value(lo);
    // ties at pv: the first kk − #(> pv) in global position order
    const int R = comm.size(), r = comm.rank();
    std::vector<std::int64_t> c(static_cast<size_t>(R + 1), 0);
    for (Index e = 0; e < total; ++e) {
      const Scalar v = bb.cand_val[static_cast<size_t>(e)];
      c[static_cast<size_t>(R)] += v > pv ? 1 : 0;
      c[static_cast<size_t>(r)] += v == pv ? 1 : 0;
    }
    comm.allreduce_sum(c.data(), R + 1);
    std::int64_t need = kk - c[static_cast<size_t>(R)];
    for (int q = 0; q < r; ++q) need -= c[static_cast<size_t>(q)];
    const std::int64_t mine = c[static_cast<size_t>(r)];
    const std::int64_t take = std::max<std::int64_t>(0, std::min(need, mine));
    ppos = take == mine ? n : -1;
    for (Index e = 0, seen = 0; e < total && take > 0 && take < mine; ++e)
      if (bb.cand_val[static_cast<size_t>(e)] == pv && ++seen == take)
        ppos = bb.cand_pos[static_cast<size_t>(e)];
  }
};

}  // namespace ergo::sae::arch

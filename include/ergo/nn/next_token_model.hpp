// SPDX-License-Identifier: MIT
#pragma once

/// \file next_token_model.hpp
/// \brief The next-token predictor of the paper, p(y | x) = softmax_y(f_y(y)ᵀ f_x(x) [+ β_y]),
/// with f_x an MLP over the encoded context and f_y a d × |V| unembedding table.
///
/// Contexts are either discrete (n variables with given cardinalities, encoded one-hot per
/// variable and applied to the first layer as an embedding-bag gather) or dense real vectors.
/// A training step (loss_and_grad) is allocation-free once the largest batch has been seen.
/// For discrete contexts it also merges identical contexts of a batch: every sample with the same
/// x has the same f_x(x) and logits, so the MLP and both logit GEMMs run once per *distinct*
/// context and the cross-entropy attaches all of that context's targets to its column. Loss and
/// gradients are exactly those of the full batch (up to float summation order); the saving is the
/// fraction of repeated contexts (about 37% for 1024 draws from 1000 uniform tokens, and nearly
/// all of the batch in small concept worlds). Turn it off with NextTokenParams::dedupe_contexts.
///
/// \code
/// ergo::nn::NextTokenParams p;
/// p.hidden = {256, 256};
/// p.rep_dim = 15;                                  // d (paper: ℓ − 1)
/// ergo::nn::NextTokenModel<float> model({2, 2, 2, 2}, /*vocab=*/17, p);   // 4 binary variables
/// double loss = model.loss_and_grad(x, y);         // x: 4 × B int32, y: 1 × B int32
/// ergo::Matrix<float> F = model.representations(x);  // d × B: f_x(x)
/// const ergo::Matrix<float>& U = model.unembedding();  // d × |V|: column y is f_y(y)
/// ergo::Matrix<float> logp = model.log_probs(x);   // |V| × B: log p(y | x)
/// \endcode

#include "../core/error.hpp"
#include "../core/logspace.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "detail/parallel.hpp"
#include "embedding.hpp"
#include "layers.hpp"
#include "loss.hpp"
#include "mlp.hpp"
#include "parameter.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ergo::nn {

/// \brief Architecture and initialisation of a NextTokenModel.
struct NextTokenParams {
  /// Hidden widths of f_x (may be empty: f_x is then one affine map). Paper: {256, 256}.
  std::vector<Index> hidden = {256, 256};
  /// Representation size d (f_x's output width), >= 1. No default: the paper uses ℓ − 1.
  Index rep_dim = 0;
  Activation activation = Activation::LeakyRelu;  ///< paper: LeakyReLU(0.2)
  double negative_slope = 0.2;                    ///< LeakyReLU slope, finite
  bool activate_output = false;                   ///< apply the activation to f_x's output as well
  bool fx_bias = true;                            ///< biases in f_x's dense layers
  bool fy_bias = false;  ///< per-token bias β_y in the unembedding (the paper has none)
  /// Keep f_y fixed: parameters() leaves out fy.* (so optimizers never update it) and its gradient
  /// is not computed. For experiments with a prescribed unembedding (e.g. one violating the
  /// diversity condition).
  bool freeze_fy = false;
  Init init = Init::TorchDefault;  ///< initialisation of every layer and of f_y (fan-in d)
  bool dedupe_contexts = true;     ///< merge identical discrete contexts within a batch (exact)
  std::uint64_t seed = 0;          ///< seed of the weight initialisation
  /// Training/evaluation steps with fewer multiply-adds than this run on one thread even when
  /// Eigen::nbThreads() > 1 (0: always use every thread). A step opens ~15 parallel regions
  /// (GEMMs, elementwise kernels) whose fork/join costs microseconds on an idle core and up to
  /// milliseconds on a busy one, so threads only pay off above ~1 ms of arithmetic (5e7
  /// multiply-adds at ~100 GFLOP/s). The reference benchmark step (~1e9) is far above it.
  double min_parallel_work = 5e7;
  /// \throws InvalidArgument naming the first field out of range
  void check() const {
    for (size_t i = 0; i < hidden.size(); ++i)
      check_arg(hidden[i] >= 1, "NextTokenParams::check", detail::str_cat("hidden[", i, "]"),
                ">= 1", hidden[i]);
    check_arg(rep_dim >= 1, "NextTokenParams::check", "rep_dim", ">= 1 (the size d of f_x(x))",
              rep_dim);
    check_arg(std::isfinite(negative_slope), "NextTokenParams::check", "negative_slope",
              "a finite value", negative_slope);
    check_arg(min_parallel_work >= 0, "NextTokenParams::check", "min_parallel_work", "a value >= 0",
              min_parallel_work);
  }
};

namespace detail {

/// Finds the distinct columns of an int32 matrix in first-occurrence order with an
/// open-addressing hash table whose storage is reused across calls.
class ColumnDeduper {
 public:
  /// \param x n × B \param unique_ n × (>= B) destination: its first U columns receive the
  /// distinct columns \param inverse size >= B: inverse[b] = index of x(:, b) among them
  /// \return U
  template <class DU>
  Index run(const Eigen::Ref<const IntMatrix>& x, const Eigen::MatrixBase<DU>& unique_,
            std::vector<std::int32_t>& inverse) {
    auto& unique = const_cast<Eigen::MatrixBase<DU>&>(unique_);
    const Index n = x.rows(), B = x.cols();
    size_t size = 16;
    while (size < 2 * static_cast<size_t>(B)) size <<= 1;
    if (m_table.size() < size) m_table.resize(size);
    std::fill(m_table.begin(), m_table.begin() + static_cast<std::ptrdiff_t>(size), -1);
    const size_t mask = size - 1;
    Index U = 0;
    for (Index b = 0; b < B; ++b) {
      std::uint64_t h = 0x9E3779B97F4A7C15ull;
      for (Index j = 0; j < n; ++j) {
        h ^= static_cast<std::uint32_t>(x(j, b));
        h *= 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
      }
      size_t slot = static_cast<size_t>(h) & mask;
      for (;;) {
        const std::int32_t u = m_table[slot];
        if (u < 0) {
          m_table[slot] = static_cast<std::int32_t>(U);
          unique.col(U) = x.col(b);
          inverse[static_cast<size_t>(b)] = static_cast<std::int32_t>(U);
          ++U;
          break;
        }
        if (unique.col(u) == x.col(b)) {
          inverse[static_cast<size_t>(b)] = u;
          break;
        }
        slot = (slot + 1) & mask;
      }
    }
    return U;
  }

 private:
  std::vector<std::int32_t> m_table;
};

}  // namespace detail

/// \brief Next-token predictor p(y | x) = softmax(f_y(y)ᵀ f_x(x) + β_y) over a vocabulary V.
///
/// SHAPES: discrete contexts x are n × N int32 (x(j, ·) ∈ [0, card_j)); dense contexts are
/// input_dim() × N; targets y are 1 × N int32 in [0, |V|); representations F are d × N; the
/// unembedding is d × |V|; logits and log-probabilities are |V| × N.
/// Parameter names: "fx.layers.l.weight" (n_{l+1} × n_l; for discrete input n_0 = Σ card_j),
/// "fx.layers.l.bias", "fy.weight" (d × |V|), "fy.bias" (|V|, with fy_bias).
/// Threads: GEMMs and the elementwise kernels use Eigen::nbThreads() (set with
/// Eigen::setNbThreads). Parameter views from parameters() stay valid while the model is not
/// moved or copied over.
/// \tparam Scalar_ float (training) or double (gradient checks)
template <class Scalar_>
class NextTokenModel {
 public:
  using Scalar = Scalar_;
  using Index = Eigen::Index;

  NextTokenModel() = default;
  /// \brief Model over discrete contexts of n = x_cardinalities.size() variables.
  /// \param x_cardinalities card_j >= 1 per context variable \param vocab |V| >= 1
  /// \throws InvalidArgument on a bad size or if `params.check()` fails
  NextTokenModel(std::vector<Index> x_cardinalities, Index vocab, const NextTokenParams& params)
      : m_params(params), m_discrete(true) {
    params.check();
    m_encoder = ContextEncoder(std::move(x_cardinalities));
    build(m_encoder.input_dim(), vocab);
  }
  /// \brief Model over dense real-valued contexts of size input_dim.
  /// \throws InvalidArgument on a bad size or if `params.check()` fails
  static NextTokenModel dense(Index input_dim, Index vocab, const NextTokenParams& params) {
    params.check();
    check_arg(input_dim >= 1, "NextTokenModel::dense", "input_dim", ">= 1", input_dim);
    NextTokenModel m;
    m.m_params = params;
    m.m_discrete = false;
    m.build(input_dim, vocab);
    return m;
  }

  const NextTokenParams& params() const { return m_params; }
  /// True for discrete contexts, false for dense ones.
  bool discrete_input() const { return m_discrete; }
  /// Size of f_x's input: Σ card_j (discrete) or the dense dimension.
  Index input_dim() const { return m_fx.input_dim(); }
  /// Number of context variables n (discrete), or input_dim() (dense): rows of a context batch.
  Index context_rows() const { return m_discrete ? m_encoder.size() : input_dim(); }
  Index rep_dim() const { return m_params.rep_dim; }
  Index vocab_size() const { return m_fy.vocab_size(); }
  const ContextEncoder& encoder() const { return m_encoder; }
  Mlp<Scalar>& fx() { return m_fx; }
  const Mlp<Scalar>& fx() const { return m_fx; }
  Unembedding<Scalar>& fy() { return m_fy; }
  const Unembedding<Scalar>& fy() const { return m_fy; }

  /// \brief Views of every trainable parameter and its gradient, in the order
  /// fx.layers.0.weight, fx.layers.0.bias, …, fy.weight[, fy.bias] (fy.* only if not frozen).
  ParameterList<Scalar> parameters() { return parameter_list(!m_params.freeze_fy); }

  /// \brief Sizes every workspace for batches of up to `batch` samples.
  void reserve(Index batch) {
    if (batch <= m_cap) return;
    m_fx.reserve(batch);
    m_logits.resize(vocab_size(), batch);
    if (m_discrete) {
      m_unique.resize(m_encoder.size(), batch);
      m_active.resize(m_encoder.size(), batch);
      m_inverse.resize(static_cast<size_t>(batch));
    }
    m_groups.start.reserve(static_cast<size_t>(batch) + 1);
    m_groups.target.reserve(static_cast<size_t>(batch));
    m_thread_loss.resize(static_cast<size_t>(std::max(1, Eigen::nbThreads())) + 1);
    m_cap = batch;
  }

  // ------------------------------------------------------------------ training ----------------

  /// \brief Mean cross-entropy (nats) of a batch, and every parameter gradient (overwritten).
  /// \param x n × B discrete contexts \param y 1 × B targets in [0, |V|)
  /// \throws InvalidArgument on a shape mismatch, a context value or target out of range, or a
  ///         discrete batch given to a dense model
  double loss_and_grad(const Eigen::Ref<const IntMatrix>& x,
                       const Eigen::Ref<const IntRowVector>& y) {
    check_discrete_batch("NextTokenModel::loss_and_grad", x, y);
    return step_discrete(x, y, true);
  }
  /// \brief Dense-context version. \param x input_dim() × B (finite) \param y 1 × B
  double loss_and_grad(const Eigen::Ref<const Matrix<Scalar>>& x,
                       const Eigen::Ref<const IntRowVector>& y) {
    check_dense_batch("NextTokenModel::loss_and_grad", x, y);
    return step_dense(x, y, true);
  }

  /// \brief Mean cross-entropy of a data set with the training workspaces (no gradients, no
  /// allocation once reserved; processed in chunks of the workspace capacity, at least 1024).
  double evaluate(const Eigen::Ref<const IntMatrix>& x, const Eigen::Ref<const IntRowVector>& y) {
    check_discrete_batch("NextTokenModel::evaluate", x, y);
    return evaluate_impl(x, y);
  }
  /// \brief Dense-context version of evaluate().
  double evaluate(const Eigen::Ref<const Matrix<Scalar>>& x,
                  const Eigen::Ref<const IntRowVector>& y) {
    check_dense_batch("NextTokenModel::evaluate", x, y);
    return evaluate_impl(x, y);
  }

  /// loss_and_grad without input validation (the Trainer validates the data set once).
  double loss_and_grad_unchecked(const Eigen::Ref<const IntMatrix>& x,
                                 const Eigen::Ref<const IntRowVector>& y) {
    return step_discrete(x, y, true);
  }
  double loss_and_grad_unchecked(const Eigen::Ref<const Matrix<Scalar>>& x,
                                 const Eigen::Ref<const IntRowVector>& y) {
    return step_dense(x, y, true);
  }
  /// evaluate without input validation.
  template <class XMat>
  double evaluate_unchecked(const XMat& x, const Eigen::Ref<const IntRowVector>& y) {
    return evaluate_impl(x, y);
  }

  // ------------------------------------------------------------------ theory access -----------

  /// \brief Representations F = f_x(X). \param x n × N discrete contexts \return d × N
  Matrix<Scalar> representations(const Eigen::Ref<const IntMatrix>& x) const {
    require_discrete("NextTokenModel::representations");
    m_encoder.check(x, "NextTokenModel::representations", "x");
    IntMatrix active(x.rows(), x.cols());
    m_encoder.encode(x, active);
    return m_fx.predict_multi_hot(active);
  }
  /// \brief Representations of dense contexts. \param x input_dim() × N \return d × N
  Matrix<Scalar> representations(const Eigen::Ref<const Matrix<Scalar>>& x) const {
    require_dense("NextTokenModel::representations");
    check_shape("NextTokenModel::representations", "x", x, input_dim(), -1);
    return m_fx.predict(x);
  }
  /// The unembedding matrix, d × |V|: column y is f_y(y).
  const Matrix<Scalar>& unembedding() const { return m_fy.weight(); }
  /// The per-token bias β (|V|), empty without fy_bias.
  const Vector<Scalar>& unembedding_bias() const { return m_fy.bias(); }

  /// \brief Logits f_y(y)ᵀ f_x(x) + β_y. \param x contexts (discrete or dense) \return |V| × N
  template <class XMat>
  Matrix<Scalar> logits(const XMat& x) const {
    const Matrix<Scalar> f = representations(x);
    Matrix<Scalar> out(vocab_size(), f.cols());
    m_fy.forward(f, out);
    return out;
  }
  /// \brief log p(y | x) for every token. \return |V| × N, each column log-sums to 0
  template <class XMat>
  Matrix<Scalar> log_probs(const XMat& x) const {
    Matrix<Scalar> out = logits(x);
    log_softmax_cols_inplace(out);
    return out;
  }
  /// \brief Mean −log p(y | x) in nats (const; allocates). \param y 1 × N in [0, |V|)
  template <class XMat>
  double cross_entropy(const XMat& x, const Eigen::Ref<const IntRowVector>& y) const {
    check_shape("NextTokenModel::cross_entropy", "y", y, 1, x.cols());
    if (x.cols() == 0) return 0.0;
    double total = 0.0;
    for (Index c0 = 0; c0 < x.cols(); c0 += kChunk) {
      const Index n = std::min(kChunk, x.cols() - c0);
      const Matrix<Scalar> l = logits(x.middleCols(c0, n));
      total += softmax_cross_entropy(l, y.segment(c0, n)) * static_cast<double>(n);
    }
    return total / static_cast<double>(x.cols());
  }

  // ------------------------------------------------------------------ export / import ---------

  /// \brief Every parameter as a named matrix ("fx.layers.0.weight", …, "fy.weight"[, "fy.bias"]).
  std::map<std::string, Matrix<Scalar>> export_parameters() const {
    auto list = const_cast<NextTokenModel*>(this)->parameter_list(true);  // read-only use
    return nn::export_parameters(list);
  }
  /// \brief Loads parameters exported by a model of the same architecture (names and shapes must
  /// match exactly; unknown names are rejected). Nothing changes if a check fails.
  template <class S2>
  void import_parameters(const std::map<std::string, Matrix<S2>>& named) {
    auto list = parameter_list(true);
    nn::import_parameters(list, named, true);
  }

 private:
  static constexpr Index kChunk = 2048;  // inference chunk (columns)

  ParameterList<Scalar> parameter_list(bool with_fy) {
    ParameterList<Scalar> list;
    m_fx.append_parameters(list, "fx");
    if (with_fy) m_fy.append_parameters(list, "fy");
    return list;
  }

  void build(Index input_dim, Index vocab) {
    check_arg(vocab >= 1, "NextTokenModel::NextTokenModel", "vocab", ">= 1", vocab);
    Rng rng(m_params.seed);
    MlpParams mp;
    mp.widths.push_back(input_dim);
    for (Index h : m_params.hidden) mp.widths.push_back(h);
    mp.widths.push_back(m_params.rep_dim);
    mp.activation = m_params.activation;
    mp.negative_slope = m_params.negative_slope;
    mp.activate_output = m_params.activate_output;
    mp.bias = m_params.fx_bias;
    mp.init = m_params.init;
    m_fx = Mlp<Scalar>(mp, rng);
    m_fy = Unembedding<Scalar>(m_params.rep_dim, vocab, rng, m_params.init, m_params.fy_bias);
  }

  void require_discrete(const char* who) const {
    check_arg(m_discrete, who, "x", "dense contexts (input_dim x N real matrix) for this model",
              "discrete contexts");
  }
  void require_dense(const char* who) const {
    check_arg(!m_discrete, who, "x", "discrete contexts (n x N int32 matrix) for this model",
              "a dense matrix");
  }
  void check_targets(const char* who, const Eigen::Ref<const IntRowVector>& y, Index cols) const {
    check_shape(who, "y", y, 1, cols);
    for (Index b = 0; b < y.size(); ++b)
      if (y[b] < 0 || y[b] >= vocab_size())
        throw_invalid(who, detail::str_cat("y[", b, "]"),
                      detail::str_cat("a token in [0, ", vocab_size(), ")"), y[b]);
  }
  void check_discrete_batch(const char* who, const Eigen::Ref<const IntMatrix>& x,
                            const Eigen::Ref<const IntRowVector>& y) const {
    require_discrete(who);
    m_encoder.check(x, who, "x");
    check_targets(who, y, x.cols());
  }
  void check_dense_batch(const char* who, const Eigen::Ref<const Matrix<Scalar>>& x,
                         const Eigen::Ref<const IntRowVector>& y) const {
    require_dense(who);
    check_shape(who, "x", x, input_dim(), -1);
    check_finite(who, "x", x);
    check_targets(who, y, x.cols());
  }

  // Distinct contexts → m_active (encoded, U columns) and target groups; returns U.
  Index prepare_discrete(const Eigen::Ref<const IntMatrix>& x,
                         const Eigen::Ref<const IntRowVector>& y) {
    const Index B = x.cols();
    if (!m_params.dedupe_contexts) {
      m_encoder.encode(x, m_active.leftCols(B));
      m_groups.assign_one_per_column(y.data(), B);  // Ref<const RowVector> is contiguous
      return B;
    }
    const Index U = m_dedup.run(x, m_unique, m_inverse);
    m_encoder.encode(m_unique.leftCols(U), m_active.leftCols(U));
    auto& start = m_groups.start;
    auto& target = m_groups.target;
    start.assign(static_cast<size_t>(U) + 1, 0);
    for (Index b = 0; b < B; ++b)
      ++start[static_cast<size_t>(m_inverse[static_cast<size_t>(b)]) + 1];
    for (Index u = 0; u < U; ++u)
      start[static_cast<size_t>(u) + 1] += start[static_cast<size_t>(u)];
    target.resize(static_cast<size_t>(B));
    m_cursor.assign(start.begin(), start.end() - 1);
    for (Index b = 0; b < B; ++b) {
      auto& pos = m_cursor[static_cast<size_t>(m_inverse[static_cast<size_t>(b)])];
      target[static_cast<size_t>(pos++)] = y[b];
    }
    return U;
  }

  // Logits of the current f_x output, fused cross-entropy, and (if grad) the backward pass.
  template <class FView>
  double head(const FView& f, Index U, Index B, bool grad) {
    auto logits = m_logits.leftCols(U);
    logits.noalias() = m_fy.weight().transpose() * f;
    const Scalar* bias = m_fy.has_bias() ? m_fy.bias().data() : nullptr;
    const auto threads = static_cast<size_t>(std::max(1, Eigen::nbThreads()));
    if (m_thread_loss.size() < threads) m_thread_loss.resize(threads);  // thread count grew
    const double loss =
        grouped_softmax_cross_entropy(logits, m_groups, B, grad, bias, m_thread_loss.data());
    if (!grad) return loss;
    if (!m_params.freeze_fy) {
      m_fy.weight_grad().noalias() = f * logits.transpose();
      if (m_fy.has_bias()) detail::rowwise_sum(logits, m_fy.bias_grad(), false);
    }
    m_fx.output_grad().noalias() = m_fy.weight() * logits;
    m_fx.backward();
    return loss;
  }

  // Multiply-adds of a forward pass over U columns (the gather counts k per output), times 3 with
  // the backward pass.
  double step_work(Index U, bool grad) const {
    double per_column = static_cast<double>(rep_dim()) * static_cast<double>(vocab_size());
    for (Index l = 0; l < m_fx.num_layers(); ++l) {
      const auto& layer = m_fx.layer(l);
      const double in = (l == 0 && m_discrete) ? static_cast<double>(m_encoder.size())
                                               : static_cast<double>(layer.in_features());
      per_column += in * static_cast<double>(layer.out_features());
    }
    return per_column * static_cast<double>(U) * (grad ? 3.0 : 1.0);
  }

  double step_discrete(const Eigen::Ref<const IntMatrix>& x,
                       const Eigen::Ref<const IntRowVector>& y, bool grad) {
    require_discrete("NextTokenModel::loss_and_grad");
    const Index B = x.cols();
    if (B == 0) return 0.0;
    reserve(B);
    const Index U = prepare_discrete(x, y);
    ThreadLimit limit(step_work(U, grad) < m_params.min_parallel_work ? 1 : 0);
    auto f = m_fx.forward_multi_hot_unchecked(m_active.leftCols(U));
    return head(f, U, B, grad);
  }

  double step_dense(const Eigen::Ref<const Matrix<Scalar>>& x,
                    const Eigen::Ref<const IntRowVector>& y, bool grad) {
    require_dense("NextTokenModel::loss_and_grad");
    const Index B = x.cols();
    if (B == 0) return 0.0;
    reserve(B);
    m_groups.assign_one_per_column(y.data(), B);  // Ref<const RowVector> is contiguous
    ThreadLimit limit(step_work(B, grad) < m_params.min_parallel_work ? 1 : 0);
    auto f = m_fx.forward(x);
    return head(f, B, B, grad);
  }

  template <class XMat>
  double evaluate_impl(const XMat& x, const Eigen::Ref<const IntRowVector>& y) {
    const Index N = x.cols();
    if (N == 0) return 0.0;
    const Index chunk = std::max<Index>(m_cap, 1024);
    double total = 0.0;
    for (Index c0 = 0; c0 < N; c0 += chunk) {
      const Index n = std::min(chunk, N - c0);
      double part;
      if constexpr (std::is_same<typename XMat::Scalar, std::int32_t>::value)
        part = step_discrete(x.middleCols(c0, n), y.segment(c0, n), false);
      else
        part = step_dense(x.middleCols(c0, n), y.segment(c0, n), false);
      total += part * static_cast<double>(n);
    }
    return total / static_cast<double>(N);
  }

  NextTokenParams m_params;
  bool m_discrete = true;
  ContextEncoder m_encoder;
  Mlp<Scalar> m_fx;
  Unembedding<Scalar> m_fy;
  // Workspaces (capacity m_cap samples).
  Index m_cap = 0;
  Matrix<Scalar> m_logits;              // |V| × cap: logits, then dL/dlogits
  IntMatrix m_unique, m_active;         // n × cap: distinct contexts, their active coordinates
  std::vector<std::int32_t> m_inverse;  // sample → distinct context
  std::vector<Index> m_cursor;
  TargetGroups m_groups;
  std::vector<double> m_thread_loss;
  detail::ColumnDeduper m_dedup;
};

}  // namespace ergo::nn

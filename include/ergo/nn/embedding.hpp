// SPDX-License-Identifier: MIT
#pragma once

/// \file embedding.hpp
/// \brief Input encoding of discrete contexts (one-hot per variable, applied as an embedding-bag
/// gather) and the unembedding f_y, a d × |V| table with an optional per-token bias.
///
/// A discrete context x = (x_1, …, x_n) with x_j ∈ {0, …, card_j − 1} is encoded as the
/// concatenation of n one-hot vectors, a vector of size Σ_j card_j with n ones at the "active
/// coordinates" offset_j + x_j. A dense layer applied to it, W · onehot(x) + b, is the sum of n
/// columns of W plus b: an embedding-bag gather that costs n · out additions per sample instead of
/// an out × Σcard GEMM column. Its weight gradient is the matching scatter-add.
///
/// \code
/// ergo::nn::ContextEncoder enc({2, 3});                 // x_1 ∈ {0,1}, x_2 ∈ {0,1,2}
/// ergo::IntMatrix x(2, 4);  x << 0, 1, 1, 0,
///                                2, 0, 1, 1;
/// ergo::IntMatrix active = enc.encode(x);               // [[0,1,1,0],[4,2,3,3]]
/// ergo::Matrix<float> onehot = enc.one_hot<float>(x);   // 5 × 4, two ones per column
/// \endcode

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"
#include "detail/parallel.hpp"
#include "layers.hpp"
#include "parameter.hpp"

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace ergo::nn {

/// \brief One-hot encoding of n discrete variables with given cardinalities.
///
/// SHAPES: contexts x are n × B (int32, x(j, b) ∈ [0, card_j)); active coordinates are n × B
/// (int32, in [0, input_dim())); the dense encoding is input_dim() × B with input_dim() = Σ card_j.
class ContextEncoder {
 public:
  ContextEncoder() = default;
  /// \param cardinalities card_j >= 1 for each of the n >= 1 variables (Σ card_j < 2³¹)
  /// \throws InvalidArgument on an empty list or a cardinality < 1
  explicit ContextEncoder(std::vector<Index> cardinalities) : m_card(std::move(cardinalities)) {
    check_arg(!m_card.empty(), "ContextEncoder::ContextEncoder", "cardinalities",
              "at least one variable", "an empty list");
    m_offset.resize(m_card.size());
    Index total = 0;
    for (size_t j = 0; j < m_card.size(); ++j) {
      check_arg(m_card[j] >= 1, "ContextEncoder::ContextEncoder",
                detail::str_cat("cardinalities[", j, "]"), ">= 1", m_card[j]);
      m_offset[j] = total;
      total += m_card[j];
    }
    check_arg(total < std::numeric_limits<std::int32_t>::max(), "ContextEncoder::ContextEncoder",
              "cardinalities", "a total below 2^31", total);
    m_total = total;
  }

  /// Number of variables n.
  Index size() const { return static_cast<Index>(m_card.size()); }
  /// Size of the one-hot encoding, Σ_j card_j.
  Index input_dim() const { return m_total; }
  const std::vector<Index>& cardinalities() const { return m_card; }
  /// offsets()[j] = Σ_{i<j} card_i: where variable j's one-hot block starts.
  const std::vector<Index>& offsets() const { return m_offset; }

  /// \brief Checks that x is n × B with every x(j, b) in [0, card_j).
  /// \throws InvalidArgument "who(): what: expected ..., got ..." naming the first bad entry
  void check(const Eigen::Ref<const IntMatrix>& x, const std::string& who = "ContextEncoder::check",
             const std::string& what = "x") const {
    check_shape(who, what, x, size(), -1);
    for (Index b = 0; b < x.cols(); ++b)
      for (Index j = 0; j < size(); ++j) {
        const std::int32_t v = x(j, b);
        if (v < 0 || v >= m_card[static_cast<size_t>(j)])
          throw_invalid(who, detail::str_cat(what, "(", j, ", ", b, ")"),
                        detail::str_cat("a value in [0, ", m_card[static_cast<size_t>(j)], ")"), v);
      }
  }

  /// \brief Active coordinates: active(j, b) = offset_j + x(j, b). No range check (see check()).
  /// \param x n × B \param active_ n × B int32 (written)
  template <class DO>
  void encode(const Eigen::Ref<const IntMatrix>& x, const Eigen::MatrixBase<DO>& active_) const {
    auto& active = const_cast<Eigen::MatrixBase<DO>&>(active_);
    for (Index b = 0; b < x.cols(); ++b)
      for (Index j = 0; j < size(); ++j)
        active(j, b) = static_cast<std::int32_t>(m_offset[static_cast<size_t>(j)] + x(j, b));
  }
  /// \brief Active coordinates of checked contexts. \param x n × B \return n × B
  IntMatrix encode(const Eigen::Ref<const IntMatrix>& x) const {
    check(x, "ContextEncoder::encode");
    IntMatrix out(x.rows(), x.cols());
    encode(x, out);
    return out;
  }

  /// \brief Dense one-hot encoding. \param x n × B \return input_dim() × B with n ones per column
  template <class Scalar>
  Matrix<Scalar> one_hot(const Eigen::Ref<const IntMatrix>& x) const {
    check(x, "ContextEncoder::one_hot");
    Matrix<Scalar> out = Matrix<Scalar>::Zero(m_total, x.cols());
    for (Index b = 0; b < x.cols(); ++b)
      for (Index j = 0; j < size(); ++j) out(m_offset[static_cast<size_t>(j)] + x(j, b), b) = 1;
    return out;
  }

 private:
  std::vector<Index> m_card, m_offset;
  Index m_total = 0;
};

/// \brief Embedding-bag forward: y(:, b) = bias + Σ_j W(:, active(j, b)), i.e. W · multihot + bias.
///
/// \param w       out × in table (a dense layer's weight)
/// \param bias    out-vector, or an empty vector for none
/// \param active  k × B coordinates in [0, in) (unchecked; a repeated coordinate counts twice)
/// \param y_      out × B (written)
/// Threaded over columns.
template <class DW, class DB, class DY>
void embedding_bag_forward(const Eigen::MatrixBase<DW>& w, const Eigen::MatrixBase<DB>& bias,
                           const Eigen::Ref<const IntMatrix>& active,
                           const Eigen::MatrixBase<DY>& y_) {
  auto& y = const_cast<Eigen::MatrixBase<DY>&>(y_);
  const Index k = active.rows(), cols = active.cols();
  const bool has_bias = bias.size() > 0;
  const Index grain = detail::grain_for(y.rows() * (k + 1), 8);
  detail::parallel_for(cols, grain, [&](Index c0, Index c1, int) {
    for (Index b = c0; b < c1; ++b) {
      auto out = y.col(b);
      if (k == 0) {
        if (has_bias)
          out = bias;
        else
          out.setZero();
        continue;
      }
      if (has_bias)
        out = w.col(active(0, b)) + bias;
      else
        out = w.col(active(0, b));
      for (Index j = 1; j < k; ++j) out += w.col(active(j, b));
    }
  });
}

/// \brief Embedding-bag backward (scatter-add): dW(:, active(j, b)) += dy(:, b) for all j, b.
///
/// \param dy  out × B \param active k × B coordinates in [0, in) (unchecked)
/// \param dw_ out × in (overwritten, or added to when `accumulate`)
/// Threaded over row ranges of dW, so no two threads write the same entry.
template <class DG, class DW>
void embedding_bag_backward(const Eigen::MatrixBase<DG>& dy,
                            const Eigen::Ref<const IntMatrix>& active,
                            const Eigen::MatrixBase<DW>& dw_, bool accumulate = false) {
  auto& dw = const_cast<Eigen::MatrixBase<DW>&>(dw_);
  if (!accumulate) {
    const Index zgrain = detail::grain_for(dw.rows(), 8);
    detail::parallel_for(dw.cols(), zgrain,
                         [&](Index c0, Index c1, int) { dw.middleCols(c0, c1 - c0).setZero(); });
  }
  const Index k = active.rows(), cols = active.cols(), rows = dw.rows();
  const Index grain = detail::grain_for(k * cols, 32);
  detail::parallel_for(rows, grain, [&](Index r0, Index r1, int) {
    if (r1 <= r0) return;
    for (Index b = 0; b < cols; ++b) {
      const auto g = dy.col(b).segment(r0, r1 - r0);
      for (Index j = 0; j < k; ++j) dw.col(active(j, b)).segment(r0, r1 - r0) += g;
    }
  });
}

/// \brief The unembedding f_y: token y ↦ column y of a d × |V| table, with optional bias β_y.
///
/// logits = Wᵀ F + β, so that log p(y | x) = f_y(y)ᵀ f_x(x) + β_y − log Z(x).
/// SHAPES: W is d × V; β is V (absent without bias); F is d × B; logits are V × B.
/// Parameter names (with prefix P): "P.weight" (d × V), "P.bias" (V).
/// \tparam Scalar_ float or double
template <class Scalar_>
class Unembedding {
 public:
  using Scalar = Scalar_;
  using Index = Eigen::Index;

  Unembedding() = default;
  /// \brief Table for d-dimensional representations and `vocab` tokens, initialised by `init`
  /// with fan-in d (TorchDefault: entries U(−1/√d, 1/√d), as torch.nn.Linear(d, vocab)).
  /// \throws InvalidArgument if dim or vocab < 1
  Unembedding(Index dim, Index vocab, Rng& rng, Init init = Init::TorchDefault, bool bias = false) {
    check_arg(dim >= 1, "Unembedding::Unembedding", "dim", ">= 1", dim);
    check_arg(vocab >= 1, "Unembedding::Unembedding", "vocab", ">= 1", vocab);
    m_has_bias = bias;
    m_w = Matrix<Scalar>::Zero(dim, vocab);
    m_gw = Matrix<Scalar>::Zero(dim, vocab);
    m_b = Vector<Scalar>::Zero(bias ? vocab : 0);
    m_gb = Vector<Scalar>::Zero(bias ? vocab : 0);
    init_dense(m_w, m_b, init, rng, dim, vocab);
  }

  Index dim() const { return m_w.rows(); }
  Index vocab_size() const { return m_w.cols(); }
  bool has_bias() const { return m_has_bias; }
  Matrix<Scalar>& weight() { return m_w; }  ///< d × V; column y is f_y(y)
  const Matrix<Scalar>& weight() const { return m_w; }
  Vector<Scalar>& bias() { return m_b; }  ///< V (empty without bias)
  const Vector<Scalar>& bias() const { return m_b; }
  Matrix<Scalar>& weight_grad() { return m_gw; }
  const Matrix<Scalar>& weight_grad() const { return m_gw; }
  Vector<Scalar>& bias_grad() { return m_gb; }
  const Vector<Scalar>& bias_grad() const { return m_gb; }

  /// \brief logits = Wᵀ F (+ β). \param f d × B \param logits_ V × B (written)
  template <class DF, class DL>
  void forward(const Eigen::MatrixBase<DF>& f, const Eigen::MatrixBase<DL>& logits_) const {
    auto& logits = const_cast<Eigen::MatrixBase<DL>&>(logits_);
    check_shape("Unembedding::forward", "f", f, dim(), -1);
    check_shape("Unembedding::forward", "logits", logits, vocab_size(), f.cols());
    logits.noalias() = m_w.transpose() * f;
    if (m_has_bias) logits.colwise() += m_b;
  }
  /// \brief dW = F Gᵀ, dβ = Σ_cols G (overwritten). \param f d × B \param g V × B (dL/dlogits)
  template <class DF, class DG>
  void backward_params(const Eigen::MatrixBase<DF>& f, const Eigen::MatrixBase<DG>& g) {
    check_shape("Unembedding::backward_params", "f", f, dim(), -1);
    check_shape("Unembedding::backward_params", "g", g, vocab_size(), f.cols());
    m_gw.noalias() = f * g.transpose();
    if (m_has_bias) detail::rowwise_sum(g, m_gb, false);
  }
  /// \brief dF = W G. \param g V × B \param df_ d × B (written)
  template <class DG, class DO>
  void backward_input(const Eigen::MatrixBase<DG>& g, const Eigen::MatrixBase<DO>& df_) const {
    auto& df = const_cast<Eigen::MatrixBase<DO>&>(df_);
    check_shape("Unembedding::backward_input", "g", g, vocab_size(), -1);
    check_shape("Unembedding::backward_input", "df", df, dim(), g.cols());
    df.noalias() = m_w * g;
  }
  /// \brief Appends "prefix.weight" and (with bias) "prefix.bias".
  void append_parameters(ParameterList<Scalar>& list, const std::string& prefix) {
    list.push_back(make_parameter<Scalar>(prefix + ".weight", m_w, m_gw));
    if (m_has_bias) list.push_back(make_parameter<Scalar>(prefix + ".bias", m_b, m_gb));
  }

 private:
  Matrix<Scalar> m_w, m_gw;
  Vector<Scalar> m_b, m_gb;
  bool m_has_bias = false;
};

}  // namespace ergo::nn

// SPDX-License-Identifier: MIT
#pragma once

/// \file tensor.hpp
/// \brief A typed view of stored tensor bytes (from a .npy file or a .safetensors entry) and its
/// conversion to Eigen matrices under ergo's "samples are columns" convention.
///
/// THE MAPPING. A C-order (row-major) tensor of shape [n, d] is, byte for byte, the column-major
/// d × n matrix whose columns are its rows. ergo reads it as that d × n matrix, without a copy
/// when the element type already matches (see TensorView::map). In general:
///
/// | stored shape              | matrix                      | note                          |
/// |---------------------------|-----------------------------|-------------------------------|
/// | `[]` (scalar)             | 1 × 1                       |                               |
/// | `[n]`                     | n × 1 (or 1 × n, see below) | a vector                      |
/// | `[n, d]`                  | d × n                       | n samples of dimension d      |
/// | `[a, b, ..., d]`          | d × (a·b···)                | leading axes flattened, C order |
///
/// Fortran-order .npy data is read with the same logical meaning (element [j, i] of the stored
/// array becomes entry (i, j)), which needs a transposing copy. For 1-D tensors,
/// ReadOptions::vector_as_row gives 1 × n instead (one value per sample, e.g. labels).
///
/// The same rule read backwards is how SAELens weights map: W_enc stored [d_in, d_sae] is our
/// d_sae × d_in encoder; W_dec stored [d_sae, d_in] is our d_in × d_sae decoder.

#include "dtype.hpp"
#include "error.hpp"

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <Eigen/Core>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ergo::io {

/// \brief Type, shape and order of a stored tensor.
struct TensorInfo {
  DType dtype = DType::F32;         ///< element type as stored
  std::vector<std::int64_t> shape;  ///< logical shape (NumPy / PyTorch order)
  bool fortran_order = false;       ///< .npy only: data stored column-major
  bool big_endian = false;          ///< .npy only: '>' byte order

  /// Number of elements (product of the shape; 1 for a scalar). Readers validate that this
  /// product does not overflow before building a TensorInfo.
  std::uint64_t numel() const {
    std::uint64_t n = 1;
    for (auto s : shape) n *= static_cast<std::uint64_t>(s);
    return n;
  }
  /// Number of data bytes.
  std::uint64_t nbytes() const { return numel() * dtype_size(dtype); }
  /// Sample dimension: the last axis for rank >= 2, else 1.
  Index sample_dim() const { return shape.size() >= 2 ? static_cast<Index>(shape.back()) : 1; }
  /// Number of samples: the product of the leading axes for rank >= 2, shape[0] for rank 1,
  /// 1 for a scalar.
  Index num_samples() const {
    if (shape.empty()) return 1;
    if (shape.size() == 1) return static_cast<Index>(shape[0]);
    std::uint64_t n = 1;
    for (std::size_t k = 0; k + 1 < shape.size(); ++k) n *= static_cast<std::uint64_t>(shape[k]);
    return static_cast<Index>(n);
  }
  /// "float32 [1024, 768]" (for messages).
  std::string describe() const {
    std::string s = std::string(dtype_name(dtype)) + " [";
    for (std::size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
    return s + "]";
  }
};

/// \brief Options for converting a stored tensor to a matrix.
struct ReadOptions {
  /// Read a 1-D tensor [n] as 1 × n (one value per sample) instead of n × 1. Default false.
  bool vector_as_row = false;
  /// Throw FormatError if any value is NaN or ±inf (floating destinations). Default false.
  bool require_finite = false;
};

/// \brief Checks a shape against an expected one; -1 entries match anything. Throws FormatError.
inline void check_tensor_shape(const std::string& who, const std::string& source,
                               const TensorInfo& info, const std::vector<std::int64_t>& expected) {
  bool ok = info.shape.size() == expected.size();
  for (std::size_t k = 0; ok && k < expected.size(); ++k)
    ok = expected[k] < 0 || expected[k] == info.shape[k];
  if (!ok) {
    std::string e = "shape [";
    for (std::size_t k = 0; k < expected.size(); ++k)
      e += (k ? ", " : "") + (expected[k] < 0 ? std::string("any") : std::to_string(expected[k]));
    e += "]";
    detail::throw_format(who, source, "shape", e, info.describe());
  }
}

/// \brief A non-owning view of a stored tensor: its bytes (inside a mapped file), its info, and
/// the name used in error messages. Valid as long as the file object that produced it.
class TensorView {
 public:
  TensorView(const unsigned char* data, TensorInfo info, std::string source, std::string who)
      : m_data(data), m_info(std::move(info)), m_source(std::move(source)), m_who(std::move(who)) {}

  const TensorInfo& info() const { return m_info; }
  /// First data byte.
  const unsigned char* data() const { return m_data; }
  /// "file" or "file:tensor", as used in messages.
  const std::string& source() const { return m_source; }

  /// Rows of the matrix to_matrix() returns (see the mapping table in tensor.hpp).
  Index rows(const ReadOptions& opt = {}) const {
    if (m_info.shape.size() == 1)
      return opt.vector_as_row ? 1 : static_cast<Index>(m_info.shape[0]);
    return m_info.sample_dim();
  }
  /// Columns of the matrix to_matrix() returns.
  Index cols(const ReadOptions& opt = {}) const {
    if (m_info.shape.size() == 1)
      return opt.vector_as_row ? static_cast<Index>(m_info.shape[0]) : 1;
    return m_info.num_samples();
  }

  /// \brief True if map<S>() can view the data without a copy: same element type as S, native
  /// byte order, C order (or rank <= 1), and an address aligned for S.
  template <class S>
  bool can_map() const {
    return m_info.dtype == dtype_of<S>() && !m_info.big_endian &&
           (!m_info.fortran_order || m_info.shape.size() <= 1) &&
           reinterpret_cast<std::uintptr_t>(m_data) % alignof(S) == 0;
  }

  /// \brief Zero-copy view as the rows() × cols() matrix. Throws FormatError when can_map<S>()
  /// is false (use to_matrix<S>() to convert instead).
  template <class S>
  Eigen::Map<const Matrix<S>> map(const ReadOptions& opt = {}) const {
    if (!can_map<S>())
      detail::throw_format(
          m_who, m_source, "dtype",
          detail::str_cat(dtype_name(dtype_of<S>()),
                          ", little-endian, C order, aligned (for a zero-copy view)"),
          detail::str_cat(m_info.describe(), m_info.fortran_order ? " Fortran order" : "",
                          m_info.big_endian ? " big-endian" : ""));
    return Eigen::Map<const Matrix<S>>(reinterpret_cast<const S*>(m_data), rows(opt), cols(opt));
  }

  /// \brief Converts samples [first, first + count) into `dst`, a column-major
  /// sample_dim() × count block (leading dimension sample_dim()). Integer destinations require
  /// integral in-range values. Throws FormatError naming the first bad element.
  template <class S>
  void read_samples(Index first, Index count, S* dst, bool require_finite = false) const {
    const Index d = m_info.sample_dim(), n = m_info.num_samples();
    if (!(first >= 0 && count >= 0 &&
          first + count <= n))  // (hot path: no message unless it fails)
      throw_invalid(m_who, "samples", detail::str_cat("a range inside [0, ", n, ")"),
                    detail::str_cat("[", first, ", ", first + count, ")"));
    const std::size_t es = dtype_size(m_info.dtype);
    detail::ConvertIssue issue = detail::ConvertIssue::None;
    if (!m_info.fortran_order || m_info.shape.size() <= 1) {
      const std::size_t total = static_cast<std::size_t>(d) * static_cast<std::size_t>(count);
      const unsigned char* src =
          m_data + static_cast<std::size_t>(first) * static_cast<std::size_t>(d) * es;
      const std::size_t bad =
          detail::convert_elements(src, m_info.dtype, m_info.big_endian, total, 1, dst, issue);
      if (bad != total)
        conversion_error(first + static_cast<Index>(bad) / d, static_cast<Index>(bad) % d, issue);
    } else {
      // Fortran order: element (sample j, feature i) sits at JF(j) + n * i, where JF is the
      // Fortran-order flat index of j's leading multi-index.
      for (Index c = 0; c < count; ++c) {
        const std::uint64_t jf = fortran_leading_index(static_cast<std::uint64_t>(first + c));
        const unsigned char* src = m_data + jf * es;
        const std::size_t bad = detail::convert_elements(
            src, m_info.dtype, m_info.big_endian, static_cast<std::size_t>(d),
            static_cast<std::size_t>(n), dst + c * d, issue);
        if (bad != static_cast<std::size_t>(d))
          conversion_error(first + c, static_cast<Index>(bad), issue);
      }
    }
    if constexpr (std::is_floating_point<S>::value) {
      if (require_finite) {
        const Eigen::Map<const Matrix<S>> block(dst, d, count);
        if (block.allFinite()) return;  // vectorised fast path; locate the culprit otherwise
        for (Index c = 0; c < count; ++c)
          for (Index i = 0; i < d; ++i)
            if (!std::isfinite(block(i, c)))
              detail::throw_format(
                  m_who, m_source, "data", "finite values",
                  detail::str_cat(block(i, c), " at sample ", first + c, ", feature ", i));
      }
    }
  }

  /// \brief Converts the whole tensor to a rows() × cols() matrix of S (see the mapping table).
  template <class S>
  Matrix<S> to_matrix(const ReadOptions& opt = {}) const {
    Matrix<S> out(rows(opt), cols(opt));
    if (out.size() > 0) read_samples<S>(0, m_info.num_samples(), out.data(), opt.require_finite);
    return out;
  }

 private:
  std::uint64_t fortran_leading_index(std::uint64_t j) const {
    // Unravel j over the leading axes in C order, re-ravel in Fortran order.
    const std::size_t k = m_info.shape.size() - 1;  // number of leading axes
    std::uint64_t rem = j, jf = 0, stride = 1;
    std::vector<std::uint64_t> idx(k);
    for (std::size_t a = k; a-- > 0;) {
      const auto s = static_cast<std::uint64_t>(m_info.shape[a]);
      idx[a] = rem % s;
      rem /= s;
    }
    for (std::size_t a = 0; a < k; ++a) {
      jf += idx[a] * stride;
      stride *= static_cast<std::uint64_t>(m_info.shape[a]);
    }
    return jf;
  }
  [[noreturn]] void conversion_error(Index sample, Index feature,
                                     detail::ConvertIssue issue) const {
    detail::throw_format(
        m_who, m_source, "data",
        issue == detail::ConvertIssue::NotIntegral
            ? "integral values (reading into an integer type)"
            : "values in the range of the destination type",
        detail::str_cat(
            issue == detail::ConvertIssue::NotIntegral ? "a non-integral" : "an out-of-range", " ",
            dtype_name(m_info.dtype), " value at sample ", sample, ", feature ", feature));
  }

  const unsigned char* m_data;
  TensorInfo m_info;
  std::string m_source;
  std::string m_who;
};

}  // namespace ergo::io

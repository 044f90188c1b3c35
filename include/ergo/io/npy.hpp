// SPDX-License-Identifier: MIT
#pragma once

/// \file npy.hpp
/// \brief NumPy .npy files (format versions 1.0, 2.0, 3.0): memory-mapped reading, atomic writing.
///
/// \code
/// // acts.npy written by np.save: float32, C order, shape [n, d]
/// ergo::io::NpyFile f("acts.npy");
/// auto X = f.map<float>();                  // d × n view of the file, no copy
/// ergo::MatrixXd Xd = ergo::io::read_npy<double>("acts.npy");   // converted copy
/// ergo::io::write_npy("codes.npy", Z);      // our m × n matrix -> C-order [n, m] float32
/// \endcode
///
/// Readable: every plain numeric dtype (bool, u/int 8–64, float16/32/64), little- or big-endian,
/// C or Fortran order, any rank (see tensor.hpp for how a shape becomes a matrix). Structured,
/// string, complex and object arrays are rejected with a FormatError.
///
/// Validation before any data access: the magic string, the version, the header length against
/// the file size, the header's Python-literal syntax and exactly the keys descr / fortran_order /
/// shape, the shape (non-negative, no overflow in the element or byte count), and the data size
/// against the bytes actually present (both truncated and over-long files are errors).

#include "atomic_write.hpp"
#include "detail/encode.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "mmap.hpp"
#include "tensor.hpp"

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace ergo::io {

/// \brief Parsed .npy header.
struct NpyHeader {
  int major = 1;  ///< format version (1, 2 or 3)
  int minor = 0;
  TensorInfo info;              ///< dtype, shape, order, byte order
  std::size_t data_offset = 0;  ///< first data byte (10 + header length for v1, 12 + ... for v2/3)
};

namespace detail {

/// A tiny parser for the Python dict literal of a .npy header. Bounded by `end`; never reads
/// past it. Accepts what NumPy writes (and Python's repr of it): single- or double-quoted keys,
/// True/False, tuples of non-negative integers (trailing comma, optional 'L' suffix).
class NpyHeaderParser {
 public:
  NpyHeaderParser(const char* b, const char* e, std::string who, std::string path)
      : m_p(b), m_end(e), m_who(std::move(who)), m_path(std::move(path)) {}

  void parse(TensorInfo& info) {
    bool have_descr = false, have_order = false, have_shape = false;
    skip_ws();
    expect('{');
    for (;;) {
      skip_ws();
      if (peek() == '}') {
        ++m_p;
        break;
      }
      const std::string key = parse_string();
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (peek() != '\'' && peek() != '"')
          fail("descr", "a simple dtype string such as '<f4'", "a structured dtype");
        const std::string d = parse_string();
        if (!parse_npy_descr(d, info.dtype, info.big_endian))
          fail("descr", "a numeric or bool dtype such as '<f4', '<f2', '<i8', '|b1'",
               "'" + d + "'");
        have_descr = true;
      } else if (key == "fortran_order") {
        info.fortran_order = parse_bool();
        have_order = true;
      } else if (key == "shape") {
        info.shape = parse_shape();
        have_shape = true;
      } else {
        fail("header", "only the keys 'descr', 'fortran_order', 'shape'", "key '" + key + "'");
      }
      skip_ws();
      if (peek() == ',') {
        ++m_p;
        continue;
      }
      skip_ws();
      expect('}');
      break;
    }
    if (!have_descr || !have_order || !have_shape)
      fail("header", "the keys 'descr', 'fortran_order' and 'shape'",
           std::string("a header missing ") + (!have_descr   ? "'descr'"
                                               : !have_order ? "'fortran_order'"
                                                             : "'shape'"));
  }

 private:
  char peek() const { return m_p < m_end ? *m_p : '\0'; }
  void skip_ws() {
    while (m_p < m_end && std::isspace(static_cast<unsigned char>(*m_p))) ++m_p;
  }
  [[noreturn]] void fail(const std::string& field, const std::string& expected,
                         const std::string& got) const {
    throw_format(m_who, m_path, field, expected, got);
  }
  void expect(char c) {
    if (peek() != c)
      fail("header", std::string("'") + c + "' in the header dict",
           m_p < m_end ? std::string("'") + *m_p + "'" : std::string("end of header"));
    ++m_p;
  }
  std::string parse_string() {
    const char q = peek();
    if (q != '\'' && q != '"')
      fail("header", "a quoted key or string",
           m_p < m_end ? std::string(1, *m_p) : "end of header");
    ++m_p;
    const char* s = m_p;
    while (m_p < m_end && *m_p != q) ++m_p;
    if (m_p >= m_end) fail("header", "a closing quote", "end of header");
    std::string out(s, m_p);
    ++m_p;
    return out;
  }
  bool parse_bool() {
    auto match = [&](const char* w) {
      const std::size_t n = std::strlen(w);
      if (static_cast<std::size_t>(m_end - m_p) >= n && std::memcmp(m_p, w, n) == 0) {
        m_p += n;
        return true;
      }
      return false;
    };
    if (match("True")) return true;
    if (match("False")) return false;
    fail("fortran_order", "True or False", "something else");
  }
  std::vector<std::int64_t> parse_shape() {
    std::vector<std::int64_t> shape;
    expect('(');
    for (;;) {
      skip_ws();
      if (peek() == ')') {
        ++m_p;
        break;
      }
      if (!std::isdigit(static_cast<unsigned char>(peek())))
        fail("shape", "a tuple of non-negative integers",
             m_p < m_end ? std::string("'") + *m_p + "'" : std::string("end of header"));
      std::uint64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        const std::uint64_t digit = static_cast<std::uint64_t>(*m_p - '0');
        if (v > (static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) - digit) / 10)
          fail("shape", "dimensions that fit in 64 bits", "a larger number");
        v = v * 10 + digit;
        ++m_p;
      }
      if (peek() == 'L') ++m_p;  // Python 2 long suffix
      shape.push_back(static_cast<std::int64_t>(v));
      if (shape.size() > 32) fail("shape", "at most 32 dimensions", "more");
      skip_ws();
      if (peek() == ',') {
        ++m_p;
        continue;
      }
      skip_ws();
      expect(')');
      break;
    }
    return shape;
  }

  const char* m_p;
  const char* m_end;
  std::string m_who, m_path;
};

}  // namespace detail

/// \brief Parses and validates the header of a .npy file held in [data, data + size).
/// `path` and `who` only name things in error messages. Throws FormatError.
inline NpyHeader parse_npy_header(const unsigned char* data, std::size_t size,
                                  const std::string& path, const std::string& who = "read_npy") {
  static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (size < 10 || std::memcmp(data, magic, 6) != 0)
    detail::throw_format(
        who, path, "magic", "a .npy file starting with \\x93NUMPY",
        size < 10 ? detail::str_cat("a file of ", size, " bytes") : std::string("other bytes"));
  NpyHeader h;
  h.major = data[6];
  h.minor = data[7];
  if (h.major < 1 || h.major > 3 || h.minor != 0)
    detail::throw_format(who, path, "version", "format version 1.0, 2.0 or 3.0",
                         detail::str_cat(h.major, ".", h.minor));
  std::size_t hlen = 0, prefix = 0;
  if (h.major == 1) {
    hlen = static_cast<std::size_t>(data[8]) | (static_cast<std::size_t>(data[9]) << 8);
    prefix = 10;
  } else {
    if (size < 12)
      detail::throw_format(who, path, "header", "a 4-byte header length", "a truncated file");
    hlen = static_cast<std::size_t>(data[8]) | (static_cast<std::size_t>(data[9]) << 8) |
           (static_cast<std::size_t>(data[10]) << 16) | (static_cast<std::size_t>(data[11]) << 24);
    prefix = 12;
  }
  if (hlen > size - prefix)
    detail::throw_format(
        who, path, "header",
        detail::str_cat("a header length <= ", size - prefix, " (the rest of the file)"), hlen);
  const char* hb = reinterpret_cast<const char*>(data + prefix);
  detail::NpyHeaderParser(hb, hb + hlen, who, path).parse(h.info);
  h.data_offset = prefix + hlen;
  // Validate the size: element count and byte count must not overflow, and must equal what
  // follows the header.
  std::uint64_t n = 1;
  for (auto s : h.info.shape)
    if (detail::mul_overflow(n, static_cast<std::uint64_t>(s), n))
      detail::throw_format(who, path, "shape", "an element count that fits in 64 bits",
                           h.info.describe());
  std::uint64_t bytes = 0;
  if (detail::mul_overflow(n, dtype_size(h.info.dtype), bytes) ||
      bytes > static_cast<std::uint64_t>(std::numeric_limits<Index>::max()))
    detail::throw_format(who, path, "shape", "a byte count that fits in 63 bits",
                         h.info.describe());
  const std::uint64_t avail = size - h.data_offset;
  if (bytes != avail)
    detail::throw_format(
        who, path, "data",
        detail::str_cat(bytes, " bytes after the header for ", h.info.describe()),
        detail::str_cat(
            avail, bytes > avail ? " (file truncated)" : " (file longer than its header says)"));
  return h;
}

/// \brief A memory-mapped .npy file. Views it returns are valid while the NpyFile lives.
class NpyFile {
 public:
  /// \brief Maps and validates `path`. Throws FileError (cannot open/map) or FormatError.
  explicit NpyFile(const std::string& path, const std::string& who = "read_npy")
      : m_file(path), m_who(who) {
    m_header = parse_npy_header(m_file.data(), m_file.size(), path, who);
  }
  const NpyHeader& header() const { return m_header; }
  const TensorInfo& info() const { return m_header.info; }
  const std::string& path() const { return m_file.path(); }
  const MappedFile& file() const { return m_file; }
  /// The data as a TensorView.
  TensorView view() const {
    return TensorView(m_file.data() + m_header.data_offset, m_header.info, m_file.path(), m_who);
  }
  /// \brief True if map<S>() needs no copy (dtype S, little-endian, C order, aligned).
  template <class S>
  bool can_map() const {
    return view().can_map<S>();
  }
  /// \brief Zero-copy view (C-order [n, d] -> d × n). Throws FormatError if !can_map<S>().
  template <class S>
  Eigen::Map<const Matrix<S>> map(const ReadOptions& opt = {}) const {
    return view().map<S>(opt);
  }
  /// \brief Converted copy (any dtype and order; see tensor.hpp for the shape rule).
  template <class S>
  Matrix<S> matrix(const ReadOptions& opt = {}) const {
    return view().to_matrix<S>(opt);
  }

 private:
  MappedFile m_file;
  std::string m_who;
  NpyHeader m_header;
};

/// \brief Reads a .npy file into a matrix of S (converting dtype and order as needed).
/// \return rows × cols per the shape rule: C-order [n, d] -> d × n; [n] -> n × 1 (or 1 × n with
///   opt.vector_as_row).
template <class S>
Matrix<S> read_npy(const std::string& path, const ReadOptions& opt = {}) {
  return NpyFile(path, "read_npy").matrix<S>(opt);
}

/// \brief Reads integer labels (any integer dtype, or floats with integral values) as int32.
/// A 1-D [n] file gives 1 × n (one label per sample); [n, k] gives k × n.
inline IntMatrix read_npy_labels(const std::string& path) {
  ReadOptions opt;
  opt.vector_as_row = true;
  return NpyFile(path, "read_npy_labels").matrix<std::int32_t>(opt);
}

/// \brief How write_npy lays out a column-major rows × cols matrix.
enum class NpyLayout {
  /// C-order [cols, rows]: one row per sample, what NumPy/PyTorch users expect for a d × n
  /// matrix of n samples (the bytes are our column-major storage, written as is).
  SamplesAsRows,
  /// Fortran-order [rows, cols]: the matrix with its own shape (np.load gives an array equal to
  /// the Eigen matrix). Same bytes as SamplesAsRows.
  MatrixShape,
  /// 1-D [size]: for a vector (rows == 1 or cols == 1).
  Vector
};

/// \brief Options for write_npy.
struct NpyWriteOptions {
  NpyLayout layout = NpyLayout::SamplesAsRows;  ///< shape written (default [cols, rows] C order)
  /// Stored dtype. Default: the dtype of the matrix's scalar (exact). Any DType but BF16.
  /// Integer dtypes require integral values in range; F16 rounds to nearest even.
  bool has_dtype = false;
  DType dtype = DType::F32;
};

/// \brief The .npy preamble (magic, version, header length, padded header) for `info`.
/// Version 1.0 when the header fits in 65535 bytes, else 2.0; total length a multiple of 64.
inline std::string npy_preamble(const TensorInfo& info) {
  std::string dict = "{'descr': '" + npy_descr(info.dtype) +
                     "', 'fortran_order': " + (info.fortran_order ? "True" : "False") +
                     ", 'shape': (";
  for (std::size_t k = 0; k < info.shape.size(); ++k)
    dict += std::to_string(info.shape[k]) + (info.shape.size() == 1      ? ","
                                             : k + 1 < info.shape.size() ? ", "
                                                                         : "");
  dict += "), }";
  for (int version = 1; version <= 2; ++version) {
    const std::size_t prefix = version == 1 ? 10 : 12;
    std::size_t total = prefix + dict.size() + 1;  // + '\n'
    total = (total + 63) / 64 * 64;
    const std::size_t hlen = total - prefix;
    if (version == 1 && hlen > 65535) continue;
    std::string out = "\x93NUMPY";
    out += static_cast<char>(version);
    out += '\0';
    for (std::size_t b = 0; b < (version == 1 ? 2u : 4u); ++b)
      out += static_cast<char>((hlen >> (8 * b)) & 0xff);
    out += dict;
    out.append(hlen - dict.size() - 1, ' ');
    out += '\n';
    return out;
  }
  throw_invalid("npy_preamble", "info", "a header shorter than 4 GiB", "a larger one");
}

/// \brief Writes a matrix to a .npy file atomically (temporary file + fsync + rename).
///
/// Default: a d × n matrix of float becomes a C-order float32 array of shape [n, d], which
/// `np.load` returns as n rows of d values — the layout PyTorch/NumPy code uses for activations.
/// \param path  target file (replaced atomically)
/// \param m     any dense Eigen expression, rows × cols
/// \param opt   layout and stored dtype
template <class Derived>
void write_npy(const std::string& path, const Eigen::DenseBase<Derived>& m,
               const NpyWriteOptions& opt = {}) {
  using S = typename Derived::Scalar;
  TensorInfo info;
  info.dtype = opt.has_dtype ? opt.dtype : dtype_of<S>();
  check_arg(info.dtype != DType::BF16, "write_npy", "opt.dtype", "a dtype NumPy can store",
            "bfloat16");
  switch (opt.layout) {
    case NpyLayout::SamplesAsRows:
      info.shape = {static_cast<std::int64_t>(m.cols()), static_cast<std::int64_t>(m.rows())};
      break;
    case NpyLayout::MatrixShape:
      info.shape = {static_cast<std::int64_t>(m.rows()), static_cast<std::int64_t>(m.cols())};
      info.fortran_order = true;
      break;
    case NpyLayout::Vector:
      check_arg(m.rows() == 1 || m.cols() == 1, "write_npy", "m", "a vector for NpyLayout::Vector",
                detail::str_cat(m.rows(), " x ", m.cols()));
      info.shape = {static_cast<std::int64_t>(m.size())};
      break;
  }
  AtomicFile f(path);
  f.write(npy_preamble(info));
  detail::write_encoded(f, m, info.dtype, "write_npy");
  f.commit();
}

}  // namespace ergo::io

// SPDX-License-Identifier: MIT
#pragma once

/// \file safetensors.hpp
/// \brief The .safetensors format (Hugging Face): memory-mapped reading, atomic writing.
///
/// Layout: an 8-byte little-endian header length N, N bytes of JSON
/// `{"name": {"dtype": "F32", "shape": [d_in, d_sae], "data_offsets": [begin, end]}, ...,
///   "__metadata__": {"key": "value", ...}}`, then the data buffer (offsets are relative to it).
///
/// \code
/// ergo::io::SafetensorsFile f("sae_weights.safetensors");
/// auto W = f.map<float>("W_enc");                  // stored [d_in, d_sae] -> d_sae × d_in view
/// ergo::VectorXf b = f.vector<float>("b_enc");     // stored [d_sae]
///
/// ergo::io::SafetensorsWriter w;
/// w.add("W_enc", encoder);                          // m × d matrix -> stored [d, m]
/// w.add_vector("b_enc", b_enc);                     // stored [m]
/// w.set_metadata("format", "pt");
/// w.write("out.safetensors");                       // temporary file + fsync + rename
/// \endcode
///
/// Dtypes: BOOL, U8, I8, U16, I16, U32, I32, U64, I64, F16, BF16, F32, F64 (others, e.g. the
/// F8 variants, are rejected with a FormatError naming the tensor). Every header-declared size
/// is validated against the file before any data is touched: N against the file size and a
/// 100 MB cap, each shape's element and byte counts for overflow, each [begin, end) against the
/// data buffer and against the shape × dtype size, and no two tensors may overlap.

#include "atomic_write.hpp"
#include "detail/encode.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "mmap.hpp"
#include "tensor.hpp"

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ergo::io {

/// \brief One tensor's header entry.
struct SafetensorsEntry {
  std::string name;
  TensorInfo info;          ///< dtype and shape (always C order, little-endian)
  std::uint64_t begin = 0;  ///< data offsets relative to the start of the data buffer
  std::uint64_t end = 0;
};

/// \brief A memory-mapped .safetensors file. Views it returns are valid while it lives.
class SafetensorsFile {
 public:
  /// Largest accepted JSON header (the reference implementation's limit).
  static constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

  /// \brief Maps and validates `path`. Throws FileError (cannot open/map) or FormatError.
  explicit SafetensorsFile(const std::string& path, const std::string& who = "SafetensorsFile")
      : m_file(path), m_who(who) {
    parse();
  }

  const std::string& path() const { return m_file.path(); }
  /// Tensor names in data-offset order.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : m_entries) out.push_back(e.name);
    return out;
  }
  bool contains(const std::string& name) const { return m_index.count(name) > 0; }
  /// \brief The header entry of `name`; throws FormatError if absent (listing what is there).
  const SafetensorsEntry& entry(const std::string& name) const {
    auto it = m_index.find(name);
    if (it == m_index.end()) {
      std::string have;
      for (const auto& e : m_entries) have += (have.empty() ? "" : ", ") + e.name;
      detail::throw_format(m_who, path(), "tensor '" + name + "'", "a tensor of that name",
                           "only [" + have + "]");
    }
    return m_entries[it->second];
  }
  const std::vector<SafetensorsEntry>& entries() const { return m_entries; }
  /// The "__metadata__" map (empty if absent).
  const std::map<std::string, std::string>& metadata() const { return m_metadata; }

  /// \brief View of one tensor.
  TensorView view(const std::string& name) const {
    const SafetensorsEntry& e = entry(name);
    return TensorView(m_data + e.begin, e.info, path() + ":" + name, m_who);
  }
  /// \brief Zero-copy view under the shape rule ([n, d] -> d × n). Throws FormatError unless
  /// the stored dtype is S and the data is aligned for S.
  template <class S>
  Eigen::Map<const Matrix<S>> map(const std::string& name, const ReadOptions& opt = {}) const {
    return view(name).map<S>(opt);
  }
  /// \brief Converted copy under the shape rule.
  template <class S>
  Matrix<S> matrix(const std::string& name, const ReadOptions& opt = {}) const {
    return view(name).to_matrix<S>(opt);
  }
  /// \brief A rank-1 tensor as a vector (a rank-0 tensor gives a vector of size 1).
  template <class S>
  Vector<S> vector(const std::string& name, const ReadOptions& opt = {}) const {
    const TensorView v = view(name);
    if (v.info().shape.size() > 1)
      detail::throw_format(m_who, path() + ":" + name, "shape", "a vector (rank 1)",
                           v.info().describe());
    ReadOptions o = opt;
    o.vector_as_row = false;
    return v.to_matrix<S>(o);
  }

 private:
  void parse() {
    const std::size_t size = m_file.size();
    const unsigned char* d = m_file.data();
    if (size < 8)
      detail::throw_format(m_who, path(), "header",
                           "a file of at least 8 bytes (the header length)",
                           detail::str_cat(size, " bytes"));
    std::uint64_t n = 0;
    for (int b = 7; b >= 0; --b) n = (n << 8) | d[b];
    if (n > kMaxHeaderBytes)
      detail::throw_format(m_who, path(), "header length",
                           detail::str_cat("at most ", kMaxHeaderBytes, " bytes"), n);
    if (n > size - 8)
      detail::throw_format(m_who, path(), "header length",
                           detail::str_cat("at most ", size - 8, " bytes (the rest of the file)"),
                           n);
    const char* hb = reinterpret_cast<const char*>(d + 8);
    const char* he = hb + n;
    if (n == 0 || *hb != '{')
      detail::throw_format(m_who, path(), "header", "a JSON object starting with '{'",
                           n == 0 ? std::string("an empty header") : std::string("other bytes"));
    const nlohmann::json j = nlohmann::json::parse(hb, he, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
      detail::throw_format(m_who, path(), "header", "valid JSON (an object)", "malformed JSON");
    m_data = d + 8 + n;
    const std::uint64_t buffer = size - 8 - n;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& key = it.key();
      const nlohmann::json& v = it.value();
      if (key == "__metadata__") {
        if (!v.is_object())
          detail::throw_format(m_who, path(), "__metadata__", "an object of strings",
                               v.type_name());
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (!m.value().is_string())
            detail::throw_format(m_who, path(), "__metadata__ '" + m.key() + "'", "a string value",
                                 m.value().type_name());
          m_metadata[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      const std::string where = "tensor '" + key + "'";
      if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
          !v.contains("data_offsets"))
        detail::throw_format(m_who, path(), where, "an object with dtype, shape and data_offsets",
                             v.dump());
      SafetensorsEntry e;
      e.name = key;
      const auto& jd = v["dtype"];
      if (!jd.is_string() || !parse_safetensors_dtype(jd.get<std::string>(), e.info.dtype))
        detail::throw_format(
            m_who, path(), where + " dtype",
            "one of BOOL, U8, I8, U16, I16, U32, I32, U64, I64, F16, BF16, F32, F64", jd.dump());
      const auto& js = v["shape"];
      if (!js.is_array() || js.size() > 32)
        detail::throw_format(m_who, path(), where + " shape", "an array of at most 32 integers",
                             js.dump());
      std::uint64_t numel = 1;
      for (const auto& s : js) {
        if (!s.is_number_unsigned() ||
            s.get<std::uint64_t>() >
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
          detail::throw_format(m_who, path(), where + " shape", "non-negative integers", js.dump());
        const std::uint64_t dim = s.get<std::uint64_t>();
        e.info.shape.push_back(static_cast<std::int64_t>(dim));
        if (detail::mul_overflow(numel, dim, numel))
          detail::throw_format(m_who, path(), where + " shape",
                               "an element count that fits in 64 bits", js.dump());
      }
      std::uint64_t nbytes = 0;
      if (detail::mul_overflow(numel, dtype_size(e.info.dtype), nbytes))
        detail::throw_format(m_who, path(), where + " shape", "a byte count that fits in 64 bits",
                             js.dump());
      const auto& jo = v["data_offsets"];
      if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() ||
          !jo[1].is_number_unsigned())
        detail::throw_format(m_who, path(), where + " data_offsets",
                             "[begin, end] non-negative integers", jo.dump());
      e.begin = jo[0].get<std::uint64_t>();
      e.end = jo[1].get<std::uint64_t>();
      if (e.begin > e.end || e.end > buffer)
        detail::throw_format(
            m_who, path(), where + " data_offsets",
            detail::str_cat("0 <= begin <= end <= ", buffer, " (the data buffer size)"),
            jo.dump() + (e.end > buffer ? " (file truncated or header lies)" : ""));
      if (e.end - e.begin != nbytes)
        detail::throw_format(m_who, path(), where,
                             detail::str_cat(nbytes, " bytes for ", e.info.describe()),
                             detail::str_cat(e.end - e.begin, " bytes between its data_offsets"));
      m_entries.push_back(std::move(e));
    }
    std::sort(m_entries.begin(), m_entries.end(),
              [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
                return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
              });
    for (std::size_t k = 0; k + 1 < m_entries.size(); ++k)
      if (m_entries[k].end > m_entries[k + 1].begin)
        detail::throw_format(m_who, path(), "tensor '" + m_entries[k + 1].name + "' data_offsets",
                             "no overlap with another tensor",
                             "an overlap with '" + m_entries[k].name + "'");
    for (std::size_t k = 0; k < m_entries.size(); ++k) m_index[m_entries[k].name] = k;
  }

  MappedFile m_file;
  std::string m_who;
  const unsigned char* m_data = nullptr;
  std::vector<SafetensorsEntry> m_entries;
  std::map<std::string, std::size_t> m_index;
  std::map<std::string, std::string> m_metadata;
};

/// \brief Collects named tensors and metadata, then writes a .safetensors file atomically.
///
/// Shapes follow the mapping of tensor.hpp read backwards: add() stores a rows × cols matrix as
/// C-order [cols, rows] (so a d × n batch becomes [n, d], an m × d encoder becomes [d, m]);
/// add_vector() stores [size]; add_scalar() stores []. Tensors are laid out by decreasing
/// element size, then name, after a header padded to 8 bytes, so every tensor is aligned for a
/// zero-copy read.
class SafetensorsWriter {
 public:
  /// \brief Adds a matrix as C-order [cols, rows] in `dtype` (default: exact dtype of its scalar).
  template <class Derived>
  void add(const std::string& name, const Eigen::DenseBase<Derived>& m,
           std::optional<DType> dtype = std::nullopt) {
    add_shaped(name, m, {static_cast<std::int64_t>(m.cols()), static_cast<std::int64_t>(m.rows())},
               dtype);
  }
  /// \brief Adds a vector (rows == 1 or cols == 1) as a rank-1 tensor [size].
  template <class Derived>
  void add_vector(const std::string& name, const Eigen::DenseBase<Derived>& v,
                  std::optional<DType> dtype = std::nullopt) {
    check_arg(v.rows() == 1 || v.cols() == 1, "SafetensorsWriter::add_vector", name, "a vector",
              detail::str_cat(v.rows(), " x ", v.cols()));
    add_shaped(name, v, {static_cast<std::int64_t>(v.size())}, dtype);
  }
  /// \brief Adds a rank-0 tensor holding `value`.
  template <class T>
  void add_scalar(const std::string& name, T value, std::optional<DType> dtype = std::nullopt) {
    Eigen::Matrix<T, 1, 1> m;
    m(0, 0) = value;
    add_shaped(name, m, {}, dtype);
  }
  /// \brief Adds the column-major elements of `m` under an explicit C-order `shape` whose
  /// product must equal m.size() (e.g. {a, b, d} for a d × (a·b) matrix).
  template <class Derived>
  void add_shaped(const std::string& name, const Eigen::DenseBase<Derived>& m,
                  std::vector<std::int64_t> shape, std::optional<DType> dtype = std::nullopt) {
    using S = typename Derived::Scalar;
    check_arg(!name.empty() && name != "__metadata__", "SafetensorsWriter::add", "name",
              "a non-empty name other than __metadata__", "'" + name + "'");
    for (const auto& t : m_tensors)
      check_arg(t.name != name, "SafetensorsWriter::add", "name", "a name not added before",
                "'" + name + "'");
    std::int64_t numel = 1;
    for (auto s : shape) numel *= s;
    check_arg(numel == static_cast<std::int64_t>(m.size()), "SafetensorsWriter::add", name,
              detail::str_cat(numel, " elements for the given shape"), m.size());
    Pending p;
    p.name = name;
    p.info.dtype = dtype ? *dtype : dtype_of<S>();
    p.info.shape = std::move(shape);
    p.bytes.resize(static_cast<std::size_t>(m.size()) * dtype_size(p.info.dtype));
    const Matrix<S> tmp = m;
    detail::ConvertIssue issue;
    const std::size_t done = detail::encode_elements(
        tmp.data(), static_cast<std::size_t>(tmp.size()), p.info.dtype, p.bytes.data(), issue);
    if (done != static_cast<std::size_t>(tmp.size()))
      throw_invalid("SafetensorsWriter::add", name,
                    detail::str_cat("values representable as ", dtype_name(p.info.dtype)),
                    detail::str_cat(tmp.data()[done], " at flat index ", done));
    m_tensors.push_back(std::move(p));
  }
  /// \brief Sets a "__metadata__" entry.
  void set_metadata(const std::string& key, const std::string& value) { m_metadata[key] = value; }

  /// Number of tensors added.
  std::size_t size() const { return m_tensors.size(); }

  /// \brief The complete file contents.
  std::string to_bytes() const {
    std::string out;
    std::vector<const Pending*> order;
    const std::string header = header_bytes(order);
    out.reserve(header.size() + 8);
    std::uint64_t n = header.size();
    for (int b = 0; b < 8; ++b) out += static_cast<char>((n >> (8 * b)) & 0xff);
    out += header;
    for (const Pending* p : order)
      out.append(reinterpret_cast<const char*>(p->bytes.data()), p->bytes.size());
    return out;
  }

  /// \brief Writes the file atomically (temporary file in the same directory, fsync, rename).
  void write(const std::string& path) const {
    std::vector<const Pending*> order;
    const std::string header = header_bytes(order);
    AtomicFile f(path);
    unsigned char len[8];
    const std::uint64_t n = header.size();
    for (int b = 0; b < 8; ++b) len[b] = static_cast<unsigned char>((n >> (8 * b)) & 0xff);
    f.write(len, 8);
    f.write(header);
    for (const Pending* p : order) f.write(p->bytes.data(), p->bytes.size());
    f.commit();
  }

 private:
  struct Pending {
    std::string name;
    TensorInfo info;
    std::vector<unsigned char> bytes;
  };

  std::string header_bytes(std::vector<const Pending*>& order) const {
    order.clear();
    for (const auto& t : m_tensors) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](const Pending* a, const Pending* b) {
      const std::size_t sa = dtype_size(a->info.dtype), sb = dtype_size(b->info.dtype);
      return sa != sb ? sa > sb : a->name < b->name;
    });
    nlohmann::json j = nlohmann::json::object();
    if (!m_metadata.empty()) j["__metadata__"] = m_metadata;
    std::uint64_t off = 0;
    for (const Pending* p : order) {
      nlohmann::json e;
      e["dtype"] = safetensors_dtype_name(p->info.dtype);
      e["shape"] = p->info.shape;
      e["data_offsets"] = {off, off + p->bytes.size()};
      off += p->bytes.size();
      j[p->name] = std::move(e);
    }
    std::string h = j.dump();
    h.append((8 - h.size() % 8) % 8, ' ');
    return h;
  }

  std::vector<Pending> m_tensors;
  std::map<std::string, std::string> m_metadata;
};

}  // namespace ergo::io

// SPDX-License-Identifier: MIT
#pragma once

/// \file checkpoint.hpp
/// \brief A generic checkpoint: named tensors plus string metadata in one .safetensors file,
/// written atomically. Used for next-token model parameters and for trainer state (optimizer
/// moments, step counters, RNG state), so that training resumes exactly where it stopped.
///
/// \code
/// ergo::io::Checkpoint ck;
/// ck.put_parameters(model.parameters(), "model.");     // any list of {name, value}
/// ck.put_map(adam.state(), "adam.");                    // std::map<std::string, MatrixXd>
/// ck.set_string("rng", rng.state());
/// ck.set_int("step", step);
/// ck.save("run/checkpoint.safetensors");                // temp file + fsync + rename
///
/// auto ck2 = ergo::io::Checkpoint::load("run/checkpoint.safetensors");
/// auto params = model.parameters();
/// ck2.get_parameters(params, "model.");                 // copies into the model's storage
/// adam.set_state(params, ck2.get_map("adam."));
/// rng.set_state(ck2.get_string("rng"));
/// \endcode
///
/// Exactness: a matrix put from float storage is stored as F32, from double as F64, so every
/// value reads back bit for bit. Shapes round-trip exactly (a rows × cols matrix is stored as
/// C-order [cols, rows], the library-wide mapping). The file is an ordinary .safetensors file
/// that `safetensors.torch.load_file` opens; metadata go to "__metadata__".

#include "dtype.hpp"
#include "error.hpp"
#include "safetensors.hpp"

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <Eigen/Core>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

namespace ergo::io {

/// \brief Named matrices + string metadata, saved to / loaded from one .safetensors file.
class Checkpoint {
 public:
  /// Metadata key marking the file as an ergo checkpoint.
  static constexpr const char* kFormatKey = "ergo_format";
  static constexpr const char* kFormatValue = "checkpoint-1";

  // ---- tensors ----

  /// \brief Stores `m` (any shape; float or double, or an integer type) under `name`, replacing
  /// any previous entry. The stored dtype is the exact dtype of the scalar.
  template <class Derived>
  void put(const std::string& name, const Eigen::DenseBase<Derived>& m) {
    using S = typename Derived::Scalar;
    static_assert(std::is_arithmetic<S>::value, "Checkpoint::put: arithmetic scalars only");
    check_arg(!name.empty(), "Checkpoint::put", "name", "a non-empty name", "''");
    Entry e;
    e.value = m.template cast<double>();
    e.dtype = dtype_of<S>();
    if (!std::is_floating_point<S>::value && sizeof(S) == 8) {
      // 64-bit integers above 2^53 are not exact in double: refuse rather than corrupt.
      for (Index k = 0; k < e.value.size(); ++k)
        if (!(std::abs(e.value.data()[k]) <= 9007199254740992.0))
          throw_invalid("Checkpoint::put", name, "64-bit integers of magnitude <= 2^53",
                        e.value.data()[k]);
    }
    m_tensors[name] = std::move(e);
  }
  /// True if a tensor `name` exists.
  bool contains(const std::string& name) const { return m_tensors.count(name) > 0; }
  /// \brief The tensor `name` as a matrix of S (any stored dtype converts). Throws
  /// InvalidArgument if absent.
  template <class S>
  Matrix<S> get(const std::string& name) const {
    return find(name, "Checkpoint::get").value.template cast<S>();
  }
  /// \brief As get(name), checking the shape (rows/cols of -1 match anything).
  template <class S>
  Matrix<S> get(const std::string& name, Index rows, Index cols) const {
    const Entry& e = find(name, "Checkpoint::get");
    check_shape("Checkpoint::get", name, e.value, rows, cols);
    return e.value.template cast<S>();
  }
  /// \brief Copies tensor `name` into `out` (a Map, block or matrix of the same shape).
  template <class Derived>
  void get_into(const std::string& name, Eigen::DenseBase<Derived>& out) const {
    const Entry& e = find(name, "Checkpoint::get_into");
    check_shape("Checkpoint::get_into", name, e.value, out.rows(), out.cols());
    out = e.value.template cast<typename Derived::Scalar>();
  }
  /// Names of all tensors (sorted).
  std::vector<std::string> tensor_names() const {
    std::vector<std::string> out;
    for (const auto& kv : m_tensors) out.push_back(kv.first);
    return out;
  }
  /// Removes a tensor (no-op if absent).
  void erase(const std::string& name) { m_tensors.erase(name); }

  /// \brief Stores every parameter of `list` (any range of objects with `.name` and `.value`,
  /// e.g. ergo::nn::ParameterList) as prefix + name.
  template <class ParamList>
  void put_parameters(const ParamList& list, const std::string& prefix = "") {
    for (const auto& p : list) put(prefix + p.name, p.value);
  }
  /// \brief Copies stored prefix + name into each parameter's `.value` (shape-checked).
  template <class ParamList>
  void get_parameters(ParamList& list, const std::string& prefix = "") const {
    for (auto& p : list) get_into(prefix + p.name, p.value);
  }
  /// \brief Stores a map of named matrices (e.g. nn::Adam::state()) as prefix + key, keeping
  /// the values' dtype (double).
  template <class S>
  void put_map(const std::map<std::string, Matrix<S>>& map, const std::string& prefix = "") {
    for (const auto& kv : map) put(prefix + kv.first, kv.second);
  }
  /// \brief Every tensor whose name starts with `prefix`, with the prefix removed.
  std::map<std::string, Matrix<double>> get_map(const std::string& prefix = "") const {
    std::map<std::string, Matrix<double>> out;
    for (const auto& kv : m_tensors)
      if (kv.first.compare(0, prefix.size(), prefix) == 0)
        out[kv.first.substr(prefix.size())] = kv.second.value;
    return out;
  }

  // ---- metadata ----

  /// \brief Sets a string metadata entry (e.g. the RNG state from Rng::state()).
  void set_string(const std::string& key, const std::string& value) {
    check_arg(!key.empty() && key != kFormatKey, "Checkpoint::set_string", "key",
              std::string("a non-empty key other than ") + kFormatKey, "'" + key + "'");
    m_meta[key] = value;
  }
  bool has_string(const std::string& key) const { return m_meta.count(key) > 0; }
  /// \brief A string metadata entry; throws InvalidArgument if absent.
  const std::string& get_string(const std::string& key) const {
    auto it = m_meta.find(key);
    if (it == m_meta.end())
      throw_invalid("Checkpoint::get_string", key, "a metadata entry of that name", "none");
    return it->second;
  }
  /// \brief Stores an integer exactly (as decimal text).
  void set_int(const std::string& key, long long v) { set_string(key, std::to_string(v)); }
  /// \brief Reads an integer stored by set_int.
  long long get_int(const std::string& key) const {
    const std::string& s = get_string(key);
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    check_arg(!s.empty() && end && *end == '\0', "Checkpoint::get_int", key, "an integer",
              "'" + s + "'");
    return v;
  }
  /// \brief Stores a double exactly (hexadecimal floating text).
  void set_double(const std::string& key, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%a", v);
    set_string(key, buf);
  }
  /// \brief Reads a double stored by set_double (or any decimal text).
  double get_double(const std::string& key) const {
    const std::string& s = get_string(key);
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    check_arg(!s.empty() && end && *end == '\0', "Checkpoint::get_double", key, "a number",
              "'" + s + "'");
    return v;
  }
  /// All metadata.
  const std::map<std::string, std::string>& metadata() const { return m_meta; }

  // ---- files ----

  /// \brief Writes the checkpoint to `path` atomically (temporary file, fsync, rename).
  void save(const std::string& path) const {
    SafetensorsWriter w;
    for (const auto& kv : m_tensors) {
      const Entry& e = kv.second;
      // Stored as C-order [cols, rows]: the exact shape comes back on load.
      w.add(kv.first, e.value, e.dtype);
    }
    for (const auto& kv : m_meta) w.set_metadata(kv.first, kv.second);
    w.set_metadata(kFormatKey, kFormatValue);
    w.write(path);
  }

  /// \brief Reads a checkpoint written by save(). Throws FileError / FormatError; a file that
  /// is valid .safetensors but not an ergo checkpoint is a FormatError.
  static Checkpoint load(const std::string& path) {
    SafetensorsFile f(path, "Checkpoint::load");
    auto it = f.metadata().find(kFormatKey);
    if (it == f.metadata().end() || it->second != kFormatValue)
      detail::throw_format(
          "Checkpoint::load", path, "__metadata__",
          std::string("an ergo checkpoint (") + kFormatKey + " = " + kFormatValue + ")",
          it == f.metadata().end() ? std::string("no ") + kFormatKey : it->second);
    Checkpoint ck;
    for (const auto& e : f.entries()) {
      if (e.info.shape.size() != 2)
        detail::throw_format("Checkpoint::load", path, "tensor '" + e.name + "'", "a rank-2 tensor",
                             e.info.describe());
      Entry en;
      en.dtype = e.info.dtype;
      en.value = f.matrix<double>(e.name);
      ck.m_tensors[e.name] = std::move(en);
    }
    for (const auto& kv : f.metadata())
      if (kv.first != kFormatKey) ck.m_meta[kv.first] = kv.second;
    return ck;
  }

 private:
  struct Entry {
    Matrix<double> value;
    DType dtype = DType::F64;
  };
  const Entry& find(const std::string& name, const char* who) const {
    auto it = m_tensors.find(name);
    if (it == m_tensors.end())
      throw_invalid(who, name, "a tensor of that name in the checkpoint", "none");
    return it->second;
  }

  std::map<std::string, Entry> m_tensors;
  std::map<std::string, std::string> m_meta;
};

}  // namespace ergo::io

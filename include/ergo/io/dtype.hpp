// SPDX-License-Identifier: MIT
#pragma once

/// \file dtype.hpp
/// \brief Element types of .npy and .safetensors files, their names in both formats, and the
/// element conversion routines every reader and writer shares.
///
/// Files are read as they are (float16, bfloat16, float32, float64, signed and unsigned
/// integers of 8 to 64 bits, bool) and converted to the Scalar the caller asks for. Host byte
/// order is little-endian (x86-64, AArch64); big-endian .npy data ('>f4') is byte-swapped.

#include "detail/half.hpp"
#include "error.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

namespace ergo::io {

/// \brief Element type of a stored tensor.
enum class DType { Bool, U8, I8, U16, I16, U32, I32, U64, I64, F16, BF16, F32, F64 };

/// \brief Bytes per element.
inline std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::Bool:
    case DType::U8:
    case DType::I8:
      return 1;
    case DType::U16:
    case DType::I16:
    case DType::F16:
    case DType::BF16:
      return 2;
    case DType::U32:
    case DType::I32:
    case DType::F32:
      return 4;
    case DType::U64:
    case DType::I64:
    case DType::F64:
      return 8;
  }
  return 0;
}

/// \brief True for F16, BF16, F32, F64.
inline bool is_floating(DType t) {
  return t == DType::F16 || t == DType::BF16 || t == DType::F32 || t == DType::F64;
}

/// \brief NumPy-style name: "float32", "bfloat16", "int64", "bool", ...
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::Bool:
      return "bool";
    case DType::U8:
      return "uint8";
    case DType::I8:
      return "int8";
    case DType::U16:
      return "uint16";
    case DType::I16:
      return "int16";
    case DType::U32:
      return "uint32";
    case DType::I32:
      return "int32";
    case DType::U64:
      return "uint64";
    case DType::I64:
      return "int64";
    case DType::F16:
      return "float16";
    case DType::BF16:
      return "bfloat16";
    case DType::F32:
      return "float32";
    case DType::F64:
      return "float64";
  }
  return "?";
}

/// \brief Parses a NumPy-style name ("float32", "bfloat16", "int32", ...; also "torch.float32",
/// as SAELens writes). Returns false if unknown.
inline bool parse_dtype_name(std::string s, DType& out) {
  if (s.rfind("torch.", 0) == 0) s = s.substr(6);
  for (DType t : {DType::Bool, DType::U8, DType::I8, DType::U16, DType::I16, DType::U32, DType::I32,
                  DType::U64, DType::I64, DType::F16, DType::BF16, DType::F32, DType::F64})
    if (s == dtype_name(t)) {
      out = t;
      return true;
    }
  if (s == "half") {
    out = DType::F16;
    return true;
  }
  if (s == "float") {
    out = DType::F32;
    return true;
  }
  if (s == "double") {
    out = DType::F64;
    return true;
  }
  return false;
}

/// \brief safetensors name: "F32", "BF16", "I64", "BOOL", ...
inline const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::Bool:
      return "BOOL";
    case DType::U8:
      return "U8";
    case DType::I8:
      return "I8";
    case DType::U16:
      return "U16";
    case DType::I16:
      return "I16";
    case DType::U32:
      return "U32";
    case DType::I32:
      return "I32";
    case DType::U64:
      return "U64";
    case DType::I64:
      return "I64";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::F32:
      return "F32";
    case DType::F64:
      return "F64";
  }
  return "?";
}

/// \brief Parses a safetensors dtype string; false if unknown (e.g. "F8_E4M3", unsupported).
inline bool parse_safetensors_dtype(const std::string& s, DType& out) {
  for (DType t : {DType::Bool, DType::U8, DType::I8, DType::U16, DType::I16, DType::U32, DType::I32,
                  DType::U64, DType::I64, DType::F16, DType::BF16, DType::F32, DType::F64})
    if (s == safetensors_dtype_name(t)) {
      out = t;
      return true;
    }
  return false;
}

/// \brief NumPy array-protocol descr for little-endian data: "<f4", "|u1", "|b1", ...
/// (bfloat16 has no NumPy descr; asking for it throws InvalidArgument.)
inline std::string npy_descr(DType t) {
  switch (t) {
    case DType::Bool:
      return "|b1";
    case DType::U8:
      return "|u1";
    case DType::I8:
      return "|i1";
    case DType::U16:
      return "<u2";
    case DType::I16:
      return "<i2";
    case DType::U32:
      return "<u4";
    case DType::I32:
      return "<i4";
    case DType::U64:
      return "<u8";
    case DType::I64:
      return "<i8";
    case DType::F16:
      return "<f2";
    case DType::F32:
      return "<f4";
    case DType::F64:
      return "<f8";
    case DType::BF16:
      break;
  }
  throw_invalid("npy_descr", "dtype", "a dtype NumPy can store (not bfloat16)", dtype_name(t));
}

/// \brief Parses a NumPy descr ("<f4", ">i8", "|u1", "=f8", "b1", ...). Returns false for
/// anything that is not a plain numeric or bool type (structured, strings, complex, objects).
inline bool parse_npy_descr(const std::string& s, DType& out, bool& big_endian) {
  if (s.size() < 2) return false;
  std::size_t p = 0;
  big_endian = false;
  if (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=') {
    big_endian = s[0] == '>';
    p = 1;
  }
  if (s.size() != p + 2) return false;
  const char kind = s[p], width = s[p + 1];
  struct Row {
    char k, w;
    DType t;
  };
  static const Row rows[] = {
      {'b', '1', DType::Bool}, {'u', '1', DType::U8},  {'i', '1', DType::I8},
      {'u', '2', DType::U16},  {'i', '2', DType::I16}, {'u', '4', DType::U32},
      {'i', '4', DType::I32},  {'u', '8', DType::U64}, {'i', '8', DType::I64},
      {'f', '2', DType::F16},  {'f', '4', DType::F32}, {'f', '8', DType::F64}};
  for (const Row& r : rows)
    if (r.k == kind && r.w == width) {
      out = r.t;
      if (dtype_size(r.t) == 1) big_endian = false;
      return true;
    }
  return false;
}

/// \brief The DType that stores a C++ scalar exactly: float -> F32, double -> F64, int32 -> I32...
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same<T, bool>::value)
    return DType::Bool;
  else if constexpr (std::is_same<T, float>::value)
    return DType::F32;
  else if constexpr (std::is_same<T, double>::value)
    return DType::F64;
  else if constexpr (std::is_integral<T>::value && std::is_signed<T>::value && sizeof(T) == 1)
    return DType::I8;
  else if constexpr (std::is_integral<T>::value && std::is_signed<T>::value && sizeof(T) == 2)
    return DType::I16;
  else if constexpr (std::is_integral<T>::value && std::is_signed<T>::value && sizeof(T) == 4)
    return DType::I32;
  else if constexpr (std::is_integral<T>::value && std::is_signed<T>::value && sizeof(T) == 8)
    return DType::I64;
  else if constexpr (std::is_integral<T>::value && sizeof(T) == 1)
    return DType::U8;
  else if constexpr (std::is_integral<T>::value && sizeof(T) == 2)
    return DType::U16;
  else if constexpr (std::is_integral<T>::value && sizeof(T) == 4)
    return DType::U32;
  else if constexpr (std::is_integral<T>::value && sizeof(T) == 8)
    return DType::U64;
  else
    static_assert(sizeof(T) == 0, "ergo::io::dtype_of: unsupported scalar type");
}

namespace detail {

template <class T>
T load_le(const unsigned char* p, bool swap) {
  T v;
  if (!swap) {
    std::memcpy(&v, p, sizeof(T));
  } else {
    unsigned char b[sizeof(T)];
    for (std::size_t i = 0; i < sizeof(T); ++i) b[i] = p[sizeof(T) - 1 - i];
    std::memcpy(&v, b, sizeof(T));
  }
  return v;
}

/// Result of converting one stored element to a destination type.
enum class ConvertIssue { None, NotIntegral, OutOfRange };

/// Converts an arithmetic value `v` to destination type To. Float -> int requires an integral
/// value in range; int -> narrower int requires range; anything -> float is a plain cast.
template <class To, class From>
ConvertIssue convert_value(From v, To& out) {
  if constexpr (std::is_floating_point<To>::value) {
    out = static_cast<To>(v);
    return ConvertIssue::None;
  } else if constexpr (std::is_same<To, bool>::value) {
    out = v != From(0);
    return ConvertIssue::None;
  } else if constexpr (std::is_floating_point<From>::value) {
    if (!(std::trunc(v) == v)) return ConvertIssue::NotIntegral;  // also NaN / inf
    // Range check in long double keeps 64-bit bounds exact enough for a range test.
    const long double lv = static_cast<long double>(v);
    if (lv < static_cast<long double>(std::numeric_limits<To>::min()) ||
        lv > static_cast<long double>(std::numeric_limits<To>::max()))
      return ConvertIssue::OutOfRange;
    out = static_cast<To>(v);
    return ConvertIssue::None;
  } else {  // integral -> integral
    if constexpr (std::is_same<From, bool>::value) {
      out = static_cast<To>(v ? 1 : 0);
      return ConvertIssue::None;
    } else {
      const bool neg = std::is_signed<From>::value && v < From(0);
      if (neg) {
        if (!std::is_signed<To>::value ||
            static_cast<long long>(v) < static_cast<long long>(std::numeric_limits<To>::min()))
          return ConvertIssue::OutOfRange;
      } else if (static_cast<unsigned long long>(v) >
                 static_cast<unsigned long long>(std::numeric_limits<To>::max())) {
        return ConvertIssue::OutOfRange;
      }
      out = static_cast<To>(v);
      return ConvertIssue::None;
    }
  }
}

/// Converts `n` stored elements of type `t` starting at `src` (spaced `src_stride` elements
/// apart) into `dst[0..n)`. Returns the index of the first element that could not be converted
/// (and sets `issue`), or n on success.
template <class To>
std::size_t convert_elements(const unsigned char* src, DType t, bool swap, std::size_t n,
                             std::size_t src_stride, To* dst, ConvertIssue& issue) {
  issue = ConvertIssue::None;
  const std::size_t es = dtype_size(t);
  const std::size_t step = es * src_stride;
  // Fast paths: same type, contiguous, native order.
  if (!swap && src_stride == 1 && t == dtype_of<To>()) {
    if (n) std::memcpy(dst, src, n * sizeof(To));
    return n;
  }
  auto loop = [&](auto load) -> std::size_t {
    for (std::size_t i = 0; i < n; ++i) {
      issue = convert_value(load(src + i * step), dst[i]);
      if (issue != ConvertIssue::None) return i;
    }
    return n;
  };
  switch (t) {
    case DType::Bool:
      return loop([](const unsigned char* p) { return *p != 0; });
    case DType::U8:
      return loop([](const unsigned char* p) { return static_cast<std::uint8_t>(*p); });
    case DType::I8:
      return loop([](const unsigned char* p) { return load_le<std::int8_t>(p, false); });
    case DType::U16:
      return loop([swap](const unsigned char* p) { return load_le<std::uint16_t>(p, swap); });
    case DType::I16:
      return loop([swap](const unsigned char* p) { return load_le<std::int16_t>(p, swap); });
    case DType::U32:
      return loop([swap](const unsigned char* p) { return load_le<std::uint32_t>(p, swap); });
    case DType::I32:
      return loop([swap](const unsigned char* p) { return load_le<std::int32_t>(p, swap); });
    case DType::U64:
      return loop([swap](const unsigned char* p) { return load_le<std::uint64_t>(p, swap); });
    case DType::I64:
      return loop([swap](const unsigned char* p) { return load_le<std::int64_t>(p, swap); });
    case DType::F16:
      return loop([swap](const unsigned char* p) {
        return half_to_float(load_le<std::uint16_t>(p, swap));
      });
    case DType::BF16:
      return loop([swap](const unsigned char* p) {
        return bfloat16_to_float(load_le<std::uint16_t>(p, swap));
      });
    case DType::F32:
      return loop([swap](const unsigned char* p) { return load_le<float>(p, swap); });
    case DType::F64:
      return loop([swap](const unsigned char* p) { return load_le<double>(p, swap); });
  }
  return 0;
}

/// Encodes `n` values (of any arithmetic type) as little-endian elements of type `t` at `dst`.
/// Float -> integer storage requires integral in-range values; returns the index of the first
/// failure (and sets `issue`) or n.
template <class From>
std::size_t encode_elements(const From* src, std::size_t n, DType t, unsigned char* dst,
                            ConvertIssue& issue) {
  issue = ConvertIssue::None;
  const std::size_t es = dtype_size(t);
  if (t == dtype_of<From>()) {
    if (n) std::memcpy(dst, src, n * sizeof(From));
    return n;
  }
  auto loop = [&](auto store) -> std::size_t {
    for (std::size_t i = 0; i < n; ++i)
      if (!store(src[i], dst + i * es)) return i;
    return n;
  };
  auto int_store = [&](auto tag) {
    using T = decltype(tag);
    return loop([&issue](From v, unsigned char* p) {
      T out{};
      issue = convert_value(v, out);
      if (issue != ConvertIssue::None) return false;
      std::memcpy(p, &out, sizeof(T));
      return true;
    });
  };
  switch (t) {
    case DType::Bool:
      return loop([](From v, unsigned char* p) {
        *p = v != From(0) ? 1 : 0;
        return true;
      });
    case DType::U8:
      return int_store(std::uint8_t{});
    case DType::I8:
      return int_store(std::int8_t{});
    case DType::U16:
      return int_store(std::uint16_t{});
    case DType::I16:
      return int_store(std::int16_t{});
    case DType::U32:
      return int_store(std::uint32_t{});
    case DType::I32:
      return int_store(std::int32_t{});
    case DType::U64:
      return int_store(std::uint64_t{});
    case DType::I64:
      return int_store(std::int64_t{});
    case DType::F16:
      return loop([](From v, unsigned char* p) {
        const std::uint16_t h = double_to_half(static_cast<double>(v));
        std::memcpy(p, &h, 2);
        return true;
      });
    case DType::BF16:
      return loop([](From v, unsigned char* p) {
        const std::uint16_t h = double_to_bfloat16(static_cast<double>(v));
        std::memcpy(p, &h, 2);
        return true;
      });
    case DType::F32:
      return loop([](From v, unsigned char* p) {
        const float f = static_cast<float>(v);
        std::memcpy(p, &f, 4);
        return true;
      });
    case DType::F64:
      return loop([](From v, unsigned char* p) {
        const double f = static_cast<double>(v);
        std::memcpy(p, &f, 8);
        return true;
      });
  }
  return 0;
}

/// a * b with overflow detection on non-negative 64-bit values.
inline bool mul_overflow(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return true;
  out = a * b;
  return false;
}

}  // namespace detail
}  // namespace ergo::io

// SPDX-License-Identifier: MIT
#pragma once

/// \file half.hpp
/// \brief IEEE binary16 (float16) and bfloat16 <-> float/double, bit-exact, round to nearest even.
///
/// Both formats are "small floats" with a sign bit, `E` exponent bits and `M` mantissa bits:
/// float16 has E = 5, M = 10 (bias 15); bfloat16 has E = 8, M = 7 (bias 127). Decoding is exact
/// in float (every float16 and bfloat16 value is a float). Encoding rounds a double to the
/// nearest representable value, ties to even, overflowing to ±inf and keeping NaN a NaN, so that
/// float -> half -> float is the identity on every half value and double -> half is correctly
/// rounded (no double rounding through float).

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace ergo::io::detail {

/// Encodes `x` as a small float with `exp_bits` exponent and `man_bits` mantissa bits.
inline std::uint16_t encode_small_float(double x, int exp_bits, int man_bits) {
  const int bias = (1 << (exp_bits - 1)) - 1;
  const std::uint32_t exp_all = (1u << exp_bits) - 1u;
  const std::uint32_t sign = std::signbit(x) ? (1u << (exp_bits + man_bits)) : 0u;
  if (std::isnan(x))  // quiet NaN: all-ones exponent, top mantissa bit
    return static_cast<std::uint16_t>(sign | (exp_all << man_bits) | (1u << (man_bits - 1)));
  const double a = std::fabs(x);
  if (std::isinf(a)) return static_cast<std::uint16_t>(sign | (exp_all << man_bits));
  if (a < std::ldexp(1.0, 1 - bias)) {
    // Subnormal range: units of 2^(1 - bias - man_bits); the scaling is exact in double and
    // nearbyint rounds ties to even. A result of 2^man_bits is the smallest normal, whose bit
    // pattern is exactly that integer.
    const double m = std::nearbyint(std::ldexp(a, bias - 1 + man_bits));
    return static_cast<std::uint16_t>(sign | static_cast<std::uint32_t>(m));
  }
  int e2 = 0;
  (void)std::frexp(a, &e2);                     // a = f · 2^e2 with f in [0.5, 1)
  int e = e2 - 1;                               // a = (1 + frac) · 2^e
  const double frac = std::ldexp(a, -e) - 1.0;  // exact
  double m = std::nearbyint(std::ldexp(frac, man_bits));
  if (m >= std::ldexp(1.0, man_bits)) {  // rounded up to the next binade
    m = 0.0;
    ++e;
  }
  const int biased = e + bias;
  if (biased >= static_cast<int>(exp_all))
    return static_cast<std::uint16_t>(sign | (exp_all << man_bits));
  return static_cast<std::uint16_t>(sign | (static_cast<std::uint32_t>(biased) << man_bits) |
                                    static_cast<std::uint32_t>(m));
}

/// Decodes a small float (exact).
inline double decode_small_float(std::uint16_t bits, int exp_bits, int man_bits) {
  const int bias = (1 << (exp_bits - 1)) - 1;
  const std::uint32_t exp_all = (1u << exp_bits) - 1u;
  const bool neg = (bits >> (exp_bits + man_bits)) & 1u;
  const std::uint32_t e = (static_cast<std::uint32_t>(bits) >> man_bits) & exp_all;
  const std::uint32_t m = static_cast<std::uint32_t>(bits) & ((1u << man_bits) - 1u);
  double v;
  if (e == exp_all)
    v = m ? std::nan("") : HUGE_VAL;
  else if (e == 0)
    v = std::ldexp(static_cast<double>(m), 1 - bias - man_bits);
  else
    v = std::ldexp(static_cast<double>(m | (1u << man_bits)),
                   static_cast<int>(e) - bias - man_bits);
  return neg ? -v : v;
}

/// float16 bits of `x`, correctly rounded.
inline std::uint16_t double_to_half(double x) {
  return encode_small_float(x, 5, 10);
}
/// bfloat16 bits of `x`, correctly rounded.
inline std::uint16_t double_to_bfloat16(double x) {
  return encode_small_float(x, 8, 7);
}

/// float16 -> float through a 65536-entry table built once (the hot path of f16 activations).
inline float half_to_float(std::uint16_t h) {
  static const std::array<float, 65536> table = [] {
    std::array<float, 65536> t{};
    for (std::uint32_t i = 0; i < 65536u; ++i)
      t[i] = static_cast<float>(decode_small_float(static_cast<std::uint16_t>(i), 5, 10));
    return t;
  }();
  return table[h];
}

/// bfloat16 -> float: the bfloat16 bits are the top half of the float's bits.
inline float bfloat16_to_float(std::uint16_t b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace ergo::io::detail

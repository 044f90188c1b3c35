// SPDX-License-Identifier: MIT
#pragma once

/// \file params.hpp
/// \brief SparseAutoencoderParams: the architecture, the shape, the settings every architecture
/// shares, and one member per architecture with its own hyper-parameters; hyper-parameters by
/// name (for files and the command line).

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "registry.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ergo::sae {

/// \brief Shape and architecture hyper-parameters of a SparseAutoencoder (training settings are
/// in TrainerParams). Every field has a default; check() validates them (the constructor calls
/// it).
///
/// \code
/// ergo::sae::SparseAutoencoderParams p;
/// p.architecture = ergo::sae::Architecture::TopK;
/// p.d_in = 64; p.d_sae = 512;
/// p.topk.k = 8;                  // only the active architecture's member is used
/// \endcode
struct SparseAutoencoderParams {
  Architecture architecture = Architecture::TopK;  ///< which SAE. Default TopK.
  Index d_in = 0;                                  ///< input dimension d (> 0; must be set)
  Index d_sae = 0;  ///< number of latents m (> 0, < 2^31; must be set)
  /// Keep decoder columns at unit norm (the trainer removes the gradient component parallel to
  /// each column and renormalises after every step). Default true.
  bool unit_norm_decoder = true;
  /// Subtract b_dec from the input before encoding (pre-encoder bias). Default true; the
  /// Unmixer ignores it (its encoder is purely linear, as in ConCA).
  bool apply_b_dec_to_input = true;
  /// Encoder initialisation W_enc = encoder_init_scale · W_decᵀ (> 0). Default 1.
  double encoder_init_scale = 1.0;

  // One member per architecture (the registry's "params member" column); documented in
  // arch/<name>.hpp.
  arch::ReluL1::Params relu_l1;         ///< decoder_norm_penalty
  arch::TopK::Params topk;              ///< k
  arch::BatchTopK::Params batchtopk;    ///< k
  arch::JumpReLU::Params jumprelu;      ///< init_threshold, bandwidth
  arch::PAnneal::Params p_anneal;       ///< p_epsilon
  arch::Structured::Params structured;  ///< p_epsilon, dense_width
  arch::Unmixer::Params unmixer;        ///< activation, norm, groups, exp_clamp, norm_eps

  /// \brief Throws InvalidArgument naming the field ("SparseAutoencoderParams::check(): topk.k:
  /// expected a value in [1, d_sae = 512], got 0"); only the active architecture's member is
  /// checked.
  void check() const;
};

/// \brief Calls f(detail::ArchitectureTag<arch::A>{}, p.member, "member") for the architecture
/// of `p` (P is SparseAutoencoderParams, const or not) and returns its result.
template <class P, class F>
decltype(auto) visit_params(P& p, F&& f) {
  static_assert(std::is_same_v<std::remove_const_t<P>, SparseAutoencoderParams>,
                "visit_params takes a SparseAutoencoderParams");
  switch (p.architecture) {
#define ERGO_SAE_PARAMS_CASE(A, member, name, saelens, lambda) \
  case Architecture::A:                                        \
    return f(detail::ArchitectureTag<arch::A>{}, p.member, #member);
    ERGO_SAE_ARCHITECTURES(ERGO_SAE_PARAMS_CASE)
#undef ERGO_SAE_PARAMS_CASE
  }
  throw_invalid("visit_params", "p.architecture", "a registered Architecture",
                static_cast<int>(p.architecture));
}

inline void SparseAutoencoderParams::check() const {
  const std::string who = "SparseAutoencoderParams::check";
  check_arg(d_in > 0, who, "d_in", "> 0", d_in);
  check_arg(d_sae > 0, who, "d_sae", "> 0", d_sae);
  check_arg(d_sae <= Index(2147483647), who, "d_sae", "< 2^31", d_sae);
  check_positive(who, "encoder_init_scale", encoder_init_scale);
  visit_params(*this, [&](auto, const auto& ap, const char* member) {
    ap.check(who, std::string(member) + ".", d_in, d_sae);
  });
}

namespace detail {

/// Shortest decimal form of v that reads back exactly (15 to 17 significant digits).
inline std::string format_double(double v) {
  char buf[32];
  for (int prec = 15; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

inline std::string option_to_string(bool v) {
  return v ? "true" : "false";
}
inline std::string option_to_string(Index v) {
  return std::to_string(v);
}
inline std::string option_to_string(double v) {
  return format_double(v);
}
template <class E, class = std::enable_if_t<std::is_enum_v<E>>>
std::string option_to_string(E v) {
  return to_string(v);
}

// Parsers: false when `s` is not a complete value of the type.
inline bool option_from_string(const std::string& s, bool& v) {
  const bool t = s == "true" || s == "1", f = s == "false" || s == "0";
  if (t || f) v = t;
  return t || f;
}
inline bool option_from_string(const std::string& s, Index& v) {
  char* end = nullptr;
  const long long r = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0') return false;
  v = static_cast<Index>(r);
  return true;
}
inline bool option_from_string(const std::string& s, double& v) {
  char* end = nullptr;
  const double r = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0') return false;
  v = r;
  return true;
}
template <class E, class = std::enable_if_t<std::is_enum_v<E>>>
bool option_from_string(const std::string& s, E& v) {
  return from_string(s, v);
}

inline const char* option_kind(bool) {
  return "true or false";
}
inline const char* option_kind(Index) {
  return "an integer";
}
inline const char* option_kind(double) {
  return "a number";
}
template <class E, class = std::enable_if_t<std::is_enum_v<E>>>
const char* option_kind(E v) {
  return choices(v);
}

}  // namespace detail

/// \brief Names of the hyper-parameters of p's architecture (e.g. {"k"} for TopK).
inline std::vector<std::string> option_names(const SparseAutoencoderParams& p) {
  std::vector<std::string> out;
  visit_params(p, [&](auto tag, const auto& ap, const char*) {
    using A = typename decltype(tag)::type;
    A::Params::for_each(ap, [&](const char* name, const auto&) { out.push_back(name); });
  });
  return out;
}

/// \brief True when p's architecture has a hyper-parameter called `name`.
inline bool has_option(const SparseAutoencoderParams& p, const std::string& name) {
  for (const auto& n : option_names(p))
    if (n == name) return true;
  return false;
}

/// \brief The hyper-parameter `name` of p's architecture as text ("32", "0.01", "softplus",
/// "true"); throws InvalidArgument naming the architecture's hyper-parameters if it has none
/// called so.
inline std::string get_option(const SparseAutoencoderParams& p, const std::string& name) {
  std::string out;
  bool found = false;
  visit_params(p, [&](auto tag, const auto& ap, const char*) {
    using A = typename decltype(tag)::type;
    A::Params::for_each(ap, [&](const char* n, const auto& v) {
      if (n == name) {
        out = detail::option_to_string(v);
        found = true;
      }
    });
  });
  if (!found) {
    std::string names;
    for (const auto& n : option_names(p)) names += (names.empty() ? "" : ", ") + n;
    throw_invalid("get_option", "name",
                  ergo::detail::str_cat("a hyper-parameter of ", to_string(p.architecture), " (",
                                        names.empty() ? "it has none" : names, ")"),
                  "\"" + name + "\"");
  }
  return out;
}

/// \brief Sets the hyper-parameter `name` of p's architecture from text (see get_option);
/// throws InvalidArgument naming the architecture's hyper-parameters for an unknown name, and
/// the expected kind of value for text that is not one. Does not check the range (check() does).
inline void set_option(SparseAutoencoderParams& p, const std::string& name,
                       const std::string& value) {
  const char* who = "set_option";
  bool found = false;
  visit_params(p, [&](auto tag, auto& ap, const char* member) {
    using A = typename decltype(tag)::type;
    A::Params::for_each(ap, [&](const char* n, auto& v) {
      if (n != name) return;
      found = true;
      if (!detail::option_from_string(value, v))
        throw_invalid(who, std::string(member) + "." + name, detail::option_kind(v),
                      "\"" + value + "\"");
    });
  });
  if (!found) get_option(p, name);  // throws the message naming the hyper-parameters
}

/// \brief Every hyper-parameter of p's architecture as (name, text) pairs, in declaration order.
inline std::vector<std::pair<std::string, std::string>> options(const SparseAutoencoderParams& p) {
  std::vector<std::pair<std::string, std::string>> out;
  visit_params(p, [&](auto tag, const auto& ap, const char*) {
    using A = typename decltype(tag)::type;
    A::Params::for_each(ap, [&](const char* n, const auto& v) {
      out.emplace_back(n, detail::option_to_string(v));
    });
  });
  return out;
}

}  // namespace ergo::sae

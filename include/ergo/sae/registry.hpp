// SPDX-License-Identifier: MIT
#pragma once

/// \file registry.hpp
/// \brief The registry of SAE architectures: one table row per architecture (its enumerator,
/// policy class, parameter member, names and default sparsity coefficient), and the lookups and
/// run-time dispatch built from it.
///
/// Adding an architecture is one new header arch/<name>.hpp (its class, see arch/base.hpp) and
/// one row of ERGO_SAE_ARCHITECTURES below (with the header's #include), plus the member holding
/// its hyper-parameters in SparseAutoencoderParams; docs/sae.md, "Adding an architecture", walks
/// through it.
///
/// \code
/// ergo::sae::Architecture a = ergo::sae::architecture_from_string("jumprelu");
/// const ergo::sae::ArchitectureInfo& row = ergo::sae::architecture_info(a);
/// // row.saelens_name: "jumprelu"; row.default_sparsity_coefficient: 1; row.traits
/// \endcode

#include "../core/error.hpp"
#include "arch/base.hpp"
#include "arch/batch_topk.hpp"
#include "arch/jumprelu.hpp"
#include "arch/p_anneal.hpp"
#include "arch/relu_l1.hpp"
#include "arch/structured.hpp"
#include "arch/topk.hpp"
#include "arch/unmixer.hpp"

#include <iterator>
#include <string>

/// \brief The architecture table: X(Enumerator, params member, ergo name, SAELens name, default λ).
///
/// - Enumerator: the value of sae::Architecture, and the policy class sae::arch::Enumerator;
/// - params member: the field of SparseAutoencoderParams with its hyper-parameters;
/// - ergo name: the name in files and on the command line (to_string, architecture_from_string);
/// - SAELens name: the SAELens architecture whose inference function is the same ("" if none);
///   BatchTopK is exported as "jumprelu" with its threshold, as SAELens does, and p-annealing
///   infers like "standard";
/// - default λ: the sparsity coefficient for inputs scaled to E‖x‖ = √d and a unit-norm decoder
///   (TrainerParams::sparsity_coefficient < 0). ReluL1 3 (L1), JumpReLU 1 (per active latent:
///   the L0 penalty), PAnneal 3 (initial λ of L_p^p), Structured 3 (its sparse branch), Unmixer
///   0.3 (on Σ|g(ẑ)|); TopK and BatchTopK 0 (sparsity is fixed by k). Chosen on the planted
///   dictionary of apps/sae_concepts (d = 64, true L0 = 8), where they give L0 between 8 and
///   15; sweep λ to hit a target L0 on other data.
#define ERGO_SAE_ARCHITECTURES(X)                       \
  X(ReluL1, relu_l1, "relu_l1", "standard", 3.0)        \
  X(TopK, topk, "topk", "topk", 0.0)                    \
  X(BatchTopK, batchtopk, "batchtopk", "jumprelu", 0.0) \
  X(JumpReLU, jumprelu, "jumprelu", "jumprelu", 1.0)    \
  X(PAnneal, p_anneal, "p_anneal", "standard", 3.0)     \
  X(Structured, structured, "structured", "", 3.0)      \
  X(Unmixer, unmixer, "unmixer", "", 0.3)

namespace ergo::sae {

/// \brief SAE architecture (the activation and the sparsity penalty it is trained with): ReluL1,
/// TopK, BatchTopK, JumpReLU, PAnneal, Structured, Unmixer (the rows of the registry; each
/// documented in its class sae::arch::<Enumerator>).
enum class Architecture {
#define ERGO_SAE_ENUMERATOR(A, member, name, saelens, lambda) A,
  ERGO_SAE_ARCHITECTURES(ERGO_SAE_ENUMERATOR)
#undef ERGO_SAE_ENUMERATOR
};

/// \brief One row of the registry, with the traits of its policy class.
struct ArchitectureInfo {
  Architecture architecture;            ///< the enumerator
  const char* name;                     ///< ergo's name ("topk")
  const char* saelens_name;             ///< SAELens's architecture, "" if none
  double default_sparsity_coefficient;  ///< λ when TrainerParams::sparsity_coefficient < 0
  Traits traits;                        ///< arch::<Enumerator>::traits
};

/// \brief The registry, in the order of the Architecture enumerators.
inline constexpr ArchitectureInfo kArchitectures[] = {
#define ERGO_SAE_ROW(A, member, name, saelens, lambda) \
  {Architecture::A, name, saelens, lambda, arch::A::traits},
    ERGO_SAE_ARCHITECTURES(ERGO_SAE_ROW)
#undef ERGO_SAE_ROW
};

/// Number of registered architectures.
inline constexpr int kArchitectureCount = static_cast<int>(std::size(kArchitectures));

namespace detail {
/// A type tag carrying an architecture's policy class to a generic lambda.
template <class A>
struct ArchitectureTag {
  using type = A;
};

}  // namespace detail

/// \brief The registered names, comma-separated ("relu_l1, topk, batchtopk, ..."), or with
/// `saelens` the SAELens names that occur ("standard, topk, jumprelu"); for help texts and
/// error messages.
inline std::string architecture_names(bool saelens = false) {
  std::string out;
  for (int i = 0; i < kArchitectureCount; ++i) {
    const char* n = saelens ? kArchitectures[i].saelens_name : kArchitectures[i].name;
    bool seen = n[0] == '\0';
    for (int j = 0; j < i && !seen; ++j)
      seen = std::string(n) == (saelens ? kArchitectures[j].saelens_name : kArchitectures[j].name);
    if (!seen) out += (out.empty() ? "" : ", ") + std::string(n);
  }
  return out;
}

/// \brief The registry row of `a`; throws InvalidArgument for a value outside the enum.
inline const ArchitectureInfo& architecture_info(Architecture a) {
  const int i = static_cast<int>(a);
  check_arg(i >= 0 && i < kArchitectureCount, "architecture_info", "a",
            ergo::detail::str_cat("an Architecture in [0, ", kArchitectureCount, ")"), i);
  return kArchitectures[i];
}

/// \brief ergo's name of an architecture: "relu_l1", "topk", "batchtopk", "jumprelu",
/// "p_anneal", "structured", "unmixer".
inline const char* to_string(Architecture a) {
  return architecture_info(a).name;
}

/// \brief The architecture called `s` (a name of to_string(Architecture)); throws
/// InvalidArgument naming the registered names otherwise.
inline Architecture architecture_from_string(const std::string& s) {
  for (const auto& a : kArchitectures)
    if (s == a.name) return a.architecture;
  throw_invalid("architecture_from_string", "s", "one of " + architecture_names(), "\"" + s + "\"");
}

/// \brief The SAELens architecture with the same inference function ("standard", "topk",
/// "jumprelu"), or "" when SAELens has none.
inline const char* saelens_architecture(Architecture a) {
  return architecture_info(a).saelens_name;
}

/// \brief The architecture a SAELens file of architecture `s` loads as ("standard" → ReluL1,
/// "topk" → TopK, "jumprelu" → JumpReLU: the rows with traits.saelens_native); throws
/// InvalidArgument naming the SAELens names ergo reads otherwise.
inline Architecture architecture_from_saelens(const std::string& s) {
  for (const auto& a : kArchitectures)
    if (a.traits.saelens_native && s == a.saelens_name) return a.architecture;
  throw_invalid("architecture_from_saelens", "s", "one of " + architecture_names(/*saelens=*/true),
                "\"" + s + "\"");
}

/// \brief Default sparsity coefficient λ of an architecture (the registry's column; see
/// ERGO_SAE_ARCHITECTURES).
inline double default_sparsity_coefficient(Architecture a) {
  return architecture_info(a).default_sparsity_coefficient;
}

/// \brief Calls f(detail::ArchitectureTag<arch::A>{}) for the policy class A of `a` and returns
/// its result (every branch must return the same type).
template <class F>
decltype(auto) visit_architecture(Architecture a, F&& f) {
  switch (a) {
#define ERGO_SAE_CASE(A, member, name, saelens, lambda) \
  case Architecture::A:                                 \
    return f(detail::ArchitectureTag<arch::A>{});
    ERGO_SAE_ARCHITECTURES(ERGO_SAE_CASE)
#undef ERGO_SAE_CASE
  }
  throw_invalid("visit_architecture", "a", "a registered Architecture", static_cast<int>(a));
}

}  // namespace ergo::sae

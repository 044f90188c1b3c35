// SPDX-License-Identifier: MIT
#pragma once

/// \file serialize.hpp
/// \brief Saving and loading ergo SAEs: the parameters as JSON, ergo's native file (every
/// architecture), and conversion to and from the SAE layouts io reads and writes (SAELens,
/// sparsify, dictionary_learning).
///
/// - The native file "ergo_sae.safetensors" holds every named weight of any architecture
///   (Structured and Unmixer included), the SparseAutoencoderParams as JSON in the metadata
///   ("ergo_sae_params"), the folded input scale and a free-form "extra" JSON object.
/// - A SAELens folder (cfg.json + sae_weights.safetensors) can be written for the architectures
///   SAELens has ("standard", "topk", "jumprelu"; BatchTopK exports as "jumprelu"); ergo's own
///   parameters go under cfg.json's "ergo" key, so the SAE comes back as the same architecture.
/// - Any SAE io::load_sae reads becomes an ergo SAE computing the same codes.
///
/// Reading is strict: an unknown architecture, parameter key or value, or a tensor that is not a
/// weight of the architecture, raises an error naming the function, the file, what was expected
/// and what was found. Keys of another architecture's parameters are accepted and ignored (files
/// written before the per-architecture parameters carry every architecture's keys).
///
/// \code
/// ergo::sae::save_native("run/ergo_sae.safetensors", sae);
/// auto back = ergo::sae::load_native<float>("run/ergo_sae.safetensors");
/// if (ergo::sae::saelens_exportable(sae)) ergo::sae::export_saelens("run", sae);
/// auto any = ergo::sae::load_any<float>("some/saelens_or_sparsify_folder");
/// \endcode

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../io/checkpoint.hpp"
#include "../io/error.hpp"
#include "../io/saelens.hpp"
#include "../io/safetensors.hpp"
#include "params.hpp"
#include "registry.hpp"
#include "sparse_autoencoder.hpp"

#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <type_traits>
#include <utility>

namespace ergo::sae {

namespace detail {

template <class T>
nlohmann::json option_to_json(const T& v) {
  if constexpr (std::is_enum_v<T>)
    return to_string(v);
  else
    return v;
}

/// Reads `j` into `v` (bool, Index, double or an enum by name); throws naming `key` otherwise.
template <class T>
void option_from_json(const nlohmann::json& j, const std::string& key, T& v) {
  const char* who = "params_from_json";
  if constexpr (std::is_same_v<T, bool>) {
    check_arg(j.is_boolean(), who, key, "true or false", j.dump());
    v = j.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    check_arg(j.is_number_integer(), who, key, "an integer", j.dump());
    v = j.get<T>();
  } else if constexpr (std::is_floating_point_v<T>) {
    check_arg(j.is_number(), who, key, "a number", j.dump());
    v = j.get<T>();
  } else {
    check_arg(j.is_string() && from_string(j.get<std::string>(), v), who, key,
              std::string("one of ") + choices(v), j.dump());
  }
}

/// The parameter keys of every registered architecture (for files that carry them all).
inline std::set<std::string> every_architecture_key() {
  std::set<std::string> keys;
  for (const auto& a : kArchitectures) {
    SparseAutoencoderParams p;
    p.architecture = a.architecture;
    for (const auto& n : option_names(p)) keys.insert(n);
  }
  return keys;
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace detail

/// \brief The parameters as a flat JSON object: "architecture" (its name), "d_in", "d_sae",
/// "unit_norm_decoder", "apply_b_dec_to_input", "encoder_init_scale" and the architecture's
/// hyper-parameters by name (e.g. "k"; enums by name).
inline nlohmann::json params_to_json(const SparseAutoencoderParams& p) {
  nlohmann::json j;
  j["architecture"] = to_string(p.architecture);
  j["d_in"] = p.d_in;
  j["d_sae"] = p.d_sae;
  j["unit_norm_decoder"] = p.unit_norm_decoder;
  j["apply_b_dec_to_input"] = p.apply_b_dec_to_input;
  j["encoder_init_scale"] = p.encoder_init_scale;
  visit_params(p, [&](auto tag, const auto& ap, const char*) {
    using A = typename decltype(tag)::type;
    A::Params::for_each(
        ap, [&](const char* name, const auto& v) { j[name] = detail::option_to_json(v); });
  });
  return j;
}

/// \brief Parameters from params_to_json's object, checked. "architecture", "d_in" and "d_sae"
/// are required; other fields keep their defaults when absent. Throws InvalidArgument
/// ("params_from_json(): <key>: expected ..., got ...") for an unknown architecture, a key that
/// is neither shared nor a hyper-parameter of any architecture, or a value of the wrong kind.
inline SparseAutoencoderParams params_from_json(const nlohmann::json& j) {
  const char* who = "params_from_json";
  check_arg(j.is_object(), who, "j", "a JSON object", j.dump());
  SparseAutoencoderParams p;
  check_arg(j.contains("architecture") && j["architecture"].is_string(), who, "architecture",
            "the name of an architecture",
            j.contains("architecture") ? j["architecture"].dump() : "none");
  const std::string name = j["architecture"].get<std::string>();
  bool known = false;
  for (const auto& a : kArchitectures)
    if (name == a.name) {
      p.architecture = a.architecture;
      known = true;
    }
  check_arg(known, who, "architecture", "one of " + architecture_names(), "\"" + name + "\"");
  for (const char* key : {"d_in", "d_sae"})
    check_arg(j.contains(key), who, key, "an integer", "none");
  const std::set<std::string> legacy = detail::every_architecture_key();
  for (const auto& kv : j.items()) {
    const std::string& key = kv.key();
    const nlohmann::json& v = kv.value();
    if (key == "architecture") continue;
    if (key == "d_in")
      detail::option_from_json(v, key, p.d_in);
    else if (key == "d_sae")
      detail::option_from_json(v, key, p.d_sae);
    else if (key == "unit_norm_decoder")
      detail::option_from_json(v, key, p.unit_norm_decoder);
    else if (key == "apply_b_dec_to_input")
      detail::option_from_json(v, key, p.apply_b_dec_to_input);
    else if (key == "encoder_init_scale")
      detail::option_from_json(v, key, p.encoder_init_scale);
    else if (has_option(p, key)) {
      visit_params(p, [&](auto tag, auto& ap, const char*) {
        using A = typename decltype(tag)::type;
        A::Params::for_each(ap, [&](const char* n, auto& field) {
          if (key == n) detail::option_from_json(v, key, field);
        });
      });
    } else if (legacy.count(key) == 0) {
      std::string names;
      for (const auto& n : option_names(p)) names += ", " + n;
      throw_invalid(who, "key",
                    "architecture, d_in, d_sae, unit_norm_decoder, apply_b_dec_to_input, "
                    "encoder_init_scale" +
                        names + " (or another architecture's parameter)",
                    "\"" + key + "\"");
    }
  }
  p.check();
  return p;
}

// ----------------------------------------------------------------------------- SAELens ----

/// True when SAELens has an architecture computing the same inference function.
template <class S>
bool saelens_exportable(const SparseAutoencoder<S>& s) {
  return saelens_architecture(s.architecture())[0] != '\0';
}

/// The SAELens tensors of an ergo SAE (copies; the input scale is already folded).
template <class S>
io::SaeLensWeights<S> to_saelens_weights(const SparseAutoencoder<S>& s) {
  io::SaeLensWeights<S> w;
  const auto& x = s.weights();
  w.encoder = x.encoder;
  w.b_enc = x.encoder_bias;
  w.decoder = x.decoder;
  w.b_dec = x.decoder_bias;
  if (s.traits().has_threshold) w.threshold = x.extra("threshold").col(0);
  return w;
}

/// \brief SAELens cfg for an ergo SAE, with `metadata` (model, hook, dataset, ...) in cfg.json's
/// "metadata" object; ergo's own parameters go under cfg["ergo"]["params"].
///
/// The input scale s is folded into the weights (SparseAutoencoder::fold_input_scale), so the SAE
/// takes raw activations and normalize_activations is "none"; s is recorded in
/// cfg["ergo"]["normalization_factor"] for information only (SAELens drops the "ergo" key when
/// it re-saves the SAE, which changes nothing it computes).
template <class S>
io::SaeLensConfig saelens_config(const SparseAutoencoder<S>& s,
                                 const io::SaeMetadata& metadata = {}) {
  const Config c = s.config();
  io::SaeLensConfig cfg;
  cfg.metadata = metadata;
  cfg.architecture = c.saelens_architecture;
  cfg.k = cfg.architecture == "topk" ? c.k : 0;
  cfg.apply_b_dec_to_input = c.apply_b_dec_to_input;
  cfg.ergo["params"] = params_to_json(s.params());
  cfg.ergo["architecture"] = c.architecture;
  cfg.ergo["normalization_factor"] = c.normalization_factor;
  return cfg;
}

/// \brief Writes the SAELens folder of `s` (cfg.json + sae_weights.safetensors) with `cfg`
/// (default saelens_config(s)) and weight dtype `dtype` ("" = the exact dtype of S); throws
/// InvalidArgument if SAELens has no equivalent architecture.
template <class S>
void export_saelens(const std::string& dir, const SparseAutoencoder<S>& s, io::SaeLensConfig cfg,
                    const std::string& dtype = "") {
  check_arg(saelens_exportable(s), "export_saelens", "sae", "an architecture SAELens has",
            to_string(s.architecture()));
  cfg.dtype = dtype;
  io::save_saelens(dir, to_saelens_weights(s), cfg);
}
template <class S>
void export_saelens(const std::string& dir, const SparseAutoencoder<S>& s) {
  export_saelens(dir, s, saelens_config(s));
}

/// Folds SAELens's rescale_acts_by_decoder_norm into the weights (exact): TopK on h·‖d_i‖ and
/// decoding z_i/‖d_i‖ equals a plain TopK SAE with rows of W_enc and b_enc scaled by ‖d_i‖ and
/// decoder columns divided by it.
template <class S>
void fold_decoder_norms(io::SaeLensWeights<S>& w) {
  for (Index i = 0; i < w.decoder.cols(); ++i) {
    const S n = w.decoder.col(i).norm();
    if (!(n > S(0))) continue;
    w.encoder.row(i) *= n;
    w.b_enc(i) *= n;
    w.decoder.col(i) /= n;
    if (w.threshold.size() > 0) w.threshold(i) *= n;
  }
}

/// \brief An ergo SAE computing what a loaded SAE computes. If the file carries ergo's own
/// parameters (cfg["ergo"]["params"], written by export_saelens) they are used (so a BatchTopK
/// SAE exported as SAELens "jumprelu" comes back as BatchTopK); otherwise the architecture is
/// architecture_from_saelens(cfg.architecture) (standard → ReluL1, topk → TopK, jumprelu →
/// JumpReLU) with k from the file. Throws InvalidArgument for a k outside [1, d_sae], a
/// threshold the architecture does not have (or lacks), or scaled activations.
template <class S>
SparseAutoencoder<S> from_saelens(io::LoadedSae<S> l) {
  const char* who = "from_saelens";
  check_arg(l.config.normalize_activations == "none", who, "normalize_activations",
            "\"none\" (fold the activation scaling factor into the weights first)",
            l.config.normalize_activations);
  if (l.config.architecture == "topk" && l.config.rescale_acts_by_decoder_norm)
    fold_decoder_norms(l.weights);
  SparseAutoencoderParams p;
  const bool ergo_params = l.config.ergo.is_object() && l.config.ergo.contains("params");
  if (ergo_params) {
    p = params_from_json(l.config.ergo["params"]);
  } else {
    p.architecture = architecture_from_saelens(l.config.architecture);
    if (architecture_info(p.architecture).traits.has_k)
      set_option(p, "k", std::to_string(l.config.k));
    p.apply_b_dec_to_input = l.config.apply_b_dec_to_input;
    p.unit_norm_decoder = false;  // keep the decoder exactly as loaded if fine-tuned
  }
  p.d_in = l.weights.d_in();
  p.d_sae = l.weights.d_sae();
  const Traits& traits = architecture_info(p.architecture).traits;
  if (traits.has_k) {
    const Index k = std::stoll(get_option(p, "k"));
    check_arg(k >= 1 && k <= p.d_sae, who, "k",
              "k in [1, d_sae] for a " + std::string(to_string(p.architecture)) +
                  " SAE (give --k when the file does not say)",
              k);
  }
  check_arg(traits.has_threshold ? l.weights.threshold.size() == p.d_sae
                                 : l.weights.threshold.size() == 0,
            who, "threshold",
            traits.has_threshold
                ? ergo::detail::str_cat("d_sae = ", p.d_sae, " thresholds")
                : "no threshold for a " + std::string(to_string(p.architecture)) + " SAE",
            ergo::detail::str_cat(l.weights.threshold.size(), " values"));
  SparseAutoencoder<S> s(p, 0);
  s.set_named_weight("W_enc", l.weights.encoder);
  s.set_named_weight("b_enc", l.weights.b_enc);
  s.set_named_weight("W_dec", l.weights.decoder);
  s.set_named_weight("b_dec", l.weights.b_dec);
  if (traits.has_threshold) s.set_named_weight("threshold", l.weights.threshold);
  if (ergo_params && l.config.ergo.contains("normalization_factor") &&
      l.config.ergo["normalization_factor"].is_number() &&
      l.config.ergo["normalization_factor"].template get<double>() > 0.0)
    s.set_normalization_factor(l.config.ergo["normalization_factor"].template get<double>());
  return s;
}

// ------------------------------------------------------------------------------ native ----

/// \brief Writes the native file: every named weight, the parameters as JSON
/// ("ergo_sae_params"), the folded input scale ("normalization_factor"), `extra` ("extra") and,
/// when not empty, `metadata` ("saelens_metadata": SaeMetadata::to_json, read back by
/// load_native and written into cfg.json by a later SAELens export).
template <class S>
void save_native(const std::string& path, const SparseAutoencoder<S>& s,
                 const nlohmann::json& extra = nlohmann::json::object(),
                 const io::SaeMetadata& metadata = {}) {
  metadata.check();
  io::Checkpoint ck;
  for (const auto& kv : s.named_weights()) ck.put(kv.first, kv.second);
  ck.set_string("ergo_sae_params", params_to_json(s.params()).dump());
  ck.set_double("normalization_factor", s.normalization_factor());
  ck.set_string("extra", extra.dump());
  if (!metadata.empty()) ck.set_string("saelens_metadata", metadata.to_json().dump());
  ck.save(path);
}

/// \brief Reads a file written by save_native (its "extra" object into *extra, its metadata into
/// *metadata). Throws io::FormatError naming the file for a file without ergo parameters,
/// invalid parameters or metadata (an unknown key, a value of the wrong kind), a missing weight
/// or a tensor that is not a weight of the architecture.
template <class S>
SparseAutoencoder<S> load_native(const std::string& path, nlohmann::json* extra = nullptr,
                                 io::SaeMetadata* metadata = nullptr) {
  const char* who = "load_native";
  const io::Checkpoint ck = io::Checkpoint::load(path);
  if (!ck.has_string("ergo_sae_params"))
    io::detail::throw_format(who, path, "", "an ergo SAE file (ergo_sae_params)",
                             "an ergo checkpoint without it");
  SparseAutoencoderParams p;
  try {
    p = params_from_json(nlohmann::json::parse(ck.get_string("ergo_sae_params")));
  } catch (const nlohmann::json::exception& e) {
    io::detail::throw_format(who, path, "ergo_sae_params", "a JSON object", e.what());
  } catch (const InvalidArgument& e) {
    io::detail::throw_format(who, path, "ergo_sae_params", "valid SAE parameters", e.what());
  }
  SparseAutoencoder<S> s(p, 0);
  const auto names = s.named_weights();
  std::string expected;
  for (const auto& kv : names) expected += (expected.empty() ? "" : ", ") + kv.first;
  for (const auto& t : ck.tensor_names())
    if (names.count(t) == 0)
      io::detail::throw_format(
          who, path, "tensor '" + t + "'",
          "a weight of " + std::string(to_string(p.architecture)) + " (" + expected + ")",
          "an unknown name");
  for (const auto& kv : names) {
    if (!ck.contains(kv.first))
      io::detail::throw_format(who, path, "tensor '" + kv.first + "'", "present", "missing");
    s.set_named_weight(kv.first, ck.get<S>(kv.first));
  }
  if (ck.has_string("normalization_factor")) {
    const double f = ck.get_double("normalization_factor");
    if (f > 0.0) s.set_normalization_factor(f);
  }
  if (extra && ck.has_string("extra")) *extra = nlohmann::json::parse(ck.get_string("extra"));
  if (ck.has_string("saelens_metadata")) {
    io::SaeMetadata m;
    try {
      m = io::SaeMetadata::from_json(nlohmann::json::parse(ck.get_string("saelens_metadata")), who,
                                     /*strict=*/true);
    } catch (const nlohmann::json::exception& e) {
      io::detail::throw_format(who, path, "saelens_metadata", "a JSON object", e.what());
    } catch (const InvalidArgument& e) {
      io::detail::throw_format(who, path, "saelens_metadata", "valid SAE metadata", e.what());
    }
    if (metadata) *metadata = m;
  } else if (metadata) {
    *metadata = {};
  }
  return s;
}

/// \brief Loads an SAE from any supported path: a native ergo_sae.safetensors file (or a folder
/// containing one), a SAELens folder, a sparsify folder or file, a dictionary_learning file.
/// `k_override` > 0 sets k for TopK files that do not carry it (a bare sparsify file); `layout`
/// receives "ergo" or io::to_string(io::SaeLayout); `metadata` the file's model, hook, dataset
/// and context size where it has them (SAELens "metadata", ergo's native file).
template <class S>
SparseAutoencoder<S> load_any(const std::string& path, Index k_override = 0,
                              std::string* layout = nullptr, io::SaeMetadata* metadata = nullptr) {
  std::string native = path;
  if (!detail::ends_with(path, ".safetensors"))
    native = io::detail::join_path(path, "ergo_sae.safetensors");
  if (io::detail::path_is_file(native)) {
    const io::SafetensorsFile f(native);
    if (f.metadata().count("ergo_sae_params")) {
      if (layout) *layout = "ergo";
      return load_native<S>(native, nullptr, metadata);
    }
  }
  io::LoadedSae<S> l = io::load_sae<S>(path);
  if (k_override > 0) l.config.k = k_override;
  if (layout) *layout = io::to_string(l.layout);
  if (metadata) *metadata = l.config.metadata;
  return from_saelens(std::move(l));
}

}  // namespace ergo::sae

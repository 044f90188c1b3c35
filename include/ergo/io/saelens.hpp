// SPDX-License-Identifier: MIT
#pragma once

/// \file saelens.hpp
/// \brief SAE checkpoints in the layouts of SAELens (read and write), sparsify and
/// dictionary_learning (read), as plain matrices in ergo's orientation.
///
/// ORIENTATION. ergo's encoder is d_sae × d_in and its decoder d_in × d_sae, both column-major,
/// so that codes are `z = f(E (x − b_dec) + b_enc)` and reconstructions `x̂ = D z + b_dec` on
/// column samples. SAELens stores `W_enc` with shape [d_in, d_sae] and `W_dec` with shape
/// [d_sae, d_in], row-major: these are exactly the bytes of our E and D (no transposition on
/// either side). sparsify's `encoder.weight` [d_sae, d_in] and dictionary_learning's
/// `decoder.weight` [d_in, d_sae] (torch.nn.Linear convention) are transposed on load.
///
/// (The file alone of a sparsify SAE does not hold k: load_sparsify then returns k = 0.)
///
/// A SAELens folder holds `cfg.json` and `sae_weights.safetensors`:
///
/// | tensor      | stored shape      | ergo              | architectures              |
/// |-------------|-------------------|-------------------|----------------------------|
/// | `W_enc`     | [d_in, d_sae]     | encoder d_sae×d_in | all                        |
/// | `b_enc`     | [d_sae]           | b_enc             | all                        |
/// | `W_dec`     | [d_sae, d_in]     | decoder d_in×d_sae | all                        |
/// | `b_dec`     | [d_in]            | b_dec             | all                        |
/// | `threshold` | [d_sae]           | threshold         | jumprelu only              |
///
/// and cfg.json holds the keys SAELens 6 reads: architecture ("standard", "topk", "jumprelu"),
/// d_in, d_sae, dtype, device, apply_b_dec_to_input, normalize_activations,
/// reshape_activations, k and rescale_acts_by_decoder_norm (topk), and a "metadata" object
/// (sae_lens_version "6.0.0" marks the schema, plus model_name / hook_name / ... when known).
/// ergo's own keys live under "ergo", which SAELens ignores. See docs/io.md for loading an
/// ergo SAE in SAELens (`SAE.load_from_disk(folder)`).
///
/// \code
/// ergo::io::SaeLensWeights<float> w;   // fill encoder, b_enc, decoder, b_dec (and threshold)
/// ergo::io::SaeLensConfig cfg;
/// cfg.architecture = "topk";
/// cfg.k = 32;
/// ergo::io::save_saelens("out/my_sae", w, cfg);
/// auto loaded = ergo::io::load_sae<float>("out/my_sae");   // any supported layout
/// \endcode

#include "atomic_write.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "sae_metadata.hpp"
#include "safetensors.hpp"

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../version.hpp"

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace ergo::io {

/// \brief The tensors of an SAE file in the SAELens layout, in ergo's orientation (see the table
/// in saelens.hpp); every layout load_sae reads is converted to it. sae::Weights holds the
/// tensors of an ergo SAE; sae/serialize.hpp converts between the two.
template <class Scalar_>
struct SaeLensWeights {
  using Scalar = Scalar_;
  Matrix<Scalar> encoder;  ///< d_sae × d_in
  Vector<Scalar> b_enc;    ///< d_sae
  Matrix<Scalar> decoder;  ///< d_in × d_sae
  Vector<Scalar> b_dec;    ///< d_in
  Vector<Scalar>
      threshold;  ///< d_sae for JumpReLU (and BatchTopK exported as JumpReLU); else empty

  Index d_in() const { return decoder.rows(); }
  Index d_sae() const { return encoder.rows(); }

  /// \brief Throws InvalidArgument unless the shapes agree (and every value is finite).
  void check(const std::string& who) const {
    const Index d = decoder.rows(), m = decoder.cols();
    check_arg(d > 0 && m > 0, who, "decoder", "a non-empty d_in × d_sae matrix",
              detail::str_cat(d, " x ", m));
    check_shape(who, "encoder", encoder, m, d);
    check_shape(who, "b_enc", b_enc, m, 1);
    check_shape(who, "b_dec", b_dec, d, 1);
    if (threshold.size() > 0) check_shape(who, "threshold", threshold, m, 1);
    check_finite(who, "encoder", encoder);
    check_finite(who, "decoder", decoder);
    check_finite(who, "b_enc", b_enc);
    check_finite(who, "b_dec", b_dec);
    check_finite(who, "threshold", threshold);
  }
};

/// \brief The cfg.json of a SAELens SAE (the keys SAELens 6 reads), plus ergo's extras.
struct SaeLensConfig {
  /// SAELens inference architecture: "standard" (ReLU), "topk", "jumprelu". Default "standard".
  std::string architecture = "standard";
  Index d_in = 0;   ///< set from the weights on save
  Index d_sae = 0;  ///< set from the weights on save
  /// Stored dtype name ("float32", "float64", "float16", "bfloat16"). Empty on save = the exact
  /// dtype of the weights' Scalar.
  std::string dtype;
  std::string device = "cpu";        ///< SAELens device string
  bool apply_b_dec_to_input = true;  ///< encode (x − b_dec) (true) or x (false)
  /// "none" (default), "expected_average_only_in", "constant_norm_rescale", "layer_norm".
  /// ergo folds its own input scaling into the weights, so it writes "none".
  std::string normalize_activations = "none";
  std::string reshape_activations = "none";   ///< "none" or "hook_z"
  Index k = 0;                                ///< topk: active latents per sample (>= 1)
  bool rescale_acts_by_decoder_norm = false;  ///< topk: select by pre-activation × ‖W_dec row‖
  /// SAELens's "metadata" object (model and hook to attach to, dataset, context size).
  SaeMetadata metadata;
  /// ergo's own information (architecture name in ergo, training settings, ...), written under
  /// the top-level key "ergo" (SAELens drops keys it does not know).
  nlohmann::json ergo = nlohmann::json::object();

  /// \brief Throws InvalidArgument naming the field if a value is out of range.
  void check() const {
    const char* who = "SaeLensConfig::check";
    check_arg(architecture == "standard" || architecture == "topk" || architecture == "jumprelu",
              who, "architecture", "\"standard\", \"topk\" or \"jumprelu\"",
              "\"" + architecture + "\"");
    if (architecture == "topk") check_arg(k >= 1, who, "k", "k >= 1 for topk", k);
    check_arg(normalize_activations == "none" ||
                  normalize_activations == "expected_average_only_in" ||
                  normalize_activations == "constant_norm_rescale" ||
                  normalize_activations == "layer_norm",
              who, "normalize_activations",
              "none, expected_average_only_in, constant_norm_rescale or layer_norm",
              "\"" + normalize_activations + "\"");
    check_arg(reshape_activations == "none" || reshape_activations == "hook_z", who,
              "reshape_activations", "none or hook_z", "\"" + reshape_activations + "\"");
    if (!dtype.empty()) {
      DType t;
      check_arg(parse_dtype_name(dtype, t) && is_floating(t), who, "dtype",
                "float32, float64, float16 or bfloat16", "\"" + dtype + "\"");
    }
    metadata.check();
  }
};

/// \brief Where a loaded SAE came from.
enum class SaeLayout { SaeLens, Sparsify, DictionaryLearning };

inline const char* to_string(SaeLayout l) {
  switch (l) {
    case SaeLayout::SaeLens:
      return "saelens";
    case SaeLayout::Sparsify:
      return "sparsify";
    case SaeLayout::DictionaryLearning:
      return "dictionary_learning";
  }
  return "?";
}

/// \brief An SAE read from disk: weights in ergo's orientation, its configuration translated to
/// SAELens terms, and the layout it was read from.
template <class Scalar>
struct LoadedSae {
  SaeLensWeights<Scalar> weights;
  SaeLensConfig config;
  SaeLayout layout = SaeLayout::SaeLens;
};

namespace detail {

inline bool path_is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
inline bool path_is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
inline std::string join_path(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

/// Reads and parses a JSON file; FormatError on malformed JSON, FileError if unreadable.
inline nlohmann::json read_json_file(const std::string& path, const std::string& who) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_file(who, path, "open for reading", errno);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    throw_format(who, path, "", "a JSON object", "malformed JSON");
  return j;
}

/// Non-negative integer field, or `def` if absent/null. FormatError on a wrong type.
inline Index json_index(const nlohmann::json& j, const std::string& key, Index def,
                        const std::string& who, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return def;
  const auto& v = j[key];
  if (v.is_number_integer() && v.get<long long>() >= 0)
    return static_cast<Index>(v.get<long long>());
  if (v.is_number_float() && v.get<double>() >= 0 && std::floor(v.get<double>()) == v.get<double>())
    return static_cast<Index>(v.get<double>());
  throw_format(who, path, key, "a non-negative integer", v.dump());
}
inline std::string json_string(const nlohmann::json& j, const std::string& key,
                               const std::string& def, const std::string& who,
                               const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_string()) throw_format(who, path, key, "a string", j[key].dump());
  return j[key].get<std::string>();
}
inline bool json_bool(const nlohmann::json& j, const std::string& key, bool def,
                      const std::string& who, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_boolean()) throw_format(who, path, key, "true or false", j[key].dump());
  return j[key].get<bool>();
}

/// Reads a rank-1 tensor of the expected length.
template <class S>
Vector<S> read_vec(const SafetensorsFile& f, const std::string& name, Index n,
                   const std::string& who) {
  const TensorView v = f.view(name);
  check_tensor_shape(who, f.path() + ":" + name, v.info(),
                     {n < 0 ? -1 : static_cast<std::int64_t>(n)});
  ReadOptions opt;
  opt.require_finite = true;
  return v.to_matrix<S>(opt);
}
/// Reads a rank-2 tensor stored [a, b] as the b × a matrix (the shape rule), checking [a, b].
template <class S>
Matrix<S> read_mat(const SafetensorsFile& f, const std::string& name, Index a, Index b,
                   const std::string& who) {
  const TensorView v = f.view(name);
  check_tensor_shape(
      who, f.path() + ":" + name, v.info(),
      {a < 0 ? -1 : static_cast<std::int64_t>(a), b < 0 ? -1 : static_cast<std::int64_t>(b)});
  ReadOptions opt;
  opt.require_finite = true;
  return v.to_matrix<S>(opt);
}

}  // namespace detail

/// The SAELens cfg.json schema ergo writes (metadata.sae_lens_version).
inline constexpr const char* kSaeLensSchemaVersion = "6.0.0";

/// \brief The cfg.json text save_saelens writes for `cfg` (d_in, d_sae and dtype must be set).
inline std::string saelens_config_json(const SaeLensConfig& cfg) {
  cfg.check();
  nlohmann::json j;
  j["architecture"] = cfg.architecture;
  j["d_in"] = cfg.d_in;
  j["d_sae"] = cfg.d_sae;
  j["dtype"] = cfg.dtype;
  j["device"] = cfg.device;
  j["apply_b_dec_to_input"] = cfg.apply_b_dec_to_input;
  j["normalize_activations"] = cfg.normalize_activations;
  j["reshape_activations"] = cfg.reshape_activations;
  if (cfg.architecture == "topk") {
    j["k"] = cfg.k;
    j["rescale_acts_by_decoder_norm"] = cfg.rescale_acts_by_decoder_norm;
  }
  nlohmann::json meta = cfg.metadata.to_json();
  // sae_lens_version: the cfg.json schema; SAELens reads it to tell a 6.x config from an older
  // one that needs converting, so it names the SAELens schema ergo writes, not a SAELens that
  // wrote the file. sae_lens_training_version: what trained the SAE; SAELens only records it.
  // "6.0.0+ergo.<version>" is a PEP 440 version (local label) that says both.
  meta["sae_lens_version"] = kSaeLensSchemaVersion;
  meta["sae_lens_training_version"] =
      std::string(kSaeLensSchemaVersion) + "+ergo." + ERGO_VERSION_STRING;
  j["metadata"] = meta;
  nlohmann::json ergo = cfg.ergo.is_object() ? cfg.ergo : nlohmann::json::object();
  ergo["version"] = ERGO_VERSION_STRING;
  j["ergo"] = ergo;
  return j.dump(2) + "\n";
}

/// \brief Writes a SAELens folder `dir` (created if needed): cfg.json and
/// sae_weights.safetensors, each replaced atomically.
///
/// The tensors are stored in cfg.dtype (default: the exact dtype of Scalar, so the round trip is
/// exact). d_in and d_sae are taken from the weights. For "jumprelu" the threshold must be set;
/// for "standard"/"topk" it must be empty (SAELens loads with strict key matching).
/// \param dir  output folder
/// \param w    weights (shapes checked, values must be finite)
/// \param cfg  configuration (architecture, k, ...); checked
template <class Scalar>
void save_saelens(const std::string& dir, const SaeLensWeights<Scalar>& w, SaeLensConfig cfg) {
  const char* who = "save_saelens";
  w.check(who);
  cfg.d_in = w.d_in();
  cfg.d_sae = w.d_sae();
  if (cfg.dtype.empty()) cfg.dtype = dtype_name(dtype_of<Scalar>());
  cfg.check();
  if (cfg.architecture == "jumprelu")
    check_arg(w.threshold.size() == w.d_sae(), who, "threshold", "d_sae thresholds for jumprelu",
              w.threshold.size());
  else
    check_arg(w.threshold.size() == 0, who, "threshold",
              "no threshold for " + cfg.architecture + " (SAELens would reject the extra tensor)",
              detail::str_cat(w.threshold.size(), " values"));
  check_arg(cfg.architecture != "topk" || cfg.k <= w.d_sae(), who, "k",
            detail::str_cat("k <= d_sae = ", w.d_sae()), cfg.k);
  DType dt;
  parse_dtype_name(cfg.dtype, dt);
  make_directories(dir);
  SafetensorsWriter sw;
  sw.add("W_enc", w.encoder, dt);  // m × d column-major = [d_in, d_sae] row-major
  sw.add_vector("b_enc", w.b_enc, dt);
  sw.add("W_dec", w.decoder, dt);  // d × m column-major = [d_sae, d_in] row-major
  sw.add_vector("b_dec", w.b_dec, dt);
  if (cfg.architecture == "jumprelu") sw.add_vector("threshold", w.threshold, dt);
  sw.set_metadata("format", "pt");
  sw.write(detail::join_path(dir, "sae_weights.safetensors"));
  atomic_write_file(detail::join_path(dir, "cfg.json"), saelens_config_json(cfg));
}

/// \brief Parses a SAELens cfg.json (6.x, and the flat pre-6 keys: hook_point,
/// activation_fn_kwargs.k, boolean normalize_activations).
inline SaeLensConfig parse_saelens_config(const nlohmann::json& j, const std::string& path) {
  const char* who = "load_saelens";
  SaeLensConfig c;
  c.architecture = detail::json_string(j, "architecture", "standard", who, path);
  c.d_in = detail::json_index(j, "d_in", 0, who, path);
  c.d_sae = detail::json_index(j, "d_sae", 0, who, path);
  c.dtype = detail::json_string(j, "dtype", "float32", who, path);
  c.device = detail::json_string(j, "device", "cpu", who, path);
  c.apply_b_dec_to_input = detail::json_bool(j, "apply_b_dec_to_input", true, who, path);
  if (j.contains("normalize_activations") && j["normalize_activations"].is_boolean())
    c.normalize_activations =
        j["normalize_activations"].get<bool>() ? "expected_average_only_in" : "none";
  else
    c.normalize_activations = detail::json_string(j, "normalize_activations", "none", who, path);
  c.reshape_activations = detail::json_string(j, "reshape_activations", "none", who, path);
  c.k = detail::json_index(j, "k", 0, who, path);
  if (c.k == 0 && j.contains("activation_fn_kwargs") && j["activation_fn_kwargs"].is_object())
    c.k = detail::json_index(j["activation_fn_kwargs"], "k", 0, who, path);
  if (c.architecture == "standard" && c.k > 0 &&
      detail::json_string(j, "activation_fn", "relu", who, path) == "topk")
    c.architecture = "topk";  // pre-6 TopK configs
  c.rescale_acts_by_decoder_norm =
      detail::json_bool(j, "rescale_acts_by_decoder_norm", false, who, path);
  // 6.x: the "metadata" object; pre-6: the same keys at the top level (hook_point, ...)
  nlohmann::json meta = nlohmann::json::object();
  const nlohmann::json& src =
      j.contains("metadata") && j["metadata"].is_object() ? j["metadata"] : j;
  for (const char* key : {"model_name", "hook_name", "hook_point", "hook_head_index",
                          "hook_point_head_index", "context_size", "dataset_path", "prepend_bos"})
    if (src.contains(key)) meta[key] = src[key];
  if (meta.contains("hook_name") && meta.contains("hook_point")) meta.erase("hook_point");
  try {
    c.metadata = SaeMetadata::from_json(meta, who, /*strict=*/false);
  } catch (const InvalidArgument& e) {
    throw FormatError(
        make_message(who, detail::file_what(path, "metadata"), "valid SAELens metadata", e.what()));
  }
  if (j.contains("ergo") && j["ergo"].is_object()) c.ergo = j["ergo"];
  if (c.architecture == "gated" || c.architecture == "jumprelu_transcoder" ||
      c.architecture == "transcoder")
    detail::throw_format(who, path, "architecture", "standard, topk or jumprelu (what ergo reads)",
                         "\"" + c.architecture + "\"");
  try {
    c.check();
  } catch (const InvalidArgument& e) {
    throw FormatError(
        make_message(who, detail::file_what(path, ""), "a valid SAELens cfg.json", e.what()));
  }
  if (c.d_in <= 0 || c.d_sae <= 0)
    detail::throw_format(who, path, "d_in/d_sae", "positive sizes",
                         detail::str_cat(c.d_in, " / ", c.d_sae));
  return c;
}

/// \brief Reads a SAELens folder (cfg.json + sae_weights.safetensors) into ergo's orientation,
/// checking every tensor's shape against cfg.json. A `log_threshold` tensor (older JumpReLU
/// checkpoints) is converted to threshold = exp(log_threshold), as SAELens does.
template <class Scalar>
LoadedSae<Scalar> load_saelens(const std::string& dir) {
  const char* who = "load_saelens";
  const std::string cfg_path = detail::join_path(dir, "cfg.json");
  LoadedSae<Scalar> out;
  out.layout = SaeLayout::SaeLens;
  out.config = parse_saelens_config(detail::read_json_file(cfg_path, who), cfg_path);
  const Index d = out.config.d_in, m = out.config.d_sae;
  SafetensorsFile f(detail::join_path(dir, "sae_weights.safetensors"), who);
  out.weights.encoder = detail::read_mat<Scalar>(f, "W_enc", d, m, who);
  out.weights.decoder = detail::read_mat<Scalar>(f, "W_dec", m, d, who);
  out.weights.b_dec = detail::read_vec<Scalar>(f, "b_dec", d, who);
  out.weights.b_enc =
      f.contains("b_enc") ? detail::read_vec<Scalar>(f, "b_enc", m, who) : Vector<Scalar>::Zero(m);
  if (f.contains("threshold")) {
    out.weights.threshold = detail::read_vec<Scalar>(f, "threshold", m, who);
  } else if (f.contains("log_threshold")) {
    out.weights.threshold =
        detail::read_vec<Scalar>(f, "log_threshold", m, who).array().exp().matrix();
  }
  if (out.config.architecture == "jumprelu" && out.weights.threshold.size() == 0)
    detail::throw_format(who, f.path(), "tensor 'threshold'", "a threshold for a jumprelu SAE",
                         "none");
  if (f.contains("scaling_factor")) {
    const Vector<double> s = detail::read_vec<double>(f, "scaling_factor", m, who);
    if (!(s.array() == 1.0).all())
      detail::throw_format(who, f.path(), "tensor 'scaling_factor'",
                           "all ones (ergo does not apply a finetuning scaling factor)",
                           "other values");
  }
  return out;
}

/// \brief Reads a sparsify SAE: a folder with cfg.json (d_in, k, ...) and sae.safetensors
/// (`encoder.weight` [d_sae, d_in], `encoder.bias` [d_sae], `W_dec` [d_sae, d_in],
/// `b_dec` [d_in]), or the .safetensors file alone (then k = 0 unless given). sparsify encodes
/// TopK(ReLU(W (x − b_dec) + b)): the result is a "topk" SaeLensConfig. Skip connections and
/// transcoders are rejected.
template <class Scalar>
LoadedSae<Scalar> load_sparsify(const std::string& path) {
  const char* who = "load_sparsify";
  std::string file = path;
  LoadedSae<Scalar> out;
  out.layout = SaeLayout::Sparsify;
  out.config.architecture = "topk";
  out.config.apply_b_dec_to_input = true;
  if (detail::path_is_dir(path)) {
    file = detail::join_path(path, "sae.safetensors");
    const std::string cfg_path = detail::join_path(path, "cfg.json");
    if (detail::path_is_file(cfg_path)) {
      const nlohmann::json j = detail::read_json_file(cfg_path, who);
      out.config.k = detail::json_index(j, "k", 0, who, cfg_path);
      if (detail::json_bool(j, "transcode", false, who, cfg_path))
        detail::throw_format(who, cfg_path, "transcode", "false (an autoencoder)",
                             "true (a transcoder)");
      const std::string act = detail::json_string(j, "activation", "topk", who, cfg_path);
      if (act != "topk")
        detail::throw_format(who, cfg_path, "activation", "\"topk\"", "\"" + act + "\"");
    }
  }
  SafetensorsFile f(file, who);
  if (f.contains("W_skip"))
    detail::throw_format(who, file, "tensor 'W_skip'", "no skip connection (not supported)",
                         "present");
  const TensorView ew = f.view("encoder.weight");
  if (ew.info().shape.size() != 2)
    detail::throw_format(who, file, "tensor 'encoder.weight'", "shape [d_sae, d_in]",
                         ew.info().describe());
  const Index m = static_cast<Index>(ew.info().shape[0]),
              d = static_cast<Index>(ew.info().shape[1]);
  // encoder.weight [m, d] row-major reads (shape rule) as d × m = Eᵀ.
  out.weights.encoder = detail::read_mat<Scalar>(f, "encoder.weight", m, d, who).transpose();
  out.weights.b_enc = f.contains("encoder.bias")
                          ? detail::read_vec<Scalar>(f, "encoder.bias", m, who)
                          : Vector<Scalar>::Zero(m);
  out.weights.decoder = detail::read_mat<Scalar>(f, "W_dec", m, d, who);  // [m, d] -> d × m = D
  out.weights.b_dec = detail::read_vec<Scalar>(f, "b_dec", d, who);
  out.config.d_in = d;
  out.config.d_sae = m;
  out.config.dtype = dtype_name(ew.info().dtype);
  // k stays 0 when no cfg.json says it: the caller must supply it (SaeLensConfig::check
  // refuses to save a topk SAE without k).
  return out;
}

/// \brief Reads a dictionary_learning SAE saved as .safetensors (plain tensors of its ae.pt
/// state dict): AutoEncoder (`encoder.weight` [F, D], `encoder.bias`, `decoder.weight` [D, F],
/// `bias` [D]), AutoEncoderTopK (same with `b_dec` and a scalar `k`), or JumpReluAutoEncoder
/// (`W_enc` [D, F], `b_enc`, `W_dec` [F, D], `b_dec`, `threshold`). Gated autoencoders are
/// rejected.
template <class Scalar>
LoadedSae<Scalar> load_dictionary_learning(const std::string& file) {
  const char* who = "load_dictionary_learning";
  SafetensorsFile f(file, who);
  LoadedSae<Scalar> out;
  out.layout = SaeLayout::DictionaryLearning;
  if (f.contains("W_enc")) {  // JumpReluAutoEncoder: SAELens names, no b_dec applied to input
    const TensorView we = f.view("W_enc");
    if (we.info().shape.size() != 2)
      detail::throw_format(who, file, "tensor 'W_enc'", "shape [d_in, d_sae]",
                           we.info().describe());
    const Index d = static_cast<Index>(we.info().shape[0]),
                m = static_cast<Index>(we.info().shape[1]);
    out.weights.encoder = detail::read_mat<Scalar>(f, "W_enc", d, m, who);
    out.weights.b_enc = detail::read_vec<Scalar>(f, "b_enc", m, who);
    out.weights.decoder = detail::read_mat<Scalar>(f, "W_dec", m, d, who);
    out.weights.b_dec = detail::read_vec<Scalar>(f, "b_dec", d, who);
    out.weights.threshold = detail::read_vec<Scalar>(f, "threshold", m, who);
    out.config.architecture = "jumprelu";
    out.config.apply_b_dec_to_input = false;
    out.config.d_in = d;
    out.config.d_sae = m;
    out.config.dtype = dtype_name(we.info().dtype);
    return out;
  }
  if (f.contains("gate_bias") || f.contains("r_mag"))
    detail::throw_format(who, file, "layout", "AutoEncoder, AutoEncoderTopK or JumpReluAutoEncoder",
                         "a GatedAutoEncoder (not supported)");
  const TensorView ew = f.view("encoder.weight");
  if (ew.info().shape.size() != 2)
    detail::throw_format(who, file, "tensor 'encoder.weight'", "shape [d_sae, d_in]",
                         ew.info().describe());
  const Index m = static_cast<Index>(ew.info().shape[0]),
              d = static_cast<Index>(ew.info().shape[1]);
  out.weights.encoder = detail::read_mat<Scalar>(f, "encoder.weight", m, d, who).transpose();
  out.weights.b_enc = f.contains("encoder.bias")
                          ? detail::read_vec<Scalar>(f, "encoder.bias", m, who)
                          : Vector<Scalar>::Zero(m);
  // decoder.weight [d, m] row-major reads as m × d = Dᵀ.
  out.weights.decoder = detail::read_mat<Scalar>(f, "decoder.weight", d, m, who).transpose();
  if (f.contains("b_dec"))
    out.weights.b_dec = detail::read_vec<Scalar>(f, "b_dec", d, who);
  else if (f.contains("bias"))
    out.weights.b_dec = detail::read_vec<Scalar>(f, "bias", d, who);
  else if (f.contains("decoder.bias"))  // AutoEncoderNew: bias only on the output
    out.weights.b_dec = detail::read_vec<Scalar>(f, "decoder.bias", d, who);
  else
    detail::throw_format(who, file, "tensor 'bias'",
                         "a decoder bias ('bias', 'b_dec' or 'decoder.bias')", "none");
  out.config.apply_b_dec_to_input = !f.contains("decoder.bias");
  out.config.architecture = "standard";
  if (f.contains("k")) {
    const TensorView kv = f.view("k");
    if (kv.info().numel() != 1)
      detail::throw_format(who, file, "tensor 'k'", "a scalar", kv.info().describe());
    Eigen::Matrix<long long, Eigen::Dynamic, Eigen::Dynamic> kk(1, 1);
    kv.read_samples<long long>(0, 1, kk.data());
    out.config.architecture = "topk";
    out.config.k = static_cast<Index>(kk(0, 0));
    if (out.config.k < 1 || out.config.k > m)
      detail::throw_format(who, file, "tensor 'k'", detail::str_cat("1 <= k <= ", m), out.config.k);
  }
  out.config.d_in = d;
  out.config.d_sae = m;
  out.config.dtype = dtype_name(ew.info().dtype);
  return out;
}

/// \brief Loads an SAE from any supported layout, detected from what is on disk:
/// a folder with sae_weights.safetensors → SAELens; a folder with sae.safetensors → sparsify;
/// a .safetensors file with `W_dec` and `encoder.weight` → sparsify; with `decoder.weight` or
/// `W_enc` only → dictionary_learning; with `W_enc` and `W_dec` in a folder → SAELens.
template <class Scalar>
LoadedSae<Scalar> load_sae(const std::string& path) {
  const char* who = "load_sae";
  if (detail::path_is_dir(path)) {
    if (detail::path_is_file(detail::join_path(path, "sae_weights.safetensors")))
      return load_saelens<Scalar>(path);
    if (detail::path_is_file(detail::join_path(path, "sae.safetensors")))
      return load_sparsify<Scalar>(path);
    detail::throw_format(
        who, path, "",
        "a folder with sae_weights.safetensors (SAELens) or sae.safetensors (sparsify)", "neither");
  }
  SafetensorsFile f(path, who);
  if (f.contains("encoder.weight") && f.contains("W_dec")) return load_sparsify<Scalar>(path);
  if (f.contains("decoder.weight") || (f.contains("W_enc") && f.contains("threshold")))
    return load_dictionary_learning<Scalar>(path);
  detail::throw_format(who, path, "tensors",
                       "a known SAE layout (SAELens folder, sparsify encoder.weight + W_dec, "
                       "dictionary_learning encoder.weight + decoder.weight)",
                       "other tensor names");
}

}  // namespace ergo::io

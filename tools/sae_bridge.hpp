// SPDX-License-Identifier: MIT
#pragma once

// Bridge between ergo::sae (the SAE models) and ergo::io (file layouts), used by ergo-sae:
// - SaeParams <-> JSON;
// - an ergo SAE -> SAELens folder (cfg.json + sae_weights.safetensors) for the architectures
//   SAELens has ("standard", "topk", "jumprelu"; BatchTopK exports as "jumprelu");
// - any SAE io can read (SAELens, sparsify, dictionary_learning) -> an ergo SAE;
// - the native ergo file "ergo_sae.safetensors": every named weight of any architecture
//   (Structured and Unmixer included) plus the SaeParams as JSON in the metadata.
//
// io does not depend on sae (io may include only core and nlohmann-json), hence this bridge
// lives with the tools.

#include "common.hpp"

#include <ergo/io.hpp>
#include <ergo/sae.hpp>

#include <nlohmann/json.hpp>

#include <string>

namespace ergo::tools {

inline nlohmann::json params_to_json(const sae::SaeParams& p) {
  nlohmann::json j;
  j["architecture"] = sae::to_string(p.architecture);
  j["d_in"] = p.d_in;
  j["d_sae"] = p.d_sae;
  j["k"] = p.k;
  j["decoder_norm_penalty"] = p.decoder_norm_penalty;
  j["unit_norm_decoder"] = p.unit_norm_decoder;
  j["apply_b_dec_to_input"] = p.apply_b_dec_to_input;
  j["encoder_init_scale"] = p.encoder_init_scale;
  j["init_threshold"] = p.init_threshold;
  j["bandwidth"] = p.bandwidth;
  j["p_epsilon"] = p.p_epsilon;
  j["dense_width"] = p.dense_width;
  j["unmixer_activation"] = sae::to_string(p.unmixer_activation);
  j["unmixer_norm"] = sae::to_string(p.unmixer_norm);
  j["groups"] = p.groups;
  j["exp_clamp"] = p.exp_clamp;
  j["norm_eps"] = p.norm_eps;
  return j;
}

inline sae::SaeParams params_from_json(const nlohmann::json& j) {
  sae::SaeParams p;
  p.architecture = sae::architecture_from_string(j.at("architecture").get<std::string>());
  p.d_in = j.at("d_in").get<Index>();
  p.d_sae = j.at("d_sae").get<Index>();
  p.k = j.value("k", p.k);
  p.decoder_norm_penalty = j.value("decoder_norm_penalty", p.decoder_norm_penalty);
  p.unit_norm_decoder = j.value("unit_norm_decoder", p.unit_norm_decoder);
  p.apply_b_dec_to_input = j.value("apply_b_dec_to_input", p.apply_b_dec_to_input);
  p.encoder_init_scale = j.value("encoder_init_scale", p.encoder_init_scale);
  p.init_threshold = j.value("init_threshold", p.init_threshold);
  p.bandwidth = j.value("bandwidth", p.bandwidth);
  p.p_epsilon = j.value("p_epsilon", p.p_epsilon);
  p.dense_width = j.value("dense_width", p.dense_width);
  const std::string act = j.value("unmixer_activation", std::string("softplus"));
  for (auto g : {sae::UnmixerActivation::Softplus, sae::UnmixerActivation::EluPlusOne,
                 sae::UnmixerActivation::Selu, sae::UnmixerActivation::ClampedExp})
    if (act == sae::to_string(g)) p.unmixer_activation = g;
  const std::string norm = j.value("unmixer_norm", std::string("none"));
  for (auto n : {sae::UnmixerNorm::None, sae::UnmixerNorm::LayerNorm, sae::UnmixerNorm::GroupNorm})
    if (norm == sae::to_string(n)) p.unmixer_norm = n;
  p.groups = j.value("groups", p.groups);
  p.exp_clamp = j.value("exp_clamp", p.exp_clamp);
  p.norm_eps = j.value("norm_eps", p.norm_eps);
  p.check();
  return p;
}

/// True when SAELens has an architecture computing the same inference function.
template <class S>
bool saelens_exportable(const sae::SparseAutoencoder<S>& s) {
  return sae::saelens_architecture(s.architecture())[0] != '\0';
}

/// The SAELens view of an ergo SAE (weights are copied; the SAE takes raw inputs, its input
/// scale already folded by the trainer).
template <class S>
io::SaeWeights<S> to_io_weights(const sae::SparseAutoencoder<S>& s) {
  io::SaeWeights<S> w;
  const auto& x = s.weights();
  w.encoder = x.encoder;
  w.b_enc = x.encoder_bias;
  w.decoder = x.decoder;
  w.b_dec = x.decoder_bias;
  if (s.architecture() == sae::Architecture::JumpReLU ||
      s.architecture() == sae::Architecture::BatchTopK)
    w.threshold = x.threshold;
  return w;
}

/// SAELens cfg for an ergo SAE; ergo's own parameters go under cfg["ergo"]["params"].
template <class S>
io::SaeLensConfig saelens_config(const sae::SparseAutoencoder<S>& s) {
  const sae::SaeConfig c = s.config();
  io::SaeLensConfig cfg;
  cfg.architecture = c.saelens_architecture;
  cfg.k = cfg.architecture == "topk" ? c.k : 0;
  cfg.apply_b_dec_to_input = c.apply_b_dec_to_input;
  cfg.ergo["params"] = params_to_json(s.params());
  cfg.ergo["architecture"] = c.architecture;
  cfg.ergo["normalization_factor"] = c.normalization_factor;
  return cfg;
}

/// Writes the SAELens folder of `s` (throws InvalidArgument if SAELens has no equivalent).
template <class S>
void save_saelens_folder(const std::string& dir, const sae::SparseAutoencoder<S>& s,
                         io::SaeLensConfig cfg, const std::string& dtype = "") {
  check_arg(saelens_exportable(s), "save_saelens_folder", "sae", "an architecture SAELens has",
            sae::to_string(s.architecture()));
  cfg.dtype = dtype;
  io::save_saelens(dir, to_io_weights(s), cfg);
}

/// Folds SAELens's rescale_acts_by_decoder_norm into the weights (exact): TopK on h·‖d_i‖ and
/// decoding z_i/‖d_i‖ equals a plain TopK SAE with rows of W_enc and b_enc scaled by ‖d_i‖ and
/// decoder columns divided by it.
template <class S>
void fold_decoder_norms(io::SaeWeights<S>& w) {
  for (Index i = 0; i < w.decoder.cols(); ++i) {
    const S n = w.decoder.col(i).norm();
    if (!(n > S(0))) continue;
    w.encoder.row(i) *= n;
    w.b_enc(i) *= n;
    w.decoder.col(i) /= n;
    if (w.threshold.size() > 0) w.threshold(i) *= n;
  }
}

/// An ergo SAE computing what a loaded SAE computes. If the file carries ergo's own parameters
/// (cfg["ergo"]["params"], written by ergo-sae) they are used (so a BatchTopK SAE exported as
/// SAELens "jumprelu" comes back as BatchTopK); otherwise standard -> ReluL1, topk -> TopK,
/// jumprelu -> JumpReLU.
template <class S>
sae::SparseAutoencoder<S> from_loaded(io::LoadedSae<S> l) {
  const char* who = "from_loaded";
  check_arg(l.config.normalize_activations == "none", who, "normalize_activations",
            "\"none\" (fold the activation scaling factor into the weights first)",
            l.config.normalize_activations);
  if (l.config.architecture == "topk" && l.config.rescale_acts_by_decoder_norm)
    fold_decoder_norms(l.weights);
  sae::SaeParams p;
  if (l.config.ergo.is_object() && l.config.ergo.contains("params")) {
    p = params_from_json(l.config.ergo["params"]);
  } else {
    p.architecture = l.config.architecture == "topk"       ? sae::Architecture::TopK
                     : l.config.architecture == "jumprelu" ? sae::Architecture::JumpReLU
                                                           : sae::Architecture::ReluL1;
    p.k = l.config.architecture == "topk" ? l.config.k : p.k;
    p.apply_b_dec_to_input = l.config.apply_b_dec_to_input;
    p.unit_norm_decoder = false;  // keep the decoder exactly as loaded if fine-tuned
  }
  p.d_in = l.weights.d_in();
  p.d_sae = l.weights.d_sae();
  check_arg(p.architecture != sae::Architecture::TopK || (p.k >= 1 && p.k <= p.d_sae), who, "k",
            "k in [1, d_sae] for a topk SAE (give --k when the file does not say)", p.k);
  sae::SparseAutoencoder<S> s(p, 0);
  s.set_named_weight("W_enc", l.weights.encoder);
  s.set_named_weight("b_enc", l.weights.b_enc);
  s.set_named_weight("W_dec", l.weights.decoder);
  s.set_named_weight("b_dec", l.weights.b_dec);
  if (s.weights().threshold.size() > 0) {
    check_arg(l.weights.threshold.size() == p.d_sae, who, "threshold", "d_sae thresholds",
              l.weights.threshold.size());
    s.set_named_weight("threshold", l.weights.threshold);
  }
  return s;
}

/// Native ergo file: every named weight + the SaeParams (JSON) + `extra` metadata.
template <class S>
void save_native(const std::string& path, const sae::SparseAutoencoder<S>& s,
                 const nlohmann::json& extra = nlohmann::json::object()) {
  io::Checkpoint ck;
  for (const auto& kv : s.named_weights()) ck.put(kv.first, kv.second);
  ck.set_string("ergo_sae_params", params_to_json(s.params()).dump());
  ck.set_double("normalization_factor", s.normalization_factor());
  ck.set_string("extra", extra.dump());
  ck.save(path);
}

/// Reads a file written by save_native.
template <class S>
sae::SparseAutoencoder<S> load_native(const std::string& path, nlohmann::json* extra = nullptr) {
  const io::Checkpoint ck = io::Checkpoint::load(path);
  if (!ck.has_string("ergo_sae_params"))
    throw io::FormatError(make_message("load_native", "'" + path + "'",
                                       "an ergo SAE file (ergo_sae_params)",
                                       "an ergo checkpoint without it"));
  sae::SparseAutoencoder<S> s(
      params_from_json(nlohmann::json::parse(ck.get_string("ergo_sae_params"))), 0);
  for (const auto& kv : s.named_weights()) s.set_named_weight(kv.first, ck.get<S>(kv.first));
  if (extra && ck.has_string("extra")) *extra = nlohmann::json::parse(ck.get_string("extra"));
  return s;
}

/// Loads an SAE from any supported path: a native ergo_sae.safetensors file (or a folder
/// containing one), a SAELens folder, a sparsify folder or file, a dictionary_learning file.
/// `k_override` > 0 sets k for TopK files that do not carry it (a bare sparsify file).
template <class S>
sae::SparseAutoencoder<S> load_any_sae(const std::string& path, Index k_override = 0,
                                       std::string* layout = nullptr) {
  std::string native = path;
  if (!ends_with(path, ".safetensors")) native = join(path, "ergo_sae.safetensors");
  if (file_exists(native)) {
    const io::SafetensorsFile f(native);
    if (f.metadata().count("ergo_sae_params")) {
      if (layout) *layout = "ergo";
      return load_native<S>(native);
    }
  }
  io::LoadedSae<S> l = io::load_sae<S>(path);
  if (k_override > 0) l.config.k = k_override;
  if (layout) *layout = io::to_string(l.layout);
  return from_loaded(std::move(l));
}

}  // namespace ergo::tools

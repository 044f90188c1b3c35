// SPDX-License-Identifier: MIT
#pragma once

/// \file sae_metadata.hpp
/// \brief SaeMetadata: where an SAE was trained and how to attach it to a model (the fields of
/// SAELens 6's cfg.json "metadata" object that ergo carries), as JSON both ways, checked.

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace ergo::io {

/// \brief Where an SAE was trained and how to attach it to a model: the fields of SAELens 6's
/// `SAEMetadata` (cfg.json "metadata") that ergo carries. Empty strings and negative numbers
/// mean unknown and are not written. `SAE.load_from_disk` names the SAE
/// "sae_<model_name>_<hook_name>_<d_sae>" and HookedSAETransformer attaches it at hook_name.
struct SaeMetadata {
  std::string model_name;      ///< e.g. "pythia-70m-deduped" (TransformerLens / HF name)
  std::string hook_name;       ///< e.g. "blocks.3.hook_resid_post" (no whitespace)
  Index hook_head_index = -1;  ///< attention head of a per-head hook (>= 0), -1 = none
  Index context_size = -1;     ///< tokens per context the activations came from (> 0), -1 = unknown
  std::string dataset_path;    ///< e.g. "monology/pile-uncopyrighted"
  std::optional<bool> prepend_bos;  ///< whether a BOS token was prepended, if known

  bool empty() const {
    return model_name.empty() && hook_name.empty() && hook_head_index < 0 && context_size < 0 &&
           dataset_path.empty() && !prepend_bos.has_value();
  }

  /// \brief Throws InvalidArgument naming the field ("SaeMetadata::check(): context_size:
  /// expected > 0 (or -1 for unknown), got 0").
  void check() const {
    const char* who = "SaeMetadata::check";
    check_arg(hook_head_index >= -1, who, "hook_head_index", ">= 0 (or -1 for none)",
              hook_head_index);
    check_arg(context_size == -1 || context_size > 0, who, "context_size",
              "> 0 (or -1 for unknown)", context_size);
    check_arg(hook_name.find_first_of(" \t\n\r") == std::string::npos, who, "hook_name",
              "a hook name without whitespace (e.g. blocks.3.hook_resid_post)",
              "\"" + hook_name + "\"");
    for (const std::string* f : {&model_name, &hook_name, &dataset_path})
      for (char c : *f)
        check_arg(static_cast<unsigned char>(c) >= 0x20, who, "metadata",
                  "printable text in model_name, hook_name and dataset_path",
                  "a control character");
  }

  /// \brief The known fields as a JSON object (SAELens's key names; unknown ones omitted).
  nlohmann::json to_json() const {
    nlohmann::json j = nlohmann::json::object();
    if (!model_name.empty()) j["model_name"] = model_name;
    if (!hook_name.empty()) j["hook_name"] = hook_name;
    if (hook_head_index >= 0) j["hook_head_index"] = hook_head_index;
    if (context_size > 0) j["context_size"] = context_size;
    if (!dataset_path.empty()) j["dataset_path"] = dataset_path;
    if (prepend_bos) j["prepend_bos"] = *prepend_bos;
    return j;
  }

  /// \brief Reads the known fields of a JSON object (null = unknown), checked. With `strict`,
  /// any other key is an error (ergo's own files); without, other keys are ignored (a SAELens
  /// metadata block has more, e.g. neuronpedia_id, and the version keys). Throws InvalidArgument
  /// "<who>(): metadata.<key>: expected ..., got ..." for a value of the wrong kind.
  static SaeMetadata from_json(const nlohmann::json& j, const std::string& who, bool strict) {
    SaeMetadata m;
    check_arg(j.is_object(), who, "metadata", "a JSON object", j.dump());
    for (const auto& kv : j.items()) {
      const std::string key = "metadata." + kv.key();
      const nlohmann::json& v = kv.value();
      auto text = [&](std::string& out) {
        check_arg(v.is_string() || v.is_null(), who, key, "a string", v.dump());
        if (v.is_string()) out = v.get<std::string>();
      };
      auto integer = [&](Index& out) {
        check_arg(v.is_number_integer() || v.is_null(), who, key, "an integer", v.dump());
        if (v.is_number_integer()) out = v.get<Index>();
      };
      if (kv.key() == "model_name")
        text(m.model_name);
      else if (kv.key() == "hook_name" || kv.key() == "hook_point")
        text(m.hook_name);
      else if (kv.key() == "dataset_path")
        text(m.dataset_path);
      else if (kv.key() == "hook_head_index" || kv.key() == "hook_point_head_index")
        integer(m.hook_head_index);
      else if (kv.key() == "context_size")
        integer(m.context_size);
      else if (kv.key() == "prepend_bos") {
        check_arg(v.is_boolean() || v.is_null(), who, key, "true or false", v.dump());
        if (v.is_boolean()) m.prepend_bos = v.get<bool>();
      } else if (strict) {
        throw_invalid(who, key,
                      "one of model_name, hook_name, hook_head_index, context_size, "
                      "dataset_path, prepend_bos",
                      "an unknown key");
      }
    }
    try {
      m.check();
    } catch (const InvalidArgument& e) {
      throw_invalid(who, "metadata", "valid SAE metadata", e.what());
    }
    return m;
  }
};

}  // namespace ergo::io

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Checks that an ergo-written SAELens folder loads the way SAELens 6 loads it, and that the
SAELens forward pass on it gives ergo's codes. Needs python3-numpy and python3-torch only.

    ergo_sae encode --sae FOLDER --data x.npy --out z.npy
    /usr/bin/python3 tests/io/saelens_compat_check.py FOLDER x.npy z.npy

SAELens itself (its dependency tree: transformer_lens, datasets, ...) is not packaged in Debian,
so this script follows, step by step, what SAELens 6's `SAE.load_from_disk(folder)` does
(read from its public source: sae_lens/saes/sae.py, sae_lens/loading/pretrained_sae_loaders.py,
sae_lens/saes/{standard,topk,jumprelu}_sae.py):

1. json.load(folder/cfg.json); the config is treated as 6.x (no conversion) iff
   metadata.sae_lens_version >= 6.0.0;
2. the architecture selects the config dataclass; unknown top-level keys are dropped; the
   remaining keys must be fields of that dataclass (d_in, d_sae, dtype, device,
   apply_b_dec_to_input, normalize_activations, reshape_activations, metadata, and k /
   rescale_acts_by_decoder_norm for topk), normalize_activations must be one of the accepted
   strings, dtype a key of DTYPE_MAP;
3. every tensor of sae_weights.safetensors is read and cast to cfg dtype; the module is built
   with W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in] (+ threshold
   [d_sae] for jumprelu) and load_state_dict is strict: the key set and every shape must match;
4. encode: sae_in = x - b_dec * apply_b_dec_to_input; h = sae_in @ W_enc + b_enc;
   standard: relu(h); topk: top-k of h per row, then relu; jumprelu: relu(h) * (h > relu(t)).
"""
import json
import struct
import sys

import numpy as np
import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
          "bfloat16": torch.bfloat16, "torch.float32": torch.float32,
          "torch.float64": torch.float64, "torch.float16": torch.float16,
          "torch.bfloat16": torch.bfloat16}
ST = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16}
BASE_FIELDS = {"d_in", "d_sae", "dtype", "device", "apply_b_dec_to_input",
               "normalize_activations", "reshape_activations", "metadata"}
EXTRA_FIELDS = {"standard": set(), "jumprelu": set(), "topk": {"k", "rescale_acts_by_decoder_norm"}}
META_FIELDS = {"model_name", "hook_name", "model_class_name", "hook_head_index",
               "model_from_pretrained_kwargs", "prepend_bos", "exclude_special_tokens",
               "neuronpedia_id", "context_size", "seqpos_slice", "dataset_path",
               "sae_lens_version", "sae_lens_training_version"}


def version_tuple(v):
    return tuple(int("".join(c for c in p if c.isdigit()) or 0) for p in v.split(".")[:3])


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        dt = ST[e["dtype"]]
        buf = bytearray(data[b:end])
        if dt == torch.bfloat16:
            t = torch.frombuffer(buf, dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.frombuffer(buf, dtype=dt)
        out[name] = t.reshape(e["shape"]).clone()
    return out


def main(folder, x_path, z_path):
    cfg = json.load(open(folder + "/cfg.json"))
    assert version_tuple(cfg["metadata"]["sae_lens_version"]) >= (6, 0, 0), "pre-6 config"
    arch = cfg["architecture"]
    assert arch in EXTRA_FIELDS, "architecture %s" % arch
    fields = BASE_FIELDS | EXTRA_FIELDS[arch]
    kept = {k: v for k, v in cfg.items() if k in fields}
    assert {"d_in", "d_sae"} <= set(kept), "d_in/d_sae missing"
    assert set(cfg["metadata"]) <= META_FIELDS, "unknown metadata keys %s" % (set(cfg["metadata"]) - META_FIELDS)
    assert kept.get("normalize_activations", "none") in (
        "none", "expected_average_only_in", "constant_norm_rescale", "layer_norm")
    assert kept.get("reshape_activations", "none") in ("none", "hook_z")
    dtype = DTYPES[kept.get("dtype", "float32")]
    d_in, d_sae = kept["d_in"], kept["d_sae"]

    sd = {k: v.to(dtype) for k, v in read_safetensors(folder + "/sae_weights.safetensors").items()}
    want = {"W_enc": [d_in, d_sae], "b_enc": [d_sae], "W_dec": [d_sae, d_in], "b_dec": [d_in]}
    if arch == "jumprelu":
        want["threshold"] = [d_sae]
    assert set(sd) == set(want), "strict load_state_dict: keys %s vs %s" % (sorted(sd), sorted(want))
    for k, s in want.items():
        assert list(sd[k].shape) == s, "%s shape %s, expected %s" % (k, list(sd[k].shape), s)

    x = torch.tensor(np.load(x_path)).to(dtype)
    sae_in = x - sd["b_dec"] * kept.get("apply_b_dec_to_input", True)
    h = sae_in @ sd["W_enc"] + sd["b_enc"]
    if arch == "standard":
        z = torch.relu(h)
    elif arch == "topk":
        assert not kept.get("rescale_acts_by_decoder_norm", False)
        vals, idx = torch.topk(h, k=kept["k"], dim=-1)
        z = torch.zeros_like(h).scatter(-1, idx, torch.relu(vals))
    else:
        z = torch.relu(h) * (h > torch.relu(sd["threshold"])).to(h.dtype)
    z_ergo = torch.tensor(np.load(z_path)).to(dtype)
    assert z.shape == z_ergo.shape, "codes shape %s vs %s" % (tuple(z.shape), tuple(z_ergo.shape))
    err = (z - z_ergo).abs().max().item()
    scale = max(1.0, z.abs().max().item())
    print("%s: architecture %s, d_in %d, d_sae %d, %d samples, max |z_saelens - z_ergo| = %.3g"
          % (folder, arch, d_in, d_sae, x.shape[0], err))
    # float32 forward passes summing d_in products in different orders agree to ~1e-5 relative
    assert err <= 1e-4 * scale, "codes differ"
    print("OK: loads as SAELens 6 loads it, and its forward pass reproduces ergo's codes")


if __name__ == "__main__":
    main(*sys.argv[1:4])

// SPDX-License-Identifier: MIT
#pragma once

// Input side of ergo-linrep: counterfactual pairs of one concept from one file.
//
// A concept file holds the representations of n counterfactual word pairs:
// - .safetensors with tensors "base" and "target", each [n, d] (row i of one pairs with row i
//   of the other); or
// - .npy (or a single-tensor .safetensors) [2n, d] with the n base rows first, then the n target
//   rows ("halves", default), or alternating base, target rows ("interleaved").

#include "common.hpp"

#include <ergo/identify.hpp>

#include <string>

namespace ergo::tools {

/// Reads the pairs of one concept; `spec` is "[name=]file"; layout is "halves" or "interleaved".
inline identify::ConceptPairs load_concept_pairs(const std::string& spec,
                                                 const std::string& layout = "halves") {
  const char* who = "load_concept_pairs";
  check_arg(layout == "halves" || layout == "interleaved", who, "layout", "halves or interleaved",
            layout);
  const auto named = split_named(spec);
  ergo::identify::ConceptPairs c;
  c.name = named.first;
  const std::string& path = named.second;
  if (ends_with(path, ".safetensors")) {
    io::SafetensorsFile f(path, who);
    if (f.contains("base") && f.contains("target")) {
      io::ReadOptions opt;
      opt.require_finite = true;
      c.base = f.matrix<double>("base", opt);
      c.target = f.matrix<double>("target", opt);
      if (c.base.rows() != c.target.rows() || c.base.cols() != c.target.cols())
        throw io::FormatError(make_message(
            who, "'" + path + "' target",
            detail::str_cat("shape [", c.base.cols(), ", ", c.base.rows(), "] (as base)"),
            f.view("target").info().describe()));
      return c;
    }
  }
  const Matrix<double> all = read_matrix<double>(path, false);  // d × 2n
  if (all.cols() % 2 != 0 || all.cols() < 2)
    throw io::FormatError(make_message(who, "'" + path + "'",
                                       "an even number (2n >= 2) of rows: n bases, n targets",
                                       detail::str_cat(all.cols(), " rows")));
  const Index n = all.cols() / 2, d = all.rows();
  c.base.resize(d, n);
  c.target.resize(d, n);
  for (Index i = 0; i < n; ++i) {
    c.base.col(i) = layout == "halves" ? all.col(i) : all.col(2 * i);
    c.target.col(i) = layout == "halves" ? all.col(n + i) : all.col(2 * i + 1);
  }
  return c;
}

}  // namespace ergo::tools

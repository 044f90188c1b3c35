// SPDX-License-Identifier: MIT
#pragma once

// The commands of ergo-sae, as functions (so that tests can run them without a shell):
// - run_train (sae_train.hpp): train any ergo::sae architecture on activation files streamed by
//   io::ActivationSource, with periodic checkpoints and exact --resume;
// - run_eval: reconstruction/sparsity metrics, and concept alignment when a label or
//   probability file is given (plus MCC against a planted dictionary or codes);
// - run_convert: between the SAELens, sparsify, dictionary_learning and native ergo layouts.

#include "common.hpp"
#include "sae_train.hpp"

#include <ergo/core.hpp>
#include <ergo/io.hpp>
#include <ergo/sae.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <cctype>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <fstream>
#include <iomanip>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace ergo::tools {

// -------------------------------------------------------------------------------- eval ----

/// Options of `ergo-sae eval`.
struct EvalOptions {
  std::string sae;                ///< SAE folder or file (any layout sae::load_any reads)
  std::vector<std::string> data;  ///< activation files (samples in file order)
  std::string tensor;
  Index max_samples = 32768;    ///< samples evaluated (the first ones, in file order; in memory)
  std::string labels;           ///< [N] or [N, K] integer labels aligned with the data
  std::string probs;            ///< [N, K] probabilities p(c_k = 1 | x) aligned with the data
  std::string true_dictionary;  ///< [n, d] planted atoms (rows) -> dictionary MCC
  std::string true_codes;       ///< [N, n] planted codes -> code MCC
  Index align_samples = 10000;  ///< samples used for alignment / code MCC (memory m × N)
  Index k = 0;                  ///< k for a TopK file that does not carry it
  bool probe = true;            ///< also fit the supervised probe upper bound (labels needed)
  std::string json_out;         ///< where to write the JSON result ("" = none)
  /// Counterfactual pairs (CSV "base,counterfactual,concept" or an integer .npy [P, 3]): probes
  /// cross-fitted on the pairs and every feature scored against them (sae/counterfactual.hpp).
  std::string pairs;
  sae::CounterfactualParams pair_params;  ///< folds, l2, permutations, seed of that evaluation
};

namespace detail {

/// Concept alignment over blocks of latents (the max over features is taken block by block, so
/// the result equals sae::concept_alignment on all of z without an m × N double copy).
inline sae::ConceptAlignment blocked_alignment(const Matrix<float>& z, const Matrix<double>& p,
                                               Index block = 1024) {
  sae::ConceptAlignment best;
  const Index K = p.rows();
  best.exp_corr.assign(static_cast<std::size_t>(K), -2.0);
  best.raw_corr.assign(static_cast<std::size_t>(K), -2.0);
  best.exp_feature.assign(static_cast<std::size_t>(K), 0);
  best.raw_feature.assign(static_cast<std::size_t>(K), 0);
  for (Index r0 = 0; r0 < z.rows(); r0 += block) {
    const Index n = std::min(block, z.rows() - r0);
    const sae::ConceptAlignment a = sae::concept_alignment(z.middleRows(r0, n), p);
    for (Index k = 0; k < K; ++k) {
      const auto kk = static_cast<std::size_t>(k);
      if (a.exp_corr[kk] > best.exp_corr[kk]) {
        best.exp_corr[kk] = a.exp_corr[kk];
        best.exp_feature[kk] = r0 + a.exp_feature[kk];
      }
      if (a.raw_corr[kk] > best.raw_corr[kk]) {
        best.raw_corr[kk] = a.raw_corr[kk];
        best.raw_feature[kk] = r0 + a.raw_feature[kk];
      }
    }
  }
  for (Index k = 0; k < K; ++k) {
    best.mean_exp += best.exp_corr[static_cast<std::size_t>(k)] / static_cast<double>(K);
    best.mean_raw += best.raw_corr[static_cast<std::size_t>(k)] / static_cast<double>(K);
  }
  return best;
}

/// Labels as K × N in {0, 1}: a single row with values beyond 1 is one-hot encoded.
inline IntMatrix binary_labels(const IntMatrix& raw) {
  if (raw.rows() != 1 || raw.maxCoeff() <= 1) return raw;
  check_arg(raw.minCoeff() >= 0, "ergo-sae eval", "--labels", "non-negative class ids",
            raw.minCoeff());
  const Index V = raw.maxCoeff() + 1;
  IntMatrix out = IntMatrix::Zero(V, raw.cols());
  for (Index j = 0; j < raw.cols(); ++j) out(raw(0, j), j) = 1;
  return out;
}

/// \brief Reads a pairs file as 3 × P (base, counterfactual, concept): a .npy integer array
/// [P, 3], or a CSV/text file with one pair per line, three integers separated by commas or
/// blanks; empty lines and lines starting with '#' are skipped, and so is a first line that does
/// not start with a digit (a header such as "base,counterfactual,concept").
inline IntMatrix read_pairs(const std::string& path) {
  const char* who = "ergo-sae eval";
  if (ends_with(path, ".npy") || ends_with(path, ".safetensors") ||
      path.find(".safetensors:") != std::string::npos) {
    IntMatrix p = read_matrix<std::int32_t>(path, false);
    check_arg(p.rows() == 3, who, "--pairs", "an integer array [P, 3]",
              str_cat("[", p.cols(), ", ", p.rows(), "]"));
    return p;
  }
  std::ifstream f(path);
  if (!f) throw_invalid(who, "--pairs", "a readable file", "'" + path + "'");
  std::vector<std::array<std::int64_t, 3>> rows;
  std::string line;
  Index line_no = 0;
  bool first = true;
  while (std::getline(f, line)) {
    ++line_no;
    const auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    if (first && !std::isdigit(static_cast<unsigned char>(line[b])) && line[b] != '-') {
      first = false;  // header
      continue;
    }
    first = false;
    for (char& ch : line)
      if (ch == ',' || ch == ';' || ch == '\t') ch = ' ';
    std::istringstream is(line);
    std::array<std::int64_t, 3> r{};
    std::string extra;
    if (!(is >> r[0] >> r[1] >> r[2]) || (is >> extra))
      throw_invalid(who, "--pairs", "lines of three integers: base, counterfactual, concept",
                    str_cat("'", line, "' at line ", line_no, " of ", path));
    rows.push_back(r);
  }
  check_arg(!rows.empty(), who, "--pairs", "at least one pair", str_cat("none in ", path));
  IntMatrix p(3, static_cast<Index>(rows.size()));
  for (size_t q = 0; q < rows.size(); ++q)
    for (Index i = 0; i < 3; ++i) {
      const std::int64_t v = rows[q][static_cast<size_t>(i)];
      check_arg(v >= 0 && v <= std::numeric_limits<std::int32_t>::max(), who, "--pairs",
                "non-negative 32-bit integers", str_cat(v, " in pair ", q));
      p(i, static_cast<Index>(q)) = static_cast<std::int32_t>(v);
    }
  return p;
}

/// The counterfactual-pair evaluation as JSON.
inline nlohmann::json pairs_json(const sae::PairEvaluation& ev, const sae::CounterfactualParams& cp,
                                 Index used_samples) {
  nlohmann::json concepts = nlohmann::json::array();
  for (const sae::PairConceptScore& s : ev.concepts)
    concepts.push_back({{"concept", s.concept_id},
                        {"pairs", s.pairs},
                        {"samples", s.samples},
                        {"feature", s.feature},
                        {"corr", num(s.corr)},
                        {"feature_raw", s.feature_raw},
                        {"corr_raw", num(s.corr_raw)},
                        {"feature_label_corr", num(s.feature_label_corr)},
                        {"probe_label_corr", num(s.probe_label_corr)},
                        {"probe_accuracy", num(s.probe_accuracy)},
                        {"null_p95", num(s.null_p95)},
                        {"null_p99", num(s.null_p99)},
                        {"p_value", num(s.p_value)},
                        {"probe_exact_corr", num(s.probe_exact_corr)},
                        {"feature_exact_corr", num(s.feature_exact_corr)}});
  return {{"samples_used", used_samples},
          {"folds", cp.folds},
          {"l2", cp.l2},
          {"permutations", cp.permutations},
          {"seed", cp.seed},
          {"mean_corr", num(ev.mean_corr)},
          {"mean_null_p99", num(ev.mean_null_p99)},
          {"mean_feature_label_corr", num(ev.mean_feature_label_corr)},
          {"mean_probe_label_corr", num(ev.mean_probe_label_corr)},
          {"concepts", concepts}};
}

/// The counterfactual-pair evaluation as a Markdown table.
inline std::string pairs_table(const sae::PairEvaluation& ev) {
  auto f = [](double v) {
    if (!std::isfinite(v)) return std::string("–");
    std::ostringstream os;
    os << std::fixed << std::setprecision(3) << v;
    return os.str();
  };
  std::ostringstream os;
  const bool exact = !ev.concepts.empty() && std::isfinite(ev.concepts[0].probe_exact_corr);
  os << "| concept | pairs | best feature | corr(exp z, p̂) | null p95 | null p99 | p | "
        "feature corr(label) | probe corr(label) (upper bound) | probe accuracy |"
     << (exact ? " probe corr(p) | feature corr(p) |" : "")
     << "\n|---|---|---|---|---|---|---|---|---|---|" << (exact ? "---|---|" : "") << "\n";
  for (const sae::PairConceptScore& s : ev.concepts) {
    os << "| " << s.concept_id << " | " << s.pairs << " | " << s.feature << " | " << f(s.corr)
       << " | " << f(s.null_p95) << " | " << f(s.null_p99) << " | " << std::setprecision(3)
       << s.p_value << " | " << f(s.feature_label_corr) << " | " << f(s.probe_label_corr) << " | "
       << f(s.probe_accuracy) << " |";
    if (exact) os << " " << f(s.probe_exact_corr) << " | " << f(s.feature_exact_corr) << " |";
    os << "\n";
  }
  os << "| mean | | | " << f(ev.mean_corr) << " | | " << f(ev.mean_null_p99) << " | | "
     << f(ev.mean_feature_label_corr) << " | " << f(ev.mean_probe_label_corr) << " | |"
     << (exact ? " | |" : "") << "\n";
  return os.str();
}

}  // namespace detail

// The activation files of eval / encode, read in order, checked against the SAE's input size.
inline io::ActivationSource<float> in_order_source(const std::vector<std::string>& data,
                                                   const std::string& tensor, Index d_in,
                                                   const char* who) {
  io::ActivationSourceParams sp;
  sp.shuffle = false;
  sp.batch_size = 4096;
  sp.tensor = tensor;
  io::ActivationSource<float> src(data, sp);
  check_arg(src.dim() == d_in, who, "--data",
            detail::str_cat("activations of dimension d_in = ", d_in), src.dim());
  return src;
}

/// \brief The counterfactual-pair block of `ergo-sae eval`: probes cross-fitted on the pairs'
/// samples of X (d × N), every feature of the SAE scored against them; `probs` (K × N, or empty)
/// are exact posteriors to check the probes against. Only the samples the pairs use are encoded.
inline nlohmann::json eval_pairs(const sae::SparseAutoencoder<float>& model, const Matrix<float>& X,
                                 const IntMatrix& pairs, const Matrix<double>& probs,
                                 const sae::CounterfactualParams& cp, std::string* table) {
  std::vector<Index> used;
  for (Index q = 0; q < pairs.cols(); ++q)
    for (Index r = 0; r < 2; ++r) used.push_back(pairs(r, q));
  std::sort(used.begin(), used.end());
  used.erase(std::unique(used.begin(), used.end()), used.end());
  std::map<Index, Index> pos;
  Matrix<float> Xu(X.rows(), static_cast<Index>(used.size()));
  for (size_t i = 0; i < used.size(); ++i) {
    pos[used[i]] = static_cast<Index>(i);
    Xu.col(static_cast<Index>(i)) = X.col(used[i]);
  }
  IntMatrix pu = pairs;
  for (Index q = 0; q < pairs.cols(); ++q)
    for (Index r = 0; r < 2; ++r) pu(r, q) = static_cast<std::int32_t>(pos[pairs(r, q)]);
  Matrix<double> pe;
  if (probs.size() > 0) {
    pe.resize(probs.rows(), Xu.cols());
    for (size_t i = 0; i < used.size(); ++i) pe.col(static_cast<Index>(i)) = probs.col(used[i]);
  }
  const std::vector<sae::PairProbe> probes = sae::fit_pair_probes(Xu, pu, cp);
  const sae::PairEvaluation ev =
      sae::score_pair_features(model.encode(Xu), probes, cp, pe.size() > 0 ? &pe : nullptr);
  if (table) *table = detail::pairs_table(ev);
  return detail::pairs_json(ev, cp, Xu.cols());
}

/// \brief Evaluates an SAE on activation files; returns (and optionally writes) a JSON object.
/// With pairs, `table` (if given) receives the Markdown table of the pair evaluation.
inline nlohmann::json run_eval(const EvalOptions& o, std::string* table = nullptr) {
  const char* who = "ergo-sae eval";
  check_arg(!o.data.empty(), who, "--data", "at least one activation file", "none");
  check_arg(o.max_samples > 0, who, "--max-samples", "> 0", o.max_samples);
  std::string layout;
  const sae::SparseAutoencoder<float> model = sae::load_any<float>(o.sae, o.k, &layout);
  io::ActivationSource<float> src = in_order_source(o.data, o.tensor, model.d_in(), who);
  IntMatrix pairs;
  Index N = std::min(o.max_samples, src.train_size());
  if (!o.pairs.empty()) {  // every sample a pair names is loaded, beyond --max-samples if needed
    pairs = detail::read_pairs(o.pairs);
    const Index hi = std::max(pairs.row(0).maxCoeff(), pairs.row(1).maxCoeff());
    check_arg(hi < src.train_size(), who, "--pairs",
              detail::str_cat("sample indices below the data's ", src.train_size(), " samples"),
              hi);
    N = std::max(N, hi + 1);
  }
  Matrix<float> X(src.dim(), N), B;
  for (Index c = 0; c < N;) {
    src.next(B);
    const Index n = std::min(B.cols(), N - c);
    X.middleCols(c, n) = B.leftCols(n);
    c += n;
  }
  nlohmann::json out;
  out["sae"] = o.sae;
  out["layout"] = layout;
  out["architecture"] = sae::to_string(model.architecture());
  out["d_in"] = model.d_in();
  out["d_sae"] = model.d_sae();
  out["reconstruction"] = detail::metrics_json(sae::evaluate_reconstruction(model, X));
  const Index Na = std::min(N, o.align_samples);
  const bool need_codes = !o.labels.empty() || !o.probs.empty() || !o.true_codes.empty();
  Matrix<float> Z;
  if (need_codes) Z = model.encode(X.leftCols(Na));
  IntMatrix labels;
  Matrix<double> probs;
  if (!o.labels.empty()) {
    labels = detail::binary_labels(read_matrix<std::int32_t>(o.labels));
    check_arg(labels.cols() >= N, who, "--labels",
              detail::str_cat("at least ", N, " samples (as the data)"), labels.cols());
    labels = labels.leftCols(N).eval();
  }
  if (!o.probs.empty()) {
    probs = read_matrix<double>(o.probs);
    check_arg(probs.cols() >= N, who, "--probs",
              detail::str_cat("at least ", N, " samples (as the data)"), probs.cols());
    probs = probs.leftCols(N).eval();
    check_arg(labels.size() == 0 || labels.rows() == probs.rows(), who, "--labels",
              detail::str_cat(probs.rows(), " concepts (as --probs)"), labels.rows());
  }
  if (probs.size() == 0 && labels.size() > 0) probs = labels.cast<double>();  // hard labels as p
  if (probs.size() > 0) {
    const sae::ConceptAlignment a = detail::blocked_alignment(Z, probs.leftCols(Na));
    out["concept_alignment"] = {{"samples", Na},
                                {"target", o.probs.empty() ? "labels" : "probabilities"},
                                {"mean_exp_corr", num(a.mean_exp)},
                                {"mean_raw_corr", num(a.mean_raw)},
                                {"exp_corr", a.exp_corr},
                                {"exp_feature", a.exp_feature},
                                {"raw_corr", a.raw_corr},
                                {"raw_feature", a.raw_feature}};
    if (o.probe && labels.size() > 0) {
      const Index Np = std::min<Index>(Na, 20000);
      const sae::ProbeAlignment pa =
          sae::probe_alignment(X.leftCols(Np), IntMatrix(labels.leftCols(Np)), probs.leftCols(Np));
      out["probe_upper_bound"] = {{"samples", Np},
                                  {"mean_corr", num(pa.mean_corr)},
                                  {"mean_accuracy", num(pa.mean_accuracy)},
                                  {"corr", pa.corr},
                                  {"accuracy", pa.accuracy}};
    }
  }
  if (!o.true_dictionary.empty()) {
    const Matrix<double> D = read_matrix<double>(o.true_dictionary);  // [n, d] -> d × n
    const sae::MatchResult r = sae::dictionary_mcc(model.weights().decoder, D);
    out["dictionary_mcc"] = {{"mcc", num(r.mcc)}, {"matched", r.matched}};
  }
  if (!o.true_codes.empty()) {
    const Matrix<double> C = read_matrix<double>(o.true_codes);  // [N, n] -> n × N
    check_arg(C.cols() >= Na, who, "--true-codes", detail::str_cat("at least ", Na, " samples"),
              C.cols());
    const sae::MatchResult r = sae::code_mcc(Z, C.leftCols(Na));
    out["code_mcc"] = {{"samples", Na}, {"mcc", num(r.mcc)}};
  }
  if (pairs.size() > 0)  // exact posteriors only from --probs (not labels standing in for them)
    out["counterfactual"] = eval_pairs(model, X, pairs, o.probs.empty() ? Matrix<double>() : probs,
                                       o.pair_params, table);
  if (!o.json_out.empty()) write_json(o.json_out, out);
  return out;
}

// ------------------------------------------------------------------------------ encode ----

/// Options of `ergo-sae encode`.
struct EncodeOptions {
  std::string sae;                ///< SAE folder or file
  std::vector<std::string> data;  ///< activation files, samples in file order
  std::string tensor;
  std::string out;         ///< codes file (.npy: C-order [N, d_sae]; .safetensors: "codes")
  Index max_samples = -1;  ///< < 0: all
  Index k = 0;
  std::string dtype = "float32";  ///< stored dtype of the codes
};

/// \brief Encodes activations with an SAE and writes the codes as [N, d_sae] (one row per
/// sample, as PyTorch/NumPy expect). Returns the number of samples written.
inline Index run_encode(const EncodeOptions& o) {
  const char* who = "ergo-sae encode";
  check_arg(!o.data.empty(), who, "--data", "at least one activation file", "none");
  io::DType dt;
  check_arg(io::parse_dtype_name(o.dtype, dt) && dt != io::DType::BF16, who, "--dtype",
            "float32, float64 or float16", o.dtype);
  const sae::SparseAutoencoder<float> model = sae::load_any<float>(o.sae, o.k);
  io::ActivationSource<float> src = in_order_source(o.data, o.tensor, model.d_in(), who);
  const Index N = o.max_samples < 0 ? src.train_size() : std::min(o.max_samples, src.train_size());
  Matrix<float> Z(model.d_sae(), N), X;
  for (Index c = 0; c < N;) {
    src.next(X);
    const Index n = std::min(X.cols(), N - c);
    Z.middleCols(c, n) = model.encode(X.leftCols(n));
    c += n;
  }
  if (ends_with(o.out, ".safetensors")) {
    io::SafetensorsWriter w;
    w.add("codes", Z, dt);
    w.write(o.out);
  } else {
    io::NpyWriteOptions wo;
    wo.has_dtype = true;
    wo.dtype = dt;
    io::write_npy(o.out, Z, wo);
  }
  return N;
}

// ----------------------------------------------------------------------------- convert ----

/// Options of `ergo-sae convert`.
struct ConvertOptions {
  std::string in;              ///< any layout sae::load_any reads
  std::string out;             ///< output folder ("saelens", "both") or file ("ergo")
  std::string to = "saelens";  ///< saelens, ergo or both
  std::string dtype;           ///< SAELens weight dtype ("" = float32)
  Index k = 0;                 ///< k for a TopK input that does not carry it
  /// Metadata to write (cfg.json "metadata", the native file): each field that is set replaces
  /// the input's; the others keep the input's (--model-name, --hook-name, --dataset,
  /// --context-size).
  io::SaeMetadata metadata;
};

/// `base` with every field that is set in `over` replaced.
inline io::SaeMetadata merge_metadata(io::SaeMetadata base, const io::SaeMetadata& over) {
  if (!over.model_name.empty()) base.model_name = over.model_name;
  if (!over.hook_name.empty()) base.hook_name = over.hook_name;
  if (over.hook_head_index >= 0) base.hook_head_index = over.hook_head_index;
  if (over.context_size > 0) base.context_size = over.context_size;
  if (!over.dataset_path.empty()) base.dataset_path = over.dataset_path;
  if (over.prepend_bos) base.prepend_bos = over.prepend_bos;
  return base;
}

/// \brief Converts an SAE between layouts; returns a short description of what was written.
inline std::string run_convert(const ConvertOptions& o) {
  const char* who = "ergo-sae convert";
  check_arg(o.to == "saelens" || o.to == "ergo" || o.to == "both", who, "--to",
            "saelens, ergo or both", o.to);
  o.metadata.check();
  std::string layout;
  io::SaeMetadata meta;
  const sae::SparseAutoencoder<float> model = sae::load_any<float>(o.in, o.k, &layout, &meta);
  meta = merge_metadata(meta, o.metadata);
  std::ostringstream msg;
  msg << "read " << sae::to_string(model.architecture()) << " SAE (" << model.d_in() << " -> "
      << model.d_sae() << ") from the " << layout << " layout";
  if (o.to == "saelens" || o.to == "both") {
    sae::export_saelens(o.out, model, sae::saelens_config(model, meta), o.dtype);
    msg << "; wrote SAELens folder " << o.out;
  }
  if (o.to == "ergo" || o.to == "both") {
    const std::string file = o.to == "ergo" && ends_with(o.out, ".safetensors")
                                 ? o.out
                                 : join(o.out, "ergo_sae.safetensors");
    if (o.to == "both" || !ends_with(o.out, ".safetensors")) io::make_directories(o.out);
    sae::save_native(file, model, {{"converted_from", o.in}, {"layout", layout}}, meta);
    msg << "; wrote " << file;
  }
  return msg.str();
}

}  // namespace ergo::tools

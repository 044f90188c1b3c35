// SPDX-License-Identifier: MIT
#pragma once

// The three commands of ergo-sae, as functions (so that tests can run them without a shell):
// - run_train: train any ergo::sae architecture on activation files streamed by
//   io::ActivationSource, with periodic checkpoints and exact --resume;
// - run_eval: reconstruction/sparsity metrics, and concept alignment when a label or
//   probability file is given (plus MCC against a planted dictionary or codes);
// - run_convert: between the SAELens, sparsify, dictionary_learning and native ergo layouts.

#include "sae_bridge.hpp"
#include "common.hpp"

#include <ergo/core.hpp>
#include <ergo/io.hpp>
#include <ergo/sae.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <csignal>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace ergo::tools {

// ------------------------------------------------------------------------------- train ----

/// Options of `ergo-sae train` (defaults are those of sae::SaeTrainParams where they overlap).
struct TrainOptions {
  std::vector<std::string> data;  ///< .npy / .safetensors activation files, each [n, d]
  std::string tensor;             ///< safetensors tensor name ("" = the only one / "activations")
  std::string out;                ///< output folder
  std::string architecture =
      "topk";           ///< relu_l1, topk, batchtopk, jumprelu, p_anneal, structured, unmixer
  Index d_sae = 0;      ///< latents; 0 = expansion · d_in
  Index expansion = 8;  ///< used when d_sae = 0
  Index k = 32;         ///< TopK / BatchTopK
  Index steps = 2000;
  Index batch_size = 4096;
  double lr = 2e-4;
  double sparsity = -1.0;       ///< λ; < 0 = the architecture's default
  double aux = 1.0 / 32.0;      ///< AuxK weight (TopK / BatchTopK)
  bool normalize_input = true;  ///< scale inputs to E‖x‖ = √d (folded into the saved weights)
  Index buffer_size = 262144;   ///< shuffling pool, in samples
  Index chunk_size = 1024;
  double validation_fraction = 0.0;
  Index validation_samples = 16384;  ///< validation samples evaluated at the end
  std::uint64_t seed = 0;
  Index log_every = 100;
  Index checkpoint_every = 1000;  ///< steps between checkpoints (0 = only at the end / on stop)
  bool resume = false;            ///< continue from out/checkpoint.safetensors if it exists
  Index stop_after = -1;          ///< stop (as if interrupted) after this many steps; for tests
  std::string dtype;              ///< SAELens weight dtype ("" = float32)
  int threads = 0;
};

/// What run_train did.
struct TrainResult {
  Outcome outcome;
  Index steps = 0;  ///< steps completed in total (including those before a resume)
  bool resumed = false;
  nlohmann::json report;  ///< also written to out/report.json
};

namespace detail {

using ::ergo::detail::str_cat;

inline volatile std::sig_atomic_t g_interrupted = 0;
inline void on_sigint(int) {
  g_interrupted = 1;
}

inline nlohmann::json options_json(const TrainOptions& o) {
  return {{"data", o.data},
          {"tensor", o.tensor},
          {"architecture", o.architecture},
          {"d_sae", o.d_sae},
          {"expansion", o.expansion},
          {"k", o.k},
          {"steps", o.steps},
          {"batch_size", o.batch_size},
          {"lr", o.lr},
          {"sparsity", o.sparsity},
          {"aux", o.aux},
          {"normalize_input", o.normalize_input},
          {"buffer_size", o.buffer_size},
          {"chunk_size", o.chunk_size},
          {"validation_fraction", o.validation_fraction},
          {"seed", o.seed}};
}

inline nlohmann::json metrics_json(const sae::ReconstructionMetrics& r) {
  return {{"samples", r.samples},
          {"mse", num(r.mse)},
          {"sse", num(r.sse)},
          {"total_variance", num(r.total_variance)},
          {"fvu", num(r.fvu)},
          {"explained_variance", num(r.explained_variance)},
          {"cosine", num(r.cosine)},
          {"l2_ratio", num(r.l2_ratio)},
          {"relative_bias", num(r.relative_bias)},
          {"l0", num(r.l0)},
          {"dead_fraction", num(r.dead_fraction)},
          {"dense_fraction", num(r.dense_fraction)}};
}

}  // namespace detail

/// \brief Trains an SAE on activation files (see TrainOptions). Writes into o.out:
/// checkpoint.safetensors (periodically and when stopped), ergo_sae.safetensors (native, any
/// architecture), cfg.json + sae_weights.safetensors (SAELens, when SAELens has the
/// architecture), training_log.csv and report.json.
/// \param cb progress callback (e.g. a ProgressBar); may stop training (a checkpoint is saved)
inline TrainResult run_train(const TrainOptions& o, Callback* cb = nullptr) {
  const char* who = "ergo-sae train";
  check_arg(!o.data.empty(), who, "--data", "at least one activation file", "none");
  check_arg(!o.out.empty(), who, "--out", "an output folder", "none");
  check_arg(o.steps > 0, who, "--steps", "> 0", o.steps);
  check_arg(o.checkpoint_every >= 0, who, "--checkpoint-every", ">= 0", o.checkpoint_every);
  io::make_directories(o.out);
  const std::string ckpt_path = join(o.out, "checkpoint.safetensors");
  TrainResult res;

  io::ActivationSourceParams sp;
  sp.batch_size = o.batch_size;
  sp.buffer_size = o.buffer_size;
  sp.chunk_size = o.chunk_size;
  sp.seed = derive_seed(o.seed, 10);
  sp.validation_fraction = o.validation_fraction;
  sp.tensor = o.tensor;
  io::ActivationSource<float> src(o.data, sp);

  sae::SaeParams p;
  p.architecture = sae::architecture_from_string(o.architecture);
  p.d_in = src.dim();
  p.d_sae = o.d_sae > 0 ? o.d_sae : o.expansion * src.dim();
  p.k = o.k;
  sae::SparseAutoencoder<float> model(p, derive_seed(o.seed, 11));

  sae::SaeTrainParams tp;
  tp.steps = o.steps;
  tp.batch_size = o.batch_size;
  tp.lr = o.lr;
  tp.sparsity_coefficient = o.sparsity;
  tp.aux_coefficient = o.aux;
  tp.normalize_input = o.normalize_input;
  tp.seed = derive_seed(o.seed, 12);
  tp.threads = o.threads;
  tp.log_every = o.log_every;
  sae::SaeTrainer<float> trainer(tp);

  const nlohmann::json opts = detail::options_json(o);
  double s = 1.0;
  if (o.resume && file_exists(ckpt_path)) {
    const io::Checkpoint ck = io::Checkpoint::load(ckpt_path);
    const nlohmann::json saved = nlohmann::json::parse(ck.get_string("options"));
    check_arg(saved == opts, who, "--resume", "the options of the run that wrote the checkpoint",
              "different options (start a new --out folder, or use the same options)");
    for (const auto& kv : model.named_weights())
      model.set_named_weight(kv.first, ck.get<float>("sae." + kv.first));
    s = ck.get_double("input_scale");
    trainer.begin(model);
    trainer.set_state(ck.get_map("trainer."));
    src.set_state(ck.get_string("stream"));
    res.resumed = true;
  } else {
    // Input scale and decoder-bias initialisation from a separate, seeded pass over the data
    // (as SaeTrainer::fit_stream does, but without consuming the training stream).
    io::ActivationSourceParams ep = sp;
    ep.seed = derive_seed(o.seed, 13);
    ep.batch_size = std::min<Index>(4096, src.train_size());
    io::ActivationSource<float> est(o.data, ep);
    const Index want =
        std::min(src.train_size(), std::max(tp.normalization_samples, tp.geometric_median_samples));
    const Index nm = std::min(want, tp.geometric_median_samples);
    Matrix<float> sample(src.dim(), nm), X;
    double norm_sum = 0.0;
    Index count = 0;
    while (count < want) {
      est.next_cycling(X);
      for (Index j = 0; j < X.cols() && count < want; ++j, ++count) {
        norm_sum += static_cast<double>(X.col(j).norm());
        if (count < nm) sample.col(count) = X.col(j);
      }
    }
    const double mean_norm = norm_sum / static_cast<double>(count);
    if (o.normalize_input && mean_norm > 0 && std::isfinite(mean_norm))
      s = std::sqrt(static_cast<double>(src.dim())) / mean_norm;
    sample *= static_cast<float>(s);
    model.weights().decoder_bias =
        sae::detail::geometric_median(sample, tp.geometric_median_iterations, 1e-5).cast<float>();
    trainer.begin(model);
  }

  auto save_checkpoint = [&]() {
    io::Checkpoint ck;
    for (const auto& kv : model.named_weights()) ck.put("sae." + kv.first, kv.second);
    ck.put_map(trainer.state(), "trainer.");
    ck.set_string("options", opts.dump());
    ck.set_string("sae_params", params_to_json(model.params()).dump());
    ck.set_double("input_scale", s);
    ck.set_string("stream", src.state());
    ck.set_int("step", trainer.steps_done());
    ck.save(ckpt_path);
  };

  // Training loop.
  std::ostringstream log;
  CsvLogger csv(log);
  CallbackList cbs;
  cbs.add(&csv);
  cbs.add(cb);
  ProgressEvent ev;
  ev.phase = "sae-train";
  ev.total = o.steps;
  ev.step = trainer.steps_done();
  Stopwatch sw;
  cbs.on_begin(ev);
  detail::g_interrupted = 0;
  auto prev_handler = std::signal(SIGINT, detail::on_sigint);
  Matrix<float> X;
  const Index first = trainer.steps_done();
  sae::LossTerms last;
  while (trainer.steps_done() < o.steps) {
    src.next_cycling(X);
    if (s != 1.0) X *= static_cast<float>(s);
    last = trainer.step(model, X);
    if (trainer.failed()) {
      res.outcome.status = Status::NumericalIssue;
      res.outcome.message = detail::str_cat(
          "non-finite loss or gradient at step ", trainer.steps_done(), " (reconstruction ",
          last.reconstruction, "); try a smaller --lr (", o.lr, ") or check the data");
      break;
    }
    const Index t = trainer.steps_done();
    const bool stop_now = (o.stop_after >= 0 && t >= o.stop_after) || detail::g_interrupted;
    if (t % o.log_every == 0 || t == o.steps || stop_now) {
      ev.step = t;
      ev.epoch = src.epoch();
      ev.loss = last.total;
      ev.elapsed_seconds = sw.seconds();
      ev.items_per_second =
          ev.elapsed_seconds > 0
              ? static_cast<double>((t - first) * o.batch_size) / ev.elapsed_seconds
              : 0;
      ev.extra = {
          {"l0", last.l0},
          {"fvu", last.batch_variance > 0 ? last.reconstruction / last.batch_variance : 0.0},
          {"dead", trainer.dead_fraction()}};
      if (!cbs.on_progress(ev)) {
        res.outcome.status = Status::Stopped;
        res.outcome.message = detail::str_cat("stopped by the callback at step ", t);
      }
    }
    if (stop_now && res.outcome.status == Status::Success) {
      res.outcome.status = Status::Stopped;
      res.outcome.message =
          detail::str_cat(detail::g_interrupted ? "interrupted" : "stopped (--stop-after)",
                          " at step ", t, "; continue with --resume");
    }
    if (res.outcome.status == Status::Stopped) {
      save_checkpoint();
      break;
    }
    if (o.checkpoint_every > 0 && t % o.checkpoint_every == 0 && t < o.steps) save_checkpoint();
  }
  std::signal(SIGINT, prev_handler);
  res.steps = trainer.steps_done();
  ev.step = res.steps;
  ev.elapsed_seconds = sw.seconds();
  cbs.on_end(ev, res.outcome.message);
  {
    // Append to the log of earlier (resumed) segments.
    const std::string log_path = join(o.out, "training_log.csv");
    std::string prev;
    if (res.resumed && file_exists(log_path)) {
      prev = read_text(log_path);
      const auto nl = log.str().find('\n');  // drop the repeated header
      io::atomic_write_file(log_path,
                            prev + (nl == std::string::npos ? "" : log.str().substr(nl + 1)));
    } else {
      io::atomic_write_file(log_path, log.str());
    }
  }
  if (res.outcome.status != Status::Success) {
    res.report = {{"status", to_string(res.outcome.status)},
                  {"message", res.outcome.message},
                  {"steps", res.steps}};
    write_json(join(o.out, "report.json"), res.report);
    return res;
  }
  save_checkpoint();  // the final training state (e.g. to train further later)

  // Export: fold the input scale so that the saved SAE takes raw activations.
  if (s != 1.0) model.fold_input_scale(s);
  nlohmann::json extra = {{"options", opts}, {"input_scale", s}, {"steps", res.steps}};
  save_native(join(o.out, "ergo_sae.safetensors"), model, extra);
  const bool saelens = saelens_exportable(model);
  if (saelens) save_saelens_folder(o.out, model, saelens_config(model), o.dtype);

  nlohmann::json rep;
  rep["status"] = to_string(res.outcome.status);
  rep["steps"] = res.steps;
  rep["resumed"] = res.resumed;
  rep["architecture"] = o.architecture;
  rep["d_in"] = model.d_in();
  rep["d_sae"] = model.d_sae();
  rep["input_scale"] = s;
  rep["train_samples"] = src.train_size();
  rep["validation_samples_held_out"] = src.validation_size();
  rep["last_batch"] = {
      {"loss", num(last.total)},
      {"reconstruction", num(last.reconstruction)},
      {"l0", num(last.l0)},
      {"fvu", num(last.batch_variance > 0 ? last.reconstruction / last.batch_variance : 0.0)}};
  rep["dead_fraction"] = trainer.dead_fraction();
  rep["saelens_export"] = saelens;
  rep["options"] = opts;
  if (src.validation_size() > 0) {
    const Matrix<float> V = src.validation_matrix(o.validation_samples);
    rep["validation"] = detail::metrics_json(sae::evaluate_reconstruction(model, V));
  }
  res.report = rep;
  write_json(join(o.out, "report.json"), rep);
  return res;
}

// -------------------------------------------------------------------------------- eval ----

/// Options of `ergo-sae eval`.
struct EvalOptions {
  std::string sae;                ///< SAE folder or file (any layout load_any_sae reads)
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

/// \brief Evaluates an SAE on activation files; returns (and optionally writes) a JSON object.
inline nlohmann::json run_eval(const EvalOptions& o) {
  const char* who = "ergo-sae eval";
  check_arg(!o.data.empty(), who, "--data", "at least one activation file", "none");
  check_arg(o.max_samples > 0, who, "--max-samples", "> 0", o.max_samples);
  std::string layout;
  const sae::SparseAutoencoder<float> model = load_any_sae<float>(o.sae, o.k, &layout);
  io::ActivationSource<float> src = in_order_source(o.data, o.tensor, model.d_in(), who);
  const Index N = std::min(o.max_samples, src.train_size());
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
  const sae::SparseAutoencoder<float> model = load_any_sae<float>(o.sae, o.k);
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
  std::string in;              ///< any layout load_any_sae reads
  std::string out;             ///< output folder ("saelens", "both") or file ("ergo")
  std::string to = "saelens";  ///< saelens, ergo or both
  std::string dtype;           ///< SAELens weight dtype ("" = float32)
  Index k = 0;                 ///< k for a TopK input that does not carry it
};

/// \brief Converts an SAE between layouts; returns a short description of what was written.
inline std::string run_convert(const ConvertOptions& o) {
  const char* who = "ergo-sae convert";
  check_arg(o.to == "saelens" || o.to == "ergo" || o.to == "both", who, "--to",
            "saelens, ergo or both", o.to);
  std::string layout;
  const sae::SparseAutoencoder<float> model = load_any_sae<float>(o.in, o.k, &layout);
  std::ostringstream msg;
  msg << "read " << sae::to_string(model.architecture()) << " SAE (" << model.d_in() << " -> "
      << model.d_sae() << ") from the " << layout << " layout";
  if (o.to == "saelens" || o.to == "both") {
    save_saelens_folder(o.out, model, saelens_config(model), o.dtype);
    msg << "; wrote SAELens folder " << o.out;
  }
  if (o.to == "ergo" || o.to == "both") {
    const std::string file = o.to == "ergo" && ends_with(o.out, ".safetensors")
                                 ? o.out
                                 : join(o.out, "ergo_sae.safetensors");
    if (o.to == "both" || !ends_with(o.out, ".safetensors")) io::make_directories(o.out);
    save_native(file, model, {{"converted_from", o.in}, {"layout", layout}});
    msg << "; wrote " << file;
  }
  return msg.str();
}

}  // namespace ergo::tools

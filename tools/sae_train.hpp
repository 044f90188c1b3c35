// SPDX-License-Identifier: MIT
#pragma once

// `ergo-sae train` as a function (so that tests can run it without a shell): train any
// ergo::sae architecture on activation files streamed by io::ActivationSource, with periodic
// checkpoints and exact --resume. Data-parallel over the ranks of a Communicator (mpirun): every
// rank streams the same seeded batches and reads its share of each; rank 0 alone writes files;
// an error on any rank stops every rank (docs/scale.md).

#include "common.hpp"

#include <ergo/core.hpp>
#include <ergo/io.hpp>
#include <ergo/sae.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace ergo::tools {

// ------------------------------------------------------------------------------- train ----

/// Options of `ergo-sae train`. The SAE's and the trainer's settings default from the library's
/// sae::SparseAutoencoderParams and sae::TrainerParams (steps, batch_size, lr,
/// sparsity_coefficient, aux_coefficient, normalize_input, log_every, threads).
struct TrainOptions {
  std::vector<std::string> data;  ///< .npy / .safetensors activation files, each [n, d]
  std::string tensor;             ///< safetensors tensor name ("" = the only one / "activations")
  std::string out;                ///< output folder
  /// relu_l1, topk, batchtopk, jumprelu, p_anneal, structured, unmixer (the registry's names)
  std::string architecture = sae::to_string(sae::SparseAutoencoderParams{}.architecture);
  Index d_sae = 0;                        ///< latents; 0 = expansion · d_in
  Index expansion = 8;                    ///< used when d_sae = 0
  Index k = sae::arch::TopK::Params{}.k;  ///< active latents (architectures with a k)
  sae::TrainerParams trainer;             ///< training settings (its seed is derived from `seed`)
  Index buffer_size = 262144;             ///< shuffling pool, in samples
  Index chunk_size = 1024;
  double validation_fraction = 0.0;
  Index validation_samples = 16384;  ///< validation samples evaluated at the end
  std::uint64_t seed = 0;            ///< seed of everything random
  Index checkpoint_every = 1000;     ///< steps between checkpoints (0 = only at the end / on stop)
  bool resume = false;               ///< continue from out/checkpoint.safetensors if it exists
  Index stop_after = -1;             ///< stop (as if interrupted) after this many steps; for tests
  std::string dtype;                 ///< SAELens weight dtype ("" = float32)
  /// Model, hook, dataset and context size, written into cfg.json's "metadata" (so SAELens can
  /// attach the SAE to the model) and into the native file; --model-name, --hook-name,
  /// --dataset, --context-size. Not part of the options a --resume must repeat.
  io::SaeMetadata metadata;
};

/// What the `train` command did.
struct TrainCommandResult {
  Outcome outcome;
  Index steps = 0;  ///< steps completed in total (including those before a resume)
  bool resumed = false;
  int ranks = 1;             ///< data-parallel ranks
  nlohmann::json report;     ///< also written to out/report.json
  std::string settings;      ///< the resolved training settings (sae::Trainer::describe_settings)
  sae::TrainingCheck check;  ///< signs of an untrained SAE; check.warning is printed by the CLI
};

namespace detail {

using ::ergo::detail::str_cat;

inline volatile std::sig_atomic_t g_interrupted = 0;
inline void on_sigint(int) {
  g_interrupted = 1;
}

// The options a resumed run must share with the run that wrote its checkpoint (the keys of
// earlier versions, so that their checkpoints still resume).
inline nlohmann::json options_json(const TrainOptions& o) {
  const sae::TrainerParams& t = o.trainer;
  return {{"data", o.data},
          {"tensor", o.tensor},
          {"architecture", o.architecture},
          {"d_sae", o.d_sae},
          {"expansion", o.expansion},
          {"k", o.k},
          {"steps", t.steps},
          {"batch_size", t.batch_size},
          {"lr", t.lr},
          {"sparsity", t.sparsity_coefficient},
          {"aux", t.aux_coefficient},
          {"normalize_input", t.normalize_input},
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
          {"l0_code", num(r.l0_code)},
          {"dead_fraction", num(r.dead_fraction)},
          {"dense_fraction", num(r.dense_fraction)}};
}

inline double batch_fvu(const sae::LossTerms& t) {
  return t.batch_variance > 0 ? t.reconstruction / t.batch_variance : 0.0;
}

/// One `train` run: the activation stream, the SAE, the trainer and the input scale.
class TrainRun {
 public:
  TrainRun(const TrainOptions& o, const Communicator& comm)
      : m_o(o),
        m_comm(comm),
        m_ckpt(join(o.out, "checkpoint.safetensors")),
        m_src(o.data, source_params(o)),
        m_model(model_params(o, m_src.dim()), derive_seed(o.seed, 11)),
        m_trainer(trainer_params(o), comm),
        m_opts(options_json(o)) {}

  /// Restores the checkpoint (resume) or estimates the input scale and b_dec (fresh start).
  /// Every rank reads the same checkpoint; a rank that cannot stops every rank.
  void start(TrainCommandResult& res) {
    const Index R = m_comm.size(), rem = m_src.train_size() % m_trainer.params().batch_size;
    check_arg(
        R == 1 || rem == 0 || rem >= R, "ergo-sae train", "--batch",
        str_cat("a batch size whose last batch of an epoch has at least one sample per rank (", R,
                " ranks)"),
        str_cat(m_trainer.params().batch_size, " (", m_src.train_size(),
                " training samples leave a last batch of ", rem, ")"));
    bool resume_now = m_o.resume && file_exists(m_ckpt);
    if (R > 1) {  // rank 0 decides: a checkpoint visible to rank 0 only must not split the ranks
      std::int64_t flag = m_comm.is_root() && resume_now ? 1 : 0;
      m_comm.allreduce_sum(&flag, 1);
      resume_now = flag > 0;
    }
    collective(m_comm, [&] { resume_now ? resume() : initialise(); });
    res.resumed = resume_now;
  }
  /// The training loop; stops early on the callback, Ctrl-C, --stop-after or numerical trouble.
  void train(TrainCommandResult& res, Callback* cb);
  /// Appends this segment's training log to out/training_log.csv.
  void write_log(bool resumed) const;
  /// Folds the input scale, writes the native file, the SAELens folder and report.json.
  nlohmann::json export_results(const TrainCommandResult& res);
  void save_checkpoint() const;
  const sae::Trainer<float>& trainer() const { return m_trainer; }
  /// The signs of an untrained SAE (before the input scale is folded).
  sae::TrainingCheck training_check() const { return m_trainer.training_check(m_model); }
  const Communicator& communicator() const { return m_comm; }

 private:
  static io::ActivationSourceParams source_params(const TrainOptions& o) {
    io::ActivationSourceParams sp;
    sp.batch_size = o.trainer.batch_size;
    sp.buffer_size = o.buffer_size;
    sp.chunk_size = o.chunk_size;
    sp.seed = derive_seed(o.seed, 10);
    sp.validation_fraction = o.validation_fraction;
    sp.tensor = o.tensor;
    return sp;
  }
  static sae::SparseAutoencoderParams model_params(const TrainOptions& o, Index dim) {
    sae::SparseAutoencoderParams p;
    p.architecture = sae::architecture_from_string(o.architecture);
    p.d_in = dim;
    p.d_sae = o.d_sae > 0 ? o.d_sae : o.expansion * dim;
    if (sae::has_option(p, "k")) sae::set_option(p, "k", std::to_string(o.k));
    return p;
  }
  static sae::TrainerParams trainer_params(const TrainOptions& o) {
    sae::TrainerParams tp = o.trainer;
    tp.seed = derive_seed(o.seed, 12);
    return tp;
  }
  void resume();
  void initialise();
  void write_checkpoint() const;
  bool stop_requested(bool local) const;

  const TrainOptions& m_o;
  const Communicator& m_comm;
  std::string m_ckpt;
  io::ActivationSource<float> m_src;
  sae::SparseAutoencoder<float> m_model;
  sae::Trainer<float> m_trainer;
  nlohmann::json m_opts;
  double m_scale = 1.0;
  std::ostringstream m_log;
  sae::LossTerms m_last;
};

inline void TrainRun::resume() {
  const io::Checkpoint ck = io::Checkpoint::load(m_ckpt);
  const nlohmann::json saved = nlohmann::json::parse(ck.get_string("options"));
  check_arg(saved == m_opts, "ergo-sae train", "--resume",
            "the options of the run that wrote the checkpoint",
            "different options (start a new --out folder, or use the same options)");
  for (const auto& kv : m_model.named_weights())
    m_model.set_named_weight(kv.first, ck.get<float>("sae." + kv.first));
  m_scale = ck.get_double("input_scale");
  m_trainer.begin(m_model);
  m_trainer.set_state(ck.get_map("trainer."));
  m_src.set_state(ck.get_string("stream"));
}

// Input scale and decoder-bias initialisation from a separate, seeded pass over the data (as
// Trainer::fit_stream does, but without consuming the training stream).
inline void TrainRun::initialise() {
  const sae::TrainerParams& tp = m_trainer.params();
  io::ActivationSourceParams ep = source_params(m_o);
  ep.seed = derive_seed(m_o.seed, 13);
  ep.batch_size = std::min<Index>(4096, m_src.train_size());
  io::ActivationSource<float> est(m_o.data, ep);
  const Index want =
      std::min(m_src.train_size(), std::max(tp.normalization_samples, tp.geometric_median_samples));
  const Index nm = std::min(want, tp.geometric_median_samples);
  Matrix<float> sample(m_src.dim(), nm), X;
  double norm_sum = 0.0;
  Index count = 0;
  while (count < want) {
    est.next_cycling(X);
    for (Index j = 0; j < X.cols() && count < want; ++j, ++count) {
      norm_sum += static_cast<double>(X.col(j).norm());
      if (count < nm) sample.col(count) = X.col(j);
    }
  }
  if (tp.normalize_input)
    m_scale = sae::input_scale(norm_sum / static_cast<double>(count), m_src.dim());
  sample *= static_cast<float>(m_scale);
  sae::init_decoder_bias(m_model, sample, tp.geometric_median_iterations);
  m_trainer.begin(m_model);
}

// Rank 0 writes (atomically: a failure leaves the previous checkpoint); every rank learns
// whether it worked, so that a failed write stops every rank.
inline void TrainRun::save_checkpoint() const {
  collective(m_comm, [&] {
    if (m_comm.is_root()) write_checkpoint();
  });
}

inline void TrainRun::write_checkpoint() const {
  io::Checkpoint ck;
  for (const auto& kv : m_model.named_weights()) ck.put("sae." + kv.first, kv.second);
  ck.put_map(m_trainer.state(), "trainer.");
  ck.set_string("options", m_opts.dump());
  ck.set_string("sae_params", sae::params_to_json(m_model.params()).dump());
  ck.set_double("input_scale", m_scale);
  ck.set_string("stream", m_src.state());
  ck.set_int("step", m_trainer.steps_done());
  ck.save(m_ckpt);
}

inline void TrainRun::train(TrainCommandResult& res, Callback* cb) {
  const sae::TrainerParams& tp = m_trainer.resolved_params();
  CsvLogger csv(m_log);
  CallbackList cbs;
  cbs.add(&csv);
  cbs.add(cb);
  res.settings = m_trainer.describe_settings();
  cbs.on_note("ergo-sae train: " + res.settings);
  ProgressEvent ev;
  ev.phase = "sae-train";
  ev.total = tp.steps;
  ev.step = m_trainer.steps_done();
  Stopwatch sw;
  cbs.on_begin(ev);
  g_interrupted = 0;
  auto prev_handler = std::signal(SIGINT, on_sigint);
  Matrix<float> X;
  const Index first = m_trainer.steps_done();
  while (m_trainer.steps_done() < tp.steps) {
    // this rank's share of the next global batch; a rank that cannot read stops every rank
    collective(m_comm, [&] { m_src.next_cycling_part(X, m_comm.rank(), m_comm.size()); });
    if (m_scale != 1.0) X *= static_cast<float>(m_scale);
    m_last = m_trainer.step(m_model, X);
    if (m_trainer.failed()) {
      res.outcome.status = Status::NumericalIssue;
      res.outcome.message = str_cat("non-finite loss or gradient at step ", m_trainer.steps_done(),
                                    " (reconstruction ", m_last.reconstruction,
                                    "); try a smaller --lr (", tp.lr, ") or check the data");
      break;
    }
    const Index t = m_trainer.steps_done();
    const bool stop_now =
        stop_requested((m_o.stop_after >= 0 && t >= m_o.stop_after) || g_interrupted);
    if (t % tp.log_every == 0 || t == tp.steps || stop_now) {
      ev.step = t;
      ev.epoch = m_src.epoch();
      ev.loss = m_last.total;
      ev.elapsed_seconds = sw.seconds();
      ev.items_per_second =
          ev.elapsed_seconds > 0
              ? static_cast<double>((t - first) * tp.batch_size) / ev.elapsed_seconds
              : 0;
      ev.extra = {
          {"l0", m_last.l0}, {"fvu", batch_fvu(m_last)}, {"dead", m_trainer.dead_fraction()}};
      if (stop_requested(!cbs.on_progress(ev))) {
        res.outcome.status = Status::Stopped;
        res.outcome.message = str_cat("stopped by the callback at step ", t);
      }
    }
    if (stop_now && res.outcome.status == Status::Success) {
      res.outcome.status = Status::Stopped;
      res.outcome.message = str_cat(g_interrupted ? "interrupted" : "stopped (--stop-after)",
                                    " at step ", t, "; continue with --resume");
    }
    if (res.outcome.status == Status::Stopped) {
      save_checkpoint();
      break;
    }
    if (m_o.checkpoint_every > 0 && t % m_o.checkpoint_every == 0 && t < tp.steps)
      save_checkpoint();
  }
  std::signal(SIGINT, prev_handler);
  res.steps = m_trainer.steps_done();
  ev.step = res.steps;
  ev.elapsed_seconds = sw.seconds();
  cbs.on_end(ev, res.outcome.message);
}

// A stop (Ctrl-C, --stop-after, the callback of rank 0) on any rank stops every rank at the
// same step.
inline bool TrainRun::stop_requested(bool local) const {
  if (m_comm.size() == 1) return local;
  std::int64_t f = local ? 1 : 0;
  m_comm.allreduce_sum(&f, 1);
  return f > 0;
}

inline void TrainRun::write_log(bool resumed) const {
  const std::string log_path = join(m_o.out, "training_log.csv");
  if (resumed && file_exists(log_path)) {
    const std::string prev = read_text(log_path);
    const std::string text = m_log.str();
    const auto nl = text.find('\n');  // drop the repeated header
    io::atomic_write_file(log_path, prev + (nl == std::string::npos ? "" : text.substr(nl + 1)));
  } else {
    io::atomic_write_file(log_path, m_log.str());
  }
}

inline nlohmann::json TrainRun::export_results(const TrainCommandResult& res) {
  // Fold the input scale so that the saved SAE takes raw activations.
  if (m_scale != 1.0) m_model.fold_input_scale(m_scale);
  const nlohmann::json extra = {
      {"options", m_opts}, {"input_scale", m_scale}, {"steps", res.steps}};
  sae::save_native(join(m_o.out, "ergo_sae.safetensors"), m_model, extra, m_o.metadata);
  const bool saelens = sae::saelens_exportable(m_model);
  if (saelens)
    sae::export_saelens(m_o.out, m_model, sae::saelens_config(m_model, m_o.metadata), m_o.dtype);
  nlohmann::json rep;
  rep["status"] = to_string(res.outcome.status);
  rep["steps"] = res.steps;
  rep["resumed"] = res.resumed;
  rep["architecture"] = m_o.architecture;
  rep["d_in"] = m_model.d_in();
  rep["d_sae"] = m_model.d_sae();
  rep["input_scale"] = m_scale;
  rep["ranks"] = m_comm.size();
  rep["threads_per_rank"] = Eigen::nbThreads();
  rep["gemm"] = blas_description(Eigen::nbThreads());
  rep["bf16_gemm"] = m_trainer.resolved_params().bf16_gemm;
  rep["train_samples"] = m_src.train_size();
  rep["validation_samples_held_out"] = m_src.validation_size();
  rep["last_batch"] = {{"loss", num(m_last.total)},
                       {"reconstruction", num(m_last.reconstruction)},
                       {"l0", num(m_last.l0)},
                       {"fvu", num(batch_fvu(m_last))}};
  rep["dead_fraction"] = m_trainer.dead_fraction();
  const sae::TrainerParams& r = m_trainer.resolved_params();
  rep["settings"] = {{"lr", r.lr},
                     {"lr_warmup_steps", r.lr_warmup_steps()},
                     {"sparsity_coefficient", r.sparsity_coefficient},
                     {"sparsity_warmup_steps", r.sparsity_warmup_steps()},
                     {"dead_window_samples", r.dead_window_samples},
                     {"threshold_start_step", r.threshold_start_step()},
                     {"threshold_lr_scale", r.threshold_lr_scale},
                     {"description", res.settings}};
  rep["training_check"] = {{"fvu", num(res.check.fvu)},
                           {"never_fired_fraction", num(res.check.never_fired_fraction)},
                           {"decoder_init_cosine", num(res.check.decoder_init_cosine)},
                           {"warning", res.check.warning}};
  rep["saelens_export"] = saelens;
  rep["options"] = m_opts;
  if (m_src.validation_size() > 0) {
    const Matrix<float> V = m_src.validation_matrix(m_o.validation_samples);
    rep["validation"] = metrics_json(sae::evaluate_reconstruction(m_model, V));
  }
  return rep;
}

}  // namespace detail

/// \brief Trains an SAE on activation files (see TrainOptions). Writes into o.out:
/// checkpoint.safetensors (periodically and when stopped), ergo_sae.safetensors (native, any
/// architecture), cfg.json + sae_weights.safetensors (SAELens, when SAELens has the
/// architecture), training_log.csv and report.json.
/// \param cb progress callback (e.g. a ProgressBar); may stop training (a checkpoint is saved)
/// \param comm the ranks training together (mpirun); rank 0 writes every file
inline TrainCommandResult run_train(const TrainOptions& o, Callback* cb = nullptr,
                                    const Communicator& comm = local_communicator()) {
  const char* who = "ergo-sae train";
  check_arg(!o.data.empty(), who, "--data", "at least one activation file", "none");
  check_arg(!o.out.empty(), who, "--out", "an output folder", "none");
  check_arg(o.trainer.steps > 0, who, "--steps", "> 0", o.trainer.steps);
  check_arg(o.checkpoint_every >= 0, who, "--checkpoint-every", ">= 0", o.checkpoint_every);
  o.metadata.check();
  const bool root = comm.is_root();
  collective(comm, [&] {
    if (root) io::make_directories(o.out);
  });
  ThreadLimit threads(o.trainer.threads);
  TrainCommandResult res;
  res.ranks = comm.size();
  std::unique_ptr<detail::TrainRun> run;
  collective(comm, [&] { run = std::make_unique<detail::TrainRun>(o, comm); });  // opens the data
  run->start(res);
  run->train(res, root ? cb : nullptr);
  if (res.outcome.status != Status::Success) {
    res.report = {{"status", to_string(res.outcome.status)},
                  {"message", res.outcome.message},
                  {"steps", res.steps}};
    collective(comm, [&] {
      if (!root) return;
      run->write_log(res.resumed);
      write_json(join(o.out, "report.json"), res.report);
    });
    return res;
  }
  run->save_checkpoint();  // the final training state (e.g. to train further later)
  res.check = run->training_check();
  collective(comm, [&] {
    if (!root) return;
    run->write_log(res.resumed);
    res.report = run->export_results(res);
    write_json(join(o.out, "report.json"), res.report);
  });
  return res;
}

}  // namespace ergo::tools

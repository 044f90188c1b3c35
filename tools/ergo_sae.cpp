// SPDX-License-Identifier: MIT
// ergo-sae: train, evaluate and convert sparse autoencoders on activation files written by
// NumPy / PyTorch (.npy, .safetensors), with SAELens-compatible output.
//
//   ergo-sae train   --data acts_*.npy --arch topk --k 32 --d-sae 4096 --steps 20000 --out runs/a
//   ergo-sae train   ... --out runs/a --resume     # continue from runs/a/checkpoint.safetensors
//   ergo-sae eval    --sae runs/a --data val.npy --labels labels.npy --json eval.json
//   ergo-sae eval    --sae runs/a --data acts.npy --pairs pairs.csv --json eval.json  # paper §5
//   ergo-sae encode  --sae runs/a --data acts.npy --out codes.npy   # [N, d_sae] codes
//   ergo-sae convert --in sparsify_folder --out saelens_folder
//   mpirun -n 4 ergo-sae train ...                 # data-parallel over 4 ranks (docs/scale.md)
//
// Exit codes: 0 success, 1 bad input or I/O error, 2 numerical trouble, 3 stopped (resumable).

#include "sae_commands.hpp"

#include <CLI/CLI.hpp>

#if defined(ERGO_HAS_MPI)
#include <ergo/mpi.hpp>
#endif

#include <iostream>
#include <memory>

namespace {

using namespace ergo;

/// --model-name, --hook-name, --dataset, --context-size: where SAELens reads them (cfg.json
/// "metadata") so that it can attach the SAE to the model.
void add_metadata_options(CLI::App* cmd, io::SaeMetadata& m) {
  cmd->add_option("--model-name", m.model_name,
                  "model the activations came from (SAELens metadata.model_name)");
  cmd->add_option("--hook-name", m.hook_name,
                  "hook point, e.g. blocks.6.hook_resid_post (SAELens metadata.hook_name)");
  cmd->add_option("--hook-head-index", m.hook_head_index, "attention head of a per-head hook");
  cmd->add_option("--dataset", m.dataset_path, "dataset the activations came from");
  cmd->add_option("--context-size", m.context_size, "tokens per context");
}

/// The options of `ergo-sae train`, bound to `t`.
CLI::App* add_train(CLI::App& app, tools::TrainOptions& t) {
  sae::TrainerParams& tp = t.trainer;  // option defaults come from the library's Params
  CLI::App* train = app.add_subcommand("train", "train an SAE on activation files");
  train->add_option("--data", t.data, "activation files, each [n, d] (.npy or .safetensors)")
      ->required();
  train->add_option("--tensor", t.tensor, "tensor name inside .safetensors files");
  train->add_option("--out", t.out, "output folder")->required();
  train->add_option("--arch", t.architecture, sae::architecture_names())->capture_default_str();
  train->add_option("--d-sae", t.d_sae, "number of latents (default: expansion x d_in)");
  train->add_option("--expansion", t.expansion, "d_sae / d_in when --d-sae is not given")
      ->capture_default_str();
  train->add_option("--k", t.k, "active latents (topk, batchtopk)")->capture_default_str();
  train->add_option("--steps", tp.steps, "optimisation steps")->capture_default_str();
  train->add_option("--batch", tp.batch_size, "samples per step")->capture_default_str();
  train->add_option("--lr", tp.lr, "Adam learning rate (default: 2e-4 / sqrt(d_sae / 16384))");
  train->add_option("--sparsity", tp.sparsity_coefficient,
                    "sparsity coefficient (default: per architecture)");
  train->add_option("--aux", tp.aux_coefficient, "AuxK weight (topk, batchtopk)")
      ->capture_default_str();
  train->add_flag("!--no-normalize", tp.normalize_input, "do not scale inputs to E|x| = sqrt(d)");
  train->add_option("--buffer", t.buffer_size, "shuffling pool size in samples")
      ->capture_default_str();
  train->add_option("--chunk", t.chunk_size, "consecutive samples read per chunk")
      ->capture_default_str();
  train
      ->add_option("--val-fraction", t.validation_fraction, "held-out fraction (tail of each file)")
      ->capture_default_str();
  train
      ->add_option("--val-samples", t.validation_samples, "validation samples evaluated at the end")
      ->capture_default_str();
  train->add_option("--seed", t.seed, "seed of everything random")->capture_default_str();
  train->add_option("--log-every", tp.log_every, "steps between progress reports")
      ->capture_default_str();
  train
      ->add_option("--checkpoint-every", t.checkpoint_every,
                   "steps between checkpoints (0: end only)")
      ->capture_default_str();
  train->add_flag("--resume", t.resume, "continue from <out>/checkpoint.safetensors");
  train->add_option("--stop-after", t.stop_after, "stop after this many steps (checkpoint saved)");
  train->add_option("--dtype", t.dtype,
                    "SAELens weight dtype: float32, float16, bfloat16, float64");
  train->add_option("--threads", tp.threads, "threads (0: default)");
  train->add_flag("--bf16", tp.bf16_gemm,
                  "encoder/decoder GEMMs in bf16 (oneDNN, AVX512_BF16; weights stay float)");
  add_metadata_options(train, t.metadata);
  return train;
}

/// The options of `ergo-sae eval`, bound to `e`.
CLI::App* add_eval(CLI::App& app, tools::EvalOptions& e) {
  CLI::App* eval = app.add_subcommand("eval", "evaluate an SAE (metrics, concept alignment)");
  eval->add_option("--sae", e.sae,
                   "SAE folder or file (ergo, SAELens, sparsify, dictionary_learning)")
      ->required();
  eval->add_option("--data", e.data, "activation files, samples in file order")->required();
  eval->add_option("--tensor", e.tensor, "tensor name inside .safetensors files");
  eval->add_option("--max-samples", e.max_samples, "samples evaluated")->capture_default_str();
  eval->add_option("--labels", e.labels, "labels [N] or [N, K] aligned with the data");
  eval->add_option("--probs", e.probs, "probabilities p(c_k=1|x) [N, K] aligned with the data");
  eval->add_option("--true-dictionary", e.true_dictionary,
                   "planted atoms [n, d] -> dictionary MCC");
  eval->add_option("--true-codes", e.true_codes, "planted codes [N, n] -> code MCC");
  eval->add_option("--align-samples", e.align_samples, "samples for alignment / code MCC")
      ->capture_default_str();
  eval->add_option("--k", e.k, "k for a TopK file that does not store it");
  eval->add_flag("!--no-probe", e.probe, "skip the supervised probe upper bound");
  eval->add_option("--json", e.json_out, "write the result as JSON here");
  sae::CounterfactualParams& cp = e.pair_params;  // defaults from the library's Params
  eval->add_option("--pairs", e.pairs,
                   "counterfactual pairs: CSV 'base,counterfactual,concept' or .npy int [P, 3]; "
                   "the base is the side with the concept (docs/sae.md)");
  eval->add_option("--pair-folds", cp.folds, "cross-fitting folds over the pairs")
      ->capture_default_str();
  eval->add_option("--probe-l2", cp.l2, "ridge weight of the pair probes (standardised)")
      ->capture_default_str();
  eval->add_option("--permutations", cp.permutations, "permutations of each concept's null")
      ->capture_default_str();
  eval->add_option("--pair-seed", cp.seed, "seed of the folds and permutations")
      ->capture_default_str();
  return eval;
}

/// The options of `ergo-sae encode`, bound to `n`.
CLI::App* add_encode(CLI::App& app, tools::EncodeOptions& n) {
  CLI::App* enc = app.add_subcommand("encode", "write the codes of activation files ([N, d_sae])");
  enc->add_option("--sae", n.sae, "SAE folder or file")->required();
  enc->add_option("--data", n.data, "activation files, samples in file order")->required();
  enc->add_option("--tensor", n.tensor, "tensor name inside .safetensors files");
  enc->add_option("--out", n.out, "codes file (.npy or .safetensors)")->required();
  enc->add_option("--max-samples", n.max_samples, "samples encoded (default: all)");
  enc->add_option("--k", n.k, "k for a TopK file that does not store it");
  enc->add_option("--dtype", n.dtype, "stored dtype: float32, float64, float16")
      ->capture_default_str();
  return enc;
}

/// The options of `ergo-sae convert`, bound to `c`.
CLI::App* add_convert(CLI::App& app, tools::ConvertOptions& c) {
  CLI::App* conv = app.add_subcommand("convert", "convert an SAE between layouts");
  conv->add_option("--in", c.in,
                   "SAE folder or file (ergo, SAELens, sparsify, dictionary_learning)")
      ->required();
  conv->add_option("--out", c.out, "output folder (or .safetensors file with --to ergo)")
      ->required();
  conv->add_option("--to", c.to, "saelens, ergo or both")->capture_default_str();
  conv->add_option("--dtype", c.dtype, "SAELens weight dtype");
  conv->add_option("--k", c.k, "k for a TopK input that does not store it");
  add_metadata_options(conv, c.metadata);
  return conv;
}

}  // namespace

int main(int argc, char** argv) {
  // Under mpirun (and built with ERGO_MPI) `train` runs data-parallel over MPI_COMM_WORLD;
  // otherwise, and for the other commands, this is one plain process.
  std::unique_ptr<Communicator> comm = std::make_unique<LocalCommunicator>();
#if defined(ERGO_HAS_MPI)
  std::unique_ptr<MpiEnvironment> mpi;
  if (MpiEnvironment::launched()) {
    mpi = std::make_unique<MpiEnvironment>(argc, argv);
    comm = std::make_unique<MpiCommunicator>();
  }
#endif
  const bool root = comm->is_root();
  CLI::App app{"ergo-sae: sparse autoencoders on activation files (.npy / .safetensors)"};
  app.require_subcommand(1);
  bool quiet = false;
  app.add_flag("-q,--quiet", quiet, "no progress bar");

  tools::TrainOptions t;
  tools::EvalOptions e;
  tools::EncodeOptions n;
  tools::ConvertOptions c;
  CLI::App* train = add_train(app, t);
  CLI::App* eval = add_eval(app, e);
  CLI::App* enc = add_encode(app, n);
  CLI::App* conv = add_convert(app, c);

  CLI11_PARSE(app, argc, argv);
  try {
    if (*train) {
      ProgressBar bar(std::cerr);
      {
        ThreadLimit threads(t.trainer.threads);
        if (root)
          std::cerr << "ergo-sae train: " << comm->size()
                    << (comm->size() == 1 ? " rank" : " ranks") << " x " << Eigen::nbThreads()
                    << " threads, GEMM: " << blas_description(Eigen::nbThreads())
                    << (t.trainer.bf16_gemm ? "; bf16 GEMMs: " + bf16_description() : "") << "\n";
      }
      const tools::TrainCommandResult r = tools::run_train(t, quiet ? nullptr : &bar, *comm);
      if (!root)
        return r.outcome.status == Status::Success   ? 0
               : r.outcome.status == Status::Stopped ? 3
                                                     : 2;
      std::cout << (r.resumed ? "resumed; " : "") << "steps " << r.steps << ": "
                << to_string(r.outcome.status)
                << (r.outcome.message.empty() ? "" : " — " + r.outcome.message) << "\n";
      if (r.check.looks_untrained())
        std::cerr << "ergo-sae train: warning: " << r.check.warning << "\n";
      if (r.outcome.ok())
        std::cout << "wrote " << t.out << " (report.json, ergo_sae.safetensors"
                  << (r.report.value("saelens_export", false)
                          ? ", cfg.json + sae_weights.safetensors"
                          : "")
                  << ")\n";
      return r.outcome.status == Status::Success ? 0 : r.outcome.status == Status::Stopped ? 3 : 2;
    }
    if (*eval) {
      std::string table;
      const nlohmann::json j = tools::run_eval(e, &table);
      // with --pairs: the table, then the JSON unless it went to --json
      if (!table.empty()) std::cout << table;
      if (table.empty() || e.json_out.empty()) std::cout << j.dump(2) << "\n";
      return 0;
    }
    if (*enc) {
      std::cout << "encoded " << tools::run_encode(n) << " samples into " << n.out << "\n";
      return 0;
    }
    if (*conv) {
      std::cout << tools::run_convert(c) << "\n";
      return 0;
    }
  } catch (const RankError& ex) {  // thrown on every rank alike: rank 0 reports it
    if (root) std::cerr << "ergo-sae: " << ex.what() << "\n";
    return 1;
  } catch (const std::exception& ex) {
    std::cerr << "ergo-sae: " << ex.what() << "\n";
    return 1;
  }
  return 0;
}

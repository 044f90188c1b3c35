// SPDX-License-Identifier: MIT
// ergo-identify: the identifiability report of a representation file against a target file.
//
//   ergo-identify --rep features.npy --target log_posteriors.npy --target-kind ilr --json r.json
//   ergo-identify --rep F.npy --target T.npy --baseline untrained=F0.npy --groups ids.npy
//   mpirun -n 4 ergo-identify --out-of-core --block-rows 8192 --rep F.npy --target T.npy
//
// Files hold one sample per row ([N, d] and [N, k], .npy or .safetensors[:tensor], any float
// dtype); --target-kind transforms log-probabilities into identifiable targets (clr, ilr, alr,
// log_odds, concept_clr; see docs/identify.md), "raw" uses the target file as it is.
// --out-of-core streams both files block by block into identify::StreamingIdentify (N bounded
// by the disk; under mpirun the blocks are shared among the ranks): held-out ridge (GCV), R²,
// CCA and a within-block permutation null, no verdict (tools/identify_streaming.hpp).
// Exit codes: 0 identified (out of core: success), 4 not identified, 1 bad input.

#include "common.hpp"
#include "identify_streaming.hpp"

#include <ergo/identify.hpp>
#if defined(ERGO_HAS_MPI)
#include <ergo/mpi.hpp>
#endif

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <sstream>

namespace {

using namespace ergo;
using namespace ergo::identify;

/// Command-line options; the statistical settings live in (and default from) IdentifiabilityParams.
struct Options {
  std::string rep_file, target_file, kind = "raw", groups_file, json_out, csv_out, target_name;
  std::vector<Index> cards;
  std::vector<std::string> baselines;
  Index max_samples = -1;
  IdentifiabilityParams params;
  bool quiet = false, no_reverse = !IdentifiabilityParams{}.reverse,
       no_mcc = !IdentifiabilityParams{}.mcc;
  /// --out-of-core: StreamingParams' defaults, except the shared options given explicitly.
  bool out_of_core = false;
  tools::StreamingOptions stream;
  CLI::Option *test_fraction = nullptr, *permutations = nullptr, *seed = nullptr;
};

void add_options(CLI::App& app, Options& o) {
  IdentifiabilityParams& p = o.params;
  app.add_option("--rep", o.rep_file, "representation file, [N, d]")->required();
  app.add_option("--target", o.target_file,
                 "target file, [N, k] (or log-probabilities with --target-kind)")
      ->required();
  app.add_option("--target-kind", o.kind, "raw, clr, ilr, alr, log_odds, concept_clr, probability")
      ->capture_default_str();
  app.add_option("--cardinalities", o.cards, "concept cardinalities for log_odds / concept_clr")
      ->delimiter(',');
  app.add_option("--groups", o.groups_file, "group id per sample [N] (grouped splits and nulls)");
  app.add_option("--baseline", o.baselines,
                 "name=file: a baseline representation [N, d'] (repeatable)");
  app.add_option("--name", p.name, "representation name in the report")->capture_default_str();
  app.add_option("--target-name", o.target_name,
                 "target description in the report (default: from the file name)");
  app.add_option("--max-samples", o.max_samples, "use the first N samples only");
  o.test_fraction =
      app.add_option("--test-fraction", p.test_fraction,
                     "held-out share (--out-of-core: default StreamingParams' test_fraction)")
          ->capture_default_str();
  o.permutations = app.add_option("--permutations", p.n_permutations,
                                  "permutation-null size, 0: off (--out-of-core: default "
                                  "StreamingParams' permutations, within blocks)")
                       ->capture_default_str();
  auto* max_p =
      app.add_option(
             "--max-p", p.thresholds.max_p_value,
             "verdict threshold of the permutation p-values (needs permutations >= 1/max-p)")
          ->capture_default_str();
  auto* boot = app.add_option("--bootstrap", p.n_bootstrap, "bootstrap replicates (0: off)")
                   ->capture_default_str();
  o.seed = app.add_option("--seed", p.seed, "seed of splits, folds, null and bootstrap")
               ->capture_default_str();
  auto* rev = app.add_flag("--no-reverse", o.no_reverse, "skip the T -> F regression");
  auto* mcc = app.add_flag("--no-mcc", o.no_mcc, "skip the MCC");
  app.add_option("--json", o.json_out, "write the full report as JSON");
  auto* csv = app.add_option("--csv", o.csv_out, "write the full report as key,value CSV");
  app.add_flag("-q,--quiet", o.quiet, "no progress bar");
  auto* ooc = app.add_flag("--out-of-core", o.out_of_core,
                           "stream both files in blocks (N beyond memory; mpirun shares the "
                           "blocks): ridge (GCV), held-out R2, CCA, within-block null; no verdict");
  app.add_option("--block-rows", o.stream.params.permutation_block,
                 "--out-of-core: samples per block read (and per permutation block)")
      ->capture_default_str()
      ->needs(ooc);
  for (CLI::Option* x : {max_p, boot, rev, mcc, csv, app.get_option("--baseline")})
    ooc->excludes(x);
}

/// The target file, transformed by --target-kind, first n samples.
Matrix<double> load_targets(const Options& o, Index n_rep, Index& n) {
  Matrix<double> T = tools::read_matrix<double>(o.target_file, /*vector_as_row=*/true,
                                                /*require_finite=*/o.kind == "raw");
  check_arg(n_rep == T.cols(), "ergo-identify", "--target",
            ergo::detail::str_cat(n_rep, " samples (as --rep)"), T.cols());
  n = n_rep;
  if (o.max_samples > 0 && o.max_samples < n) n = o.max_samples;
  T.conservativeResize(Eigen::NoChange, n);
  if (o.kind == "raw") return T;
  for (TargetKind c : {TargetKind::Clr, TargetKind::Ilr, TargetKind::Alr, TargetKind::LogOdds,
                       TargetKind::ConceptClr, TargetKind::Probability})
    if (o.kind == to_string(c)) return make_targets(c, T, o.cards);
  throw_invalid("ergo-identify", "--target-kind",
                "raw, clr, ilr, alr, log_odds, concept_clr, probability", o.kind);
}

/// Group ids (first n), or no groups.
Groups load_groups(const Options& o, Index n) {
  if (o.groups_file.empty()) return {};
  const IntMatrix g = tools::read_matrix<std::int32_t>(o.groups_file, true);
  check_arg(g.rows() == 1 && g.cols() >= n, "ergo-identify", "--groups",
            ergo::detail::str_cat("one id per sample (", n, ")"),
            ergo::detail::str_cat(g.rows(), " x ", g.cols()));
  return Groups(IntRowVector(g.row(0).head(n)));
}

/// --out-of-core: the streaming statistics over the ranks of `comm`; rank 0 prints and writes.
int run_out_of_core(Options& o, const Communicator& comm) {
  tools::StreamingOptions& s = o.stream;
  const IdentifiabilityParams& p = o.params;
  s.rep_file = o.rep_file;
  s.target_file = o.target_file;
  s.kind = o.kind;
  s.cards = o.cards;
  s.groups_file = o.groups_file;
  s.json_out = o.json_out;
  s.target_name = o.target_name;
  s.max_samples = o.max_samples;
  if (o.test_fraction->count() > 0) s.params.test_fraction = p.test_fraction;
  if (o.permutations->count() > 0) s.params.permutations = p.n_permutations;
  if (o.seed->count() > 0) s.params.seed = p.seed;
  const tools::StreamingRun r = tools::run_streaming_identify(s, comm);
  if (comm.is_root()) tools::write_streaming_summary(std::cout, s, r);
  return 0;
}

/// Runs the report, prints its summary, writes the files; returns the exit code.
int run(Options& o) {
  Matrix<double> F = tools::read_matrix<double>(o.rep_file, /*vector_as_row=*/true);
  Index n = 0;
  const Matrix<double> T = load_targets(o, F.cols(), n);
  F.conservativeResize(Eigen::NoChange, n);
  const Groups groups = load_groups(o, n);
  std::vector<Matrix<double>> base_data;
  std::vector<Baseline> base;
  base_data.reserve(o.baselines.size());
  for (const auto& b : o.baselines) {
    const auto nb = tools::split_named(b);
    Matrix<double> m = tools::read_matrix<double>(nb.second, true);
    check_arg(m.cols() >= n, "ergo-identify", "--baseline " + nb.first,
              ergo::detail::str_cat(n, " samples"), m.cols());
    m.conservativeResize(Eigen::NoChange, n);
    base_data.push_back(std::move(m));
    base.push_back(Baseline{nb.first, base_data.back()});
  }
  IdentifiabilityParams& p = o.params;
  const std::string stem = tools::stem(o.target_file);
  p.target_name = !o.target_name.empty() ? o.target_name
                  : o.kind == "raw"      ? stem
                                         : o.kind + "(" + stem + ")";
  p.reverse = !o.no_reverse;
  p.mcc = !o.no_mcc;
  ProgressBar bar(std::cerr);
  const IdentifiabilityReport r =
      check_identifiability(F, T, p, groups, base, o.quiet ? nullptr : &bar);
  r.write_summary(std::cout);
  if (!o.json_out.empty()) {
    std::ostringstream os;
    r.write_json(os);
    io::atomic_write_file(o.json_out, os.str());
  }
  if (!o.csv_out.empty()) {
    std::ostringstream os;
    r.write_csv(os);
    io::atomic_write_file(o.csv_out, os.str());
  }
  return r.verdict.identified ? 0 : 4;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ergo-identify: is a target an invertible affine function of a representation?"};
  Options o;
  add_options(app, o);
  // Under mpirun (built with ERGO_MPI) --out-of-core shares the blocks among the ranks.
  std::unique_ptr<Communicator> comm = std::make_unique<LocalCommunicator>();
#if defined(ERGO_HAS_MPI)
  std::unique_ptr<MpiEnvironment> mpi;
  if (MpiEnvironment::launched()) {
    mpi = std::make_unique<MpiEnvironment>(argc, argv);
    comm = std::make_unique<MpiCommunicator>();
  }
#endif
  CLI11_PARSE(app, argc, argv);
  try {
    if (o.out_of_core) return run_out_of_core(o, *comm);
    if (comm->size() > 1) {  // every rank stops; rank 0 says why
      if (comm->is_root())
        std::cerr << "ergo-identify: ranks: expected 1 without --out-of-core (the in-memory "
                     "report runs in one process), got "
                  << comm->size() << "\n";
      return 1;
    }
    return run(o);
  } catch (const RankError& e) {  // thrown on every rank alike: rank 0 reports it
    if (comm->is_root()) std::cerr << "ergo-identify: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "ergo-identify: " << e.what() << "\n";
    return 1;
  }
}

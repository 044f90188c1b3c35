// SPDX-License-Identifier: MIT
#pragma once

// `ergo-identify --out-of-core`: the representation and target files are read block by block
// (memory-mapped, `--block-rows` samples at a time) into identify::StreamingIdentify, so N is
// bounded by the disk, not the memory. Under mpirun every rank reads a contiguous share of the
// blocks, the moments are summed over the ranks, every rank computes the same report and rank 0
// prints it and writes the JSON (atomically). Errors are collective: a file one rank cannot read
// stops every rank with that rank's message. Kept in a header so that tests/mpi can run it
// in-process on an MpiCommunicator (docs/scale.md, "ergo-identify out of core").

#include "common.hpp"

#include <ergo/core/communicator.hpp>
#include <ergo/identify.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace ergo::tools {

/// \brief Settings of the out-of-core run; the statistical ones default from StreamingParams.
struct StreamingOptions {
  std::string rep_file, target_file, kind = "raw", groups_file, json_out, target_name;
  std::vector<Index> cards;          ///< concept cardinalities (log_odds, concept_clr)
  Index max_samples = -1;            ///< use the first N samples only (-1: all)
  identify::StreamingParams params;  ///< split, seed, permutations, block size, ridge grid
};

/// \brief A matrix file ("f.npy", "f.safetensors", "f.safetensors:name") read samples at a time
/// from its memory map; a 1-D file is one value per sample.
class SampleReader {
 public:
  explicit SampleReader(const std::string& spec) : m_spec(spec) {
    std::string path = spec, tensor;
    const auto colon = spec.rfind(':');
    if (colon != std::string::npos && ends_with(spec.substr(0, colon), ".safetensors")) {
      path = spec.substr(0, colon);
      tensor = spec.substr(colon + 1);
    }
    if (ends_with(path, ".npy")) {
      m_npy = std::make_unique<io::NpyFile>(path, "ergo-identify");
      m_view = std::make_unique<io::TensorView>(m_npy->view());
    } else if (ends_with(path, ".safetensors")) {
      m_st = std::make_unique<io::SafetensorsFile>(path, "ergo-identify");
      if (tensor.empty()) {
        const auto names = m_st->names();
        if (names.size() != 1)
          throw io::FormatError(make_message("ergo-identify", "'" + path + "'",
                                             "one tensor, or a name as file.safetensors:name",
                                             detail::str_cat(names.size(), " tensors")));
        tensor = names[0];
      }
      m_view = std::make_unique<io::TensorView>(m_st->view(tensor));
    } else {
      throw_invalid("ergo-identify", "file", "a .npy or .safetensors file", "'" + spec + "'");
    }
  }
  Index dim() const { return m_view->info().sample_dim(); }
  Index samples() const { return m_view->info().num_samples(); }
  const std::string& spec() const { return m_spec; }
  /// Samples [first, first + count) as a dim() × count matrix.
  template <class S>
  Matrix<S> read(Index first, Index count, bool require_finite) const {
    Matrix<S> m(dim(), count);
    if (count > 0) m_view->read_samples<S>(first, count, m.data(), require_finite);
    return m;
  }

 private:
  std::string m_spec;
  std::unique_ptr<io::NpyFile> m_npy;
  std::unique_ptr<io::SafetensorsFile> m_st;
  std::unique_ptr<io::TensorView> m_view;
};

/// \brief The transform of --target-kind applied to a block of samples (each sample on its own).
inline Matrix<double> transform_targets(const std::string& kind, const std::vector<Index>& cards,
                                        Matrix<double> t) {
  using identify::TargetKind;
  if (kind == "raw") return t;
  for (TargetKind c : {TargetKind::Clr, TargetKind::Ilr, TargetKind::Alr, TargetKind::LogOdds,
                       TargetKind::ConceptClr, TargetKind::Probability})
    if (kind == identify::to_string(c)) return identify::make_targets(c, t, cards);
  throw_invalid("ergo-identify", "--target-kind",
                "raw, clr, ilr, alr, log_odds, concept_clr, probability", kind);
}

/// \brief What run_streaming_identify() returns (the same on every rank).
struct StreamingRun {
  identify::StreamingReport report;
  Index n = 0, d = 0, k = 0, blocks = 0;
  int ranks = 1;
  nlohmann::json json;  ///< what --json writes
};

namespace detail {

/// The opened inputs (every rank opens every file; only its blocks are read).
struct StreamingInputs {
  std::unique_ptr<SampleReader> rep, target, groups;
  Index n = 0, d = 0, k = 0;
  Vector<double> shift_f, shift_t;  ///< the first sample (the same on every rank)

  Matrix<double> targets(const StreamingOptions& o, Index first, Index count) const {
    return transform_targets(
        o.kind, o.cards, target->read<double>(first, count, /*require_finite=*/o.kind == "raw"));
  }
};

inline StreamingInputs open_inputs(const StreamingOptions& o) {
  const char* who = "ergo-identify";
  StreamingInputs in;
  in.rep = std::make_unique<SampleReader>(o.rep_file);
  in.target = std::make_unique<SampleReader>(o.target_file);
  in.n = in.rep->samples();
  check_arg(in.target->samples() == in.n, who, "--target",
            ergo::detail::str_cat(in.n, " samples (as --rep)"), in.target->samples());
  if (o.max_samples > 0 && o.max_samples < in.n) in.n = o.max_samples;
  if (!o.groups_file.empty()) {
    in.groups = std::make_unique<SampleReader>(o.groups_file);
    check_arg(in.groups->dim() == 1 && in.groups->samples() >= in.n, who, "--groups",
              ergo::detail::str_cat("one id per sample (", in.n, ")"),
              ergo::detail::str_cat(in.groups->samples(), " x ", in.groups->dim()));
  }
  check_arg(in.n >= 5, who, "samples", "at least 5", in.n);
  in.d = in.rep->dim();
  in.shift_f = in.rep->read<double>(0, 1, true).col(0);
  in.shift_t = in.targets(o, 0, 1).col(0);
  in.k = in.shift_t.size();
  return in;
}

/// Adds this rank's contiguous share of the blocks; returns the number of blocks in all.
inline Index add_my_blocks(const StreamingOptions& o, const StreamingInputs& in,
                           identify::StreamingIdentify& acc, const Communicator& comm) {
  const Index rows = o.params.permutation_block;
  const Index blocks = (in.n + rows - 1) / rows;
  const Share mine = share_of(blocks, comm.rank(), comm.size());
  std::vector<std::int64_t> keys;
  for (Index b = mine.offset; b < mine.offset + mine.count; ++b) {
    const Index first = b * rows, count = std::min(rows, in.n - first);
    const Matrix<double> f = in.rep->read<double>(first, count, true);
    const Matrix<double> t = in.targets(o, first, count);
    if (in.groups) {
      const Matrix<std::int64_t> g = in.groups->read<std::int64_t>(first, count, false);
      keys.assign(g.data(), g.data() + g.size());
    }
    acc.add(f, t, first, in.groups ? keys.data() : nullptr);
  }
  return blocks;
}

}  // namespace detail

/// \brief The JSON document of an out-of-core run (what --json writes).
inline nlohmann::json streaming_json(const StreamingOptions& o, const StreamingRun& r) {
  const identify::StreamingReport& s = r.report;
  auto vec = [](const Vector<double>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (Index i = 0; i < v.size(); ++i) a.push_back(num(v[i]));
    return a;
  };
  nlohmann::json j;
  j["mode"] = "out_of_core";
  j["representation"] = o.rep_file;
  j["target"] = o.target_name.empty() ? o.target_file : o.target_name;
  j["target_kind"] = o.kind;
  j["ranks"] = r.ranks;
  j["samples"] = {{"n", r.n},
                  {"d", r.d},
                  {"k", r.k},
                  {"train", s.n_train},
                  {"test", s.n_test},
                  {"blocks", r.blocks},
                  {"block_rows", o.params.permutation_block}};
  j["split"] = {{"test_fraction", o.params.test_fraction},
                {"seed", o.params.seed},
                {"key", o.groups_file.empty() ? "row index" : "group id"}};
  j["forward"] = {{"lambda", num(s.lambda)},
                  {"relative_lambda", num(s.relative_lambda)},
                  {"lambda_selection", "gcv"},
                  {"test",
                   {{"per_output", vec(s.test_r2.per_output)},
                    {"mean", num(s.test_r2.mean)},
                    {"variance_weighted", num(s.test_r2.variance_weighted)},
                    {"mse", num(s.test_r2.mse)}}}};
  j["cca"] = {{"test_correlations", vec(s.cca)},
              {"mean", num(s.cca_summary.mean)},
              {"min", num(s.cca_summary.min)},
              {"max", num(s.cca_summary.max)},
              {"kappa_w", num(s.cca_summary.kappa)}};
  j["permutation"] = {{"count", o.params.permutations},
                      {"scheme", "within blocks of block_rows rows"},
                      {"null_r2", vec(s.null_r2)},
                      {"p_value", num(s.p_value)}};
  j["not_available_out_of_core"] = {"verdict",
                                    "k-fold / LOO lambda selection",
                                    "reverse fit",
                                    "MCC",
                                    "bootstrap intervals",
                                    "full-sample permutations",
                                    "baselines",
                                    "probes"};
  return j;
}

/// \brief Human-readable summary of an out-of-core run.
inline void write_streaming_summary(std::ostream& os, const StreamingOptions& o,
                                    const StreamingRun& r) {
  const identify::StreamingReport& s = r.report;
  os << "ergo-identify (out of core): " << o.rep_file << " -> "
     << (o.target_name.empty() ? o.target_file : o.target_name) << " [" << o.kind << "]\n";
  os << "  samples " << r.n << " (train " << s.n_train << ", test " << s.n_test << "), d " << r.d
     << ", k " << r.k << "; " << r.blocks << " blocks of " << o.params.permutation_block
     << " rows over " << r.ranks << (r.ranks == 1 ? " rank\n" : " ranks\n");
  os << "  forward ridge (GCV): lambda " << s.lambda << " (relative " << s.relative_lambda
     << "), held-out R2 mean " << s.test_r2.mean << ", variance-weighted "
     << s.test_r2.variance_weighted << "\n";
  os << "  held-out CCA: mean " << s.cca_summary.mean << ", min " << s.cca_summary.min
     << ", kappa_w " << s.cca_summary.kappa << "\n";
  if (o.params.permutations > 0)
    os << "  permutation null (" << o.params.permutations << ", within blocks): max null R2 "
       << s.null_r2.maxCoeff() << ", p = " << s.p_value << "\n";
  os << "  not available out of core: verdict, k-fold/LOO lambda, reverse fit, MCC, bootstrap, "
        "full-sample permutations, baselines, probes\n";
}

/// \brief Runs the out-of-core statistics over the ranks of `comm` (collective: every rank
/// calls it); rank 0 writes o.json_out. Every rank returns the same result; a failure on any
/// rank throws the same RankError on every rank (one rank: the original exception).
inline StreamingRun run_streaming_identify(const StreamingOptions& o,
                                           const Communicator& comm = local_communicator()) {
  StreamingRun run;
  run.ranks = comm.size();
  detail::StreamingInputs in;
  std::unique_ptr<identify::StreamingIdentify> acc;
  collective(comm, [&] {
    o.params.check();
    in = detail::open_inputs(o);
    acc =
        std::make_unique<identify::StreamingIdentify>(in.d, in.k, o.params, in.shift_f, in.shift_t);
    run.blocks = detail::add_my_blocks(o, in, *acc, comm);
  });
  acc->reduce(comm);
  run.n = in.n;
  run.d = in.d;
  run.k = in.k;
  collective(comm, [&] { run.report = acc->finish(); });
  run.json = streaming_json(o, run);
  collective(comm, [&] {
    if (comm.is_root() && !o.json_out.empty()) write_json(o.json_out, run.json);
  });
  return run;
}

}  // namespace ergo::tools

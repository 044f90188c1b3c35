// SPDX-License-Identifier: MIT
// ergo-identify: the identifiability report of a representation file against a target file.
//
//   ergo-identify --rep features.npy --target log_posteriors.npy --target-kind ilr --json r.json
//   ergo-identify --rep F.npy --target T.npy --baseline untrained=F0.npy --groups ids.npy
//
// Files hold one sample per row ([N, d] and [N, k], .npy or .safetensors[:tensor], any float
// dtype); --target-kind transforms log-probabilities into identifiable targets (clr, ilr, alr,
// log_odds, concept_clr; see docs/identify.md), "raw" uses the target file as it is.
// Exit codes: 0 identified, 4 not identified, 1 bad input.

#include "tools/tool_common.hpp"

#include <ergo/identify.hpp>

#include <CLI/CLI.hpp>

#include <iostream>
#include <sstream>

int main(int argc, char** argv) {
  using namespace ergo;
  using namespace ergo::identify;
  CLI::App app{"ergo-identify: is a target an invertible affine function of a representation?"};
  std::string rep_file, target_file, kind = "raw", groups_file, json_out, csv_out;
  std::string name = "representation", target_name;
  std::vector<Index> cards;
  std::vector<std::string> baselines;
  Index max_samples = -1;
  IdentifiabilityParams p;
  bool quiet = false, no_reverse = false, no_mcc = false;
  app.add_option("--rep", rep_file, "representation file, [N, d]")->required();
  app.add_option("--target", target_file,
                 "target file, [N, k] (or log-probabilities with --target-kind)")
      ->required();
  app.add_option("--target-kind", kind, "raw, clr, ilr, alr, log_odds, concept_clr, probability")
      ->capture_default_str();
  app.add_option("--cardinalities", cards, "concept cardinalities for log_odds / concept_clr")
      ->delimiter(',');
  app.add_option("--groups", groups_file, "group id per sample [N] (grouped splits and nulls)");
  app.add_option("--baseline", baselines,
                 "name=file: a baseline representation [N, d'] (repeatable)");
  app.add_option("--name", name, "representation name in the report")->capture_default_str();
  app.add_option("--target-name", target_name, "target description in the report");
  app.add_option("--max-samples", max_samples, "use the first N samples only");
  app.add_option("--test-fraction", p.test_fraction, "held-out share")->capture_default_str();
  app.add_option("--permutations", p.n_permutations, "permutation-null size (0: off)")
      ->capture_default_str();
  app.add_option("--max-p", p.thresholds.max_p_value,
                 "verdict threshold of the permutation p-values (needs permutations >= 1/max-p)")
      ->capture_default_str();
  app.add_option("--bootstrap", p.n_bootstrap, "bootstrap replicates (0: off)")
      ->capture_default_str();
  app.add_option("--seed", p.seed, "seed of splits, folds, null and bootstrap")
      ->capture_default_str();
  app.add_flag("--no-reverse", no_reverse, "skip the T -> F regression");
  app.add_flag("--no-mcc", no_mcc, "skip the MCC");
  app.add_option("--json", json_out, "write the full report as JSON");
  app.add_option("--csv", csv_out, "write the full report as key,value CSV");
  app.add_flag("-q,--quiet", quiet, "no progress bar");
  CLI11_PARSE(app, argc, argv);
  try {
    Matrix<double> F = tools::read_matrix<double>(rep_file, /*vector_as_row=*/true);
    Matrix<double> T = tools::read_matrix<double>(target_file, /*vector_as_row=*/true,
                                                  /*require_finite=*/kind == "raw");
    check_arg(F.cols() == T.cols(), "ergo-identify", "--target",
              ergo::detail::str_cat(F.cols(), " samples (as --rep)"), T.cols());
    Index n = F.cols();
    if (max_samples > 0 && max_samples < n) n = max_samples;
    F.conservativeResize(Eigen::NoChange, n);
    T.conservativeResize(Eigen::NoChange, n);
    if (kind != "raw") {
      TargetKind k = TargetKind::Clr;
      bool found = false;
      for (TargetKind c : {TargetKind::Clr, TargetKind::Ilr, TargetKind::Alr, TargetKind::LogOdds,
                           TargetKind::ConceptClr, TargetKind::Probability})
        if (kind == to_string(c)) {
          k = c;
          found = true;
        }
      check_arg(found, "ergo-identify", "--target-kind",
                "raw, clr, ilr, alr, log_odds, concept_clr, probability", kind);
      T = make_targets(k, T, cards);
    }
    Groups groups;
    if (!groups_file.empty()) {
      const IntMatrix g = tools::read_matrix<std::int32_t>(groups_file, true);
      check_arg(g.rows() == 1 && g.cols() >= n, "ergo-identify", "--groups",
                ergo::detail::str_cat("one id per sample (", n, ")"),
                ergo::detail::str_cat(g.rows(), " x ", g.cols()));
      groups = Groups(IntRowVector(g.row(0).head(n)));
    }
    std::vector<Matrix<double>> base_data;
    std::vector<std::string> base_names;
    for (const auto& b : baselines) {
      const auto nb = tools::split_named(b);
      Matrix<double> m = tools::read_matrix<double>(nb.second, true);
      check_arg(m.cols() >= n, "ergo-identify", "--baseline " + nb.first,
                ergo::detail::str_cat(n, " samples"), m.cols());
      m.conservativeResize(Eigen::NoChange, n);
      base_data.push_back(std::move(m));
      base_names.push_back(nb.first);
    }
    std::vector<Baseline> base;
    for (std::size_t i = 0; i < base_data.size(); ++i)
      base.push_back(Baseline{base_names[i], base_data[i]});
    p.name = name;
    p.target_name = target_name.empty()
                        ? (kind == "raw" ? tools::stem(target_file)
                                         : kind + "(" + tools::stem(target_file) + ")")
                        : target_name;
    p.reverse = !no_reverse;
    p.mcc = !no_mcc;
    ProgressBar bar(std::cerr);
    const IdentifiabilityReport r =
        check_identifiability(F, T, p, groups, base, quiet ? nullptr : &bar);
    std::cout << r.name << " vs " << r.target_name << ": N = " << r.n_samples << " (" << r.n_train
              << " train, " << r.n_test << " test), d = " << r.d << ", k = " << r.k << "\n";
    std::cout << "  held-out R² F->T  " << r.forward.test.variance_weighted
              << " (variance-weighted; null p = " << r.null_r2.p_value << ")\n";
    if (r.has_reverse)
      std::cout << "  held-out R² T->F  " << r.reverse.test.variance_weighted << "\n";
    std::cout << "  held-out CCA      rho_min " << r.cca.test.min << "  mean " << r.cca.test.mean
              << "  kappa_w " << r.cca.test.kappa << "\n";
    if (r.has_mcc) std::cout << "  MCC (Pearson)     " << r.mcc_pearson.mcc << "\n";
    for (const auto& b : r.baselines)
      std::cout << "  baseline " << b.name << ": held-out R² " << b.forward.test.variance_weighted
                << "\n";
    for (const auto& w : r.warnings) std::cout << "  warning: " << w << "\n";
    std::cout << "verdict: " << r.verdict.summary << "\n";
    if (!json_out.empty()) {
      std::ostringstream os;
      r.write_json(os);
      io::atomic_write_file(json_out, os.str());
    }
    if (!csv_out.empty()) {
      std::ostringstream os;
      r.write_csv(os);
      io::atomic_write_file(csv_out, os.str());
    }
    return r.verdict.identified ? 0 : 4;
  } catch (const std::exception& e) {
    std::cerr << "ergo-identify: " << e.what() << "\n";
    return 1;
  }
}

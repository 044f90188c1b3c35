// SPDX-License-Identifier: MIT
// ergo-linrep: the A_s W_s test (Corollary 4.3) from activation files of counterfactual word
// pairs, one file per concept.
//
//   ergo-linrep --concept gender=gender.npy --concept plural=plural.npy --out linrep/
//
// Each concept file: .safetensors with "base" and "target" [n, d], or [2n, d] with the n base
// rows first (--layout halves) or alternating (--layout interleaved). Writes into --out:
// G.npy (S × S, np.load gives G), G.csv, G.svg (heatmap), result.json.

#include "common.hpp"
#include "linrep.hpp"

#include <ergo/identify.hpp>

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
  using namespace ergo;
  using namespace ergo::identify;
  CLI::App app{"ergo-linrep: the A_s W_s test on counterfactual pairs"};
  std::vector<std::string> concepts;
  std::string out, layout = "halves";
  ConceptDirectionParams p;
  bool no_holdout = false;
  app.add_option("--concept", concepts, "[name=]file of one concept's pairs (repeatable)")
      ->required();
  app.add_option("--out", out, "output folder")->required();
  app.add_option("--layout", layout, "row layout of [2n, d] files: halves or interleaved")
      ->capture_default_str();
  app.add_option("--C", p.probe.c, "inverse L2 strength of the logistic probes")
      ->capture_default_str();
  app.add_option("--permutations", p.n_permutations, "permuted-label null size (0: off)")
      ->capture_default_str();
  app.add_option("--seed", p.seed, "seed of the null and the hold-out split")
      ->capture_default_str();
  app.add_flag("--no-holdout", no_holdout, "skip the split-half hold-out");
  CLI11_PARSE(app, argc, argv);
  try {
    p.holdout = !no_holdout;
    std::vector<ConceptPairs> pairs;
    for (const auto& c : concepts) pairs.push_back(tools::load_concept_pairs(c, layout));
    const ConceptDirectionResult r = concept_direction_test(pairs, p);
    io::make_directories(out);
    io::NpyWriteOptions wo;
    wo.layout = io::NpyLayout::MatrixShape;  // np.load(G.npy) equals G
    io::write_npy(tools::join(out, "G.npy"), r.all.g, wo);
    tools::write_csv_matrix(tools::join(out, "G.csv"), r.all.g, r.names);
    io::atomic_write_file(
        tools::join(out, "G.svg"),
        tools::svg_heatmap(r.all.g, r.names, r.names,
                           "G = A_s W_s (rows: directions a_r, columns: probes w_s)", 1.0));
    nlohmann::json j;
    j["concepts"] = r.names;
    j["pairs"] = nlohmann::json::array();
    for (const auto& c : pairs) j["pairs"].push_back(c.base.cols());
    j["d"] = pairs.empty() ? 0 : pairs[0].base.rows();
    j["probe_c"] = p.probe.c;
    auto stats = [](const AsWsStatistics& s) {
      return nlohmann::json{{"mean_diagonal", tools::num(s.mean_diagonal)},
                            {"mean_abs_off_diagonal", tools::num(s.mean_abs_off_diagonal)},
                            {"frobenius", tools::num(s.frobenius)}};
    };
    j["all_pairs"] = stats(r.all);
    j["probe_accuracy"] = std::vector<double>(r.probe_accuracy.data(),
                                              r.probe_accuracy.data() + r.probe_accuracy.size());
    if (p.n_permutations > 0) {
      auto null = [](const NullSummary& n) {
        return nlohmann::json{{"observed", tools::num(n.observed)},
                              {"null_mean", tools::num(n.mean)},
                              {"null_p95", tools::num(n.p95)},
                              {"p_value", tools::num(n.p_value)},
                              {"permutations", n.permutations}};
      };
      j["null_mean_diagonal"] = null(r.null_mean_diagonal);
      j["null_frobenius"] = null(r.null_frobenius);
    }
    if (r.has_holdout) j["holdout"] = stats(r.holdout);
    tools::write_json(tools::join(out, "result.json"), j);
    std::cout << "A_s W_s over " << r.names.size() << " concepts: mean diagonal "
              << r.all.mean_diagonal << ", mean |off-diagonal| " << r.all.mean_abs_off_diagonal
              << ", |AW - P_S|_F " << r.all.frobenius << "\n";
    if (p.n_permutations > 0)
      std::cout << "  permuted-label null of the mean diagonal: mean " << r.null_mean_diagonal.mean
                << ", p = " << r.null_mean_diagonal.p_value << "\n";
    if (r.has_holdout)
      std::cout << "  split-half hold-out: mean diagonal " << r.holdout.mean_diagonal
                << ", mean |off-diagonal| " << r.holdout.mean_abs_off_diagonal << "\n";
    std::cout << "wrote " << out << "/{G.npy, G.csv, G.svg, result.json}\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "ergo-linrep: " << e.what() << "\n";
    return 1;
  }
}

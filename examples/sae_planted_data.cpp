// SPDX-License-Identifier: MIT
// Planted-dictionary activations for ergo-sae: x = D a + bias with a known unit dictionary D
// (sae::make_sparse_features), written as .npy files that `ergo-sae train` and `ergo-sae eval
// --true-dictionary` read. The data set of docs/sae.md's "Defaults" table:
//
//   sae_planted_data --out planted              # d = 64, 256 atoms, mean L0 12, 200 000 samples
//   ergo-sae train --data planted/x.npy --arch topk --k 12 --d-sae 512 --steps 1000 --out run
//   ergo-sae eval --sae run --data planted/x.npy --true-dictionary planted/dictionary.npy

#include <ergo/io.hpp>
#include <ergo/sae.hpp>

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  CLI::App app("planted sparse-feature activations (x.npy, dictionary.npy, codes.npy)");
  ergo::sae::SyntheticParams sp;
  sp.d = 64;
  sp.n_features = 256;
  sp.mean_active = 12;
  sp.samples = 200000;
  std::string out = "planted";
  std::uint64_t seed = 1;
  bool codes = false;
  app.add_option("--out", out, "output folder")->capture_default_str();
  app.add_option("--d", sp.d, "input dimension")->capture_default_str();
  app.add_option("--features", sp.n_features, "true atoms")->capture_default_str();
  app.add_option("--mean-active", sp.mean_active, "mean active atoms per sample")
      ->capture_default_str();
  app.add_option("--samples", sp.samples, "samples")->capture_default_str();
  app.add_option("--seed", seed, "seed")->capture_default_str();
  app.add_flag("--codes", codes, "also write the true codes (codes.npy, [N, features])");
  CLI11_PARSE(app, argc, argv);
  try {
    ergo::Rng rng(seed);
    const auto data = ergo::sae::make_sparse_features<float>(sp, rng);
    ergo::io::make_directories(out);
    ergo::io::write_npy(out + "/x.npy", data.x);                    // [N, d]
    ergo::io::write_npy(out + "/dictionary.npy", data.dictionary);  // [features, d]: atoms as rows
    if (codes) ergo::io::write_npy(out + "/codes.npy", data.codes);
    const double l0 =
        static_cast<double>((data.codes.array() != 0.0f).count()) / static_cast<double>(sp.samples);
    std::cout << "wrote " << out << "/x.npy (" << sp.samples << " x " << sp.d << "), " << out
              << "/dictionary.npy (" << sp.n_features << " atoms); mean L0 " << l0 << "\n";
  } catch (const std::exception& e) {
    std::cerr << "sae_planted_data: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

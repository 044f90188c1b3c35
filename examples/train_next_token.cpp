// train_next_token: trains the paper's next-token predictor p(y|x) = softmax(f_y(y)ᵀ f_x(x)) on a
// latent concept world, with a progress bar, and compares its train / validation / test
// cross-entropy with the exact Bayes cross-entropy of the world (the best any predictor can do).
//
//   train_next_token [--concepts M] [--samples N] [--epochs E] [--batch B] [--lr LR]
//                    [--hidden 256,256] [--rep-dim D] [--threads T] [--seed S] [--csv FILE]
#include <ergo/model.hpp>
#include <ergo/nn.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

int main(int argc, char** argv) {
  CLI::App app{"ergo train_next_token: train f_x, f_y on a concept world, compare with Bayes"};
  std::uint64_t seed = 1;
  ergo::model::PaperWorldParams wp;
  wp.m = 3;
  ergo::Index n_samples = 20000, rep_dim = -1;
  int threads = 1;
  std::vector<ergo::Index> hidden = {256, 256};
  std::string csv_path;
  ergo::nn::TrainerParams tp;
  tp.epochs = 30;
  tp.batch_size = 512;
  tp.adam.lr = 1e-3;
  tp.patience = 10;
  app.add_option("--seed", seed, "random seed (world, data, weights, shuffling)");
  app.add_option("--concepts", wp.m, "binary concepts m (ℓ = 2^m)")->check(CLI::Range(1, 10));
  app.add_option("--eta", wp.eta, "bit-flip noise of the observed bits, [0, 0.5)");
  app.add_option("--samples", n_samples, "training samples (plus 20% validation, 20% test)")
      ->check(CLI::Range(10, 100000000));
  app.add_option("--epochs", tp.epochs, "maximum epochs")->check(CLI::Range(1, 100000));
  app.add_option("--batch", tp.batch_size, "batch size")->check(CLI::Range(1, 1000000));
  app.add_option("--lr", tp.adam.lr, "Adam learning rate");
  app.add_option("--patience", tp.patience, "early-stopping patience in epochs (0: off)");
  app.add_option("--hidden", hidden, "hidden widths of f_x")->delimiter(',');
  app.add_option("--rep-dim", rep_dim, "representation size d (-1: ℓ − 1, the paper's choice)");
  app.add_option("--threads", threads, "threads for Eigen and the nn kernels")
      ->check(CLI::Range(1, 256));
  app.add_option("--csv", csv_path, "write the training log (one row per progress event) here");
  CLI11_PARSE(app, argc, argv);

  try {
    ergo::set_num_threads(threads);
    ergo::Rng world_rng(ergo::derive_seed(seed, 0)), data_rng(ergo::derive_seed(seed, 1));
    const auto world = ergo::model::make_paper_world<double>(wp, world_rng);
    const ergo::Index l = world.joint_size();
    const ergo::model::Samples train = world.sample(n_samples, data_rng);
    const ergo::model::Samples val =
        world.sample(std::max<ergo::Index>(1, n_samples / 5), data_rng);
    const ergo::model::Samples test =
        world.sample(std::max<ergo::Index>(1, n_samples / 5), data_rng);
    std::cout << "ergo " << ergo::version() << " — next-token training on a concept world\n"
              << "  m = " << wp.m << " binary concepts, ℓ = " << l
              << ", x = " << world.context_size() << " bits (η = " << wp.eta
              << "), |V| = " << world.vocab_size() << "; " << train.x.cols() << " train / "
              << val.x.cols() << " validation / " << test.x.cols() << " test samples\n";

    ergo::nn::NextTokenParams np;
    np.hidden = hidden;
    np.rep_dim = rep_dim > 0 ? rep_dim : std::max<ergo::Index>(1, l - 1);
    np.seed = ergo::derive_seed(seed, 2);
    ergo::nn::NextTokenModel<float> model(world.x_cardinalities(), world.vocab_size(), np);
    std::cout << "  f_x: " << model.input_dim();
    for (auto h : hidden) std::cout << " → " << h;
    std::cout << " → d = " << model.rep_dim() << " (LeakyReLU 0.2); f_y: " << model.rep_dim()
              << " × " << model.vocab_size() << "; "
              << ergo::nn::parameter_count(model.parameters()) << " parameters; " << threads
              << " thread(s)\n";

    tp.seed = ergo::derive_seed(seed, 3);
    tp.progress_every = 20;
    ergo::ProgressBar bar(std::cerr);
    ergo::CallbackList callbacks({&bar});
    std::ofstream csv_file;
    std::unique_ptr<ergo::CsvLogger> csv;
    if (!csv_path.empty()) {
      csv_file.open(csv_path);
      if (!csv_file) throw ergo::RuntimeError("cannot open " + csv_path + " for writing");
      csv = std::make_unique<ergo::CsvLogger>(csv_file);
      callbacks.add(csv.get());
    }
    ergo::nn::Trainer<float> trainer(tp);
    const ergo::nn::TrainResult r = trainer.fit(model, train.x, train.y, val.x, val.y, &callbacks);
    std::cout << "  status " << ergo::to_string(r.status) << " after " << r.steps << " steps ("
              << r.epochs << " epochs, " << r.seconds << " s, " << r.samples_per_second
              << " samples/s)";
    if (r.restored_best) std::cout << "; best validation step " << r.best_step << " restored";
    std::cout << "\n\n  split        model CE   Bayes CE   excess\n";
    auto row = [&](const char* name, const ergo::model::Samples& s) {
      const double ours = model.cross_entropy(s.x, s.y);
      const double bayes = world.bayes_cross_entropy(s.x, s.y);
      std::printf("  %-10s %9.4f  %9.4f  %+6.2f%%\n", name, ours, bayes,
                  100.0 * (ours / bayes - 1.0));
    };
    row("train", train);
    row("validation", val);
    row("test", test);
    std::cout
        << "  (nats per token; the Bayes CE is exact: −log Σ_c p(y|c) p(c|x) by enumeration)\n";
    return r.status == ergo::Status::NumericalIssue ? 1 : 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
}

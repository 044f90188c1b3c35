// concept_world: builds a small latent concept world (m = 4 binary concepts, the paper's
// simulation recipe), samples from it, and prints the graph, a few samples with their exact
// posteriors, and ε statistics (how far the world is from invertible).
//
//   concept_world [--seed S] [--concepts M] [--observed N] [--eta ETA] [--samples K]
#include <ergo/model.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"ergo concept_world: sample a latent concept world and inspect exact posteriors"};
  std::uint64_t seed = 1;
  ergo::model::PaperWorldParams p;
  ergo::Index show = 5, n_samples = 10000;
  app.add_option("--seed", seed, "random seed (world and samples)");
  app.add_option("--concepts", p.m, "number of binary concepts m")->check(CLI::Range(1, 14));
  app.add_option("--observed", p.n_observed, "observed bits n (-1: ℓ)");
  app.add_option("--eta", p.eta, "bit-flip noise of the observations, [0, 0.5)");
  app.add_option("--er", p.er_k, "ER-k graph density (edges per concept)");
  app.add_option("--samples", n_samples, "samples for the ε statistics")
      ->check(CLI::Range(1, 10000000));
  app.add_option("--show", show, "samples to print")->check(CLI::Range(0, 100));
  CLI11_PARSE(app, argc, argv);

  try {
    ergo::Rng rng(seed);
    const auto world = ergo::model::make_paper_world<double>(p, rng);
    const ergo::Index l = world.joint_size();
    std::cout << "ergo " << ergo::version() << " — a latent concept world (seed " << seed << ")\n\n"
              << world.graph().to_string();
    std::cout << "  ℓ = " << l << " joint configurations; x = " << world.context_size()
              << " observed bits (permuted one-hot, flip noise η = " << p.eta
              << "); y = one token over " << world.vocab_size() << " values\n\n";

    const auto s = world.sample(std::max(n_samples, show), rng);
    const ergo::MatrixXd lp = world.log_posterior(s.x.leftCols(show));
    const ergo::RowVector<double> eps_show = world.epsilon(s.x.leftCols(show), s.y.leftCols(show));
    for (ergo::Index j = 0; j < show; ++j) {
      ergo::Index best = 0;
      lp.col(j).maxCoeff(&best);
      std::cout << "sample " << j << ": c = (";
      for (ergo::Index k = 0; k < world.concept_count(); ++k)
        std::cout << (k ? "," : "") << s.c(k, j);
      std::cout << ")  x = ";
      for (ergo::Index i = 0; i < world.context_size(); ++i) std::cout << s.x(i, j);
      std::cout << "  y = " << s.y[j] << "\n  MAP c = (";
      const ergo::IntVector map = world.prior().config(best);
      for (ergo::Index k = 0; k < world.concept_count(); ++k) std::cout << (k ? "," : "") << map[k];
      std::printf(")  p(MAP|x) = %.3f  ε(x,y) = %.3f\n  p(c_k = 1 | x):", std::exp(lp(best, j)),
                  eps_show[j]);
      const ergo::MatrixXd marg = world.marginalise(lp.col(j));
      for (ergo::Index k = 0; k < world.concept_count(); ++k)
        std::printf(" %.3f", std::exp(marg(world.marginal_offset(k) + 1, 0)));
      std::cout << "\n";
    }

    const ergo::RowVector<double> eps = world.epsilon(s.x, s.y);
    ergo::RowVector<double> sorted = eps;
    std::sort(sorted.data(), sorted.data() + sorted.size());
    const double ce = world.bayes_cross_entropy(s.x, s.y);
    std::printf(
        "\nε(x,y) = 1 − max_c p(c|x,y) over %ld samples: mean %.4f, median %.4f, 90th pct %.4f, "
        "max %.4f\n",
        static_cast<long>(eps.size()), eps.mean(), sorted[sorted.size() / 2],
        sorted[(sorted.size() * 9) / 10], sorted[sorted.size() - 1]);
    std::printf("Bayes cross-entropy of y given x: %.4f nats (uniform over the vocabulary: %.4f)\n",
                ce, std::log(static_cast<double>(world.vocab_size())));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "concept_world: " << e.what() << "\n";
    return 1;
  }
}

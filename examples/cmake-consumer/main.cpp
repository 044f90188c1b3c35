// The README's quick example, built against an installed ergo through find_package(ergo).
#include <ergo/ergo.hpp>

#include <cmath>
#include <cstdio>

int main() {
  ergo::Rng rng(42);
  ergo::model::PaperWorldParams params;  // 4 binary concepts on a random ER-1 DAG, 16 noisy bits
  const auto world = ergo::model::make_paper_world<double>(params, rng);

  const ergo::model::Samples s = world.sample(5000, rng);    // columns are samples
  const ergo::MatrixXd log_post = world.log_posterior(s.x);  // 16 × 5000: log p(c | x)
  const ergo::MatrixXd odds = world.log_odds(s.x);           // 4 × 5000: per-concept log-odds

  std::printf("concepts %ld, configurations %ld, samples %ld\n",
              static_cast<long>(world.concept_count()), static_cast<long>(world.joint_size()),
              static_cast<long>(s.size()));
  std::printf("first context: p(c_k = 1 | x) =");
  for (ergo::Index k = 0; k < odds.rows(); ++k)
    std::printf(" %.3f", 1 / (1 + std::exp(-odds(k, 0))));
  std::printf("  (true c =");
  for (ergo::Index k = 0; k < odds.rows(); ++k) std::printf(" %d", s.c(k, 0));
  std::printf(")\n");
  std::printf("posterior mass sums to %.12f\n", log_post.col(0).array().exp().sum());
  std::printf("Bayes cross-entropy of the next token: %.4f nats\n",
              world.bayes_cross_entropy(s.x, s.y));
  std::printf("mean epsilon(x, y): %.4f\n", world.epsilon(s.x, s.y).mean());
  return 0;
}

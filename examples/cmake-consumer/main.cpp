// Uses ergo from an installed tree: builds a tiny concept world and checks one posterior.
#include <ergo/ergo.hpp>

#include <cmath>
#include <iostream>

int main() {
  ergo::Matrix<double> logits(3, 2);
  logits << 1.0, 0.0, 2.0, 0.0, 3.0, 0.0;
  const ergo::Matrix<double> p = ergo::softmax_cols(logits);
  const double total = p.col(0).sum();
  std::cout << "ergo " << ergo::version() << ": softmax column sums to " << total << "\n";
  return std::abs(total - 1.0) < 1e-12 ? 0 : 1;
}

// Part of the package test: ergo/io.hpp needs nlohmann-json, which the installed ergo::ergo
// target brings along (find_dependency in ergoConfig.cmake). Writes and reads back a .npy file.
#include <ergo/ergo.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "consumer_check.npy";
  ergo::Rng rng(7);
  const ergo::MatrixXd m = rng.normal_matrix<double>(3, 5);
  ergo::io::write_npy(path, m);
  const ergo::MatrixXd back = ergo::io::read_npy<double>(path);
  const bool same = back == m;
  std::printf("npy round trip through the installed package: %s\n", same ? "exact" : "DIFFERENT");
  return same ? 0 : 1;
}

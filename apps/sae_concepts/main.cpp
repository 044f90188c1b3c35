// SPDX-License-Identifier: MIT
// Sparse autoencoders judged against ground truth (the paper's third contribution, §5).
//
// (a) Planted sparse features with a known dictionary (part_a.hpp): dictionary MCC and code MCC
//     of every architecture, swept over its sparsity knob, compared at matched L0. One seed.
// (b) The concept-alignment study (study.hpp, report.hpp; docs/sae.md): on the representations
//     f_x(x) of next-token models trained on concept worlds (2 world families × `--seeds` seeds),
//     every code of the same width scored the same way against the exact posteriors
//     p(c_k = 1 | x): the standard SAEs, the structured SAE (dense branch on all latents and on
//     K latents), the ConCA unmixer and the dense baselines (PCA, random orthogonal projection,
//     untrained SAE), each with a permutation null; paired differences by seed.
//
//   sae_concepts [--out DIR] [--part a|b|both] [--quick] [--seeds N] [--permutations B]
//                [--jobs J] [--seed S] [--threads T]
//
// The default (part b, 5 seeds × 2 worlds) takes about 8 minutes on 2 cores (docs/sae.md);
// --quick takes well under a minute; part (a) takes about 13 minutes more.
//
// Writes (atomically) DIR/sae_concepts.md (the tables), DIR/sae_concepts_b.json (configuration,
// every run, summaries, comparisons), DIR/sae_concepts_b.csv (one row per world, seed and code),
// DIR/*.dat and DIR/sae_concepts.gp, and runs gnuplot on the script when it is installed.

#include "part_a.hpp"
#include "report.hpp"
#include "study.hpp"

#include <ergo/io/atomic_write.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace ergo;
namespace fs = std::filesystem;
namespace st = ergo::saestudy;

struct Options {
  std::string out = "sae_concepts_out";
  std::string part = "b";
  bool quick = false;
  std::uint64_t seed = 1;  // part (a)
  Index seeds = -1;        // part (b): -1 = the config's
  Index permutations = -1;
  int jobs = 2;     // part (b): (world, seed) runs in parallel
  int threads = 1;  // the SAEs are small (d·m ≈ 1.6e4): threads cost more than they save
};

// Every (world, seed) of the study, `jobs` at a time (each run is single-threaded and has its
// own seeds, so the results do not depend on the number of jobs); logs are printed per run.
st::StudyResult part_b(const Options& o, std::ostream& log) {
  st::StudyResult r;
  r.config = st::default_config(o.quick);
  if (o.seeds > 0) r.config.seeds = o.seeds;
  if (o.permutations > 0) r.config.permutations = o.permutations;
  std::vector<std::pair<Index, std::uint64_t>> tasks;
  for (size_t w = 0; w < r.config.worlds.size(); ++w)
    for (Index s = 1; s <= r.config.seeds; ++s)
      tasks.emplace_back(static_cast<Index>(w), static_cast<std::uint64_t>(s));
  r.runs.resize(tasks.size());
  std::vector<std::string> errors(tasks.size());
  std::atomic<size_t> next{0};
  std::mutex log_mutex;
  const auto t0 = std::chrono::steady_clock::now();
  auto worker = [&] {
    set_num_threads(std::max(1, o.threads));  // OpenMP's thread count is per thread
    for (size_t i = next++; i < tasks.size(); i = next++) {
      std::ostringstream run_log;
      try {
        const auto& [w, seed] = tasks[i];
        r.runs[i] =
            st::run_one(r.config, r.config.worlds[static_cast<size_t>(w)], w, seed, run_log);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
      const std::lock_guard<std::mutex> lock(log_mutex);
      log << run_log.str() << std::flush;
    }
  };
  std::vector<std::thread> pool;
  for (int j = 0; j < std::max(1, o.jobs); ++j) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  for (const std::string& e : errors)
    if (!e.empty()) throw std::runtime_error(e);
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// Per code: mean and sd of the exp(z) alignment in each world, and the probe as the last row.
std::string b_dat(const st::StudyResult& r) {
  std::ostringstream f;
  f << "# code";
  for (const auto& w : r.config.worlds) f << " " << w.name << "_mean " << w.name << "_sd";
  f << "\n";
  for (const auto& c : r.config.codes) {
    f << c.name;
    for (const auto& w : r.config.worlds) {
      const st::MeanStd m = st::mean_std(st::seed_values(r, w.name, c.name));
      f << " " << m.mean << " " << m.sd;
    }
    f << "\n";
  }
  f << "probe";
  for (const auto& w : r.config.worlds) {
    std::vector<double> v;
    for (const auto& run : r.runs)
      if (run.world == w.name) v.push_back(run.probe);
    const st::MeanStd m = st::mean_std(v);
    f << " " << m.mean << " " << m.sd;
  }
  f << "\n";
  return f.str();
}

std::string gnuplot_script(const std::vector<std::string>& archs_a, const st::StudyResult* b) {
  std::ostringstream g;
  g << "# gnuplot script written by sae_concepts; run from this folder: gnuplot sae_concepts.gp\n"
       "set terminal svg size 1100,420 dynamic font 'Helvetica,12' noenhanced\n"
       "set style fill solid 0.8 border -1\nset boxwidth 0.9\nset grid ytics\n"
       "set xtics rotate by -30\n";
  if (!archs_a.empty()) {
    g << "set style data histograms\nset style histogram clustered gap 1\n"
         "set output 'sae_concepts_a.svg'\nset multiplot layout 1,2 title "
         "'(a) planted dictionary: recovery at matched L0'\n"
         "set yrange [0:1.1]\nset ylabel 'MCC'\nset key top right\n"
         "plot 'sae_concepts_a_matched.dat' using 5:xtic(1) title 'dictionary MCC', '' using 6 "
         "title 'code MCC'\n"
         "unset style\nset style data linespoints\nset logscale x\nset xlabel 'L0'\n"
         "set key bottom left\nunset xtics\nset xtics nomirror\nplot ";
    for (size_t i = 0; i < archs_a.size(); ++i)
      g << (i ? ", " : "") << "'sae_concepts_a_sweep.dat' index " << i
        << " using 3:5 with linespoints title '" << archs_a[i] << "'";
    g << "\nunset multiplot\nunset logscale x\nunset xlabel\nset xtics rotate by -30\n";
  }
  if (b) {
    g << "set output 'sae_concepts_b.svg'\nset title '(b) concept alignment with p(c_k|x): "
         "mean ± std over seeds (cf. paper Figure 4)'\n"
         "set style data histograms\nset style histogram errorbars gap 1 lw 1\n"
         "set yrange [0:1.1]\nset ylabel 'mean over concepts of max_i corr(exp(z_i), p_k)'\n"
         "set key top left\nplot ";
    for (size_t w = 0; w < b->config.worlds.size(); ++w)
      g << (w ? ", " : "") << "'sae_concepts_b.dat' using " << 2 + 2 * w << ":" << 3 + 2 * w
        << (w ? "" : ":xtic(1)") << " title '" << b->config.worlds[w].name << "'";
    g << "\n";
  }
  return g.str();
}

void run_gnuplot(const fs::path& dir) {
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) {
    std::cerr << "gnuplot not found: data and script written to " << dir.string() << "\n";
    return;
  }
  const std::string cmd = "cd '" + dir.string() + "' && gnuplot sae_concepts.gp";
  if (std::system(cmd.c_str()) == 0)
    std::cerr << "figures written to " << (dir / "sae_concepts_*.svg").string() << "\n";
  else
    std::cerr << "gnuplot failed; the data and script are in " << dir.string() << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"SAEs against ground truth: planted dictionaries and concept posteriors"};
  app.add_option("--out", o.out, "output folder")->capture_default_str();
  app.add_option("--part", o.part, "a, b or both")
      ->check(CLI::IsMember({"a", "b", "both"}))
      ->capture_default_str();
  app.add_flag("--quick", o.quick, "small sizes and short runs (a smoke test)");
  app.add_option("--seeds", o.seeds, "part (b): seeds per world (default 5; --quick 2)");
  app.add_option("--permutations", o.permutations,
                 "part (b): permutations of each null (default 200; --quick 100)");
  app.add_option("--seed", o.seed, "part (a): seed of everything")->capture_default_str();
  app.add_option("--jobs", o.jobs, "part (b): runs in parallel, one thread each")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "threads for Eigen and ergo loops")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  set_num_threads(std::max(1, o.threads));
  const fs::path dir(o.out);
  std::ostringstream md;
  md << "# SAEs against ground truth (apps/sae_concepts)\n\n"
     << (o.quick ? "--quick (a smoke test: sizes far too small for conclusions)\n\n" : "");
  const bool do_a = o.part != "b", do_b = o.part != "a";
  std::vector<std::string> archs_a;
  st::StudyResult b;
  try {
    fs::create_directories(dir);
    if (do_a) {
      std::cerr << "part (a): planted dictionary, seed " << o.seed << "\n";
      const st::part_a::PartA a = st::part_a::run(o.seed, o.quick, std::cerr);
      for (const auto& r : a.runs)
        if (std::find(archs_a.begin(), archs_a.end(), r.arch) == archs_a.end())
          archs_a.push_back(r.arch);
      st::part_a::write(a, dir, md);
    }
    if (do_b) {
      std::cerr << "part (b): the concept-alignment study\n";
      b = part_b(o, std::cerr);
      md << st::study_markdown(b);
      io::atomic_write_file((dir / "sae_concepts_b.json").string(),
                            st::study_json(b).dump(1) + "\n");
      io::atomic_write_file((dir / "sae_concepts_b.csv").string(), st::study_csv(b));
      io::atomic_write_file((dir / "sae_concepts_b.dat").string(), b_dat(b));
    }
    io::atomic_write_file((dir / "sae_concepts.gp").string(),
                          gnuplot_script(archs_a, do_b ? &b : nullptr));
    io::atomic_write_file((dir / "sae_concepts.md").string(), md.str());
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  std::cout << md.str();
  run_gnuplot(dir);
  return 0;
}

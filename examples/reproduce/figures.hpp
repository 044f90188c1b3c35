// SPDX-License-Identifier: MIT
#pragma once

// Figures of examples/reproduce_paper.cpp: writes .dat files and gnuplot scripts into the results
// folder, then renders them with gnuplot when it is installed (found at run time). Without gnuplot
// the data and scripts are still written and the caller is told.

#include "results.hpp"

#include <ergo/core.hpp>
#include <ergo/io/atomic_write.hpp>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace ergo::repro {

/// True when a `gnuplot` executable is on the PATH.
inline bool gnuplot_available() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

/// A figure: its data files (name → content) and the gnuplot script that renders <name>.png.
struct Figure {
  std::string name;
  std::vector<std::pair<std::string, std::string>> data;
  std::string script;
};

/// Series "x mean std" lines of metric `metric` for the settings of `experiment` that satisfy
/// `keep`, with x read from params[`xkey`].
template <class Keep>
std::string series(const std::vector<SettingResult>& rs, const std::string& experiment,
                   const std::string& xkey, const std::vector<std::string>& metrics, Keep keep) {
  std::ostringstream os;
  os.precision(8);
  os << "# " << xkey;
  for (const auto& m : metrics) os << " " << m << "_mean " << m << "_std";
  os << "\n";
  for (const auto& r : rs) {
    if (r.experiment != experiment || !keep(r)) continue;
    os << r.params.at(xkey).dump();
    for (const auto& m : metrics) {
      const double mu = r.mean(m), sd = r.std_dev(m);
      os << " " << (std::isfinite(mu) ? std::to_string(mu) : "NaN") << " "
         << (std::isfinite(sd) ? std::to_string(sd) : "NaN");
    }
    os << "\n";
  }
  return os.str();
}

inline const char* kGnuplotHeader =
    "set terminal pngcairo size 1100,420 enhanced font 'Sans,10'\n"
    "set grid\nset key bottom right\n";

/// Experiment 1: R² (joint clr, per-concept log-odds) and probe accuracy against n.
inline Figure exp1_figure(const std::vector<SettingResult>& rs) {
  Figure f{"fig_exp1", {}, ""};
  f.data.push_back({"exp1.dat", series(rs, "exp1", "n",
                                       {"r2_clr", "r2_logodds", "probe_acc", "bayes_acc", "eps_mean"},
                                       [](const SettingResult&) { return true; })});
  f.script = std::string(kGnuplotHeader) +
             "set output 'fig_exp1.png'\nset multiplot layout 1,2 title 'Experiment 1: invertibility "
             "(m = 4 binary concepts, held-out, mean ± std over seeds)'\n"
             "set xlabel 'observed bits n'\nset ylabel 'held-out R^2'\nset yrange [*:1.02]\n"
             "plot 'exp1.dat' u 1:2:3 w yerrorlines lw 2 t 'f_x(x) → clr log p(c|x)', "
             "'' u 1:4:5 w yerrorlines lw 2 t 'f_x(x) → log-odds of each c_k'\n"
             "set ylabel 'accuracy, ε'\nset yrange [0:1.02]\n"
             "plot 'exp1.dat' u 1:6:7 w yerrorlines lw 2 t 'linear probe on f_x(x)', "
             "'' u 1:8:9 w yerrorlines lw 2 dt 2 t 'Bayes-optimal from x', "
             "'' u 1:10:11 w yerrorlines lw 1 t 'mean ε(x,y)'\n"
             "unset multiplot\n";
  return f;
}

/// Experiment 2: R² and probe accuracy against m, one line per ER-k.
inline Figure exp2_figure(const std::vector<SettingResult>& rs, const std::vector<double>& ks) {
  Figure f{"fig_exp2", {}, ""};
  std::string p1 = "plot ", p2 = "plot ";
  for (size_t i = 0; i < ks.size(); ++i) {
    const double k = ks[i];
    const std::string file = "exp2_er" + std::to_string(static_cast<int>(k)) + ".dat";
    f.data.push_back({file, series(rs, "exp2", "m", {"r2_clr", "r2_logodds", "probe_acc"},
                                   [k](const SettingResult& r) {
                                     return r.params.at("er_k").get<double>() == k;
                                   })});
    const std::string t = "ER" + std::to_string(static_cast<int>(k));
    p1 += (i ? ", " : "") + ("'" + file + "' u 1:2:3 w yerrorlines lw 2 t '" + t + " clr'") +
          (", '" + file + "' u 1:4:5 w yerrorlines lw 1 dt 2 t '" + t + " log-odds'");
    p2 += (i ? ", " : "") + ("'" + file + "' u 1:6:7 w yerrorlines lw 2 t '" + t + "'");
  }
  f.script = std::string(kGnuplotHeader) +
             "set output 'fig_exp2.png'\nset multiplot layout 1,2 title 'Experiment 2: graph "
             "structure and scale (held-out, mean ± std over seeds)'\n"
             "set xlabel 'number of concepts m'\nset ylabel 'held-out R^2'\nset yrange [*:1.02]\n" +
             p1 + "\nset ylabel 'linear-probe accuracy'\nset yrange [0.4:1.02]\n" + p2 +
             "\nunset multiplot\n";
  return f;
}

/// Predicted against true per-concept log-odds for one setting (columns: concept, true, predicted).
inline Figure scatter_figure(const std::string& data, const std::string& title) {
  Figure f{"fig_scatter", {{"scatter.dat", data}}, ""};
  f.script = "set terminal pngcairo size 560,520 enhanced font 'Sans,10'\nset output 'fig_scatter.png'\n"
             "set grid\nset key top left\nset title '" + title + "'\n"
             "set xlabel 'true log-odds log p(c_k=1|x) − log p(c_k=0|x)'\n"
             "set ylabel 'linear prediction from f_x(x)'\nset size ratio -1\n"
             "plot 'scatter.dat' u 2:3:1 w p pt 7 ps 0.3 lc variable t 'test contexts (colour = k)', "
             "x w l lw 1 lc rgb 'black' t 'y = x'\n";
  return f;
}

/// Heatmap of a fitted map (matrix rows × cols, written as a gnuplot matrix).
inline Figure heatmap_figure(const Matrix<double>& m, const std::string& title, const std::string& xl,
                             const std::string& yl) {
  std::ostringstream os;
  os.precision(6);
  for (Index i = 0; i < m.rows(); ++i) {
    for (Index j = 0; j < m.cols(); ++j) os << (j ? " " : "") << m(i, j);
    os << "\n";
  }
  Figure f{"fig_map", {{"map.dat", os.str()}}, ""};
  f.script = "set terminal pngcairo size 900,360 enhanced font 'Sans,10'\nset output 'fig_map.png'\n"
             "set title '" + title + "'\nset xlabel '" + xl + "'\nset ylabel '" + yl + "'\n"
             "set palette defined (-1 'blue', 0 'white', 1 'red')\nset cbrange [-1:1]\n"
             "set yrange [-0.5:" + std::to_string(static_cast<double>(m.rows()) - 0.5) + "] reverse\n"
             "set xrange [-0.5:" + std::to_string(static_cast<double>(m.cols()) - 0.5) + "]\n"
             "plot 'map.dat' matrix w image notitle\n";
  return f;
}

/// Writes every figure's data and script into `dir`; renders them if gnuplot is installed.
/// Returns a note for the user (what was rendered, or that gnuplot is missing).
inline std::string write_figures(const std::string& dir, const std::vector<Figure>& figs, bool render) {
  for (const auto& f : figs) {
    for (const auto& d : f.data) io::atomic_write_file(dir + "/" + d.first, d.second);
    io::atomic_write_file(dir + "/" + f.name + ".gp", f.script);
  }
  if (!render) return "figures: data and gnuplot scripts written (rendering disabled)";
  if (!gnuplot_available())
    return "figures: gnuplot not found — wrote the .dat files and .gp scripts; install gnuplot "
           "and run `gnuplot fig_*.gp` in " + dir + " to render them";
  int failed = 0;
  for (const auto& f : figs) {
    const std::string cmd = "cd '" + dir + "' && gnuplot '" + f.name + ".gp' 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) ++failed;
  }
  return failed ? "figures: gnuplot failed on " + std::to_string(failed) + " figure(s)"
                : "figures: rendered " + std::to_string(figs.size()) + " PNG files with gnuplot";
}

}  // namespace ergo::repro

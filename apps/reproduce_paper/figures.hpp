// SPDX-License-Identifier: MIT
#pragma once

// Figures of apps/reproduce_paper: writes .dat files and gnuplot scripts into the results
// folder, then renders them with gnuplot when it is installed (found at run time). Without gnuplot
// the data and scripts are still written and the caller is told.

#include "results.hpp"

#include <ergo/core.hpp>
#include <ergo/io/atomic_write.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace ergo::repro {

/// True when a `gnuplot` executable is on the PATH.
inline bool gnuplot_available() {
  return std::system("command -v gnuplot >/dev/null 2>&1") == 0;
}

/// A figure: its data files (name → content) and the gnuplot script that renders <name>.png.
struct Figure {
  std::string name;
  std::vector<std::pair<std::string, std::string>> data;
  std::string script;
};

namespace detail {

inline std::string fmt(double v) {
  if (!std::isfinite(v)) return "NaN";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

/// "x mean std mean std …" per setting of `table`, sorted by x; x is a world metric's mean when
/// `x_rep` is "world" and `x_key` is not a parameter, else params[x_key].
inline std::string series(const std::vector<SettingResult>& rs, const std::string& table,
                          const std::string& x_key,
                          const std::vector<std::pair<std::string, std::string>>& ys,
                          const std::function<bool(const SettingResult&)>& keep = nullptr) {
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& r : rs) {
    bool member = false;
    for (const auto& m : r.setting.memberships) member = member || m.table == table;
    if (!member || (keep && !keep(r))) continue;
    const double x = r.setting.params.contains(x_key) ? r.setting.params.at(x_key).get<double>()
                                                      : mean_std(values(r, "world", x_key)).mean;
    std::string line = fmt(x);
    for (const auto& [rep, key] : ys) {
      const MeanStd ms = mean_std(values(r, rep, key));
      line += " " + fmt(ms.mean) + " " + fmt(ms.sd);
    }
    rows.emplace_back(x, line);
  }
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out = "# " + x_key;
  for (const auto& [rep, key] : ys) out += " " + rep + "." + key + "_mean _std";
  out += "\n";
  for (const auto& r : rows) out += r.second + "\n";
  return out;
}

/// A representation name as a gnuplot title ('_' would start a subscript).
inline std::string title_of(std::string name) {
  std::replace(name.begin(), name.end(), '_', ' ');
  return name;
}

inline const char* kHeader =
    "set terminal pngcairo size 1150,430 enhanced font 'Sans,10'\nset grid\nset key bottom right\n";

/// "'file' u 1:c:c+1 w yerrorlines t '…', …" for consecutive (mean, std) column pairs.
inline std::string lines(const std::string& file, const std::vector<std::string>& titles,
                         int first_col = 2, const std::string& style = "w yerrorlines lw 2") {
  std::string p;
  for (size_t i = 0; i < titles.size(); ++i) {
    const int c = first_col + 2 * static_cast<int>(i);
    p += (i ? ", " : "") + ("'" + file + "' u 1:" + std::to_string(c) + ":" +
                            std::to_string(c + 1) + " " + style + " t '" + titles[i] + "'");
  }
  return p;
}

}  // namespace detail

/// The reference setting: held-out agreement with the Bayes representation and the predictive
/// gaps, one group of bars per representation.
inline Figure learning_figure(const SettingResult& ref) {
  std::ostringstream d;
  d << "# representation r2_bayes sd cca_mean sd cca_min sd gap_readout sd gap_own sd\n";
  for (const auto& name : representation_names()) {
    std::string label = name;  // one word per row label
    std::replace(label.begin(), label.end(), '_', '-');
    d << label;
    for (const char* k :
         {"r2_bayes", "cca_bayes_mean", "cca_bayes_min", "gap_readout", "gap_own"}) {
      const MeanStd ms = mean_std(values(ref, name, k));
      d << " " << detail::fmt(ms.mean) << " " << detail::fmt(ms.sd);
    }
    d << "\n";
  }
  Figure f{"fig_learning", {{"learning.dat", d.str()}}, ""};
  f.script =
      std::string(detail::kHeader) +
      "set output 'fig_learning.png'\nset multiplot layout 1,2 title 'Reference setting "
      "(m = 4, n = ℓ, d = ℓ): held-out, mean ± std over seeds'\n"
      "set style data histograms\nset style histogram errorbars gap 1 lw 1\n"
      "set style fill solid 0.6 border -1\nset xtics rotate by -20\n"
      "set key top center horizontal\n"
      "set yrange [-0.1:1.3]\nset ylabel 'agreement with the Bayes representation'\n"
      "plot 'learning.dat' u 2:3:xtic(1) t 'R^2 (F → Bayes)', '' u 4:5 t 'mean ρ', "
      "'' u 6:7 t 'ρ_{min}'\n"
      "set yrange [-0.1:1.6]\nset ylabel 'normalised predictive gap (0 = Bayes, 1 = no context)'\n"
      "plot 'learning.dat' u 8:9:xtic(1) t 'linear readout', '' u 10:11 t 'own head'\n"
      "unset multiplot\n";
  return f;
}

/// The theorem against ε (noise sweep): residual share and parameter-free R² of the linear form,
/// for the Bayes representation (a property of the world) and the trained network.
inline Figure theorem_figure(const std::vector<SettingResult>& rs) {
  Figure f{"fig_theorem", {}, ""};
  f.data.push_back({"theorem.dat", detail::series(rs, "noise", "eps_mean",
                                                  {{"bayes_optimal", "theory_residual_share"},
                                                   {"bayes_optimal", "theory_logit_residual_share"},
                                                   {"trained", "theory_logit_residual_share"},
                                                   {"bayes_optimal", "theory_r2_linear"},
                                                   {"bayes_optimal", "theory_logit_r2_linear"},
                                                   {"trained", "theory_logit_r2_linear"},
                                                   {"trained", "theory_logit_r2_exact"}})});
  f.script =
      std::string(detail::kHeader) +
      "set output 'fig_theorem.png'\nset multiplot layout 1,2 title 'Theorem 3.1 against ε "
      "(noise sweep, m = 4, n = ℓ, d = ℓ; parameter-free; mean ± std over seeds)'\n"
      "set logscale x\nset xlabel 'mean ε = 1 − max_c p(c|x,y)'\n"
      "set ylabel 'residual share var(residual) / var(F)'\nset key top right\nplot " +
      detail::lines("theorem.dat", {"Bayes representation", "Bayes, logit space",
                                    "trained network, logit space"}) +
      "\nset ylabel 'R^2 of the theorem against F'\nset key bottom left\nset yrange "
      "[*:1.05]\nplot " +
      detail::lines("theorem.dat",
                    {"Bayes: linear form Aλ+b", "Bayes: linear form, logit space",
                     "trained: linear form, logit space", "trained: exact form, logit space"},
                    8) +
      "\nunset multiplot\n";
  return f;
}

/// Experiment 1: normalised probe accuracy of every representation, and accuracies, against n.
inline Figure exp1_figure(const std::vector<SettingResult>& rs) {
  Figure f{"fig_exp1", {}, ""};
  std::vector<std::pair<std::string, std::string>> ys;
  for (const auto& name : representation_names()) ys.push_back({name, "probe_acc_norm"});
  ys.push_back({"trained", "probe_acc"});
  ys.push_back({"world", "bayes_acc"});
  ys.push_back({"world", "majority_acc"});
  f.data.push_back({"exp1.dat", detail::series(rs, "exp1", "n", ys)});
  std::vector<std::string> titles;
  for (const auto& name : representation_names()) titles.push_back(detail::title_of(name));
  f.script =
      std::string(detail::kHeader) +
      "set output 'fig_exp1.png'\nset multiplot layout 1,2 title 'Experiment 1: observed bits "
      "n (m = 4, d = ℓ; held-out, mean ± std over seeds)'\nset xlabel 'informative bits n'\n"
      "set offsets graph 0.04, graph 0.04, 0, 0\n"
      "set ylabel '(acc − majority) / (Bayes − majority)'\nset yrange [-0.1:1.1]\nplot " +
      detail::lines("exp1.dat", titles) +
      "\nset ylabel 'probe accuracy'\nset yrange [0.4:1.02]\nplot " +
      detail::lines("exp1.dat", {"trained network", "Bayes (MAP from x)", "majority class"}, 12) +
      "\nunset multiplot\n";
  return f;
}

/// Experiment 2: the trained network's normalised probe accuracy against m, one line per ER-k.
inline Figure exp2_figure(const std::vector<SettingResult>& rs, const std::vector<double>& ks) {
  Figure f{"fig_exp2", {}, ""};
  std::string p1 = "plot ", p2 = "plot ";
  for (size_t i = 0; i < ks.size(); ++i) {
    const double k = ks[i];
    const std::string file = "exp2_er" + detail::fmt(k) + ".dat";
    f.data.push_back(
        {file, detail::series(rs, "exp2", "m",
                              {{"trained", "probe_acc_norm"},
                               {"untrained", "probe_acc_norm"},
                               {"trained", "probe_acc"},
                               {"world", "bayes_acc"}},
                              [k](const SettingResult& r) { return r.setting.world.er_k == k; })});
    const std::string t = "ER" + detail::fmt(k);
    p1 += (i ? ", " : "") + ("'" + file + "' u 1:2:3 w yerrorlines lw 2 t '" + t + " trained', '" +
                             file + "' u 1:4:5 w yerrorlines lw 1 dt 2 t '" + t + " untrained'");
    p2 += (i ? ", " : "") + ("'" + file + "' u 1:6:7 w yerrorlines lw 2 t '" + t + " trained', '" +
                             file + "' u 1:8:9 w yerrorlines lw 1 dt 3 t '" + t + " Bayes'");
  }
  f.script =
      std::string(detail::kHeader) +
      "set output 'fig_exp2.png'\nset multiplot layout 1,2 title 'Experiment 2: graph "
      "structure and scale (held-out, mean ± std over seeds)'\nset xlabel 'concepts m'\n"
      "set offsets graph 0.08, graph 0.08, 0, 0\n"
      "set xtics 1\nset ylabel '(acc − majority) / (Bayes − majority)'\nset yrange [-0.1:1.1]\n" +
      p1 + "\nset ylabel 'probe accuracy'\nset yrange [0.4:1.02]\n" + p2 + "\nunset multiplot\n";
  return f;
}

/// Reference setting: the held-out canonical correlations with the Bayes representation, sorted,
/// mean over seeds, one line per representation.
inline Figure spectrum_figure(const SettingResult& ref) {
  std::ostringstream d;
  d << "# index";
  for (const auto& name : representation_names()) d << " " << name;
  d << "\n";
  const Index k =
      static_cast<Index>(ref.runs.at(0).reps.at("trained").at("cca_bayes_spectrum").size());
  for (Index i = 0; i < k; ++i) {
    d << i + 1;
    for (const auto& name : representation_names()) {
      std::vector<double> v;
      for (const auto& run : ref.runs) {
        const auto& s = run.reps.at(name).at("cca_bayes_spectrum").at(static_cast<size_t>(i));
        v.push_back(s.is_number() ? s.get<double>() : std::nan(""));
      }
      d << " " << detail::fmt(mean_std(v).mean);
    }
    d << "\n";
  }
  Figure f{"fig_spectrum", {{"spectrum.dat", d.str()}}, ""};
  std::string p = "plot ";
  for (size_t i = 0; i < representation_names().size(); ++i)
    p += (i ? ", " : "") +
         ("'spectrum.dat' u 1:" + std::to_string(i + 2) + " w lp lw 2 pt 7 ps 0.6 t '" +
          detail::title_of(representation_names()[i]) + "'");
  f.script =
      "set terminal pngcairo size 700,430 enhanced font 'Sans,10'\nset output 'fig_spectrum.png'\n"
      "set grid\nset key bottom left\nset title 'Reference setting: held-out canonical "
      "correlations with the Bayes representation (mean over seeds)'\n"
      "set xlabel 'canonical direction (sorted)'\nset ylabel 'ρ_i'\nset yrange [-0.1:1.05]\n" +
      p + "\n";
  return f;
}

/// Writes every figure's data and script into `dir`; renders them if gnuplot is installed.
/// Returns a note for the user (what was rendered, or that gnuplot is missing).
inline std::string write_figures(const std::string& dir, const std::vector<Figure>& figs,
                                 bool render) {
  for (const auto& f : figs) {
    for (const auto& d : f.data) io::atomic_write_file(dir + "/" + d.first, d.second);
    io::atomic_write_file(dir + "/" + f.name + ".gp", f.script);
  }
  if (!render) return "figures: data and gnuplot scripts written (rendering disabled)";
  if (!gnuplot_available())
    return "figures: gnuplot not found — wrote the .dat files and .gp scripts; install gnuplot "
           "and run `gnuplot fig_*.gp` in " +
           dir + " to render them";
  int failed = 0;
  for (const auto& f : figs) {
    const std::string cmd = "cd '" + dir + "' && gnuplot '" + f.name + ".gp' 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) ++failed;
  }
  return failed ? "figures: gnuplot failed on " + std::to_string(failed) + " figure(s)"
                : "figures: rendered " + std::to_string(figs.size()) + " PNG files with gnuplot";
}

}  // namespace ergo::repro

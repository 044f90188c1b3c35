// SPDX-License-Identifier: MIT
#pragma once

// Shared pieces of the command-line tools (ergo-sae, ergo-identify, ergo-linrep): reading a
// matrix from a .npy or .safetensors file, "name=path" arguments, JSON output, and an SVG
// heatmap writer (no external program needed).

#include <ergo/core.hpp>
#include <ergo/io.hpp>

#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace ergo::tools {

inline bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}
inline bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}
/// File name without directory and extension ("data/gender.npy" -> "gender").
inline std::string stem(const std::string& path) {
  const auto slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  const auto dot = name.find_last_of('.');
  return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}
/// Whole file as a string ("" if unreadable).
inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}
inline std::string join(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

/// Splits "name=path" into (name, path); a plain "path" gives (stem(path), path).
inline std::pair<std::string, std::string> split_named(const std::string& arg) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) return {stem(arg), arg};
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

/// \brief Reads a matrix from "file.npy", "file.safetensors" (its only tensor) or
/// "file.safetensors:name", under io's shape rule ([n, d] -> d × n). 1-D files give 1 × n when
/// `vector_as_row` (one value per sample).
template <class S>
Matrix<S> read_matrix(const std::string& spec, bool vector_as_row = true,
                      bool require_finite = true) {
  io::ReadOptions opt;
  opt.vector_as_row = vector_as_row;
  opt.require_finite = require_finite;
  std::string path = spec, tensor;
  const auto colon = spec.rfind(':');
  if (colon != std::string::npos && ends_with(spec.substr(0, colon), ".safetensors")) {
    path = spec.substr(0, colon);
    tensor = spec.substr(colon + 1);
  }
  if (ends_with(path, ".npy")) return io::NpyFile(path, "read_matrix").matrix<S>(opt);
  if (ends_with(path, ".safetensors")) {
    io::SafetensorsFile f(path, "read_matrix");
    if (tensor.empty()) {
      const auto names = f.names();
      if (names.size() != 1)
        throw io::FormatError(make_message("read_matrix", "'" + path + "'",
                                           "one tensor, or a name as file.safetensors:name",
                                           detail::str_cat(names.size(), " tensors")));
      tensor = names[0];
    }
    return f.matrix<S>(tensor, opt);
  }
  throw_invalid("read_matrix", "file", "a .npy or .safetensors file", "'" + spec + "'");
}

/// Writes a JSON document atomically (pretty-printed).
inline void write_json(const std::string& path, const nlohmann::json& j) {
  io::atomic_write_file(path, j.dump(2) + "\n");
}
/// A finite double, or null.
inline nlohmann::json num(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

/// Writes a matrix as CSV (one row per line), atomically.
inline void write_csv_matrix(const std::string& path, const Matrix<double>& m,
                             const std::vector<std::string>& names = {}) {
  std::ostringstream os;
  os << std::setprecision(10);
  if (!names.empty()) {
    os << "name";
    for (const auto& n : names) os << "," << n;
    os << "\n";
  }
  for (Index i = 0; i < m.rows(); ++i) {
    if (!names.empty()) os << names[static_cast<std::size_t>(i)] << ",";
    for (Index j = 0; j < m.cols(); ++j) os << (j ? "," : "") << m(i, j);
    os << "\n";
  }
  io::atomic_write_file(path, os.str());
}

/// \brief An SVG heatmap of `m` with row/column labels, cell values and a colour bar.
/// Colours: a diverging blue–white–red map over [-vmax, vmax], vmax = max(|m|, 1e-12)
/// unless `vmax` > 0 is given.
inline std::string svg_heatmap(const Matrix<double>& m, const std::vector<std::string>& rows,
                               const std::vector<std::string>& cols, const std::string& title,
                               double vmax = 0.0) {
  const int cell = m.rows() <= 12 && m.cols() <= 12 ? 48 : 20;
  const int left = 150, top = 60, bar = 20;
  const int w = std::max(left + static_cast<int>(m.cols()) * cell + 90,
                         static_cast<int>(title.size()) * 8 + 40);
  const int h = top + static_cast<int>(m.rows()) * cell + 140;
  if (!(vmax > 0)) vmax = std::max(m.cwiseAbs().maxCoeff(), 1e-12);
  auto colour = [&](double v) {
    const double t = std::max(-1.0, std::min(1.0, v / vmax));
    int r, g, b;
    if (t >= 0) {  // white -> red
      r = 255;
      g = b = static_cast<int>(std::lround(255 * (1 - t)));
    } else {  // white -> blue
      b = 255;
      r = g = static_cast<int>(std::lround(255 * (1 + t)));
    }
    char buf[16];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, g, b);
    return std::string(buf);
  };
  auto esc = [](const std::string& s) {
    std::string o;
    for (char c : s)
      o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
    return o;
  };
  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
     << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  os << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  os << "<text x=\"" << w / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">"
     << esc(title) << "</text>\n";
  for (Index i = 0; i < m.rows(); ++i)
    for (Index j = 0; j < m.cols(); ++j) {
      const int x = left + static_cast<int>(j) * cell, y = top + static_cast<int>(i) * cell;
      os << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << cell << "\" height=\"" << cell
         << "\" fill=\"" << colour(m(i, j)) << "\" stroke=\"#888\" stroke-width=\"0.5\"/>\n";
      if (cell >= 40) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.2f", m(i, j));
        os << "<text x=\"" << x + cell / 2 << "\" y=\"" << y + cell / 2 + 4
           << "\" text-anchor=\"middle\" font-size=\"11\">" << buf << "</text>\n";
      }
    }
  for (Index i = 0; i < m.rows() && i < static_cast<Index>(rows.size()); ++i)
    os << "<text x=\"" << left - 6 << "\" y=\"" << top + static_cast<int>(i) * cell + cell / 2 + 4
       << "\" text-anchor=\"end\">" << esc(rows[static_cast<std::size_t>(i)]) << "</text>\n";
  const int ylab = top + static_cast<int>(m.rows()) * cell + 10;
  for (Index j = 0; j < m.cols() && j < static_cast<Index>(cols.size()); ++j) {
    const int x = left + static_cast<int>(j) * cell + cell / 2;
    os << "<text transform=\"translate(" << x << "," << ylab << ") rotate(45)\">"
       << esc(cols[static_cast<std::size_t>(j)]) << "</text>\n";
  }
  // colour bar
  const int bx = left + static_cast<int>(m.cols()) * cell + 25,
            bh = static_cast<int>(m.rows()) * cell;
  for (int k = 0; k < 50; ++k) {
    const double v = vmax * (1.0 - 2.0 * (k + 0.5) / 50.0);
    os << "<rect x=\"" << bx << "\" y=\"" << top + k * bh / 50 << "\" width=\"" << bar
       << "\" height=\"" << bh / 50 + 1 << "\" fill=\"" << colour(v) << "\"/>\n";
  }
  char lo[32], hi[32];
  std::snprintf(hi, sizeof hi, "%.2f", vmax);
  std::snprintf(lo, sizeof lo, "%.2f", -vmax);
  os << "<text x=\"" << bx + bar + 4 << "\" y=\"" << top + 10 << "\">" << hi << "</text>\n";
  os << "<text x=\"" << bx + bar + 4 << "\" y=\"" << top + bh << "\">" << lo << "</text>\n";
  os << "</svg>\n";
  return os.str();
}

}  // namespace ergo::tools

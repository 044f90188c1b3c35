// SPDX-License-Identifier: MIT
#pragma once

/// \file writers.hpp
/// \brief Private: tiny JSON and CSV writers driven by one traversal ("sink") interface, so a
/// report is described once and written in both formats. No external dependency (identify may
/// include only core).
///
/// Numbers are printed with the shortest of 15 or 17 significant digits that reads back to the
/// same double; NaN and ±inf become JSON `null` (CSV: empty field).

#include "../../core/types.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <string>
#include <vector>

namespace ergo::identify::detail {

/// Shortest round-tripping decimal text of a finite double (15 or 17 significant digits).
inline std::string format_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.15g", v);
  if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

/// JSON string literal with escapes.
inline std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(ch)));
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

/// Pretty-printing JSON sink.
class JsonSink {
 public:
  explicit JsonSink(std::ostream& os) : m_os(os) {}

  void begin(const std::string& name) { open(name, '{'); }
  void end() { close('}'); }
  void begin_list(const std::string& name) { open(name, '['); }
  void end_list() { close(']'); }
  void begin_item() { open("", '{'); }
  void end_item() { close('}'); }
  void field(const std::string& name, double v) {
    prefix(name);
    m_os << (std::isfinite(v) ? format_double(v) : std::string("null"));
  }
  void field(const std::string& name, Index v) {
    prefix(name);
    m_os << v;
  }
  void field(const std::string& name, bool v) {
    prefix(name);
    m_os << (v ? "true" : "false");
  }
  void field(const std::string& name, const std::string& v) {
    prefix(name);
    m_os << json_quote(v);
  }
  void field(const std::string& name, const char* v) { field(name, std::string(v)); }
  void field(const std::string& name, const Vector<double>& v) {
    prefix(name);
    m_os << '[';
    for (Index i = 0; i < v.size(); ++i)
      m_os << (i ? ", " : "") << (std::isfinite(v[i]) ? format_double(v[i]) : std::string("null"));
    m_os << ']';
  }
  void field(const std::string& name, const IndexVector& v) {
    prefix(name);
    m_os << '[';
    for (Index i = 0; i < v.size(); ++i) m_os << (i ? ", " : "") << v[i];
    m_os << ']';
  }
  void field(const std::string& name, const std::vector<std::string>& v) {
    prefix(name);
    m_os << '[';
    for (size_t i = 0; i < v.size(); ++i) m_os << (i ? ", " : "") << json_quote(v[i]);
    m_os << ']';
  }
  /// Top-level object.
  void begin_document() {
    m_os << '{';
    m_first.push_back(true);
  }
  void end_document() {
    m_first.pop_back();
    m_os << '\n' << '}' << '\n';
  }

 private:
  void indent() {
    m_os << '\n';
    for (size_t i = 0; i < m_first.size(); ++i) m_os << "  ";
  }
  void prefix(const std::string& name) {
    if (!m_first.back()) m_os << ',';
    m_first.back() = false;
    indent();
    if (!name.empty()) m_os << json_quote(name) << ": ";
  }
  void open(const std::string& name, char bracket) {
    prefix(name);
    m_os << bracket;
    m_first.push_back(true);
  }
  void close(char bracket) {
    const bool empty = m_first.back();
    m_first.pop_back();
    if (!empty) indent();
    m_os << bracket;
  }
  std::ostream& m_os;
  std::vector<bool> m_first;
};

/// Long-format CSV sink: one "key,value" row per scalar; nested names are joined with '.', list
/// items get "[i]", vector entries "[i]".
class CsvSink {
 public:
  explicit CsvSink(std::ostream& os) : m_os(os) {}
  void begin_document() { m_os << "key,value\n"; }
  void end_document() {}
  void begin(const std::string& name) { m_path.push_back(name); }
  void end() { m_path.pop_back(); }
  void begin_list(const std::string& name) {
    m_path.push_back(name);
    m_items.push_back(0);
  }
  void end_list() {
    m_items.pop_back();
    m_path.pop_back();
  }
  void begin_item() {
    m_path.back() += "[" + std::to_string(m_items.back()) + "]";
  }
  void end_item() {
    auto& p = m_path.back();
    p.erase(p.rfind('['));
    ++m_items.back();
  }
  void field(const std::string& name, double v) {
    row(name, std::isfinite(v) ? format_double(v) : std::string());
  }
  void field(const std::string& name, Index v) { row(name, std::to_string(v)); }
  void field(const std::string& name, bool v) { row(name, v ? "true" : "false"); }
  void field(const std::string& name, const std::string& v) { row(name, quote(v)); }
  void field(const std::string& name, const char* v) { field(name, std::string(v)); }
  void field(const std::string& name, const Vector<double>& v) {
    for (Index i = 0; i < v.size(); ++i)
      row(name + "[" + std::to_string(i) + "]",
          std::isfinite(v[i]) ? format_double(v[i]) : std::string());
  }
  void field(const std::string& name, const IndexVector& v) {
    for (Index i = 0; i < v.size(); ++i)
      row(name + "[" + std::to_string(i) + "]", std::to_string(v[i]));
  }
  void field(const std::string& name, const std::vector<std::string>& v) {
    for (size_t i = 0; i < v.size(); ++i) row(name + "[" + std::to_string(i) + "]", quote(v[i]));
  }

 private:
  static std::string quote(const std::string& s) {
    std::string out = "\"";
    for (char ch : s) out += (ch == '"') ? std::string("\"\"") : std::string(1, ch);
    return out + "\"";
  }
  void row(const std::string& name, const std::string& value) {
    std::string key;
    for (const auto& p : m_path) key += p + ".";
    m_os << key << name << ',' << value << '\n';
  }
  std::ostream& m_os;
  std::vector<std::string> m_path;
  std::vector<Index> m_items;
};

}  // namespace ergo::identify::detail

// SPDX-License-Identifier: MIT
#pragma once

/// \file writers.hpp
/// \brief Private: long-format CSV ("key,value" rows) of a JSON value, so a report described
/// once as JSON (IdentifiabilityReport::to_json) is also written as CSV.
///
/// Numbers are printed with the shortest of 15 or 17 significant digits that reads back to the
/// same double; null (and a non-finite number) becomes an empty field.

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <string>

namespace ergo::identify::detail {

/// Shortest round-tripping decimal text of a finite double (15 or 17 significant digits).
inline std::string format_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.15g", v);
  if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

/// CSV string field: in double quotes, inner quotes doubled.
inline std::string csv_quote(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) out += (ch == '"') ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

/// Writes one "key,value" row per scalar of `j` (no header): object members are named
/// `key.member` (just `member` at the top, where `key` is empty), array entries `key[i]`; empty
/// objects and arrays write nothing. Values: numbers as format_double / integers, `true` /
/// `false`, strings through csv_quote, null as an empty field.
template <class BasicJson>
void write_csv_rows(std::ostream& os, const std::string& key, const BasicJson& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object:
      for (auto it = j.begin(); it != j.end(); ++it)
        write_csv_rows(os, key.empty() ? it.key() : key + "." + it.key(), it.value());
      return;
    case nlohmann::json::value_t::array:
      for (std::size_t i = 0; i < j.size(); ++i)
        write_csv_rows(os, key + "[" + std::to_string(i) + "]", j[i]);
      return;
    case nlohmann::json::value_t::string:
      os << key << ',' << csv_quote(j.template get_ref<const std::string&>()) << '\n';
      return;
    case nlohmann::json::value_t::boolean:
      os << key << ',' << (j.template get<bool>() ? "true" : "false") << '\n';
      return;
    case nlohmann::json::value_t::number_integer:
      os << key << ',' << std::to_string(j.template get<std::int64_t>()) << '\n';
      return;
    case nlohmann::json::value_t::number_unsigned:
      os << key << ',' << std::to_string(j.template get<std::uint64_t>()) << '\n';
      return;
    case nlohmann::json::value_t::number_float: {
      const double v = j.template get<double>();
      os << key << ',' << (std::isfinite(v) ? format_double(v) : std::string()) << '\n';
      return;
    }
    default:  // null (and binary / discarded, which a report never holds)
      os << key << ",\n";
      return;
  }
}

}  // namespace ergo::identify::detail

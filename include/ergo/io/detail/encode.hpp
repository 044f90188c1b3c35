// SPDX-License-Identifier: MIT
#pragma once

/// \file encode.hpp
/// \brief Streams an Eigen expression to an AtomicFile in a stored dtype (shared by the writers).

#include "../atomic_write.hpp"
#include "../dtype.hpp"

#include "../../core/error.hpp"
#include "../../core/types.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

namespace ergo::io {
namespace detail {

/// Writes the column-major elements of `m` to `f` encoded as `dtype`: straight from the matrix's
/// storage when it is a plain matrix of the same type, else in 1 MiB encoded chunks (so a large
/// matrix is never copied whole). Throws InvalidArgument if a value cannot be stored as `dtype`.
template <class Derived>
void write_encoded(AtomicFile& f, const Eigen::DenseBase<Derived>& m, DType dtype,
                   const std::string& who) {
  using S = typename Derived::Scalar;
  using Plain = Matrix<S>;
  if constexpr (std::is_same<Derived, Plain>::value) {
    if (dtype == dtype_of<S>()) {
      f.write(m.derived().data(), static_cast<std::size_t>(m.size()) * sizeof(S));
      return;
    }
  }
  const Index chunk = std::max<Index>(1, (Index(1) << 20) / static_cast<Index>(sizeof(S)));
  const std::size_t es = dtype_size(dtype);
  std::vector<S> vals;
  std::vector<unsigned char> bytes;
  Index flat = 0;
  const Index total = m.size();
  while (flat < total) {
    const Index len = std::min(chunk, total - flat);
    vals.resize(static_cast<std::size_t>(len));
    for (Index t = 0; t < len; ++t) {
      const Index k = flat + t;
      vals[static_cast<std::size_t>(t)] = m.derived().coeff(k % m.rows(), k / m.rows());
    }
    bytes.resize(static_cast<std::size_t>(len) * es);
    ConvertIssue issue;
    const std::size_t done = encode_elements(vals.data(), vals.size(), dtype, bytes.data(), issue);
    if (done != vals.size())
      throw_invalid(who, "values", str_cat("values representable as ", dtype_name(dtype)),
                    str_cat(vals[done], " at flat index ", flat + static_cast<Index>(done)));
    f.write(bytes.data(), bytes.size());
    flat += len;
  }
}

}  // namespace detail

}  // namespace ergo::io

// SPDX-License-Identifier: MIT
#pragma once

/// \file communicator.hpp
/// \brief Communicator: the collective operations ergo's data-parallel code needs (sums,
/// maxima, broadcast, barrier, and an error check that stops every rank together), with
/// LocalCommunicator, the single-process default whose collectives do nothing. An MPI
/// implementation lives in the optional header ergo/mpi.hpp (docs/scale.md).
///
/// \code
/// ergo::LocalCommunicator local;                  // one process: what every default uses
/// ergo::Communicator& comm = local;
/// std::vector<double> partial = {1.0, 2.0};
/// comm.allreduce_sum(partial.data(), 2);          // sums over ranks, in place
/// ergo::collective(comm, [&] { /* I/O that may throw on one rank */ });
/// \endcode
///
/// Every method of a Communicator is collective: every rank calls it, in the same order, with
/// the same sizes. A rank that throws between two collectives would leave the others waiting,
/// so code that may fail on one rank (reading a file, checking its data) runs inside
/// collective() or reports through all_ok(), which make every rank throw the same RankError.

#include "error.hpp"
#include "types.hpp"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace ergo {

/// \brief Thrown on every rank by Communicator::all_ok() when some rank failed; the message
/// names the first failing rank and carries its error.
class RankError : public RuntimeError {
 public:
  RankError(int failed_rank, const std::string& message)
      : RuntimeError(message), m_rank(failed_rank) {}
  /// The lowest rank that reported a failure.
  int failed_rank() const { return m_rank; }

 private:
  int m_rank;
};

/// \brief A rank's contiguous share of n items split over `size` ranks: the first n % size
/// ranks hold one item more. \see share_of
struct Share {
  Index offset = 0;  ///< index of the rank's first item
  Index count = 0;   ///< number of items the rank holds
};

/// \brief Rank `rank`'s share of n items over `size` ranks (sizes differ by at most one, in rank
/// order: rank 0 holds items [0, count_0), rank 1 the next ones, ...).
inline Share share_of(Index n, int rank, int size) {
  check_arg(size >= 1 && rank >= 0 && rank < size, "share_of", "rank",
            detail::str_cat("a value in [0, size = ", size, ")"), rank);
  check_arg(n >= 0, "share_of", "n", ">= 0", n);
  const Index q = n / size, r = n % size;
  Share s;
  s.count = q + (rank < r ? 1 : 0);
  s.offset = q * rank + std::min<Index>(rank, r);
  return s;
}

/// \brief The collective operations of a group of `size()` processes ("ranks").
///
/// Implementations: LocalCommunicator (one process), MpiCommunicator (ergo/mpi.hpp). Sums are
/// taken in place; every rank receives the same result (for MPI this relies on the library
/// giving every rank the same reduced value, which Open MPI and MPICH do for the built-in
/// sum; docs/scale.md).
class Communicator {
 public:
  virtual ~Communicator() = default;
  /// This process's rank in [0, size()).
  virtual int rank() const = 0;
  /// Number of ranks (>= 1).
  virtual int size() const = 0;
  /// Sums `n` values over ranks, in place.
  virtual void allreduce_sum(double* data, Index n) const = 0;
  /// Sums `n` values over ranks, in place.
  virtual void allreduce_sum(float* data, Index n) const = 0;
  /// Sums `n` values over ranks, in place (exact).
  virtual void allreduce_sum(std::int64_t* data, Index n) const = 0;
  /// Elementwise maximum of `n` values over ranks, in place.
  virtual void allreduce_max(double* data, Index n) const = 0;
  /// Copies `bytes` bytes at `data` from rank `root` to every rank.
  virtual void broadcast(void* data, std::size_t bytes, int root) const = 0;
  /// Waits until every rank has arrived.
  virtual void barrier() const = 0;

  /// True on rank 0 (the rank that prints and writes files).
  bool is_root() const { return rank() == 0; }

  /// \brief Elementwise minimum (the maximum of the negated values).
  void allreduce_min(double* data, Index n) const {
    for (Index i = 0; i < n; ++i) data[i] = -data[i];
    allreduce_max(data, n);
    for (Index i = 0; i < n; ++i) data[i] = -data[i];
  }

  /// \brief Sums a contiguous Eigen matrix or vector over ranks, in place.
  template <class Derived>
  void allreduce_sum(Eigen::PlainObjectBase<Derived>& m) const {
    allreduce_sum(m.data(), m.size());
  }

  /// \brief Collective error check: if any rank passes ok = false, every rank throws the same
  /// RankError "rank r of R: <message of rank r>" (r the lowest failing rank). On one rank it
  /// throws RankError with `message` when !ok. Costs one sum of size() integers when all is well.
  void all_ok(bool ok, const std::string& message) const {
    const int R = size();
    std::vector<std::int64_t> bad(static_cast<std::size_t>(R), 0);
    bad[static_cast<std::size_t>(rank())] = ok ? 0 : 1;
    if (R > 1) allreduce_sum(bad.data(), R);
    int first = -1;
    for (int r = 0; r < R && first < 0; ++r)
      if (bad[static_cast<std::size_t>(r)] != 0) first = r;
    if (first < 0) return;
    if (R == 1) throw RankError(0, message);
    std::int64_t len = rank() == first ? static_cast<std::int64_t>(message.size()) : 0;
    broadcast(&len, sizeof(len), first);
    std::string text = rank() == first ? message : std::string(static_cast<std::size_t>(len), ' ');
    if (len > 0) broadcast(&text[0], static_cast<std::size_t>(len), first);
    Index nbad = 0;
    for (auto b : bad) nbad += b;
    throw RankError(
        first, detail::str_cat(
                   "rank ", first, " of ", R,
                   nbad > 1 ? detail::str_cat(" (and ", nbad - 1, " other ranks)") : std::string(),
                   ": ", text));
  }
};

/// \brief The communicator of a single process: rank 0 of 1, every collective a no-op. The
/// default wherever ergo takes a Communicator.
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(double*, Index) const override {}
  void allreduce_sum(float*, Index) const override {}
  void allreduce_sum(std::int64_t*, Index) const override {}
  void allreduce_max(double*, Index) const override {}
  void broadcast(void*, std::size_t, int root) const override {
    check_arg(root == 0, "LocalCommunicator::broadcast", "root", "0", root);
  }
  void barrier() const override {}
  using Communicator::allreduce_sum;
};

/// \brief The process-wide LocalCommunicator (what a default-constructed trainer uses).
inline const LocalCommunicator& local_communicator() {
  static const LocalCommunicator c;
  return c;
}

/// \brief Runs f() on every rank and checks the outcome collectively: if f throws on any rank,
/// every rank throws the same RankError naming the first failing rank and its message. With
/// one rank the original exception propagates unchanged (single-process behaviour).
template <class F>
void collective(const Communicator& comm, F&& f) {
  if (comm.size() == 1) {
    std::forward<F>(f)();
    return;
  }
  bool ok = true;
  std::string msg;
  try {
    std::forward<F>(f)();
  } catch (const std::exception& e) {
    ok = false;
    msg = e.what();
  } catch (...) {
    ok = false;
    msg = "unknown exception";
  }
  comm.all_ok(ok, msg);
}

}  // namespace ergo

// SPDX-License-Identifier: MIT
#pragma once

/// \file mpi.hpp
/// \brief Optional MPI support: MpiCommunicator (an ergo::Communicator over an MPI
/// communicator) and MpiEnvironment (RAII MPI_Init_thread / MPI_Finalize). The only ergo header
/// that includes <mpi.h>; not included by ergo.hpp. Link the CMake target ergo::mpi (built when
/// ERGO_MPI is on). See docs/scale.md.
///
/// \code
/// #include <ergo/mpi.hpp>
/// int main(int argc, char** argv) {
///   ergo::MpiEnvironment env(argc, argv);          // MPI_Init_thread(FUNNELED)
///   ergo::MpiCommunicator comm;                     // MPI_COMM_WORLD
///   ergo::sae::Trainer<float> trainer(params, comm);  // data-parallel over the ranks
///   ...
/// }                                                 // MPI_Finalize
/// \endcode
///
/// Threads: MPI is initialised with MPI_THREAD_FUNNELED: OpenMP threads compute inside a rank,
/// only the main thread calls MPI (every collective of ergo is called outside parallel regions).

#include "core/communicator.hpp"
#include "core/error.hpp"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace ergo {

namespace detail {

/// Throws RuntimeError naming the MPI call when `rc` is not MPI_SUCCESS (with the default
/// MPI_ERRORS_ARE_FATAL handler MPI aborts first; this covers MPI_ERRORS_RETURN).
inline void mpi_check(int rc, const char* who, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw RuntimeError(str_cat(who, "(): ", call, " failed: ", std::string(text, len)));
}

/// Calls f(ptr, count) over chunks of at most INT_MAX elements (MPI counts are int).
template <class T, class F>
void mpi_chunks(T* data, Index n, F&& f) {
  constexpr Index kMax = INT_MAX;
  for (Index off = 0; off < n; off += kMax)
    f(data + off, static_cast<int>(std::min(kMax, n - off)));
}

}  // namespace detail

/// \brief An ergo::Communicator over an MPI communicator (MPI_COMM_WORLD by default). The
/// communicator is borrowed, not freed. MPI must be initialised (MpiEnvironment).
class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm = MPI_COMM_WORLD) : m_comm(comm) {
    int init = 0;
    MPI_Initialized(&init);
    if (!init)
      throw RuntimeError(
          "MpiCommunicator(): MPI is not initialised: expected an MpiEnvironment (or "
          "MPI_Init_thread) before, got none");
    detail::mpi_check(MPI_Comm_rank(m_comm, &m_rank), "MpiCommunicator", "MPI_Comm_rank");
    detail::mpi_check(MPI_Comm_size(m_comm, &m_size), "MpiCommunicator", "MPI_Comm_size");
  }
  int rank() const override { return m_rank; }
  int size() const override { return m_size; }
  MPI_Comm comm() const { return m_comm; }

  void allreduce_sum(double* data, Index n) const override { reduce(data, n, MPI_DOUBLE, MPI_SUM); }
  void allreduce_sum(float* data, Index n) const override { reduce(data, n, MPI_FLOAT, MPI_SUM); }
  void allreduce_sum(std::int64_t* data, Index n) const override {
    reduce(data, n, MPI_INT64_T, MPI_SUM);
  }
  void allreduce_max(double* data, Index n) const override { reduce(data, n, MPI_DOUBLE, MPI_MAX); }
  void broadcast(void* data, std::size_t bytes, int root) const override {
    auto* p = static_cast<char*>(data);
    detail::mpi_chunks(p, static_cast<Index>(bytes), [&](char* q, int c) {
      detail::mpi_check(MPI_Bcast(q, c, MPI_BYTE, root, m_comm), "MpiCommunicator::broadcast",
                        "MPI_Bcast");
    });
  }
  void barrier() const override {
    detail::mpi_check(MPI_Barrier(m_comm), "MpiCommunicator::barrier", "MPI_Barrier");
  }
  using Communicator::allreduce_sum;

 private:
  template <class T>
  void reduce(T* data, Index n, MPI_Datatype type, MPI_Op op) const {
    if (m_size == 1 || n == 0) return;
    detail::mpi_chunks(data, n, [&](T* q, int c) {
      detail::mpi_check(MPI_Allreduce(MPI_IN_PLACE, q, c, type, op, m_comm),
                        "MpiCommunicator::allreduce", "MPI_Allreduce");
    });
  }

  MPI_Comm m_comm;
  int m_rank = 0, m_size = 1;
};

/// \brief RAII MPI initialisation: MPI_Init_thread(MPI_THREAD_FUNNELED) unless MPI is already
/// initialised, MPI_Finalize at the end of the scope if this object initialised it.
class MpiEnvironment {
 public:
  MpiEnvironment(int& argc, char**& argv) {
    int init = 0;
    MPI_Initialized(&init);
    if (init) return;
    detail::mpi_check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &m_provided),
                      "MpiEnvironment", "MPI_Init_thread");
    m_owner = true;
  }
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;
  ~MpiEnvironment() {
    int fin = 0;
    MPI_Finalized(&fin);
    if (m_owner && !fin) MPI_Finalize();
  }
  /// The thread level MPI provides (MPI_THREAD_FUNNELED or higher when this object initialised).
  int thread_level() const { return m_provided; }

  /// \brief True when the process was started by an MPI launcher (mpirun, mpiexec, srun with
  /// PMI/PMIx): the environment has OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK or
  /// MPI_LOCALNRANKS. Tools initialise MPI only then, so that a plain run stays a plain process.
  static bool launched() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
      if (std::getenv(v) != nullptr) return true;
    return false;
  }

 private:
  bool m_owner = false;
  int m_provided = MPI_THREAD_SINGLE;
};

}  // namespace ergo

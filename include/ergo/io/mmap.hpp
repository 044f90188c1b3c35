// SPDX-License-Identifier: MIT
#pragma once

/// \file mmap.hpp
/// \brief A read-only memory-mapped file (POSIX mmap), RAII and move-only.
///
/// Readers map a file instead of reading it, so a 40 GB activation shard costs no memory until
/// its pages are touched and a C-order [n, d] float32 array can be viewed as a d × n Eigen matrix
/// without a copy. The mapping is private and read-only; it lives as long as the MappedFile.
///
/// \code
/// ergo::io::MappedFile f("acts.npy");
/// const unsigned char* p = f.data();   // f.size() bytes
/// \endcode

#include "error.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <string>
#include <utility>

namespace ergo::io {

/// \brief Read-only memory map of a whole file. An empty file maps to data() == nullptr.
class MappedFile {
 public:
  MappedFile() = default;
  /// \brief Maps `path`. Throws FileError if it cannot be opened, is not a regular file, or
  /// cannot be mapped.
  explicit MappedFile(const std::string& path) : m_path(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) detail::throw_file("MappedFile", path, "open for reading", errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      detail::throw_file("MappedFile", path, "fstat", err);
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      throw FileError(make_message("MappedFile", detail::file_what(path, ""), "a regular file",
                                   "a directory or special file"));
    }
    m_size = static_cast<std::size_t>(st.st_size);
    if (m_size > 0) {
      void* p = ::mmap(nullptr, m_size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        detail::throw_file("MappedFile", path, "mmap", err);
      }
      m_data = static_cast<const unsigned char*>(p);
    }
    ::close(fd);  // the mapping stays valid after close
  }
  ~MappedFile() { release(); }

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& o) noexcept
      : m_path(std::move(o.m_path)), m_data(o.m_data), m_size(o.m_size) {
    o.m_data = nullptr;
    o.m_size = 0;
  }
  MappedFile& operator=(MappedFile&& o) noexcept {
    if (this != &o) {
      release();
      m_path = std::move(o.m_path);
      m_data = o.m_data;
      m_size = o.m_size;
      o.m_data = nullptr;
      o.m_size = 0;
    }
    return *this;
  }

  /// First byte of the mapping (nullptr for an empty file).
  const unsigned char* data() const { return m_data; }
  /// Size of the file in bytes.
  std::size_t size() const { return m_size; }
  /// The path given to the constructor (used in error messages).
  const std::string& path() const { return m_path; }

  /// \brief Hints the kernel about the access pattern of [offset, offset + length)
  /// (MADV_SEQUENTIAL, MADV_RANDOM, MADV_WILLNEED, MADV_DONTNEED). Errors are ignored: it is a
  /// hint.
  void advise(std::size_t offset, std::size_t length, int advice) const {
    if (!m_data || offset >= m_size) return;
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t start = offset / page * page;
    const std::size_t end = std::min(m_size, offset + length);
    (void)::madvise(const_cast<unsigned char*>(m_data) + start, end - start, advice);
  }

 private:
  void release() {
    if (m_data) ::munmap(const_cast<unsigned char*>(m_data), m_size);
    m_data = nullptr;
    m_size = 0;
  }

  std::string m_path;
  const unsigned char* m_data = nullptr;
  std::size_t m_size = 0;
};

}  // namespace ergo::io

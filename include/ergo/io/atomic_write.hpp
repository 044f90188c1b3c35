// SPDX-License-Identifier: MIT
#pragma once

/// \file atomic_write.hpp
/// \brief Crash-safe file replacement: write a temporary file in the same directory, flush it
/// to disk, then rename it over the target.
///
/// rename(2) within one directory is atomic on POSIX file systems, so a reader (or a restart
/// after a crash, a kill or a full disk) sees either the old complete file or the new complete
/// file, never a truncated one. If the writer is destroyed before commit() (an exception, an
/// early return) the temporary file is removed and the target is untouched. A process killed
/// mid-write can leave a stray ".<name>.tmp-XXXXXX" beside the target; it never replaces it.
///
/// \code
/// ergo::io::AtomicFile out("model.safetensors");
/// out.write(header.data(), header.size());
/// out.write(payload.data(), payload.size());
/// out.commit();   // fsync, rename, fsync the directory
/// \endcode

#include "error.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace ergo::io {

namespace detail {
/// Directory part of a path ("." if none) and the file name part.
inline void split_path(const std::string& path, std::string& dir, std::string& name) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) {
    dir = ".";
    name = path;
  } else {
    dir = slash == 0 ? "/" : path.substr(0, slash);
    name = path.substr(slash + 1);
  }
}
}  // namespace detail

/// \brief A file that replaces `path` atomically when commit() is called.
class AtomicFile {
 public:
  /// \brief Creates the temporary file "<dir>/.<name>.tmp-XXXXXX" beside `path`.
  /// Throws InvalidArgument for an empty path or one ending in '/', FileError if the
  /// directory is not writable.
  explicit AtomicFile(std::string path) : m_path(std::move(path)) {
    std::string dir, name;
    detail::split_path(m_path, dir, name);
    check_arg(!name.empty(), "AtomicFile", "path", "a file path", "'" + m_path + "'");
    m_temp = (dir == "/" ? std::string("/") : dir + "/") + "." + name + ".tmp-XXXXXX";
    std::vector<char> buf(m_temp.begin(), m_temp.end());
    buf.push_back('\0');
    m_fd = ::mkstemp(buf.data());
    if (m_fd < 0)
      detail::throw_file("AtomicFile", m_path, "create a temporary file in '" + dir + "'", errno);
    m_temp.assign(buf.data());
    // mkstemp makes the file 0600; give it the target's mode, or rw-r--r-- for a new file.
    struct stat st {};
    const mode_t mode = ::stat(m_path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
    (void)::fchmod(m_fd, mode);
    m_buffer.reserve(kBufferSize);
  }

  /// Removes the temporary file unless commit() succeeded.
  ~AtomicFile() { abandon(); }

  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// \brief Appends `n` bytes (buffered). Throws FileError on a write error (e.g. disk full).
  void write(const void* data, std::size_t n) {
    check_open("write");
    const auto* p = static_cast<const char*>(data);
    if (m_buffer.size() + n <= kBufferSize) {
      m_buffer.insert(m_buffer.end(), p, p + n);
      return;
    }
    flush_buffer();
    if (n >= kBufferSize)
      write_all(p, n);
    else
      m_buffer.insert(m_buffer.end(), p, p + n);
  }
  void write(const std::string& s) { write(s.data(), s.size()); }

  /// Bytes written so far.
  std::size_t bytes_written() const { return m_written + m_buffer.size(); }

  /// \brief Flushes, fsyncs, closes and renames the temporary file over the target, then fsyncs
  /// the directory so the rename itself is durable. Throws FileError on failure (the target is
  /// then untouched and the temporary file removed).
  void commit() {
    check_open("commit");
    flush_buffer();
    if (::fsync(m_fd) != 0) fail("fsync");
    const int fd = m_fd;
    m_fd = -1;
    if (::close(fd) != 0) fail("close");
    if (::rename(m_temp.c_str(), m_path.c_str()) != 0) fail("rename the temporary file over it");
    m_committed = true;
    std::string dir, name;
    detail::split_path(m_path, dir, name);
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)::fsync(dfd);  // best effort: some file systems refuse fsync on directories
      ::close(dfd);
    }
  }

  /// The target path.
  const std::string& path() const { return m_path; }
  /// The temporary file's path (exists until commit() or destruction).
  const std::string& temp_path() const { return m_temp; }

 private:
  static constexpr std::size_t kBufferSize = std::size_t(1) << 20;

  void check_open(const char* what) const {
    if (m_committed || m_fd < 0)
      throw LogicError(detail::str_cat("AtomicFile::", what, "(): '", m_path,
                                       "' was already committed or failed"));
  }
  void write_all(const char* p, std::size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(m_fd, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("write");
      }
      p += w;
      n -= static_cast<std::size_t>(w);
      m_written += static_cast<std::size_t>(w);
    }
  }
  void flush_buffer() {
    if (!m_buffer.empty()) write_all(m_buffer.data(), m_buffer.size());
    m_buffer.clear();
  }
  [[noreturn]] void fail(const std::string& action) {
    const int err = errno;
    abandon();
    detail::throw_file("AtomicFile", m_path, action, err);
  }
  void abandon() noexcept {
    if (m_committed) return;
    if (m_fd >= 0) {
      ::close(m_fd);
      m_fd = -1;
    }
    if (!m_temp.empty()) ::unlink(m_temp.c_str());
    m_committed = true;  // nothing more to do
  }

  std::string m_path;
  std::string m_temp;
  int m_fd = -1;
  bool m_committed = false;
  std::size_t m_written = 0;
  std::vector<char> m_buffer;
};

/// \brief Replaces `path` atomically with `bytes`.
inline void atomic_write_file(const std::string& path, const std::string& bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

/// \brief Creates directory `dir` and its parents (like mkdir -p). Throws FileError on failure.
inline void make_directories(const std::string& dir) {
  if (dir.empty()) return;
  std::string cur;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    cur = dir.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
      detail::throw_file("make_directories", cur, "mkdir", errno);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw FileError(make_message("make_directories", detail::file_what(dir, ""), "a directory",
                                 "an existing non-directory"));
}

}  // namespace ergo::io

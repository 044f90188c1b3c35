// SPDX-License-Identifier: MIT
#pragma once

// Helpers shared by the io tests: a scratch directory per test, raw file writing, and a
// matcher for the messages of io errors.

#include "common/test_utils.hpp"

#include <ergo/io.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace ergo::test {

/// A fresh directory under the system temp dir, removed (with its files) at destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = ::testing::TempDir() + "ergo_io_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    const char* p = ::mkdtemp(buf.data());
    if (!p) throw std::runtime_error("mkdtemp failed");
    m_path = p;
  }
  ~ScratchDir() { remove_tree(m_path); }
  const std::string& path() const { return m_path; }
  std::string file(const std::string& name) const { return m_path + "/" + name; }
  /// Names of the entries in the directory (not "." / "..").
  std::vector<std::string> list(const std::string& sub = "") const {
    std::vector<std::string> out;
    DIR* d = ::opendir((sub.empty() ? m_path : file(sub)).c_str());
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != "..") out.push_back(n);
    }
    ::closedir(d);
    return out;
  }

 private:
  static void remove_tree(const std::string& p) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
      if (DIR* d = ::opendir(p.c_str())) {
        while (dirent* e = ::readdir(d)) {
          const std::string n = e->d_name;
          if (n != "." && n != "..") remove_tree(p + "/" + n);
        }
        ::closedir(d);
      }
      ::rmdir(p.c_str());
    } else {
      ::unlink(p.c_str());
    }
  }
  std::string m_path;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}
inline std::string fixture(const std::string& name) {
  return std::string(ERGO_IO_FIXTURES) + "/" + name;
}

}  // namespace ergo::test

/// Expects `stmt` to throw exception type `E` whose message contains every given substring.
#define EXPECT_THROW_MSG(stmt, E, ...)                                                          \
  do {                                                                                          \
    try {                                                                                       \
      stmt;                                                                                     \
      ADD_FAILURE() << "expected " #E " from: " #stmt;                                          \
    } catch (const E& e__) {                                                                    \
      for (const char* s__ : {__VA_ARGS__}) EXPECT_THAT(e__.what(), ::testing::HasSubstr(s__)); \
    }                                                                                           \
  } while (0)

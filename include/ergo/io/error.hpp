// SPDX-License-Identifier: MIT
#pragma once

/// \file error.hpp
/// \brief The two exceptions of ergo::io: a malformed file and a failed file operation.
///
/// Both carry the canonical message "who(): what: expected X, got Y", where `what` names the
/// file (and the tensor or header field inside it), so that a user with a hundred shards sees at
/// once which one is broken and how:
///
///     read_npy(): 'acts_07.npy' data: expected 4194304 bytes after the header, got 1048576
///
/// - FormatError (an ergo::InvalidArgument, so a std::invalid_argument): the bytes of a file do
///   not follow the format or disagree with what the caller asked for (bad magic, truncated data,
///   a header that lies about shape or dtype, a declared size larger than the file, non-finite
///   values where they are not allowed).
/// - FileError (an ergo::RuntimeError, so a std::runtime_error): the operating system refused an
///   operation (open, mmap, write, fsync, rename), with errno's text.

#include "../core/error.hpp"

#include <cerrno>
#include <cstring>
#include <string>

namespace ergo::io {

/// \brief A file's content does not follow its format, or does not match what was asked for.
class FormatError : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

/// \brief The operating system refused a file operation (open, read, write, fsync, rename).
class FileError : public RuntimeError {
 public:
  using RuntimeError::RuntimeError;
};

namespace detail {

using ::ergo::detail::str_cat;

/// "'path' field" (or "'path'" when field is empty): the `what` part of an io message.
inline std::string file_what(const std::string& path, const std::string& field) {
  return field.empty() ? "'" + path + "'" : "'" + path + "' " + field;
}

/// Throws FormatError "who(): 'path' field: expected X, got Y".
template <class Expected, class Got>
[[noreturn]] void throw_format(const std::string& who, const std::string& path,
                               const std::string& field, const Expected& expected, const Got& got) {
  throw FormatError(make_message(who, file_what(path, field), expected, got));
}

/// Throws FileError "who(): 'path': expected <action> to succeed, got <strerror(errno)>".
[[noreturn]] inline void throw_file(const std::string& who, const std::string& path,
                                    const std::string& action, int err) {
  throw FileError(make_message(who, file_what(path, ""), action + " to succeed",
                               std::string(std::strerror(err))));
}

}  // namespace detail
}  // namespace ergo::io

// SPDX-License-Identifier: BSD-2-Clause
//
// An owning POSIX file descriptor, and the open/stat/pread/pwrite calls the backends
// make, reporting failures with the path in the message.
#pragma once
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace kvmxx::inline KVMXX_ABI::detail {

class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  /// close(2) with its error reported (libkvm's kvm_close returns it too).
  [[nodiscard]] result<void> close(const char* what) noexcept {
    if (fd_ < 0) return success();
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) return fail_errno(errno, what);
    return success();
  }

 private:
  int fd_ = -1;
};

/// open(2) with O_CLOEXEC; the message is "<path>: <strerror>" like libkvm's.
[[nodiscard]] inline result<unique_fd> open_file(const char* path, int flags) noexcept {
  int fd;
  do {
    fd = ::open(path, flags | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return fail_errno(errno, path);
  return unique_fd(fd);
}

[[nodiscard]] inline result<struct stat> stat_fd(const unique_fd& fd, const char* path) noexcept {
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return fail_errno(errno, path);
  return st;
}

/// Reads exactly out.size() bytes unless end of file comes first; returns the count.
[[nodiscard]] inline result<std::size_t> pread_full(int fd, void* out, std::size_t size, std::uint64_t offset,
                                                    const char* path) noexcept {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, static_cast<char*>(out) + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (done > 0) break;
      return fail_errno(errno, path);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

[[nodiscard]] inline result<std::size_t> pwrite_full(int fd, const void* in, std::size_t size, std::uint64_t offset,
                                                     const char* path) noexcept {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n =
        ::pwrite(fd, static_cast<const char*>(in) + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (done > 0) break;
      return fail_errno(errno, path);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

}  // namespace kvmxx::inline KVMXX_ABI::detail

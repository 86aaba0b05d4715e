// SPDX-License-Identifier: BSD-2-Clause
//
// Read-only file mappings. Offsets are aligned down to the *host* page size before
// mmap(2) — libkvm maps at target-page-aligned offsets and so fails on 16 KiB/64 KiB-page
// hosts reading 4 KiB-page dumps (specs/freebsd-libkvm.md §6.3).
#pragma once
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/detail/fd.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace kvmxx::inline KVMXX_ABI::detail {

[[nodiscard]] inline std::uint64_t host_page_size() noexcept {
  static const std::uint64_t size = [] {
    const long s = ::sysconf(_SC_PAGESIZE);
    return s > 0 ? static_cast<std::uint64_t>(s) : std::uint64_t{4096};
  }();
  return size;
}

/// An owning read-only mapping of [offset, offset + length) of a file.
class mapped_region {
 public:
  mapped_region() = default;
  mapped_region(mapped_region&& o) noexcept
      : base_(std::exchange(o.base_, nullptr)), map_len_(std::exchange(o.map_len_, 0)), skew_(o.skew_) {}
  mapped_region& operator=(mapped_region&& o) noexcept {
    if (this != &o) {
      reset();
      base_ = std::exchange(o.base_, nullptr);
      map_len_ = std::exchange(o.map_len_, 0);
      skew_ = o.skew_;
    }
    return *this;
  }
  mapped_region(const mapped_region&) = delete;
  mapped_region& operator=(const mapped_region&) = delete;
  ~mapped_region() { reset(); }

  /// Maps `length` bytes at `offset` (any offset: it is aligned down to the host page).
  [[nodiscard]] static result<mapped_region> map(int fd, std::uint64_t offset, std::uint64_t length,
                                                 const char* path) noexcept {
    if (length == 0) return fail(errc::invalid_argument, "%s: cannot map 0 bytes", path);
    const std::uint64_t skew = offset % host_page_size();
    const std::uint64_t map_len = length + skew;
    if (map_len < length || map_len > SIZE_MAX)
      return fail(errc::invalid_argument, "%s: mapping of 0x%llx bytes is too large for this host", path,
                  static_cast<unsigned long long>(length));
    void* p = ::mmap(nullptr, static_cast<std::size_t>(map_len), PROT_READ, MAP_SHARED, fd,
                     static_cast<off_t>(offset - skew));
    if (p == MAP_FAILED) {
      const int err = errno;
      return fail(std::error_code(err, std::system_category()), "%s: cannot map 0x%llx bytes at offset 0x%llx: %s",
                  path, static_cast<unsigned long long>(length), static_cast<unsigned long long>(offset),
                  std::generic_category().message(err).c_str());
    }
    mapped_region r;
    r.base_ = static_cast<std::byte*>(p);
    r.map_len_ = static_cast<std::size_t>(map_len);
    r.skew_ = static_cast<std::size_t>(skew);
    return r;
  }

  [[nodiscard]] std::span<const std::byte> bytes() const noexcept {
    if (base_ == nullptr) return {};
    return {base_ + skew_, map_len_ - skew_};
  }

  /// Tells the kernel how the mapping will be used (MADV_RANDOM for page lookups).
  void advise(int advice) const noexcept {
    if (base_ != nullptr) (void)::madvise(base_, map_len_, advice);
  }

 private:
  void reset() noexcept {
    if (base_ != nullptr) ::munmap(base_, map_len_);
    base_ = nullptr;
    map_len_ = 0;
  }
  std::byte* base_ = nullptr;
  std::size_t map_len_ = 0;
  std::size_t skew_ = 0;
};

/// The bytes of a dump or kernel file: a whole-file mapping it owns, or bytes it borrows
/// (tests, fuzzers, embedders that already hold the image in memory).
class file_image {
 public:
  file_image() = default;
  /// The moved-from image is empty (its span would otherwise dangle once the new owner goes).
  file_image(file_image&& o) noexcept
      : region_(std::move(o.region_)), bytes_(std::exchange(o.bytes_, {})), path_(std::move(o.path_)) {}
  file_image& operator=(file_image&& o) noexcept {
    if (this != &o) {
      region_ = std::move(o.region_);
      bytes_ = std::exchange(o.bytes_, {});
      path_ = std::move(o.path_);
    }
    return *this;
  }

  /// Opens and maps a regular, non-empty file read-only.
  /// \errors system errors from open/fstat/mmap; errc::invalid_argument for a directory,
  /// a device or an empty file.
  [[nodiscard]] static result<file_image> open(const char* path) {
    KVMXX_TRY(fd, open_file(path, O_RDONLY));
    KVMXX_TRY(st, stat_fd(fd, path));
    if (S_ISDIR(st.st_mode)) return fail(errc::invalid_argument, "%s: is a directory", path);
    if (!S_ISREG(st.st_mode)) return fail(errc::invalid_argument, "%s: not a regular file", path);
    if (st.st_size <= 0) return fail(errc::invalid_argument, "%s: empty file", path);
    KVMXX_TRY(region, mapped_region::map(fd.get(), 0, static_cast<std::uint64_t>(st.st_size), path));
    file_image img;
    img.region_ = std::move(region);
    img.bytes_ = img.region_.bytes();
    img.path_ = path;
    return img;
  }

  /// Borrows bytes the caller keeps alive for the lifetime of everything built on them.
  [[nodiscard]] static file_image borrow(std::span<const std::byte> bytes, std::string name) {
    file_image img;
    img.bytes_ = bytes;
    img.path_ = std::move(name);
    return img;
  }

  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return bytes_; }
  [[nodiscard]] std::uint64_t size() const noexcept { return bytes_.size(); }
  [[nodiscard]] const char* path() const noexcept { return path_.c_str(); }
  [[nodiscard]] const std::byte* data() const noexcept { return bytes_.data(); }
  void advise(int advice) const noexcept { region_.advise(advice); }

 private:
  mapped_region region_;
  std::span<const std::byte> bytes_;
  std::string path_;
};

}  // namespace kvmxx::inline KVMXX_ABI::detail

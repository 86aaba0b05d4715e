// SPDX-License-Identifier: BSD-2-Clause
//
// Live kernel memory through a memory device, read and written with pread/pwrite (such
// devices cannot be mapped): physical memory (/dev/mem on Linux, FreeBSD's /dev/fwmem*
// and /dev/vmm/* raw devices) or kernel virtual memory (FreeBSD's /dev/kmem, where the
// file offset is the kernel virtual address; specs/freebsd-libkvm.md §1.4 step 8, §1.7).
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/detail/fd.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>

namespace kvmxx::inline KVMXX_ABI {

/// How a live memory device is opened.
struct live_options {
  /// The device; nullptr means the address space's default: "/dev/mem" for physical,
  /// "/dev/kmem" for virtual. Any file works (a raw physical image, in tests).
  const char* device = nullptr;
  access mode = access::read_only;
  machine arch = host_machine;   ///< the running kernel's machine
  os_kind os = os_kind::unknown;
  /// Physical devices: the top-level page-table root (CR3) to translate kernel virtual
  /// addresses with, and the number of paging levels. Without a root only physical
  /// reads work; the OS layer (Linux: VMCOREINFO) supplies it where it can.
  std::optional<physaddr> page_table_root{};
  unsigned paging_levels = 4;
};

}  // namespace kvmxx::inline KVMXX_ABI

namespace kvmxx::inline KVMXX_ABI::backend {

namespace detail_live {
// Everything the two live backends share: the fd, the path, the metadata.
class device {
 public:
  [[nodiscard]] static result<device> open(const char* path, const live_options& o) {
    KVMXX_TRY(fd, detail::open_file(path, o.mode == access::read_write ? O_RDWR : O_RDONLY));
    KVMXX_TRY(st, detail::stat_fd(fd, path));
    if (S_ISDIR(st.st_mode)) return detail::fail(errc::invalid_argument, "%s: is a directory", path);
    device d;
    d.fd_ = std::move(fd);
    d.path_ = path;
    d.opts_ = o;
    d.opts_.device = nullptr;  // do not keep the caller's pointer
    return d;
  }
  [[nodiscard]] result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out, const char* kind) const noexcept {
    if (out.empty()) return std::size_t{0};
    if (offset > static_cast<std::uint64_t>(INT64_MAX))
      return detail::fail(errc::unmapped_address, "invalid address (0x%llx): beyond what %s can address",
                          static_cast<unsigned long long>(offset), path_.c_str());
    auto n = detail::pread_full(fd_.get(), out.data(), out.size(), offset, path_.c_str());
    if (!n) return n;
    if (n.value() == 0)
      return detail::fail(errc::page_not_dumped, "%s: %s address 0x%llx: nothing to read there (end of device)",
                          path_.c_str(), kind, static_cast<unsigned long long>(offset));
    if (n.value() < out.size())
      detail::fail(errc::page_not_dumped, "%s: short read at %s address 0x%llx", path_.c_str(), kind,
                   static_cast<unsigned long long>(offset + n.value()));
    return n;
  }
  [[nodiscard]] result<std::size_t> write_at(std::uint64_t offset, std::span<const std::byte> in) const noexcept {
    if (opts_.mode != access::read_write)
      return detail::fail(errc::read_only, "%s: opened read-only; cannot write 0x%zx bytes at 0x%llx", path_.c_str(),
                          in.size(), static_cast<unsigned long long>(offset));
    if (in.empty()) return std::size_t{0};
    if (offset > static_cast<std::uint64_t>(INT64_MAX))
      return detail::fail(errc::unmapped_address, "invalid address (0x%llx): beyond what %s can address",
                          static_cast<unsigned long long>(offset), path_.c_str());
    auto n = detail::pwrite_full(fd_.get(), in.data(), in.size(), offset, path_.c_str());
    if (n && n.value() < in.size())
      detail::fail(errc::page_not_dumped, "%s: short write at 0x%llx", path_.c_str(),
                   static_cast<unsigned long long>(offset + n.value()));
    return n;
  }
  [[nodiscard]] backend_info info(const char* format) const {
    backend_info i;
    i.format = format;
    i.arch = opts_.arch;
    i.os = opts_.os;
    i.page_size = 4096;
    return i;
  }
  [[nodiscard]] result<void> close() noexcept { return fd_.close(path_.c_str()); }

  detail::unique_fd fd_;
  std::string path_;
  live_options opts_;
};
}  // namespace detail_live

/// Physical memory of a running machine (or a raw physical image): offset = physical
/// address. Translation goes through the page-table root given in live_options.
class live_physical {
 public:
  [[nodiscard]] static result<live_physical> open(const live_options& o = {}) {
    live_physical l;
    KVMXX_TRY(d, detail_live::device::open(o.device ? o.device : "/dev/mem", o));
    l.dev_ = std::move(d);
    return l;
  }
  [[nodiscard]] kvmxx::machine machine() const noexcept { return dev_.opts_.arch; }
  [[nodiscard]] os_kind os() const noexcept { return dev_.opts_.os; }
  [[nodiscard]] std::size_t page_size() const noexcept { return 4096; }
  [[nodiscard]] result<std::size_t> read_physical(physaddr pa, std::span<std::byte> out) const noexcept {
    return dev_.read_at(to_integer(pa), out, "physical");
  }
  [[nodiscard]] result<std::size_t> write_at(std::uint64_t pa, std::span<const std::byte> in) const noexcept {
    return dev_.write_at(pa, in);
  }
  [[nodiscard]] bool writable() const noexcept { return dev_.opts_.mode == access::read_write; }
  [[nodiscard]] std::optional<physaddr> page_table_root() const noexcept { return dev_.opts_.page_table_root; }
  [[nodiscard]] unsigned paging_levels() const noexcept { return dev_.opts_.paging_levels; }
  [[nodiscard]] backend_info info() const { return dev_.info("live physical memory"); }
  [[nodiscard]] const char* path() const noexcept { return dev_.path_.c_str(); }
  [[nodiscard]] result<void> close() noexcept { return dev_.close(); }

 private:
  detail_live::device dev_;
};
static_assert(writable_backend<live_physical>);

/// Kernel virtual memory of a running kernel: offset = kernel virtual address (FreeBSD
/// /dev/kmem). Kernel addresses above 2^63 cannot be file offsets; FreeBSD's kmem driver
/// takes them as negative off_t, which pread(2) refuses on Linux, so on Linux hosts this
/// reaches only the lower half (documented in the README).
class live_virtual {
 public:
  [[nodiscard]] static result<live_virtual> open(const live_options& o = {}) {
    live_virtual l;
    KVMXX_TRY(d, detail_live::device::open(o.device ? o.device : "/dev/kmem", o));
    l.dev_ = std::move(d);
    return l;
  }
  [[nodiscard]] kvmxx::machine machine() const noexcept { return dev_.opts_.arch; }
  [[nodiscard]] os_kind os() const noexcept { return dev_.opts_.os; }
  [[nodiscard]] std::size_t page_size() const noexcept { return 4096; }
  [[nodiscard]] result<std::size_t> read_physical(physaddr pa, std::span<std::byte> out) const noexcept {
    if (out.empty()) return std::size_t{0};
    return detail::fail(errc::not_supported, "%s: physical address 0x%llx: a virtual memory device has no physical view",
                        dev_.path_.c_str(), static_cast<unsigned long long>(to_integer(pa)));
  }
  [[nodiscard]] result<std::size_t> read_virtual(kvaddr va, std::span<std::byte> out) const noexcept {
    return dev_.read_at(to_integer(va), out, "virtual");
  }
  [[nodiscard]] result<std::size_t> write_at(std::uint64_t va, std::span<const std::byte> in) const noexcept {
    return dev_.write_at(va, in);
  }
  [[nodiscard]] bool writable() const noexcept { return dev_.opts_.mode == access::read_write; }
  [[nodiscard]] backend_info info() const { return dev_.info("live kernel virtual memory"); }
  [[nodiscard]] const char* path() const noexcept { return dev_.path_.c_str(); }
  [[nodiscard]] result<void> close() noexcept { return dev_.close(); }

 private:
  detail_live::device dev_;
};
static_assert(virtual_backend<live_virtual>);
static_assert(writable_backend<live_virtual>);

}  // namespace kvmxx::inline KVMXX_ABI::backend

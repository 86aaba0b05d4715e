// SPDX-License-Identifier: BSD-2-Clause
//
// The "/dev/null" mode of ps(1)-like tools (specs/freebsd-libkvm.md §1.4 step 8): a
// handle with no memory behind it, for callers that only want symbols or metadata.
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>

namespace kvmxx::inline KVMXX_ABI::backend {

/// Every read fails with errc::no_memory_source. libkvm's reads return 0 bytes here;
/// an error that says why is more useful than a silent empty read.
class null {
 public:
  explicit null(kvmxx::machine m = host_machine, os_kind o = os_kind::unknown) noexcept : machine_(m), os_(o) {}
  [[nodiscard]] kvmxx::machine machine() const noexcept { return machine_; }
  [[nodiscard]] os_kind os() const noexcept { return os_; }
  [[nodiscard]] std::size_t page_size() const noexcept { return 4096; }
  [[nodiscard]] result<std::size_t> read_physical(physaddr pa, std::span<std::byte> out) const noexcept {
    if (out.empty()) return std::size_t{0};
    return detail::fail(errc::no_memory_source, "cannot read physical address 0x%llx: handle opened without memory",
                        static_cast<unsigned long long>(to_integer(pa)));
  }
  [[nodiscard]] result<std::size_t> read_virtual(kvaddr va, std::span<std::byte> out) const noexcept {
    if (out.empty()) return std::size_t{0};
    return detail::fail(errc::no_memory_source, "cannot read address 0x%llx: handle opened without memory",
                        static_cast<unsigned long long>(to_integer(va)));
  }
  [[nodiscard]] backend_info info() const {
    backend_info i;
    i.format = "no memory (null mode)";
    i.arch = machine_;
    i.os = os_;
    i.page_size = page_size();
    return i;
  }
  [[nodiscard]] result<void> close() noexcept { return success(); }

 private:
  kvmxx::machine machine_;
  os_kind os_;
};
static_assert(virtual_backend<null>);

}  // namespace kvmxx::inline KVMXX_ABI::backend

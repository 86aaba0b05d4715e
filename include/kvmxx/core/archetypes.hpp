// SPDX-License-Identifier: BSD-2-Clause
//
// Minimal models of the backend concepts, declared but never defined: architectures and
// the handle assert their contracts against these, so a broken model fails in its own
// header without depending on a concrete backend (STYLE.md §8).
#pragma once
#include <kvmxx/core/concepts.hpp>

namespace kvmxx::inline KVMXX_ABI::archetypes {

struct physical_backend {
  kvmxx::machine machine() const noexcept;
  os_kind os() const noexcept;
  std::size_t page_size() const noexcept;
  result<std::size_t> read_physical(physaddr, std::span<std::byte>) const noexcept;
  backend_info info() const;
};
static_assert(memory_backend<physical_backend>);

struct minidump : physical_backend {
  const minidump_header_info& header() const noexcept;
  std::optional<std::uint64_t> pmap_entry64(std::size_t) const noexcept;
  std::optional<std::uint64_t> file_offset(physaddr) const noexcept;
  const std::byte* page_data(physaddr) const noexcept;
  std::optional<physaddr> dumped_page_after(physaddr) const noexcept;
};
static_assert(minidump_backend<minidump>);

}  // namespace kvmxx::inline KVMXX_ABI::archetypes

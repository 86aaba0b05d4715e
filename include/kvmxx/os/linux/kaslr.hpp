// SPDX-License-Identifier: BSD-2-Clause
//
// x86_64 KASLR: how far the kernel text was moved from its link-time address
// (specs/linux-dumps.md §11). In order: VMCOREINFO's KERNELOFFSET; else, when the caller
// knows the link-time `_text` (from System.map or vmlinux), the lowest page mapped in the
// kernel-text window 0xffffffff80000000..0xffffffffc0000000 — the kernel clears the
// mappings below _text at boot (cleanup_highmap), so that page is the runtime _text.
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/os/linux/vmcoreinfo.hpp>

#include <cstdint>
#include <optional>

namespace kvmxx::inline KVMXX_ABI::linux_ {

inline constexpr std::uint64_t x86_64_start_kernel_map = 0xffffffff80000000;
inline constexpr std::uint64_t x86_64_ktext_end = 0xffffffffc0000000;

/// The runtime address of the lowest 2 MiB-aligned page mapped in the kernel-text window,
/// found by translating through the page tables (512 probes at most).
template <class Arch, class Backend>
[[nodiscard]] std::optional<std::uint64_t> lowest_ktext_mapping(const Arch& arch, const Backend& b) noexcept {
  for (std::uint64_t va = x86_64_start_kernel_map; va < x86_64_ktext_end; va += std::uint64_t{1} << 21)
    if (arch.translate(b, kvaddr{va})) return va;
  return std::nullopt;
}

/// runtime − link-time kernel text address; nullopt when it cannot be known.
template <class Arch, class Backend>
[[nodiscard]] std::optional<std::int64_t> kaslr_offset(const Arch& arch, const Backend& b, const vmcoreinfo& vi,
                                                       std::optional<std::uint64_t> link_text) noexcept {
  if (auto off = vi.kernel_offset()) return static_cast<std::int64_t>(*off);
  if (!link_text) return std::nullopt;
  const auto runtime = lowest_ktext_mapping(arch, b);
  if (!runtime) return std::nullopt;
  return static_cast<std::int64_t>(*runtime - (*link_text & ~((std::uint64_t{1} << 21) - 1)));
}

/// i386 KASLR (specs/linux-dumps.md §11, method 2): a 32-bit kernel moves its text together
/// with its place in the direct map, and its VMCOREINFO has no KERNELOFFSET (observed on
/// Debian's 6.1 686 kernels, tests/real/README-i386.md), so the offset is VMCOREINFO's
/// runtime SYMBOL(_stext) minus the kernel file's link-time `_stext`. KERNELOFFSET still
/// wins when present; nullopt when neither can be computed.
[[nodiscard]] inline std::optional<std::int64_t> stext_kaslr_offset(const vmcoreinfo& vi,
                                                                   std::optional<std::uint64_t> link_stext) noexcept {
  if (auto off = vi.kernel_offset()) return static_cast<std::int64_t>(*off);
  const auto runtime = vi.symbol("_stext");
  if (!runtime || !link_stext) return std::nullopt;
  return static_cast<std::int64_t>(*runtime - *link_stext);
}

}  // namespace kvmxx::inline KVMXX_ABI::linux_

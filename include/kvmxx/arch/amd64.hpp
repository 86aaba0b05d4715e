// SPDX-License-Identifier: BSD-2-Clause
//
// amd64 (x86-64) address translation.
// * FreeBSD minidumps: the flat page-table section of the dump — v1 a PTE per 4 KiB of
//   KVA, v2/v3 a PDE per 2 MiB with 2 MiB/1 GiB pages folded into PS PDEs — plus the
//   direct map (specs/freebsd-libkvm.md §2.5; lib/libkvm/kvm_minidump_amd64.c
//   _amd64_minidump_vatop, _amd64_minidump_walk_pages).
// * Any other backend that knows its page-table root (page_table_backend): the 4- or
//   5-level hardware walk with 2 MiB and 1 GiB pages, reading entries from physical
//   memory (Intel SDM vol. 3A §4.5).
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/detail/byte_order.hpp>
#include <kvmxx/format/minidump.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace kvmxx::inline KVMXX_ABI::arch {

struct amd64 {
  static constexpr machine id = machine::amd64;
  static constexpr std::size_t page_size = 4096;

  // Hardware PTE bits (the same values FreeBSD's pmap uses, §2.5).
  static constexpr std::uint64_t pte_present = format::minidump::amd64::pg_v;
  static constexpr std::uint64_t pte_rw = format::minidump::amd64::pg_rw;
  static constexpr std::uint64_t pte_ps = format::minidump::amd64::pg_ps;
  static constexpr std::uint64_t pte_nx = format::minidump::amd64::pg_nx;
  static constexpr std::uint64_t frame_4k = format::minidump::amd64::pg_frame;
  static constexpr std::uint64_t frame_2m = format::minidump::amd64::pg_ps_frame;
  static constexpr std::uint64_t frame_1g = format::minidump::amd64::pg_1gb_frame;

  template <class Backend>
  [[nodiscard]] result<translation> translate(const Backend& b, kvaddr va) const noexcept {
    if constexpr (minidump_backend<Backend>) {
      return translate_minidump(b, to_integer(va));
    } else if constexpr (page_table_backend<Backend>) {
      return translate_hardware(b, to_integer(va));
    } else {
      return detail::fail(errc::not_supported,
                          "invalid address (0x%llx): this backend gives no way to translate virtual addresses",
                          static_cast<unsigned long long>(to_integer(va)));
    }
  }

  /// Every kernel mapping of a minidump, then every dumped page that no kernel mapping
  /// covers, reported with its direct-map address only — what kvm_walk_pages was meant to
  /// report (§2.4), not libkvm's second pass that repeats the kernel-mapped pages.
  /// v1 dumps are walked too (libkvm returns 0 for them).
  template <class Backend, class F>
    requires minidump_backend<Backend>
  [[nodiscard]] result<bool> walk_pages(const Backend& b, F&& f) const {
    const auto& h = b.header();
    std::vector<std::uint64_t> kernel_pages;  // PAs seen through the kernel map
    auto emit = [&](std::uint64_t pa, std::uint64_t va, std::uint64_t entry, std::size_t len) {
      page_info p;
      p.pa = physaddr{pa};
      p.kmap_va = kvaddr{va};
      p.dmap_va = dmap_va_of(h, pa);
      p.prot = prot_of(entry);
      const auto off = b.file_offset(physaddr{pa});
      p.file_offset = off ? static_cast<std::int64_t>(*off) : -1;
      p.length = len;
      for (std::uint64_t k = 0; k < len; k += page_size) kernel_pages.push_back(pa + k);
      return f(static_cast<const page_info&>(p));
    };
    const std::size_t n = static_cast<std::size_t>(h.pmapsize / 8);
    if (h.version == 1) {
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t pte = *b.pmap_entry64(i);
        if ((pte & pte_present) == 0) continue;
        if (!emit(pte & frame_4k, h.kernbase + (std::uint64_t{i} << 12), pte, page_size)) return false;
      }
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t pde = *b.pmap_entry64(i);
        if ((pde & pte_present) == 0) continue;
        const std::uint64_t va = h.kernbase + (std::uint64_t{i} << 21);
        if (pde & pte_ps) {
          if (!emit(pde & frame_2m, va, pde, std::size_t{1} << 21)) return false;
          continue;
        }
        const std::byte* pt = b.page_data(physaddr{pde & frame_4k});
        if (pt == nullptr) continue;  // PT page not dumped: nothing to report below it
        for (std::size_t j = 0; j < 512; ++j) {
          const auto pte = detail::load<std::uint64_t>(pt + j * 8);
          if ((pte & pte_present) == 0) continue;
          if (!emit(pte & frame_4k, va + (std::uint64_t{j} << 12), pte, page_size)) return false;
        }
      }
    }
    // Second pass: dumped pages reachable only through the direct map.
    std::sort(kernel_pages.begin(), kernel_pages.end());
    std::optional<physaddr> pa = b.dumped_page_after(physaddr{0});
    while (pa) {
      const std::uint64_t p = to_integer(*pa);
      const auto dmap = dmap_va_of(h, p);
      if (to_integer(dmap) == 0) break;  // past the direct map: libkvm stops here too
      if (!std::binary_search(kernel_pages.begin(), kernel_pages.end(), p)) {
        page_info info;
        info.pa = *pa;
        info.dmap_va = dmap;
        info.prot = protection::read | protection::write;
        const auto off = b.file_offset(*pa);
        info.file_offset = off ? static_cast<std::int64_t>(*off) : -1;
        info.length = page_size;
        if (!f(static_cast<const page_info&>(info))) return false;
      }
      if (p + page_size < p) break;
      pa = b.dumped_page_after(physaddr{p + page_size});
    }
    return true;
  }

 private:
  static protection prot_of(std::uint64_t entry) noexcept {
    protection p = protection::read;
    if (entry & pte_rw) p = p | protection::write;
    if ((entry & pte_nx) == 0) p = p | protection::execute;
    return p;
  }

  static kvaddr dmap_va_of(const minidump_header_info& h, std::uint64_t pa) noexcept {
    const std::uint64_t va = h.dmapbase + pa;
    if (va < h.dmapbase || va >= h.dmapend) return kvaddr{0};
    return kvaddr{va};
  }

  template <class Backend>
  static result<translation> translate_minidump(const Backend& b, std::uint64_t va) noexcept {
    const auto& h = b.header();
    using ull = unsigned long long;
    if (va >= h.kernbase) {
      if (h.version == 1) {
        const auto pte = b.pmap_entry64(static_cast<std::size_t>((va - h.kernbase) >> 12));
        if (!pte) return detail::fail(errc::unmapped_address, "invalid address (0x%llx): beyond the minidump page map",
                                      static_cast<ull>(va));
        if ((*pte & pte_present) == 0)
          return detail::fail(errc::unmapped_address, "invalid address (0x%llx): PTE not valid", static_cast<ull>(va));
        return translation{physaddr{(*pte & frame_4k) | (va & 0xfff)}, page_size - (va & 0xfff), page_size};
      }
      const auto pde = b.pmap_entry64(static_cast<std::size_t>((va - h.kernbase) >> 21));
      if (!pde)
        return detail::fail(errc::unmapped_address, "invalid address (0x%llx): beyond the minidump page map",
                            static_cast<ull>(va));
      if ((*pde & pte_present) == 0)
        return detail::fail(errc::unmapped_address, "invalid address (0x%llx): PDE not valid", static_cast<ull>(va));
      if (*pde & pte_ps) {
        const std::uint64_t in = va & ((std::uint64_t{1} << 21) - 1);
        return translation{physaddr{(*pde & frame_2m) + in}, static_cast<std::size_t>((std::uint64_t{1} << 21) - in),
                           std::uint64_t{1} << 21};
      }
      const std::byte* pt = b.page_data(physaddr{*pde & frame_4k});
      if (pt == nullptr)
        return detail::fail(errc::page_not_dumped,
                            "invalid address (0x%llx): page table page at physical 0x%llx is not in the minidump",
                            static_cast<ull>(va), static_cast<ull>(*pde & frame_4k));
      const auto pte = detail::load<std::uint64_t>(pt + ((va >> 12) & 511) * 8);
      if ((pte & pte_present) == 0)
        return detail::fail(errc::unmapped_address, "invalid address (0x%llx): PTE not valid", static_cast<ull>(va));
      return translation{physaddr{(pte & frame_4k) | (va & 0xfff)}, page_size - (va & 0xfff), page_size,
                         *pde & frame_4k};
    }
    if (va >= h.dmapbase && va < h.dmapend) {
      const std::uint64_t rest = h.dmapend - va;
      // The direct map is one linear mapping: report the 2 MiB block when it lies wholly
      // inside, so caches keep one entry per block.
      constexpr std::uint64_t block = std::uint64_t{1} << 21;
      const std::uint64_t start = va & ~(block - 1);
      const bool whole = start >= h.dmapbase && h.dmapend - start >= block;
      return translation{physaddr{va - h.dmapbase}, static_cast<std::size_t>(std::min<std::uint64_t>(rest, SIZE_MAX)),
                         whole ? block : 0};
    }
    return detail::fail(errc::unmapped_address, "invalid address (0x%llx): not in the kernel map or the direct map",
                        static_cast<ull>(va));
  }

  template <class Backend>
  static result<translation> translate_hardware(const Backend& b, std::uint64_t va) noexcept {
    using ull = unsigned long long;
    const auto root = b.page_table_root();
    if (!root)
      return detail::fail(errc::not_supported, "invalid address (0x%llx): the page-table root is not known",
                          static_cast<ull>(va));
    const unsigned levels = b.paging_levels();
    if (levels != 4 && levels != 5)
      return detail::fail(errc::invalid_argument, "amd64 paging with %u levels does not exist", levels);
    // Canonical form: bits above the top translated bit must equal it.
    const unsigned va_bits = levels == 5 ? 57 : 48;
    const std::uint64_t top = static_cast<std::uint64_t>(static_cast<std::int64_t>(va << (64 - va_bits)) >>
                                                         (64 - va_bits));
    if (top != va)
      return detail::fail(errc::unmapped_address, "invalid address (0x%llx): not canonical for %u-level paging",
                          static_cast<ull>(va), levels);
    static constexpr const char* level_name[] = {"PTE", "PDE", "PDPTE", "PML4E", "PML5E"};
    // The SME encryption bit sits inside the frame field; the backend says which to clear.
    std::uint64_t clear = 0;
    if constexpr (requires { { b.pte_clear_mask() } -> std::convertible_to<std::uint64_t>; }) clear = b.pte_clear_mask();
    std::uint64_t table = to_integer(*root) & frame_4k & ~clear;
    for (unsigned level = levels; level-- > 0;) {
      const unsigned shift = 12 + 9 * level;
      const std::uint64_t entry_pa = table + ((va >> shift) & 511) * 8;
      std::uint64_t raw_entry;
      if constexpr (requires { { b.mapped_page(physaddr{}) } -> std::same_as<const std::byte*>; }) {
        // Mapped images: read the entry in place (tables are page-aligned, so the entry
        // never straddles a page).
        const std::byte* table_page = b.mapped_page(physaddr{entry_pa});
        if (table_page == nullptr)
          return detail::fail(errc::page_not_dumped, "invalid address (0x%llx): %s at physical 0x%llx is not in the dump",
                              static_cast<ull>(va), level_name[level], static_cast<ull>(entry_pa));
        raw_entry = detail::load<std::uint64_t>(table_page + (entry_pa & (page_size - 1)));
      } else {
        std::array<std::byte, 8> raw;
        auto got = b.read_physical(physaddr{entry_pa}, raw);
        if (!got || got.value() != raw.size())
          return detail::fail(errc::page_not_dumped, "invalid address (0x%llx): %s at physical 0x%llx is not readable",
                              static_cast<ull>(va), level_name[level], static_cast<ull>(entry_pa));
        raw_entry = detail::load<std::uint64_t>(raw.data());
      }
      const auto e = raw_entry & ~clear;
      if ((e & pte_present) == 0)
        return detail::fail(errc::unmapped_address, "invalid address (0x%llx): %s not valid", static_cast<ull>(va),
                            level_name[level]);
      if (level == 0 || ((level == 1 || level == 2) && (e & pte_ps))) {
        const std::uint64_t mask = (std::uint64_t{1} << shift) - 1;
        const std::uint64_t frame = level == 2 ? frame_1g : level == 1 ? frame_2m : frame_4k;
        const std::uint64_t in = va & mask;
        return translation{physaddr{(e & frame) + in}, static_cast<std::size_t>(mask + 1 - in), mask + 1,
                           level == 0 ? table : 0};
      }
      table = e & frame_4k;
    }
    return detail::fail(errc::unmapped_address, "invalid address (0x%llx)", static_cast<ull>(va));  // not reached
  }

 public:
  /// The last step of translate(): va's PTE in the page table at physical `table` (a
  /// translation's leaf_table for an address of the same 2 MiB block).
  template <class Backend>
  [[nodiscard]] result<translation> translate_leaf(const Backend& b, kvaddr va, physaddr table) const noexcept {
    using ull = unsigned long long;
    const std::uint64_t v = to_integer(va);
    const std::uint64_t entry_pa = to_integer(table) + ((v >> 12) & 511) * 8;
    std::uint64_t clear = 0;
    if constexpr (requires { { b.pte_clear_mask() } -> std::convertible_to<std::uint64_t>; }) clear = b.pte_clear_mask();
    const std::byte* page = nullptr;
    if constexpr (requires { { b.mapped_page(physaddr{}) } -> std::same_as<const std::byte*>; })
      page = b.mapped_page(physaddr{entry_pa});
    if (page == nullptr)  // a valid leaf_table came from a page that was readable
      return detail::fail(errc::page_not_dumped, "invalid address (0x%llx): PTE at physical 0x%llx is not in the dump",
                          static_cast<ull>(v), static_cast<ull>(entry_pa));
    const std::uint64_t e = detail::load<std::uint64_t>(page + (entry_pa & (page_size - 1))) & ~clear;
    if ((e & pte_present) == 0)
      return detail::fail(errc::unmapped_address, "invalid address (0x%llx): PTE not valid", static_cast<ull>(v));
    return translation{physaddr{(e & frame_4k) | (v & 0xfff)}, page_size - (v & 0xfff), page_size, to_integer(table)};
  }

 private:
};

}  // namespace kvmxx::inline KVMXX_ABI::arch

#include <kvmxx/core/archetypes.hpp>
static_assert(kvmxx::translation_arch<kvmxx::arch::amd64, kvmxx::archetypes::physical_backend>);
static_assert(kvmxx::page_walking_arch<kvmxx::arch::amd64, kvmxx::archetypes::minidump>);

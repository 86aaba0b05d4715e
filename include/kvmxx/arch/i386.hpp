// SPDX-License-Identifier: BSD-2-Clause
//
// i386 (32-bit x86) address translation for backends that know their page-table root
// (page_table_backend): the hardware walk through physical memory, in the backend's
// paging mode (specs/linux-dumps.md §10.2, §12; Intel SDM vol. 3A §4.3 and §4.4):
// * paging_levels() == 2 — 32-bit paging: CR3 bits 31:12 → page directory (1024 4-byte
//   PDEs, VA bits 31:22) → page table (1024 PTEs, bits 21:12). A PDE with PS (bit 7) maps
//   a 4 MiB page (CR4.PSE, which Linux sets whenever it makes large pages); with PSE-36
//   its bits 20:13 are physical address bits 39:32.
// * paging_levels() == 3 — PAE: CR3 bits 31:5 → 4 eight-byte PDPTEs (VA bits 31:30) →
//   page directory (512 8-byte PDEs, bits 29:21; PS maps a 2 MiB page) → page table (512
//   PTEs, bits 20:12). Entries carry up to 52 physical address bits and NX in bit 63
//   (which does not change the translation).
// Entries are read from physical memory, in place when the backend maps its pages
// (mapped_page), else with read_physical. Failures name the VA and the level.
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/detail/byte_order.hpp>

#include <array>
#include <cstddef>
#include <cstdint>

namespace kvmxx::inline KVMXX_ABI::arch {

struct i386 {
  static constexpr machine id = machine::i386;
  static constexpr std::size_t page_size = 4096;

  // Hardware entry bits (SDM vol. 3A tables 4-4..4-6 and 4-8..4-11).
  static constexpr std::uint64_t pte_present = 0x1;
  static constexpr std::uint64_t pte_ps = 0x80;
  // 32-bit paging.
  static constexpr std::uint32_t frame_4k_32 = 0xfffff000u;
  static constexpr std::uint32_t frame_4m_32 = 0xffc00000u;    ///< PA bits 31:22 of a 4 MiB page
  static constexpr std::uint32_t pse36_bits = 0x001fe000u;     ///< PDE bits 20:13 = PA bits 39:32
  // PAE.
  static constexpr std::uint64_t frame_4k_pae = 0x000ffffffffff000;
  static constexpr std::uint64_t frame_2m_pae = 0x000fffffffe00000;
  static constexpr std::uint64_t cr3_pae_mask = 0xffffffe0;     ///< PDPT is 32-byte aligned

  template <class Backend>
  [[nodiscard]] result<translation> translate(const Backend& b, kvaddr va) const noexcept {
    using ull = unsigned long long;
    const std::uint64_t v = to_integer(va);
    if constexpr (page_table_backend<Backend>) {
      if (v > 0xffffffffu)
        return detail::fail(errc::unmapped_address, "invalid address (0x%llx): beyond the 32-bit i386 address space",
                            static_cast<ull>(v));
      const auto root = b.page_table_root();
      if (!root)
        return detail::fail(errc::not_supported, "invalid address (0x%llx): the page-table root is not known",
                            static_cast<ull>(v));
      const unsigned levels = b.paging_levels();
      if (levels == 2) return walk_2level(b, static_cast<std::uint32_t>(v), to_integer(*root));
      if (levels == 3) return walk_pae(b, static_cast<std::uint32_t>(v), to_integer(*root));
      return detail::fail(errc::invalid_argument, "i386 paging with %u levels does not exist (2: 32-bit, 3: PAE)",
                          levels);
    } else {
      return detail::fail(errc::not_supported,
                          "invalid address (0x%llx): this backend gives no way to translate virtual addresses",
                          static_cast<ull>(v));
    }
  }

 private:
  // Reads the Width-byte entry at physical entry_pa; the caller keeps entries aligned, so
  // an entry never straddles a page.
  template <class Entry, class Backend>
  static result<Entry> read_entry(const Backend& b, std::uint32_t va, std::uint64_t entry_pa, const char* level) noexcept {
    using ull = unsigned long long;
    if constexpr (requires { { b.mapped_page(physaddr{}) } -> std::same_as<const std::byte*>; }) {
      const std::byte* page = b.mapped_page(physaddr{entry_pa});
      if (page == nullptr)
        return detail::fail(errc::page_not_dumped, "invalid address (0x%llx): %s at physical 0x%llx is not in the dump",
                            static_cast<ull>(va), level, static_cast<ull>(entry_pa));
      return detail::load<Entry>(page + (entry_pa & (page_size - 1)));
    } else {
      std::array<std::byte, sizeof(Entry)> raw;
      auto got = b.read_physical(physaddr{entry_pa}, raw);
      if (!got || got.value() != raw.size())
        return detail::fail(errc::page_not_dumped, "invalid address (0x%llx): %s at physical 0x%llx is not readable",
                            static_cast<ull>(va), level, static_cast<ull>(entry_pa));
      return detail::load<Entry>(raw.data());
    }
  }

  static result<translation> not_valid(std::uint32_t va, const char* level) noexcept {
    return detail::fail(errc::unmapped_address, "invalid address (0x%llx): %s not valid",
                        static_cast<unsigned long long>(va), level);
  }

  template <class Backend>
  static result<translation> walk_2level(const Backend& b, std::uint32_t va, std::uint64_t root) noexcept {
    const std::uint64_t pd = root & frame_4k_32;
    KVMXX_TRY(pde, read_entry<std::uint32_t>(b, va, pd + (va >> 22) * 4, "PDE"));
    if ((pde & pte_present) == 0) return not_valid(va, "PDE");
    if (pde & pte_ps) {
      const std::uint64_t frame = std::uint64_t{pde & frame_4m_32} | (std::uint64_t{pde & pse36_bits} << 19);
      const std::uint32_t in = va & 0x3fffffu;
      return translation{physaddr{frame + in}, std::size_t{0x400000} - in};
    }
    KVMXX_TRY(pte, read_entry<std::uint32_t>(b, va, std::uint64_t{pde & frame_4k_32} + ((va >> 12) & 1023) * 4, "PTE"));
    if ((pte & pte_present) == 0) return not_valid(va, "PTE");
    const std::uint32_t in = va & 0xfffu;
    return translation{physaddr{std::uint64_t{pte & frame_4k_32} + in}, page_size - in};
  }

  template <class Backend>
  static result<translation> walk_pae(const Backend& b, std::uint32_t va, std::uint64_t root) noexcept {
    const std::uint64_t pdpt = root & cr3_pae_mask;
    KVMXX_TRY(pdpte, read_entry<std::uint64_t>(b, va, pdpt + (va >> 30) * 8, "PDPTE"));
    if ((pdpte & pte_present) == 0) return not_valid(va, "PDPTE");
    KVMXX_TRY(pde, read_entry<std::uint64_t>(b, va, (pdpte & frame_4k_pae) + ((va >> 21) & 511) * 8, "PDE"));
    if ((pde & pte_present) == 0) return not_valid(va, "PDE");
    if (pde & pte_ps) {
      const std::uint32_t in = va & 0x1fffffu;
      return translation{physaddr{(pde & frame_2m_pae) + in}, std::size_t{0x200000} - in};
    }
    KVMXX_TRY(pte, read_entry<std::uint64_t>(b, va, (pde & frame_4k_pae) + ((va >> 12) & 511) * 8, "PTE"));
    if ((pte & pte_present) == 0) return not_valid(va, "PTE");
    const std::uint32_t in = va & 0xfffu;
    return translation{physaddr{(pte & frame_4k_pae) + in}, page_size - in};
  }
};

}  // namespace kvmxx::inline KVMXX_ABI::arch

#include <kvmxx/core/archetypes.hpp>
static_assert(kvmxx::translation_arch<kvmxx::arch::i386, kvmxx::archetypes::physical_backend>);

// SPDX-License-Identifier: BSD-2-Clause
//
// AArch64 address translation: the VMSAv8-64 stage-1 walk of the kernel's (TTBR1) page
// tables as Linux sets them up, reading descriptors from physical memory
// (specs/linux-dumps.md §10.2 and the table in §12; Arm ARM D8 "The AArch64 Virtual Memory
// System Architecture").
//
// * Granule = the kernel's PAGE_SIZE (4, 16 or 64 KiB): Linux uses one granule for both
//   halves. Each level resolves granule_shift − 3 bits; the start level resolves the rest,
//   so levels = ceil((va_bits − granule_shift) / (granule_shift − 3)), the first level
//   being 4 − levels (−1 for 4 KiB with 52-bit VA).
// * Descriptors: bit 0 valid; at levels < 3 bit 1 set = table, clear = block; at level 3
//   bits[1:0] = 0b11 is a page and 0b01 is reserved (treated as invalid). Blocks exist at
//   level 1 and 2 with 4 KiB (1 GiB, 2 MiB), level 2 with 16 KiB (32 MiB) and 64 KiB
//   (512 MiB); LPA2 adds level 0 (4 KiB, 512 GiB) and level 1 (16 KiB, 64 GiB), LPA adds
//   level 1 with 64 KiB (4 TiB). A block at any other level is reserved: an error.
// * Output addresses: bits [47:shift] of the descriptor; with LPA (64 KiB granule, 52-bit
//   PA) OA[51:48] sits in bits [15:12]; with LPA2 (4/16 KiB, 52-bit VA) bits [49:shift]
//   hold OA[49:shift] and bits [9:8] hold OA[51:50].
// * Which format: LPA when the granule is 64 KiB and the kernel's physical addresses have
//   52 bits (NUMBER(MAX_PHYSMEM_BITS)); LPA2 when the granule is 4 or 16 KiB and the VA has
//   52 bits (Linux enables 52-bit VA there only together with LPA2; without it bits [9:8]
//   are the shareability field, and must not be taken as address bits).
// * The contiguous hint (bit 52) and the attribute/permission bits do not change the
//   translation and are ignored.
//
// The backend supplies the facts (aarch64_paging_backend): the root's physical address
// (swapper_pg_dir − kimage_voffset), the VA width of that table and the PA width; the
// granule is its page_size().
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/detail/byte_order.hpp>

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace kvmxx::inline KVMXX_ABI {

/// A backend that knows what an AArch64 stage-1 walk needs beyond the root: the number of
/// VA bits the root table covers (64 − T1SZ, or the kernel's VA_BITS) and the number of
/// physical address bits (MAX_PHYSMEM_BITS); page_size() is the granule.
template <class B>
concept aarch64_paging_backend = page_table_backend<B> && requires(const B& cb) {
  { cb.va_bits() } noexcept -> std::same_as<unsigned>;
  { cb.pa_bits() } noexcept -> std::same_as<unsigned>;
};

}  // namespace kvmxx::inline KVMXX_ABI

namespace kvmxx::inline KVMXX_ABI::arch {

struct aarch64 {
  static constexpr machine id = machine::aarch64;
  /// The smallest granule: the unit of the translation cache. Translations of larger
  /// granules are still exact for every 4 KiB piece.
  static constexpr std::size_t page_size = 4096;

  enum class descriptor_format : std::uint8_t { vmsa, lpa, lpa2 };

  /// The shape of one walk, decided once from the backend's facts.
  struct geometry {
    unsigned granule_shift = 12;  ///< 12, 14 or 16
    unsigned va_bits = 48;
    int start_level = 0;          ///< −1 … 3
    descriptor_format format = descriptor_format::vmsa;

    [[nodiscard]] constexpr unsigned level_bits() const noexcept { return granule_shift - 3; }
    /// The lowest VA bit that level `level` resolves.
    [[nodiscard]] constexpr unsigned shift(int level) const noexcept {
      return granule_shift + static_cast<unsigned>(3 - level) * level_bits();
    }
    [[nodiscard]] constexpr bool block_allowed(int level) const noexcept {
      switch (granule_shift) {
        case 12: return level == 1 || level == 2 || (level == 0 && format == descriptor_format::lpa2);
        case 14: return level == 2 || (level == 1 && format == descriptor_format::lpa2);
        case 16: return level == 2 || (level == 1 && format == descriptor_format::lpa);
        default: return false;
      }
    }
    /// The output address of a descriptor whose mapping (or next table) is 2^low_shift
    /// aligned.
    [[nodiscard]] constexpr std::uint64_t output_address(std::uint64_t d, unsigned low_shift) const noexcept {
      const auto bits = [](unsigned hi, unsigned lo) {  // mask of bits [hi:lo]
        return ((hi == 63 ? ~std::uint64_t{0} : (std::uint64_t{1} << (hi + 1)) - 1)) & ~((std::uint64_t{1} << lo) - 1);
      };
      switch (format) {
        case descriptor_format::lpa: return (d & bits(47, low_shift)) | (((d >> 12) & 0xf) << 48);
        case descriptor_format::lpa2: return (d & bits(49, low_shift)) | (((d >> 8) & 0x3) << 50);
        case descriptor_format::vmsa: break;
      }
      return d & bits(47, low_shift);
    }
  };

  /// The geometry for a granule (bytes), VA width and PA width.
  /// \errors errc::invalid_argument for a granule or width AArch64 does not have
  [[nodiscard]] static result<geometry> geometry_of(std::size_t granule, unsigned va_bits, unsigned pa_bits) noexcept {
    geometry g;
    switch (granule) {
      case 4096: g.granule_shift = 12; break;
      case 16384: g.granule_shift = 14; break;
      case 65536: g.granule_shift = 16; break;
      default:
        return detail::fail(errc::invalid_argument, "aarch64: no translation granule of %zu bytes (4K, 16K, 64K)",
                            granule);
    }
    // T1SZ ranges over 12..39 (Arm ARM D8.1.6 with FEAT_LVA/LPA2): 25 to 52 VA bits.
    if (va_bits < 25 || va_bits > 52)
      return detail::fail(errc::invalid_argument, "aarch64: %u virtual address bits is outside 25..52", va_bits);
    if (pa_bits != 0 && (pa_bits < 32 || pa_bits > 52))
      return detail::fail(errc::invalid_argument, "aarch64: %u physical address bits is outside 32..52", pa_bits);
    g.va_bits = va_bits;
    if (g.granule_shift == 16 && pa_bits == 52) g.format = descriptor_format::lpa;
    else if (g.granule_shift != 16 && va_bits > 48) g.format = descriptor_format::lpa2;
    const unsigned per = g.level_bits();
    const unsigned levels = (va_bits - g.granule_shift + per - 1) / per;
    g.start_level = 4 - static_cast<int>(levels);
    if (g.start_level < 0 && !(g.start_level == -1 && g.format == descriptor_format::lpa2))
      return detail::fail(errc::invalid_argument, "aarch64: %u-bit VA with a %zu-byte granule needs %u levels", va_bits,
                          granule, levels);
    return g;
  }

  template <class Backend>
  [[nodiscard]] result<translation> translate(const Backend& b, kvaddr va) const noexcept {
    if constexpr (aarch64_paging_backend<Backend>) {
      KVMXX_TRY(g, geometry_of(b.page_size(), b.va_bits(), b.pa_bits()));
      return walk(b, g, to_integer(va));
    } else {
      return detail::fail(errc::not_supported,
                          "invalid address (0x%llx): this backend gives no aarch64 page-table facts",
                          static_cast<unsigned long long>(to_integer(va)));
    }
  }

  /// The walk itself, for a given geometry (the backend's page_size() is not consulted).
  template <class Backend>
    requires page_table_backend<Backend>
  [[nodiscard]] static result<translation> walk(const Backend& b, const geometry& g, std::uint64_t va) noexcept {
    using ull = unsigned long long;
    const auto root = b.page_table_root();
    if (!root)
      return detail::fail(errc::not_supported, "invalid address (0x%llx): the page-table root is not known",
                          static_cast<ull>(va));
    // TTBR1 translates the addresses whose bits [63:va_bits] are all ones (the kernel
    // half); the lower half belongs to TTBR0 (user space), which a dump has no root for.
    const std::uint64_t high = ~std::uint64_t{0} << g.va_bits;
    if ((va & high) != high)
      return detail::fail(errc::unmapped_address,
                          "invalid address (0x%llx): not a kernel (TTBR1) address for %u-bit virtual addresses",
                          static_cast<ull>(va), g.va_bits);
    // The root is a plain physical address (not a TTBR value), so no field is extracted.
    std::uint64_t table = to_integer(*root) & ~std::uint64_t{7};
    for (int level = g.start_level; level <= 3; ++level) {
      const unsigned shift = g.shift(level);
      const unsigned bits = level == g.start_level ? g.va_bits - shift : g.level_bits();
      const std::uint64_t index = (va >> shift) & ((std::uint64_t{1} << bits) - 1);
      const std::uint64_t entry_pa = table + index * 8;
      std::uint64_t d;
      if constexpr (requires { { b.mapped_page(physaddr{}) } -> std::same_as<const std::byte*>; }) {
        // Mapped images: read in place. mapped_page pages are at least 4 KiB and a
        // descriptor is 8-aligned, so it never straddles one.
        const std::byte* p = b.mapped_page(physaddr{entry_pa});
        if (p == nullptr)
          return detail::fail(errc::page_not_dumped,
                              "invalid address (0x%llx): level %d descriptor at physical 0x%llx is not in the dump",
                              static_cast<ull>(va), level, static_cast<ull>(entry_pa));
        d = detail::load<std::uint64_t>(p + (entry_pa & (page_size - 1)));
      } else {
        std::array<std::byte, 8> raw;
        auto got = b.read_physical(physaddr{entry_pa}, raw);
        if (!got || got.value() != raw.size())
          return detail::fail(errc::page_not_dumped,
                              "invalid address (0x%llx): level %d descriptor at physical 0x%llx is not readable",
                              static_cast<ull>(va), level, static_cast<ull>(entry_pa));
        d = detail::load<std::uint64_t>(raw.data());
      }
      if ((d & 1) == 0)
        return detail::fail(errc::unmapped_address, "invalid address (0x%llx): level %d descriptor not valid",
                            static_cast<ull>(va), level);
      const bool table_bit = (d & 2) != 0;
      if (level == 3 || !table_bit) {
        if (level == 3 && !table_bit)
          return detail::fail(errc::unmapped_address,
                              "invalid address (0x%llx): level 3 descriptor 0x%llx is reserved (bits[1:0] = 0b01)",
                              static_cast<ull>(va), static_cast<ull>(d));
        if (level != 3 && !g.block_allowed(level))
          return detail::fail(errc::corrupt,
                              "invalid address (0x%llx): level %d block descriptor 0x%llx, but a %u KiB granule has "
                              "no blocks at level %d",
                              static_cast<ull>(va), level, static_cast<ull>(d), (1u << g.granule_shift) / 1024, level);
        const std::uint64_t mask = (std::uint64_t{1} << shift) - 1;
        const std::uint64_t in = va & mask;
        return translation{physaddr{g.output_address(d, shift) + in}, static_cast<std::size_t>(mask + 1 - in)};
      }
      table = g.output_address(d, g.granule_shift);
    }
    return detail::fail(errc::unmapped_address, "invalid address (0x%llx)", static_cast<ull>(va));  // not reached
  }
};

}  // namespace kvmxx::inline KVMXX_ABI::arch

#include <kvmxx/core/archetypes.hpp>
static_assert(kvmxx::translation_arch<kvmxx::arch::aarch64, kvmxx::archetypes::physical_backend>);

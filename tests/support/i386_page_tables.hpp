// SPDX-License-Identifier: BSD-2-Clause
//
// i386 page tables for tests (Intel SDM vol. 3A §4.3 32-bit paging with PSE/PSE-36, §4.4
// PAE), written into the physical memory of an elf_core_builder, with the mappings kept
// aside as the translation oracle. Independent of kvmxx: no kvmxx header is included.
#pragma once
#include "elf_core_writer.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <vector>

namespace kvmxx_test {

class i386_page_tables {
 public:
  struct mapping {
    std::uint64_t va, pa, size;
  };
  static constexpr std::uint64_t present = 1, rw = 2, accessed = 0x20, dirty = 0x40, ps = 0x80, global = 0x100,
                                 nx = std::uint64_t{1} << 63;

  /// pae: 3-level PAE tables (8-byte entries), else 2-level (4-byte entries). Tables are
  /// taken from [pool_pa, pool_pa + pool_size); the PAE PDPT is placed at pdpt_offset
  /// (a multiple of 32) inside the first pool page, as CR3 allows.
  i386_page_tables(bool pae, std::uint64_t pool_pa, std::uint64_t pool_size, std::uint64_t pdpt_offset = 0)
      : pae_(pae), next_(pool_pa), end_(pool_pa + pool_size) {
    if (pool_pa % 4096 != 0 || pdpt_offset % 32 != 0 || pdpt_offset > 4096 - 32)
      throw std::invalid_argument("i386_page_tables: bad pool or PDPT offset");
    root_ = new_table() + (pae ? pdpt_offset : 0);
  }

  [[nodiscard]] std::uint64_t root() const { return root_; }
  [[nodiscard]] bool pae() const { return pae_; }
  [[nodiscard]] const std::vector<mapping>& mappings() const { return maps_; }

  /// A 4 KiB page; extra bits (NX, G, A, D…) go into the PTE.
  i386_page_tables& map_4k(std::uint32_t va, std::uint64_t pa, std::uint64_t bits = rw) {
    const std::uint64_t pt = table_for(va);
    set(pt, pae_ ? (va >> 12) & 511 : (va >> 12) & 1023, (pa & ~std::uint64_t{0xfff}) | present | bits);
    maps_.push_back({va & ~0xfffu, pa & ~std::uint64_t{0xfff}, 4096});
    return *this;
  }
  /// A large page: 2 MiB under PAE, 4 MiB (PSE; PA bits 39:32 in PDE bits 20:13) without.
  i386_page_tables& map_large(std::uint32_t va, std::uint64_t pa, std::uint64_t bits = rw) {
    const std::uint64_t size = large_size();
    if (va % size != 0 || pa % size != 0) throw std::invalid_argument("map_large: unaligned");
    std::uint64_t e = present | ps | bits;
    if (pae_) e |= pa;
    else e |= (pa & 0xffc00000u) | (((pa >> 32) & 0xff) << 13);
    set(directory_for(va), pd_index(va), e);
    maps_.push_back({va, pa, size});
    return *this;
  }
  /// A non-present entry that still holds a frame (the walker must not follow it), at
  /// the PTE (level 0), PDE (1) or PDPTE (2, PAE only) of va.
  i386_page_tables& not_present(std::uint32_t va, unsigned level) {
    const std::uint64_t junk = 0x5000 | rw;  // bit 0 clear
    if (level == 0) set(table_for(va), pae_ ? (va >> 12) & 511 : (va >> 12) & 1023, junk);
    else if (level == 1) set(directory_for(va), pd_index(va), junk);
    else if (level == 2 && pae_) set(root_, va >> 30, junk);
    else throw std::invalid_argument("not_present: no such level");
    return *this;
  }
  /// Points the PDE of va at a page table at table_pa (which may be outside the dump).
  i386_page_tables& pde_to(std::uint32_t va, std::uint64_t table_pa) {
    set(directory_for(va), pd_index(va), table_pa | present | rw);
    return *this;
  }
  /// Points the PDPTE of va (PAE) at a page directory at dir_pa.
  i386_page_tables& pdpte_to(std::uint32_t va, std::uint64_t dir_pa) {
    if (!pae_) throw std::invalid_argument("pdpte_to: PAE only");
    set(root_, va >> 30, dir_pa | present);
    return *this;
  }

  [[nodiscard]] std::optional<std::uint64_t> translate(std::uint64_t va) const {
    for (const auto& m : maps_)
      if (va >= m.va && va - m.va < m.size) return m.pa + (va - m.va);
    return std::nullopt;
  }
  [[nodiscard]] std::uint64_t contiguous(std::uint64_t va) const {
    for (const auto& m : maps_)
      if (va >= m.va && va - m.va < m.size) return m.size - (va - m.va);
    return 0;
  }

  /// Writes the tables into the builder's physical memory (every table page must be in a
  /// segment's file bytes).
  void install(elf_core_builder& b) const {
    for (const auto& [pa, bytes] : pages_) b.write_phys(pa, std::span<const std::byte>(bytes.data(), bytes.size()));
  }

 private:
  [[nodiscard]] std::uint64_t large_size() const { return pae_ ? 0x200000 : 0x400000; }
  [[nodiscard]] std::uint64_t pd_index(std::uint32_t va) const { return pae_ ? (va >> 21) & 511 : va >> 22; }
  [[nodiscard]] std::size_t entry_size() const { return pae_ ? 8 : 4; }

  std::uint64_t new_table() {
    if (next_ + 4096 > end_) throw std::runtime_error("i386_page_tables: pool exhausted");
    const std::uint64_t pa = next_;
    next_ += 4096;
    pages_[pa] = std::vector<std::byte>(4096);
    return pa;
  }
  [[nodiscard]] std::uint64_t get(std::uint64_t table, std::uint64_t index) const {
    const std::uint64_t pa = table + index * entry_size();
    const auto& page = pages_.at(pa & ~std::uint64_t{0xfff});
    std::uint64_t v = 0;
    for (std::size_t k = 0; k < entry_size(); ++k) v |= std::to_integer<std::uint64_t>(page[(pa & 0xfff) + k]) << (8 * k);
    return v;
  }
  void set(std::uint64_t table, std::uint64_t index, std::uint64_t value) {
    const std::uint64_t pa = table + index * entry_size();
    auto& page = pages_.at(pa & ~std::uint64_t{0xfff});
    for (std::size_t k = 0; k < entry_size(); ++k) page[(pa & 0xfff) + k] = static_cast<std::byte>((value >> (8 * k)) & 0xff);
  }
  // The page directory covering va (PAE: made on demand under the PDPTE).
  std::uint64_t directory_for(std::uint32_t va) {
    if (!pae_) return root_;
    const std::uint64_t e = get(root_, va >> 30);
    if (e & present) return e & 0x000ffffffffff000;
    const std::uint64_t pd = new_table();
    set(root_, va >> 30, pd | present);
    return pd;
  }
  std::uint64_t table_for(std::uint32_t va) {
    const std::uint64_t pd = directory_for(va);
    const std::uint64_t e = get(pd, pd_index(va));
    if ((e & present) && !(e & ps)) return e & (pae_ ? 0x000ffffffffff000 : 0xfffff000);
    const std::uint64_t pt = new_table();
    set(pd, pd_index(va), pt | present | rw);
    return pt;
  }

  bool pae_;
  std::uint64_t next_, end_, root_ = 0;
  std::map<std::uint64_t, std::vector<std::byte>> pages_;
  std::vector<mapping> maps_;
};

}  // namespace kvmxx_test

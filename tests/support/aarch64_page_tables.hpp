// aarch64_page_tables.hpp — test-fixture generator: AArch64 stage-1 translation tables
// (the kernel's TTBR1 half) inside a block of "physical memory", with an oracle.
//
// Written from the Arm ARM (D8 "The AArch64 Virtual Memory System Architecture":
// descriptor formats, levels per granule, block sizes, the LPA and LPA2 output-address
// fields) and specs/linux-dumps.md §10.2. It shares no code with the kvmxx library
// (standard headers only), so it is an independent check of arch/aarch64.hpp.
//
// Public API (namespace kvmxx_test):
//   enum class a64_format { vmsa, lpa, lpa2 };
//   class aarch64_page_tables {
//    public:
//     aarch64_page_tables(unsigned granule_shift /*12|14|16*/, unsigned va_bits, a64_format,
//                         std::uint64_t pool_pa, std::uint64_t pool_size, std::uint64_t seed = 5);
//     aarch64_page_tables& map(std::uint64_t va, std::uint64_t pa, int level = 3);
//         // a page (level 3) or a block at `level`, with attribute noise the walk must ignore
//     aarch64_page_tables& raw(std::uint64_t va, int level, std::uint64_t descriptor);
//         // writes any descriptor into va's slot at `level` (tables above are made)
//     std::uint64_t root() const; int start_level() const; unsigned level_shift(int) const;
//     std::uint64_t kva(std::uint64_t offset) const;    // offset in the TTBR1 half
//     const std::vector<std::byte>& memory() const;     // the pool, from pool_pa
//     std::uint64_t pool_pa() const;
//     std::optional<std::pair<std::uint64_t, std::uint64_t>> expect(std::uint64_t va) const;
//         // (pa, bytes to the end of the mapping) from the list of map() calls
//   };
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

namespace kvmxx_test {

enum class a64_format { vmsa, lpa, lpa2 };

class aarch64_page_tables {
 public:
  aarch64_page_tables(unsigned granule_shift, unsigned va_bits, a64_format f, std::uint64_t pool_pa,
                      std::uint64_t pool_size, std::uint64_t seed = 5)
      : gs_(granule_shift), va_bits_(va_bits), fmt_(f), pool_pa_(pool_pa), mem_(pool_size) {
    std::mt19937_64 rng(seed);
    for (auto& b : mem_) b = static_cast<std::byte>(rng() & 0xff);
    // Levels: each resolves gs-3 bits; the first whatever is left above.
    int level = 3;
    unsigned covered = gs_ + (gs_ - 3);
    while (covered < va_bits_) {
      --level;
      covered += gs_ - 3;
    }
    start_ = level;
    root_ = alloc_table();
  }

  [[nodiscard]] std::uint64_t root() const { return root_; }
  [[nodiscard]] int start_level() const { return start_; }
  [[nodiscard]] unsigned level_shift(int level) const {
    return gs_ + static_cast<unsigned>(3 - level) * (gs_ - 3);
  }
  [[nodiscard]] std::uint64_t kva(std::uint64_t offset) const { return (~std::uint64_t{0} << va_bits_) | offset; }
  [[nodiscard]] const std::vector<std::byte>& memory() const { return mem_; }
  [[nodiscard]] std::uint64_t pool_pa() const { return pool_pa_; }

  aarch64_page_tables& map(std::uint64_t va, std::uint64_t pa, int level = 3) {
    const std::uint64_t size = std::uint64_t{1} << level_shift(level);
    if ((va | pa) & (size - 1)) throw std::invalid_argument("aarch64_page_tables::map: misaligned");
    // Noise the walk must ignore: AF (10), nG (11), contiguous (52), PXN (53), UXN (54),
    // software bits (55..58); SH (bits 9:8) only where they are not address bits.
    std::uint64_t noise = (1ull << 10) | (1ull << 11) | (1ull << 52) | (1ull << 53) | (1ull << 54) | (0xfull << 55);
    if (fmt_ != a64_format::lpa2) noise |= 0x300;
    raw(va, level, encode(pa) | noise | (level == 3 ? 0x3 : 0x1));
    maps_[va] = {pa, size};
    return *this;
  }

  aarch64_page_tables& raw(std::uint64_t va, int level, std::uint64_t descriptor) {
    std::uint64_t table = root_;
    for (int l = start_; l < level; ++l) {
      const std::uint64_t slot = slot_of(table, va, l);
      std::uint64_t d = get(slot);
      if ((d & 3) != 3) {
        const std::uint64_t t = alloc_table();
        d = encode(t) | 0x3;
        put(slot, d);
      }
      table = decode(d);
    }
    put(slot_of(table, va, level), descriptor);
    return *this;
  }

  [[nodiscard]] std::optional<std::pair<std::uint64_t, std::uint64_t>> expect(std::uint64_t va) const {
    auto it = maps_.upper_bound(va);
    if (it == maps_.begin()) return std::nullopt;
    --it;
    const auto [pa, size] = it->second;
    if (va - it->first >= size) return std::nullopt;
    return std::make_pair(pa + (va - it->first), size - (va - it->first));
  }

 private:
  // Output-address fields (Arm ARM D8.3): bits [47:gs]; LPA puts OA[51:48] in [15:12];
  // LPA2 has OA[49:gs] in place and OA[51:50] in [9:8].
  std::uint64_t encode(std::uint64_t pa) const {
    switch (fmt_) {
      case a64_format::lpa: return (pa & 0x0000ffffffff0000ull) | (((pa >> 48) & 0xf) << 12);
      case a64_format::lpa2: return (pa & 0x0003fffffffff000ull & ~((1ull << gs_) - 1)) | (((pa >> 50) & 0x3) << 8);
      case a64_format::vmsa: break;
    }
    return pa & 0x0000fffffffff000ull & ~((1ull << gs_) - 1);
  }
  std::uint64_t decode(std::uint64_t d) const {
    const std::uint64_t low = ~((1ull << gs_) - 1);
    switch (fmt_) {
      case a64_format::lpa: return (d & 0x0000ffffffff0000ull) | (((d >> 12) & 0xf) << 48);
      case a64_format::lpa2: return (d & 0x0003fffffffff000ull & low) | (((d >> 8) & 0x3) << 50);
      case a64_format::vmsa: break;
    }
    return d & 0x0000fffffffff000ull & low;
  }
  std::uint64_t slot_of(std::uint64_t table, std::uint64_t va, int level) const {
    const unsigned shift = level_shift(level);
    const unsigned bits = level == start_ ? va_bits_ - shift : gs_ - 3;
    return table + ((va >> shift) & ((1ull << bits) - 1)) * 8;
  }
  std::uint64_t alloc_table() {
    const std::uint64_t size = 1ull << gs_;
    next_ = (next_ + size - 1) & ~(size - 1);
    if (next_ + size > mem_.size()) throw std::length_error("aarch64_page_tables: pool full");
    const std::uint64_t pa = pool_pa_ + next_;
    for (std::uint64_t i = 0; i < size; ++i) mem_[next_ + i] = std::byte{0};
    next_ += size;
    return pa;
  }
  std::uint64_t get(std::uint64_t pa) const {
    std::uint64_t v = 0;
    for (unsigned i = 0; i < 8; ++i) v |= std::uint64_t(std::to_integer<unsigned>(mem_.at(pa - pool_pa_ + i))) << (8 * i);
    return v;
  }
  void put(std::uint64_t pa, std::uint64_t v) {
    for (unsigned i = 0; i < 8; ++i) mem_.at(pa - pool_pa_ + i) = static_cast<std::byte>((v >> (8 * i)) & 0xff);
  }

  unsigned gs_, va_bits_;
  a64_format fmt_;
  std::uint64_t pool_pa_;
  std::vector<std::byte> mem_;
  std::uint64_t next_ = 0;
  int start_ = 0;
  std::uint64_t root_ = 0;
  std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> maps_;
};

}  // namespace kvmxx_test

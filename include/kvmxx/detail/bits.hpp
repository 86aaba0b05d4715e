// SPDX-License-Identifier: BSD-2-Clause
//
// A bitmap with an O(1) rank: the minidump page bitmap (specs/freebsd-libkvm.md §2.2)
// answers "is page i dumped, and how many dumped pages come before it" for every
// physical read, so both must be one memory access each.
#pragma once
#include <kvmxx/core/config.hpp>
#include <kvmxx/detail/byte_order.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace kvmxx::inline KVMXX_ABI::detail {

/// Population count, inline everywhere. Without -mpopcnt, g++ turns std::popcount into a
/// call to libgcc's table-driven __popcountdi2 (seen in callgrind on the minidump read
/// path); clang already inlines this same bit-parallel sum.
[[nodiscard]] constexpr unsigned popcount64(std::uint64_t x) noexcept {
#if defined(__POPCNT__) || defined(__clang__) || !defined(__GNUC__)
  return static_cast<unsigned>(std::popcount(x));
#else
  x = x - ((x >> 1) & 0x5555555555555555ull);
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return static_cast<unsigned>((x * 0x0101010101010101ull) >> 56);
#endif
}

/// Bit i of the source bytes is byte i/8, mask 1 << (i%8) — the little-endian reading of
/// the kernel's bitset words that libkvm applies (it does not byte-swap, §2.1).
class rank_bitmap {
 public:
  rank_bitmap() = default;

  /// Copies `size` bytes of bitmap (any length; a partial last word is zero-padded) and
  /// builds the cumulative counts. Allocates 16 bytes per 64 bits.
  rank_bitmap(const std::byte* bytes, std::size_t size) {
    const std::size_t nwords = (size + 7) / 8;
    blocks_.resize(nwords);
    std::uint64_t running = 0;
    for (std::size_t w = 0; w < nwords; ++w) {
      std::uint64_t word = 0;
      const std::size_t n = (size - w * 8 < 8) ? size - w * 8 : 8;
      for (std::size_t k = 0; k < n; ++k) word |= std::uint64_t(std::to_integer<std::uint8_t>(bytes[w * 8 + k])) << (8 * k);
      blocks_[w] = {word, running};
      running += popcount64(word);
    }
    bits_ = static_cast<std::uint64_t>(size) * 8;
    total_ = running;
  }

  [[nodiscard]] std::uint64_t size() const noexcept { return bits_; }
  [[nodiscard]] std::uint64_t count() const noexcept { return total_; }

  [[nodiscard]] bool test(std::uint64_t i) const noexcept {
    return i < bits_ && ((blocks_[i / 64].word >> (i % 64)) & 1) != 0;
  }

  /// The number of set bits with index < i, when bit i is set; nullopt otherwise.
  [[nodiscard]] std::optional<std::uint64_t> rank_if_set(std::uint64_t i) const noexcept {
    if (i >= bits_) return std::nullopt;
    const auto& b = blocks_[i / 64];
    const std::uint64_t bit = std::uint64_t{1} << (i % 64);
    if ((b.word & bit) == 0) return std::nullopt;
    return b.rank + popcount64(b.word & (bit - 1));
  }

  static constexpr std::uint64_t npos = ~std::uint64_t{0};
  /// rank_if_set without the optional: npos when bit i is clear or out of range.
  [[nodiscard]] std::uint64_t rank_or_npos(std::uint64_t i) const noexcept {
    if (i >= bits_) return npos;
    const auto& b = blocks_[i / 64];
    const std::uint64_t bit = std::uint64_t{1} << (i % 64);
    if ((b.word & bit) == 0) return npos;
    return b.rank + popcount64(b.word & (bit - 1));
  }

  /// The first set bit at index >= i, or nullopt.
  [[nodiscard]] std::optional<std::uint64_t> next_set(std::uint64_t i) const noexcept {
    if (i >= bits_) return std::nullopt;
    std::size_t w = i / 64;
    std::uint64_t word = blocks_[w].word & (~std::uint64_t{0} << (i % 64));
    for (;;) {
      if (word != 0) return std::uint64_t{w} * 64 + static_cast<std::uint64_t>(std::countr_zero(word));
      if (++w >= blocks_.size()) return std::nullopt;
      word = blocks_[w].word;
    }
  }

 private:
  struct block {
    std::uint64_t word;  // 64 bits of the map, host order
    std::uint64_t rank;  // set bits before this word
  };
  std::vector<block> blocks_;
  std::uint64_t bits_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace kvmxx::inline KVMXX_ABI::detail

// SPDX-License-Identifier: BSD-2-Clause
//
// Overflow-checked offset arithmetic: every offset + size taken from a file goes through
// these before it is compared with the file size (DESIGN.md "Errors").
#pragma once
#include <kvmxx/core/config.hpp>

#include <cstdint>
#include <optional>

namespace kvmxx::inline KVMXX_ABI::detail {

/// a + b, or nullopt when it wraps.
[[nodiscard]] constexpr std::optional<std::uint64_t> checked_add(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}
/// a * b, or nullopt when it wraps.
[[nodiscard]] constexpr std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}
/// True when [offset, offset + size) lies inside [0, limit).
[[nodiscard]] constexpr bool fits(std::uint64_t offset, std::uint64_t size, std::uint64_t limit) noexcept {
  return offset <= limit && size <= limit - offset;
}
/// x rounded up to a multiple of the power of two `align`, or nullopt when it wraps.
[[nodiscard]] constexpr std::optional<std::uint64_t> round_up(std::uint64_t x, std::uint64_t align) noexcept {
  auto sum = checked_add(x, align - 1);
  if (!sum) return std::nullopt;
  return *sum & ~(align - 1);
}

}  // namespace kvmxx::inline KVMXX_ABI::detail

// SPDX-License-Identifier: BSD-2-Clause
//
// Byte-order-typed integers for on-disk structures (STYLE.md §10): a field stores the raw
// bytes as the file has them and converts on read, so no host byte order or alignment
// leaks into parsing.
#pragma once
#include <kvmxx/core/config.hpp>

#include <bit>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace kvmxx::inline KVMXX_ABI::detail {

/// C++20 has no std::byteswap.
template <std::integral T>
[[nodiscard]] constexpr T byteswap(T v) noexcept {
  using U = std::make_unsigned_t<T>;
  auto u = static_cast<U>(v);
  if constexpr (sizeof(T) == 1) {
    return v;
  } else if constexpr (sizeof(T) == 2) {
    return static_cast<T>(static_cast<U>((u >> 8) | (u << 8)));
  } else if constexpr (sizeof(T) == 4) {
    return static_cast<T>(__builtin_bswap32(u));
  } else {
    static_assert(sizeof(T) == 8);
    return static_cast<T>(__builtin_bswap64(u));
  }
}

/// Converts between byte order E and the host's.
template <std::endian E, std::integral T>
[[nodiscard]] constexpr T to_host(T v) noexcept {
  if constexpr (E == std::endian::native) return v;
  else return byteswap(v);
}

/// An integer of type T stored as sizeof(T) bytes in byte order E, alignment 1.
template <std::integral T, std::endian E>
class packed_int {
 public:
  using value_type = T;
  packed_int() = default;
  constexpr explicit packed_int(T v) noexcept { store(v); }
  [[nodiscard]] constexpr T value() const noexcept { return to_host<E>(std::bit_cast<T>(bytes_)); }
  constexpr operator T() const noexcept { return value(); }  // reads like a field
  constexpr packed_int& operator=(T v) noexcept {
    store(v);
    return *this;
  }

 private:
  constexpr void store(T v) noexcept { bytes_ = std::bit_cast<raw_bytes>(to_host<E>(v)); }
  struct raw_bytes {
    unsigned char b[sizeof(T)];
  } bytes_{};
};

template <std::integral T>
using le = packed_int<T, std::endian::little>;
template <std::integral T>
using be = packed_int<T, std::endian::big>;

using le16 = le<std::uint16_t>;
using le32 = le<std::uint32_t>;
using le64 = le<std::uint64_t>;
using be16 = be<std::uint16_t>;
using be32 = be<std::uint32_t>;
using be64 = be<std::uint64_t>;

static_assert(sizeof(le64) == 8 && alignof(le64) == 1);
static_assert(le32(0x11223344).value() == 0x11223344);

/// Reads a T in byte order E from raw bytes (no alignment needed).
template <std::integral T, std::endian E = std::endian::little>
[[nodiscard]] inline T load(const void* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return to_host<E>(v);
}

/// Copies a trivially copyable layout struct out of raw bytes.
template <class T>
[[nodiscard]] inline T load_struct(const void* p) noexcept {
  static_assert(std::is_trivially_copyable_v<T>);
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace kvmxx::inline KVMXX_ABI::detail

// SPDX-License-Identifier: BSD-2-Clause
//
// A per-thread translation cache for immutable memory images: virtual page → the host
// address of that page's bytes in the mapped file. A hit turns a read into one memcpy,
// which is what keeps random small reads near the memory-copy limit (DESIGN.md "The read
// path"). Per thread, so readers never contend; tagged with a handle generation that is
// never reused, so entries of a closed, moved or destroyed handle can never match again.
#pragma once
#include <kvmxx/core/config.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace kvmxx::inline KVMXX_ABI::detail {

// Trivial on purpose: a thread_local array of a type with a constructor needs an init
// guard on every access; this one is zero-filled static storage (generation 0 never
// matches: generations start at 1).
struct tlb_entry {
  std::uint64_t generation;
  std::uint64_t vpage;  // virtual address >> page shift
  const std::byte* host;
};
static_assert(std::is_trivial_v<tlb_entry>);

inline constexpr std::size_t tlb_entries = 256;  // direct-mapped; 6 KiB per thread

inline tlb_entry* thread_tlb() noexcept {
  thread_local tlb_entry entries[tlb_entries];
  return entries;
}

/// A fresh, never reused tag for a handle's cache entries.
inline std::uint64_t next_tlb_generation() noexcept {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace kvmxx::inline KVMXX_ABI::detail

// SPDX-License-Identifier: BSD-2-Clause
//
// A per-thread translation cache for immutable memory images: virtual page → the host
// address of that page's bytes in the mapped file. A hit turns a read into one memcpy,
// which is what keeps random small reads near the memory-copy limit (DESIGN.md "The read
// path"). Per thread, so readers never contend; tagged with a handle generation that is
// never reused, so entries of a closed, moved or destroyed handle can never match again.
//
// Two tables: one entry per page, and one per 2 MiB block. A block entry holds, for a block
// that one page-table leaf maps (2 MiB and 1 GiB pages, a minidump's direct map), the host
// address of its bytes when they lie contiguously in the file, else its physical address,
// so that a page miss inside it costs a file lookup but no walk; for a block mapped by
// 4 KiB pages, the page table that maps them, so a miss reads one entry instead of four.
// Pages alone (256 entries, 1 MiB) missed ~99.7% of random reads over a kernel's memory,
// each miss a full walk (bench/README.md, workload (a)).
#pragma once
#include <kvmxx/core/config.hpp>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

namespace kvmxx::inline KVMXX_ABI::detail {

// Trivial on purpose: the tables are value-initialised (zero) in one allocation;
// generation 0 never matches (generations start at 1).
struct tlb_entry {
  std::uint64_t generation;
  std::uint64_t vpage;     // virtual address >> the table's shift
  const std::byte* host;   // the bytes of the page or block; block table: nullptr when they
                           // are not contiguous in the file (a sparse minidump's direct map)
  std::uint64_t pa;        // block table: the block's physical address (pages then skip the walk)
};
static_assert(std::is_trivial_v<tlb_entry>);

// Direct-mapped tables. 1024 pages cover 4 MiB of 4 KiB pages; 1024 blocks cover 2 GiB, so a 512 MiB machine's direct map plus
// its kernel image fit with room to spare (with 256, the direct map alone filled every slot
// and the kernel's blocks evicted it on every other read).
inline constexpr std::size_t tlb_block_entries = 1024;
inline constexpr std::size_t tlb_page_entries = 1024;
inline constexpr unsigned tlb_block_shift = 21;  // the block table's granule: 2 MiB

struct thread_tlb_tables {
  tlb_entry block[tlb_block_entries];  // 2 MiB blocks, 32 KiB
  tlb_entry page[tlb_page_entries];    // pages of the Arch's size, 32 KiB
};
static_assert(std::is_trivial_v<thread_tlb_tables>);

/// The slot of a page or block number in a table of `entries` slots. Folding in the bits
/// above the index keeps regions a multiple of the table size apart (a kernel's text and
/// its direct map) from sharing slots.
template <std::size_t entries>
[[nodiscard]] constexpr std::size_t tlb_slot(std::uint64_t vpage) noexcept {
  static_assert((entries & (entries - 1)) == 0);
  constexpr unsigned bits = static_cast<unsigned>(std::countr_zero(entries));
  return static_cast<std::size_t>((vpage ^ (vpage >> bits)) & (entries - 1));
}

// The tables live on the heap, allocated by a thread's first cached read: a thread_local
// array would be part of every thread's static TLS block, which glibc zero-fills at each
// thread's creation — 40 KiB for every thread of the program, reading or not.
inline thread_local thread_tlb_tables* thread_tlb_pointer = nullptr;

struct thread_tlb_owner {
  thread_tlb_owner() = default;
  thread_tlb_owner(const thread_tlb_owner&) = delete;
  thread_tlb_owner& operator=(const thread_tlb_owner&) = delete;
  ~thread_tlb_owner() {
    delete thread_tlb_pointer;
    thread_tlb_pointer = nullptr;  // a read from a later thread_local destructor allocates anew
  }
};

KVMXX_NOINLINE inline thread_tlb_tables* make_thread_tlb() noexcept {
  thread_local thread_tlb_owner owner;  // frees the tables when the thread exits
  (void)owner;
  thread_tlb_pointer = new (std::nothrow) thread_tlb_tables{};
  return thread_tlb_pointer;
}

/// This thread's tables, or nullptr when they cannot be allocated (reads then go uncached).
inline thread_tlb_tables* thread_tlb() noexcept {
  thread_tlb_tables* t = thread_tlb_pointer;
  if (KVMXX_LIKELY(t != nullptr)) return t;
  return make_thread_tlb();
}

/// A fresh, never reused tag for a handle's cache entries.
inline std::uint64_t next_tlb_generation() noexcept {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace kvmxx::inline KVMXX_ABI::detail

// SPDX-License-Identifier: BSD-2-Clause
//
// What the harness derives from a dump_case before anything is timed: the random address
// sets (identical for every contender), the sequential blocks, the environment.
#pragma once
#include "case.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kvmxx_bench {

/// Workload sizes and the seeds of the address sets (shared by kvmxx-bench and
/// kvmxx-bench-memory, so both read the same addresses).
inline constexpr std::size_t random_reads = 1'000'000;
inline constexpr std::size_t sequential_chunk = std::size_t{1} << 20;
inline constexpr std::uint64_t virtual_seed = 0x5eed0001, physical_seed = 0x5eed0002;

/// $KVMXX_BENCH_DIR (default: the directory the harness was built in) and $KVMXX_LINUX_DUMPS.
environment read_environment();

/// Every registered case, sorted by name.
std::vector<dump_case*> sorted_cases();

/// n random 8-byte-aligned kernel virtual addresses from c.virtual_regions(). With a
/// layout and the mapped core (`file`), an address is kept when `kvmxx` translates it and
/// its 8 bytes lie in the file (offset = where; `expected` sums the file's bytes there).
/// Without them (formats with no memcpy limit: `file` == nullptr), it is kept when kvmxx
/// reads it, and `expected` sums what kvmxx read.
address_set sample_virtual(const dump_case& c, reader& kvmxx, const file_map& layout, const std::byte* file,
                           std::size_t n, std::uint64_t seed, std::string& log);
/// The same for physical addresses from c.physical_regions().
address_set sample_physical(const dump_case& c, reader& kvmxx, const file_map& layout, const std::byte* file,
                            std::size_t n, std::uint64_t seed, std::string& log);
/// The sequential range cut into `chunk`-byte blocks, with their file pieces (none when
/// the layout is empty).
std::vector<block> sequential_blocks(const sequential_range& r, bool is_virtual, std::size_t chunk,
                                     const file_map& layout);

/// Memory use of this process from /proc/self/status, in KiB.
struct proc_memory {
  long rss_anon = 0, rss_file = 0, rss_shmem = 0, vm_rss = 0, vm_hwm = 0;
};
proc_memory read_proc_memory();
/// Resets VmHWM to the current VmRSS (echo 5 > /proc/self/clear_refs); false if refused.
bool reset_peak_rss();

}  // namespace kvmxx_bench

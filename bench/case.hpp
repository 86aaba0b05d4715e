// SPDX-License-Identifier: BSD-2-Clause
//
// The benchmark harness's two interfaces.
//
// * dump_case — one dump file and everything the workloads need to know about it: how to
//   make or find it, how kvmxx opens it with its compile-time typed handle, whether the peer
//   (libkdumpfile) reads it, where its physical memory lies in the file (for the memcpy
//   limit), where to pick kernel virtual addresses, the 64 MiB sequential range, symbol
//   names. A new format (kdump-compressed files, …) adds one case_*.cpp file with one
//   KVMXX_BENCH_CASE(...) line; the harness (harness.cpp, memory.cpp) does not change.
// * reader — one contender with an open handle: kvmxx (typed, kvmxx::open's probed handle,
//   a variant visited per read, the type-erased any_kernel_memory), the memcpy limit, the
//   peer. The harness makes one virtual call per batch of reads; the per-read loop is
//   compiled inside each reader, so the typed handle's read() is inlined there.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace kvmxx_bench {

/// [pa, pa + len) of target physical memory lies at file offset `offset`.
struct file_piece {
  std::uint64_t pa = 0, len = 0, offset = 0;
};

/// Sorted, non-overlapping pieces; where the bytes of a physical address lie in the file.
class file_map {
 public:
  file_map() = default;
  explicit file_map(std::vector<file_piece> pieces);  // sorts, drops overlaps, merges
  [[nodiscard]] bool empty() const noexcept { return pieces_.empty(); }
  [[nodiscard]] const std::vector<file_piece>& pieces() const noexcept { return pieces_; }
  /// The file offset of pa when [pa, pa + len) lies in one piece.
  [[nodiscard]] std::optional<std::uint64_t> offset_of(std::uint64_t pa, std::uint64_t len) const noexcept;
  /// The file pieces holding [pa, pa + len), in order; empty when a byte is missing.
  [[nodiscard]] std::vector<file_piece> pieces_of(std::uint64_t pa, std::uint64_t len) const;
  [[nodiscard]] std::uint64_t bytes() const noexcept;

 private:
  std::vector<file_piece> pieces_;
};

/// Addresses to sample from: [start, start + len). A sample comes from a region with
/// probability ∝ weight, then uniformly (8-byte aligned) from within it.
struct region {
  std::uint64_t start = 0, len = 0;
  double weight = 1.0;
  std::string what;     ///< for the log ("direct map", "kernel image", …)
};

/// One set of random 8-byte reads: the addresses and, for the limit, the file offsets of
/// their bytes. `expected` is the sum of the 8-byte values read from the file there.
struct address_set {
  bool is_virtual = false;
  std::vector<std::uint64_t> addr, offset;
  std::uint64_t expected = 0;
};

/// One 1 MiB read of the sequential workload, and its bytes' pieces in the file.
struct block {
  bool is_virtual = false;
  std::uint64_t addr = 0;
  std::size_t len = 0;
  std::vector<file_piece> pieces;
};

/// A contender with an open handle on one dump. Thread-safe for concurrent read8() when
/// for_thread() returns nullptr (the handle is shared); otherwise each thread uses its own.
class reader {
 public:
  virtual ~reader() = default;
  /// 8-byte reads at s.addr[i] (the limit: at s.offset[i] of the file), i in [begin, end);
  /// returns the sum of the values read; counts reads that failed or came back short.
  virtual std::uint64_t read8(const address_set& s, std::size_t begin, std::size_t end, std::size_t& failed) = 0;
  /// One sequential block into out (b.len bytes); false when it failed or came back short.
  virtual bool read_block(const block& b, std::byte* out) = 0;
  /// Virtual → physical, when this contender can say (kvmxx: used to pick addresses).
  virtual std::optional<std::uint64_t> translate(std::uint64_t /*va*/) { return std::nullopt; }
  /// Symbol lookups one by one: how many were found; `sum` accumulates the addresses.
  virtual std::optional<std::size_t> lookup_each(std::span<const std::string> /*names*/, std::uint64_t& /*sum*/) {
    return std::nullopt;  // not supported
  }
  /// The same names in one call (kvm_nlist2 style), when the contender has such a call.
  virtual std::optional<std::size_t> lookup_batch(std::span<const std::string> /*names*/, std::uint64_t& /*sum*/) {
    return std::nullopt;
  }
  /// A reader for another thread, or nullptr when this one may be shared by all threads.
  virtual std::unique_ptr<reader> for_thread() { return nullptr; }

  /// One 8-byte value (for picking addresses), or nullopt when it cannot be read.
  std::optional<std::uint64_t> read_one(bool is_virtual, std::uint64_t addr) {
    address_set one;
    one.is_virtual = is_virtual;
    one.addr = {addr};
    one.offset = {0};
    std::size_t failed = 0;
    const std::uint64_t v = read8(one, 0, 1, failed);
    if (failed != 0) return std::nullopt;
    return v;
  }
};

/// Where the harness keeps generated files (the minidump) and finds the real dumps.
struct environment {
  std::string build_dir;    ///< generated dumps are cached here
  std::string linux_dumps;  ///< $KVMXX_LINUX_DUMPS ("" when unset)
};

/// The 64 MiB sequential workload's range, as a virtual and as a physical address.
struct sequential_range {
  std::uint64_t va = 0, pa = 0, len = 0;
};

class dump_case {
 public:
  virtual ~dump_case() = default;
  /// Short name for the table's "dump" column (no '/' or spaces).
  [[nodiscard]] virtual std::string name() const = 0;
  [[nodiscard]] virtual std::string description() const = 0;
  /// Makes or finds the files. Returns "" when ready, else why this case is skipped.
  virtual std::string prepare(const environment& env) = 0;
  [[nodiscard]] virtual std::string core_path() const = 0;
  /// The kernel file kvmxx gets for symbols ("" for none).
  [[nodiscard]] virtual std::string kernel_path() const = 0;
  /// kvmxx's compile-time typed handle on this dump (kvmxx_reader<Handle>, contenders.hpp).
  [[nodiscard]] virtual std::unique_ptr<reader> open_typed() const = 0;
  /// The peer on this dump, or nullptr when it cannot read this format ("n/a").
  [[nodiscard]] virtual std::unique_ptr<reader> open_peer() const { return nullptr; }
  [[nodiscard]] virtual std::string peer_unsupported_reason() const { return "format not supported by the peer"; }
  /// Where each byte of physical memory lies in the file, parsed independently of kvmxx.
  /// Empty for formats whose bytes are not stored as-is (compressed): no memcpy limit then.
  [[nodiscard]] virtual file_map physical_layout() const = 0;
  /// Kernel virtual address regions to sample (each must be mostly mapped; the harness
  /// keeps an address only if kvmxx translates it and its bytes are in the file).
  [[nodiscard]] virtual std::vector<region> virtual_regions() const = 0;
  /// Physical regions to sample; by default every piece of physical_layout().
  [[nodiscard]] virtual std::vector<region> physical_regions() const;
  [[nodiscard]] virtual sequential_range sequential() const = 0;
  /// Names for the symbol-lookup workload (every one must resolve).
  [[nodiscard]] virtual std::vector<std::string> symbol_names() const = 0;
};

/// Every case, in registration order.
std::vector<std::unique_ptr<dump_case>>& cases();
struct case_registrar {
  explicit case_registrar(std::function<std::unique_ptr<dump_case>()> make);
};
#define KVMXX_BENCH_CONCAT2(a, b) a##b
#define KVMXX_BENCH_CONCAT(a, b) KVMXX_BENCH_CONCAT2(a, b)
/// Registers a case type (default-constructible) at static-initialisation time.
#define KVMXX_BENCH_CASE(...)                                                   \
  static const ::kvmxx_bench::case_registrar KVMXX_BENCH_CONCAT(kvmxx_bench_case_, __COUNTER__)( \
      [] { return std::unique_ptr<::kvmxx_bench::dump_case>(new __VA_ARGS__); })

}  // namespace kvmxx_bench

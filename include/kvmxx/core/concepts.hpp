// SPDX-License-Identifier: BSD-2-Clause
//
// The contracts of the three policy families of kernel_memory<Backend, Arch, Resolver>
// (DESIGN.md "The one type"). Every model asserts its concept at the end of its header,
// so a broken model fails in its own header (STYLE.md §8).
#pragma once
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvmxx::inline KVMXX_ABI {

/// A range of target physical memory [start, end).
struct phys_range {
  physaddr start{};
  physaddr end{};
};

/// What a backend knows about its image, for `kvmxx info` and for users that print it.
struct backend_info {
  std::string format;                 ///< e.g. "FreeBSD amd64 minidump"
  machine arch = machine::unknown;
  os_kind os = os_kind::unknown;
  std::uint32_t format_version = 0;   ///< the format's own version field, 0 if it has none
  std::size_t page_size = 0;          ///< target page size
  std::vector<phys_range> ranges;     ///< physical memory the image describes
  std::uint64_t dumped_pages = 0;     ///< pages whose contents are in the image
  std::uint64_t message_buffer_size = 0;
  std::uint64_t file_size = 0;
};

/// A source of target physical memory: a crash dump, /dev/mem, bytes in memory.
///
/// Semantics (not checkable by the compiler):
/// * read_physical(pa, out) copies from pa onwards, crossing pages. It fails (with
///   errc::page_not_dumped, or a system error) when the *first* byte is unavailable, and
///   returns a short count when a *later* page is unavailable; the calling thread's
///   last_error_message() then says why it stopped.
/// * Every const member is safe to call from many threads at once.
/// * machine(), os() and page_size() never change after open.
template <class B>
concept memory_backend = std::movable<B> && requires(const B& cb, physaddr pa, std::span<std::byte> out) {
  { cb.machine() } noexcept -> std::same_as<machine>;
  { cb.os() } noexcept -> std::same_as<os_kind>;
  { cb.page_size() } noexcept -> std::same_as<std::size_t>;
  { cb.read_physical(pa, out) } noexcept -> std::same_as<result<std::size_t>>;
  { cb.info() } -> std::same_as<backend_info>;
};

/// A backend that reads kernel *virtual* addresses itself (FreeBSD's /dev/kmem, Linux's
/// /proc/kcore), so the handle skips the architecture's page walk.
template <class B>
concept virtual_backend = memory_backend<B> && requires(const B& cb, kvaddr va, std::span<std::byte> out) {
  { cb.read_virtual(va, out) } noexcept -> std::same_as<result<std::size_t>>;
};

/// A backend that can be written (live memory devices opened read_write).
template <class B>
concept writable_backend = memory_backend<B> && requires(const B& cb, std::uint64_t a, std::span<const std::byte> in) {
  { cb.write_at(a, in) } noexcept -> std::same_as<result<std::size_t>>;
  { cb.writable() } noexcept -> std::same_as<bool>;
};

/// A backend that keeps the target's kernel message buffer (FreeBSD minidump msgbuf).
template <class B>
concept message_buffer_backend = memory_backend<B> && requires(const B& cb) {
  { cb.message_buffer() } noexcept -> std::same_as<std::span<const std::byte>>;
};

/// What a minidump header says, whatever the architecture (specs/freebsd-libkvm.md §2).
struct minidump_header_info {
  std::uint32_t version = 0;
  std::uint64_t msgbufsize = 0, bitmapsize = 0, pmapsize = 0, dumpavailsize = 0;
  std::uint64_t kernbase = 0, dmapbase = 0, dmapend = 0;
  std::uint64_t msgbuf_off = 0, dump_avail_off = 0, bitmap_off = 0, pmap_off = 0, sparse_off = 0;
};

/// One rung up: a FreeBSD minidump, whose page-table section the architecture walks
/// (flat, not through physical memory) and whose sparse page array maps PA → file offset.
template <class B>
concept minidump_backend = memory_backend<B> && requires(const B& cb, std::size_t i, physaddr pa) {
  { cb.header() } noexcept -> std::same_as<const minidump_header_info&>;
  { cb.pmap_entry64(i) } noexcept -> std::same_as<std::optional<std::uint64_t>>;
  { cb.file_offset(pa) } noexcept -> std::same_as<std::optional<std::uint64_t>>;
  { cb.page_data(pa) } noexcept -> std::same_as<const std::byte*>;
  { cb.dumped_page_after(pa) } noexcept -> std::same_as<std::optional<physaddr>>;
};

/// A backend that knows the physical address of the top-level page table (CR3 on amd64)
/// and the paging mode, so the architecture can walk the hardware page tables through it.
template <class B>
concept page_table_backend = memory_backend<B> && requires(const B& cb) {
  { cb.page_table_root() } noexcept -> std::same_as<std::optional<physaddr>>;
  { cb.paging_levels() } noexcept -> std::same_as<unsigned>;
};

/// Page-table walking for one CPU architecture, through a backend.
///
/// translate(b, va) returns the physical address of va and how many bytes from there
/// are contiguous (at least 1, never past the mapping's end); it fails with
/// errc::unmapped_address or errc::page_not_dumped, recording a message that names va
/// and the level that failed. It must not allocate, and is called concurrently.
template <class A, class Backend>
concept translation_arch = memory_backend<Backend> && std::default_initializable<A> && std::movable<A> &&
                           requires(const A& a, const Backend& b, kvaddr va) {
                             { A::id } -> std::convertible_to<machine>;
                             { A::page_size } -> std::convertible_to<std::size_t>;
                             { a.translate(b, va) } noexcept -> std::same_as<result<translation>>;
                           };

/// An architecture that can enumerate the kernel's mappings (kvm_walk_pages).
/// walk_pages calls f(const page_info&) -> bool for each mapping, stopping when f returns
/// false; it returns true when it walked everything.
template <class A, class Backend>
concept page_walking_arch = translation_arch<A, Backend> && requires(const A& a, const Backend& b) {
  { a.walk_pages(b, [](const page_info&) { return true; }) } -> std::same_as<result<bool>>;
};

/// Symbol name → kernel virtual address. lookup fails with errc::symbol_not_found (or
/// errc::no_symbol_table when there is nothing to search). Safe to call concurrently.
template <class R>
concept symbol_resolver = std::movable<R> && requires(const R& r, std::string_view name) {
  { r.lookup(name) } -> std::same_as<result<symbol>>;
};

/// A resolver that can also answer without recording an error message: try_lookup gives
/// what lookup would return on success, nullopt where lookup fails. resolver::chain asks
/// its sources this way first, so that a name found by a later source costs no formatted
/// message from the earlier ones (bench/ workload (d)).
template <class R>
concept quiet_symbol_resolver = symbol_resolver<R> && requires(const R& r, std::string_view name) {
  { r.try_lookup(name) } -> std::same_as<std::optional<symbol>>;
};

/// A resolver that can be built from the kernel file alone (the `-N kernel` of the tools).
template <class R>
concept kernel_file_resolver = symbol_resolver<R> && requires(const char* path) {
  { R::open(path) } -> std::same_as<result<R>>;
};

}  // namespace kvmxx::inline KVMXX_ABI

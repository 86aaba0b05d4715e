// SPDX-License-Identifier: BSD-2-Clause
//
// FreeBSD minidump layouts (layout only: no I/O, no result<>).
// References: sys/amd64/include/minidump.h (struct minidumphdr);
//   specs/freebsd-libkvm.md §2.1 (common structure), §2.5 (amd64), §2.12 (versions).
#pragma once
#include <kvmxx/core/config.hpp>
#include <kvmxx/detail/byte_order.hpp>

#include <cstdint>

namespace kvmxx::inline KVMXX_ABI::format::minidump {

/// Every minidump starts with these 8 bytes (`_kvm_is_minidump`, §1.6).
inline constexpr char detect_magic[8] = {'m', 'i', 'n', 'i', 'd', 'u', 'm', 'p'};

/// amd64 (§2.5). Every field little-endian; the header occupies the first page.
namespace amd64 {
inline constexpr char magic[] = "minidump FreeBSD/amd64";  // 22 characters + NUL inside the 24-byte field
inline constexpr std::uint32_t min_version = 1;
inline constexpr std::uint32_t max_version = 3;
inline constexpr std::uint32_t dump_avail_version = 3;  // first version with the dump_avail section
inline constexpr std::uint64_t page_size = 4096;

struct header {
  char magic[24];                 // "minidump FreeBSD/amd64", NUL-terminated inside the field
  detail::le32 version;           // 1, 2 or 3
  detail::le32 msgbufsize;        // bytes of message buffer (section rounded up to a page)
  detail::le32 bitmapsize;        // bytes of page bitmap
  detail::le32 pmapsize;          // v1 "ptesize": flat PTE array; v2+: PD pages, one per GiB of KVA
  detail::le64 kernbase;          // v2+: VM_MIN_KERNEL_ADDRESS; v1: KERNBASE
  detail::le64 dmapbase;          // DMAP_MIN_ADDRESS
  detail::le64 dmapend;           // DMAP_MAX_ADDRESS
  detail::le32 dumpavailsize;     // v3 only: bytes of dump_avail (section rounded up)
  unsigned char pad[4];           // LP64 tail padding of the C struct
};
static_assert(sizeof(header) == 72);
static_assert(alignof(header) == 1);
static_assert(__builtin_offsetof(header, version) == 24);
static_assert(__builtin_offsetof(header, kernbase) == 40);
static_assert(__builtin_offsetof(header, dumpavailsize) == 64);

// PTE/PDE bits and frames (§2.5).
inline constexpr std::uint64_t pg_v = 0x001;
inline constexpr std::uint64_t pg_rw = 0x002;
inline constexpr std::uint64_t pg_ps = 0x080;
inline constexpr std::uint64_t pg_nx = std::uint64_t{1} << 63;
inline constexpr std::uint64_t pg_frame = 0x000ffffffffff000;
inline constexpr std::uint64_t pg_ps_frame = 0x000fffffffe00000;
inline constexpr std::uint64_t pg_1gb_frame = 0x000fffffc0000000;
inline constexpr unsigned pdr_shift = 21;  // NBPDR = 2 MiB
inline constexpr std::uint64_t nbpdr = std::uint64_t{1} << pdr_shift;
inline constexpr std::uint64_t npte_pg = 512;
}  // namespace amd64

/// One dump_avail pair: [start, end) in the kernel ELF's byte order (§2.1); the array
/// ends with a pair whose end is 0.
template <std::endian E>
struct dump_avail_pair {
  detail::packed_int<std::uint64_t, E> start;
  detail::packed_int<std::uint64_t, E> end;
};
static_assert(sizeof(dump_avail_pair<std::endian::little>) == 16);

}  // namespace kvmxx::inline KVMXX_ABI::format::minidump

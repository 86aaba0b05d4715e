// SPDX-License-Identifier: BSD-2-Clause
//
// The vocabulary shared by every layer: strong address types, machine and OS ids,
// translations, page descriptions for walk_pages, symbols, access modes.
#pragma once
#include <kvmxx/core/config.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kvmxx::inline KVMXX_ABI {

/// A kernel virtual address (libkvm's kvaddr_t). A distinct type so that a physical
/// address cannot be passed where a virtual one is expected.
enum class kvaddr : std::uint64_t {};
/// A physical address of the target machine (libkvm's kpaddr_t).
enum class physaddr : std::uint64_t {};

[[nodiscard]] constexpr std::uint64_t to_integer(kvaddr a) noexcept { return static_cast<std::uint64_t>(a); }
[[nodiscard]] constexpr std::uint64_t to_integer(physaddr a) noexcept { return static_cast<std::uint64_t>(a); }
/// Address arithmetic wraps modulo 2^64 like the CPU's; callers that must not wrap check.
[[nodiscard]] constexpr kvaddr operator+(kvaddr a, std::uint64_t d) noexcept { return kvaddr{to_integer(a) + d}; }
[[nodiscard]] constexpr physaddr operator+(physaddr a, std::uint64_t d) noexcept { return physaddr{to_integer(a) + d}; }

/// The target CPU architecture (what the kernel was built for, not the host).
enum class machine : std::uint8_t {
  unknown = 0,
  amd64,
  i386,
  aarch64,
  arm,
  riscv64,
  powerpc64,
  powerpc64le,
  mips,
};

/// FreeBSD's MACHINE_ARCH-style names ("amd64", "i386", "aarch64", …).
[[nodiscard]] constexpr std::string_view name_of(machine m) noexcept {
  switch (m) {
    case machine::unknown: return "unknown";
    case machine::amd64: return "amd64";
    case machine::i386: return "i386";
    case machine::aarch64: return "aarch64";
    case machine::arm: return "arm";
    case machine::riscv64: return "riscv64";
    case machine::powerpc64: return "powerpc64";
    case machine::powerpc64le: return "powerpc64le";
    case machine::mips: return "mips";
  }
  return "unknown";
}

/// The machine this code was compiled for: what libkvm calls "native" (kvm_native(3)).
inline constexpr machine host_machine =
#if defined(__x86_64__) || defined(_M_X64)
    machine::amd64;
#elif defined(__i386__) || defined(_M_IX86)
    machine::i386;
#elif defined(__aarch64__)
    machine::aarch64;
#elif defined(__arm__)
    machine::arm;
#elif defined(__riscv) && __riscv_xlen == 64
    machine::riscv64;
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
    machine::powerpc64le;
#elif defined(__powerpc64__)
    machine::powerpc64;
#elif defined(__mips__)
    machine::mips;
#else
    machine::unknown;
#endif

/// The operating system whose kernel produced the memory image.
enum class os_kind : std::uint8_t { unknown = 0, freebsd, linux_ };

[[nodiscard]] constexpr std::string_view name_of(os_kind o) noexcept {
  switch (o) {
    case os_kind::unknown: return "unknown";
    case os_kind::freebsd: return "FreeBSD";
    case os_kind::linux_: return "Linux";
  }
  return "unknown";
}

/// How a handle opens its memory source: libkvm's O_RDONLY / O_RDWR, without the
/// O_WRONLY the man page promises and the code rejects (specs/freebsd-libkvm.md §6.9).
enum class access : std::uint8_t { read_only, read_write };

/// The result of translating one virtual address (libkvm's ka_kvatop): where it lives
/// and how many bytes from there are physically contiguous within the same mapping, so
/// that read() translates once per page (or large page), not once per byte.
struct translation {
  physaddr pa{};
  std::size_t contiguous = 0;  ///< at least 1 on success
  /// 0, or a power of two B such that the whole B-aligned block of virtual addresses
  /// holding the address maps linearly (pa − va is the same for all of it): the size of the
  /// page-table leaf. Lets translation caches keep one entry per large page. An Arch that
  /// leaves it 0 is still correct, only cached per page.
  std::uint64_t block_size = 0;
  /// 0, or the physical address of the last-level page table that holds the leaf, when that
  /// table maps the whole 2 MiB-aligned block holding the address and the Arch can resume
  /// a walk from it (translate_leaf): caches then keep the table per block, and a page miss
  /// inside the block reads one entry instead of walking every level.
  std::uint64_t leaf_table = 0;
};

/// VM_PROT_* bits as kvm_walk_pages reports them.
enum class protection : std::uint8_t { none = 0, read = 1, write = 2, execute = 4 };
[[nodiscard]] constexpr protection operator|(protection a, protection b) noexcept {
  return protection{static_cast<std::uint8_t>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b))};
}
[[nodiscard]] constexpr bool has(protection set, protection bit) noexcept {
  return (static_cast<std::uint8_t>(set) & static_cast<std::uint8_t>(bit)) != 0;
}

/// One entry of walk_pages (libkvm's struct kvm_page, version 2).
struct page_info {
  physaddr pa{};                ///< kp_paddr: first byte of the mapping
  kvaddr kmap_va{};             ///< kp_kmap_vaddr: 0 when not mapped in the kernel map
  kvaddr dmap_va{};             ///< kp_dmap_vaddr: 0 when the architecture has no direct map
  protection prot{};            ///< kp_prot
  std::int64_t file_offset = -1;  ///< kp_offset: where the first byte is in the core; -1 if not dumped
  std::size_t length = 0;       ///< kp_len: bytes covered (a page, or a large page)
};

/// A resolved symbol. `type` follows nlist(3)'s n_type (N_TEXT|N_EXT, …); resolvers that do
/// not know it report N_DATA|N_EXT (7), as libkvm does for its resolver callback.
struct symbol {
  kvaddr value{};
  std::uint8_t type = 0;
};

/// nlist(3) n_type values (specs/freebsd-libkvm.md §1.1).
namespace nlist_type {
inline constexpr std::uint8_t undf = 0, abs = 2, text = 4, data = 6, bss = 8, fn = 0x1f, ext = 1;
}

/// One entry of a batch lookup — kvm_nlist2's struct kvm_nlist. `name` is read; `type`
/// and `value` are written: non-zero type and the address when found, 0/0 when not.
struct nlist_entry {
  std::string_view name;
  std::uint8_t type = 0;
  kvaddr value{};
};

}  // namespace kvmxx::inline KVMXX_ABI

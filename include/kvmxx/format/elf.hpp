// SPDX-License-Identifier: BSD-2-Clause
//
// ELF layouts for kernel executables and core files, for both classes and byte orders
// (layout only). References: the System V gABI; specs/freebsd-libkvm.md §1.6, §3, §7.
#pragma once
#include <kvmxx/core/config.hpp>
#include <kvmxx/detail/byte_order.hpp>

#include <bit>
#include <cstdint>
#include <type_traits>

namespace kvmxx::inline KVMXX_ABI::format::elf {

inline constexpr unsigned char elfmag[4] = {0x7f, 'E', 'L', 'F'};
// e_ident indexes and values
inline constexpr int ei_class = 4, ei_data = 5, ei_version = 6, ei_osabi = 7, ei_nident = 16;
inline constexpr unsigned char elfclass32 = 1, elfclass64 = 2;
inline constexpr unsigned char elfdata2lsb = 1, elfdata2msb = 2;
inline constexpr unsigned char elfosabi_standalone = 255;
// e_type
inline constexpr std::uint16_t et_rel = 1, et_exec = 2, et_dyn = 3, et_core = 4;
// e_machine
inline constexpr std::uint16_t em_386 = 3, em_mips = 8, em_ppc = 20, em_ppc64 = 21, em_arm = 40, em_x86_64 = 62,
                               em_aarch64 = 183, em_riscv = 243;
// section types and special indexes
inline constexpr std::uint32_t sht_progbits = 1, sht_symtab = 2, sht_strtab = 3, sht_nobits = 8;
inline constexpr std::uint16_t shn_undef = 0, shn_loreserve = 0xff00, shn_abs = 0xfff1, shn_common = 0xfff2,
                               shn_xindex = 0xffff;
inline constexpr std::uint64_t shf_write = 0x1, shf_alloc = 0x2, shf_execinstr = 0x4;
// symbol binding and type
inline constexpr unsigned char stb_local = 0, stb_global = 1, stb_weak = 2;
inline constexpr unsigned char stt_notype = 0, stt_object = 1, stt_func = 2, stt_section = 3, stt_file = 4;
// program headers
inline constexpr std::uint32_t pt_load = 1, pt_note = 4;

/// Selects field widths and byte order, like LLVM's ELFType<E, Is64>.
template <std::endian E, bool Is64>
struct flavour {
  static constexpr std::endian endian = E;
  static constexpr bool is64 = Is64;
  template <class T>
  using packed = detail::packed_int<T, E>;
  using half = packed<std::uint16_t>;
  using word = packed<std::uint32_t>;
  using xword = packed<std::uint64_t>;
  using addr = packed<std::conditional_t<Is64, std::uint64_t, std::uint32_t>>;
  using off = addr;
};

template <class F>
struct ehdr {
  unsigned char e_ident[16];  // magic, class, data, version, OS ABI
  typename F::half e_type;    // ET_EXEC for kernels (ET_DYN on powerpc), ET_CORE for cores
  typename F::half e_machine; // EM_*
  typename F::word e_version;
  typename F::addr e_entry;
  typename F::off e_phoff;    // program header table offset
  typename F::off e_shoff;    // section header table offset
  typename F::word e_flags;
  typename F::half e_ehsize;
  typename F::half e_phentsize;
  typename F::half e_phnum;
  typename F::half e_shentsize;
  typename F::half e_shnum;     // 0 with e_shoff != 0: the count is in section 0's sh_size
  typename F::half e_shstrndx;  // SHN_XINDEX: the index is in section 0's sh_link
};

template <class F>
struct shdr {
  typename F::word sh_name;
  typename F::word sh_type;
  typename F::addr sh_flags;  // 32 or 64 bits with the class
  typename F::addr sh_addr;
  typename F::off sh_offset;
  typename F::addr sh_size;
  typename F::word sh_link;   // for SHT_SYMTAB: the string table's section index
  typename F::word sh_info;   // for SHT_SYMTAB: index of the first non-local symbol
  typename F::addr sh_addralign;
  typename F::addr sh_entsize;
};

template <class F, bool Is64 = F::is64>
struct sym;
template <class F>
struct sym<F, true> {
  typename F::word st_name;
  unsigned char st_info;  // binding << 4 | type
  unsigned char st_other;
  typename F::half st_shndx;
  typename F::xword st_value;
  typename F::xword st_size;
};
template <class F>
struct sym<F, false> {
  typename F::word st_name;
  typename F::word st_value;
  typename F::word st_size;
  unsigned char st_info;
  unsigned char st_other;
  typename F::half st_shndx;
};

/// Program headers: the two classes order their fields differently.
template <class F, bool Is64 = F::is64>
struct phdr;
template <class F>
struct phdr<F, true> {
  typename F::word p_type;    // PT_LOAD, PT_NOTE, …
  typename F::word p_flags;
  typename F::off p_offset;   // file offset of the segment's bytes
  typename F::addr p_vaddr;   // kernel virtual address (a hint in vmcores; 0 in some QEMU dumps)
  typename F::addr p_paddr;   // physical address; all-ones where there is none (kcore vmalloc)
  typename F::xword p_filesz; // bytes in the file; less than p_memsz where makedumpfile excluded pages
  typename F::xword p_memsz;
  typename F::xword p_align;
};
template <class F>
struct phdr<F, false> {
  typename F::word p_type;
  typename F::off p_offset;
  typename F::addr p_vaddr;
  typename F::addr p_paddr;
  typename F::word p_filesz;
  typename F::word p_memsz;
  typename F::word p_flags;
  typename F::word p_align;
};

/// A note header; name and descriptor follow, each padded to 4 bytes.
template <class F>
struct nhdr {
  typename F::word n_namesz;  // including the terminating NUL
  typename F::word n_descsz;
  typename F::word n_type;
};

inline constexpr std::uint16_t pn_xnum = 0xffff;  // e_phnum overflow: the count is section 0's sh_info
inline constexpr std::uint32_t nt_prstatus = 1;

using le64_flavour = flavour<std::endian::little, true>;
using be32_flavour = flavour<std::endian::big, false>;
static_assert(sizeof(ehdr<le64_flavour>) == 64 && sizeof(ehdr<be32_flavour>) == 52);
static_assert(sizeof(shdr<le64_flavour>) == 64 && sizeof(shdr<be32_flavour>) == 40);
static_assert(sizeof(sym<le64_flavour>) == 24 && sizeof(sym<be32_flavour>) == 16);
static_assert(alignof(ehdr<le64_flavour>) == 1 && alignof(sym<be32_flavour>) == 1);
static_assert(sizeof(phdr<le64_flavour>) == 56 && sizeof(phdr<be32_flavour>) == 32);
static_assert(sizeof(nhdr<le64_flavour>) == 12);

}  // namespace kvmxx::inline KVMXX_ABI::format::elf

// kernel_elf_writer.hpp — test-fixture generator for small kernel ELF executables with a
// symbol table, for kvmxx's symbol resolver and kernel-file probe tests.
//
// Written from the kvmxx reference specification (/work/shared/specs/freebsd-libkvm.md,
// §1.6 backend probe: EI_CLASS / e_type / e_machine; §1.4 step 10: EI_DATA check; §1.8
// symbol lookup: .symtab only, n_type derived from the symbol's section; §7 constants)
// and the generic ELF object-file layout (Elf32/Elf64 Ehdr, Phdr, Shdr, Sym). It shares
// no code with the kvmxx library so it can serve as an independent check.
//
// Public API (namespace kvmxx_test):
//
//   enum class elf_class { elf32, elf64 };
//   enum class elf_endian { little, big };
//   enum class section_kind { text, data, bss, abs, undef, common };
//   enum class binding : std::uint8_t { local = 0, global = 1, weak = 2 };
//   namespace elf_const { em_*, et_*, stt_*, shn_*, elfosabi_* ... }
//
//   class kernel_elf_builder {
//    public:
//     static constexpr std::uint16_t text_index = 1, data_index = 2, bss_index = 3;
//     kernel_elf_builder(elf_class, elf_endian, std::uint16_t e_machine = 62 /*EM_X86_64*/,
//                        std::uint16_t e_type = 2 /*ET_EXEC*/);
//     kernel_elf_builder& symbol(std::string name, std::uint64_t value, section_kind kind,
//                                binding bind = binding::global,
//                                std::uint8_t stt = elf_const::stt_object, std::uint64_t size = 8);
//     kernel_elf_builder& section_address(section_kind /*text, data or bss*/, std::uint64_t addr);
//     kernel_elf_builder& strip();                       // no .symtab / .strtab
//     kernel_elf_builder& ei_osabi(std::uint8_t);        // default 9 (ELFOSABI_FREEBSD)
//     kernel_elf_builder& e_flags(std::uint32_t);        // e.g. EF_MIPS_ABI2 (0x20)
//     kernel_elf_builder& ident_byte(std::size_t index, std::uint8_t value);  // raw override
//     std::vector<std::byte> build() const;
//     static std::uint16_t shndx_of(section_kind);
//   };
//
// File layout: Elf header, two PT_LOAD program headers (.text R+X, .data R+W), .text
// contents (0xcc filler), .data contents (zero), .symtab, .strtab, .shstrtab, section
// header table. Sections: [0] null, [1] .text (PROGBITS, AX), [2] .data (PROGBITS, WA),
// [3] .bss (NOBITS, WA), [4] .symtab (sh_link = 5, sh_info = first non-local index,
// sh_entsize 24/16), [5] .strtab, [6] .shstrtab; e_shstrndx = 6. A stripped file keeps
// [0]..[3] and puts .shstrtab at [4]. Symbol 0 is the null symbol; local symbols follow
// in the order they were added, then global/weak ones in the order they were added.
// Loadable sections are placed at a file offset congruent to their address modulo the
// 4 KiB segment alignment, as a linker would.
//
// Section addresses: section_address() if given; otherwise the lowest value among that
// section's symbols (rounded down to 16); otherwise a default near the FreeBSD kernel
// base (ELF64 0xffffffff80200000..., ELF32 0xc0400000...). A section's size grows to
// cover every symbol of its kind that lies at or above its address (at least 16 bytes),
// so keep symbol values of one section close together to keep files small.
//
// Byte order and class follow the constructor for every field; ident_byte() overrides
// are applied last and do NOT change how the rest of the file is encoded (use them to
// forge e.g. an invalid EI_DATA or EI_CLASS). For ELF32, every value and address must
// fit in 32 bits (std::invalid_argument otherwise).

#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kvmxx_test {

enum class elf_class { elf32, elf64 };
enum class elf_endian { little, big };
// Where a symbol lives; decides st_shndx (see kernel_elf_builder::shndx_of).
enum class section_kind { text, data, bss, abs, undef, common };
enum class binding : std::uint8_t { local = 0, global = 1, weak = 2 };  // STB_*

// ELF constants (generic ELF, spec §7 for the machine/type numbers).
namespace elf_const {
inline constexpr std::uint16_t et_exec = 2, et_dyn = 3, et_core = 4;
inline constexpr std::uint16_t em_386 = 3, em_mips = 8, em_ppc = 20, em_ppc64 = 21, em_arm = 40,
                               em_x86_64 = 62, em_aarch64 = 183, em_riscv = 243;
inline constexpr std::uint8_t elfosabi_sysv = 0, elfosabi_freebsd = 9, elfosabi_standalone = 255;
inline constexpr std::uint8_t stt_notype = 0, stt_object = 1, stt_func = 2, stt_section = 3, stt_file = 4;
inline constexpr std::uint16_t shn_undef = 0, shn_abs = 0xfff1, shn_common = 0xfff2;
inline constexpr std::uint32_t sht_null = 0, sht_progbits = 1, sht_symtab = 2, sht_strtab = 3, sht_nobits = 8;
inline constexpr std::uint64_t shf_write = 1, shf_alloc = 2, shf_execinstr = 4;
inline constexpr std::uint32_t pt_load = 1;
inline constexpr std::uint32_t pf_x = 1, pf_w = 2, pf_r = 4;
// e_ident indices
inline constexpr std::size_t ei_class = 4, ei_data = 5, ei_version = 6, ei_osabi = 7, ei_abiversion = 8;
inline constexpr std::uint8_t elfclass32 = 1, elfclass64 = 2, elfdata2lsb = 1, elfdata2msb = 2, ev_current = 1;
}  // namespace elf_const

class kernel_elf_builder {
 public:
  static constexpr std::uint16_t text_index = 1, data_index = 2, bss_index = 3;

  kernel_elf_builder(elf_class cls, elf_endian endian, std::uint16_t e_machine = elf_const::em_x86_64,
                     std::uint16_t e_type = elf_const::et_exec)
      : class_(cls), endian_(endian), machine_(e_machine), type_(e_type) {}

  // Adds a symbol. kind picks st_shndx; stt is the STT_* type (st_info low nibble).
  kernel_elf_builder& symbol(std::string name, std::uint64_t value, section_kind kind,
                             binding bind = binding::global, std::uint8_t stt = elf_const::stt_object,
                             std::uint64_t size = 8) {
    check_fits(value);
    check_fits(size);
    symbols_.push_back(sym{std::move(name), value, size, kind, bind, stt});
    return *this;
  }

  kernel_elf_builder& section_address(section_kind kind, std::uint64_t addr) {
    if (kind != section_kind::text && kind != section_kind::data && kind != section_kind::bss)
      throw std::invalid_argument("section_address: only text, data and bss have addresses");
    check_fits(addr);
    section_addr_[static_cast<int>(kind)] = addr;
    return *this;
  }

  // A stripped kernel: no .symtab and no .strtab, so nothing resolves (spec §1.8).
  kernel_elf_builder& strip() {
    stripped_ = true;
    return *this;
  }

  kernel_elf_builder& ei_osabi(std::uint8_t v) {
    osabi_ = v;
    return *this;
  }

  kernel_elf_builder& e_flags(std::uint32_t v) {
    flags_ = v;
    return *this;
  }

  // Raw e_ident[index] = value, applied after everything else (index < 16).
  kernel_elf_builder& ident_byte(std::size_t index, std::uint8_t value) {
    if (index >= 16) throw std::invalid_argument("e_ident has 16 bytes");
    ident_overrides_[index] = value;
    return *this;
  }

  static std::uint16_t shndx_of(section_kind kind) {
    switch (kind) {
      case section_kind::text: return text_index;
      case section_kind::data: return data_index;
      case section_kind::bss: return bss_index;
      case section_kind::abs: return elf_const::shn_abs;
      case section_kind::undef: return elf_const::shn_undef;
      case section_kind::common: return elf_const::shn_common;
    }
    return elf_const::shn_undef;
  }

  std::vector<std::byte> build() const {
    namespace ec = elf_const;
    const bool is64 = class_ == elf_class::elf64;
    // Record sizes of the two classes.
    const std::uint64_t ehsize = is64 ? 64 : 52, phentsize = is64 ? 56 : 32, shentsize = is64 ? 64 : 40;
    const std::uint64_t symentsize = is64 ? 24 : 16, word = is64 ? 8 : 4;
    const std::uint64_t phnum = 2;

    // Loadable sections' addresses and sizes.
    const extent text = extent_of(section_kind::text);
    const extent data = extent_of(section_kind::data);
    const extent bss = extent_of(section_kind::bss);

    // Symbols: null, locals, then globals/weaks (sh_info = index of the first non-local).
    std::vector<const sym*> ordered;
    for (const sym& s : symbols_)
      if (s.bind == binding::local) ordered.push_back(&s);
    const std::uint64_t first_nonlocal = 1 + ordered.size();
    for (const sym& s : symbols_)
      if (s.bind != binding::local) ordered.push_back(&s);

    std::string strtab(1, '\0');
    std::vector<std::uint32_t> name_off;
    for (const sym* s : ordered) {
      name_off.push_back(static_cast<std::uint32_t>(strtab.size()));
      strtab += s->name;
      strtab.push_back('\0');
    }

    // Section-name string table.
    std::string shstrtab(1, '\0');
    const auto add_name = [&shstrtab](const char* n) {
      const auto off = static_cast<std::uint32_t>(shstrtab.size());
      shstrtab += n;
      shstrtab.push_back('\0');
      return off;
    };
    const std::uint32_t n_text = add_name(".text"), n_data = add_name(".data"), n_bss = add_name(".bss");
    const std::uint32_t n_symtab = stripped_ ? 0 : add_name(".symtab");
    const std::uint32_t n_strtab = stripped_ ? 0 : add_name(".strtab");
    const std::uint32_t n_shstrtab = add_name(".shstrtab");

    // File offsets.
    const auto congruent = [](std::uint64_t off, std::uint64_t addr) {
      return off + ((addr - off) % segment_align);  // smallest >= off with the same residue
    };
    const std::uint64_t phoff = ehsize;
    const std::uint64_t text_off = congruent(phoff + phnum * phentsize, text.addr);
    const std::uint64_t data_off = congruent(text_off + text.size, data.addr);
    const std::uint64_t bss_off = data_off + data.size;  // NOBITS: no bytes in the file
    std::uint64_t off = bss_off;
    const std::uint64_t nsyms = 1 + ordered.size();
    std::uint64_t symtab_off = 0, strtab_off = 0;
    if (!stripped_) {
      symtab_off = round_up(off, word);
      strtab_off = symtab_off + nsyms * symentsize;
      off = strtab_off + strtab.size();
    }
    const std::uint64_t shstrtab_off = off;
    const std::uint64_t shoff = round_up(shstrtab_off + shstrtab.size(), word);
    const std::uint64_t shnum = stripped_ ? 5 : 7;
    const std::uint64_t shstrndx = shnum - 1;
    const std::uint64_t file_size = shoff + shnum * shentsize;

    std::vector<std::byte> out(static_cast<std::size_t>(file_size));
    const bool big = endian_ == elf_endian::big;
    const auto put = [&out, big](std::uint64_t at, std::uint64_t value, std::size_t width) {
      for (std::size_t i = 0; i < width; ++i) {
        const std::size_t pos = big ? width - 1 - i : i;
        out[static_cast<std::size_t>(at) + pos] = static_cast<std::byte>((value >> (8 * i)) & 0xff);
      }
    };
    // e_ident
    const unsigned char magic[4] = {0x7f, 'E', 'L', 'F'};
    for (std::size_t i = 0; i < 4; ++i) out[i] = static_cast<std::byte>(magic[i]);
    out[ec::ei_class] = static_cast<std::byte>(is64 ? ec::elfclass64 : ec::elfclass32);
    out[ec::ei_data] = static_cast<std::byte>(big ? ec::elfdata2msb : ec::elfdata2lsb);
    out[ec::ei_version] = static_cast<std::byte>(ec::ev_current);
    out[ec::ei_osabi] = static_cast<std::byte>(osabi_);
    out[ec::ei_abiversion] = std::byte{0};

    // Elf{32,64}_Ehdr after e_ident: the two classes differ from e_entry on.
    put(16, type_, 2);     // e_type
    put(18, machine_, 2);  // e_machine
    put(20, 1, 4);         // e_version
    if (is64) {
      put(24, text.addr, 8);  // e_entry
      put(32, phoff, 8);      // e_phoff
      put(40, shoff, 8);      // e_shoff
      put(48, flags_, 4);     // e_flags
      put(52, ehsize, 2);
      put(54, phentsize, 2);
      put(56, phnum, 2);
      put(58, shentsize, 2);
      put(60, shnum, 2);
      put(62, shstrndx, 2);
    } else {
      put(24, text.addr, 4);
      put(28, phoff, 4);
      put(32, shoff, 4);
      put(36, flags_, 4);
      put(40, ehsize, 2);
      put(42, phentsize, 2);
      put(44, phnum, 2);
      put(46, shentsize, 2);
      put(48, shnum, 2);
      put(50, shstrndx, 2);
    }

    // Program headers: Elf64_Phdr puts p_flags second, Elf32_Phdr puts it seventh.
    const auto put_phdr = [&](std::uint64_t at, std::uint32_t pflags, std::uint64_t foff, std::uint64_t addr,
                              std::uint64_t size) {
      put(at, ec::pt_load, 4);
      if (is64) {
        put(at + 4, pflags, 4);
        put(at + 8, foff, 8);
        put(at + 16, addr, 8);   // p_vaddr
        put(at + 24, addr, 8);   // p_paddr
        put(at + 32, size, 8);   // p_filesz
        put(at + 40, size, 8);   // p_memsz
        put(at + 48, segment_align, 8);
      } else {
        put(at + 4, foff, 4);
        put(at + 8, addr, 4);
        put(at + 12, addr, 4);
        put(at + 16, size, 4);
        put(at + 20, size, 4);
        put(at + 24, pflags, 4);
        put(at + 28, segment_align, 4);
      }
    };
    put_phdr(phoff, ec::pf_r | ec::pf_x, text_off, text.addr, text.size);
    put_phdr(phoff + phentsize, ec::pf_r | ec::pf_w, data_off, data.addr, data.size);

    // .text filler: int3, so stray execution of the fixture would trap; .data stays zero.
    for (std::uint64_t i = 0; i < text.size; ++i) out[static_cast<std::size_t>(text_off + i)] = std::byte{0xcc};

    // .symtab: Elf32_Sym = name, value, size, info, other, shndx;
    //          Elf64_Sym = name, info, other, shndx, value, size. Entry 0 stays zero.
    if (!stripped_) {
      for (std::size_t i = 0; i < ordered.size(); ++i) {
        const sym& s = *ordered[i];
        const std::uint64_t at = symtab_off + (i + 1) * symentsize;
        const std::uint64_t info = (static_cast<std::uint64_t>(s.bind) << 4) | (s.stt & 0xf);
        put(at, name_off[i], 4);
        if (is64) {
          put(at + 4, info, 1);
          put(at + 5, 0, 1);  // st_other: STV_DEFAULT
          put(at + 6, shndx_of(s.kind), 2);
          put(at + 8, s.value, 8);
          put(at + 16, s.size, 8);
        } else {
          put(at + 4, s.value, 4);
          put(at + 8, s.size, 4);
          put(at + 12, info, 1);
          put(at + 13, 0, 1);
          put(at + 14, shndx_of(s.kind), 2);
        }
      }
      copy_string(out, strtab_off, strtab);
    }
    copy_string(out, shstrtab_off, shstrtab);

    // Section headers. Elf64_Shdr widens flags/addr/offset/size/addralign/entsize.
    const auto put_shdr = [&](std::uint64_t index, std::uint32_t name, std::uint32_t type, std::uint64_t sflags,
                              std::uint64_t addr, std::uint64_t foff, std::uint64_t size, std::uint32_t link,
                              std::uint32_t info, std::uint64_t align, std::uint64_t entsize) {
      const std::uint64_t at = shoff + index * shentsize;
      put(at, name, 4);
      put(at + 4, type, 4);
      if (is64) {
        put(at + 8, sflags, 8);
        put(at + 16, addr, 8);
        put(at + 24, foff, 8);
        put(at + 32, size, 8);
        put(at + 40, link, 4);
        put(at + 44, info, 4);
        put(at + 48, align, 8);
        put(at + 56, entsize, 8);
      } else {
        put(at + 8, sflags, 4);
        put(at + 12, addr, 4);
        put(at + 16, foff, 4);
        put(at + 20, size, 4);
        put(at + 24, link, 4);
        put(at + 28, info, 4);
        put(at + 32, align, 4);
        put(at + 36, entsize, 4);
      }
    };
    // [0] SHT_NULL stays zero.
    put_shdr(text_index, n_text, ec::sht_progbits, ec::shf_alloc | ec::shf_execinstr, text.addr, text_off, text.size,
             0, 0, text.align, 0);
    put_shdr(data_index, n_data, ec::sht_progbits, ec::shf_alloc | ec::shf_write, data.addr, data_off, data.size, 0,
             0, data.align, 0);
    put_shdr(bss_index, n_bss, ec::sht_nobits, ec::shf_alloc | ec::shf_write, bss.addr, bss_off, bss.size, 0, 0,
             bss.align, 0);
    if (!stripped_) {
      put_shdr(4, n_symtab, ec::sht_symtab, 0, 0, symtab_off, nsyms * symentsize, /*link=.strtab*/ 5,
               static_cast<std::uint32_t>(first_nonlocal), word, symentsize);
      put_shdr(5, n_strtab, ec::sht_strtab, 0, 0, strtab_off, strtab.size(), 0, 0, 1, 0);
    }
    put_shdr(shstrndx, n_shstrtab, ec::sht_strtab, 0, 0, shstrtab_off, shstrtab.size(), 0, 0, 1, 0);

    for (const auto& [index, value] : ident_overrides_) out[index] = static_cast<std::byte>(value);
    return out;
  }

 private:
  struct sym {
    std::string name;
    std::uint64_t value = 0, size = 0;
    section_kind kind = section_kind::abs;
    binding bind = binding::global;
    std::uint8_t stt = 0;
  };
  // PT_LOAD alignment; loadable sections sit at file offsets congruent to their address.
  static constexpr std::uint64_t segment_align = 0x1000;

  struct extent {
    std::uint64_t addr = 0, size = 0, align = 1;
  };

  static std::uint64_t round_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

  static void copy_string(std::vector<std::byte>& out, std::uint64_t at, const std::string& s) {
    for (std::size_t i = 0; i < s.size(); ++i)
      out[static_cast<std::size_t>(at) + i] = static_cast<std::byte>(static_cast<unsigned char>(s[i]));
  }

  void check_fits(std::uint64_t v) const {
    if (class_ == elf_class::elf32 && v > 0xffffffffull)
      throw std::invalid_argument("value does not fit an ELF32 field");
  }

  // Address and size of .text/.data/.bss (see the header comment for the rules).
  extent extent_of(section_kind kind) const {
    const bool is64 = class_ == elf_class::elf64;
    const int k = static_cast<int>(kind);
    extent e;
    std::optional<std::uint64_t> lowest;
    for (const sym& s : symbols_)
      if (s.kind == kind) lowest = std::min(lowest.value_or(s.value), s.value);
    if (const auto it = section_addr_.find(k); it != section_addr_.end())
      e.addr = it->second;
    else if (lowest)
      e.addr = *lowest & ~std::uint64_t{15};
    else
      e.addr = (is64 ? 0xffffffff80200000ull : 0xc0400000ull) + static_cast<std::uint64_t>(k) * 0x400000;
    std::uint64_t end = e.addr + 16;
    for (const sym& s : symbols_)
      if (s.kind == kind && s.value >= e.addr) end = std::max(end, s.value + s.size);
    e.size = round_up(end - e.addr, 16);
    if (!is64 && e.addr + e.size > 0x100000000ull) throw std::invalid_argument("ELF32 section beyond 4 GiB");
    e.align = e.addr % 16 == 0 ? 16 : 1;
    return e;
  }

  elf_class class_;
  elf_endian endian_;
  std::uint16_t machine_, type_;
  std::uint8_t osabi_ = elf_const::elfosabi_freebsd;
  std::uint32_t flags_ = 0;
  bool stripped_ = false;
  std::vector<sym> symbols_;
  std::map<int, std::uint64_t> section_addr_;
  std::map<std::size_t, std::uint8_t> ident_overrides_;
};

}  // namespace kvmxx_test

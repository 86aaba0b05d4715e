// elf_core_writer.hpp — test-fixture generator for Linux ELF crash dumps (vmcore, QEMU
// dump-guest-memory, makedumpfile -E), with an x86_64 page-table builder and an oracle.
//
// Written from the kvmxx reference specification (/work/shared/specs/linux-dumps.md §2
// program headers and notes, §4 VMCOREINFO, §8 QEMU dumps, §10.1 x86_64 page-table root;
// /work/shared/specs/real-linux-dumps.md §10 QEMU 7.2 quirks), the System V gABI (Elf32/
// Elf64 Ehdr, Phdr, Shdr, Nhdr, PN_XNUM) and the Intel SDM vol. 3A §4.5 (4- and 5-level
// paging). It shares no code with the kvmxx library (standard headers only) so that it
// can serve as an independent check of the library's parser.
//
// Public API (namespace kvmxx_test):
//
//   namespace elf_core_const { et_*, em_*, pt_*, nt_prstatus, pn_xnum, elfosabi_standalone,
//                              start_kernel_map }
//   enum class core_class { elf32, elf64 };
//   enum class core_endian { little, big };
//   enum class phys_state { present, excluded, absent };
//   struct qemu_cpu_state { version, descsz (default 440), gpr[18] (rax rbx rcx rdx rsi
//                           rdi rsp rbp r8..r15 rip rflags), cr[5] (CR0..CR4) };
//
//   class elf_core_builder {
//    public:
//     struct layout { phoff, phnum, shoff, shnum, notes_offset, notes_size, file_size,
//                     note_offsets[], phdr_offsets[], segment_phdr_index[],
//                     segment_offsets[], note_segment_offsets[] };
//     elf_core_builder(core_class = elf64, core_endian = little, std::uint64_t seed = 1);
//     // header
//     elf_core_builder& machine(std::uint16_t em);      // default EM_X86_64
//     elf_core_builder& type(std::uint16_t et);         // default ET_CORE
//     elf_core_builder& osabi(std::uint8_t);            // default 0 (ELFOSABI_NONE)
//     elf_core_builder& qemu_layout(bool = true);       // QEMU 7.2: section table (null +
//                                                       // .shstrtab) right after the Ehdr,
//                                                       // phdrs after it (e_phoff 192 for
//                                                       // ELF64), e_ehsize 8, strings at EOF
//     elf_core_builder& section_table(bool = true);     // a section table without the QEMU
//                                                       // placement: after the phdrs
//     elf_core_builder& pn_xnum(bool = true);           // e_phnum = 0xffff, section 0's
//                                                       // sh_info = the count (implies a
//                                                       // section table)
//     elf_core_builder& notes_per_segment(bool = true); // one PT_NOTE per note
//     // notes (kept in the order added)
//     elf_core_builder& vmcoreinfo(std::string text);   // "VMCOREINFO", type 0
//     elf_core_builder& prstatus(std::uint32_t pid, std::array<std::uint64_t, 27> regs);
//                                                       // "CORE"/NT_PRSTATUS, x86_64 layout:
//                                                       // 336 bytes, pr_pid @32, pr_reg @112
//     elf_core_builder& qemu_cpu(const qemu_cpu_state&);  // "QEMU", type 0, CR0..CR4 @392
//     elf_core_builder& note(std::string name, std::uint32_t type, std::vector<std::byte> desc);
//     // memory
//     std::size_t segment(std::uint64_t paddr, std::uint64_t memsz,
//                         std::optional<std::uint64_t> filesz = {},   // default memsz
//                         std::optional<std::uint64_t> vaddr = {});   // default paddr
//                         // -> index among segments; contents random from the seed
//     std::size_t phdr(std::uint32_t p_type, std::uint64_t paddr, std::uint64_t memsz,
//                      std::uint64_t filesz);           // any other p_type (e.g. PT_NULL)
//     elf_core_builder& file_gap(std::size_t bytes);    // junk between segment data (24)
//     elf_core_builder& write_phys(std::uint64_t pa, std::span<const std::byte>);
//     elf_core_builder& write_phys(std::uint64_t pa, std::string_view);
//                       // writes into EVERY segment whose file bytes hold pa (overlapping
//                       // segments describe the same memory); throws when a byte has none
//     elf_core_builder& write_segment(std::size_t index, std::uint64_t offset_in_segment,
//                                     std::span<const std::byte>);  // one segment only
//     // corruption hooks (applied to the built bytes; the layout is not affected)
//     elf_core_builder& override_phentsize(std::uint16_t);
//     elf_core_builder& override_phnum(std::uint16_t);
//     elf_core_builder& override_phoff(std::uint64_t);
//     elf_core_builder& override_shoff(std::uint64_t);
//     elf_core_builder& override_note_namesz(std::size_t note, std::uint32_t);
//     elf_core_builder& override_note_descsz(std::size_t note, std::uint32_t);
//     elf_core_builder& override_segment_offset(std::size_t segment, std::uint64_t);
//     elf_core_builder& override_segment_filesz(std::size_t segment, std::uint64_t);
//     elf_core_builder& override_segment_memsz(std::size_t segment, std::uint64_t);
//     elf_core_builder& override_note_segment(std::uint64_t offset, std::uint64_t filesz);
//     elf_core_builder& patch(std::uint64_t file_offset, std::vector<std::byte>);  // raw, last
//     // output
//     std::vector<std::byte> build() const;
//     layout file_layout() const;
//     // ground truth (from the model, never by parsing build()'s bytes). Physical lookups:
//     // among PT_LOADs with a physical address (p_paddr not all-ones) covering pa with
//     // [p_paddr, p_paddr + p_memsz), the one with the lowest p_paddr wins (the first in
//     // file order on a tie); pa is present when it lies in the winner's first p_filesz
//     // bytes, excluded when in its tail.
//     phys_state state(std::uint64_t pa) const;
//     std::optional<std::vector<std::byte>> read_phys(std::uint64_t pa, std::size_t len) const;
//     std::vector<std::byte> read_phys_prefix(std::uint64_t pa, std::size_t len) const;
//     std::uint64_t dumped_bytes() const;                 // present bytes, each counted once
//     std::vector<std::pair<std::uint64_t, std::uint64_t>> phys_ranges() const;  // merged
//     struct segment_info { paddr, vaddr, offset, filesz, memsz };
//     std::vector<segment_info> segments() const;          // the PT_LOADs, in file order
//     const std::vector<std::byte>& segment_bytes(std::size_t) const;
//     core_class elf_class() const; core_endian endian() const;
//     std::size_t note_count() const;
//     static std::string hex(std::uint64_t);              // "ffffffff81000000" (no 0x)
//   };
//
//   class amd64_page_tables {       // x86_64 4-/5-level tables inside dumped memory
//    public:
//     enum class walk_status { mapped, unmapped, table_not_dumped, non_canonical };
//     struct walk_result { walk_status status; std::uint64_t pa; std::uint64_t contiguous; };
//     struct mapping { std::uint64_t va, pa, size; };
//     amd64_page_tables(unsigned levels /*4|5*/, std::uint64_t pool_pa, std::uint64_t pool_size,
//                       std::uint64_t entry_bits = 0 /*OR'd into every entry: the SME C-bit*/,
//                       std::uint64_t seed = 7);
//     amd64_page_tables& map_4k(std::uint64_t va, std::uint64_t pa);
//     amd64_page_tables& map_2m(std::uint64_t va, std::uint64_t pa);
//     amd64_page_tables& map_1g(std::uint64_t va, std::uint64_t pa);
//     amd64_page_tables& noise(bool);                  // A/D/G/NX/PAT/software bits in leaves
//     amd64_page_tables& next_table_at(std::uint64_t pa);  // place the next new table there
//     void install(elf_core_builder&) const;           // writes the tables (where dumped)
//     std::uint64_t root() const; unsigned levels() const;
//     const std::vector<mapping>& mappings() const;
//     // oracle
//     std::optional<std::uint64_t> translate(std::uint64_t va) const;   // from mappings()
//     walk_result walk(const elf_core_builder&, std::uint64_t va) const; // what a walker
//                       // reading entries from the dump finds (table pages may be missing)
//     std::vector<std::byte> read_virt_prefix(const elf_core_builder&, std::uint64_t va,
//                                             std::size_t len) const;
//     std::optional<std::vector<std::byte>> read_virt(const elf_core_builder&,
//                                                     std::uint64_t va, std::size_t len) const;
//     static bool canonical(std::uint64_t va, unsigned levels);
//     // VMCOREINFO lines that give `root` as SYMBOL(<symbol>) − 0xffffffff80000000 +
//     // NUMBER(phys_base) (phys_base printed signed, as the kernel's %ld does).
//     static std::string root_vmcoreinfo(std::uint64_t root, std::int64_t phys_base,
//                                        const char* symbol = "init_top_pgt");
//   };
//
// File layout (build()): Ehdr; [QEMU: section table]; program headers (PT_NOTE first when
// there are notes, then every segment()/phdr() in the order added); [section table when
// not QEMU-placed]; the notes (each: Nhdr, name + NUL padded to 4, desc padded to 4);
// then each segment's p_filesz bytes, separated by file_gap() junk bytes (0xa5) so that a
// reader that runs from one segment's bytes into the next reads garbage; [.shstrtab data].
// Every field is encoded in the chosen byte order; page-table entries are x86 little
// endian. For ELF32 every address, offset and size must fit 32 bits (std::invalid_argument).

#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvmxx_test {

namespace elf_core_const {
inline constexpr std::uint16_t et_rel = 1, et_exec = 2, et_dyn = 3, et_core = 4;
inline constexpr std::uint16_t em_386 = 3, em_mips = 8, em_ppc = 20, em_ppc64 = 21, em_s390 = 22, em_arm = 40,
                               em_sparcv9 = 43, em_x86_64 = 62, em_aarch64 = 183, em_riscv = 243;
inline constexpr std::uint32_t pt_null = 0, pt_load = 1, pt_dynamic = 2, pt_note = 4, pt_phdr = 6;
inline constexpr std::uint32_t nt_prstatus = 1;
inline constexpr std::uint16_t pn_xnum = 0xffff;
inline constexpr std::uint8_t elfosabi_none = 0, elfosabi_freebsd = 9, elfosabi_standalone = 255;
inline constexpr std::uint64_t start_kernel_map = 0xffffffff80000000ull;  // __START_KERNEL_map
}  // namespace elf_core_const

enum class core_class { elf32, elf64 };
enum class core_endian { little, big };
enum class phys_state { present, excluded, absent };

/// QEMUCPUState version 1 (x86), specs/linux-dumps.md §8.
struct qemu_cpu_state {
  std::uint32_t version = 1;
  std::uint32_t descsz = 440;          // QEMU 7.2's descriptor size (the struct is 432)
  std::array<std::uint64_t, 18> gpr{};  // rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags
  std::array<std::uint64_t, 5> cr{};    // CR0..CR4, at descriptor offset 392
};

class elf_core_builder {
 public:
  struct layout {
    std::uint64_t phoff = 0, phnum = 0, shoff = 0, shnum = 0;
    std::uint64_t notes_offset = 0, notes_size = 0, file_size = 0;
    std::vector<std::uint64_t> note_offsets;          // file offset of each note's Nhdr
    std::vector<std::uint64_t> phdr_offsets;          // file offset of every program header
    std::vector<std::size_t> segment_phdr_index;      // program-header index of segment(i)
    std::vector<std::uint64_t> segment_offsets;       // p_offset of segment(i)
    std::vector<std::uint64_t> note_segment_offsets;  // p_offset of each PT_NOTE
  };
  struct segment_info {
    std::uint64_t paddr = 0, vaddr = 0, offset = 0, filesz = 0, memsz = 0;
  };

  explicit elf_core_builder(core_class c = core_class::elf64, core_endian e = core_endian::little,
                            std::uint64_t seed = 1)
      : class_(c), endian_(e), rng_(seed) {}

  // ---- header ----------------------------------------------------------------------
  elf_core_builder& machine(std::uint16_t em) {
    machine_ = em;
    return *this;
  }
  elf_core_builder& type(std::uint16_t et) {
    type_ = et;
    return *this;
  }
  elf_core_builder& osabi(std::uint8_t v) {
    osabi_ = v;
    return *this;
  }
  elf_core_builder& qemu_layout(bool on = true) {
    qemu_ = on;
    return *this;
  }
  elf_core_builder& section_table(bool on = true) {
    sections_ = on;
    return *this;
  }
  elf_core_builder& pn_xnum(bool on = true) {
    pn_xnum_ = on;
    return *this;
  }
  elf_core_builder& notes_per_segment(bool on = true) {
    split_notes_ = on;
    return *this;
  }

  // ---- notes -----------------------------------------------------------------------
  elf_core_builder& note(std::string name, std::uint32_t type, std::vector<std::byte> desc) {
    notes_.push_back({std::move(name), type, std::move(desc), std::nullopt, std::nullopt});
    return *this;
  }
  elf_core_builder& vmcoreinfo(std::string text) {
    std::vector<std::byte> d(text.size());
    std::memcpy(d.data(), text.data(), text.size());
    return note("VMCOREINFO", 0, std::move(d));
  }
  /// x86_64 elf_prstatus (specs/linux-dumps.md §2.2): 336 bytes, pr_pid at 32, pr_reg (27
  /// u64: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags
  /// rsp ss fs_base gs_base ds es fs gs) at 112. The other fields hold junk (0x5a).
  elf_core_builder& prstatus(std::uint32_t pid, const std::array<std::uint64_t, 27>& regs) {
    std::vector<std::byte> d(336, std::byte{0x5a});
    put(d, 32, pid, 4);
    for (std::size_t r = 0; r < 27; ++r) put(d, 112 + 8 * r, regs[r], 8);
    return note("CORE", elf_core_const::nt_prstatus, std::move(d));
  }
  /// QEMUCPUState: version u32 @0, size u32 @4, 18 u64 registers @8, 10 segment
  /// descriptors (24 bytes each) @152, cr[5] @392; the rest (to descsz) is junk.
  elf_core_builder& qemu_cpu(const qemu_cpu_state& s) {
    if (s.descsz < 8) throw std::invalid_argument("qemu_cpu: descsz < 8");
    std::vector<std::byte> d(std::max<std::size_t>(s.descsz, 432), std::byte{0x3c});
    put(d, 0, s.version, 4);
    put(d, 4, s.descsz, 4);
    for (std::size_t r = 0; r < 18; ++r) put(d, 8 + 8 * r, s.gpr[r], 8);
    for (std::size_t r = 0; r < 5; ++r) put(d, 392 + 8 * r, s.cr[r], 8);
    d.resize(s.descsz);
    return note("QEMU", 0, std::move(d));
  }

  // ---- memory ----------------------------------------------------------------------
  std::size_t segment(std::uint64_t paddr, std::uint64_t memsz, std::optional<std::uint64_t> filesz = {},
                      std::optional<std::uint64_t> vaddr = {}) {
    seg s;
    s.type = elf_core_const::pt_load;
    s.paddr = paddr;
    s.vaddr = vaddr.value_or(paddr);
    s.memsz = memsz;
    s.filesz = filesz.value_or(memsz);
    if (s.filesz > s.memsz) throw std::invalid_argument("segment: filesz > memsz (use override_segment_filesz)");
    check_fits(s.paddr, "p_paddr");
    check_fits(s.vaddr, "p_vaddr");
    check_fits(s.memsz, "p_memsz");
    s.data.resize(static_cast<std::size_t>(s.filesz));
    fill_random(s.data);
    segs_.push_back(std::move(s));
    load_index_.push_back(segs_.size() - 1);
    return load_index_.size() - 1;
  }
  /// A program header of another type (PT_NULL, PT_DYNAMIC, …) with filesz junk bytes.
  std::size_t phdr(std::uint32_t p_type, std::uint64_t paddr, std::uint64_t memsz, std::uint64_t filesz) {
    seg s;
    s.type = p_type;
    s.paddr = s.vaddr = paddr;
    s.memsz = memsz;
    s.filesz = filesz;
    s.data.assign(static_cast<std::size_t>(filesz), std::byte{0x77});
    segs_.push_back(std::move(s));
    return segs_.size() - 1;
  }
  elf_core_builder& file_gap(std::size_t bytes) {
    gap_ = bytes;
    return *this;
  }
  elf_core_builder& write_phys(std::uint64_t pa, std::span<const std::byte> bytes) {
    for (std::size_t k = 0; k < bytes.size(); ++k) {
      bool any = false;
      for (std::size_t i : load_index_) {
        seg& s = segs_[i];
        if (!physical(s) || pa + k < s.paddr || pa + k - s.paddr >= s.filesz) continue;
        s.data[static_cast<std::size_t>(pa + k - s.paddr)] = bytes[k];
        any = true;
      }
      if (!any) throw std::invalid_argument("write_phys: 0x" + hex(pa + k) + " is in no segment's file bytes");
    }
    return *this;
  }
  elf_core_builder& write_phys(std::uint64_t pa, std::string_view text) {
    return write_phys(pa, std::span<const std::byte>(reinterpret_cast<const std::byte*>(text.data()), text.size()));
  }
  elf_core_builder& write_segment(std::size_t index, std::uint64_t off, std::span<const std::byte> bytes) {
    seg& s = segs_.at(load_index_.at(index));
    if (off > s.data.size() || bytes.size() > s.data.size() - off)
      throw std::invalid_argument("write_segment: past the segment's file bytes");
    std::copy(bytes.begin(), bytes.end(), s.data.begin() + static_cast<std::ptrdiff_t>(off));
    return *this;
  }
  /// Whether the file bytes of pa exist in at least one segment (write_phys would work).
  [[nodiscard]] bool file_backed(std::uint64_t pa) const {
    for (std::size_t i : load_index_) {
      const seg& s = segs_[i];
      if (physical(s) && pa >= s.paddr && pa - s.paddr < s.filesz) return true;
    }
    return false;
  }

  // ---- corruption hooks --------------------------------------------------------------
  elf_core_builder& override_phentsize(std::uint16_t v) {
    ov_phentsize_ = v;
    return *this;
  }
  elf_core_builder& override_phnum(std::uint16_t v) {
    ov_phnum_ = v;
    return *this;
  }
  elf_core_builder& override_phoff(std::uint64_t v) {
    ov_phoff_ = v;
    return *this;
  }
  elf_core_builder& override_shoff(std::uint64_t v) {
    ov_shoff_ = v;
    return *this;
  }
  elf_core_builder& override_note_namesz(std::size_t note, std::uint32_t v) {
    notes_.at(note).namesz = v;
    return *this;
  }
  elf_core_builder& override_note_descsz(std::size_t note, std::uint32_t v) {
    notes_.at(note).descsz = v;
    return *this;
  }
  elf_core_builder& override_segment_offset(std::size_t segment, std::uint64_t v) {
    segs_.at(load_index_.at(segment)).ov_offset = v;
    return *this;
  }
  elf_core_builder& override_segment_filesz(std::size_t segment, std::uint64_t v) {
    segs_.at(load_index_.at(segment)).ov_filesz = v;
    return *this;
  }
  elf_core_builder& override_segment_memsz(std::size_t segment, std::uint64_t v) {
    segs_.at(load_index_.at(segment)).ov_memsz = v;
    return *this;
  }
  /// p_offset and p_filesz of the (first) PT_NOTE.
  elf_core_builder& override_note_segment(std::uint64_t offset, std::uint64_t filesz) {
    ov_note_seg_ = std::make_pair(offset, filesz);
    return *this;
  }
  elf_core_builder& patch(std::uint64_t file_offset, std::vector<std::byte> bytes) {
    patches_.emplace_back(file_offset, std::move(bytes));
    return *this;
  }

  // ---- output ------------------------------------------------------------------------
  [[nodiscard]] layout file_layout() const {
    layout l;
    const bool is64 = class_ == core_class::elf64;
    const std::uint64_t ehsize = is64 ? 64 : 52, phentsize = is64 ? 56 : 32, shentsize = is64 ? 64 : 40;
    const bool with_sections = sections_ || qemu_ || pn_xnum_;
    const std::size_t note_segs = notes_.empty() ? 0 : (split_notes_ ? notes_.size() : 1);
    l.phnum = note_segs + segs_.size();
    l.shnum = with_sections ? 2 : 0;
    std::uint64_t pos = ehsize;
    if (with_sections && qemu_) {
      l.shoff = pos;
      pos += l.shnum * shentsize;
    }
    l.phoff = pos;
    for (std::uint64_t i = 0; i < l.phnum; ++i) l.phdr_offsets.push_back(pos + i * phentsize);
    pos += l.phnum * phentsize;
    if (with_sections && !qemu_) {
      l.shoff = pos;
      pos += l.shnum * shentsize;
    }
    l.notes_offset = pos;
    for (const auto& n : notes_) {
      if (split_notes_ || l.note_segment_offsets.empty()) l.note_segment_offsets.push_back(pos);
      l.note_offsets.push_back(pos);
      pos += 12 + round4(n.name.size() + 1) + round4(n.desc.size());
    }
    l.notes_size = pos - l.notes_offset;
    std::size_t load = 0;
    for (std::size_t i = 0; i < segs_.size(); ++i) {
      if (i > 0) pos += gap_;
      if (segs_[i].type == elf_core_const::pt_load && load < load_index_.size() && load_index_[load] == i) {
        l.segment_offsets.push_back(pos);
        l.segment_phdr_index.push_back(note_segs + i);
        ++load;
      }
      pos += segs_[i].data.size();
    }
    if (with_sections) pos += shstrtab().size();
    l.file_size = pos;
    return l;
  }

  [[nodiscard]] std::vector<std::byte> build() const {
    const layout l = file_layout();
    const bool is64 = class_ == core_class::elf64;
    const bool with_sections = l.shnum != 0;
    std::vector<std::byte> f(static_cast<std::size_t>(l.file_size));
    // Ehdr
    const unsigned char ident[16] = {0x7f, 'E', 'L', 'F', static_cast<unsigned char>(is64 ? 2 : 1),
                                     static_cast<unsigned char>(endian_ == core_endian::little ? 1 : 2), 1, osabi_};
    std::memcpy(f.data(), ident, 16);
    const std::uint64_t phnum_field = pn_xnum_ ? elf_core_const::pn_xnum : l.phnum;
    if (!pn_xnum_ && l.phnum >= elf_core_const::pn_xnum)
      throw std::invalid_argument("build: 0xffff or more program headers need pn_xnum()");
    put(f, 16, type_, 2);
    put(f, 18, machine_, 2);
    put(f, 20, 1, 4);  // e_version
    if (is64) {
      put(f, 24, 0, 8);  // e_entry
      put(f, 32, l.phoff, 8);
      put(f, 40, l.shoff, 8);
      put(f, 48, 0, 4);
      put(f, 52, qemu_ ? 8 : 64, 2);  // QEMU 7.2 writes sizeof(void*) (real-linux-dumps.md §10)
      put(f, 54, 56, 2);
      put(f, 56, phnum_field, 2);
      put(f, 58, with_sections ? 64 : 0, 2);
      put(f, 60, l.shnum, 2);
      put(f, 62, with_sections ? 1 : 0, 2);
    } else {
      put(f, 24, 0, 4);
      put(f, 28, l.phoff, 4);
      put(f, 32, l.shoff, 4);
      put(f, 36, 0, 4);
      put(f, 40, qemu_ ? 4 : 52, 2);
      put(f, 42, 32, 2);
      put(f, 44, phnum_field, 2);
      put(f, 46, with_sections ? 40 : 0, 2);
      put(f, 48, l.shnum, 2);
      put(f, 50, with_sections ? 1 : 0, 2);
    }
    // Sections: [0] null (sh_info = the real e_phnum under PN_XNUM), [1] .shstrtab.
    if (with_sections) {
      const auto strtab = shstrtab();
      const std::uint64_t str_off = l.file_size - strtab.size();
      std::memcpy(f.data() + str_off, strtab.data(), strtab.size());
      const std::uint64_t s0 = l.shoff, s1 = l.shoff + (is64 ? 64 : 40);
      if (is64) {
        put(f, s0 + 44, pn_xnum_ ? l.phnum : 0, 4);
        put(f, s1 + 0, 1, 4);  // sh_name ".shstrtab"
        put(f, s1 + 4, 3, 4);  // SHT_STRTAB
        put(f, s1 + 24, str_off, 8);
        put(f, s1 + 32, strtab.size(), 8);
        put(f, s1 + 48, 1, 8);
      } else {
        put(f, s0 + 28, pn_xnum_ ? l.phnum : 0, 4);
        put(f, s1 + 0, 1, 4);
        put(f, s1 + 4, 3, 4);
        put(f, s1 + 16, str_off, 4);
        put(f, s1 + 20, strtab.size(), 4);
        put(f, s1 + 32, 1, 4);
      }
    }
    // Notes.
    for (std::size_t i = 0; i < notes_.size(); ++i) {
      const auto& n = notes_[i];
      const std::uint64_t o = l.note_offsets[i];
      put(f, o, n.namesz.value_or(static_cast<std::uint32_t>(n.name.size() + 1)), 4);
      put(f, o + 4, n.descsz.value_or(static_cast<std::uint32_t>(n.desc.size())), 4);
      put(f, o + 8, n.type, 4);
      std::memcpy(f.data() + o + 12, n.name.data(), n.name.size());
      if (!n.desc.empty())
        std::memcpy(f.data() + o + 12 + round4(n.name.size() + 1), n.desc.data(), n.desc.size());
    }
    // Program headers: the PT_NOTE(s), then the segments.
    std::size_t ph = 0;
    if (!notes_.empty()) {
      if (split_notes_) {
        for (std::size_t i = 0; i < notes_.size(); ++i) {
          const std::uint64_t end = i + 1 < notes_.size() ? l.note_offsets[i + 1] : l.notes_offset + l.notes_size;
          put_phdr(f, l.phdr_offsets[ph++], elf_core_const::pt_note, l.note_offsets[i], 0, 0,
                   end - l.note_offsets[i], end - l.note_offsets[i]);
        }
      } else {
        const auto [off, size] = ov_note_seg_.value_or(std::make_pair(l.notes_offset, l.notes_size));
        put_phdr(f, l.phdr_offsets[ph++], elf_core_const::pt_note, off, 0, 0, size, size);
      }
    }
    std::uint64_t pos = l.notes_offset + l.notes_size;
    for (std::size_t i = 0; i < segs_.size(); ++i) {
      const seg& s = segs_[i];
      if (i > 0) {
        std::fill_n(f.begin() + static_cast<std::ptrdiff_t>(pos), gap_, std::byte{0xa5});
        pos += gap_;
      }
      if (!s.data.empty()) std::memcpy(f.data() + pos, s.data.data(), s.data.size());
      put_phdr(f, l.phdr_offsets[ph++], s.type, s.ov_offset.value_or(pos), s.vaddr, s.paddr,
               s.ov_filesz.value_or(s.filesz), s.ov_memsz.value_or(s.memsz));
      pos += s.data.size();
    }
    // Header overrides, then raw patches.
    if (ov_phentsize_) put(f, is64 ? 54 : 42, *ov_phentsize_, 2);
    if (ov_phnum_) put(f, is64 ? 56 : 44, *ov_phnum_, 2);
    if (ov_phoff_) put(f, is64 ? 32 : 28, *ov_phoff_, is64 ? 8 : 4);
    if (ov_shoff_) put(f, is64 ? 40 : 32, *ov_shoff_, is64 ? 8 : 4);
    for (const auto& [off, bytes] : patches_) {
      if (off > f.size() || bytes.size() > f.size() - off) throw std::invalid_argument("patch: past the end of the file");
      std::copy(bytes.begin(), bytes.end(), f.begin() + static_cast<std::ptrdiff_t>(off));
    }
    return f;
  }

  // ---- ground truth ------------------------------------------------------------------
  [[nodiscard]] phys_state state(std::uint64_t pa) const {
    const seg* w = winner(pa);
    if (w == nullptr) return phys_state::absent;
    return pa - w->paddr < w->filesz ? phys_state::present : phys_state::excluded;
  }
  /// The bytes of [pa, pa + len) up to the first byte that is not present.
  [[nodiscard]] std::vector<std::byte> read_phys_prefix(std::uint64_t pa, std::size_t len) const {
    std::vector<std::byte> out;
    out.reserve(len);
    while (out.size() < len) {
      const std::uint64_t cur = pa + out.size();
      if (cur < pa) break;  // wrapped
      const seg* w = winner(cur);
      if (w == nullptr || cur - w->paddr >= w->filesz) break;
      const std::uint64_t in = cur - w->paddr;
      // The winner stays the winner while it covers (a lower-starting segment that does
      // not cover cur has ended already).
      const std::uint64_t n = std::min<std::uint64_t>(w->filesz - in, len - out.size());
      out.insert(out.end(), w->data.begin() + static_cast<std::ptrdiff_t>(in),
                 w->data.begin() + static_cast<std::ptrdiff_t>(in + n));
    }
    return out;
  }
  [[nodiscard]] std::optional<std::vector<std::byte>> read_phys(std::uint64_t pa, std::size_t len) const {
    auto v = read_phys_prefix(pa, len);
    if (v.size() != len) return std::nullopt;
    return v;
  }
  /// Merged [start, end) of the physical memory the PT_LOADs describe (excluded tails too).
  [[nodiscard]] std::vector<std::pair<std::uint64_t, std::uint64_t>> phys_ranges() const {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> v;
    for (std::size_t i : load_index_) {
      const seg& s = segs_[i];
      if (physical(s) && s.memsz > 0) v.emplace_back(s.paddr, s.paddr + s.memsz);
    }
    std::sort(v.begin(), v.end());
    std::vector<std::pair<std::uint64_t, std::uint64_t>> m;
    for (const auto& r : v) {
      if (!m.empty() && r.first <= m.back().second) m.back().second = std::max(m.back().second, r.second);
      else m.push_back(r);
    }
    return m;
  }
  /// Present bytes of physical memory, each address counted once.
  [[nodiscard]] std::uint64_t dumped_bytes() const {
    // Boundaries: every segment start, data end and end; the state is constant between.
    std::vector<std::uint64_t> cuts;
    for (std::size_t i : load_index_) {
      const seg& s = segs_[i];
      if (!physical(s) || s.memsz == 0) continue;
      cuts.push_back(s.paddr);
      cuts.push_back(s.paddr + s.filesz);
      cuts.push_back(s.paddr + s.memsz);
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    std::uint64_t total = 0;
    for (std::size_t k = 0; k + 1 < cuts.size(); ++k)
      if (state(cuts[k]) == phys_state::present) total += cuts[k + 1] - cuts[k];
    return total;
  }
  [[nodiscard]] std::vector<segment_info> segments() const {
    const layout l = file_layout();
    std::vector<segment_info> v;
    for (std::size_t k = 0; k < load_index_.size(); ++k) {
      const seg& s = segs_[load_index_[k]];
      v.push_back({s.paddr, s.vaddr, s.ov_offset.value_or(l.segment_offsets[k]), s.ov_filesz.value_or(s.filesz),
                   s.ov_memsz.value_or(s.memsz)});
    }
    return v;
  }
  [[nodiscard]] const std::vector<std::byte>& segment_bytes(std::size_t i) const {
    return segs_.at(load_index_.at(i)).data;
  }
  [[nodiscard]] core_class elf_class() const { return class_; }
  [[nodiscard]] core_endian endian() const { return endian_; }
  [[nodiscard]] std::size_t note_count() const { return notes_.size(); }

  [[nodiscard]] static std::string hex(std::uint64_t v) {
    static const char digits[] = "0123456789abcdef";
    std::string s;
    do {
      s.insert(s.begin(), digits[v & 15]);
      v >>= 4;
    } while (v != 0);
    return s;
  }
  static std::uint64_t round4(std::uint64_t v) { return (v + 3) & ~std::uint64_t{3}; }

 private:
  struct seg {
    std::uint32_t type = 1;
    std::uint64_t paddr = 0, vaddr = 0, memsz = 0, filesz = 0;
    std::vector<std::byte> data;
    std::optional<std::uint64_t> ov_offset, ov_filesz, ov_memsz;
  };
  struct note_rec {
    std::string name;
    std::uint32_t type;
    std::vector<std::byte> desc;
    std::optional<std::uint32_t> namesz, descsz;
  };

  bool physical(const seg& s) const {
    const std::uint64_t none = class_ == core_class::elf64 ? ~std::uint64_t{0} : 0xffffffffull;
    return s.type == elf_core_const::pt_load && s.paddr != none;
  }
  // The PT_LOAD that holds pa: the lowest p_paddr among those covering it, the first in
  // file order on a tie (specs/linux-dumps.md §2.1: overlapping ranges hold the same memory).
  const seg* winner(std::uint64_t pa) const {
    const seg* w = nullptr;
    for (std::size_t i : load_index_) {
      const seg& s = segs_[i];
      if (!physical(s) || pa < s.paddr || pa - s.paddr >= s.memsz) continue;
      if (w == nullptr || s.paddr < w->paddr) w = &s;
    }
    return w;
  }
  void check_fits(std::uint64_t v, const char* what) const {
    if (class_ == core_class::elf32 && v > 0xffffffffull)
      throw std::invalid_argument(std::string("ELF32 core: ") + what + " does not fit 32 bits");
  }
  void fill_random(std::vector<std::byte>& v) {
    std::size_t i = 0;
    while (i < v.size()) {
      std::uint64_t r = rng_();
      for (int k = 0; k < 8 && i < v.size(); ++k, ++i, r >>= 8) v[i] = static_cast<std::byte>(r & 0xff);
    }
  }
  void put(std::vector<std::byte>& f, std::uint64_t off, std::uint64_t value, std::size_t width) const {
    if (off > f.size() || width > f.size() - off) throw std::logic_error("elf_core_builder: write past the buffer");
    for (std::size_t i = 0; i < width; ++i) {
      const std::size_t shift = endian_ == core_endian::little ? 8 * i : 8 * (width - 1 - i);
      f[static_cast<std::size_t>(off) + i] = static_cast<std::byte>((value >> shift) & 0xff);
    }
  }
  void put_phdr(std::vector<std::byte>& f, std::uint64_t o, std::uint32_t type, std::uint64_t offset,
                std::uint64_t vaddr, std::uint64_t paddr, std::uint64_t filesz, std::uint64_t memsz) const {
    if (class_ == core_class::elf64) {
      put(f, o + 0, type, 4);
      put(f, o + 4, 7, 4);  // PF_R|PF_W|PF_X
      put(f, o + 8, offset, 8);
      put(f, o + 16, vaddr, 8);
      put(f, o + 24, paddr, 8);
      put(f, o + 32, filesz, 8);
      put(f, o + 40, memsz, 8);
      put(f, o + 48, 0, 8);
    } else {
      if (offset > 0xffffffffull || filesz > 0xffffffffull || memsz > 0xffffffffull)
        throw std::invalid_argument("ELF32 core: a program header field does not fit 32 bits");
      put(f, o + 0, type, 4);
      put(f, o + 4, offset, 4);
      put(f, o + 8, vaddr, 4);
      put(f, o + 12, paddr, 4);
      put(f, o + 16, filesz, 4);
      put(f, o + 20, memsz, 4);
      put(f, o + 24, 7, 4);
      put(f, o + 28, 0, 4);
    }
  }
  static std::string shstrtab() { return std::string("\0.shstrtab\0", 11); }

  core_class class_;
  core_endian endian_;
  std::mt19937_64 rng_;
  std::uint16_t machine_ = elf_core_const::em_x86_64;
  std::uint16_t type_ = elf_core_const::et_core;
  std::uint8_t osabi_ = elf_core_const::elfosabi_none;
  bool qemu_ = false, sections_ = false, pn_xnum_ = false, split_notes_ = false;
  std::size_t gap_ = 24;
  std::vector<note_rec> notes_;
  std::vector<seg> segs_;               // every program header but the notes, in file order
  std::vector<std::size_t> load_index_;  // segs_ index of segment(k)
  std::optional<std::uint16_t> ov_phentsize_, ov_phnum_;
  std::optional<std::uint64_t> ov_phoff_, ov_shoff_;
  std::optional<std::pair<std::uint64_t, std::uint64_t>> ov_note_seg_;
  std::vector<std::pair<std::uint64_t, std::vector<std::byte>>> patches_;
};

/// x86_64 page tables (Intel SDM vol. 3A §4.5) built inside the physical memory of an
/// elf_core_builder, with the mappings kept aside as the translation oracle.
class amd64_page_tables {
 public:
  enum class walk_status { mapped, unmapped, table_not_dumped, non_canonical };
  struct walk_result {
    walk_status status = walk_status::unmapped;
    std::uint64_t pa = 0;          // when mapped
    std::uint64_t contiguous = 0;  // bytes to the end of the mapping, when mapped
  };
  struct mapping {
    std::uint64_t va, pa, size;
  };

  static constexpr std::uint64_t present = 1, rw = 2, user = 4, accessed = 0x20, dirty = 0x40, ps = 0x80,
                                 global = 0x100, pat_large = 0x1000, nx = std::uint64_t{1} << 63;

  amd64_page_tables(unsigned levels, std::uint64_t pool_pa, std::uint64_t pool_size, std::uint64_t entry_bits = 0,
                    std::uint64_t seed = 7)
      : levels_(levels), pool_next_(pool_pa), pool_end_(pool_pa + pool_size), bits_(entry_bits), rng_(seed) {
    if (levels != 4 && levels != 5) throw std::invalid_argument("amd64_page_tables: 4 or 5 levels");
    if (pool_pa % 4096 != 0) throw std::invalid_argument("amd64_page_tables: pool not page aligned");
    root_ = new_table();
  }

  amd64_page_tables& map_4k(std::uint64_t va, std::uint64_t pa) { return map(va, pa, 0); }
  amd64_page_tables& map_2m(std::uint64_t va, std::uint64_t pa) { return map(va, pa, 1); }
  amd64_page_tables& map_1g(std::uint64_t va, std::uint64_t pa) { return map(va, pa, 2); }
  amd64_page_tables& noise(bool on) {
    noise_ = on;
    return *this;
  }
  amd64_page_tables& next_table_at(std::uint64_t pa) {
    forced_ = pa;
    return *this;
  }

  /// Writes every table into the builder's physical memory; tables whose page is not in
  /// any segment's file bytes are left out (they read as not dumped).
  void install(elf_core_builder& b) const {
    for (const auto& [pa, t] : tables_) {
      std::vector<std::byte> page(4096);
      for (std::size_t i = 0; i < 512; ++i)
        for (std::size_t k = 0; k < 8; ++k) page[8 * i + k] = static_cast<std::byte>((t[i] >> (8 * k)) & 0xff);
      for (std::uint64_t off = 0; off < 4096; off += 8)
        if (b.file_backed(pa + off)) b.write_phys(pa + off, std::span<const std::byte>(page.data() + off, 8));
    }
  }

  [[nodiscard]] std::uint64_t root() const { return root_; }
  [[nodiscard]] unsigned levels() const { return levels_; }
  [[nodiscard]] const std::vector<mapping>& mappings() const { return maps_; }
  [[nodiscard]] std::size_t table_count() const { return tables_.size(); }

  [[nodiscard]] static bool canonical(std::uint64_t va, unsigned levels) {
    const unsigned bits = levels == 5 ? 57 : 48;
    const std::uint64_t upper = va >> (bits - 1);
    return upper == 0 || upper == (~std::uint64_t{0} >> (bits - 1));
  }

  [[nodiscard]] std::optional<std::uint64_t> translate(std::uint64_t va) const {
    if (!canonical(va, levels_)) return std::nullopt;
    for (const auto& m : maps_)
      if (va >= m.va && va - m.va < m.size) return m.pa + (va - m.va);
    return std::nullopt;
  }

  /// What a hardware-style walker that reads each entry from the dump finds.
  [[nodiscard]] walk_result walk(const elf_core_builder& b, std::uint64_t va) const {
    walk_result r;
    if (!canonical(va, levels_)) {
      r.status = walk_status::non_canonical;
      return r;
    }
    std::uint64_t table = root_;
    for (unsigned level = levels_; level-- > 0;) {
      const unsigned shift = 12 + 9 * level;
      const std::size_t idx = static_cast<std::size_t>((va >> shift) & 511);
      if (!b.read_phys(table + 8 * idx, 8)) {
        r.status = walk_status::table_not_dumped;
        return r;
      }
      const auto it = tables_.find(table);
      const std::uint64_t e = it == tables_.end() ? 0 : it->second[idx];
      if ((e & present) == 0) {
        r.status = walk_status::unmapped;
        return r;
      }
      if (level == 0 || (e & ps) != 0) {
        const auto m = translate(va);
        if (!m) throw std::logic_error("amd64_page_tables: the tables map an address the mapping list does not");
        const std::uint64_t size = std::uint64_t{1} << shift;
        r.status = walk_status::mapped;
        r.pa = *m;
        r.contiguous = size - (va & (size - 1));
        return r;
      }
      table = next_of(e);
    }
    throw std::logic_error("amd64_page_tables: walk fell off the bottom");
  }

  [[nodiscard]] std::vector<std::byte> read_virt_prefix(const elf_core_builder& b, std::uint64_t va,
                                                        std::size_t len) const {
    std::vector<std::byte> out;
    while (out.size() < len) {
      const std::uint64_t cur = va + out.size();
      const auto w = walk(b, cur);
      if (w.status != walk_status::mapped) break;
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(w.contiguous, len - out.size()));
      const auto bytes = b.read_phys_prefix(w.pa, n);
      out.insert(out.end(), bytes.begin(), bytes.end());
      if (bytes.size() < n) break;
    }
    return out;
  }
  [[nodiscard]] std::optional<std::vector<std::byte>> read_virt(const elf_core_builder& b, std::uint64_t va,
                                                                std::size_t len) const {
    auto v = read_virt_prefix(b, va, len);
    if (v.size() != len) return std::nullopt;
    return v;
  }

  /// VMCOREINFO lines giving `root` the way the kernel does on x86_64 (§4.1, §10.1).
  [[nodiscard]] static std::string root_vmcoreinfo(std::uint64_t root, std::int64_t phys_base,
                                                   const char* symbol = "init_top_pgt") {
    const std::uint64_t sym = root - static_cast<std::uint64_t>(phys_base) + elf_core_const::start_kernel_map;
    return std::string("SYMBOL(") + symbol + ")=" + elf_core_builder::hex(sym) + "\nNUMBER(phys_base)=" +
           std::to_string(phys_base) + "\n";
  }

 private:
  static constexpr std::uint64_t frame_mask = 0x000ffffffffff000ull;

  std::uint64_t next_of(std::uint64_t e) const { return (e & ~bits_) & frame_mask; }

  std::uint64_t new_table() {
    std::uint64_t pa;
    if (forced_) {
      pa = *forced_;
      forced_.reset();
    } else {
      if (pool_next_ + 4096 > pool_end_) throw std::length_error("amd64_page_tables: table pool exhausted");
      pa = pool_next_;
      pool_next_ += 4096;
    }
    if (pa % 4096 != 0 || tables_.count(pa) != 0) throw std::invalid_argument("amd64_page_tables: bad table address");
    tables_[pa].fill(0);
    return pa;
  }

  std::uint64_t leaf_noise() {
    if (!noise_) return 0;
    const std::uint64_t r = rng_();
    std::uint64_t bits = 0;
    if (r & 1) bits |= accessed;
    if (r & 2) bits |= dirty;
    if (r & 4) bits |= global;
    if (r & 8) bits |= nx;
    if (r & 16) bits |= std::uint64_t{0x5} << 52;  // software-available bits 52..58
    if (r & 32) bits |= user;
    return bits;
  }

  // level_of_leaf: 0 = 4 KiB PTE, 1 = 2 MiB PDE, 2 = 1 GiB PDPTE.
  amd64_page_tables& map(std::uint64_t va, std::uint64_t pa, unsigned leaf) {
    const std::uint64_t size = std::uint64_t{1} << (12 + 9 * leaf);
    if (va % size != 0 || pa % size != 0) throw std::invalid_argument("amd64_page_tables: misaligned mapping");
    if (!canonical(va, levels_)) throw std::invalid_argument("amd64_page_tables: non-canonical va");
    for (const auto& m : maps_)
      if (va < m.va + m.size && m.va < va + size) throw std::invalid_argument("amd64_page_tables: overlapping mapping");
    std::uint64_t table = root_;
    for (unsigned level = levels_; level-- > leaf;) {
      const unsigned shift = 12 + 9 * level;
      const std::size_t idx = static_cast<std::size_t>((va >> shift) & 511);
      if (level == leaf) {
        std::uint64_t e = (pa | present | rw | bits_ | leaf_noise());
        if (leaf > 0) {
          e |= ps;
          if (noise_ && (rng_() & 1)) e |= pat_large;  // PAT of a large page: bit 12, not an address bit
        }
        tables_[table][idx] = e;
        break;
      }
      std::uint64_t& e = tables_[table][idx];
      if ((e & present) != 0 && (e & ps) != 0) throw std::invalid_argument("amd64_page_tables: inside a large page");
      if ((e & present) == 0) {
        const std::uint64_t next = new_table();
        tables_[table][idx] = next | present | rw | bits_ | (noise_ ? accessed : 0);
      }
      table = next_of(tables_[table][idx]);
    }
    maps_.push_back({va, pa, size});
    return *this;
  }

  unsigned levels_;
  std::uint64_t pool_next_, pool_end_, bits_;
  std::mt19937_64 rng_;
  bool noise_ = false;
  std::optional<std::uint64_t> forced_;
  std::uint64_t root_ = 0;
  std::map<std::uint64_t, std::array<std::uint64_t, 512>> tables_;
  std::vector<mapping> maps_;
};

}  // namespace kvmxx_test

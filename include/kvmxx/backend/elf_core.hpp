// SPDX-License-Identifier: BSD-2-Clause
//
// Linux ELF crash dumps as a physical address space: /proc/vmcore copies, makedumpfile's
// ELF output and QEMU's dump-guest-memory files (paging=false and paging=true), ELF32 and
// ELF64 in either byte order. References: specs/linux-dumps.md §2 (program headers,
// notes), §4 (VMCOREINFO), §8 (QEMU), §10 (page-table root); real-linux-dumps.md §10.
//
// * Physical lookups index p_paddr; p_vaddr is only a hint (QEMU writes p_vaddr = p_paddr
//   or virtual addresses with paging=true). Segments may overlap (a kernel-text segment
//   over a RAM segment): the one starting lower wins, the bytes being the same memory.
// * p_filesz < p_memsz marks excluded pages (makedumpfile): they read as
//   errc::page_not_dumped, never as silent zeros.
// * Program headers are read where e_phoff says (QEMU 7.2 puts them at 192), and
//   e_phnum = PN_XNUM takes the count from section 0's sh_info (QEMU paging=true).
// * The page-table root comes from VMCOREINFO (init_top_pgt converted with phys_base, no
//   recursive translation), else from CR3 in QEMU's per-CPU note (PCID and PTI bits
//   masked); the paging depth from NUMBER(pgtable_l5_enabled), else CR4.LA57. i386:
//   swapper_pg_dir − PAGE_OFFSET, else CR3; PAE (3 levels) or not (2) from
//   CONFIG_X86_PAE=y, else CR4.PAE (finish_i386). aarch64:
//   swapper_pg_dir − kimage_voffset, VA bits from TCR_EL1_T1SZ/VA_BITS (finish_aarch64).
//
// Not validated: that segments describe real memory, that notes other than the ones
// parsed here are well formed beyond their headers.
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/detail/byte_order.hpp>
#include <kvmxx/detail/checked.hpp>
#include <kvmxx/detail/elf_reader.hpp>
#include <kvmxx/detail/mmap.hpp>
#include <kvmxx/format/elf.hpp>
#include <kvmxx/os/linux/vmcoreinfo.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvmxx::inline KVMXX_ABI {

/// One PT_LOAD, decoded.
struct elf_segment {
  std::uint64_t paddr = 0, vaddr = 0, offset = 0, filesz = 0, memsz = 0;
};

/// The registers of one CPU as the dump's notes give them (x86_64 layout; i386 dumps
/// fill gpr[0..16] in the i386 pr_reg order, see elf_core; absent values are nullopt).
struct cpu_registers {
  std::uint32_t pid = 0;                       ///< NT_PRSTATUS pr_pid (QEMU: cpu index + 1)
  std::array<std::uint64_t, 27> gpr{};         ///< pr_reg: r15 r14 … gs (specs/linux-dumps.md §2.2)
  bool has_gpr = false;
  std::optional<std::array<std::uint64_t, 5>> cr;  ///< CR0–CR4 from QEMU's note
};

}  // namespace kvmxx::inline KVMXX_ABI

namespace kvmxx::inline KVMXX_ABI::backend {

/// \code
///   auto core = kvmxx::backend::elf_core::open("vmcore");
///   if (core) std::printf("%s\n", std::string(core.value().vmcoreinfo().osrelease().value_or("?")).c_str());
/// \endcode
/// Immutable after open: every member is safe from many threads.
class elf_core {
 public:
  /// An ELF ET_CORE file that is not a FreeBSD full dump (those carry EI_OSABI
  /// ELFOSABI_STANDALONE, specs/freebsd-libkvm.md §3) — so the two probes are exclusive.
  [[nodiscard]] static bool probe(std::span<const std::byte> head) noexcept {
    namespace elf = format::elf;
    if (head.size() < 20 || std::memcmp(head.data(), elf::elfmag, 4) != 0) return false;
    const auto data = std::to_integer<unsigned char>(head[elf::ei_data]);
    const auto cls = std::to_integer<unsigned char>(head[elf::ei_class]);
    if ((cls != elf::elfclass32 && cls != elf::elfclass64) || (data != elf::elfdata2lsb && data != elf::elfdata2msb))
      return false;
    if (std::to_integer<unsigned char>(head[elf::ei_osabi]) == elf::elfosabi_standalone) return false;
    const std::uint16_t type = data == elf::elfdata2lsb ? detail::load<std::uint16_t>(head.data() + 16)
                                                        : detail::load<std::uint16_t, std::endian::big>(head.data() + 16);
    return type == elf::et_core;
  }

  /// \errors errc::not_a_dump, errc::truncated, errc::corrupt, errc::unsupported_format
  /// (an e_machine kvmxx has no architecture for), system errors naming the path
  [[nodiscard]] static result<elf_core> open(const char* path) {
    KVMXX_TRY(image, detail::file_image::open(path));
    return parse(std::move(image));
  }
  /// Parses bytes the caller keeps alive as long as the backend.
  [[nodiscard]] static result<elf_core> from_bytes(std::span<const std::byte> bytes, std::string name = "<memory>") {
    return parse(detail::file_image::borrow(bytes, std::move(name)));
  }

  elf_core(elf_core&&) noexcept = default;
  elf_core& operator=(elf_core&&) noexcept = default;
  elf_core(const elf_core&) = delete;
  elf_core& operator=(const elf_core&) = delete;

  [[nodiscard]] kvmxx::machine machine() const noexcept { return machine_; }
  [[nodiscard]] os_kind os() const noexcept { return os_kind::linux_; }
  [[nodiscard]] std::size_t page_size() const noexcept { return page_size_; }
  [[nodiscard]] const char* path() const noexcept { return image_.path(); }
  [[nodiscard]] const linux_::vmcoreinfo& vmcoreinfo() const noexcept { return vmcoreinfo_; }
  [[nodiscard]] const std::vector<elf_segment>& segments() const noexcept { return segments_; }
  [[nodiscard]] const std::vector<cpu_registers>& cpus() const noexcept { return cpus_; }
  [[nodiscard]] bool from_qemu() const noexcept { return qemu_; }

  /// The physical address of the kernel's top-level page table (see the file comment).
  [[nodiscard]] std::optional<physaddr> page_table_root() const noexcept { return root_; }
  [[nodiscard]] unsigned paging_levels() const noexcept { return levels_; }
  /// Bits to clear from page-table entries before taking the frame (the SME C-bit).
  [[nodiscard]] std::uint64_t pte_clear_mask() const noexcept { return sme_mask_; }
  /// aarch64: the VA width the root table covers and the physical address width
  /// (finish_aarch64); 0 on other machines.
  [[nodiscard]] unsigned va_bits() const noexcept { return va_bits_; }
  [[nodiscard]] unsigned pa_bits() const noexcept { return pa_bits_; }
  /// KASLR's KERNELOFFSET from VMCOREINFO (0 when absent).
  [[nodiscard]] std::int64_t kerndisp() const noexcept { return kerndisp_; }

  /// The host address of the whole target page holding pa, when all of its bytes are in
  /// the file contiguously (the translation cache keeps these); nullptr otherwise.
  /// Pages of 4 KiB — the smallest page of every Arch, the translation cache's unit — even
  /// when the target's pages are larger (aarch64 with a 16/64 KiB granule).
  [[nodiscard]] const std::byte* mapped_page(physaddr pa) const noexcept {
    constexpr std::uint64_t unit = 4096;
    const std::uint64_t page = to_integer(pa) & ~(unit - 1);
    const interval* iv = find(page);
    if (iv == nullptr || page + unit > iv->data_end || page + unit < page) return nullptr;
    return image_.data() + iv->file_offset + (page - iv->start);
  }

  /// The host address of [pa, pa + len) when all of its bytes are in the file contiguously
  /// (one merged interval); nullptr otherwise.
  [[nodiscard]] const std::byte* mapped_range(physaddr pa, std::uint64_t len) const noexcept {
    const std::uint64_t start = to_integer(pa);
    const interval* iv = find(start);
    if (iv == nullptr || len == 0 || start + len < start || start + len > iv->data_end) return nullptr;
    return image_.data() + iv->file_offset + (start - iv->start);
  }

  [[nodiscard]] result<std::size_t> read_physical(physaddr pa, std::span<std::byte> out) const noexcept {
    std::size_t done = 0;
    std::uint64_t addr = to_integer(pa);
    while (done < out.size()) {
      const interval* iv = find(addr);
      const char* why = nullptr;
      if (iv == nullptr) why = "is in no PT_LOAD segment";
      else if (addr >= iv->data_end) why = "was excluded from the dump (p_filesz < p_memsz)";
      if (KVMXX_UNLIKELY(why != nullptr)) {
        auto ec = detail::fail(errc::page_not_dumped, "%s: physical address 0x%llx %s", path(),
                               static_cast<unsigned long long>(addr), why);
        if (done == 0) return ec;
        return done;
      }
      const std::uint64_t avail = iv->data_end - addr;
      const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(avail, out.size() - done));
      std::memcpy(out.data() + done, image_.data() + iv->file_offset + (addr - iv->start), chunk);
      done += chunk;
      addr += chunk;
      if (addr == 0) break;
    }
    return done;
  }

  [[nodiscard]] backend_info info() const {
    backend_info i;
    i.format = qemu_ ? "Linux ELF core (QEMU dump-guest-memory)" : "Linux ELF core";
    i.arch = machine_;
    i.os = os_kind::linux_;
    i.page_size = page_size_;
    std::uint64_t bytes = 0;
    for (const auto& iv : intervals_) {
      if (!i.ranges.empty() && to_integer(i.ranges.back().end) == iv.start) i.ranges.back().end = physaddr{iv.end};
      else i.ranges.push_back({physaddr{iv.start}, physaddr{iv.end}});
      bytes += iv.data_end - iv.start;
    }
    i.dumped_pages = bytes / page_size_;
    i.file_size = image_.size();
    return i;
  }

  [[nodiscard]] result<void> close() noexcept {
    image_ = detail::file_image{};
    intervals_.clear();
    return success();
  }

 private:
  elf_core() = default;

  struct interval {  // a non-overlapping piece of physical memory and where its bytes are
    std::uint64_t start, end, data_end;  // [start, data_end) in the file, [data_end, end) excluded
    std::uint64_t file_offset;           // of `start`
  };

  const interval* find(std::uint64_t pa) const noexcept {
    auto it = std::upper_bound(intervals_.begin(), intervals_.end(), pa,
                               [](std::uint64_t a, const interval& iv) { return a < iv.start; });
    if (it == intervals_.begin()) return nullptr;
    --it;
    return pa < it->end ? &*it : nullptr;
  }

  static kvmxx::machine machine_of(std::uint16_t em, bool is64, bool big) noexcept {
    namespace elf = format::elf;
    switch (em) {
      case elf::em_x86_64: return machine::amd64;
      case elf::em_386: return machine::i386;
      case elf::em_aarch64: return machine::aarch64;
      case elf::em_arm: return machine::arm;
      case elf::em_riscv: return is64 ? machine::riscv64 : machine::unknown;
      case elf::em_ppc64: return big ? machine::powerpc64 : machine::powerpc64le;
      case elf::em_mips: return machine::mips;
      default: return machine::unknown;
    }
  }

  template <class Fl>
  result<void> load(Fl, std::span<const std::byte> bytes, const char* path) {
    namespace elf = format::elf;
    using phdr_t = elf::phdr<Fl>;
    const auto h = detail::load_struct<elf::ehdr<Fl>>(bytes.data());
    const std::uint64_t phoff = h.e_phoff;
    std::uint64_t phnum = h.e_phnum;
    if (phnum == elf::pn_xnum) {
      KVMXX_TRY(secs, detail::elf_sections<Fl>::read(bytes, path));
      if (secs.count() == 0)
        return detail::fail(errc::corrupt, "%s: e_phnum is PN_XNUM but there is no section 0 to hold the count", path);
      phnum = secs.at(0).sh_info;
    }
    if (phnum == 0) return detail::fail(errc::corrupt, "%s: ELF core without program headers", path);
    if (h.e_phentsize != sizeof(phdr_t))
      return detail::fail(errc::corrupt, "%s: e_phentsize is %u, expected %zu", path, unsigned{h.e_phentsize},
                          sizeof(phdr_t));
    const auto table = detail::checked_mul(phnum, sizeof(phdr_t));
    if (!table || !detail::fits(phoff, *table, bytes.size()))
      return detail::fail(errc::truncated, "%s: %llu program headers at offset 0x%llx run past end of file (size 0x%zx)",
                          path, static_cast<unsigned long long>(phnum), static_cast<unsigned long long>(phoff),
                          bytes.size());
    segments_.reserve(static_cast<std::size_t>(phnum));
    for (std::uint64_t k = 0; k < phnum; ++k) {
      const auto p = detail::load_struct<phdr_t>(bytes.data() + phoff + k * sizeof(phdr_t));
      const std::uint64_t off = p.p_offset, filesz = p.p_filesz, memsz = p.p_memsz;
      if (p.p_type == elf::pt_note) {
        if (!detail::fits(off, filesz, bytes.size()))
          return detail::fail(errc::truncated, "%s: PT_NOTE %llu (0x%llx bytes at 0x%llx) runs past end of file", path,
                              static_cast<unsigned long long>(k), static_cast<unsigned long long>(filesz),
                              static_cast<unsigned long long>(off));
        KVMXX_TRYV(read_notes(Fl{}, bytes.subspan(static_cast<std::size_t>(off), static_cast<std::size_t>(filesz)),
                              off, path));
        continue;
      }
      if (p.p_type != elf::pt_load) continue;
      if (filesz > memsz)
        return detail::fail(errc::corrupt, "%s: PT_LOAD %llu has p_filesz 0x%llx > p_memsz 0x%llx", path,
                            static_cast<unsigned long long>(k), static_cast<unsigned long long>(filesz),
                            static_cast<unsigned long long>(memsz));
      if (!detail::fits(off, filesz, bytes.size()))
        return detail::fail(errc::truncated, "%s: PT_LOAD %llu (0x%llx bytes at offset 0x%llx) runs past end of file "
                            "(size 0x%zx)", path, static_cast<unsigned long long>(k),
                            static_cast<unsigned long long>(filesz), static_cast<unsigned long long>(off), bytes.size());
      std::uint64_t paddr = p.p_paddr, vaddr = p.p_vaddr;
      if constexpr (!Fl::is64) {
        if (paddr == 0xffffffffu) paddr = ~std::uint64_t{0};
      }
      if (memsz == 0) continue;
      segments_.push_back({paddr, vaddr, off, filesz, memsz});
    }
    return success();
  }

  template <class Fl>
  result<void> read_notes(Fl, std::span<const std::byte> notes, std::uint64_t base, const char* path) {
    namespace elf = format::elf;
    std::size_t pos = 0;
    while (pos + sizeof(elf::nhdr<Fl>) <= notes.size()) {
      const auto n = detail::load_struct<elf::nhdr<Fl>>(notes.data() + pos);
      const std::uint64_t namesz = n.n_namesz, descsz = n.n_descsz;
      const std::uint64_t name_off = pos + sizeof(elf::nhdr<Fl>);
      const std::uint64_t desc_off = name_off + ((namesz + 3) & ~std::uint64_t{3});
      const std::uint64_t next = desc_off + ((descsz + 3) & ~std::uint64_t{3});
      if (namesz > notes.size() || descsz > notes.size() || next > notes.size() + 3 ||
          desc_off + descsz > notes.size()) {
        if (namesz == 0 && descsz == 0) break;  // zero padding at the end of the segment
        return detail::fail(errc::truncated, "%s: note at offset 0x%llx (name 0x%llx, desc 0x%llx bytes) runs past its "
                            "PT_NOTE segment", path, static_cast<unsigned long long>(base + pos),
                            static_cast<unsigned long long>(namesz), static_cast<unsigned long long>(descsz));
      }
      std::string_view name(reinterpret_cast<const char*>(notes.data() + name_off), static_cast<std::size_t>(namesz));
      while (!name.empty() && name.back() == '\0') name.remove_suffix(1);
      const auto desc = notes.subspan(static_cast<std::size_t>(desc_off), static_cast<std::size_t>(descsz));
      const std::uint32_t type = n.n_type;
      if (name == "VMCOREINFO") {
        vmcoreinfo_ = linux_::vmcoreinfo::parse(std::string_view(reinterpret_cast<const char*>(desc.data()), desc.size()));
      } else if (name == "CORE" && type == elf::nt_prstatus && Fl::is64 && desc.size() >= 112 + 27 * 8) {
        cpu_registers cpu;
        cpu.pid = detail::load<std::uint32_t, Fl::endian>(desc.data() + 32);
        for (std::size_t r = 0; r < 27; ++r) cpu.gpr[r] = detail::load<std::uint64_t, Fl::endian>(desc.data() + 112 + r * 8);
        cpu.has_gpr = true;
        cpus_.push_back(cpu);
      } else if (name == "CORE" && type == elf::nt_prstatus && desc.size() == 144) {
        // i386 elf_prstatus (144 bytes, in ELF32 and ELF64 containers alike): pr_pid at
        // 24, then 17 u32 registers at 72 — ebx ecx edx esi edi ebp eax ds es fs gs
        // orig_eax eip cs eflags esp ss — kept in gpr[0..16] in that order (§2.2).
        cpu_registers cpu;
        cpu.pid = detail::load<std::uint32_t, Fl::endian>(desc.data() + 24);
        for (std::size_t r = 0; r < 17; ++r) cpu.gpr[r] = detail::load<std::uint32_t, Fl::endian>(desc.data() + 72 + r * 4);
        cpu.has_gpr = true;
        cpus_.push_back(cpu);
      } else if (name == "CORE" && (type == 6 /* NT_AUXV */ || type == 0x46494c45 /* NT_FILE */)) {
        process_notes_ = true;
      } else if (name == "QEMU" && type == 0 && desc.size() >= 432) {
        // QEMUCPUState (x86): CR0–CR4 at 392 (specs/linux-dumps.md §8). The k-th QEMU note
        // belongs to the k-th CPU.
        qemu_ = true;
        std::array<std::uint64_t, 5> cr{};
        for (std::size_t r = 0; r < 5; ++r) cr[r] = detail::load<std::uint64_t, Fl::endian>(desc.data() + 392 + r * 8);
        if (qemu_cpu_ >= cpus_.size()) cpus_.resize(qemu_cpu_ + 1);
        cpus_[qemu_cpu_++].cr = cr;
      }
      if (next >= notes.size()) break;
      pos = static_cast<std::size_t>(next);
    }
    return success();
  }

  // Builds the non-overlapping physical index and decides the translation facts.
  void finish() {
    std::vector<const elf_segment*> by_pa;
    for (const auto& s : segments_)
      if (s.paddr != ~std::uint64_t{0}) by_pa.push_back(&s);
    std::stable_sort(by_pa.begin(), by_pa.end(), [](auto* a, auto* b) { return a->paddr < b->paddr; });
    std::uint64_t covered = 0;
    bool any = false;
    for (const auto* s : by_pa) {
      const std::uint64_t start = s->paddr;
      const std::uint64_t end = s->memsz > ~std::uint64_t{0} - start ? ~std::uint64_t{0} : start + s->memsz;
      const std::uint64_t from = any ? std::max(start, covered) : start;
      if (from >= end) continue;  // wholly inside an earlier segment
      const std::uint64_t data_end = std::min(end, start + s->filesz);
      const interval piece{from, end, std::max(from, data_end), s->offset + (from - start)};
      // QEMU's paging=true writes tens of thousands of segments that are adjacent in both
      // physical memory and the file: one interval each would make every lookup a long
      // binary search, so merge them.
      if (!intervals_.empty()) {
        auto& last = intervals_.back();
        if (last.end == piece.start && last.data_end == last.end && piece.file_offset == last.file_offset + (last.end - last.start)) {
          last.end = piece.end;
          last.data_end = piece.data_end;
          covered = end;
          continue;
        }
      }
      intervals_.push_back(piece);
      covered = end;
      any = true;
    }
    if (auto ps = vmcoreinfo_.page_size(); ps && (*ps & (*ps - 1)) == 0 && *ps >= 512) page_size_ = *ps;
    kerndisp_ = static_cast<std::int64_t>(vmcoreinfo_.kernel_offset().value_or(0));
    if (machine_ == machine::i386) return finish_i386();
    if (machine_ == machine::aarch64) finish_aarch64();
    if (machine_ != machine::amd64) return;
    if (auto sme = vmcoreinfo_.number("sme_mask")) sme_mask_ = static_cast<std::uint64_t>(*sme);
    // x86_64 root: init_top_pgt (alias swapper_pg_dir; init_level4_pgt before 4.13) is a
    // kernel-text address: PA = VA - __START_KERNEL_map + phys_base.
    constexpr std::uint64_t start_kernel_map = 0xffffffff80000000;
    auto sym = vmcoreinfo_.symbol("init_top_pgt");
    if (!sym) sym = vmcoreinfo_.symbol("swapper_pg_dir");
    if (!sym) sym = vmcoreinfo_.symbol("init_level4_pgt");
    const auto phys_base = vmcoreinfo_.number("phys_base");
    if (sym && phys_base && *sym >= start_kernel_map)
      root_ = physaddr{*sym - start_kernel_map + static_cast<std::uint64_t>(*phys_base)};
    std::optional<std::uint64_t> cr4;
    for (const auto& cpu : cpus_)
      if (cpu.cr) {
        if (!root_) root_ = physaddr{(*cpu.cr)[3] & 0x000ffffffffff000 & ~(std::uint64_t{1} << 12) & ~sme_mask_};
        cr4 = (*cpu.cr)[4];
        break;
      }
    if (auto l5 = vmcoreinfo_.number("pgtable_l5_enabled")) levels_ = *l5 ? 5 : 4;
    else if (cr4) levels_ = (*cr4 >> 12) & 1 ? 5 : 4;
  }

  // i386 (specs/linux-dumps.md §10.2, §12): swapper_pg_dir is in the direct map, so its
  // PA is VA − PAGE_OFFSET (0xC0000000 with CONFIG_VMSPLIT_3G, Debian's setting; VMCOREINFO
  // does not carry PAGE_OFFSET on i386); else CR3 from QEMU's note (PAE: bits 31:5). PAE
  // (paging_levels() 3, else 2) from VMCOREINFO's CONFIG_X86_PAE=y, else CR4.PAE (bit 5).
  void finish_i386() {
    constexpr std::uint64_t page_offset = 0xc0000000;
    std::optional<std::uint64_t> cr4, cr3;
    for (const auto& cpu : cpus_)
      if (cpu.cr) {
        cr3 = (*cpu.cr)[3];
        cr4 = (*cpu.cr)[4];
        break;
      }
    bool pae = false;
    if (!vmcoreinfo_.empty()) pae = vmcoreinfo_.get("CONFIG_X86_PAE") == std::string_view("y");
    else if (cr4) pae = ((*cr4 >> 5) & 1) != 0;
    levels_ = pae ? 3 : 2;
    if (auto sym = vmcoreinfo_.symbol("swapper_pg_dir"); sym && *sym >= page_offset && *sym <= 0xffffffff)
      root_ = physaddr{*sym - page_offset};
    else if (cr3)
      root_ = physaddr{*cr3 & (pae ? 0xffffffe0 : 0xfffff000)};
  }

  // aarch64 (specs/linux-dumps.md §10.2): the root is swapper_pg_dir − kimage_voffset, a
  // kernel-image address converted without translating it; VA bits = 64 − TCR_EL1_T1SZ,
  // else VA_BITS. With 64 KiB pages a 52-bit kernel on 48-bit hardware keeps its 52-bit
  // swapper_pg_dir and points TTBR1 into it (Linux v5.4, commit c812026c54cf "arm64: mm:
  // Logic to make offset_ttbr1 conditional"; drgn's aarch64 walker relies on the same), so
  // that table is walked with VA_BITS: a sign-extended 48-bit address indexes the same
  // entries. With 4/16 KiB pages 48- and 52-bit layouts differ in their number of levels,
  // so there T1SZ is taken as the layout (not checked on a 52-bit LPA2 kernel).
  void finish_aarch64() noexcept {
    const auto pgd = vmcoreinfo_.symbol("swapper_pg_dir");
    const auto voffset = vmcoreinfo_.number("kimage_voffset");
    if (pgd && voffset) root_ = physaddr{*pgd - static_cast<std::uint64_t>(*voffset)};
    const auto t1sz = vmcoreinfo_.number("TCR_EL1_T1SZ");
    const auto config = vmcoreinfo_.number("VA_BITS");
    if (t1sz && *t1sz > 0 && *t1sz < 64) va_bits_ = static_cast<unsigned>(64 - *t1sz);
    else if (config && *config > 0 && *config < 64) va_bits_ = static_cast<unsigned>(*config);
    else va_bits_ = 48;  // the common configuration; 39-bit kernels export TCR_EL1_T1SZ (5.12+)
    if (page_size_ == 65536 && config && *config > static_cast<std::int64_t>(va_bits_) && *config < 64)
      va_bits_ = static_cast<unsigned>(*config);
    const auto pa = vmcoreinfo_.number("MAX_PHYSMEM_BITS");
    pa_bits_ = pa && *pa > 0 && *pa < 64 ? static_cast<unsigned>(*pa) : 48;
    const unsigned shift = static_cast<unsigned>(std::countr_zero(page_size_));
    if (shift > 3 && va_bits_ > shift) levels_ = (va_bits_ - shift + shift - 4) / (shift - 3);
  }

  static result<elf_core> parse(detail::file_image image) {
    const char* path = image.path();
    const auto bytes = image.bytes();
    if (!probe(bytes)) return detail::fail(errc::not_a_dump, "%s: not a Linux ELF core file", path);
    KVMXX_TRY(id, detail::read_elf_ident(bytes, path, errc::not_a_dump));
    elf_core c;
    auto r = detail::with_elf_flavour(id, [&](auto fl) -> result<void> { return c.load(fl, bytes, path); });
    if (!r) return r.error();
    if (c.process_notes_ && c.vmcoreinfo_.empty() && !c.qemu_)
      return detail::fail(errc::not_a_dump, "%s: a process core dump (it has NT_AUXV/NT_FILE notes), not a kernel dump",
                          path);
    c.machine_ = machine_of(id.machine, id.elf_class == format::elf::elfclass64, id.data == format::elf::elfdata2msb);
    if (c.machine_ == machine::unknown)
      return detail::fail(errc::unsupported_format, "%s: ELF core for e_machine %u, which kvmxx does not know", path,
                          unsigned{id.machine});
    c.finish();
    image.advise(MADV_RANDOM);
    c.image_ = std::move(image);
    return c;
  }

  detail::file_image image_;
  kvmxx::machine machine_ = machine::unknown;
  std::size_t page_size_ = 4096;
  std::vector<elf_segment> segments_;
  std::vector<interval> intervals_;
  std::vector<cpu_registers> cpus_;
  std::size_t qemu_cpu_ = 0;
  linux_::vmcoreinfo vmcoreinfo_;
  std::optional<physaddr> root_;
  unsigned levels_ = 4;
  unsigned va_bits_ = 0, pa_bits_ = 0;
  std::uint64_t sme_mask_ = 0;
  std::int64_t kerndisp_ = 0;
  bool qemu_ = false;
  bool process_notes_ = false;
};

static_assert(memory_backend<elf_core>);
static_assert(page_table_backend<elf_core>);

}  // namespace kvmxx::inline KVMXX_ABI::backend

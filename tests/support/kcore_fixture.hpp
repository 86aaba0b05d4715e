// kcore_fixture.hpp — a synthetic file in /proc/kcore's format (specs/linux-dumps.md §3),
// written with elf_core_builder (test code only; shares no code with the library).
//
// Public API (namespace kvmxx_test):
//   struct kcore_fixture {
//     kcore_fixture(bool with_vmcoreinfo = true);
//     elf_core_builder b;          // the model: segment_bytes(), segments() are ground truth
//     std::size_t text, ram1, ram2, vmalloc1, vmalloc2;   // segment indices
//     std::string system_map;      // link-time System.map text for the symbols below
//     std::string banner;          // written at linux_banner
//     std::vector<std::byte> note; // the whole VMCOREINFO note (Nhdr, name, text) as the
//                                  // kernel keeps it in memory, written at note_pa
//     std::string vmcoreinfo_text;
//     // expected bytes of the virtual range [va, va+len), from the model; nullopt when a
//     // byte is in no segment (the lower p_vaddr wins where segments overlap)
//     std::optional<std::vector<std::byte>> read_virt(std::uint64_t va, std::size_t len) const;
//   };
//   Layout (runtime addresses; KASLR moved the kernel by `kaslr` = 0x2000000):
//     text     vaddr 0xffffffff83000000 paddr 0x3000000  size 0x200000 (KCORE_TEXT)
//     ram1     vaddr page_offset+0x1000 paddr 0x1000    size 0x9e000  (KCORE_RAM)
//     ram2     vaddr page_offset+0x100000 paddr 0x100000 size 0x100000 (KCORE_RAM)
//     vmalloc1 vaddr 0xffffc90000000000 paddr all-ones  size 0x3000   (KCORE_VMALLOC)
//     vmalloc2 vaddr 0xffffc90000003000 paddr all-ones  size 0x2000   (adjacent to vmalloc1)
#pragma once

#include "elf_core_writer.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace kvmxx_test {

struct kcore_fixture {
  static constexpr std::uint64_t page_offset = 0xffff888000000000ull;
  static constexpr std::uint64_t kaslr = 0x2000000;
  static constexpr std::uint64_t link_text = 0xffffffff81000000ull;
  static constexpr std::uint64_t text_va = link_text + kaslr, text_pa = 0x3000000, text_size = 0x200000;
  static constexpr std::uint64_t banner_link = link_text + 0x100400;   // linux_banner
  static constexpr std::uint64_t uts_link = link_text + 0x100000;      // init_uts_ns
  static constexpr std::uint64_t vmalloc_va = 0xffffc90000000000ull;
  static constexpr std::uint64_t note_pa = 0x120000;                   // inside ram2
  static constexpr std::uint32_t nt_taskstruct = 4;

  explicit kcore_fixture(bool with_vmcoreinfo = true) : b(core_class::elf64, core_endian::little, 11) {
    vmcoreinfo_text = "OSRELEASE=6.1.0-kcore-test\nPAGESIZE=4096\nSYMBOL(init_uts_ns)=" +
                      elf_core_builder::hex(uts_link + kaslr) + "\nNUMBER(phys_base)=16777216\nKERNELOFFSET=" +
                      elf_core_builder::hex(kaslr) + "\n";
    std::vector<std::byte> prstatus(336), prpsinfo(136), task(3000, std::byte{0x42});
    b.note("CORE", 1, prstatus).note("CORE", 3, prpsinfo).note("CORE", nt_taskstruct, task);
    if (with_vmcoreinfo) b.vmcoreinfo(vmcoreinfo_text);
    text = b.segment(text_pa, text_size, {}, text_va);
    vmalloc1 = b.segment(~std::uint64_t{0}, 0x3000, {}, vmalloc_va);
    ram1 = b.segment(0x1000, 0x9e000, {}, page_offset + 0x1000);
    vmalloc2 = b.segment(~std::uint64_t{0}, 0x2000, {}, vmalloc_va + 0x3000);
    ram2 = b.segment(0x100000, 0x100000, {}, page_offset + 0x100000);
    banner = "Linux version 6.1.0-kcore-test (kvmxx@test) #1 SMP PREEMPT_DYNAMIC\n";
    std::vector<std::byte> bb(banner.size() + 1);
    std::memcpy(bb.data(), banner.data(), banner.size());
    b.write_segment(text, banner_link - link_text, bb);
    system_map = elf_core_builder::hex(link_text) + " T _text\n" + elf_core_builder::hex(uts_link) +
                 " D init_uts_ns\n" + elf_core_builder::hex(banner_link) + " D linux_banner\n";
    // The VMCOREINFO note as crash_save_vmcoreinfo keeps it: Nhdr, "VMCOREINFO\0" + pad, text.
    note.resize(12 + 12 + ((vmcoreinfo_text.size() + 3) & ~std::size_t{3}));
    const std::uint32_t hdr[3] = {11, static_cast<std::uint32_t>(vmcoreinfo_text.size()), 0};
    std::memcpy(note.data(), hdr, 12);
    std::memcpy(note.data() + 12, "VMCOREINFO", 11);
    std::memcpy(note.data() + 24, vmcoreinfo_text.data(), vmcoreinfo_text.size());
    b.write_segment(ram2, note_pa - 0x100000, note);
  }

  std::optional<std::vector<std::byte>> read_virt(std::uint64_t va, std::size_t len) const {
    std::vector<std::byte> out(len);
    const auto segs = b.segments();
    for (std::size_t k = 0; k < len; ++k) {
      const std::uint64_t a = va + k;
      std::optional<std::size_t> best;
      for (std::size_t i = 0; i < segs.size(); ++i)
        if (a >= segs[i].vaddr && a - segs[i].vaddr < segs[i].filesz && (!best || segs[i].vaddr < segs[*best].vaddr))
          best = i;
      if (!best) return std::nullopt;
      out[k] = b.segment_bytes(*best)[static_cast<std::size_t>(a - segs[*best].vaddr)];
    }
    return out;
  }

  elf_core_builder b;
  std::size_t text = 0, ram1 = 0, ram2 = 0, vmalloc1 = 0, vmalloc2 = 0;
  std::string system_map, banner, vmcoreinfo_text;
  std::vector<std::byte> note;
};

}  // namespace kvmxx_test

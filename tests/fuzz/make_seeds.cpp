// Writes a small seed corpus for the fuzz targets with the independent test writers:
// minidumps v1–v3 and kernel ELF files of every class and byte order.
#include <amd64_minidump_writer.hpp>
#include <file_util.hpp>
#include <kernel_elf_writer.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_seeds MINIDUMP_DIR ELF_DIR\n");
    return 2;
  }
  const std::string md_dir = argv[1], elf_dir = argv[2];
  for (std::uint32_t v = 1; v <= 3; ++v) {
    kvmxx_test::amd64_minidump_builder b(v, 100 + v);
    const std::uint64_t kb = b.kernbase();
    // Keep seeds small (libFuzzer mutates whole inputs): large pages are mapped but only
    // their first page is dumped.
    b.dump_mapped_pages(false).map_4k(kb + 0x1000, 0x5000).map_4k(kb + 0x2000, 0x6000, false, true);
    b.dump_page(0x5000).dump_page(0x6000).msgbuf("boot log\n");
    if (v > 1) b.map_2m(kb + 0x200000, 0x200000).dump_page(0x200000);
    if (v == 3) b.dump_avail({{0x1000, 0x9f000}, {0x100000, 0x800000}});
    kvmxx_test::write_file(md_dir + "/v" + std::to_string(v), b.build());
  }
  int k = 0;
  for (auto c : {kvmxx_test::elf_class::elf32, kvmxx_test::elf_class::elf64})
    for (auto e : {kvmxx_test::elf_endian::little, kvmxx_test::elf_endian::big}) {
      kvmxx_test::kernel_elf_builder kb(c, e);
      kb.symbol("hz", 0x1000, kvmxx_test::section_kind::data).symbol("_start", 0x2000, kvmxx_test::section_kind::text);
      kvmxx_test::write_file(elf_dir + "/k" + std::to_string(k++), kb.build());
    }
  return 0;
}

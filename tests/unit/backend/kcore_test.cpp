// The /proc/kcore backend on synthetic kcore-format files (tests/support/kcore_fixture.hpp,
// written with elf_core_builder): virtual and physical reads against the builder's model,
// VMCOREINFO from the note and from a sysfs-style file, the probe against vmcores, the
// typed handle with a System.map, and the error paths (truncated headers, segments past
// the end, damaged notes, overlapping segments, reads crossing segment ends).
#include <catch2/catch.hpp>
#include <kvmxx/backend/kcore.hpp>
#include <kvmxx/core/open.hpp>
#include <kvmxx/os/linux/devmem.hpp>

#include "elf_core_writer.hpp"
#include "file_util.hpp"
#include "kcore_fixture.hpp"
#include "skip.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <span>
#include <string>
#include <type_traits>
#include <unistd.h>
#include <vector>

namespace {

using kvmxx::errc;
using kvmxx::kvaddr;
using kvmxx::physaddr;
using kvmxx::backend::kcore;
using kvmxx_test::elf_core_builder;
using kvmxx_test::kcore_fixture;
using Catch::Matchers::Contains;
using u64 = std::uint64_t;
using bytes_t = std::vector<std::byte>;

template <class T>
std::string message_of(const kvmxx::result<T>& r) {
  return r.has_value() ? std::string() : kvmxx::describe(r.error());
}

std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

}  // namespace

TEST_CASE("kcore: the probe tells kcore from a vmcore by its CORE/NT_TASKSTRUCT note", "[kcore]") {
  kcore_fixture f;
  const auto kc = f.b.build();
  CHECK(kcore::probe(kc));
  CHECK_FALSE(kvmxx::probe_linux_vmcore(kc));
  CHECK(kvmxx::count_matching_probes(kc) == 1);
  auto fmt = kvmxx::probe_core_image(kc, "kc");
  REQUIRE(fmt.has_value());
  CHECK(fmt.value() == kvmxx::core_format::linux_kcore);

  elf_core_builder v;  // a vmcore: PRSTATUS and VMCOREINFO, no NT_TASKSTRUCT
  v.prstatus(1, {}).vmcoreinfo("OSRELEASE=6.1\n");
  v.segment(0x1000, 0x2000);
  const auto vm = v.build();
  CHECK_FALSE(kcore::probe(vm));
  CHECK(kvmxx::probe_linux_vmcore(vm));
  CHECK(kvmxx::count_matching_probes(vm) == 1);

  elf_core_builder other;  // NT_TASKSTRUCT under another name is not kcore's
  other.note("LINUX", 4, bytes_t(16)).segment(0x1000, 0x1000);
  CHECK_FALSE(kcore::probe(other.build()));
  elf_core_builder exec;  // ET_EXEC with the note: not a core at all
  exec.type(kvmxx_test::elf_core_const::et_exec).note("CORE", 4, bytes_t(16)).segment(0x1000, 0x1000);
  CHECK_FALSE(kcore::probe(exec.build()));
}

TEST_CASE("kcore: virtual reads come from the segment holding each address, crossing adjacent segments", "[kcore]") {
  kcore_fixture f;
  const auto file = f.b.build();
  auto k = kcore::from_bytes(file, "kc");
  REQUIRE(k.has_value());
  const auto& kc = k.value();
  CHECK(kc.machine() == kvmxx::machine::amd64);
  CHECK(kc.os() == kvmxx::os_kind::linux_);
  CHECK(kc.segments().size() == 5);
  CHECK_FALSE(kc.live());

  struct probe_case {
    u64 va;
    std::size_t len;
  };
  const probe_case cases[] = {
      {kcore_fixture::text_va, 64},
      {kcore_fixture::text_va + 0x100400, 70},
      {kcore_fixture::text_va + kcore_fixture::text_size - 16, 16},
      {kcore_fixture::page_offset + 0x1000, 4096},
      {kcore_fixture::page_offset + 0x150ff0, 0x20},
      {kcore_fixture::vmalloc_va + 0x2ff0, 0x40},    // crosses vmalloc1 → vmalloc2
      {kcore_fixture::vmalloc_va, 0x5000},           // both, whole
  };
  for (const auto& c : cases) {
    INFO("va " << std::hex << c.va << " len " << c.len);
    const auto want = f.read_virt(c.va, c.len);
    REQUIRE(want.has_value());
    bytes_t got(c.len);
    auto n = kc.read_virtual(kvaddr{c.va}, got);
    REQUIRE(n.has_value());
    CHECK(n.value() == c.len);
    CHECK(got == *want);
  }

  // A read that runs off the end of a segment into a hole stops there (short count).
  bytes_t buf(0x100);
  const u64 end_va = kcore_fixture::vmalloc_va + 0x5000;
  auto n = kc.read_virtual(kvaddr{end_va - 0x10}, buf);
  REQUIRE(n.has_value());
  CHECK(n.value() == 0x10);
  CHECK_THAT(kvmxx::last_error_message(), Contains("0xffffc90000005000") && Contains("no PT_LOAD"));
  // The first byte in a hole: an error naming the address.
  auto bad = kc.read_virtual(kvaddr{end_va}, buf);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error() == errc::unmapped_address);
  CHECK_THAT(message_of(bad), Contains("virtual address 0xffffc90000005000"));
  // Between the two RAM segments of the direct map.
  auto gap = kc.read_virtual(kvaddr{kcore_fixture::page_offset + 0x9f000}, buf);
  REQUIRE_FALSE(gap.has_value());
  // Reading nothing succeeds anywhere.
  auto none = kc.read_virtual(kvaddr{0x1234}, std::span<std::byte>());
  REQUIRE(none.has_value());
  CHECK(none.value() == 0);
}

TEST_CASE("kcore: physical reads use p_paddr of the text and RAM segments, never of vmalloc", "[kcore]") {
  kcore_fixture f;
  const auto file = f.b.build();
  auto k = kcore::from_bytes(file, "kc");
  REQUIRE(k.has_value());
  const auto& kc = k.value();
  // RAM: physical 0x100000 + x is the direct map's page_offset + 0x100000 + x.
  for (const u64 pa : {u64{0x1000}, u64{0x50000}, u64{0x100000}, u64{0x1ff000}}) {
    bytes_t got(0x1000);
    auto n = kc.read_physical(physaddr{pa}, got);
    REQUIRE(n.has_value());
    CHECK(n.value() == got.size());
    CHECK(got == *f.read_virt(kcore_fixture::page_offset + pa, got.size()));
  }
  // Text: __pa_symbol(_text).
  bytes_t t(256);
  REQUIRE(kc.read_physical(physaddr{kcore_fixture::text_pa + 0x100400}, t).has_value());
  CHECK(std::memcmp(t.data(), f.banner.data(), f.banner.size()) == 0);
  // Not RAM: the hole below 0x1000 and the one at 0x9f000.
  bytes_t b(16);
  auto z = kc.read_physical(physaddr{0}, b);
  REQUIRE_FALSE(z.has_value());
  CHECK(z.error() == errc::page_not_dumped);
  CHECK_THAT(message_of(z), Contains("physical address 0x0"));
  CHECK_FALSE(kc.read_physical(physaddr{0x9f000}, b).has_value());
  // The physical ranges reported are RAM and text.
  const auto info = kc.info();
  REQUIRE(info.ranges.size() == 3);
  CHECK(kvmxx::to_integer(info.ranges[0].start) == 0x1000);
  CHECK(kvmxx::to_integer(info.ranges[1].end) == 0x200000);
  CHECK(kvmxx::to_integer(info.ranges[2].start) == kcore_fixture::text_pa);
  CHECK(info.format == "Linux kcore-format file");
}

TEST_CASE("kcore: a pre-4.11 kcore (p_paddr 0 on every RAM segment) has no physical view of RAM", "[kcore]") {
  elf_core_builder b;
  b.note("CORE", 4, bytes_t(64));
  b.segment(0, 0x2000, {}, kcore_fixture::page_offset);
  b.segment(0, 0x2000, {}, kcore_fixture::page_offset + 0x100000);
  const auto file = b.build();
  auto k = kcore::from_bytes(file, "old");
  REQUIRE(k.has_value());
  bytes_t buf(8);
  CHECK_FALSE(k.value().read_physical(physaddr{0x10}, buf).has_value());
  REQUIRE(k.value().read_virtual(kvaddr{kcore_fixture::page_offset + 0x100008}, buf).has_value());
}

TEST_CASE("kcore: VMCOREINFO from the note gives the release, page size and KERNELOFFSET", "[kcore]") {
  kcore_fixture f;
  const auto file = f.b.build();
  auto k = kcore::from_bytes(file, "kc");
  REQUIRE(k.has_value());
  CHECK(k.value().vmcoreinfo().osrelease() == std::optional<std::string_view>("6.1.0-kcore-test"));
  CHECK(k.value().kerndisp() == static_cast<std::int64_t>(kcore_fixture::kaslr));
  CHECK(k.value().vmcoreinfo_source() == "note");
  CHECK(k.value().text_start() == std::optional<u64>(kcore_fixture::text_va));
}

TEST_CASE("kcore: without a VMCOREINFO note it comes from a sysfs-style file through physical memory", "[kcore]") {
  kcore_fixture f(false);
  const auto file = f.b.build();
  kvmxx_test::temp_dir dir;
  {
    auto k = kcore::from_bytes(file, "kc");  // not live: no sysfs fallback unless asked
    REQUIRE(k.has_value());
    CHECK(k.value().vmcoreinfo().empty());
    CHECK(k.value().kerndisp() == 0);
  }
  const std::string sysfs = dir.path("vmcoreinfo");
  char line[64];
  std::snprintf(line, sizeof line, "%llx %zx\n", static_cast<unsigned long long>(kcore_fixture::note_pa),
                f.note.size());
  kvmxx_test::write_file(sysfs, as_bytes(line));
  kvmxx::kcore_options o;
  o.vmcoreinfo_sysfs = sysfs.c_str();
  auto k = kcore::from_bytes(file, "kc", o);
  REQUIRE(k.has_value());
  CHECK(k.value().vmcoreinfo().osrelease() == std::optional<std::string_view>("6.1.0-kcore-test"));
  CHECK(k.value().kerndisp() == static_cast<std::int64_t>(kcore_fixture::kaslr));
  CHECK(k.value().vmcoreinfo_source() == sysfs);

  SECTION("a sysfs file pointing at no note is an error naming both") {
    std::snprintf(line, sizeof line, "%llx %zx\n", 0x130000ull, f.note.size());
    kvmxx_test::write_file(sysfs, as_bytes(line));
    auto bad = kcore::from_bytes(file, "kc", o);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error() == errc::corrupt);
    CHECK_THAT(message_of(bad), Contains("0x130000") && Contains(sysfs) && Contains("no VMCOREINFO note"));
  }
  SECTION("garbage in the sysfs file") {
    kvmxx_test::write_file(sysfs, as_bytes("hello"));
    auto bad = kcore::from_bytes(file, "kc", o);
    REQUIRE_FALSE(bad.has_value());
    CHECK_THAT(message_of(bad), Contains("<paddr hex> <size hex>"));
  }
  SECTION("a note outside physical memory") {
    kvmxx_test::write_file(sysfs, as_bytes("7000000 100\n"));
    auto bad = kcore::from_bytes(file, "kc", o);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error() == errc::page_not_dumped);
  }
  SECTION("a huge size is refused before allocating") {
    kvmxx_test::write_file(sysfs, as_bytes("1000 7fffffffffff\n"));
    auto bad = kcore::from_bytes(file, "kc", o);
    REQUIRE_FALSE(bad.has_value());
    CHECK_THAT(message_of(bad), Contains("1 MiB"));
  }
}

TEST_CASE("kcore: damaged files give errors that say what and where", "[kcore]") {
  kcore_fixture f;
  const auto good = f.b.build();
  SECTION("truncated ELF header") {
    for (std::size_t len : {std::size_t{0}, std::size_t{4}, std::size_t{20}, std::size_t{63}}) {
      auto k = kcore::from_bytes(std::span(good.data(), len), "short");
      REQUIRE_FALSE(k.has_value());
      CHECK_THAT(message_of(k), Contains("short"));
    }
  }
  SECTION("program headers past the end") {
    const auto l = f.b.file_layout();
    auto k = kcore::from_bytes(std::span(good.data(), l.phoff + 56 * 2), "cut");
    REQUIRE_FALSE(k.has_value());
    CHECK(k.error() == errc::truncated);
    CHECK_THAT(message_of(k), Contains("program headers"));
  }
  SECTION("a segment past the end of the file") {
    kcore_fixture g;
    g.b.override_segment_offset(g.ram2, u64{1} << 40);
    auto bytes = g.b.build();
    auto k = kcore::from_bytes(bytes, "seg");
    REQUIRE_FALSE(k.has_value());
    CHECK(k.error() == errc::truncated);
    CHECK_THAT(message_of(k), Contains("PT_LOAD") && Contains("past end of file"));
  }
  SECTION("the file cut inside a segment") {
    auto k = kcore::from_bytes(std::span(good.data(), good.size() - 100), "cut");
    REQUIRE_FALSE(k.has_value());
    CHECK(k.error() == errc::truncated);
  }
  SECTION("a note running past its segment") {
    kcore_fixture g;
    g.b.override_note_descsz(2, 0x100000);
    auto bytes = g.b.build();
    auto k = kcore::from_bytes(bytes, "note");
    REQUIRE_FALSE(k.has_value());
    CHECK(k.error() == errc::truncated);
    CHECK_THAT(message_of(k), Contains("note at offset"));
  }
  SECTION("p_filesz != p_memsz") {
    kcore_fixture g;
    g.b.override_segment_memsz(g.ram1, 0x100000);
    auto bytes = g.b.build();
    auto k = kcore::from_bytes(bytes, "sz");
    REQUIRE_FALSE(k.has_value());
    CHECK(k.error() == errc::corrupt);
  }
  SECTION("wrong e_phentsize") {
    kcore_fixture g;
    g.b.override_phentsize(32);
    auto bytes = g.b.build();
    auto k = kcore::from_bytes(bytes, "ph");
    REQUIRE_FALSE(k.has_value());
    CHECK_THAT(message_of(k), Contains("e_phentsize"));
  }
  SECTION("not ET_CORE") {
    elf_core_builder e;
    e.type(kvmxx_test::elf_core_const::et_exec).segment(0x1000, 0x1000);
    auto bytes = e.build();
    auto k = kcore::from_bytes(bytes, "exec");
    REQUIRE_FALSE(k.has_value());
    CHECK(k.error() == errc::not_a_dump);
  }
  SECTION("an e_machine kvmxx does not know") {
    elf_core_builder e;
    e.machine(kvmxx_test::elf_core_const::em_s390).note("CORE", 4, bytes_t(8)).segment(0x1000, 0x1000);
    auto bytes = e.build();
    auto k = kcore::from_bytes(bytes, "s390");
    REQUIRE_FALSE(k.has_value());
    CHECK(k.error() == errc::unsupported_format);
  }
}

TEST_CASE("kcore: overlapping segments — the lower p_vaddr wins for the shared part", "[kcore]") {
  elf_core_builder b(kvmxx_test::core_class::elf64, kvmxx_test::core_endian::little, 5);
  b.note("CORE", 4, bytes_t(8));
  const u64 base = 0xffffc90000000000ull;
  const auto hi = b.segment(~u64{0}, 0x3000, {}, base + 0x2000);  // [base+0x2000, base+0x5000), first in the file
  const auto lo = b.segment(~u64{0}, 0x4000, {}, base);            // [base, base+0x4000)
  const auto file = b.build();
  auto k = kcore::from_bytes(file, "ov");
  REQUIRE(k.has_value());
  bytes_t got(0x5000);
  auto n = k.value().read_virtual(kvaddr{base}, got);
  REQUIRE(n.has_value());
  REQUIRE(n.value() == 0x5000);
  const auto& lo_bytes = b.segment_bytes(lo);
  const auto& hi_bytes = b.segment_bytes(hi);
  CHECK(std::memcmp(got.data(), lo_bytes.data(), 0x4000) == 0);
  CHECK(std::memcmp(got.data() + 0x4000, hi_bytes.data() + 0x2000, 0x1000) == 0);
}

TEST_CASE("kcore: open() reads a file with pread; a missing /proc/kcore is explained", "[kcore]") {
  kcore_fixture f;
  kvmxx_test::temp_dir dir;
  const auto file = f.b.build();
  kvmxx_test::write_file(dir.path("kcore"), file);
  auto k = kcore::open(dir.path("kcore").c_str());
  REQUIRE(k.has_value());
  CHECK_FALSE(k.value().live());
  bytes_t got(100);
  REQUIRE(k.value().read_virtual(kvaddr{kcore_fixture::text_va + 0x100400}, got).has_value());
  CHECK(std::memcmp(got.data(), f.banner.data(), f.banner.size()) == 0);
  REQUIRE(k.value().close().has_value());

  auto missing = kcore::open(dir.path("nonexistent").c_str());
  REQUIRE_FALSE(missing.has_value());
  CHECK_THAT(message_of(missing), Contains("CONFIG_PROC_KCORE"));
  CHECK_FALSE(kcore::path_on_procfs(dir.path("kcore").c_str()));
  CHECK(kcore::path_on_procfs("/proc/self/status"));
}

TEST_CASE("kcore: the typed handle resolves a System.map moved by KERNELOFFSET and refuses writes", "[kcore]") {
  kcore_fixture f;
  kvmxx_test::temp_dir dir;
  kvmxx_test::write_file(dir.path("kcore"), f.b.build());
  kvmxx_test::write_file(dir.path("System.map"), as_bytes(f.system_map));
  auto km = kvmxx::open_linux_kcore(dir.path("System.map").c_str(), dir.path("kcore").c_str());
  REQUIRE(km.has_value());
  auto& h = km.value();
  CHECK(h.kerndisp() == static_cast<std::int64_t>(kcore_fixture::kaslr));
  auto banner = h.address_of("linux_banner");
  REQUIRE(banner.has_value());
  CHECK(kvmxx::to_integer(banner.value()) == kcore_fixture::banner_link + kcore_fixture::kaslr);
  bytes_t got(f.banner.size());
  REQUIRE(h.read_exact(banner.value(), got).has_value());
  CHECK(std::memcmp(got.data(), f.banner.data(), got.size()) == 0);
  // VMCOREINFO's SYMBOL() lines answer too.
  auto uts = h.address_of("init_uts_ns");
  REQUIRE(uts.has_value());
  CHECK(kvmxx::to_integer(uts.value()) == kcore_fixture::uts_link + kcore_fixture::kaslr);
  // kcore cannot be written.
  const std::byte one[1] = {std::byte{1}};
  auto w = h.write(banner.value(), one);
  REQUIRE_FALSE(w.has_value());
  CHECK(w.error() == errc::read_only);
  CHECK_THAT(message_of(w), Contains("kcore is read-only"));
  // translate() is the kernel's business here.
  CHECK(h.translate(banner.value()).error() == errc::not_supported);

  // kvmxx::open picks the kcore handle.
  auto r = kvmxx::open(dir.path("System.map").c_str(), dir.path("kcore").c_str(), [](auto& k) -> int {
    return std::is_same_v<std::remove_cvref_t<decltype(k)>, kvmxx::linux_live_kcore> ? 1 : 0;
  });
  REQUIRE(r.has_value());
  CHECK(r.value() == 1);
}

TEST_CASE("kcore: without KERNELOFFSET the text segment's start gives the KASLR offset", "[kcore]") {
  kcore_fixture f(false);
  kvmxx_test::temp_dir dir;
  kvmxx_test::write_file(dir.path("kcore"), f.b.build());
  kvmxx_test::write_file(dir.path("System.map"), as_bytes(f.system_map));
  auto km = kvmxx::open_linux_kcore(dir.path("System.map").c_str(), dir.path("kcore").c_str());
  REQUIRE(km.has_value());
  auto banner = km.value().address_of("linux_banner");
  REQUIRE(banner.has_value());
  CHECK(kvmxx::to_integer(banner.value()) == kcore_fixture::banner_link + kcore_fixture::kaslr);
}

// ---- Linux /dev/mem: the translation on a raw physical image standing in for the device ----


TEST_CASE("devmem: VMCOREINFO via sysfs, the page-table root from it, reads and writes through the walk", "[devmem]") {
  using kvmxx_test::amd64_page_tables;
  constexpr u64 mem_size = 0x800000, note_pa = 0x300000, kaslr = 0x1e00000, phys_base = 0x100000;
  constexpr u64 link_text = 0xffffffff81000000ull, banner_off = 0x1234;
  elf_core_builder b(kvmxx_test::core_class::elf64, kvmxx_test::core_endian::little, 3);
  b.segment(0, mem_size);
  amd64_page_tables pt(4, 0x600000, 0x100000);
  // The kernel text at its KASLR address, 2 MiB pages, over physical 0x200000 onwards.
  pt.map_2m(link_text + kaslr, 0x200000).map_4k(0xffff888000000000ull + note_pa, note_pa);
  pt.install(b);
  const std::string banner = "Linux version 6.1.0-devmem-test\n";
  b.write_phys(0x200000 + banner_off, banner);
  std::string vi = "OSRELEASE=6.1.0-devmem-test\nKERNELOFFSET=" + elf_core_builder::hex(kaslr) + "\n" +
                   amd64_page_tables::root_vmcoreinfo(pt.root(), static_cast<std::int64_t>(phys_base));
  bytes_t note(24 + ((vi.size() + 3) & ~std::size_t{3}));
  const std::uint32_t hdr[3] = {11, static_cast<std::uint32_t>(vi.size()), 0};
  std::memcpy(note.data(), hdr, 12);
  std::memcpy(note.data() + 12, "VMCOREINFO", 11);
  std::memcpy(note.data() + 24, vi.data(), vi.size());
  b.write_phys(note_pa, note);
  const auto image = b.read_phys(0, mem_size);
  REQUIRE(image.has_value());

  kvmxx_test::temp_dir dir;
  const std::string mem = dir.path("mem"), sysfs = dir.path("vmcoreinfo"), map = dir.path("System.map");
  kvmxx_test::write_file(mem, *image);
  char line[64];
  std::snprintf(line, sizeof line, "%llx %zx\n", static_cast<unsigned long long>(note_pa), note.size());
  kvmxx_test::write_file(sysfs, as_bytes(line));
  kvmxx_test::write_file(map, as_bytes(elf_core_builder::hex(link_text) + " T _text\n" +
                                       elf_core_builder::hex(link_text + banner_off) + " D linux_banner\n"));
  kvmxx::linux_devmem_options o;
  o.device = mem.c_str();
  o.vmcoreinfo_sysfs = sysfs.c_str();

  SECTION("read-only") {
    auto km = kvmxx::open_linux_devmem(map.c_str(), o);
    REQUIRE(km.has_value());
    CHECK(km.value().source().page_table_root() == std::optional<physaddr>(physaddr{pt.root()}));
    auto va = km.value().address_of("linux_banner");
    REQUIRE(va.has_value());
    CHECK(kvmxx::to_integer(va.value()) == link_text + kaslr + banner_off);
    auto t = km.value().translate(va.value());
    REQUIRE(t.has_value());
    CHECK(kvmxx::to_integer(t.value().pa) == 0x200000 + banner_off);
    std::string got(banner.size(), '\0');
    REQUIRE(km.value().read_exact(va.value(), std::as_writable_bytes(std::span(got))).has_value());
    CHECK(got == banner);
    const std::byte one[1] = {std::byte{'X'}};
    auto w = km.value().write(va.value(), one);
    REQUIRE_FALSE(w.has_value());
    CHECK(w.error() == errc::read_only);
  }
  SECTION("read-write: the bytes land at the translated physical address") {
    o.mode = kvmxx::access::read_write;
    auto km = kvmxx::open_linux_devmem(map.c_str(), o);
    REQUIRE(km.has_value());
    auto va = km.value().address_of("linux_banner");
    REQUIRE(va.has_value());
    const std::string patch = "KVMXX";
    auto w = km.value().write(kvaddr{kvmxx::to_integer(va.value()) + 6}, as_bytes(patch));
    REQUIRE(w.has_value());
    CHECK(w.value() == patch.size());
    std::ifstream f(mem, std::ios::binary);
    f.seekg(static_cast<std::streamoff>(0x200000 + banner_off));
    std::string back(banner.size(), '\0');
    f.read(back.data(), static_cast<std::streamsize>(back.size()));
    CHECK(back == "Linux KVMXXon 6.1.0-devmem-test\n");
  }
  SECTION("a sysfs file that points at no note") {
    kvmxx_test::write_file(sysfs, as_bytes("400000 40\n"));
    auto km = kvmxx::open_linux_devmem(map.c_str(), o);
    REQUIRE_FALSE(km.has_value());
    CHECK(km.error() == errc::corrupt);
    CHECK_THAT(message_of(km), Contains("no VMCOREINFO note") && Contains("0x400000"));
  }
  SECTION("a missing device names it") {
    o.device = "/nonexistent/mem";
    auto km = kvmxx::open_linux_devmem(map.c_str(), o);
    REQUIRE_FALSE(km.has_value());
    CHECK_THAT(message_of(km), Contains("/nonexistent/mem"));
  }
}

TEST_CASE("kcore: a kallsyms-style map with runtime addresses is not moved again", "[kcore]") {
  kcore_fixture f;
  kvmxx_test::temp_dir dir;
  kvmxx_test::write_file(dir.path("kcore"), f.b.build());
  const std::string runtime_map = elf_core_builder::hex(kcore_fixture::text_va) + " T _text\n" +
                                  elf_core_builder::hex(kcore_fixture::banner_link + kcore_fixture::kaslr) +
                                  " D linux_banner\n";
  kvmxx_test::write_file(dir.path("kallsyms"), as_bytes(runtime_map));
  auto km = kvmxx::open_linux_kcore(dir.path("kallsyms").c_str(), dir.path("kcore").c_str());
  REQUIRE(km.has_value());
  auto banner = km.value().address_of("linux_banner");
  REQUIRE(banner.has_value());
  CHECK(kvmxx::to_integer(banner.value()) == kcore_fixture::banner_link + kcore_fixture::kaslr);
}

// ---- /dev/mem translation on a real guest's memory ----
// The RAM of the kaslr boot's QEMU dump (tests/real) copied into a file where offset =
// physical address, standing in for the guest's /dev/mem; /sys/kernel/vmcoreinfo as the
// guest printed it (facts.txt); the nokaslr boot's kallsyms (link-time addresses) as the
// System.map. Expected values are what the guest reported itself.

namespace {
std::string real_fact(const std::string& facts, const std::string& key) {
  std::ifstream in(facts);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + " ", 0) == 0) return line.substr(key.size() + 1);
  return {};
}
}  // namespace

TEST_CASE("devmem: a real guest's RAM as the device: banner, hostname and a write through the page walk",
          "[devmem][real]") {
  const char* env = std::getenv("KVMXX_LINUX_DUMPS");
  const std::string d = env ? env : "";
  if (d.empty() || !std::ifstream(d + "/kaslr/elf") || !std::ifstream(d + "/nokaslr/kallsyms.txt"))
    KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS does not hold the real Linux dumps (tests/real/make-linux-dumps.sh)");
  const std::string facts = d + "/kaslr/facts.txt";
  // The PT_LOAD at physical 0, found with a few lines of ELF64 parsing of our own.
  const int src = ::open((d + "/kaslr/elf").c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(src >= 0);
  unsigned char eh[64];
  REQUIRE(::pread(src, eh, 64, 0) == 64);
  u64 phoff = 0;
  std::uint16_t phnum = 0;
  std::memcpy(&phoff, eh + 32, 8);
  std::memcpy(&phnum, eh + 56, 2);
  u64 ram_off = 0, ram_size = 0;
  for (unsigned k = 0; k < phnum; ++k) {
    unsigned char ph[56];
    REQUIRE(::pread(src, ph, 56, static_cast<off_t>(phoff + 56 * k)) == 56);
    std::uint32_t type = 0;
    u64 off = 0, paddr = 0, filesz = 0;
    std::memcpy(&type, ph, 4);
    std::memcpy(&off, ph + 8, 8);
    std::memcpy(&paddr, ph + 24, 8);
    std::memcpy(&filesz, ph + 32, 8);
    if (type == 1 && paddr == 0) ram_off = off, ram_size = filesz;
  }
  REQUIRE(ram_size >= 0x8000000);
  kvmxx_test::temp_dir dir;
  const std::string mem = dir.path("mem"), sysfs = dir.path("vmcoreinfo");
  const int dst = ::open(mem.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(dst >= 0);
  loff_t in_off = static_cast<loff_t>(ram_off), out_off = 0;
  u64 left = ram_size;
  while (left > 0) {
    const ssize_t n = ::copy_file_range(src, &in_off, dst, &out_off, left, 0);
    REQUIRE(n > 0);
    left -= static_cast<u64>(n);
  }
  ::close(src);
  ::close(dst);
  // /sys/kernel/vmcoreinfo prints "%lx %x" (no 0x); facts.txt has them with 0x.
  const std::string phys = real_fact(facts, "vmcoreinfo_phys"), size = real_fact(facts, "vmcoreinfo_size");
  REQUIRE(phys.rfind("0x", 0) == 0);
  REQUIRE(size.rfind("0x", 0) == 0);
  kvmxx_test::write_file(sysfs, as_bytes(phys.substr(2) + " " + size.substr(2) + "\n"));
  kvmxx::linux_devmem_options o;
  o.device = mem.c_str();
  o.vmcoreinfo_sysfs = sysfs.c_str();
  o.mode = kvmxx::access::read_write;
  const std::string map = d + "/nokaslr/kallsyms.txt";
  auto km = kvmxx::open_linux_devmem(map.c_str(), o);
  REQUIRE(km.has_value());
  auto& h = km.value();

  auto banner = h.address_of("linux_banner");
  REQUIRE(banner.has_value());
  const std::string want = real_fact(facts, "banner");
  std::string got(want.size(), '\0');
  REQUIRE(h.read_exact(banner.value(), std::as_writable_bytes(std::span(got))).has_value());
  CHECK(got == want);

  auto uts = h.address_of("init_uts_ns");
  REQUIRE(uts.has_value());
  const kvaddr nodename{kvmxx::to_integer(uts.value()) + 65};
  std::string host(21, '\0');
  REQUIRE(h.read_exact(nodename, std::as_writable_bytes(std::span(host))).has_value());
  CHECK(host == real_fact(facts, "hostname"));

  // Write a new hostname through the walk; read the file at the translated address ourselves.
  const std::string patch = "KVMXX-WRITTEN-BY-DEVM";
  auto w = h.write(nodename, as_bytes(patch));
  REQUIRE(w.has_value());
  CHECK(w.value() == patch.size());
  auto t = h.translate(nodename);
  REQUIRE(t.has_value());
  std::ifstream f(mem, std::ios::binary);
  f.seekg(static_cast<std::streamoff>(kvmxx::to_integer(t.value().pa)));
  std::string back(patch.size(), '\0');
  f.read(back.data(), static_cast<std::streamsize>(back.size()));
  CHECK(back == patch);
}

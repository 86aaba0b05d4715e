// The Linux ELF core backend: probe, program headers (QEMU's e_phoff, PN_XNUM), PT_LOAD
// physical lookups (gaps, p_filesz < p_memsz tails, overlaps), notes (VMCOREINFO,
// NT_PRSTATUS, QEMU CPU state), the x86_64 page-table root and paging mode, and reads
// through kernel_memory<elf_core, amd64, none> (specs/linux-dumps.md §2, §4, §8, §10.1;
// real-linux-dumps.md §10). Every expected value comes from the independent fixture
// writer's model (tests/support/elf_core_writer.hpp), never from the library.
#include <catch2/catch.hpp>
#include <kvmxx/arch/amd64.hpp>
#include <kvmxx/backend/elf_core.hpp>
#include <kvmxx/core/kernel_memory.hpp>
#include <kvmxx/core/open.hpp>
#include <kvmxx/resolver/none.hpp>

#include "amd64_minidump_writer.hpp"
#include "elf_core_writer.hpp"
#include "file_util.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

using kvmxx::errc;
using kvmxx::kvaddr;
using kvmxx::physaddr;
using kvmxx::backend::elf_core;
using kvmxx_test::amd64_page_tables;
using kvmxx_test::core_class;
using kvmxx_test::core_endian;
using kvmxx_test::elf_core_builder;
using kvmxx_test::phys_state;
using kvmxx_test::qemu_cpu_state;
namespace ecc = kvmxx_test::elf_core_const;
using handle = kvmxx::kernel_memory<elf_core, kvmxx::arch::amd64, kvmxx::resolver::none>;
using Catch::Matchers::Contains;
using u64 = std::uint64_t;
using bytes_t = std::vector<std::byte>;

constexpr u64 P = 4096;
constexpr const char* mem_name = "test-vmcore.elf";

std::string hex(u64 v) { return "0x" + elf_core_builder::hex(v); }

std::string code_text(const std::error_code& ec) {
  return std::string(ec.category().name()) + ":" + std::to_string(ec.value()) + " (" + ec.message() + ")";
}
template <class T>
std::string outcome(const kvmxx::result<T>& r) {
  return r.has_value() ? std::string("success") : code_text(r.error());
}
// The recorded message of a failed call ("" on success); call right after the call.
template <class T>
std::string message_of(const kvmxx::result<T>& r) {
  return r.has_value() ? std::string() : kvmxx::describe(r.error());
}

elf_core open_bytes(const bytes_t& bytes, std::string name = mem_name) {
  auto r = elf_core::from_bytes(bytes, std::move(name));
  INFO(message_of(r));
  REQUIRE(r.has_value());
  return std::move(r).value();
}

handle adopt_core(kvmxx::result<elf_core> core) {
  INFO(message_of(core));
  REQUIRE(core.has_value());
  auto km = handle::adopt(std::move(core).value(), {});
  INFO(message_of(km));
  REQUIRE(km.has_value());
  return std::move(km).value();
}

bytes_t bytes_of(std::string_view s) {
  bytes_t v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

// Checks one read against the prefix rule (fail when the first byte is unavailable, else
// the readable prefix); "" when it matches, else what differed.
std::string compare_read(const kvmxx::result<std::size_t>& got, const bytes_t& buf, const bytes_t& expected,
                         std::size_t len) {
  if (expected.empty() && len > 0) {
    if (got.has_value()) return "expected a failure, got " + std::to_string(got.value()) + " bytes";
    return got.error().category() == kvmxx::error_category() ? "" : "unexpected error " + code_text(got.error());
  }
  if (!got.has_value()) return "expected " + std::to_string(expected.size()) + " bytes, got " + code_text(got.error());
  if (got.value() != expected.size())
    return "expected " + std::to_string(expected.size()) + " bytes, got " + std::to_string(got.value());
  if (!std::equal(expected.begin(), expected.end(), buf.begin())) return "bytes differ from the oracle";
  return "";
}

std::array<u64, 27> regs_for(u64 base) {
  std::array<u64, 27> r{};
  for (std::size_t i = 0; i < r.size(); ++i) r[i] = base + 0x0101010101ull * (i + 1);
  return r;
}

// A small core of any flavour: two adjacent segments (non-adjacent in the file), a gap,
// a segment whose last pages were excluded, and a VMCOREINFO note.
elf_core_builder small_core(core_class c = core_class::elf64, core_endian e = core_endian::little, u64 seed = 3) {
  elf_core_builder b(c, e, seed);
  b.vmcoreinfo("OSRELEASE=6.1.0-test\nPAGESIZE=4096\n");
  b.segment(0x1000, 0x3000);
  b.segment(0x4000, 0x2000);
  b.segment(0x10000, 0x4000, 0x1000);  // [0x11000, 0x14000) excluded
  return b;
}

// ---- the page-table scenario -----------------------------------------------------------
//
// Physical memory: A [0, 1 MiB) dumped whole (tables from 0x80000, 4 KiB data pages);
// B [2 MiB, 8 MiB) whose last MiB was excluded (2 MiB pages at 2, 4 and 6 MiB); C: the
// first 512 KiB of the 1 GiB page at 1 GiB. Everything else is a gap. Mappings: 48 4 KiB
// kernel-text pages on shuffled frames (some excluded, some in gaps), a 4 KiB page whose
// page table sits in the excluded tail, 2 MiB and 1 GiB direct-map pages.
struct paged_core {
  elf_core_builder b;
  amd64_page_tables pt;
  u64 dmap = 0, text = 0;
};

constexpr u64 text_base = 0xffffffff81000000ull;
constexpr u64 lonely_va = 0xffffffffa0000000ull;  // its page table is in an excluded page
constexpr u64 table_pool = 0x80000;

enum class root_from { vmcoreinfo, cr3, none };

struct paged_options {
  unsigned levels = 4;
  u64 entry_bits = 0;         // e.g. the SME C-bit
  bool sme_in_vmcoreinfo = true;
  root_from root = root_from::vmcoreinfo;
  std::int64_t phys_base = 0;
  bool noise = true;
  u64 seed = 21;
};

paged_core make_paged(const paged_options& o) {
  paged_core p{elf_core_builder(core_class::elf64, core_endian::little, o.seed),
               amd64_page_tables(o.levels, table_pool, 0x40000, o.entry_bits, o.seed + 1), 0, text_base};
  auto& b = p.b;
  auto& pt = p.pt;
  pt.noise(o.noise);
  p.dmap = o.levels == 5 ? 0xff11000000000000ull : 0xffff888000000000ull;
  b.segment(0, 0x100000);
  b.segment(0x200000, 0x600000, 0x500000);
  b.segment(0x40000000, 0x80000);

  std::mt19937_64 rng(o.seed);
  std::vector<u64> frames;
  for (u64 pa = 0x1000; pa < table_pool; pa += P) frames.push_back(pa);
  std::shuffle(frames.begin(), frames.end(), rng);
  frames.resize(40);
  for (u64 pa : {0x700000ull, 0x701000ull, 0x7ff000ull, 0x900000ull, 0x903000ull, 0x1234000ull, 0x100000ull,
                 0xfff000ull})
    frames.push_back(pa);  // excluded (0x7xxxxx) or in no segment
  std::shuffle(frames.begin(), frames.end(), rng);
  for (std::size_t i = 0; i < frames.size(); ++i) pt.map_4k(text_base + i * P, frames[i]);
  pt.next_table_at(0x7fe000);  // the next new table lands in B's excluded tail
  pt.map_4k(lonely_va, 0x2000);
  for (u64 pa : {0x200000ull, 0x400000ull, 0x600000ull, 0xa00000ull}) pt.map_2m(p.dmap + pa, pa);
  pt.map_1g(p.dmap + 0x40000000, 0x40000000);
  pt.install(b);

  std::string vmci = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\n";
  if (o.root == root_from::vmcoreinfo) {
    vmci += amd64_page_tables::root_vmcoreinfo(pt.root(), o.phys_base);
    vmci += "NUMBER(pgtable_l5_enabled)=" + std::to_string(o.levels == 5 ? 1 : 0) + "\n";
    if (o.entry_bits != 0 && o.sme_in_vmcoreinfo) vmci += "NUMBER(sme_mask)=" + std::to_string(o.entry_bits) + "\n";
    b.vmcoreinfo(vmci);
  } else if (o.root == root_from::cr3) {
    for (std::uint32_t cpu = 0; cpu < 2; ++cpu) b.prstatus(cpu + 1, regs_for(0x1000 * (cpu + 1)));
    for (std::uint32_t cpu = 0; cpu < 2; ++cpu) {
      qemu_cpu_state s;
      // PCID in bits 0-11, the PTI user-half bit 12, NOFLUSH in bit 63: all masked.
      s.cr = {0x80050033, 0x5794a9, 0, pt.root() | 0x0ab | (u64{1} << 12) | (u64{1} << 63),
              0x6f0 | (o.levels == 5 ? u64{1} << 12 : 0)};
      b.qemu_cpu(s);
    }
  } else {
    b.vmcoreinfo(vmci);  // no root in it
  }
  return p;
}

// A random virtual address near the mappings (or anywhere, or non-canonical) and length.
std::pair<u64, std::size_t> random_va(const amd64_page_tables& pt, std::mt19937_64& rng) {
  const auto& maps = pt.mappings();
  const u64 pick = rng() % 100;
  u64 va;
  if (pick < 85) {
    const auto& m = maps[rng() % maps.size()];
    const u64 span = std::min<u64>(m.size, 0x100000);
    va = m.va + rng() % span;
    if (rng() % 8 == 0) va -= rng() % 0x2000;
  } else if (pick < 95) {
    va = (pt.levels() == 5 ? 0xff00000000000000ull : 0xffff800000000000ull) | (rng() & 0x00007fffffffffffull);
  } else {
    va = pt.levels() == 5 ? 0x0100000000000000ull | (rng() & 0xffffff) : 0x0000800000000000ull | (rng() & 0xffffff);
  }
  const u64 kind = rng() % 10;
  std::size_t len = kind < 4 ? rng() % 17 : kind < 8 ? rng() % 6000 : rng() % 0x5000;
  return {va, len};
}

// Reads `count` random virtual ranges through km and compares each with the oracle,
// including the error kind of reads whose first byte is unavailable.
void check_random_virtual_reads(const handle& km, const paged_core& p, int count, u64 seed) {
  std::mt19937_64 rng(seed);
  int checked_ok = 0, checked_fail = 0;
  for (int i = 0; i < count; ++i) {
    const auto [va, len] = random_va(p.pt, rng);
    const bytes_t expected = p.pt.read_virt_prefix(p.b, va, len);
    bytes_t buf(len);
    const auto got = km.read(kvaddr{va}, buf);
    const std::string diff = compare_read(got, buf, expected, len);
    INFO("va " << hex(va) << " len " << len << ": " << diff << " / " << message_of(got));
    REQUIRE(diff.empty());
    if (expected.empty() && len > 0) {
      const auto w = p.pt.walk(p.b, va);
      const errc want = (w.status == amd64_page_tables::walk_status::unmapped ||
                         w.status == amd64_page_tables::walk_status::non_canonical)
                            ? errc::unmapped_address
                            : errc::page_not_dumped;
      INFO("walk status " << static_cast<int>(w.status));
      REQUIRE(got.error() == want);
      REQUIRE_THAT(message_of(got), Contains(hex(va)));
      ++checked_fail;
    } else {
      ++checked_ok;
    }
  }
  // The random mix must exercise both outcomes, or the comparison says little.
  CHECK(checked_ok > count / 10);
  CHECK(checked_fail > count / 20);
}

}  // namespace

// ---- probe ------------------------------------------------------------------------------

TEST_CASE("probe accepts ET_CORE files of either class and byte order", "[backend][elf_core]") {
  for (auto c : {core_class::elf32, core_class::elf64})
    for (auto e : {core_endian::little, core_endian::big})
      for (bool qemu : {false, true}) {
        CAPTURE(static_cast<int>(c), static_cast<int>(e), qemu);
        auto b = small_core(c, e);
        b.qemu_layout(qemu);
        const auto bytes = b.build();
        CHECK(elf_core::probe(bytes));
        CHECK(elf_core::probe(std::span<const std::byte>(bytes).first(20)));  // e_type is all it needs
      }
}

TEST_CASE("probe refuses ET_EXEC, FreeBSD full dumps (EI_OSABI 255) and non-ELF bytes", "[backend][elf_core]") {
  for (auto c : {core_class::elf32, core_class::elf64}) {
    CAPTURE(static_cast<int>(c));
    auto exec = small_core(c);
    exec.type(ecc::et_exec);
    CHECK_FALSE(elf_core::probe(exec.build()));
    auto dyn = small_core(c);
    dyn.type(ecc::et_dyn);
    CHECK_FALSE(elf_core::probe(dyn.build()));
    auto freebsd_full = small_core(c);
    freebsd_full.osabi(ecc::elfosabi_standalone);
    CHECK_FALSE(elf_core::probe(freebsd_full.build()));
    auto freebsd_abi = small_core(c);  // only 255 marks the FreeBSD full dump
    freebsd_abi.osabi(ecc::elfosabi_freebsd);
    CHECK(elf_core::probe(freebsd_abi.build()));
  }
  auto bad_class = small_core().build();
  bad_class[4] = std::byte{3};
  CHECK_FALSE(elf_core::probe(bad_class));
  auto bad_data = small_core().build();
  bad_data[5] = std::byte{0};
  CHECK_FALSE(elf_core::probe(bad_data));
  CHECK_FALSE(elf_core::probe({}));
  CHECK_FALSE(elf_core::probe(bytes_of("\x7f" "ELF")));
  CHECK_FALSE(elf_core::probe(bytes_of("minidump FreeBSD/amd64")));
  CHECK_FALSE(elf_core::probe(bytes_of("KDUMP   \x06\0\0\0")));
  CHECK_FALSE(elf_core::probe(bytes_t(4096)));
  CHECK_FALSE(elf_core::probe(kvmxx_test::amd64_minidump_builder(3, 1).build()));
}

TEST_CASE("from_bytes refuses what the probe refuses with not_a_dump naming the file", "[backend][elf_core]") {
  auto exec = small_core();
  exec.type(ecc::et_exec);
  auto freebsd_full = small_core();
  freebsd_full.osabi(ecc::elfosabi_standalone);
  for (const auto& bytes : {exec.build(), freebsd_full.build(), bytes_of("#!/bin/sh\necho not a dump\n")}) {
    const auto r = elf_core::from_bytes(bytes, "weird.core");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::not_a_dump);
    CHECK_THAT(message_of(r), Contains("weird.core"));
  }
}

TEST_CASE("the ELF core probe and the minidump probe never both claim a file", "[backend][elf_core]") {
  std::vector<bytes_t> files;
  for (auto c : {core_class::elf32, core_class::elf64})
    for (auto e : {core_endian::little, core_endian::big}) files.push_back(small_core(c, e).build());
  auto freebsd_full = small_core();
  freebsd_full.osabi(ecc::elfosabi_standalone);
  files.push_back(freebsd_full.build());
  for (std::uint32_t v : {1u, 2u, 3u}) files.push_back(kvmxx_test::amd64_minidump_builder(v, 5).build());
  std::mt19937_64 rng(99);
  for (int i = 0; i < 200; ++i) {
    bytes_t noise(64 + rng() % 200);
    for (auto& x : noise) x = static_cast<std::byte>(rng());
    if (i % 2 == 0) std::memcpy(noise.data(), "\x7f" "ELF", 4);
    if (i % 4 == 0) std::memcpy(noise.data(), "minidump", 8);
    files.push_back(std::move(noise));
  }
  for (const auto& f : files) {
    const bool elf = elf_core::probe(f), minidump = kvmxx::backend::minidump::probe(f);
    CHECK_FALSE((elf && minidump));
    CHECK(kvmxx::count_matching_probes(f) <= 1);
    CHECK(kvmxx::count_matching_probes(f) >= (elf || minidump ? 1u : 0u));
  }
  // Each format is claimed, by its own probe only.
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(elf_core::probe(files[i]));
    CHECK_FALSE(kvmxx::backend::minidump::probe(files[i]));
    CHECK(kvmxx::count_matching_probes(files[i]) == 1);
  }
  CHECK_FALSE(elf_core::probe(files[4]));  // the FreeBSD full dump is not a Linux core
  for (std::size_t i = 5; i < 8; ++i) {
    CHECK_FALSE(elf_core::probe(files[i]));
    CHECK(kvmxx::count_matching_probes(files[i]) == 1);
  }
}

// ---- open, machine, segments --------------------------------------------------------

TEST_CASE("open maps a core file and reports its path and bytes", "[backend][elf_core]") {
  kvmxx_test::temp_dir dir;
  const auto b = small_core();
  const auto bytes = b.build();
  const std::string path = dir.path("vmcore");
  kvmxx_test::write_file(path, bytes);
  auto r = elf_core::open(path.c_str());
  INFO(message_of(r));
  REQUIRE(r.has_value());
  const elf_core& core = r.value();
  CHECK(std::string(core.path()) == path);
  CHECK(core.machine() == kvmxx::machine::amd64);
  CHECK(core.os() == kvmxx::os_kind::linux_);
  CHECK(core.info().file_size == bytes.size());
  bytes_t buf(0x2000);
  const auto got = core.read_physical(physaddr{0x2800}, buf);
  REQUIRE(got.has_value());
  CHECK(got.value() == buf.size());
  CHECK(buf == *b.read_phys(0x2800, buf.size()));
}

TEST_CASE("machine() follows e_machine, and the byte order for 64-bit PowerPC", "[backend][elf_core]") {
  struct row {
    std::uint16_t em;
    core_class c;
    core_endian e;
    kvmxx::machine want;
  };
  const row rows[] = {
      {ecc::em_x86_64, core_class::elf64, core_endian::little, kvmxx::machine::amd64},
      {ecc::em_386, core_class::elf32, core_endian::little, kvmxx::machine::i386},
      {ecc::em_386, core_class::elf64, core_endian::little, kvmxx::machine::i386},  // §2.1: i386 tools may emit ELF64
      {ecc::em_aarch64, core_class::elf64, core_endian::little, kvmxx::machine::aarch64},
      {ecc::em_ppc64, core_class::elf64, core_endian::big, kvmxx::machine::powerpc64},
      {ecc::em_ppc64, core_class::elf64, core_endian::little, kvmxx::machine::powerpc64le},
      {ecc::em_arm, core_class::elf32, core_endian::little, kvmxx::machine::arm},
      {ecc::em_riscv, core_class::elf64, core_endian::little, kvmxx::machine::riscv64},
      {ecc::em_mips, core_class::elf32, core_endian::big, kvmxx::machine::mips},
  };
  for (const auto& r : rows) {
    CAPTURE(r.em, static_cast<int>(r.c), static_cast<int>(r.e));
    auto b = small_core(r.c, r.e);
    b.machine(r.em);
    const auto bytes = b.build();
    const elf_core core = open_bytes(bytes);
    CHECK(core.machine() == r.want);
    CHECK(core.info().arch == r.want);
    CHECK(core.os() == kvmxx::os_kind::linux_);
    // Physical reads do not depend on the architecture.
    bytes_t buf(0x100);
    const auto got = core.read_physical(physaddr{0x3f80}, buf);
    REQUIRE(got.has_value());
    CHECK(buf == *b.read_phys(0x3f80, buf.size()));
  }
}

TEST_CASE("an e_machine kvmxx has no architecture for is unsupported_format naming the value",
          "[backend][elf_core]") {
  const std::pair<std::uint16_t, core_class> rows[] = {
      {ecc::em_s390, core_class::elf64}, {ecc::em_sparcv9, core_class::elf64}, {ecc::em_ppc, core_class::elf32},
      {ecc::em_riscv, core_class::elf32}, {0x1234, core_class::elf64}};
  for (const auto& [em, c] : rows) {
    CAPTURE(em);
    auto b = small_core(c);
    b.machine(em);
    const auto bytes = b.build();
    const auto r = elf_core::from_bytes(bytes, mem_name);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::unsupported_format);
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains(std::to_string(em)));
  }
}

TEST_CASE("a core of another architecture cannot be adopted by an amd64 handle", "[backend][elf_core]") {
  auto b = small_core();
  b.machine(ecc::em_aarch64);
  const auto bytes = b.build();
  auto km = handle::adopt(open_bytes(bytes), {});
  REQUIRE_FALSE(km.has_value());
  CHECK(km.error() == errc::arch_mismatch);
}

TEST_CASE("segments() lists every PT_LOAD in file order with its addresses, offset and sizes",
          "[backend][elf_core]") {
  for (auto c : {core_class::elf32, core_class::elf64})
    for (auto e : {core_endian::little, core_endian::big}) {
      CAPTURE(static_cast<int>(c), static_cast<int>(e));
      elf_core_builder b(c, e, 8);
      b.vmcoreinfo("PAGESIZE=4096\n");
      b.segment(0x100000, 0x3000, 0x2000, 0xc0100000);  // p_vaddr differs from p_paddr
      b.phdr(ecc::pt_null, 0x5000, 0x1000, 0x10);        // other types are not segments
      b.segment(0x1000, 0x1000, std::nullopt, 0);        // QEMU 7.2's p_vaddr 0
      b.phdr(ecc::pt_dynamic, 0, 0, 8);
      b.segment(0x7000, 0x2000, 0);                      // all excluded
      const auto bytes = b.build();
      const elf_core core = open_bytes(bytes);
      const auto want = b.segments();
      REQUIRE(core.segments().size() == want.size());
      for (std::size_t i = 0; i < want.size(); ++i) {
        CAPTURE(i);
        CHECK(core.segments()[i].paddr == want[i].paddr);
        CHECK(core.segments()[i].vaddr == want[i].vaddr);
        CHECK(core.segments()[i].offset == want[i].offset);
        CHECK(core.segments()[i].filesz == want[i].filesz);
        CHECK(core.segments()[i].memsz == want[i].memsz);
      }
      // The PT_NULL's junk is no physical memory.
      bytes_t buf(16);
      CHECK(core.read_physical(physaddr{0x5000}, buf).error() == errc::page_not_dumped);
    }
}

TEST_CASE("a PT_LOAD with an all-ones p_paddr (kcore's vmalloc) is listed but is no physical memory",
          "[backend][elf_core]") {
  for (auto c : {core_class::elf32, core_class::elf64}) {
    CAPTURE(static_cast<int>(c));
    elf_core_builder b(c, core_endian::little, 4);
    const u64 none = c == core_class::elf64 ? ~u64{0} : 0xffffffffull;
    b.segment(0x1000, 0x1000);
    b.segment(none, 0x2000, std::nullopt, c == core_class::elf64 ? 0xffffc90000000000ull : 0xf8000000ull);
    const auto bytes = b.build();
    const elf_core core = open_bytes(bytes);
    CHECK(core.segments().size() == 2);
    bytes_t one(1);
    const auto r = core.read_physical(physaddr{none}, one);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::page_not_dumped);
    CHECK(core.info().ranges.size() == 1);
    CHECK(core.info().dumped_pages == 1);
  }
}

// ---- read_physical -------------------------------------------------------------------

TEST_CASE("read_physical crosses from one segment into the next, wherever their bytes are in the file",
          "[backend][elf_core]") {
  for (auto c : {core_class::elf32, core_class::elf64})
    for (auto e : {core_endian::little, core_endian::big}) {
      CAPTURE(static_cast<int>(c), static_cast<int>(e));
      elf_core_builder b(c, e, 17);
      b.file_gap(100);
      b.segment(0x4000, 0x2000);  // second in memory, first in the file
      b.segment(0x1000, 0x3000);
      const auto bytes = b.build();
      const elf_core core = open_bytes(bytes);
      bytes_t buf(0x2000);
      const auto got = core.read_physical(physaddr{0x3000}, buf);
      REQUIRE(got.has_value());
      CHECK(got.value() == 0x2000);
      CHECK(buf == *b.read_phys(0x3000, 0x2000));
      // The whole of both, in one read.
      bytes_t all(0x5000);
      REQUIRE(core.read_physical(physaddr{0x1000}, all).value() == 0x5000);
      CHECK(all == *b.read_phys(0x1000, 0x5000));
    }
}

TEST_CASE("a read into a gap fails with page_not_dumped naming the address, or stops short at the gap",
          "[backend][elf_core]") {
  const auto b = small_core();
  const auto bytes = b.build();
  const elf_core core = open_bytes(bytes);
  bytes_t buf(0x1000);
  SECTION("the first byte is in no segment") {
    for (u64 pa : {0x0ull, 0x6000ull, 0x9abcull, 0x14000ull, 0xfffffffff000ull}) {
      CAPTURE(pa);
      REQUIRE(b.state(pa) == phys_state::absent);
      const auto r = core.read_physical(physaddr{pa}, buf);
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error() == errc::page_not_dumped);
      CHECK_THAT(message_of(r), Contains(mem_name) && Contains(hex(pa)));
    }
  }
  SECTION("a later byte is in no segment") {
    const auto r = core.read_physical(physaddr{0x5800}, buf);
    REQUIRE(r.has_value());
    CHECK(r.value() == 0x800);
    CHECK(std::equal(buf.begin(), buf.begin() + 0x800, b.read_phys(0x5800, 0x800)->begin()));
    CHECK_THAT(kvmxx::last_error_message(), Contains(hex(0x6000)));
  }
}

TEST_CASE("excluded pages (p_filesz < p_memsz) read as page_not_dumped, never as zeros", "[backend][elf_core]") {
  const auto b = small_core();
  const auto bytes = b.build();
  const elf_core core = open_bytes(bytes);
  bytes_t buf(0x100);
  for (u64 pa : {0x11000ull, 0x11001ull, 0x12345ull, 0x13fffull}) {
    CAPTURE(pa);
    REQUIRE(b.state(pa) == phys_state::excluded);
    const auto r = core.read_physical(physaddr{pa}, buf);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::page_not_dumped);
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains(hex(pa)) && Contains("excluded"));
  }
  // A read that starts in the dumped part stops at the first excluded byte.
  bytes_t across(0x2000);
  const auto r = core.read_physical(physaddr{0x10800}, across);
  REQUIRE(r.has_value());
  CHECK(r.value() == 0x800);
  CHECK(std::equal(across.begin(), across.begin() + 0x800, b.read_phys(0x10800, 0x800)->begin()));
  CHECK_THAT(kvmxx::last_error_message(), Contains(hex(0x11000)) && Contains("excluded"));
}

TEST_CASE("overlapping segments: the one starting lower wins, and info() counts each byte once",
          "[backend][elf_core]") {
  elf_core_builder b(core_class::elf64, core_endian::little, 55);
  const std::size_t high = b.segment(0x14000, 0x8000);   // first in the file, starts higher
  const std::size_t inner = b.segment(0x11000, 0x1000);  // wholly inside `low`
  const std::size_t low = b.segment(0x10000, 0x8000);
  const auto bytes = b.build();
  const elf_core core = open_bytes(bytes);
  const auto seg = [&](std::size_t i, u64 off, std::size_t n) {
    const auto& d = b.segment_bytes(i);
    return bytes_t(d.begin() + static_cast<std::ptrdiff_t>(off), d.begin() + static_cast<std::ptrdiff_t>(off + n));
  };
  bytes_t buf(0x10);
  REQUIRE(core.read_physical(physaddr{0x14000}, buf).value() == 0x10);
  CHECK(buf == seg(low, 0x4000, 0x10));
  CHECK(buf != seg(high, 0, 0x10));  // random contents: the two differ
  REQUIRE(core.read_physical(physaddr{0x11000}, buf).value() == 0x10);
  CHECK(buf == seg(low, 0x1000, 0x10));
  CHECK(buf != seg(inner, 0, 0x10));
  REQUIRE(core.read_physical(physaddr{0x19000}, buf).value() == 0x10);
  CHECK(buf == seg(high, 0x5000, 0x10));
  // One read across the hand-over, against the writer's rule.
  bytes_t all(0xc000);
  REQUIRE(core.read_physical(physaddr{0x10000}, all).value() == 0xc000);
  CHECK(all == *b.read_phys(0x10000, 0xc000));

  const auto info = core.info();
  REQUIRE(info.ranges.size() == 1);
  CHECK(kvmxx::to_integer(info.ranges[0].start) == 0x10000);
  CHECK(kvmxx::to_integer(info.ranges[0].end) == 0x1c000);
  CHECK(info.dumped_pages == b.dumped_bytes() / P);
  CHECK(info.dumped_pages == 12);  // not 8 + 1 + 8
}

TEST_CASE("a 0-byte read succeeds anywhere, even where nothing is dumped", "[backend][elf_core]") {
  const auto b = small_core();
  const auto bytes = b.build();
  const elf_core core = open_bytes(bytes);
  for (u64 pa : {u64{0x1000}, u64{0x6000}, u64{0x11000}, ~u64{0}}) {
    CAPTURE(pa);
    const auto r = core.read_physical(physaddr{pa}, std::span<std::byte>());
    REQUIRE(r.has_value());
    CHECK(r.value() == 0);
  }
}

TEST_CASE("random physical reads agree with the oracle in all four ELF flavours", "[backend][elf_core]") {
  for (auto c : {core_class::elf32, core_class::elf64})
    for (auto e : {core_endian::little, core_endian::big}) {
      CAPTURE(static_cast<int>(c), static_cast<int>(e));
      elf_core_builder b(c, e, 1000 + static_cast<u64>(c) * 2 + static_cast<u64>(e));
      b.segment(0x0, 0x9f000);
      b.segment(0x100000, 0x80000, 0x50000);
      b.segment(0x180000, 0x20000);           // right after an excluded tail
      b.segment(0x170000, 0x18000, 0x8000);   // overlaps both neighbours
      b.segment(0xfffc0000, 0x40000);         // the BIOS ROM at the top of 32 bits
      const auto bytes = b.build();
      const elf_core core = open_bytes(bytes);
      std::mt19937_64 rng(7);
      for (int i = 0; i < 1500; ++i) {
        const u64 pa = rng() % 3 == 0 ? 0xfffb0000 + rng() % 0x50000 : rng() % 0x1b0000;
        const std::size_t len = rng() % 4 == 0 ? rng() % 0x30000 : rng() % 0x2100;
        bytes_t buf(len);
        const auto got = core.read_physical(physaddr{pa}, buf);
        const auto diff = compare_read(got, buf, b.read_phys_prefix(pa, len), len);
        INFO("pa " << hex(pa) << " len " << len << ": " << diff);
        REQUIRE(diff.empty());
        if (!got.has_value()) REQUIRE(got.error() == errc::page_not_dumped);
      }
      const auto info = core.info();
      const auto ranges = b.phys_ranges();
      REQUIRE(info.ranges.size() == ranges.size());
      for (std::size_t i = 0; i < ranges.size(); ++i) {
        CHECK(kvmxx::to_integer(info.ranges[i].start) == ranges[i].first);
        CHECK(kvmxx::to_integer(info.ranges[i].end) == ranges[i].second);
      }
      CHECK(info.dumped_pages == b.dumped_bytes() / P);
    }
}

TEST_CASE("info() names the format and describes the image", "[backend][elf_core]") {
  SECTION("a plain vmcore") {
    const auto b = small_core();
    const auto bytes = b.build();
    const auto info = open_bytes(bytes).info();
    CHECK_THAT(info.format, Contains("Linux ELF core"));
    CHECK_THAT(info.format, !Contains("QEMU"));
    CHECK(info.arch == kvmxx::machine::amd64);
    CHECK(info.os == kvmxx::os_kind::linux_);
    CHECK(info.page_size == P);
    CHECK(info.file_size == bytes.size());
    CHECK(info.dumped_pages == 6);  // 3 + 2 + 1 dumped pages
    REQUIRE(info.ranges.size() == 2);
    CHECK(kvmxx::to_integer(info.ranges[0].start) == 0x1000);
    CHECK(kvmxx::to_integer(info.ranges[0].end) == 0x6000);  // adjacent segments merge
    CHECK(kvmxx::to_integer(info.ranges[1].start) == 0x10000);
    CHECK(kvmxx::to_integer(info.ranges[1].end) == 0x14000);  // the excluded tail is described memory
  }
  SECTION("a QEMU dump says so") {
    auto b = small_core();
    b.qemu_cpu(qemu_cpu_state{});
    const auto bytes = b.build();
    CHECK_THAT(open_bytes(bytes).info().format, Contains("QEMU"));
  }
}

// ---- program-header layouts ------------------------------------------------------------

TEST_CASE("QEMU 7.2's layout is read where e_phoff says (section table at 64, e_phoff 192, e_ehsize 8)",
          "[backend][elf_core]") {
  for (auto c : {core_class::elf32, core_class::elf64}) {
    CAPTURE(static_cast<int>(c));
    auto b = small_core(c);
    b.qemu_layout();
    const auto lay = b.file_layout();
    if (c == core_class::elf64) {
      REQUIRE(lay.phoff == 192);
      REQUIRE(lay.shoff == 64);
    }
    const auto bytes = b.build();
    const elf_core core = open_bytes(bytes);
    REQUIRE(core.segments().size() == 3);
    CHECK(core.segments()[0].offset == lay.segment_offsets[0]);
    CHECK(core.vmcoreinfo().osrelease() == std::optional<std::string_view>("6.1.0-test"));
    bytes_t buf(0x5000);
    REQUIRE(core.read_physical(physaddr{0x1000}, buf).value() == 0x5000);
    CHECK(buf == *b.read_phys(0x1000, 0x5000));
  }
}

TEST_CASE("PN_XNUM takes the program-header count from section 0's sh_info", "[backend][elf_core]") {
  SECTION("a few segments, any flavour, QEMU placement or not") {
    for (auto c : {core_class::elf32, core_class::elf64})
      for (auto e : {core_endian::little, core_endian::big})
        for (bool qemu : {false, true}) {
          CAPTURE(static_cast<int>(c), static_cast<int>(e), qemu);
          auto b = small_core(c, e);
          b.pn_xnum().qemu_layout(qemu);
          const auto bytes = b.build();
          const elf_core core = open_bytes(bytes);
          CHECK(core.segments().size() == 3);
          CHECK(core.vmcoreinfo().osrelease() == std::optional<std::string_view>("6.1.0-test"));
          bytes_t buf(0x800);
          REQUIRE(core.read_physical(physaddr{0x10800}, buf).value() == 0x800);
          CHECK(buf == *b.read_phys(0x10800, 0x800));
        }
  }
  SECTION("more program headers than e_phnum can hold (QEMU paging=true writes ~65,700)") {
    elf_core_builder b(core_class::elf64, core_endian::little, 77);
    b.qemu_layout().pn_xnum().file_gap(0);
    b.vmcoreinfo("OSRELEASE=6.1.0-test\n");
    constexpr std::size_t n = 70000;
    for (std::size_t i = 0; i < n; ++i) b.segment(i * P, 64);
    const auto bytes = b.build();
    const elf_core core = open_bytes(bytes);
    REQUIRE(core.segments().size() == n);
    CHECK(core.info().ranges.size() == n);
    std::mt19937_64 rng(3);
    for (int k = 0; k < 2000; ++k) {
      const std::size_t i = k == 0 ? n - 1 : rng() % n;
      bytes_t buf(64);
      REQUIRE(core.read_physical(physaddr{i * P}, buf).value() == 64);
      REQUIRE(buf == b.segment_bytes(i));
      REQUIRE(core.read_physical(physaddr{i * P + 64}, buf).error() == errc::page_not_dumped);
    }
  }
}

// ---- notes ----------------------------------------------------------------------------

TEST_CASE("vmcoreinfo() holds the note's text and its values", "[backend][elf_core]") {
  const std::string text =
      "OSRELEASE=6.1.0-56-amd64\nBUILD-ID=eb4fbcd037e7253717950bf2b93bd5566f47c56f\nPAGESIZE=4096\n"
      "SYMBOL(init_uts_ns)=ffffffff85bfb000\nOFFSET(uts_namespace.name)=0\nSIZE(page)=64\n"
      "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129\nNUMBER(phys_base)=98566144\nKERNELOFFSET=3000000\n"
      "CRASHTIME=1700000000\n";
  for (auto e : {core_endian::little, core_endian::big}) {
    CAPTURE(static_cast<int>(e));
    elf_core_builder b(core_class::elf64, e, 2);
    b.prstatus(1, regs_for(0));  // a note before it
    b.vmcoreinfo(text);
    b.segment(0x1000, 0x1000);
    const auto bytes = b.build();
    const elf_core core = open_bytes(bytes);
    const auto& v = core.vmcoreinfo();
    CHECK(v.text() == text);
    CHECK(v.osrelease() == std::optional<std::string_view>("6.1.0-56-amd64"));
    CHECK(v.symbol("init_uts_ns") == std::optional<u64>(0xffffffff85bfb000ull));
    CHECK(v.offset("uts_namespace.name") == std::optional<std::int64_t>(0));
    CHECK(v.size("page") == std::optional<std::int64_t>(64));
    CHECK(v.number("PAGE_BUDDY_MAPCOUNT_VALUE") == std::optional<std::int64_t>(-129));
    CHECK(v.number("phys_base") == std::optional<std::int64_t>(98566144));  // decimal, not QEMU's hex
    CHECK(v.get("CRASHTIME") == std::optional<std::string_view>("1700000000"));
    CHECK(core.kerndisp() == 0x3000000);
    CHECK(core.page_size() == P);
  }
}

TEST_CASE("a core without VMCOREINFO has an empty vmcoreinfo() and default facts", "[backend][elf_core]") {
  elf_core_builder b;
  b.segment(0, 0x2000);
  const auto bytes = b.build();
  const elf_core core = open_bytes(bytes);
  CHECK(core.vmcoreinfo().empty());
  CHECK(core.vmcoreinfo().text().empty());
  CHECK(core.cpus().empty());
  CHECK_FALSE(core.from_qemu());
  CHECK(core.kerndisp() == 0);
  CHECK(core.page_size() == P);
  CHECK(core.pte_clear_mask() == 0);
}

TEST_CASE("PAGESIZE in VMCOREINFO sets page_size() (64 KiB arm64 kernels)", "[backend][elf_core]") {
  elf_core_builder b;
  b.machine(ecc::em_aarch64);
  b.vmcoreinfo("OSRELEASE=6.1.0-arm64\nPAGESIZE=65536\n");
  b.segment(0x40000000, 0x20000);
  const auto bytes = b.build();
  const elf_core core = open_bytes(bytes);
  CHECK(core.page_size() == 65536);
  CHECK(core.info().page_size == 65536);
  CHECK(core.info().dumped_pages == 2);
}

TEST_CASE("cpus() takes pid and registers from NT_PRSTATUS and CR0-CR4 from QEMU notes", "[backend][elf_core]") {
  for (auto e : {core_endian::little, core_endian::big}) {
    CAPTURE(static_cast<int>(e));
    elf_core_builder b(core_class::elf64, e, 9);
    // QEMU's order: every CPU's NT_PRSTATUS, then every CPU's QEMU note, then VMCOREINFO.
    const auto r1 = regs_for(0xffffffff81000000ull), r2 = regs_for(0xffff888000000000ull);
    b.prstatus(1, r1).prstatus(2, r2);
    qemu_cpu_state s1, s2;
    s1.cr = {0x80050033, 0x5794a9, 0, 0x5f84000, 0x6f0};
    s2.cr = {0x80050033, 0x68e000, 0, 0x4904000, 0x6e0};
    for (std::size_t i = 0; i < 18; ++i) s1.gpr[i] = 0xaaaa0000 + i, s2.gpr[i] = 0xbbbb0000 + i;
    b.qemu_cpu(s1).qemu_cpu(s2);
    b.vmcoreinfo("OSRELEASE=6.1.0-test\n");
    b.segment(0, 0x1000);
    const auto bytes = b.build();
    const elf_core core = open_bytes(bytes);
    CHECK(core.from_qemu());
    REQUIRE(core.cpus().size() == 2);
    CHECK(core.cpus()[0].pid == 1);
    CHECK(core.cpus()[1].pid == 2);
    CHECK(core.cpus()[0].has_gpr);
    CHECK(core.cpus()[1].has_gpr);
    CHECK(core.cpus()[0].gpr == r1);
    CHECK(core.cpus()[1].gpr == r2);
    CHECK(core.cpus()[0].gpr[16] == r1[16]);  // rip
    REQUIRE(core.cpus()[0].cr.has_value());
    REQUIRE(core.cpus()[1].cr.has_value());
    CHECK(*core.cpus()[0].cr == s1.cr);
    CHECK(*core.cpus()[1].cr == s2.cr);
  }
}

TEST_CASE("a kexec vmcore (NT_PRSTATUS only) is not from QEMU and has no control registers",
          "[backend][elf_core]") {
  elf_core_builder b;
  b.prstatus(1, regs_for(1)).prstatus(2, regs_for(2)).prstatus(3, regs_for(3));
  b.vmcoreinfo("OSRELEASE=6.1.0-test\n");
  b.segment(0, 0x1000);
  const auto bytes = b.build();
  const elf_core core = open_bytes(bytes);
  CHECK_FALSE(core.from_qemu());
  REQUIRE(core.cpus().size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    CHECK(core.cpus()[i].pid == i + 1);
    CHECK(core.cpus()[i].gpr == regs_for(i + 1));
    CHECK_FALSE(core.cpus()[i].cr.has_value());
  }
  CHECK_FALSE(core.page_table_root().has_value());
}

TEST_CASE("notes spread over several PT_NOTE segments are all read", "[backend][elf_core]") {
  elf_core_builder b;
  b.notes_per_segment();
  b.prstatus(1, regs_for(1)).prstatus(2, regs_for(2));
  b.vmcoreinfo("OSRELEASE=6.1.0-split\nSYMBOL(init_top_pgt)=ffffffff82a10000\nNUMBER(phys_base)=0\n");
  b.segment(0, 0x1000);
  REQUIRE(b.file_layout().note_segment_offsets.size() == 3);
  const auto bytes = b.build();
  const elf_core core = open_bytes(bytes);
  CHECK(core.cpus().size() == 2);
  CHECK(core.vmcoreinfo().osrelease() == std::optional<std::string_view>("6.1.0-split"));
  CHECK(core.page_table_root() == std::optional<physaddr>(physaddr{0x2a10000}));
}

TEST_CASE("the parsed VMCOREINFO survives moving the backend, even when its text is short",
          "[backend][elf_core]") {
  elf_core_builder b;
  b.vmcoreinfo("PAGESIZE=8192\n");  // 14 bytes: kept inside a std::string (SSO)
  b.segment(0, 0x4000);
  const auto bytes = b.build();
  elf_core first = open_bytes(bytes);
  elf_core second(std::move(first));
  elf_core third = open_bytes(bytes);
  third = std::move(second);
  CHECK(third.vmcoreinfo().get("PAGESIZE") == std::optional<std::string_view>("8192"));
  CHECK(third.page_size() == 8192);
  auto km = handle::adopt(std::move(third), {});
  REQUIRE(km.has_value());
  handle moved = std::move(km).value();
  CHECK(moved.source().vmcoreinfo().get("PAGESIZE") == std::optional<std::string_view>("8192"));
  bytes_t buf(0x10);
  REQUIRE(moved.read_physical(physaddr{0x3000}, buf).value() == 0x10);
  CHECK(buf == *b.read_phys(0x3000, 0x10));
}

// ---- page-table root and paging mode ------------------------------------------------

TEST_CASE("page_table_root converts the VMCOREINFO root symbol with NUMBER(phys_base)", "[backend][elf_core]") {
  for (const char* sym : {"init_top_pgt", "swapper_pg_dir", "init_level4_pgt"}) {
    for (std::int64_t phys_base : {std::int64_t{0}, std::int64_t{0x5e00000}, std::int64_t{-723517440}}) {
      CAPTURE(sym, phys_base);
      // The root is where the kernel is: pick one that the phys_base can reach.
      const u64 root = 0x2a10000 + (phys_base > 0 ? static_cast<u64>(phys_base) : 0);
      elf_core_builder b;
      b.vmcoreinfo("OSRELEASE=6.1.0-test\n" + amd64_page_tables::root_vmcoreinfo(root, phys_base, sym));
      b.segment(0, 0x1000);
      const auto bytes = b.build();
      const elf_core core = open_bytes(bytes);
      CHECK(core.page_table_root() == std::optional<physaddr>(physaddr{root}));
    }
  }
}

TEST_CASE("a negative NUMBER(phys_base), printed with %ld under KASLR, still gives the right root",
          "[backend][elf_core]") {
  // real-linux-dumps.md: NUMBER(phys_base)=-723517440 when the virtual offset exceeds the
  // physical one. init_top_pgt here is 0xffffffffad810000 → PA 0x2d810000 - 0x2b200000.
  elf_core_builder b;
  b.vmcoreinfo("OSRELEASE=6.1.0-test\nSYMBOL(init_top_pgt)=ffffffffad810000\nNUMBER(phys_base)=-723517440\n");
  b.segment(0, 0x1000);
  const auto bytes = b.build();
  const elf_core core = open_bytes(bytes);
  CHECK(core.page_table_root() == std::optional<physaddr>(physaddr{0x2d810000ull - 723517440ull}));
  CHECK(core.page_table_root() == std::optional<physaddr>(physaddr{0x2610000}));
}

TEST_CASE("the VMCOREINFO root needs NUMBER(phys_base): without it and without CR3 there is no root",
          "[backend][elf_core]") {
  elf_core_builder b;
  b.vmcoreinfo("OSRELEASE=6.1.0-test\nSYMBOL(init_top_pgt)=ffffffff82a10000\n");
  b.segment(0, 0x1000);
  const auto bytes = b.build();
  CHECK_FALSE(open_bytes(bytes).page_table_root().has_value());
}

TEST_CASE("without VMCOREINFO the root is CR3 of the first QEMU note with bits 0-12 masked", "[backend][elf_core]") {
  const u64 cr3_values[] = {0x5f84000ull, 0x5f85000ull /* PTI user half */, 0x5f84abcull /* PCID */,
                            0x8000000005f85fffull /* NOFLUSH */};
  for (u64 cr3 : cr3_values) {
    CAPTURE(cr3);
    elf_core_builder b;
    b.prstatus(1, regs_for(1)).prstatus(2, regs_for(2));
    qemu_cpu_state s0, s1;
    s0.cr = {0x80050033, 0, 0, cr3, 0x6f0};
    s1.cr = {0x80050033, 0, 0, 0x1234000, 0x6f0};  // the second CPU's (lazy-TLB) CR3 is not used
    b.qemu_cpu(s0).qemu_cpu(s1);
    b.segment(0, 0x1000);
    const auto bytes = b.build();
    const elf_core core = open_bytes(bytes);
    CHECK(core.page_table_root() == std::optional<physaddr>(physaddr{0x5f84000}));
  }
}

TEST_CASE("the VMCOREINFO root is preferred over CR3", "[backend][elf_core]") {
  elf_core_builder b;
  qemu_cpu_state s;
  s.cr = {0x80050033, 0, 0, 0x5f84000, 0x6f0};
  b.prstatus(1, regs_for(1)).qemu_cpu(s);
  b.vmcoreinfo("OSRELEASE=6.1.0-test\n" + amd64_page_tables::root_vmcoreinfo(0xb810000, 0x5e00000));
  b.segment(0, 0x1000);
  const auto bytes = b.build();
  CHECK(open_bytes(bytes).page_table_root() == std::optional<physaddr>(physaddr{0xb810000}));
}

TEST_CASE("a QEMU note shorter than QEMUCPUState's control registers is not read", "[backend][elf_core]") {
  elf_core_builder b;
  qemu_cpu_state s;
  s.cr = {0x80050033, 0, 0, 0x5f84000, 0x6f0};
  s.descsz = 400;  // ends inside cr[1]
  b.prstatus(1, regs_for(1)).qemu_cpu(s);
  b.segment(0, 0x1000);
  const auto bytes = b.build();
  const elf_core core = open_bytes(bytes);
  CHECK_FALSE(core.page_table_root().has_value());
  REQUIRE(core.cpus().size() == 1);
  CHECK_FALSE(core.cpus()[0].cr.has_value());
}

TEST_CASE("paging_levels comes from NUMBER(pgtable_l5_enabled), else CR4.LA57, else 4", "[backend][elf_core]") {
  const auto levels_of = [](const elf_core_builder& b) {
    const auto bytes = b.build();
    return open_bytes(bytes).paging_levels();
  };
  for (int l5 : {0, 1}) {
    elf_core_builder b;
    b.vmcoreinfo("OSRELEASE=6.1.0-test\nNUMBER(pgtable_l5_enabled)=" + std::to_string(l5) + "\n");
    b.segment(0, 0x1000);
    CHECK(levels_of(b) == (l5 ? 5u : 4u));
  }
  for (u64 cr4 : {0x6f0ull, 0x6f0ull | 0x1000ull, 0x3506f0ull | 0x1000ull}) {
    CAPTURE(cr4);
    elf_core_builder b;
    qemu_cpu_state s;
    s.cr = {0x80050033, 0, 0, 0x5f84000, cr4};
    b.prstatus(1, regs_for(1)).qemu_cpu(s);
    b.segment(0, 0x1000);
    CHECK(levels_of(b) == ((cr4 >> 12) & 1 ? 5u : 4u));
  }
  elf_core_builder plain;
  plain.segment(0, 0x1000);
  CHECK(levels_of(plain) == 4);
}

TEST_CASE("a core with no root fails virtual reads with not_supported", "[backend][elf_core]") {
  auto p = make_paged({.levels = 4, .root = root_from::none});
  const auto bytes = p.b.build();
  auto core = elf_core::from_bytes(bytes, mem_name);
  REQUIRE(core.has_value());
  CHECK_FALSE(core.value().page_table_root().has_value());
  const handle km = adopt_core(std::move(core));
  bytes_t buf(8);
  const auto r = km.read(kvaddr{text_base}, buf);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::not_supported);
}

// ---- virtual reads through kernel_memory ----------------------------------------------

TEST_CASE("virtual reads through 4-level tables (4 KiB, 2 MiB, 1 GiB pages) agree with the oracle",
          "[backend][elf_core]") {
  for (std::int64_t phys_base : {std::int64_t{0}, std::int64_t{-0x20000000}}) {
    CAPTURE(phys_base);
    auto p = make_paged({.levels = 4, .phys_base = phys_base});
    const auto bytes = p.b.build();
    auto core = elf_core::from_bytes(bytes, mem_name);
    REQUIRE(core.has_value());
    CHECK(core.value().page_table_root() == std::optional<physaddr>(physaddr{p.pt.root()}));
    CHECK(core.value().paging_levels() == 4);
    const handle km = adopt_core(std::move(core));
    check_random_virtual_reads(km, p, 3000, 11);
  }
}

TEST_CASE("virtual reads through 5-level tables agree with the oracle", "[backend][elf_core]") {
  auto p = make_paged({.levels = 5, .seed = 31});
  const auto bytes = p.b.build();
  auto core = elf_core::from_bytes(bytes, mem_name);
  REQUIRE(core.has_value());
  CHECK(core.value().paging_levels() == 5);
  const handle km = adopt_core(std::move(core));
  check_random_virtual_reads(km, p, 3000, 12);
  // The 5-level direct map (0xff11…) is canonical only with 57 address bits.
  REQUIRE_FALSE(amd64_page_tables::canonical(p.dmap, 4));
  bytes_t buf(8);
  const auto r = km.read(kvaddr{p.dmap + 0x200000}, buf);
  REQUIRE(r.has_value());
  CHECK(buf == *p.pt.read_virt(p.b, p.dmap + 0x200000, 8));
}

TEST_CASE("translate() gives the oracle's physical address and the rest of the page", "[backend][elf_core]") {
  for (unsigned levels : {4u, 5u}) {
    CAPTURE(levels);
    auto p = make_paged({.levels = levels});
    const auto bytes = p.b.build();
    const handle km = adopt_core(elf_core::from_bytes(bytes, mem_name));
    for (const auto& m : p.pt.mappings()) {
      for (u64 off : {u64{0}, u64{0x123}, m.size - 1}) {
        const u64 va = m.va + off;
        CAPTURE(hex(va));
        const auto w = p.pt.walk(p.b, va);
        const auto t = km.translate(kvaddr{va});
        if (w.status != amd64_page_tables::walk_status::mapped) {
          CHECK_FALSE(t.has_value());
          continue;
        }
        REQUIRE(t.has_value());
        CHECK(kvmxx::to_integer(t.value().pa) == *p.pt.translate(va));
        CHECK(t.value().contiguous == w.contiguous);
      }
    }
  }
}

TEST_CASE("a QEMU dump without VMCOREINFO reads through CR3 and CR4.LA57", "[backend][elf_core]") {
  for (unsigned levels : {4u, 5u}) {
    CAPTURE(levels);
    auto p = make_paged({.levels = levels, .root = root_from::cr3, .seed = 40 + levels});
    const auto bytes = p.b.build();
    auto core = elf_core::from_bytes(bytes, mem_name);
    REQUIRE(core.has_value());
    CHECK(core.value().vmcoreinfo().empty());
    CHECK(core.value().page_table_root() == std::optional<physaddr>(physaddr{p.pt.root()}));
    CHECK(core.value().paging_levels() == levels);
    const handle km = adopt_core(std::move(core));
    check_random_virtual_reads(km, p, 1500, 13 + levels);
  }
}

TEST_CASE("pte_clear_mask is NUMBER(sme_mask), so tables carrying the SME C-bit translate right",
          "[backend][elf_core]") {
  constexpr u64 c_bit = u64{1} << 47;  // AMD SME's encryption bit on EPYC
  SECTION("with NUMBER(sme_mask)") {
    auto p = make_paged({.levels = 4, .entry_bits = c_bit, .seed = 51});
    const auto bytes = p.b.build();
    auto core = elf_core::from_bytes(bytes, mem_name);
    REQUIRE(core.has_value());
    CHECK(core.value().pte_clear_mask() == c_bit);
    const handle km = adopt_core(std::move(core));
    check_random_virtual_reads(km, p, 2000, 14);
  }
  SECTION("without it the C-bit is taken for an address bit and the walk leaves the dump") {
    auto p = make_paged({.levels = 4, .entry_bits = c_bit, .sme_in_vmcoreinfo = false, .seed = 51});
    const auto bytes = p.b.build();
    auto core = elf_core::from_bytes(bytes, mem_name);
    REQUIRE(core.has_value());
    CHECK(core.value().pte_clear_mask() == 0);
    const handle km = adopt_core(std::move(core));
    // An address the oracle (and the hardware, which knows the C-bit) can read.
    std::optional<u64> readable;
    for (const auto& m : p.pt.mappings())
      if (!readable && p.pt.read_virt(p.b, m.va, 16)) readable = m.va;
    REQUIRE(readable.has_value());
    bytes_t buf(16);
    const auto r = km.read(kvaddr{*readable}, buf);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::page_not_dumped);
  }
}

TEST_CASE("kerndisp() through the handle is KERNELOFFSET", "[backend][elf_core]") {
  elf_core_builder b;
  b.vmcoreinfo("OSRELEASE=6.1.0-test\nKERNELOFFSET=7e00000\n");
  b.segment(0, 0x1000);
  const auto bytes = b.build();
  const handle km = adopt_core(elf_core::from_bytes(bytes, mem_name));
  CHECK(km.kerndisp() == 0x7e00000);
}

// ---- malformed files -------------------------------------------------------------------

TEST_CASE("a header shorter than the ELF header is truncated, naming the file and its size", "[backend][elf_core]") {
  for (auto c : {core_class::elf32, core_class::elf64}) {
    CAPTURE(static_cast<int>(c));
    const auto full = small_core(c).build();
    const std::size_t n = c == core_class::elf64 ? 40 : 30;
    const auto r = elf_core::from_bytes(std::span<const std::byte>(full).first(n), mem_name);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::truncated);
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains(hex(n)));
  }
}

TEST_CASE("a program header table past the end of the file is truncated, naming count and offset",
          "[backend][elf_core]") {
  SECTION("too many entries") {
    auto b = small_core();
    b.override_phnum(2000);  // 2000 * 56 bytes: more than the whole file
    const auto bytes = b.build();
    REQUIRE(bytes.size() < 2000 * 56);
    const auto r = elf_core::from_bytes(bytes, mem_name);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::truncated);
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains("2000") && Contains(hex(b.file_layout().phoff)));
  }
  SECTION("an offset past the end") {
    for (u64 phoff : {u64{0x7ffff000}, ~u64{0} - 8}) {
      CAPTURE(phoff);
      auto b = small_core();
      b.override_phoff(phoff);
      const auto bytes = b.build();
      const auto r = elf_core::from_bytes(bytes, mem_name);
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error() == errc::truncated);
      CHECK_THAT(message_of(r), Contains(mem_name) && Contains(hex(phoff)));
    }
  }
}

TEST_CASE("a wrong e_phentsize is corrupt, naming the value", "[backend][elf_core]") {
  for (auto c : {core_class::elf32, core_class::elf64}) {
    CAPTURE(static_cast<int>(c));
    auto b = small_core(c);
    b.override_phentsize(c == core_class::elf64 ? 32 : 56);  // the other class's size
    const auto bytes = b.build();
    const auto r = elf_core::from_bytes(bytes, mem_name);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::corrupt);
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains("e_phentsize") &&
                                  Contains(c == core_class::elf64 ? "32" : "56"));
  }
}

TEST_CASE("e_phnum 0 is corrupt: a core without program headers has no memory", "[backend][elf_core]") {
  auto b = small_core();
  b.override_phnum(0);
  const auto bytes = b.build();
  const auto r = elf_core::from_bytes(bytes, mem_name);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::corrupt);
  CHECK_THAT(message_of(r), Contains(mem_name));
}

TEST_CASE("PN_XNUM without a section table is corrupt, and with one past the end truncated",
          "[backend][elf_core]") {
  SECTION("no sections") {
    auto b = small_core();
    b.override_phnum(ecc::pn_xnum);
    const auto bytes = b.build();
    const auto r = elf_core::from_bytes(bytes, mem_name);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::corrupt);
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains("PN_XNUM"));
  }
  SECTION("the section table is past the end of the file") {
    auto b = small_core();
    b.pn_xnum().override_shoff(0x40000000);
    const auto bytes = b.build();
    const auto r = elf_core::from_bytes(bytes, mem_name);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::truncated);
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains(hex(0x40000000)));
  }
}

TEST_CASE("a PT_LOAD past the end of the file is truncated, naming its size and offset", "[backend][elf_core]") {
  SECTION("offset") {
    auto b = small_core();
    const u64 off = b.file_layout().file_size - 0x10;
    b.override_segment_offset(1, off);
    const auto bytes = b.build();
    const auto r = elf_core::from_bytes(bytes, mem_name);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::truncated);
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains(hex(off)) && Contains(hex(0x2000)));
  }
  SECTION("size") {
    auto b = small_core();
    b.override_segment_filesz(2, 0x100000000ull).override_segment_memsz(2, 0x100000000ull);
    const auto bytes = b.build();
    const auto r = elf_core::from_bytes(bytes, mem_name);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::truncated);
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains(hex(0x100000000ull)));
  }
  SECTION("offset + size wraps around") {
    auto b = small_core();
    b.override_segment_offset(0, ~u64{0} - 0xfff);
    const auto bytes = b.build();
    const auto r = elf_core::from_bytes(bytes, mem_name);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::truncated);
  }
}

TEST_CASE("p_filesz > p_memsz is corrupt, naming both", "[backend][elf_core]") {
  auto b = small_core();
  b.override_segment_filesz(2, 0x4800);  // memsz 0x4000
  const auto bytes = b.build();
  const auto r = elf_core::from_bytes(bytes, mem_name);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::corrupt);
  CHECK_THAT(message_of(r), Contains(mem_name) && Contains(hex(0x4800)) && Contains(hex(0x4000)));
}

TEST_CASE("a note running past its PT_NOTE segment is truncated, naming its sizes", "[backend][elf_core]") {
  const auto base = [] {
    elf_core_builder b;
    b.prstatus(1, regs_for(1));
    b.vmcoreinfo("OSRELEASE=6.1.0-test\n");
    b.segment(0, 0x1000);  // bytes follow the notes: a bad size must not read them as a note
    return b;
  };
  SECTION("n_descsz") {
    auto b = base();
    b.override_note_descsz(1, 0x10000);
    const auto bytes = b.build();
    const auto r = elf_core::from_bytes(bytes, mem_name);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::truncated);
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains(hex(0x10000)) && Contains(hex(b.file_layout().note_offsets[1])));
  }
  SECTION("n_namesz") {
    auto b = base();
    b.override_note_namesz(0, 0x7fffffff);
    const auto bytes = b.build();
    const auto r = elf_core::from_bytes(bytes, mem_name);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::truncated);
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains(hex(0x7fffffff)));
  }
  SECTION("n_descsz reaching into the padding is fine, one byte past the segment is not") {
    // "OSRELEASE=6.1.0-test\n" is 21 bytes, padded to 24; this note ends the segment.
    for (std::uint32_t descsz : {22u, 24u}) {
      auto b = base();
      b.override_note_descsz(1, descsz);
      const auto bytes = b.build();
      CHECK(elf_core::from_bytes(bytes, mem_name).has_value());
    }
    auto b = base();
    b.override_note_descsz(1, 25);
    const auto bytes = b.build();
    const auto r = elf_core::from_bytes(bytes, mem_name);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::truncated);
    CHECK_THAT(message_of(r), Contains(hex(25)));
  }
  SECTION("the PT_NOTE itself runs past the end of the file") {
    auto b = base();
    b.override_note_segment(b.file_layout().notes_offset, 0x10000000);
    const auto bytes = b.build();
    const auto r = elf_core::from_bytes(bytes, mem_name);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::truncated);
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains(hex(0x10000000)));
  }
}

TEST_CASE("every prefix of a small core is refused cleanly, naming the file", "[backend][elf_core]") {
  for (auto c : {core_class::elf32, core_class::elf64}) {
    CAPTURE(static_cast<int>(c));
    elf_core_builder b(c, core_endian::little, 12);
    b.prstatus(1, regs_for(1));
    b.vmcoreinfo("OSRELEASE=6.1.0-test\nPAGESIZE=4096\n");
    b.segment(0x1000, 0x200);
    b.segment(0x3000, 0x300, 0x100);
    b.pn_xnum().qemu_layout();
    const auto full = b.build();
    REQUIRE(elf_core::from_bytes(full, mem_name).has_value());
    const std::size_t ehsize = c == core_class::elf64 ? 64 : 52;
    // Everything up to the last segment's bytes is needed; only .shstrtab's string data
    // (which a core reader has no use for) comes after.
    const u64 needed = b.file_layout().segment_offsets.back() + b.segments().back().filesz;
    REQUIRE(needed < full.size());
    for (std::size_t n = 0; n < full.size(); ++n) {
      CAPTURE(n);
      const auto r = elf_core::from_bytes(std::span<const std::byte>(full).first(n), mem_name);
      if (n >= needed) {
        if (r.has_value()) REQUIRE(r.value().segments().size() == 2);
        else REQUIRE(r.error() == errc::truncated);
        continue;
      }
      REQUIRE_FALSE(r.has_value());
      if (n >= ehsize) REQUIRE(r.error() == errc::truncated);
      else REQUIRE((r.error() == errc::truncated || r.error() == errc::not_a_dump));
      REQUIRE_THAT(message_of(r), Contains(mem_name));
    }
  }
}

TEST_CASE("random byte flips never crash or hang; reads succeed or fail cleanly", "[backend][elf_core]") {
  // A smaller image than make_paged's, so that 3000 copies stay cheap.
  elf_core_builder b(core_class::elf64, core_endian::little, 62);
  amd64_page_tables pt(4, 0x8000, 0x8000);
  b.prstatus(1, regs_for(1));
  qemu_cpu_state s;
  s.cr = {0x80050033, 0, 0, 0x8000, 0x6f0};
  b.qemu_cpu(s);
  b.vmcoreinfo("OSRELEASE=6.1.0-test\nPAGESIZE=4096\n" + amd64_page_tables::root_vmcoreinfo(0x8000, 0) +
               "NUMBER(pgtable_l5_enabled)=0\n");
  b.segment(0, 0x10000);
  b.segment(0x20000, 0x4000, 0x2000);
  for (u64 i = 0; i < 8; ++i) pt.map_4k(text_base + i * P, i * P);
  pt.map_2m(0xffff888000000000ull, 0);
  pt.install(b);
  const auto clean = b.build();
  const std::size_t header_end = static_cast<std::size_t>(b.file_layout().notes_offset + b.file_layout().notes_size);
  std::mt19937_64 rng(1234);
  int opened = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    bytes_t f = clean;
    const int flips = 1 + static_cast<int>(rng() % 6);
    for (int k = 0; k < flips; ++k) {
      const std::size_t at = rng() % 5 != 0 ? rng() % header_end : rng() % f.size();
      f[at] = rng() % 3 == 0 ? std::byte{0xff} : static_cast<std::byte>(rng());
    }
    auto r = elf_core::from_bytes(f, mem_name);
    if (!r.has_value()) {
      REQUIRE(r.error().category() == kvmxx::error_category());
      REQUIRE_FALSE(message_of(r).empty());
      continue;
    }
    ++opened;
    const elf_core& core = r.value();
    (void)core.info();
    (void)core.vmcoreinfo().osrelease();
    for (int k = 0; k < 8; ++k) {
      const u64 pa = rng() % 0x30000;
      bytes_t buf(rng() % 0x3000);
      const auto got = core.read_physical(physaddr{pa}, buf);
      if (got.has_value()) REQUIRE(got.value() <= buf.size());
      else REQUIRE(got.error().category() == kvmxx::error_category());
    }
    if (core.machine() == kvmxx::machine::amd64) {
      const handle km = adopt_core(std::move(r));
      for (int k = 0; k < 8; ++k) {
        const u64 va = rng() % 2 ? text_base + rng() % 0x9000 : 0xffff888000000000ull + rng() % 0x30000;
        bytes_t buf(rng() % 0x2000);
        const auto got = km.read(kvaddr{va}, buf);
        if (got.has_value()) REQUIRE(got.value() <= buf.size());
        else REQUIRE(got.error().category() == kvmxx::error_category());
      }
    }
  }
  CHECK(opened > 100);  // many flips leave a readable core: the reads above did run
}

TEST_CASE("empty files, directories and missing files are refused with the path in the message",
          "[backend][elf_core]") {
  kvmxx_test::temp_dir dir;
  const std::string empty = dir.path("empty.vmcore");
  kvmxx_test::write_file(empty, {});
  auto r = elf_core::open(empty.c_str());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::invalid_argument);
  CHECK_THAT(message_of(r), Contains(empty) && Contains("empty"));

  r = elf_core::open(dir.root().c_str());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::invalid_argument);
  CHECK_THAT(message_of(r), Contains(dir.root()) && Contains("directory"));

  const std::string missing = dir.path("no-such-vmcore");
  r = elf_core::open(missing.c_str());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == std::errc::no_such_file_or_directory);
  CHECK_THAT(message_of(r), Contains(missing));

  CHECK_FALSE(elf_core::from_bytes({}, "nothing").has_value());
}

TEST_CASE("four threads reading at once see exactly the oracle's bytes", "[backend][elf_core]") {
  auto p = make_paged({.levels = 4, .seed = 71});
  const auto bytes = p.b.build();
  const handle km = adopt_core(elf_core::from_bytes(bytes, mem_name));
  struct job {
    u64 va, pa;
    std::size_t len;
    bytes_t expected;
    bool physical;
  };
  std::vector<job> jobs;
  std::mt19937_64 rng(5);
  for (int i = 0; i < 4000; ++i) {
    job j{};
    j.physical = i % 4 == 0;
    if (j.physical) {
      j.pa = rng() % 0x900000;
      j.len = rng() % 0x3000;
      j.expected = p.b.read_phys_prefix(j.pa, j.len);
    } else {
      std::tie(j.va, j.len) = random_va(p.pt, rng);
      j.expected = p.pt.read_virt_prefix(p.b, j.va, j.len);
    }
    jobs.push_back(std::move(j));
  }
  std::atomic<int> mismatches{0}, reads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&km, &jobs, &mismatches, &reads, t] {
      // Each thread reads half of the jobs per round; every job is read by two threads.
      for (std::size_t round = 0; round < 3; ++round)
        for (std::size_t i = static_cast<std::size_t>(t) % 2; i < jobs.size(); i += 2) {
          const auto& j = jobs[(i + static_cast<std::size_t>(t / 2) * 977 + round * 131) % jobs.size()];
          bytes_t buf(j.len);
          const auto got = j.physical ? km.read_physical(physaddr{j.pa}, buf) : km.read(kvaddr{j.va}, buf);
          if (!compare_read(got, buf, j.expected, j.len).empty()) ++mismatches;
          ++reads;
        }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(mismatches.load() == 0);
  CHECK(reads.load() == 4 * 3 * 2000);
}

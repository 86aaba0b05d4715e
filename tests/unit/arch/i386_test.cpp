// SPDX-License-Identifier: BSD-2-Clause
//
// arch::i386 on synthetic page tables inside synthetic i386 ELF cores: 2-level paging with
// 4 KiB and 4 MiB (PSE, PSE-36) pages, PAE with 4 KiB and 2 MiB pages and NX, non-present
// entries at each level, tables outside the dump; and how elf_core finds the root and the
// mode (swapper_pg_dir − PAGE_OFFSET and CONFIG_X86_PAE, else CR3/CR4 from QEMU's note).
// The oracle is tests/support/i386_page_tables.hpp, which does not include kvmxx.
#include <catch2/catch.hpp>
#include <kvmxx/arch/i386.hpp>
#include <kvmxx/backend/elf_core.hpp>
#include <kvmxx/core/kernel_memory.hpp>
#include <kvmxx/resolver/none.hpp>

#include "elf_core_writer.hpp"
#include "i386_page_tables.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace {

using kvmxx::errc;
using kvmxx::kvaddr;
using kvmxx::physaddr;
using kvmxx::backend::elf_core;
using kvmxx_test::core_class;
using kvmxx_test::elf_core_builder;
using kvmxx_test::i386_page_tables;
using kvmxx_test::qemu_cpu_state;
namespace ecc = kvmxx_test::elf_core_const;
using handle = kvmxx::kernel_memory<elf_core, kvmxx::arch::i386, kvmxx::resolver::none>;
using Catch::Matchers::Contains;
using u64 = std::uint64_t;

constexpr u64 mem_size = 0x1000000;   // 16 MiB of "physical memory" in the dump
constexpr u64 pool = 0x800000;        // page tables live at 8 MiB
constexpr u64 page_offset = 0xc0000000;

std::string hex(u64 v) { return "0x" + elf_core_builder::hex(v); }
std::string code_text(const std::error_code& ec) {
  return std::string(ec.category().name()) + ":" + std::to_string(ec.value()) + " (" + ec.message() + ")";
}
template <class T>
std::string outcome(const kvmxx::result<T>& r) {
  return r.has_value() ? std::string("success") : code_text(r.error());
}
template <class T>
std::string message_of(const kvmxx::result<T>& r) {
  return r.has_value() ? std::string() : kvmxx::describe(r.error());
}

// How the core tells the root and the paging mode.
enum class root_source { vmcoreinfo, qemu_cr3 };

struct fixture {
  elf_core_builder b;
  i386_page_tables t;
  std::vector<std::byte> bytes;
  std::optional<handle> km;

  explicit fixture(bool pae, core_class cls = core_class::elf64, u64 pdpt_offset = 0)
      : b(cls, kvmxx_test::core_endian::little, pae ? 0x1386 : 0x2386), t(pae, pool, 0x100000, pdpt_offset) {
    b.machine(ecc::em_386);
    b.segment(0, mem_size);
  }

  // Finishes the core (tables, notes) and opens it.
  void open(bool pae, root_source src) {
    if (src == root_source::vmcoreinfo) {
      std::string vi = "OSRELEASE=6.1.0-test-686\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=" +
                       elf_core_builder::hex(page_offset + t.root()) + "\n";
      if (pae) vi += "CONFIG_X86_PAE=y\n";
      b.vmcoreinfo(vi);
    } else {
      qemu_cpu_state s;
      s.cr = {0x80050033, 0, 0, t.root() | 0x8 /* PWT, not an address bit */, pae ? 0x6f0u : 0x690u};
      b.qemu_cpu(s);
    }
    t.install(b);
    bytes = b.build();
    auto core = elf_core::from_bytes(bytes, "i386-test.core");
    INFO(message_of(core));
    REQUIRE(core.has_value());
    REQUIRE(core.value().machine() == kvmxx::machine::i386);
    REQUIRE(core.value().paging_levels() == (pae ? 3u : 2u));
    REQUIRE(core.value().page_table_root().has_value());
    auto h = handle::adopt(std::move(core).value(), {});
    INFO(message_of(h));
    REQUIRE(h.has_value());
    km.emplace(std::move(h).value());
  }

  void check_oracle(u64 va) const {
    CAPTURE(hex(va));
    const auto want = t.translate(va);
    REQUIRE(want.has_value());
    const auto got = km->translate(kvaddr{va});
    INFO(message_of(got));
    REQUIRE(got.has_value());
    CHECK(kvmxx::to_integer(got.value().pa) == *want);
    CHECK(got.value().contiguous == t.contiguous(va));
    // And the bytes read through the VA are the bytes at the PA.
    std::vector<std::byte> via(16), direct(16);
    REQUIRE(km->read(kvaddr{va}, via).has_value());
    REQUIRE(km->source().read_physical(physaddr{*want}, direct).has_value());
    CHECK(via == direct);
  }

  void check_fails(u64 va, errc code, const std::string& level) const {
    CAPTURE(hex(va));
    const auto got = km->translate(kvaddr{va});
    CHECK(outcome(got) == code_text(kvmxx::make_error_code(code)));
    const auto msg = message_of(got);
    CAPTURE(msg);
    CHECK_THAT(msg, Contains(hex(va)));
    CHECK_THAT(msg, Contains(level));
  }
};

}  // namespace

TEST_CASE("i386 2-level paging translates 4 KiB and 4 MiB PSE pages like the oracle", "[arch][i386]") {
  for (const auto src : {root_source::vmcoreinfo, root_source::qemu_cr3}) {
    for (const auto cls : {core_class::elf32, core_class::elf64}) {
      CAPTURE(static_cast<int>(src), static_cast<int>(cls));
      fixture f(false, cls);
      f.t.map_large(0xc0000000, 0x0)          // direct map: 4 MiB pages
          .map_large(0xc0400000, 0x400000)
          .map_4k(0xd0001000, 0x123000)
          .map_4k(0xd0002000, 0x5000)
          .map_4k(0xfffff000, 0xabc000)
          .map_large(0x00400000, (u64{0x3} << 32) | 0xc00000);  // PSE-36: above 4 GiB
      f.open(false, src);
      CHECK(kvmxx::to_integer(*f.km->source().page_table_root()) == f.t.root());
      for (u64 va : {u64{0xc0000000}, u64{0xc0000fff}, u64{0xc03ff000}, u64{0xc0412345}, u64{0xd0001000},
                     u64{0xd0001abc}, u64{0xd0002ff0}, u64{0xfffff000}, u64{0xfffffff0}})
        f.check_oracle(va);
      // The PSE-36 page's PA is beyond the dump: translation works, the read does not.
      const auto t = f.km->translate(kvaddr{0x00412345});
      INFO(message_of(t));
      REQUIRE(t.has_value());
      CHECK(kvmxx::to_integer(t.value().pa) == ((u64{0x3} << 32) | 0xc12345));
      CHECK(t.value().contiguous == 0x400000 - 0x12345);
    }
  }
}

TEST_CASE("i386 PAE translates 4 KiB and 2 MiB pages with NX and a 32-byte aligned PDPT", "[arch][i386]") {
  for (const auto src : {root_source::vmcoreinfo, root_source::qemu_cr3}) {
    for (const u64 pdpt_offset : {u64{0}, u64{0x20}, u64{0x300}}) {
      // Only CR3 can place the PDPT inside a page; swapper_pg_dir is page aligned.
      if (src == root_source::vmcoreinfo && pdpt_offset != 0) continue;
      CAPTURE(static_cast<int>(src), pdpt_offset);
      fixture f(true, core_class::elf64, pdpt_offset);
      f.t.map_large(0xc0000000, 0x0)
          .map_large(0xc0200000, 0x200000, i386_page_tables::rw | i386_page_tables::nx)
          .map_4k(0xc0800000, 0x7000, i386_page_tables::nx | i386_page_tables::global)
          .map_4k(0x08048000, 0x9000)
          .map_4k(0xfffff000, 0xabc000)
          .map_large(0x40000000, u64{0x2} << 32);  // a PA above 4 GiB, outside the dump
      f.open(true, src);
      CHECK(kvmxx::to_integer(*f.km->source().page_table_root()) == f.t.root());
      for (u64 va : {u64{0xc0000000}, u64{0xc01fffff}, u64{0xc0234567}, u64{0xc0800000}, u64{0xc0800ff0},
                     u64{0x08048123}, u64{0xfffff000}, u64{0xfffffff0}})
        f.check_oracle(va);
      const auto t = f.km->translate(kvaddr{0x40001000});
      INFO(message_of(t));
      REQUIRE(t.has_value());
      CHECK(kvmxx::to_integer(t.value().pa) == ((u64{0x2} << 32) | 0x1000));
      std::vector<std::byte> buf(8);
      CHECK(outcome(f.km->read(kvaddr{0x40001000}, buf)) == code_text(kvmxx::make_error_code(errc::page_not_dumped)));
    }
  }
}

TEST_CASE("i386 walks fail at the level whose entry is not present, naming the VA and the level", "[arch][i386]") {
  SECTION("2-level") {
    fixture f(false);
    f.t.map_4k(0xd0001000, 0x123000).not_present(0xd0002000, 0).not_present(0xd0800000, 1);
    f.open(false, root_source::vmcoreinfo);
    f.check_fails(0xd0002000, errc::unmapped_address, "PTE not valid");
    f.check_fails(0xd0800123, errc::unmapped_address, "PDE not valid");
    f.check_fails(0x00001000, errc::unmapped_address, "PDE not valid");  // never mapped
  }
  SECTION("PAE") {
    fixture f(true);
    f.t.map_4k(0xd0001000, 0x123000).not_present(0xd0002000, 0).not_present(0xd0800000, 1).not_present(0x40000000, 2);
    f.open(true, root_source::vmcoreinfo);
    f.check_fails(0xd0002000, errc::unmapped_address, "PTE not valid");
    f.check_fails(0xd0800123, errc::unmapped_address, "PDE not valid");
    f.check_fails(0x40000000, errc::unmapped_address, "PDPTE not valid");
  }
}

TEST_CASE("i386 page tables outside the dump are page_not_dumped, naming the level and the physical address",
          "[arch][i386]") {
  for (const bool pae : {false, true}) {
    CAPTURE(pae);
    fixture f(pae);
    f.t.map_4k(0xd0001000, 0x123000).pde_to(0xd0800000, 0x40000000);
    if (pae) f.t.pdpte_to(0x40000000, 0x50000000);
    f.open(pae, root_source::vmcoreinfo);
    f.check_fails(0xd0800000, errc::page_not_dumped, "PTE at physical 0x40000000");
    if (pae) f.check_fails(0x40000000, errc::page_not_dumped, "PDE at physical 0x50000000");
    // A read that starts mapped stops short at the unreadable page.
    std::vector<std::byte> buf(0x2000);
    auto got = f.km->read(kvaddr{0xd0001800}, buf);
    INFO(message_of(got));
    REQUIRE(got.has_value());
    CHECK(got.value() == 0x800);
  }
}

TEST_CASE("i386 addresses above 4 GiB are unmapped, and a missing root or mode is reported", "[arch][i386]") {
  fixture f(true);
  f.t.map_4k(0xd0001000, 0x123000);
  f.open(true, root_source::vmcoreinfo);
  f.check_fails(0x1d0001000, errc::unmapped_address, "32-bit");

  // No VMCOREINFO and no QEMU note: no root.
  elf_core_builder b;
  b.machine(ecc::em_386);
  b.segment(0, 0x10000);
  const auto bytes = b.build();
  auto core = elf_core::from_bytes(bytes, "noroot.core");
  REQUIRE(core.has_value());
  CHECK_FALSE(core.value().page_table_root().has_value());
  auto km = handle::adopt(std::move(core).value(), {});
  REQUIRE(km.has_value());
  const auto t = km.value().translate(kvaddr{0xc0000000});
  CHECK(outcome(t) == code_text(kvmxx::make_error_code(errc::not_supported)));
  CHECK_THAT(message_of(t), Contains("page-table root"));
}

TEST_CASE("an i386 NT_PRSTATUS (144 bytes) gives the pid and the 17 registers in pr_reg order", "[arch][i386]") {
  for (const auto cls : {core_class::elf32, core_class::elf64}) {
    elf_core_builder b(cls);
    b.machine(ecc::em_386);
    b.segment(0, 0x10000);
    std::vector<std::byte> d(144, std::byte{0x5a});
    const auto put32 = [&](std::size_t off, std::uint32_t v) {
      for (int k = 0; k < 4; ++k) d[off + static_cast<std::size_t>(k)] = static_cast<std::byte>((v >> (8 * k)) & 0xff);
    };
    put32(24, 7);
    for (std::uint32_t r = 0; r < 17; ++r) put32(72 + 4 * r, 0xc1000000u + r);
    b.note("CORE", ecc::nt_prstatus, d);
    const auto bytes = b.build();
    auto core = elf_core::from_bytes(bytes, "prstatus.core");
    INFO(message_of(core));
    REQUIRE(core.has_value());
    REQUIRE(core.value().cpus().size() == 1);
    const auto& cpu = core.value().cpus()[0];
    CHECK(cpu.pid == 7);
    CHECK(cpu.has_gpr);
    for (std::size_t r = 0; r < 17; ++r) CHECK(cpu.gpr[r] == 0xc1000000u + r);
  }
}

TEST_CASE("random i386 virtual reads match the oracle in both paging modes", "[arch][i386]") {
  for (const bool pae : {false, true}) {
    CAPTURE(pae);
    fixture f(pae);
    std::mt19937_64 rng(pae ? 11 : 12);
    // A direct map of the first 4 MiB with large pages, and 200 scattered 4 KiB pages.
    const u64 large = pae ? 0x200000 : 0x400000;
    for (u64 off = 0; off < 0x400000; off += large) f.t.map_large(static_cast<std::uint32_t>(page_offset + off), off);
    for (int k = 0; k < 200; ++k) {
      const auto va = static_cast<std::uint32_t>(0xd0000000 + (rng() % 0x4000) * 0x1000);
      if (f.t.translate(va)) continue;
      f.t.map_4k(va, (rng() % (pool / 0x1000)) * 0x1000);
    }
    f.open(pae, pae ? root_source::vmcoreinfo : root_source::qemu_cr3);
    for (const auto& m : f.t.mappings()) f.check_oracle(m.va + rng() % (m.size - 16));
  }
}

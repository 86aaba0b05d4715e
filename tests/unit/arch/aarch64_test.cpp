// aarch64 address translation on synthetic page tables: every granule (4/16/64 KiB), VA
// widths 39..52, pages and the block sizes each granule allows, the LPA and LPA2
// output-address fields, invalid and reserved descriptors, tables outside the dump, and
// the elf_core facts (root = swapper_pg_dir − kimage_voffset, VA bits from T1SZ) read
// through kernel_memory. Expected values come from the fixture writer's oracle
// (tests/support/aarch64_page_tables.hpp), which shares no code with kvmxx.
#include <catch2/catch.hpp>
#include <kvmxx/arch/aarch64.hpp>
#include <kvmxx/backend/elf_core.hpp>
#include <kvmxx/core/kernel_memory.hpp>
#include <kvmxx/core/open.hpp>
#include <kvmxx/resolver/none.hpp>

#include "aarch64_page_tables.hpp"
#include "elf_core_writer.hpp"
#include "file_util.hpp"

#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <system_error>
#include <variant>
#include <vector>

namespace {

using kvmxx::errc;
using kvmxx::kvaddr;
using kvmxx::physaddr;
using kvmxx_test::a64_format;
using kvmxx_test::aarch64_page_tables;
using Catch::Matchers::Contains;
using u64 = std::uint64_t;

std::string hex(u64 v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}
template <class T>
std::string message_of(const kvmxx::result<T>& r) {
  return r.has_value() ? std::string() : kvmxx::describe(r.error());
}
template <class T>
bool failed_with(const kvmxx::result<T>& r, errc e) {
  return !r.has_value() && r.error() == kvmxx::make_error_code(e);
}

// Physical memory = the fixture's pool; the facts an aarch64 walk needs.
struct table_backend {
  const aarch64_page_tables* t = nullptr;
  std::size_t granule = 4096;
  unsigned va = 48, pa = 48;
  std::optional<physaddr> root;

  [[nodiscard]] kvmxx::machine machine() const noexcept { return kvmxx::machine::aarch64; }
  [[nodiscard]] kvmxx::os_kind os() const noexcept { return kvmxx::os_kind::linux_; }
  [[nodiscard]] std::size_t page_size() const noexcept { return granule; }
  [[nodiscard]] kvmxx::result<std::size_t> read_physical(physaddr where, std::span<std::byte> out) const noexcept {
    const u64 a = kvmxx::to_integer(where);
    const auto& m = t->memory();
    if (a < t->pool_pa() || a - t->pool_pa() + out.size() > m.size())
      return kvmxx::detail::fail(errc::page_not_dumped, "physical 0x%llx is outside the test memory",
                                 static_cast<unsigned long long>(a));
    std::memcpy(out.data(), m.data() + (a - t->pool_pa()), out.size());
    return out.size();
  }
  [[nodiscard]] kvmxx::backend_info info() const { return {}; }
  [[nodiscard]] std::optional<physaddr> page_table_root() const noexcept { return root; }
  [[nodiscard]] unsigned paging_levels() const noexcept { return 0; }
  [[nodiscard]] unsigned va_bits() const noexcept { return va; }
  [[nodiscard]] unsigned pa_bits() const noexcept { return pa; }
};
static_assert(kvmxx::aarch64_paging_backend<table_backend>);
static_assert(kvmxx::translation_arch<kvmxx::arch::aarch64, table_backend>);

struct config {
  unsigned gs, va_bits, pa_bits;
  a64_format fmt;
  std::vector<int> block_levels;  // the levels where this granule/format has blocks
};

const std::vector<config>& configs() {
  static const std::vector<config> c = {
      {12, 48, 48, a64_format::vmsa, {1, 2}},  {12, 39, 48, a64_format::vmsa, {1, 2}},
      {12, 52, 52, a64_format::lpa2, {0, 1, 2}}, {14, 47, 48, a64_format::vmsa, {2}},
      {14, 48, 48, a64_format::vmsa, {2}},     {14, 52, 52, a64_format::lpa2, {1, 2}},
      {16, 42, 48, a64_format::vmsa, {2}},     {16, 48, 48, a64_format::vmsa, {2}},
      {16, 52, 52, a64_format::lpa, {1, 2}},
  };
  return c;
}

std::string name_of(const config& c) {
  const char* f = c.fmt == a64_format::vmsa ? "vmsa" : c.fmt == a64_format::lpa ? "LPA" : "LPA2";
  return std::to_string(1u << (c.gs - 10)) + "K granule, " + std::to_string(c.va_bits) + "-bit VA, " + f;
}

}  // namespace

TEST_CASE("the aarch64 walk translates pages and every allowed block size of each granule", "[arch][aarch64]") {
  for (const auto& c : configs()) {
    CAPTURE(name_of(c));
    aarch64_page_tables t(c.gs, c.va_bits, c.fmt, 0x40000000, u64{64} << c.gs);
    // Target addresses: above 2^48 where the format can express them (OA[51:48]).
    const u64 high = c.pa_bits == 52 ? u64{0x000a} << 48 : u64{0x0000'7000'0000'0000};
    std::vector<std::pair<u64, u64>> probes;  // (va, size)
    u64 slot = 1;
    for (int level : c.block_levels) {
      const unsigned shift = t.level_shift(level);
      const u64 size = u64{1} << shift;
      // A distinct top-level slot per mapping keeps them apart.
      const u64 va = t.kva(slot++ << t.level_shift(t.start_level()));
      if (level == t.start_level()) {
        const u64 v = t.kva(u64{0x1f} << shift);
        t.map(v, high + (u64{5} << shift) % (u64{1} << 48), level);
        probes.push_back({v, size});
        continue;
      }
      t.map(va + 3 * size, (high | (u64{7} << shift)) & ~(size - 1), level);
      probes.push_back({va + 3 * size, size});
    }
    const u64 page = u64{1} << c.gs;
    const u64 pva = t.kva(slot++ << t.level_shift(t.start_level())) + 5 * page;
    t.map(pva, high + 11 * page);
    t.map(pva + page, 0x40000000 + 13 * page);  // the next page elsewhere
    probes.push_back({pva, page});
    probes.push_back({pva + page, page});

    table_backend b{&t, std::size_t{1} << c.gs, c.va_bits, c.pa_bits, physaddr{t.root()}};
    const kvmxx::arch::aarch64 arch;
    std::mt19937_64 rng(c.gs * 100 + c.va_bits);
    for (const auto& [va, size] : probes) {
      for (u64 off : {u64{0}, size - 1, rng() % size, rng() % size}) {
        CAPTURE(hex(va + off));
        const auto want = t.expect(va + off);
        REQUIRE(want.has_value());
        const auto got = arch.translate(b, kvaddr{va + off});
        INFO(message_of(got));
        REQUIRE(got.has_value());
        CHECK(hex(kvmxx::to_integer(got.value().pa)) == hex(want->first));
        CHECK(got.value().contiguous == want->second);
      }
    }
  }
}

TEST_CASE("the aarch64 walk names the VA and the level of an invalid descriptor", "[arch][aarch64]") {
  for (const auto& c : configs()) {
    CAPTURE(name_of(c));
    aarch64_page_tables t(c.gs, c.va_bits, c.fmt, 0x80000000, u64{64} << c.gs);
    const u64 page = u64{1} << c.gs;
    const u64 base = t.kva(u64{2} << t.level_shift(t.start_level()));
    t.map(base, 0x1234 * page);  // makes the tables down to level 3 for base
    table_backend b{&t, page, c.va_bits, c.pa_bits, physaddr{t.root()}};
    const kvmxx::arch::aarch64 arch;
    // An empty slot at each level below the start: a VA that shares the path down to
    // `level` and differs in that level's index.
    for (int level = t.start_level(); level <= 3; ++level) {
      const u64 va = base + (u64{1} << t.level_shift(level)) + 0x18;
      CAPTURE(level, hex(va));
      const auto r = arch.translate(b, kvaddr{va});
      CHECK(failed_with(r, errc::unmapped_address));
      const auto msg = message_of(r);
      CAPTURE(msg);
      CHECK_THAT(msg, Contains(hex(va)));
      CHECK_THAT(msg, Contains("level " + std::to_string(level) + " descriptor not valid"));
    }
    // Level 3 bits[1:0] = 0b01 is reserved, not a page.
    t.raw(base + 2 * page, 3, (0x99 * page) | 0x1);
    const auto r = arch.translate(b, kvaddr{base + 2 * page});
    CHECK(failed_with(r, errc::unmapped_address));
    CHECK_THAT(message_of(r), Contains("level 3") && Contains("reserved"));
  }
}

TEST_CASE("a block descriptor at a level the granule has no blocks at is an error", "[arch][aarch64]") {
  struct bad {
    unsigned gs, va_bits;
    int level;
  };
  // vmsa format: 4K has no level-0 blocks, 16K none at level 1, 64K none at level 1.
  for (const auto& c : {bad{12, 48, 0}, bad{14, 48, 1}, bad{14, 48, 0}, bad{16, 48, 1}}) {
    CAPTURE(c.gs, c.level);
    aarch64_page_tables t(c.gs, c.va_bits, a64_format::vmsa, 0x40000000, u64{16} << c.gs);
    const u64 va = t.kva(u64{1} << t.level_shift(c.level));
    t.raw(va, c.level, 0x1);  // valid, bit 1 clear: a block at output address 0
    table_backend b{&t, std::size_t{1} << c.gs, c.va_bits, 48, physaddr{t.root()}};
    const auto r = kvmxx::arch::aarch64{}.translate(b, kvaddr{va + 0x40});
    CHECK(failed_with(r, errc::corrupt));
    CHECK_THAT(message_of(r), Contains(hex(va + 0x40)) && Contains("level " + std::to_string(c.level) + " block"));
  }
}

TEST_CASE("LPA2 takes descriptor bits 9:8 as address bits, the 48-bit format ignores them", "[arch][aarch64]") {
  // The same raw level-3 descriptor, read in the two formats: OA[51:50] = 0b11 vs. SH.
  for (auto fmt : {a64_format::vmsa, a64_format::lpa2}) {
    const unsigned va_bits = fmt == a64_format::lpa2 ? 52 : 48;
    aarch64_page_tables t(12, va_bits, fmt, 0x40000000, 64 * 4096);
    const u64 va = t.kva(0x5000);
    t.map(va - 0x1000, 0x1000);  // builds the path
    t.raw(va, 3, 0x0000'1234'5678'9000ull | 0x300 | 0x3);
    table_backend b{&t, 4096, va_bits, fmt == a64_format::lpa2 ? 52u : 48u, physaddr{t.root()}};
    const auto r = kvmxx::arch::aarch64{}.translate(b, kvaddr{va + 0x10});
    INFO(message_of(r));
    REQUIRE(r.has_value());
    const u64 want = (fmt == a64_format::lpa2 ? u64{3} << 50 : 0) | 0x0000'1234'5678'9010ull;
    CHECK(hex(kvmxx::to_integer(r.value().pa)) == hex(want));
  }
}

TEST_CASE("the aarch64 walk refuses user addresses, tables outside the dump and bad geometry", "[arch][aarch64]") {
  aarch64_page_tables t(12, 48, a64_format::vmsa, 0x40000000, 32 * 4096);
  const u64 va = t.kva(0x0000'1000'0000'0000);
  t.map(va, 0x5000);
  table_backend b{&t, 4096, 48, 48, physaddr{t.root()}};
  const kvmxx::arch::aarch64 arch;
  REQUIRE(arch.translate(b, kvaddr{va}).has_value());

  const auto user = arch.translate(b, kvaddr{0x0000'1000'0000'0000});
  CHECK(failed_with(user, errc::unmapped_address));
  CHECK_THAT(message_of(user), Contains("0x100000000000") && Contains("TTBR1"));

  // A level-2 table descriptor pointing past the end of physical memory.
  const u64 far = t.kva(0x0000'2000'0000'0000);
  t.raw(far, 2, 0x7000'0000ull | 0x3);
  const auto out = arch.translate(b, kvaddr{far + 0x10});
  CHECK(failed_with(out, errc::page_not_dumped));
  CHECK_THAT(message_of(out), Contains(hex(far + 0x10)) && Contains("level 3 descriptor at physical 0x70000"));

  table_backend no_root = b;
  no_root.root.reset();
  CHECK(failed_with(arch.translate(no_root, kvaddr{va}), errc::not_supported));

  for (auto [granule, vb, pb] : {std::array<unsigned, 3>{8192, 48, 48}, {4096, 53, 48}, {4096, 24, 48},
                                 {65536, 48, 56}}) {
    CAPTURE(granule, vb, pb);
    table_backend g = b;
    g.granule = granule;
    g.va = vb;
    g.pa = pb;
    const auto r = arch.translate(g, kvaddr{va});
    CHECK(failed_with(r, errc::invalid_argument));
    CHECK_THAT(message_of(r), Contains("aarch64"));
  }
  // 4K with 52-bit VA needs level -1, which exists only with LPA2 (which 52-bit VA
  // selects for 4K): the geometry is accepted and starts at level -1.
  const auto g = kvmxx::arch::aarch64::geometry_of(4096, 52, 52);
  REQUIRE(g.has_value());
  CHECK(g.value().start_level == -1);
  CHECK(g.value().format == kvmxx::arch::aarch64::descriptor_format::lpa2);
  CHECK(kvmxx::arch::aarch64::geometry_of(65536, 52, 52).value().format ==
        kvmxx::arch::aarch64::descriptor_format::lpa);
  CHECK(kvmxx::arch::aarch64::geometry_of(65536, 52, 48).value().format ==
        kvmxx::arch::aarch64::descriptor_format::vmsa);
}

TEST_CASE("an aarch64 ELF core takes its root from swapper_pg_dir - kimage_voffset and reads through it",
          "[arch][aarch64][elf_core]") {
  using handle = kvmxx::kernel_memory<kvmxx::backend::elf_core, kvmxx::arch::aarch64, kvmxx::resolver::none>;
  // 4K with T1SZ (48-bit) and 64K (42-bit from VA_BITS, no T1SZ): the 64K case also checks
  // that reads are exact per 4 KiB piece of a 64 KiB page.
  // table_bits: the VA width swapper_pg_dir is laid out for; config: NUMBER(VA_BITS);
  // t1sz: NUMBER(TCR_EL1_T1SZ) (0: absent).
  struct cs {
    unsigned gs, table_bits, config, t1sz, pa_bits;
    a64_format fmt;
  };
  for (const auto& c : {
           cs{12, 48, 52, 16, 48, a64_format::vmsa},  // T1SZ wins (a 52-bit 4K kernel running 48-bit)
           cs{16, 42, 42, 0, 48, a64_format::vmsa},   // VA_BITS alone
           cs{14, 47, 52, 17, 48, a64_format::vmsa},
           // 64K, 52-bit kernel on 48-bit hardware: swapper_pg_dir keeps the 52-bit layout
           // (TTBR1 points into it), so VA_BITS wins over T1SZ; 52-bit PA selects LPA.
           cs{16, 52, 52, 16, 52, a64_format::lpa},
       }) {
    CAPTURE(c.gs, c.table_bits, c.config, c.t1sz);
    const u64 ram = 0x40000000, ram_size = 0x400000;
    const u64 page = u64{1} << c.gs;
    aarch64_page_tables t(c.gs, c.table_bits, c.fmt, ram + 0x200000, 24 * page);
    // A kernel address that is one in the narrowest width involved (bits 63..41 set).
    const u64 kva = (~u64{0} << 41) + (u64{1} << 38) + 7 * page;
    t.map(kva, ram + 0x10 * page);
    t.map(kva + page, ram + 0x3 * page);

    const u64 kimage_voffset = 0xffff'8000'0000'0000ull - ram;  // an arbitrary kernel-image offset
    const u64 swapper = t.root() + kimage_voffset;
    std::string vi = "OSRELEASE=6.1.0-test\nPAGESIZE=" + std::to_string(page) + "\n";
    vi += "SYMBOL(swapper_pg_dir)=" + kvmxx_test::elf_core_builder::hex(swapper) + "\n";
    vi += "NUMBER(kimage_voffset)=" + hex(kimage_voffset) + "\n";
    vi += "NUMBER(VA_BITS)=" + std::to_string(c.config) + "\n";
    if (c.t1sz != 0) vi += "NUMBER(TCR_EL1_T1SZ)=" + hex(c.t1sz) + "\n";
    vi += "NUMBER(MAX_PHYSMEM_BITS)=" + std::to_string(c.pa_bits) + "\n";
    vi += "NUMBER(PHYS_OFFSET)=" + hex(ram) + "\nKERNELOFFSET=0\n";

    kvmxx_test::elf_core_builder eb;
    eb.machine(kvmxx_test::elf_core_const::em_aarch64).vmcoreinfo(vi);
    (void)eb.segment(ram, ram_size);
    eb.write_phys(t.pool_pa(), std::span<const std::byte>(t.memory()));
    const auto bytes = eb.build();
    auto core = kvmxx::backend::elf_core::from_bytes(bytes, "a64.core");
    INFO(message_of(core));
    REQUIRE(core.has_value());
    CHECK(core.value().machine() == kvmxx::machine::aarch64);
    REQUIRE(core.value().page_table_root().has_value());
    CHECK(hex(kvmxx::to_integer(*core.value().page_table_root())) == hex(t.root()));
    CHECK(core.value().va_bits() == c.table_bits);
    CHECK(core.value().pa_bits() == c.pa_bits);
    CHECK(core.value().page_size() == page);
    auto km = handle::adopt(std::move(core).value(), {});
    INFO(message_of(km));
    REQUIRE(km.has_value());

    // Two pages that are apart in physical memory, read as one range: each 4 KiB piece
    // must come from its own place (the translation cache works in 4 KiB units).
    std::vector<std::byte> got(2 * page);
    const auto n = km.value().read(kvaddr{kva}, got);
    INFO(message_of(n));
    REQUIRE(n.has_value());
    CHECK(n.value() == got.size());
    const auto a = eb.read_phys(ram + 0x10 * page, page);
    const auto b2 = eb.read_phys(ram + 0x3 * page, page);
    REQUIRE((a && b2));
    CHECK(std::memcmp(got.data(), a->data(), page) == 0);
    CHECK(std::memcmp(got.data() + page, b2->data(), page) == 0);
    // Unaligned, from inside the first page to the end of the second.
    std::vector<std::byte> mid(page + 16);
    REQUIRE(km.value().read(kvaddr{kva + 0xff0}, mid).value() == mid.size());
    const std::size_t first = page - 0xff0;
    CHECK(std::memcmp(mid.data(), a->data() + 0xff0, first) == 0);
    CHECK(std::memcmp(mid.data() + first, b2->data(), mid.size() - first) == 0);
    const auto miss = km.value().read(kvaddr{kva + 2 * page}, got);
    CHECK(failed_with(miss, errc::unmapped_address));
    CHECK_THAT(message_of(miss), Contains("level 3 descriptor not valid"));
  }
}

TEST_CASE("an aarch64 core opens with its handle; System.map symbols move by KERNELOFFSET, else by _stext",
          "[arch][aarch64][open]") {
  // Link-time System.map (arm64 KIMAGE_VADDR layout) and a dump whose kernel moved by 0x1234560000.
  const u64 stext = 0xffff800008010000ull, banner = 0xffff800008d000e8ull, moved = 0x1234560000ull;
  const std::string map = "ffff800008000000 T _text\nffff800008010000 T _stext\nffff800008d000e8 D linux_banner\n";
  kvmxx_test::temp_dir dir;
  kvmxx_test::write_file(dir.path("System.map"),
                         std::span<const std::byte>(reinterpret_cast<const std::byte*>(map.data()), map.size()));
  for (bool with_offset : {true, false}) {
    CAPTURE(with_offset);
    std::string vi = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(_stext)=" +
                     kvmxx_test::elf_core_builder::hex(stext + moved) + "\n";
    if (with_offset) vi += "KERNELOFFSET=" + kvmxx_test::elf_core_builder::hex(moved) + "\n";
    kvmxx_test::elf_core_builder eb;
    eb.machine(kvmxx_test::elf_core_const::em_aarch64).vmcoreinfo(vi);
    (void)eb.segment(0x40000000, 0x10000);
    const auto bytes = eb.build();
    const std::string core = dir.path(with_offset ? "with.core" : "without.core");
    kvmxx_test::write_file(core, bytes);

    auto h = kvmxx::open_dump_handle(dir.path("System.map").c_str(), core.c_str());
    INFO(message_of(h));
    REQUIRE(h.has_value());
    REQUIRE(std::holds_alternative<kvmxx::linux_aarch64_elf>(h.value()));
    const auto& km = std::get<kvmxx::linux_aarch64_elf>(h.value());
    const auto a = km.address_of("linux_banner");
    INFO(message_of(a));
    REQUIRE(a.has_value());
    CHECK(hex(kvmxx::to_integer(a.value())) == hex(banner + moved));

    // The amd64-only entry point refuses it and says what it is.
    const auto amd = kvmxx::open_linux_elf(nullptr, core.c_str());
    CHECK(failed_with(amd, errc::unsupported_format));
    CHECK_THAT(message_of(amd), Contains("aarch64"));
    CHECK(kvmxx::open_linux_aarch64_elf(nullptr, core.c_str()).has_value());
  }
}

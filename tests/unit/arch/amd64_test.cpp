// amd64 address translation: the flat page map of FreeBSD minidumps v1/v2/v3 and the
// direct map (specs/freebsd-libkvm.md §2.3–§2.5), kvmxx's walk_pages (§2.4, the intended
// second pass), and the 4-/5-level hardware walk through a backend that knows CR3.
// Expected values come from the fixture writer's oracle (amd64_minidump_writer.hpp) or
// from hand-built page tables whose translations are worked out in the comments.
#include <catch2/catch.hpp>
#include <kvmxx/arch/amd64.hpp>
#include <kvmxx/backend/live.hpp>
#include <kvmxx/backend/minidump.hpp>
#include <kvmxx/backend/null.hpp>
#include <kvmxx/core/kernel_memory.hpp>
#include <kvmxx/resolver/none.hpp>

#include "amd64_minidump_writer.hpp"
#include "file_util.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using builder = kvmxx_test::amd64_minidump_builder;
using handle = kvmxx::kernel_memory<kvmxx::backend::minidump, kvmxx::arch::amd64, kvmxx::resolver::none>;
using live_handle = kvmxx::kernel_memory<kvmxx::backend::live_physical, kvmxx::arch::amd64, kvmxx::resolver::none>;
using kvmxx::errc;
using kvmxx::kvaddr;
using kvmxx::physaddr;
using kvmxx::protection;
using Catch::Matchers::Contains;
using u64 = std::uint64_t;

constexpr u64 P = 4096;
constexpr u64 M2 = u64{1} << 21;
constexpr u64 G1 = u64{1} << 30;

// Hardware PTE bits (Intel SDM vol. 3A §4.5; spec §2.5).
constexpr u64 pg_v = 0x1, pg_rw = 0x2, pg_a = 0x20, pg_d = 0x40, pg_ps = 0x80, pg_g = 0x100;
constexpr u64 pg_pat_large = 0x1000;            // PAT bit of 2 MiB / 1 GiB entries (bit 12)
constexpr u64 pg_nx = u64{1} << 63;
constexpr u64 pg_high_ignored = 0x7ff0000000000000;  // bits 52..62: software / protection keys

std::string hex(u64 v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string code_text(const std::error_code& ec) {
  return std::string(ec.category().name()) + ":" + std::to_string(ec.value()) + " (" + ec.message() + ")";
}
std::string code_text(errc e) { return code_text(kvmxx::make_error_code(e)); }

template <class T>
std::string outcome(const kvmxx::result<T>& r) {
  return r.has_value() ? std::string("success") : code_text(r.error());
}

template <class T>
std::string message_of(const kvmxx::result<T>& r) {
  return r.has_value() ? std::string() : kvmxx::describe(r.error());
}

void put_le(std::vector<std::byte>& f, u64 off, u64 value, std::size_t width = 8) {
  for (std::size_t i = 0; i < width; ++i) f.at(off + i) = static_cast<std::byte>((value >> (8 * i)) & 0xff);
}
u64 get_le(const std::vector<std::byte>& f, u64 off) {
  u64 v = 0;
  for (std::size_t i = 0; i < 8; ++i) v |= std::to_integer<u64>(f.at(off + i)) << (8 * i);
  return v;
}

handle adopt_bytes(const std::vector<std::byte>& bytes) {
  auto md = kvmxx::backend::minidump::from_bytes(bytes, "amd64.vmcore");
  INFO(message_of(md));
  REQUIRE(md.has_value());
  auto km = handle::adopt(std::move(md).value(), {});
  INFO(message_of(km));
  REQUIRE(km.has_value());
  return std::move(km).value();
}

// Every kind of kernel mapping in one dump (v1 gets the 2 MiB ones as 512 PTEs each):
//   kb+0x1000  4K rw- NX -> 0x150000       kb+0x2000  4K r-x -> 0x151000
//   kb+0x3000  stale 4K (PG_V clear)        kb+0x5000  4K -> 0x156000, page not dumped
//   kb+0x6000  4K -> 0x150000 (an alias of kb+0x1000)
//   kb+0x1ff000 4K -> 0x152000, followed by
//   kb+0x200000 2M r-x -> 0x400000 (its page 0x403000 not dumped)
//   kb+0x400000 4K -> 0x153000, followed by nothing
//   kb+0x600000 stale 2M                    kb+0x800000 2M rw- NX -> 0xa00000 (first page not dumped)
//   kb+0xa00000 4K -> 0x155000 whose page-table page is left out of the dump (v2/v3)
// plus loose physical pages in both RAM ranges.
builder mixed_dump(std::uint32_t version, u64 seed = 1) {
  builder b(version, seed);
  const u64 kb = b.kernbase();
  b.dump_avail({{0x1000, 0x9f000}, {0x100000, 0x2000000}});
  b.map_4k(kb + 0x1000, 0x150000, true, false);
  b.map_4k(kb + 0x2000, 0x151000, false, true);
  b.stale_4k(kb + 0x3000, 0x154000);
  b.map_4k(kb + 0x5000, 0x156000).omit_page(0x156000);
  b.map_4k(kb + 0x6000, 0x150000);
  b.map_4k(kb + 0x1ff000, 0x152000);
  b.map_2m(kb + 0x200000, 0x400000, false, true).omit_page(0x403000);
  b.map_4k(kb + 0x400000, 0x153000);
  b.stale_2m(kb + 0x600000, 0x800000);
  b.map_2m(kb + 0x800000, 0xa00000, true, false).omit_page(0xa00000);
  if (version >= 2) b.map_4k(kb + 0xa00000, 0x155000).omit_page_table(kb + 0xa00000);
  for (u64 pa : {0x1000ull, 0x2000ull, 0x5000ull, 0x9e000ull, 0x100000ull, 0x101000ull, 0x1234000ull, 0x1fff000ull})
    b.dump_page(pa);
  return b;
}

// The spec's kvatop contiguity: the rest of the 4 KiB page, or of the 2 MiB page for a
// PS PDE (v2/v3; v1 has PTEs only).
u64 expected_contiguous(std::uint32_t version, u64 mapping_size, u64 va) {
  if (version >= 2 && mapping_size == M2) return M2 - (va % M2);
  return P - (va % P);
}

std::vector<std::byte> readable_virt_prefix(const builder& b, u64 va, std::size_t len) {
  std::vector<std::byte> out;
  while (out.size() < len) {
    const u64 cur = va + out.size();
    const std::size_t n = std::min<std::size_t>(len - out.size(), P - cur % P);
    const auto bytes = b.read_virt(cur, n);
    if (!bytes) break;
    out.insert(out.end(), bytes->begin(), bytes->end());
  }
  return out;
}

std::string compare_read(const kvmxx::result<std::size_t>& got, const std::vector<std::byte>& buf,
                         const std::vector<std::byte>& expected) {
  if (expected.empty()) {
    if (got.has_value()) return "expected a failure, got " + std::to_string(got.value()) + " bytes";
    return got.error().category() == kvmxx::error_category() ? "" : "unexpected error " + code_text(got.error());
  }
  if (!got.has_value()) return "expected " + std::to_string(expected.size()) + " bytes, got " + code_text(got.error());
  if (got.value() != expected.size())
    return "expected " + std::to_string(expected.size()) + " bytes, got " + std::to_string(got.value());
  if (!std::equal(expected.begin(), expected.end(), buf.begin())) return "bytes differ from the oracle";
  return "";
}

// One walk_pages entry, comparable.
using entry = std::tuple<u64 /*kmap_va*/, u64 /*pa*/, u64 /*length*/, u64 /*dmap_va*/, int /*prot*/,
                         std::int64_t /*file_offset*/>;

entry entry_of(const kvmxx::page_info& p) {
  return {kvmxx::to_integer(p.kmap_va), kvmxx::to_integer(p.pa), p.length, kvmxx::to_integer(p.dmap_va),
          static_cast<int>(p.prot), p.file_offset};
}

int prot_bits(bool writable, bool executable) {
  protection p = protection::read;
  if (writable) p = p | protection::write;
  if (executable) p = p | protection::execute;
  return static_cast<int>(p);
}

std::int64_t offset_or_minus_one(const builder& b, u64 pa) {
  const auto off = b.file_offset(pa);
  return off ? static_cast<std::int64_t>(*off) : -1;
}

// What walk_pages must report (§2.4 as kvmxx decided it): every valid kernel leaf, then
// every dumped page no kernel leaf covers, by its direct-map address only, prot R|W.
std::pair<std::vector<entry>, std::vector<entry>> expected_walk(const builder& b) {
  std::vector<entry> kmap, dmap_only;
  std::set<u64> covered;
  for (const auto& m : b.kernel_mappings()) {
    kmap.emplace_back(m.va, m.pa, m.size, b.dmap_base() + m.pa, prot_bits(m.writable, m.executable),
                      offset_or_minus_one(b, m.pa));
    for (u64 k = 0; k < m.size; k += P) covered.insert(m.pa + k);
  }
  for (u64 pa : b.dumped_pages())
    if (!covered.contains(pa))
      dmap_only.emplace_back(0, pa, P, b.dmap_base() + pa, prot_bits(true, false), offset_or_minus_one(b, pa));
  return {kmap, dmap_only};
}

void check_walk(const builder& b) {
  const auto bytes = b.build();
  const handle km = adopt_bytes(bytes);
  std::vector<entry> kmap, dmap_only;
  bool order_ok = true;
  const auto walked = km.walk_pages([&](const kvmxx::page_info& p) {
    if (kvmxx::to_integer(p.kmap_va) != 0) {
      if (!dmap_only.empty()) order_ok = false;  // kernel-map entries come first
      kmap.push_back(entry_of(p));
    } else {
      dmap_only.push_back(entry_of(p));
    }
    return true;
  });
  INFO(message_of(walked));
  REQUIRE(walked.has_value());
  CHECK(walked.value());
  CHECK(order_ok);
  auto [want_kmap, want_dmap] = expected_walk(b);
  std::sort(kmap.begin(), kmap.end());
  std::sort(want_kmap.begin(), want_kmap.end());
  CHECK(kmap.size() == want_kmap.size());
  CHECK(kmap == want_kmap);
  CHECK(dmap_only.size() == want_dmap.size());
  CHECK(dmap_only == want_dmap);  // ascending physical order, as the bitmap is walked
}

}  // namespace

TEST_CASE("amd64 models the architecture concepts for the backends it serves", "[arch][amd64]") {
  STATIC_REQUIRE(kvmxx::translation_arch<kvmxx::arch::amd64, kvmxx::backend::minidump>);
  STATIC_REQUIRE(kvmxx::page_walking_arch<kvmxx::arch::amd64, kvmxx::backend::minidump>);
  STATIC_REQUIRE(kvmxx::translation_arch<kvmxx::arch::amd64, kvmxx::backend::live_physical>);
  STATIC_REQUIRE_FALSE(kvmxx::page_walking_arch<kvmxx::arch::amd64, kvmxx::backend::live_physical>);
  STATIC_REQUIRE(kvmxx::arch::amd64::page_size == 4096);
  STATIC_REQUIRE(kvmxx::arch::amd64::id == kvmxx::machine::amd64);
}

// ---- minidump translation -------------------------------------------------------------

TEST_CASE("every kernel mapping of a v1, v2 and v3 dump translates like the oracle, with the right contiguity",
          "[arch][amd64]") {
  for (std::uint32_t v : {1u, 2u, 3u}) {
    CAPTURE(v);
    const builder b = mixed_dump(v);
    const auto bytes = b.build();
    const handle km = adopt_bytes(bytes);
    const auto maps = b.kernel_mappings();
    REQUIRE(maps.size() > 5);
    std::size_t checked = 0;
    for (const auto& m : maps) {
      for (u64 off : {u64{0}, u64{0x123}, u64{0xfff}, m.size / 2 + 0x10, m.size - 1}) {
        const u64 va = m.va + off;
        CAPTURE(hex(va));
        const auto t = km.translate(kvaddr{va});
        const auto want = b.translate(va);
        REQUIRE(want.has_value());
        INFO(message_of(t));
        REQUIRE(t.has_value());
        CHECK(kvmxx::to_integer(t.value().pa) == *want);
        // v1 expands 2 MiB pages into PTEs, so kernel_mappings() lists 4 KiB leaves there.
        CHECK(t.value().contiguous == expected_contiguous(v, m.size, va));
        ++checked;
      }
    }
    CHECK(checked == 5 * maps.size());
  }
}

TEST_CASE("a 1 GiB page in a v2 or v3 dump translates through its 512 synthesised 2 MiB PDEs", "[arch][amd64]") {
  for (std::uint32_t v : {2u, 3u}) {
    CAPTURE(v);
    builder b(v, 9);
    const u64 kb = b.kernbase();
    b.dump_avail({{0x1000, 0x9f000}, {0x100000, 0x2000000}});
    b.dump_mapped_pages(false);
    b.map_1g(kb + G1, 0, true, true);                     // over all of RAM
    b.map_1g(kb + 2 * G1, 0x100000000, false, false);     // 4 GiB: outside RAM, not dumped
    for (u64 pa : {0x1000ull, 0x1ff000ull, 0x200000ull, 0x1234000ull}) b.dump_page(pa);
    const auto bytes = b.build();
    const handle km = adopt_bytes(bytes);
    for (u64 va : {kb + G1, kb + G1 + 0x201234, kb + G1 + 0x1ffffff, kb + G1 + G1 - 1, kb + 2 * G1 + 0x12345678}) {
      CAPTURE(hex(va));
      const auto t = km.translate(kvaddr{va});
      INFO(message_of(t));
      REQUIRE(t.has_value());
      CHECK(kvmxx::to_integer(t.value().pa) == *b.translate(va));
      CHECK(t.value().contiguous == M2 - va % M2);
    }
    // A read through the 1 GiB mapping across one of its 2 MiB seams.
    std::vector<std::byte> buf(32);
    const auto got = km.read(kvaddr{kb + G1 + 0x1ffff0}, buf);
    CHECK(compare_read(got, buf, *b.read_virt(kb + G1 + 0x1ffff0, 32)).empty());
  }
}

TEST_CASE("direct map addresses translate to va - dmapbase, contiguous to the end of the direct map",
          "[arch][amd64]") {
  for (std::uint32_t v : {1u, 2u, 3u}) {
    CAPTURE(v);
    builder b = mixed_dump(v);
    b.dmap(0xfffff80000000000, 0xfffff80100000000);  // a 4 GiB direct map, to see its end
    const auto bytes = b.build();
    const handle km = adopt_bytes(bytes);
    for (u64 pa : {u64{0}, u64{0x1000}, u64{0x5678}, u64{0x1234abc}, u64{0xfffffff8}, u64{0xffffffff}}) {
      const u64 va = b.dmap_base() + pa;
      CAPTURE(hex(va));
      const auto t = km.translate(kvaddr{va});
      INFO(message_of(t));
      REQUIRE(t.has_value());
      CHECK(kvmxx::to_integer(t.value().pa) == *b.translate(va));
      CHECK(t.value().contiguous == b.dmap_end() - va);
    }
    const auto end = km.translate(kvaddr{b.dmap_end()});
    CHECK(outcome(end) == code_text(errc::unmapped_address));
    CHECK_THAT(message_of(end), Contains(hex(b.dmap_end())));
  }
}

TEST_CASE("addresses below kernbase and outside the direct map are unmapped, named in hex", "[arch][amd64]") {
  for (std::uint32_t v : {1u, 2u, 3u}) {
    CAPTURE(v);
    const builder b = mixed_dump(v);
    const auto bytes = b.build();
    const handle km = adopt_bytes(bytes);
    for (u64 va : {u64{0}, u64{0x400000}, u64{0x00007fffffffffff}, u64{0xffff800000000000}, b.dmap_base() - 1,
                   b.dmap_end(), b.dmap_end() + 0x1000, b.kernbase() - 1}) {
      CAPTURE(hex(va));
      REQUIRE_FALSE(b.translate(va).has_value());
      const auto t = km.translate(kvaddr{va});
      CHECK(outcome(t) == code_text(errc::unmapped_address));
      CHECK_THAT(message_of(t), Contains(hex(va)));
      std::array<std::byte, 8> buf{};
      CHECK(outcome(km.read(kvaddr{va}, buf)) == code_text(errc::unmapped_address));
    }
  }
}

TEST_CASE("a PDE or PTE without PG_V is unmapped even though it holds a frame", "[arch][amd64]") {
  for (std::uint32_t v : {1u, 2u, 3u}) {
    CAPTURE(v);
    const builder b = mixed_dump(v);
    const auto bytes = b.build();
    const handle km = adopt_bytes(bytes);
    const u64 kb = b.kernbase();
    // stale_4k, stale_2m (v1: 512 stale PTEs), an empty slot of a PT page, an empty PDE.
    for (u64 va : {kb + 0x3000, kb + 0x3abc, kb + 0x600000, kb + 0x7fffff, kb + 0x4000, kb + 0xc00000}) {
      CAPTURE(hex(va));
      REQUIRE_FALSE(b.translate(va).has_value());
      const auto t = km.translate(kvaddr{va});
      CHECK(outcome(t) == code_text(errc::unmapped_address));
      CHECK_THAT(message_of(t), Contains(hex(va)));
    }
  }
}

TEST_CASE("a page-table page missing from the dump makes its region page_not_dumped", "[arch][amd64]") {
  for (std::uint32_t v : {2u, 3u}) {
    CAPTURE(v);
    const builder b = mixed_dump(v);
    const u64 va = b.kernbase() + 0xa00000;
    const auto pt = b.page_table_page(va);
    REQUIRE(pt.has_value());
    REQUIRE_FALSE(b.file_offset(*pt).has_value());
    REQUIRE_FALSE(b.translate(va).has_value());
    const auto bytes = b.build();
    const handle km = adopt_bytes(bytes);
    const auto t = km.translate(kvaddr{va + 0x10});
    CHECK(outcome(t) == code_text(errc::page_not_dumped));
    CHECK_THAT(message_of(t), Contains(hex(va + 0x10)) && Contains(hex(*pt)));
    std::array<std::byte, 8> buf{};
    CHECK(outcome(km.read(kvaddr{va}, buf)) == code_text(errc::page_not_dumped));
  }
}

TEST_CASE("addresses past the end of the page map are unmapped", "[arch][amd64]") {
  for (std::uint32_t v : {1u, 2u, 3u}) {
    CAPTURE(v);
    const builder b = mixed_dump(v);
    const auto lay = b.file_layout();
    // pmapsize/8 entries, each covering 4 KiB (v1) or 2 MiB (v2/v3) from kernbase (§2.5).
    const u64 covered = lay.pmap_size / 8 * (v == 1 ? P : M2);
    const auto bytes = b.build();
    const handle km = adopt_bytes(bytes);
    for (u64 va : {b.kernbase() + covered, b.kernbase() + covered + 0x1234, ~u64{0}}) {
      CAPTURE(hex(va));
      REQUIRE_FALSE(b.pmap_entry_offset(va).has_value());
      const auto t = km.translate(kvaddr{va});
      CHECK(outcome(t) == code_text(errc::unmapped_address));
      CHECK_THAT(message_of(t), Contains(hex(va)));
    }
    // The last entry inside the map is still looked up.
    const u64 last = b.kernbase() + covered - 1;
    REQUIRE(b.pmap_entry_offset(last).has_value());
    const auto t = km.translate(kvaddr{last});
    if (const auto want = b.translate(last)) {
      REQUIRE(t.has_value());
      CHECK(kvmxx::to_integer(t.value().pa) == *want);
    } else {
      CHECK(outcome(t) == code_text(errc::unmapped_address));
    }
  }
}

TEST_CASE("NX, PAT and the bits above the frame are masked out of every kind of entry", "[arch][amd64]") {
  for (std::uint32_t v : {1u, 2u, 3u}) {
    CAPTURE(v);
    builder b(v, 3);
    const u64 kb = b.kernbase();
    b.dump_avail({{0x1000, 0x9f000}, {0x100000, 0x1000000}});
    b.map_4k(kb + 0x1000, 0x150000, true, false);             // NX set by the writer
    b.map_4k(kb + 0x2000, 0x000ffffffffff000, false, false);  // the highest 4 KiB frame, NX
    b.map_2m(kb + 0x200000, 0x400000, true, false);
    b.map_2m(kb + 0x400000, 0x000fffffffe00000, true, false);  // the highest 2 MiB frame, NX
    auto bytes = b.build();
    // Hand-edit the leaves the walk will use: add PAT/PS-position bit 7 to 4 KiB PTEs,
    // PAT (bit 12) to PS PDEs, and bits 52..62 to both.
    const auto pte_offset = [&](u64 va) -> u64 {
      if (v == 1) return *b.pmap_entry_offset(va);
      return *b.file_offset(*b.page_table_page(va)) + ((va >> 12) & 511) * 8;
    };
    for (u64 va : {kb + 0x1000, kb + 0x2000}) {
      const u64 off = pte_offset(va);
      REQUIRE((get_le(bytes, off) & pg_v) != 0);
      put_le(bytes, off, get_le(bytes, off) | pg_high_ignored | pg_ps);
    }
    if (v >= 2) {
      for (u64 va : {kb + 0x200000, kb + 0x400000}) {
        const u64 off = *b.pmap_entry_offset(va);
        REQUIRE((get_le(bytes, off) & (pg_v | pg_ps)) == (pg_v | pg_ps));
        put_le(bytes, off, get_le(bytes, off) | pg_high_ignored | pg_pat_large);
      }
    }
    const handle km = adopt_bytes(bytes);
    for (u64 va : {kb + 0x1000 + 0x10, kb + 0x2000 + 0xff8, kb + 0x200000 + 0x1234, kb + 0x400000 + 0x1fffff}) {
      CAPTURE(hex(va));
      const auto t = km.translate(kvaddr{va});
      INFO(message_of(t));
      REQUIRE(t.has_value());
      CHECK(kvmxx::to_integer(t.value().pa) == *b.translate(va));
    }
    // Bit 7 of a 4 KiB PTE is PAT, not PS: still a 4 KiB translation.
    CHECK(km.translate(kvaddr{kb + 0x1010}).value().contiguous == P - 0x10);
    // Reads through the edited entries still find the oracle's bytes.
    std::vector<std::byte> buf(64);
    CHECK(compare_read(km.read(kvaddr{kb + 0x1fe0}, buf), buf, readable_virt_prefix(b, kb + 0x1fe0, 64)).empty());
    CHECK(compare_read(km.read(kvaddr{kb + 0x201000}, buf), buf, *b.read_virt(kb + 0x201000, 64)).empty());
    // walk_pages masks the same way and keeps the protection the untouched bits give.
    std::vector<std::tuple<u64, u64, u64, int>> got, want;
    REQUIRE(km.walk_pages([&](const kvmxx::page_info& p) {
                if (kvmxx::to_integer(p.kmap_va) != 0)
                  got.emplace_back(kvmxx::to_integer(p.kmap_va), kvmxx::to_integer(p.pa), p.length,
                                   static_cast<int>(p.prot));
                return true;
              }).has_value());
    for (const auto& m : b.kernel_mappings()) want.emplace_back(m.va, m.pa, m.size, prot_bits(m.writable, m.executable));
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    CHECK(got == want);
  }
}

// ---- reads through the handle ---------------------------------------------------------

TEST_CASE("reads cross from a 4 KiB page into a 2 MiB page and stop short at an unmapped page", "[arch][amd64]") {
  for (std::uint32_t v : {1u, 2u, 3u}) {
    CAPTURE(v);
    const builder b = mixed_dump(v);
    const auto bytes = b.build();
    const handle km = adopt_bytes(bytes);
    const u64 kb = b.kernbase();
    {
      INFO("4 KiB into 2 MiB");
      std::vector<std::byte> buf(0x20);
      const auto got = km.read(kvaddr{kb + 0x1ffff0}, buf);
      const auto want = b.read_virt(kb + 0x1ffff0, 0x20);
      REQUIRE(want.has_value());
      CHECK(compare_read(got, buf, *want).empty());
    }
    {
      INFO("through a 2 MiB page up to its first page that is not dumped");
      std::vector<std::byte> buf(0x5000);
      const auto got = km.read(kvaddr{kb + 0x1ff800}, buf);
      REQUIRE(got.has_value());
      CHECK(got.value() == 0x3800);  // 0x800 + pages 0x400000..0x402fff; 0x403000 is not dumped
      CHECK(compare_read(got, buf, readable_virt_prefix(b, kb + 0x1ff800, 0x5000)).empty());
      CHECK_THAT(kvmxx::last_error_message(), Contains("0x403000"));
    }
    {
      INFO("4 KiB into an unmapped page");
      std::vector<std::byte> buf(0x200);
      const auto got = km.read(kvaddr{kb + 0x400f00}, buf);
      REQUIRE(got.has_value());
      CHECK(got.value() == 0x100);
      CHECK(compare_read(got, buf, readable_virt_prefix(b, kb + 0x400f00, 0x200)).empty());
      CHECK_THAT(kvmxx::last_error_message(), Contains(hex(kb + 0x401000)));
      std::array<std::byte, 8> word{};
      const auto exact = km.read_exact(kvaddr{kb + 0x400ffc}, word);
      CHECK(outcome(exact) == code_text(errc::unmapped_address));
    }
    {
      INFO("a mapped page whose frame is not dumped");
      std::array<std::byte, 8> buf{};
      const auto got = km.read(kvaddr{kb + 0x5008}, buf);
      CHECK(outcome(got) == code_text(errc::page_not_dumped));
      CHECK_THAT(message_of(got), Contains("0x156008"));
    }
    {
      INFO("through the direct map");
      std::vector<std::byte> buf(0x2800);
      const u64 va = b.dmap_base() + 0x1800;  // pages 0x1000, 0x2000 dumped, 0x3000 not
      const auto got = km.read(kvaddr{va}, buf);
      REQUIRE(got.has_value());
      CHECK(got.value() == 0x1800);
      CHECK(compare_read(got, buf, readable_virt_prefix(b, va, buf.size())).empty());
      const auto value = km.read_as<std::uint64_t>(kvaddr{b.dmap_base() + 0x1234ff8});
      REQUIRE(value.has_value());
      const auto want = b.read_phys(0x1234ff8, 8);
      u64 w = 0;
      std::memcpy(&w, want->data(), 8);
      CHECK(value.value() == w);
    }
  }
}

TEST_CASE("random virtual reads of a realistic dump match the oracle page by page", "[arch][amd64]") {
  for (std::uint32_t v : {1u, 2u, 3u}) {
    CAPTURE(v);
    const builder b = builder::realistic(v, 40 + v, 16);
    const auto bytes = b.build();
    const handle km = adopt_bytes(bytes);
    const auto maps = b.kernel_mappings();
    std::mt19937_64 rng(0xa11ce + v);
    std::size_t bad = 0;
    for (int i = 0; i < 1500; ++i) {
      const auto& m = maps[rng() % maps.size()];
      const u64 va = i % 4 == 0 ? b.dmap_base() + rng() % (17ull << 20) : m.va + rng() % m.size;
      const std::size_t len = 1 + rng() % (3 * P);
      std::vector<std::byte> buf(len);
      const auto got = km.read(kvaddr{va}, buf);
      if (const auto why = compare_read(got, buf, readable_virt_prefix(b, va, len)); !why.empty() && bad++ == 0)
        UNSCOPED_INFO("va " << hex(va) << " len " << len << ": " << why);
    }
    CHECK(bad == 0);
    // The symbols the writer placed read back through the kernel map.
    for (const auto& s : b.symbols()) {
      if (s.size == 0 || s.size > 64) continue;
      CAPTURE(s.name);
      std::vector<std::byte> buf(s.size);
      CHECK(compare_read(km.read(kvaddr{s.va}, buf), buf, *b.read_virt(s.va, s.size)).empty());
    }
  }
}

// ---- walk_pages -----------------------------------------------------------------------

TEST_CASE("walk_pages reports every kernel mapping, then only the dumped pages no mapping covers",
          "[arch][amd64]") {
  for (std::uint32_t v : {1u, 2u, 3u}) {
    CAPTURE(v);
    check_walk(mixed_dump(v));
  }
}

TEST_CASE("walk_pages of a realistic dump matches the oracle", "[arch][amd64]") {
  for (std::uint32_t v : {1u, 2u, 3u}) {
    CAPTURE(v);
    check_walk(builder::realistic(v, 60 + v, 16));
  }
}

TEST_CASE("walk_pages reports a 1 GiB page as 512 entries of 2 MiB", "[arch][amd64]") {
  for (std::uint32_t v : {2u, 3u}) {
    CAPTURE(v);
    builder b(v, 17);
    const u64 kb = b.kernbase();
    b.dump_avail({{0x1000, 0x9f000}, {0x100000, 0x2000000}});
    b.dump_mapped_pages(false);
    b.map_1g(kb + G1, 0, true, true);
    b.map_1g(kb + 2 * G1, 0x100000000, false, false);
    for (u64 pa : {0x1000ull, 0x200000ull, 0x1234000ull}) b.dump_page(pa);
    REQUIRE(b.kernel_mappings().size() == 1024);
    check_walk(b);
  }
}

TEST_CASE("walk_pages stops as soon as the callback returns false and then returns false", "[arch][amd64]") {
  const builder b = mixed_dump(3);
  const auto bytes = b.build();
  const handle km = adopt_bytes(bytes);
  std::size_t total = 0, kernel = 0;
  const auto all = km.walk_pages([&](const kvmxx::page_info& p) {
    ++total;
    if (kvmxx::to_integer(p.kmap_va) != 0) ++kernel;
    return true;
  });
  REQUIRE(all.has_value());
  CHECK(all.value());
  const auto [want_kmap, want_dmap] = expected_walk(b);
  REQUIRE(kernel == want_kmap.size());
  REQUIRE(total == want_kmap.size() + want_dmap.size());
  REQUIRE(total > kernel + 1);
  // Stop on the first entry, the last kernel-map entry, the first and the last dmap-only one.
  for (std::size_t stop_at : {std::size_t{1}, kernel, kernel + 1, total}) {
    CAPTURE(stop_at);
    std::size_t calls = 0;
    const auto r = km.walk_pages([&](const kvmxx::page_info&) { return ++calls < stop_at; });
    REQUIRE(r.has_value());
    CHECK_FALSE(r.value());
    CHECK(calls == stop_at);
  }
}

TEST_CASE("walk_pages is not supported through a backend without a minidump page map", "[arch][amd64]") {
  kvmxx_test::temp_dir dir;
  const auto path = dir.path("phys.img");
  const std::vector<std::byte> mem(2 * P);
  kvmxx_test::write_file(path, mem);
  kvmxx::live_options o;
  o.device = path.c_str();
  o.arch = kvmxx::machine::amd64;
  o.page_table_root = physaddr{0};
  auto km = live_handle::open_live(nullptr, o);
  INFO(message_of(km));
  REQUIRE(km.has_value());
  const auto r = km.value().walk_pages([](const kvmxx::page_info&) { return true; });
  CHECK(outcome(r) == code_text(errc::not_supported));
}

// ---- the hardware walk (4- and 5-level paging) ----------------------------------------

namespace {

// A canonical 4-level virtual address from its table indices.
u64 va4(u64 i4, u64 i3, u64 i2, u64 i1, u64 off) {
  u64 va = (i4 << 39) | (i3 << 30) | (i2 << 21) | (i1 << 12) | off;
  if (va & (u64{1} << 47)) va |= 0xffff000000000000;
  return va;
}
// A canonical 5-level virtual address.
u64 va5(u64 i5, u64 i4, u64 i3, u64 i2, u64 i1, u64 off) {
  u64 va = (i5 << 48) | (i4 << 39) | (i3 << 30) | (i2 << 21) | (i1 << 12) | off;
  if (va & (u64{1} << 56)) va |= 0xfe00000000000000;
  return va;
}

// Hand-built page tables in a 4 MiB "physical memory" file:
//   PML5 0x8000: [0x1ff] -> PML4 0x1000; [0x1fe] not present
//   PML4 0x1000: [0x1f0] and [0] -> PDPT 0x2000; [0x1f1] not present
//   PDPT 0x2000: [5] -> PD 0x3000; [6] 1 GiB page at 0; [7] 1 GiB page at 1 GiB with PAT,
//                NX and bits 52..62 set; [8] not present
//   PD   0x3000: [7] -> PT 0x4000; [8] 2 MiB page at 0x200000 (PAT, NX, G, A, D);
//                [9] not present; [10] -> a PT at 0x10000000, beyond the file
//   PT   0x4000: [9] -> 0x5000 (NX, G, A, D, bits 52..62); [10] -> 0x6000; [11] not present;
//                [511] -> 0x7000 with bit 7 (PAT in a PTE, not PS)
struct hw_tables {
  static constexpr u64 size = 0x400000;
  std::vector<std::byte> mem = std::vector<std::byte>(size);
  hw_tables() {
    std::mt19937_64 rng(0x9a9e);
    for (auto& byte : mem) byte = static_cast<std::byte>(rng() & 0xff);
    for (u64 table : {0x1000ull, 0x2000ull, 0x3000ull, 0x4000ull, 0x8000ull})
      std::fill_n(mem.begin() + static_cast<std::ptrdiff_t>(table), P, std::byte{0});
    const auto set = [&](u64 table, u64 index, u64 value) { put_le(mem, table + index * 8, value); };
    set(0x8000, 0x1ff, 0x1000 | pg_v | pg_rw);
    set(0x1000, 0x1f0, 0x2000 | pg_v | pg_rw);
    set(0x1000, 0, 0x2000 | pg_v | pg_rw);
    set(0x2000, 5, 0x3000 | pg_v | pg_rw);
    set(0x2000, 6, 0x0 | pg_v | pg_rw | pg_ps);
    set(0x2000, 7, 0x40000000 | pg_v | pg_ps | pg_pat_large | pg_nx | pg_high_ignored);
    set(0x3000, 7, 0x4000 | pg_v | pg_rw);
    set(0x3000, 8, 0x200000 | pg_v | pg_rw | pg_ps | pg_pat_large | pg_nx | pg_g | pg_a | pg_d);
    set(0x3000, 10, 0x10000000 | pg_v | pg_rw);
    set(0x4000, 9, 0x5000 | pg_v | pg_rw | pg_a | pg_d | pg_g | pg_nx | pg_high_ignored);
    set(0x4000, 10, 0x6000 | pg_v);
    set(0x4000, 511, 0x7000 | pg_v | pg_rw | pg_ps);
  }
  std::vector<std::byte> at(u64 pa, std::size_t len) const {
    return {mem.begin() + static_cast<std::ptrdiff_t>(pa), mem.begin() + static_cast<std::ptrdiff_t>(pa + len)};
  }
};

struct hw_fixture {
  hw_tables tables;
  kvmxx_test::temp_dir dir;
  std::string path = dir.path("physmem.img");
  hw_fixture() { kvmxx_test::write_file(path, tables.mem); }

  live_handle open(std::optional<u64> root, unsigned levels) const {
    kvmxx::live_options o;
    o.device = path.c_str();
    o.arch = kvmxx::machine::amd64;
    o.os = kvmxx::os_kind::freebsd;
    if (root) o.page_table_root = physaddr{*root};
    o.paging_levels = levels;
    auto km = live_handle::open_live(nullptr, o);
    INFO(message_of(km));
    REQUIRE(km.has_value());
    return std::move(km).value();
  }
};

struct hw_case {
  u64 va, pa, contiguous;
};

void check_translations(const live_handle& km, const std::vector<hw_case>& cases) {
  for (const auto& c : cases) {
    CAPTURE(hex(c.va));
    const auto t = km.translate(kvaddr{c.va});
    INFO(message_of(t));
    REQUIRE(t.has_value());
    CHECK(kvmxx::to_integer(t.value().pa) == c.pa);
    CHECK(t.value().contiguous == c.contiguous);
  }
}

// True when w occurs in s as a whole word ("PTE" in "PTE not valid", not in "PDPTE").
bool contains_word(const std::string& s, const std::string& w) {
  const auto is_word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  for (auto pos = s.find(w); pos != std::string::npos; pos = s.find(w, pos + 1)) {
    const bool left = pos == 0 || !is_word(s[pos - 1]);
    const bool right = pos + w.size() == s.size() || !is_word(s[pos + w.size()]);
    if (left && right) return true;
  }
  return false;
}

void check_fails(const live_handle& km, u64 va, errc code, std::initializer_list<std::string> words) {
  CAPTURE(hex(va));
  const auto t = km.translate(kvaddr{va});
  CHECK(outcome(t) == code_text(code));
  const auto msg = message_of(t);
  CAPTURE(msg);
  CHECK_THAT(msg, Contains(hex(va)));
  for (const auto& w : words) {
    CAPTURE(w);
    CHECK(contains_word(msg, w));
  }
}

}  // namespace

TEST_CASE("the 4-level hardware walk translates 4 KiB, 2 MiB and 1 GiB pages", "[arch][amd64]") {
  const hw_fixture fx;
  for (u64 root : {u64{0x1000}, u64{0x1000 | 0x18}}) {  // CR3's PWT/PCD bits are not address bits
    CAPTURE(hex(root));
    const live_handle km = fx.open(root, 4);
    check_translations(km, {
        {va4(0x1f0, 5, 7, 9, 0x123), 0x5123, P - 0x123},        // 4 KiB, flags above the frame
        {va4(0, 5, 7, 9, 0x123), 0x5123, P - 0x123},            // the same leaf from the lower half
        {va4(0x1f0, 5, 7, 511, 0xfff), 0x7fff, 1},              // bit 7 of a PTE is PAT, not PS
        {va4(0x1f0, 5, 8, 0, 0) + 0x12345, 0x212345, M2 - 0x12345},  // 2 MiB, PAT/NX masked
        {va4(0x1f0, 6, 0, 0, 0) + 0x2345678, 0x2345678, G1 - 0x2345678},  // 1 GiB at 0
        {va4(0x1f0, 7, 0, 0, 0) + 0x1234, 0x40001234, G1 - 0x1234},  // 1 GiB, PAT/NX/high bits masked
    });
  }
}

TEST_CASE("the 4-level hardware walk fails at each level whose entry is not present", "[arch][amd64]") {
  const hw_fixture fx;
  const live_handle km = fx.open(0x1000, 4);
  check_fails(km, va4(0x1f1, 0, 0, 0, 0x10), errc::unmapped_address, {"PML4E"});
  check_fails(km, va4(0x1f0, 8, 0, 0, 0x10), errc::unmapped_address, {"PDPTE"});
  check_fails(km, va4(0x1f0, 5, 9, 0, 0x10), errc::unmapped_address, {"PDE"});
  check_fails(km, va4(0x1f0, 5, 7, 11, 0x10), errc::unmapped_address, {"PTE"});
  // A table the file does not hold: the PTE at 0x10000000 + 3*8 cannot be read.
  check_fails(km, va4(0x1f0, 5, 10, 3, 0x10), errc::page_not_dumped, {hex(0x10000000 + 3 * 8)});
}

TEST_CASE("the 4-level hardware walk rejects non-canonical addresses", "[arch][amd64]") {
  const hw_fixture fx;
  const live_handle km = fx.open(0x1000, 4);
  for (u64 va : {0x0000800000000000ull, 0xffff7fffffffffffull, 0x8000000000000000ull, 0x00ff800000000000ull})
    check_fails(km, va, errc::unmapped_address, {"canonical"});
}

TEST_CASE("the 5-level hardware walk translates through the PML5 and checks 57-bit canonical form",
          "[arch][amd64]") {
  const hw_fixture fx;
  const live_handle km = fx.open(0x8000, 5);
  check_translations(km, {
      {va5(0x1ff, 0x1f0, 5, 7, 9, 0x123), 0x5123, P - 0x123},
      {va5(0x1ff, 0x1f0, 5, 8, 0, 0x12345), 0x212345, M2 - 0x12345},
      {va5(0x1ff, 0x1f0, 6, 0, 0, 0x5010), 0x5010, G1 - 0x5010},
  });
  check_fails(km, va5(0x1fe, 0x1f0, 5, 7, 9, 0), errc::unmapped_address, {"PML5E"});
  check_fails(km, va5(0x1ff, 0x1f1, 0, 0, 0, 0), errc::unmapped_address, {"PML4E"});
  check_fails(km, va5(0x1ff, 0x1f0, 5, 7, 11, 0), errc::unmapped_address, {"PTE"});
  // Canonical with 57 bits (bits 63..56 equal) but PML5[0] is empty.
  check_fails(km, 0x0000800000000000, errc::unmapped_address, {"PML5E"});
  for (u64 va : {0x0100000000000000ull, 0xfe00000000000000ull, 0x7f00000000000000ull})
    check_fails(km, va, errc::unmapped_address, {"canonical"});
}

TEST_CASE("reads through the hardware walk cross page kinds and stop short at a missing PTE", "[arch][amd64]") {
  const hw_fixture fx;
  for (unsigned levels : {4u, 5u}) {
    CAPTURE(levels);
    const live_handle km = fx.open(levels == 4 ? 0x1000 : 0x8000, levels);
    const auto va = [&](u64 i3, u64 i2, u64 i1, u64 off) {
      return levels == 4 ? va4(0x1f0, i3, i2, i1, off) : va5(0x1ff, 0x1f0, i3, i2, i1, off);
    };
    std::vector<std::byte> buf(16);
    // The last 4 KiB page of PD[7]'s region into the 2 MiB page of PD[8].
    auto got = km.read(kvaddr{va(5, 7, 511, 0xff8)}, buf);
    REQUIRE(got.has_value());
    CHECK(got.value() == 16);
    auto want = fx.tables.at(0x7ff8, 8);
    const auto tail = fx.tables.at(0x200000, 8);
    want.insert(want.end(), tail.begin(), tail.end());
    CHECK(std::equal(want.begin(), want.end(), buf.begin()));
    // PT[10] -> 0x6000 is present, PT[11] is not: a short count.
    buf.assign(0x200, std::byte{0});
    got = km.read(kvaddr{va(5, 7, 10, 0xf00)}, buf);
    REQUIRE(got.has_value());
    CHECK(got.value() == 0x100);
    const auto first = fx.tables.at(0x6f00, 0x100);
    CHECK(std::equal(first.begin(), first.end(), buf.begin()));
    CHECK_THAT(kvmxx::last_error_message(), Contains(hex(va(5, 7, 11, 0))));
    // Through the 1 GiB page at 0, across the 4 KiB seam of two tables.
    buf.assign(0x20, std::byte{0});
    got = km.read(kvaddr{va(6, 0, 0, 0x1ff0)}, buf);
    REQUIRE(got.has_value());
    CHECK(got.value() == 0x20);
    const auto seam = fx.tables.at(0x1ff0, 0x20);
    CHECK(std::equal(seam.begin(), seam.end(), buf.begin()));
    // The 1 GiB page at 1 GiB lies beyond the 4 MiB file: the data read fails.
    got = km.read(kvaddr{va(7, 0, 0, 0)}, buf);
    CHECK(outcome(got) == code_text(errc::page_not_dumped));
  }
}

TEST_CASE("without a page-table root the hardware walk is not supported", "[arch][amd64]") {
  const hw_fixture fx;
  const live_handle km = fx.open(std::nullopt, 4);
  const u64 va = va4(0x1f0, 5, 7, 9, 0);
  const auto t = km.translate(kvaddr{va});
  CHECK(outcome(t) == code_text(errc::not_supported));
  CHECK_THAT(message_of(t), Contains(hex(va)));
  std::array<std::byte, 8> buf{};
  CHECK(outcome(km.read(kvaddr{va}, buf)) == code_text(errc::not_supported));
  // Physical reads still work.
  const auto p = km.read_physical(physaddr{0x5000}, buf);
  REQUIRE(p.has_value());
  CHECK(p.value() == 8);
}

TEST_CASE("a paging mode other than 4 or 5 levels is an invalid argument", "[arch][amd64]") {
  const hw_fixture fx;
  for (unsigned levels : {0u, 3u, 6u}) {
    CAPTURE(levels);
    const live_handle km = fx.open(0x1000, levels);
    const auto t = km.translate(kvaddr{va4(0x1f0, 5, 7, 9, 0)});
    CHECK(outcome(t) == code_text(errc::invalid_argument));
    CHECK_THAT(message_of(t), Contains(std::to_string(levels)));
  }
}

TEST_CASE("a backend that gives no way to translate makes translate not_supported", "[arch][amd64]") {
  const kvmxx::backend::null nothing(kvmxx::machine::amd64);
  const auto t = kvmxx::arch::amd64{}.translate(nothing, kvaddr{0xffffffff80201234});
  CHECK(outcome(t) == code_text(errc::not_supported));
  CHECK_THAT(message_of(t), Contains("0xffffffff80201234"));
}

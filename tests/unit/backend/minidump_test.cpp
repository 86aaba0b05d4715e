// The FreeBSD minidump backend: header validation, sections, dump_avail, the page bitmap
// and the sparse page array (specs/freebsd-libkvm.md §2.1, §2.2, §2.5, §2.13, §6.7, §6.12).
// Every expected value comes from the independent fixture writer's oracle
// (tests/support/amd64_minidump_writer.hpp) or from the spec's worked example.
#include <catch2/catch.hpp>
#include <kvmxx/arch/amd64.hpp>
#include <kvmxx/backend/minidump.hpp>
#include <kvmxx/core/kernel_memory.hpp>
#include <kvmxx/resolver/none.hpp>

#include "amd64_minidump_writer.hpp"
#include "file_util.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <grp.h>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace {

using builder = kvmxx_test::amd64_minidump_builder;
using handle = kvmxx::kernel_memory<kvmxx::backend::minidump, kvmxx::arch::amd64, kvmxx::resolver::none>;
using kvmxx::errc;
using kvmxx::physaddr;
using kvmxx::backend::minidump;
using Catch::Matchers::Contains;
using u64 = std::uint64_t;

constexpr u64 P = 4096;
constexpr const char* mem_name = "test.vmcore";

std::string hex(u64 v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// "kvmxx:4 (file is truncated)": comparable, and readable when a CHECK fails.
std::string code_text(const std::error_code& ec) {
  return std::string(ec.category().name()) + ":" + std::to_string(ec.value()) + " (" + ec.message() + ")";
}
std::string code_text(errc e) { return code_text(kvmxx::make_error_code(e)); }

template <class T>
std::string outcome(const kvmxx::result<T>& r) {
  return r.has_value() ? std::string("success") : code_text(r.error());
}

// The recorded message of a failed call ("" on success); call right after the call.
template <class T>
std::string message_of(const kvmxx::result<T>& r) {
  return r.has_value() ? std::string() : kvmxx::describe(r.error());
}


minidump open_bytes(const std::vector<std::byte>& bytes, std::string name = mem_name) {
  auto r = minidump::from_bytes(bytes, std::move(name));
  INFO(message_of(r));
  REQUIRE(r.has_value());
  return std::move(r).value();
}

handle adopt_bytes(const std::vector<std::byte>& bytes) {
  auto km = handle::adopt(open_bytes(bytes), {});
  INFO(message_of(km));
  REQUIRE(km.has_value());
  return std::move(km).value();
}

void put_le(std::vector<std::byte>& f, u64 off, u64 value, std::size_t width) {
  for (std::size_t i = 0; i < width; ++i) f.at(off + i) = static_cast<std::byte>((value >> (8 * i)) & 0xff);
}

// A small dump: two RAM ranges (the PC layout), three 4 KiB kernel mappings in two 2 MiB
// regions, loose pages in both ranges (0x3f000 is the page libkvm would alias 0xa0000 to,
// §6.7), and a msgbuf that is not a page multiple. v1/v2 use the ranges only to decide
// what is dumpable; their bitmap starts at physical 0.
builder small_dump(std::uint32_t version, u64 seed = 11) {
  builder b(version, seed);
  const u64 kb = b.kernbase();
  b.dump_avail({{0x1000, 0x9f000}, {0x100000, 0x400000}});
  b.msgbuf("<5>FreeBSD 14.1-RELEASE amd64\n<0>panic: page fault\n<6>Dump complete\n");
  b.map_4k(kb + 0x1000, 0x120000).map_4k(kb + 0x2000, 0x121000, false, true).map_4k(kb + 0x200000, 0x122000);
  for (u64 pa : {0x1000ull, 0x2000ull, 0x3000ull, 0x3f000ull, 0x9e000ull, 0x100000ull, 0x101000ull, 0x103000ull,
                 0x2ff000ull})
    b.dump_page(pa);
  return b;
}

// Every page from 0 to past the last RAM byte, to compare presence page by page.
std::vector<u64> pages_to_probe(u64 end) {
  std::vector<u64> v;
  for (u64 pa = 0; pa < end; pa += P) v.push_back(pa);
  return v;
}

// The bytes a correct reader returns for [pa, pa + len): the oracle's pages up to the
// first one that is not dumped (a short count), nothing when the first one is missing.
std::vector<std::byte> readable_phys_prefix(const builder& b, u64 pa, std::size_t len) {
  std::vector<std::byte> out;
  while (out.size() < len) {
    const u64 cur = pa + out.size();
    const std::size_t n = std::min<std::size_t>(len - out.size(), P - cur % P);
    const auto bytes = b.read_phys(cur, n);
    if (!bytes) break;
    out.insert(out.end(), bytes->begin(), bytes->end());
  }
  return out;
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

// Checks one read against the prefix rule; "" when it matches, else what differed.
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

}  // namespace

// ---- probe ----------------------------------------------------------------------------

TEST_CASE("probe accepts anything that starts with the 8 bytes \"minidump\"", "[backend][minidump]") {
  const auto bytes_of = [](std::string_view s) {
    std::vector<std::byte> v(s.size());
    std::memcpy(v.data(), s.data(), s.size());
    return v;
  };
  CHECK(minidump::probe(bytes_of("minidump")));
  CHECK(minidump::probe(bytes_of(std::string_view("minidump FreeBSD/amd64\0", 23))));
  CHECK(minidump::probe(bytes_of("minidump FreeBSD/i386")));  // any architecture (§1.6)
  CHECK(minidump::probe(small_dump(3).build()));
}

TEST_CASE("probe rejects short, empty and foreign bytes", "[backend][minidump]") {
  const auto bytes_of = [](std::string_view s) {
    std::vector<std::byte> v(s.size());
    std::memcpy(v.data(), s.data(), s.size());
    return v;
  };
  CHECK_FALSE(minidump::probe({}));
  CHECK_FALSE(minidump::probe(bytes_of("minidum")));
  CHECK_FALSE(minidump::probe(bytes_of("Minidump FreeBSD/amd64")));
  CHECK_FALSE(minidump::probe(bytes_of("\x7f" "ELF\x02\x01\x01\x09")));
  CHECK_FALSE(minidump::probe(bytes_of("FreeBSD Kernel Dump")));
}

// ---- open and header ------------------------------------------------------------------

TEST_CASE("v1, v2 and v3 dumps open and header() matches the writer's layout", "[backend][minidump]") {
  for (std::uint32_t v : {1u, 2u, 3u}) {
    CAPTURE(v);
    const builder b = builder::realistic(v, 100 + v, 16);
    const auto bytes = b.build();
    const auto lay = b.file_layout();
    const minidump md = open_bytes(bytes);
    const auto& h = md.header();
    CHECK(h.version == v);
    CHECK(h.msgbufsize == lay.msgbuf_size);
    CHECK(h.msgbuf_off == lay.msgbuf_off);
    CHECK(h.bitmapsize == lay.bitmap_size);
    CHECK(h.bitmap_off == lay.bitmap_off);
    CHECK(h.pmapsize == lay.pmap_size);
    CHECK(h.pmap_off == lay.pmap_off);
    CHECK(h.sparse_off == lay.sparse_off);
    CHECK(h.dumpavailsize == lay.dump_avail_size);  // 0 for v1/v2
    if (v == 3) CHECK(h.dump_avail_off == lay.dump_avail_off);
    CHECK(h.kernbase == b.kernbase());
    CHECK(h.dmapbase == b.dmap_base());
    CHECK(h.dmapend == b.dmap_end());
    CHECK(md.machine() == kvmxx::machine::amd64);
    CHECK(md.os() == kvmxx::os_kind::freebsd);
    CHECK(md.page_size() == P);
    CHECK_FALSE(md.truncated());
    CHECK(std::string(md.path()) == mem_name);
    CHECK(md.bytes().size() == lay.file_size);

    const auto info = md.info();
    CHECK(info.arch == kvmxx::machine::amd64);
    CHECK(info.format_version == v);
    CHECK(info.page_size == P);
    CHECK(info.dumped_pages == lay.sparse_pages);
    CHECK(info.message_buffer_size == lay.msgbuf_size);
    CHECK(info.file_size == lay.file_size);
  }
}

TEST_CASE("v3 dump_avail lists exactly the ranges the dump was written with", "[backend][minidump]") {
  const builder b = builder::realistic(3, 5, 24);
  const auto bytes = b.build();
  const minidump md = open_bytes(bytes);
  const auto expected = b.bitmap_ranges();
  REQUIRE(md.dump_avail().size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(kvmxx::to_integer(md.dump_avail()[i].start) == expected[i].first);
    CHECK(kvmxx::to_integer(md.dump_avail()[i].end) == expected[i].second);
  }
  CHECK(md.info().ranges.size() == expected.size());
}

TEST_CASE("v1 and v2 dumps cover the synthetic range [0, bitmapsize*8*4096)", "[backend][minidump]") {
  for (std::uint32_t v : {1u, 2u}) {
    CAPTURE(v);
    const builder b = small_dump(v);
    const auto bytes = b.build();
    const minidump md = open_bytes(bytes);
    REQUIRE(md.dump_avail().size() == 1);
    CHECK(kvmxx::to_integer(md.dump_avail()[0].start) == 0);
    CHECK(kvmxx::to_integer(md.dump_avail()[0].end) == b.file_layout().bitmap_size * 8 * P);  // §2.2
  }
}

TEST_CASE("v1 and v2 ignore the dumpavailsize field that only v3 defines", "[backend][minidump]") {
  for (std::uint32_t v : {1u, 2u}) {
    CAPTURE(v);
    builder b = small_dump(v);
    b.override_dumpavailsize(0x1000);
    const auto bytes = b.build();
    const minidump md = open_bytes(bytes);
    CHECK(md.header().dumpavailsize == 0);
    CHECK(md.header().bitmap_off == b.file_layout().bitmap_off);
    CHECK(md.header().sparse_off == b.file_layout().sparse_off);
    for (u64 pa : b.dumped_pages()) CHECK(md.file_offset(physaddr{pa}) == b.file_offset(pa));
  }
}

TEST_CASE("dumped_page_count equals the number of pages the writer dumped", "[backend][minidump]") {
  for (std::uint32_t v : {1u, 2u, 3u}) {
    CAPTURE(v);
    const builder b = small_dump(v);
    const auto bytes = b.build();
    CHECK(open_bytes(bytes).dumped_page_count() == b.dumped_pages().size());
  }
}

// ---- physical reads -------------------------------------------------------------------

TEST_CASE("every dumped page of a moderate dump reads back as the writer wrote it", "[backend][minidump]") {
  for (std::uint32_t v : {1u, 2u, 3u}) {
    CAPTURE(v);
    const builder b = builder::realistic(v, 200 + v, 16);
    const auto bytes = b.build();
    const minidump md = open_bytes(bytes);
    std::vector<std::byte> buf(P);
    std::size_t bad = 0, checked = 0;
    for (u64 pa : b.dumped_pages()) {
      const auto got = md.read_physical(physaddr{pa}, buf);
      const auto expected = b.read_phys(pa, P);
      ++checked;
      if (!expected || !got.has_value() || got.value() != P || !std::equal(buf.begin(), buf.end(), expected->begin())) {
        if (bad++ == 0) UNSCOPED_INFO("first mismatch at pa " << hex(pa) << ": " << outcome(got));
      }
    }
    CHECK(checked == b.dumped_pages().size());
    CHECK(bad == 0);
  }
}

TEST_CASE("file_offset equals the writer's for dumped pages and is empty for the others", "[backend][minidump]") {
  for (std::uint32_t v : {1u, 2u, 3u}) {
    CAPTURE(v);
    const builder b = builder::realistic(v, 300 + v, 16);
    const auto bytes = b.build();
    const minidump md = open_bytes(bytes);
    std::size_t bad = 0, dumped = 0;
    for (u64 pa : pages_to_probe((16ull << 20) + 0x100000)) {
      const auto got = md.file_offset(physaddr{pa});
      const auto expected = b.file_offset(pa);
      if (expected) ++dumped;
      if (got != expected && bad++ == 0) UNSCOPED_INFO("first mismatch at pa " << hex(pa));
      // Offsets inside the page are not part of file_offset's answer: it names the page.
      if (expected && md.file_offset(physaddr{pa + 0x7ff}) != expected && bad++ == 0)
        UNSCOPED_INFO("mid-page mismatch at pa " << hex(pa + 0x7ff));
    }
    CHECK(dumped == b.dumped_pages().size());
    CHECK(bad == 0);
  }
}

TEST_CASE("random physical reads crossing pages return the oracle's bytes up to the first missing page",
          "[backend][minidump]") {
  const builder b = builder::realistic(3, 400, 16);
  const auto bytes = b.build();
  const minidump md = open_bytes(bytes);
  std::mt19937_64 rng(0x5eed);
  std::size_t bad = 0, short_reads = 0, failures = 0, full = 0;
  for (int i = 0; i < 3000; ++i) {
    const u64 pa = rng() % ((16ull << 20) + 0x40000);
    const std::size_t len = 1 + rng() % (3 * P);
    std::vector<std::byte> buf(len);
    const auto got = md.read_physical(physaddr{pa}, buf);
    const auto expected = readable_phys_prefix(b, pa, len);
    if (expected.empty()) ++failures;
    else if (expected.size() < len) ++short_reads;
    else ++full;
    if (const auto why = compare_read(got, buf, expected); !why.empty() && bad++ == 0)
      UNSCOPED_INFO("pa " << hex(pa) << " len " << len << ": " << why);
  }
  CHECK(bad == 0);
  // The sample exercised all three outcomes.
  CHECK(failures > 0);
  CHECK(short_reads > 0);
  CHECK(full > 0);
}

TEST_CASE("an address in a hole between dump_avail ranges is not dumped instead of aliasing a page below it",
          "[backend][minidump]") {
  // §6.7: libkvm's _kvm_pa_bit_id gives pa 0xa0000 bit 0xa0 - 0x100 + 158 = 62, the bit of
  // pa 0x3f000, which small_dump() dumps. kvmxx must say "not dumped" instead.
  const builder b = small_dump(3);
  REQUIRE(b.file_offset(0x3f000).has_value());
  const auto bytes = b.build();
  const minidump md = open_bytes(bytes);
  for (u64 pa : {0x9f000ull, 0xa0000ull, 0xa0123ull, 0xff000ull}) {
    CAPTURE(hex(pa));
    CHECK_FALSE(md.file_offset(physaddr{pa}).has_value());
    CHECK(md.page_data(physaddr{pa}) == nullptr);
    std::array<std::byte, 16> buf{};
    const auto got = md.read_physical(physaddr{pa}, buf);
    CHECK(outcome(got) == code_text(errc::page_not_dumped));
    CHECK_THAT(message_of(got), Contains(hex(pa)) && Contains(mem_name));
  }
  // Through the direct map as well (what the alias bug breaks in practice).
  const handle km = adopt_bytes(bytes);
  std::array<std::byte, 8> buf{};
  const auto got = km.read(kvmxx::kvaddr{b.dmap_base() + 0xa0000}, buf);
  CHECK(outcome(got) == code_text(errc::page_not_dumped));
  CHECK_THAT(message_of(got), Contains("0xa0000"));
}

TEST_CASE("addresses below the first range and beyond the last range are not dumped", "[backend][minidump]") {
  const builder b = small_dump(3);
  const auto bytes = b.build();
  const minidump md = open_bytes(bytes);
  std::array<std::byte, 8> buf{};
  for (u64 pa : {0x0ull, 0xfffull, 0x400000ull, 0x401000ull, 0x100000000ull, ~0ull - 7}) {
    CAPTURE(hex(pa));
    CHECK_FALSE(md.file_offset(physaddr{pa}).has_value());
    const auto got = md.read_physical(physaddr{pa}, buf);
    CHECK(outcome(got) == code_text(errc::page_not_dumped));
    CHECK_THAT(message_of(got), Contains(hex(pa)));
  }
}

TEST_CASE("a dump_avail range with an unaligned end covers its partial last page", "[backend][minidump]") {
  // Pages floor(start/P) .. ceil(end/P) - 1 belong to a range (§2.2): [0x1000, 0x9fc00) has
  // 159 pages, so the second range starts at bit 159.
  builder b(3, 21);
  b.dump_avail({{0x1000, 0x9fc00}, {0x100000, 0x200000}});
  b.dump_page(0x9f000).dump_page(0x1000).dump_page(0x100000).dump_page(0x1ff000);
  REQUIRE(b.bit_index(0x100000) == 159u);
  const auto bytes = b.build();
  const minidump md = open_bytes(bytes);
  for (u64 pa : b.dumped_pages()) {
    CAPTURE(hex(pa));
    CHECK(md.file_offset(physaddr{pa}) == b.file_offset(pa));
    std::vector<std::byte> buf(P);
    const auto got = md.read_physical(physaddr{pa}, buf);
    CHECK(compare_read(got, buf, *b.read_phys(pa, P)).empty());
  }
  CHECK_FALSE(md.file_offset(physaddr{0xa0000}).has_value());
}

TEST_CASE("a read whose first page is missing fails with page_not_dumped naming the address in hex",
          "[backend][minidump]") {
  const builder b = small_dump(3);
  const auto bytes = b.build();
  const minidump md = open_bytes(bytes);
  REQUIRE_FALSE(b.file_offset(0x4000).has_value());
  REQUIRE(b.file_offset(0x3000).has_value());
  std::vector<std::byte> buf(2 * P);
  const auto got = md.read_physical(physaddr{0x4ff8}, buf);  // would continue into nothing
  CHECK(outcome(got) == code_text(errc::page_not_dumped));
  CHECK_THAT(message_of(got), Contains("0x4ff8") && Contains(mem_name));
  // A missing first page fails even when the next one is dumped.
  const auto before = md.read_physical(physaddr{0xfff}, buf);  // page 0 missing, page 0x1000 dumped
  REQUIRE(b.file_offset(0x1000).has_value());
  CHECK(outcome(before) == code_text(errc::page_not_dumped));
  CHECK_THAT(message_of(before), Contains("0xfff"));
}

TEST_CASE("a read whose later page is missing returns the bytes before it", "[backend][minidump]") {
  const builder b = small_dump(3);
  const auto bytes = b.build();
  const minidump md = open_bytes(bytes);
  // 0x1000..0x3fff are dumped, 0x4000 is not.
  REQUIRE(!b.file_offset(0x4000).has_value());
  std::vector<std::byte> buf(3 * P);
  const auto got = md.read_physical(physaddr{0x2100}, buf);
  REQUIRE(got.has_value());
  CHECK(got.value() == 0x4000 - 0x2100);
  const auto expected = *b.read_phys(0x2100, 0x4000 - 0x2100);
  CHECK(std::equal(expected.begin(), expected.end(), buf.begin()));
  CHECK_THAT(kvmxx::last_error_message(), Contains("0x4000"));  // why it stopped
}

TEST_CASE("reading 0 bytes succeeds with 0 even where nothing is dumped", "[backend][minidump]") {
  const builder b = small_dump(3);
  const auto bytes = b.build();
  const minidump md = open_bytes(bytes);
  for (u64 pa : {0x0ull, 0x1000ull, 0xa0000ull, ~0ull}) {
    const auto got = md.read_physical(physaddr{pa}, std::span<std::byte>{});
    REQUIRE(got.has_value());
    CHECK(got.value() == 0);
  }
  const handle km = adopt_bytes(bytes);
  const auto got = km.read(kvmxx::kvaddr{0x1234}, std::span<std::byte>{});  // unmapped VA
  REQUIRE(got.has_value());
  CHECK(got.value() == 0);
}

// ---- message buffer -------------------------------------------------------------------

TEST_CASE("message_buffer returns the msgbuf section byte for byte", "[backend][minidump]") {
  SECTION("a msgbuf that is not a page multiple") {
    const builder b = small_dump(3);
    const auto bytes = b.build();
    const minidump md = open_bytes(bytes);
    const auto mb = md.message_buffer();
    REQUIRE(mb.size() == b.msgbuf().size());
    CHECK(std::memcmp(mb.data(), b.msgbuf().data(), mb.size()) == 0);
  }
  SECTION("the 96 KiB boot log of a realistic v1 dump") {
    const builder b = builder::realistic(1, 8, 16);
    const auto bytes = b.build();
    const minidump md = open_bytes(bytes);
    const auto mb = md.message_buffer();
    REQUIRE(mb.size() == b.msgbuf().size());
    CHECK(std::memcmp(mb.data(), b.msgbuf().data(), mb.size()) == 0);
  }
  SECTION("no msgbuf at all") {
    builder b(2, 9);
    b.dump_page(0x5000);
    const auto bytes = b.build();
    const minidump md = open_bytes(bytes);
    CHECK(md.message_buffer().empty());
    CHECK(md.header().bitmap_off == P);  // the empty section takes no page
    CHECK(md.file_offset(physaddr{0x5000}) == b.file_offset(0x5000));
  }
}

// ---- walking the dumped pages ---------------------------------------------------------

TEST_CASE("dumped_page_after visits exactly the dumped pages in ascending order", "[backend][minidump]") {
  for (std::uint32_t v : {1u, 2u, 3u}) {
    CAPTURE(v);
    const builder b = builder::realistic(v, 500 + v, 16);
    const auto bytes = b.build();
    const minidump md = open_bytes(bytes);
    std::vector<u64> seen;
    for (auto pa = md.dumped_page_after(physaddr{0}); pa; pa = md.dumped_page_after(*pa + P)) {
      seen.push_back(kvmxx::to_integer(*pa));
      if (seen.size() > b.dumped_pages().size()) break;  // never loop forever
    }
    CHECK(seen == b.dumped_pages());
  }
}

TEST_CASE("dumped_page_after from inside a hole or past the end", "[backend][minidump]") {
  const builder b = small_dump(3);
  const auto bytes = b.build();
  const minidump md = open_bytes(bytes);
  const auto d = b.dumped_pages();
  const auto first_at_or_after = [&](u64 pa) -> std::optional<u64> {
    const auto it = std::lower_bound(d.begin(), d.end(), pa);
    return it == d.end() ? std::nullopt : std::optional<u64>(*it);
  };
  for (u64 pa : {0x0ull, 0x4000ull, 0x9f000ull, 0xa0000ull, 0x100000ull, 0x102000ull, 0x3ff000ull, 0x400000ull,
                 0x10000000ull}) {
    CAPTURE(hex(pa));
    const auto got = md.dumped_page_after(physaddr{pa});
    const auto expected = first_at_or_after(pa);
    REQUIRE(got.has_value() == expected.has_value());
    if (got) CHECK(kvmxx::to_integer(*got) == *expected);
  }
}

// ---- the worked example of §2.13 ------------------------------------------------------

TEST_CASE("the worked layout example of spec 2.13 gives the offsets the spec states", "[backend][minidump]") {
  // Built by hand, byte by byte, from the spec (not with the fixture writer):
  // msgbufsize 0x18000, dumpavailsize 0x1000, bitmapsize 0x1000, pmapsize 0x2000,
  // dump_avail {[0x1000, 0x9f000), [0x100000, 0x8000000)}, bits {0, 158, 200} set.
  // Spec: header 0x0, msgbuf 0x1000, dump_avail 0x19000, bitmap 0x1a000, pmap 0x1b000,
  // sparse_off 0x1d000; pa 0x1000 -> bit 0 -> 0x1d000; pa 0x100000 -> bit 158 ->
  // 0x1d000 + 1*0x1000; pa 0x12a000 -> bit 200 -> 0x1d000 + 2*0x1000; VA kernbase +
  // 0x201234 -> PDE index 1 at file offset 0x1b008.
  const u64 kernbase = 0xfffffe0000000000, dmapbase = 0xfffff80000000000, dmapend = 0xfffffc0000000000;
  std::vector<std::byte> f(0x1d000 + 3 * 0x1000);
  std::memcpy(f.data(), "minidump FreeBSD/amd64", 23);  // with its NUL
  put_le(f, 24, 3, 4);
  put_le(f, 28, 0x18000, 4);
  put_le(f, 32, 0x1000, 4);
  put_le(f, 36, 0x2000, 4);
  put_le(f, 40, kernbase, 8);
  put_le(f, 48, dmapbase, 8);
  put_le(f, 56, dmapend, 8);
  put_le(f, 64, 0x1000, 4);
  put_le(f, 0x19000, 0x1000, 8);
  put_le(f, 0x19008, 0x9f000, 8);
  put_le(f, 0x19010, 0x100000, 8);
  put_le(f, 0x19018, 0x8000000, 8);
  f[0x1a000 + 0] |= std::byte{1 << 0};           // bit 0
  f[0x1a000 + 158 / 8] |= std::byte{1 << (158 % 8)};  // bit 158
  f[0x1a000 + 200 / 8] |= std::byte{1 << (200 % 8)};  // bit 200
  // PDE 1: a 2 MiB page at physical 0 (PG_V | PG_PS), so kernbase + 0x201234 -> pa 0x1234.
  put_le(f, 0x1b008, 0x0 | 0x80 | 0x1, 8);
  for (u64 k = 0; k < 3; ++k) std::fill_n(f.begin() + static_cast<std::ptrdiff_t>(0x1d000 + k * 0x1000), 0x1000,
                                          static_cast<std::byte>(0xa0 + k));
  put_le(f, 0x1d234, 0x0123456789abcdef, 8);

  const minidump md = open_bytes(f);
  const auto& h = md.header();
  CHECK(h.msgbuf_off == 0x1000);
  CHECK(h.dump_avail_off == 0x19000);
  CHECK(h.bitmap_off == 0x1a000);
  CHECK(h.pmap_off == 0x1b000);
  CHECK(h.sparse_off == 0x1d000);
  CHECK(md.dumped_page_count() == 3);
  CHECK(md.file_offset(physaddr{0x1000}) == u64{0x1d000});
  CHECK_FALSE(md.file_offset(physaddr{0x9e000}).has_value());  // bit 157: clear
  CHECK(md.file_offset(physaddr{0x100000}) == u64{0x1d000 + 1 * 0x1000});
  CHECK(md.file_offset(physaddr{0x12a000}) == u64{0x1d000 + 2 * 0x1000});
  CHECK_FALSE(md.file_offset(physaddr{0x0}).has_value());  // below the first range
  CHECK(md.pmap_entry64(1) == u64{0x81});
  CHECK_FALSE(md.pmap_entry64(0x2000 / 8).has_value());

  const handle km = handle::adopt(open_bytes(f), {}).value();
  const auto t = km.translate(kvmxx::kvaddr{kernbase + 0x201234});
  REQUIRE(t.has_value());
  CHECK(kvmxx::to_integer(t.value().pa) == 0x1234);
  const auto v = km.read_as<std::uint64_t>(kvmxx::kvaddr{kernbase + 0x201234});
  REQUIRE(v.has_value());
  CHECK(v.value() == 0x0123456789abcdef);
  std::array<std::byte, 1> one{};
  REQUIRE(km.read_physical(physaddr{0x12a000}, one).has_value());
  CHECK(one[0] == std::byte{0xa2});
}

// ---- open errors: the file itself -----------------------------------------------------

TEST_CASE("opening an empty file fails with invalid_argument naming the file", "[backend][minidump]") {
  kvmxx_test::temp_dir dir;
  const auto path = dir.path("empty.vmcore");
  kvmxx_test::write_file(path, {});
  const auto r = minidump::open(path.c_str());
  CHECK(outcome(r) == code_text(errc::invalid_argument));
  CHECK_THAT(message_of(r), Contains(path));
  const auto km = handle::open_dump(nullptr, path.c_str());
  CHECK(outcome(km) == code_text(errc::invalid_argument));
}

TEST_CASE("opening a directory fails with invalid_argument naming it", "[backend][minidump]") {
  kvmxx_test::temp_dir dir;
  const auto r = minidump::open(dir.root().c_str());
  CHECK(outcome(r) == code_text(errc::invalid_argument));
  CHECK_THAT(message_of(r), Contains(dir.root()));
}

TEST_CASE("opening a missing file fails with ENOENT naming the file", "[backend][minidump]") {
  kvmxx_test::temp_dir dir;
  const auto path = dir.path("no-such.vmcore");
  const auto r = minidump::open(path.c_str());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == std::errc::no_such_file_or_directory);
  CHECK(r.error().category() == std::system_category());
  CHECK_THAT(message_of(r), Contains(path));
  const auto km = handle::open_dump(nullptr, path.c_str());
  REQUIRE_FALSE(km.has_value());
  CHECK(km.error() == std::errc::no_such_file_or_directory);
}

namespace {
// One open attempt, flattened for a pipe: "category value message".
struct attempt {
  std::string category;
  int value = 0;
  std::string message;
};

attempt try_open(const std::string& path) {
  const auto r = minidump::open(path.c_str());
  if (r.has_value()) return {"success", 0, ""};
  return {r.error().category().name(), r.error().value(), kvmxx::describe(r.error())};
}

std::string encode(const attempt& a) { return a.category + "\n" + std::to_string(a.value) + "\n" + a.message + "\n"; }
}  // namespace

TEST_CASE("opening a file without read permission fails with EACCES naming the file", "[backend][minidump]") {
  kvmxx_test::temp_dir dir;
  REQUIRE(::chmod(dir.root().c_str(), 0755) == 0);
  const auto bytes = small_dump(3).build();
  const auto control = dir.path("readable.vmcore");
  const auto unreadable = dir.path("unreadable.vmcore");
  const auto locked_dir = dir.path("locked");
  const auto behind_lock = locked_dir + "/vmcore.0";
  kvmxx_test::write_file(control, bytes);
  kvmxx_test::write_file(unreadable, bytes);
  REQUIRE(::chmod(control.c_str(), 0644) == 0);
  REQUIRE(::chmod(unreadable.c_str(), 0) == 0);
  REQUIRE(::mkdir(locked_dir.c_str(), 0755) == 0);
  kvmxx_test::write_file(behind_lock, bytes);
  REQUIRE(::chmod(locked_dir.c_str(), 0) == 0);  // no search permission
  struct restore {
    std::string dir;
    ~restore() { ::chmod(dir.c_str(), 0755); }  // so temp_dir can remove it
  } restore_lock{locked_dir};

  std::vector<attempt> results;  // control, unreadable, behind_lock
  if (::geteuid() != 0) {
    results = {try_open(control), try_open(unreadable), try_open(behind_lock)};
  } else {
    // Root reads anything (CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH): try as "nobody" in a
    // child process, which drops those privileges for good.
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      std::string out;
      if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)
        out = std::string("SKIP\ncannot drop root privileges: ") + std::strerror(errno) + "\n";
      else
        out = "RAN\n" + encode(try_open(control)) + encode(try_open(unreadable)) + encode(try_open(behind_lock));
      const char* p = out.data();
      std::size_t left = out.size();
      while (left > 0) {
        const ssize_t n = ::write(fds[1], p, left);
        if (n <= 0) break;
        p += n;
        left -= static_cast<std::size_t>(n);
      }
      ::_exit(0);
    }
    ::close(fds[1]);
    std::string text;
    char chunk[4096];
    for (ssize_t n; (n = ::read(fds[0], chunk, sizeof chunk)) > 0;) text.append(chunk, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    std::vector<std::string> lines;
    for (std::size_t pos = 0; pos < text.size();) {
      const auto nl = text.find('\n', pos);
      lines.push_back(text.substr(pos, nl - pos));
      pos = nl == std::string::npos ? text.size() : nl + 1;
    }
    REQUIRE_FALSE(lines.empty());
    if (lines[0] == "SKIP") {
      WARN("SKIPPED: running as root and " << (lines.size() > 1 ? lines[1] : std::string("?"))
                                                        << "; no way to make a file unreadable");
      return;
    }
    REQUIRE(lines.size() == 10);
    for (std::size_t k = 0; k < 3; ++k)
      results.push_back({lines[1 + 3 * k], std::stoi(lines[2 + 3 * k]), lines[3 + 3 * k]});
  }
  REQUIRE(results.size() == 3);
  if (::geteuid() == 0 && results[0].category != "success") {
    WARN("SKIPPED: as nobody even the readable control file fails to open (" << results[0].message
                                                                                         << "); is $TMPDIR private?");
    return;
  }
  // The control proves the failures below come from the permission bits alone.
  CHECK(results[0].category == "success");
  CHECK(results[1].category == std::system_category().name());
  CHECK(results[1].value == EACCES);
  CHECK_THAT(results[1].message, Contains(unreadable));
  CHECK(results[2].category == std::system_category().name());
  CHECK(results[2].value == EACCES);
  CHECK_THAT(results[2].message, Contains(behind_lock));
}

// ---- open errors: magic and version ---------------------------------------------------

TEST_CASE("a file without the minidump magic is not_a_dump", "[backend][minidump]") {
  auto bytes = small_dump(3).build();
  std::memcpy(bytes.data(), "\x7f" "ELF", 4);
  const auto r = minidump::from_bytes(bytes, "elf.core");
  CHECK(outcome(r) == code_text(errc::not_a_dump));
  CHECK_THAT(message_of(r), Contains("elf.core"));
}

TEST_CASE("an unknown minidump magic is not_a_dump and the message quotes it", "[backend][minidump]") {
  builder b = small_dump(3);
  b.override_magic("minidump FreeBSD/vax");
  const auto bytes = b.build();
  const auto r = minidump::from_bytes(bytes, mem_name);
  CHECK(outcome(r) == code_text(errc::not_a_dump));
  CHECK_THAT(message_of(r), Contains(mem_name) && Contains("minidump FreeBSD/vax"));
}

TEST_CASE("another architecture's minidump is unsupported_format naming the architecture", "[backend][minidump]") {
  for (const char* magic : {"minidump FreeBSD/i386", "minidump FreeBSD/arm64", "minidump FreeBSD/riscv"}) {
    CAPTURE(magic);
    builder b = small_dump(3);
    b.override_magic(magic);
    const auto bytes = b.build();
    const auto r = minidump::from_bytes(bytes, mem_name);
    CHECK(outcome(r) == code_text(errc::unsupported_format));
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains(magic));
  }
}

TEST_CASE("the amd64 magic without its NUL inside the 24-byte field is not_a_dump", "[backend][minidump]") {
  // strncmp over sizeof(hdr.magic) needs the terminating NUL inside the field (§2.1).
  for (const char* magic : {"minidump FreeBSD/amd64XY", "minidump FreeBSD/amd64 ", "minidump FreeBSD/amd64\x01"}) {
    CAPTURE(magic);
    builder b = small_dump(3);
    b.override_magic(magic);
    const auto bytes = b.build();
    const auto r = minidump::from_bytes(bytes, mem_name);
    CHECK(outcome(r) == code_text(errc::not_a_dump));
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains(magic));  // quotes the whole field
  }
}

TEST_CASE("versions outside 1..3 are unsupported_version naming the version", "[backend][minidump]") {
  for (std::uint32_t version : {0u, 4u, 0x12345u}) {
    CAPTURE(version);
    builder b = small_dump(3);
    b.override_version(version);
    const auto bytes = b.build();
    const auto r = minidump::from_bytes(bytes, mem_name);
    CHECK(outcome(r) == code_text(errc::unsupported_version));
    const auto msg = message_of(r);
    CHECK_THAT(msg, Contains(mem_name));
    CHECK((msg.find(std::to_string(version)) != std::string::npos || msg.find(hex(version)) != std::string::npos));
  }
}

// ---- open errors: sections ------------------------------------------------------------

TEST_CASE("a section size running past the end of the file is truncated naming the section", "[backend][minidump]") {
  const builder base = small_dump(3);
  const auto lay = base.file_layout();
  const u64 big = lay.file_size;  // any section this long cannot fit after its offset
  struct probe_case {
    const char* name;
    const char* section;
    void (*apply)(builder&, std::uint32_t);
  };
  const probe_case cases[] = {
      {"msgbufsize", "msgbuf", [](builder& b, std::uint32_t v) { b.override_msgbufsize(v); }},
      {"dumpavailsize", "dump_avail", [](builder& b, std::uint32_t v) { b.override_dumpavailsize(v); }},
      {"bitmapsize", "bitmap", [](builder& b, std::uint32_t v) { b.override_bitmapsize(v); }},
      {"pmapsize", "page map", [](builder& b, std::uint32_t v) { b.override_pmapsize(v); }},
  };
  for (const auto& c : cases) {
    for (u64 size : {big, u64{0xffffffff}}) {
      CAPTURE(c.name, hex(size));
      builder b = base;
      c.apply(b, static_cast<std::uint32_t>(size));
      const auto bytes = b.build();
      const auto r = minidump::from_bytes(bytes, mem_name);
      CHECK(outcome(r) == code_text(errc::truncated));
      CHECK_THAT(message_of(r), Contains(mem_name) && Contains(c.section) && Contains(hex(size)));
    }
  }
}

TEST_CASE("a bitmapsize of 0 is corrupt", "[backend][minidump]") {
  builder b = small_dump(3);
  b.override_bitmapsize(0);
  const auto bytes = b.build();
  const auto r = minidump::from_bytes(bytes, mem_name);
  CHECK(outcome(r) == code_text(errc::corrupt));
  CHECK_THAT(message_of(r), Contains(mem_name) && Contains("bitmap"));
}

TEST_CASE("a direct map that ends before it starts is corrupt", "[backend][minidump]") {
  auto bytes = small_dump(3).build();
  put_le(bytes, 48, 0xfffffc0000000000, 8);  // dmapbase
  put_le(bytes, 56, 0xfffff80000000000, 8);  // dmapend
  const auto r = minidump::from_bytes(bytes, mem_name);
  CHECK(outcome(r) == code_text(errc::corrupt));
  CHECK_THAT(message_of(r), Contains(mem_name) && Contains("0xfffff80000000000") && Contains("0xfffffc0000000000"));
}

TEST_CASE("dump_avail entries out of order or ending before they start are corrupt", "[backend][minidump]") {
  const builder b = small_dump(3);
  const u64 da = b.file_layout().dump_avail_off;
  SECTION("the second range starts before the first ends") {
    auto bytes = b.build();
    put_le(bytes, da + 16, 0x9e000, 8);  // [0x9e000, 0x400000) overlaps [0x1000, 0x9f000)
    const auto r = minidump::from_bytes(bytes, mem_name);
    CHECK(outcome(r) == code_text(errc::corrupt));
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains(hex(da + 16)) && Contains("0x9e000"));
  }
  SECTION("the ranges are listed in descending order") {
    auto bytes = b.build();
    put_le(bytes, da + 0, 0x100000, 8);
    put_le(bytes, da + 8, 0x400000, 8);
    put_le(bytes, da + 16, 0x1000, 8);
    put_le(bytes, da + 24, 0x9f000, 8);
    const auto r = minidump::from_bytes(bytes, mem_name);
    CHECK(outcome(r) == code_text(errc::corrupt));
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains(hex(da + 16)));
  }
  SECTION("a range ends before it starts") {
    auto bytes = b.build();
    put_le(bytes, da + 0, 0xa0000, 8);  // [0xa0000, 0x9f000)
    const auto r = minidump::from_bytes(bytes, mem_name);
    CHECK(outcome(r) == code_text(errc::corrupt));
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains(hex(da)) && Contains("0xa0000"));
  }
  SECTION("the list is empty") {
    auto bytes = b.build();
    for (u64 k = 0; k < 32; ++k) put_le(bytes, da + 8 * k, 0, 8);
    const auto r = minidump::from_bytes(bytes, mem_name);
    CHECK(outcome(r) == code_text(errc::corrupt));
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains("dump_avail"));
  }
}

TEST_CASE("a file cut inside the header is truncated", "[backend][minidump]") {
  const auto full = small_dump(3).build();
  for (std::size_t len : {24u, 40u, 64u, 71u}) {
    CAPTURE(len);
    const std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    const auto r = minidump::from_bytes(cut, mem_name);
    CHECK(outcome(r) == code_text(errc::truncated));
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains(hex(len)));
  }
  // Through a real file as well (open() maps it).
  kvmxx_test::temp_dir dir;
  const auto path = dir.path("cut.vmcore");
  kvmxx_test::write_file(path, std::span<const std::byte>(full.data(), 50));
  const auto r = minidump::open(path.c_str());
  CHECK(outcome(r) == code_text(errc::truncated));
  CHECK_THAT(message_of(r), Contains(path));
}

TEST_CASE("a file cut right after the complete amd64 magic is truncated, not an unknown magic",
          "[backend][minidump]") {
  // The 22 magic characters (and the NUL) are all there; the header is not. Known bug:
  // parse() tests magic_len < 24 together with the magic text and reports
  // not_a_dump "unknown minidump magic \"minidump FreeBSD/amd64\"".
  const auto full = small_dump(3).build();
  for (std::size_t len : {22u, 23u}) {
    CAPTURE(len);
    const std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    const auto r = minidump::from_bytes(cut, mem_name);
    CHECK(outcome(r) == code_text(errc::truncated));
  }
}

TEST_CASE("a file cut inside the sections before the sparse pages is truncated", "[backend][minidump]") {
  const builder b = small_dump(3);
  const auto full = b.build();
  const auto lay = b.file_layout();
  for (u64 len : {lay.msgbuf_off + 10, lay.dump_avail_off + 8, lay.bitmap_off + 100, lay.pmap_off + 8,
                  lay.sparse_off - 1}) {
    CAPTURE(hex(len));
    const std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    const auto r = minidump::from_bytes(cut, mem_name);
    CHECK(outcome(r) == code_text(errc::truncated));
    CHECK_THAT(message_of(r), Contains(mem_name) && Contains(hex(len)));
  }
}

// ---- truncated sparse area (§6.12) ----------------------------------------------------

TEST_CASE("a file cut among the sparse pages opens, and pages past the cut fail with truncated",
          "[backend][minidump]") {
  const builder b = small_dump(3);
  const auto full = b.build();
  const auto lay = b.file_layout();
  const auto dumped = b.dumped_pages();
  REQUIRE(dumped.size() > 6);
  const u64 cut_page = 2;  // sparse page 2 is cut in its middle
  REQUIRE(dumped[cut_page] == dumped[cut_page - 1] + P);  // physically adjacent to the page before
  const u64 len = lay.sparse_off + cut_page * P + 100;
  kvmxx_test::temp_dir dir;
  const auto path = dir.path("vmcore.cut");
  kvmxx_test::write_file(path, std::span<const std::byte>(full.data(), len));

  auto opened = minidump::open(path.c_str());
  INFO(message_of(opened));
  REQUIRE(opened.has_value());
  const minidump& md = opened.value();
  CHECK(md.truncated());
  CHECK(md.dumped_page_count() == dumped.size());  // the bitmap still says what was dumped
  std::vector<std::byte> buf(P);
  for (std::size_t k = 0; k < dumped.size(); ++k) {
    const u64 pa = dumped[k];
    CAPTURE(k, hex(pa));
    CHECK(md.file_offset(physaddr{pa}) == b.file_offset(pa));  // the layout is unchanged
    const auto got = md.read_physical(physaddr{pa}, buf);
    if (k < cut_page) {
      CHECK(compare_read(got, buf, *b.read_phys(pa, P)).empty());
      CHECK(md.page_data(physaddr{pa}) != nullptr);
    } else {
      CHECK(outcome(got) == code_text(errc::truncated));
      CHECK_THAT(message_of(got), Contains(path) && Contains(hex(pa)));
      CHECK(md.page_data(physaddr{pa}) == nullptr);
    }
  }
  // A read from the last whole page into the cut one stops at the cut (a short count).
  std::vector<std::byte> two(2 * P);
  const auto got = md.read_physical(physaddr{dumped[cut_page - 1] + 0x800}, two);
  REQUIRE(got.has_value());
  CHECK(got.value() == 0x800);
  CHECK_THAT(kvmxx::last_error_message(), Contains(hex(dumped[cut_page])));
}

TEST_CASE("a dump whose file ends exactly after its last page is not truncated, and padding is accepted",
          "[backend][minidump]") {
  const builder b = small_dump(3);
  auto bytes = b.build();
  CHECK_FALSE(open_bytes(bytes).truncated());
  bytes.resize(bytes.size() + 3 * P);  // the kernel may pad the dump
  const minidump md = open_bytes(bytes);
  CHECK_FALSE(md.truncated());
  for (u64 pa : b.dumped_pages()) CHECK(md.file_offset(physaddr{pa}) == b.file_offset(pa));
}

// ---- robustness -----------------------------------------------------------------------

TEST_CASE("every prefix of a small dump either fails to open or reads correctly or fails cleanly",
          "[backend][minidump]") {
  for (std::uint32_t v : {1u, 3u}) {
    CAPTURE(v);
    const builder b = small_dump(v, 31);
    const auto full = b.build();
    const auto lay = b.file_layout();
    const auto dumped = b.dumped_pages();
    const auto maps = b.kernel_mappings();
    std::vector<u64> lengths;
    for (u64 n = 0; n <= 100; ++n) lengths.push_back(n);
    for (u64 n = 100; n < full.size(); n += 509) lengths.push_back(n);
    for (u64 off = P; off <= full.size(); off += P)
      for (u64 d : {off - 1, off, off + 1})
        if (d <= full.size()) lengths.push_back(d);
    std::size_t opened = 0, bad = 0;
    for (u64 len : lengths) {
      // A buffer of exactly len bytes, so that a sanitizer sees any read past it.
      const std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
      auto r = minidump::from_bytes(cut, mem_name);
      const auto fail_once = [&](const std::string& why) {
        if (bad++ == 0) UNSCOPED_INFO("prefix " << len << ": " << why);
      };
      if (len < lay.sparse_off) {
        if (r.has_value()) fail_once("opened although a section is cut");
        else if (len >= 24 && r.error() != errc::truncated) fail_once("expected truncated, got " + code_text(r.error()));
        else if (r.error().category() != kvmxx::error_category()) fail_once("foreign error " + code_text(r.error()));
        continue;
      }
      if (!r.has_value()) {
        fail_once("failed to open: " + code_text(r.error()));
        continue;
      }
      ++opened;
      if (r.value().truncated() != (len < full.size())) fail_once("truncated() is wrong");
      const handle km = handle::adopt(std::move(r).value(), {}).value();
      std::vector<std::byte> buf(P);
      for (u64 pa : dumped) {
        const auto got = km.read_physical(physaddr{pa}, buf);
        const bool whole = *b.file_offset(pa) + P <= len;
        if (whole) {
          if (const auto why = compare_read(got, buf, *b.read_phys(pa, P)); !why.empty()) fail_once(hex(pa) + ": " + why);
        } else if (got.has_value() || got.error() != errc::truncated) {
          fail_once(hex(pa) + ": expected truncated, got " + outcome(got));
        }
      }
      for (const auto& m : maps) {
        const auto t = km.translate(kvmxx::kvaddr{m.va + 8});
        if (t.has_value()) {
          if (kvmxx::to_integer(t.value().pa) != *b.translate(m.va + 8)) fail_once(hex(m.va) + ": wrong translation");
        } else if (v == 1 || t.error() != errc::page_not_dumped) {
          fail_once(hex(m.va) + ": translate " + outcome(t));
        }
        std::vector<std::byte> small(16);
        const auto got = km.read(kvmxx::kvaddr{m.va + 8}, small);
        if (got.has_value()) {
          if (got.value() != 16 || !std::equal(small.begin(), small.end(), b.read_virt(m.va + 8, 16)->begin()))
            fail_once(hex(m.va) + ": wrong bytes");
        } else if (got.error() != errc::truncated && got.error() != errc::page_not_dumped) {
          fail_once(hex(m.va) + ": read " + outcome(got));
        }
      }
    }
    CHECK(opened > 0);
    CHECK(bad == 0);
  }
}

TEST_CASE("random byte flips in the metadata never crash, hang or read out of bounds", "[backend][minidump]") {
  const builder b = small_dump(3, 41);
  const auto pristine = b.build();
  const auto lay = b.file_layout();
  const auto dumped = b.dumped_pages();
  const auto maps = b.kernel_mappings();
  struct region {
    u64 off, size, hot;  // hot: the prefix where the meaningful bytes are
  };
  const region regions[] = {
      {0, 72, 72},
      {lay.dump_avail_off, lay.dump_avail_size, 48},
      {lay.bitmap_off, lay.bitmap_size, 160},
      {lay.pmap_off, lay.pmap_size, 64},
  };
  std::mt19937_64 rng(0xf11b);
  std::size_t bad = 0, opened = 0, pmap_only_trials = 0;
  std::vector<std::byte> bytes;
  for (int trial = 0; trial < 1500; ++trial) {
    bytes = pristine;
    const int flips = 1 + static_cast<int>(rng() % 3);
    bool pmap_only = true;
    for (int i = 0; i < flips; ++i) {
      const std::size_t which = rng() % 4;
      const region& g = regions[which];
      const u64 off = g.off + (rng() % 2 ? rng() % g.hot : rng() % g.size);
      bytes[off] ^= static_cast<std::byte>(1 + rng() % 255);
      pmap_only = pmap_only && which == 3;
    }
    const auto fail_once = [&](const std::string& why) {
      if (bad++ == 0) UNSCOPED_INFO("trial " << trial << ": " << why);
    };
    auto r = minidump::from_bytes(bytes, mem_name);
    if (!r.has_value()) {
      if (r.error().category() != kvmxx::error_category()) fail_once("foreign error " + code_text(r.error()));
      if (kvmxx::describe(r.error()).find(mem_name) == std::string::npos) fail_once("message does not name the file");
      if (pmap_only) fail_once("a page-map flip made open fail: " + code_text(r.error()));
      continue;
    }
    ++opened;
    const handle km = handle::adopt(std::move(r).value(), {}).value();
    const auto& md = km.source();
    if (md.message_buffer().size() != md.header().msgbufsize) fail_once("message_buffer size");
    std::vector<std::byte> buf(P + 16);
    for (u64 pa : dumped) {
      const auto got = km.read_physical(physaddr{pa + 8}, buf);
      if (got.has_value() && got.value() > buf.size()) fail_once("read more than asked");
      if (pmap_only) {
        if (const auto why = compare_read(got, buf, readable_phys_prefix(b, pa + 8, buf.size())); !why.empty())
          fail_once(hex(pa) + " after a page-map flip: " + why);
      }
    }
    for (const auto& m : maps) {
      const auto t = km.translate(kvmxx::kvaddr{m.va});
      if (t.has_value() && t.value().contiguous == 0) fail_once("contiguous 0");
      const auto got = km.read(kvmxx::kvaddr{m.va + 0xff0}, buf);
      if (got.has_value() && got.value() > buf.size()) fail_once("read more than asked");
    }
    std::size_t entries = 0;
    const auto walked = km.walk_pages([&](const kvmxx::page_info&) { return ++entries < 2'000'000; });
    if (!walked.has_value()) fail_once("walk_pages failed: " + code_text(walked.error()));
    if (pmap_only) ++pmap_only_trials;
  }
  CHECK(opened > 0);
  CHECK(pmap_only_trials > 0);
  CHECK(bad == 0);
}

// ---- files and threads ----------------------------------------------------------------

TEST_CASE("a dump opened from a file through open_dump reads like the bytes it holds", "[backend][minidump]") {
  const builder b = builder::realistic(2, 600, 16);
  kvmxx_test::temp_dir dir;
  const auto path = dir.path("vmcore.0");
  b.build_to_file(path);
  auto km = handle::open_dump(nullptr, path.c_str());
  INFO(message_of(km));
  REQUIRE(km.has_value());
  const auto& md = km.value().source();
  CHECK(std::string(md.path()) == path);
  CHECK(md.info().file_size == b.file_layout().file_size);
  CHECK(md.header().sparse_off == b.file_layout().sparse_off);
  std::vector<std::byte> buf(P);
  std::size_t bad = 0;
  for (u64 pa : b.dumped_pages())
    if (!compare_read(km.value().read_physical(physaddr{pa}, buf), buf, *b.read_phys(pa, P)).empty()) ++bad;
  CHECK(bad == 0);
  const auto missing = km.value().read_physical(physaddr{0}, buf);
  REQUIRE_FALSE(b.file_offset(0).has_value());
  CHECK(outcome(missing) == code_text(errc::page_not_dumped));
  CHECK_THAT(message_of(missing), Contains(path));
  CHECK(km.value().close().has_value());
}

TEST_CASE("four threads reading random addresses through one handle all get the oracle's bytes",
          "[backend][minidump]") {
  const builder b = builder::realistic(3, 700, 16);
  const auto bytes = b.build();
  const handle km = adopt_bytes(bytes);
  const auto maps = b.kernel_mappings();
  struct job {
    bool virt;
    u64 addr;
    std::size_t len;
    std::vector<std::byte> expected;
  };
  // The oracle is not thread-safe: compute every expectation first.
  std::mt19937_64 rng(0x7ead);
  std::vector<std::vector<job>> jobs(4);
  for (auto& list : jobs) {
    for (int i = 0; i < 400; ++i) {
      job j;
      j.len = 1 + rng() % (2 * P);
      switch (rng() % 3) {
        case 0: {  // kernel map
          const auto& m = maps[rng() % maps.size()];
          j.virt = true;
          j.addr = m.va + rng() % m.size;
          j.expected = readable_virt_prefix(b, j.addr, j.len);
          break;
        }
        case 1:  // direct map
          j.virt = true;
          j.addr = b.dmap_base() + rng() % (17ull << 20);
          j.expected = readable_virt_prefix(b, j.addr, j.len);
          break;
        default:  // physical
          j.virt = false;
          j.addr = rng() % (17ull << 20);
          j.expected = readable_phys_prefix(b, j.addr, j.len);
          break;
      }
      list.push_back(std::move(j));
    }
  }
  std::atomic<int> mismatches{0}, reads{0};
  std::vector<std::thread> threads;
  for (const auto& list : jobs) {
    threads.emplace_back([&km, &list, &mismatches, &reads] {
      std::vector<std::byte> buf;
      for (int round = 0; round < 3; ++round) {
        for (const auto& j : list) {
          buf.assign(j.len, std::byte{0});
          const auto got = j.virt ? km.read(kvmxx::kvaddr{j.addr}, buf) : km.read_physical(physaddr{j.addr}, buf);
          if (!compare_read(got, buf, j.expected).empty()) ++mismatches;
          ++reads;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(reads.load() == 4 * 3 * 400);
  CHECK(mismatches.load() == 0);
}

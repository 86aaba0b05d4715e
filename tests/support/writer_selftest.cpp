// writer_selftest.cpp — standalone self-check of the fixture writers (no test framework).
//
//   g++ -std=c++20 -Wall -Wextra -Werror -O1 -I/work/main/tests/support writer_selftest.cpp
//   ./a.out [output-dir]     # output-dir: also write the ELF fixtures there (for readelf)
//
// The minidump checks decode the produced bytes with a small reader written straight from
// the spec (§2.1, §2.2, §2.5) and compare every answer with the builder's oracle, which
// is computed from the builder's model. Agreement of the two is what makes the writer a
// trustworthy reference for kvmxx's own parsers. Exit status is the number of failures
// (capped), 0 on success.

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "amd64_minidump_writer.hpp"
#include "file_util.hpp"
#include "kernel_elf_writer.hpp"

namespace {

using kvmxx_test::amd64_minidump_builder;
using u64 = std::uint64_t;
constexpr u64 P = 4096;

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  }
}

std::string hex(u64 v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string opt_hex(const std::optional<u64>& v) { return v ? hex(*v) : std::string("none"); }

u64 load(const std::vector<std::byte>& f, u64 off, int width, bool big = false) {
  u64 v = 0;
  for (int i = 0; i < width; ++i) {
    const u64 b = std::to_integer<u64>(f.at(static_cast<std::size_t>(off + static_cast<u64>(i))));
    v |= b << (8 * (big ? width - 1 - i : i));
  }
  return v;
}

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> out;
  for (const char c : s) out.push_back(static_cast<std::byte>(static_cast<unsigned char>(c)));
  return out;
}

// ---------------------------------------------------------------------------------
// Independent minidump decoder (spec §2.1 / §2.2 / §2.5), kernel semantics for holes.
class mini_reader {
 public:
  explicit mini_reader(const std::vector<std::byte>& f) : f_(f) {
    const std::string magic(reinterpret_cast<const char*>(f.data()), 24);
    magic_ok = magic == std::string("minidump FreeBSD/amd64") + std::string(2, '\0');
    version = static_cast<std::uint32_t>(load(f, 24, 4));
    msgbufsize = load(f, 28, 4);
    bitmapsize = load(f, 32, 4);
    pmapsize = load(f, 36, 4);
    kernbase = load(f, 40, 8);
    dmapbase = load(f, 48, 8);
    dmapend = load(f, 56, 8);
    dumpavailsize = version == 3 ? load(f, 64, 4) : 0;
    const auto ru = [](u64 v) { return (v + P - 1) / P * P; };
    dump_avail_off = P + ru(msgbufsize);
    bitmap_off = dump_avail_off + ru(dumpavailsize);
    pmap_off = bitmap_off + ru(bitmapsize);
    sparse_off = pmap_off + ru(pmapsize);
    if (version == 3) {
      for (u64 i = 0; i < dumpavailsize / 16; ++i) {
        const u64 s = load(f, dump_avail_off + 16 * i, 8), e = load(f, dump_avail_off + 16 * i + 8, 8);
        if (e == 0) break;
        ranges.emplace_back(s, e);
      }
    } else {
      ranges.emplace_back(0, bitmapsize * 8 * P);
    }
    // Rank helper: set bits before each byte.
    u64 running = 0;
    for (u64 i = 0; i < bitmapsize; ++i) {
      prefix_.push_back(running);
      running += static_cast<u64>(std::popcount(std::to_integer<unsigned char>(f[bitmap_off + i])));
    }
    total_bits_set = running;
  }

  bool bit_set(u64 bit) const {
    return (std::to_integer<unsigned>(f_[bitmap_off + bit / 8]) >> (bit % 8)) & 1u;
  }

  std::optional<u64> pa_offset(u64 pa) const {
    u64 adj = 0, bit = ~u64{0};
    for (const auto& [s, e] : ranges) {
      const u64 first = s / P, last = (e + P - 1) / P;
      if (pa / P >= first && pa / P < last) {
        bit = pa / P - first + adj;
        break;
      }
      adj += last - first;
    }
    if (bit == ~u64{0} || bit >= bitmapsize * 8 || !bit_set(bit)) return std::nullopt;
    u64 rank = prefix_[bit / 8];
    for (u64 b = bit / 8 * 8; b < bit; ++b) rank += bit_set(b) ? 1 : 0;
    return sparse_off + rank * P + pa % P;
  }

  std::optional<u64> va_to_pa(u64 va) const {
    if (va >= kernbase) {
      if (version == 1) {
        const u64 i = (va - kernbase) >> 12;
        if (i >= pmapsize / 8) return std::nullopt;
        const u64 pte = load(f_, pmap_off + i * 8, 8);
        if (!(pte & 1)) return std::nullopt;
        return (pte & 0x000ffffffffff000ull) + (va & 0xfff);
      }
      const u64 i = (va - kernbase) >> 21;
      if (i >= pmapsize / 8) return std::nullopt;
      const u64 pde = load(f_, pmap_off + i * 8, 8);
      if (!(pde & 1)) return std::nullopt;
      if (pde & 0x80) return (pde & 0x000fffffffe00000ull) + (va & 0x1fffff);
      const std::optional<u64> pt = pa_offset(pde & 0x000ffffffffff000ull);
      if (!pt) return std::nullopt;
      const u64 pte = load(f_, *pt + ((va >> 12) & 511) * 8, 8);
      if (!(pte & 1)) return std::nullopt;
      return (pte & 0x000ffffffffff000ull) + (va & 0xfff);
    }
    if (va >= dmapbase && va < dmapend) return va - dmapbase;
    return std::nullopt;
  }

  std::optional<std::vector<std::byte>> read_va(u64 va, std::size_t len) const {
    std::vector<std::byte> out;
    for (std::size_t done = 0; done < len;) {
      const u64 cur = va + done;
      const std::size_t n = std::min<std::size_t>(len - done, P - cur % P);
      const auto pa = va_to_pa(cur);
      if (!pa) return std::nullopt;
      const auto off = pa_offset(*pa);
      if (!off) return std::nullopt;
      out.insert(out.end(), f_.begin() + static_cast<std::ptrdiff_t>(*off),
                 f_.begin() + static_cast<std::ptrdiff_t>(*off + n));
      done += n;
    }
    return out;
  }

  bool magic_ok = false;
  std::uint32_t version = 0;
  u64 msgbufsize = 0, bitmapsize = 0, pmapsize = 0, kernbase = 0, dmapbase = 0, dmapend = 0, dumpavailsize = 0;
  u64 dump_avail_off = 0, bitmap_off = 0, pmap_off = 0, sparse_off = 0, total_bits_set = 0;
  std::vector<std::pair<u64, u64>> ranges;

 private:
  const std::vector<std::byte>& f_;
  std::vector<u64> prefix_;
};

// Compares decoder and oracle on everything that can be enumerated cheaply.
void cross_check(const amd64_minidump_builder& b, const std::vector<std::byte>& f, const std::vector<u64>& probes,
                 const std::string& tag) {
  const mini_reader r(f);
  const auto l = b.file_layout();
  check(r.magic_ok, tag + ": magic");
  check(r.version == b.version(), tag + ": version field");
  check(r.msgbufsize == l.msgbuf_size && r.bitmapsize == l.bitmap_size && r.pmapsize == l.pmap_size &&
            r.dumpavailsize == l.dump_avail_size,
        tag + ": header sizes match layout");
  check(r.kernbase == b.kernbase() && r.dmapbase == b.dmap_base() && r.dmapend == b.dmap_end(), tag + ": header bases");
  check(r.dump_avail_off == l.dump_avail_off && r.bitmap_off == l.bitmap_off && r.pmap_off == l.pmap_off &&
            r.sparse_off == l.sparse_off,
        tag + ": section offsets");
  check(l.msgbuf_off == P && l.dump_avail_off % P == 0 && l.bitmap_off % P == 0 && l.pmap_off % P == 0 &&
            l.bitmap_size % P == 0 && l.pmap_size % P == 0 && l.dump_avail_size % P == 0,
        tag + ": page multiples");
  const auto dumped = b.dumped_pages();
  check(f.size() == l.sparse_off + dumped.size() * P && f.size() == l.file_size, tag + ": file ends after last page");
  check(r.total_bits_set == dumped.size(), tag + ": popcount == dumped pages");
  check(std::is_sorted(dumped.begin(), dumped.end()), tag + ": dumped pages ascending");
  if (b.version() == 3) check(r.ranges == b.bitmap_ranges(), tag + ": dump_avail section round-trips");
  const std::string& mb = b.msgbuf();
  check(std::equal(mb.begin(), mb.end(), f.begin() + P,
                   [](char c, std::byte x) { return static_cast<unsigned char>(c) == std::to_integer<unsigned>(x); }),
        tag + ": msgbuf bytes");

  // Every dumped page: same offset, same contents.
  for (std::size_t k = 0; k < dumped.size(); ++k) {
    const u64 pa = dumped[k];
    const auto off = r.pa_offset(pa);
    if (off != b.file_offset(pa) || off != l.sparse_off + k * P) {
      check(false, tag + ": offset of pa " + hex(pa) + " reader " + opt_hex(off) + " oracle " +
                       opt_hex(b.file_offset(pa)));
      continue;
    }
    const auto want = b.read_phys(pa, P);
    check(want && std::equal(want->begin(), want->end(), f.begin() + static_cast<std::ptrdiff_t>(*off)),
          tag + ": contents of pa " + hex(pa));
    check(b.file_offset(pa + 0x123) == *off + 0x123 && r.pa_offset(pa + 0x123) == *off + 0x123,
          tag + ": sub-page offset of pa " + hex(pa));
  }
  // A few pages next to dumped ones that are not dumped.
  for (const u64 pa : dumped)
    for (const u64 q : {pa - P, pa + P})
      if (!std::binary_search(dumped.begin(), dumped.end(), q))
        check(!r.pa_offset(q) && !b.file_offset(q) && !b.read_phys(q, 1), tag + ": absent pa " + hex(q));

  // Virtual addresses: translation and bytes.
  for (const u64 va : probes) {
    const auto want = b.translate(va), got = r.va_to_pa(va);
    check(want == got, tag + ": translate " + hex(va) + " oracle " + opt_hex(want) + " reader " + opt_hex(got));
    const std::size_t len = 3 * P / 2;  // crosses into the next page
    const auto wb = b.read_virt(va, len), rb = r.read_va(va, len);
    check(wb == rb, tag + ": read_virt " + hex(va));
  }
  // Walk ground truth agrees with the decoder; v2/v3 PDEs point at page_table_page().
  for (const auto& m : b.kernel_mappings()) {
    check(r.va_to_pa(m.va) == m.pa && r.va_to_pa(m.va + m.size - 1) == m.pa + m.size - 1,
          tag + ": kernel_mappings entry " + hex(m.va));
    const auto entry = b.pmap_entry_offset(m.va);
    if (!entry) {
      check(false, tag + ": no page-map entry for " + hex(m.va));
      continue;
    }
    const u64 e = load(f, *entry, 8);
    if (b.version() == 1 || m.size != P)
      check((e & 0x000ffffffffff000ull) == (m.pa & ~(m.size - 1)) && (e & 1), tag + ": leaf entry " + hex(m.va));
    else
      check(!(e & 0x80) && b.page_table_page(m.va) == (e & 0x000ffffffffff000ull), tag + ": PT pointer " + hex(m.va));
  }
}

// ---------------------------------------------------------------------------------
// §2.13 worked example.
void spec_example() {
  const std::string tag = "spec §2.13";
  amd64_minidump_builder b(3, 1);
  const u64 kb = b.kernbase();
  b.msgbuf(std::string(0x18000, 'm'))
      .dump_avail({{0x1000, 0x9f000}, {0x100000, 0x8000000}})
      .dump_mapped_pages(false)
      .pmap_span(2ull << 30)
      .map_2m(kb + 0x200000, 0x200000)
      .dump_page(0x1000)
      .dump_page(0x100000)
      .dump_page(0x12a000);
  const auto f = b.build();
  const auto l = b.file_layout();
  check(l.msgbuf_size == 0x18000 && l.dump_avail_size == 0x1000 && l.bitmap_size == 0x1000 && l.pmap_size == 0x2000,
        tag + ": sizes");
  check(l.msgbuf_off == 0x1000 && l.dump_avail_off == 0x19000 && l.bitmap_off == 0x1a000 && l.pmap_off == 0x1b000 &&
            l.sparse_off == 0x1d000,
        tag + ": offsets");
  check(b.bit_index(0x1000) == 0u && b.bit_index(0x9e000) == 157u && b.bit_index(0x100000) == 158u &&
            b.bit_index(0x12a000) == 200u && !b.bit_index(0xa0000),
        tag + ": bit indices");
  check(b.file_offset(0x100000) == 0x1d000u + 0x1000 && b.file_offset(0x12a000) == 0x1d000u + 0x2000,
        tag + ": sparse offsets");
  check(b.pmap_entry_offset(kb + 0x201234) == 0x1b008u, tag + ": PDE offset");
  check(load(f, 0x1b008, 8) == (0x200000 | 0x80 | 0x1 | 0x2 | 0x20 | 0x40 | 0x100 | (1ull << 63)), tag + ": PDE value");
  check(std::to_integer<unsigned>(f[0x1a000]) == 0x01 && std::to_integer<unsigned>(f[0x1a000 + 19]) == 0x40 &&
            std::to_integer<unsigned>(f[0x1a000 + 25]) == 0x01,
        tag + ": bitmap bytes");
  check(load(f, 0x19000, 8) == 0x1000 && load(f, 0x19008, 8) == 0x9f000 && load(f, 0x19010, 8) == 0x100000 &&
            load(f, 0x19018, 8) == 0x8000000 && load(f, 0x19020, 8) == 0 && load(f, 0x19028, 8) == 0,
        tag + ": dump_avail pairs");
  check(f.size() == 0x1d000 + 3 * 0x1000, tag + ": file size");
  check(load(f, 64, 4) == 0x1000, tag + ": dumpavailsize field");
  cross_check(b, f, {kb + 0x201234, kb, kb + 0x400000}, tag);
}

// A hand-made dump that exercises every builder feature for one version.
amd64_minidump_builder feature_dump(std::uint32_t v, u64 seed) {
  amd64_minidump_builder b(v, seed);
  const u64 kb = b.kernbase();
  b.dump_avail({{0x1000, 0x9f000}, {0x100000, 0x4000000}}).msgbuf("hello msgbuf\n");
  b.map_4k(kb, 0x300000)
      .map_4k(kb + 0x1000, 0x123000, false, true)
      .map_4k(kb + 0x5000, 0x2000)
      .stale_4k(kb + 0x2000, 0x5000)
      .map_4k(kb + 0x3000, 0x400000)
      .omit_page(0x400000)
      .map_2m(kb + 0x400000, 0x800000, false, true)
      .stale_2m(kb + 0xa00000, 0xc00000)
      .map_1g(kb + 0x40000000, 0x40000000)  // outside RAM: mapped, translatable, not dumped
      .write_virt(kb + 0xff0, "this string crosses a page boundary")
      .dump_page(0x7000)
      .write_phys(0x9e800, bytes_of(std::string(0x800, 'x')));  // up to the end of range 0
  if (v >= 2) {
    b.map_4k(kb + 0x600000, 0x600000).omit_page_table(kb + 0x600000).pmap_span(3ull << 30);
  }
  return b;
}

std::vector<u64> feature_probes(const amd64_minidump_builder& b) {
  const u64 kb = b.kernbase(), dm = b.dmap_base();
  std::vector<u64> p;
  for (const u64 off : {u64{0}, u64{0x123}, u64{0xfff}}) {
    for (const u64 base : {kb, kb + 0x1000, kb + 0x2000, kb + 0x3000, kb + 0x4000, kb + 0x5000, kb + 0x400000,
                           kb + 0x5ff000, kb + 0x600000, kb + 0xa00000, kb + 0x40000000, kb + 0x7fffe000,
                           kb + 0x3ff000})
      p.push_back(base + off);
    for (const u64 base : {dm, dm + 0x7000, dm + 0x9e000, dm + 0x9f000, dm + 0x300000, dm + 0x400000})
      p.push_back(base + off);
  }
  p.push_back(b.dmap_end() - 1);
  p.push_back(b.dmap_end());
  p.push_back(dm - 1);
  if (b.version() >= 2) {
    p.push_back(kb + (3ull << 30) - 1);  // covered by the page map, not mapped
    p.push_back(kb + (3ull << 30));      // beyond the page map
  }
  return p;
}

void version_matrix() {
  for (std::uint32_t v = 1; v <= 3; ++v) {
    const std::string tag = "v" + std::to_string(v) + " features";
    const auto b = feature_dump(v, 42);
    const auto f = b.build();
    cross_check(b, f, feature_probes(b), tag);
    const u64 kb = b.kernbase();

    // Explicit expectations, independent of the decoder.
    check(b.translate(kb + 0x1234) == 0x123234u, tag + ": 4K translate");
    check(b.translate(kb + 0x4c0123) == 0x8c0123u, tag + ": 2M translate");
    check(b.translate(kb + 0x40000000 + 0x12345678) == 0x52345678u, tag + ": 1G translate");
    check(!b.translate(kb + 0x2000) && !b.translate(kb + 0xa00000), tag + ": stale entries invalid");
    check(b.translate(kb + 0x3000) == 0x400000u && !b.read_virt(kb + 0x3000, 1), tag + ": omitted page");
    check(!b.read_virt(kb + 0x40000000, 1), tag + ": mapped outside RAM not dumped");
    check(b.translate(b.dmap_base() + 0x7010) == 0x7010u, tag + ": dmap translate");
    const auto s = b.read_virt(kb + 0xff0, 35);
    check(s && *s == bytes_of("this string crosses a page boundary"), tag + ": write_virt across pages");
    check(b.read_phys(0x9e800, 0x800) == std::optional(bytes_of(std::string(0x800, 'x'))), tag + ": write_phys");
    check(!b.read_phys(0x9f000, 1), tag + ": page beyond range 0 not dumped");
    check(load(f, 0, 8) == load(bytes_of("minidump"), 0, 8), tag + ": detection bytes");
    check(v == 3 || load(f, 64, 4) == 0, tag + ": dumpavailsize only in v3");
    if (v >= 2) {
      check(!b.translate(kb + 0x600000) && b.page_table_page(kb + 0x600000).has_value(), tag + ": omitted PT page");
      const auto pt = b.page_table_page(kb);
      check(pt && b.read_phys(*pt, 8) == std::optional(amd64_minidump_builder::le(0x300000 | 0x1 | 0x2 | 0x20 | 0x40 |
                                                                                    0x100 | (1ull << 63), 8)),
            tag + ": PT page holds the PTE");
      check(b.file_layout().pmap_size == 3 * P, tag + ": pmap covers pmap_span");
    } else {
      check(b.file_layout().pmap_size == ((2ull << 30) / P) * 8, tag + ": v1 pmap size");
    }
  }
}

void determinism_and_hooks() {
  const auto a = feature_dump(3, 7).build(), b = feature_dump(3, 7).build(), c = feature_dump(3, 8).build();
  check(a == b, "same seed, same bytes");
  std::ostringstream streamed;
  feature_dump(3, 7).build_to(streamed);
  check(streamed.str().size() == a.size() &&
            std::memcmp(streamed.str().data(), a.data(), a.size()) == 0,
        "build_to streams the same bytes as build");
  check(a != c && a.size() == c.size(), "different seed, different contents, same layout");

  auto h = feature_dump(2, 7);
  h.override_magic("minidump FreeBSD/i386")
      .override_version(9)
      .override_msgbufsize(1)
      .override_bitmapsize(2)
      .override_pmapsize(3)
      .override_dumpavailsize(4);
  const auto f = h.build();
  check(std::string(reinterpret_cast<const char*>(f.data())) == "minidump FreeBSD/i386", "override_magic");
  check(load(f, 24, 4) == 9 && load(f, 28, 4) == 1 && load(f, 32, 4) == 2 && load(f, 36, 4) == 3 &&
            load(f, 64, 4) == 4,
        "override header fields");
  check(f.size() == feature_dump(2, 7).build().size(), "overrides keep the layout");
  auto full = feature_dump(3, 7).override_magic(std::string(24, 'M')).build();
  check(load(full, 16, 8) == load(bytes_of("MMMMMMMM"), 0, 8), "24-char magic leaves no NUL");

  // Builder misuse is reported.
  bool threw = false;
  try {
    amd64_minidump_builder x(2, 0);
    x.map_2m(x.kernbase(), 0).map_4k(x.kernbase() + 0x1000, 0x5000);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  check(threw, "overlap detected");
  threw = false;
  try {
    amd64_minidump_builder x(3, 0);
    x.dump_avail({{0x1000, 0x2000}}).dump_page(0x5000).build();
  } catch (const std::logic_error&) {
    threw = true;
  }
  check(threw, "page outside dump_avail detected");
}

void realistic_dumps() {
  for (std::uint32_t v = 1; v <= 3; ++v) {
    const std::string tag = "realistic v" + std::to_string(v);
    const auto b = amd64_minidump_builder::realistic(v, 99, 32);
    const auto f = b.build();
    const mini_reader r(f);
    std::vector<u64> probes;
    const auto maps = b.kernel_mappings();
    for (std::size_t i = 0; i < maps.size(); i += 37) probes.push_back(maps[i].va + 0x10);
    for (const auto& s : b.symbols()) probes.push_back(s.va);
    probes.push_back(b.dmap_base() + 0x123456);
    cross_check(b, f, probes, tag);
    const auto find = [&b](const std::string& n) {
      for (const auto& s : b.symbols())
        if (s.name == n) return s;
      return amd64_minidump_builder::kernel_symbol{};
    };
    const auto ver = find("version");
    const auto bytes = r.read_va(ver.va, static_cast<std::size_t>(ver.size));
    check(bytes && std::string(reinterpret_cast<const char*>(bytes->data())).rfind("FreeBSD 14.1-RELEASE", 0) == 0,
          tag + ": version string via decoder");
    check(ver.va / P != (ver.va + ver.size - 1) / P, tag + ": version straddles a page");
    const auto pm = r.read_va(find("physmem").va, 8);
    check(pm && load(*pm, 0, 8) == (32ull << 20) / P, tag + ": physmem");
    check(std::string(reinterpret_cast<const char*>(f.data() + P), 14) == "---<<BOOT>>---", tag + ": msgbuf text");
    const double frac = static_cast<double>(b.dumped_pages().size()) / static_cast<double>((32ull << 20) / P);
    check(frac > 0.65 && frac < 0.85, tag + ": about 70% dumped (" + std::to_string(frac) + ")");
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto big = amd64_minidump_builder::realistic(3, 5, 256).build();
  const auto t1 = std::chrono::steady_clock::now();
  std::printf("realistic(3, 5, 256 MiB): %zu bytes in %.0f ms\n", big.size(),
              std::chrono::duration<double, std::milli>(t1 - t0).count());
  const mini_reader r(big);
  check(r.magic_ok && r.version == 3 && big.size() == r.sparse_off + r.total_bits_set * P, "realistic 256 MiB layout");
}

// ---------------------------------------------------------------------------------
// Independent ELF decoding of the kernel_elf_builder output.
struct decoded_sym {
  std::string name;
  u64 value, size;
  unsigned info, other, shndx;
};

struct elf_decoded {
  bool ok = false;
  unsigned cls = 0, data = 0, osabi = 0, type = 0, machine = 0, shnum = 0, shstrndx = 0;
  std::vector<std::string> section_names;
  bool has_symtab = false;
  unsigned symtab_info = 0, symtab_link = 0;
  u64 symtab_entsize = 0;
  std::vector<decoded_sym> syms;
};

// force_big decodes regardless of EI_DATA (for files whose e_ident was forged).
elf_decoded decode_elf(const std::vector<std::byte>& f, std::optional<bool> force_big = std::nullopt) {
  elf_decoded d;
  if (f.size() < 52 || load(f, 0, 4, true) != 0x7f454c46) return d;
  d.cls = std::to_integer<unsigned>(f[4]);
  d.data = std::to_integer<unsigned>(f[5]);
  d.osabi = std::to_integer<unsigned>(f[7]);
  const bool is64 = d.cls == 2, big = force_big.value_or(d.data == 2);
  const auto rd = [&](u64 off, int w) { return load(f, off, w, big); };
  d.type = static_cast<unsigned>(rd(16, 2));
  d.machine = static_cast<unsigned>(rd(18, 2));
  const u64 shoff = is64 ? rd(40, 8) : rd(32, 4);
  const u64 shentsize = is64 ? rd(58, 2) : rd(46, 2);
  d.shnum = static_cast<unsigned>(is64 ? rd(60, 2) : rd(48, 2));
  d.shstrndx = static_cast<unsigned>(is64 ? rd(62, 2) : rd(50, 2));
  struct shdr {
    u64 name, type, offset, size, link, info, entsize;
  };
  std::vector<shdr> sh;
  for (unsigned i = 0; i < d.shnum; ++i) {
    const u64 a = shoff + i * shentsize;
    if (is64)
      sh.push_back({rd(a, 4), rd(a + 4, 4), rd(a + 24, 8), rd(a + 32, 8), rd(a + 40, 4), rd(a + 44, 4), rd(a + 56, 8)});
    else
      sh.push_back({rd(a, 4), rd(a + 4, 4), rd(a + 16, 4), rd(a + 20, 4), rd(a + 24, 4), rd(a + 28, 4), rd(a + 36, 4)});
  }
  const auto cstr = [&](u64 off) { return std::string(reinterpret_cast<const char*>(f.data() + off)); };
  for (const auto& s : sh) d.section_names.push_back(cstr(sh[d.shstrndx].offset + s.name));
  for (const auto& s : sh) {
    if (s.type != 2) continue;
    d.has_symtab = true;
    d.symtab_info = static_cast<unsigned>(s.info);
    d.symtab_link = static_cast<unsigned>(s.link);
    d.symtab_entsize = s.entsize;
    const u64 str = sh[s.link].offset;
    for (u64 a = s.offset; a < s.offset + s.size; a += s.entsize) {
      decoded_sym y{};
      y.name = cstr(str + rd(a, 4));
      if (is64) {
        y.info = static_cast<unsigned>(rd(a + 4, 1));
        y.other = static_cast<unsigned>(rd(a + 5, 1));
        y.shndx = static_cast<unsigned>(rd(a + 6, 2));
        y.value = rd(a + 8, 8);
        y.size = rd(a + 16, 8);
      } else {
        y.value = rd(a + 4, 4);
        y.size = rd(a + 8, 4);
        y.info = static_cast<unsigned>(rd(a + 12, 1));
        y.other = static_cast<unsigned>(rd(a + 13, 1));
        y.shndx = static_cast<unsigned>(rd(a + 14, 2));
      }
      d.syms.push_back(y);
    }
  }
  d.ok = true;
  return d;
}

void elf_checks(const char* out_dir) {
  using namespace kvmxx_test;
  for (const elf_class cls : {elf_class::elf32, elf_class::elf64}) {
    for (const elf_endian end : {elf_endian::little, elf_endian::big}) {
      const bool is64 = cls == elf_class::elf64, big = end == elf_endian::big;
      const std::string tag = std::string(is64 ? "elf64" : "elf32") + (big ? "-be" : "-le");
      const u64 base = is64 ? 0xffffffff80200000ull : 0xc0400000ull;
      const std::uint16_t machine = is64 ? (big ? elf_const::em_ppc64 : elf_const::em_x86_64)
                                         : (big ? elf_const::em_ppc : elf_const::em_386);
      const std::uint16_t type = big ? elf_const::et_dyn : elf_const::et_exec;
      kernel_elf_builder k(cls, end, machine, type);
      k.symbol("version", base + 0x800100, section_kind::data, binding::global, elf_const::stt_object, 64)
          .symbol("kernel.c", 0, section_kind::abs, binding::local, elf_const::stt_file, 0)
          .symbol("btext", base, section_kind::text, binding::global, elf_const::stt_func, 0)
          .symbol("static_helper", base + 0x40, section_kind::text, binding::local, elf_const::stt_func, 32)
          .symbol("kernbase", is64 ? 0xffffffff80000000ull : 0xc0000000ull, section_kind::abs)
          .symbol("weak_thing", base + 0x800200, section_kind::data, binding::weak)
          .symbol("bss_counter", base + 0xa00000, section_kind::bss, binding::global, elf_const::stt_object, 4)
          .symbol("undefined_ref", 0, section_kind::undef, binding::global, elf_const::stt_notype, 0)
          .symbol("common_thing", 16, section_kind::common)
          .symbol("version", base + 0x800300, section_kind::data);  // duplicate name on purpose
      const auto f = k.build();
      const auto d = decode_elf(f);
      check(d.ok && d.cls == (is64 ? 2u : 1u) && d.data == (big ? 2u : 1u) && d.osabi == 9, tag + ": e_ident");
      check(d.type == type && d.machine == machine, tag + ": e_type/e_machine");
      check(d.shnum == 7 && d.shstrndx == 6, tag + ": section count");
      check(d.section_names == std::vector<std::string>{"", ".text", ".data", ".bss", ".symtab", ".strtab", ".shstrtab"},
            tag + ": section names");
      check(d.has_symtab && d.symtab_entsize == (is64 ? 24u : 16u) && d.symtab_link == 5 && d.symtab_info == 3,
            tag + ": symtab header");
      const std::vector<std::string> names{"",         "kernel.c",     "static_helper", "version",
                                           "btext",    "kernbase",     "weak_thing",    "bss_counter",
                                           "undefined_ref", "common_thing", "version"};
      std::vector<std::string> got;
      for (const auto& s : d.syms) got.push_back(s.name);
      check(got == names, tag + ": symbol order");
      if (d.syms.size() == names.size()) {
        check(d.syms[0].value == 0 && d.syms[0].info == 0 && d.syms[0].shndx == 0, tag + ": null symbol");
        check(d.syms[1].info == 0x04 && d.syms[1].shndx == 0xfff1, tag + ": STT_FILE local abs");
        check(d.syms[2].info == 0x02 && d.syms[2].shndx == 1 && d.syms[2].size == 32 && d.syms[2].value == base + 0x40,
              tag + ": local func");
        check(d.syms[3].info == 0x11 && d.syms[3].shndx == 2 && d.syms[3].value == base + 0x800100 &&
                  d.syms[3].size == 64,
              tag + ": global object in .data");
        check(d.syms[6].info == 0x21, tag + ": weak binding");
        check(d.syms[7].shndx == 3 && d.syms[8].shndx == 0 && d.syms[9].shndx == 0xfff2, tag + ": bss/undef/common");
      }
      // Stripped variant and e_ident overrides.
      kernel_elf_builder s = k;
      s.strip().ident_byte(elf_const::ei_data, 0).ei_osabi(0);
      const auto fs = s.build();
      const auto ds = decode_elf(fs, big);
      check(ds.ok && !ds.has_symtab && ds.shnum == 5 && ds.shstrndx == 4 &&
                ds.section_names == std::vector<std::string>{"", ".text", ".data", ".bss", ".shstrtab"},
            tag + ": stripped");
      check(std::to_integer<unsigned>(fs[5]) == 0 && std::to_integer<unsigned>(fs[7]) == 0, tag + ": ident overrides");
      if (out_dir != nullptr) {
        write_file(std::string(out_dir) + "/kernel-" + tag + ".elf", f);
        kernel_elf_builder plain_strip = k;
        write_file(std::string(out_dir) + "/kernel-" + tag + "-stripped.elf", plain_strip.strip().build());
      }
    }
  }
  bool threw = false;
  try {
    kvmxx_test::kernel_elf_builder(kvmxx_test::elf_class::elf32, kvmxx_test::elf_endian::little)
        .symbol("too_big", 0x100000000ull, kvmxx_test::section_kind::data);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  check(threw, "ELF32 value range checked");
}

void file_util_checks() {
  std::string root;
  {
    kvmxx_test::temp_dir dir;
    root = dir.root();
    check(std::filesystem::is_directory(root), "temp_dir exists");
    const auto data = bytes_of(std::string("abc\0def", 7));
    kvmxx_test::write_file(dir.path("y.bin"), data);
    std::ifstream in(dir.path("y.bin"), std::ios::binary);
    const std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    check(back == std::string("abc\0def", 7), "write_file round trip");
  }
  check(!std::filesystem::exists(root), "temp_dir removed");
}

}  // namespace

int main(int argc, char** argv) {
  const char* out_dir = argc > 1 ? argv[1] : nullptr;
  try {
    spec_example();
    version_matrix();
    determinism_and_hooks();
    realistic_dumps();
    elf_checks(out_dir);
    file_util_checks();
    if (out_dir != nullptr)
      for (std::uint32_t v = 1; v <= 3; ++v)
        kvmxx_test::write_file(std::string(out_dir) + "/features-v" + std::to_string(v) + ".vmcore",
                               feature_dump(v, 42).build());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAIL: unexpected exception: %s\n", e.what());
    ++failures;
  }
  if (failures == 0) std::printf("writer_selftest: all checks passed\n");
  else std::printf("writer_selftest: %d check(s) failed\n", failures);
  return std::min(failures, 100);
}

// amd64_minidump_writer.hpp — test-fixture generator for FreeBSD amd64 minidumps.
//
// Written from the kvmxx reference specification (/work/shared/specs/freebsd-libkvm.md,
// §2.1 common structure, §2.2 bitmap / sparse page array, §2.4 walk_pages, §2.5 amd64,
// §2.13 worked example). It deliberately shares no code with the kvmxx library so that
// it can serve as an independent check of the library's parsers.
//
// What it produces: the minidump payload exactly as savecore(8) stores it in vmcore.N
// (spec §2.1): header page at offset 0, msgbuf, dump_avail (v3 only), bitmap, page-map
// ("pmap"/"pte") section, then one 4 KiB page per set bitmap bit. Every section is
// rounded up to 4096 bytes and the file ends right after the last sparse page. All
// integers are written little-endian byte by byte, so the output is identical on every
// host.
//
// Public API (namespace kvmxx_test):
//
//   class amd64_minidump_builder {
//    public:
//     static constexpr std::uint64_t page = 4096;
//     struct layout  { msgbuf_off, msgbuf_size, dump_avail_off, dump_avail_size, bitmap_off,
//                      bitmap_size, pmap_off, pmap_size, sparse_off, sparse_pages, file_size; };
//     struct mapping { std::uint64_t va, pa, size; bool writable, executable; };
//     struct kernel_symbol { std::string name; std::uint64_t va, size; bool text; };
//
//     amd64_minidump_builder(std::uint32_t version /*1..3*/, std::uint64_t seed);
//     static amd64_minidump_builder realistic(std::uint32_t version, std::uint64_t seed,
//                                             std::uint64_t phys_mib /*>= 16*/);
//
//     // configuration
//     amd64_minidump_builder& kernbase(std::uint64_t);
//     amd64_minidump_builder& dmap(std::uint64_t base, std::uint64_t end);
//     amd64_minidump_builder& dump_avail(std::vector<std::pair<std::uint64_t, std::uint64_t>>);
//     amd64_minidump_builder& msgbuf(std::string bytes);
//     amd64_minidump_builder& page_table_base(std::uint64_t pa);
//     amd64_minidump_builder& pmap_span(std::uint64_t bytes);
//     amd64_minidump_builder& dump_mapped_pages(bool);
//     // kernel mappings
//     amd64_minidump_builder& map_4k(va, pa, bool writable = true, bool executable = false);
//     amd64_minidump_builder& map_2m(va, pa, bool writable = true, bool executable = false);
//     amd64_minidump_builder& map_1g(va, pa, bool writable = true, bool executable = false);
//     amd64_minidump_builder& stale_4k(va, pa);      // PTE with a frame but PG_V clear
//     amd64_minidump_builder& stale_2m(va, pa);      // PS PDE with a frame but PG_V clear
//     amd64_minidump_builder& omit_page_table(va);   // v2/v3: the PT page for va is not dumped
//     // physical memory
//     amd64_minidump_builder& dump_page(std::uint64_t pa);
//     amd64_minidump_builder& write_phys(std::uint64_t pa, std::span<const std::byte>);
//     amd64_minidump_builder& write_phys(std::uint64_t pa, std::string_view);
//     amd64_minidump_builder& write_virt(std::uint64_t va, std::span<const std::byte>);
//     amd64_minidump_builder& write_virt(std::uint64_t va, std::string_view);
//     amd64_minidump_builder& omit_page(std::uint64_t pa);
//     amd64_minidump_builder& add_symbol(std::string name, std::uint64_t va,
//                                        std::uint64_t size, bool text = false);
//     // corruption hooks (header fields only; the layout is not affected)
//     amd64_minidump_builder& override_magic(std::string);
//     amd64_minidump_builder& override_version(std::uint32_t);
//     amd64_minidump_builder& override_msgbufsize(std::uint32_t);
//     amd64_minidump_builder& override_bitmapsize(std::uint32_t);
//     amd64_minidump_builder& override_pmapsize(std::uint32_t);
//     amd64_minidump_builder& override_dumpavailsize(std::uint32_t);
//     // output
//     std::vector<std::byte> build() const;
//     void build_to(std::ostream&) const;                 // same bytes, streamed
//     void build_to_file(const std::string& path) const;  // same bytes, into a file
//     // ground truth (computed from the model, never by parsing build()'s bytes)
//     std::uint32_t version() const; std::uint64_t kernbase() const;
//     std::uint64_t dmap_base() const; std::uint64_t dmap_end() const;
//     const std::string& msgbuf() const;
//     std::optional<std::uint64_t> translate(std::uint64_t va) const;
//     std::optional<std::vector<std::byte>> read_phys(std::uint64_t pa, std::size_t len) const;
//     std::optional<std::vector<std::byte>> read_virt(std::uint64_t va, std::size_t len) const;
//     std::vector<std::uint64_t> dumped_pages() const;
//     std::optional<std::uint64_t> file_offset(std::uint64_t pa) const;
//     std::optional<std::uint64_t> bit_index(std::uint64_t pa) const;
//     std::optional<std::uint64_t> pmap_entry_offset(std::uint64_t va) const;
//     std::optional<std::uint64_t> page_table_page(std::uint64_t va) const;
//     std::vector<mapping> kernel_mappings() const;
//     std::vector<std::pair<std::uint64_t, std::uint64_t>> bitmap_ranges() const;
//     const std::vector<kernel_symbol>& symbols() const;
//     layout file_layout() const;
//     static std::vector<std::byte> le(std::uint64_t value, std::size_t width);
//   };
//
// Model rules (read these before writing a test):
// * Physical memory. dump_avail() lists the physical RAM ranges [start, end). In v3 they
//   are written to the dump_avail section and define the bitmap (spec §2.2). In v1/v2
//   they are not written (those versions have no dump_avail section; the bitmap always
//   starts at physical address 0 and covers [0, highest dumped page]); the builder still
//   uses them to decide which mapped pages are dumpable and where page tables go. With no
//   ranges at all, v3 writes the single range [0, highest dumped page + 4096).
//   Ranges must be ascending and must not share a page.
// * Which pages are dumped: pages given to dump_page()/write_phys(), every page a valid
//   kernel mapping points to (unless dump_mapped_pages(false); only pages inside the
//   RAM ranges when ranges were given, like the kernel's is_dumpable()), and the v2/v3
//   page-table pages. omit_page() always wins until the page is dumped/written again.
//   Pages given explicitly must lie inside the RAM ranges when ranges were given
//   (otherwise build() and the oracle throw std::logic_error).
// * Page contents: write_phys() bytes; everything else is filled from std::mt19937_64
//   seeded with a mix of (seed, pa), so contents are deterministic and host-independent
//   and need not be stored. Page-table pages hold the PTEs the model implies.
// * Page tables (v2/v3). Every 2 MiB KVA region that holds a 4 KiB mapping (or a stale
//   4 KiB entry) gets one PT page. Its physical page is chosen lazily at build time:
//   upward from page_table_base() if set; otherwise downward from the top of the last
//   RAM range; with no ranges, upward from the first 2 MiB boundary above every page the
//   model uses. Pages that are dumped, written, omitted or mapped are never chosen.
//   page_table_page(va) tells where it went.
// * v1 has no PDE level: map_2m()/map_1g()/stale_2m() are expanded into 512 (or 262144)
//   4 KiB PTEs, as the historical v1 kernel writer synthesised fake PTEs for large pages.
//   v2/v3 map_1g() writes 512 PS PDEs, exactly as the kernel writer synthesises them.
// * Mappings must be aligned to their size, lie at or above kernbase and must not overlap
//   (std::invalid_argument otherwise). kernbase must be 4 KiB (v1) / 2 MiB (v2/v3) aligned.
// * Leaf entries carry PG_A, PG_M and PG_G besides PG_V/PG_RW/PG_PS/PG_NX, like real
//   kernel PTEs, so readers must mask with the frame masks (spec §2.5).
// * pmap section size: v2/v3 one 4 KiB PD page per GiB of KVA from kernbase up to the
//   highest mapped byte (at least one page); v1 one PTE per 4 KiB, rounded to a page.
//   pmap_span(bytes) extends that coverage (KVA that is covered but not mapped).
// * The builder is a value type; the oracle caches its derived state in a mutable member,
//   so a single builder must not be used from several threads at once.

#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvmxx_test {

// Constants of the amd64 minidump format and the amd64 page tables (spec §2.5, §7).
namespace amd64_md {

inline constexpr std::uint64_t page_size = 4096;           // P
inline constexpr std::uint64_t nbpdr = 1ull << 21;         // 2 MiB, PDRSHIFT 21
inline constexpr std::uint64_t nbpdp = 1ull << 30;         // 1 GiB, PDPSHIFT 30
inline constexpr std::uint64_t entries_per_page = 512;     // NPTEPG = NPDEPG

inline constexpr std::uint64_t pg_v = 0x001;     // valid
inline constexpr std::uint64_t pg_rw = 0x002;    // writable
inline constexpr std::uint64_t pg_a = 0x020;     // accessed (x86 architectural bit 5)
inline constexpr std::uint64_t pg_m = 0x040;     // dirty (bit 6)
inline constexpr std::uint64_t pg_ps = 0x080;    // large page in a PDE
inline constexpr std::uint64_t pg_g = 0x100;     // global (bit 8)
inline constexpr std::uint64_t pg_nx = 1ull << 63;
inline constexpr std::uint64_t pg_frame = 0x000ffffffffff000ull;
inline constexpr std::uint64_t pg_ps_frame = 0x000fffffffe00000ull;
inline constexpr std::uint64_t pg_1gb_frame = 0x000fffffc0000000ull;

inline constexpr std::uint64_t vm_min_kernel_address = 0xfffffe0000000000ull;  // v2/v3 kernbase
inline constexpr std::uint64_t kernbase_v1 = 0xffffffff80000000ull;            // KERNBASE
inline constexpr std::uint64_t dmap_min_address = 0xfffff80000000000ull;
inline constexpr std::uint64_t dmap_max_address = 0xfffffc0000000000ull;

inline constexpr char magic[] = "minidump FreeBSD/amd64";  // 22 chars + NUL
inline constexpr std::size_t magic_field_size = 24;

// struct minidumphdr byte offsets (spec §2.5 table).
inline constexpr std::size_t off_magic = 0;
inline constexpr std::size_t off_version = 24;
inline constexpr std::size_t off_msgbufsize = 28;
inline constexpr std::size_t off_bitmapsize = 32;
inline constexpr std::size_t off_pmapsize = 36;
inline constexpr std::size_t off_kernbase = 40;
inline constexpr std::size_t off_dmapbase = 48;
inline constexpr std::size_t off_dmapend = 56;
inline constexpr std::size_t off_dumpavailsize = 64;  // v3 only

}  // namespace amd64_md

namespace detail_md {

inline std::uint64_t round_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

// Little-endian store, byte by byte, so the result does not depend on the host.
inline void put_le(std::byte* dst, std::uint64_t value, std::size_t width) {
  for (std::size_t i = 0; i < width; ++i)
    dst[i] = static_cast<std::byte>((value >> (8 * i)) & 0xff);
}

// splitmix64 finaliser: spreads (seed, pa) so neighbouring pages get unrelated streams.
inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Random contents of a page: 512 mt19937_64 words, each stored little-endian. The
// engine's output sequence is fixed by the C++ standard, so this is host-independent.
inline void fill_random_page(std::uint64_t seed, std::uint64_t pa, std::byte* dst) {
  std::mt19937_64 gen(mix64(seed ^ mix64(pa)));
  std::array<std::uint64_t, amd64_md::page_size / 8> words;
  for (std::uint64_t& w : words) w = gen();
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(dst, words.data(), amd64_md::page_size);  // same bytes as put_le, just faster
  } else {
    for (std::size_t k = 0; k < words.size(); ++k) put_le(dst + 8 * k, words[k], 8);
  }
}

}  // namespace detail_md

class amd64_minidump_builder {
 public:
  static constexpr std::uint64_t page = amd64_md::page_size;

  // File offsets and true sizes of every section (sizes as the header states them,
  // i.e. before rounding; offsets are page multiples).
  struct layout {
    std::uint64_t msgbuf_off = 0, msgbuf_size = 0;
    std::uint64_t dump_avail_off = 0, dump_avail_size = 0;  // size 0 for v1/v2
    std::uint64_t bitmap_off = 0, bitmap_size = 0;
    std::uint64_t pmap_off = 0, pmap_size = 0;
    std::uint64_t sparse_off = 0, sparse_pages = 0;
    std::uint64_t file_size = 0;
  };

  // One leaf of the kernel page tables, as a page walker sees it (spec §2.4/§2.5).
  struct mapping {
    std::uint64_t va = 0, pa = 0, size = 0;  // size 4096 or 2 MiB
    bool writable = false, executable = false;
  };

  // Named objects recorded for a companion kernel ELF (kernel_elf_writer.hpp); they do
  // not change the dump bytes.
  struct kernel_symbol {
    std::string name;
    std::uint64_t va = 0, size = 0;
    bool text = false;  // true: text symbol, false: data symbol
  };

  amd64_minidump_builder(std::uint32_t version, std::uint64_t seed) : version_(version), seed_(seed) {
    if (version < 1 || version > 3)
      throw std::invalid_argument("amd64 minidump version must be 1, 2 or 3 (use override_version)");
    kernbase_ = version == 1 ? amd64_md::kernbase_v1 : amd64_md::vm_min_kernel_address;
  }

  // ---------------------------------------------------------------- configuration

  // Header kernbase; start of the page-map section's KVA (spec §2.5).
  amd64_minidump_builder& kernbase(std::uint64_t kb) {
    if (kb % (version_ == 1 ? page : amd64_md::nbpdr) != 0)
      throw std::invalid_argument("kernbase must be 4 KiB (v1) / 2 MiB (v2/v3) aligned");
    kernbase_ = kb;
    return touch();
  }

  // Header dmapbase/dmapend: the direct map [base, end) translates va -> va - base.
  amd64_minidump_builder& dmap(std::uint64_t base, std::uint64_t end) {
    if (base > end) throw std::invalid_argument("dmap base above end");
    dmap_base_ = base;
    dmap_end_ = end;
    return touch();
  }

  // Physical RAM ranges [start, end); see "Model rules" above.
  amd64_minidump_builder& dump_avail(std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges) {
    for (std::size_t i = 0; i < ranges.size(); ++i) {
      if (ranges[i].first >= ranges[i].second) throw std::invalid_argument("empty dump_avail range");
      if (i > 0 && detail_md::round_up(ranges[i - 1].second, page) > ranges[i].first / page * page)
        throw std::invalid_argument("dump_avail ranges must be ascending and not share a page");
    }
    ranges_ = std::move(ranges);
    return touch();
  }

  // Raw msgbuf section contents; msgbufsize = bytes.size() (spec §2.1).
  amd64_minidump_builder& msgbuf(std::string bytes) {
    msgbuf_ = std::move(bytes);
    return touch();
  }

  // Allocate v2/v3 page-table pages upward from this physical address.
  amd64_minidump_builder& page_table_base(std::uint64_t pa) {
    pt_base_ = pa / page * page;
    return touch();
  }

  // Make the page map cover at least `bytes` of KVA from kernbase.
  amd64_minidump_builder& pmap_span(std::uint64_t bytes) {
    pmap_span_ = bytes;
    return touch();
  }

  // Whether pages targeted by valid mappings are dumped automatically (default true).
  amd64_minidump_builder& dump_mapped_pages(bool on) {
    dump_mapped_ = on;
    return touch();
  }

  // ---------------------------------------------------------------- kernel mappings

  amd64_minidump_builder& map_4k(std::uint64_t va, std::uint64_t pa, bool writable = true,
                                 bool executable = false) {
    check_range(va, pa, page);
    add_small(va, leaf{pa, writable, executable, true});
    return touch();
  }

  // v2/v3: one PS PDE. v1: 512 PTEs.
  amd64_minidump_builder& map_2m(std::uint64_t va, std::uint64_t pa, bool writable = true,
                                 bool executable = false) {
    check_range(va, pa, amd64_md::nbpdr);
    add_large(va, leaf{pa, writable, executable, true});
    return touch();
  }

  // v2/v3: 512 PS PDEs pde[j] = pdpe + j*2MiB (spec §2.5 kernel writer). v1: 262144 PTEs.
  amd64_minidump_builder& map_1g(std::uint64_t va, std::uint64_t pa, bool writable = true,
                                 bool executable = false) {
    check_range(va, pa, amd64_md::nbpdp);
    for (std::uint64_t j = 0; j < amd64_md::entries_per_page; ++j)
      add_large(va + j * amd64_md::nbpdr, leaf{pa + j * amd64_md::nbpdr, writable, executable, true});
    return touch();
  }

  // A PTE that still holds pa's frame but has PG_V clear ("pte not valid").
  amd64_minidump_builder& stale_4k(std::uint64_t va, std::uint64_t pa) {
    check_range(va, pa, page);
    add_small(va, leaf{pa, true, false, false});
    return touch();
  }

  // A PS PDE (v1: 512 PTEs) that holds pa's frame but has PG_V clear ("pde not valid").
  amd64_minidump_builder& stale_2m(std::uint64_t va, std::uint64_t pa) {
    check_range(va, pa, amd64_md::nbpdr);
    add_large(va, leaf{pa, true, false, false});
    return touch();
  }

  // v2/v3: the PDE still points at the PT page for va, but that page is left out of the
  // dump ("cannot find page table entry"). translate() then yields nullopt for the region.
  amd64_minidump_builder& omit_page_table(std::uint64_t va) {
    if (version_ == 1) throw std::invalid_argument("v1 minidumps have no page-table pages");
    omitted_pt_regions_.insert(va & ~(amd64_md::nbpdr - 1));
    return touch();
  }

  // ---------------------------------------------------------------- physical memory

  // The page holding pa is in the dump with random contents (or keeps written contents).
  amd64_minidump_builder& dump_page(std::uint64_t pa) {
    const std::uint64_t p = pa / page * page;
    auto it = pages_.find(p);
    if (it == pages_.end())
      pages_.emplace(p, page_entry{page_kind::random, {}});
    else if (it->second.kind == page_kind::omitted)
      it->second.kind = page_kind::random;
    return touch();
  }

  // Sets physical bytes; the touched pages are dumped. Bytes not written keep the page's
  // deterministic random contents.
  amd64_minidump_builder& write_phys(std::uint64_t pa, std::span<const std::byte> bytes) {
    if (bytes.size() > 0 && pa + (bytes.size() - 1) < pa) throw std::invalid_argument("write_phys wraps");
    std::size_t done = 0;
    while (done < bytes.size()) {
      const std::uint64_t cur = pa + done;
      const std::uint64_t p = cur / page * page;
      const std::size_t in_page = static_cast<std::size_t>(cur - p);
      const std::size_t n = std::min<std::size_t>(bytes.size() - done, page - in_page);
      page_entry& e = pages_[p];
      if (e.kind != page_kind::explicit_bytes) {
        e.bytes.resize(page);
        detail_md::fill_random_page(seed_, p, e.bytes.data());
        e.kind = page_kind::explicit_bytes;
      }
      std::memcpy(e.bytes.data() + in_page, bytes.data() + done, n);
      done += n;
    }
    return touch();
  }
  amd64_minidump_builder& write_phys(std::uint64_t pa, std::string_view s) {
    return write_phys(pa, std::as_bytes(std::span<const char>(s.data(), s.size())));
  }

  // Writes through the model's own translation (kernel map or direct map). Throws
  // std::invalid_argument when a byte is not mapped.
  amd64_minidump_builder& write_virt(std::uint64_t va, std::span<const std::byte> bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const std::uint64_t cur = va + done;
      const std::size_t n = std::min<std::size_t>(bytes.size() - done, page - cur % page);
      const std::optional<std::uint64_t> pa = mapped_pa(cur);
      if (!pa) throw std::invalid_argument("write_virt: address not mapped");
      write_phys(*pa, bytes.subspan(done, n));
      done += n;
    }
    return *this;
  }
  amd64_minidump_builder& write_virt(std::uint64_t va, std::string_view s) {
    return write_virt(va, std::as_bytes(std::span<const char>(s.data(), s.size())));
  }

  // The page holding pa is NOT in the dump (bit clear), even if it is mapped.
  amd64_minidump_builder& omit_page(std::uint64_t pa) {
    pages_[pa / page * page] = page_entry{page_kind::omitted, {}};
    return touch();
  }

  amd64_minidump_builder& add_symbol(std::string name, std::uint64_t va, std::uint64_t size, bool text = false) {
    symbols_.push_back(kernel_symbol{std::move(name), va, size, text});
    return *this;
  }

  // ---------------------------------------------------------------- corruption hooks
  // They replace raw header fields after the layout has been computed; the sections are
  // still placed according to the true sizes and the oracle ignores the overrides.

  // Copied into the 24-byte magic field, NUL padded; 24 or more characters leave no NUL.
  amd64_minidump_builder& override_magic(std::string m) { magic_override_ = std::move(m); return *this; }
  amd64_minidump_builder& override_version(std::uint32_t v) { version_override_ = v; return *this; }
  amd64_minidump_builder& override_msgbufsize(std::uint32_t v) { msgbufsize_override_ = v; return *this; }
  amd64_minidump_builder& override_bitmapsize(std::uint32_t v) { bitmapsize_override_ = v; return *this; }
  amd64_minidump_builder& override_pmapsize(std::uint32_t v) { pmapsize_override_ = v; return *this; }
  // Written at offset 64 even for v1/v2 (where readers must ignore it).
  amd64_minidump_builder& override_dumpavailsize(std::uint32_t v) { dumpavailsize_override_ = v; return *this; }

  // ---------------------------------------------------------------- output

  // The whole file in memory.
  std::vector<std::byte> build() const {
    const resolved& r = resolve();
    std::vector<std::byte> out(static_cast<std::size_t>(r.lay.file_size));
    write_metadata(r, out.data());
    // Sparse pages in ascending bit order (= ascending pa, the ranges being ascending).
    for (std::size_t k = 0; k < r.dumped.size(); ++k)
      render_page(r, r.dumped[k], out.data() + r.lay.sparse_off + k * page);
    return out;
  }

  // The same bytes, streamed page by page: avoids holding a large dump in memory
  // (benchmarks). Throws std::runtime_error when the stream fails.
  void build_to(std::ostream& os) const {
    const resolved& r = resolve();
    std::vector<std::byte> head(static_cast<std::size_t>(r.lay.sparse_off));
    write_metadata(r, head.data());
    os.write(reinterpret_cast<const char*>(head.data()), static_cast<std::streamsize>(head.size()));
    std::array<std::byte, page> buf;
    for (const std::uint64_t pa : r.dumped) {
      render_page(r, pa, buf.data());
      os.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
    }
    if (!os) throw std::runtime_error("amd64_minidump_builder::build_to: write failed");
  }

  void build_to_file(const std::string& path) const {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("cannot create " + path);
    build_to(f);
    f.close();
    if (!f) throw std::runtime_error("cannot write " + path);
  }

  // ---------------------------------------------------------------- ground truth

  std::uint32_t version() const { return version_; }
  std::uint64_t kernbase() const { return kernbase_; }
  std::uint64_t dmap_base() const { return dmap_base_; }
  std::uint64_t dmap_end() const { return dmap_end_; }
  const std::string& msgbuf() const { return msgbuf_; }
  const std::vector<kernel_symbol>& symbols() const { return symbols_; }

  // The physical address a correct reader yields for va (offset within the page kept):
  // kernel map first (va >= kernbase, without falling back to the direct map), then the
  // direct map. nullopt when the entry is missing or not valid, or when the PT page the
  // walk needs is omitted from the dump. The PA's own page may still be absent from the
  // dump; check read_phys()/file_offset() for that.
  std::optional<std::uint64_t> translate(std::uint64_t va) const {
    if (va >= kernbase_ && version_ >= 2 && !large_.contains(va & ~(amd64_md::nbpdr - 1)) &&
        omitted_pt_regions_.contains(va & ~(amd64_md::nbpdr - 1)))
      return std::nullopt;
    return mapped_pa(va);
  }

  // Physical bytes as stored in the dump; nullopt if any touched page is not dumped.
  std::optional<std::vector<std::byte>> read_phys(std::uint64_t pa, std::size_t len) const {
    const resolved& r = resolve();
    std::vector<std::byte> out;
    out.reserve(len);
    std::array<std::byte, page> buf{};
    std::size_t done = 0;
    while (done < len) {
      const std::uint64_t cur = pa + done;
      const std::uint64_t p = cur / page * page;
      const std::size_t in_page = static_cast<std::size_t>(cur - p);
      const std::size_t n = std::min<std::size_t>(len - done, page - in_page);
      if (!std::binary_search(r.dumped.begin(), r.dumped.end(), p)) return std::nullopt;
      render_page(r, p, buf.data());
      out.insert(out.end(), buf.begin() + in_page, buf.begin() + in_page + n);
      done += n;
    }
    return out;
  }

  // Virtual bytes: translate() page by page, then read_phys().
  std::optional<std::vector<std::byte>> read_virt(std::uint64_t va, std::size_t len) const {
    std::vector<std::byte> out;
    out.reserve(len);
    std::size_t done = 0;
    while (done < len) {
      const std::uint64_t cur = va + done;
      const std::size_t n = std::min<std::size_t>(len - done, page - cur % page);
      const std::optional<std::uint64_t> pa = translate(cur);
      if (!pa) return std::nullopt;
      const auto bytes = read_phys(*pa, n);
      if (!bytes) return std::nullopt;
      out.insert(out.end(), bytes->begin(), bytes->end());
      done += n;
    }
    return out;
  }

  // Physical addresses of the sparse pages, ascending (= file order).
  std::vector<std::uint64_t> dumped_pages() const { return resolve().dumped; }

  // File offset of the byte at pa, if its page is dumped.
  std::optional<std::uint64_t> file_offset(std::uint64_t pa) const {
    const resolved& r = resolve();
    const std::uint64_t p = pa / page * page;
    const auto it = std::lower_bound(r.dumped.begin(), r.dumped.end(), p);
    if (it == r.dumped.end() || *it != p) return std::nullopt;
    return r.lay.sparse_off + static_cast<std::uint64_t>(it - r.dumped.begin()) * page + pa % page;
  }

  // Bitmap bit of pa (spec §2.2, kernel semantics: holes between ranges have no bit).
  std::optional<std::uint64_t> bit_index(std::uint64_t pa) const { return bit_of(resolve().ranges, pa); }

  // File offset of the PTE (v1) / PDE (v2/v3) that covers va, if inside the page map.
  std::optional<std::uint64_t> pmap_entry_offset(std::uint64_t va) const {
    const resolved& r = resolve();
    if (va < kernbase_) return std::nullopt;
    const std::uint64_t idx = (va - kernbase_) >> (version_ == 1 ? 12 : 21);
    if (idx >= r.lay.pmap_size / 8) return std::nullopt;
    return r.lay.pmap_off + idx * 8;
  }

  // v2/v3: physical address of the PT page serving va's 2 MiB region, if there is one.
  std::optional<std::uint64_t> page_table_page(std::uint64_t va) const {
    const resolved& r = resolve();
    const auto it = r.pt_by_region.find(va & ~(amd64_md::nbpdr - 1));
    if (version_ == 1 || it == r.pt_by_region.end()) return std::nullopt;
    return it->second;
  }

  // Valid leaves a walker finds (spec §2.4/§2.5 first pass), ascending va: v1 4 KiB PTEs;
  // v2/v3 2 MiB PS PDEs and 4 KiB PTEs, leaving out regions whose PT page is omitted.
  std::vector<mapping> kernel_mappings() const {
    std::vector<mapping> out;
    for (const auto& [va, lf] : large_)
      if (lf.valid) out.push_back(mapping{va, lf.pa, amd64_md::nbpdr, lf.writable, lf.executable});
    for (const auto& [va, lf] : small_)
      if (lf.valid && !omitted_pt_regions_.contains(va & ~(amd64_md::nbpdr - 1)))
        out.push_back(mapping{va, lf.pa, page, lf.writable, lf.executable});
    std::sort(out.begin(), out.end(), [](const mapping& a, const mapping& b) { return a.va < b.va; });
    return out;
  }

  // Physical ranges the bitmap covers, in bit order: v3 the dump_avail pairs written;
  // v1/v2 the single range [0, bitmap pages) implied by the dumped pages.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> bitmap_ranges() const { return resolve().ranges; }

  layout file_layout() const { return resolve().lay; }

  // value as `width` little-endian bytes, for write_phys/write_virt of integers.
  static std::vector<std::byte> le(std::uint64_t value, std::size_t width) {
    std::vector<std::byte> out(width);
    detail_md::put_le(out.data(), value, width);
    return out;
  }

  // ---------------------------------------------------------------- realistic dump

  // A kernel-like dump: PC-style RAM [0x1000, 0x9f000) + [1 MiB, phys_mib MiB); kernel
  // image at KERNBASE + 2 MiB (pa 2 MiB): 6 MiB text in 2 MiB pages (r-x), 1 MiB data and
  // 1 MiB bss in 4 KiB pages (rw-); 512 scattered 4 KiB "kmem" pages (rw-) near kernbase;
  // about 70% of all RAM pages dumped plus every mapped page; a FreeBSD-like boot log in
  // a 96 KiB msgbuf. Kernel variables are recorded with add_symbol(): btext, etext
  // (text), version, ostype, osrelease (strings), physmem (u64, pages), hz (u32), kmem_base.
  // A 256 MiB dump is ~190 MiB; build_to_file() avoids holding it in memory.
  static amd64_minidump_builder realistic(std::uint32_t version, std::uint64_t seed, std::uint64_t phys_mib) {
    namespace md = amd64_md;
    if (phys_mib < 16) throw std::invalid_argument("realistic(): needs at least 16 MiB");
    amd64_minidump_builder b(version, seed);
    std::mt19937_64 rng(detail_md::mix64(seed ^ 0x7265616c69737469ull));  // layout decisions
    const std::uint64_t ram_end = phys_mib << 20;
    b.dump_avail({{0x1000, 0x9f000}, {0x100000, ram_end}});

    // Kernel image, loaded by the boot loader at physical 2 MiB.
    const std::uint64_t text_va = md::kernbase_v1 + 0x200000, text_pa = 0x200000, text_len = 6 << 20;
    for (std::uint64_t off = 0; off < text_len; off += md::nbpdr)
      b.map_2m(text_va + off, text_pa + off, /*writable=*/false, /*executable=*/true);
    const std::uint64_t data_va = text_va + text_len, data_pa = text_pa + text_len;
    const std::uint64_t data_len = 1 << 20, bss_len = 1 << 20;
    for (std::uint64_t off = 0; off < data_len + bss_len; off += page) b.map_4k(data_va + off, data_pa + off);

    // kmem: scattered physical pages above the kernel image, straddling a 2 MiB boundary.
    const std::uint64_t kmem_va = b.kernbase_ + (version == 1 ? 0x4000000 : 0x1000000) + 0x100000;
    const std::uint64_t free_lo = data_pa + data_len + bss_len;
    const std::uint64_t free_pages = (ram_end - free_lo) / page;
    std::set<std::uint64_t> used;
    for (std::uint64_t i = 0; i < 512; ++i) {
      std::uint64_t pa = 0;
      do {
        pa = free_lo + (rng() % free_pages) * page;  // raw engine output, not a distribution: portable
      } while (!used.insert(pa).second);
      b.map_4k(kmem_va + i * page, pa);
    }

    // About 70% of RAM pages; mapped pages are dumped anyway.
    for (const auto& [start, end] : b.ranges_)
      for (std::uint64_t pa = start; pa < end; pa += page)
        if (rng() % 10 < 7) b.dump_page(pa);

    // Kernel variables. "version" straddles a 4 KiB boundary on purpose.
    const std::string release = "14.1-RELEASE";
    const std::string version_str = "FreeBSD " + release +
                                    " releng/14.1-n267679-10e31f0946d8 GENERIC amd64\n";
    const auto put_string = [&b](const std::string& name, std::uint64_t va, const std::string& s) {
      std::string z = s;
      z.push_back('\0');
      b.write_virt(va, z);
      b.add_symbol(name, va, z.size());
    };
    put_string("version", data_va + 0xfd0, version_str);
    put_string("ostype", data_va + 0x2000, "FreeBSD");
    put_string("osrelease", data_va + 0x2010, release);
    b.write_virt(data_va + 0x2040, le(ram_end / page, 8)).add_symbol("physmem", data_va + 0x2040, 8);
    b.write_virt(data_va + 0x2048, le(1000, 4)).add_symbol("hz", data_va + 0x2048, 4);
    b.add_symbol("kmem_base", kmem_va, 512 * page);
    b.add_symbol("btext", text_va, 0, true).add_symbol("etext", text_va + text_len, 0, true);

    b.msgbuf(boot_log(ram_end, version_str));
    return b;
  }

 private:
  struct leaf {
    std::uint64_t pa = 0;
    bool writable = false, executable = false, valid = false;
  };
  enum class page_kind { random, explicit_bytes, omitted };
  struct page_entry {
    page_kind kind = page_kind::random;
    std::vector<std::byte> bytes;  // page-sized when kind == explicit_bytes
  };
  using range_list = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

  // Everything derived from the model at build time.
  struct resolved {
    range_list ranges;                                // bitmap coverage, in bit order
    std::map<std::uint64_t, std::uint64_t> pt_by_region;  // 2 MiB va region -> PT page pa
    std::map<std::uint64_t, std::uint64_t> region_by_pt;  // inverse
    std::vector<std::uint64_t> dumped;                // ascending pas
    layout lay;
  };

  amd64_minidump_builder& touch() {
    cache_.reset();
    return *this;
  }

  void check_range(std::uint64_t va, std::uint64_t pa, std::uint64_t size) const {
    if (va % size != 0 || pa % size != 0) throw std::invalid_argument("mapping not aligned to its size");
    if (va < kernbase_) throw std::invalid_argument("mapping below kernbase");
    if (va + (size - 1) < va) throw std::invalid_argument("mapping wraps the address space");
    if (pa + (size - 1) > (amd64_md::pg_frame | (page - 1))) throw std::invalid_argument("pa beyond 52 bits");
  }

  void add_small(std::uint64_t va, const leaf& lf) {
    if (small_.contains(va) || large_.contains(va & ~(amd64_md::nbpdr - 1)))
      throw std::invalid_argument("overlapping kernel mapping");
    small_.emplace(va, lf);
  }

  void add_large(std::uint64_t va, const leaf& lf) {
    if (version_ == 1) {  // no PDE level: synthesise 512 PTEs
      for (std::uint64_t k = 0; k < amd64_md::entries_per_page; ++k)
        if (small_.contains(va + k * page)) throw std::invalid_argument("overlapping kernel mapping");
      for (std::uint64_t k = 0; k < amd64_md::entries_per_page; ++k)
        small_.emplace(va + k * page, leaf{lf.pa + k * page, lf.writable, lf.executable, lf.valid});
      return;
    }
    const auto it = small_.lower_bound(va);
    if (large_.contains(va) || (it != small_.end() && it->first - va < amd64_md::nbpdr))
      throw std::invalid_argument("overlapping kernel mapping");
    large_.emplace(va, lf);
  }

  // Leaf lookup in the model (valid entries only), then the direct map.
  std::optional<std::uint64_t> mapped_pa(std::uint64_t va) const {
    if (va >= kernbase_) {
      if (const auto it = large_.find(va & ~(amd64_md::nbpdr - 1)); it != large_.end())
        return it->second.valid ? std::optional(it->second.pa + (va & (amd64_md::nbpdr - 1))) : std::nullopt;
      if (const auto it = small_.find(va & ~(page - 1)); it != small_.end() && it->second.valid)
        return it->second.pa + (va & (page - 1));
      return std::nullopt;
    }
    if (va >= dmap_base_ && va < dmap_end_) return va - dmap_base_;
    return std::nullopt;
  }

  static std::uint64_t leaf_flags(const leaf& lf) {
    namespace md = amd64_md;
    std::uint64_t v = lf.writable ? md::pg_rw : 0;
    if (!lf.executable) v |= md::pg_nx;
    if (lf.valid) v |= md::pg_v | md::pg_a | md::pg_m | md::pg_g;
    return v;
  }
  static std::uint64_t pte_value(const leaf& lf) { return (lf.pa & amd64_md::pg_frame) | leaf_flags(lf); }
  static std::uint64_t pde_ps_value(const leaf& lf) {
    return (lf.pa & amd64_md::pg_ps_frame) | amd64_md::pg_ps | leaf_flags(lf);
  }

  // Page-level membership: pages floor(start/P) .. ceil(end/P)-1 of each range.
  static bool in_ranges(const range_list& ranges, std::uint64_t pa) {
    const std::uint64_t pg = pa / page;
    for (const auto& [s, e] : ranges)
      if (pg >= s / page && pg < detail_md::round_up(e, page) / page) return true;
    return false;
  }

  // Bit index per spec §2.2: pages are counted floor(start/P)..ceil(end/P) per range.
  static std::optional<std::uint64_t> bit_of(const range_list& ranges, std::uint64_t pa) {
    std::uint64_t adj = 0;
    const std::uint64_t pg = pa / page;
    for (const auto& [s, e] : ranges) {
      const std::uint64_t first = s / page, last = detail_md::round_up(e, page) / page;
      if (pg >= first && pg < last) return pg - first + adj;
      adj += last - first;
    }
    return std::nullopt;
  }

  // Everything before the sparse pages: [0, sparse_off) of the file, into zeroed base.
  void write_metadata(const resolved& r, std::byte* base) const {
    namespace md = amd64_md;
    const layout& l = r.lay;

    // Header page (spec §2.5): rest of the page stays zero.
    const std::string magic = magic_override_.value_or(std::string(md::magic));
    std::memcpy(base + md::off_magic, magic.data(), std::min(magic.size(), md::magic_field_size));
    const auto u32 = [](std::uint64_t v) { return static_cast<std::uint32_t>(v); };
    detail_md::put_le(base + md::off_version, version_override_.value_or(version_), 4);
    detail_md::put_le(base + md::off_msgbufsize, msgbufsize_override_.value_or(u32(l.msgbuf_size)), 4);
    detail_md::put_le(base + md::off_bitmapsize, bitmapsize_override_.value_or(u32(l.bitmap_size)), 4);
    detail_md::put_le(base + md::off_pmapsize, pmapsize_override_.value_or(u32(l.pmap_size)), 4);
    detail_md::put_le(base + md::off_kernbase, kernbase_, 8);
    detail_md::put_le(base + md::off_dmapbase, dmap_base_, 8);
    detail_md::put_le(base + md::off_dmapend, dmap_end_, 8);
    if (version_ == 3 || dumpavailsize_override_)
      detail_md::put_le(base + md::off_dumpavailsize, dumpavailsize_override_.value_or(u32(l.dump_avail_size)), 4);

    // msgbuf (spec §2.1): raw bytes, zero padded to a page.
    if (!msgbuf_.empty()) std::memcpy(base + l.msgbuf_off, msgbuf_.data(), msgbuf_.size());

    // dump_avail (v3): uint64 [start, end) pairs; the (0, 0) terminator is already zero.
    if (version_ == 3) {
      std::byte* p = base + l.dump_avail_off;
      for (const auto& [start, end] : r.ranges) {
        detail_md::put_le(p, start, 8);
        detail_md::put_le(p + 8, end, 8);
        p += 16;
      }
    }

    // Bitmap (spec §2.2): bit i lives in byte i/8 under mask 1 << (i%8).
    for (const std::uint64_t pa : r.dumped) {
      const std::uint64_t bit = *bit_of(r.ranges, pa);
      base[l.bitmap_off + bit / 8] |= static_cast<std::byte>(1u << (bit % 8));
    }

    // Page map (spec §2.5): v1 flat PTE array, v2/v3 flat PDE array indexed from kernbase.
    std::byte* const pmap = base + l.pmap_off;
    if (version_ == 1) {
      for (const auto& [va, lf] : small_) detail_md::put_le(pmap + ((va - kernbase_) >> 12) * 8, pte_value(lf), 8);
    } else {
      for (const auto& [va, lf] : large_) detail_md::put_le(pmap + ((va - kernbase_) >> 21) * 8, pde_ps_value(lf), 8);
      for (const auto& [region, pt_pa] : r.pt_by_region)
        detail_md::put_le(pmap + ((region - kernbase_) >> 21) * 8,
                          (pt_pa & md::pg_frame) | md::pg_v | md::pg_rw | md::pg_a, 8);
    }
  }

  // Contents of dumped page pa into dst[0, page).
  void render_page(const resolved& r, std::uint64_t pa, std::byte* dst) const {
    if (const auto pt = r.region_by_pt.find(pa); pt != r.region_by_pt.end()) {
      std::memset(dst, 0, page);
      const std::uint64_t region = pt->second;
      for (auto it = small_.lower_bound(region); it != small_.end() && it->first - region < amd64_md::nbpdr; ++it)
        detail_md::put_le(dst + ((it->first >> 12) & 511) * 8, pte_value(it->second), 8);
      return;
    }
    if (const auto it = pages_.find(pa); it != pages_.end() && it->second.kind == page_kind::explicit_bytes) {
      std::memcpy(dst, it->second.bytes.data(), page);
      return;
    }
    detail_md::fill_random_page(seed_, pa, dst);
  }

  const resolved& resolve() const {
    if (cache_) return *cache_;
    namespace md = amd64_md;
    resolved r;
    if ((!small_.empty() && small_.begin()->first < kernbase_) || (!large_.empty() && large_.begin()->first < kernbase_))
      throw std::logic_error("a mapping lies below kernbase");
    const bool have_ranges = !ranges_.empty();

    // Pages the PT allocator must not pick.
    std::set<std::uint64_t> small_targets, large_targets;
    for (const auto& [va, lf] : small_) small_targets.insert(lf.pa);
    for (const auto& [va, lf] : large_) large_targets.insert(lf.pa);
    const auto claimed = [&](std::uint64_t pa) {
      return pages_.contains(pa) || small_targets.contains(pa) || large_targets.contains(pa & ~(md::nbpdr - 1));
    };

    // 1. Page-table pages (v2/v3), one per 2 MiB region holding 4 KiB entries.
    if (version_ >= 2) {
      std::vector<std::uint64_t> regions;
      for (const auto& [va, lf] : small_) {
        const std::uint64_t region = va & ~(md::nbpdr - 1);
        if (regions.empty() || regions.back() != region) regions.push_back(region);
      }
      std::vector<std::uint64_t> pts;
      if (pt_base_ || !have_ranges) {
        std::uint64_t cursor = 0;
        if (pt_base_) {
          cursor = *pt_base_;
        } else {
          std::uint64_t top = 0;  // one past the highest page in use
          if (!pages_.empty()) top = std::max(top, pages_.rbegin()->first + page);
          if (!small_targets.empty()) top = std::max(top, *small_targets.rbegin() + page);
          if (!large_targets.empty()) top = std::max(top, *large_targets.rbegin() + md::nbpdr);
          cursor = detail_md::round_up(std::max<std::uint64_t>(top, 1), md::nbpdr);
        }
        for (std::size_t i = 0; i < regions.size(); ++i, cursor += page) {
          while (claimed(cursor)) cursor += page;
          pts.push_back(cursor);
        }
      } else {  // top-down through the RAM ranges
        for (auto it = ranges_.rbegin(); it != ranges_.rend() && pts.size() < regions.size(); ++it) {
          const std::uint64_t lo = it->first / page * page;
          for (std::uint64_t p = detail_md::round_up(it->second, page); p > lo && pts.size() < regions.size();) {
            p -= page;
            if (!claimed(p)) pts.push_back(p);
          }
        }
        if (pts.size() < regions.size()) throw std::logic_error("no free physical page left for page tables");
      }
      for (std::size_t i = 0; i < regions.size(); ++i) {
        r.pt_by_region.emplace(regions[i], pts[i]);
        r.region_by_pt.emplace(pts[i], regions[i]);
      }
    }

    // 2. Dumped pages.
    const auto dumpable = [&](std::uint64_t pa) { return !have_ranges || in_ranges(ranges_, pa); };
    std::vector<std::uint64_t>& d = r.dumped;
    for (const auto& [pa, e] : pages_) {
      if (e.kind == page_kind::omitted) continue;
      if (!dumpable(pa)) throw std::logic_error("a dumped page lies outside the dump_avail ranges");
      d.push_back(pa);
    }
    if (dump_mapped_) {
      const auto add_mapped = [&](std::uint64_t pa) {
        if (!pages_.contains(pa) && dumpable(pa)) d.push_back(pa);
      };
      for (const auto& [va, lf] : small_)
        if (lf.valid) add_mapped(lf.pa);
      for (const auto& [va, lf] : large_)
        if (lf.valid)
          for (std::uint64_t k = 0; k < md::entries_per_page; ++k) add_mapped(lf.pa + k * page);
    }
    for (const auto& [region, pa] : r.pt_by_region) {
      if (omitted_pt_regions_.contains(region)) continue;
      if (!dumpable(pa)) throw std::logic_error("a page-table page lies outside the dump_avail ranges");
      d.push_back(pa);
    }
    std::sort(d.begin(), d.end());
    d.erase(std::unique(d.begin(), d.end()), d.end());

    // 3. Bitmap coverage.
    if (version_ == 3 && have_ranges)
      r.ranges = ranges_;
    else if (!d.empty())
      r.ranges = {{0, d.back() + page}};

    // 4. Section sizes and offsets (spec §2.1).
    layout& l = r.lay;
    l.msgbuf_off = page;
    l.msgbuf_size = msgbuf_.size();
    l.dump_avail_off = l.msgbuf_off + detail_md::round_up(l.msgbuf_size, page);
    l.dump_avail_size = version_ == 3 ? detail_md::round_up(16 * (r.ranges.size() + 1), page) : 0;
    l.bitmap_off = l.dump_avail_off + l.dump_avail_size;
    std::uint64_t bits = 0;
    for (const auto& [s, e] : r.ranges) bits += detail_md::round_up(e, page) / page - s / page;
    l.bitmap_size = detail_md::round_up((bits + 7) / 8, page);
    l.pmap_off = l.bitmap_off + l.bitmap_size;

    std::uint64_t last = 0;  // highest KVA byte offset from kernbase to cover, plus one
    if (!small_.empty()) last = std::max(last, small_.rbegin()->first - kernbase_ + page);
    if (!large_.empty()) last = std::max(last, large_.rbegin()->first - kernbase_ + md::nbpdr);
    last = std::max(last, pmap_span_);
    if (version_ == 1) {
      const std::uint64_t ptes = last == 0 ? 1 : (last - 1) / page + 1;
      l.pmap_size = detail_md::round_up(ptes * 8, page);
    } else {
      l.pmap_size = (last == 0 ? 1 : (last - 1) / md::nbpdp + 1) * page;
    }
    l.sparse_off = l.pmap_off + l.pmap_size;
    l.sparse_pages = d.size();
    l.file_size = l.sparse_off + l.sparse_pages * page;

    cache_ = std::move(r);
    return *cache_;
  }

  static std::string boot_log(std::uint64_t ram_bytes, const std::string& version_str) {
    const std::uint64_t mib = ram_bytes >> 20;
    std::string s =
        "---<<BOOT>>---\n"
        "Copyright (c) 1992-2024 The FreeBSD Project.\n"
        "Copyright (c) 1979, 1980, 1983, 1986, 1988, 1989, 1991, 1992, 1993, 1994\n"
        "\tThe Regents of the University of California. All rights reserved.\n"
        "FreeBSD is a registered trademark of The FreeBSD Foundation.\n" +
        version_str +
        "FreeBSD clang version 18.1.5 (https://github.com/llvm/llvm-project.git llvmorg-18.1.5-0-g617a15a9eac9)\n"
        "VT(vga): text 80x25\n"
        "CPU: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz (2394.45-MHz K8-class CPU)\n"
        "  Origin=\"GenuineIntel\"  Id=0x406f1  Family=0x6  Model=0x4f  Stepping=1\n"
        "  Features=0x1f83fbff<FPU,VME,DE,PSE,TSC,MSR,PAE,MCE,CX8,APIC,SEP,MTRR,PGE,MCA,CMOV,PAT,PSE36,MMX,FXSR,SSE,SSE2,SS>\n"
        "  AMD Features=0x2c100800<SYSCALL,NX,Page1GB,RDTSCP,LM>\n"
        "Hypervisor: Origin = \"KVMKVMKVM\"\n"
        "real memory  = " + std::to_string(ram_bytes) + " (" + std::to_string(mib) + " MB)\n"
        "avail memory = " + std::to_string(ram_bytes - (ram_bytes >> 4)) + " (" +
        std::to_string(mib - (mib >> 4)) + " MB)\n"
        "Event timer \"LAPIC\" quality 600\n"
        "ACPI APIC Table: <BOCHS  BXPC    >\n"
        "FreeBSD/SMP: Multiprocessor System Detected: 2 CPUs\n"
        "FreeBSD/SMP: 1 package(s) x 2 core(s)\n"
        "random: registering fast source Intel Secure Key RNG\n"
        "ioapic0 <Version 1.1> irqs 0-23\n"
        "Launching APs: 1\n"
        "Timecounter \"TSC-low\" frequency 1197225000 Hz quality 1000\n"
        "virtio_pci0: <VirtIO PCI (legacy) Network adapter> port 0xc040-0xc05f irq 11 at device 3.0 on pci0\n"
        "vtnet0: Ethernet address: 52:54:00:12:34:56\n"
        "ada0 at ata0 bus 0 scbus0 target 0 lun 0\n"
        "ada0: 20480MB (41943040 512 byte sectors)\n"
        "Trying to mount root from ufs:/dev/ada0p2 [rw]...\n"
        "vtnet0: link state changed to UP\n"
        "\n"
        "\n"
        "Fatal trap 12: page fault while in kernel mode\n"
        "cpuid = 1; apic id = 01\n"
        "fault virtual address\t= 0x28\n"
        "fault code\t\t= supervisor read data, page not present\n"
        "instruction pointer\t= 0x20:0xffffffff80b4c5a7\n"
        "stack pointer\t        = 0x28:0xfffffe00a1b2c8d0\n"
        "frame pointer\t        = 0x28:0xfffffe00a1b2c910\n"
        "current process\t\t= 12 (swi4: clock (0))\n"
        "panic: page fault\n"
        "cpuid = 1\n"
        "time = 1717171717\n"
        "KDB: stack backtrace:\n"
        "#0 0xffffffff80b7b5dd at kdb_backtrace+0x5d\n"
        "#1 0xffffffff80b2e4b1 at vpanic+0x131\n"
        "#2 0xffffffff80b2e373 at panic+0x43\n"
        "#3 0xffffffff8100a2ab at trap_fatal+0x40b\n"
        "#4 0xffffffff8100a2f6 at trap_pfault+0x46\n"
        "#5 0xffffffff80fe0b58 at calltrap+0x8\n"
        "Uptime: 3h12m41s\n"
        "Dumping " + std::to_string(mib * 7 / 10) + " out of " + std::to_string(mib) + " MB:..1%..11%..21%..31%..41%..51%..61%..71%..81%..91%\n"
        "Dump complete\n";
    s.resize(0x18000, '\0');  // msg_size of a default amd64 kernel: 96 KiB
    return s;
  }

  std::uint32_t version_;
  std::uint64_t seed_;
  std::uint64_t kernbase_ = 0;
  std::uint64_t dmap_base_ = amd64_md::dmap_min_address;
  std::uint64_t dmap_end_ = amd64_md::dmap_max_address;
  range_list ranges_;
  std::string msgbuf_;
  std::optional<std::uint64_t> pt_base_;
  std::uint64_t pmap_span_ = 0;
  bool dump_mapped_ = true;

  std::map<std::uint64_t, leaf> small_;  // 4 KiB leaves by va
  std::map<std::uint64_t, leaf> large_;  // 2 MiB PS leaves by va (v2/v3 only)
  std::set<std::uint64_t> omitted_pt_regions_;
  std::map<std::uint64_t, page_entry> pages_;
  std::vector<kernel_symbol> symbols_;

  std::optional<std::string> magic_override_;
  std::optional<std::uint32_t> version_override_, msgbufsize_override_, bitmapsize_override_, pmapsize_override_,
      dumpavailsize_override_;

  mutable std::optional<resolved> cache_;
};

}  // namespace kvmxx_test

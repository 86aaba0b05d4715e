// core/kernel_memory.hpp: the handle over a minidump (symbols, reads, short reads,
// translation, walk, close, moves, static shape), null mode, the live backends on a
// regular file, the FreeBSD message buffer, and the sticky per-thread error message
// (specs/freebsd-libkvm.md §1.5, §1.7, §1.8, §1.9). Expected values are what the tests
// wrote with the fixture writers, or what the writers' oracles say.
#include <catch2/catch.hpp>
#include <amd64_minidump_writer.hpp>
#include <file_util.hpp>
#include <kernel_elf_writer.hpp>
#include <kvmxx/arch/amd64.hpp>
#include <kvmxx/backend/live.hpp>
#include <kvmxx/backend/minidump.hpp>
#include <kvmxx/backend/null.hpp>
#include <kvmxx/core/kernel_memory.hpp>
#include <kvmxx/fwd.hpp>
#include <kvmxx/os/freebsd/msgbuf.hpp>
#include <kvmxx/resolver/elf_symtab.hpp>
#include <kvmxx/resolver/none.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using kvmxx::errc;
using kvmxx::kvaddr;
using kvmxx::physaddr;
using kvmxx_test::amd64_minidump_builder;
using kvmxx_test::binding;
using kvmxx_test::elf_class;
using kvmxx_test::elf_endian;
using kvmxx_test::kernel_elf_builder;
using kvmxx_test::section_kind;
using handle = kvmxx::freebsd_amd64_minidump;

// Layout of the fixture (v3, kernbase 0xfffffe0000000000):
//   kb+0x1000 -> pa 0x10000  "hz", "mp_maxcpus", "physmem", "negative", "msgbufp"
//   kb+0x2000 -> pa 0x11000  struct msgbuf at +0x100; "edge" 16 bytes before the hole
//   kb+0x3000                not mapped (the hole)
//   kb+0x4000 -> pa 0x12000  mapped, but the page is left out of the dump
constexpr std::uint64_t kb = 0xfffffe0000000000ull;
constexpr std::uint64_t page_a = kb + 0x1000, page_b = kb + 0x2000, hole = kb + 0x3000, page_c = kb + 0x4000;
constexpr std::uint64_t pa_a = 0x10000, pa_b = 0x11000, pa_c = 0x12000;
constexpr std::uint64_t hz_va = page_a, maxcpus_va = page_a + 4, physmem_va = page_a + 8, negative_va = page_a + 0x10,
                        msgbufp_va = page_a + 0x18, msgbuf_va = page_b + 0x100, edge_va = page_b + 0xff0;
constexpr std::uint64_t btext_va = kb + 0x100000;
constexpr std::int32_t hz_value = 100, maxcpus_value = 256, negative_value = -7;
constexpr std::uint64_t physmem_value = 0x0123456789abcdefull;

// The msgbuf ring as the kernel left it: the oldest byte at wseq % size.
const std::string ring("ld!\n\0\0\0hello wor", 16);
constexpr std::uint32_t ring_wseq = 7 + 16 * 3;  // wraps three times: only wseq % size matters
constexpr std::string_view ring_in_order = "hello world!\n";
constexpr std::string_view ring_as_stored = "ld!\nhello wor";

struct fixture_options {
  bool msgbufp_symbol = true;
  std::uint32_t msg_magic = 0x063062;
  std::uint32_t msg_size = 16;  // the ring's size
  bool strip = false;
  std::int32_t hz = hz_value;
};

struct fixture {
  kvmxx_test::temp_dir dir;
  std::string kernel = dir.path("kernel");
  std::string core = dir.path("vmcore.0");
  amd64_minidump_builder md{3, 0x6b766d78};

  explicit fixture(const fixture_options& o = {}) {
    using mdb = amd64_minidump_builder;
    md.map_4k(page_a, pa_a).map_4k(page_b, pa_b).map_4k(page_c, pa_c).omit_page(pa_c);
    md.write_virt(hz_va, mdb::le(static_cast<std::uint32_t>(o.hz), 4));
    md.write_virt(maxcpus_va, mdb::le(maxcpus_value, 4));
    md.write_virt(physmem_va, mdb::le(physmem_value, 8));
    md.write_virt(negative_va, mdb::le(static_cast<std::uint32_t>(negative_value), 4));
    md.write_virt(msgbufp_va, mdb::le(msgbuf_va, 8));
    // struct msgbuf: msg_ptr, msg_magic, msg_size, msg_wseq, msg_rseq.
    md.write_virt(msgbuf_va, mdb::le(md.dmap_base() + 0x50000, 8));
    md.write_virt(msgbuf_va + 8, mdb::le(o.msg_magic, 4));
    md.write_virt(msgbuf_va + 12, mdb::le(o.msg_size, 4));
    md.write_virt(msgbuf_va + 16, mdb::le(ring_wseq, 4));
    md.write_virt(msgbuf_va + 20, mdb::le(3, 4));
    md.msgbuf(ring);
    md.build_to_file(core);

    kernel_elf_builder k(elf_class::elf64, elf_endian::little);
    k.symbol("hz", hz_va, section_kind::data)
        .symbol("mp_maxcpus", maxcpus_va, section_kind::data)
        .symbol("physmem", physmem_va, section_kind::data)
        .symbol("negative", negative_va, section_kind::data, binding::local)
        .symbol("edge", edge_va, section_kind::data)
        .symbol("btext", btext_va, section_kind::text, binding::global, kvmxx_test::elf_const::stt_func);
    if (o.msgbufp_symbol) k.symbol("msgbufp", msgbufp_va, section_kind::data);
    if (o.strip) k.strip();
    kvmxx_test::write_file(kernel, k.build());
  }

  handle open() const {
    auto r = handle::open_dump(kernel.c_str(), core.c_str());
    if (!r) FAIL("open_dump: " << kvmxx::describe(r.error()));
    return std::move(r.value());
  }
};

std::uint64_t addr(const kvmxx::result<kvaddr>& r) { return kvmxx::to_integer(r.value()); }

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

std::vector<std::byte> read_file_bytes(const std::string& path, std::uint64_t offset, std::size_t n) {
  std::ifstream f(path, std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  std::vector<std::byte> out(n);
  f.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n));
  out.resize(static_cast<std::size_t>(f.gcount()));
  return out;
}

std::span<const std::byte> as_bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

}  // namespace

// ---- symbols ----------------------------------------------------------------------------

TEST_CASE("open_dump resolves the kernel's symbols and reads the values written into the dump",
          "[core][kernel_memory]") {
  fixture fx;
  const handle km = fx.open();
  CHECK(addr(km.address_of("hz")) == hz_va);
  CHECK(addr(km.address_of("_hz")) == hz_va);
  CHECK(addr(km.address_of("_mp_maxcpus")) == maxcpus_va);
  const auto bt = km.lookup("btext");
  REQUIRE(bt.has_value());
  CHECK(kvmxx::to_integer(bt.value().value) == btext_va);
  CHECK(unsigned{bt.value().type} == 5u);  // N_TEXT|N_EXT
  CHECK(unsigned{km.lookup("physmem").value().type} == 7u);
  CHECK(unsigned{km.lookup("negative").value().type} == 6u);  // local: no N_EXT
  CHECK(km.lookup("_nosuchsym").error() == errc::symbol_not_found);

  CHECK(km.read_as<int>(km.address_of("hz").value()).value() == hz_value);
  CHECK(km.read_as<int>(km.address_of("mp_maxcpus").value()).value() == maxcpus_value);
  CHECK(km.read_as<std::uint64_t>(km.address_of("physmem").value()).value() == physmem_value);
  CHECK(km.read_as<int>(km.address_of("negative").value()).value() == negative_value);

  // Through the direct map as well: dmap_base + pa.
  CHECK(km.read_as<int>(kvaddr{fx.md.dmap_base() + pa_a}).value() == hz_value);

  const auto& kf = km.kernel_file();
  REQUIRE(kf.has_value());
  CHECK(kf->arch == kvmxx::machine::amd64);
  CHECK(unsigned{kf->elf_class} == 64u);
  CHECK(kf->e_machine == kvmxx_test::elf_const::em_x86_64);
  CHECK(kf->e_type == kvmxx_test::elf_const::et_exec);
}

TEST_CASE("the batch lookup follows kvm_nlist2: missing count, 0/0 for misses, stop at an empty name",
          "[core][kernel_memory]") {
  fixture fx;
  const handle km = fx.open();
  const kvaddr junk{0x5a5a5a5a};
  std::array<kvmxx::nlist_entry, 7> nl{{
      {"_hz", 0x55, junk},
      {"_nosuchsym", 0x55, junk},
      {"mp_maxcpus", 0, kvaddr{0}},
      {"_btext", 0, kvaddr{0}},
      {"also_missing", 0x55, junk},
      {"", 0x66, junk},        // the terminator
      {"_hz", 0x77, kvaddr{1}},  // never looked at
  }};
  const auto r = km.lookup(nl);
  REQUIRE(r.has_value());
  CHECK(r.value() == 2);
  CHECK(unsigned{nl[0].type} == 7u);
  CHECK(kvmxx::to_integer(nl[0].value) == hz_va);
  CHECK(nl[1].type == 0);
  CHECK(kvmxx::to_integer(nl[1].value) == 0);
  CHECK(unsigned{nl[2].type} == 7u);
  CHECK(kvmxx::to_integer(nl[2].value) == maxcpus_va);
  CHECK(unsigned{nl[3].type} == 5u);
  CHECK(kvmxx::to_integer(nl[3].value) == btext_va);
  CHECK(nl[4].type == 0);
  CHECK(kvmxx::to_integer(nl[4].value) == 0);
  CHECK(nl[5].type == 0x66);
  CHECK(nl[6].type == 0x77);
  CHECK(kvmxx::to_integer(nl[6].value) == 1);

  std::array<kvmxx::nlist_entry, 2> all_found{{{"_hz"}, {"physmem"}}};
  CHECK(km.lookup(all_found).value() == 0);
  std::array<kvmxx::nlist_entry, 1> empty_first{{{""}}};
  CHECK(km.lookup(empty_first).value() == 0);
}

TEST_CASE("the batch lookup fails with no_symbol_table when there is nothing to look names up in",
          "[core][kernel_memory]") {
  fixture fx({.strip = true});
  const handle stripped = fx.open();
  std::array<kvmxx::nlist_entry, 2> nl{{{"_hz"}, {"_mp_maxcpus"}}};
  const auto r = stripped.lookup(nl);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::no_symbol_table);
  CHECK(stripped.address_of("hz").error() == errc::no_symbol_table);
  CHECK(stripped.read_as<int>(kvaddr{hz_va}).value() == hz_value);  // memory still reads

  auto nokernel = handle::open_dump(nullptr, fx.core.c_str());
  REQUIRE(nokernel.has_value());
  CHECK(nokernel.value().lookup(nl).error() == errc::no_symbol_table);
}

// ---- reads ------------------------------------------------------------------------------

TEST_CASE("a read of 0 bytes succeeds with 0 even at an unmapped address", "[core][kernel_memory]") {
  fixture fx;
  const handle km = fx.open();
  for (const std::uint64_t va : {hole, std::uint64_t{0}, page_c, hz_va}) {
    const auto r = km.read(kvaddr{va}, std::span<std::byte>{});
    REQUIRE(r.has_value());
    CHECK(r.value() == 0);
    CHECK(km.read_exact(kvaddr{va}, std::span<std::byte>{}).has_value());
  }
}

TEST_CASE("a read crossing into an unmapped page returns the short count and says why", "[core][kernel_memory]") {
  fixture fx;
  REQUIRE_FALSE(fx.md.translate(hole).has_value());
  const handle km = fx.open();
  std::array<std::byte, 32> buf{};
  const auto r = km.read(kvaddr{edge_va}, buf);
  REQUIRE(r.has_value());
  CHECK(r.value() == hole - edge_va);
  const auto want = fx.md.read_virt(edge_va, hole - edge_va);
  REQUIRE(want.has_value());
  CHECK(std::equal(want->begin(), want->end(), buf.begin()));
  CHECK(contains(kvmxx::last_error_message(), "fffffe0000003000"));

  const auto exact = km.read_exact(kvaddr{edge_va}, buf);
  REQUIRE_FALSE(exact.has_value());
  CHECK(exact.error() == errc::unmapped_address);

  // A page-crossing object is whole or nothing.
  const auto straddle = km.read_as<std::uint64_t>(kvaddr{hole - 4});
  REQUIRE_FALSE(straddle.has_value());
  CHECK(straddle.error() == errc::unmapped_address);

  // Crossing between two mapped pages is seamless.
  std::array<std::byte, 16> across{};
  CHECK(km.read(kvaddr{page_b - 8}, across).value() == across.size());
  const auto want2 = fx.md.read_virt(page_b - 8, across.size());
  REQUIRE(want2.has_value());
  CHECK(std::equal(want2->begin(), want2->end(), across.begin()));
}

TEST_CASE("read_as at an unmapped or undumped address fails and names the address", "[core][kernel_memory]") {
  fixture fx;
  const handle km = fx.open();
  const auto r = km.read_as<int>(kvaddr{hole});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::unmapped_address);
  CHECK(contains(kvmxx::describe(r.error()), "fffffe0000003000"));

  const auto zero = km.read_as<int>(kvaddr{0});
  REQUIRE_FALSE(zero.has_value());
  CHECK(zero.error() == errc::unmapped_address);

  // Mapped, but the page is not in the dump.
  REQUIRE(fx.md.translate(page_c).has_value());
  REQUIRE_FALSE(fx.md.read_phys(pa_c, 4).has_value());
  const auto c = km.read_as<int>(kvaddr{page_c});
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error() == errc::page_not_dumped);
  CHECK(contains(kvmxx::describe(c.error()), "0x12000"));
  std::array<std::byte, 4> four{};
  CHECK(km.read(kvaddr{page_c}, four).error() == errc::page_not_dumped);
}

TEST_CASE("write on a crash dump fails with read_only", "[core][kernel_memory]") {
  fixture fx;
  const handle km = fx.open();
  const std::array<std::byte, 4> data{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
  const auto w = km.write(kvaddr{hz_va}, data);
  REQUIRE_FALSE(w.has_value());
  CHECK(w.error() == errc::read_only);
  CHECK(contains(kvmxx::describe(w.error()), fx.core));
  CHECK(km.write(kvaddr{0}, std::span<const std::byte>{}).error() == errc::read_only);  // kvm_write(kd, 0, NULL, 0)
  CHECK(km.read_as<int>(kvaddr{hz_va}).value() == hz_value);
}

TEST_CASE("translate gives the physical address and the bytes left in the page", "[core][kernel_memory]") {
  fixture fx;
  const handle km = fx.open();
  const auto t = km.translate(kvaddr{page_a + 0x234});
  REQUIRE(t.has_value());
  CHECK(kvmxx::to_integer(t.value().pa) == fx.md.translate(page_a + 0x234).value());
  CHECK(kvmxx::to_integer(t.value().pa) == pa_a + 0x234);
  CHECK(t.value().contiguous == 0x1000 - 0x234);  // minidumps: PAGE_SIZE - (va & PAGE_MASK), §1.7

  const auto d = km.translate(kvaddr{fx.md.dmap_base() + pa_b + 8});
  REQUIRE(d.has_value());
  CHECK(kvmxx::to_integer(d.value().pa) == pa_b + 8);
  CHECK(d.value().contiguous >= 0x1000 - 8);

  const auto h = km.translate(kvaddr{hole});
  REQUIRE_FALSE(h.has_value());
  CHECK(h.error() == errc::unmapped_address);
  CHECK(kvmxx::to_integer(km.translate(kvaddr{page_c}).value().pa) == pa_c);  // translates; not dumped
}

TEST_CASE("walk_pages reports the kernel mappings the dump was built with and stops when asked",
          "[core][kernel_memory]") {
  fixture fx;
  const handle km = fx.open();
  using entry = std::tuple<std::uint64_t, std::uint64_t, std::size_t, bool, bool>;
  std::vector<entry> seen;
  const auto r = km.walk_pages([&](const kvmxx::page_info& p) {
    if (kvmxx::to_integer(p.kmap_va) != 0)
      seen.emplace_back(kvmxx::to_integer(p.kmap_va), kvmxx::to_integer(p.pa), p.length,
                        has(p.prot, kvmxx::protection::write), has(p.prot, kvmxx::protection::execute));
    return true;
  });
  REQUIRE(r.has_value());
  CHECK(r.value());
  std::vector<entry> want;
  for (const auto& m : fx.md.kernel_mappings())
    want.emplace_back(m.va, m.pa, static_cast<std::size_t>(m.size), m.writable, m.executable);
  std::sort(seen.begin(), seen.end());
  CHECK(seen == want);

  int calls = 0;
  const auto stopped = km.walk_pages([&](const kvmxx::page_info&) {
    ++calls;
    return false;
  });
  REQUIRE(stopped.has_value());
  CHECK_FALSE(stopped.value());
  CHECK(calls == 1);
}

// ---- about the target -------------------------------------------------------------------

TEST_CASE("native, kerndisp, info and target_machine describe an amd64 minidump", "[core][kernel_memory]") {
  fixture fx;
  const handle km = fx.open();
  if constexpr (kvmxx::host_machine == kvmxx::machine::amd64)
    CHECK(km.native());
  else
    CHECK_FALSE(km.native());
  CHECK(km.kerndisp() == 0);
  CHECK(km.target_machine() == kvmxx::machine::amd64);
  CHECK(km.os() == kvmxx::os_kind::freebsd);

  const auto i = km.info();
  CHECK(contains(i.format, "amd64"));
  CHECK(contains(i.format, "minidump"));
  CHECK(i.arch == kvmxx::machine::amd64);
  CHECK(i.os == kvmxx::os_kind::freebsd);
  CHECK(i.format_version == 3);
  CHECK(i.page_size == 4096);
  CHECK(i.dumped_pages == fx.md.dumped_pages().size());
  CHECK(i.message_buffer_size == ring.size());
  CHECK(i.file_size == fx.md.file_layout().file_size);
  const auto ranges = fx.md.bitmap_ranges();
  REQUIRE(i.ranges.size() == ranges.size());
  for (std::size_t k = 0; k < ranges.size(); ++k) {
    CHECK(kvmxx::to_integer(i.ranges[k].start) == ranges[k].first);
    CHECK(kvmxx::to_integer(i.ranges[k].end) == ranges[k].second);
  }
}

// ---- close and moves --------------------------------------------------------------------

TEST_CASE("close succeeds, closing twice is harmless, and later calls fail with no_memory_source",
          "[core][kernel_memory]") {
  fixture fx;
  handle km = fx.open();
  CHECK(km.close().has_value());
  CHECK(km.close().has_value());
  std::array<std::byte, 4> buf{};
  const auto r = km.read(kvaddr{hz_va}, buf);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::no_memory_source);
  CHECK_FALSE(kvmxx::last_error_message().empty());
  CHECK(km.read_as<int>(kvaddr{hz_va}).error() == errc::no_memory_source);
  CHECK(km.read_exact(kvaddr{hz_va}, buf).error() == errc::no_memory_source);
  CHECK(km.read_physical(physaddr{pa_a}, buf).error() == errc::no_memory_source);
  CHECK(km.translate(kvaddr{hz_va}).error() == errc::no_memory_source);
  CHECK(km.write(kvaddr{hz_va}, buf).error() == errc::no_memory_source);
  CHECK(km.walk_pages([](const kvmxx::page_info&) { return true; }).error() == errc::no_memory_source);
}

// backend::minidump::close() only drops the mapping (backend/minidump.hpp, close()); the
// header it keeps makes message_buffer() return msgbufsize bytes at (nullptr + 4096), and
// freebsd::message_buffer_text(km) on a closed handle then dereferences that address and
// crashes. Checked without dereferencing it.
TEST_CASE("after close the backend's message buffer is empty, so message_buffer_text cannot crash",
          "[core][kernel_memory]") {
  fixture fx;
  handle km = fx.open();
  REQUIRE(km.source().message_buffer().size() == ring.size());
  REQUIRE(km.close().has_value());
  CHECK(km.source().message_buffer().empty());
}

TEST_CASE("a moved handle keeps working and its moved-from shell closes harmlessly", "[core][kernel_memory]") {
  fixture first;
  fixture second({.hz = 4242});
  handle a = first.open();
  handle b(std::move(a));
  CHECK(b.read_as<int>(b.address_of("hz").value()).value() == hz_value);
  CHECK(a.close().has_value());  // the moved-from shell

  handle c = second.open();
  CHECK(c.read_as<int>(kvaddr{hz_va}).value() == 4242);
  c = std::move(b);
  CHECK(c.read_as<int>(c.address_of("_hz").value()).value() == hz_value);
  CHECK(c.read_as<std::uint64_t>(kvaddr{physmem_va}).value() == physmem_value);
  CHECK(b.close().has_value());
  CHECK(c.close().has_value());
}

TEST_CASE("the handle is move-only, nothrow-movable, and empty policies cost no space", "[core][kernel_memory]") {
  using km_none = kvmxx::kernel_memory<kvmxx::backend::minidump, kvmxx::arch::amd64, kvmxx::resolver::none>;
  using null_none = kvmxx::kernel_memory<kvmxx::backend::null, kvmxx::arch::amd64, kvmxx::resolver::none>;
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<handle>);
  STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<handle>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<handle>);
  STATIC_REQUIRE(std::is_nothrow_move_assignable_v<handle>);
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<km_none>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<km_none>);
  STATIC_REQUIRE(std::is_empty_v<kvmxx::arch::amd64>);
  STATIC_REQUIRE(std::is_empty_v<kvmxx::resolver::none>);
  // The same members without the two empty policies: [[no_unique_address]] makes them free.
  struct minidump_layout {
    kvmxx::backend::minidump backend;
    std::optional<kvmxx::kernel_file_info> kernel;
    bool closed;
    std::uint64_t cache_generation;  // tags the handle's per-thread translation cache entries
  };
  struct null_layout {
    kvmxx::backend::null backend;
    std::optional<kvmxx::kernel_file_info> kernel;
    bool closed;
    std::uint64_t cache_generation;  // tags the handle's per-thread translation cache entries
  };
  STATIC_REQUIRE(sizeof(km_none) == sizeof(minidump_layout));
  STATIC_REQUIRE(sizeof(null_none) == sizeof(null_layout));
}

// ---- null mode --------------------------------------------------------------------------

TEST_CASE("open_null with a kernel resolves symbols but every read fails with no_memory_source",
          "[core][kernel_memory]") {
  using null_km = kvmxx::kernel_memory<kvmxx::backend::null, kvmxx::arch::amd64, kvmxx::resolver::elf_symtab>;
  fixture fx;
  auto r = null_km::open_null(fx.kernel.c_str());
  REQUIRE(r.has_value());
  const auto& km = r.value();
  CHECK(addr(km.address_of("_hz")) == hz_va);
  CHECK(addr(km.address_of("mp_maxcpus")) == maxcpus_va);
  // read_as is not used on null handles here: with GCC 12 -O2 its uninitialised staging
  // array in kernel_memory::read_as trips -Wmaybe-uninitialized (reported as a library bug).
  std::array<std::byte, 8> buf{};
  const auto v = km.read_exact(kvaddr{hz_va}, buf);
  REQUIRE_FALSE(v.has_value());
  CHECK(v.error() == errc::no_memory_source);
  CHECK(km.read(kvaddr{hz_va}, buf).error() == errc::no_memory_source);
  CHECK(km.read_physical(physaddr{pa_a}, buf).error() == errc::no_memory_source);
  CHECK(km.read(kvaddr{hz_va}, std::span<std::byte>{}).value() == 0);
  CHECK(km.write(kvaddr{hz_va}, buf).error() == errc::read_only);
  CHECK(km.target_machine() == kvmxx::machine::amd64);
  REQUIRE(km.kernel_file().has_value());
  CHECK(km.kernel_file()->arch == kvmxx::machine::amd64);
}

TEST_CASE("open_null without a kernel has neither symbols nor memory", "[core][kernel_memory]") {
  using null_km = kvmxx::kernel_memory<kvmxx::backend::null, kvmxx::arch::amd64, kvmxx::resolver::elf_symtab>;
  auto r = null_km::open_null(nullptr);
  REQUIRE(r.has_value());
  CHECK(r.value().address_of("_hz").error() == errc::no_symbol_table);
  std::array<std::byte, 4> buf{};
  CHECK(r.value().read(kvaddr{hz_va}, buf).error() == errc::no_memory_source);
  CHECK(r.value().target_machine() == kvmxx::machine::amd64);
  CHECK_FALSE(r.value().kernel_file().has_value());
  CHECK(r.value().close().has_value());

  auto none = kvmxx::kernel_memory<kvmxx::backend::null, kvmxx::arch::amd64, kvmxx::resolver::none>::open_null();
  REQUIRE(none.has_value());
  CHECK(none.value().lookup("hz").error() == errc::no_symbol_table);
}

TEST_CASE("open_null refuses a kernel of another architecture", "[core][kernel_memory]") {
  using null_km = kvmxx::kernel_memory<kvmxx::backend::null, kvmxx::arch::amd64, kvmxx::resolver::elf_symtab>;
  kvmxx_test::temp_dir dir;
  const std::string path = dir.path("kernel.i386");
  kernel_elf_builder k(elf_class::elf32, elf_endian::little, kvmxx_test::elf_const::em_386);
  k.symbol("hz", 0xc0500000ull, section_kind::data);
  kvmxx_test::write_file(path, k.build());
  const auto r = null_km::open_null(path.c_str());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::arch_mismatch);
  CHECK(contains(kvmxx::describe(r.error()), "i386"));
}

// ---- live backends on a regular file ----------------------------------------------------

namespace {
// A physical image with a four-level amd64 page table: CR3 = 0x1000, and the kernel page
// live_va -> 0x5000 (PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000).
constexpr std::uint64_t live_va = 0xffffffff80001000ull, live_pa = 0x5000, live_image_size = 0x6000;
constexpr std::uint64_t pte_p_rw = 0x3;

std::vector<std::byte> live_physical_image() {
  std::vector<std::byte> img(live_image_size);
  const auto put64 = [&img](std::uint64_t at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) img[at + static_cast<std::uint64_t>(i)] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
  };
  const auto index = [](unsigned level) { return (live_va >> (12 + 9 * level)) & 511; };
  put64(0x1000 + index(3) * 8, 0x2000 | pte_p_rw);
  put64(0x2000 + index(2) * 8, 0x3000 | pte_p_rw);
  put64(0x3000 + index(1) * 8, 0x4000 | pte_p_rw);
  put64(0x4000 + index(0) * 8, live_pa | pte_p_rw);
  for (std::uint64_t k = 0; k < 0x1000; ++k) img[live_pa + k] = static_cast<std::byte>((k * 7 + 3) & 0xff);
  return img;
}
}  // namespace

TEST_CASE("open_live over live_physical reads and writes a regular file through the page tables",
          "[core][kernel_memory]") {
  using live_km =
      kvmxx::kernel_memory<kvmxx::backend::live_physical, kvmxx::arch::amd64, kvmxx::resolver::elf_symtab>;
  kvmxx_test::temp_dir dir;
  const std::string device = dir.path("mem"), kernel = dir.path("kernel");
  const auto image = live_physical_image();
  kvmxx_test::write_file(device, image);
  kernel_elf_builder k(elf_class::elf64, elf_endian::little);
  k.symbol("counter", live_va + 0x10, section_kind::data);
  kvmxx_test::write_file(kernel, k.build());

  kvmxx::live_options opts{.device = device.c_str(),
                           .mode = kvmxx::access::read_write,
                           .arch = kvmxx::machine::amd64,
                           .page_table_root = physaddr{0x1000}};
  auto r = live_km::open_live(kernel.c_str(), opts);
  REQUIRE(r.has_value());
  auto& km = r.value();

  std::array<std::byte, 16> phys{};
  CHECK(km.read_physical(physaddr{live_pa + 8}, phys).value() == phys.size());
  CHECK(std::equal(phys.begin(), phys.end(), image.begin() + live_pa + 8));

  std::array<std::byte, 32> virt{};
  CHECK(km.read(kvaddr{live_va}, virt).value() == virt.size());
  CHECK(std::equal(virt.begin(), virt.end(), image.begin() + live_pa));

  const auto counter = km.address_of("counter");
  REQUIRE(counter.has_value());
  std::uint32_t want = 0;
  std::memcpy(&want, image.data() + live_pa + 0x10, 4);
  CHECK(km.read_as<std::uint32_t>(counter.value()).value() == want);

  const auto t = km.translate(kvaddr{live_va + 0x123});
  REQUIRE(t.has_value());
  CHECK(kvmxx::to_integer(t.value().pa) == live_pa + 0x123);
  CHECK(t.value().contiguous == 0x1000 - 0x123);

  const std::string_view text = "kvmxx";
  const auto w = km.write(kvaddr{live_va + 0x20}, as_bytes(text));
  REQUIRE(w.has_value());
  CHECK(w.value() == text.size());
  const auto on_disk = read_file_bytes(device, live_pa + 0x20, text.size());
  CHECK(std::equal(on_disk.begin(), on_disk.end(), as_bytes(text).begin(), as_bytes(text).end()));
  std::array<std::byte, 5> back{};
  CHECK(km.read(kvaddr{live_va + 0x20}, back).value() == back.size());
  CHECK(std::equal(back.begin(), back.end(), as_bytes(text).begin()));

  const auto unmapped = km.write(kvaddr{live_va + 0x1000}, as_bytes(text));  // PT entry 2 is empty
  REQUIRE_FALSE(unmapped.has_value());
  CHECK(unmapped.error() == errc::unmapped_address);
  CHECK(km.close().has_value());
}

TEST_CASE("a read-only live_physical handle refuses writes and leaves the file alone", "[core][kernel_memory]") {
  using live_km = kvmxx::kernel_memory<kvmxx::backend::live_physical, kvmxx::arch::amd64, kvmxx::resolver::none>;
  kvmxx_test::temp_dir dir;
  const std::string device = dir.path("mem");
  const auto image = live_physical_image();
  kvmxx_test::write_file(device, image);
  kvmxx::live_options opts{.device = device.c_str(),
                           .mode = kvmxx::access::read_only,
                           .arch = kvmxx::machine::amd64,
                           .page_table_root = physaddr{0x1000}};
  auto r = live_km::open_live(nullptr, opts);
  REQUIRE(r.has_value());
  const std::array<std::byte, 4> data{};
  const auto w = r.value().write(kvaddr{live_va}, data);
  REQUIRE_FALSE(w.has_value());
  CHECK(w.error() == errc::read_only);
  CHECK(contains(kvmxx::describe(w.error()), device));
  const auto on_disk = read_file_bytes(device, live_pa, 4);
  CHECK(std::equal(on_disk.begin(), on_disk.end(), image.begin() + live_pa));
  CHECK(r.value().read_as<std::uint32_t>(kvaddr{live_va}).has_value());
}

TEST_CASE("open_live over live_virtual reads and writes a regular file at the virtual address",
          "[core][kernel_memory]") {
  using kmem = kvmxx::kernel_memory<kvmxx::backend::live_virtual, kvmxx::arch::amd64, kvmxx::resolver::none>;
  kvmxx_test::temp_dir dir;
  const std::string device = dir.path("kmem");
  std::vector<std::byte> image(0x2000);
  for (std::size_t k = 0; k < image.size(); ++k) image[k] = static_cast<std::byte>((k * 13 + 1) & 0xff);
  kvmxx_test::write_file(device, image);

  auto rw = kmem::open_live(nullptr, {.device = device.c_str(), .mode = kvmxx::access::read_write,
                                      .arch = kvmxx::machine::amd64});
  REQUIRE(rw.has_value());
  const auto& km = rw.value();
  std::array<std::byte, 16> buf{};
  CHECK(km.read(kvaddr{0x100}, buf).value() == buf.size());
  CHECK(std::equal(buf.begin(), buf.end(), image.begin() + 0x100));

  const std::string_view text = "abc";
  CHECK(km.write(kvaddr{0x200}, as_bytes(text)).value() == text.size());
  const auto on_disk = read_file_bytes(device, 0x200, 3);
  CHECK(std::equal(on_disk.begin(), on_disk.end(), as_bytes(text).begin(), as_bytes(text).end()));

  // The end of the "device": a short count, then an error.
  CHECK(km.read(kvaddr{0x1ff8}, buf).value() == 8);
  CHECK_FALSE(kvmxx::last_error_message().empty());
  CHECK(km.read(kvaddr{0x3000}, buf).has_value() == false);
  CHECK(km.translate(kvaddr{0x100}).error() == errc::not_supported);

  auto ro = kmem::open_live(nullptr, {.device = device.c_str(), .arch = kvmxx::machine::amd64});
  REQUIRE(ro.has_value());
  CHECK(ro.value().write(kvaddr{0x200}, as_bytes(text)).error() == errc::read_only);
  CHECK(ro.value().read_as<std::uint8_t>(kvaddr{0x200}).value() == static_cast<std::uint8_t>('a'));
}

// ---- the message buffer -----------------------------------------------------------------

TEST_CASE("message_buffer_text starts the ring at msg_wseq when msgbufp describes the section",
          "[core][kernel_memory][msgbuf]") {
  fixture fx;
  const handle km = fx.open();
  const auto h = kvmxx::freebsd::read_msgbuf_header(km);
  REQUIRE(h.has_value());
  CHECK(h.value().msg_size == ring.size());
  CHECK(h.value().msg_wseq == ring_wseq);
  CHECK(h.value().msg_rseq == 3);
  CHECK(h.value().msg_ptr == fx.md.dmap_base() + 0x50000);
  const auto t = kvmxx::freebsd::message_buffer_text(km);
  REQUIRE(t.has_value());
  CHECK(t.value() == ring_in_order);
}

TEST_CASE("message_buffer_text without msgbufp, with a wrong magic or a wrong size prints the section as stored",
          "[core][kernel_memory][msgbuf]") {
  fixture_options o;
  SECTION("no msgbufp symbol") { o.msgbufp_symbol = false; }
  SECTION("wrong magic") { o.msg_magic = 0x063063; }
  SECTION("msg_size differs from the section") { o.msg_size = 32; }
  SECTION("stripped kernel") { o.strip = true; }
  fixture fx(o);
  const handle km = fx.open();
  const auto t = kvmxx::freebsd::message_buffer_text(km);
  REQUIRE(t.has_value());
  CHECK(t.value() == ring_as_stored);

  auto nokernel = handle::open_dump(nullptr, fx.core.c_str());
  REQUIRE(nokernel.has_value());
  CHECK(kvmxx::freebsd::message_buffer_text(nokernel.value()).value() == ring_as_stored);
}

TEST_CASE("read_msgbuf_header reports a wrong magic as corrupt", "[core][kernel_memory][msgbuf]") {
  fixture fx({.msg_magic = 0xdeadbeef});
  const handle km = fx.open();
  const auto h = kvmxx::freebsd::read_msgbuf_header(km);
  REQUIRE_FALSE(h.has_value());
  CHECK(h.error() == errc::corrupt);
  CHECK(contains(kvmxx::describe(h.error()), "deadbeef"));
}

// ---- the per-thread error message -------------------------------------------------------

TEST_CASE("the thread's error message names what failed and a later success does not clear it",
          "[core][kernel_memory]") {
  fixture fx;
  const handle km = fx.open();
  const auto bad = km.read_as<int>(kvaddr{hole});
  REQUIRE_FALSE(bad.has_value());
  const std::string msg = kvmxx::describe(bad.error());
  CHECK(contains(msg, "fffffe0000003000"));
  CHECK(kvmxx::last_error_message() == msg);

  CHECK(km.read_as<int>(kvaddr{hz_va}).value() == hz_value);
  CHECK(addr(km.address_of("hz")) == hz_va);
  CHECK(kvmxx::last_error_message() == msg);
  CHECK(kvmxx::describe(bad.error()) == msg);

  const std::string missing = fx.dir.path("no-such-core");
  const auto o = handle::open_dump(fx.kernel.c_str(), missing.c_str());
  REQUIRE_FALSE(o.has_value());
  CHECK(contains(kvmxx::describe(o.error()), missing));
  CHECK(fx.open().read_as<int>(kvaddr{hz_va}).has_value());
  CHECK(contains(kvmxx::last_error_message(), missing));
}

// The per-thread translation cache (detail/tlb.hpp) keeps 2 MiB blocks (with or without
// their bytes), the page table of 4 KiB-mapped blocks, and pages. Whatever it holds, every
// read must equal the writer's model: first reads (misses), repeated reads (hits), reads
// crossing pages and blocks, and reads alternating between two dumps whose same addresses
// hold different bytes (a cached entry of one handle must never serve the other).
TEST_CASE("cached reads equal the model on 2 MiB, 4 KiB and sparse direct-map blocks, across handles",
          "[core][kernel_memory][cache]") {
  kvmxx_test::temp_dir dir;
  struct dump {
    amd64_minidump_builder model;
    std::string core;
  };
  std::vector<dump> dumps;
  for (std::uint64_t seed : {11u, 12u}) {
    dumps.push_back({amd64_minidump_builder::realistic(3, seed, 24), dir.path("vmcore." + std::to_string(seed))});
    dumps.back().model.build_to_file(dumps.back().core);
  }
  std::vector<handle> handles;
  for (const auto& d : dumps) {
    auto r = handle::open_dump(nullptr, d.core.c_str());
    REQUIRE(r.has_value());
    handles.push_back(std::move(r.value()));
  }
  // Addresses: every kernel mapping (2 MiB text, 4 KiB data and kmem) and the direct map.
  const auto& m0 = dumps[0].model;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> regions;  // [va, size)
  for (const auto& m : m0.kernel_mappings()) regions.push_back({m.va, m.size});
  regions.push_back({m0.dmap_base(), std::uint64_t{24} << 20});
  std::mt19937_64 rng(7);
  std::size_t full = 0, partial = 0, failed = 0;
  for (int round = 0; round < 3; ++round) {
    std::mt19937_64 pick(99);  // the same addresses every round: later rounds hit the cache
    for (int i = 0; i < 6000; ++i) {
      const auto& [base, size] = regions[pick() % regions.size()];
      const std::uint64_t va = base + pick() % size;
      const std::size_t len = (i % 7 == 0) ? 1 + pick() % 9000 : 8;  // some cross pages and blocks
      const std::size_t h = static_cast<std::size_t>(rng() % 2);
      CAPTURE(round, i, h, va, len);
      std::vector<std::byte> got(len);
      const auto r = handles[h].read(kvaddr{va}, got);
      const auto want = dumps[h].model.read_virt(va, len);
      if (want) {
        REQUIRE(r.has_value());
        REQUIRE(r.value() == len);
        REQUIRE(std::memcmp(got.data(), want->data(), len) == 0);
        ++full;
        continue;
      }
      if (!r) {
        REQUIRE_FALSE(dumps[h].model.read_virt(va, 1).has_value());
        ++failed;
        continue;
      }
      // A short read: the prefix is right and the next byte is not readable.
      const std::size_t n = r.value();
      REQUIRE(n < len);
      const auto prefix = dumps[h].model.read_virt(va, n);
      REQUIRE(prefix.has_value());
      REQUIRE(std::memcmp(got.data(), prefix->data(), n) == 0);
      REQUIRE_FALSE(dumps[h].model.read_virt(va + n, 1).has_value());
      ++partial;
    }
  }
  INFO("full " << full << ", partial " << partial << ", failed " << failed);
  CHECK(full > 10000);  // the realistic dumps leave 30% of RAM out: every outcome occurs
  CHECK(partial > 0);
  CHECK(failed > 0);
}

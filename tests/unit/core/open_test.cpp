// core/open.hpp and core/any_kernel_memory.hpp: probing a core, kvmxx::open's dispatch to
// the typed handle, open_dump_handle, open_any, and the order and wording of open errors
// (specs/freebsd-libkvm.md §1.4, §1.6; STYLE.md §15.12 — probes must be exclusive).
#include <catch2/catch.hpp>
#include <amd64_minidump_writer.hpp>
#include <file_util.hpp>
#include <kernel_elf_writer.hpp>
#include <kvmxx/core/any_kernel_memory.hpp>
#include <kvmxx/core/open.hpp>
#include <kvmxx/resolver/none.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

namespace {

using kvmxx::errc;
using kvmxx::kvaddr;
using kvmxx_test::amd64_minidump_builder;
using kvmxx_test::elf_class;
using kvmxx_test::elf_endian;
using kvmxx_test::kernel_elf_builder;
using kvmxx_test::section_kind;

constexpr std::uint32_t hz_value = 1000;
constexpr std::uint64_t physmem_value = 0x0123456789abcdefull;

// A minidump with two mapped kernel pages holding "hz" and "physmem", a hole after them,
// and a kernel ELF naming both symbols.
struct fixture {
  kvmxx_test::temp_dir dir;
  std::string kernel = dir.path("kernel");
  std::string core = dir.path("vmcore.0");
  amd64_minidump_builder md;
  std::uint64_t kb, hz_va, physmem_va, hole_va;

  explicit fixture(std::uint32_t version = 3) : md(version, 0x5eed + version) {
    kb = md.kernbase();
    hz_va = kb + 0x1000;
    physmem_va = kb + 0x1ffc;  // straddles the two mapped pages
    hole_va = kb + 0x3000;
    md.map_4k(kb + 0x1000, 0x10000).map_4k(kb + 0x2000, 0x11000);
    md.write_virt(hz_va, amd64_minidump_builder::le(hz_value, 4));
    md.write_virt(physmem_va, amd64_minidump_builder::le(physmem_value, 8));
    md.msgbuf("boot log\n");
    md.build_to_file(core);
    kernel_elf_builder k(elf_class::elf64, elf_endian::little);
    k.symbol("hz", hz_va, section_kind::data).symbol("physmem", physmem_va, section_kind::data);
    kvmxx_test::write_file(kernel, k.build());
  }
};

std::vector<std::byte> bytes_of(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

// ---- kvmxx::open ------------------------------------------------------------------------

TEST_CASE("kvmxx::open hands f the typed minidump handle and returns f's result type", "[core][open]") {
  fixture fx;
  const char* k = fx.kernel.c_str();
  const char* c = fx.core.c_str();

  bool typed = false;
  auto r_void = kvmxx::open(k, c, [&](auto& km) {
    typed = std::is_same_v<std::remove_reference_t<decltype(km)>, kvmxx::freebsd_amd64_minidump>;
  });
  STATIC_REQUIRE(std::is_same_v<decltype(r_void), kvmxx::result<void>>);
  REQUIRE(r_void.has_value());
  CHECK(typed);

  auto r_int = kvmxx::open(k, c, [](auto& km) -> int {
    const auto hz = km.address_of("_hz");
    if (!hz) return -1;
    const auto v = km.template read_as<int>(hz.value());
    return v ? v.value() : -2;
  });
  STATIC_REQUIRE(std::is_same_v<decltype(r_int), kvmxx::result<int>>);
  REQUIRE(r_int.has_value());
  CHECK(r_int.value() == static_cast<int>(hz_value));

  auto r_res = kvmxx::open(k, c, [](auto& km) -> kvmxx::result<std::uint64_t> {
    KVMXX_TRY(where, km.address_of("physmem"));
    return km.template read_as<std::uint64_t>(where);
  });
  STATIC_REQUIRE(std::is_same_v<decltype(r_res), kvmxx::result<std::uint64_t>>);
  REQUIRE(r_res.has_value());
  CHECK(r_res.value() == physmem_value);

  // f's own error passes through unchanged.
  const std::uint64_t hole = fx.hole_va;
  auto r_err = kvmxx::open(k, c, [hole](auto& km) -> kvmxx::result<int> {
    return km.template read_as<int>(kvaddr{hole});
  });
  REQUIRE_FALSE(r_err.has_value());
  CHECK(r_err.error() == errc::unmapped_address);
}

TEST_CASE("kvmxx::open reads amd64 minidumps of versions 1, 2 and 3", "[core][open]") {
  for (std::uint32_t version : {1u, 2u, 3u}) {
    INFO("minidump version " << version);
    fixture fx(version);
    auto r = kvmxx::open(fx.kernel.c_str(), fx.core.c_str(), [&](auto& km) -> kvmxx::result<std::uint64_t> {
      if (km.info().format_version != version) return kvmxx::errc::corrupt;
      KVMXX_TRY(where, km.address_of("_physmem"));
      return km.template read_as<std::uint64_t>(where);
    });
    REQUIRE(r.has_value());
    CHECK(r.value() == physmem_value);
  }
}

TEST_CASE("a nullptr kernel opens the dump without symbols", "[core][open]") {
  fixture fx;
  struct seen {
    std::error_code lookup;
    int hz = 0;
    bool has_kernel_file = true;
  } s;
  const std::uint64_t hz_va = fx.hz_va;
  auto r = kvmxx::open(nullptr, fx.core.c_str(), [&](auto& km) {
    const auto a = km.address_of("hz");
    s.lookup = a ? std::error_code{} : a.error();
    s.hz = km.template read_as<int>(kvaddr{hz_va}).value();
    s.has_kernel_file = km.kernel_file().has_value();
  });
  REQUIRE(r.has_value());
  CHECK(s.lookup == errc::no_symbol_table);
  CHECK(s.hz == static_cast<int>(hz_value));
  CHECK_FALSE(s.has_kernel_file);

  auto typed = kvmxx::freebsd_amd64_minidump::open_dump(nullptr, fx.core.c_str());
  REQUIRE(typed.has_value());
  CHECK(typed.value().address_of("_hz").error() == errc::no_symbol_table);
  std::array<kvmxx::nlist_entry, 1> nl{{{"_hz"}}};
  CHECK(typed.value().lookup(nl).error() == errc::no_symbol_table);
}

TEST_CASE("open_dump_handle returns the typed handle in the variant", "[core][open]") {
  fixture fx;
  auto r = kvmxx::open_dump_handle(fx.kernel.c_str(), fx.core.c_str());
  REQUIRE(r.has_value());
  auto* km = std::get_if<kvmxx::freebsd_amd64_minidump>(&r.value());
  REQUIRE(km != nullptr);
  CHECK(km->read_as<std::uint32_t>(km->address_of("hz").value()).value() == hz_value);
  CHECK(km->kernel_file().has_value());
}

// ---- probes -----------------------------------------------------------------------------

TEST_CASE("at most one probe matches any file, and exactly one matches a minidump", "[core][open]") {
  for (std::uint32_t version : {1u, 2u, 3u}) {
    INFO("minidump version " << version);
    amd64_minidump_builder md(version, 1);
    md.map_4k(md.kernbase(), 0x4000);
    const auto bytes = md.build();
    CHECK(kvmxx::count_matching_probes(bytes) == 1);
    const auto f = kvmxx::probe_core_image(bytes, "vmcore");
    REQUIRE(f.has_value());
    CHECK(f.value() == kvmxx::core_format::freebsd_minidump);
  }
  {
    amd64_minidump_builder other(3, 1);
    other.override_magic("minidump FreeBSD/arm64");
    CHECK(kvmxx::count_matching_probes(other.build()) == 1);  // a minidump, of another arch
  }
  // "minidump" alone is what _kvm_is_minidump checks (§1.6).
  CHECK(kvmxx::count_matching_probes(bytes_of("minidump")) == 1);
  CHECK(kvmxx::count_matching_probes(bytes_of("minidum")) == 0);
  CHECK(kvmxx::count_matching_probes(bytes_of("Minidump FreeBSD/amd64")) == 0);
  CHECK(kvmxx::count_matching_probes({}) == 0);

  for (auto cls : {elf_class::elf32, elf_class::elf64})
    for (auto endian : {elf_endian::little, elf_endian::big}) {
      kernel_elf_builder k(cls, endian);
      k.symbol("hz", cls == elf_class::elf64 ? 0xffffffff80300000ull : 0xc0500000ull, section_kind::data);
      CHECK(kvmxx::count_matching_probes(k.build()) == 0);
    }
  CHECK(kvmxx::count_matching_probes(bytes_of("#!/bin/sh\necho not a dump\n")) == 0);
  CHECK(kvmxx::count_matching_probes(std::vector<std::byte>(4096)) == 0);
  std::mt19937_64 rng(99);
  for (int round = 0; round < 64; ++round) {
    std::vector<std::byte> noise(1 + rng() % 4096);
    for (auto& b : noise) b = static_cast<std::byte>(rng() & 0xff);
    CHECK(kvmxx::count_matching_probes(noise) <= 1);
  }
}

TEST_CASE("bytes of no known format are not_a_dump and the message shows the first bytes in hex", "[core][open]") {
  const std::vector<std::byte> odd = {std::byte{0x4b}, std::byte{0x56}, std::byte{0x4d}, std::byte{0x58},
                                      std::byte{0x01}, std::byte{0x02}, std::byte{0xfe}, std::byte{0xff},
                                      std::byte{0x77}, std::byte{0x88}};
  const auto r = kvmxx::probe_core_image(odd, "odd.core");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::not_a_dump);
  const auto msg = kvmxx::describe(r.error());
  CHECK(contains(msg, "odd.core"));
  CHECK(contains(msg, "4b 56 4d 58 01 02 fe ff"));
  CHECK_FALSE(contains(msg, "77"));  // eight bytes, no more

  const auto shorter = kvmxx::probe_core_image(bytes_of("abc"), "short.core");
  REQUIRE_FALSE(shorter.has_value());
  CHECK(contains(kvmxx::describe(shorter.error()), "61 62 63"));

  kvmxx_test::temp_dir dir;
  const std::string text = dir.path("notes.txt");
  kvmxx_test::write_file(text, bytes_of("hello, kernel\n"));
  const auto p = kvmxx::probe_core_file(text.c_str());
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error() == errc::not_a_dump);
  CHECK(contains(kvmxx::describe(p.error()), text));
  CHECK(contains(kvmxx::describe(p.error()), "68 65 6c 6c 6f 2c 20 6b"));

  const auto o = kvmxx::open(nullptr, text.c_str(), [](auto&) {});
  REQUIRE_FALSE(o.has_value());
  CHECK(o.error() == errc::not_a_dump);
  CHECK(contains(kvmxx::describe(o.error()), "68 65 6c 6c 6f"));
}

TEST_CASE("probe_core_file recognises a minidump and refuses empty files and directories", "[core][open]") {
  fixture fx;
  const auto f = kvmxx::probe_core_file(fx.core.c_str());
  REQUIRE(f.has_value());
  CHECK(f.value() == kvmxx::core_format::freebsd_minidump);

  const std::string empty = fx.dir.path("empty.core");
  kvmxx_test::write_file(empty, {});
  const auto e = kvmxx::probe_core_file(empty.c_str());
  REQUIRE_FALSE(e.has_value());
  CHECK(e.error() == errc::invalid_argument);
  CHECK(contains(kvmxx::describe(e.error()), empty));
  CHECK(contains(kvmxx::describe(e.error()), "empty"));

  const auto d = kvmxx::probe_core_file(fx.dir.root().c_str());
  REQUIRE_FALSE(d.has_value());
  CHECK(d.error() == errc::invalid_argument);
  CHECK(contains(kvmxx::describe(d.error()), fx.dir.root()));
}

// ---- open errors ------------------------------------------------------------------------

TEST_CASE("an empty core is refused by every way of opening it", "[core][open]") {
  fixture fx;
  const std::string empty = fx.dir.path("empty.core");
  kvmxx_test::write_file(empty, {});
  const auto o = kvmxx::open(fx.kernel.c_str(), empty.c_str(), [](auto&) {});
  REQUIRE_FALSE(o.has_value());
  CHECK(o.error() == errc::invalid_argument);
  CHECK(contains(kvmxx::describe(o.error()), empty));

  const auto t = kvmxx::freebsd_amd64_minidump::open_dump(fx.kernel.c_str(), empty.c_str());
  REQUIRE_FALSE(t.has_value());
  CHECK(t.error() == errc::invalid_argument);
  CHECK(contains(kvmxx::describe(t.error()), empty));

  const auto a = kvmxx::open_any(nullptr, empty.c_str());
  REQUIRE_FALSE(a.has_value());
  CHECK(a.error() == errc::invalid_argument);
}

TEST_CASE("a missing core is reported before a missing kernel, as libkvm checks them", "[core][open]") {
  kvmxx_test::temp_dir dir;
  const std::string kernel = dir.path("missing-kernel"), core = dir.path("missing-core");
  const auto check_names_core = [&](const std::error_code& ec) {
    CHECK(ec == std::errc::no_such_file_or_directory);
    const auto msg = kvmxx::describe(ec);
    CHECK(contains(msg, core));
    CHECK_FALSE(contains(msg, kernel));
  };
  const auto o = kvmxx::open(kernel.c_str(), core.c_str(), [](auto&) {});
  REQUIRE_FALSE(o.has_value());
  check_names_core(o.error());
  const auto h = kvmxx::open_dump_handle(kernel.c_str(), core.c_str());
  REQUIRE_FALSE(h.has_value());
  check_names_core(h.error());
  const auto a = kvmxx::open_any(kernel.c_str(), core.c_str());
  REQUIRE_FALSE(a.has_value());
  check_names_core(a.error());
  const auto t = kvmxx::freebsd_amd64_minidump::open_dump(kernel.c_str(), core.c_str());
  REQUIRE_FALSE(t.has_value());
  check_names_core(t.error());

  // With the core present, the missing kernel is what fails.
  fixture fx;
  const auto k = kvmxx::open(kernel.c_str(), fx.core.c_str(), [](auto&) {});
  REQUIRE_FALSE(k.has_value());
  CHECK(k.error() == std::errc::no_such_file_or_directory);
  CHECK(contains(kvmxx::describe(k.error()), kernel));
}

TEST_CASE("a kernel of another architecture is refused with arch_mismatch naming both", "[core][open]") {
  fixture fx;
  const std::string i386_kernel = fx.dir.path("kernel.i386");
  kernel_elf_builder k(elf_class::elf32, elf_endian::little, kvmxx_test::elf_const::em_386);
  k.symbol("hz", 0xc0500000ull, section_kind::data);
  kvmxx_test::write_file(i386_kernel, k.build());

  const auto check_mismatch = [&](const std::error_code& ec) {
    CHECK(ec == errc::arch_mismatch);
    const auto msg = kvmxx::describe(ec);
    CHECK(contains(msg, i386_kernel));
    CHECK(contains(msg, "i386"));
    CHECK(contains(msg, "amd64"));
  };
  const auto o = kvmxx::open(i386_kernel.c_str(), fx.core.c_str(), [](auto&) {});
  REQUIRE_FALSE(o.has_value());
  check_mismatch(o.error());
  const auto t = kvmxx::freebsd_amd64_minidump::open_dump(i386_kernel.c_str(), fx.core.c_str());
  REQUIRE_FALSE(t.has_value());
  check_mismatch(t.error());
  const auto a = kvmxx::open_any(i386_kernel.c_str(), fx.core.c_str());
  REQUIRE_FALSE(a.has_value());
  check_mismatch(a.error());
}

TEST_CASE("a kernel that is not an ELF file is refused with not_a_kernel naming it", "[core][open]") {
  fixture fx;
  const std::string text = fx.dir.path("kernel.txt");
  kvmxx_test::write_file(text, bytes_of("not a kernel at all\n"));
  const auto o = kvmxx::open(text.c_str(), fx.core.c_str(), [](auto&) {});
  REQUIRE_FALSE(o.has_value());
  CHECK(o.error() == errc::not_a_kernel);
  CHECK(contains(kvmxx::describe(o.error()), text));
}

TEST_CASE("a minidump of an architecture without a backend is unsupported_format, not garbage", "[core][open]") {
  kvmxx_test::temp_dir dir;
  const std::string core = dir.path("vmcore.arm64");
  amd64_minidump_builder md(3, 5);
  md.override_magic("minidump FreeBSD/arm64");
  md.map_4k(md.kernbase(), 0x4000);
  md.build_to_file(core);
  const auto o = kvmxx::open(nullptr, core.c_str(), [](auto&) {});
  REQUIRE_FALSE(o.has_value());
  CHECK(o.error() == errc::unsupported_format);
  CHECK(contains(kvmxx::describe(o.error()), core));
  CHECK(contains(kvmxx::describe(o.error()), "arm64"));
}

// ---- open_any -----------------------------------------------------------------------------

namespace {
using page_tuple = std::tuple<std::uint64_t, std::uint64_t, std::uint64_t, unsigned, std::int64_t, std::size_t>;
page_tuple as_tuple(const kvmxx::page_info& p) {
  return {kvmxx::to_integer(p.pa), kvmxx::to_integer(p.kmap_va), kvmxx::to_integer(p.dmap_va),
          static_cast<unsigned>(p.prot), p.file_offset, p.length};
}
}  // namespace

TEST_CASE("open_any's type-erased handle agrees with the typed handle on every query", "[core][open]") {
  fixture fx;
  auto typed_r = kvmxx::freebsd_amd64_minidump::open_dump(fx.kernel.c_str(), fx.core.c_str());
  auto any_r = kvmxx::open_any(fx.kernel.c_str(), fx.core.c_str());
  REQUIRE(typed_r.has_value());
  REQUIRE(any_r.has_value());
  auto& t = typed_r.value();
  auto& a = any_r.value();

  REQUIRE(a.get_if<kvmxx::freebsd_amd64_minidump>() != nullptr);
  CHECK(a.get_if<kvmxx::kernel_memory<kvmxx::backend::minidump, kvmxx::arch::amd64, kvmxx::resolver::none>>() ==
        nullptr);

  const std::uint64_t addrs[] = {fx.hz_va,      fx.physmem_va,   fx.kb + 0x2ff8, fx.hole_va,
                                 fx.md.dmap_base() + 0x10000, 0, fx.kb + 0x1800};
  for (const std::uint64_t va : addrs) {
    INFO("va 0x" << std::hex << va);
    std::array<std::byte, 16> bt{}, ba{};
    const auto rt = t.read(kvaddr{va}, bt);
    const auto ra = a.read(kvaddr{va}, ba);
    REQUIRE(rt.has_value() == ra.has_value());
    if (rt.has_value()) {
      CHECK(rt.value() == ra.value());
      CHECK(bt == ba);
      // And both agree with the writer's oracle.
      const auto want = fx.md.read_virt(va, rt.value());
      REQUIRE(want.has_value());
      CHECK(std::equal(want->begin(), want->end(), bt.begin()));
    } else {
      CHECK(rt.error() == ra.error());
      CHECK_FALSE(fx.md.translate(va).has_value());
    }
    const auto tt = t.translate(kvaddr{va});
    const auto ta = a.translate(kvaddr{va});
    REQUIRE(tt.has_value() == ta.has_value());
    if (tt.has_value()) {
      CHECK(kvmxx::to_integer(tt.value().pa) == kvmxx::to_integer(ta.value().pa));
      CHECK(tt.value().contiguous == ta.value().contiguous);
      CHECK(kvmxx::to_integer(tt.value().pa) == fx.md.translate(va).value());
    } else {
      CHECK(tt.error() == ta.error());
    }
  }
  CHECK(t.read_as<std::uint64_t>(kvaddr{fx.physmem_va}).value() ==
        a.read_as<std::uint64_t>(kvaddr{fx.physmem_va}).value());
  CHECK(a.read_as<std::uint64_t>(kvaddr{fx.physmem_va}).value() == physmem_value);
  std::array<std::byte, 8> pt{}, pa{};
  CHECK(t.read_physical(kvmxx::physaddr{0x10000}, pt).value() == a.read_physical(kvmxx::physaddr{0x10000}, pa).value());
  CHECK(pt == pa);

  for (const char* name : {"hz", "_hz", "physmem", "missing"}) {
    INFO(name);
    const auto lt = t.lookup(name);
    const auto la = a.lookup(name);
    REQUIRE(lt.has_value() == la.has_value());
    if (lt.has_value()) {
      CHECK(kvmxx::to_integer(lt.value().value) == kvmxx::to_integer(la.value().value));
      CHECK(lt.value().type == la.value().type);
      CHECK(kvmxx::to_integer(a.address_of(name).value()) == kvmxx::to_integer(lt.value().value));
    } else {
      CHECK(lt.error() == la.error());
    }
  }
  std::array<kvmxx::nlist_entry, 3> nt{{{"_hz"}, {"_nope"}, {"physmem"}}}, na = nt;
  CHECK(t.lookup(nt).value() == 1);
  CHECK(a.lookup(na).value() == 1);
  for (std::size_t i = 0; i < nt.size(); ++i) {
    CHECK(nt[i].type == na[i].type);
    CHECK(kvmxx::to_integer(nt[i].value) == kvmxx::to_integer(na[i].value));
  }

  std::vector<page_tuple> wt, wa;
  const auto walked_t = t.walk_pages([&](const kvmxx::page_info& p) {
    wt.push_back(as_tuple(p));
    return true;
  });
  const auto walked_a = a.walk_pages([&](const kvmxx::page_info& p) {
    wa.push_back(as_tuple(p));
    return true;
  });
  REQUIRE(walked_t.has_value());
  REQUIRE(walked_a.has_value());
  CHECK(walked_t.value() == walked_a.value());
  CHECK_FALSE(wt.empty());
  CHECK(wt == wa);

  const auto it = t.info(), ia = a.info();
  CHECK(it.format == ia.format);
  CHECK(it.arch == ia.arch);
  CHECK(it.os == ia.os);
  CHECK(it.format_version == ia.format_version);
  CHECK(it.page_size == ia.page_size);
  CHECK(it.dumped_pages == ia.dumped_pages);
  CHECK(it.message_buffer_size == ia.message_buffer_size);
  CHECK(it.file_size == ia.file_size);
  CHECK(it.ranges.size() == ia.ranges.size());
  CHECK(ia.file_size == fx.md.file_layout().file_size);
  CHECK(ia.dumped_pages == fx.md.dumped_pages().size());
  CHECK(t.native() == a.native());
  CHECK(t.kerndisp() == a.kerndisp());
  CHECK(t.target_machine() == a.target_machine());
  CHECK(a.target_machine() == kvmxx::machine::amd64);
  CHECK(t.os() == a.os());
  CHECK(a.os() == kvmxx::os_kind::freebsd);

  const std::array<std::byte, 4> four{};
  CHECK(a.write(kvaddr{fx.hz_va}, four).error() == errc::read_only);
  CHECK(t.write(kvaddr{fx.hz_va}, four).error() == errc::read_only);

  CHECK(a.close().has_value());
  std::array<std::byte, 4> after{};
  CHECK(a.read(kvaddr{fx.hz_va}, after).error() == errc::no_memory_source);
  CHECK(t.read(kvaddr{fx.hz_va}, after).has_value());  // separate handles
}

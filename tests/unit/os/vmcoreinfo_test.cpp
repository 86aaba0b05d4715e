// os/linux/vmcoreinfo.hpp: the VMCOREINFO KEY=VALUE parser (specs/linux-dumps.md §4):
// hexadecimal SYMBOL()/KERNELOFFSET, base-0 signed NUMBER()/OFFSET()/SIZE()/LENGTH(),
// negative NUMBER(phys_base), duplicate keys, junk lines, CRLF and NUL padding, copies
// and moves (the class keeps string_views into its own text), and the real VMCOREINFO
// of Debian kernels booted under QEMU (tests/real/README.md; skipped when absent).
#include <catch2/catch.hpp>
#include <skip.hpp>
#include <kvmxx/os/linux/vmcoreinfo.hpp>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unistd.h>
#include <utility>
#include <vector>

namespace {

using kvmxx::linux_::vmcoreinfo;

// The start of an x86_64 VMCOREINFO as the kaslr boot of tests/real wrote it.
constexpr std::string_view sample =
    "OSRELEASE=6.1.0-56-amd64\n"
    "BUILD-ID=eb4fbcd037e7253717950bf2b93bd5566f47c56f\n"
    "PAGESIZE=4096\n"
    "SYMBOL(init_uts_ns)=ffffffff85bfb000\n"
    "OFFSET(uts_namespace.name)=0\n"
    "SYMBOL(swapper_pg_dir)=ffffffff85a10000\n"
    "SYMBOL(_stext)=ffffffff84000000\n"
    "SYMBOL(mem_section)=ffff88800fe9e000\n"
    "LENGTH(mem_section)=4096\n"
    "SIZE(mem_section)=32\n"
    "NUMBER(SECTION_SIZE_BITS)=27\n"
    "SIZE(page)=64\n"
    "OFFSET(page._refcount)=52\n"
    "NUMBER(PG_head_mask)=0x10000\n"
    "NUMBER(phys_base)=98566144\n"
    "NUMBER(pgtable_l5_enabled)=0\n"
    "KERNELOFFSET=3000000\n"
    "NUMBER(KERNEL_IMAGE_SIZE)=1073741824\n"
    "CRASHTIME=1764140000\n";

}  // namespace

TEST_CASE("vmcoreinfo parses hexadecimal symbols and KERNELOFFSET, base-0 numbers, and the named keys",
          "[os][linux][vmcoreinfo]") {
  const auto v = vmcoreinfo::parse(sample);
  CHECK_FALSE(v.empty());
  CHECK(v.text() == sample);
  CHECK(v.osrelease() == std::optional<std::string_view>("6.1.0-56-amd64"));
  CHECK(v.get("BUILD-ID") == std::optional<std::string_view>("eb4fbcd037e7253717950bf2b93bd5566f47c56f"));
  CHECK(v.page_size() == std::optional<std::uint64_t>(4096));
  CHECK(v.symbol("init_uts_ns") == std::optional<std::uint64_t>(0xffffffff85bfb000));
  CHECK(v.symbol("swapper_pg_dir") == std::optional<std::uint64_t>(0xffffffff85a10000));
  CHECK(v.symbol("mem_section") == std::optional<std::uint64_t>(0xffff88800fe9e000));
  CHECK(v.kernel_offset() == std::optional<std::uint64_t>(0x3000000));  // hex without 0x
  CHECK(v.number("phys_base") == std::optional<std::int64_t>(98566144));  // decimal: 0x5e00000
  CHECK(v.number("phys_base") == std::optional<std::int64_t>(0x5e00000));
  CHECK(v.number("PG_head_mask") == std::optional<std::int64_t>(0x10000));  // base 0: 0x is hex
  CHECK(v.number("SECTION_SIZE_BITS") == std::optional<std::int64_t>(27));
  CHECK(v.number("pgtable_l5_enabled") == std::optional<std::int64_t>(0));
  CHECK(v.number("KERNEL_IMAGE_SIZE") == std::optional<std::int64_t>(1073741824));
  CHECK(v.offset("uts_namespace.name") == std::optional<std::int64_t>(0));
  CHECK(v.offset("page._refcount") == std::optional<std::int64_t>(52));
  CHECK(v.size("page") == std::optional<std::int64_t>(64));
  CHECK(v.size("mem_section") == std::optional<std::int64_t>(32));
  CHECK(v.length("mem_section") == std::optional<std::int64_t>(4096));
  CHECK(v.get("CRASHTIME") == std::optional<std::string_view>("1764140000"));
  // Absent keys, and keys of another kind.
  CHECK_FALSE(v.symbol("linux_banner").has_value());
  CHECK_FALSE(v.number("init_uts_ns").has_value());
  CHECK_FALSE(v.symbol("phys_base").has_value());
  CHECK_FALSE(v.get("symbol(init_uts_ns)").has_value());  // keys are case-sensitive
  CHECK_FALSE(v.get("").has_value());
}

TEST_CASE("vmcoreinfo's base-0 integers: sign, 0x hex, leading-0 octal, decimal; hex() tolerates 0x",
          "[os][linux][vmcoreinfo]") {
  using sv = std::string_view;
  CHECK(vmcoreinfo::integer(sv("0")) == 0);
  CHECK(vmcoreinfo::integer(sv("42")) == 42);
  CHECK(vmcoreinfo::integer(sv("+42")) == 42);
  CHECK(vmcoreinfo::integer(sv("-42")) == -42);
  CHECK(vmcoreinfo::integer(sv("0x1F")) == 31);
  CHECK(vmcoreinfo::integer(sv("0X1f")) == 31);
  CHECK(vmcoreinfo::integer(sv("-0x10")) == -16);
  CHECK(vmcoreinfo::integer(sv("010")) == 8);
  CHECK(vmcoreinfo::integer(sv("-010")) == -8);
  CHECK(vmcoreinfo::integer(sv("0xffffffffffffffff")) == -1);       // 2^64 − 1 wraps to −1
  CHECK(vmcoreinfo::integer(sv("18446744073709551615")) == -1);     // %lu of an unsigned long
  CHECK(vmcoreinfo::integer(sv("9223372036854775807")) == INT64_MAX);
  CHECK(vmcoreinfo::integer(sv("-9223372036854775808")) == INT64_MIN);
  for (const char* bad : {"", "-", "+", "0x", "08", "12a", "1 2", " 1", "1 ", "0xg", "--1", "abc"}) {
    INFO('"' << bad << '"');
    CHECK_FALSE(vmcoreinfo::integer(sv(bad)).has_value());
  }
  CHECK_FALSE(vmcoreinfo::integer(std::nullopt).has_value());

  CHECK(vmcoreinfo::hex(sv("ffffffff81000000")) == 0xffffffff81000000);
  CHECK(vmcoreinfo::hex(sv("FFFFFFFF81000000")) == 0xffffffff81000000);
  CHECK(vmcoreinfo::hex(sv("0xffffffff81000000")) == 0xffffffff81000000);
  CHECK(vmcoreinfo::hex(sv("3000000")) == 0x3000000);
  CHECK(vmcoreinfo::hex(sv("0")) == 0);
  CHECK(vmcoreinfo::hex(sv("10")) == 0x10);  // never decimal
  for (const char* bad : {"", "0x", "g", "12345678123456789", "-1", "ff ff", "0xfffffffffffffffff"}) {
    INFO('"' << bad << '"');
    CHECK_FALSE(vmcoreinfo::hex(sv(bad)).has_value());
  }
}

TEST_CASE("vmcoreinfo reads a negative NUMBER(phys_base) as signed, wrapping modulo 2^64",
          "[os][linux][vmcoreinfo]") {
  // tests/real/README.md: under KASLR the kernel printed -723517440 with %ld.
  const auto v = vmcoreinfo::parse("NUMBER(phys_base)=-723517440\nNUMBER(x)=-0x10\n");
  REQUIRE(v.number("phys_base").has_value());
  CHECK(*v.number("phys_base") == -723517440);
  CHECK(static_cast<std::uint64_t>(*v.number("phys_base")) == 0xffffffffd4e00000ull);
  // _text − __START_KERNEL_map + phys_base, modulo 2^64, is the physical load address.
  CHECK(0xffffffff84000000ull - 0xffffffff80000000ull + static_cast<std::uint64_t>(*v.number("phys_base")) ==
        0x3000000ull - 723517440ull + 0x1000000ull);
  CHECK(v.number("x") == -16);
}

TEST_CASE("vmcoreinfo keeps the last value of a key given twice", "[os][linux][vmcoreinfo]") {
  const auto v = vmcoreinfo::parse(
      "OSRELEASE=first\n"
      "SYMBOL(init_uts_ns)=ffffffff81000000\n"
      "CRASHTIME=1\n"
      "OSRELEASE=second\n"
      "SYMBOL(init_uts_ns)=ffffffff82000000\n"
      "CRASHTIME=2\n");
  CHECK(v.osrelease() == std::optional<std::string_view>("second"));
  CHECK(v.symbol("init_uts_ns") == 0xffffffff82000000);
  CHECK(v.get("CRASHTIME") == std::optional<std::string_view>("2"));
}

TEST_CASE("vmcoreinfo skips lines without '=' or with an empty key, and keeps values with '=' in them",
          "[os][linux][vmcoreinfo]") {
  const auto v = vmcoreinfo::parse(
      "just some text\n"
      "\n"
      "=orphan value\n"
      "EMPTY=\n"
      "CONFIG_X86_PAE=y\n"
      "EQUALS=a=b=c\n"
      "SYMBOL()=ffffffff81000000\n"
      "SYMBOL(ok)=1000\n"
      "SYMBOL(bad)=xyz\n");
  CHECK(v.get("just some text") == std::nullopt);
  CHECK(v.get("") == std::nullopt);
  CHECK(v.get("EMPTY") == std::optional<std::string_view>(""));
  CHECK(v.get("CONFIG_X86_PAE") == std::optional<std::string_view>("y"));
  CHECK(v.get("EQUALS") == std::optional<std::string_view>("a=b=c"));
  CHECK_FALSE(v.symbol("bad").has_value());  // present, but not hexadecimal
  CHECK(v.get("SYMBOL(bad)") == std::optional<std::string_view>("xyz"));
  CHECK_FALSE(v.page_size().has_value());
  CHECK(vmcoreinfo::parse("PAGESIZE=0\n").page_size() == std::nullopt);
  CHECK(vmcoreinfo::parse("PAGESIZE=-4096\n").page_size() == std::nullopt);
  CHECK(vmcoreinfo::parse("PAGESIZE=0x4000\n").page_size() == 16384u);

  // for_each_symbol: the SYMBOL(name) lines whose value is hexadecimal.
  std::vector<std::pair<std::string, std::uint64_t>> seen;
  v.for_each_symbol([&](std::string_view n, std::uint64_t a) { seen.emplace_back(std::string(n), a); });
  CHECK(seen == std::vector<std::pair<std::string, std::uint64_t>>{{"ok", 0x1000}});

  CHECK(vmcoreinfo::parse("").empty());
  CHECK(vmcoreinfo::parse("no equals sign\n\n").empty());
  CHECK(vmcoreinfo().empty());
  CHECK_FALSE(vmcoreinfo().osrelease().has_value());
}

TEST_CASE("vmcoreinfo strips CR line ends and NUL padding", "[os][linux][vmcoreinfo]") {
  // The note's descriptor is NUL-padded to 4 bytes, and some tools hand the text over
  // with CRLF line ends.
  using namespace std::string_literals;
  const auto text = "OSRELEASE=6.1.0\r\nSYMBOL(_stext)=ffffffff81000000\r\nPAGESIZE=4096\0\0\0"s;
  REQUIRE(text.size() == 66);
  const auto v = vmcoreinfo::parse(text);
  CHECK(v.osrelease() == std::optional<std::string_view>("6.1.0"));
  CHECK(v.symbol("_stext") == 0xffffffff81000000);
  CHECK(v.page_size() == 4096u);
  const auto padded_lines = "A=1\0\0\nB=2\r\0\n\0\0\0\0\n"s;
  REQUIRE(padded_lines.size() == 17);
  const auto w = vmcoreinfo::parse(padded_lines);
  CHECK(w.get("A") == std::optional<std::string_view>("1"));
  CHECK(w.get("B") == std::optional<std::string_view>("2"));
  std::size_t keys = 0;
  for (const char* k : {"A", "B"}) keys += w.get(k).has_value();
  CHECK(keys == 2);
}

TEST_CASE("vmcoreinfo copies and moves keep working, short texts included", "[os][linux][vmcoreinfo]") {
  STATIC_REQUIRE(std::is_copy_constructible_v<vmcoreinfo>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<vmcoreinfo>);
  STATIC_REQUIRE(std::is_nothrow_move_assignable_v<vmcoreinfo>);
  // "A=1" fits std::string's small buffer: its characters move with the object, so views
  // into the old object's buffer would dangle unless re-based.
  for (std::string_view text : {std::string_view("A=1\nB=2"), sample}) {
    INFO(text.size());
    std::optional<vmcoreinfo> original(vmcoreinfo::parse(text));
    const auto first = original->get(text.size() < 16 ? "A" : "OSRELEASE");
    REQUIRE(first.has_value());
    const std::string want(*first);

    const vmcoreinfo copy = *original;                 // copy construction
    vmcoreinfo copy_assigned;
    copy_assigned = *original;                         // copy assignment
    vmcoreinfo moved = std::move(*original);           // move construction
    vmcoreinfo move_assigned = vmcoreinfo::parse("X=9");
    move_assigned = vmcoreinfo(copy);                  // move assignment over a short text
    original.reset();                                  // the source is gone: nothing may point into it
    // Overwrite the freed memory's neighbourhood with other strings.
    std::vector<std::string> noise(64, std::string(text.size(), '#'));

    for (const vmcoreinfo* v : std::initializer_list<const vmcoreinfo*>{&copy, &copy_assigned, &moved, &move_assigned}) {
      const auto got = v->get(text.size() < 16 ? "A" : "OSRELEASE");
      REQUIRE(got.has_value());
      CHECK(*got == want);
      CHECK(v->text() == text);
      // Every view lies inside the object's own text.
      const auto* lo = v->text().data();
      const auto* hi = lo + v->text().size();
      CHECK(got->data() >= lo);
      CHECK(got->data() + got->size() <= hi);
    }
    if (text.size() < 16) {
      CHECK(moved.get("B") == std::optional<std::string_view>("2"));
      CHECK_FALSE(move_assigned.get("X").has_value());
    } else {
      CHECK(moved.symbol("init_uts_ns") == 0xffffffff85bfb000);
      CHECK(move_assigned.number("phys_base") == 98566144);
    }
  }
  // Self-assignment and a moved-from object.
  auto v = vmcoreinfo::parse("A=1");
  const auto& alias = v;
  v = alias;
  CHECK(v.get("A") == std::optional<std::string_view>("1"));
  auto target = std::move(v);
  CHECK(target.get("A") == std::optional<std::string_view>("1"));
  CHECK(v.empty());  // NOLINT(bugprone-use-after-move): the documented moved-from state
  CHECK(v.text().empty());
}

TEST_CASE("vmcoreinfo::for_each_symbol yields every SYMBOL() line in order", "[os][linux][vmcoreinfo]") {
  const auto v = vmcoreinfo::parse(sample);
  std::vector<std::pair<std::string, std::uint64_t>> seen;
  v.for_each_symbol([&](std::string_view n, std::uint64_t a) { seen.emplace_back(std::string(n), a); });
  const std::vector<std::pair<std::string, std::uint64_t>> want{{"init_uts_ns", 0xffffffff85bfb000},
                                                                {"swapper_pg_dir", 0xffffffff85a10000},
                                                                {"_stext", 0xffffffff84000000},
                                                                {"mem_section", 0xffff88800fe9e000}};
  CHECK(seen == want);
}

// ---- real VMCOREINFO -------------------------------------------------------------------------------

namespace {
std::string dumps_dir() {
  const char* d = std::getenv("KVMXX_LINUX_DUMPS");
  return d != nullptr && *d != '\0' ? d : "/work/cache/linux-dumps";
}
}  // namespace

TEST_CASE("vmcoreinfo parses the real VMCOREINFO lines of the Debian boots in tests/real",
          "[os][linux][vmcoreinfo][real]") {
  const std::string root = dumps_dir();
  if (::access((root + "/nokaslr").c_str(), F_OK) != 0)
    KVMXX_TEST_SKIP(root << "/nokaslr does not exist (make it with tests/real/make-linux-dumps.sh)");
  for (const char* boot : {"nokaslr", "kaslr", "la57", "novmcoreinfo"}) {
    const std::string path = root + "/" + boot + "/facts.txt";
    std::ifstream in(path);
    if (!in) continue;  // the other boots are optional
    INFO(path);
    std::multimap<std::string, std::string> facts;
    std::string text, line;
    std::size_t lines = 0;
    while (std::getline(in, line)) {
      const auto sp = line.find(' ');
      if (sp == std::string::npos || line[0] == '#') continue;
      facts.emplace(line.substr(0, sp), line.substr(sp + 1));
      if (line.compare(0, sp, "vmcoreinfo_line") == 0) {
        text += line.substr(sp + 1) + "\n";
        ++lines;
      }
    }
    REQUIRE(lines > 20);
    const auto fact = [&](const std::string& k) -> std::string {
      const auto it = facts.find(k);
      return it == facts.end() ? std::string() : it->second;
    };
    const auto v = vmcoreinfo::parse(text);
    CHECK(v.osrelease() == std::optional<std::string_view>(fact("osrelease")));
    CHECK(v.page_size() == 4096u);
    REQUIRE(v.kernel_offset().has_value());
    CHECK(*v.kernel_offset() == std::stoull(fact("kerneloffset"), nullptr, 16));
    REQUIRE(v.number("phys_base").has_value());
    CHECK(static_cast<std::uint64_t>(*v.number("phys_base")) == std::stoull(fact("phys_base"), nullptr, 16));
    CHECK(v.number("pgtable_l5_enabled") == std::stoll(fact("pgtable_l5_enabled")));
    REQUIRE(v.symbol("init_uts_ns").has_value());
    REQUIRE(v.symbol("swapper_pg_dir").has_value());
    CHECK(v.symbol("swapper_pg_dir") == v.symbol("init_top_pgt"));  // x86_64's #define
    CHECK(v.offset("uts_namespace.name") == 0);
    // init_uts_ns agrees with the boot's kallsyms; _stext minus KERNELOFFSET is the
    // link-time 0xffffffff81000000 of Debian's x86_64 kernel.
    const auto ks = facts.equal_range("kallsyms");
    std::optional<std::uint64_t> uts;
    for (auto it = ks.first; it != ks.second; ++it)
      if (it->second.size() > 19 && it->second.substr(19) == "init_uts_ns") uts = std::stoull(it->second, nullptr, 16);
    REQUIRE(uts.has_value());
    CHECK(v.symbol("init_uts_ns") == *uts);
    REQUIRE(v.symbol("_stext").has_value());
    CHECK(*v.symbol("_stext") - *v.kernel_offset() == 0xffffffff81000000ull);
    std::size_t symbols = 0;
    v.for_each_symbol([&](std::string_view, std::uint64_t a) {
      CHECK(a != 0);
      ++symbols;
    });
    CHECK(symbols >= 10);
  }
}

// resolver/: the Linux symbol sources — symbol_file (System.map and /proc/kallsyms text),
// vmcoreinfo_symbols (VMCOREINFO's SYMBOL() lines), displaced<R> (KASLR's KERNELOFFSET)
// and chain<R...> — alone, as the Resolver of a kernel_memory handle, and on the
// kallsyms and VMCOREINFO of real Debian kernels booted under QEMU
// (tests/real/README.md; skipped when /work/cache/linux-dumps is absent).
// Expected values are what the tests write into their inputs, or the real files' facts.
#include <catch2/catch.hpp>
#include <file_util.hpp>
#include <skip.hpp>
#include <kvmxx/arch/amd64.hpp>
#include <kvmxx/backend/null.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/kernel_memory.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/os/linux/vmcoreinfo.hpp>
#include <kvmxx/resolver/callback.hpp>
#include <kvmxx/resolver/chain.hpp>
#include <kvmxx/resolver/displaced.hpp>
#include <kvmxx/resolver/none.hpp>
#include <kvmxx/resolver/symbol_file.hpp>
#include <kvmxx/resolver/vmcoreinfo_symbols.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unistd.h>
#include <utility>
#include <vector>

namespace {

using kvmxx::errc;
using kvmxx::kvaddr;
using kvmxx::linux_::vmcoreinfo;
using kvmxx::resolver::chain;
using kvmxx::resolver::displaced;
using kvmxx::resolver::symbol_file;
using kvmxx::resolver::vmcoreinfo_symbols;

// nlist(3) n_type values, spelled out independently of kvmxx::nlist_type.
constexpr std::uint8_t n_undf = 0, n_ext = 1, n_abs = 2, n_text = 4, n_data = 6, n_bss = 8;

std::uint64_t value_of(const kvmxx::result<kvmxx::symbol>& s) { return kvmxx::to_integer(s.value().value); }
unsigned type_of(const kvmxx::result<kvmxx::symbol>& s) { return s.value().type; }
bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}
std::span<const std::byte> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
symbol_file from_text(std::string_view text, std::string name = "test.map") {
  auto r = symbol_file::from_text(text, std::move(name));
  if (!r) FAIL("from_text failed: " << kvmxx::describe(r.error()));
  return std::move(r).value();
}

// A System.map as scripts/mksysmap writes it (nm -n, sorted by address), x86_64, with
// the letters a real one has: absolute per-CPU symbols, text, read-only data, data, bss,
// weak. Two lines that mksysmap filters out ('U', and nm's address-less 'w') are added to
// check they are skipped.
constexpr std::string_view system_map =
    "0000000000000000 D __per_cpu_start\n"
    "0000000000000000 D fixed_percpu_data\n"
    "00000000000001ea A kexec_control_code_size\n"
    "0000000000001000 D cpu_debug_store\n"
    "000000000002c000 D __per_cpu_end\n"
    "ffffffff81000000 T _stext\n"
    "ffffffff81000000 T _text\n"
    "ffffffff81000040 t verify_cpu\n"
    "ffffffff810001a0 T start_cpu0\n"
    "ffffffff81001000 T __startup_64\n"
    "ffffffff81e01d32 T _etext\n"
    "ffffffff82000000 R __start_rodata\n"
    "ffffffff82000100 r cpu_core_map_info\n"
    "ffffffff82161900 D linux_banner\n"
    "ffffffff82415740 D page_offset_base\n"
    "ffffffff82a079c0 D jiffies_64\n"
    "ffffffff82a10000 D init_top_pgt\n"
    "ffffffff82a643e0 d prb\n"
    "ffffffff82bfb000 D init_uts_ns\n"
    "ffffffff82c00000 V jiffies\n"
    "ffffffff82c00010 W arch_cpu_idle_dead\n"
    "ffffffff83fd6930 B vmcoreinfo_note\n"
    "ffffffff83fd6940 b vmcoreinfo_data_safecopy\n"
    "ffffffff8403f298 B mem_section\n"
    "                 U printk\n"
    "                 w __weak_undefined\n"
    "ffffffff84430000 B _end\n";

}  // namespace

// ---- symbol_file: System.map --------------------------------------------------------

TEST_CASE("symbol_file reads a System.map: addresses, nlist types and the count of defined symbols",
          "[resolver][linux][symbol_file]") {
  const auto map = from_text(system_map, "System.map-6.1.0-56-amd64");
  CHECK(map.size() == 25);  // 27 lines, less the two undefined ones
  CHECK_FALSE(map.addresses_hidden());
  CHECK(std::string_view(map.path()) == "System.map-6.1.0-56-amd64");

  const struct {
    const char* name;
    std::uint64_t value;
    std::uint8_t type;
  } expected[] = {
      {"_stext", 0xffffffff81000000, n_text | n_ext},
      {"verify_cpu", 0xffffffff81000040, n_text},
      {"__start_rodata", 0xffffffff82000000, n_text | n_ext},  // R: read-only PROGBITS is N_TEXT
      {"cpu_core_map_info", 0xffffffff82000100, n_text},
      {"linux_banner", 0xffffffff82161900, n_data | n_ext},
      {"prb", 0xffffffff82a643e0, n_data},
      {"init_uts_ns", 0xffffffff82bfb000, n_data | n_ext},
      {"jiffies", 0xffffffff82c00000, n_data | n_ext},
      {"arch_cpu_idle_dead", 0xffffffff82c00010, n_data | n_ext},
      {"vmcoreinfo_note", 0xffffffff83fd6930, n_bss | n_ext},
      {"vmcoreinfo_data_safecopy", 0xffffffff83fd6940, n_bss},
      {"_end", 0xffffffff84430000, n_bss | n_ext},
      {"kexec_control_code_size", 0x1ea, n_abs | n_ext},
      {"fixed_percpu_data", 0, n_data | n_ext},
  };
  for (const auto& e : expected) {
    INFO(e.name);
    const auto s = map.lookup(e.name);
    REQUIRE(s.has_value());
    CHECK(value_of(s) == e.value);
    CHECK(type_of(s) == e.type);
  }
  // The numbers of the brief, as literals: T → 5, D → 7, B → 9, A → 3.
  CHECK(type_of(map.lookup("_text")) == 5u);
  CHECK(type_of(map.lookup("init_uts_ns")) == 7u);
  CHECK(type_of(map.lookup("mem_section")) == 9u);
  CHECK(type_of(map.lookup("kexec_control_code_size")) == 3u);

  // Undefined symbols are not indexed.
  for (const char* u : {"printk", "__weak_undefined"}) {
    INFO(u);
    const auto s = map.lookup(u);
    REQUIRE_FALSE(s.has_value());
    CHECK(s.error() == errc::symbol_not_found);
  }
  const auto miss = map.lookup("no_such_symbol");
  REQUIRE_FALSE(miss.has_value());
  CHECK(miss.error() == errc::symbol_not_found);
  CHECK(contains(kvmxx::describe(miss.error()), "System.map-6.1.0-56-amd64"));
  CHECK(contains(kvmxx::describe(miss.error()), "no_such_symbol"));

  // for_each: every symbol once, in name order, with the values looked up.
  std::vector<std::string> names;
  map.for_each([&](std::string_view n, kvaddr v, std::uint8_t t) {
    names.emplace_back(n);
    const auto s = map.lookup(n);
    CHECK(s.value().value == v);
    CHECK(s.value().type == t);
  });
  CHECK(names.size() == map.size());
  CHECK(std::is_sorted(names.begin(), names.end()));
  CHECK(std::adjacent_find(names.begin(), names.end()) == names.end());
}

TEST_CASE("symbol_file gives every type letter nlist's n_type, upper case adding N_EXT",
          "[resolver][linux][symbol_file]") {
  const struct {
    char letter;
    std::uint8_t type;
  } letters[] = {
      {'T', n_text | n_ext}, {'t', n_text}, {'R', n_text | n_ext}, {'r', n_text},
      {'D', n_data | n_ext}, {'d', n_data}, {'G', n_data | n_ext}, {'g', n_data},
      {'W', n_data | n_ext}, {'w', n_data}, {'V', n_data | n_ext}, {'v', n_data},
      {'B', n_bss | n_ext},  {'b', n_bss},  {'S', n_bss | n_ext},  {'s', n_bss},
      {'A', n_abs | n_ext},  {'a', n_abs},
      // Letters of other sections: N_UNDF as libc's nlist reports them; 'u' is GNU's
      // unique global (a defined global object).
      {'C', n_undf | n_ext}, {'N', n_undf | n_ext}, {'n', n_undf}, {'i', n_undf}, {'p', n_undf},
      {'u', n_data | n_ext},
  };
  std::string text;
  std::uint64_t address = 0xffffffff81000000;
  for (const auto& l : letters) {
    char line[64];
    std::snprintf(line, sizeof line, "%016llx %c sym_%c\n", static_cast<unsigned long long>(address), l.letter,
                  l.letter);
    text += line;
    address += 0x10;
  }
  text += "ffffffff8100ff00 U sym_U\n";
  const auto f = from_text(text);
  CHECK(f.size() == std::size(letters));
  address = 0xffffffff81000000;
  for (const auto& l : letters) {
    const std::string name = std::string("sym_") + l.letter;
    INFO(name);
    const auto s = f.lookup(name);
    REQUIRE(s.has_value());
    CHECK(value_of(s) == address);
    CHECK(type_of(s) == l.type);
    address += 0x10;
  }
  CHECK(f.lookup("sym_U").error() == errc::symbol_not_found);
}

TEST_CASE("symbol_file reads 8-digit addresses of 32-bit kernels, CRLF, blank lines and a missing final newline",
          "[resolver][linux][symbol_file]") {
  const auto f = from_text(
      "\n"
      "c1000000 T _stext\r\n"
      "   \t \n"
      "c1a00000 D init_uts_ns   \n"
      "\r\n"
      "c1b00000\tB\t_end\t\n"
      "c1c00000 d last_one");
  CHECK(f.size() == 4);
  CHECK(value_of(f.lookup("_stext")) == 0xc1000000);
  CHECK(value_of(f.lookup("init_uts_ns")) == 0xc1a00000);
  CHECK(value_of(f.lookup("_end")) == 0xc1b00000);
  CHECK(type_of(f.lookup("_end")) == unsigned{n_bss | n_ext});
  CHECK(value_of(f.lookup("last_one")) == 0xc1c00000);
  // Upper- and lower-case hex digits are both taken.
  CHECK(value_of(from_text("FFFFFFFF81ABCDEF T mixed\nffffffff81abcdef t lower\n").lookup("mixed")) ==
        0xffffffff81abcdefull);
}

// ---- symbol_file: kallsyms ------------------------------------------------------------

TEST_CASE("symbol_file reads /proc/kallsyms lines with [module] suffixes and looks module symbols up by name",
          "[resolver][linux][symbol_file]") {
  const auto f = from_text(
      "ffffffff81000000 T _stext\n"
      "ffffffff81000000 T _text\n"
      "ffffffff81002000 t init_module\n"   // a vmlinux local of the same name as a module's
      "ffffffff82161900 D linux_banner\n"
      "ffffffffc0201000 t ftrace_trampoline\t[__builtin__ftrace]\n"
      "ffffffffc0400000 t floppy_ready\t[floppy]\n"
      "ffffffffc0400100 T init_module\t[floppy]\n"
      "ffffffffc0400200 d floppy_state\t[floppy]\n"
      "ffffffffc0400300 b fdc_state\t[floppy]\n"
      "ffffffffc0500000 t cleanup_module\t[psmouse]\n"
      "ffffffffc0500100 T init_module\t[psmouse]\n"
      "ffffffffc0600000 t cleanup_module\t[serio_raw]\n"
      "ffffffffc0700000 t bpf_prog_6deef7357e7b4530_sd_fw_ingress\t[bpf]\n",
      "/proc/kallsyms");
  CHECK(f.size() == 13);
  CHECK(value_of(f.lookup("floppy_ready")) == 0xffffffffc0400000);
  CHECK(type_of(f.lookup("floppy_ready")) == unsigned{n_text});
  CHECK(value_of(f.lookup("floppy_state")) == 0xffffffffc0400200);
  CHECK(type_of(f.lookup("fdc_state")) == unsigned{n_bss});
  CHECK(value_of(f.lookup("ftrace_trampoline")) == 0xffffffffc0201000);
  CHECK(value_of(f.lookup("bpf_prog_6deef7357e7b4530_sd_fw_ingress")) == 0xffffffffc0700000);
  // The first global of a name wins over vmlinux's earlier local of that name ...
  CHECK(value_of(f.lookup("init_module")) == 0xffffffffc0400100);
  CHECK(type_of(f.lookup("init_module")) == unsigned{n_text | n_ext});
  // ... and among locals, the earlier line.
  CHECK(value_of(f.lookup("cleanup_module")) == 0xffffffffc0500000);
  // The suffix is not part of any name.
  CHECK(f.lookup("floppy_ready\t[floppy]").error() == errc::symbol_not_found);
  CHECK(f.lookup("[floppy]").error() == errc::symbol_not_found);
  f.for_each([](std::string_view n, kvaddr, std::uint8_t) {
    CHECK(n.find('[') == std::string_view::npos);
    CHECK(n.find('\t') == std::string_view::npos);
  });
  // A blank instead of the tab, and trailing blanks after the suffix, are taken too.
  const auto g = from_text("ffffffffc0400000 t floppy_ready [floppy]  \nffffffffc0400100 T x\t[a]\r\n");
  CHECK(value_of(g.lookup("floppy_ready")) == 0xffffffffc0400000);
  CHECK(value_of(g.lookup("x")) == 0xffffffffc0400100);
}

// ---- symbol_file: name rules ------------------------------------------------------------

TEST_CASE("symbol_file: _foo finds foo, foo never finds _foo, the exact name wins, a global beats a local",
          "[resolver][linux][symbol_file]") {
  const auto f = from_text(
      "ffffffff81000100 t dup\n"
      "ffffffff81000200 T dup\n"
      "ffffffff81000300 T dup\n"
      "ffffffff81000400 d local_twice\n"
      "ffffffff81000500 d local_twice\n"
      "ffffffff81000600 T plain\n"
      "ffffffff81000700 T _under\n"
      "ffffffff81000800 T both\n"
      "ffffffff81000900 T _both\n"
      "ffffffff81000a00 T __double\n"
      "ffffffff81000b00 T _\n");
  CHECK(value_of(f.lookup("dup")) == 0xffffffff81000200);          // first global
  CHECK(value_of(f.lookup("local_twice")) == 0xffffffff81000400);  // first of equals
  CHECK(value_of(f.lookup("_plain")) == 0xffffffff81000600);       // nlist's underscore
  CHECK(f.lookup("under").error() == errc::symbol_not_found);      // never added
  CHECK(value_of(f.lookup("_under")) == 0xffffffff81000700);
  CHECK(value_of(f.lookup("_both")) == 0xffffffff81000900);  // exact name first
  CHECK(value_of(f.lookup("both")) == 0xffffffff81000800);
  CHECK(value_of(f.lookup("___double")) == 0xffffffff81000a00);  // one underscore stripped
  CHECK(f.lookup("____double").error() == errc::symbol_not_found);
  CHECK(value_of(f.lookup("_")) == 0xffffffff81000b00);  // "_" alone is a name, not a prefix
  CHECK(value_of(f.lookup("__")) == 0xffffffff81000b00);
  CHECK(f.lookup("").error() == errc::symbol_not_found);
  CHECK(f.size() == 11);
}

// ---- symbol_file: kptr_restrict -----------------------------------------------------------

TEST_CASE("symbol_file on a kallsyms whose addresses are all 0 (kptr_restrict) fails lookups with no_symbol_table",
          "[resolver][linux][symbol_file]") {
  kvmxx_test::temp_dir dir;
  const std::string path = dir.path("kallsyms-as-user");
  kvmxx_test::write_file(path, bytes_of("0000000000000000 T _stext\n"
                                        "0000000000000000 T _text\n"
                                        "0000000000000000 D linux_banner\n"
                                        "0000000000000000 t floppy_ready\t[floppy]\n"));
  auto r = symbol_file::open(path.c_str());
  REQUIRE(r.has_value());
  const auto& f = r.value();
  CHECK(f.addresses_hidden());
  CHECK(f.size() == 4);  // the names are kept
  const auto s = f.lookup("linux_banner");
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error() == errc::no_symbol_table);
  const auto msg = kvmxx::describe(s.error());
  CHECK(contains(msg, "kptr_restrict"));
  CHECK(contains(msg, "hid"));
  CHECK(contains(msg, path));
  CHECK(contains(msg, "linux_banner"));
  // Names that are not there fail the same way: nothing can be resolved.
  CHECK(f.lookup("nothing_like_it").error() == errc::no_symbol_table);
  std::size_t seen = 0;
  f.for_each([&](std::string_view, kvaddr v, std::uint8_t) {
    CHECK(kvmxx::to_integer(v) == 0);
    ++seen;
  });
  CHECK(seen == 4);

  // One non-zero address is enough for a real table (per-CPU symbols are at 0).
  const auto g = from_text("0000000000000000 D fixed_percpu_data\nffffffff81000000 T _stext\n");
  CHECK_FALSE(g.addresses_hidden());
  CHECK(value_of(g.lookup("fixed_percpu_data")) == 0);
  CHECK(value_of(g.lookup("_stext")) == 0xffffffff81000000);
}

// ---- symbol_file: malformed input ---------------------------------------------------------

TEST_CASE("symbol_file rejects a malformed line with errc::corrupt naming the path and the line number",
          "[resolver][linux][symbol_file]") {
  const struct {
    const char* line;
    const char* why;
  } bad[] = {
      {"ffffffff8100000 T short_address", "15 digits"},
      {"ffffffff810000000 T long_address", "17 digits"},
      {"ffffffff8100 T twelve_digits", "12 digits"},
      {"0xffffffff81000000 T prefixed", "0x prefix"},
      {"ffffffff8100000g T not_hex", "a non-hex digit"},
      {"ffffffff81000000T glued", "no blank after the address"},
      {"ffffffff81000000 Tx two_letters", "a two-letter type"},
      {"ffffffff81000000 1 digit_type", "a digit as type"},
      {"ffffffff81000000 ? question", "nm's '?' type"},
      {"ffffffff81000000 T", "no name"},
      {"ffffffff81000000", "only an address"},
      {"ffffffff81000000 T two words", "text after the name"},
      {"ffffffff81000000 T name [mod", "an unclosed module"},
      {"ffffffff81000000 T name []", "an empty module"},
      {"ffffffff81000000 T name [a b]", "a blank in the module"},
      {"ffffffff81000000 T na\x01me", "a control character in the name"},
      {"ffffffff81000000 T na\x7fme", "DEL in the name"},
      {"  ffffffff81000000 T indented", "leading blanks before an address"},
      {"       T no_address", "an address-less defined symbol"},
      {"# a comment", "a comment"},
      {"hello world", "prose"},
  };
  for (const auto& b : bad) {
    INFO(b.why);
    // Two good lines and a blank one before: the bad line is line 4.
    const std::string text = std::string("ffffffff81000000 T _stext\n\nffffffff81000010 T _text\n") + b.line +
                             "\nffffffff81000020 T after\n";
    const auto r = symbol_file::from_text(text, "bad.map");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::corrupt);
    const auto msg = kvmxx::describe(r.error());
    INFO(msg);
    CHECK(contains(msg, "bad.map:4:"));
    CHECK(contains(msg, "malformed line"));
  }
  // The message shows the line, unprintable bytes as '?'.
  const auto r = symbol_file::from_text("ffffffff81000000 T na\x01me\n", "ctl.map");
  REQUIRE_FALSE(r.has_value());
  CHECK(contains(kvmxx::describe(r.error()), "ctl.map:1:"));
  CHECK(contains(kvmxx::describe(r.error()), "na?me"));
  // A NUL byte is not a name character either.
  const std::string with_nul("ffffffff81000000 T a\0b\n", 23);
  CHECK(symbol_file::from_text(with_nul).error() == errc::corrupt);
}

TEST_CASE("symbol_file::open reports the line number of a malformed line in a file", "[resolver][linux][symbol_file]") {
  kvmxx_test::temp_dir dir;
  const std::string path = dir.path("System.map");
  std::string text;
  for (int i = 0; i < 5000; ++i) {
    char line[64];
    std::snprintf(line, sizeof line, "ffffffff81%06x T sym_%d\n", i * 16, i);
    text += line;
  }
  text += "ffffffff81ffff00 T oops extra\n";  // line 5001, past the first 64 KiB read
  kvmxx_test::write_file(path, bytes_of(text));
  const auto r = symbol_file::open(path.c_str());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::corrupt);
  CHECK(contains(kvmxx::describe(r.error()), path + ":5001:"));
}

TEST_CASE("symbol_file stops at an over-long line, so reading a file of NULs costs little",
          "[resolver][linux][symbol_file]") {
  kvmxx_test::temp_dir dir;
  const std::string path = dir.path("zeros");
  const std::vector<std::byte> zeros(1 << 20, std::byte{0});  // like /dev/zero: no newline at all
  kvmxx_test::write_file(path, zeros);
  const auto r = symbol_file::open(path.c_str());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::corrupt);
  CHECK(contains(kvmxx::describe(r.error()), path + ":1:"));
  CHECK(contains(kvmxx::describe(r.error()), "longer than"));

  // The same limit in memory, and a line just under it is fine.
  const std::string long_name(symbol_file::max_line_length + 1, 'x');
  const auto t = symbol_file::from_text("ffffffff81000000 T ok\nffffffff81000000 T " + long_name + "\n", "long");
  REQUIRE_FALSE(t.has_value());
  CHECK(contains(kvmxx::describe(t.error()), "long:2:"));
  const std::string fits(symbol_file::max_line_length - 19, 'y');
  const auto u = symbol_file::from_text("ffffffff81000000 T " + fits);
  REQUIRE(u.has_value());
  CHECK(value_of(u.value().lookup(fits)) == 0xffffffff81000000);
}

// ---- symbol_file: files -----------------------------------------------------------------

TEST_CASE("symbol_file::open reads a large file whose lines straddle read boundaries", "[resolver][linux][symbol_file]") {
  kvmxx_test::temp_dir dir;
  const std::string path = dir.path("kallsyms");
  std::string text;
  constexpr int n = 20000;  // ≈ 700 KiB: many 64 KiB reads, lines cut at arbitrary places
  for (int i = 0; i < n; ++i) {
    char line[96];
    std::snprintf(line, sizeof line, "%016llx %c symbol_number_%d%s\n",
                  static_cast<unsigned long long>(0xffffffff81000000ull + 0x40ull * static_cast<unsigned>(i)),
                  i % 2 ? 't' : 'T', i, i % 7 == 0 ? "\t[some_module]" : "");
    text += line;
  }
  kvmxx_test::write_file(path, bytes_of(text));
  auto r = symbol_file::open(path.c_str());
  REQUIRE(r.has_value());
  const auto& f = r.value();
  CHECK(f.size() == n);
  CHECK(std::string_view(f.path()) == path);
  for (int i = 0; i < n; i += 97) {
    const auto s = f.lookup("symbol_number_" + std::to_string(i));
    REQUIRE(s.has_value());
    CHECK(value_of(s) == 0xffffffff81000000ull + 0x40ull * static_cast<unsigned>(i));
    CHECK(type_of(s) == (i % 2 ? n_text : unsigned{n_text | n_ext}));
  }
  CHECK(value_of(f.lookup("symbol_number_19999")) == 0xffffffff81000000ull + 0x40ull * 19999);
}

TEST_CASE("symbol_file::open of a missing file fails with ENOENT naming the path, of a directory with invalid_argument",
          "[resolver][linux][symbol_file]") {
  kvmxx_test::temp_dir dir;
  const std::string path = dir.path("no-such-System.map");
  const auto r = symbol_file::open(path.c_str());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == std::errc::no_such_file_or_directory);
  CHECK(contains(kvmxx::describe(r.error()), path));

  const auto d = symbol_file::open(dir.root().c_str());
  REQUIRE_FALSE(d.has_value());
  CHECK(d.error() == errc::invalid_argument);
  CHECK(contains(kvmxx::describe(d.error()), dir.root()));
}

TEST_CASE("symbol_file on an empty file, or one without defined symbols, opens and answers no_symbol_table",
          "[resolver][linux][symbol_file]") {
  kvmxx_test::temp_dir dir;
  const std::string path = dir.path("empty.map");
  kvmxx_test::write_file(path, {});
  auto r = symbol_file::open(path.c_str());
  REQUIRE(r.has_value());
  CHECK(r.value().size() == 0);
  CHECK_FALSE(r.value().addresses_hidden());
  const auto s = r.value().lookup("init_uts_ns");
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error() == errc::no_symbol_table);
  CHECK(contains(kvmxx::describe(s.error()), path));
  CHECK(contains(kvmxx::describe(s.error()), "init_uts_ns"));

  const auto only_undefined = from_text("\n                 U printk\nffffffff81000000 U memcpy\n\n");
  CHECK(only_undefined.size() == 0);
  CHECK(only_undefined.lookup("printk").error() == errc::no_symbol_table);
  CHECK(from_text("").lookup("x").error() == errc::no_symbol_table);

  // A default-constructed resolver has nothing either.
  const symbol_file none;
  CHECK(none.size() == 0);
  CHECK(none.lookup("x").error() == errc::no_symbol_table);
  CHECK(contains(kvmxx::describe(none.lookup("x").error()), "no symbol file"));
}

TEST_CASE("symbol_file is copyable and movable, and keeps working in the copy and the move target",
          "[resolver][linux][symbol_file]") {
  STATIC_REQUIRE(kvmxx::symbol_resolver<symbol_file>);
  STATIC_REQUIRE(kvmxx::kernel_file_resolver<symbol_file>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<symbol_file>);
  auto original = from_text(system_map);
  const symbol_file copy = original;
  symbol_file moved = std::move(original);
  for (const symbol_file* f : std::initializer_list<const symbol_file*>{&copy, &moved}) {
    CHECK(value_of(f->lookup("init_uts_ns")) == 0xffffffff82bfb000);
    CHECK(f->size() == 25);
  }
  symbol_file assigned;
  assigned = copy;
  CHECK(value_of(assigned.lookup("_end")) == 0xffffffff84430000);
}

TEST_CASE("symbol_file::open reads the host's /proc/kallsyms, whose size is 0", "[resolver][linux][symbol_file]") {
  if (::access("/proc/kallsyms", R_OK) != 0) KVMXX_TEST_SKIP("/proc/kallsyms is not readable here");
  auto r = symbol_file::open("/proc/kallsyms");
  REQUIRE(r.has_value());
  const auto& f = r.value();
  CHECK(f.size() > 1000);
  const auto s = f.lookup("_stext");
  if (f.addresses_hidden()) {
    CHECK(s.error() == errc::no_symbol_table);
  } else {
    REQUIRE(s.has_value());
    CHECK(type_of(s) == unsigned{n_text | n_ext});
    CHECK(value_of(s) != 0);
  }
}

// ---- vmcoreinfo_symbols -------------------------------------------------------------------

TEST_CASE("vmcoreinfo_symbols resolves SYMBOL() lines as N_DATA|N_EXT, the last of a name winning",
          "[resolver][linux][vmcoreinfo_symbols]") {
  std::optional<vmcoreinfo_symbols> syms;
  {
    // The vmcoreinfo (and its text) are gone before the lookups: the resolver copies.
    const auto info = vmcoreinfo::parse(
        "OSRELEASE=6.1.0-56-amd64\n"
        "PAGESIZE=4096\n"
        "SYMBOL(init_uts_ns)=ffffffff82bfb000\n"
        "OFFSET(uts_namespace.name)=0\n"
        "SYMBOL(swapper_pg_dir)=ffffffff82a10000\n"
        "SYMBOL(_stext)=ffffffff81000000\n"
        "SYMBOL(mem_section)=ffff88800fe9e000\n"
        "SYMBOL(prb)=0xffffffff82a643e0\n"   // a 0x prefix is tolerated
        "SYMBOL(bogus)=not-hex\n"            // left out
        "SYMBOL(init_uts_ns)=ffffffff85bfb000\n"  // given twice: the last wins
        "NUMBER(phys_base)=-723517440\n"
        "KERNELOFFSET=3000000\n");
    syms.emplace(info);
  }
  const auto& s = *syms;
  CHECK(s.size() == 5);
  CHECK(value_of(s.lookup("init_uts_ns")) == 0xffffffff85bfb000);
  CHECK(value_of(s.lookup("swapper_pg_dir")) == 0xffffffff82a10000);
  CHECK(value_of(s.lookup("mem_section")) == 0xffff88800fe9e000);
  CHECK(value_of(s.lookup("prb")) == 0xffffffff82a643e0);
  CHECK(type_of(s.lookup("init_uts_ns")) == unsigned{n_data | n_ext});
  CHECK(type_of(s.lookup("_stext")) == 7u);
  // nlist's underscore rule: exact first, then one '_' stripped.
  CHECK(value_of(s.lookup("_stext")) == 0xffffffff81000000);
  CHECK(value_of(s.lookup("_swapper_pg_dir")) == 0xffffffff82a10000);
  CHECK(s.lookup("stext").error() == errc::symbol_not_found);
  // Not symbols: other keys, bad values.
  for (const char* n : {"bogus", "phys_base", "OSRELEASE", "KERNELOFFSET", "uts_namespace.name", "linux_banner"}) {
    INFO(n);
    const auto m = s.lookup(n);
    REQUIRE_FALSE(m.has_value());
    CHECK(m.error() == errc::symbol_not_found);
    CHECK(contains(kvmxx::describe(m.error()), std::string("SYMBOL(") + n + ")"));
    CHECK(contains(kvmxx::describe(m.error()), "VMCOREINFO"));
  }
  std::vector<std::string> names;
  s.for_each([&](std::string_view n, kvaddr v, std::uint8_t t) {
    names.emplace_back(n);
    CHECK(t == 7);
    CHECK(s.lookup(n).value().value == v);
  });
  CHECK(names == std::vector<std::string>{"_stext", "init_uts_ns", "mem_section", "prb", "swapper_pg_dir"});

  // Copies and moves work on their own.
  const vmcoreinfo_symbols copy = s;
  vmcoreinfo_symbols moved = std::move(*syms);
  syms.reset();
  CHECK(value_of(copy.lookup("prb")) == 0xffffffff82a643e0);
  CHECK(value_of(moved.lookup("prb")) == 0xffffffff82a643e0);
}

TEST_CASE("vmcoreinfo_symbols without SYMBOL() lines answers no_symbol_table", "[resolver][linux][vmcoreinfo_symbols]") {
  STATIC_REQUIRE(kvmxx::symbol_resolver<vmcoreinfo_symbols>);
  const vmcoreinfo_symbols empty;
  CHECK(empty.size() == 0);
  CHECK(empty.lookup("init_uts_ns").error() == errc::no_symbol_table);
  const vmcoreinfo_symbols no_symbols(vmcoreinfo::parse("OSRELEASE=6.1.0\nPAGESIZE=4096\n"));
  const auto r = no_symbols.lookup("init_uts_ns");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::no_symbol_table);
  CHECK(contains(kvmxx::describe(r.error()), "init_uts_ns"));
  CHECK(vmcoreinfo_symbols(vmcoreinfo::parse("")).lookup("x").error() == errc::no_symbol_table);
}

// ---- displaced ----------------------------------------------------------------------------

TEST_CASE("displaced adds a positive or negative displacement to every address, modulo 2^64",
          "[resolver][linux][displaced]") {
  STATIC_REQUIRE(kvmxx::symbol_resolver<displaced<symbol_file>>);
  STATIC_REQUIRE(kvmxx::symbol_resolver<displaced<kvmxx::resolver::none>>);
  STATIC_REQUIRE(std::is_default_constructible_v<displaced<symbol_file>>);
  auto map = from_text(
      "ffffffff81000000 T _stext\n"
      "ffffffff82bfb000 D init_uts_ns\n"
      "0000000000000010 A low\n"
      "ffffffffffffff00 d high\n");

  displaced d(map, 0x3000000);  // the kaslr boot's KERNELOFFSET
  CHECK(d.displacement() == 0x3000000);
  CHECK(value_of(d.lookup("_stext")) == 0xffffffff84000000);
  CHECK(value_of(d.lookup("init_uts_ns")) == 0xffffffff85bfb000);
  CHECK(type_of(d.lookup("init_uts_ns")) == unsigned{n_data | n_ext});  // types pass through
  CHECK(type_of(d.lookup("_stext")) == unsigned{n_text | n_ext});
  CHECK(value_of(d.lookup("_init_uts_ns")) == 0xffffffff85bfb000);  // the inner name rules
  CHECK(value_of(d.lookup("high")) == 0x2ffff00);                     // wraps past 2^64
  CHECK(value_of(d.inner().lookup("_stext")) == 0xffffffff81000000);  // the inner is not moved

  d.set_displacement(-0x1000000);
  CHECK(d.displacement() == -0x1000000);
  CHECK(value_of(d.lookup("_stext")) == 0xffffffff80000000);
  CHECK(value_of(d.lookup("low")) == 0xffffffffff000010);  // below 0 wraps too

  d.set_displacement(0);
  CHECK(value_of(d.lookup("_stext")) == 0xffffffff81000000);
  d.set_displacement(INT64_MIN);
  CHECK(value_of(d.lookup("low")) == 0x8000000000000010);

  // Failures are the inner resolver's, code and message.
  const auto miss = d.lookup("no_such_symbol");
  REQUIRE_FALSE(miss.has_value());
  CHECK(miss.error() == errc::symbol_not_found);
  CHECK(contains(kvmxx::describe(miss.error()), "no_such_symbol"));
  CHECK(contains(kvmxx::describe(miss.error()), "test.map"));
  CHECK(displaced<symbol_file>().lookup("x").error() == errc::no_symbol_table);
  CHECK(displaced(kvmxx::resolver::none{}, 0x1000).lookup("x").error() == errc::no_symbol_table);

  // The inner resolver can be changed in place.
  d.inner() = from_text("ffffffff81000000 T replaced\n");
  d.set_displacement(0x10);
  CHECK(value_of(d.lookup("replaced")) == 0xffffffff81000010);
}

// ---- chain -----------------------------------------------------------------------------------

namespace {
// A move-only resolver (like elf_symtab) for the chain's movability.
struct move_only_resolver {
  std::unique_ptr<int> p = std::make_unique<int>(0x42);
  kvmxx::result<kvmxx::symbol> lookup(std::string_view name) const {
    if (name == "move_only") return kvmxx::symbol{kvaddr{static_cast<std::uint64_t>(*p)}, 5};
    return kvmxx::detail::fail(errc::symbol_not_found, "move_only_resolver: \"%.*s\" not found",
                               static_cast<int>(name.size()), name.data());
  }
};
// A resolver that fails without recording a message.
struct silent_resolver {
  errc code = errc::symbol_not_found;
  kvmxx::result<kvmxx::symbol> lookup(std::string_view) const { return kvmxx::make_error_code(code); }
};
}  // namespace

TEST_CASE("chain returns the first source's hit, in order", "[resolver][linux][chain]") {
  const auto first = from_text("ffffffff81000000 T shared\nffffffff81000100 T only_first\n", "first.map");
  const auto second = from_text("ffffffff82000000 D shared\nffffffff82000100 D only_second\n", "second.map");
  chain c(first, second);
  STATIC_REQUIRE(decltype(c)::size() == 2);
  CHECK(value_of(c.lookup("shared")) == 0xffffffff81000000);
  CHECK(type_of(c.lookup("shared")) == unsigned{n_text | n_ext});
  CHECK(value_of(c.lookup("only_first")) == 0xffffffff81000100);
  CHECK(value_of(c.lookup("only_second")) == 0xffffffff82000100);
  CHECK(type_of(c.lookup("only_second")) == unsigned{n_data | n_ext});
  // Each source applies its own name rules: "_only_second" reaches the second source.
  CHECK(value_of(c.lookup("_only_second")) == 0xffffffff82000100);

  chain reversed(second, first);
  CHECK(value_of(reversed.lookup("shared")) == 0xffffffff82000000);

  // get<I>() reaches each source, and can change it.
  CHECK(std::string_view(c.get<0>().path()) == "first.map");
  CHECK(std::string_view(std::as_const(c).get<1>().path()) == "second.map");
  c.get<0>() = from_text("ffffffff83000000 T shared\n", "third.map");
  CHECK(value_of(c.lookup("shared")) == 0xffffffff83000000);
  CHECK(c.lookup("only_first").error() == errc::symbol_not_found);  // gone with the old first source
}

TEST_CASE("chain fails with symbol_not_found when a source had a table, no_symbol_table when none had",
          "[resolver][linux][chain]") {
  const auto map = from_text("ffffffff81000000 T _stext\n", "System.map");
  const vmcoreinfo_symbols vi(vmcoreinfo::parse("SYMBOL(swapper_pg_dir)=ffffffff82a10000\n"));
  const kvmxx::resolver::none nothing;

  SECTION("two tables, neither has the name") {
    chain c(map, vi);
    const auto r = c.lookup("no_such_symbol");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::symbol_not_found);
    const auto msg = kvmxx::describe(r.error());
    INFO(msg);
    CHECK(contains(msg, "no_such_symbol"));
    CHECK(contains(msg, "2 sources"));
    CHECK(contains(msg, "[1] System.map: symbol \"no_such_symbol\" not found"));
    CHECK(contains(msg, "[2] VMCOREINFO: no SYMBOL(no_such_symbol)"));
    CHECK(msg.find("[1]") < msg.find("[2]"));
  }
  SECTION("one source without a table, one without the name") {
    chain c(nothing, map);
    const auto r = c.lookup("no_such_symbol");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::symbol_not_found);
    const auto msg = kvmxx::describe(r.error());
    CHECK(contains(msg, "[1] cannot look up \"no_such_symbol\": no symbol table"));
    CHECK(contains(msg, "[2] System.map"));
  }
  SECTION("no source has a table") {
    chain c(nothing, symbol_file{}, vmcoreinfo_symbols{});
    const auto r = c.lookup("init_uts_ns");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::no_symbol_table);
    const auto msg = kvmxx::describe(r.error());
    INFO(msg);
    CHECK(contains(msg, "init_uts_ns"));
    CHECK(contains(msg, "3 sources"));
    CHECK(contains(msg, "[1]"));
    CHECK(contains(msg, "[2]"));
    CHECK(contains(msg, "[3] VMCOREINFO"));
  }
  SECTION("a chain of nothing") {
    const chain<> c;
    STATIC_REQUIRE(chain<>::size() == 0);
    const auto r = c.lookup("init_uts_ns");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::no_symbol_table);
    CHECK(contains(kvmxx::describe(r.error()), "init_uts_ns"));
  }
  SECTION("a source failing with another code counts as having a table") {
    chain c(silent_resolver{errc::corrupt}, nothing);
    CHECK(c.lookup("x").error() == errc::symbol_not_found);
    CHECK(contains(kvmxx::describe(c.lookup("x").error()), "[1] file is corrupt"));
  }
  SECTION("a hit in a later source keeps the caller's last error message") {
    chain c(map, vi);
    (void)kvmxx::detail::fail(errc::truncated, "an earlier failure of the caller's");
    const auto r = c.lookup("swapper_pg_dir");  // the first source fails on the way
    REQUIRE(r.has_value());
    CHECK(value_of(r) == 0xffffffff82a10000);
    CHECK(kvmxx::last_error_message() == "an earlier failure of the caller's");
    CHECK(kvmxx::describe(kvmxx::make_error_code(errc::truncated)) == "an earlier failure of the caller's");
  }
  SECTION("a source that records no message is not given a stale one") {
    chain c(map, silent_resolver{});
    const auto r = c.lookup("not_anywhere");
    REQUIRE_FALSE(r.has_value());
    const auto msg = kvmxx::describe(r.error());
    INFO(msg);
    CHECK(contains(msg, "[1] System.map: symbol \"not_anywhere\" not found"));
    CHECK(contains(msg, "[2] symbol not found"));  // the category's text, not source 1's message
  }
}

TEST_CASE("chain models symbol_resolver for movable sources, move-only ones included", "[resolver][linux][chain]") {
  using linux_chain = chain<displaced<symbol_file>, vmcoreinfo_symbols>;
  STATIC_REQUIRE(kvmxx::symbol_resolver<linux_chain>);
  STATIC_REQUIRE(std::is_copy_constructible_v<linux_chain>);
  STATIC_REQUIRE(std::is_default_constructible_v<linux_chain>);
  using with_move_only = chain<move_only_resolver, symbol_file>;
  STATIC_REQUIRE(kvmxx::symbol_resolver<with_move_only>);
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<with_move_only>);
  STATIC_REQUIRE(kvmxx::symbol_resolver<chain<kvmxx::resolver::c_callback>>);
  STATIC_REQUIRE_FALSE(std::is_default_constructible_v<chain<kvmxx::resolver::c_callback>>);
  STATIC_REQUIRE(kvmxx::symbol_resolver<chain<chain<kvmxx::resolver::none>, displaced<chain<symbol_file>>>>);

  with_move_only c(move_only_resolver{}, from_text("ffffffff81000000 T from_map\n"));
  with_move_only moved = std::move(c);
  CHECK(value_of(moved.lookup("move_only")) == 0x42);
  CHECK(value_of(moved.lookup("from_map")) == 0xffffffff81000000);
  with_move_only assigned(move_only_resolver{}, symbol_file{});
  assigned = std::move(moved);
  CHECK(value_of(assigned.lookup("from_map")) == 0xffffffff81000000);

  // A callback source (kvm_open2's resolver) chained after a table.
  chain with_callback(from_text("ffffffff81000000 T from_map\n"),
                      kvmxx::resolver::callback{[](std::string_view n) -> std::optional<kvaddr> {
                        if (n == "from_callback") return kvaddr{0x1234};
                        return std::nullopt;
                      }});
  CHECK(value_of(with_callback.lookup("from_callback")) == 0x1234);
  CHECK(type_of(with_callback.lookup("from_callback")) == unsigned{n_data | n_ext});
  CHECK(with_callback.lookup("nowhere").error() == errc::symbol_not_found);
}

// ---- the chain as a kernel_memory Resolver ---------------------------------------------------------

TEST_CASE("displaced<symbol_file> then vmcoreinfo_symbols resolve names for a kernel_memory handle",
          "[resolver][linux][chain][kernel_memory]") {
  using linux_symbols = chain<displaced<symbol_file>, vmcoreinfo_symbols>;
  using handle = kvmxx::kernel_memory<kvmxx::backend::null, kvmxx::arch::amd64, linux_symbols>;
  // The kaslr boot: System.map (link-time), VMCOREINFO (runtime, with KERNELOFFSET).
  const auto info = vmcoreinfo::parse(
      "OSRELEASE=6.1.0-56-amd64\n"
      "SYMBOL(init_uts_ns)=ffffffff85bfb000\n"
      "SYMBOL(swapper_pg_dir)=ffffffff85a10000\n"
      "SYMBOL(_stext)=ffffffff84000000\n"
      "SYMBOL(mem_section)=ffff88800fe9e000\n"
      "KERNELOFFSET=3000000\n");
  REQUIRE(info.kernel_offset().has_value());
  linux_symbols resolver(displaced(from_text(system_map, "System.map"),
                                   static_cast<std::int64_t>(*info.kernel_offset())),
                         vmcoreinfo_symbols(info));
  auto km = handle::adopt(kvmxx::backend::null(kvmxx::machine::amd64), std::move(resolver));
  REQUIRE(km.has_value());
  const auto& h = km.value();

  // From the moved System.map, agreeing with VMCOREINFO where both know the name.
  CHECK(kvmxx::to_integer(h.address_of("init_uts_ns").value()) == 0xffffffff85bfb000);
  CHECK(kvmxx::to_integer(h.address_of("_stext").value()) == 0xffffffff84000000);
  CHECK(kvmxx::to_integer(h.address_of("linux_banner").value()) == 0xffffffff85161900);
  CHECK(h.address_of("init_top_pgt").value() == h.address_of("swapper_pg_dir").value());
  // Only in VMCOREINFO (a macro on x86_64, never in System.map or kallsyms).
  CHECK(kvmxx::to_integer(h.address_of("swapper_pg_dir").value()) == 0xffffffff85a10000);
  CHECK(kvmxx::to_integer(h.address_of("mem_section").value()) == 0xffffffff8703f298);  // the map's comes first
  CHECK(h.lookup("swapper_pg_dir").value().type == 7);
  CHECK(h.lookup("verify_cpu").value().type == n_text);
  const auto miss = h.address_of("no_such_symbol");
  REQUIRE_FALSE(miss.has_value());
  CHECK(miss.error() == errc::symbol_not_found);
  CHECK(contains(kvmxx::describe(miss.error()), "no_such_symbol"));
  // The handle's resolver is the chain: its sources are reachable.
  CHECK(h.resolver().get<0>().displacement() == 0x3000000);

  // kvm_nlist2-style batch: found entries get type and address, missing ones 0/0, up to
  // the first empty name.
  std::array<kvmxx::nlist_entry, 7> nl{{{"_init_uts_ns"},
                                        {"swapper_pg_dir"},
                                        {"vmcoreinfo_data_safecopy"},
                                        {"no_such_symbol"},
                                        {"kexec_control_code_size"},
                                        {""},
                                        {"_stext"}}};
  const auto missing = h.lookup(nl);
  REQUIRE(missing.has_value());
  CHECK(missing.value() == 1);
  CHECK(kvmxx::to_integer(nl[0].value) == 0xffffffff85bfb000);
  CHECK(unsigned{nl[0].type} == unsigned{n_data | n_ext});
  CHECK(kvmxx::to_integer(nl[1].value) == 0xffffffff85a10000);
  CHECK(unsigned{nl[1].type} == 7u);
  CHECK(kvmxx::to_integer(nl[2].value) == 0xffffffff86fd6940);
  CHECK(unsigned{nl[2].type} == unsigned{n_bss});
  CHECK(kvmxx::to_integer(nl[3].value) == 0);
  CHECK(unsigned{nl[3].type} == 0u);
  // Absolute symbols are moved too: the wrapper moves every address (documented).
  CHECK(kvmxx::to_integer(nl[4].value) == 0x1ea + 0x3000000);
  CHECK(unsigned{nl[4].type} == unsigned{n_abs | n_ext});
  CHECK(unsigned{nl[6].type} == 0u);  // after the terminator: untouched
  CHECK(kvmxx::to_integer(nl[6].value) == 0);

  // With nothing to search anywhere, the batch fails as kvm_nlist2 returns -1.
  auto empty = handle::adopt(kvmxx::backend::null(kvmxx::machine::amd64), linux_symbols{});
  REQUIRE(empty.has_value());
  std::array<kvmxx::nlist_entry, 2> one{{{"init_uts_ns"}, {""}}};
  const auto none_found = empty.value().lookup(one);
  REQUIRE_FALSE(none_found.has_value());
  CHECK(none_found.error() == errc::no_symbol_table);
  CHECK(empty.value().address_of("init_uts_ns").error() == errc::no_symbol_table);
}

// ---- real kallsyms and VMCOREINFO of Debian kernels under QEMU ------------------------------------

namespace {

std::string dumps_dir() {
  const char* d = std::getenv("KVMXX_LINUX_DUMPS");
  return d != nullptr && *d != '\0' ? d : "/work/cache/linux-dumps";
}

struct facts {
  std::multimap<std::string, std::string> values;
  std::string vmcoreinfo_text;  // the vmcoreinfo_line values, one per line
  [[nodiscard]] std::optional<std::string> get(const std::string& key) const {
    const auto it = values.find(key);
    if (it == values.end()) return std::nullopt;
    return it->second;
  }
};

std::optional<facts> read_facts(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  facts f;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.find(' ');
    if (sp == std::string::npos) continue;
    const auto key = line.substr(0, sp), value = line.substr(sp + 1);
    f.values.emplace(key, value);
    if (key == "vmcoreinfo_line") f.vmcoreinfo_text += value + "\n";
  }
  return f;
}

struct kallsyms_fact {
  std::uint64_t address;
  char type;
  std::string name;
};
std::vector<kallsyms_fact> kallsyms_facts(const facts& f) {
  std::vector<kallsyms_fact> out;
  auto [a, b] = f.values.equal_range("kallsyms");
  for (auto it = a; it != b; ++it) {
    std::istringstream s(it->second);
    std::string addr, type, name;
    s >> addr >> type >> name;
    out.push_back({std::stoull(addr, nullptr, 16), type.empty() ? '?' : type[0], name});
  }
  return out;
}

}  // namespace

TEST_CASE("real kallsyms and VMCOREINFO of a nokaslr Debian boot agree on linux_banner and init_uts_ns",
          "[resolver][linux][real]") {
  const std::string boot = dumps_dir() + "/nokaslr";
  if (::access(boot.c_str(), F_OK) != 0)
    KVMXX_TEST_SKIP(boot << " does not exist (make it with tests/real/make-linux-dumps.sh)");
  const auto fx = read_facts(boot + "/facts.txt");
  REQUIRE(fx.has_value());
  auto kallsyms = symbol_file::open((boot + "/kallsyms.txt").c_str());
  if (!kallsyms) FAIL(kvmxx::describe(kallsyms.error()));
  const auto& ks = kallsyms.value();
  REQUIRE_FALSE(ks.addresses_hidden());
  const auto info = vmcoreinfo::parse(fx->vmcoreinfo_text);
  REQUIRE_FALSE(info.empty());
  const vmcoreinfo_symbols vi(info);
  REQUIRE(vi.size() > 5);
  CHECK(info.kernel_offset().value_or(1) == 0);  // nokaslr

  // Every `kallsyms` fact is what symbol_file reads from kallsyms.txt (with its letter's n_type).
  const auto facts_syms = kallsyms_facts(*fx);
  REQUIRE(facts_syms.size() >= 10);
  for (const auto& k : facts_syms) {
    INFO(k.name);
    const auto s = ks.lookup(k.name);
    REQUIRE(s.has_value());
    CHECK(value_of(s) == k.address);
    const unsigned want = (k.type == 'T' || k.type == 't')   ? n_text
                          : (k.type == 'B' || k.type == 'b') ? n_bss
                                                             : n_data;
    CHECK(type_of(s) == (want | (k.type >= 'A' && k.type <= 'Z' ? n_ext : 0u)));
  }

  // The two sources agree where both know the name.
  const auto uts_k = ks.lookup("init_uts_ns"), uts_v = vi.lookup("init_uts_ns");
  REQUIRE(uts_k.has_value());
  REQUIRE(uts_v.has_value());
  CHECK(value_of(uts_k) == value_of(uts_v));
  CHECK(value_of(ks.lookup("_stext")) == value_of(vi.lookup("_stext")));
  CHECK(value_of(ks.lookup("prb")) == value_of(vi.lookup("prb")));
  CHECK(value_of(ks.lookup("init_top_pgt")) == value_of(vi.lookup("swapper_pg_dir")));
  // linux_banner is not a VMCOREINFO symbol: kallsyms alone has it, and the facts agree.
  CHECK(vi.lookup("linux_banner").error() == errc::symbol_not_found);
  std::optional<std::uint64_t> banner_fact;
  for (const auto& k : facts_syms)
    if (k.name == "linux_banner") banner_fact = k.address;
  REQUIRE(banner_fact.has_value());
  CHECK(value_of(ks.lookup("linux_banner")) == *banner_fact);
  // linux_banner lies inside the kernel's data, between _etext and _end.
  CHECK(value_of(ks.lookup("linux_banner")) > value_of(ks.lookup("_etext")));
  CHECK(value_of(ks.lookup("linux_banner")) < value_of(ks.lookup("_end")));

  // Chained, each source supplies what the other lacks, and they agree on the rest.
  chain both(ks, vi);
  CHECK(value_of(both.lookup("linux_banner")) == *banner_fact);
  CHECK(value_of(both.lookup("init_uts_ns")) == value_of(uts_v));
  CHECK(value_of(both.lookup("swapper_pg_dir")) == value_of(ks.lookup("init_top_pgt")));
  for (const auto& missing : {std::string("swapper_pg_dir"), std::string("kallsyms_names")}) {
    INFO(missing);
    CHECK(ks.lookup(missing).error() == errc::symbol_not_found);  // README: kallsyms_missing
    CHECK(both.lookup(missing).has_value());
  }
  // Every name both know has one address — except mem_section: with SPARSEMEM_EXTREME
  // the kernel writes the *value* of the mem_section pointer (VMCOREINFO_SYMBOL_ARRAY),
  // while kallsyms gives the pointer variable's address. Chain order decides which one
  // a lookup of "mem_section" returns.
  std::size_t agreed = 0;
  vi.for_each([&](std::string_view n, kvaddr v, std::uint8_t) {
    INFO(n);
    const auto k = ks.lookup(n);
    if (!k) return;
    if (n == "mem_section") {
      CHECK(k.value().value != v);
      CHECK(value_of(both.lookup(n)) == value_of(k));
      CHECK(value_of(chain(vi, ks).lookup(n)) == kvmxx::to_integer(v));
    } else {
      CHECK(k.value().value == v);
      ++agreed;
    }
  });
  CHECK(agreed >= 4);
}

TEST_CASE("the nokaslr kallsyms moved by the kaslr boot's KERNELOFFSET is the kaslr kallsyms",
          "[resolver][linux][real]") {
  const std::string nokaslr = dumps_dir() + "/nokaslr", kaslr = dumps_dir() + "/kaslr";
  if (::access(nokaslr.c_str(), F_OK) != 0 || ::access(kaslr.c_str(), F_OK) != 0)
    KVMXX_TEST_SKIP(nokaslr << " or " << kaslr << " does not exist (make them with tests/real/make-linux-dumps.sh)");
  const auto fx = read_facts(kaslr + "/facts.txt");
  REQUIRE(fx.has_value());
  const auto info = vmcoreinfo::parse(fx->vmcoreinfo_text);
  const auto offset = info.kernel_offset();
  REQUIRE(offset.has_value());
  REQUIRE(fx->get("kerneloffset").has_value());
  CHECK(*offset == std::stoull(*fx->get("kerneloffset"), nullptr, 16));
  CHECK(*offset != 0);

  auto link_time = symbol_file::open((nokaslr + "/kallsyms.txt").c_str());
  auto runtime = symbol_file::open((kaslr + "/kallsyms.txt").c_str());
  if (!link_time) FAIL(kvmxx::describe(link_time.error()));
  if (!runtime) FAIL(kvmxx::describe(runtime.error()));
  const displaced moved(std::move(link_time).value(), static_cast<std::int64_t>(*offset));
  const auto& rt = runtime.value();
  REQUIRE(rt.size() > 0);
  CHECK(moved.inner().size() == rt.size());

  std::size_t compared = 0;
  rt.for_each([&](std::string_view n, kvaddr v, std::uint8_t t) {
    INFO(n);
    const auto s = moved.lookup(n);
    REQUIRE(s.has_value());
    CHECK(s.value().value == v);
    CHECK(s.value().type == t);
    ++compared;
  });
  CHECK(compared == rt.size());

  // And the moved table agrees with the kaslr boot's own VMCOREINFO.
  const vmcoreinfo_symbols vi(info);
  for (const char* n : {"init_uts_ns", "_stext", "prb"}) {
    INFO(n);
    CHECK(value_of(moved.lookup(n)) == value_of(vi.lookup(n)));
  }
  CHECK(value_of(moved.lookup("init_top_pgt")) == value_of(vi.lookup("swapper_pg_dir")));
}

TEST_CASE("try_lookup answers what lookup answers, without a message, in every resolver and chain",
          "[resolver][linux][chain]") {
  const auto map = from_text("ffffffff81000000 T _stext\nffffffff81000100 t local_thing\n", "System.map");
  const vmcoreinfo_symbols vi(vmcoreinfo::parse("SYMBOL(swapper_pg_dir)=ffffffff82a10000\nSYMBOL(_stext)=1\n"));
  const displaced<symbol_file> moved(map, 0x1000);
  STATIC_REQUIRE(kvmxx::quiet_symbol_resolver<symbol_file>);
  STATIC_REQUIRE(kvmxx::quiet_symbol_resolver<vmcoreinfo_symbols>);
  STATIC_REQUIRE(kvmxx::quiet_symbol_resolver<displaced<symbol_file>>);
  STATIC_REQUIRE(kvmxx::quiet_symbol_resolver<kvmxx::resolver::none>);
  STATIC_REQUIRE(kvmxx::quiet_symbol_resolver<chain<displaced<symbol_file>, vmcoreinfo_symbols>>);
  STATIC_REQUIRE_FALSE(kvmxx::quiet_symbol_resolver<chain<silent_resolver, symbol_file>>);
  const chain<kvmxx::resolver::none, displaced<symbol_file>, vmcoreinfo_symbols> c(kvmxx::resolver::none{}, moved, vi);
  (void)kvmxx::detail::fail(errc::truncated, "the caller's own failure");
  for (const std::string_view name :
       {"_stext", "stext", "local_thing", "swapper_pg_dir", "_swapper_pg_dir", "absent", "_absent", ""}) {
    CAPTURE(name);
    auto check = [&](const auto& r) {
      const auto loud = r.lookup(name);
      const auto quiet = r.try_lookup(name);
      REQUIRE(quiet.has_value() == loud.has_value());
      if (quiet) {
        CHECK(kvmxx::to_integer(quiet->value) == value_of(loud));
        CHECK(static_cast<unsigned>(quiet->type) == type_of(loud));
      }
    };
    check(map);
    check(vi);
    check(moved);
    check(c);
    // A quiet miss leaves the thread's message alone; a chain hit does too.
    (void)kvmxx::detail::fail(errc::truncated, "the caller's own failure");
    (void)c.try_lookup(name);
    CHECK(kvmxx::last_error_message() == "the caller's own failure");
  }
  CHECK(value_of(c.lookup("_stext")) == 0xffffffff81001000);  // the moved map wins over VMCOREINFO's
  CHECK(value_of(c.lookup("swapper_pg_dir")) == 0xffffffff82a10000);
}

// The kallsyms tables decoded from REAL dumps of Debian's 6.1 kernel (QEMU
// dump-guest-memory and makedumpfile output, made by tests/real/make-linux-dumps.sh into
// $KVMXX_LINUX_DUMPS), opened with no kernel file: the dump alone must resolve symbols.
// Expected values come from outside kvmxx: the guest's own /proc/kallsyms lines and the
// VMCOREINFO lines it read from /proc/kcore (facts.txt, kallsyms.txt), and the kernel
// package's System.map (linux-image-<version>-dbg puts the real one in /usr/lib/debug/boot;
// /boot's copy in Debian is a one-line placeholder), parsed here by a few lines of code.
// Without the dumps every test skips and says why; the System.map test also skips, saying
// where it looked, when no real System.map of the dumps' kernel is on the machine
// (tests/real/fetch-system-map.sh fetches one; tests/run-all.sh sets KVMXX_SYSTEM_MAP).
#include <catch2/catch.hpp>
#include <kvmxx/core/open.hpp>
#include <kvmxx/resolver/kallsyms.hpp>

#include <skip.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using u64 = std::uint64_t;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

// x86_64: kernel addresses are in the top half; per-CPU symbols are offsets below it and
// KASLR does not move them.
constexpr u64 kernel_half = 0xffff800000000000ull;

std::optional<u64> parse_hex(std::string_view s) {
  if (s.empty() || s.size() > 16) return std::nullopt;
  u64 v = 0;
  for (char c : s) {
    unsigned d;
    if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
    else return std::nullopt;
    v = v << 4 | d;
  }
  return v;
}

// The dumps' directory, or "" with the reason in `why`.
std::string dumps_dir(std::string& why) {
  const char* env = std::getenv("KVMXX_LINUX_DUMPS");
  if (env == nullptr || *env == '\0') {
    why = "KVMXX_LINUX_DUMPS is not set (make the dumps with tests/real/make-linux-dumps.sh)";
    return {};
  }
  if (!fs::is_regular_file(std::string(env) + "/manifest.txt")) {
    why = std::string(env) + "/manifest.txt is missing";
    return {};
  }
  return env;
}

// "key value" lines of facts.txt / manifest.txt.
std::vector<std::string> values_of(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + " ", 0) == 0) out.push_back(line.substr(key.size() + 1));
  return out;
}

struct text_symbol {
  u64 value;
  char type;
  std::string name;
};

// "<hex> <letter> <name>" lines (System.map, /proc/kallsyms).
std::vector<text_symbol> read_symbol_lines(const std::string& path) {
  std::vector<text_symbol> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string a, t, n;
    if (!(ls >> a >> t >> n) || t.size() != 1) continue;
    if (auto v = parse_hex(a)) out.push_back({*v, t[0], n});
  }
  return out;
}

// The guest's KERNELOFFSET, as it read VMCOREINFO from /proc/kcore.
std::optional<u64> guest_kerneloffset(const std::string& facts) {
  for (const auto& v : values_of(facts, "vmcoreinfo_line"))
    if (v.rfind("KERNELOFFSET=", 0) == 0) return parse_hex(v.substr(13));
  return std::nullopt;
}

// A real System.map of the dumps' kernel, or "" with where it looked.
std::string find_system_map(const std::string& dumps, std::string& why) {
  const auto versions = values_of(dumps + "/manifest.txt", "kernel_version");
  if (versions.empty()) {
    why = dumps + "/manifest.txt names no kernel_version";
    return {};
  }
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("KVMXX_SYSTEM_MAP"); env != nullptr && *env != '\0') candidates.push_back(env);
  candidates.push_back("/usr/lib/debug/boot/System.map-" + versions.front());
  candidates.push_back("/boot/System.map-" + versions.front());
  for (const auto& c : candidates)
    if (read_symbol_lines(c).size() > 1000) return c;  // Debian's /boot copy is a 1-line placeholder
  why = "no real System.map of kernel " + versions.front() + " (looked at $KVMXX_SYSTEM_MAP, " +
        candidates[candidates.size() - 2] +
        " from linux-image-" + versions.front() + "-dbg, and " + candidates.back() + ", Debian's placeholder)";
  return {};
}

const kvmxx::resolver::kallsyms& kallsyms_source(const kvmxx::linux_amd64_elf& km) { return km.resolver().get<2>(); }

const char* const elf_dumps[] = {"nokaslr/elf", "kaslr/elf", "la57/elf", "nokaslr/mdf-d31.elf"};

}  // namespace

TEST_CASE("kallsyms from the dump alone: every System.map symbol at its address plus KERNELOFFSET",
          "[os][linux][kallsyms][real]") {
  std::string why;
  const auto dumps = dumps_dir(why);
  if (dumps.empty()) KVMXX_TEST_SKIP(why);
  const auto map_path = find_system_map(dumps, why);
  if (map_path.empty()) KVMXX_TEST_SKIP(why);
  const auto map = read_symbol_lines(map_path);
  std::map<std::string, std::vector<const text_symbol*>> by_name;
  for (const auto& s : map) by_name[s.name].push_back(&s);

  for (const std::string rel : elf_dumps) {
    const std::string path = dumps + "/" + rel;
    if (!fs::exists(path)) KVMXX_TEST_SKIP(path << " is missing");
    const std::string boot = rel.substr(0, rel.find('/'));
    const auto offset = guest_kerneloffset(dumps + "/" + boot + "/facts.txt");
    REQUIRE(offset.has_value());
    INFO(rel << ", KERNELOFFSET " << std::hex << *offset << std::dec);

    const auto t0 = std::chrono::steady_clock::now();
    auto km = kvmxx::open_linux_elf(nullptr, path.c_str());
    const auto t1 = std::chrono::steady_clock::now();
    INFO((km ? "" : kvmxx::describe(km.error())));
    REQUIRE(km.has_value());
    const auto& ks = kallsyms_source(km.value());
    INFO(ks.why_empty());
    REQUIRE(ks.loaded());

    // 1. Every entry of the decoded table is a System.map line (same name and type, the
    //    address moved by KERNELOFFSET unless it is a per-CPU offset, which kallsyms types
    //    'A' where System.map has the section's letter).
    std::size_t table_in_map = 0;
    for (const auto& e : ks.table()->entries()) {
      const std::string name(ks.table()->name(e));
      bool found = false;
      for (const auto* s : by_name[name]) {
        const bool percpu = s->value < kernel_half;
        const u64 want = percpu ? s->value : s->value + *offset;
        if (e.value == want && (percpu ? e.type == 'A' : e.type == s->type)) found = true;
      }
      if (found) ++table_in_map;
      else FAIL_CHECK("decoded " << name << " " << std::hex << e.value << " " << e.type << " is not in System.map");
    }
    CHECK(table_in_map == ks.size());

    // 2. Every System.map name through the whole chain (kallsyms, then VMCOREINFO).
    std::size_t unique_ok = 0, duplicate_ok = 0, mismatched = 0, absent_abs = 0, absent_tables = 0, absent_other = 0;
    for (const auto& [name, lines] : by_name) {
      auto hit = km.value().resolver().lookup(name);
      if (!hit) {
        // scripts/kallsyms.c leaves out absolute symbols (other than per-CPU ones) and
        // the kallsyms tables themselves.
        if (lines.size() == 1 && lines[0]->type == 'A') ++absent_abs;
        else if (name.rfind("kallsyms_", 0) == 0) ++absent_tables;
        else {
          ++absent_other;
          FAIL_CHECK(name << " not resolved: " << kvmxx::describe(hit.error()));
        }
        continue;
      }
      const u64 got = kvmxx::to_integer(hit.value().value);
      std::size_t globals = 0;
      u64 global_value = 0;
      bool any = false;
      for (const auto* s : lines) {
        const u64 want = s->value < kernel_half ? s->value : s->value + *offset;
        any |= want == got;
        if (s->type >= 'A' && s->type <= 'Z') ++globals, global_value = want;
      }
      const bool ok = any && (globals != 1 || got == global_value);  // a single global wins
      if (!ok) {
        ++mismatched;
        FAIL_CHECK(name << " resolved to " << std::hex << got);
      } else if (lines.size() == 1) {
        ++unique_ok;
      } else {
        ++duplicate_ok;
      }
    }
    std::printf("kallsyms %-20s System.map %zu lines, %zu names; decoded %zu symbols in %.0f ms (open total); "
                "chain: %zu unique names and %zu duplicated names resolved as System.map says, %zu mismatched, "
                "not found: %zu absolute, %zu kallsyms_* tables, %zu other\n",
                rel.c_str(), map.size(), by_name.size(), ks.size(),
                std::chrono::duration<double, std::milli>(t1 - t0).count(), unique_ok, duplicate_ok, mismatched,
                absent_abs, absent_tables, absent_other);
    CHECK(mismatched == 0);
    CHECK(absent_other == 0);
    CHECK(unique_ok + duplicate_ok + absent_abs + absent_tables == by_name.size());
    CHECK(unique_ok > 80000);
    // VMCOREINFO supplies the tables kallsyms omits (SYMBOL(kallsyms_names) etc.).
    CHECK(kvmxx::to_integer(km.value().resolver().lookup("kallsyms_names").value().value) ==
          by_name["kallsyms_names"].front()->value + *offset);
  }
}

TEST_CASE("kallsyms from the dump alone agrees with the guest's /proc/kallsyms lines", "[os][linux][kallsyms][real]") {
  std::string why;
  const auto dumps = dumps_dir(why);
  if (dumps.empty()) KVMXX_TEST_SKIP(why);
  for (const std::string rel : elf_dumps) {
    const std::string path = dumps + "/" + rel;
    if (!fs::exists(path)) KVMXX_TEST_SKIP(path << " is missing");
    const std::string boot = rel.substr(0, rel.find('/'));
    const auto lines = read_symbol_lines(dumps + "/" + boot + "/kallsyms.txt");
    REQUIRE(lines.size() >= 10);
    auto km = kvmxx::open_linux_elf(nullptr, path.c_str());
    INFO(rel << ": " << (km ? "" : kvmxx::describe(km.error())));
    REQUIRE(km.has_value());
    const auto& ks = kallsyms_source(km.value());
    REQUIRE(ks.loaded());
    for (const auto& l : lines) {
      INFO(l.name);
      auto direct = ks.lookup(l.name);
      REQUIRE(direct.has_value());
      CHECK(kvmxx::to_integer(direct.value().value) == l.value);
      CHECK(direct.value().type == kvmxx::resolver::kallsyms::n_type_of(l.type));
      auto chained = km.value().resolver().lookup(l.name);
      REQUIRE(chained.has_value());
      CHECK(kvmxx::to_integer(chained.value().value) == l.value);
    }
    // What /proc/kallsyms lacks (facts: kallsyms_missing) the kallsyms source lacks too;
    // VMCOREINFO has those.
    for (const auto& name : values_of(dumps + "/" + boot + "/facts.txt", "kallsyms_missing")) {
      INFO(name);
      CHECK(ks.lookup(name).error() == kvmxx::errc::symbol_not_found);
      CHECK(km.value().resolver().lookup(name).has_value());
    }
    // The base is _text's runtime address, KASLR included.
    const auto offset = guest_kerneloffset(dumps + "/" + boot + "/facts.txt");
    REQUIRE(offset.has_value());
    for (const auto& l : lines)
      if (l.name == "_text") CHECK(ks.table()->relative_base() == l.value);
    CHECK(ks.table()->absolute_percpu());  // x86_64 SMP: CONFIG_KALLSYMS_ABSOLUTE_PERCPU
  }
}

TEST_CASE("kallsyms of the KASLR dump is the nokaslr dump's moved by KERNELOFFSET", "[os][linux][kallsyms][real]") {
  std::string why;
  const auto dumps = dumps_dir(why);
  if (dumps.empty()) KVMXX_TEST_SKIP(why);
  auto fixed = kvmxx::open_linux_elf(nullptr, (dumps + "/nokaslr/elf").c_str());
  auto moved = kvmxx::open_linux_elf(nullptr, (dumps + "/kaslr/elf").c_str());
  REQUIRE(fixed.has_value());
  REQUIRE(moved.has_value());
  const auto offset = guest_kerneloffset(dumps + "/kaslr/facts.txt");
  REQUIRE(offset.has_value());
  CHECK(*offset != 0);
  const auto* a = kallsyms_source(fixed.value()).table();
  const auto* b = kallsyms_source(moved.value()).table();
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  REQUIRE(a->size() == b->size());
  std::size_t moved_count = 0, percpu = 0, bad = 0;
  for (std::size_t i = 0; i < a->size(); ++i) {
    const auto& x = a->entries()[i];
    const auto& y = b->entries()[i];
    const bool is_percpu = x.value < kernel_half;
    if (a->name(x) != b->name(y) || x.type != y.type || y.value != (is_percpu ? x.value : x.value + *offset)) ++bad;
    (is_percpu ? percpu : moved_count) += 1;
  }
  CHECK(bad == 0);
  CHECK(percpu > 100);
  CHECK(moved_count > 90000);
}

TEST_CASE("a dump without VMCOREINFO opens; its kallsyms source is empty and says why", "[os][linux][kallsyms][real]") {
  std::string why;
  const auto dumps = dumps_dir(why);
  if (dumps.empty()) KVMXX_TEST_SKIP(why);
  auto km = kvmxx::open_linux_elf(nullptr, (dumps + "/novmcoreinfo/elf").c_str());
  REQUIRE(km.has_value());
  const auto& ks = kallsyms_source(km.value());
  CHECK_FALSE(ks.loaded());
  CHECK_THAT(ks.why_empty(), Contains("VMCOREINFO"));
  auto r = km.value().resolver().lookup("init_task");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == kvmxx::errc::no_symbol_table);
  CHECK_THAT(kvmxx::describe(r.error()), Contains("no VMCOREINFO"));
  // With the link-time kallsyms lines of the nokaslr boot as the kernel file it resolves.
  auto with_file = kvmxx::open_linux_elf((dumps + "/nokaslr/kallsyms.txt").c_str(),
                                         (dumps + "/novmcoreinfo/elf").c_str());
  REQUIRE(with_file.has_value());
  CHECK(with_file.value().resolver().lookup("init_task").has_value());
}

// SPDX-License-Identifier: BSD-2-Clause
//
// i386 Linux dumps, REAL: QEMU 7.2's dump-guest-memory (paging=false and paging=true) of
// Debian 12's own 686 (2-level paging) and 686-pae (PAE) kernels, made by
// tests/real/make-linux-dumps-i386.sh into $KVMXX_LINUX_DUMPS_I386 (layout:
// tests/real/README-i386.md). Expected values come from the guest (facts.txt: /proc/version,
// the hostname, the direct-map base from its /proc/kcore, the VMCOREINFO lines it read from
// /proc/kcore; kallsyms-full.txt: its whole /proc/kallsyms), from QEMU's `info registers`
// and QEMU's own page-table walk (the p_vaddr/p_paddr pairs of the paging=true dump), and
// from the dump files' bytes located here by a few lines of independent ELF parsing —
// never from the library. Without the dumps every test skips and says why.
#include <catch2/catch.hpp>
#include <kvmxx/core/open.hpp>
#include <kvmxx/os/linux/printk.hpp>

#include <skip.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using kvmxx::errc;
using kvmxx::kvaddr;
using kvmxx::physaddr;
using handle = kvmxx::linux_i386_elf;
using u64 = std::uint64_t;
using bytes_t = std::vector<std::byte>;
namespace fs = std::filesystem;

constexpr u64 P = 4096;
constexpr std::size_t marker_count = 1024;  // tests/real/README.md: KVMXX-PAGE-%04d\n + 4080 '.'

template <class T>
std::string message_of(const kvmxx::result<T>& r) {
  return r.has_value() ? std::string() : kvmxx::describe(r.error());
}
std::string hex(u64 v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}
std::optional<u64> parse_hex(std::string_view s) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
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
std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

struct facts_t {
  std::vector<std::pair<std::string, std::string>> kv;
  std::optional<std::string> get(std::string_view key) const {
    for (const auto& [k, v] : kv)
      if (k == key) return v;
    return std::nullopt;
  }
  // A KEY=VALUE line of the kernel's VMCOREINFO as the guest read it from /proc/kcore.
  std::optional<std::string> vmcoreinfo(std::string_view key) const {
    for (const auto& [k, v] : kv)
      if (k == "vmcoreinfo_line" && v.size() > key.size() && v.compare(0, key.size(), key) == 0 && v[key.size()] == '=')
        return v.substr(key.size() + 1);
    return std::nullopt;
  }
};
facts_t read_facts(const std::string& path) {
  facts_t f;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.find(' ');
    if (sp == std::string::npos) f.kv.emplace_back(line, "");
    else f.kv.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  }
  return f;
}

// /proc/kallsyms lines "<addr> <type> <name>[ [module]]": names that occur once, with address.
std::map<std::string, u64> read_unique_kallsyms(const std::string& path) {
  std::map<std::string, u64> m;
  std::set<std::string> dup;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    std::string addr, type, name, module;
    if (!(l >> addr >> type >> name) || (l >> module)) continue;  // skip module symbols
    const auto a = parse_hex(addr);
    if (!a) continue;
    if (!m.emplace(name, *a).second) dup.insert(name);
  }
  for (const auto& n : dup) m.erase(n);
  return m;
}

// CR3 of each CPU from HMP `info registers -a`.
std::vector<u64> read_cr3(const std::string& path) {
  std::vector<u64> out;
  std::istringstream in(read_text(path));
  std::string tok;
  while (in >> tok)
    if (tok.rfind("CR3=", 0) == 0)
      if (auto v = parse_hex(tok.substr(4))) out.push_back(*v);
  return out;
}

// Program headers of QEMU's ELF64 little-endian core (QEMU writes ELF64 for i386 guests
// too), parsed here from the gABI: e_phoff, PN_XNUM.
struct phdr_t {
  std::uint32_t type;
  u64 offset, vaddr, paddr, filesz, memsz;
};
u64 le(const unsigned char* p, int n) {
  u64 v = 0;
  for (int i = n; i-- > 0;) v = v << 8 | p[i];
  return v;
}
std::vector<phdr_t> read_phdrs(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  unsigned char eh[64];
  f.read(reinterpret_cast<char*>(eh), 64);
  REQUIRE(f.gcount() == 64);
  REQUIRE(std::memcmp(eh, "\x7f" "ELF\x02\x01", 6) == 0);
  REQUIRE(le(eh + 18, 2) == 3);  // EM_386
  const u64 phoff = le(eh + 32, 8), shoff = le(eh + 40, 8);
  u64 phnum = le(eh + 56, 2);
  if (phnum == 0xffff) {
    unsigned char sh[64];
    f.seekg(static_cast<std::streamoff>(shoff));
    f.read(reinterpret_cast<char*>(sh), 64);
    REQUIRE(f.gcount() == 64);
    phnum = le(sh + 44, 4);
  }
  std::vector<unsigned char> table(static_cast<std::size_t>(phnum * 56));
  f.seekg(static_cast<std::streamoff>(phoff));
  f.read(reinterpret_cast<char*>(table.data()), static_cast<std::streamsize>(table.size()));
  REQUIRE(static_cast<std::size_t>(f.gcount()) == table.size());
  std::vector<phdr_t> v;
  for (u64 i = 0; i < phnum; ++i) {
    const unsigned char* p = table.data() + i * 56;
    v.push_back({static_cast<std::uint32_t>(le(p, 4)), le(p + 8, 8), le(p + 16, 8), le(p + 24, 8), le(p + 32, 8),
                 le(p + 40, 8)});
  }
  return v;
}

std::string marker_page(std::size_t i) {
  char head[17];
  std::snprintf(head, sizeof head, "KVMXX-PAGE-%04zu\n", i);
  std::string page(head, 16);
  page.append(4080, '.');
  return page;
}

struct boot_t {
  std::string name, dir;
  facts_t facts;
  bool pae = false;
};

// The boot, or why it is not there (then the test skips).
std::optional<boot_t> find_boot(const std::string& boot, std::string& why) {
  const char* env = std::getenv("KVMXX_LINUX_DUMPS_I386");
  if (env == nullptr || *env == '\0') {
    why = "KVMXX_LINUX_DUMPS_I386 is not set (tests/real/make-linux-dumps-i386.sh makes the i386 dumps)";
    return std::nullopt;
  }
  const std::string manifest = std::string(env) + "/manifest.txt";
  if (!fs::exists(manifest)) {
    why = manifest + " does not exist";
    return std::nullopt;
  }
  std::istringstream in(read_text(manifest));
  std::string tag, b;
  bool listed = false;
  while (in >> tag >> b) {
    if (tag == "boot" && b == boot) listed = true;
    std::string rest;
    std::getline(in, rest);
  }
  if (!listed) {
    why = "boot " + boot + " is not in " + manifest;
    return std::nullopt;
  }
  boot_t r;
  r.name = boot;
  r.dir = std::string(env) + "/" + boot;
  r.facts = read_facts(r.dir + "/facts.txt");
  r.pae = r.facts.get("pae") == std::string("1");
  return r;
}

handle open_i386(const boot_t& b, const std::string& file, const char* kernel = nullptr) {
  const std::string path = b.dir + "/" + file;
  INFO(path);
  auto h = kvmxx::open_dump_handle(kernel, path.c_str());
  INFO(message_of(h));
  REQUIRE(h.has_value());
  REQUIRE(std::holds_alternative<handle>(h.value()));
  return std::move(std::get<handle>(h.value()));
}

// Machine, mode, root, and the strings of init_uts_ns (whose address the guest read from
// its own VMCOREINFO) against /proc/version and the hostname.
void check_basics(const boot_t& b, const handle& km) {
  const auto& core = km.source();
  CHECK(core.machine() == kvmxx::machine::i386);
  CHECK(core.paging_levels() == (b.pae ? 3u : 2u));
  REQUIRE(core.page_table_root().has_value());
  const u64 root = kvmxx::to_integer(*core.page_table_root());
  const auto pob = parse_hex(b.facts.get("page_offset_base").value_or(""));
  REQUIRE(pob.has_value());
  CHECK(*pob == 0xc0000000);
  const auto swapper = parse_hex(b.facts.vmcoreinfo("SYMBOL(swapper_pg_dir)").value_or(""));
  REQUIRE(swapper.has_value());
  if (!core.vmcoreinfo().empty()) {
    CHECK(root == *swapper - *pob);
  } else {
    // CR3 of the first CPU, as QEMU printed it (PAE: bits 31:5; else 31:12).
    const auto cr3 = read_cr3(b.dir + "/registers.txt");
    REQUIRE_FALSE(cr3.empty());
    CHECK(root == (cr3[0] & (b.pae ? 0xffffffe0u : 0xfffff000u)));
  }

  const auto uts = parse_hex(b.facts.vmcoreinfo("SYMBOL(init_uts_ns)").value_or(""));
  REQUIRE(uts.has_value());
  const auto off_name = std::stoll(b.facts.vmcoreinfo("OFFSET(uts_namespace.name)").value_or("0"));
  const u64 name = *uts + static_cast<u64>(off_name);  // struct new_utsname: 6 fields of 65
  auto field = [&](int i) {
    bytes_t buf(65);
    auto r = km.read_exact(kvaddr{name + 65u * static_cast<u64>(i)}, buf);
    INFO(message_of(r));
    REQUIRE(r.has_value());
    return std::string(reinterpret_cast<const char*>(buf.data()));
  };
  CHECK(field(0) == "Linux");
  CHECK(field(1) == b.facts.get("hostname").value_or("?"));
  CHECK(field(2) == b.facts.get("osrelease").value_or("?"));
  const std::string banner = b.facts.get("banner").value_or("?");
  // /proc/version is "Linux version <release> (<builder>) (<compiler>) <version>".
  CHECK(banner.rfind("Linux version " + field(2) + " ", 0) == 0);
  const std::string version = field(3);
  REQUIRE(banner.size() > version.size());
  CHECK(banner.substr(banner.size() - version.size()) == version);
}

// Finds the marker pages in the file's bytes (paging=false: one PT_LOAD per RAM block,
// p_paddr → file offset), then reads each through the direct map (PAGE_OFFSET + PA; all
// 256 MiB are lowmem).
void check_markers(const boot_t& b, const handle& km, const std::string& file) {
  const std::string path = b.dir + "/" + file;
  const auto phdrs = read_phdrs(path);
  std::ifstream f(path, std::ios::binary);
  std::vector<std::optional<u64>> where(marker_count);
  std::vector<char> page(P);
  for (const auto& ph : phdrs) {
    if (ph.type != 1) continue;
    for (u64 off = 0; off + P <= ph.filesz; off += P) {
      f.seekg(static_cast<std::streamoff>(ph.offset + off));
      f.read(page.data(), 16);
      if (std::memcmp(page.data(), "KVMXX-PAGE-", 11) != 0) continue;
      const int i = std::atoi(std::string(page.data() + 11, 4).c_str());
      if (i < 0 || static_cast<std::size_t>(i) >= marker_count) continue;
      f.read(page.data() + 16, P - 16);
      if (std::string(page.data(), P) != marker_page(static_cast<std::size_t>(i))) continue;
      where[static_cast<std::size_t>(i)] = ph.paddr + off;
    }
  }
  std::size_t found = 0;
  for (std::size_t i = 0; i < marker_count; ++i) {
    if (!where[i]) continue;
    ++found;
    const u64 pa = *where[i];
    REQUIRE(pa < 0x38000000);  // lowmem: in the direct map
    bytes_t buf(P);
    const u64 va = 0xc0000000 + pa;
    auto r = km.read_exact(kvaddr{va}, buf);
    INFO("marker " << i << " at " << hex(pa) << " via " << hex(va) << ": " << message_of(r));
    REQUIRE(r.has_value());
    REQUIRE(std::string(reinterpret_cast<const char*>(buf.data()), P) == marker_page(i));
    bytes_t phys(P);
    REQUIRE(km.read_physical(physaddr{pa}, phys).has_value());
    REQUIRE(phys == buf);
  }
  INFO(found << " of " << marker_count << " marker pages found in " << path);
  CHECK(found == marker_count);
}

// QEMU's paging=true dump: every PT_LOAD's p_vaddr is where QEMU's own walk of the first
// CPU's page tables found p_paddr. Kernel addresses must translate the same way (the
// kernel half of every page directory is the kernel's; below PAGE_OFFSET is the
// interrupted process's and swapper_pg_dir has nothing there).
void check_against_qemu_walk(const boot_t& b, const handle& km) {
  const auto phdrs = read_phdrs(b.dir + "/elf-paging");
  std::mt19937_64 rng(0x1386);
  std::size_t compared = 0, kernel_segments = 0;
  for (const auto& ph : phdrs) {
    if (ph.type != 1 || ph.vaddr < 0xc0000000 || ph.vaddr > 0xffffffff || ph.memsz == 0) continue;
    ++kernel_segments;
    // The first page, the last page and a random one of each segment.
    for (u64 off : {u64{0}, (ph.memsz - 1) & ~(P - 1), (rng() % ph.memsz) & ~(P - 1)}) {
      const u64 va = ph.vaddr + off + (rng() % P);
      const auto t = km.translate(kvaddr{va});
      INFO(hex(va) << " QEMU: " << hex(ph.paddr + (va - ph.vaddr)) << " kvmxx: " << message_of(t));
      REQUIRE(t.has_value());
      CHECK(kvmxx::to_integer(t.value().pa) == ph.paddr + (va - ph.vaddr));
      ++compared;
    }
  }
  INFO(kernel_segments << " kernel segments, " << compared << " addresses compared");
  CHECK(kernel_segments > 10);
}

void check_dmesg(const boot_t& b, const handle& km) {
  auto recs = kvmxx::linux_::read_printk_records(km, km.source().vmcoreinfo());
  INFO(message_of(recs));
  REQUIRE(recs.has_value());
  REQUIRE(recs.value().size() > 100);
  // The first record of a boot is linux_banner (printed by start_kernel), = /proc/version.
  CHECK(recs.value().front().seq == 0);
  CHECK(recs.value().front().text == b.facts.get("banner").value_or("?"));
  // start_kernel also logs the command line the guest saw in /proc/cmdline.
  bool found_cmdline = false;
  for (const auto& r : recs.value())
    if (r.text == "Kernel command line: " + b.facts.get("cmdline").value_or("?")) found_cmdline = true;
  CHECK(found_cmdline);
  for (std::size_t i = 1; i < recs.value().size(); ++i) CHECK(recs.value()[i].seq == recs.value()[i - 1].seq + 1);
}

void check_boot(const std::string& boot_name, bool paging_dump) {
  std::string why;
  const auto b = find_boot(boot_name, why);
  if (!b) KVMXX_TEST_SKIP(why);
  const handle km = open_i386(*b, "elf");
  check_basics(*b, km);
  check_markers(*b, km, "elf");
  if (!km.source().vmcoreinfo().empty()) check_dmesg(*b, km);
  if (paging_dump) {
    check_against_qemu_walk(*b, km);
    const handle kp = open_i386(*b, "elf-paging");
    check_basics(*b, kp);
  }
}

// Symbols: the nokaslr boot's /proc/kallsyms (link-time addresses) as the kernel file of the
// KASLR boot's dump must give the KASLR boot's own /proc/kallsyms addresses.
void check_kaslr_symbols(const std::string& kaslr_boot, const std::string& nokaslr_boot) {
  std::string why;
  const auto k = find_boot(kaslr_boot, why);
  if (!k) KVMXX_TEST_SKIP(why);
  const auto n = find_boot(nokaslr_boot, why);
  if (!n) KVMXX_TEST_SKIP(why);
  const std::string link_map = n->dir + "/kallsyms-full.txt";
  const handle km = open_i386(*k, "elf", link_map.c_str());
  const auto runtime = read_unique_kallsyms(k->dir + "/kallsyms-full.txt");
  const auto link = read_unique_kallsyms(link_map);
  REQUIRE(runtime.size() > 10000);
  const u64 stext = runtime.at("_stext");
  CHECK(parse_hex(k->facts.vmcoreinfo("SYMBOL(_stext)").value_or("")) == stext);
  INFO("KASLR moved _stext by " << hex(stext - link.at("_stext")));
  std::mt19937_64 rng(0x686);
  std::vector<std::pair<std::string, u64>> all(runtime.begin(), runtime.end());
  std::shuffle(all.begin(), all.end(), rng);
  std::size_t checked = 0;
  for (const auto& [name, addr] : all) {
    if (!link.count(name) || checked >= 2000) continue;
    // Text symbols only: the kernel image moves as a whole; absolute and per-CPU symbols do not.
    if (addr < stext || addr >= runtime.at("_etext")) continue;
    auto got = km.address_of(name);
    INFO(name << ": " << message_of(got));
    REQUIRE(got.has_value());
    CHECK(kvmxx::to_integer(got.value()) == addr);
    ++checked;
  }
  CHECK(checked >= 1000);
  // And VMCOREINFO's own symbols come through the same chain.
  const auto prb = parse_hex(k->facts.vmcoreinfo("SYMBOL(prb)").value_or(""));
  auto got = km.address_of("prb");
  INFO(message_of(got));
  REQUIRE(got.has_value());
  CHECK(kvmxx::to_integer(got.value()) == prb.value_or(0));
}

}  // namespace

TEST_CASE("i386 PAE (686-pae, KASLR): QEMU paging=false and paging=true dumps, banner, markers, dmesg",
          "[arch][i386][real]") {
  check_boot("pae", true);
}

TEST_CASE("i386 2-level (686, KASLR): QEMU paging=false and paging=true dumps, banner, markers, dmesg",
          "[arch][i386][real]") {
  check_boot("nopae", true);
}

TEST_CASE("i386 PAE without VMCOREINFO: root from CR3, PAE from CR4", "[arch][i386][real]") {
  check_boot("pae-novmcoreinfo", false);
}

TEST_CASE("i386 2-level without VMCOREINFO: root from CR3, 2-level from CR4", "[arch][i386][real]") {
  check_boot("nopae-novmcoreinfo", false);
}

TEST_CASE("i386 KASLR: link-time symbols move by VMCOREINFO's _stext to the guest's runtime addresses",
          "[arch][i386][real]") {
  check_kaslr_symbols("pae", "pae-novmcoreinfo");
  check_kaslr_symbols("nopae", "nopae-novmcoreinfo");
}

// The Linux ELF core backend on REAL dumps: QEMU 7.2's dump-guest-memory (paging=false
// and paging=true) and makedumpfile's ELF output (-E -d 31) of a Debian 6.1 guest, made by
// tests/real/make-linux-dumps.sh into $KVMXX_LINUX_DUMPS (layout: tests/real/README.md).
// Expected values come from what the guest itself reported (facts.txt: /proc/version,
// the hostname, /proc/iomem, the VMCOREINFO lines read from /proc/kcore, kallsyms.txt),
// from QEMU's `info registers` (registers.txt), from the marker file's known contents,
// and from the dump files' own bytes read here with a few lines of independent ELF
// parsing — never from the library. Without the dumps every test skips and says why.
#include <catch2/catch.hpp>
#include <kvmxx/arch/amd64.hpp>
#include <kvmxx/backend/elf_core.hpp>
#include <kvmxx/core/kernel_memory.hpp>
#include <kvmxx/resolver/none.hpp>

#include <skip.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <unistd.h>
#include <utility>
#include <vector>

namespace {

using kvmxx::errc;
using kvmxx::kvaddr;
using kvmxx::physaddr;
using kvmxx::backend::elf_core;
using handle = kvmxx::kernel_memory<elf_core, kvmxx::arch::amd64, kvmxx::resolver::none>;
using Catch::Matchers::Contains;
using u64 = std::uint64_t;
using bytes_t = std::vector<std::byte>;
namespace fs = std::filesystem;

constexpr u64 P = 4096;
constexpr u64 start_kernel_map = 0xffffffff80000000ull;
constexpr std::size_t marker_count = 1024;  // README: 1024 pages of KVMXX-PAGE-%04d\n + 4080 '.'

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

// facts.txt: "key value" lines, keys may repeat, '#' starts a comment.
struct facts_t {
  std::vector<std::pair<std::string, std::string>> kv;
  std::optional<std::string> get(std::string_view key) const {
    for (const auto& [k, v] : kv)
      if (k == key) return v;
    return std::nullopt;
  }
  std::vector<std::string> all(std::string_view key) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : kv)
      if (k == key) out.push_back(v);
    return out;
  }
  std::optional<u64> hex_value(std::string_view key) const {
    auto v = get(key);
    return v ? parse_hex(*v) : std::nullopt;
  }
};

facts_t read_facts(const std::string& path) {
  facts_t f;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.find(' ');
    if (sp == std::string::npos) f.kv.emplace_back(line, "");
    else f.kv.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  }
  return f;
}

// kallsyms.txt: "<addr> <type> <name>".
std::map<std::string, u64> read_kallsyms(const std::string& path) {
  std::map<std::string, u64> m;
  std::istringstream in(read_text(path));
  std::string addr, type, name;
  while (in >> addr >> type >> name)
    if (auto a = parse_hex(addr)) m.emplace(name, *a);
  return m;
}

// registers.txt (HMP `info registers -a`): "CPU#n" blocks of KEY=hex pairs.
std::vector<std::map<std::string, u64>> read_registers(const std::string& path) {
  std::vector<std::map<std::string, u64>> cpus;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("CPU#", 0) == 0) {
      cpus.emplace_back();
      continue;
    }
    if (cpus.empty()) continue;
    for (const char* key : {"RIP", "RSP", "RAX", "CR0", "CR3", "CR4"}) {
      const std::string k = std::string(key) + "=";
      std::size_t at = 0;
      while ((at = line.find(k, at)) != std::string::npos) {
        if (at == 0 || line[at - 1] == ' ') {
          const auto end = line.find(' ', at + k.size());
          if (auto v = parse_hex(line.substr(at + k.size(), end == std::string::npos ? end : end - at - k.size())))
            cpus.back()[key] = *v;
          break;
        }
        at += k.size();
      }
    }
  }
  return cpus;
}

// The program headers of an ELF64 little-endian core, parsed here from the gABI (QEMU's
// e_phoff and PN_XNUM included) — the independent view of where each byte is.
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
  REQUIRE(std::memcmp(eh, "\x7f" "ELF\x02\x01", 6) == 0);  // ELF64 little endian, as QEMU/makedumpfile write on x86_64
  const u64 phoff = le(eh + 32, 8), shoff = le(eh + 40, 8);
  u64 phnum = le(eh + 56, 2);
  REQUIRE(le(eh + 54, 2) == 56);
  if (phnum == 0xffff) {
    unsigned char sh[64];
    f.seekg(static_cast<std::streamoff>(shoff));
    f.read(reinterpret_cast<char*>(sh), 64);
    REQUIRE(f.gcount() == 64);
    phnum = le(sh + 44, 4);  // sh_info of section 0
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

bytes_t pread_file(std::ifstream& f, u64 offset, std::size_t len) {
  bytes_t b(len);
  f.clear();
  f.seekg(static_cast<std::streamoff>(offset));
  f.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(len));
  REQUIRE(static_cast<std::size_t>(f.gcount()) == len);
  return b;
}

std::string marker_page(std::size_t i) {
  char head[17];
  std::snprintf(head, sizeof head, "KVMXX-PAGE-%04zu\n", i);
  std::string page(head, 16);
  page.append(4080, '.');
  return page;
}

std::string text_of(const bytes_t& b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

// Starts reading the whole file into the page cache: the backend maps it with
// MADV_RANDOM (no readahead), which makes a first page-by-page scan of a cold 256 MiB
// dump wait for each page in turn.
void prefetch(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
  ::close(fd);
}

// One dump file of one boot, located through the manifest.
struct real_dump {
  std::string boot, format, path, dir;
  facts_t facts;
  std::map<std::string, u64> kallsyms;
  std::vector<std::map<std::string, u64>> registers;  // empty when registers.txt is absent
};

// The dump, or why it is not there (then the test skips).
std::optional<real_dump> find_dump(const std::string& boot, const std::string& format, std::string& why) {
  const char* env = std::getenv("KVMXX_LINUX_DUMPS");
  if (env == nullptr || *env == '\0') {
    why = "KVMXX_LINUX_DUMPS is not set (make the dumps with tests/real/make-linux-dumps.sh)";
    return std::nullopt;
  }
  const std::string root = env;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    why = "KVMXX_LINUX_DUMPS=" + root + " is not a directory";
    return std::nullopt;
  }
  const std::string manifest = root + "/manifest.txt";
  if (!fs::is_regular_file(manifest, ec)) {
    why = manifest + " is missing";
    return std::nullopt;
  }
  std::istringstream in(read_text(manifest));
  std::string line;
  std::optional<std::string> rel;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string kind, b, f, p;
    if (ls >> kind >> b >> f >> p && kind == "file" && b == boot && f == format) rel = p;
  }
  if (!rel) {
    why = "the manifest in " + root + " lists no " + format + " dump of the " + boot + " boot";
    return std::nullopt;
  }
  real_dump d;
  d.boot = boot;
  d.format = format;
  d.path = root + "/" + *rel;
  d.dir = root + "/" + boot;
  for (const auto& need : {d.path, d.dir + "/facts.txt", d.dir + "/kallsyms.txt"})
    if (!fs::is_regular_file(need, ec)) {
      why = need + " is missing";
      return std::nullopt;
    }
  d.facts = read_facts(d.dir + "/facts.txt");
  d.kallsyms = read_kallsyms(d.dir + "/kallsyms.txt");
  if (fs::is_regular_file(d.dir + "/registers.txt", ec)) d.registers = read_registers(d.dir + "/registers.txt");
  prefetch(d.path);
  return d;
}

// The guest's RAM from /proc/iomem ("start-end", inclusive).
std::vector<std::pair<u64, u64>> ram_ranges(const facts_t& f) {
  std::vector<std::pair<u64, u64>> v;
  for (const auto& r : f.all("iomem_ram")) {
    const auto dash = r.find('-');
    REQUIRE(dash != std::string::npos);
    const auto a = parse_hex(r.substr(0, dash)), b = parse_hex(r.substr(dash + 1));
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    v.emplace_back(*a, *b + 1);
  }
  REQUIRE_FALSE(v.empty());
  return v;
}

u64 symbol(const real_dump& d, const std::string& name) {
  const auto it = d.kallsyms.find(name);
  INFO(name << " in " << d.dir << "/kallsyms.txt");
  REQUIRE(it != d.kallsyms.end());
  return it->second;
}

// ---- the checks -------------------------------------------------------------------------

// Returns how many sampled addresses were reported excluded.
int check_segments_and_bytes(const real_dump& d, const elf_core& core) {
  const auto phdrs = read_phdrs(d.path);
  std::vector<phdr_t> loads;
  for (const auto& p : phdrs)
    if (p.type == 1 && p.memsz != 0) loads.push_back(p);
  REQUIRE(core.segments().size() == loads.size());
  for (std::size_t i = 0; i < loads.size(); ++i) {
    const auto& s = core.segments()[i];
    INFO("PT_LOAD " << i);
    REQUIRE(s.paddr == loads[i].paddr);
    REQUIRE(s.vaddr == loads[i].vaddr);
    REQUIRE(s.offset == loads[i].offset);
    REQUIRE(s.filesz == loads[i].filesz);
    REQUIRE(s.memsz == loads[i].memsz);
  }
  // Random pages: the bytes must be the file's bytes of a segment whose file part holds
  // them; pages that only excluded tails describe must fail as excluded.
  std::ifstream file(d.path, std::ios::binary);
  std::mt19937_64 rng(std::hash<std::string>{}(d.path));
  u64 top = 0;
  for (const auto& l : loads)
    if (l.paddr != ~u64{0}) top = std::max(top, std::min<u64>(l.paddr + l.memsz, 0x10000000));
  int read_ok = 0, excluded = 0;
  for (int k = 0; k < 300; ++k) {
    const u64 pa = (rng() % (top / P)) * P + (rng() % 2 ? rng() % P : 0);
    const std::size_t len = static_cast<std::size_t>(std::min<u64>(64 + rng() % 512, P - pa % P));
    const phdr_t* holder = nullptr;
    bool described = false;
    for (const auto& l : loads) {
      if (l.paddr == ~u64{0} || pa < l.paddr || pa - l.paddr >= l.memsz) continue;
      described = true;
      if (pa - l.paddr + len <= l.filesz) {
        holder = &l;
        break;
      }
    }
    bytes_t buf(len);
    const auto got = core.read_physical(physaddr{pa}, buf);
    INFO(d.format << " pa " << hex(pa) << ": " << message_of(got));
    if (holder != nullptr) {
      REQUIRE(got.has_value());
      REQUIRE(got.value() == len);
      REQUIRE(buf == pread_file(file, holder->offset + (pa - holder->paddr), len));
      ++read_ok;
    } else if (!described) {
      REQUIRE_FALSE(got.has_value());
      REQUIRE(got.error() == errc::page_not_dumped);
    } else if (!got.has_value()) {
      REQUIRE(got.error() == errc::page_not_dumped);
      if (std::none_of(loads.begin(), loads.end(), [&](const phdr_t& l) {
            return l.paddr != ~u64{0} && pa >= l.paddr && pa - l.paddr < l.filesz;
          })) {
        REQUIRE_THAT(message_of(got), Contains("excluded") && Contains(hex(pa)));
        ++excluded;
      }
    }
  }
  CHECK(read_ok > 0);
  return excluded;
}

void check_notes(const real_dump& d, const elf_core& core) {
  const auto& f = d.facts;
  const bool has_vmcoreinfo = f.get("dump_vmcoreinfo_device") == std::optional<std::string>("1");
  if (has_vmcoreinfo) {
    REQUIRE_FALSE(core.vmcoreinfo().empty());
    const auto osrelease = f.get("osrelease");
    REQUIRE(osrelease.has_value());
    CHECK(core.vmcoreinfo().osrelease() == std::optional<std::string_view>(*osrelease));
    CHECK_THAT(*f.get("banner"), Contains(std::string(core.vmcoreinfo().osrelease().value_or("?"))));
    // Every line the guest read from /proc/kcore's VMCOREINFO is in the dump's note.
    const auto lines = f.all("vmcoreinfo_line");
    CHECK(lines.size() > 50);
    for (const auto& line : lines) {
      const auto eq = line.find('=');
      REQUIRE(eq != std::string::npos);
      CAPTURE(line);
      CHECK(core.vmcoreinfo().get(line.substr(0, eq)) == std::optional<std::string_view>(line.substr(eq + 1)));
    }
    if (auto off = f.hex_value("kerneloffset")) CHECK(core.kerndisp() == static_cast<std::int64_t>(*off));
  } else {
    CHECK(core.vmcoreinfo().empty());
  }
  // CPUs: one NT_PRSTATUS (pid = index + 1) and one QEMU note each; the registers are
  // those QEMU's monitor printed while the guest was stopped for the dumps.
  const auto cpus = f.get("cpus");
  REQUIRE(cpus.has_value());
  REQUIRE(core.cpus().size() == std::stoul(*cpus));
  for (std::size_t i = 0; i < core.cpus().size(); ++i) {
    CAPTURE(i);
    const auto& c = core.cpus()[i];
    CHECK(c.has_gpr);
    CHECK(c.pid == i + 1);
    REQUIRE(c.cr.has_value());
    if (i < d.registers.size()) {
      const auto& r = d.registers[i];
      CHECK(c.gpr[16] == r.at("RIP"));
      CHECK(c.gpr[19] == r.at("RSP"));
      CHECK(c.gpr[10] == r.at("RAX"));
      CHECK((*c.cr)[0] == r.at("CR0"));
      CHECK((*c.cr)[3] == r.at("CR3"));
      CHECK((*c.cr)[4] == r.at("CR4"));
    }
  }
}

void check_root(const real_dump& d, const elf_core& core) {
  const auto& f = d.facts;
  const auto l5 = f.get("pgtable_l5_enabled");
  REQUIRE(l5.has_value());
  CHECK(core.paging_levels() == (*l5 == "1" ? 5u : 4u));
  if (d.boot == "la57") CHECK(core.paging_levels() == 5);
  REQUIRE(core.page_table_root().has_value());
  if (f.get("dump_vmcoreinfo_device") == std::optional<std::string>("1")) {
    const auto phys_base = f.hex_value("phys_base");  // modulo 2^64
    REQUIRE(phys_base.has_value());
    CHECK(kvmxx::to_integer(*core.page_table_root()) == symbol(d, "init_top_pgt") - start_kernel_map + *phys_base);
  } else if (!d.registers.empty()) {
    // From CR3 with the PCID bits and the PTI bit 12 cleared (specs/linux-dumps.md §10.1).
    CHECK(kvmxx::to_integer(*core.page_table_root()) == (d.registers[0].at("CR3") & 0x000fffffffffe000ull));
  }
}

void check_kernel_strings(const real_dump& d, const handle& km) {
  const auto banner = d.facts.get("banner");
  REQUIRE(banner.has_value());
  const std::string want = *banner + "\n" + std::string(1, '\0');  // linux_banner[] ends "\n" and its NUL
  bytes_t buf(want.size());
  const auto got = km.read(kvaddr{symbol(d, "linux_banner")}, buf);
  INFO(message_of(got));
  REQUIRE(got.has_value());
  REQUIRE(got.value() == buf.size());
  CHECK(text_of(buf) == want);

  const auto hostname = d.facts.get("hostname");
  REQUIRE(hostname.has_value());
  bytes_t node(65);  // struct new_utsname: sysname[65], then nodename[65]
  const auto n = km.read(kvaddr{symbol(d, "init_uts_ns") + 65}, node);
  INFO(message_of(n));
  REQUIRE(n.has_value());
  REQUIRE(n.value() == node.size());
  const std::string text = text_of(node);
  CHECK(text.substr(0, text.find('\0')) == *hostname);
}

// Scans physical memory page by page for the marker pages and reads each one found again
// through the direct map. Returns how many were found.
std::size_t check_markers(const real_dump& d, const elf_core& core, const handle& km) {
  const auto ram = ram_ranges(d.facts);
  u64 end = 0;
  for (const auto& r : ram) end = std::max(end, r.second);
  end = (end + P - 1) / P * P;
  const auto page_offset_base = d.facts.hex_value("page_offset_base");
  REQUIRE(page_offset_base.has_value());
  const auto pages = d.facts.get("marker_pages");
  REQUIRE(pages.has_value());
  REQUIRE(std::stoul(*pages) == marker_count);

  std::vector<std::vector<u64>> where(marker_count);
  std::size_t failed = 0, ram_failed = 0, bad_content = 0;
  bytes_t buf(P);
  for (u64 pa = 0; pa < end; pa += P) {
    const auto got = core.read_physical(physaddr{pa}, buf);
    if (!got.has_value() || got.value() != P) {
      ++failed;
      for (const auto& r : ram)
        if (pa >= r.first && pa + P <= r.second) ++ram_failed;
      continue;
    }
    if (std::memcmp(buf.data(), "KVMXX-PAGE-", 11) != 0) continue;
    const std::string head = text_of(bytes_t(buf.begin(), buf.begin() + 16));
    std::size_t i = marker_count;
    if (head[15] == '\n') i = static_cast<std::size_t>(std::strtoul(head.substr(11, 4).c_str(), nullptr, 10));
    if (i >= marker_count || text_of(buf) != marker_page(i)) {
      ++bad_content;
      continue;
    }
    where[i].push_back(pa);
  }
  CHECK(bad_content == 0);
  std::size_t found = 0, duplicated = 0;
  for (const auto& w : where) {
    found += w.empty() ? 0 : 1;
    duplicated += w.size() > 1 ? 1 : 0;
  }
  INFO(d.format << ": " << found << " marker pages found, " << failed << " pages unreadable");
  CHECK(duplicated == 0);
  if (d.format == "qemu-elf") CHECK(ram_failed == 0);  // paging=false dumps every RAM page
  if (d.format == "mdf-elf-d31") {
    // makedumpfile -d 31 excludes page-cache pages: README says a few hundred of the
    // marker pages remain; every page that remains is intact.
    CHECK(found > 0);
    CHECK(found < marker_count);
    CHECK(failed > 0);
  } else {
    CHECK(found == marker_count);
  }
  // Each page again, through the page tables and the direct map.
  std::size_t direct_ok = 0;
  for (std::size_t i = 0; i < marker_count; ++i) {
    if (where[i].empty()) continue;
    const u64 va = *page_offset_base + where[i][0];
    const auto got = km.read(kvaddr{va}, buf);
    INFO("marker " << i << " at " << hex(where[i][0]) << " via " << hex(va) << ": " << message_of(got));
    REQUIRE(got.has_value());
    REQUIRE(got.value() == P);
    REQUIRE(text_of(buf) == marker_page(i));
    ++direct_ok;
  }
  CHECK(direct_ok == found);
  return found;
}

void check_dump(const std::string& boot, const std::string& format) {
  std::string why;
  const auto d = find_dump(boot, format, why);
  if (!d) KVMXX_TEST_SKIP(why);
  INFO(d->path);
  auto opened = elf_core::open(d->path.c_str());
  INFO(message_of(opened));
  REQUIRE(opened.has_value());
  const elf_core& core = opened.value();
  CHECK(core.machine() == kvmxx::machine::amd64);
  CHECK(core.os() == kvmxx::os_kind::linux_);
  CHECK(std::string(core.path()) == d->path);
  CHECK(core.page_size() == P);
  if (format.rfind("qemu-", 0) == 0) CHECK(core.from_qemu());
  const int excluded = check_segments_and_bytes(*d, core);
  if (format == "mdf-elf-d31") CHECK(excluded > 0);  // -d 31 shortened p_filesz of many segments
  else CHECK(excluded == 0);
  check_notes(*d, core);
  check_root(*d, core);
  auto km = handle::adopt(std::move(opened).value(), {});
  INFO(message_of(km));
  REQUIRE(km.has_value());
  check_kernel_strings(*d, km.value());
  check_markers(*d, km.value().source(), km.value());
}

}  // namespace

TEST_CASE("QEMU's paging=false ELF of the nokaslr boot reads the banner, the hostname and every marker page",
          "[backend][elf_core][real]") {
  check_dump("nokaslr", "qemu-elf");
}

TEST_CASE("QEMU's paging=true ELF (PN_XNUM, ~65,700 overlapping PT_LOADs) reads like the paging=false one",
          "[backend][elf_core][real]") {
  check_dump("nokaslr", "qemu-elf-paging");
}

TEST_CASE("makedumpfile's -E -d 31 ELF reports its excluded pages as not dumped and keeps the rest exact",
          "[backend][elf_core][real]") {
  check_dump("nokaslr", "mdf-elf-d31");
}

TEST_CASE("the KASLR boot's dump finds the moved kernel through VMCOREINFO's root and phys_base",
          "[backend][elf_core][real]") {
  check_dump("kaslr", "qemu-elf");
}

TEST_CASE("a QEMU dump without VMCOREINFO takes the root from CR3 and still reads the kernel",
          "[backend][elf_core][real]") {
  check_dump("novmcoreinfo", "qemu-elf");
}

TEST_CASE("the la57 boot's dump is read with 5-level paging", "[backend][elf_core][real]") {
  check_dump("la57", "qemu-elf");
}

TEST_CASE("QEMU's and makedumpfile's ELF dumps of one boot hold the same physical memory",
          "[backend][elf_core][real]") {
  std::string why;
  const auto elf = find_dump("nokaslr", "qemu-elf", why);
  if (!elf) KVMXX_TEST_SKIP(why);
  std::vector<real_dump> others;
  for (const char* format : {"qemu-elf-paging", "mdf-elf-d31"})
    if (auto d = find_dump("nokaslr", format, why)) others.push_back(std::move(*d));
  if (others.empty()) KVMXX_TEST_SKIP(why);
  auto base = elf_core::open(elf->path.c_str());
  REQUIRE(base.has_value());
  const auto ram = ram_ranges(elf->facts);
  for (const auto& o : others) {
    INFO(o.path);
    auto other = elf_core::open(o.path.c_str());
    INFO(message_of(other));
    REQUIRE(other.has_value());
    std::mt19937_64 rng(42);
    int compared = 0;
    bytes_t a(P), b(P);
    for (int k = 0; k < 4000; ++k) {
      const auto& r = ram[rng() % ram.size()];
      const u64 pa = r.first + (rng() % ((r.second - r.first) / P)) * P;
      const auto ga = base.value().read_physical(physaddr{pa}, a);
      REQUIRE(ga.has_value());  // paging=false has every RAM page
      const auto gb = other.value().read_physical(physaddr{pa}, b);
      if (!gb.has_value()) {
        CHECK(gb.error() == errc::page_not_dumped);
        continue;
      }
      INFO("pa " << hex(pa));
      REQUIRE(gb.value() == P);
      REQUIRE(a == b);
      ++compared;
    }
    CHECK(compared > 500);
  }
}

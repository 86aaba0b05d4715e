// The aarch64 walk on REAL dumps: QEMU 7.2's dump-guest-memory (paging=false) of Debian
// 12's arm64 kernel booted under qemu-system-aarch64 -M virt, made by
// tests/real/make-linux-dumps-arm64.sh into $KVMXX_LINUX_DUMPS_ARM64 (tests/real/README.md).
// Expected values come from the guest itself (facts.txt: /proc/version, the hostname,
// /proc/iomem, its /proc/kcore program headers and VMCOREINFO lines, kallsyms.txt), from
// the marker file's known contents, and from Debian's own kernel Image (the offset of the
// banner string in it) — never from the library. Without the dumps every test skips and
// says why.
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
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

namespace {

using kvmxx::kvaddr;
using kvmxx::physaddr;
using u64 = std::uint64_t;
using bytes_t = std::vector<std::byte>;
namespace fs = std::filesystem;
constexpr u64 P = 4096;
constexpr std::size_t marker_count = 1024;

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
std::string text_of(const bytes_t& b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

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
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.find(' ');
    if (sp == std::string::npos) f.kv.emplace_back(line, "");
    else f.kv.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  }
  return f;
}

struct real_dump {
  std::string boot, path, dir, image;
  facts_t facts;
  std::map<std::string, u64> kallsyms;
};

std::optional<real_dump> find_dump(const std::string& boot, std::string& why) {
  const char* env = std::getenv("KVMXX_LINUX_DUMPS_ARM64");
  if (env == nullptr || *env == '\0') {
    why = "KVMXX_LINUX_DUMPS_ARM64 is not set (make the dumps with tests/real/make-linux-dumps-arm64.sh)";
    return std::nullopt;
  }
  const std::string root = env;
  std::error_code ec;
  const std::string manifest = root + "/manifest.txt";
  if (!fs::is_regular_file(manifest, ec)) {
    why = manifest + " is missing";
    return std::nullopt;
  }
  std::istringstream in(read_text(manifest));
  std::string line;
  std::optional<std::string> rel, image;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string kind, b, f, p;
    if (!(ls >> kind >> b)) continue;
    if (kind == "kernel_image") image = b;
    if (ls >> f >> p && kind == "file" && b == boot && f == "qemu-elf") rel = p;
  }
  if (!rel || !image) {
    why = "the manifest in " + root + " lists no qemu-elf dump of the " + boot + " boot or no kernel_image";
    return std::nullopt;
  }
  real_dump d;
  d.boot = boot;
  d.path = root + "/" + *rel;
  d.dir = root + "/" + boot;
  d.image = root + "/" + *image;
  for (const auto& need : {d.path, d.dir + "/facts.txt", d.dir + "/kallsyms.txt", d.image})
    if (!fs::is_regular_file(need, ec)) {
      why = need + " is missing";
      return std::nullopt;
    }
  d.facts = read_facts(d.dir + "/facts.txt");
  std::istringstream ks(read_text(d.dir + "/kallsyms.txt"));
  while (std::getline(ks, line)) {
    std::istringstream ls(line);
    std::string a, t, n;
    if (ls >> a >> t >> n)
      if (auto v = parse_hex(a)) d.kallsyms[n] = *v;
  }
  return d;
}

// "KEY=VALUE" from the VMCOREINFO the guest read from its own /proc/kcore.
std::optional<std::string> vmcoreinfo_line(const facts_t& f, const std::string& key) {
  for (const auto& l : f.all("vmcoreinfo_line"))
    if (l.rfind(key + "=", 0) == 0) return l.substr(key.size() + 1);
  return std::nullopt;
}

// The guest's /proc/kcore PT_LOADs that have a physical address: (vaddr, paddr, size).
std::vector<std::tuple<u64, u64, u64>> kcore_loads(const facts_t& f) {
  std::vector<std::tuple<u64, u64, u64>> v;
  for (const auto& l : f.all("kcore_phdr")) {
    std::istringstream ls(l);
    std::string type, va, pa, fs_, ms;
    REQUIRE(static_cast<bool>(ls >> type >> va >> pa >> fs_ >> ms));
    if (type != "PT_LOAD" || pa == "0xffffffffffffffff") continue;
    v.emplace_back(parse_hex(va).value(), parse_hex(pa).value(), parse_hex(ms).value());
  }
  return v;
}

std::string marker_page(std::size_t i) {
  char head[17];
  std::snprintf(head, sizeof head, "KVMXX-PAGE-%04zu\n", i);
  return std::string(head) + std::string(4080, '.');
}

void check_boot(const std::string& boot) {
  std::string why;
  const auto d = find_dump(boot, why);
  if (!d) KVMXX_TEST_SKIP(why);
  INFO(d->path);
  const auto& f = d->facts;
  auto h = kvmxx::open_dump_handle(nullptr, d->path.c_str());
  INFO(message_of(h));
  REQUIRE(h.has_value());
  REQUIRE(std::holds_alternative<kvmxx::linux_aarch64_elf>(h.value()));
  const auto& km = std::get<kvmxx::linux_aarch64_elf>(h.value());
  const auto& core = km.source();
  CHECK(core.machine() == kvmxx::machine::aarch64);
  CHECK(core.page_size() == P);

  // The facts the walk uses, against the guest's own view.
  const auto t1sz = f.hex_value("tcr_el1_t1sz");
  REQUIRE(t1sz.has_value());
  CHECK(core.va_bits() == 64 - *t1sz);
  CHECK(core.paging_levels() == 4);
  const auto swapper = vmcoreinfo_line(f, "SYMBOL(swapper_pg_dir)");
  const auto kimage_voffset = f.hex_value("kimage_voffset_kcore");  // from kcore's text segment
  REQUIRE((swapper && kimage_voffset));
  REQUIRE(core.page_table_root().has_value());
  CHECK(hex(kvmxx::to_integer(*core.page_table_root())) == hex(parse_hex(*swapper).value() - *kimage_voffset));
  const auto koff = f.hex_value("kerneloffset");
  REQUIRE(koff.has_value());
  CHECK(core.kerndisp() == static_cast<std::int64_t>(*koff));
  if (boot == "nokaslr") CHECK(*koff == 0);
  else CHECK(*koff != 0);

  // Every kcore segment with a physical address translates page by page to it: the kernel
  // image (every 64 KiB from _stext: the 64 KiB image header before it is not mapped, and
  // without KASLR vmalloc hands that hole out) and the linear map (every 256 KiB and its
  // last page). In the image one run of pages may be unmapped — the init sections, which
  // the kernel unmaps after boot — and the walk must then say "not valid".
  const auto loads = kcore_loads(f);
  REQUIRE(loads.size() >= 2);
  const u64 stext_va = d->kallsyms.at("_stext");
  std::optional<u64> text_va;
  std::size_t probes = 0, unmapped = 0, runs = 0;
  for (const auto& [va, pa, size] : loads) {
    const bool text = va == pa + *kimage_voffset;
    if (text) text_va = va;
    const u64 first = text ? stext_va - va : 0, step = text ? 0x10000 : 0x40000;
    REQUIRE(first < size);
    bool in_run = false;
    const auto probe = [&, va = va, pa = pa, text = text](u64 off) {
      const auto t = km.translate(kvaddr{va + off + 0x18});
      INFO(hex(va + off) << ": " << message_of(t));
      ++probes;
      if (!t.has_value() && text) {
        CHECK_THAT(message_of(t), Catch::Matchers::Contains("descriptor not valid"));
        ++unmapped;
        runs += in_run ? 0 : 1;
        in_run = true;
        return;
      }
      in_run = false;
      REQUIRE(t.has_value());
      REQUIRE(hex(kvmxx::to_integer(t.value().pa)) == hex(pa + off + 0x18));
    };
    for (u64 off = first; off < size; off += step) probe(off);
    probe(size - P);
  }
  REQUIRE(text_va.has_value());
  INFO(unmapped << " of " << probes << " probes unmapped in " << runs << " runs");
  CHECK(probes > 1000);
  CHECK(runs <= 1);
  CHECK(unmapped * 4 < probes);
  // kcore's text segment starts at _text, which the image places 64 KiB before _stext.
  CHECK(stext_va - *text_va == 0x10000);

  // linux_banner: where Debian's Image holds the banner string, relative to _text (the
  // Image is the kernel from _text on; kcore's text segment starts at _text).
  const auto banner = f.get("banner");
  REQUIRE(banner.has_value());
  const std::string image = read_text(d->image);
  const auto at = image.find(*banner + "\n");
  REQUIRE(at != std::string::npos);
  const std::string want = *banner + "\n" + std::string(1, '\0');
  bytes_t buf(want.size());
  auto got = km.read(kvaddr{*text_va + at}, buf);
  INFO(message_of(got));
  REQUIRE(got.has_value());
  CHECK(text_of(buf) == want);

  // Symbols from the dump's VMCOREINFO: _stext as kallsyms has it; init_uts_ns's nodename.
  const auto stext = km.address_of("_stext");
  INFO(message_of(stext));
  REQUIRE(stext.has_value());
  CHECK(hex(kvmxx::to_integer(stext.value())) == hex(d->kallsyms.at("_stext")));
  const auto uts = km.address_of("init_uts_ns");
  REQUIRE(uts.has_value());
  bytes_t node(65);
  REQUIRE(km.read(kvaddr{kvmxx::to_integer(uts.value()) + 65}, node).value() == node.size());
  const std::string nodename = text_of(node);
  CHECK(nodename.substr(0, nodename.find('\0')) == f.get("hostname").value());

  // The marker pages: by physical address, then through the linear map (kcore's RAM
  // segment gives VA − PA).
  const auto linear = f.hex_value("page_offset_base");
  REQUIRE(linear.has_value());
  std::vector<std::vector<u64>> where(marker_count);
  for (const auto& r : f.all("iomem_ram")) {
    const auto dash = r.find('-');
    const u64 start = parse_hex(r.substr(0, dash)).value(), end = parse_hex(r.substr(dash + 1)).value() + 1;
    bytes_t page(P);
    for (u64 pa = start; pa + P <= end; pa += P) {
      const auto n = core.read_physical(physaddr{pa}, page);
      REQUIRE(n.has_value());
      if (std::memcmp(page.data(), "KVMXX-PAGE-", 11) != 0) continue;
      const auto i = static_cast<std::size_t>(std::strtoul(text_of(page).substr(11, 4).c_str(), nullptr, 10));
      if (i < marker_count && text_of(page) == marker_page(i)) where[i].push_back(pa);
    }
  }
  std::size_t found = 0;
  bytes_t page(P);
  for (std::size_t i = 0; i < marker_count; ++i) {
    if (where[i].size() != 1) continue;
    ++found;
    const auto n = km.read(kvaddr{where[i][0] + *linear}, page);
    INFO("marker " << i << " at " << hex(where[i][0]) << ": " << message_of(n));
    REQUIRE(n.has_value());
    CHECK(text_of(page) == marker_page(i));
  }
  CHECK(found == marker_count);

  // The kernel log, through the arch-neutral printk reader: it has the boot banner and the
  // device-tree model line the serial console showed.
  const auto recs = kvmxx::linux_::read_printk_records(km, core.vmcoreinfo());
  INFO(message_of(recs));
  REQUIRE(recs.has_value());
  const std::string log = kvmxx::linux_::format_printk(recs.value());
  CHECK_THAT(log, Catch::Matchers::Contains(*banner));
  CHECK_THAT(log, Catch::Matchers::Contains("Machine model: linux,dummy-virt"));
  const std::string serial = read_text(d->dir + "/serial.log");
  CHECK_THAT(serial, Catch::Matchers::Contains("Machine model: linux,dummy-virt"));
}

}  // namespace

TEST_CASE("the arm64 nokaslr dump: root, kcore segments, banner, symbols, markers, dmesg", "[arch][aarch64][real]") {
  check_boot("nokaslr");
}

TEST_CASE("the arm64 KASLR dump: the same through the moved kernel image", "[arch][aarch64][real]") {
  check_boot("kaslr");
}

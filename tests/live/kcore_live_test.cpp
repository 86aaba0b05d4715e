// kvmxx-live-test: runs INSIDE the QEMU guest of tests/real/make-linux-dumps.sh's 'live'
// boot as /kvmxx-live-test (root, kptr_restrict=0; tests/real/README.md "The live boot")
// and reads the running kernel's own /proc/kcore with kvmxx. Linked -static: the guest
// has no libc. Every check prints one machine-checkable line,
//   CHECK <name> PASS|FAIL <detail>
//   COUNT <name> <decimal>
// and the last line is "SUMMARY pass=<n> fail=<n>"; the exit status is 1 if any check
// failed. tests/unit/backend/kcore_live_log_test.cpp turns the lines into test results.
//
// Expected values come from the kernel's own interfaces, never from kvmxx: /proc/version,
// uname(2), /proc/kallsyms, /sys/kernel/vmcoreinfo, klogctl(2), the kernel's errno from
// /dev/mem. (The host has no real System.map — Debian ships it in the -dbg package — so the
// symbol source given to kvmxx is the guest's /proc/kallsyms; the symbol checks test the
// parse of that 90,000-line file, the KASLR displacement chosen for it, and that every
// address it lists is readable through kcore's segments. VMCOREINFO's SYMBOL() values, an
// independent source inside kcore, are compared with kallsyms too.)
#include <kvmxx/core/open.hpp>
#include <kvmxx/os/linux/devmem.hpp>
#include <kvmxx/os/linux/printk.hpp>
#include <kvmxx/os/linux/vmcoreinfo_note.hpp>

#include <sys/klog.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace {

int passes = 0, failures = 0;

void check(const char* name, bool ok, const std::string& detail) {
  std::string d = detail;
  for (auto& c : d)
    if (c == '\n' || c == '\r') c = ' ';
  std::printf("CHECK %s %s %s\n", name, ok ? "PASS" : "FAIL", d.c_str());
  std::fflush(stdout);
  (ok ? passes : failures)++;
}
void count(const char* name, unsigned long long n) {
  std::printf("COUNT %s %llu\n", name, n);
  std::fflush(stdout);
}
std::string hex(std::uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}
template <class T>
std::string why(const kvmxx::result<T>& r) {
  return r.has_value() ? std::string("ok") : kvmxx::describe(r.error());
}
std::string slurp(const char* path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}
std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

struct ksym {
  std::uint64_t addr;
  char type;
  std::string name;
  bool module;
};

std::vector<ksym> read_kallsyms() {
  std::vector<ksym> out;
  std::ifstream f("/proc/kallsyms");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::string a, t, n, mod;
    if (!(ls >> a >> t >> n)) continue;
    ls >> mod;
    out.push_back({std::stoull(a, nullptr, 16), t[0], n, !mod.empty()});
  }
  return out;
}

}  // namespace

int main() {
  using kvmxx::kvaddr;
  using kvmxx::physaddr;

  // 1. kvmxx::open's probe calls /proc/kcore kcore.
  auto fmt = kvmxx::probe_core_file("/proc/kcore");
  check("probe", fmt.has_value() && fmt.value() == kvmxx::core_format::linux_kcore,
        fmt ? std::string(kvmxx::name_of(fmt.value())) : why(fmt));
  auto kind = kvmxx::open("/proc/kallsyms", "/proc/kcore", [](auto& k) -> int {
    return std::is_same_v<std::remove_cvref_t<decltype(k)>, kvmxx::linux_live_kcore> ? 1 : 0;
  });
  check("open_dispatch", kind.has_value() && kind.value() == 1, kind ? "linux_live_kcore" : why(kind));

  // 2. The typed handle, symbols from /proc/kallsyms.
  auto opened = kvmxx::open_linux_kcore("/proc/kallsyms");
  check("open", opened.has_value(), why(opened));
  if (!opened) {
    std::printf("SUMMARY pass=%d fail=%d\n", passes, failures);
    return 1;
  }
  const auto& km = opened.value();
  const auto& src = km.source();
  check("live", src.live(), src.info().format);
  check("vmcoreinfo_note", src.vmcoreinfo_source() == "note" && !src.vmcoreinfo().empty(),
        "source=" + src.vmcoreinfo_source());
  count("segments", src.segments().size());

  // 3. linux_banner against /proc/version.
  const std::string version = first_line(slurp("/proc/version"));
  {
    auto va = km.address_of("linux_banner");
    std::string got;
    if (va) {
      std::vector<char> buf(1024);
      auto n = km.read(va.value(), std::as_writable_bytes(std::span(buf)));
      if (n) got = first_line(std::string(buf.data(), strnlen(buf.data(), n.value())));
      else got = why(n);
    } else {
      got = why(va);
    }
    check("banner", got == version, "kvmxx=[" + got + "] proc=[" + version + "]");
  }

  // 4. init_uts_ns.name (struct new_utsname at offset 0, 65-byte fields) against uname(2).
  {
    struct utsname u {};
    ::uname(&u);
    auto va = km.address_of("init_uts_ns");
    char name[6 * 65] = {};
    auto r = va ? km.read_exact(va.value(), std::as_writable_bytes(std::span(name))) : kvmxx::result<void>(va.error());
    const std::string sys(name, strnlen(name, 65)), node(name + 65, strnlen(name + 65, 65)),
        rel(name + 130, strnlen(name + 130, 65)), mach(name + 260, strnlen(name + 260, 65));
    check("uts_release", r.has_value() && rel == u.release, "kvmxx=" + rel + " uname=" + u.release);
    check("uts_nodename", r.has_value() && node == u.nodename, "kvmxx=" + node + " uname=" + u.nodename);
    check("uts_sysname_machine", r.has_value() && sys == u.sysname && mach == u.machine, sys + "/" + mach);
  }

  // 5. Every /proc/kallsyms entry: kvmxx resolves the name to an address kallsyms lists
  //    for it, and the address is readable through kcore's segments.
  {
    const auto syms = read_kallsyms();
    std::map<std::string, std::set<std::uint64_t>> by_name;
    for (const auto& s : syms) by_name[s.name].insert(s.addr);
    unsigned long long compared = 0, mismatched = 0, not_found = 0, readable = 0, unreadable = 0, skipped_abs = 0;
    std::string first_bad, first_unreadable;
    std::set<std::uint64_t> tried;
    // KCORE_TEXT covers [_text, _end) (fs/proc/kcore.c): markers at or past _end in the
    // kernel-text window (_end itself, sme_workarea, __init_scratch_end) are not memory
    // kcore shows.
    const auto end_it = by_name.find("_end");
    const std::uint64_t image_end = end_it != by_name.end() ? *end_it->second.begin() : ~std::uint64_t{0};
    unsigned long long past_end = 0;
    for (const auto& s : syms) {
      auto r = km.address_of(s.name);
      ++compared;
      if (!r) {
        ++not_found;
        if (first_bad.empty()) first_bad = s.name + ": " + why(r);
      } else if (!by_name[s.name].count(kvmxx::to_integer(r.value()))) {
        ++mismatched;
        if (first_bad.empty()) first_bad = s.name + ": kvmxx " + hex(kvmxx::to_integer(r.value())) + " kallsyms " + hex(s.addr);
      }
      // Per-CPU offsets and absolute values are not addresses.
      if (s.addr < 0xffff800000000000ull) {
        ++skipped_abs;
        continue;
      }
      if (!s.module && s.addr >= image_end && s.addr < 0xffffffffc0000000ull) {
        ++past_end;
        continue;
      }
      if (!tried.insert(s.addr).second) continue;
      std::byte b[1];
      auto n = km.read(kvaddr{s.addr}, b);
      if (n && n.value() == 1) {
        ++readable;
      } else {
        ++unreadable;
        if (first_unreadable.size() < 400)
          first_unreadable += s.name + "@" + hex(s.addr) + (s.module ? "[mod]" : "") + ": " + why(n) + "; ";
      }
    }
    count("kallsyms_lines", syms.size());
    count("kallsyms_compared", compared);
    count("kallsyms_mismatched", mismatched);
    count("kallsyms_not_found", not_found);
    count("kallsyms_addresses_read", readable);
    count("kallsyms_addresses_unreadable", unreadable);
    count("kallsyms_not_addresses", skipped_abs);
    count("kallsyms_past_end", past_end);
    check("kallsyms_resolve", syms.size() > 10000 && mismatched == 0 && not_found == 0,
          std::to_string(compared) + " compared, " + std::to_string(mismatched) + " mismatched, " +
              std::to_string(not_found) + " not found" + (first_bad.empty() ? "" : "; first: " + first_bad));
    check("kallsyms_readable", readable > 10000 && unreadable == 0,
          std::to_string(readable) + " distinct addresses read, " + std::to_string(unreadable) + " unreadable" +
              (first_unreadable.empty() ? "" : "; " + first_unreadable));

    // VMCOREINFO's SYMBOL() lines (written by the kernel into kcore's note) against kallsyms.
    unsigned long long vi_compared = 0, vi_mismatched = 0;
    std::string vi_bad;
    std::istringstream lines(src.vmcoreinfo().text());
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("SYMBOL(", 0) != 0) continue;
      const auto close = line.find(")=");
      if (close == std::string::npos) continue;
      const std::string name = line.substr(7, close - 7);
      auto it = by_name.find(name);
      if (it == by_name.end()) continue;
      ++vi_compared;
      const std::uint64_t v = std::stoull(line.substr(close + 2), nullptr, 16);
      if (name == "mem_section") {
        // VMCOREINFO_SYMBOL_ARRAY(mem_section): with SPARSEMEM_EXTREME the variable is a
        // pointer and the line holds its value — which kvmxx reads at kallsyms' address.
        auto p = km.read_as<std::uint64_t>(kvaddr{*it->second.begin()});
        if (!p || p.value() != v) {
          ++vi_mismatched;
          vi_bad += "mem_section(value " + (p ? hex(p.value()) : why(p)) + " vs " + hex(v) + ") ";
        }
        continue;
      }
      if (!it->second.count(v)) {
        ++vi_mismatched;
        vi_bad += name + " ";
      }
    }
    count("vmcoreinfo_symbols_compared", vi_compared);
    check("vmcoreinfo_symbols", vi_compared >= 5 && vi_mismatched == 0,
          std::to_string(vi_compared) + " compared, " + std::to_string(vi_mismatched) + " mismatched " + vi_bad);
  }

  // 6. The VMCOREINFO note located by /sys/kernel/vmcoreinfo, read through kcore's
  //    physical view (KCORE_RAM p_paddr), equals the note in kcore's PT_NOTE.
  {
    auto vi = kvmxx::linux_::read_vmcoreinfo_note(src, "/sys/kernel/vmcoreinfo");
    check("vmcoreinfo_physical", vi.has_value() && vi.value().text() == src.vmcoreinfo().text(),
          vi ? "sysfs=" + first_line(slurp("/sys/kernel/vmcoreinfo")) + " " + std::to_string(vi.value().text().size()) +
                   " bytes"
             : why(vi));
  }

  // 7. The direct map: page_offset_base (read through kvmxx) + pa reads the bytes that the
  //    physical view gives for pa.
  {
    auto pob_va = km.address_of("page_offset_base");
    auto pob = pob_va ? km.read_as<std::uint64_t>(pob_va.value()) : kvmxx::result<std::uint64_t>(pob_va.error());
    bool same = false;
    std::string d = why(pob);
    if (pob) {
      std::vector<std::byte> a(4096), b(4096);
      auto ra = km.read_physical(physaddr{0x1000000}, a);
      auto rb = km.read(kvaddr{pob.value() + 0x1000000}, b);
      same = ra && rb && ra.value() == a.size() && rb.value() == b.size() && a == b;
      d = "page_offset_base=" + hex(pob.value()) + " " + why(ra) + " " + why(rb);
    }
    check("direct_map", same, d);
  }

  // 8. jiffies_64 moves on between two reads 300 ms apart.
  {
    auto va = km.address_of("jiffies_64");
    auto j0 = va ? km.read_as<std::uint64_t>(va.value()) : kvmxx::result<std::uint64_t>(va.error());
    struct timespec ts {0, 300000000};
    ::nanosleep(&ts, nullptr);
    auto j1 = va ? km.read_as<std::uint64_t>(va.value()) : kvmxx::result<std::uint64_t>(va.error());
    const bool ok = j0 && j1 && j1.value() > j0.value() && j1.value() - j0.value() < 10000;
    check("jiffies", ok, j0 && j1 ? std::to_string(j0.value()) + " -> " + std::to_string(j1.value()) : why(j1));
  }

  // 9. The printk ring read through kvmxx holds every line the kernel's syslog(2) gives.
  {
    std::string klog;
    const int size = ::klogctl(10, nullptr, 0);  // SYSLOG_ACTION_SIZE_BUFFER
    if (size > 0) {
      klog.resize(static_cast<std::size_t>(size));
      const int n = ::klogctl(3, klog.data(), size);  // SYSLOG_ACTION_READ_ALL
      klog.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    }
    auto recs = kvmxx::linux_::read_printk_records(km, src.vmcoreinfo());
    std::string all;
    if (recs)
      for (const auto& r : recs.value()) all += r.text + "\n";
    unsigned long long lines = 0, missing = 0;
    std::string first_missing;
    std::istringstream ks(klog);
    std::string l;
    while (std::getline(ks, l)) {
      // "<level>[ seconds.micro] text": keep the text.
      std::size_t p = 0;
      if (!l.empty() && l[0] == '<') p = l.find('>') + 1;
      if (p < l.size() && l[p] == '[') {
        const auto e = l.find("] ", p);
        p = e == std::string::npos ? p : e + 2;
      }
      const std::string text = l.substr(p);
      if (text.empty()) continue;
      ++lines;
      if (all.find(text) == std::string::npos) {
        ++missing;
        if (first_missing.empty()) first_missing = text;
      }
    }
    count("klog_lines", lines);
    count("printk_records", recs ? recs.value().size() : 0);
    check("dmesg", recs.has_value() && lines > 50 && missing == 0,
          std::to_string(lines) + " syslog lines, " + std::to_string(missing) + " not in kvmxx's records" +
              (recs ? "" : "; " + why(recs)) + (first_missing.empty() ? "" : "; first: " + first_missing));
  }

  // 10. kcore is read-only.
  {
    const std::byte one[1] = {std::byte{0}};
    auto va = km.address_of("linux_banner");
    auto w = km.write(va ? va.value() : kvaddr{0}, one);
    check("kcore_write_refused", !w && w.error() == kvmxx::errc::read_only, why(w));
  }

  // 11. /dev/mem: Debian's kernel has CONFIG_STRICT_DEVMEM, so the VMCOREINFO note (RAM)
  //     cannot be read through it: the error must say so. Where the kernel allows it, the
  //     banner must match instead.
  for (const auto mode : {kvmxx::access::read_only, kvmxx::access::read_write}) {
    kvmxx::linux_devmem_options o;
    o.mode = mode;
    auto dm = kvmxx::open_linux_devmem("/proc/kallsyms", o);
    const char* name = mode == kvmxx::access::read_only ? "devmem_ro" : "devmem_rw";
    if (!dm) {
      const std::string msg = why(dm);
      check(name, dm.error() == std::errc::operation_not_permitted && msg.find("CONFIG_STRICT_DEVMEM") != std::string::npos,
            "refused: " + msg);
    } else {
      auto va = dm.value().address_of("linux_banner");
      std::vector<char> buf(version.size());
      auto r = va ? dm.value().read_exact(va.value(), std::as_writable_bytes(std::span(buf)))
                  : kvmxx::result<void>(va.error());
      check(name, r && std::string(buf.data(), buf.size()) == version, "opened; banner read: " + why(r));
    }
  }
  {
    // Below 1 MiB the kernel lets /dev/mem through (RAM there reads as zeros): a plain
    // physical read of the BIOS area works, so the refusal above is about RAM, not the device.
    kvmxx::live_options lo;
    lo.os = kvmxx::os_kind::linux_;
    auto dev = kvmxx::backend::live_physical::open(lo);
    std::byte b[16];
    auto n = dev ? dev.value().read_physical(physaddr{0xf0000}, b) : kvmxx::result<std::size_t>(dev.error());
    check("devmem_low_read", n.has_value() && n.value() == sizeof b, why(n));
  }

  std::printf("SUMMARY pass=%d fail=%d\n", passes, failures);
  return failures == 0 ? 0 : 1;
}

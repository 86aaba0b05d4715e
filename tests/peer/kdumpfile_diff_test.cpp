// Differential test against libkdumpfile (Debian's libkdumpfile-dev, the peer reader): the
// same random virtual and physical addresses read through both from the same real dumps
// made by QEMU and makedumpfile (tests/real/make-linux-dumps.sh). Bytes must be equal
// wherever both succeed; every disagreement on success/failure must be one of the
// explained kinds below, and is counted.
#include <catch2/catch.hpp>
#include <skip.hpp>
#include <kvmxx/kvmxx.hpp>

#include <libkdumpfile/kdumpfile.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

std::string dumps_dir() {
  const char* d = std::getenv("KVMXX_LINUX_DUMPS");
  return d ? d : "";
}

// facts.txt: "key value…" lines written by tests/real/make-linux-dumps.sh.
std::multimap<std::string, std::string> read_facts(const std::string& path) {
  std::multimap<std::string, std::string> f;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto sp = line.find(' ');
    if (sp != std::string::npos) f.emplace(line.substr(0, sp), line.substr(sp + 1));
  }
  return f;
}

std::uint64_t kallsyms(const std::multimap<std::string, std::string>& facts, const std::string& name) {
  auto [a, b] = facts.equal_range("kallsyms");
  for (auto it = a; it != b; ++it) {
    std::istringstream s(it->second);
    std::string addr, type, n;
    s >> addr >> type >> n;
    if (n == name) return std::stoull(addr, nullptr, 16);
  }
  return 0;
}

struct peer {
  kdump_ctx_t* ctx = nullptr;
  int fd = -1;
  explicit peer(const std::string& path) {
    fd = ::open(path.c_str(), O_RDONLY);
    ctx = kdump_new();
    if (fd < 0 || ctx == nullptr || kdump_open_fd(ctx, fd) != KDUMP_OK) {
      if (ctx) kdump_free(ctx);
      ctx = nullptr;
      return;
    }
    // libkdumpfile needs to be told the OS before it sets up virtual translation.
    kdump_set_string_attr(ctx, "addrxlat.ostype", "linux");
  }
  ~peer() {
    if (ctx) kdump_free(ctx);
    if (fd >= 0) ::close(fd);
  }
  bool read(kdump_addrspace_t as, std::uint64_t addr, std::vector<std::byte>& out) {
    size_t len = out.size();
    return kdump_read(ctx, as, addr, out.data(), &len) == KDUMP_OK && len == out.size();
  }
};

struct tally {
  int both_ok = 0, both_fail = 0, only_kvmxx = 0, only_peer = 0, peer_zero_filled_excluded = 0;
};

}  // namespace

TEST_CASE("random reads agree with libkdumpfile on real QEMU and makedumpfile ELF dumps", "[peer][kdumpfile][real]") {
  const auto dir = dumps_dir();
  if (dir.empty() || ::access((dir + "/nokaslr/facts.txt").c_str(), R_OK) != 0)
    KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS is not set to the output of tests/real/make-linux-dumps.sh");
  const char* files[] = {"nokaslr/elf", "nokaslr/elf-paging", "nokaslr/mdf-d31.elf", "kaslr/elf", "la57/elf"};
  for (const char* rel : files) {
    const std::string path = dir + "/" + rel;
    if (::access(path.c_str(), R_OK) != 0) continue;
    const std::string boot = std::string(rel).substr(0, std::string(rel).find('/'));
    const auto facts = read_facts(dir + "/" + boot + "/facts.txt");
    const std::uint64_t text = kallsyms(facts, "_text"), end = kallsyms(facts, "_end");
    const std::uint64_t pob = std::stoull(facts.find("page_offset_base")->second, nullptr, 16);
    REQUIRE(text != 0);
    REQUIRE(end > text);
    INFO(path);
    peer p(path);
    REQUIRE(p.ctx != nullptr);
    auto h = kvmxx::open_dump_handle(nullptr, path.c_str());
    REQUIRE(h.has_value());
    auto& km = std::get<kvmxx::linux_amd64_elf>(h.value());

    std::mt19937_64 rng(0x6b766d78 ^ std::hash<std::string>{}(rel));
    tally virt, phys;
    int mismatched_bytes = 0;
    for (int i = 0; i < 4000; ++i) {
      const int kind = i % 4;
      std::uint64_t va;
      if (kind == 0) va = text + rng() % (end - text);                // kernel image
      else if (kind == 1) va = pob + rng() % (256ull << 20);          // direct map of the 256 MiB guest
      else if (kind == 2) va = pob + rng() % (8ull << 30);            // direct map, mostly beyond RAM
      else va = 0xffff800000000000ull + (rng() % (1ull << 46));       // anywhere in the kernel half
      std::vector<std::byte> a(1 + rng() % 64), b(a.size());
      const auto r = km.read(kvmxx::kvaddr{va}, a);
      const bool ok_k = r.has_value() && r.value() == a.size();
      const bool ok_p = p.read(KDUMP_KVADDR, va, b);
      if (ok_k && ok_p) {
        ++virt.both_ok;
        if (a != b) ++mismatched_bytes;
      } else if (!ok_k && !ok_p) {
        ++virt.both_fail;
      } else if (ok_k) {
        ++virt.only_kvmxx;
      } else {
        // Explained: makedumpfile marks excluded pages with p_filesz < p_memsz. kvmxx reports
        // them (errc::page_not_dumped, "excluded"); libkdumpfile's virtual path reads them as
        // zeros (its physical path fails, as kvmxx's does). Anything else is unexplained.
        const bool zeros = std::all_of(b.begin(), b.end(), [](std::byte x) { return x == std::byte{0}; });
        const bool excluded = !r.has_value() && r.error() == kvmxx::errc::page_not_dumped &&
                              kvmxx::describe(r.error()).find("excluded") != std::string::npos;
        if (zeros && excluded) ++virt.peer_zero_filled_excluded;
        else ++virt.only_peer;
      }
      const std::uint64_t pa = rng() % (i % 2 ? (256ull << 20) : (1ull << 33));
      std::vector<std::byte> c(1 + rng() % 64), d(c.size());
      const auto rp = km.read_physical(kvmxx::physaddr{pa}, c);
      const bool pk = rp.has_value() && rp.value() == c.size();
      const bool pp = p.read(KDUMP_KPHYSADDR, pa, d);
      if (pk && pp) {
        ++phys.both_ok;
        if (c != d) ++mismatched_bytes;
      } else if (!pk && !pp) {
        ++phys.both_fail;
      } else if (pk) {
        ++phys.only_kvmxx;
      } else {
        ++phys.only_peer;
      }
    }
    std::printf("%-22s virtual: %d equal, %d both failed, %d only kvmxx, %d only libkdumpfile (+%d excluded pages "
                "libkdumpfile zero-fills); physical: %d equal, %d both failed, %d only kvmxx, %d only libkdumpfile\n",
                rel, virt.both_ok, virt.both_fail, virt.only_kvmxx, virt.only_peer, virt.peer_zero_filled_excluded,
                phys.both_ok, phys.both_fail, phys.only_kvmxx, phys.only_peer);
    CHECK(mismatched_bytes == 0);
    // Filtered dumps (-d 31) keep far fewer pages; the rest hold every page of the guest.
    const bool filtered = std::string(rel).find("mdf-d31") != std::string::npos;
    CHECK(virt.both_ok > (filtered ? 300 : 1000));
    CHECK(phys.both_ok > (filtered ? 150 : 1000));
    if (!filtered) CHECK(virt.peer_zero_filled_excluded == 0);
    // Both readers translate through the same page tables and index the same p_paddr
    // ranges, so neither may read what the other cannot.
    CHECK(virt.only_kvmxx == 0);
    CHECK(virt.only_peer == 0);
    CHECK(phys.only_kvmxx == 0);
    CHECK(phys.only_peer == 0);
  }
}

// i386 (tests/real/make-linux-dumps-i386.sh, $KVMXX_LINUX_DUMPS_I386): Debian's 686-pae
// (PAE) and 686 (2-level) kernels; libkdumpfile's ia32 translation reads the same
// QEMU dumps. The boots without VMCOREINFO are left out: libkdumpfile needs it to set up
// Linux translation. libkdumpfile reads each boot's paging=true file: on QEMU 7.2's
// paging=false i386 file (p_vaddr 0) it maps virtual addresses 1:1 onto physical ones
// instead of walking the page tables (observed: no kernel-half read succeeds, low ones
// read physical memory). All dumps of a boot hold the same memory image (taken while the
// guest was stopped), so kvmxx on either file must read what libkdumpfile reads there.
// Physical reads compare the same file (a paging=true file lacks the pages no mapping
// reaches).
TEST_CASE("random reads agree with libkdumpfile on real i386 QEMU dumps (PAE and 2-level)",
          "[peer][kdumpfile][real][i386]") {
  const char* env = std::getenv("KVMXX_LINUX_DUMPS_I386");
  const std::string dir = env ? env : "";
  if (dir.empty() || ::access((dir + "/manifest.txt").c_str(), R_OK) != 0)
    KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS_I386 is not set to the output of tests/real/make-linux-dumps-i386.sh");
  const char* files[] = {"pae/elf", "pae/elf-paging", "nopae/elf", "nopae/elf-paging"};
  int files_compared = 0;
  for (const char* rel : files) {
    const std::string path = dir + "/" + rel;
    if (::access(path.c_str(), R_OK) != 0) continue;
    const std::string boot = std::string(rel).substr(0, std::string(rel).find('/'));
    const auto facts = read_facts(dir + "/" + boot + "/facts.txt");
    const std::uint64_t text = kallsyms(facts, "_stext"), etext = kallsyms(facts, "_etext");
    const std::uint64_t pob = std::stoull(facts.find("page_offset_base")->second, nullptr, 16);
    REQUIRE(text != 0);
    REQUIRE(etext > text);
    const std::string peer_path = dir + "/" + boot + "/elf-paging";
    INFO(path << " (libkdumpfile: " << peer_path << ")");
    peer p(peer_path), same(path);
    REQUIRE(p.ctx != nullptr);
    REQUIRE(same.ctx != nullptr);
    auto h = kvmxx::open_dump_handle(nullptr, path.c_str());
    INFO((h.has_value() ? std::string() : kvmxx::describe(h.error())));
    REQUIRE(h.has_value());
    auto& km = std::get<kvmxx::linux_i386_elf>(h.value());
    ++files_compared;

    std::mt19937_64 rng(0x69333836 ^ std::hash<std::string>{}(rel));
    tally virt, phys;
    int mismatched_bytes = 0;
    for (int i = 0; i < 4000; ++i) {
      const int kind = i % 4;
      std::uint64_t va;
      if (kind == 0) va = text + rng() % (etext - text);          // kernel text
      else if (kind == 1) va = pob + rng() % (256ull << 20);      // direct map of the 256 MiB guest
      else if (kind == 2) va = pob + rng() % (1ull << 30);        // the kernel's whole gigabyte
      else va = rng() % (1ull << 32);                             // anywhere
      std::vector<std::byte> a(1 + rng() % 64), b(a.size());
      const auto r = km.read(kvmxx::kvaddr{va}, a);
      const bool ok_k = r.has_value() && r.value() == a.size();
      const bool ok_p = p.read(KDUMP_KVADDR, va, b);
      if (ok_k && ok_p) {
        ++virt.both_ok;
        if (a != b) ++mismatched_bytes;
      } else if (!ok_k && !ok_p) {
        ++virt.both_fail;
      } else if (ok_k) {
        ++virt.only_kvmxx;
      } else {
        ++virt.only_peer;
      }
      const std::uint64_t pa = rng() % (i % 2 ? (256ull << 20) : (1ull << 33));
      std::vector<std::byte> c(1 + rng() % 64), d(c.size());
      const auto rp = km.read_physical(kvmxx::physaddr{pa}, c);
      const bool pk = rp.has_value() && rp.value() == c.size();
      const bool pp = same.read(KDUMP_KPHYSADDR, pa, d);
      if (pk && pp) {
        ++phys.both_ok;
        if (c != d) ++mismatched_bytes;
      } else if (!pk && !pp) {
        ++phys.both_fail;
      } else if (pk) {
        ++phys.only_kvmxx;
      } else {
        ++phys.only_peer;
      }
    }
    std::printf("%-22s virtual: %d equal, %d both failed, %d only kvmxx, %d only libkdumpfile; physical: %d equal, "
                "%d both failed, %d only kvmxx, %d only libkdumpfile\n",
                rel, virt.both_ok, virt.both_fail, virt.only_kvmxx, virt.only_peer, phys.both_ok, phys.both_fail,
                phys.only_kvmxx, phys.only_peer);
    CHECK(mismatched_bytes == 0);
    CHECK(virt.both_ok > 1000);
    CHECK(phys.both_ok > 1000);
    CHECK(virt.only_kvmxx == 0);
    CHECK(virt.only_peer == 0);
    CHECK(phys.only_kvmxx == 0);
    CHECK(phys.only_peer == 0);
  }
  CHECK(files_compared == 4);
}

TEST_CASE("random reads agree with libkdumpfile on real arm64 QEMU ELF dumps", "[peer][kdumpfile][real][aarch64]") {
  const char* env = std::getenv("KVMXX_LINUX_DUMPS_ARM64");
  const std::string dir = env ? env : "";
  if (dir.empty() || ::access((dir + "/nokaslr/facts.txt").c_str(), R_OK) != 0)
    KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS_ARM64 is not set to the output of tests/real/make-linux-dumps-arm64.sh");
  for (const std::string boot : {"nokaslr", "kaslr"}) {
    const std::string path = dir + "/" + boot + "/elf";
    const auto facts = read_facts(dir + "/" + boot + "/facts.txt");
    // The guest's /proc/kcore: the kernel-image segment (vaddr − paddr = kimage_voffset) and
    // the linear map's offset (page_offset_base = VA − PA there).
    const std::uint64_t kvo = std::stoull(facts.find("kimage_voffset_kcore")->second, nullptr, 16);
    const std::uint64_t lin = std::stoull(facts.find("page_offset_base")->second, nullptr, 16);
    std::uint64_t text = 0, text_size = 0;
    auto [a0, b0] = facts.equal_range("kcore_phdr");
    for (auto it = a0; it != b0; ++it) {
      std::istringstream s(it->second);
      std::string type, va, pa, fsz, msz;
      s >> type >> va >> pa >> fsz >> msz;
      if (type == "PT_LOAD" && std::stoull(va, nullptr, 16) - std::stoull(pa, nullptr, 16) == kvo) {
        text = std::stoull(va, nullptr, 16);
        text_size = std::stoull(msz, nullptr, 16);
      }
    }
    REQUIRE(text != 0);
    INFO(path);
    peer p(path);
    REQUIRE(p.ctx != nullptr);
    auto h = kvmxx::open_dump_handle(nullptr, path.c_str());
    REQUIRE(h.has_value());
    auto& km = std::get<kvmxx::linux_aarch64_elf>(h.value());

    std::mt19937_64 rng(0x61726d36 ^ std::hash<std::string>{}(boot));
    tally virt, phys;
    int mismatched_bytes = 0;
    for (int i = 0; i < 4000; ++i) {
      const int kind = i % 4;
      std::uint64_t va;
      if (kind == 0) va = text + rng() % text_size;                              // kernel image
      else if (kind == 1) va = lin + 0x40000000 + rng() % (256ull << 20);        // linear map of the guest's RAM
      else if (kind == 2) va = lin + rng() % (8ull << 30);                       // linear map, mostly not RAM
      else va = 0xffff000000000000ull + (rng() % (1ull << 48));                  // anywhere in the TTBR1 half
      std::vector<std::byte> a(1 + rng() % 64), b(a.size());
      const auto r = km.read(kvmxx::kvaddr{va}, a);
      const bool ok_k = r.has_value() && r.value() == a.size();
      const bool ok_p = p.read(KDUMP_KVADDR, va, b);
      if (ok_k && ok_p) {
        ++virt.both_ok;
        if (a != b) ++mismatched_bytes;
      } else if (!ok_k && !ok_p) {
        ++virt.both_fail;
      } else if (ok_k) {
        ++virt.only_kvmxx;
      } else {
        ++virt.only_peer;
      }
      const std::uint64_t pa = i % 2 ? 0x40000000 + rng() % (256ull << 20) : rng() % (1ull << 33);
      std::vector<std::byte> c(1 + rng() % 64), d(c.size());
      const auto rp = km.read_physical(kvmxx::physaddr{pa}, c);
      const bool pk = rp.has_value() && rp.value() == c.size();
      const bool pp = p.read(KDUMP_KPHYSADDR, pa, d);
      if (pk && pp) {
        ++phys.both_ok;
        if (c != d) ++mismatched_bytes;
      } else if (!pk && !pp) {
        ++phys.both_fail;
      } else if (pk) {
        ++phys.only_kvmxx;
      } else {
        ++phys.only_peer;
      }
    }
    std::printf("arm64 %-8s virtual: %d equal, %d both failed, %d only kvmxx, %d only libkdumpfile; physical: %d "
                "equal, %d both failed, %d only kvmxx, %d only libkdumpfile\n",
                boot.c_str(), virt.both_ok, virt.both_fail, virt.only_kvmxx, virt.only_peer, phys.both_ok,
                phys.both_fail, phys.only_kvmxx, phys.only_peer);
    CHECK(mismatched_bytes == 0);
    CHECK(virt.both_ok > 1000);
    CHECK(phys.both_ok > 1000);
    CHECK(virt.only_kvmxx == 0);
    CHECK(virt.only_peer == 0);
    CHECK(phys.only_kvmxx == 0);
    CHECK(phys.only_peer == 0);
  }
}

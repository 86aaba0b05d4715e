// SPDX-License-Identifier: BSD-2-Clause
//
// The kvmxx command-line tool, run as a user runs it: the binary (KVMXX_TOOL_PATH) is
// started with fork/exec, its standard output and error captured apart, and what it prints
// compared with the fixture writers' ground truth (the builder's read_virt/read_phys/
// translate and the symbol values this file put into the kernel ELF), never with values
// the tool printed itself.
#include <catch2/catch.hpp>

#include "amd64_minidump_writer.hpp"
#include "kcore_fixture.hpp"
#include "file_util.hpp"
#include "kernel_elf_writer.hpp"
#include "skip.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#ifndef KVMXX_TOOL_PATH
#error "KVMXX_TOOL_PATH must name the kvmxx binary (tests/meson.build defines it)"
#endif

namespace {

using kvmxx_test::amd64_minidump_builder;
using u64 = std::uint64_t;
constexpr u64 page = 4096;
constexpr u64 kernbase_image = 0xffffffff80000000ull;  // KERNBASE: where the kernel image lives

// ---- running the tool ---------------------------------------------------------------

struct run_result {
  int exit_code = -1;  // the exit status, or 128 + signal
  std::string out;
  std::string err;
};

/// Runs the tool with `args`, feeding `input` on its standard input, in `cwd` if given.
run_result run_tool(const std::vector<std::string>& args, const std::string& input = {}, const std::string& cwd = {}) {
  static const bool sigpipe_ignored = [] {
    ::signal(SIGPIPE, SIG_IGN);  // a tool that exits before reading all input must not kill us
    return true;
  }();
  (void)sigpipe_ignored;

  std::vector<std::string> storage{KVMXX_TOOL_PATH};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);

  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {  // only async-signal-safe calls from here on
    ::signal(SIGPIPE, SIG_DFL);
    if (::dup2(in[0], 0) < 0 || ::dup2(out[1], 1) < 0 || ::dup2(err[1], 2) < 0) ::_exit(126);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::execv(KVMXX_TOOL_PATH, argv.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);

  run_result r;
  int to_child = in[1];
  std::size_t written = 0;
  if (input.empty()) {
    ::close(to_child);
    to_child = -1;
  } else {
    ::fcntl(to_child, F_SETFL, O_NONBLOCK);
  }
  int from_out = out[0], from_err = err[0];
  char buf[65536];
  while (from_out >= 0 || from_err >= 0 || to_child >= 0) {
    pollfd fds[3];
    nfds_t n = 0;
    if (to_child >= 0) fds[n++] = {to_child, POLLOUT, 0};
    if (from_out >= 0) fds[n++] = {from_out, POLLIN, 0};
    if (from_err >= 0) fds[n++] = {from_err, POLLIN, 0};
    if (::poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
    }
    for (nfds_t k = 0; k < n; ++k) {
      if (fds[k].revents == 0) continue;
      if (fds[k].fd == to_child) {
        const ssize_t w = ::write(to_child, input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
          ::close(to_child);  // done, or the tool stopped reading (EPIPE)
          to_child = -1;
        }
      } else {
        int& fd = fds[k].fd == from_out ? from_out : from_err;
        std::string& dst = fds[k].fd == from_out ? r.out : r.err;
        const ssize_t got = ::read(fd, buf, sizeof buf);
        if (got > 0) {
          dst.append(buf, static_cast<std::size_t>(got));
        } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          ::close(fd);
          fd = -1;
        }
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// ---- formatting the expected output ---------------------------------------------------

std::string hex_addr(u64 v) {  // as the library's messages print addresses
  char b[32];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

std::string hex_string(const std::vector<std::byte>& bytes) {
  std::string s;
  char b[4];
  for (const std::byte x : bytes) {
    std::snprintf(b, sizeof b, "%02x", std::to_integer<unsigned>(x));
    s += b;
  }
  return s;
}

// `hexdump -C` layout with a 16-digit address column and a final address line.
std::string hexdump(u64 address, const std::vector<std::byte>& bytes) {
  std::string s;
  char b[32];
  for (std::size_t at = 0; at < bytes.size(); at += 16) {
    std::snprintf(b, sizeof b, "%016llx  ", static_cast<unsigned long long>(address + at));
    s += b;
    std::string ascii;
    for (std::size_t k = 0; k < 16; ++k) {
      if (at + k < bytes.size()) {
        const unsigned v = std::to_integer<unsigned>(bytes[at + k]);
        std::snprintf(b, sizeof b, "%02x ", v);
        s += b;
        ascii.push_back(v >= 0x20 && v < 0x7f ? static_cast<char>(v) : '.');
      } else {
        s += "   ";
      }
      if (k == 7) s += ' ';
    }
    s += " |" + ascii + "|\n";
  }
  if (!bytes.empty()) {
    std::snprintf(b, sizeof b, "%016llx\n", static_cast<unsigned long long>(address + bytes.size()));
    s += b;
  }
  return s;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::size_t at = 0;
  while (at < s.size()) {
    const std::size_t nl = s.find('\n', at);
    if (nl == std::string::npos) {
      v.push_back(s.substr(at));
      break;
    }
    v.push_back(s.substr(at, nl - at));
    at = nl + 1;
  }
  return v;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool contains(std::string_view s, std::string_view p) { return s.find(p) != std::string_view::npos; }

/// The longest readable prefix of [va, va+len) according to the oracle.
std::vector<std::byte> readable_prefix(const amd64_minidump_builder& b, u64 va, std::size_t len, bool physical = false) {
  std::vector<std::byte> out;
  while (out.size() < len) {
    const u64 cur = va + out.size();
    const std::size_t n = std::min<std::size_t>(len - out.size(), page - cur % page);
    const auto got = physical ? b.read_phys(cur, n) : b.read_virt(cur, n);
    if (!got) break;
    out.insert(out.end(), got->begin(), got->end());
  }
  return out;
}

std::vector<std::byte> must_read(const amd64_minidump_builder& b, u64 va, std::size_t len) {
  const auto got = b.read_virt(va, len);
  if (!got) throw std::logic_error("the fixture cannot read " + hex_addr(va));
  return *got;
}

// ---- the fixture dump -------------------------------------------------------------------

void put_le(std::string& s, std::size_t at, u64 v, std::size_t width) {
  for (std::size_t i = 0; i < width; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

struct fixture {
  kvmxx_test::temp_dir dir;
  amd64_minidump_builder dump = amd64_minidump_builder::realistic(3, 0x746f6f6c, 16);
  std::map<std::string, u64> symbols;  // every symbol the kernel ELF holds
  std::size_t elf_symbol_count = 0;
  std::string kernel, core;
  std::vector<amd64_minidump_builder::mapping> text_maps, data_maps, kmem_maps;
  u64 omitted_va = 0, omitted_pa = 0;  // a mapped kernel page whose physical page is not dumped
  std::string log;                     // the boot log in the msgbuf ring, oldest first
  std::string ring;                    // the ring as stored
  u64 ring_size = 0x8000;

  fixture() {
    amd64_minidump_builder& b = dump;
    for (const auto& s : b.symbols()) symbols[s.name] = s.va;
    for (const auto& m : b.kernel_mappings()) {
      if (m.size != page) text_maps.push_back(m);
      else if (m.va >= kernbase_image) data_maps.push_back(m);
      else kmem_maps.push_back(m);
    }
    if (text_maps.empty() || data_maps.size() < 300 || kmem_maps.size() < 2)
      throw std::logic_error("realistic() changed: the tool tests need text, data and kmem mappings");

    // A data page left out of the dump.
    omitted_va = data_maps[100].va;
    omitted_pa = data_maps[100].pa;
    b.omit_page(omitted_pa);

    // The message buffer: a ring that has wrapped, in the direct map (as on amd64), with
    // struct msgbuf right after it and `msgbufp` pointing at that.
    for (int k = 0; log.size() < 5000; ++k)
      log += "kvmxx tool test: boot message " + std::to_string(k) + (k % 7 == 0 ? " (wrapped ring)\n" : "\n");
    const u64 start = ring_size - 1234;
    ring.assign(ring_size, '\0');
    for (std::size_t k = 0; k < log.size(); ++k) ring[(start + k) % ring_size] = log[k];
    std::set<u64> used;
    for (const auto& m : b.kernel_mappings())
      for (u64 off = 0; off < m.size; off += page) used.insert(m.pa + off);
    u64 ring_pa = (16 << 20) - 0x80000;
    const auto free_at = [&](u64 pa) {
      for (u64 off = 0; off < ring_size + page; off += page)
        if (used.contains(pa + off)) return false;
      return true;
    };
    while (!free_at(ring_pa)) ring_pa -= page;
    const u64 ring_va = b.dmap_base() + ring_pa, struct_va = ring_va + ring_size;
    const u64 wseq = 5 * ring_size + start;
    std::string mb(40, '\0');
    put_le(mb, 0, ring_va, 8);
    put_le(mb, 8, 0x063062, 4);  // MSG_MAGIC
    put_le(mb, 12, ring_size, 4);
    put_le(mb, 16, wseq, 4);
    put_le(mb, 20, wseq, 4);
    put_le(mb, 28, ring_size * 16, 4);
    b.write_virt(ring_va, ring).write_virt(struct_va, mb).msgbuf(ring);
    const u64 msgbufp = data_maps[200].va + 0x100;
    b.write_virt(msgbufp, amd64_minidump_builder::le(struct_va, 8));
    symbols["msgbufp"] = msgbufp;

    // The kernel ELF: the builder's symbols, msgbufp, and some functions.
    using namespace kvmxx_test;
    kernel_elf_builder k(elf_class::elf64, elf_endian::little);
    const u64 text_lo = text_maps.front().va, data_lo = data_maps.front().va;
    for (int n = 0; n < 50; ++n) symbols["test_fn_" + std::to_string(n)] = text_lo + 0x1000 + 0x40 * static_cast<u64>(n);
    for (const auto& [name, va] : symbols) {
      const bool text = va >= text_lo && va < data_lo;
      const bool data = va >= data_lo;
      k.symbol(name, va, text ? section_kind::text : data ? section_kind::data : section_kind::abs, binding::global,
               text ? elf_const::stt_func : elf_const::stt_object, 8);
    }
    elf_symbol_count = symbols.size();
    k.section_address(section_kind::text, text_lo).section_address(section_kind::data, data_lo);

    kernel = dir.path("kernel");
    core = dir.path("vmcore.0");
    kvmxx_test::write_file(kernel, k.build());
    b.build_to_file(core);
  }

  std::vector<std::string> nm() const { return {"-N", kernel, "-M", core}; }
  std::vector<std::string> args(std::vector<std::string> cmd, std::vector<std::string> rest = {}) const {
    std::vector<std::string> a = std::move(cmd);
    for (auto& s : nm()) a.push_back(s);
    for (auto& s : rest) a.push_back(std::move(s));
    return a;
  }
};

const fixture& fx() {
  static const fixture f;
  return f;
}

/// `key: value` lines of `kvmxx info`.
std::map<std::string, std::string> info_fields(const std::string& out) {
  std::map<std::string, std::string> m;
  for (const auto& l : lines_of(out)) {
    if (starts_with(l, " ")) continue;
    const auto colon = l.find(':');
    if (colon == std::string::npos) continue;
    const auto v = l.find_first_not_of(' ', colon + 1);
    m[l.substr(0, colon)] = v == std::string::npos ? "" : l.substr(v);
  }
  return m;
}

u64 leading_number(const std::string& s) { return std::stoull(s, nullptr, 0); }

}  // namespace

// ---- info ------------------------------------------------------------------------------

TEST_CASE("info prints the format and architecture and sizes and dumped pages and physical ranges of a dump", "[tool]") {
  const fixture& f = fx();
  const auto r = run_tool(f.args({"info"}));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  auto m = info_fields(r.out);
  CHECK(m["format"] == "FreeBSD amd64 minidump");
  CHECK(m["architecture"] == "amd64");
  CHECK(m["OS"] == "FreeBSD");
  CHECK(m["format version"] == "3");
  CHECK(m["page size"] == "4096");
  CHECK(leading_number(m["file size"]) == f.dump.file_layout().file_size);
  CHECK(leading_number(m["dumped pages"]) == f.dump.dumped_pages().size());
  CHECK(leading_number(m["message buffer"]) == f.ring_size);
  CHECK(m["truncated"] == "no");
  CHECK(leading_number(m["kernbase"]) == f.dump.kernbase());
  CHECK(leading_number(m["dmapbase"]) == f.dump.dmap_base());
  CHECK(leading_number(m["dmapend"]) == f.dump.dmap_end());
  CHECK(contains(m["kernel file"], "ELF64"));
  CHECK(contains(m["kernel file"], "little-endian"));
  CHECK(leading_number(m["symbols"]) == f.elf_symbol_count);

  // One indented `0xSTART-0xEND  N MiB` line per range, right after "physical ranges".
  const auto ranges = f.dump.bitmap_ranges();
  CHECK(leading_number(m["physical ranges"]) == ranges.size());
  std::vector<std::pair<u64, u64>> printed;
  for (const auto& l : lines_of(r.out)) {
    if (!starts_with(l, "  0x")) continue;
    const auto dash = l.find('-');
    REQUIRE(dash != std::string::npos);
    printed.emplace_back(std::stoull(l.substr(2, dash - 2), nullptr, 16), std::stoull(l.substr(dash + 1), nullptr, 16));
    CHECK(contains(l, "MiB"));
  }
  CHECK(printed == ranges);
}

TEST_CASE("info without a kernel leaves out the kernel file facts", "[tool]") {
  const fixture& f = fx();
  const auto r = run_tool({"info", "-M", f.core});
  REQUIRE(r.exit_code == 0);
  const auto m = info_fields(r.out);
  CHECK(m.count("kernel file") == 0);
  CHECK(m.count("symbols") == 0);
  CHECK(m.at("dumped pages").find(std::to_string(f.dump.dumped_pages().size())) == 0);
}

TEST_CASE("info reports the format version of version 1 and 2 minidumps", "[tool]") {
  const auto version = GENERATE(1u, 2u);
  kvmxx_test::temp_dir dir;
  const auto b = amd64_minidump_builder::realistic(version, 99, 16);
  b.build_to_file(dir.path("core"));
  const auto r = run_tool({"info", "-M", dir.path("core")});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto m = info_fields(r.out);
  CHECK(m["format version"] == std::to_string(version));
  CHECK(leading_number(m["dumped pages"]) == b.dumped_pages().size());
  CHECK(leading_number(m["kernbase"]) == b.kernbase());

  // Reads through the version's page map agree with the oracle too.
  for (const auto& s : b.symbols()) {
    if (s.text || s.size == 0 || s.size > 4096) continue;
    const auto rr = run_tool({"read", "-M", dir.path("core"), "--hex", hex_addr(s.va), std::to_string(s.size)});
    INFO(s.name << " " << rr.err);
    CHECK(rr.exit_code == 0);
    CHECK(rr.out == hex_string(must_read(b, s.va, s.size)) + "\n");
  }
}

TEST_CASE("info and read report a truncated dump", "[tool]") {
  kvmxx_test::temp_dir dir;
  const auto b = amd64_minidump_builder::realistic(3, 7, 16);
  auto bytes = b.build();
  REQUIRE(bytes.size() == b.file_layout().file_size);
  bytes.resize(bytes.size() - 10 * page - 100);  // the last 10 pages are gone, the 11th is partial
  const std::string core = dir.path("vmcore.truncated");
  kvmxx_test::write_file(core, bytes);
  const auto pages = b.dumped_pages();

  const auto info = run_tool({"info", "-M", core});
  REQUIRE(info.exit_code == 0);
  auto m = info_fields(info.out);
  CHECK(starts_with(m["truncated"], "yes"));
  CHECK(leading_number(m["file size"]) == bytes.size());

  const u64 kept = pages[pages.size() - 12], lost = pages[pages.size() - 5];
  const auto ok = run_tool({"read", "-M", core, "--physical", "--hex", hex_addr(kept), "32"});
  CHECK(ok.exit_code == 0);
  CHECK(ok.out == hex_string(*b.read_phys(kept, 32)) + "\n");
  const auto bad = run_tool({"read", "-M", core, "--physical", "--hex", hex_addr(lost), "32"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.out.empty());
  CHECK(contains(bad.err, hex_addr(lost)));
}

// ---- read --------------------------------------------------------------------------------

TEST_CASE("read prints a hexdump of 4 KiB-mapped and 2 MiB-mapped and page-spanning kernel addresses", "[tool]") {
  const fixture& f = fx();
  struct area {
    const char* what;
    u64 va;
    std::size_t len;
  };
  const auto& t = f.text_maps;
  const area areas[] = {
      {"2 MiB page", t[1].va + 0x123, 100},
      {"across two 2 MiB pages", t[1].va + t[1].size - 40, 80},
      {"4 KiB data page", f.data_maps[3].va + 0x10, 64},
      {"across 4 KiB pages", f.data_maps[5].va + page - 7, 30},
      {"across three kmem pages", f.kmem_maps[0].va + 0x800, 2 * page},
      {"one byte", f.kmem_maps[1].va + 5, 1},
      {"17 bytes", f.kmem_maps[1].va, 17},
      {"direct map", f.dump.dmap_base() + f.dump.dumped_pages()[10] + 0x30, 48},
  };
  for (const auto& a : areas) {
    INFO(a.what << " at " << hex_addr(a.va));
    const auto r = run_tool(f.args({"read"}, {hex_addr(a.va), std::to_string(a.len)}));
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out == hexdump(a.va, must_read(f.dump, a.va, a.len)));
  }
}

TEST_CASE("read --hex prints kernel and direct-map and physical memory as one hex string", "[tool]") {
  const fixture& f = fx();
  const auto pages = f.dump.dumped_pages();
  SECTION("kernel virtual addresses") {
    for (const u64 va : {f.text_maps[0].va + 0x1ffff0, f.data_maps[7].va + 0xff8, f.kmem_maps[2].va}) {
      const auto r = run_tool(f.args({"read", "--hex"}, {hex_addr(va), "0x40"}));
      INFO(hex_addr(va) << " " << r.err);
      CHECK(r.exit_code == 0);
      CHECK(r.out == hex_string(must_read(f.dump, va, 0x40)) + "\n");
    }
  }
  SECTION("decimal addresses") {
    const u64 va = f.data_maps[9].va + 3;
    const auto r = run_tool(f.args({"read", "--hex"}, {std::to_string(va), "16"}));
    CHECK(r.exit_code == 0);
    CHECK(r.out == hex_string(must_read(f.dump, va, 16)) + "\n");
  }
  SECTION("direct-map addresses") {
    // Two consecutive dumped physical pages, read across their boundary through the direct map.
    u64 pa = 0;
    for (std::size_t k = 1; k < pages.size(); ++k)
      if (pages[k] == pages[k - 1] + page && pages[k] > 0x400000) {
        pa = pages[k];
        break;
      }
    REQUIRE(pa != 0);
    const u64 va = f.dump.dmap_base() + pa - 16;
    const auto r = run_tool(f.args({"read", "--hex"}, {hex_addr(va), "32"}));
    CHECK(r.exit_code == 0);
    CHECK(r.out == hex_string(must_read(f.dump, va, 32)) + "\n");
  }
  SECTION("physical addresses") {
    for (const u64 pa : {pages[0], pages[pages.size() / 2] + 0x7f0, pages.back() + page - 8}) {
      const auto want = f.dump.read_phys(pa, 8);
      REQUIRE(want);
      const auto r = run_tool(f.args({"read", "--physical", "--hex"}, {hex_addr(pa), "8"}));
      INFO(hex_addr(pa) << " " << r.err);
      CHECK(r.exit_code == 0);
      CHECK(r.out == hex_string(*want) + "\n");
    }
    const u64 pa = pages[3];
    const auto r = run_tool(f.args({"read", "--physical"}, {hex_addr(pa), "40"}));
    CHECK(r.exit_code == 0);
    CHECK(r.out == hexdump(pa, *f.dump.read_phys(pa, 40)));
  }
}

TEST_CASE("read resolves SYMBOL and SYMBOL+OFFSET through the kernel's symbol table", "[tool]") {
  const fixture& f = fx();
  const u64 version = f.symbols.at("version"), hz = f.symbols.at("hz");
  SECTION("a symbol") {
    const auto r = run_tool(f.args({"read", "--hex"}, {"hz", "4"}));
    CHECK(r.exit_code == 0);
    CHECK(r.out == hex_string(must_read(f.dump, hz, 4)) + "\n");
    CHECK(r.out == "e8030000\n");  // realistic() writes hz = 1000
  }
  SECTION("a hexadecimal offset") {
    const auto r = run_tool(f.args({"read"}, {"version+0x8", "24"}));
    CHECK(r.exit_code == 0);
    CHECK(r.out == hexdump(version + 8, must_read(f.dump, version + 8, 24)));
  }
  SECTION("a decimal offset") {
    const auto r = run_tool(f.args({"read", "--hex"}, {"version+10", "0x10"}));
    CHECK(r.exit_code == 0);
    CHECK(r.out == hex_string(must_read(f.dump, version + 10, 16)) + "\n");
  }
  SECTION("an unknown symbol") {
    const auto r = run_tool(f.args({"read"}, {"no_such_symbol", "4"}));
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(starts_with(r.err, "kvmxx: "));
    CHECK(contains(r.err, "no_such_symbol"));
  }
  SECTION("a symbol without a kernel file") {
    const auto r = run_tool({"read", "-M", f.core, "hz", "4"});
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, "-N"));
  }
}

TEST_CASE("a read that runs into an unmapped page prints the readable bytes and fails", "[tool]") {
  const fixture& f = fx();
  // The last 4 KiB data/bss page, then nothing mapped.
  const auto& last = f.data_maps.back();
  const u64 end = last.va + page;
  REQUIRE_FALSE(f.dump.translate(end));
  const u64 va = end - 24;
  const auto readable = readable_prefix(f.dump, va, 64);
  REQUIRE(readable.size() == 24);

  SECTION("as a hexdump") {
    const auto r = run_tool(f.args({"read"}, {hex_addr(va), "64"}));
    CHECK(r.exit_code == 1);
    CHECK(r.out == hexdump(va, readable));
    CHECK(starts_with(r.err, "kvmxx: "));
    CHECK(contains(r.err, hex_addr(end)));
  }
  SECTION("as hex") {
    const auto r = run_tool(f.args({"read", "--hex"}, {hex_addr(va), "64"}));
    CHECK(r.exit_code == 1);
    CHECK(r.out == hex_string(readable) + "\n");
    CHECK(contains(r.err, hex_addr(end)));
  }
  SECTION("into a mapped page that is not in the dump") {
    const u64 start = f.omitted_va - 10;
    const auto prefix = readable_prefix(f.dump, start, 32);
    REQUIRE(prefix.size() == 10);
    const auto r = run_tool(f.args({"read", "--hex"}, {hex_addr(start), "32"}));
    CHECK(r.exit_code == 1);
    CHECK(r.out == hex_string(prefix) + "\n");
    CHECK(contains(r.err, hex_addr(f.omitted_pa)));
  }
}

TEST_CASE("a read of an unmapped address fails and names the address in hex", "[tool]") {
  const fixture& f = fx();
  const u64 after_bss = f.data_maps.back().va + page;
  const u64 below_kmem = f.kmem_maps.front().va - 0x200000;
  SECTION("kernel and user addresses outside every mapping") {
    for (const u64 va : {after_bss + 0x1234, below_kmem, u64{0x1000}, u64{0x00007fffdeadb000}}) {
      REQUIRE_FALSE(f.dump.read_virt(va, 1));
      const auto r = run_tool(f.args({"read"}, {hex_addr(va), "16"}));
      INFO(r.err);
      CHECK(r.exit_code == 1);
      CHECK(r.out.empty());
      CHECK(starts_with(r.err, "kvmxx: "));
      CHECK(contains(r.err, hex_addr(va)));
    }
  }
  SECTION("a mapped page missing from the dump names its physical address") {
    const auto r = run_tool(f.args({"read", "--hex"}, {hex_addr(f.omitted_va), "8"}));
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(contains(r.err, hex_addr(f.omitted_pa)));
  }
  SECTION("a physical page missing from the dump") {
    u64 pa = 0x100000;
    while (f.dump.read_phys(pa, 1)) pa += page;
    const auto r = run_tool(f.args({"read", "--physical"}, {hex_addr(pa), "8"}));
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(contains(r.err, hex_addr(pa)));
  }
}

// ---- read --batch --------------------------------------------------------------------------

namespace {

struct batch {
  std::string input;
  std::vector<std::optional<std::string>> expected;  // per output line: hex, or nullopt for "error: …"
};

// Random lines over every kind of address, with comments, blank lines and malformed ones.
batch make_batch(const fixture& f, std::size_t lines, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  batch b;
  const auto pick = [&](const auto& v) -> const auto& { return v[rng() % std::size(v)]; };
  const auto length = [&]() -> u64 {
    const u64 k = rng() % 20;
    if (k == 0) return 0;
    if (k == 1) return 1 + rng() % 9000;
    return 1 + rng() % 256;
  };
  const auto fmt_addr = [&](u64 a) {
    char buf[40];
    switch (rng() % 4) {
      case 0: std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(a)); break;
      case 1: std::snprintf(buf, sizeof buf, "0X%llX", static_cast<unsigned long long>(a)); break;
      default: std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(a)); break;
    }
    return std::string(buf);
  };
  const auto fmt_len = [&](u64 n) {
    return rng() % 3 == 0 ? hex_addr(n) : std::to_string(n);
  };
  std::vector<std::string> data_symbols;
  for (const auto& s : f.dump.symbols())
    if (!s.text && s.size > 0 && s.size < 4096) data_symbols.push_back(s.name);
  static const char* const malformed[] = {
      "0xzz 4", "12", "hz 4 5", "hz+ 4", "hz 0x", "hz -4", "hz 0x40000001", "0x 16", "99999999999999999999 4",
      "hz four", "+5 4", "hz+0x1g 2",
  };

  std::size_t produced = 0;
  while (produced < lines) {
    const u64 kind = rng() % 16;
    std::string line;
    std::optional<u64> va;
    u64 len = length();
    switch (kind) {
      case 0: {  // 2 MiB text, sometimes across a 2 MiB boundary
        const auto& m = pick(f.text_maps);
        va = m.va + (rng() % 2 ? rng() % m.size : m.size - 1 - rng() % 128);
        break;
      }
      case 1:
      case 2: {  // 4 KiB data and bss, one page omitted from the dump
        const auto& m = rng() % 8 == 0 ? f.data_maps[100] : pick(f.data_maps);
        va = m.va + (rng() % 2 ? rng() % page : page - 1 - rng() % 64);
        break;
      }
      case 3:
      case 4: {  // kmem: scattered physical pages behind contiguous virtual ones
        const auto& m = pick(f.kmem_maps);
        va = m.va + (rng() % 2 ? rng() % page : page - 1 - rng() % 64);
        break;
      }
      case 5:
      case 6: {  // the direct map: dumped, not dumped, beyond RAM
        va = f.dump.dmap_base() + rng() % (20 << 20);
        break;
      }
      case 7: {  // unmapped kernel addresses, user addresses
        static const u64 bases[] = {0xffffffff80a00000ull, 0xfffffe0000000000ull, 0x1000, 0xfffffe8000000000ull};
        va = pick(bases) + rng() % 0x100000;
        break;
      }
      case 8:
      case 9: {  // SYMBOL[+OFFSET]
        const std::string& name = pick(data_symbols);
        const u64 off = rng() % 3 == 0 ? 0 : rng() % 64;
        va = f.symbols.at(name) + off;
        line = name;
        if (off != 0 || rng() % 2) line += "+" + (rng() % 2 ? hex_addr(off) : std::to_string(off));
        break;
      }
      case 10: {  // malformed lines and unknown symbols: "error: …"
        line = rng() % 4 == 0 ? "no_such_symbol_" + std::to_string(rng() % 100) + " 8" : pick(malformed);
        if (rng() % 2) line = "  \t" + line + " \t";
        b.input += line + "\n";
        b.expected.push_back(std::nullopt);
        ++produced;
        continue;
      }
      case 11: {  // comments and blank lines: no output at all
        static const char* const skipped[] = {"", "# a comment", "   ", "\t# indented comment 0x1000 4", "#"};
        b.input += std::string(pick(skipped)) + "\n";
        continue;
      }
      default: {  // anywhere in a kernel mapping
        const auto& all = rng() % 2 ? f.data_maps : f.kmem_maps;
        const auto& m = pick(all);
        va = m.va + rng() % page;
        break;
      }
    }
    if (line.empty()) line = fmt_addr(*va);
    line += (rng() % 5 == 0 ? "\t" : " ") + fmt_len(len);
    b.input += line + "\n";
    const auto want = f.dump.read_virt(*va, static_cast<std::size_t>(len));
    b.expected.push_back(want ? std::optional<std::string>(hex_string(*want)) : std::nullopt);
    ++produced;
  }
  return b;
}

void check_batch_output(const batch& b, const std::string& out) {
  const auto got = lines_of(out);
  REQUIRE(got.size() == b.expected.size());
  std::size_t errors = 0, mismatches = 0;
  std::string first;
  for (std::size_t k = 0; k < got.size(); ++k) {
    const bool ok = b.expected[k] ? got[k] == *b.expected[k] : starts_with(got[k], "error: ") && got[k].size() > 7;
    errors += b.expected[k] ? 0 : 1;
    if (!ok && mismatches++ < 5)
      first += "output line " + std::to_string(k + 1) + ": got \"" + got[k].substr(0, 120) + "\", want " +
               (b.expected[k] ? "\"" + b.expected[k]->substr(0, 120) + "\"" : std::string("an error")) + "\n";
  }
  INFO(first);
  CHECK(mismatches == 0);
  CHECK(errors > 100);                   // the mix really has bad addresses…
  CHECK(errors < b.expected.size() / 2);  // …and mostly good ones
}

}  // namespace

TEST_CASE("read --batch answers 2000 random lines from a file exactly as the oracle does", "[tool]") {
  const fixture& f = fx();
  const batch b = make_batch(f, 2000, 1);
  kvmxx_test::temp_dir dir;
  const std::string file = dir.path("lines.txt");
  kvmxx_test::write_file(file, std::as_bytes(std::span<const char>(b.input.data(), b.input.size())));
  const auto r = run_tool(f.args({"read", "--batch", file}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  check_batch_output(b, r.out);
}

TEST_CASE("read --batch - answers 2000 random lines from standard input exactly as the oracle does", "[tool]") {
  const fixture& f = fx();
  const batch b = make_batch(f, 2000, 2);
  const auto r = run_tool(f.args({"read", "--batch", "-"}), b.input);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  check_batch_output(b, r.out);
}

TEST_CASE("read --physical --batch reads physical addresses", "[tool]") {
  const fixture& f = fx();
  std::mt19937_64 rng(3);
  std::string input;
  std::vector<std::optional<std::string>> expected;
  for (int k = 0; k < 300; ++k) {
    const u64 pa = rng() % (18 << 20), len = rng() % 100;
    input += hex_addr(pa) + " " + std::to_string(len) + "\n";
    const auto want = f.dump.read_phys(pa, static_cast<std::size_t>(len));
    expected.push_back(want ? std::optional<std::string>(hex_string(*want)) : std::nullopt);
  }
  input += "hz 4\n";  // symbols are virtual addresses
  expected.push_back(std::nullopt);
  const auto r = run_tool(f.args({"read", "--physical", "--batch", "-"}), input);
  REQUIRE(r.exit_code == 0);
  const auto got = lines_of(r.out);
  REQUIRE(got.size() == expected.size());
  for (std::size_t k = 0; k < got.size(); ++k) {
    INFO("line " << k + 1);
    if (expected[k]) CHECK(got[k] == *expected[k]);
    else CHECK(starts_with(got[k], "error: "));
  }
}

TEST_CASE("read --batch fails when its input cannot be read", "[tool]") {
  const fixture& f = fx();
  kvmxx_test::temp_dir dir;
  const auto missing = run_tool(f.args({"read", "--batch", dir.path("nothing")}));
  CHECK(missing.exit_code == 1);
  CHECK(contains(missing.err, dir.path("nothing")));
  const auto directory = run_tool(f.args({"read", "--batch", dir.root()}));
  CHECK(directory.exit_code == 1);
  CHECK(contains(directory.err, dir.root()));
}

// ---- nlist -----------------------------------------------------------------------------------

TEST_CASE("nlist prints found symbols in order and reports missing ones", "[tool]") {
  const fixture& f = fx();
  const auto line = [&](const std::string& shown, const std::string& name) {
    char b[40];
    std::snprintf(b, sizeof b, " 0x%016llx\n", static_cast<unsigned long long>(f.symbols.at(name)));
    return shown + b;
  };
  SECTION("all found") {
    const auto r = run_tool(f.args({"nlist"}, {"version", "hz", "msgbufp", "test_fn_7", "_hz"}));
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out == line("version", "version") + line("hz", "hz") + line("msgbufp", "msgbufp") +
                       line("test_fn_7", "test_fn_7") + line("_hz", "hz"));
  }
  SECTION("some missing") {
    const auto r = run_tool(f.args({"nlist"}, {"nosuch", "ostype", "missing_too", "physmem"}));
    CHECK(r.exit_code == 1);
    CHECK(r.out == line("ostype", "ostype") + line("physmem", "physmem"));
    CHECK(r.err == "kvmxx: nosuch: symbol not found\nkvmxx: missing_too: symbol not found\n");
  }
}

// ---- dmesg ------------------------------------------------------------------------------------

TEST_CASE("dmesg prints the wrapped message buffer oldest message first", "[tool]") {
  const fixture& f = fx();
  const auto r = run_tool(f.args({"dmesg"}));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == f.log);
}

TEST_CASE("dmesg without a kernel prints the ring as stored", "[tool]") {
  const fixture& f = fx();
  std::string stored;
  for (const char c : f.ring)
    if (c != '\0') stored.push_back(c);
  if (stored.back() != '\n') stored.push_back('\n');
  REQUIRE(stored != f.log);
  const auto r = run_tool({"dmesg", "-M", f.core});
  CHECK(r.exit_code == 0);
  CHECK(r.out == stored);
}

// ---- demo --------------------------------------------------------------------------------------

TEST_CASE("demo writes a dump and a kernel and shows each command on them", "[tool]") {
  kvmxx_test::temp_dir dir;
  namespace fs = std::filesystem;
  SECTION("into a given directory") {
    const std::string d = dir.path("demo dir");
    const auto r = run_tool({"demo", d});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.empty());
    const std::string kernel = d + "/kernel", core = d + "/vmcore.0";
    REQUIRE(fs::is_regular_file(kernel));
    REQUIRE(fs::is_regular_file(core));
    CHECK(fs::file_size(core) + fs::file_size(kernel) < (70u << 20));
    const std::string nm = "-N '" + kernel + "' -M '" + core + "'";
    CHECK(contains(r.out, "$ kvmxx info " + nm + "\n"));
    CHECK(contains(r.out, "$ kvmxx nlist " + nm + " version hz msgbufp\n"));
    CHECK(contains(r.out, "$ kvmxx read " + nm + " version 64\n"));
    CHECK(contains(r.out, "$ kvmxx dmesg " + nm + "\n"));
    CHECK(contains(r.out, "format:"));
    CHECK(contains(r.out, "|FreeBSD 14.1-REL|"));
    CHECK(contains(r.out, "\nhz 0x"));

    // The files work with every command; the ring has wrapped, so only the rotated text
    // starts with the boot banner.
    const auto hz = run_tool({"read", "-N", kernel, "-M", core, "--hex", "hz", "4"});
    CHECK(hz.out == "e8030000\n");
    const auto v = run_tool({"read", "-N", kernel, "-M", core, "--hex", "version", "8"});
    CHECK(v.out == hex_string(std::vector<std::byte>{std::byte{'F'}, std::byte{'r'}, std::byte{'e'}, std::byte{'e'},
                                                     std::byte{'B'}, std::byte{'S'}, std::byte{'D'}, std::byte{' '}}) +
                       "\n");
    const auto n = run_tool({"nlist", "-N", kernel, "-M", core, "hostname", "ostype"});
    CHECK(n.exit_code == 0);
    const auto dmesg = run_tool({"dmesg", "-N", kernel, "-M", core});
    CHECK(dmesg.exit_code == 0);
    CHECK(starts_with(dmesg.out, "---<<BOOT>>---\n"));
    CHECK(contains(r.out, dmesg.out));
    const auto raw = run_tool({"dmesg", "-M", core});
    CHECK_FALSE(starts_with(raw.out, "---<<BOOT>>---"));
  }
  SECTION("into ./kvmxx-demo by default") {
    const auto r = run_tool({"demo"}, {}, dir.root());
    REQUIRE(r.exit_code == 0);
    CHECK(fs::is_regular_file(dir.path("kvmxx-demo/kernel")));
    CHECK(fs::is_regular_file(dir.path("kvmxx-demo/vmcore.0")));
    CHECK(contains(r.out, "$ kvmxx info -N ./kvmxx-demo/kernel -M ./kvmxx-demo/vmcore.0\n"));
  }
  SECTION("into a path that is a file") {
    const std::string file = dir.path("file");
    kvmxx_test::write_file(file, {});
    const auto r = run_tool({"demo", file});
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, file));
  }
}

// ---- the command line ------------------------------------------------------------------------------

TEST_CASE("the --help option works for the program and every subcommand and describes its options", "[tool]") {
  struct help_case {
    std::vector<std::string> args;
    std::vector<std::string> mentions;
  };
  const help_case cases[] = {
      {{"--help"}, {"Usage:", "info", "read", "nlist", "dmesg", "demo", "--version"}},
      {{"-h"}, {"Usage:", "read"}},
      {{"info", "--help"}, {"Usage: kvmxx info", "-N,--kernel", "-M,--core"}},
      {{"read", "--help"}, {"Usage: kvmxx read", "-N,--kernel", "-M,--core", "--hex", "--physical", "--batch", "ADDRESS",
                            "LENGTH", "SYMBOL[+OFFSET]"}},
      {{"nlist", "--help"}, {"Usage: kvmxx nlist", "-N,--kernel", "-M,--core", "SYMBOL"}},
      {{"dmesg", "--help"}, {"Usage: kvmxx dmesg", "-N,--kernel", "-M,--core"}},
      {{"demo", "--help"}, {"Usage: kvmxx demo", "DIR", "kvmxx-demo"}},
  };
  for (const auto& c : cases) {
    const auto r = run_tool(c.args);
    INFO(c.args.front() << "\n" << r.out);
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    for (const auto& m : c.mentions) CHECK(contains(r.out, m));
  }
}

TEST_CASE("the --version option prints the version", "[tool]") {
  const auto r = run_tool({"--version"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "kvmxx 0.1.0\n");
}

TEST_CASE("usage errors exit with status 2 and a message", "[tool]") {
  const fixture& f = fx();
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"info"},
      {"info", "-M", f.core, "--bogus"},
      {"info", "-M"},
      f.args({"read"}),
      f.args({"read"}, {"version"}),
      f.args({"read"}, {"version", "abc"}),
      f.args({"read"}, {"version", "0x40000001"}),
      f.args({"read"}, {"version", "-1"}),
      f.args({"read"}, {"0xzz", "4"}),
      f.args({"read"}, {"version+", "4"}),
      f.args({"read"}, {"version+0xq", "4"}),
      f.args({"read"}, {"99999999999999999999", "4"}),
      f.args({"read"}, {"version", "4", "extra"}),
      f.args({"read", "--batch", "-"}, {"version", "4"}),
      f.args({"read", "--batch", "-", "--hex"}),
      f.args({"read", "--physical"}, {"version", "4"}),
      f.args({"nlist"}),
      f.args({"nlist"}, {""}),
      {"demo", "a", "b"},
  };
  for (const auto& args : cases) {
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    INFO("kvmxx " << shown);
    const auto r = run_tool(args);
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK_FALSE(r.err.empty());
  }
  // -N is optional for nlist (Linux dumps carry VMCOREINFO symbols); a FreeBSD minidump
  // without a kernel file has no symbols: an error that says so, not a usage error.
  const auto no_kernel = run_tool({"nlist", "-M", f.core, "hz"});
  CHECK(no_kernel.exit_code == 1);
  CHECK(contains(no_kernel.err, "no kernel file was given"));
  const auto big = run_tool(f.args({"read"}, {"version", "0x40000001"}));
  CHECK(contains(big.err, "1 GiB"));
}

TEST_CASE("files that are missing or not a dump of this kernel fail with a message naming the path", "[tool]") {
  const fixture& f = fx();
  kvmxx_test::temp_dir dir;
  const std::string text = dir.path("notes.txt"), empty = dir.path("empty"), i386 = dir.path("kernel.i386");
  const std::string hello = "hello, this is not a crash dump\n";
  kvmxx_test::write_file(text, std::as_bytes(std::span<const char>(hello.data(), hello.size())));
  kvmxx_test::write_file(empty, {});
  using namespace kvmxx_test;
  write_file(i386, kernel_elf_builder(elf_class::elf32, elf_endian::little, elf_const::em_386)
                       .symbol("hz", 0xc0a00000, section_kind::data)
                       .build());

  struct bad {
    const char* what;
    std::string kernel, core, named;
  };
  const bad cases[] = {
      {"missing core", f.kernel, dir.path("vmcore.9"), dir.path("vmcore.9")},
      {"missing kernel", dir.path("kernel.missing"), f.core, dir.path("kernel.missing")},
      {"i386 kernel for an amd64 dump", i386, f.core, i386},
      {"text file as core", f.kernel, text, text},
      {"empty core", f.kernel, empty, empty},
      {"directory as core", f.kernel, dir.root(), dir.root()},
      {"text file as kernel", text, f.core, text},
  };
  for (const auto& c : cases) {
    for (const auto& cmd : std::vector<std::vector<std::string>>{{"info"}, {"dmesg"}, {"nlist", "hz"}, {"read", "hz", "4"}}) {
      std::vector<std::string> args{cmd.front(), "-N", c.kernel, "-M", c.core};
      args.insert(args.end(), cmd.begin() + 1, cmd.end());
      const auto r = run_tool(args);
      INFO(c.what << ", kvmxx " << cmd.front() << ": " << r.err);
      CHECK(r.exit_code == 1);
      CHECK(r.out.empty());
      CHECK(starts_with(r.err, "kvmxx: "));
      CHECK(contains(r.err, c.named));
      CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    }
  }
  const auto arch = run_tool({"info", "-N", i386, "-M", f.core});
  CHECK(contains(arch.err, "i386"));
}

// ---- Linux: real dumps made by QEMU and makedumpfile (tests/real/make-linux-dumps.sh) ----

namespace {
std::string real_dumps() {
  const char* d = std::getenv("KVMXX_LINUX_DUMPS");
  if (d == nullptr || !std::filesystem::exists(std::string(d) + "/nokaslr/facts.txt")) return {};
  return d;
}
std::string fact(const std::string& facts_path, const std::string& key) {
  std::ifstream in(facts_path);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + " ", 0) == 0) return line.substr(key.size() + 1);
  return {};
}
std::string kallsyms_addr(const std::string& path, const std::string& name) {
  std::ifstream in(path);
  std::string a, t, n;
  while (in >> a >> t >> n)
    if (n == name) return a;
  return {};
}
}  // namespace

TEST_CASE("info names a Linux QEMU dump its release and page-table root", "[tool][linux][real]") {
  const auto d = real_dumps();
  if (d.empty()) KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS does not hold the real Linux dumps");
  const auto r = run_tool({"info", "-M", d + "/la57/elf"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("Linux ELF core (QEMU dump-guest-memory)") != std::string::npos);
  CHECK(r.out.find("6.1.0") != std::string::npos);
  CHECK(r.out.find("5-level paging") != std::string::npos);  // facts: la57 1
  CHECK(fact(d + "/la57/facts.txt", "la57") == "1");
}

TEST_CASE("nlist with the dump alone resolves VMCOREINFO symbols at their runtime addresses", "[tool][linux][real]") {
  const auto d = real_dumps();
  if (d.empty()) KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS does not hold the real Linux dumps");
  const auto r = run_tool({"nlist", "-M", d + "/kaslr/elf", "init_uts_ns", "_stext"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "init_uts_ns 0x" + kallsyms_addr(d + "/kaslr/kallsyms.txt", "init_uts_ns") + "\n_stext 0x" +
                     kallsyms_addr(d + "/kaslr/kallsyms.txt", "_stext") + "\n");
}

TEST_CASE("a link-time System.map is moved by KASLR's KERNELOFFSET", "[tool][linux][real]") {
  const auto d = real_dumps();
  if (d.empty()) KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS does not hold the real Linux dumps");
  // The nokaslr boot's kallsyms holds link-time addresses: a System.map substitute.
  const auto r = run_tool({"nlist", "-N", d + "/nokaslr/kallsyms.txt", "-M", d + "/kaslr/elf", "linux_banner"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "linux_banner 0x" + kallsyms_addr(d + "/kaslr/kallsyms.txt", "linux_banner") + "\n");
}

TEST_CASE("read of linux_banner equals the guest's /proc/version on every ELF dump", "[tool][linux][real]") {
  const auto d = real_dumps();
  if (d.empty()) KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS does not hold the real Linux dumps");
  for (const std::string f : {"nokaslr/elf", "nokaslr/elf-paging", "nokaslr/mdf-d31.elf", "kaslr/elf", "la57/elf",
                              "novmcoreinfo/elf"}) {
    const std::string boot = f.substr(0, f.find('/'));
    const std::string banner = fact(d + "/" + boot + "/facts.txt", "banner");
    REQUIRE_FALSE(banner.empty());
    // novmcoreinfo has no VMCOREINFO: symbols come from the link-time kallsyms file and
    // translation from CR3 in QEMU's note.
    const auto r = run_tool({"read", "--hex", "-N", d + "/nokaslr/kallsyms.txt", "-M", d + "/" + f, "linux_banner",
                             std::to_string(banner.size())});
    INFO(f << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    std::string hex;
    for (unsigned char c : banner) hex += "0123456789abcdef"[c >> 4], hex += "0123456789abcdef"[c & 15];
    CHECK(r.out == hex + "\n");
  }
}

TEST_CASE("dmesg of a Linux dump is byte-identical to makedumpfile --dump-dmesg", "[tool][linux][real]") {
  const auto d = real_dumps();
  if (d.empty()) KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS does not hold the real Linux dumps");
  const auto r = run_tool({"dmesg", "-M", d + "/nokaslr/elf"});
  REQUIRE(r.exit_code == 0);
  std::ifstream in(d + "/nokaslr/dmesg.txt");
  const std::string expected((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(expected.size() > 1000);
  CHECK(r.out == expected);
}

TEST_CASE("dmesg of a dump without VMCOREINFO says why it cannot find the log", "[tool][linux][real]") {
  const auto d = real_dumps();
  if (d.empty()) KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS does not hold the real Linux dumps");
  const auto r = run_tool({"dmesg", "-M", d + "/novmcoreinfo/elf"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("VMCOREINFO") != std::string::npos);
}

// ---- Linux /proc/kcore format (a synthetic copy: tests/support/kcore_fixture.hpp) ----

TEST_CASE("info, read, nlist and dmesg on a file in /proc/kcore's format", "[tool][kcore]") {
  kvmxx_test::kcore_fixture f;
  kvmxx_test::temp_dir dir;
  const std::string core = dir.path("kcore"), map = dir.path("System.map");
  kvmxx_test::write_file(core, f.b.build());
  kvmxx_test::write_file(map, std::as_bytes(std::span(f.system_map.data(), f.system_map.size())));

  const auto info = run_tool({"info", "-N", map, "-M", core});
  REQUIRE(info.exit_code == 0);
  CHECK(info.out.find("Linux kcore-format file") != std::string::npos);
  CHECK(info.out.find("6.1.0-kcore-test") != std::string::npos);
  CHECK(info.out.find("kcore's note") != std::string::npos);
  CHECK(info.out.find("0x2000000") != std::string::npos);  // KERNELOFFSET

  const u64 banner = kvmxx_test::kcore_fixture::banner_link + kvmxx_test::kcore_fixture::kaslr;
  const auto nl = run_tool({"nlist", "-N", map, "-M", core, "linux_banner", "init_uts_ns"});
  REQUIRE(nl.exit_code == 0);
  CHECK(nl.out == "linux_banner " + hex_addr(banner) + "\ninit_uts_ns " +
                      hex_addr(kvmxx_test::kcore_fixture::uts_link + kvmxx_test::kcore_fixture::kaslr) + "\n");

  const auto rd = run_tool({"read", "-N", map, "-M", core, "--hex", "linux_banner", "24"});
  REQUIRE(rd.exit_code == 0);
  CHECK(rd.out == hex_string(*f.read_virt(banner, 24)) + "\n");

  // Across the two adjacent vmalloc segments.
  const u64 va = kvmxx_test::kcore_fixture::vmalloc_va + 0x2ff8;
  const auto cross = run_tool({"read", "-M", core, "--hex", hex_addr(va), "16"});
  REQUIRE(cross.exit_code == 0);
  CHECK(cross.out == hex_string(*f.read_virt(va, 16)) + "\n");

  const auto phys = run_tool({"read", "-M", core, "--physical", "--hex", "0x100000", "16"});
  REQUIRE(phys.exit_code == 0);
  CHECK(phys.out == hex_string(*f.read_virt(kvmxx_test::kcore_fixture::page_offset + 0x100000, 16)) + "\n");

  const auto hole = run_tool({"read", "-M", core, "--hex", "0xffffc90000005000", "16"});
  CHECK(hole.exit_code == 1);
  CHECK(hole.err.find("0xffffc90000005000") != std::string::npos);

  // The fixture's VMCOREINFO has no printk description: dmesg must say so, not crash.
  const auto dm = run_tool({"dmesg", "-M", core});
  CHECK(dm.exit_code == 1);
  CHECK_FALSE(dm.err.empty());
}

TEST_CASE("nlist with the dump alone resolves any kernel symbol through the dump's kallsyms tables",
          "[tool][linux][real][kallsyms]") {
  const auto d = real_dumps();
  if (d.empty()) KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS does not hold the real Linux dumps");
  for (const std::string boot : {"kaslr", "nokaslr", "la57"}) {
    // Every line the guest printed from /proc/kallsyms; none of init_task, linux_banner,
    // jiffies_64, … is a VMCOREINFO SYMBOL() line, so only kallsyms can answer them.
    std::ifstream in(d + "/" + boot + "/kallsyms.txt");
    std::vector<std::string> args{"nlist", "-M", d + "/" + boot + "/elf"};
    std::string expected, a, t, n;
    while (in >> a >> t >> n) {
      args.push_back(n);
      expected += n + " 0x" + a + "\n";
    }
    REQUIRE(args.size() > 10);
    const auto r = run_tool(args);
    INFO(boot << ": " << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == expected);
  }
  const auto missing = run_tool({"nlist", "-M", d + "/kaslr/elf", "init_task", "no_such_symbol_anywhere"});
  CHECK(missing.exit_code == 1);
  CHECK(missing.out == "init_task 0x" + kallsyms_addr(d + "/kaslr/kallsyms.txt", "init_task") + "\n");
  CHECK(missing.err.find("no_such_symbol_anywhere: symbol not found") != std::string::npos);
}

TEST_CASE("info says where a Linux dump's symbols come from", "[tool][linux][real][kallsyms]") {
  const auto d = real_dumps();
  if (d.empty()) KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS does not hold the real Linux dumps");
  const auto r = run_tool({"info", "-M", d + "/kaslr/elf"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("symbol source 1:  no kernel file (-N)") != std::string::npos);
  CHECK(r.out.find("symbol source 2:  kallsyms tables in the dump, ") != std::string::npos);
  CHECK(r.out.find("symbol source 3:  VMCOREINFO, ") != std::string::npos);
  const auto with_file = run_tool({"info", "-N", d + "/nokaslr/kallsyms.txt", "-M", d + "/kaslr/elf"});
  REQUIRE(with_file.exit_code == 0);
  CHECK(with_file.out.find("symbol source 1:  kernel file " + d + "/nokaslr/kallsyms.txt, ") != std::string::npos);
  // moved by the KERNELOFFSET the guest read from its own VMCOREINFO
  std::ifstream facts(d + "/kaslr/facts.txt");
  std::string line, offset;
  while (std::getline(facts, line))
    if (line.rfind("vmcoreinfo_line KERNELOFFSET=", 0) == 0) offset = line.substr(29);
  REQUIRE_FALSE(offset.empty());
  CHECK(with_file.out.find(", moved by 0x" + offset + "\n") != std::string::npos);
  const auto none = run_tool({"info", "-M", d + "/novmcoreinfo/elf"});
  REQUIRE(none.exit_code == 0);
  CHECK(none.out.find("symbol source 2:  kallsyms tables in the dump: unavailable: kallsyms: the dump has no VMCOREINFO") !=
        std::string::npos);
}

TEST_CASE("read of a kernel symbol needs no -N for a Linux dump with kallsyms tables", "[tool][linux][real][kallsyms]") {
  const auto d = real_dumps();
  if (d.empty()) KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS does not hold the real Linux dumps");
  const std::string banner = fact(d + "/kaslr/facts.txt", "banner");
  REQUIRE_FALSE(banner.empty());
  const auto r = run_tool({"read", "--hex", "-M", d + "/kaslr/elf", "linux_banner", std::to_string(banner.size())});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::string hex;
  for (unsigned char c : banner) hex += "0123456789abcdef"[c >> 4], hex += "0123456789abcdef"[c & 15];
  CHECK(r.out == hex + "\n");
  // Without VMCOREINFO there are no symbols: the error says why.
  const auto none = run_tool({"read", "-M", d + "/novmcoreinfo/elf", "linux_banner", "16"});
  CHECK(none.exit_code == 1);
  CHECK(none.err.find("no VMCOREINFO") != std::string::npos);
}

// ---- i386 (tests/real/make-linux-dumps-i386.sh, $KVMXX_LINUX_DUMPS_I386) -------------------

namespace {
std::string real_dumps_i386() {
  const char* d = std::getenv("KVMXX_LINUX_DUMPS_I386");
  if (d == nullptr || !std::filesystem::exists(std::string(d) + "/manifest.txt")) return {};
  return d;
}
// The address of a symbol printed by `kvmxx nlist` ("NAME 0xHEX"), or of a /proc/kallsyms line.
std::optional<u64> nlist_addr(const std::string& out, const std::string& name) {
  std::istringstream in(out);
  std::string n, a;
  while (in >> n >> a)
    if (n == name) return std::stoull(a, nullptr, 16);
  return std::nullopt;
}
}  // namespace

TEST_CASE("info, nlist, read and dmesg work on i386 PAE and 2-level QEMU dumps", "[tool][linux][real][i386]") {
  const auto d = real_dumps_i386();
  if (d.empty()) KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS_I386 does not hold the real i386 Linux dumps");
  for (const std::string boot : {"pae", "nopae"}) {
    INFO(boot);
    const std::string core = d + "/" + boot + "/elf", facts = d + "/" + boot + "/facts.txt";
    const bool pae = fact(facts, "pae") == "1";
    CHECK(pae == (boot == "pae"));
    const auto info = run_tool({"info", "-M", core});
    INFO(info.err);
    REQUIRE(info.exit_code == 0);
    CHECK(info.out.find("i386") != std::string::npos);
    CHECK(info.out.find(pae ? "3-level paging, PAE" : "2-level paging, 32-bit") != std::string::npos);

    // The nokaslr boot's /proc/kallsyms (link-time addresses) moved to this KASLR boot's.
    const std::string link = d + "/" + boot + "-novmcoreinfo/kallsyms-full.txt";
    const auto nl = run_tool({"nlist", "-N", link, "-M", core, "start_kernel", "_stext"});
    INFO(nl.err);
    REQUIRE(nl.exit_code == 0);
    const std::string runtime = d + "/" + boot + "/kallsyms-full.txt";
    for (const std::string sym : {"start_kernel", "_stext"}) {
      const auto want = kallsyms_addr(runtime, sym);
      REQUIRE_FALSE(want.empty());
      CHECK(nlist_addr(nl.out, sym) == std::stoull(want, nullptr, 16));
    }

    // init_uts_ns (a VMCOREINFO symbol) + 65 is the nodename: the guest's hostname.
    const std::string host = fact(facts, "hostname");
    REQUIRE(host == "KVMXX-MARKER-HOSTNAME");
    // (read wants -N for symbols; init_uts_ns is not in kallsyms and comes from VMCOREINFO.)
    const auto rd = run_tool({"read", "--hex", "-N", link, "-M", core, "init_uts_ns+65", std::to_string(host.size())});
    INFO(rd.err);
    REQUIRE(rd.exit_code == 0);
    std::string hex;
    for (unsigned char c : host) hex += "0123456789abcdef"[c >> 4], hex += "0123456789abcdef"[c & 15];
    CHECK(rd.out == hex + "\n");

    // The first kernel log record is linux_banner = /proc/version.
    const auto dm = run_tool({"dmesg", "-M", core});
    INFO(dm.err);
    REQUIRE(dm.exit_code == 0);
    CHECK(dm.out.rfind("[    0.000000] " + fact(facts, "banner") + "\n", 0) == 0);
    CHECK(dm.out.find("Kernel command line: " + fact(facts, "cmdline") + "\n") != std::string::npos);
  }
}

// ---- Linux arm64: real dumps made by qemu-system-aarch64 (tests/real/make-linux-dumps-arm64.sh) ----

namespace {
std::string real_dumps_arm64() {
  const char* d = std::getenv("KVMXX_LINUX_DUMPS_ARM64");
  if (d == nullptr || !std::filesystem::exists(std::string(d) + "/kaslr/facts.txt") ||
      !std::filesystem::exists(std::string(d) + "/nokaslr/facts.txt"))
    return {};
  return d;
}
}  // namespace

TEST_CASE("info describes an arm64 QEMU dump: aarch64, its root, 48-bit VA, KERNELOFFSET", "[tool][linux][aarch64][real]") {
  const auto d = real_dumps_arm64();
  if (d.empty()) KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS_ARM64 does not hold the real arm64 dumps");
  const auto r = run_tool({"info", "-M", d + "/kaslr/elf"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("aarch64") != std::string::npos);
  CHECK(r.out.find("4-level paging") != std::string::npos);
  CHECK(r.out.find(fact(d + "/kaslr/facts.txt", "osrelease")) != std::string::npos);
  CHECK(fact(d + "/kaslr/facts.txt", "tcr_el1_t1sz") == "0x10");  // 64 - 16 = 48 bits
  CHECK(r.out.find("virtual address bits: 48") != std::string::npos);
  const std::string koff = fact(d + "/kaslr/facts.txt", "kerneloffset");
  REQUIRE(koff.size() > 3);
  CHECK(r.out.find("KERNELOFFSET:         " + koff) != std::string::npos);
}

TEST_CASE("nlist on an arm64 dump: VMCOREINFO symbols, and link-time addresses moved by KERNELOFFSET",
          "[tool][linux][aarch64][real]") {
  const auto d = real_dumps_arm64();
  if (d.empty()) KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS_ARM64 does not hold the real arm64 dumps");
  const std::string ks = d + "/kaslr/kallsyms.txt";
  const auto r = run_tool({"nlist", "-M", d + "/kaslr/elf", "_stext"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "_stext 0x" + kallsyms_addr(ks, "_stext") + "\n");
  // The nokaslr boot's kallsyms lines hold link-time addresses: a System.map substitute
  // (Debian's /boot/System.map is a one-line placeholder).
  const auto m = run_tool({"nlist", "-N", d + "/nokaslr/kallsyms.txt", "-M", d + "/kaslr/elf", "_stext", "_etext"});
  INFO(m.err);
  REQUIRE(m.exit_code == 0);
  CHECK(m.out == "_stext 0x" + kallsyms_addr(ks, "_stext") + "\n_etext 0x" + kallsyms_addr(ks, "_etext") + "\n");
}

TEST_CASE("read on an arm64 dump: the hostname in init_uts_ns through the page tables", "[tool][linux][aarch64][real]") {
  const auto d = real_dumps_arm64();
  if (d.empty()) KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS_ARM64 does not hold the real arm64 dumps");
  for (const std::string boot : {"nokaslr", "kaslr"}) {
    const std::string host = fact(d + "/" + boot + "/facts.txt", "hostname");
    REQUIRE_FALSE(host.empty());
    // read takes symbols only with -N: the address comes from nlist (VMCOREINFO).
    const auto n = run_tool({"nlist", "-M", d + "/" + boot + "/elf", "init_uts_ns"});
    REQUIRE(n.exit_code == 0);
    REQUIRE(n.out.rfind("init_uts_ns 0x", 0) == 0);
    const std::uint64_t uts = std::stoull(n.out.substr(14), nullptr, 16);
    // struct new_utsname: sysname[65], then nodename[65]
    const auto r = run_tool({"read", "--hex", "-M", d + "/" + boot + "/elf", std::to_string(uts + 65),
                             std::to_string(host.size())});
    INFO(boot << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    std::string hex;
    for (unsigned char c : host) hex += "0123456789abcdef"[c >> 4], hex += "0123456789abcdef"[c & 15];
    CHECK(r.out == hex + "\n");
  }
}

TEST_CASE("dmesg of an arm64 dump holds every kernel line the guest's serial console printed",
          "[tool][linux][aarch64][real]") {
  const auto d = real_dumps_arm64();
  if (d.empty()) KVMXX_TEST_SKIP("KVMXX_LINUX_DUMPS_ARM64 does not hold the real arm64 dumps");
  for (const std::string boot : {"nokaslr", "kaslr"}) {
    const auto r = run_tool({"dmesg", "-M", d + "/" + boot + "/elf"});
    INFO(boot << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    std::set<std::string> lines;
    {
      std::istringstream in(r.out);
      for (std::string l; std::getline(in, l);) lines.insert(l);
    }
    std::ifstream serial(d + "/" + boot + "/serial.log", std::ios::binary);
    std::size_t console = 0, missing = 0;
    for (std::string l; std::getline(serial, l);) {
      if (!l.empty() && l.back() == '\r') l.pop_back();
      if (l.empty() || l[0] != '[') continue;  // the kernel's console lines: "[    0.000000] ..."
      ++console;
      if (!lines.count(l)) {
        ++missing;
        UNSCOPED_INFO("not in dmesg: " << l);
      }
    }
    CHECK(console > 100);
    CHECK(missing == 0);
  }
}

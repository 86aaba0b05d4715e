// SPDX-License-Identifier: BSD-2-Clause
//
// kvmxx(1): look at kernel memory in a crash dump from the command line, with the
// `-N kernel -M core` options of FreeBSD's kvm tools (kgdb, ps -M, dmesg -M).
//
//   kvmxx info  -N KERNEL -M CORE                         what the dump is
//   kvmxx read  -N KERNEL -M CORE [--hex] [--physical] ADDRESS|SYMBOL[+OFFSET] LENGTH
//   kvmxx read  -N KERNEL -M CORE [--physical] --batch FILE|-
//   kvmxx nlist -N KERNEL -M CORE SYMBOL...               kvm_nlist2
//   kvmxx dmesg -N KERNEL -M CORE                         the kernel message buffer
//   kvmxx demo  [DIR]                                     a demo dump, and each command run on it
//
// Every file is opened through kvmxx::open. Exit status: 0 success, 1 a failure the
// library reported (the message says what and where), 2 a usage error.
#include "demo.hpp"

#include <kvmxx/core/error.hpp>
#include <kvmxx/core/open.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/os/freebsd/msgbuf.hpp>
#include <kvmxx/os/linux/printk.hpp>
#include <kvmxx/version.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <sys/types.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

constexpr std::uint64_t max_length = std::uint64_t{1} << 30;  // 1 GiB per read
constexpr std::size_t read_chunk = std::size_t{1} << 20;      // bytes per read() call when streaming

// ---- output -----------------------------------------------------------------------

void write_out(std::string_view s) {
  if (!s.empty()) std::fwrite(s.data(), 1, s.size(), stdout);
}

void report(std::string_view message) {
  std::fflush(stdout);  // keep stdout before stderr when both go to one terminal
  fmt::print(stderr, "kvmxx: {}\n", message);
}

int fail_with(const std::error_code& ec) {
  report(kvmxx::describe(ec));
  return 1;
}

constexpr char hex_digits[] = "0123456789abcdef";

void append_hex(std::string& out, std::span<const std::byte> bytes) {
  const std::size_t at = out.size();
  out.resize(at + 2 * bytes.size());
  char* p = out.data() + at;
  for (const std::byte b : bytes) {
    const auto v = std::to_integer<unsigned>(b);
    *p++ = hex_digits[v >> 4];
    *p++ = hex_digits[v & 0xf];
  }
}

// `hexdump -C` (without its `*` squeezing, like -v), with the 64-bit address of each line
// in the left column: "ffffffff80800fd0  46 72 65 65 42 53 44 20  31 34 2e 31 2d 52 45 4c  |FreeBSD 14.1-REL|".
// The last line holds the address after the last byte, as hexdump's final offset line.
class hexdump_writer {
 public:
  explicit hexdump_writer(std::uint64_t address) : address_(address) {}

  // Bytes may come in pieces; every piece but the last must be a multiple of 16 bytes long.
  void add(std::span<const std::byte> bytes) {
    std::string out;
    out.reserve(bytes.size() / 16 * 80 + 80);
    for (std::size_t at = 0; at < bytes.size(); at += 16) {
      const auto line = bytes.subspan(at, std::min<std::size_t>(16, bytes.size() - at));
      fmt::format_to(std::back_inserter(out), "{:016x}  ", address_ + at);
      for (std::size_t k = 0; k < 16; ++k) {
        if (k < line.size()) {
          const auto v = std::to_integer<unsigned>(line[k]);
          out.push_back(hex_digits[v >> 4]);
          out.push_back(hex_digits[v & 0xf]);
          out.push_back(' ');
        } else {
          out.append("   ");
        }
        if (k == 7) out.push_back(' ');
      }
      out.append(" |");
      for (const std::byte b : line) {
        const auto c = std::to_integer<unsigned char>(b);
        out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '.');
      }
      out.append("|\n");
    }
    address_ += bytes.size();
    printed_ += bytes.size();
    write_out(out);
  }

  void finish() const {
    if (printed_ > 0) fmt::print("{:016x}\n", address_);
  }

 private:
  std::uint64_t address_;
  std::uint64_t printed_ = 0;
};

// ---- parsing ADDRESS, SYMBOL[+OFFSET], LENGTH ---------------------------------------

/// A decimal number, or a hexadecimal one with a 0x prefix; nullopt when malformed or
/// larger than 64 bits.
std::optional<std::uint64_t> parse_number(std::string_view s) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

/// Where a read starts: a number, or a symbol plus an offset.
struct location {
  std::string symbol;      // empty: `value` is the address
  std::uint64_t value = 0;  // the address, or the offset from the symbol
};

/// Parses ADDRESS or SYMBOL[+OFFSET]; returns an error text or the location.
std::string parse_location(std::string_view s, location& out) {
  if (s.empty()) return "empty address";
  const unsigned char first = static_cast<unsigned char>(s[0]);
  if (first >= '0' && first <= '9') {
    const auto v = parse_number(s);
    if (!v) return fmt::format("\"{}\" is not an address (hex with 0x, or decimal, below 2^64)", s);
    out = location{{}, *v};
    return {};
  }
  const auto plus = s.find('+');
  const std::string_view name = s.substr(0, plus);
  if (name.empty() || first == '-' || name.find_first_of(" \t") != std::string_view::npos)
    return fmt::format("\"{}\" is not an address or a symbol name", s);
  std::uint64_t offset = 0;
  if (plus != std::string_view::npos) {
    const auto v = parse_number(s.substr(plus + 1));
    if (!v) return fmt::format("\"{}\": the offset after '+' must be a number (hex with 0x, or decimal)", s);
    offset = *v;
  }
  out = location{std::string(name), offset};
  return {};
}

/// Parses LENGTH; returns an error text or the length.
std::string parse_length(std::string_view s, std::uint64_t& out) {
  const auto v = parse_number(s);
  if (!v) return fmt::format("\"{}\" is not a length (decimal, or hex with 0x)", s);
  if (*v > max_length)
    return fmt::format("length {} is larger than the limit of 1 GiB ({:#x} bytes)", s, max_length);
  out = *v;
  return {};
}

// ---- the dump ------------------------------------------------------------------------

struct dump_options {
  std::string kernel;
  std::string core;
  bool kernel_given = false;
  bool have_kernel() const { return kernel_given; }
  const char* kernel_path() const { return kernel_given ? kernel.c_str() : nullptr; }
};

/// Opens the dump and runs f(km) -> int; an open failure is reported and gives 1.
template <class F>
int with_dump(const dump_options& d, F&& f) {
  auto r = kvmxx::open(d.kernel_path(), d.core.c_str(), std::forward<F>(f));
  if (!r) return fail_with(r.error());
  return r.value();
}

/// The address a location stands for, or an error text.
template <class Km>
std::string resolve(const Km& km, const dump_options& d, const location& loc, bool physical, std::uint64_t& out) {
  if (loc.symbol.empty()) {
    out = loc.value;
    return {};
  }
  if (physical) return fmt::format("{}: --physical takes a physical address, not a symbol", loc.symbol);
  // A Linux dump has symbols of its own (its kallsyms tables, VMCOREINFO); FreeBSD's need -N.
  if constexpr (!requires { km.source().vmcoreinfo(); })
    if (!d.have_kernel()) return fmt::format("{}: looking up a symbol needs the kernel file (-N KERNEL)", loc.symbol);
  auto a = km.address_of(loc.symbol);
  if (!a) return kvmxx::describe(a.error());
  const std::uint64_t base = kvmxx::to_integer(a.value());
  if (base + loc.value < base)
    return fmt::format("{}+{:#x}: the address wraps past 0xffffffffffffffff", loc.symbol, loc.value);
  out = base + loc.value;
  return {};
}

template <class Km>
kvmxx::result<std::size_t> read_some(const Km& km, bool physical, std::uint64_t address, std::span<std::byte> out) {
  if (physical) return km.read_physical(kvmxx::physaddr{address}, out);
  return km.read(kvmxx::kvaddr{address}, out);
}

std::string wrap_message(std::uint64_t address, std::uint64_t length) {
  return fmt::format("{:#x} + {:#x} bytes: the range wraps past 0xffffffffffffffff", address, length);
}

// ---- info ----------------------------------------------------------------------------

std::string mib(std::uint64_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20)); }

// Where a Linux dump's symbols come from, in the order the chain tries them.
void linux_symbol_rows(const kvmxx::linux_kernel_symbols& r, std::vector<std::pair<std::string, std::string>>& rows) {
  const auto& elf = r.get<0>();
  const auto& text = r.get<1>();
  if (elf.inner().size() > 0)
    rows.emplace_back("symbol source 1", fmt::format("kernel file .symtab, {} symbols, moved by {:#x}", elf.inner().size(),
                                               elf.displacement()));
  else if (text.inner().size() > 0)
    rows.emplace_back("symbol source 1", fmt::format("kernel file {}, {} symbols, moved by {:#x}", text.inner().path(),
                                               text.inner().size(), text.displacement()));
  else
    rows.emplace_back("symbol source 1", "no kernel file (-N)");
  const auto& ks = r.get<2>();
  rows.emplace_back("symbol source 2", ks.loaded() ? fmt::format("kallsyms tables in the dump, {} symbols", ks.size())
                                             : "kallsyms tables in the dump: unavailable: " + ks.why_empty());
  rows.emplace_back("symbol source 3", fmt::format("VMCOREINFO, {} SYMBOL() lines", r.get<3>().size()));
}

template <class Km>
int print_info(const Km& km) {
  const kvmxx::backend_info i = km.info();
  std::vector<std::pair<std::string, std::string>> rows;
  rows.emplace_back("format", i.format);
  rows.emplace_back("architecture", std::string(kvmxx::name_of(i.arch)));
  rows.emplace_back("OS", std::string(kvmxx::name_of(i.os)));
  if (i.format_version != 0) rows.emplace_back("format version", fmt::format("{}", i.format_version));
  rows.emplace_back("page size", fmt::format("{}", i.page_size));
  rows.emplace_back("file size", fmt::format("{} bytes ({})", i.file_size, mib(i.file_size)));
  if constexpr (requires { km.source().truncated(); })
    rows.emplace_back("truncated", km.source().truncated() ? "yes (pages past the end of the file cannot be read)" : "no");
  const std::size_t ranges_row = rows.size();
  std::string ranges = fmt::format("{}", i.ranges.size());
  if constexpr (requires { km.source().header().dumpavailsize; })
    if (km.source().header().dumpavailsize == 0)  // v1/v2: no dump_avail, only the bitmap's extent
      ranges += " (the page bitmap's coverage: this minidump version does not list RAM)";
  rows.emplace_back("physical ranges", ranges);
  rows.emplace_back("dumped pages", fmt::format("{} ({})", i.dumped_pages, mib(i.dumped_pages * i.page_size)));
  if (i.os == kvmxx::os_kind::freebsd)
    rows.emplace_back("message buffer", fmt::format("{} bytes", i.message_buffer_size));
  if constexpr (requires { km.source().header(); }) {
    const auto& h = km.source().header();
    rows.emplace_back("kernbase", fmt::format("{:#018x}", h.kernbase));
    rows.emplace_back("dmapbase", fmt::format("{:#018x}", h.dmapbase));
    rows.emplace_back("dmapend", fmt::format("{:#018x}", h.dmapend));
  }
  if constexpr (requires { km.source().vmcoreinfo(); }) {  // Linux ELF cores
    const auto& src = km.source();
    const auto& vi = src.vmcoreinfo();
    rows.emplace_back("VMCOREINFO", vi.empty() ? "absent (no -device vmcoreinfo / kdump note)" : "present");
    if (auto rel = vi.osrelease()) rows.emplace_back("OS release", std::string(*rel));
    rows.emplace_back("KERNELOFFSET", vi.kernel_offset() ? fmt::format("{:#x}", *vi.kernel_offset())
                                                         : std::string(vi.empty() ? "unknown (no VMCOREINFO)"
                                                                                  : "not in VMCOREINFO"));
    if constexpr (requires { src.vmcoreinfo_source(); }) {  // kcore: the kernel reads virtual addresses
      if (!vi.empty())
        rows.emplace_back("VMCOREINFO from", src.vmcoreinfo_source() == "note" ? "kcore's note" : src.vmcoreinfo_source());
    } else {
      if (auto root = src.page_table_root())
        rows.emplace_back("page-table root", fmt::format("{:#x} ({}-level paging{}{})", kvmxx::to_integer(*root),
                                                         src.paging_levels(),
                                                         src.machine() == kvmxx::machine::i386
                                                             ? (src.paging_levels() == 3 ? ", PAE" : ", 32-bit")
                                                             : "",
                                                         vi.empty() ? ", from CR3 in the QEMU note" : ""));
      else
        rows.emplace_back("page-table root", "unknown: kernel virtual addresses cannot be translated");
      if (src.va_bits() != 0)  // aarch64: the width the root table covers
        rows.emplace_back("virtual address bits", fmt::format("{}", src.va_bits()));
      rows.emplace_back("CPUs", fmt::format("{}", src.cpus().size()));
    }
    rows.emplace_back("PT_LOAD segments", fmt::format("{}", src.segments().size()));
  }
  if constexpr (std::is_same_v<std::remove_cvref_t<decltype(km.resolver())>, kvmxx::linux_kernel_symbols>)
    linux_symbol_rows(km.resolver(), rows);
  if (const auto& k = km.kernel_file()) {
    rows.emplace_back("kernel file", fmt::format("ELF{}, {}-endian, {}", unsigned{k->elf_class},
                                                 k->byte_order == std::endian::big ? "big" : "little",
                                                 kvmxx::name_of(k->arch)));
    // (a Linux chain's size() counts its sources: the rows above describe them)
    if constexpr (requires { km.resolver().size(); } &&
                  !std::is_same_v<std::remove_cvref_t<decltype(km.resolver())>, kvmxx::linux_kernel_symbols>)
      rows.emplace_back("symbols", fmt::format("{}", km.resolver().size()));
  }

  std::size_t width = 0;
  for (const auto& r : rows) width = std::max(width, r.first.size() + 1);
  std::vector<std::string> range_text;
  std::size_t range_width = 0;
  for (const auto& r : i.ranges) {
    range_text.push_back(fmt::format("{:#x}-{:#x}", kvmxx::to_integer(r.start), kvmxx::to_integer(r.end)));
    range_width = std::max(range_width, range_text.back().size());
  }
  std::string out;
  for (std::size_t n = 0; n < rows.size(); ++n) {
    fmt::format_to(std::back_inserter(out), "{:<{}} {}\n", rows[n].first + ":", width, rows[n].second);
    if (n == ranges_row)
      for (std::size_t k = 0; k < i.ranges.size(); ++k)
        fmt::format_to(std::back_inserter(out), "  {:<{}}  {:>10}\n", range_text[k], range_width,
                       mib(kvmxx::to_integer(i.ranges[k].end) - kvmxx::to_integer(i.ranges[k].start)));
  }
  write_out(out);
  return 0;
}

int run_info(const dump_options& d) {
  return with_dump(d, [&](const auto& km) { return print_info(km); });
}

// ---- read ----------------------------------------------------------------------------

struct read_options {
  dump_options dump;
  bool hex = false;
  bool physical = false;
  std::string address_text;
  std::string length_text;
  std::string batch;  // empty: no --batch
};

template <class Km>
int read_one(const Km& km, const read_options& o) {
  location loc;
  std::uint64_t length = 0, address = 0;
  // Both were checked by the validators; these cannot fail here.
  if (auto e = parse_location(o.address_text, loc); !e.empty()) return report(e), 2;
  if (auto e = parse_length(o.length_text, length); !e.empty()) return report(e), 2;
  if (auto e = resolve(km, o.dump, loc, o.physical, address); !e.empty()) return report(e), 1;
  if (length > 0 && address + (length - 1) < address) return report(wrap_message(address, length)), 1;

  std::vector<std::byte> buf(static_cast<std::size_t>(std::min<std::uint64_t>(length, read_chunk)));
  hexdump_writer dump(address);
  std::string hex;
  std::uint64_t done = 0;
  std::string stopped;  // why the read stopped short
  while (done < length) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(read_chunk, length - done));
    auto got = read_some(km, o.physical, address + done, std::span<std::byte>(buf.data(), want));
    if (!got) {
      stopped = kvmxx::describe(got.error());
      break;
    }
    const auto bytes = std::span<const std::byte>(buf.data(), got.value());
    if (o.hex) {
      hex.clear();
      append_hex(hex, bytes);
      write_out(hex);
    } else {
      dump.add(bytes);
    }
    done += got.value();
    if (got.value() < want) {
      stopped = kvmxx::last_error_message();
      if (stopped.empty()) stopped = fmt::format("read stopped at {:#x}", address + done);
      break;
    }
  }
  if (o.hex) {
    if (done > 0 || stopped.empty()) write_out("\n");
  } else {
    dump.finish();
  }
  if (!stopped.empty()) {
    if (done > 0) report(fmt::format("read {} of {} bytes: {}", done, length, stopped));
    else report(stopped);
    return 1;
  }
  return 0;
}

// Splits a batch line into whitespace-separated words.
std::vector<std::string_view> words_of(std::string_view line) {
  std::vector<std::string_view> w;
  std::size_t at = 0;
  while (true) {
    at = line.find_first_not_of(" \t\r\n\v\f", at);
    if (at == std::string_view::npos) break;
    const std::size_t end = std::min(line.find_first_of(" \t\r\n\v\f", at), line.size());
    w.push_back(line.substr(at, end - at));
    at = end;
  }
  return w;
}

template <class Km>
int read_batch(const Km& km, const read_options& o, std::FILE* in, const std::string& in_name) {
  std::string out;
  std::vector<std::byte> buf;
  char* line = nullptr;
  std::size_t cap = 0;
  std::uint64_t line_no = 0;
  ssize_t n = 0;
  while ((n = ::getline(&line, &cap, in)) >= 0) {
    ++line_no;
    const auto w = words_of(std::string_view(line, static_cast<std::size_t>(n)));
    if (w.empty() || w[0][0] == '#') continue;
    const std::size_t line_start = out.size();
    const auto error = [&](std::string_view message) {
      out.resize(line_start);
      fmt::format_to(std::back_inserter(out), "error: {}\n", message);
    };
    location loc;
    std::uint64_t length = 0, address = 0;
    if (w.size() != 2) {
      error(fmt::format("line {}: expected \"ADDRESS LENGTH\", got {} word{}", line_no, w.size(),
                        w.size() == 1 ? "" : "s"));
    } else if (auto e = parse_location(w[0], loc); !e.empty()) {
      error(fmt::format("line {}: {}", line_no, e));
    } else if (auto e2 = parse_length(w[1], length); !e2.empty()) {
      error(fmt::format("line {}: {}", line_no, e2));
    } else if (auto e3 = resolve(km, o.dump, loc, o.physical, address); !e3.empty()) {
      error(e3);
    } else if (length > 0 && address + (length - 1) < address) {
      error(wrap_message(address, length));
    } else {
      if (buf.size() < length) buf.resize(static_cast<std::size_t>(length));
      const auto span = std::span<std::byte>(buf.data(), static_cast<std::size_t>(length));
      auto got = read_some(km, o.physical, address, span);
      if (!got) {
        error(kvmxx::describe(got.error()));
      } else if (got.value() < length) {
        error(fmt::format("read {} of {} bytes: {}", got.value(), length, kvmxx::last_error_message()));
      } else {
        append_hex(out, span);
        out.push_back('\n');
      }
    }
    if (out.size() >= (std::size_t{1} << 16)) {
      write_out(out);
      out.clear();
    }
  }
  const bool input_failed = std::ferror(in) != 0;
  const int err = errno;
  std::free(line);
  write_out(out);
  if (input_failed) {
    report(fmt::format("{}: {}", in_name, std::generic_category().message(err)));
    return 1;
  }
  return 0;
}

int run_read(const read_options& o) {
  if (o.batch.empty()) return with_dump(o.dump, [&](const auto& km) { return read_one(km, o); });
  std::FILE* in = stdin;
  const std::string in_name = o.batch == "-" ? std::string("standard input") : o.batch;
  if (o.batch != "-") {
    in = std::fopen(o.batch.c_str(), "r");
    if (in == nullptr) {
      report(fmt::format("{}: {}", o.batch, std::generic_category().message(errno)));
      return 1;
    }
  }
  const int rc = with_dump(o.dump, [&](const auto& km) { return read_batch(km, o, in, in_name); });
  if (in != stdin) std::fclose(in);
  return rc;
}

// ---- nlist -----------------------------------------------------------------------------

int run_nlist(const dump_options& d, const std::vector<std::string>& names) {
  return with_dump(d, [&](const auto& km) {
    std::vector<kvmxx::nlist_entry> entries;
    entries.reserve(names.size());
    for (const auto& n : names) entries.push_back(kvmxx::nlist_entry{n});
    auto missing = km.lookup(std::span<kvmxx::nlist_entry>(entries));
    if (!missing) return fail_with(missing.error());
    std::string out;
    for (const auto& e : entries)
      if (e.type != 0) fmt::format_to(std::back_inserter(out), "{} {:#018x}\n", e.name, kvmxx::to_integer(e.value));
    write_out(out);
    for (const auto& e : entries)
      if (e.type == 0) report(fmt::format("{}: symbol not found", e.name));
    return missing.value() == 0 ? 0 : 1;
  });
}

// ---- dmesg -----------------------------------------------------------------------------

int run_dmesg(const dump_options& d) {
  return with_dump(d, [&](const auto& km) {
    kvmxx::result<std::string> text = std::string();
    if constexpr (requires { km.source().vmcoreinfo(); }) {  // Linux: the printk ring buffer
      auto records = kvmxx::linux_::read_printk_records(km, km.source().vmcoreinfo());
      if (!records) return fail_with(records.error());
      text = kvmxx::linux_::format_printk(records.value());
    } else {
      text = kvmxx::freebsd::message_buffer_text(km);
    }
    if (!text) return fail_with(text.error());
    std::string& t = text.value();
    if (!t.empty() && t.back() != '\n') t.push_back('\n');
    write_out(t);
    return 0;
  });
}

// ---- demo ------------------------------------------------------------------------------

// A path as a POSIX shell would need it quoted.
std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./+,:@%") ==
                        std::string::npos)
    return s;
  std::string q = "'";
  for (const char c : s) {
    if (c == '\'') q += "'\\''";
    else q.push_back(c);
  }
  return q + "'";
}

int run_demo(const std::string& dir) {
  if (auto e = kvmxx_demo::write_demo(dir); !e.empty()) return report(e), 1;
  const std::string sep = !dir.empty() && dir.back() == '/' ? "" : "/";
  dump_options d;
  d.kernel = dir + sep + "kernel";
  d.core = dir + sep + "vmcore.0";
  d.kernel_given = true;
  const std::string nm = "-N " + shell_quote(d.kernel) + " -M " + shell_quote(d.core);

  fmt::print("Wrote a FreeBSD 14.1 amd64 minidump and its kernel to {}:\n  {}  {}\n\n", dir, d.core, d.kernel);
  int rc = 0;
  const auto step = [&](const std::string& command, auto&& run) {
    fmt::print("$ kvmxx {}\n", command);
    std::fflush(stdout);
    rc |= run();
    fmt::print("\n");
  };
  step("info " + nm, [&] { return run_info(d); });
  step("nlist " + nm + " version hz msgbufp", [&] { return run_nlist(d, {"version", "hz", "msgbufp"}); });
  read_options r;
  r.dump = d;
  r.address_text = "version";
  r.length_text = "64";
  step("read " + nm + " version 64", [&] { return run_read(r); });
  step("dmesg " + nm, [&] { return run_dmesg(d); });
  fmt::print("More: kvmxx read {} hz 4 --hex; kvmxx --help; kvmxx read --help\n", nm);
  return rc == 0 ? 0 : 1;
}

// ---- command line ------------------------------------------------------------------------

CLI::Option* add_dump_options(CLI::App* cmd, dump_options& d, bool kernel_required) {
  auto* kernel = cmd->add_option("-N,--kernel", d.kernel,
                                 kernel_required ? "Kernel file: symbols (required)"
                                                 : "Kernel file for symbols: a FreeBSD kernel or Linux vmlinux (ELF), "
                                                   "or a Linux System.map / kallsyms file. Linux dumps also carry "
                                                   "VMCOREINFO symbols of their own")
                     ->type_name("KERNEL");
  if (kernel_required) kernel->required();
  cmd->add_option("-M,--core", d.core, "Crash dump: a FreeBSD minidump (vmcore.N) or a Linux ELF core (vmcore, QEMU dump)")->type_name("CORE")->required();
  return kernel;
}

CLI::Validator location_validator() {
  return CLI::Validator(
      [](std::string& s) {
        location loc;
        return parse_location(s, loc);
      },
      "", "ADDRESS");
}

CLI::Validator length_validator() {
  return CLI::Validator(
      [](std::string& s) {
        std::uint64_t n = 0;
        return parse_length(s, n);
      },
      "", "LENGTH");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kvmxx: read kernel memory from crash dumps (FreeBSD amd64 minidumps).", "kvmxx"};
  app.set_version_flag("--version", std::string("kvmxx ") + kvmxx::version_string);
  app.require_subcommand(1);
  app.footer("New here? Run `kvmxx demo`: it writes a demo dump and runs each command on it.\n"
             "Exit status: 0 success, 1 failure (the message says what and where), 2 usage error.");

  dump_options info_opts;
  auto* info = app.add_subcommand("info", "Describe a dump: format, architecture, memory ranges, dumped pages");
  auto* info_kernel = add_dump_options(info, info_opts, false);

  read_options read_opts;
  auto* read = app.add_subcommand("read", "Read kernel memory; print a hexdump, a hex string, or batch results");
  auto* read_kernel = add_dump_options(read, read_opts.dump, false);
  auto* hex = read->add_flag("--hex", read_opts.hex, "Print one lowercase hex string instead of a hexdump");
  read->add_flag("--physical", read_opts.physical, "ADDRESS is a physical address (no page-table walk)");
  auto* batch =
      read->add_option("--batch", read_opts.batch,
                       "Read \"ADDRESS LENGTH\" lines from FILE (- for standard input); print one line each: "
                       "the bytes in hex, or \"error: MESSAGE\". Blank lines and # comments are skipped")
          ->type_name("FILE");
  auto* address = read->add_option("ADDRESS", read_opts.address_text,
                                    "Kernel virtual address (0x hex or decimal), or SYMBOL[+OFFSET] with -N")
                      ->type_name("")
                      ->check(location_validator());
  auto* length =
      read->add_option("LENGTH", read_opts.length_text, "Bytes to read (decimal or 0x hex, at most 1 GiB)")
          ->type_name("")
          ->check(length_validator());
  batch->excludes(address)->excludes(length)->excludes(hex);
  read->footer("Examples:\n  kvmxx read -N kernel -M vmcore.0 version 64\n"
               "  kvmxx read -N kernel -M vmcore.0 --hex hz 4\n"
               "  kvmxx read -M vmcore.0 --physical 0x200000 256\n"
               "  printf 'hz 4\\nversion+8 16\\n' | kvmxx read -N kernel -M vmcore.0 --batch -");

  dump_options nlist_opts;
  std::vector<std::string> nlist_names;
  auto* nlist = app.add_subcommand("nlist", "Print the addresses of kernel symbols (kvm_nlist)");
  auto* nlist_kernel = add_dump_options(nlist, nlist_opts, false);
  nlist->add_option("SYMBOL", nlist_names, "Symbol names, printed as \"SYMBOL 0xADDRESS\" in the given order")
      ->type_name("")
      ->required()
      ->check(CLI::Validator([](std::string& s) { return s.empty() ? std::string("empty symbol name") : std::string(); },
                             "", "SYMBOL"));

  dump_options dmesg_opts;
  auto* dmesg = app.add_subcommand("dmesg", "Print the kernel message buffer, oldest message first");
  auto* dmesg_kernel = add_dump_options(dmesg, dmesg_opts, false);

  std::string demo_dir = "./kvmxx-demo";
  auto* demo = app.add_subcommand("demo", "Write a demo dump and kernel into DIR, then run each command on them");
  demo->add_option("DIR", demo_dir, "Directory for the files (created if needed)")->type_name("")->capture_default_str();

  try {
    app.parse(argc, argv);
    info_opts.kernel_given = info_kernel->count() > 0;
    read_opts.dump.kernel_given = read_kernel->count() > 0;
    nlist_opts.kernel_given = nlist_kernel->count() > 0;
    dmesg_opts.kernel_given = dmesg_kernel->count() > 0;
    if (read->parsed() && batch->count() > 0 && read_opts.batch.empty())
      throw CLI::ValidationError("--batch", "FILE must not be empty (use - for standard input)");
    if (read->parsed() && batch->count() == 0 && (address->count() == 0 || length->count() == 0))
      throw CLI::ValidationError("read", "ADDRESS and LENGTH are required (or --batch FILE)");
    if (read->parsed() && batch->count() == 0 && read_opts.physical) {
      location loc;
      if (parse_location(read_opts.address_text, loc).empty() && !loc.symbol.empty())
        throw CLI::ValidationError("ADDRESS", "--physical takes a physical address, not a symbol");
    }
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  int rc = 0;
  if (info->parsed()) rc = run_info(info_opts);
  else if (read->parsed()) rc = run_read(read_opts);
  else if (nlist->parsed()) rc = run_nlist(nlist_opts, nlist_names);
  else if (dmesg->parsed()) rc = run_dmesg(dmesg_opts);
  else if (demo->parsed()) rc = run_demo(demo_dir);

  if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
    fmt::print(stderr, "kvmxx: standard output: {}\n", std::generic_category().message(errno));
    return 1;
  }
  return rc;
}

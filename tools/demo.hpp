// SPDX-License-Identifier: BSD-2-Clause
//
// The demo dump of `kvmxx demo`: a FreeBSD 14.1 amd64 minidump of a 64 MiB machine and
// its kernel ELF, built with the test-fixture writers (tests/support), so that a new user
// can run every command on real-looking data without a FreeBSD crash at hand.
//
// On top of amd64_minidump_builder::realistic() (kernel image, kmem, boot log, version,
// ostype, osrelease, physmem, hz) the demo adds what dmesg(8) and friends need:
// * `hostname` (char[256]) and, if realistic() lacks them, `version`, `ostype`, `hz`;
// * `msgbufp`, a pointer to a struct msgbuf in the direct map, laid out as on amd64
//   (sys/sys/msgbuf.h: char *msg_ptr; u_int msg_magic, msg_size, msg_wseq, msg_rseq,
//   msg_cksum, msg_seqmod; int msg_lastpri; u_int msg_flags), right after its ring, as
//   msgbufinit() places them;
// * a ring that has wrapped: the boot log's oldest byte sits at msg_wseq % msg_size near
//   the ring's end, so printing the ring in storage order visibly scrambles it;
// * a kernel ELF (ELF64, little-endian, EM_X86_64, ET_EXEC) with every symbol of the dump
//   and a few hundred function symbols, as a stripped-down real kernel would have.
//
// The files take about 62 MiB (55 MiB dump, 6 MiB kernel: .text spans btext..etext).
#pragma once
#include "amd64_minidump_writer.hpp"
#include "file_util.hpp"
#include "kernel_elf_writer.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace kvmxx_demo {

inline constexpr std::uint64_t demo_seed = 0x6b766d78785f3031;  // "kvmxx_01"
inline constexpr std::uint64_t demo_phys_mib = 64;
inline constexpr std::uint32_t msgbuf_magic = 0x063062;  // MSG_MAGIC
inline constexpr std::uint64_t msgbuf_struct_size = 40;  // amd64 struct msgbuf without its lock

/// The two builders of the demo, before writing.
struct demo_image {
  kvmxx_test::amd64_minidump_builder dump;
  kvmxx_test::kernel_elf_builder kernel;
};

namespace detail {

inline const kvmxx_test::amd64_minidump_builder::kernel_symbol* find_symbol(
    const kvmxx_test::amd64_minidump_builder& b, std::string_view name) {
  for (const auto& s : b.symbols())
    if (s.name == name) return &s;
  return nullptr;
}

inline void put_le(std::string& s, std::size_t at, std::uint64_t v, std::size_t width) {
  for (std::size_t i = 0; i < width; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// A bump allocator for new kernel variables, after the last small data symbol of the
// kernel image (realistic() puts its variables at the start of .data).
class data_allocator {
 public:
  explicit data_allocator(const kvmxx_test::amd64_minidump_builder& b) {
    constexpr std::uint64_t kernbase = 0xffffffff80000000ull;  // KERNBASE: the kernel image
    for (const auto& s : b.symbols())
      if (!s.text && s.va >= kernbase && s.size <= 4096) next_ = std::max(next_, s.va + s.size);
    if (next_ == 0) next_ = kernbase + 0x800000 + 0x3000;  // realistic()'s .data, past its variables
    next_ = (next_ + 0x3f) & ~std::uint64_t{0x3f};
  }
  std::uint64_t take(std::uint64_t size) {
    const std::uint64_t va = next_;
    next_ = (next_ + size + 0x3f) & ~std::uint64_t{0x3f};
    return va;
  }

 private:
  std::uint64_t next_ = 0;
};

// Function names for the filler symbols: prefix × verb, like a kernel's subsystems.
inline std::vector<std::string> filler_function_names() {
  static constexpr const char* prefixes[] = {"vm_page_", "vfs_",     "tcp_",  "ufs_",  "g_part_", "bus_",
                                             "pci_",     "vnode_",   "sched_", "proc_", "kern_",   "ipc_"};
  static constexpr const char* verbs[] = {"init",   "attach", "detach", "alloc",  "free",   "lookup", "lock",
                                          "unlock", "ioctl",  "read",   "write",  "probe",  "insert", "remove",
                                          "grow",   "shrink", "sync",   "flush",  "hold",   "drop",   "wait",
                                          "wakeup", "check",  "dump",   "resume"};
  std::vector<std::string> names;
  for (const char* p : prefixes)
    for (const char* v : verbs) names.push_back(std::string(p) + v);
  return names;
}

}  // namespace detail

/// Builds the demo's dump and kernel in memory (nothing is written).
/// Throws std::exception on a builder inconsistency (a bug, not a user error).
inline demo_image make_demo() {
  using kvmxx_test::amd64_minidump_builder;
  amd64_minidump_builder b = amd64_minidump_builder::realistic(3, demo_seed, demo_phys_mib);
  detail::data_allocator data(b);

  const auto add_string = [&](const std::string& name, const std::string& text, std::uint64_t size) {
    if (detail::find_symbol(b, name) != nullptr) return;
    std::string z = text;
    z.resize(std::max<std::uint64_t>(size, text.size() + 1), '\0');
    const std::uint64_t va = data.take(z.size());
    b.write_virt(va, z).add_symbol(name, va, z.size());
  };
  add_string("version", "FreeBSD 14.1-RELEASE releng/14.1-n267679-10e31f0946d8 GENERIC amd64\n", 0);
  add_string("ostype", "FreeBSD", 0);
  add_string("hostname", "crashbox.example.org", 256);  // char hostname[MAXHOSTNAMELEN]
  if (detail::find_symbol(b, "hz") == nullptr) {
    const std::uint64_t va = data.take(4);
    b.write_virt(va, amd64_minidump_builder::le(1000, 4)).add_symbol("hz", va, 4);
  }

  // The message buffer: ring, then struct msgbuf, in the direct map near the top of RAM
  // (where the amd64 pmap puts it), on pages no kernel mapping uses.
  std::string text = b.msgbuf();
  const std::size_t ring_size = text.empty() ? 0x18000 : text.size();
  text.erase(std::find(text.begin(), text.end(), '\0'), text.end());
  if (text.empty()) text = "---<<BOOT>>---\nkvmxx demo\n";
  if (text.size() > ring_size) text.erase(0, text.size() - ring_size);
  const std::uint64_t start = ring_size - text.size() / 3;  // wraps: 1/3 at the end, 2/3 at the start
  std::string ring(ring_size, '\0');
  for (std::size_t k = 0; k < text.size(); ++k) ring[(start + k) % ring_size] = text[k];

  const std::uint64_t page = amd64_minidump_builder::page;
  const std::uint64_t span = (ring_size + msgbuf_struct_size + page - 1) / page * page;
  std::set<std::uint64_t> used;
  for (const auto& m : b.kernel_mappings())
    for (std::uint64_t off = 0; off < m.size; off += page) used.insert(m.pa + off);
  std::uint64_t ring_pa = (demo_phys_mib << 20) - 0x100000;
  const auto collides = [&](std::uint64_t pa) {
    for (std::uint64_t off = 0; off < span; off += page)
      if (used.contains(pa + off)) return true;
    return false;
  };
  while (collides(ring_pa)) ring_pa -= page;
  const std::uint64_t ring_va = b.dmap_base() + ring_pa;
  const std::uint64_t struct_va = ring_va + ring_size;

  const std::uint32_t seqmod = static_cast<std::uint32_t>(ring_size * 16);  // SEQMOD(size)
  const std::uint32_t wseq = static_cast<std::uint32_t>(2 * ring_size + start);
  std::uint32_t cksum = 0;
  for (const char c : ring) cksum += static_cast<unsigned char>(c);
  std::string mb(msgbuf_struct_size, '\0');
  detail::put_le(mb, 0, ring_va, 8);                        // msg_ptr
  detail::put_le(mb, 8, msgbuf_magic, 4);                   // msg_magic
  detail::put_le(mb, 12, ring_size, 4);                     // msg_size
  detail::put_le(mb, 16, wseq, 4);                          // msg_wseq
  detail::put_le(mb, 20, wseq, 4);                          // msg_rseq: syslogd read everything
  detail::put_le(mb, 24, cksum, 4);                         // msg_cksum
  detail::put_le(mb, 28, seqmod, 4);                        // msg_seqmod
  detail::put_le(mb, 32, 0xffffffffu, 4);                   // msg_lastpri = -1
  detail::put_le(mb, 36, 0, 4);                             // msg_flags
  b.write_virt(ring_va, ring).write_virt(struct_va, mb).msgbuf(ring);
  const std::uint64_t msgbufp = data.take(8);
  b.write_virt(msgbufp, amd64_minidump_builder::le(struct_va, 8)).add_symbol("msgbufp", msgbufp, 8);

  // The kernel ELF: every symbol of the dump, plus filler functions between btext and etext.
  using namespace kvmxx_test;
  kernel_elf_builder k(elf_class::elf64, elf_endian::little, elf_const::em_x86_64, elf_const::et_exec);
  const auto* btext = detail::find_symbol(b, "btext");
  const auto* etext = detail::find_symbol(b, "etext");
  const std::uint64_t text_lo = btext ? btext->va : 0xffffffff80200000ull;
  const std::uint64_t text_hi = etext ? etext->va : text_lo + 0x600000;
  std::uint64_t data_lo = ~std::uint64_t{0};
  for (const auto& s : b.symbols()) {
    if (s.text) {
      k.symbol(s.name, s.va, section_kind::text, binding::global, elf_const::stt_func, s.size);
    } else if (s.va >= text_hi) {
      k.symbol(s.name, s.va, section_kind::data, binding::global, elf_const::stt_object, s.size);
      data_lo = std::min(data_lo, s.va);
    } else {  // outside the image (kmem_base): absolute, so .data stays small
      k.symbol(s.name, s.va, section_kind::abs, binding::global, elf_const::stt_object, s.size);
    }
  }
  k.section_address(section_kind::text, text_lo);
  if (data_lo != ~std::uint64_t{0}) k.section_address(section_kind::data, data_lo & ~std::uint64_t{0xfff});
  std::mt19937_64 rng(demo_seed);
  std::uint64_t fn = text_lo + 0x1000;
  for (const auto& name : detail::filler_function_names()) {
    const std::uint64_t size = 0x40 + (rng() % 0x7c0);
    if (fn + size >= text_hi) break;
    k.symbol(name, fn, section_kind::text, binding::global, elf_const::stt_func, size);
    fn = (fn + size + 0xf) & ~std::uint64_t{0xf};
  }
  k.symbol("demo.c", 0, section_kind::abs, binding::local, elf_const::stt_file, 0);
  return demo_image{std::move(b), std::move(k)};
}

/// Writes DIR/vmcore.0 and DIR/kernel (creating DIR). Returns "" on success, else a
/// message that names the path that failed.
inline std::string write_demo(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return dir + ": cannot create directory: " + ec.message();
  if (!fs::is_directory(dir, ec)) return dir + ": not a directory";
  try {
    const demo_image img = make_demo();
    const std::string core = (fs::path(dir) / "vmcore.0").string();
    const std::string kernel = (fs::path(dir) / "kernel").string();
    img.dump.build_to_file(core);
    kvmxx_test::write_file(kernel, img.kernel.build());
  } catch (const std::exception& e) {
    return dir + ": cannot write the demo: " + e.what();
  }
  return "";
}

}  // namespace kvmxx_demo

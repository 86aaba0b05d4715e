// SPDX-License-Identifier: BSD-2-Clause
//
// Case: a FreeBSD amd64 v3 minidump of a 512 MiB machine, written by the test-suite's
// independent writer (tests/support/amd64_minidump_writer.hpp, realistic()), plus 64 MiB
// of RAM at 256 MiB dumped without holes so that the sequential workload has a range to
// read, and a kernel ELF with the dump's symbols and 20,000 functions. Both are cached in
// the build directory and rewritten only when missing or different. libkdumpfile does not
// read FreeBSD minidumps: the peer is "n/a".
#include "amd64_minidump_writer.hpp"
#include "case.hpp"
#include "contenders.hpp"
#include "kernel_elf_writer.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <unistd.h>

namespace kvmxx_bench {
namespace {

using kvmxx_test::amd64_minidump_builder;

constexpr std::uint64_t seed = 0x6b766d7862656e63;  // "kvmxbenc"
constexpr std::uint64_t phys_mib = 512;
constexpr std::uint64_t seq_pa = 256ull << 20, seq_len = 64ull << 20;
constexpr std::size_t filler_functions = 20000, lookup_names = 1000;

amd64_minidump_builder make_builder() {
  auto b = amd64_minidump_builder::realistic(3, seed, phys_mib);
  for (std::uint64_t pa = seq_pa; pa < seq_pa + seq_len; pa += amd64_minidump_builder::page) b.dump_page(pa);
  return b;
}

// Function names of a kernel-like shape: prefix_verb_object.
std::vector<std::string> function_names(std::size_t n) {
  static const char* const prefixes[] = {"vm_",   "pmap_", "uma_",  "vfs_",  "tcp_", "ip_",   "sched_",
                                         "proc_", "kern_", "dev_",  "bus_",  "pci_", "usb_",  "zfs_",
                                         "nfs_",  "geom_", "cam_",  "if_",   "sys_", "linux_"};
  static const char* const verbs[] = {"alloc", "free",  "init",  "fini",   "lookup", "insert", "remove",
                                      "lock",  "unlock", "attach", "detach", "read",  "write",  "map",
                                      "unmap", "find",  "create", "destroy", "start", "stop",   "sync",
                                      "flush", "grow",  "shrink", "check"};
  static const char* const objects[] = {"page",  "object", "zone",  "vnode", "mount", "inpcb", "thread",
                                        "proc",  "cred",   "buf",   "bio",   "disk",  "queue", "entry",
                                        "map",   "slab",   "keg",   "cpu",   "intr",  "timer", "callout",
                                        "mbuf",  "socket", "sysctl", "event", "knote", "pipe",  "tty",
                                        "softc", "ring",   "desc",  "table", "hash",  "list",  "tree",
                                        "node",  "range",  "region", "domain", "arena"};
  std::vector<std::string> out;
  for (const char* p : prefixes)
    for (const char* v : verbs)
      for (const char* o : objects) {
        if (out.size() == n) return out;
        out.push_back(std::string(p) + v + "_" + o);
      }
  return out;
}

const amd64_minidump_builder::kernel_symbol* find_symbol(const amd64_minidump_builder& b, const std::string& n) {
  for (const auto& s : b.symbols())
    if (s.name == n) return &s;
  return nullptr;
}

std::vector<std::byte> make_kernel(const amd64_minidump_builder& b, std::vector<std::string>& names) {
  using namespace kvmxx_test;
  kernel_elf_builder k(elf_class::elf64, elf_endian::little, elf_const::em_x86_64, elf_const::et_exec);
  const auto* btext = find_symbol(b, "btext");
  const auto* etext = find_symbol(b, "etext");
  const std::uint64_t text_lo = btext->va, text_hi = etext->va;
  std::uint64_t data_lo = ~std::uint64_t{0};
  for (const auto& s : b.symbols()) {
    names.push_back(s.name);
    if (s.text) {
      k.symbol(s.name, s.va, section_kind::text, binding::global, elf_const::stt_func, s.size);
    } else if (s.va >= text_hi) {
      k.symbol(s.name, s.va, section_kind::data, binding::global, elf_const::stt_object, s.size);
      data_lo = std::min(data_lo, s.va);
    } else {
      k.symbol(s.name, s.va, section_kind::abs, binding::global, elf_const::stt_object, s.size);
    }
  }
  k.section_address(section_kind::text, text_lo);
  if (data_lo != ~std::uint64_t{0}) k.section_address(section_kind::data, data_lo & ~std::uint64_t{0xfff});
  std::uint64_t fn = text_lo + 0x1000;
  for (const auto& n : function_names(filler_functions)) {
    if (fn + 0x100 >= text_hi) break;
    k.symbol(n, fn, section_kind::text, binding::global, elf_const::stt_func, 0x100);
    names.push_back(n);
    fn += 0x100;
  }
  return k.build();
}

bool same_file(const std::string& path, const std::vector<std::byte>& bytes) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::vector<char> have((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return have.size() == bytes.size() && std::memcmp(have.data(), bytes.data(), bytes.size()) == 0;
}

void write_atomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  write(tmp);
  std::filesystem::rename(tmp, path);
}

class freebsd_minidump_case final : public dump_case {
 public:
  std::string name() const override { return "freebsd-minidump"; }
  std::string description() const override {
    return "FreeBSD amd64 v3 minidump, 512 MiB RAM, ~70% of pages dumped (" + core_ + ")";
  }

  std::string prepare(const environment& env) override {
    const amd64_minidump_builder b = make_builder();
    core_ = env.build_dir + "/freebsd-amd64-v3-512m.vmcore";
    kernel_ = env.build_dir + "/freebsd-amd64-v3-512m.kernel";
    // The cached dump is reused when its size and a sample of its pages match the model.
    const auto lay = b.file_layout();
    const auto pages = b.dumped_pages();
    bool fresh = std::filesystem::exists(core_) && std::filesystem::file_size(core_) == lay.file_size;
    if (fresh) {
      std::ifstream f(core_, std::ios::binary);
      for (std::size_t k = 0; k < pages.size() && fresh; k += pages.size() / 16 + 1) {
        std::vector<char> have(amd64_minidump_builder::page);
        f.seekg(static_cast<std::streamoff>(*b.file_offset(pages[k])));
        f.read(have.data(), static_cast<std::streamsize>(have.size()));
        const auto want = b.read_phys(pages[k], amd64_minidump_builder::page);
        fresh = f && want && std::memcmp(have.data(), want->data(), have.size()) == 0;
      }
    }
    if (!fresh) {
      std::fprintf(stderr, "kvmxx-bench: writing %s (%.0f MiB)...\n", core_.c_str(),
                   static_cast<double>(lay.file_size) / (1 << 20));
      write_atomically(core_, [&](const std::string& tmp) { b.build_to_file(tmp); });
    }
    std::vector<std::string> all_names;
    const auto kernel = make_kernel(b, all_names);
    if (!same_file(kernel_, kernel)) {
      write_atomically(kernel_, [&](const std::string& tmp) {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        f.write(reinterpret_cast<const char*>(kernel.data()), static_cast<std::streamsize>(kernel.size()));
        if (!f) throw std::runtime_error("cannot write " + tmp);
      });
    }
    // Ground truth from the writer's model, not from parsing the file.
    std::vector<file_piece> pieces;
    for (std::size_t k = 0; k < pages.size(); ++k)
      pieces.push_back({pages[k], amd64_minidump_builder::page, lay.sparse_off + k * amd64_minidump_builder::page});
    layout_ = file_map(std::move(pieces));
    dmap_base_ = b.dmap_base();
    regions_.clear();
    std::uint64_t mapped = 0;
    const auto maps = b.kernel_mappings();
    for (const auto& m : maps) mapped += m.size;
    // 1/4 from the kernel map (text in 2 MiB pages, data/bss and kmem in 4 KiB pages),
    // 3/4 from the direct map of the dumped pages.
    for (const auto& m : maps)
      regions_.push_back({m.va, m.size, 0.25 * static_cast<double>(m.size) / static_cast<double>(mapped), "kernel map"});
    const double dumped = static_cast<double>(layout_.bytes());
    for (const auto& p : layout_.pieces())
      regions_.push_back({dmap_base_ + p.pa, p.len, 0.75 * static_cast<double>(p.len) / dumped, "direct map"});
    // 1,000 names in a fixed random order.
    std::mt19937_64 rng(seed);
    names_.clear();
    for (std::size_t i = 0; i < lookup_names; ++i) names_.push_back(all_names[rng() % all_names.size()]);
    return "";
  }
  std::string core_path() const override { return core_; }
  std::string kernel_path() const override { return kernel_; }
  std::unique_ptr<reader> open_typed() const override {
    return make_typed_reader([&] { return kvmxx::freebsd_amd64_minidump::open_dump(kernel_.c_str(), core_.c_str()); });
  }
  std::string peer_unsupported_reason() const override { return "libkdumpfile does not read FreeBSD minidumps"; }
  file_map physical_layout() const override { return layout_; }
  std::vector<region> virtual_regions() const override { return regions_; }
  sequential_range sequential() const override { return {dmap_base_ + seq_pa, seq_pa, seq_len}; }
  std::vector<std::string> symbol_names() const override { return names_; }

 private:
  std::string core_, kernel_;
  file_map layout_;
  std::uint64_t dmap_base_ = 0;
  std::vector<region> regions_;
  std::vector<std::string> names_;
};

}  // namespace

KVMXX_BENCH_CASE(freebsd_minidump_case());

}  // namespace kvmxx_bench

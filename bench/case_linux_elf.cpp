// SPDX-License-Identifier: BSD-2-Clause
//
// Cases: the real Linux ELF dumps of tests/real/make-linux-dumps.sh (boot `nokaslr`, 256 MiB
// guest): QEMU dump-guest-memory with paging=false (`elf`, one PT_LOAD per RAM block) and
// paging=true (`elf-paging`, ~65,700 PT_LOADs, e_phnum = PN_XNUM). Facts about the guest
// (page_offset_base, _text/_end, RAM ranges, VMCOREINFO lines) come from its facts.txt; the
// physical layout is parsed from the program headers here, independently of kvmxx.
#include "case.hpp"
#include "contenders.hpp"
#include "peer_kdumpfile.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace kvmxx_bench {
namespace {

std::uint64_t le(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Every PT_LOAD's [p_paddr, p_paddr + p_filesz) at p_offset (ELF64 little-endian, as QEMU
// writes for x86_64; e_phnum = 0xffff takes the count from section 0's sh_info).
std::vector<file_piece> pt_loads(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": " + std::strerror(errno));
  auto pread_all = [&](void* buf, std::size_t n, std::uint64_t off) {
    std::size_t done = 0;
    while (done < n) {
      const ssize_t r = ::pread(fd, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(off + done));
      if (r <= 0) {
        ::close(fd);
        throw std::runtime_error(path + ": short read of the ELF headers");
      }
      done += static_cast<std::size_t>(r);
    }
  };
  std::array<unsigned char, 64> eh{};
  pread_all(eh.data(), eh.size(), 0);
  if (std::memcmp(eh.data(), "\177ELF", 4) != 0 || eh[4] != 2 || eh[5] != 1) {
    ::close(fd);
    throw std::runtime_error(path + ": not an ELF64 little-endian file");
  }
  const std::uint64_t phoff = le(&eh[32], 8), shoff = le(&eh[40], 8);
  const std::uint64_t phentsize = le(&eh[54], 2);
  std::uint64_t phnum = le(&eh[56], 2);
  if (phnum == 0xffff) {
    std::array<unsigned char, 64> sh{};
    pread_all(sh.data(), sh.size(), shoff);
    phnum = le(&sh[44], 4);
  }
  std::vector<unsigned char> ph(static_cast<std::size_t>(phnum * phentsize));
  pread_all(ph.data(), ph.size(), phoff);
  ::close(fd);
  std::vector<file_piece> out;
  for (std::uint64_t k = 0; k < phnum; ++k) {
    const unsigned char* p = ph.data() + k * phentsize;
    if (le(p, 4) != 1) continue;  // PT_LOAD
    const std::uint64_t offset = le(p + 8, 8), paddr = le(p + 24, 8), filesz = le(p + 32, 8);
    if (filesz > 0) out.push_back({paddr, filesz, offset});
  }
  return out;
}

struct guest_facts {
  std::uint64_t page_offset_base = 0, text = 0, end = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ram;  // [start, end)
  std::vector<std::string> vmcoreinfo_symbols;
};

guest_facts read_facts(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  guest_facts f;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string key;
    s >> key;
    if (key == "page_offset_base") {
      std::string v;
      s >> v;
      f.page_offset_base = std::stoull(v, nullptr, 16);
    } else if (key == "kallsyms") {
      std::string addr, type, name;
      s >> addr >> type >> name;
      if (name == "_text") f.text = std::stoull(addr, nullptr, 16);
      if (name == "_end") f.end = std::stoull(addr, nullptr, 16);
    } else if (key == "iomem_ram") {
      std::string r;
      s >> r;
      const auto dash = r.find('-');
      f.ram.emplace_back(std::stoull(r.substr(0, dash), nullptr, 16), std::stoull(r.substr(dash + 1), nullptr, 16) + 1);
    } else if (key == "vmcoreinfo_line") {
      std::string kv;
      s >> kv;
      if (kv.rfind("SYMBOL(", 0) == 0) f.vmcoreinfo_symbols.push_back(kv.substr(7, kv.find(')') - 7));
    }
  }
  if (f.page_offset_base == 0 || f.text == 0 || f.end <= f.text || f.ram.empty())
    throw std::runtime_error(path + ": page_offset_base, kallsyms _text/_end or iomem_ram missing");
  return f;
}

class linux_elf_case final : public dump_case {
 public:
  linux_elf_case(std::string name, std::string file, std::string what)
      : name_(std::move(name)), file_(std::move(file)), what_(std::move(what)) {}

  std::string name() const override { return name_; }
  std::string description() const override { return what_ + " (" + core_ + ")"; }

  std::string prepare(const environment& env) override {
    if (env.linux_dumps.empty()) return "KVMXX_LINUX_DUMPS is not set (run tests/real/make-linux-dumps.sh)";
    const std::string dir = env.linux_dumps + "/nokaslr";
    core_ = dir + "/" + file_;
    kernel_ = dir + "/kallsyms.txt";
    for (const auto& p : {core_, kernel_, dir + "/facts.txt"})
      if (::access(p.c_str(), R_OK) != 0) return p + " is missing (run tests/real/make-linux-dumps.sh)";
    facts_ = read_facts(dir + "/facts.txt");
    layout_ = file_map(pt_loads(core_));
    return "";
  }
  std::string core_path() const override { return core_; }
  // System.map format (the guest's /proc/kallsyms lines): kvmxx's resolver chain then
  // falls back to the dump's VMCOREINFO for the other names.
  std::string kernel_path() const override { return kernel_; }

  std::unique_ptr<reader> open_typed() const override {
    return make_typed_reader([&] { return kvmxx::open_linux_elf(kernel_.c_str(), core_.c_str()); });
  }
  std::unique_ptr<reader> open_peer() const override {
    return std::make_unique<kdumpfile_reader>(core_, std::vector<std::pair<std::string, std::string>>{
                                                         {"addrxlat.ostype", "linux"}});
  }
  file_map physical_layout() const override { return layout_; }

  // 3/4 from the direct map of RAM (page_offset_base + pa: slab objects, page structs'
  // targets), 1/4 from the kernel image [_text, _end) (globals, text).
  std::vector<region> virtual_regions() const override {
    std::vector<region> out;
    std::uint64_t ram = 0;
    for (const auto& [s, e] : facts_.ram) ram += e - s;
    for (const auto& [s, e] : facts_.ram)
      out.push_back({facts_.page_offset_base + s, e - s, 0.75 * static_cast<double>(e - s) / static_cast<double>(ram),
                     "direct map"});
    out.push_back({facts_.text, facts_.end - facts_.text, 0.25, "kernel image"});
    return out;
  }
  // 64 MiB of RAM from 16 MiB (specs/real-linux-dumps.md §12), read through the direct map.
  sequential_range sequential() const override {
    return {facts_.page_offset_base + (16ull << 20), 16ull << 20, 64ull << 20};
  }
  // The names both kvmxx and libkdumpfile can resolve from the dump itself.
  std::vector<std::string> symbol_names() const override { return facts_.vmcoreinfo_symbols; }

 private:
  std::string name_, file_, what_, core_, kernel_;
  guest_facts facts_;
  file_map layout_;
};

}  // namespace

KVMXX_BENCH_CASE(linux_elf_case("linux-elf", "elf", "Linux 6.1 QEMU ELF, paging=false, 256 MiB"));
KVMXX_BENCH_CASE(linux_elf_case("linux-elf-paging", "elf-paging", "Linux 6.1 QEMU ELF, paging=true (PN_XNUM phdrs), 256 MiB"));

}  // namespace kvmxx_bench

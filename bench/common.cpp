// SPDX-License-Identifier: BSD-2-Clause
// The harness's shared pieces: the case registry, file maps, address sampling, the limit
// and the peer readers, /proc memory figures.
#include "case.hpp"
#include "limit.hpp"
#include "peer_kdumpfile.hpp"
#include "prepare.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <random>
#include <sstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef KVMXX_BENCH_BUILD_DIR
#define KVMXX_BENCH_BUILD_DIR "."
#endif

namespace kvmxx_bench {

// ---- file_map ------------------------------------------------------------------------

file_map::file_map(std::vector<file_piece> pieces) {
  std::stable_sort(pieces.begin(), pieces.end(), [](const file_piece& a, const file_piece& b) { return a.pa < b.pa; });
  std::uint64_t covered = 0;
  bool any = false;
  for (const auto& p : pieces) {
    if (p.len == 0) continue;
    const std::uint64_t end = p.pa + p.len;
    const std::uint64_t from = any ? std::max(p.pa, covered) : p.pa;
    if (from >= end) continue;  // wholly inside an earlier piece (the same memory)
    const file_piece clipped{from, end - from, p.offset + (from - p.pa)};
    if (!pieces_.empty()) {
      auto& last = pieces_.back();
      if (last.pa + last.len == clipped.pa && last.offset + last.len == clipped.offset) {
        last.len += clipped.len;
        covered = end;
        continue;
      }
    }
    pieces_.push_back(clipped);
    covered = end;
    any = true;
  }
}

std::optional<std::uint64_t> file_map::offset_of(std::uint64_t pa, std::uint64_t len) const noexcept {
  auto it = std::upper_bound(pieces_.begin(), pieces_.end(), pa, [](std::uint64_t a, const file_piece& p) { return a < p.pa; });
  if (it == pieces_.begin()) return std::nullopt;
  --it;
  if (pa - it->pa + len > it->len) return std::nullopt;
  return it->offset + (pa - it->pa);
}

std::vector<file_piece> file_map::pieces_of(std::uint64_t pa, std::uint64_t len) const {
  std::vector<file_piece> out;
  while (len > 0) {
    auto it = std::upper_bound(pieces_.begin(), pieces_.end(), pa, [](std::uint64_t a, const file_piece& p) { return a < p.pa; });
    if (it == pieces_.begin()) return {};
    --it;
    if (pa >= it->pa + it->len) return {};
    const std::uint64_t n = std::min(len, it->pa + it->len - pa);
    const std::uint64_t off = it->offset + (pa - it->pa);
    if (!out.empty() && out.back().offset + out.back().len == off) out.back().len += n;
    else out.push_back({pa, n, off});
    pa += n;
    len -= n;
  }
  return out;
}

std::uint64_t file_map::bytes() const noexcept {
  std::uint64_t n = 0;
  for (const auto& p : pieces_) n += p.len;
  return n;
}

std::vector<region> dump_case::physical_regions() const {
  std::vector<region> out;
  const file_map layout = physical_layout();
  for (const auto& p : layout.pieces())
    out.push_back({p.pa, p.len, static_cast<double>(p.len), "physical memory in the file"});
  return out;
}

// ---- registry ------------------------------------------------------------------------

std::vector<std::unique_ptr<dump_case>>& cases() {
  static std::vector<std::unique_ptr<dump_case>> all;
  return all;
}

case_registrar::case_registrar(std::function<std::unique_ptr<dump_case>()> make) { cases().push_back(make()); }

std::vector<dump_case*> sorted_cases() {
  std::vector<dump_case*> out;
  for (auto& c : cases()) out.push_back(c.get());
  std::sort(out.begin(), out.end(), [](const dump_case* a, const dump_case* b) { return a->name() < b->name(); });
  return out;
}

environment read_environment() {
  environment e;
  const char* b = std::getenv("KVMXX_BENCH_DIR");
  e.build_dir = b != nullptr && *b != '\0' ? b : KVMXX_BENCH_BUILD_DIR;
  const char* d = std::getenv("KVMXX_LINUX_DUMPS");
  e.linux_dumps = d != nullptr ? d : "";
  return e;
}

// ---- sampling --------------------------------------------------------------------------

namespace {

struct region_picker {
  explicit region_picker(const std::vector<region>& rs) : regions(rs) {
    double total = 0;
    for (const auto& r : rs) {
      total += r.len >= 8 ? r.weight : 0.0;
      cumulative.push_back(total);
    }
    if (total <= 0) throw std::runtime_error("no address regions to sample from");
  }
  // Raw engine output only (no <random> distributions): the same addresses on every host.
  std::size_t pick(std::mt19937_64& rng) const {
    const double x = static_cast<double>(rng() >> 11) * 0x1.0p-53 * cumulative.back();
    const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), x);
    return std::min<std::size_t>(static_cast<std::size_t>(it - cumulative.begin()), regions.size() - 1);
  }
  const std::vector<region>& regions;
  std::vector<double> cumulative;
};

// accept(addr) -> optional<pair<file offset, value>>: whether addr is kept.
template <class Accept>
address_set sample(const std::vector<region>& regions, bool is_virtual, std::size_t n, std::uint64_t seed,
                   std::string& log, Accept&& accept) {
  address_set s;
  s.is_virtual = is_virtual;
  s.addr.reserve(n);
  s.offset.reserve(n);
  region_picker picker(regions);
  std::mt19937_64 rng(seed);
  std::vector<std::size_t> taken(regions.size()), rejected(regions.size());
  std::size_t tries = 0;
  while (s.addr.size() < n) {
    if (++tries > 20 * n + 1000) throw std::runtime_error("fewer than 1 in 20 sampled addresses are readable");
    const std::size_t k = picker.pick(rng);
    const region& r = regions[k];
    const std::uint64_t a = r.start + (rng() % (r.len / 8)) * 8;
    const auto got = accept(a);
    if (!got) {
      ++rejected[k];
      continue;
    }
    ++taken[k];
    s.addr.push_back(a);
    s.offset.push_back(got->first);
    s.expected += got->second;
  }
  std::ostringstream o;
  o << (is_virtual ? "virtual" : "physical") << " addresses:";
  std::vector<std::string> whats;  // summarised by region description
  for (const auto& r : regions)
    if (std::find(whats.begin(), whats.end(), r.what) == whats.end()) whats.push_back(r.what);
  for (const auto& w : whats) {
    std::size_t t = 0, j = 0;
    for (std::size_t k = 0; k < regions.size(); ++k)
      if (regions[k].what == w) t += taken[k], j += rejected[k];
    o << " " << w << " " << t << " (" << j << " rejected: unmapped or not in the file);";
  }
  log += o.str();
  return s;
}

using kept = std::optional<std::pair<std::uint64_t, std::uint64_t>>;

kept from_file(const std::byte* file, std::optional<std::uint64_t> off) {
  if (!off) return std::nullopt;
  std::uint64_t v;
  std::memcpy(&v, file + *off, sizeof v);
  return std::pair{*off, v};
}

kept from_reader(reader& r, bool is_virtual, std::uint64_t addr) {
  const auto v = r.read_one(is_virtual, addr);
  if (!v) return std::nullopt;
  return std::pair{std::uint64_t{0}, *v};
}

}  // namespace

address_set sample_virtual(const dump_case& c, reader& kvmxx, const file_map& layout, const std::byte* file,
                           std::size_t n, std::uint64_t seed, std::string& log) {
  const bool in_file = file != nullptr && !layout.empty();
  return sample(c.virtual_regions(), true, n, seed, log, [&](std::uint64_t va) -> kept {
    if (!in_file) return from_reader(kvmxx, true, va);
    const auto pa = kvmxx.translate(va);
    if (!pa) return std::nullopt;
    return from_file(file, layout.offset_of(*pa, 8));
  });
}

address_set sample_physical(const dump_case& c, reader& kvmxx, const file_map& layout, const std::byte* file,
                            std::size_t n, std::uint64_t seed, std::string& log) {
  const bool in_file = file != nullptr && !layout.empty();
  return sample(c.physical_regions(), false, n, seed, log, [&](std::uint64_t pa) -> kept {
    if (!in_file) return from_reader(kvmxx, false, pa);
    return from_file(file, layout.offset_of(pa, 8));
  });
}

std::vector<block> sequential_blocks(const sequential_range& r, bool is_virtual, std::size_t chunk,
                                     const file_map& layout) {
  std::vector<block> out;
  for (std::uint64_t done = 0; done + chunk <= r.len; done += chunk) {
    block b;
    b.is_virtual = is_virtual;
    b.addr = (is_virtual ? r.va : r.pa) + done;
    b.len = chunk;
    if (!layout.empty()) b.pieces = layout.pieces_of(r.pa + done, chunk);
    out.push_back(std::move(b));
  }
  return out;
}

// ---- /proc ----------------------------------------------------------------------------

proc_memory read_proc_memory() {
  proc_memory m;
  std::ifstream f("/proc/self/status");
  std::string key;
  long value = 0;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream s(line);
    if (!(s >> key >> value)) continue;
    if (key == "RssAnon:") m.rss_anon = value;
    else if (key == "RssFile:") m.rss_file = value;
    else if (key == "RssShmem:") m.rss_shmem = value;
    else if (key == "VmRSS:") m.vm_rss = value;
    else if (key == "VmHWM:") m.vm_hwm = value;
  }
  return m;
}

bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.close();
  return static_cast<bool>(f);
}

// ---- the limit -------------------------------------------------------------------------

limit_reader::limit_reader(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw open_error(path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size <= 0) {
    ::close(fd);
    throw open_error(path + ": cannot stat or empty");
  }
  size_ = static_cast<std::size_t>(st.st_size);
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) throw open_error(path + ": mmap: " + std::strerror(errno));
  base_ = static_cast<const std::byte*>(p);
}

limit_reader::~limit_reader() {
  if (base_ != nullptr) ::munmap(const_cast<std::byte*>(base_), size_);
}

// ---- the peer --------------------------------------------------------------------------

kdumpfile_reader::kdumpfile_reader(const std::string& path, std::vector<std::pair<std::string, std::string>> attrs) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw open_error(path + ": " + std::strerror(errno));
  ctx_ = kdump_new();
  if (ctx_ == nullptr) {
    ::close(fd_);
    throw open_error("kdump_new failed");
  }
  if (kdump_open_fd(ctx_, fd_) != KDUMP_OK) {
    const std::string why = kdump_get_err(ctx_);
    kdump_free(ctx_);
    ::close(fd_);
    throw open_error(path + ": kdump_open_fd: " + why);
  }
  for (const auto& [k, v] : attrs)
    if (kdump_set_string_attr(ctx_, k.c_str(), v.c_str()) != KDUMP_OK) {
      const std::string why = kdump_get_err(ctx_);
      kdump_free(ctx_);
      ::close(fd_);
      throw open_error(path + ": setting " + k + ": " + why);
    }
}

kdumpfile_reader::~kdumpfile_reader() {
  if (ctx_ != nullptr) kdump_free(ctx_);
  if (fd_ >= 0) ::close(fd_);
}

std::unique_ptr<reader> kdumpfile_reader::for_thread() {
  kdump_ctx_t* c = kdump_clone(ctx_, 0);
  if (c == nullptr) throw open_error("kdump_clone failed");
  return std::unique_ptr<reader>(new kdumpfile_reader(c));
}

}  // namespace kvmxx_bench

// SPDX-License-Identifier: BSD-2-Clause
//
// The peer: libkdumpfile (Debian's libkdumpfile-dev 0.5.1) on the same file. A context is
// not thread-safe, so every extra thread gets a kdump_clone() of it (sharing the file and
// the cache, as the library's documentation suggests for threads).
#pragma once
#include "case.hpp"
#include "limit.hpp"

#include <libkdumpfile/kdumpfile.h>

#include <string>
#include <utility>
#include <vector>

namespace kvmxx_bench {

class kdumpfile_reader final : public reader {
 public:
  /// Opens `path` with libkdumpfile and sets each attribute (key, value) in order
  /// ("addrxlat.ostype" = "linux" for Linux dumps). Throws open_error (limit.hpp).
  kdumpfile_reader(const std::string& path, std::vector<std::pair<std::string, std::string>> string_attrs);
  ~kdumpfile_reader() override;
  kdumpfile_reader(const kdumpfile_reader&) = delete;
  kdumpfile_reader& operator=(const kdumpfile_reader&) = delete;

  std::uint64_t read8(const address_set& s, std::size_t begin, std::size_t end, std::size_t& failed) override {
    std::uint64_t sum = 0;
    const kdump_addrspace_t as = s.is_virtual ? KDUMP_KVADDR : KDUMP_KPHYSADDR;
    const std::uint64_t* a = s.addr.data();
    for (std::size_t i = begin; i < end; ++i) {
      std::uint64_t v = 0;
      size_t len = sizeof v;
      if (kdump_read(ctx_, as, a[i], &v, &len) != KDUMP_OK || len != sizeof v) ++failed;
      sum += v;
    }
    return sum;
  }
  bool read_block(const block& b, std::byte* out) override {
    size_t len = b.len;
    return kdump_read(ctx_, b.is_virtual ? KDUMP_KVADDR : KDUMP_KPHYSADDR, b.addr, out, &len) == KDUMP_OK &&
           len == b.len;
  }
  /// VMCOREINFO SYMBOL() lines: the only symbols libkdumpfile resolves by itself.
  std::optional<std::size_t> lookup_each(std::span<const std::string> names, std::uint64_t& sum) override {
    std::size_t found = 0;
    for (const auto& n : names) {
      kdump_addr_t addr = 0;
      if (kdump_vmcoreinfo_symbol(ctx_, n.c_str(), &addr) == KDUMP_OK) {
        ++found;
        sum += addr;
      }
    }
    return found;
  }
  std::unique_ptr<reader> for_thread() override;

 private:
  explicit kdumpfile_reader(kdump_ctx_t* clone) : ctx_(clone) {}
  kdump_ctx_t* ctx_ = nullptr;
  int fd_ = -1;  // owned by the original only
};

}  // namespace kvmxx_bench

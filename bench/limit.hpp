// SPDX-License-Identifier: BSD-2-Clause
//
// The limit (memcpy of the same bytes from a read-only mmap of the same file) and the
// error the contenders' open helpers throw. Free of kvmxx headers, so that the programs
// that need only these compile quickly.
#pragma once
#include "case.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

namespace kvmxx_bench {

/// Thrown by the open helpers; the harness prints it and skips the contender.
struct open_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The limit: memcpy of the same bytes from a read-only mmap of the same file.
class limit_reader final : public reader {
 public:
  explicit limit_reader(const std::string& path);
  ~limit_reader() override;
  limit_reader(const limit_reader&) = delete;
  limit_reader& operator=(const limit_reader&) = delete;
  std::uint64_t read8(const address_set& s, std::size_t begin, std::size_t end, std::size_t& failed) override {
    (void)failed;
    std::uint64_t sum = 0;
    const std::uint64_t* off = s.offset.data();
    for (std::size_t i = begin; i < end; ++i) {
      std::uint64_t v;
      std::memcpy(&v, base_ + off[i], sizeof v);
      sum += v;
    }
    return sum;
  }
  bool read_block(const block& b, std::byte* out) override {
    for (const auto& p : b.pieces) {
      std::memcpy(out, base_ + p.offset, p.len);
      out += p.len;
    }
    return true;
  }
  [[nodiscard]] const std::byte* data() const noexcept { return base_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  const std::byte* base_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace kvmxx_bench

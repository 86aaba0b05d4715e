// SPDX-License-Identifier: BSD-2-Clause
//
// An independent encoder of the Linux kernel's compressed kallsyms tables, for the tests
// of os/linux/kallsyms.hpp. Written from the format description (the layout
// scripts/kallsyms.c emits, specs/linux-dumps.md §4.1), not from kvmxx's decoder, and it
// includes no kvmxx header: it lays the tables out in a little-endian byte image of
// kernel virtual memory and writes the VMCOREINFO SYMBOL() lines that point to them.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace kvmxx_test {

struct ksym {
  std::string name;
  char type;              // nm letter
  std::uint64_t address;  // runtime address (a per-CPU offset for absolute symbols)
};

enum class kallsyms_layout {
  base_relative_absolute_percpu,  // CONFIG_KALLSYMS_BASE_RELATIVE + ABSOLUTE_PERCPU (x86_64)
  base_relative,                  // CONFIG_KALLSYMS_BASE_RELATIVE alone
  absolute,                       // kallsyms_addresses[]
};

struct kallsyms_encoding {
  kallsyms_layout layout = kallsyms_layout::base_relative_absolute_percpu;
  // Multi-character tokens to compress with (longest match first); each gets a byte value
  // no single character of the input uses. May span the type letter ("Tsys_").
  std::vector<std::string> tokens;
  std::uint64_t base_va = 0xffffffff82000000ull;  // where the image starts
};

/// The encoded tables in a byte image of [base_va, base_va + bytes.size()).
struct kallsyms_image {
  std::uint64_t base_va = 0;
  std::vector<std::byte> bytes;
  std::uint64_t num_syms = 0, names = 0, token_table = 0, token_index = 0, offsets = 0, relative_base = 0,
                addresses = 0;
  std::size_t names_size = 0;         // bytes of the names array
  std::size_t token_table_size = 0;   // bytes of the token table
  kallsyms_layout layout{};

  std::string vmcoreinfo() const {
    std::string s = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\n";
    const auto line = [&](const char* n, std::uint64_t v) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "SYMBOL(%s)=%llx\n", n, static_cast<unsigned long long>(v));
      s += buf;
    };
    line("kallsyms_names", names);
    line("kallsyms_num_syms", num_syms);
    line("kallsyms_token_table", token_table);
    line("kallsyms_token_index", token_index);
    if (layout == kallsyms_layout::absolute) {
      line("kallsyms_addresses", addresses);
    } else {
      line("kallsyms_offsets", offsets);
      line("kallsyms_relative_base", relative_base);
    }
    s += "KERNELOFFSET=0\n";
    return s;
  }

  std::size_t at(std::uint64_t va) const {
    if (va < base_va || va - base_va >= bytes.size()) throw std::out_of_range("kallsyms_image: address outside");
    return static_cast<std::size_t>(va - base_va);
  }
  void put(std::uint64_t va, std::uint64_t v, unsigned size) {
    for (unsigned k = 0; k < size; ++k) bytes.at(at(va) + k) = static_cast<std::byte>(v >> (8 * k) & 0xff);
  }
  std::uint64_t get(std::uint64_t va, unsigned size) const {
    std::uint64_t v = 0;
    for (unsigned k = 0; k < size; ++k) v |= static_cast<std::uint64_t>(bytes.at(at(va) + k)) << (8 * k);
    return v;
  }
};

namespace kallsyms_detail {
inline void append(std::vector<std::byte>& out, std::uint64_t v, unsigned size) {
  for (unsigned k = 0; k < size; ++k) out.push_back(static_cast<std::byte>(v >> (8 * k) & 0xff));
}
inline void align(std::vector<std::byte>& out, std::size_t a) {
  while (out.size() % a != 0) out.push_back(std::byte{0});
}
}  // namespace kallsyms_detail

/// Encodes `syms` in their given order (the kernel sorts by address; the format does not
/// care). Absolute symbols (type 'A' or 'a') become positive offsets in the
/// absolute-per-CPU layout; in the plain base-relative layout every address must be at or
/// above the lowest one.
inline kallsyms_image encode_kallsyms(const std::vector<ksym>& syms, const kallsyms_encoding& enc = {}) {
  using namespace kallsyms_detail;
  // 1. Byte values: each character used stands for itself; the tokens take free values.
  std::array<std::string, 256> token_of{};
  std::array<bool, 256> used{};
  for (const auto& s : syms) {
    used[static_cast<unsigned char>(s.type)] = true;
    for (unsigned char c : s.name) used[c] = true;
  }
  if (used[0]) throw std::invalid_argument("kallsyms_encoder: NUL in a name");
  for (unsigned v = 1; v < 256; ++v)
    if (used[v]) token_of[v] = std::string(1, static_cast<char>(v));
  std::map<std::string, unsigned, std::greater<>> multi;  // longest (then greatest) first in iteration
  unsigned next_free = 255;
  for (const auto& t : enc.tokens) {
    while (next_free > 0 && used[next_free]) --next_free;
    if (next_free == 0) throw std::invalid_argument("kallsyms_encoder: no free byte value for a token");
    used[next_free] = true;
    token_of[next_free] = t;
    multi[t] = next_free--;
  }
  // 2. Compressed names: greedy longest token match over type letter + name.
  std::vector<std::byte> names;
  for (const auto& s : syms) {
    const std::string full = std::string(1, s.type) + s.name;
    std::vector<std::byte> body;
    for (std::size_t i = 0; i < full.size();) {
      std::size_t best_len = 1;
      unsigned best = static_cast<unsigned char>(full[i]);
      for (const auto& [t, v] : multi)
        if (t.size() > best_len && full.compare(i, t.size(), t) == 0) best_len = t.size(), best = v;
      body.push_back(static_cast<std::byte>(best));
      i += best_len;
    }
    if (body.size() < 0x80) {
      names.push_back(static_cast<std::byte>(body.size()));
    } else {
      if (body.size() >= 0x4000) throw std::invalid_argument("kallsyms_encoder: name too long");
      names.push_back(static_cast<std::byte>(0x80 | (body.size() & 0x7f)));
      names.push_back(static_cast<std::byte>(body.size() >> 7));
    }
    names.insert(names.end(), body.begin(), body.end());
  }
  // 3. Token table: the used tokens back to back, then one empty token for unused values.
  std::vector<std::byte> table;
  std::array<std::uint16_t, 256> index{};
  for (unsigned v = 0; v < 256; ++v) {
    if (token_of[v].empty()) continue;
    index[v] = static_cast<std::uint16_t>(table.size());
    for (char c : token_of[v]) table.push_back(static_cast<std::byte>(c));
    table.push_back(std::byte{0});
  }
  const auto empty_token = static_cast<std::uint16_t>(table.size());
  table.push_back(std::byte{0});
  for (unsigned v = 0; v < 256; ++v)
    if (token_of[v].empty()) index[v] = empty_token;

  // 4. The image, in scripts/kallsyms.c's order.
  kallsyms_image img;
  img.base_va = enc.base_va;
  img.layout = enc.layout;
  auto& out = img.bytes;
  const auto here = [&] { return enc.base_va + out.size(); };
  std::uint64_t base = ~std::uint64_t{0};
  for (const auto& s : syms)
    if (enc.layout != kallsyms_layout::base_relative_absolute_percpu || (s.type != 'A' && s.type != 'a'))
      base = std::min(base, s.address);
  if (enc.layout == kallsyms_layout::absolute) {
    img.addresses = here();
    for (const auto& s : syms) append(out, s.address, 8);
  } else {
    img.offsets = here();
    for (const auto& s : syms) {
      std::uint32_t off;
      if (enc.layout == kallsyms_layout::base_relative_absolute_percpu) {
        if (s.type == 'A' || s.type == 'a') {
          if (s.address > 0x7fffffffu) throw std::invalid_argument("kallsyms_encoder: absolute value too large");
          off = static_cast<std::uint32_t>(s.address);
        } else {
          const std::uint64_t d = s.address - base;  // stored as -(d + 1)
          if (d > 0x7ffffffeu) throw std::invalid_argument("kallsyms_encoder: address too far from the base");
          off = static_cast<std::uint32_t>(~d);
        }
      } else {
        const std::uint64_t d = s.address - base;
        if (d > 0xffffffffu) throw std::invalid_argument("kallsyms_encoder: address too far from the base");
        off = static_cast<std::uint32_t>(d);
      }
      append(out, off, 4);
    }
    align(out, 8);
    img.relative_base = here();
    append(out, base, 8);
  }
  align(out, 8);
  img.num_syms = here();
  append(out, syms.size(), 4);
  align(out, 8);
  img.names = here();
  img.names_size = names.size();
  out.insert(out.end(), names.begin(), names.end());
  align(out, 8);
  img.token_table = here();
  img.token_table_size = table.size();
  out.insert(out.end(), table.begin(), table.end());
  align(out, 8);
  img.token_index = here();
  for (auto i : index) append(out, i, 2);
  return img;
}

}  // namespace kvmxx_test

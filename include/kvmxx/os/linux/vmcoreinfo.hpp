// SPDX-License-Identifier: BSD-2-Clause
//
// VMCOREINFO: the KEY=VALUE text the Linux kernel leaves for dump readers
// (specs/linux-dumps.md §4). SYMBOL() values and KERNELOFFSET are hexadecimal without a
// prefix; NUMBER/OFFSET/SIZE/LENGTH are decimal unless written with 0x (parsed with base
// 0), and NUMBER values may be negative — NUMBER(phys_base) is printed with %ld and is
// negative when KASLR moved the text further than the physical load address.
#pragma once
#include <kvmxx/core/config.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvmxx::inline KVMXX_ABI::linux_ {

class vmcoreinfo {
 public:
  vmcoreinfo() = default;

  /// Parses the note's text. Lines without '=' and NUL padding are ignored; a key given
  /// twice keeps its last value (CRASHTIME is appended at panic).
  [[nodiscard]] static vmcoreinfo parse(std::string_view text) {
    vmcoreinfo v;
    v.text_.assign(text.data(), text.size());
    const std::string_view t = v.text_;
    std::size_t pos = 0;
    while (pos < t.size()) {
      std::size_t end = t.find('\n', pos);
      if (end == std::string_view::npos) end = t.size();
      std::string_view line = t.substr(pos, end - pos);
      pos = end + 1;
      while (!line.empty() && (line.back() == '\r' || line.back() == '\0')) line.remove_suffix(1);
      const auto eq = line.find('=');
      if (eq == std::string_view::npos || eq == 0) continue;
      v.entries_.emplace_back(line.substr(0, eq), line.substr(eq + 1));
    }
    return v;
  }

  [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }
  [[nodiscard]] const std::string& text() const noexcept { return text_; }

  /// The raw value of KEY (e.g. "OSRELEASE", "SYMBOL(init_uts_ns)").
  [[nodiscard]] std::optional<std::string_view> get(std::string_view key) const noexcept {
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it)
      if (it->first == key) return it->second;
    return std::nullopt;
  }

  /// SYMBOL(name): a runtime kernel virtual address (hexadecimal, no prefix).
  [[nodiscard]] std::optional<std::uint64_t> symbol(std::string_view name) const noexcept {
    return hex(get(wrapped("SYMBOL(", name)));
  }
  /// NUMBER(name), signed, base 0.
  [[nodiscard]] std::optional<std::int64_t> number(std::string_view name) const noexcept {
    return integer(get(wrapped("NUMBER(", name)));
  }
  [[nodiscard]] std::optional<std::int64_t> offset(std::string_view name) const noexcept {
    return integer(get(wrapped("OFFSET(", name)));
  }
  [[nodiscard]] std::optional<std::int64_t> size(std::string_view name) const noexcept {
    return integer(get(wrapped("SIZE(", name)));
  }
  [[nodiscard]] std::optional<std::int64_t> length(std::string_view name) const noexcept {
    return integer(get(wrapped("LENGTH(", name)));
  }
  /// KERNELOFFSET: runtime minus link-time kernel text address (hex, no prefix).
  [[nodiscard]] std::optional<std::uint64_t> kernel_offset() const noexcept { return hex(get("KERNELOFFSET")); }
  [[nodiscard]] std::optional<std::string_view> osrelease() const noexcept { return get("OSRELEASE"); }
  [[nodiscard]] std::optional<std::uint64_t> page_size() const noexcept {
    auto v = integer(get("PAGESIZE"));
    if (!v || *v <= 0) return std::nullopt;
    return static_cast<std::uint64_t>(*v);
  }

  /// Calls f(name, address) for every SYMBOL() line (the last one of a repeated name).
  /// Beware: SYMBOL(mem_section) holds the *value* of the mem_section pointer
  /// (VMCOREINFO_SYMBOL_ARRAY), not the variable's address as System.map gives it.
  template <class F>
  void for_each_symbol(F&& f) const {
    for (const auto& [k, v] : entries_) {
      if (k.size() > 8 && k.substr(0, 7) == "SYMBOL(" && k.back() == ')' && get(k)->data() == v.data())  // last wins
        if (auto a = hex(v)) f(k.substr(7, k.size() - 8), *a);
    }
  }

  /// Hexadecimal without prefix (a 0x prefix is tolerated).
  [[nodiscard]] static std::optional<std::uint64_t> hex(std::optional<std::string_view> s) noexcept {
    if (!s || s->empty()) return std::nullopt;
    std::string_view t = *s;
    if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) t.remove_prefix(2);
    if (t.empty() || t.size() > 16) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : t) {
      unsigned d;
      if (c >= '0' && c <= '9') d = unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') d = unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = unsigned(c - 'A' + 10);
      else return std::nullopt;
      v = v << 4 | d;
    }
    return v;
  }

  /// strtoll(…, 0) semantics: optional sign, then 0x hex, leading-0 octal, or decimal.
  /// Values that do not fit 64 bits wrap (the kernel prints unsigned longs with %lu too).
  [[nodiscard]] static std::optional<std::int64_t> integer(std::optional<std::string_view> s) noexcept {
    if (!s || s->empty()) return std::nullopt;
    std::string_view t = *s;
    bool neg = false;
    if (t[0] == '-' || t[0] == '+') {
      neg = t[0] == '-';
      t.remove_prefix(1);
    }
    if (t.empty()) return std::nullopt;
    unsigned base = 10;
    if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
      base = 16;
      t.remove_prefix(2);
    } else if (t.size() > 1 && t[0] == '0') {
      base = 8;
      t.remove_prefix(1);
    }
    std::uint64_t v = 0;
    for (char c : t) {
      unsigned d;
      if (c >= '0' && c <= '9') d = unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') d = unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = unsigned(c - 'A' + 10);
      else return std::nullopt;
      if (d >= base) return std::nullopt;
      v = v * base + d;
    }
    const std::uint64_t r = neg ? ~v + 1 : v;
    return static_cast<std::int64_t>(r);
  }

 private:
  static std::string wrapped(const char* prefix, std::string_view name) {
    std::string k(prefix);
    k.append(name);
    k.push_back(')');
    return k;
  }

  std::string text_;  // entries_ point into it; never reallocated after parse
  std::vector<std::pair<std::string_view, std::string_view>> entries_;

 public:
  // entries_ holds views into text_: copying must re-parse, moving keeps the buffer
  // (std::string's move keeps heap storage, but not a short string's): re-parse both ways.
  vmcoreinfo(const vmcoreinfo& o) : vmcoreinfo(parse(o.text_)) {}
  vmcoreinfo& operator=(const vmcoreinfo& o) {
    if (this != &o) *this = parse(o.text_);
    return *this;
  }
  vmcoreinfo(vmcoreinfo&& o) noexcept : text_(), entries_() { swap_in(o); }
  vmcoreinfo& operator=(vmcoreinfo&& o) noexcept {
    if (this != &o) swap_in(o);
    return *this;
  }

 private:
  void swap_in(vmcoreinfo& o) noexcept {
    // Rebase the views onto our own copy of the text.
    const char* old = o.text_.data();
    text_ = std::move(o.text_);
    entries_ = std::move(o.entries_);
    const char* now = text_.data();
    for (auto& [k, v] : entries_) {
      k = std::string_view(now + (k.data() - old), k.size());
      v = std::string_view(now + (v.data() - old), v.size());
    }
    o.text_.clear();
    o.entries_.clear();
  }
};

}  // namespace kvmxx::inline KVMXX_ABI::linux_

// SPDX-License-Identifier: BSD-2-Clause
//
// Symbols from a Linux System.map or /proc/kallsyms text file: one "ADDRESS TYPE NAME"
// per line, ADDRESS 8 or 16 hexadecimal digits without 0x, TYPE nm(1)'s one-letter
// symbol type, and in kallsyms an optional "\t[module]" after the name
// (specs/linux-dumps.md §1.4). The addresses are those the file shows: link-time for a
// System.map or a nokaslr boot, runtime for a KASLR boot's /proc/kallsyms — wrap a
// System.map in resolver::displaced with VMCOREINFO's KERNELOFFSET for a KASLR dump
// (specs/linux-dumps.md §11).
//
// Name matching is elf_symtab's (nlist(3) plus a preference): the exact name first, then
// the name without one leading '_'; among equal names a global (upper-case type letter)
// wins over a local, then the earlier line.
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/detail/fd.hpp>

#include <algorithm>
#include <optional>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace kvmxx::inline KVMXX_ABI::resolver {

/// \code
///   auto map = kvmxx::resolver::symbol_file::open("/boot/System.map-6.1.0-56-amd64");
///   if (!map) return std::fprintf(stderr, "%s\n", kvmxx::describe(map.error()).c_str()), 1;
///   if (auto s = map.value().lookup("init_uts_ns"))
///     std::printf("%llx\n", (unsigned long long)kvmxx::to_integer(s.value().value));
/// \endcode
///
/// n_type is what nlist(3) would report for the ELF symbol behind the letter: T/t → N_TEXT,
/// R/r → N_TEXT (read-only PROGBITS, as libc classifies it), D/d, G/g, W/w, V/v → N_DATA,
/// B/b, S/s → N_BSS, A/a → N_ABS, u (GNU unique global) → N_DATA|N_EXT; any other letter
/// (C, i, N, n, p, …) → N_UNDF, the n_type libc gives symbols of other sections. An
/// upper-case letter adds N_EXT. Undefined symbols ('U' lines, and nm's address-less
/// "U name" / "w name" lines) are skipped.
///
/// The file is read once, with read(2) (so /proc/kallsyms, whose size is 0, works too);
/// only the names, an index entry per symbol and one line being read are kept, so memory
/// is proportional to the file, and a line longer than max_line_length stops the read.
///
/// Immutable after open; lookups are safe from many threads. Copyable and movable.
///
/// When every address in the file is 0 — /proc/kallsyms read by a user the kernel hides
/// addresses from (kernel.kptr_restrict) — the names are kept but lookups fail with
/// errc::no_symbol_table; addresses_hidden() says so. (A file whose only symbols are at
/// address 0 is taken for such a file too.)
///
/// Not validated: whether addresses make sense for the kernel (they are taken as they
/// are), which letters a real nm or kallsyms would print, and what is inside a
/// "[module]" suffix (it is checked for shape and dropped: module symbols are looked up
/// by their plain names, and the earlier line of equal rank wins).
class symbol_file {
 public:
  /// Longer lines are errc::corrupt (a kallsyms line is at most about 600 bytes;
  /// KSYM_NAME_LEN is 512). Bounds what reading a file that is not a symbol file costs.
  static constexpr std::size_t max_line_length = 16384;

  /// An empty resolver: lookups fail with errc::no_symbol_table.
  symbol_file() = default;

  /// Reads and indexes a System.map or kallsyms file (regular file or procfs).
  /// \errors system errors of open(2)/read(2) naming the path; errc::invalid_argument for
  /// a directory; errc::corrupt for a line that is not "ADDRESS TYPE NAME[\t[module]]",
  /// the message giving path:line, the reason and the start of the line.
  /// An empty file (or one with only blank and 'U' lines) opens; its lookups fail with
  /// errc::no_symbol_table.
  [[nodiscard]] static result<symbol_file> open(const char* path) {
    KVMXX_TRY(fd, detail::open_file(path, O_RDONLY));
    KVMXX_TRY(st, detail::stat_fd(fd, path));
    if (S_ISDIR(st.st_mode)) return detail::fail(errc::invalid_argument, "%s: is a directory", path);
    symbol_file f;
    f.path_ = path;
    reader r(f);
    constexpr std::size_t chunk = 64 * 1024;
    const auto buffer = std::make_unique<char[]>(chunk);
    for (;;) {
      const ssize_t n = ::read(fd.get(), buffer.get(), chunk);
      if (n < 0) {
        if (errno == EINTR) continue;
        return detail::fail_errno(errno, path);
      }
      if (n == 0) break;
      KVMXX_TRYV(r.feed(std::string_view(buffer.get(), static_cast<std::size_t>(n))));
    }
    KVMXX_TRYV(r.finish());
    return f;
  }

  /// Indexes text already in memory (copied: the text need not outlive the resolver).
  /// `name` stands for the path in messages.
  /// \errors errc::corrupt as for open()
  [[nodiscard]] static result<symbol_file> from_text(std::string_view text, std::string name = "<memory>") {
    symbol_file f;
    f.path_ = std::move(name);
    reader r(f);
    KVMXX_TRYV(r.feed(text));
    KVMXX_TRYV(r.finish());
    return f;
  }

  /// lookup without the error message: nullopt where lookup fails.
  [[nodiscard]] std::optional<symbol> try_lookup(std::string_view name) const noexcept {
    if (!loaded_ || entries_.empty() || hidden_) return std::nullopt;
    if (const auto* e = find(name)) return symbol{kvaddr{e->value}, e->type};
    if (name.size() > 1 && name[0] == '_')
      if (const auto* e = find(name.substr(1))) return symbol{kvaddr{e->value}, e->type};
    return std::nullopt;
  }

  /// \errors errc::symbol_not_found; errc::no_symbol_table for an empty resolver, a file
  /// without symbols, or a file whose addresses are hidden (all 0, kptr_restrict)
  [[nodiscard]] result<symbol> lookup(std::string_view name) const {
    if (auto s = try_lookup(name)) return *s;
    if (!loaded_)
      return detail::fail(errc::no_symbol_table, "cannot look up \"%.*s\": no symbol file was loaded",
                          static_cast<int>(name.size()), name.data());
    if (entries_.empty())
      return detail::fail(errc::no_symbol_table, "%s: cannot look up \"%.*s\": the file lists no symbols",
                          path_.c_str(), static_cast<int>(name.size()), name.data());
    if (hidden_)
      return detail::fail(errc::no_symbol_table,
                          "%s: cannot look up \"%.*s\": every address in the file is 0 — the kernel hid the "
                          "addresses (kptr_restrict); read /proc/kallsyms as root with kernel.kptr_restrict=0",
                          path_.c_str(), static_cast<int>(name.size()), name.data());
    if (const auto* e = find(name)) return symbol{kvaddr{e->value}, e->type};
    if (name.size() > 1 && name[0] == '_')
      if (const auto* e = find(name.substr(1))) return symbol{kvaddr{e->value}, e->type};
    return detail::fail(errc::symbol_not_found, "%s: symbol \"%.*s\" not found", path_.c_str(),
                        static_cast<int>(name.size()), name.data());
  }

  /// The number of defined symbols indexed (duplicates included).
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

  /// True when the file had symbols and every one of them was at address 0.
  [[nodiscard]] bool addresses_hidden() const noexcept { return hidden_; }

  /// The path (or the name given to from_text), "" for an empty resolver.
  [[nodiscard]] const char* path() const noexcept { return path_.c_str(); }

  /// Calls f(name, value, n_type) for every indexed symbol in name order (equal names in
  /// lookup preference order); with hidden addresses the values are the file's zeros.
  template <class F>
  void for_each(F&& f) const {
    for (const auto& e : entries_) f(name_of(e), kvaddr{e.value}, e.type);
  }

 private:
  struct entry {
    std::uint64_t value;
    std::uint32_t name_offset;  // into names_
    std::uint32_t name_length;
    std::uint32_t order;        // preference among equal names: global first, then file order
    std::uint8_t type;          // nlist n_type
  };
  static constexpr std::uint32_t local_bit = 0x80000000u;

  std::string_view name_of(const entry& e) const noexcept { return {names_.data() + e.name_offset, e.name_length}; }

  const entry* find(std::string_view name) const noexcept {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                               [this](const entry& e, std::string_view n) { return name_of(e) < n; });
    return it != entries_.end() && name_of(*it) == name ? &*it : nullptr;
  }

  static constexpr bool is_blank(char c) noexcept { return c == ' ' || c == '\t'; }
  static constexpr bool is_letter(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
  static constexpr bool is_upper(char c) noexcept { return c >= 'A' && c <= 'Z'; }
  // Anything printable but a blank; bytes >= 0x80 too (names are not checked for UTF-8).
  static constexpr bool is_name_char(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u != 0x7f;
  }
  static constexpr int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // nlist(3)'s n_type for nm's letter (see the class comment).
  static constexpr std::uint8_t n_type_of(char letter) noexcept {
    std::uint8_t t = nlist_type::undf;
    switch (letter) {
      case 'T': case 't': case 'R': case 'r': t = nlist_type::text; break;
      case 'D': case 'd': case 'G': case 'g': case 'W': case 'w': case 'V': case 'v': t = nlist_type::data; break;
      case 'B': case 'b': case 'S': case 's': t = nlist_type::bss; break;
      case 'A': case 'a': t = nlist_type::abs; break;
      case 'u': return nlist_type::data | nlist_type::ext;  // GNU unique global: defined, global
      default: break;
    }
    if (is_upper(letter)) t |= nlist_type::ext;
    return t;
  }

  // Parses lines as they arrive, so that only one partial line is ever buffered.
  class reader {
   public:
    explicit reader(symbol_file& out) noexcept : out_(out) {}

    result<void> feed(std::string_view chunk) {
      std::size_t pos = 0;
      if (!carry_.empty()) {
        const std::size_t nl = chunk.find('\n');
        if (nl == std::string_view::npos) {
          if (carry_.size() + chunk.size() > max_line_length) return too_long();
          carry_.append(chunk);
          return success();
        }
        carry_.append(chunk.substr(0, nl));
        KVMXX_TRYV(line(carry_));
        carry_.clear();
        pos = nl + 1;
      }
      for (;;) {
        const std::size_t nl = chunk.find('\n', pos);
        if (nl == std::string_view::npos) break;
        KVMXX_TRYV(line(chunk.substr(pos, nl - pos)));
        pos = nl + 1;
      }
      if (chunk.size() - pos > max_line_length) return too_long();
      carry_.assign(chunk.substr(pos));
      return success();
    }

    result<void> finish() {
      if (!carry_.empty()) {
        KVMXX_TRYV(line(carry_));
      }
      carry_.clear();
      carry_.shrink_to_fit();
      auto& f = out_;
      const auto less = [&f](const entry& a, const entry& b) {
        const auto na = f.name_of(a), nb = f.name_of(b);
        return na != nb ? na < nb : a.order < b.order;
      };
      std::sort(f.entries_.begin(), f.entries_.end(), less);
      f.entries_.shrink_to_fit();
      f.names_.shrink_to_fit();
      f.hidden_ = !f.entries_.empty() && all_zero_;
      f.loaded_ = true;
      return success();
    }

   private:
    result<void> too_long() {
      return detail::fail(errc::corrupt, "%s:%zu: malformed line (longer than %zu bytes)", out_.path_.c_str(),
                          line_no_ + 1, max_line_length);
    }

    // "what and where": path:line, the reason, and the line's start with unprintable
    // bytes shown as '?'.
    result<void> bad(std::string_view l, const char* reason) {
      char shown[72];
      std::size_t n = 0;
      for (; n < l.size() && n < 64; ++n) {
        const auto u = static_cast<unsigned char>(l[n]);
        shown[n] = (u >= 0x20 && u < 0x7f) || u == '\t' ? l[n] : '?';
      }
      if (n < l.size()) shown[n++] = '.', shown[n++] = '.', shown[n++] = '.';
      shown[n] = '\0';
      return detail::fail(errc::corrupt, "%s:%zu: malformed line (%s), expected \"ADDRESS TYPE NAME\": \"%s\"",
                          out_.path_.c_str(), line_no_, reason, shown);
    }

    result<void> line(std::string_view l) {
      if (l.size() > max_line_length) return too_long();
      ++line_no_;
      const std::string_view whole = l;
      while (!l.empty() && (is_blank(l.back()) || l.back() == '\r')) l.remove_suffix(1);
      if (l.empty()) return success();  // blank line
      std::size_t i = 0;
      const auto skip_blanks = [&] {
        while (i < l.size() && is_blank(l[i])) ++i;
      };

      if (is_blank(l[0])) {
        // nm prints undefined symbols without an address: "        U name", "      w name".
        skip_blanks();
        if (i + 2 < l.size() && (l[i] == 'U' || l[i] == 'w' || l[i] == 'v') && is_blank(l[i + 1])) {
          ++i;
          skip_blanks();
          const std::size_t start = i;
          while (i < l.size() && is_name_char(l[i])) ++i;
          if (i > start && i == l.size()) return success();
        }
        return bad(whole, "no address");
      }

      std::uint64_t value = 0;
      std::size_t digits = 0;
      for (; i < l.size(); ++i, ++digits) {
        const int d = hex_value(l[i]);
        if (d < 0) break;
        value = value << 4 | static_cast<unsigned>(d);
      }
      if (digits != 8 && digits != 16) return bad(whole, "the address is not 8 or 16 hexadecimal digits");
      if (i == l.size() || !is_blank(l[i])) return bad(whole, "no blank after the address");
      skip_blanks();

      if (i == l.size() || !is_letter(l[i])) return bad(whole, "the type is not a letter");
      const char letter = l[i++];
      if (i == l.size()) return bad(whole, "no name");
      if (!is_blank(l[i])) return bad(whole, "the type is not a single letter");
      skip_blanks();

      const std::size_t start = i;
      while (i < l.size() && is_name_char(l[i])) ++i;
      if (i == start) return bad(whole, "the name has a control character");
      const std::string_view name = l.substr(start, i - start);
      if (i < l.size() && !is_blank(l[i])) return bad(whole, "the name has a control character");
      skip_blanks();
      if (i < l.size()) {  // kallsyms: "\t[module]"
        const std::string_view rest = l.substr(i);
        if (rest.size() < 3 || rest.front() != '[' || rest.back() != ']' ||
            !std::all_of(rest.begin() + 1, rest.end() - 1, [](char c) { return is_name_char(c); }))
          return bad(whole, "text after the name is not a [module]");
      }

      if (letter == 'U') return success();  // undefined: nothing to resolve to
      auto& f = out_;
      if (f.names_.size() + name.size() > UINT32_MAX || f.entries_.size() >= local_bit - 1)
        return detail::fail(errc::invalid_argument, "%s:%zu: too many symbols (more than 4 GiB of names)",
                            f.path_.c_str(), line_no_);
      const auto order =
          static_cast<std::uint32_t>(f.entries_.size()) | (is_upper(letter) || letter == 'u' ? 0u : local_bit);
      f.entries_.push_back({value, static_cast<std::uint32_t>(f.names_.size()), static_cast<std::uint32_t>(name.size()),
                            order, n_type_of(letter)});
      f.names_.append(name);
      if (value != 0) all_zero_ = false;
      return success();
    }

    symbol_file& out_;
    std::string carry_;  // the part of a line that has not seen its '\n' yet
    std::size_t line_no_ = 0;
    bool all_zero_ = true;
  };

  std::string path_;
  std::string names_;  // every kept name, back to back
  std::vector<entry> entries_;
  bool hidden_ = false;
  bool loaded_ = false;
};
static_assert(symbol_resolver<symbol_file>);
static_assert(kernel_file_resolver<symbol_file>);

}  // namespace kvmxx::inline KVMXX_ABI::resolver

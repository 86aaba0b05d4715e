// SPDX-License-Identifier: BSD-2-Clause
//
// Symbols from the kernel's own kallsyms tables, decoded from the dump's memory
// (os/linux/kallsyms.hpp): with Linux 6.0+ VMCOREINFO, a dump alone resolves every symbol
// /proc/kallsyms lists, at its runtime address (KASLR included), without System.map.
//
// Name matching is symbol_file's: the exact name first, then the name without one leading
// '_'; among equal names a global (upper-case type letter) wins over a local, then the
// earlier table entry.
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/os/linux/kallsyms.hpp>
#include <kvmxx/os/linux/vmcoreinfo.hpp>

#include <algorithm>
#include <optional>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace kvmxx::inline KVMXX_ABI::resolver {

/// \code
///   auto km = kvmxx::open_linux_elf(nullptr, "vmcore");            // uses it in its chain
///   // or by hand, from a backend and an architecture:
///   auto syms = kvmxx::resolver::kallsyms::from_dump(kvmxx::arch::amd64{}, core, core.vmcoreinfo());
///   if (!syms.loaded()) std::fprintf(stderr, "%s\n", syms.why_empty().c_str());
///   auto s = syms.lookup("init_task");
/// \endcode
/// n_type follows the type letter as in symbol_file (T/t, R/r → N_TEXT; D/d, G/g, W/w,
/// V/v → N_DATA; B/b, S/s → N_BSS; A/a → N_ABS; others N_UNDF; upper-case adds N_EXT).
///
/// An empty resolver (default-constructed, or made by from_dump when the tables could not
/// be decoded) answers errc::no_symbol_table with the reason, which why_empty() keeps.
///
/// Immutable after construction; lookups are safe from many threads. Copies share the
/// decoded table.
class kallsyms {
 public:
  /// An empty resolver: lookups fail with errc::no_symbol_table.
  kallsyms() = default;

  /// Indexes a decoded table.
  explicit kallsyms(linux_::kallsyms_table table) : data_(std::make_shared<data>(std::move(table))) {}

  /// An empty resolver that says why it is empty (lookups fail with errc::no_symbol_table
  /// and this reason; why_empty() returns it).
  [[nodiscard]] static kallsyms unavailable(std::string why, std::error_code code = errc::no_symbol_table) {
    kallsyms k;
    k.why_ = std::move(why);
    k.code_ = code;
    return k;
  }

  /// Decodes the tables VMCOREINFO points to, reading through arch's page walk. Never
  /// fails: when VMCOREINFO lacks the tables or they cannot be read or decoded, the
  /// resolver is empty and why_empty()/error() say why.
  template <class Arch, class Backend>
  requires translation_arch<Arch, Backend>
  [[nodiscard]] static kallsyms from_dump(const Arch& arch, const Backend& backend, const linux_::vmcoreinfo& info,
                                          linux_::kallsyms_abi abi = {}, linux_::kallsyms_limits limits = {}) {
    auto where = linux_::kallsyms_location::from_vmcoreinfo(info);
    if (!where) return unavailable(describe(where.error()), where.error());
    auto table =
        linux_::decode_kallsyms(where.value(), linux_::kernel_reader<Arch, Backend>(arch, backend), abi, limits);
    if (!table) return unavailable(describe(table.error()), table.error());
    return kallsyms(std::move(table).value());
  }

  /// lookup without the error message: nullopt where lookup fails.
  [[nodiscard]] std::optional<symbol> try_lookup(std::string_view name) const {
    if (!data_) return std::nullopt;
    if (const auto* e = find(name)) return symbol{kvaddr{e->value}, n_type_of(e->type)};
    if (name.size() > 1 && name[0] == '_')
      if (const auto* e = find(name.substr(1))) return symbol{kvaddr{e->value}, n_type_of(e->type)};
    return std::nullopt;
  }

  /// \errors errc::symbol_not_found; errc::no_symbol_table for an empty resolver (the
  /// message gives the reason)
  [[nodiscard]] result<symbol> lookup(std::string_view name) const {
    if (auto s = try_lookup(name)) return *s;
    if (!data_) {
      if (why_.empty())
        return detail::fail(errc::no_symbol_table, "kallsyms: cannot look up \"%.*s\": no kallsyms tables were decoded",
                            static_cast<int>(name.size()), name.data());
      return detail::fail(errc::no_symbol_table, "cannot look up \"%.*s\": %s", static_cast<int>(name.size()),
                          name.data(), why_.c_str());
    }
    if (const auto* e = find(name)) return symbol{kvaddr{e->value}, n_type_of(e->type)};
    if (name.size() > 1 && name[0] == '_')
      if (const auto* e = find(name.substr(1))) return symbol{kvaddr{e->value}, n_type_of(e->type)};
    return detail::fail(errc::symbol_not_found, "kallsyms: symbol \"%.*s\" not found in the dump's kallsyms tables",
                        static_cast<int>(name.size()), name.data());
  }

  /// True when a table was decoded.
  [[nodiscard]] bool loaded() const noexcept { return data_ != nullptr; }
  /// Why the resolver is empty ("" when loaded, or default-constructed).
  [[nodiscard]] const std::string& why_empty() const noexcept { return why_; }
  /// The error that left it empty (none when loaded or default-constructed).
  [[nodiscard]] std::error_code error() const noexcept { return code_; }
  /// The number of symbols (duplicates included).
  [[nodiscard]] std::size_t size() const noexcept { return data_ ? data_->table.size() : 0; }
  /// The decoded table, in the kernel's order; nullptr when empty.
  [[nodiscard]] const linux_::kallsyms_table* table() const noexcept { return data_ ? &data_->table : nullptr; }

  /// Calls f(name, value, n_type) for every symbol, in name order (equal names in lookup
  /// preference order).
  template <class F>
  void for_each(F&& f) const {
    if (!data_) return;
    for (const auto i : data_->by_name) {
      const auto& e = data_->table.entries()[i];
      f(data_->table.name(e), kvaddr{e.value}, n_type_of(e.type));
    }
  }

  /// nlist(3)'s n_type for a kallsyms type letter.
  [[nodiscard]] static constexpr std::uint8_t n_type_of(char letter) noexcept {
    std::uint8_t t = nlist_type::undf;
    switch (letter) {
      case 'T': case 't': case 'R': case 'r': t = nlist_type::text; break;
      case 'D': case 'd': case 'G': case 'g': case 'W': case 'w': case 'V': case 'v': t = nlist_type::data; break;
      case 'B': case 'b': case 'S': case 's': t = nlist_type::bss; break;
      case 'A': case 'a': t = nlist_type::abs; break;
      case 'u': return nlist_type::data | nlist_type::ext;  // GNU unique global
      default: break;
    }
    if (letter >= 'A' && letter <= 'Z') t |= nlist_type::ext;
    return t;
  }

 private:
  static constexpr bool is_global(char letter) noexcept { return (letter >= 'A' && letter <= 'Z') || letter == 'u'; }

  struct data {
    explicit data(linux_::kallsyms_table t) : table(std::move(t)) {
      by_name.resize(table.size());
      for (std::uint32_t i = 0; i < by_name.size(); ++i) by_name[i] = i;
      const auto& es = table.entries();
      std::sort(by_name.begin(), by_name.end(), [&](std::uint32_t a, std::uint32_t b) {
        const auto na = table.name(es[a]), nb = table.name(es[b]);
        if (na != nb) return na < nb;
        const bool ga = is_global(es[a].type), gb = is_global(es[b].type);
        if (ga != gb) return ga;
        return a < b;
      });
    }
    linux_::kallsyms_table table;
    std::vector<std::uint32_t> by_name;  // indexes into table.entries(), sorted for lookup
  };

  const linux_::kallsyms_table::entry* find(std::string_view name) const noexcept {
    const auto& es = data_->table.entries();
    auto it = std::lower_bound(data_->by_name.begin(), data_->by_name.end(), name,
                               [&](std::uint32_t i, std::string_view n) { return data_->table.name(es[i]) < n; });
    if (it == data_->by_name.end() || data_->table.name(es[*it]) != name) return nullptr;
    return &es[*it];
  }

  std::shared_ptr<const data> data_;
  std::string why_;
  std::error_code code_;
};
static_assert(symbol_resolver<kallsyms>);

}  // namespace kvmxx::inline KVMXX_ABI::resolver

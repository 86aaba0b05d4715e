// SPDX-License-Identifier: BSD-2-Clause
//
// The symbols a Linux kernel writes into its VMCOREINFO note as SYMBOL(name)=hex lines
// (specs/linux-dumps.md §4.1): a couple of dozen runtime addresses (init_uts_ns,
// swapper_pg_dir, _stext, mem_section, prb, the kallsyms tables, …) — enough to find the
// page tables and the kernel release without System.map. The values are runtime
// addresses: KASLR's KERNELOFFSET is already in them.
//
// Most lines are a variable's address (VMCOREINFO_SYMBOL: &name), but a few are the
// value of a name (VMCOREINFO_SYMBOL_ARRAY: (unsigned long)name): for an array that is
// its address too, but SYMBOL(mem_section) under SPARSEMEM_EXTREME is the *contents* of
// the mem_section pointer (a direct-map address), where kallsyms and System.map give the
// pointer variable's own address. In a chain with a kallsyms source, the order decides
// which of the two "mem_section" means.
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/os/linux/vmcoreinfo.hpp>

#include <algorithm>
#include <optional>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvmxx::inline KVMXX_ABI::resolver {

/// \code
///   auto info = kvmxx::linux_::vmcoreinfo::parse(note_text);
///   kvmxx::resolver::vmcoreinfo_symbols syms(info);
///   if (auto s = syms.lookup("swapper_pg_dir"))
///     std::printf("%llx\n", (unsigned long long)kvmxx::to_integer(s.value().value));
/// \endcode
/// Copies the SYMBOL() lines out of the vmcoreinfo, which need not outlive it. Names match
/// as in elf_symtab: the exact name, then without one leading '_'. A name given twice
/// keeps its last value, as vmcoreinfo::symbol() does. Every symbol has n_type
/// N_DATA|N_EXT (VMCOREINFO says nothing of sections), libkvm's value for resolver hits.
/// Immutable after construction; lookups are safe from many threads.
///
/// Not validated: SYMBOL() lines whose value is not hexadecimal (up to 16 digits, an
/// optional 0x) are left out, as vmcoreinfo::for_each_symbol leaves them; values are
/// not checked against anything.
class vmcoreinfo_symbols {
 public:
  /// An empty resolver: lookups fail with errc::no_symbol_table.
  vmcoreinfo_symbols() = default;

  explicit vmcoreinfo_symbols(const linux_::vmcoreinfo& info) {
    std::uint32_t order = 0;
    info.for_each_symbol([&](std::string_view name, std::uint64_t value) {
      entries_.push_back({std::string(name), value, order++});
    });
    // Name order, the last line of a name first; then keep only that one.
    std::sort(entries_.begin(), entries_.end(),
              [](const entry& a, const entry& b) { return a.name != b.name ? a.name < b.name : a.order > b.order; });
    entries_.erase(std::unique(entries_.begin(), entries_.end(),
                               [](const entry& a, const entry& b) { return a.name == b.name; }),
                   entries_.end());
  }

  /// \errors errc::symbol_not_found; errc::no_symbol_table when the VMCOREINFO had no
  /// SYMBOL() line (or the resolver is empty)
  /// lookup without the error message: nullopt where lookup fails.
  [[nodiscard]] std::optional<symbol> try_lookup(std::string_view name) const noexcept {
    if (const auto* e = find(name)) return symbol{kvaddr{e->value}, nlist_type::data | nlist_type::ext};
    if (name.size() > 1 && name[0] == '_')
      if (const auto* e = find(name.substr(1))) return symbol{kvaddr{e->value}, nlist_type::data | nlist_type::ext};
    return std::nullopt;
  }

  [[nodiscard]] result<symbol> lookup(std::string_view name) const {
    if (entries_.empty())
      return detail::fail(errc::no_symbol_table, "VMCOREINFO: cannot look up \"%.*s\": there are no SYMBOL() lines",
                          static_cast<int>(name.size()), name.data());
    if (const auto* e = find(name)) return symbol{kvaddr{e->value}, nlist_type::data | nlist_type::ext};
    if (name.size() > 1 && name[0] == '_')
      if (const auto* e = find(name.substr(1))) return symbol{kvaddr{e->value}, nlist_type::data | nlist_type::ext};
    return detail::fail(errc::symbol_not_found, "VMCOREINFO: no SYMBOL(%.*s) line", static_cast<int>(name.size()),
                        name.data());
  }

  /// The number of distinct names.
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

  /// Calls f(name, value, n_type) for every symbol, in name order.
  template <class F>
  void for_each(F&& f) const {
    for (const auto& e : entries_) f(std::string_view(e.name), kvaddr{e.value}, std::uint8_t{nlist_type::data | nlist_type::ext});
  }

 private:
  struct entry {
    std::string name;
    std::uint64_t value;
    std::uint32_t order;  // line order in the VMCOREINFO
  };

  const entry* find(std::string_view name) const noexcept {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                               [](const entry& e, std::string_view n) { return std::string_view(e.name) < n; });
    return it != entries_.end() && it->name == name ? &*it : nullptr;
  }

  std::vector<entry> entries_;
};
static_assert(symbol_resolver<vmcoreinfo_symbols>);

}  // namespace kvmxx::inline KVMXX_ABI::resolver

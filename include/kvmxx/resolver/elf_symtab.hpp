// SPDX-License-Identifier: BSD-2-Clause
//
// Symbols from the kernel ELF file's .symtab, ELF32 and ELF64, either byte order, on any
// host — what libc's __fdnlist gives libkvm for native kernels only
// (specs/freebsd-libkvm.md §1.8).
//
// Name matching follows nlist(3): a requested "_foo" matches the ELF symbol "foo" or
// "_foo"; "foo" matches only "foo". Where libc takes whichever comes first in the table,
// kvmxx prefers the exact name, then a global over a local, then table order — so a local
// static that shares a global's name never shadows it.
//
// Not validated: whether values make sense for the kernel (they are taken as they are).
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/detail/byte_order.hpp>
#include <kvmxx/detail/checked.hpp>
#include <kvmxx/detail/elf_reader.hpp>
#include <kvmxx/detail/mmap.hpp>
#include <kvmxx/format/elf.hpp>

#include <algorithm>
#include <optional>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvmxx::inline KVMXX_ABI::resolver {

/// \code
///   auto syms = kvmxx::resolver::elf_symtab::open("/boot/kernel/kernel");
///   if (syms) if (auto s = syms.value().lookup("_hz")) std::printf("%llx\n", (unsigned long long)kvmxx::to_integer(s.value().value));
/// \endcode
/// Immutable after open; lookups are safe from many threads. An empty elf_symtab (default
/// constructed, or from a stripped kernel) answers errc::no_symbol_table.
class elf_symtab {
 public:
  elf_symtab() = default;

  /// Maps the kernel file and indexes its .symtab.
  /// \errors system errors of open/mmap, errc::not_a_kernel (not ELF), errc::truncated and
  /// errc::corrupt for section tables or symbol tables that do not fit the file.
  [[nodiscard]] static result<elf_symtab> open(const char* path) {
    KVMXX_TRY(image, detail::file_image::open(path));
    return parse(std::move(image));
  }
  /// Indexes bytes the caller keeps alive as long as the resolver.
  [[nodiscard]] static result<elf_symtab> from_bytes(std::span<const std::byte> bytes, std::string name = "<memory>") {
    return parse(detail::file_image::borrow(bytes, std::move(name)));
  }

  /// lookup without the error message: nullopt where lookup fails.
  [[nodiscard]] std::optional<symbol> try_lookup(std::string_view name) const noexcept {
    if (!image_ || entries_.empty()) return std::nullopt;
    if (const auto* e = find(name)) return symbol{kvaddr{e->value}, e->type};
    if (name.size() > 1 && name[0] == '_')
      if (const auto* e = find(name.substr(1))) return symbol{kvaddr{e->value}, e->type};
    return std::nullopt;
  }

  [[nodiscard]] result<symbol> lookup(std::string_view name) const {
    if (!image_)
      return detail::fail(errc::no_symbol_table, "cannot look up \"%.*s\": no kernel file was given for symbols",
                          static_cast<int>(name.size()), name.data());
    if (entries_.empty())
      return detail::fail(errc::no_symbol_table, "%s: cannot look up \"%.*s\": the kernel has no .symtab (stripped?)",
                          image_->path(), static_cast<int>(name.size()), name.data());
    if (const auto* e = find(name)) return symbol{kvaddr{e->value}, e->type};
    if (name.size() > 1 && name[0] == '_')
      if (const auto* e = find(name.substr(1))) return symbol{kvaddr{e->value}, e->type};
    return detail::fail(errc::symbol_not_found, "%s: symbol \"%.*s\" not found", image_->path(),
                        static_cast<int>(name.size()), name.data());
  }

  /// The number of named, defined symbols indexed.
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

  /// Calls f(name, value, n_type) for every indexed symbol, in name order.
  template <class F>
  void for_each(F&& f) const {
    for (const auto& e : entries_) f(e.name, kvaddr{e.value}, e.type);
  }

 private:
  struct entry {
    std::string_view name;  // into the mapped string table
    std::uint64_t value;
    std::uint32_t order;    // preference among equal names: global first, then table order
    std::uint8_t type;      // nlist n_type
  };

  const entry* find(std::string_view name) const noexcept {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                               [](const entry& e, std::string_view n) { return e.name < n; });
    return it != entries_.end() && it->name == name ? &*it : nullptr;
  }

  // n_type of a symbol, as libc's nlist derives it (§1.8).
  template <class Fl>
  static std::uint8_t n_type_of(const detail::elf_sections<Fl>& secs, unsigned char info, std::uint16_t shndx) {
    namespace elf = format::elf;
    const unsigned bind = info >> 4, stt = info & 0xf;
    std::uint8_t t = nlist_type::undf;
    if (shndx == elf::shn_abs) {
      t = stt == elf::stt_file ? nlist_type::fn : nlist_type::abs;
    } else if (shndx != elf::shn_undef && shndx != elf::shn_common && shndx < elf::shn_loreserve &&
               shndx < secs.count()) {
      const auto s = secs.at(shndx);
      if (s.sh_type == elf::sht_nobits) t = nlist_type::bss;
      else if (s.sh_type == elf::sht_progbits) t = (s.sh_flags & elf::shf_write) ? nlist_type::data : nlist_type::text;
      // other section types (INIT_ARRAY, NOTE, …): N_UNDF, as libc's nlist does
    }
    if (bind == elf::stb_global || bind == elf::stb_weak) t |= nlist_type::ext;
    return t;
  }

  template <class Fl>
  result<void> index(Fl, std::span<const std::byte> bytes, const char* path) {
    namespace elf = format::elf;
    using sym_t = elf::sym<Fl>;
    KVMXX_TRY(secs, detail::elf_sections<Fl>::read(bytes, path));
    for (std::uint64_t i = 0; i < secs.count(); ++i) {
      const auto sh = secs.at(i);
      if (sh.sh_type != elf::sht_symtab) continue;
      if (sh.sh_entsize != sizeof(sym_t))
        return detail::fail(errc::corrupt, "%s: .symtab entry size is %llu, expected %zu", path,
                            static_cast<unsigned long long>(sh.sh_entsize), sizeof(sym_t));
      const std::uint32_t link = sh.sh_link;
      if (link >= secs.count() || secs.at(link).sh_type != elf::sht_strtab)
        return detail::fail(errc::corrupt, "%s: .symtab links to section %u, which is not a string table", path, link);
      KVMXX_TRY(syms, secs.contents(i, ".symtab"));
      KVMXX_TRY(strs, secs.contents(link, ".strtab"));
      const std::size_t n = syms.size() / sizeof(sym_t);
      entries_.reserve(n);
      for (std::size_t k = 1; k < n; ++k) {  // entry 0 is the null symbol
        const auto s = detail::load_struct<sym_t>(syms.data() + k * sizeof(sym_t));
        const std::uint16_t shndx = s.st_shndx;
        if (shndx == elf::shn_undef) continue;  // undefined: nothing to resolve to
        const auto name = detail::string_at(strs, s.st_name);
        if (!name)
          return detail::fail(errc::corrupt, "%s: symbol %zu has a name offset (0x%x) outside .strtab (0x%zx bytes)",
                              path, k, unsigned{s.st_name}, strs.size());
        if (name->empty()) continue;
        const unsigned bind = s.st_info >> 4;
        const std::uint32_t order = static_cast<std::uint32_t>(k) | (bind == elf::stb_local ? 0x80000000u : 0u);
        entries_.push_back({*name, static_cast<std::uint64_t>(s.st_value), order, n_type_of(secs, s.st_info, shndx)});
      }
      break;  // one SHT_SYMTAB per file
    }
    std::sort(entries_.begin(), entries_.end(), [](const entry& a, const entry& b) {
      return a.name != b.name ? a.name < b.name : a.order < b.order;
    });
    return success();
  }

  static result<elf_symtab> parse(detail::file_image image) {
    const auto bytes = image.bytes();
    const char* path = image.path();
    KVMXX_TRY(id, detail::read_elf_ident(bytes, path, errc::not_a_kernel));
    elf_symtab t;
    auto r = detail::with_elf_flavour(id, [&](auto fl) -> result<void> { return t.index(fl, bytes, path); });
    if (!r) return r.error();
    t.image_ = std::make_unique<detail::file_image>(std::move(image));
    return t;
  }

  std::unique_ptr<detail::file_image> image_;  // keeps the names' bytes mapped; stable across moves
  std::vector<entry> entries_;
};
static_assert(symbol_resolver<elf_symtab>);
static_assert(kernel_file_resolver<elf_symtab>);

}  // namespace kvmxx::inline KVMXX_ABI::resolver

// SPDX-License-Identifier: BSD-2-Clause
//
// Several symbol sources tried in order — for a Linux dump: System.map or kallsyms
// (moved by KERNELOFFSET) first, VMCOREINFO's SYMBOL() lines second, so that names the
// one lacks (swapper_pg_dir is a macro on x86_64 and never in kallsyms; the kallsyms
// tables) come from the other (specs/linux-dumps.md §4, tests/real/README.md).
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/resolver/none.hpp>

#include <concepts>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

namespace kvmxx::inline KVMXX_ABI::resolver {

/// \code
///   using linux_symbols = kvmxx::resolver::chain<kvmxx::resolver::displaced<kvmxx::resolver::symbol_file>,
///                                                kvmxx::resolver::vmcoreinfo_symbols>;
///   linux_symbols syms(kvmxx::resolver::displaced(std::move(map), kerneloffset),
///                      kvmxx::resolver::vmcoreinfo_symbols(info));
///   auto pgd = syms.lookup("swapper_pg_dir");        // not in kallsyms: from VMCOREINFO
///   auto& map_again = syms.get<0>().inner();
/// \endcode
/// lookup() returns the first source's hit, in template-argument order; no source's
/// name rules are changed. When every source fails, the error is errc::no_symbol_table
/// if every source failed with errc::no_symbol_table (nothing to search anywhere), else
/// errc::symbol_not_found — also when a source failed with some other code, which the
/// message then shows. The message names the symbol and gives each source's own
/// message, in order ("[1] …; [2] …").
///
/// Like every kvmxx call, a lookup that succeeds leaves the calling thread's last error
/// message as it was, even when an earlier source failed on the way.
///
/// Lookups are safe from many threads when every source's are. Movable when every
/// source is; copyable when every source is.
template <class... R>
class chain {
  static_assert((symbol_resolver<R> && ...), "kvmxx: every source of chain<R...> must model kvmxx::symbol_resolver");

 public:
  /// Default-constructed sources (only when all are default-constructible).
  chain() requires(std::default_initializable<R> && ...) : sources_() {}
  explicit chain(R... sources) requires(sizeof...(R) > 0) : sources_(std::move(sources)...) {}

  /// \errors errc::symbol_not_found, errc::no_symbol_table (see the class comment)
  [[nodiscard]] result<symbol> lookup(std::string_view name) const {
    // First quietly, when every source can answer so: no messages formatted for sources
    // that miss before one that hits. The messages are made only when all of them miss.
    if constexpr ((quiet_symbol_resolver<R> && ...)) {
      if (auto s = try_lookup(name)) return *s;
    }
    record_guard guard;
    std::optional<symbol> hit;
    std::string tried;
    bool any_table = false;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (void)(try_source<I>(name, hit, tried, any_table) || ...);
    }(std::index_sequence_for<R...>{});
    if (hit) return *hit;  // the guard puts the caller's last error back
    guard.dismiss();
    if constexpr (sizeof...(R) == 0) {
      return detail::fail(errc::no_symbol_table, "cannot look up \"%.*s\": the resolver chain has no sources",
                          static_cast<int>(name.size()), name.data());
    } else {
      if (any_table)
        return detail::fail(errc::symbol_not_found, "symbol \"%.*s\" not found in any of %zu sources: %s",
                            static_cast<int>(name.size()), name.data(), sizeof...(R), tried.c_str());
      return detail::fail(errc::no_symbol_table,
                          "cannot look up \"%.*s\": none of the %zu sources has a symbol table: %s",
                          static_cast<int>(name.size()), name.data(), sizeof...(R), tried.c_str());
    }
  }

  /// lookup without the error message: the first source's hit (every source must be a
  /// quiet_symbol_resolver).
  [[nodiscard]] std::optional<symbol> try_lookup(std::string_view name) const
    requires(quiet_symbol_resolver<R> && ...)
  {
    std::optional<symbol> hit;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (void)((hit = std::get<I>(sources_).try_lookup(name)).has_value() || ...);
    }(std::index_sequence_for<R...>{});
    return hit;
  }

  /// The I-th source.
  template <std::size_t I>
  [[nodiscard]] const auto& get() const noexcept {
    return std::get<I>(sources_);
  }
  template <std::size_t I>
  [[nodiscard]] auto& get() noexcept {
    return std::get<I>(sources_);
  }

  /// How many sources are chained.
  [[nodiscard]] static constexpr std::size_t size() noexcept { return sizeof...(R); }

 private:
  // Keeps the calling thread's last error aside while the sources run (so that each
  // source's message is read back without a stale one in the way) and puts it back
  // unless the chain itself fails.
  class record_guard {
   public:
    record_guard() noexcept : saved_(std::move(detail::last_error_record())) { clear(); }
    record_guard(const record_guard&) = delete;
    record_guard& operator=(const record_guard&) = delete;
    ~record_guard() {
      if (restore_) detail::last_error_record() = std::move(saved_);
    }
    void dismiss() noexcept { restore_ = false; }
    static void clear() noexcept {
      auto& rec = detail::last_error_record();
      rec.code = std::error_code();
      rec.message.clear();
    }

   private:
    detail::error_record saved_;
    bool restore_ = true;
  };

  // Tries source I; true (stop) on a hit.
  template <std::size_t I>
  bool try_source(std::string_view name, std::optional<symbol>& hit, std::string& tried, bool& any_table) const {
    record_guard::clear();
    auto s = std::get<I>(sources_).lookup(name);
    if (s) {
      hit = s.value();
      return true;
    }
    if (s.error() != errc::no_symbol_table) any_table = true;
    if (!tried.empty()) tried += "; ";
    tried += '[';
    tried += std::to_string(I + 1);
    tried += "] ";
    tried += describe(s.error());
    return false;
  }

  std::tuple<R...> sources_;
};

static_assert(symbol_resolver<chain<>>);
static_assert(symbol_resolver<chain<none>>);
static_assert(symbol_resolver<chain<none, none>>);

}  // namespace kvmxx::inline KVMXX_ABI::resolver

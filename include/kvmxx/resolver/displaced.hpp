// SPDX-License-Identifier: BSD-2-Clause
//
// A resolver whose addresses are another resolver's plus a fixed displacement: the link-
// time addresses of a System.map or vmlinux moved to where a KASLR kernel ran. On Linux
// the displacement is VMCOREINFO's KERNELOFFSET: runtime = link-time + KERNELOFFSET
// (specs/linux-dumps.md §11); FreeBSD's kvm_kerndisp is the same idea.
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/resolver/none.hpp>

#include <concepts>
#include <optional>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>

namespace kvmxx::inline KVMXX_ABI::resolver {

/// \code
///   auto info = kvmxx::linux_::vmcoreinfo::parse(note_text);
///   auto map = kvmxx::resolver::symbol_file::open("System.map-6.1.0-56-amd64");
///   if (!map) return 1;
///   kvmxx::resolver::displaced moved(std::move(map).value(),
///                                    static_cast<std::int64_t>(info.kernel_offset().value_or(0)));
///   auto s = moved.lookup("init_uts_ns");   // the runtime address
/// \endcode
/// Every address the wrapped resolver finds gets the displacement added, modulo 2^64 (a
/// negative displacement moves down); n_type is passed on unchanged. Failures are the
/// wrapped resolver's, unchanged. All symbols move, N_ABS ones included: KASLR does not
/// move absolute (per-CPU) symbols, so look those up through inner().
///
/// Lookups are safe from many threads; set_displacement() is not, against them.
template <class R>
class displaced {
  static_assert(symbol_resolver<R>, "kvmxx: displaced<R> needs R to model kvmxx::symbol_resolver");

 public:
  /// A wrapped R{} and displacement 0 (only when R is default-constructible).
  displaced() requires std::default_initializable<R> : inner_() {}
  explicit displaced(R inner, std::int64_t displacement = 0) noexcept(std::is_nothrow_move_constructible_v<R>)
      : inner_(std::move(inner)), displacement_(displacement) {}

  /// \errors those of R::lookup
  [[nodiscard]] result<symbol> lookup(std::string_view name) const {
    KVMXX_TRY(s, inner_.lookup(name));
    return symbol{s.value + static_cast<std::uint64_t>(displacement_), s.type};
  }

  /// lookup without the error message (when R can answer so): nullopt where lookup fails.
  [[nodiscard]] std::optional<symbol> try_lookup(std::string_view name) const
    requires quiet_symbol_resolver<R>
  {
    auto s = inner_.try_lookup(name);
    if (!s) return std::nullopt;
    return symbol{s->value + static_cast<std::uint64_t>(displacement_), s->type};
  }

  /// Added to every address found (runtime minus link-time).
  [[nodiscard]] std::int64_t displacement() const noexcept { return displacement_; }
  void set_displacement(std::int64_t displacement) noexcept { displacement_ = displacement; }

  /// The wrapped resolver (its addresses are not displaced).
  [[nodiscard]] const R& inner() const noexcept { return inner_; }
  [[nodiscard]] R& inner() noexcept { return inner_; }

 private:
  R inner_;
  std::int64_t displacement_ = 0;
};

static_assert(symbol_resolver<displaced<none>>);

}  // namespace kvmxx::inline KVMXX_ABI::resolver

// SPDX-License-Identifier: BSD-2-Clause
//
// A resolver made of a user callable — the kvm_open2 case (specs/freebsd-libkvm.md §1.8):
// libkvm's `int (*)(const char *name, kvaddr_t *addr)` returning 0 when found fits, and
// so does any callable taking std::string_view and returning std::optional<kvaddr>.
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace kvmxx::inline KVMXX_ABI::resolver {

/// \code
///   int my_lookup(const char* name, std::uint64_t* addr);   // libkvm's resolver signature
///   kvmxx::resolver::callback r{&my_lookup};
///   kvmxx::resolver::callback r2{[&](std::string_view n) -> std::optional<kvmxx::kvaddr> { … }};
/// \endcode
/// The name is passed exactly as given (a leading '_' included), as libkvm does. Found
/// symbols get n_type N_DATA|N_EXT (7), libkvm's value for resolver hits.
template <class F>
class callback {
 public:
  explicit callback(F f) noexcept(std::is_nothrow_move_constructible_v<F>) : f_(std::move(f)) {}
  callback(callback&&) noexcept(std::is_nothrow_move_constructible_v<F>) = default;
  callback(const callback&) = default;
  // Capturing lambdas cannot be assigned; re-emplacing makes every callable assignable,
  // so callback<F> stays std::movable (the symbol_resolver contract).
  callback& operator=(callback&& o) noexcept(std::is_nothrow_move_constructible_v<F>) {
    if (this != &o) {
      f_.reset();
      if (o.f_) f_.emplace(std::move(*o.f_));
    }
    return *this;
  }
  callback& operator=(const callback& o) {
    if (this != &o) {
      f_.reset();
      if (o.f_) f_.emplace(*o.f_);
    }
    return *this;
  }

  [[nodiscard]] result<symbol> lookup(std::string_view name) const {
    if (!f_) return detail::fail(errc::no_symbol_table, "the resolver callback was moved away");
    const F& fn = *f_;
    std::optional<kvaddr> addr;
    if constexpr (std::is_invocable_r_v<int, const F&, const char*, std::uint64_t*>) {
      const std::string z(name);  // the C signature needs a terminated string
      std::uint64_t value = 0;
      if (fn(z.c_str(), &value) == 0) addr = kvaddr{value};
    } else {
      static_assert(std::is_invocable_r_v<std::optional<kvaddr>, const F&, std::string_view>,
                    "kvmxx: a resolver callback takes (const char*, uint64_t*) -> int or "
                    "(std::string_view) -> std::optional<kvaddr>");
      addr = fn(name);
    }
    if (!addr)
      return detail::fail(errc::symbol_not_found, "symbol \"%.*s\" not found by the resolver callback",
                          static_cast<int>(name.size()), name.data());
    return symbol{*addr, nlist_type::data | nlist_type::ext};
  }

 private:
  std::optional<F> f_;
};

/// libkvm's exact resolver type.
using c_callback = callback<int (*)(const char*, std::uint64_t*)>;
static_assert(symbol_resolver<c_callback>);
// Capturing lambdas (state) must make resolvers too.
static_assert(symbol_resolver<callback<decltype([n = 1](std::string_view) -> std::optional<kvaddr> {
                return kvaddr{static_cast<std::uint64_t>(n)};
              })>>);

}  // namespace kvmxx::inline KVMXX_ABI::resolver

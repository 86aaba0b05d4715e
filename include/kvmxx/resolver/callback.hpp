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

  [[nodiscard]] result<symbol> lookup(std::string_view name) const {
    std::optional<kvaddr> addr;
    if constexpr (std::is_invocable_r_v<int, const F&, const char*, std::uint64_t*>) {
      const std::string z(name);  // the C signature needs a terminated string
      std::uint64_t value = 0;
      if (f_(z.c_str(), &value) == 0) addr = kvaddr{value};
    } else {
      static_assert(std::is_invocable_r_v<std::optional<kvaddr>, const F&, std::string_view>,
                    "kvmxx: a resolver callback takes (const char*, uint64_t*) -> int or "
                    "(std::string_view) -> std::optional<kvaddr>");
      addr = f_(name);
    }
    if (!addr)
      return detail::fail(errc::symbol_not_found, "symbol \"%.*s\" not found by the resolver callback",
                          static_cast<int>(name.size()), name.data());
    return symbol{*addr, nlist_type::data | nlist_type::ext};
  }

 private:
  F f_;
};

/// libkvm's exact resolver type.
using c_callback = callback<int (*)(const char*, std::uint64_t*)>;
static_assert(symbol_resolver<c_callback>);

}  // namespace kvmxx::inline KVMXX_ABI::resolver

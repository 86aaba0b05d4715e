// SPDX-License-Identifier: BSD-2-Clause
//
// The resolver of a handle that has no symbols: every lookup fails.
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/error.hpp>

#include <optional>
#include <string_view>

namespace kvmxx::inline KVMXX_ABI::resolver {

/// Knows no symbol; lookups fail with errc::no_symbol_table.
struct none {
  [[nodiscard]] result<symbol> lookup(std::string_view name) const {
    return detail::fail(errc::no_symbol_table, "cannot look up \"%.*s\": no symbol table (no kernel file given)",
                        static_cast<int>(name.size()), name.data());
  }
  [[nodiscard]] std::optional<symbol> try_lookup(std::string_view) const noexcept { return std::nullopt; }
};
static_assert(quiet_symbol_resolver<none>);

}  // namespace kvmxx::inline KVMXX_ABI::resolver

// SPDX-License-Identifier: BSD-2-Clause
//
// The library version, as numbers and as a string.
#pragma once
#include <kvmxx/core/config.hpp>

namespace kvmxx::inline KVMXX_ABI {
/// "0.1.0": the version of the headers this translation unit was compiled with.
inline constexpr const char* version_string = "0.1.0";
static_assert(KVMXX_VERSION_MAJOR == 0 && KVMXX_VERSION_MINOR == 1 && KVMXX_VERSION_PATCH == 0,
              "version_string must follow the KVMXX_VERSION_* macros");
}  // namespace kvmxx::inline KVMXX_ABI

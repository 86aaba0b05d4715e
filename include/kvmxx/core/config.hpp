// SPDX-License-Identifier: BSD-2-Clause
//
// Compiler checks, version and the versioned inline ABI namespace (STYLE.md §5).
#pragma once

#define KVMXX_VERSION_MAJOR 0
#define KVMXX_VERSION_MINOR 1
#define KVMXX_VERSION_PATCH 0

// Two vendored copies of different versions in one translation unit would clash on
// macros even though their namespaces differ: refuse that loudly.
#if defined(KVMXX_CONFIG_SEEN_VERSION) && KVMXX_CONFIG_SEEN_VERSION != 100
#error "kvmxx: two different kvmxx versions are included in one translation unit"
#endif
#define KVMXX_CONFIG_SEEN_VERSION 100

#if __cplusplus < 202002L && (!defined(_MSVC_LANG) || _MSVC_LANG < 202002L)
#error "kvmxx needs C++20"
#endif

/// Every kvmxx symbol lives in kvmxx::KVMXX_ABI (mangles as kvmxx::v0_1::…), so two
/// vendored versions can meet in one program. Bumped on layout or semantic change.
#define KVMXX_ABI v0_1

#if defined(__GNUC__) || defined(__clang__)
#define KVMXX_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#define KVMXX_LIKELY(x) __builtin_expect(!!(x), 1)
#define KVMXX_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define KVMXX_NOINLINE __attribute__((noinline))
#else
#define KVMXX_NOINLINE
#define KVMXX_PRINTF(fmt_index, first_arg)
#define KVMXX_LIKELY(x) (x)
#define KVMXX_UNLIKELY(x) (x)
#endif

// SPDX-License-Identifier: BSD-2-Clause
//
// Forward declarations and the named handle types, for headers that only mention them.
#pragma once
#include <kvmxx/core/config.hpp>

#include <cstdint>

namespace kvmxx::inline KVMXX_ABI {
enum class kvaddr : std::uint64_t;
enum class physaddr : std::uint64_t;
enum class errc : int;
template <class Backend, class Arch, class Resolver>
class kernel_memory;
class any_kernel_memory;
namespace backend {
class minidump;
class elf_core;
class kcore;
class live_physical;
class live_virtual;
class null;
}  // namespace backend
namespace arch {
struct amd64;
struct i386;
struct aarch64;
}
namespace resolver {
struct none;
class elf_symtab;
template <class F>
class callback;
class symbol_file;
class vmcoreinfo_symbols;
class kallsyms;
template <class R>
class displaced;
template <class... R>
class chain;
}  // namespace resolver

/// A FreeBSD amd64 minidump with symbols from the kernel's .symtab.
using freebsd_amd64_minidump = kernel_memory<backend::minidump, arch::amd64, resolver::elf_symtab>;
}  // namespace kvmxx::inline KVMXX_ABI

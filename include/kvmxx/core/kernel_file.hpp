// SPDX-License-Identifier: BSD-2-Clause
//
// The kernel ELF probe: which machine a kernel file was built for, decided the way
// libkvm's backends decide it (class, byte order, e_machine, e_type;
// specs/freebsd-libkvm.md §1.4 step 10, §1.6 `_kvm_probe_elf_kernel`), so a kernel and a
// core of different architectures make a clear error instead of garbage.
#pragma once
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/detail/elf_reader.hpp>
#include <kvmxx/detail/fd.hpp>
#include <kvmxx/format/elf.hpp>

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>

namespace kvmxx::inline KVMXX_ABI {

/// What the kernel file's ELF header says.
struct kernel_file_info {
  kvmxx::machine arch = machine::unknown;
  std::uint8_t elf_class = 0;  ///< 32 or 64
  std::endian byte_order = std::endian::little;
  std::uint16_t e_type = 0;
  std::uint16_t e_machine = 0;
};

/// Decides the machine of a kernel image from its first bytes (at least the ELF header).
/// \errors errc::not_a_kernel (not ELF, an unknown class or data encoding, or a
/// class/e_machine/e_type combination no kernel has), errc::truncated
[[nodiscard]] inline result<kernel_file_info> probe_kernel_image(std::span<const std::byte> head, const char* path) {
  namespace elf = format::elf;
  KVMXX_TRY(id, detail::read_elf_ident(head, path, errc::not_a_kernel));
  kernel_file_info k;
  k.elf_class = id.elf_class == elf::elfclass64 ? 64 : 32;
  k.byte_order = id.data == elf::elfdata2lsb ? std::endian::little : std::endian::big;
  k.e_type = id.type;
  k.e_machine = id.machine;
  const bool is64 = k.elf_class == 64;
  const bool exec = id.type == elf::et_exec;
  switch (id.machine) {
    case elf::em_x86_64: k.arch = is64 && exec ? machine::amd64 : machine::unknown; break;
    case elf::em_386: k.arch = !is64 && exec ? machine::i386 : machine::unknown; break;
    case elf::em_aarch64: k.arch = is64 && exec ? machine::aarch64 : machine::unknown; break;
    case elf::em_arm: k.arch = !is64 && exec ? machine::arm : machine::unknown; break;
    case elf::em_riscv: k.arch = is64 && exec ? machine::riscv64 : machine::unknown; break;
    case elf::em_ppc64:  // powerpc kernels are ET_DYN (§1.6)
      k.arch = is64 && id.type == elf::et_dyn
                   ? (k.byte_order == std::endian::big ? machine::powerpc64 : machine::powerpc64le)
                   : machine::unknown;
      break;
    case elf::em_mips: k.arch = machine::mips; break;  // libkvm checks no e_type for mips
    default: break;
  }
  if (k.arch == machine::unknown)
    return detail::fail(errc::not_a_kernel, "%s: ELF%u %s-endian file with e_machine %u and e_type %u is not a kernel "
                        "kvmxx knows", path, unsigned{k.elf_class}, k.byte_order == std::endian::big ? "big" : "little",
                        unsigned{id.machine}, unsigned{id.type});
  return k;
}

/// Reads the kernel file's header and probes it.
/// \errors the system errors of open/pread, and those of probe_kernel_image
[[nodiscard]] inline result<kernel_file_info> probe_kernel_file(const char* path) {
  KVMXX_TRY(fd, detail::open_file(path, O_RDONLY));
  KVMXX_TRY(st, detail::stat_fd(fd, path));
  if (S_ISDIR(st.st_mode)) return detail::fail(errc::invalid_argument, "%s: is a directory", path);
  std::array<std::byte, 64> head{};
  KVMXX_TRY(n, detail::pread_full(fd.get(), head.data(), head.size(), 0, path));
  if (n == 0) return detail::fail(errc::not_a_kernel, "%s: empty file", path);
  return probe_kernel_image(std::span<const std::byte>(head.data(), n), path);
}

}  // namespace kvmxx::inline KVMXX_ABI

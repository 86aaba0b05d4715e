// SPDX-License-Identifier: BSD-2-Clause
//
// The running Linux x86_64 kernel through /dev/mem (physical memory, offset = physical
// address), translated with the kernel's own page tables: specs/linux-dumps.md §4
// (VMCOREINFO; live: /sys/kernel/vmcoreinfo gives "<paddr hex> <size hex>" of the whole
// note), §10 (x86_64 page-table root: init_top_pgt − __START_KERNEL_map + phys_base;
// depth from NUMBER(pgtable_l5_enabled)), §11 (KASLR: KERNELOFFSET).
//
// Linux restricts /dev/mem: with CONFIG_STRICT_DEVMEM (Debian's default) reads and writes
// of System RAM above 1 MiB fail with EPERM (RAM below 1 MiB reads as zeros), and under
// kernel lockdown opening it fails with EPERM. The VMCOREINFO note and the page tables are
// in RAM, so on such a kernel opening fails at the first read, with a message that says
// why; kernels with CONFIG_STRICT_DEVMEM=n (or booted with iomem=relaxed and
// CONFIG_IO_STRICT_DEVMEM=n, which still leaves RAM restricted) are what this is for.
// Writes go through the same translation, with the device opened read-write.
#pragma once
#include <kvmxx/arch/amd64.hpp>
#include <kvmxx/backend/live.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/kernel_memory.hpp>
#include <kvmxx/core/open.hpp>
#include <kvmxx/detail/byte_order.hpp>
#include <kvmxx/detail/fd.hpp>
#include <kvmxx/os/linux/vmcoreinfo.hpp>
#include <kvmxx/os/linux/vmcoreinfo_note.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace kvmxx::inline KVMXX_ABI {

/// Where the Linux /dev/mem handle reads from. Any files work (tests use a raw physical
/// image and a text file).
struct linux_devmem_options {
  const char* device = "/dev/mem";
  const char* vmcoreinfo_sysfs = "/sys/kernel/vmcoreinfo";
  access mode = access::read_only;
};

/// The running Linux x86_64 kernel through /dev/mem.
using linux_live_devmem = kernel_memory<backend::live_physical, arch::amd64, linux_kernel_symbols>;

namespace linux_ {

/// The facts the page walk needs, from VMCOREINFO (specs/linux-dumps.md §10).
struct page_table_facts {
  physaddr root{};
  unsigned levels = 4;
};

/// init_top_pgt (or swapper_pg_dir / init_level4_pgt) − __START_KERNEL_map + phys_base.
/// \errors errc::not_supported when VMCOREINFO lacks the symbol or phys_base
[[nodiscard]] inline result<page_table_facts> x86_64_page_table_facts(const vmcoreinfo& vi, const char* where) {
  constexpr std::uint64_t start_kernel_map = 0xffffffff80000000;
  auto sym = vi.symbol("init_top_pgt");
  if (!sym) sym = vi.symbol("swapper_pg_dir");
  if (!sym) sym = vi.symbol("init_level4_pgt");
  const auto phys_base = vi.number("phys_base");
  if (!sym || !phys_base || *sym < start_kernel_map)
    return detail::fail(errc::not_supported, "%s: VMCOREINFO has no SYMBOL(init_top_pgt) and NUMBER(phys_base): the "
                        "page-table root is unknown", where);
  page_table_facts f;
  f.root = physaddr{*sym - start_kernel_map + static_cast<std::uint64_t>(*phys_base)};
  if (auto l5 = vi.number("pgtable_l5_enabled")) f.levels = *l5 ? 5 : 4;
  return f;
}

}  // namespace linux_

/// Opens the running Linux kernel through /dev/mem: VMCOREINFO from the note that sysfs
/// locates, the page-table root from it, symbols from `kernel` (vmlinux or System.map;
/// may be nullptr: VMCOREINFO's symbols only) moved by KERNELOFFSET.
/// \errors system errors naming the device (EACCES/EPERM explained); those of
/// read_vmcoreinfo_note and x86_64_page_table_facts
[[nodiscard]] inline result<linux_live_devmem> open_linux_devmem(const char* kernel,
                                                                 const linux_devmem_options& o = {}) {
  live_options lo;
  lo.device = o.device;
  lo.mode = o.mode;
  lo.arch = machine::amd64;
  lo.os = os_kind::linux_;
  auto dev = backend::live_physical::open(lo);
  if (!dev) {
    if (dev.error() == std::errc::operation_not_permitted || dev.error() == std::errc::permission_denied)
      return detail::fail(dev.error(), "%s: %s: /dev/mem needs root (CAP_SYS_RAWIO) and is closed under kernel "
                          "lockdown", o.device, std::strerror(dev.error().value()));
    return dev.error();
  }
  KVMXX_TRY(vi, linux_::read_vmcoreinfo_note(dev.value(), o.vmcoreinfo_sysfs));
  KVMXX_TRY(pt, linux_::x86_64_page_table_facts(vi, o.vmcoreinfo_sysfs));
  // Reopen with the root: live_options is the backend's only input.
  lo.page_table_root = pt.root;
  lo.paging_levels = pt.levels;
  KVMXX_TRYV(dev.value().close());
  KVMXX_TRY(mem, backend::live_physical::open(lo));
  KVMXX_TRY(k, detail::load_linux_kernel_file(kernel, machine::amd64, o.device));
  const auto offset = static_cast<std::int64_t>(vi.kernel_offset().value_or(0));
  auto info = k.info;
  auto syms = detail::make_linux_symbols(std::move(k), offset, vi);
  return linux_live_devmem::adopt(std::move(mem), std::move(syms), info);
}

}  // namespace kvmxx::inline KVMXX_ABI

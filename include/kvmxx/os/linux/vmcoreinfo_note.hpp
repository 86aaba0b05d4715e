// SPDX-License-Identifier: BSD-2-Clause
//
// The live kernel's VMCOREINFO note, located by /sys/kernel/vmcoreinfo ("<paddr hex>
// <size hex>" of the whole ELF note: Nhdr, "VMCOREINFO\0" padded to 4, then the text) and
// read through any physical view (specs/linux-dumps.md §3 "Older kernels", §4).
#pragma once
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/detail/byte_order.hpp>
#include <kvmxx/detail/fd.hpp>
#include <kvmxx/os/linux/vmcoreinfo.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

namespace kvmxx::inline KVMXX_ABI::linux_ {

/// Reads "<paddr hex> <size hex>" from `sysfs` and the VMCOREINFO note there through `mem`
/// (Nhdr, "VMCOREINFO\0" padded to 4, then the text; specs/linux-dumps.md §3).
/// \errors system errors (EPERM from /dev/mem explained), errc::corrupt
template <class Backend>
[[nodiscard]] result<vmcoreinfo> read_vmcoreinfo_note(const Backend& mem, const char* sysfs) {
  KVMXX_TRY(fd, detail::open_file(sysfs, O_RDONLY));
  char buf[128] = {};
  KVMXX_TRY(n, detail::pread_full(fd.get(), buf, sizeof buf - 1, 0, sysfs));
  buf[n] = '\0';
  unsigned long long pa = 0, size = 0;
  if (std::sscanf(buf, "%llx %llx", &pa, &size) != 2)
    return detail::fail(errc::corrupt, "%s: expected \"<paddr hex> <size hex>\", found \"%.40s\"", sysfs, buf);
  if (size < 24 || size > (std::uint64_t{1} << 20))
    return detail::fail(errc::corrupt, "%s: VMCOREINFO note size 0x%llx is not between 24 bytes and 1 MiB", sysfs, size);
  std::vector<std::byte> note(static_cast<std::size_t>(size));
  auto got = mem.read_physical(physaddr{pa}, note);
  if (!got) {
    if (got.error() == std::errc::operation_not_permitted)
      return detail::fail(got.error(), "%s: reading the VMCOREINFO note at physical 0x%llx (from %s): %s: the kernel "
                          "refuses access to RAM (/dev/mem: CONFIG_STRICT_DEVMEM; or kernel lockdown)",
                          mem.path(), pa, sysfs, std::strerror(EPERM));
    return got.error();
  }
  if (got.value() != note.size())
    return detail::fail(errc::page_not_dumped, "%s: the VMCOREINFO note at physical 0x%llx (0x%llx bytes, from %s) is "
                        "not wholly readable", mem.path(), pa, size, sysfs);
  const std::uint32_t namesz = detail::load<std::uint32_t>(note.data());
  const std::uint32_t descsz = detail::load<std::uint32_t>(note.data() + 4);
  const std::uint64_t desc_off = 12 + ((std::uint64_t{namesz} + 3) & ~std::uint64_t{3});
  if (namesz != 11 || std::memcmp(note.data() + 12, "VMCOREINFO", 11) != 0 || desc_off + descsz > note.size())
    return detail::fail(errc::corrupt, "%s: physical 0x%llx (from %s) holds no VMCOREINFO note (name size %u, desc "
                        "size %u)", mem.path(), pa, sysfs, unsigned{namesz}, unsigned{descsz});
  return vmcoreinfo::parse(std::string_view(reinterpret_cast<const char*>(note.data() + desc_off), descsz));
}

}  // namespace kvmxx::inline KVMXX_ABI::linux_

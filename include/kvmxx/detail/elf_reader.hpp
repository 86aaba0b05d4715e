// SPDX-License-Identifier: BSD-2-Clause
//
// Bounds-checked reading of ELF headers and section tables from bytes, for both classes
// and byte orders; the class and order are looked up once and the rest is templated on
// format::elf::flavour. Used by the kernel probe and the .symtab resolver.
#pragma once
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/detail/byte_order.hpp>
#include <kvmxx/detail/checked.hpp>
#include <kvmxx/format/elf.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

namespace kvmxx::inline KVMXX_ABI::detail {

/// The e_ident and header fields everything else needs, decoded.
struct elf_ident {
  unsigned char elf_class = 0;  // ELFCLASS32 / ELFCLASS64
  unsigned char data = 0;       // ELFDATA2LSB / ELFDATA2MSB
  unsigned char osabi = 0;
  std::uint16_t type = 0;
  std::uint16_t machine = 0;
  std::uint32_t flags = 0;
};

/// Calls f(flavour<E, Is64>{}) for the flavour of the header's e_ident. The caller checked
/// the class and data bytes already (read_elf_ident).
template <class F>
decltype(auto) with_elf_flavour(const elf_ident& id, F&& f) {
  namespace elf = format::elf;
  if (id.elf_class == elf::elfclass64) {
    if (id.data == elf::elfdata2lsb) return f(elf::flavour<std::endian::little, true>{});
    return f(elf::flavour<std::endian::big, true>{});
  }
  if (id.data == elf::elfdata2lsb) return f(elf::flavour<std::endian::little, false>{});
  return f(elf::flavour<std::endian::big, false>{});
}

/// Checks the magic, class and data bytes and that the whole header is present.
/// \errors errc::not_a_kernel (what = "kernel") or errc::not_a_dump, errc::truncated
[[nodiscard]] inline result<elf_ident> read_elf_ident(std::span<const std::byte> bytes, const char* path,
                                                      errc not_elf = errc::not_a_kernel) {
  namespace elf = format::elf;
  if (bytes.size() < elf::ei_nident || std::memcmp(bytes.data(), elf::elfmag, 4) != 0)
    return fail(not_elf, "%s: not an ELF file", path);
  elf_ident id;
  id.elf_class = std::to_integer<unsigned char>(bytes[elf::ei_class]);
  id.data = std::to_integer<unsigned char>(bytes[elf::ei_data]);
  id.osabi = std::to_integer<unsigned char>(bytes[elf::ei_osabi]);
  if (id.elf_class != elf::elfclass32 && id.elf_class != elf::elfclass64)
    return fail(not_elf, "%s: unsupported ELF class %u", path, id.elf_class);
  if (id.data != elf::elfdata2lsb && id.data != elf::elfdata2msb)
    return fail(not_elf, "%s: unsupported ELF data encoding %u", path, id.data);  // libkvm's wording, §1.4
  const std::size_t need = id.elf_class == elf::elfclass64 ? 64 : 52;
  if (bytes.size() < need)
    return fail(errc::truncated, "%s: ELF header (0x%zx bytes) runs past end of file (size 0x%zx)", path, need,
                bytes.size());
  with_elf_flavour(id, [&](auto fl) {
    const auto h = load_struct<elf::ehdr<decltype(fl)>>(bytes.data());
    id.type = h.e_type;
    id.machine = h.e_machine;
    id.flags = h.e_flags;
  });
  return id;
}

/// A section table read from bytes, with the bounds checks done once.
template <class Fl>
class elf_sections {
 public:
  using shdr_t = format::elf::shdr<Fl>;

  [[nodiscard]] static result<elf_sections> read(std::span<const std::byte> bytes, const char* path) {
    namespace elf = format::elf;
    const auto h = load_struct<elf::ehdr<Fl>>(bytes.data());
    elf_sections s;
    s.bytes_ = bytes;
    s.path_ = path;
    const std::uint64_t shoff = h.e_shoff;
    if (shoff == 0) return s;  // no sections at all
    if (h.e_shentsize != sizeof(shdr_t))
      return fail(errc::corrupt, "%s: e_shentsize is %u, expected %zu", path, unsigned{h.e_shentsize},
                  sizeof(shdr_t));
    if (!fits(shoff, sizeof(shdr_t), bytes.size()))
      return fail(errc::truncated, "%s: section header table at offset 0x%llx runs past end of file (size 0x%zx)",
                  path, static_cast<unsigned long long>(shoff), bytes.size());
    std::uint64_t count = h.e_shnum;
    if (count == 0) count = load_struct<shdr_t>(bytes.data() + shoff).sh_size;  // extended numbering
    const auto table = checked_mul(count, sizeof(shdr_t));
    if (!table || !fits(shoff, *table, bytes.size()))
      return fail(errc::truncated,
                  "%s: section header table (%llu entries at offset 0x%llx) runs past end of file (size 0x%zx)", path,
                  static_cast<unsigned long long>(count), static_cast<unsigned long long>(shoff), bytes.size());
    s.shoff_ = shoff;
    s.count_ = count;
    return s;
  }

  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  [[nodiscard]] shdr_t at(std::uint64_t i) const noexcept {
    return load_struct<shdr_t>(bytes_.data() + shoff_ + i * sizeof(shdr_t));
  }
  /// The section's bytes, checked against the file (SHT_NOBITS sections have none).
  [[nodiscard]] result<std::span<const std::byte>> contents(std::uint64_t i, const char* what) const {
    const auto s = at(i);
    if (s.sh_type == format::elf::sht_nobits) return std::span<const std::byte>{};
    const std::uint64_t off = s.sh_offset, size = s.sh_size;
    if (!fits(off, size, bytes_.size()))
      return fail(errc::truncated, "%s: %s section (0x%llx bytes at offset 0x%llx) runs past end of file (size 0x%zx)",
                  path_, what, static_cast<unsigned long long>(size), static_cast<unsigned long long>(off),
                  bytes_.size());
    return bytes_.subspan(static_cast<std::size_t>(off), static_cast<std::size_t>(size));
  }

 private:
  std::span<const std::byte> bytes_;
  const char* path_ = "";
  std::uint64_t shoff_ = 0;
  std::uint64_t count_ = 0;
};

/// The NUL-terminated string at `offset` of a string table, or nullopt when it is out of
/// bounds or not terminated inside the table.
[[nodiscard]] inline std::optional<std::string_view> string_at(std::span<const std::byte> table,
                                                               std::uint64_t offset) noexcept {
  if (offset >= table.size()) return std::nullopt;
  const char* p = reinterpret_cast<const char*>(table.data()) + offset;
  const void* end = std::memchr(p, 0, table.size() - static_cast<std::size_t>(offset));
  if (end == nullptr) return std::nullopt;
  return std::string_view(p, static_cast<std::size_t>(static_cast<const char*>(end) - p));
}

}  // namespace kvmxx::inline KVMXX_ABI::detail

// SPDX-License-Identifier: BSD-2-Clause
//
// kvmxx::open(kernel, core, f): probe a core file, pick Backend and Arch, and call f with
// the fully typed handle — one dispatch per open, none per read (DESIGN.md "Open modes").
// Every backend added later plugs its probe into `probes` below; the probes are mutually
// exclusive, and probe_core() refuses a file that two of them claim
// (specs/freebsd-libkvm.md §1.6, STYLE.md §15.12).
#pragma once
#include <kvmxx/arch/aarch64.hpp>
#include <kvmxx/arch/amd64.hpp>
#include <kvmxx/arch/i386.hpp>
#include <kvmxx/backend/elf_core.hpp>
#include <kvmxx/backend/kcore.hpp>
#include <kvmxx/backend/minidump.hpp>
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/kernel_memory.hpp>
#include <kvmxx/detail/fd.hpp>
#include <kvmxx/fwd.hpp>
#include <kvmxx/os/linux/kaslr.hpp>
#include <kvmxx/resolver/chain.hpp>
#include <kvmxx/resolver/displaced.hpp>
#include <kvmxx/resolver/elf_symtab.hpp>
#include <kvmxx/resolver/kallsyms.hpp>
#include <kvmxx/resolver/symbol_file.hpp>
#include <kvmxx/resolver/vmcoreinfo_symbols.hpp>

#include <array>
#include <cstddef>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace kvmxx::inline KVMXX_ABI {

/// The dump formats kvmxx::open recognises.
enum class core_format : std::uint8_t {
  freebsd_minidump,
  linux_elf,
  linux_kcore,
};

[[nodiscard]] constexpr std::string_view name_of(core_format f) noexcept {
  switch (f) {
    case core_format::freebsd_minidump: return "FreeBSD minidump";
    case core_format::linux_elf: return "Linux ELF core";
    case core_format::linux_kcore: return "Linux /proc/kcore";
  }
  return "unknown";
}

/// One probe: a format and a predicate on the file's first bytes.
struct core_probe {
  core_format format;
  bool (*matches)(std::span<const std::byte> head) noexcept;
};

/// A Linux ELF core that is not in /proc/kcore's format (backend/kcore.hpp says how the two
/// are told apart), so that the two probes are exclusive.
[[nodiscard]] inline bool probe_linux_vmcore(std::span<const std::byte> head) noexcept {
  return backend::elf_core::probe(head) && !backend::kcore::probe(head);
}

/// Every probe kvmxx::open runs, in no significant order: they must be exclusive.
inline constexpr core_probe probes[] = {
    {core_format::freebsd_minidump, &backend::minidump::probe},
    {core_format::linux_elf, &probe_linux_vmcore},
    {core_format::linux_kcore, &backend::kcore::probe},
};

/// How many bytes of a core the probes look at.
inline constexpr std::size_t probe_size = 4096;

/// The formats whose probe matches these bytes (a test helper: at most one may match).
[[nodiscard]] inline std::size_t count_matching_probes(std::span<const std::byte> head) noexcept {
  std::size_t n = 0;
  for (const auto& p : probes) n += p.matches(head) ? 1 : 0;
  return n;
}

/// Decides the format of a core from its first bytes.
/// \errors errc::not_a_dump when no probe matches, errc::corrupt when two do
[[nodiscard]] inline result<core_format> probe_core_image(std::span<const std::byte> head, const char* path) {
  const core_probe* found = nullptr;
  for (const auto& p : probes) {
    if (!p.matches(head)) continue;
    if (found != nullptr)
      return detail::fail(errc::corrupt, "%s: matches both the %s and the %s probe", path,
                          name_of(found->format).data(), name_of(p.format).data());
    found = &p;
  }
  if (found == nullptr) {
    char hex[3 * 8 + 1] = {};
    for (std::size_t k = 0; k < 8 && k < head.size(); ++k)
      std::snprintf(hex + 3 * k - (k > 0), 4, k > 0 ? " %02x" : "%02x", std::to_integer<unsigned>(head[k]));
    return detail::fail(errc::not_a_dump, "%s: not a crash dump of a format kvmxx knows (first bytes: %s)", path, hex);
  }
  return found->format;
}

/// Reads the first bytes of a core file and probes them.
/// \errors system errors naming the path; errc::invalid_argument for a directory or an
/// empty file; those of probe_core_image
[[nodiscard]] inline result<core_format> probe_core_file(const char* path) {
  KVMXX_TRY(fd, detail::open_file(path, O_RDONLY));
  KVMXX_TRY(st, detail::stat_fd(fd, path));
  if (S_ISDIR(st.st_mode)) return detail::fail(errc::invalid_argument, "%s: is a directory", path);
  std::array<std::byte, probe_size> head{};
  KVMXX_TRY(n, detail::pread_full(fd.get(), head.data(), head.size(), 0, path));
  if (n == 0) return detail::fail(errc::invalid_argument, "%s: empty file", path);
  return probe_core_image(std::span<const std::byte>(head.data(), n), path);
}

/// The symbols of a Linux kernel: the kernel file given with -N (vmlinux's .symtab, or a
/// System.map / kallsyms text file), moved by the KASLR offset, then the kallsyms tables
/// in the dump's memory (Linux 6.0+ VMCOREINFO points to them; their addresses are
/// runtime ones already), then the dump's own VMCOREINFO SYMBOL() lines. Unused sources
/// are empty and answer no_symbol_table; get<2>().why_empty() says why kallsyms is.
using linux_kernel_symbols =
    resolver::chain<resolver::displaced<resolver::elf_symtab>, resolver::displaced<resolver::symbol_file>,
                    resolver::kallsyms, resolver::vmcoreinfo_symbols>;
// Every source answers quietly, so a name found by kallsyms costs no message from the
// empty kernel-file sources before it (resolver/chain.hpp).
static_assert(quiet_symbol_resolver<linux_kernel_symbols>);
/// A Linux x86_64 ELF core (vmcore, QEMU dump, makedumpfile ELF output).
using linux_amd64_elf = kernel_memory<backend::elf_core, arch::amd64, linux_kernel_symbols>;
/// A Linux i386 ELF core, 2-level or PAE paging (QEMU dump, vmcore; ELF32 or ELF64).
using linux_i386_elf = kernel_memory<backend::elf_core, arch::i386, linux_kernel_symbols>;

/// The running Linux x86_64 kernel through /proc/kcore (or a file in kcore's format).
using linux_live_kcore = kernel_memory<backend::kcore, arch::amd64, linux_kernel_symbols>;

/// A Linux AArch64 ELF core (QEMU dump, vmcore, makedumpfile ELF output).
using linux_aarch64_elf = kernel_memory<backend::elf_core, arch::aarch64, linux_kernel_symbols>;
static_assert(aarch64_paging_backend<backend::elf_core>);

/// Every fully typed handle kvmxx::open can produce.
using any_dump_handle =
    std::variant<freebsd_amd64_minidump, linux_amd64_elf, linux_i386_elf, linux_aarch64_elf, linux_live_kcore>;

namespace detail {
/// Builds the handle of an opened Linux ELF core whose machine Handle's Arch translates,
/// with the kernel file's symbols (vmlinux or a System.map/kallsyms file; may be nullptr).
/// The KASLR offset: VMCOREINFO's KERNELOFFSET; else on x86_64 the page tables and the
/// kernel file's `_text` (os/linux/kaslr.hpp); else (i386, which has no KERNELOFFSET, and
/// aarch64) SYMBOL(_stext) minus the kernel file's `_stext` (specs/linux-dumps.md §11,
/// method 2).
template <class Handle>
[[nodiscard]] result<Handle> adopt_linux_elf(const char* kernel, const char* core, backend::elf_core b) {
  using arch_t = typename Handle::arch_type;
  if (b.machine() != arch_t::id)
    return detail::fail(errc::unsupported_format, "%s: a Linux %s ELF core, not %s", core, name_of(b.machine()).data(),
                        name_of(arch_t::id).data());
  resolver::elf_symtab elf;
  resolver::symbol_file text;
  std::optional<kernel_file_info> kinfo;
  std::optional<std::uint64_t> link_text, link_stext;
  if (kernel != nullptr) {
    KVMXX_TRY(fd, detail::open_file(kernel, O_RDONLY));
    std::array<std::byte, 64> head{};
    KVMXX_TRY(n, detail::pread_full(fd.get(), head.data(), head.size(), 0, kernel));
    const auto link = [&](const auto& r) {
      if (auto s = r.lookup("_text")) link_text = to_integer(s.value().value);
      if (auto s = r.lookup("_stext")) link_stext = to_integer(s.value().value);
    };
    if (n >= 4 && std::memcmp(head.data(), format::elf::elfmag, 4) == 0) {
      KVMXX_TRY(k, probe_kernel_image(std::span<const std::byte>(head.data(), n), kernel));
      if (k.arch != b.machine())
        return detail::fail(errc::arch_mismatch, "%s is a kernel for %s, but %s is a %s dump", kernel,
                            name_of(k.arch).data(), core, name_of(b.machine()).data());
      kinfo = k;
      KVMXX_TRY(t, resolver::elf_symtab::open(kernel));
      elf = std::move(t);
      link(elf);
    } else {
      KVMXX_TRY(t, resolver::symbol_file::open(kernel));
      text = std::move(t);
      link(text);
    }
  }
  std::int64_t offset = 0;
  if constexpr (std::is_same_v<arch_t, arch::amd64>)
    offset = linux_::kaslr_offset(arch::amd64{}, b, b.vmcoreinfo(), link_text).value_or(0);
  else
    offset = linux_::stext_kaslr_offset(b.vmcoreinfo(), link_stext).value_or(0);
  resolver::vmcoreinfo_symbols vsyms(b.vmcoreinfo());
  // Never fails the open: a dump without usable tables leaves this source empty, saying why.
  linux_::kallsyms_abi abi;
  abi.pointer_size = b.machine() == machine::i386 ? 4 : 8;
  auto ksyms = resolver::kallsyms::from_dump(arch_t{}, b, b.vmcoreinfo(), abi);
  linux_kernel_symbols syms(resolver::displaced<resolver::elf_symtab>(std::move(elf), offset),
                            resolver::displaced<resolver::symbol_file>(std::move(text), offset), std::move(ksyms),
                            std::move(vsyms));
  return Handle::adopt(std::move(b), std::move(syms), kinfo);
}
}  // namespace detail

/// Opens a Linux x86_64 ELF core (see detail::adopt_linux_elf); other machines are refused
/// here — open_dump_handle picks the handle by machine.
[[nodiscard]] inline result<linux_amd64_elf> open_linux_elf(const char* kernel, const char* core) {
  KVMXX_TRY(b, backend::elf_core::open(core));
  return detail::adopt_linux_elf<linux_amd64_elf>(kernel, core, std::move(b));
}

/// Opens a Linux i386 ELF core (see detail::adopt_linux_elf; KASLR from VMCOREINFO's `_stext`).
[[nodiscard]] inline result<linux_i386_elf> open_linux_i386_elf(const char* kernel, const char* core) {
  KVMXX_TRY(b, backend::elf_core::open(core));
  return detail::adopt_linux_elf<linux_i386_elf>(kernel, core, std::move(b));
}

/// Opens a Linux AArch64 ELF core (see detail::adopt_linux_elf).
[[nodiscard]] inline result<linux_aarch64_elf> open_linux_aarch64_elf(const char* kernel, const char* core) {
  KVMXX_TRY(b, backend::elf_core::open(core));
  return detail::adopt_linux_elf<linux_aarch64_elf>(kernel, core, std::move(b));
}

namespace detail {
/// What a Linux kernel file (-N: vmlinux, or a System.map/kallsyms text file) gives a
/// live handle: its symbols and its link-time `_text`.
struct linux_kernel_file {
  resolver::elf_symtab elf;
  resolver::symbol_file text;
  std::optional<kernel_file_info> info;
  std::optional<std::uint64_t> link_text;
};
/// Loads `kernel` (may be nullptr: nothing) for an image of machine `m` named `image`.
[[nodiscard]] inline result<linux_kernel_file> load_linux_kernel_file(const char* kernel, machine m,
                                                                      const char* image) {
  linux_kernel_file out;
  if (kernel == nullptr) return out;
  KVMXX_TRY(fd, detail::open_file(kernel, O_RDONLY));
  std::array<std::byte, 64> head{};
  KVMXX_TRY(n, detail::pread_full(fd.get(), head.data(), head.size(), 0, kernel));
  if (n >= 4 && std::memcmp(head.data(), format::elf::elfmag, 4) == 0) {
    KVMXX_TRY(k, probe_kernel_image(std::span<const std::byte>(head.data(), n), kernel));
    if (k.arch != m)
      return detail::fail(errc::arch_mismatch, "%s is a kernel for %s, but %s is %s memory", kernel,
                          name_of(k.arch).data(), image, name_of(m).data());
    out.info = k;
    KVMXX_TRY(t, resolver::elf_symtab::open(kernel));
    out.elf = std::move(t);
    if (auto s = out.elf.lookup("_text")) out.link_text = to_integer(s.value().value);
  } else {
    KVMXX_TRY(t, resolver::symbol_file::open(kernel));
    out.text = std::move(t);
    if (auto s = out.text.lookup("_text")) out.link_text = to_integer(s.value().value);
  }
  return out;
}
/// The Linux symbol chain: the kernel file moved by `offset`, then VMCOREINFO's SYMBOL()s.
[[nodiscard]] inline linux_kernel_symbols make_linux_symbols(linux_kernel_file&& k, std::int64_t offset,
                                                             const linux_::vmcoreinfo& vi,
                                                             resolver::kallsyms&& ksyms = {}) {
  return linux_kernel_symbols(resolver::displaced<resolver::elf_symtab>(std::move(k.elf), offset),
                              resolver::displaced<resolver::symbol_file>(std::move(k.text), offset),
                              std::move(ksyms), resolver::vmcoreinfo_symbols(vi));
}
}  // namespace detail

/// Opens /proc/kcore (or a copy in its format) with the kernel file's symbols (vmlinux or a
/// System.map/kallsyms file; may be nullptr). The symbols move by the kernel-text
/// segment's start (KCORE_TEXT's p_vaddr is the runtime _text) minus the kernel file's
/// `_text` — 0 for the live /proc/kallsyms, whose addresses are runtime ones already —
/// else by VMCOREINFO's KERNELOFFSET. VMCOREINFO's SYMBOL() lines answer what the kernel
/// file does not.
[[nodiscard]] inline result<linux_live_kcore> open_linux_kcore(const char* kernel, const char* path = "/proc/kcore",
                                                               const kcore_options& options = {}) {
  KVMXX_TRY(b, backend::kcore::open(path, options));
  if (b.machine() != machine::amd64)
    return detail::fail(errc::unsupported_format, "%s: Linux %s kcore is recognised but not supported yet", path,
                        name_of(b.machine()).data());
  KVMXX_TRY(k, detail::load_linux_kernel_file(kernel, b.machine(), path));
  std::int64_t offset = b.kerndisp();
  if (k.link_text && b.text_start()) offset = static_cast<std::int64_t>(*b.text_start() - *k.link_text);
  auto info = k.info;
  // The kernel's own kallsyms tables, read through kcore (never fails the open).
  auto ksyms = resolver::kallsyms::from_dump(arch::amd64{}, b, b.vmcoreinfo());
  auto syms = detail::make_linux_symbols(std::move(k), offset, b.vmcoreinfo(), std::move(ksyms));
  return linux_live_kcore::adopt(std::move(b), std::move(syms), info);
}

/// Probes `core`, opens it with the matching Backend and Arch, and returns the typed handle
/// in a variant. `kernel` (may be nullptr) supplies symbols and is checked against the core.
[[nodiscard]] inline result<any_dump_handle> open_dump_handle(const char* kernel, const char* core) {
  // The live kcore (procfs's file named "kcore"; not /proc/vmcore) is kcore whatever its
  // first bytes hold: its headers can outgrow the probe's window on machines with many
  // memory ranges.
  const std::string_view name(core);
  const bool live_kcore = (name == "kcore" || (name.size() > 6 && name.substr(name.size() - 6) == "/kcore")) &&
                          backend::kcore::path_on_procfs(core);
  KVMXX_TRY(format, live_kcore ? result<core_format>(core_format::linux_kcore) : probe_core_file(core));
  switch (format) {
    case core_format::freebsd_minidump: {
      // The header names the architecture; only amd64 has an Arch so far (the backend
      // reports other minidump architectures as unsupported).
      KVMXX_TRY(km, freebsd_amd64_minidump::open_dump(kernel, core));
      return any_dump_handle(std::in_place_type<freebsd_amd64_minidump>, std::move(km));
    }
    case core_format::linux_elf: {
      KVMXX_TRY(b, backend::elf_core::open(core));
      switch (b.machine()) {
        case machine::amd64: {
          KVMXX_TRY(km, detail::adopt_linux_elf<linux_amd64_elf>(kernel, core, std::move(b)));
          return any_dump_handle(std::in_place_type<linux_amd64_elf>, std::move(km));
        }
        case machine::i386: {
          KVMXX_TRY(km, detail::adopt_linux_elf<linux_i386_elf>(kernel, core, std::move(b)));
          return any_dump_handle(std::in_place_type<linux_i386_elf>, std::move(km));
        }
        case machine::aarch64: {
          KVMXX_TRY(km, detail::adopt_linux_elf<linux_aarch64_elf>(kernel, core, std::move(b)));
          return any_dump_handle(std::in_place_type<linux_aarch64_elf>, std::move(km));
        }
        default:
          return detail::fail(errc::unsupported_format, "%s: Linux %s ELF cores are recognised but not supported yet",
                              core, name_of(b.machine()).data());
      }
    }
    case core_format::linux_kcore: {
      KVMXX_TRY(km, open_linux_kcore(kernel, core));
      return any_dump_handle(std::in_place_type<linux_live_kcore>, std::move(km));
    }
  }
  return detail::fail(errc::not_a_dump, "%s: no backend for this format", core);  // not reached
}

namespace detail {
template <class R>
struct flatten_result {
  using type = result<R>;
};
template <class T>
struct flatten_result<result<T>> {
  using type = result<T>;
};
}  // namespace detail

/// Opens `core` (and `kernel`, may be nullptr) and calls f(handle&) with the fully typed
/// handle. f is instantiated for every handle type, so it is usually a generic lambda; it
/// must return the same type for each. Returns f's result (a result<T> is passed through,
/// a plain T is wrapped, void becomes result<void>).
///
/// \code
///   auto r = kvmxx::open("kernel", "vmcore.0", [](auto& km) -> kvmxx::result<int> {
///     KVMXX_TRY(hz, km.address_of("hz"));
///     return km.template read_as<int>(hz);
///   });
/// \endcode
template <class F>
auto open(const char* kernel, const char* core, F&& f)
    -> typename detail::flatten_result<std::invoke_result_t<F&, freebsd_amd64_minidump&>>::type {
  using ret = typename detail::flatten_result<std::invoke_result_t<F&, freebsd_amd64_minidump&>>::type;
  KVMXX_TRY(h, open_dump_handle(kernel, core));
  return std::visit(
      [&](auto& km) -> ret {
        using R = std::invoke_result_t<F&, decltype(km)>;
        if constexpr (std::is_void_v<R>) {
          f(km);
          return success();
        } else {
          return f(km);
        }
      },
      h);
}

}  // namespace kvmxx::inline KVMXX_ABI

// SPDX-License-Identifier: BSD-2-Clause
//
// Linux /proc/kcore (and copies of files in its format) as a source of kernel *virtual*
// memory: specs/linux-dumps.md §3 (/proc/kcore), §2 (program headers, notes), §4
// (VMCOREINFO).
//
// * Everything is read with pread, never mapped: /proc/kcore's st_size is the size of the
//   whole sparse kernel address space (up to 128 TiB) and it is generated on each read.
// * Virtual reads index the PT_LOADs by p_vaddr (the kernel computes p_offset from the
//   virtual address, so segments that overlap agree on their bytes; the lower p_vaddr
//   wins, as in elf_core). Physical reads index those with a p_paddr: KCORE_TEXT and
//   KCORE_RAM since v4.11. p_paddr = all-ones (vmalloc, vmemmap) means none; a kcore of a
//   kernel before v4.11 gives 0 for every RAM segment, so when several segments claim
//   p_paddr 0 none of them is used for physical reads.
// * VMCOREINFO comes from kcore's own "VMCOREINFO" note (v4.19+); else, when asked to
//   (always for /proc/kcore itself), from /sys/kernel/vmcoreinfo: "<paddr hex> <size
//   hex>" of the whole note, read through the physical view (§3 "Older kernels").
// * /proc/kcore needs CAP_SYS_RAWIO and is refused under kernel lockdown (§3): open
//   turns EACCES/EPERM into a message that says so.
// * How kcore is told from a vmcore copy (both are ELF ET_CORE): a "CORE" note of type
//   NT_TASKSTRUCT (4), which only kcore writes (drgn uses the same note), within the
//   first bytes the probe sees; or the file lives on procfs (fstatfs PROC_SUPER_MAGIC),
//   for a kcore whose headers are longer than the probe's window.
//
// Not validated: that the segments describe real memory. /proc/kcore reads holes of the
// vmalloc area as zeros (the kernel does that), which this backend cannot tell from data.
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/detail/byte_order.hpp>
#include <kvmxx/detail/checked.hpp>
#include <kvmxx/detail/elf_reader.hpp>
#include <kvmxx/detail/fd.hpp>
#include <kvmxx/format/elf.hpp>
#include <kvmxx/os/linux/vmcoreinfo.hpp>
#include <kvmxx/os/linux/vmcoreinfo_note.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <sys/vfs.h>
#include <utility>
#include <vector>

namespace kvmxx::inline KVMXX_ABI {

/// How a kcore-format file is opened.
struct kcore_options {
  /// Where to read "<paddr> <size>" of the VMCOREINFO note when the file has no VMCOREINFO
  /// note of its own. nullptr: "/sys/kernel/vmcoreinfo" when the file is the live
  /// /proc/kcore (on procfs), never for other files.
  const char* vmcoreinfo_sysfs = nullptr;
};

}  // namespace kvmxx::inline KVMXX_ABI

namespace kvmxx::inline KVMXX_ABI::backend {

namespace detail_kcore {
// Whether the first PT_NOTE, as far as `head` holds it, has a CORE/NT_TASKSTRUCT note
// (defined before the class: clang warns about in-class lambdas calling later members).
template <class Fl>
[[nodiscard]] bool has_taskstruct(Fl, std::span<const std::byte> head) noexcept {
  namespace elf = format::elf;
  using phdr_t = elf::phdr<Fl>;
  const auto h = detail::load_struct<elf::ehdr<Fl>>(head.data());
  const std::uint64_t phoff = h.e_phoff, phnum = h.e_phnum;
  if (h.e_phentsize != sizeof(phdr_t)) return false;
  for (std::uint64_t k = 0; k < phnum && detail::fits(phoff + k * sizeof(phdr_t), sizeof(phdr_t), head.size()); ++k) {
    const auto p = detail::load_struct<phdr_t>(head.data() + phoff + k * sizeof(phdr_t));
    if (p.p_type != elf::pt_note) continue;
    const std::uint64_t off = p.p_offset, end = std::min<std::uint64_t>(off + std::uint64_t{p.p_filesz}, head.size());
    if (off >= head.size() || end < off) return false;
    std::uint64_t pos = off;
    while (pos + sizeof(elf::nhdr<Fl>) <= end) {
      const auto n = detail::load_struct<elf::nhdr<Fl>>(head.data() + pos);
      const std::uint64_t namesz = n.n_namesz, descsz = n.n_descsz;
      const std::uint64_t name_off = pos + sizeof(elf::nhdr<Fl>);
      if (n.n_type == 4 /* NT_TASKSTRUCT */ && namesz == 5 && name_off + 5 <= head.size() &&
          std::memcmp(head.data() + name_off, "CORE", 5) == 0)
        return true;
      pos = name_off + ((namesz + 3) & ~std::uint64_t{3}) + ((descsz + 3) & ~std::uint64_t{3});
      if (namesz > end || descsz > end) return false;
    }
    return false;  // only the first PT_NOTE
  }
  return false;
}
}  // namespace detail_kcore

/// \code
///   auto k = kvmxx::backend::kcore::open("/proc/kcore");
///   if (!k) std::fprintf(stderr, "%s\n", kvmxx::describe(k.error()).c_str());
/// \endcode
/// Immutable after open: every member is safe from many threads (pread has no file position).
class kcore {
 public:
  /// The fstatfs magic of procfs (linux/magic.h PROC_SUPER_MAGIC).
  static constexpr long proc_super_magic = 0x9fa0;
  /// "CORE" note type NT_TASKSTRUCT: only kcore writes it (specs/linux-dumps.md §3).
  static constexpr std::uint32_t nt_taskstruct = 4;

  /// An ELF ET_CORE file (not a FreeBSD full dump) whose first PT_NOTE, as far as `head`
  /// holds it, has a CORE/NT_TASKSTRUCT note.
  [[nodiscard]] static bool probe(std::span<const std::byte> head) noexcept {
    namespace elf = format::elf;
    if (head.size() < 52 || std::memcmp(head.data(), elf::elfmag, 4) != 0) return false;
    if (std::to_integer<unsigned char>(head[elf::ei_osabi]) == elf::elfosabi_standalone) return false;
    auto id = detail::read_elf_ident(head, "", errc::not_a_dump);
    if (!id || id.value().type != elf::et_core) return false;
    return detail::with_elf_flavour(id.value(), [&](auto fl) noexcept { return detail_kcore::has_taskstruct(fl, head); });
  }

  /// Opens /proc/kcore or a file in its format.
  /// \errors system errors naming the path (EACCES/EPERM explained: root, CAP_SYS_RAWIO,
  /// lockdown); errc::not_a_dump, errc::truncated, errc::corrupt, errc::unsupported_format
  [[nodiscard]] static result<kcore> open(const char* path = "/proc/kcore", const kcore_options& o = {}) {
    auto fd = detail::open_file(path, O_RDONLY);
    if (!fd) return explain_open_error(fd.error(), path);
    KVMXX_TRY(st, detail::stat_fd(fd.value(), path));
    if (S_ISDIR(st.st_mode)) return detail::fail(errc::invalid_argument, "%s: is a directory", path);
    kcore k;
    k.path_ = path;
    k.fd_ = std::move(fd).value();
    k.size_ = st.st_size > 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    k.live_ = on_procfs(k.fd_.get());
    const char* sysfs = o.vmcoreinfo_sysfs ? o.vmcoreinfo_sysfs : (k.live_ ? "/sys/kernel/vmcoreinfo" : nullptr);
    KVMXX_TRYV(k.parse(sysfs));
    return k;
  }

  /// Parses bytes the caller keeps alive as long as the backend (tests, copies in memory).
  [[nodiscard]] static result<kcore> from_bytes(std::span<const std::byte> bytes, std::string name = "<memory>",
                                                const kcore_options& o = {}) {
    kcore k;
    k.path_ = std::move(name);
    k.bytes_ = bytes;
    k.size_ = bytes.size();
    KVMXX_TRYV(k.parse(o.vmcoreinfo_sysfs));
    return k;
  }

  /// Whether `fd` is on procfs (the live /proc/kcore rather than a copy).
  [[nodiscard]] static bool on_procfs(int fd) noexcept {
    struct statfs sf {};
    return ::fstatfs(fd, &sf) == 0 && static_cast<long>(sf.f_type) == proc_super_magic;
  }
  /// Whether the file at `path` is on procfs (false when it cannot be opened).
  [[nodiscard]] static bool path_on_procfs(const char* path) noexcept {
    auto fd = detail::open_file(path, O_RDONLY);
    if (!fd) {
      struct statfs sf {};  // an unreadable /proc/kcore is still /proc/kcore
      return ::statfs(path, &sf) == 0 && static_cast<long>(sf.f_type) == proc_super_magic;
    }
    return on_procfs(fd.value().get());
  }

  kcore(kcore&&) noexcept = default;
  kcore& operator=(kcore&&) noexcept = default;
  kcore(const kcore&) = delete;
  kcore& operator=(const kcore&) = delete;

  [[nodiscard]] kvmxx::machine machine() const noexcept { return machine_; }
  [[nodiscard]] os_kind os() const noexcept { return os_kind::linux_; }
  [[nodiscard]] std::size_t page_size() const noexcept { return page_size_; }
  [[nodiscard]] const char* path() const noexcept { return path_.c_str(); }
  [[nodiscard]] const linux_::vmcoreinfo& vmcoreinfo() const noexcept { return vmcoreinfo_; }
  /// Where VMCOREINFO came from: "note", the sysfs path, or "" when there is none.
  [[nodiscard]] const std::string& vmcoreinfo_source() const noexcept { return vmcoreinfo_source_; }
  /// True for the running kernel's /proc/kcore (the file is on procfs).
  [[nodiscard]] bool live() const noexcept { return live_; }
  /// The PT_LOADs in file order (paddr all-ones where the segment has none).
  struct segment {
    std::uint64_t vaddr = 0, paddr = 0, offset = 0, size = 0;
  };
  [[nodiscard]] const std::vector<segment>& segments() const noexcept { return segments_; }
  /// KASLR's KERNELOFFSET from VMCOREINFO (0 when absent).
  [[nodiscard]] std::int64_t kerndisp() const noexcept { return kerndisp_; }
  /// The start of the kernel-text segment (KCORE_TEXT: p_vaddr = the runtime _text), when
  /// there is one in x86_64's kernel-text window.
  [[nodiscard]] std::optional<std::uint64_t> text_start() const noexcept {
    for (const auto& s : segments_)
      if (s.vaddr >= 0xffffffff80000000 && s.vaddr < 0xffffffffc0000000 && s.paddr != ~std::uint64_t{0}) return s.vaddr;
    return std::nullopt;
  }

  [[nodiscard]] result<std::size_t> read_virtual(kvaddr va, std::span<std::byte> out) const noexcept {
    return read_indexed(by_va_, to_integer(va), out, "virtual");
  }
  [[nodiscard]] result<std::size_t> read_physical(physaddr pa, std::span<std::byte> out) const noexcept {
    return read_indexed(by_pa_, to_integer(pa), out, "physical");
  }

  /// /proc/kcore has no write method: kernel_memory::write reports that, not "a crash dump".
  [[nodiscard]] bool writable() const noexcept { return false; }
  [[nodiscard]] result<std::size_t> write_at(std::uint64_t va, std::span<const std::byte> in) const noexcept {
    return detail::fail(errc::read_only, "%s: kcore is read-only (the kernel gives it no write); cannot write 0x%zx "
                        "bytes at 0x%llx — open /dev/mem read-write instead", path(), in.size(),
                        static_cast<unsigned long long>(va));
  }

  [[nodiscard]] backend_info info() const {
    backend_info i;
    i.format = live_ ? "Linux /proc/kcore (live)" : "Linux kcore-format file";
    i.arch = machine_;
    i.os = os_kind::linux_;
    i.page_size = page_size_;
    std::uint64_t bytes = 0;
    for (const auto& iv : by_pa_) {
      if (!i.ranges.empty() && to_integer(i.ranges.back().end) == iv.start) i.ranges.back().end = physaddr{iv.end};
      else i.ranges.push_back({physaddr{iv.start}, physaddr{iv.end}});
      bytes += iv.end - iv.start;
    }
    i.dumped_pages = bytes / page_size_;
    i.file_size = size_;
    return i;
  }

  [[nodiscard]] result<void> close() noexcept {
    by_va_.clear();
    by_pa_.clear();
    bytes_ = {};
    return fd_.close(path());
  }

 private:
  kcore() = default;

  struct interval {  // [start, end) of one address space, whose byte `start` is at file offset `offset`
    std::uint64_t start, end, offset;
  };

  static std::error_code explain_open_error(std::error_code ec, const char* path) noexcept {
    const char* why = nullptr;
    if (ec == std::errc::permission_denied)
      why = "reading kcore needs root (the file is mode 0400, owned by root)";
    else if (ec == std::errc::operation_not_permitted)
      why = "reading kcore needs CAP_SYS_RAWIO, and the kernel refuses it under lockdown "
            "(see /sys/kernel/security/lockdown)";
    else if (ec == std::errc::no_such_file_or_directory)
      why = "no such file (a kernel without CONFIG_PROC_KCORE, or /proc is not mounted)";
    if (why == nullptr) return ec;
    return detail::fail(ec, "%s: %s: %s", path, std::strerror(ec.value()), why);
  }

  // pread from the fd, or memcpy from the borrowed bytes; a short count means end of file.
  [[nodiscard]] result<std::size_t> read_file(std::uint64_t offset, std::byte* out, std::size_t n) const noexcept {
    if (fd_) {
      if (offset > static_cast<std::uint64_t>(INT64_MAX) || n > static_cast<std::uint64_t>(INT64_MAX) - offset)
        return detail::fail(errc::corrupt, "%s: file offset 0x%llx is beyond what pread can address", path(),
                            static_cast<unsigned long long>(offset));
      return detail::pread_full(fd_.get(), out, n, offset, path_.c_str());
    }
    if (offset >= bytes_.size()) return std::size_t{0};
    const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(n, bytes_.size() - offset));
    std::memcpy(out, bytes_.data() + offset, k);
    return k;
  }
  [[nodiscard]] result<void> read_exact_file(std::uint64_t offset, std::span<std::byte> out, const char* what) const {
    KVMXX_TRY(n, read_file(offset, out.data(), out.size()));
    if (n != out.size())
      return detail::fail(errc::truncated, "%s: %s (0x%zx bytes at offset 0x%llx) runs past end of file", path(), what,
                          out.size(), static_cast<unsigned long long>(offset));
    return success();
  }

  static const interval* find(const std::vector<interval>& index, std::uint64_t a) noexcept {
    auto it = std::upper_bound(index.begin(), index.end(), a, [](std::uint64_t x, const interval& iv) { return x < iv.start; });
    if (it == index.begin()) return nullptr;
    --it;
    return a < it->end ? &*it : nullptr;
  }

  // The read of both views: find the interval, pread, cross intervals; fail on the first
  // byte, short count (with the reason recorded) after it (core/concepts.hpp).
  [[nodiscard]] result<std::size_t> read_indexed(const std::vector<interval>& index, std::uint64_t addr,
                                                 std::span<std::byte> out, const char* kind) const noexcept {
    std::size_t done = 0;
    while (done < out.size()) {
      const interval* iv = find(index, addr);
      if (KVMXX_UNLIKELY(iv == nullptr)) {
        auto ec = detail::fail(std::string_view(kind) == "virtual" ? errc::unmapped_address : errc::page_not_dumped,
                               "%s: %s address 0x%llx is in no PT_LOAD segment", path(), kind,
                               static_cast<unsigned long long>(addr));
        if (done == 0) return ec;
        return done;
      }
      const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(iv->end - addr, out.size() - done));
      auto got = read_file(iv->offset + (addr - iv->start), out.data() + done, chunk);
      if (KVMXX_UNLIKELY(!got)) {
        // The recorded message is "<path>: <why>"; formatting copies it before replacing it.
        auto ec = detail::fail(got.error(), "%s address 0x%llx: %s", kind, static_cast<unsigned long long>(addr),
                               detail::last_error_record().message.c_str());
        if (done == 0) return ec;
        return done;
      }
      done += got.value();
      addr += got.value();
      if (got.value() < chunk) {
        auto ec = detail::fail(errc::truncated, "%s: %s address 0x%llx: the file ends before its segment does", path(),
                               kind, static_cast<unsigned long long>(addr));
        if (done == 0) return ec;
        break;
      }
      if (addr == 0) break;  // wrapped at the top of the address space
    }
    return done;
  }

  static kvmxx::machine machine_of(std::uint16_t em, bool is64, bool big) noexcept {
    namespace elf = format::elf;
    switch (em) {
      case elf::em_x86_64: return machine::amd64;
      case elf::em_386: return machine::i386;
      case elf::em_aarch64: return machine::aarch64;
      case elf::em_arm: return machine::arm;
      case elf::em_riscv: return is64 ? machine::riscv64 : machine::unknown;
      case elf::em_ppc64: return big ? machine::powerpc64 : machine::powerpc64le;
      case elf::em_mips: return machine::mips;
      default: return machine::unknown;
    }
  }

  // Bounds on what the headers may make us allocate (kcore has tens of segments and
  // a few KiB of notes; a bigger value is a damaged file).
  static constexpr std::uint64_t max_notes = std::uint64_t{16} << 20;

  template <class Fl>
  result<void> load(Fl, std::span<const std::byte> head) {
    namespace elf = format::elf;
    using phdr_t = elf::phdr<Fl>;
    const char* p = path();
    const auto h = detail::load_struct<elf::ehdr<Fl>>(head.data());
    const std::uint64_t phoff = h.e_phoff, phnum = h.e_phnum;
    if (phnum == elf::pn_xnum)
      return detail::fail(errc::unsupported_format, "%s: e_phnum is PN_XNUM, which kcore never writes", p);
    if (phnum == 0) return detail::fail(errc::corrupt, "%s: kcore without program headers", p);
    if (h.e_phentsize != sizeof(phdr_t))
      return detail::fail(errc::corrupt, "%s: e_phentsize is %u, expected %zu", p, unsigned{h.e_phentsize},
                          sizeof(phdr_t));
    std::vector<std::byte> table(static_cast<std::size_t>(phnum * sizeof(phdr_t)));
    if (!detail::fits(phoff, table.size(), size_))
      return detail::fail(errc::truncated, "%s: %llu program headers at offset 0x%llx run past end of file (size 0x%llx)",
                          p, static_cast<unsigned long long>(phnum), static_cast<unsigned long long>(phoff),
                          static_cast<unsigned long long>(size_));
    KVMXX_TRYV(read_exact_file(phoff, table, "the program header table"));
    bool notes_seen = false;
    for (std::uint64_t k = 0; k < phnum; ++k) {
      const auto ph = detail::load_struct<phdr_t>(table.data() + k * sizeof(phdr_t));
      const std::uint64_t off = ph.p_offset, filesz = ph.p_filesz, memsz = ph.p_memsz;
      if (ph.p_type == elf::pt_note) {
        if (notes_seen) continue;  // kcore has one PT_NOTE
        notes_seen = true;
        if (filesz > max_notes)
          return detail::fail(errc::corrupt, "%s: PT_NOTE %llu claims 0x%llx bytes (more than the 16 MiB allowed)", p,
                              static_cast<unsigned long long>(k), static_cast<unsigned long long>(filesz));
        if (!detail::fits(off, filesz, size_))
          return detail::fail(errc::truncated, "%s: PT_NOTE %llu (0x%llx bytes at 0x%llx) runs past end of file", p,
                              static_cast<unsigned long long>(k), static_cast<unsigned long long>(filesz),
                              static_cast<unsigned long long>(off));
        std::vector<std::byte> notes(static_cast<std::size_t>(filesz));
        KVMXX_TRYV(read_exact_file(off, notes, "the PT_NOTE segment"));
        KVMXX_TRYV(read_notes(Fl{}, notes, off));
        continue;
      }
      if (ph.p_type != elf::pt_load) continue;
      if (filesz != memsz)
        return detail::fail(errc::corrupt, "%s: PT_LOAD %llu has p_filesz 0x%llx != p_memsz 0x%llx (kcore writes them "
                            "equal)", p, static_cast<unsigned long long>(k), static_cast<unsigned long long>(filesz),
                            static_cast<unsigned long long>(memsz));
      if (!detail::fits(off, filesz, size_))
        return detail::fail(errc::truncated, "%s: PT_LOAD %llu (0x%llx bytes at offset 0x%llx) runs past end of file "
                            "(size 0x%llx)", p, static_cast<unsigned long long>(k),
                            static_cast<unsigned long long>(filesz), static_cast<unsigned long long>(off),
                            static_cast<unsigned long long>(size_));
      std::uint64_t paddr = ph.p_paddr;
      const std::uint64_t vaddr = ph.p_vaddr;
      if constexpr (!Fl::is64) {
        if (paddr == 0xffffffffu) paddr = ~std::uint64_t{0};
      }
      if (filesz == 0) continue;
      if (vaddr + filesz < vaddr && vaddr + filesz != 0)
        return detail::fail(errc::corrupt, "%s: PT_LOAD %llu (vaddr 0x%llx, 0x%llx bytes) wraps the address space", p,
                            static_cast<unsigned long long>(k), static_cast<unsigned long long>(vaddr),
                            static_cast<unsigned long long>(filesz));
      segments_.push_back({vaddr, paddr, off, filesz});
    }
    return success();
  }

  template <class Fl>
  result<void> read_notes(Fl, std::span<const std::byte> notes, std::uint64_t base) {
    namespace elf = format::elf;
    std::size_t pos = 0;
    while (pos + sizeof(elf::nhdr<Fl>) <= notes.size()) {
      const auto n = detail::load_struct<elf::nhdr<Fl>>(notes.data() + pos);
      const std::uint64_t namesz = n.n_namesz, descsz = n.n_descsz;
      const std::uint64_t name_off = pos + sizeof(elf::nhdr<Fl>);
      const std::uint64_t desc_off = name_off + ((namesz + 3) & ~std::uint64_t{3});
      const std::uint64_t next = desc_off + ((descsz + 3) & ~std::uint64_t{3});
      if (namesz > notes.size() || descsz > notes.size() || desc_off + descsz > notes.size()) {
        if (namesz == 0 && descsz == 0) break;  // zero padding at the end of the segment
        return detail::fail(errc::truncated, "%s: note at offset 0x%llx (name 0x%llx, desc 0x%llx bytes) runs past its "
                            "PT_NOTE segment", path(), static_cast<unsigned long long>(base + pos),
                            static_cast<unsigned long long>(namesz), static_cast<unsigned long long>(descsz));
      }
      std::string_view name(reinterpret_cast<const char*>(notes.data() + name_off), static_cast<std::size_t>(namesz));
      while (!name.empty() && name.back() == '\0') name.remove_suffix(1);
      if (name == "VMCOREINFO") {
        vmcoreinfo_ = linux_::vmcoreinfo::parse(
            std::string_view(reinterpret_cast<const char*>(notes.data() + desc_off), static_cast<std::size_t>(descsz)));
        vmcoreinfo_source_ = "note";
      }
      if (next >= notes.size()) break;
      pos = static_cast<std::size_t>(next);
    }
    return success();
  }

  // Sorts `segs` by start and cuts them into non-overlapping intervals (lower start wins).
  static std::vector<interval> index_of(std::vector<interval> segs) {
    std::stable_sort(segs.begin(), segs.end(), [](const interval& a, const interval& b) { return a.start < b.start; });
    std::vector<interval> out;
    for (const auto& s : segs) {
      const std::uint64_t from = out.empty() ? s.start : std::max(s.start, out.back().end);
      if (from >= s.end) continue;  // wholly inside an earlier segment
      out.push_back({from, s.end, s.offset + (from - s.start)});
    }
    return out;
  }

  result<void> parse(const char* sysfs) {
    std::byte head[64] = {};
    KVMXX_TRY(n, read_file(0, head, sizeof head));
    const std::span<const std::byte> h(head, n);
    KVMXX_TRY(id, detail::read_elf_ident(h, path(), errc::not_a_dump));
    if (id.type != format::elf::et_core)
      return detail::fail(errc::not_a_dump, "%s: ELF type %u is not ET_CORE: not a kcore file", path(), unsigned{id.type});
    machine_ = machine_of(id.machine, id.elf_class == format::elf::elfclass64, id.data == format::elf::elfdata2msb);
    if (machine_ == machine::unknown)
      return detail::fail(errc::unsupported_format, "%s: kcore for e_machine %u, which kvmxx does not know", path(),
                          unsigned{id.machine});
    KVMXX_TRYV(detail::with_elf_flavour(id, [&](auto fl) -> result<void> { return load(fl, h); }));
    std::vector<interval> va, pa;
    std::size_t zero_pa = 0;
    for (const auto& s : segments_) zero_pa += s.paddr == 0 ? 1 : 0;
    for (const auto& s : segments_) {
      const std::uint64_t vend = s.vaddr + s.size;
      va.push_back({s.vaddr, vend == 0 ? ~std::uint64_t{0} : vend, s.offset});
      if (s.paddr == ~std::uint64_t{0} || (s.paddr == 0 && zero_pa > 1)) continue;
      const std::uint64_t pend = s.size > ~std::uint64_t{0} - s.paddr ? ~std::uint64_t{0} : s.paddr + s.size;
      pa.push_back({s.paddr, pend, s.offset});
    }
    by_va_ = index_of(std::move(va));
    by_pa_ = index_of(std::move(pa));
    if (vmcoreinfo_.empty() && sysfs != nullptr) {
      KVMXX_TRY(vi, linux_::read_vmcoreinfo_note(*this, sysfs));
      vmcoreinfo_ = std::move(vi);
      vmcoreinfo_source_ = sysfs;
    }
    if (auto ps = vmcoreinfo_.page_size(); ps && (*ps & (*ps - 1)) == 0 && *ps >= 512) page_size_ = *ps;
    kerndisp_ = static_cast<std::int64_t>(vmcoreinfo_.kernel_offset().value_or(0));
    return success();
  }

  std::string path_;
  detail::unique_fd fd_;
  std::span<const std::byte> bytes_;
  std::uint64_t size_ = 0;
  bool live_ = false;
  kvmxx::machine machine_ = machine::unknown;
  std::size_t page_size_ = 4096;
  std::vector<segment> segments_;
  std::vector<interval> by_va_, by_pa_;
  linux_::vmcoreinfo vmcoreinfo_;
  std::string vmcoreinfo_source_;
  std::int64_t kerndisp_ = 0;
};

static_assert(virtual_backend<kcore>);
static_assert(writable_backend<kcore>);

}  // namespace kvmxx::inline KVMXX_ABI::backend

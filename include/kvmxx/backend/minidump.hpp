// SPDX-License-Identifier: BSD-2-Clause
//
// FreeBSD minidumps as a physical address space: header validation, msgbuf, dump_avail,
// the page bitmap with an O(1) rank, and the page-table section the Arch walks.
// References: specs/freebsd-libkvm.md §2.1 (layout), §2.2 (PA → file offset), §2.5 (amd64),
//   §2.13 (worked example); lib/libkvm/kvm_minidump_amd64.c (_amd64_minidump_initvtop),
//   lib/libkvm/kvm_private.c (_kvm_pt_init, _kvm_pa_bit_id, _kvm_pt_find).
//
// Differences from libkvm, on purpose (README "Differences from libkvm"):
// * addresses in a hole between dump_avail ranges are "not dumped" instead of aliasing a
//   page of the preceding range (§6.7);
// * a file that ends before its last dumped page opens; pages past the end read as
//   errc::truncated instead of raising SIGBUS (§6.12);
// * no host byte order, struct layout or host page size leaks into parsing (§6.3).
//
// Not validated: the contents of the msgbuf and of page-table pages (the Arch checks the
// entries it uses), and whether the kernel marked the right pages as dumped.
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/detail/bits.hpp>
#include <kvmxx/detail/byte_order.hpp>
#include <kvmxx/detail/checked.hpp>
#include <kvmxx/detail/mmap.hpp>
#include <kvmxx/format/minidump.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvmxx::inline KVMXX_ABI::backend {

/// A FreeBSD minidump (`vmcore.N` as savecore(8) writes it: the bare payload, no
/// kerneldump header). Immutable after open, so every member is safe to call from many
/// threads at once.
///
/// \code
///   auto md = kvmxx::backend::minidump::open("/var/crash/vmcore.0");
///   if (!md) { std::fprintf(stderr, "%s\n", kvmxx::describe(md.error()).c_str()); return 1; }
///   std::array<std::byte, 8> buf;
///   auto n = md.value().read_physical(kvmxx::physaddr{0x100000}, buf);
/// \endcode
class minidump {
 public:
  /// True when the bytes start like a minidump of any architecture ("minidump", §1.6).
  [[nodiscard]] static bool probe(std::span<const std::byte> head) noexcept {
    return head.size() >= sizeof format::minidump::detect_magic &&
           std::memcmp(head.data(), format::minidump::detect_magic, sizeof format::minidump::detect_magic) == 0;
  }

  /// Opens and validates a minidump file.
  /// \errors errc::not_a_dump, errc::unsupported_format (a minidump of an architecture not
  /// supported yet), errc::unsupported_version, errc::truncated, errc::corrupt, and the
  /// system errors of open/mmap; errc::invalid_argument for a directory or an empty file.
  [[nodiscard]] static result<minidump> open(const char* path) {
    KVMXX_TRY(image, detail::file_image::open(path));
    return parse(std::move(image));
  }

  /// Parses bytes the caller keeps alive as long as the backend (fuzzers, embedders).
  [[nodiscard]] static result<minidump> from_bytes(std::span<const std::byte> bytes, std::string name = "<memory>") {
    return parse(detail::file_image::borrow(bytes, std::move(name)));
  }

  /// A moved-from minidump is empty: every page is absent, the sections are empty.
  minidump(minidump&& o) noexcept { *this = std::move(o); }
  minidump& operator=(minidump&& o) noexcept {
    if (this != &o) {
      image_ = std::move(o.image_);
      hdr_ = o.hdr_;
      machine_ = o.machine_;
      page_ = o.page_;
      page_shift_ = o.page_shift_;
      avail_ = std::move(o.avail_);
      ranges_ = std::move(o.ranges_);
      bitmap_ = std::move(o.bitmap_);
      sparse_end_ = o.sparse_end_;
      truncated_ = o.truncated_;
      o.reset();
    }
    return *this;
  }
  minidump(const minidump&) = delete;
  minidump& operator=(const minidump&) = delete;

  [[nodiscard]] kvmxx::machine machine() const noexcept { return machine_; }
  [[nodiscard]] os_kind os() const noexcept { return os_kind::freebsd; }
  [[nodiscard]] std::size_t page_size() const noexcept { return static_cast<std::size_t>(page_); }
  [[nodiscard]] const minidump_header_info& header() const noexcept { return hdr_; }
  [[nodiscard]] const char* path() const noexcept { return image_.path(); }
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return image_.bytes(); }
  [[nodiscard]] const std::vector<phys_range>& dump_avail() const noexcept { return avail_; }
  [[nodiscard]] std::uint64_t dumped_page_count() const noexcept { return bitmap_.count(); }

  /// The kernel message buffer section: msgbufsize raw bytes of the ring, without its
  /// read/write indices (§2.1).
  [[nodiscard]] std::span<const std::byte> message_buffer() const noexcept {
    if (!detail::fits(hdr_.msgbuf_off, hdr_.msgbufsize, image_.size())) return {};  // closed or moved-from
    return image_.bytes().subspan(hdr_.msgbuf_off, hdr_.msgbufsize);
  }

  /// Entry i of the page-table section as a little-endian 64-bit value (amd64: PTE for v1,
  /// PDE for v2+); nullopt past the section's end.
  [[nodiscard]] std::optional<std::uint64_t> pmap_entry64(std::size_t i) const noexcept {
    if (i >= hdr_.pmapsize / 8) return std::nullopt;
    return detail::load<std::uint64_t>(image_.data() + hdr_.pmap_off + i * 8);
  }

  /// The file offset of the page holding pa, or nullopt when that page is not dumped.
  /// Pages past the end of a truncated file count as dumped here; page_data() says no.
  [[nodiscard]] std::optional<std::uint64_t> file_offset(physaddr pa) const noexcept {
    const auto bit = bit_of(to_integer(pa) >> page_shift_);
    if (!bit) return std::nullopt;
    const auto rank = bitmap_.rank_if_set(*bit);
    if (!rank) return std::nullopt;
    return hdr_.sparse_off + *rank * page_;  // cannot wrap: bounded by the bitmap at open
  }

  /// The dumped bytes of the page holding pa (page_size() of them), or nullptr.
  [[nodiscard]] const std::byte* page_data(physaddr pa) const noexcept {
    const auto off = file_offset(pa);
    if (!off || *off >= sparse_end_) return nullptr;
    return image_.data() + *off;
  }

  /// The host address of the whole target page holding pa, when its bytes lie in the
  /// mapped file (the translation cache keeps these); nullptr otherwise.
  /// The read path's page lookup (per cache miss on a sparse direct map): page_data()
  /// without optionals, in one pass.
  [[nodiscard]] const std::byte* mapped_page(physaddr pa) const noexcept {
    const std::uint64_t pfn = to_integer(pa) >> page_shift_;
    for (const auto& r : ranges_) {
      if (pfn < r.start_pfn) return nullptr;  // a hole: not dumped
      if (pfn >= r.end_pfn) continue;
      const std::uint64_t rank = bitmap_.rank_or_npos(r.first_bit + (pfn - r.start_pfn));
      if (rank == detail::rank_bitmap::npos) return nullptr;
      const std::uint64_t off = hdr_.sparse_off + (rank << page_shift_);
      return off < sparse_end_ ? image_.data() + off : nullptr;  // sparse_end_: whole pages
    }
    return nullptr;
  }

  /// The host address of [pa, pa + len) (pa page-aligned, len a multiple of the page size)
  /// when every page of it is dumped and in the file: dumped pages are stored in physical
  /// order, so consecutive ranks mean consecutive file pages (§2.3). nullptr otherwise.
  [[nodiscard]] const std::byte* mapped_range(physaddr pa, std::uint64_t len) const noexcept {
    const std::uint64_t first = to_integer(pa);
    if (len < page_ || first % page_ != 0 || len % page_ != 0 || first + len < first) return nullptr;
    const auto a = file_offset(pa);
    const auto b = file_offset(physaddr{first + len - page_});
    if (!a || !b || *b - *a != len - page_ || *b >= sparse_end_) return nullptr;  // sparse_end_: whole pages
    return image_.data() + *a;
  }

  /// The first dumped page at or after pa (for walking every dumped page).
  [[nodiscard]] std::optional<physaddr> dumped_page_after(physaddr pa) const noexcept {
    const std::uint64_t pfn = to_integer(pa) / page_;
    for (const auto& r : ranges_) {
      if (pfn >= r.end_pfn) continue;
      const auto bit = bitmap_.next_set(r.first_bit + (pfn > r.start_pfn ? pfn - r.start_pfn : 0));
      if (!bit) return std::nullopt;
      return pa_of_bit(*bit);  // nullopt for a stray bit in the bitmap's padding
    }
    return std::nullopt;
  }

  /// Copies target physical memory from pa on, crossing pages (see memory_backend).
  /// \errors errc::page_not_dumped when the first page is absent, errc::truncated when it
  /// lies past the end of a truncated file.
  [[nodiscard]] result<std::size_t> read_physical(physaddr pa, std::span<std::byte> out) const noexcept {
    std::size_t done = 0;
    std::uint64_t addr = to_integer(pa);
    while (done < out.size()) {
      const std::uint64_t in_page = addr & (page_ - 1);
      const std::size_t chunk = static_cast<std::size_t>(
          std::min<std::uint64_t>(page_ - in_page, static_cast<std::uint64_t>(out.size() - done)));
      const auto off = file_offset(physaddr{addr});
      if (KVMXX_UNLIKELY(!off || *off >= sparse_end_)) {
        auto ec = !off ? detail::fail(errc::page_not_dumped, "%s: physical address 0x%llx not in minidump", path(),
                                      static_cast<unsigned long long>(addr))
                       : detail::fail(errc::truncated,
                                      "%s: page of physical address 0x%llx at offset 0x%llx is past the end of the "
                                      "truncated file (size 0x%llx)",
                                      path(), static_cast<unsigned long long>(addr),
                                      static_cast<unsigned long long>(*off),
                                      static_cast<unsigned long long>(image_.size()));
        if (done == 0) return ec;
        return done;
      }
      std::memcpy(out.data() + done, image_.data() + *off + in_page, chunk);
      done += chunk;
      addr += chunk;
      if (addr == 0) break;  // wrapped past the top of the physical address space
    }
    return done;
  }

  [[nodiscard]] backend_info info() const {
    backend_info i;
    i.format = std::string("FreeBSD ") + std::string(name_of(machine_)) + " minidump";
    i.arch = machine_;
    i.os = os_kind::freebsd;
    i.format_version = hdr_.version;
    i.page_size = page_size();
    i.ranges = avail_;
    i.dumped_pages = bitmap_.count();
    i.message_buffer_size = hdr_.msgbufsize;
    i.file_size = image_.size();
    return i;
  }

  /// Nothing to report: the file descriptor was closed right after mapping.
  /// Unmaps the file; the backend is then empty (every page absent).
  [[nodiscard]] result<void> close() noexcept {
    reset();
    return success();
  }

 private:
  minidump() = default;

  void reset() noexcept {
    image_ = detail::file_image{};
    hdr_ = {};
    avail_.clear();
    ranges_.clear();
    bitmap_ = {};
    sparse_end_ = 0;
    truncated_ = false;
  }

  struct range_index {
    std::uint64_t start_pfn, end_pfn;  // pages floor(start/P) .. ceil(end/P), as _kvm_pa_bit_id counts
    std::uint64_t first_bit;
  };

  std::optional<std::uint64_t> bit_of(std::uint64_t pfn) const noexcept {
    for (const auto& r : ranges_) {
      if (pfn < r.start_pfn) return std::nullopt;  // a hole: not dumped (libkvm aliases here, §6.7)
      if (pfn < r.end_pfn) return r.first_bit + (pfn - r.start_pfn);
    }
    return std::nullopt;
  }

  std::optional<physaddr> pa_of_bit(std::uint64_t bit) const noexcept {
    for (const auto& r : ranges_)
      if (bit < r.first_bit + (r.end_pfn - r.start_pfn)) return physaddr{(r.start_pfn + (bit - r.first_bit)) * page_};
    return std::nullopt;
  }

  static result<minidump> parse(detail::file_image image) {
    namespace fmt = format::minidump;
    const char* path = image.path();
    const auto bytes = image.bytes();
    if (!probe(bytes)) return detail::fail(errc::not_a_dump, "%s: not a minidump (no \"minidump\" magic)", path);

    // The magic names the architecture. Only amd64 is implemented so far; other known
    // magics are reported as such, so the message tells the user what the file is.
    static constexpr std::string_view known_other[] = {
        "minidump FreeBSD/i386",  "minidump FreeBSD/arm64", "minidump FreeBSD/arm",
        "minidump FreeBSD/riscv", "minidump FreeBSD/powerpc64", "minidump FreeBSD/mips"};
    const std::size_t magic_len = std::min<std::size_t>(bytes.size(), 24);
    const std::string_view magic_field(reinterpret_cast<const char*>(bytes.data()), magic_len);
    const std::string_view magic_text = magic_field.substr(0, magic_field.find('\0'));
    if (magic_text != fmt::amd64::magic) {
      for (auto other : known_other)
        if (magic_text == other)
          return detail::fail(errc::unsupported_format, "%s: %.*s dumps are not supported yet", path,
                              static_cast<int>(other.size()), other.data());
      return detail::fail(errc::not_a_dump, "%s: unknown minidump magic \"%.*s\"", path,
                          static_cast<int>(magic_text.size()), magic_text.data());
    }
    if (bytes.size() < sizeof(fmt::amd64::header))
      return detail::fail(errc::truncated, "%s: minidump header (0x%zx bytes) runs past end of file (size 0x%zx)",
                          path, sizeof(fmt::amd64::header), bytes.size());
    const auto h = detail::load_struct<fmt::amd64::header>(bytes.data());

    minidump md;
    md.machine_ = machine::amd64;
    md.page_ = fmt::amd64::page_size;
    md.page_shift_ = static_cast<unsigned>(std::countr_zero(md.page_));
    auto& hi = md.hdr_;
    hi.version = h.version;
    if (hi.version < fmt::amd64::min_version || hi.version > fmt::amd64::max_version)
      return detail::fail(errc::unsupported_version, "%s: wrong minidump version: expected %u to %u, got %u", path,
                          fmt::amd64::min_version, fmt::amd64::max_version, hi.version);
    hi.msgbufsize = h.msgbufsize;
    hi.bitmapsize = h.bitmapsize;
    hi.pmapsize = h.pmapsize;
    hi.dumpavailsize = hi.version >= fmt::amd64::dump_avail_version ? std::uint64_t{h.dumpavailsize} : 0;
    hi.kernbase = h.kernbase;
    hi.dmapbase = h.dmapbase;
    hi.dmapend = h.dmapend;
    if (hi.bitmapsize == 0) return detail::fail(errc::corrupt, "%s: minidump bitmap is empty (bitmapsize 0)", path);
    if (hi.dmapend < hi.dmapbase)
      return detail::fail(errc::corrupt, "%s: direct map ends (0x%llx) before it starts (0x%llx)", path,
                          static_cast<unsigned long long>(hi.dmapend), static_cast<unsigned long long>(hi.dmapbase));

    // Section offsets (§2.1): every section rounded up to a page. The sizes are 32-bit
    // fields, so none of this can overflow 64 bits, but each section must fit the file.
    const std::uint64_t P = md.page_;
    auto r = [P](std::uint64_t x) { return (x + P - 1) & ~(P - 1); };
    hi.msgbuf_off = P;
    hi.dump_avail_off = hi.msgbuf_off + r(hi.msgbufsize);
    hi.bitmap_off = hi.dump_avail_off + r(hi.dumpavailsize);
    hi.pmap_off = hi.bitmap_off + r(hi.bitmapsize);
    hi.sparse_off = hi.pmap_off + r(hi.pmapsize);
    const struct {
      const char* name;
      std::uint64_t off, size;
    } sections[] = {{"msgbuf", hi.msgbuf_off, hi.msgbufsize},
                    {"dump_avail", hi.dump_avail_off, hi.dumpavailsize},
                    {"bitmap", hi.bitmap_off, hi.bitmapsize},
                    {"page map", hi.pmap_off, hi.pmapsize}};
    for (const auto& s : sections)
      if (!detail::fits(s.off, s.size, bytes.size()))
        return detail::fail(errc::truncated, "%s: minidump %s section (0x%llx bytes at 0x%llx) runs past end of file "
                            "(size 0x%zx)", path, s.name, static_cast<unsigned long long>(s.size),
                            static_cast<unsigned long long>(s.off), bytes.size());

    // Physical ranges the bitmap covers: dump_avail pairs (v3), or [0, bits*P) before it.
    const std::uint64_t bits = hi.bitmapsize * 8;
    if (hi.dumpavailsize > 0) {
      const std::uint64_t npairs = hi.dumpavailsize / 16;
      std::uint64_t prev_end = 0;
      for (std::uint64_t k = 0; k < npairs; ++k) {
        const auto* p = bytes.data() + hi.dump_avail_off + k * 16;
        const auto start = detail::load<std::uint64_t>(p), end = detail::load<std::uint64_t>(p + 8);
        if (end == 0) break;
        if (end < start || start < prev_end)
          return detail::fail(errc::corrupt, "%s: dump_avail entry %llu [0x%llx, 0x%llx) at offset 0x%llx is out of "
                              "order", path, static_cast<unsigned long long>(k),
                              static_cast<unsigned long long>(start), static_cast<unsigned long long>(end),
                              static_cast<unsigned long long>(hi.dump_avail_off + k * 16));
        prev_end = end;
        md.avail_.push_back({physaddr{start}, physaddr{end}});
      }
      if (md.avail_.empty()) return detail::fail(errc::corrupt, "%s: dump_avail section lists no memory", path);
    } else {
      md.avail_.push_back({physaddr{0}, physaddr{bits * P}});  // bits*P < 2^47: no wrap
    }
    std::uint64_t first_bit = 0;
    for (const auto& a : md.avail_) {
      const std::uint64_t s = to_integer(a.start) / P;
      const std::uint64_t e = to_integer(a.end) / P + (to_integer(a.end) % P != 0);
      md.ranges_.push_back({s, e, first_bit});
      first_bit += e - s;
    }

    md.bitmap_ = detail::rank_bitmap(bytes.data() + hi.bitmap_off, static_cast<std::size_t>(hi.bitmapsize));
    // Bits past the last range (page padding of the bitmap) never match an address.
    // The sparse array should hold one page per set bit; a shorter file is truncated
    // (pages past its end fail to read), a longer one is accepted as the kernel pads.
    const auto sparse_size = detail::checked_mul(md.bitmap_.count(), P);
    const auto sparse_end = sparse_size ? detail::checked_add(hi.sparse_off, *sparse_size) : std::nullopt;
    md.sparse_end_ = sparse_end ? std::min<std::uint64_t>(*sparse_end, bytes.size()) : bytes.size();
    // Whole pages only: a page cut by the end of a truncated file is truncated, not padded
    // with the zeros the mapping shows past the end of the file.
    if (md.sparse_end_ > hi.sparse_off) md.sparse_end_ -= (md.sparse_end_ - hi.sparse_off) % P;
    // Whole pages only: a partial last page counts as missing.
    if (md.sparse_end_ > hi.sparse_off) md.sparse_end_ -= (md.sparse_end_ - hi.sparse_off) % P;
    if (!sparse_end || *sparse_end > bytes.size()) md.truncated_ = true;
    image.advise(MADV_RANDOM);
    md.image_ = std::move(image);
    return md;
  }

 public:
  /// True when the file ends before its last dumped page (open still succeeds).
  [[nodiscard]] bool truncated() const noexcept { return truncated_; }

 private:
  detail::file_image image_;
  minidump_header_info hdr_;
  kvmxx::machine machine_ = machine::unknown;
  std::uint64_t page_ = 4096;
  unsigned page_shift_ = 12;  // page_ is a power of two; a division here cost ~30 cycles per read
  std::vector<phys_range> avail_;
  std::vector<range_index> ranges_;
  detail::rank_bitmap bitmap_;
  std::uint64_t sparse_end_ = 0;  // end of the readable sparse area (whole pages)
  bool truncated_ = false;
};

static_assert(memory_backend<minidump>);
static_assert(message_buffer_backend<minidump>);
static_assert(minidump_backend<minidump>);

}  // namespace kvmxx::inline KVMXX_ABI::backend

// SPDX-License-Identifier: BSD-2-Clause
//
// The kernel's own compressed symbol table (kallsyms), decoded from the kernel's memory:
// since Linux 6.0 VMCOREINFO gives the addresses of its arrays (specs/linux-dumps.md §4.1,
// specs/real-linux-dumps.md §10), so a dump alone names every symbol /proc/kallsyms shows.
//
// The encoding (Linux scripts/kallsyms.c writes it, kernel/kallsyms.c reads it):
// * kallsyms_num_syms: a 32-bit count N.
// * kallsyms_names: N entries back to back, each a length L then L token bytes. L is one
//   byte; when its high bit is set (Linux 6.1+, for names longer than 127 tokens) a second
//   byte follows and L = (b0 & 0x7f) | b1 << 7.
// * kallsyms_token_index: 256 16-bit offsets into kallsyms_token_table, one per byte
//   value; kallsyms_token_table: NUL-terminated strings. A name is the concatenation of
//   its bytes' tokens; its first character is the nm(1) type letter (upper-case: global).
// * Addresses, in table order:
//   - kallsyms_offsets (CONFIG_KALLSYMS_BASE_RELATIVE): 32-bit offsets from
//     kallsyms_relative_base. With CONFIG_KALLSYMS_ABSOLUTE_PERCPU (x86_64 SMP) an offset
//     >= 0 is an absolute value (a per-CPU offset, not moved by KASLR) and a negative one
//     means relative_base - 1 - offset; otherwise every offset is unsigned, base + offset.
//     The configuration is not in the dump: the absolute form is recognised by its
//     negative offsets (text lies above the base, so the plain form never has any).
//   - kallsyms_addresses (older layout): one pointer per symbol.
//   kallsyms_relative_base and kallsyms_addresses are relocated when the kernel is moved,
//   so the values read from a KASLR kernel's memory are runtime addresses already.
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/os/linux/vmcoreinfo.hpp>

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvmxx::inline KVMXX_ABI::linux_ {

/// Where the kallsyms arrays are (runtime kernel virtual addresses), as VMCOREINFO says.
struct kallsyms_location {
  std::uint64_t num_syms = 0;
  std::uint64_t names = 0;
  std::uint64_t token_table = 0;
  std::uint64_t token_index = 0;
  std::optional<std::uint64_t> offsets;        ///< with relative_base: the base-relative layout
  std::optional<std::uint64_t> relative_base;
  std::optional<std::uint64_t> addresses;      ///< the absolute layout

  /// Reads the SYMBOL(kallsyms_*) lines.
  /// \errors errc::no_symbol_table when the VMCOREINFO is empty or lacks a line (Linux
  /// before 6.0 writes none), the message naming the first missing one
  [[nodiscard]] static result<kallsyms_location> from_vmcoreinfo(const vmcoreinfo& info) {
    if (info.empty())
      return detail::fail(errc::no_symbol_table, "kallsyms: the dump has no VMCOREINFO, so the kernel's kallsyms "
                                                 "tables cannot be found (give the kernel's System.map with -N)");
    kallsyms_location l;
    const std::pair<const char*, std::uint64_t*> needed[] = {{"kallsyms_num_syms", &l.num_syms},
                                                            {"kallsyms_names", &l.names},
                                                            {"kallsyms_token_table", &l.token_table},
                                                            {"kallsyms_token_index", &l.token_index}};
    for (const auto& [name, out] : needed) {
      const auto v = info.symbol(name);
      if (!v)
        return detail::fail(errc::no_symbol_table,
                            "kallsyms: VMCOREINFO has no SYMBOL(%s) line (Linux writes the kallsyms tables "
                            "there since 6.0)",
                            name);
      *out = *v;
    }
    l.offsets = info.symbol("kallsyms_offsets");
    l.relative_base = info.symbol("kallsyms_relative_base");
    l.addresses = info.symbol("kallsyms_addresses");
    if (!(l.offsets && l.relative_base) && !l.addresses)
      return detail::fail(errc::no_symbol_table,
                          "kallsyms: VMCOREINFO has neither SYMBOL(kallsyms_offsets) with "
                          "SYMBOL(kallsyms_relative_base) nor SYMBOL(kallsyms_addresses)");
    return l;
  }
};

/// Bounds on what decoding reads and keeps, so that a damaged dump costs little.
struct kallsyms_limits {
  std::uint32_t max_symbols = 4u << 20;              ///< a 6.1 allyesconfig kernel has under 1 M
  std::size_t max_name_length = 512;                 ///< KSYM_NAME_LEN (6.1+), the type letter included
  std::size_t max_names_bytes = std::size_t{64} << 20;  ///< the compressed names array
};

/// The layout of the target's integers: kallsyms arrays use the kernel's byte order and
/// pointer width.
struct kallsyms_abi {
  unsigned pointer_size = 8;  ///< 8 or 4
  bool big_endian = false;
};

/// A decoded kallsyms table, in the kernel's table order (address order).
/// Immutable after decoding; safe to read from many threads.
class kallsyms_table {
 public:
  struct entry {
    std::uint64_t value;
    std::uint32_t name_offset;  // into names()
    std::uint16_t name_length;  // without the type letter
    char type;                  // nm(1) letter
  };

  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  [[nodiscard]] const std::vector<entry>& entries() const noexcept { return entries_; }
  [[nodiscard]] std::string_view name(const entry& e) const noexcept {
    return {names_.data() + e.name_offset, e.name_length};
  }
  /// True when the offsets had the CONFIG_KALLSYMS_ABSOLUTE_PERCPU form.
  [[nodiscard]] bool absolute_percpu() const noexcept { return absolute_percpu_; }
  /// kallsyms_relative_base as read (0 for the absolute layout).
  [[nodiscard]] std::uint64_t relative_base() const noexcept { return relative_base_; }

 private:
  template <class Read>
  friend class kallsyms_decoder;
  std::string names_;
  std::vector<entry> entries_;
  bool absolute_percpu_ = false;
  std::uint64_t relative_base_ = 0;
};

/// Reads target kernel memory for the decoder: read(va, out) fills all of `out` or fails.
template <class Read>
concept kallsyms_reader = requires(const Read& r, std::uint64_t va, std::span<std::byte> out) {
  { r(va, out) } -> std::same_as<result<void>>;
};

/// The decoding steps, kept together so that each can fail with the table's name.
template <class Read>
class kallsyms_decoder {
 public:
  kallsyms_decoder(const kallsyms_location& where, const Read& read, kallsyms_abi abi, kallsyms_limits limits)
      : where_(where), read_(read), abi_(abi), limits_(limits) {}

  [[nodiscard]] result<kallsyms_table> run() {
    if (abi_.pointer_size != 4 && abi_.pointer_size != 8)
      return detail::fail(errc::invalid_argument, "kallsyms: pointer size %u is neither 4 nor 8", abi_.pointer_size);
    kallsyms_table t;
    std::array<std::byte, 4> count_bytes{};
    KVMXX_TRYV(read_table("kallsyms_num_syms", where_.num_syms, count_bytes));
    const auto n = static_cast<std::uint32_t>(load(count_bytes.data(), 4));
    if (n == 0) return detail::fail(errc::corrupt, "kallsyms: kallsyms_num_syms at %#llx is 0", ull(where_.num_syms));
    if (n > limits_.max_symbols)
      return detail::fail(errc::corrupt, "kallsyms: kallsyms_num_syms at %#llx is %u, more than the limit of %u",
                          ull(where_.num_syms), n, limits_.max_symbols);
    KVMXX_TRYV(read_tokens());
    KVMXX_TRY(values, read_values(n, t));
    KVMXX_TRYV(read_names(n, values, t));
    return t;
  }

 private:
  static unsigned long long ull(std::uint64_t v) noexcept { return v; }

  std::uint64_t load(const std::byte* p, unsigned size) const noexcept {
    std::uint64_t v = 0;
    for (unsigned k = 0; k < size; ++k) {
      const unsigned shift = abi_.big_endian ? 8 * (size - 1 - k) : 8 * k;
      v |= std::uint64_t{std::to_integer<std::uint8_t>(p[k])} << shift;
    }
    return v;
  }

  [[nodiscard]] result<void> read_table(const char* table, std::uint64_t va, std::span<std::byte> out) const {
    if (out.empty()) return success();
    if (va + (out.size() - 1) < va)
      return detail::fail(errc::corrupt, "kallsyms: %s at %#llx + %zu bytes wraps past the end of the address space",
                          table, ull(va), out.size());
    auto r = read_(va, out);
    if (!r)
      return detail::fail(r.error(), "kallsyms: cannot read %s (%zu bytes at %#llx): %s", table, out.size(), ull(va),
                          describe(r.error()).c_str());
    return success();
  }

  // The 256 tokens, as views into token_bytes_.
  [[nodiscard]] result<void> read_tokens() {
    std::array<std::byte, 512> index{};
    KVMXX_TRYV(read_table("kallsyms_token_index", where_.token_index, index));
    std::array<std::uint16_t, 256> start{};
    std::size_t last = 0;
    for (std::size_t k = 0; k < 256; ++k) {
      start[k] = static_cast<std::uint16_t>(load(index.data() + 2 * k, 2));
      last = std::max<std::size_t>(last, start[k]);
    }
    // Every token ends before the one that starts last, except that one: read up to its
    // start, then on in small steps until its NUL (a token is shorter than a name).
    std::size_t have = last + 1;
    token_bytes_.resize(have);
    KVMXX_TRYV(read_table("kallsyms_token_table", where_.token_table, token_bytes_));
    constexpr std::size_t step = 64;
    while (std::find(token_bytes_.begin() + static_cast<std::ptrdiff_t>(last), token_bytes_.end(), std::byte{0}) ==
           token_bytes_.end()) {
      if (have - last > limits_.max_name_length)
        return detail::fail(errc::corrupt,
                            "kallsyms: the token at offset %zu of kallsyms_token_table (%#llx) has no NUL within %zu "
                            "bytes",
                            last, ull(where_.token_table), limits_.max_name_length);
      token_bytes_.resize(have + step);
      KVMXX_TRYV(read_table("kallsyms_token_table", where_.token_table + have,
                            std::span<std::byte>(token_bytes_).subspan(have)));
      have += step;
    }
    for (std::size_t k = 0; k < 256; ++k) {
      const auto* begin = reinterpret_cast<const char*>(token_bytes_.data()) + start[k];
      const auto* end = reinterpret_cast<const char*>(token_bytes_.data()) + token_bytes_.size();
      const auto* nul = std::find(begin, end, '\0');
      // A token before the last one runs into the next tokens at worst, never off the buffer.
      if (nul == end)
        return detail::fail(errc::corrupt,
                            "kallsyms: token %zu (offset %u of kallsyms_token_table at %#llx) has no NUL",
                            k, unsigned{start[k]}, ull(where_.token_table));
      tokens_[k] = std::string_view(begin, static_cast<std::size_t>(nul - begin));
    }
    return success();
  }

  [[nodiscard]] result<std::vector<std::uint64_t>> read_values(std::uint32_t n, kallsyms_table& t) const {
    if (where_.offsets && where_.relative_base) {
      std::vector<std::byte> raw(std::size_t{n} * 4);
      KVMXX_TRYV(read_table("kallsyms_offsets", *where_.offsets, raw));
      std::vector<std::byte> base(abi_.pointer_size);
      KVMXX_TRYV(read_table("kallsyms_relative_base", *where_.relative_base, base));
      t.relative_base_ = load(base.data(), abi_.pointer_size);
      std::vector<std::uint64_t> values(n);
      bool negative = false;
      for (std::uint32_t i = 0; i < n; ++i) negative |= (load(raw.data() + 4 * std::size_t{i}, 4) >> 31) != 0;
      t.absolute_percpu_ = negative;
      const std::uint64_t mask = abi_.pointer_size == 8 ? ~std::uint64_t{0} : 0xffffffffu;
      for (std::uint32_t i = 0; i < n; ++i) {
        const auto raw_offset = static_cast<std::uint32_t>(load(raw.data() + 4 * std::size_t{i}, 4));
        const auto offset = static_cast<std::int32_t>(raw_offset);
        std::uint64_t v;
        if (!negative)
          v = t.relative_base_ + raw_offset;
        else if (offset >= 0)
          v = raw_offset;  // an absolute per-CPU value
        else  // relative_base - 1 - offset, with -offset computed without overflow
          v = t.relative_base_ - 1 + (std::uint64_t{~raw_offset} + 1);
        values[i] = v & mask;
      }
      return values;
    }
    std::vector<std::byte> raw(std::size_t{n} * abi_.pointer_size);
    KVMXX_TRYV(read_table("kallsyms_addresses", *where_.addresses, raw));
    std::vector<std::uint64_t> values(n);
    for (std::uint32_t i = 0; i < n; ++i)
      values[i] = load(raw.data() + std::size_t{i} * abi_.pointer_size, abi_.pointer_size);
    return values;
  }

  // Reads kallsyms_names in chunks as the decoding walks it.
  class names_stream {
   public:
    names_stream(const kallsyms_decoder& d, std::size_t limit) : d_(d), limit_(limit) {}
    [[nodiscard]] result<std::uint8_t> next() {
      if (pos_ == buffer_.size()) {
        KVMXX_TRYV(refill());
      }
      return std::to_integer<std::uint8_t>(buffer_[pos_++]);
    }
    [[nodiscard]] std::uint64_t offset() const noexcept { return consumed_ - (buffer_.size() - pos_); }

   private:
    [[nodiscard]] result<void> refill() {
      static constexpr std::size_t chunk = 64 * 1024;
      if (consumed_ >= limit_)
        return detail::fail(errc::corrupt, "kallsyms: kallsyms_names at %#llx is longer than the limit of %zu bytes",
                            ull(d_.where_.names), limit_);
      const std::uint64_t va = d_.where_.names + consumed_;
      // Up to the next chunk boundary of the table, so that a read ends with the table's
      // last page where it can (the page after it may be missing from the dump).
      std::size_t len = chunk - static_cast<std::size_t>(va % chunk);
      len = std::min(len, limit_ - static_cast<std::size_t>(consumed_));
      // The table's size is not known, so a chunk may run past its end into memory that
      // cannot be read: then retry up to the page's end, then a single byte (only the
      // table's own bytes must be readable).
      const std::size_t to_page = 4096 - static_cast<std::size_t>(va % 4096);
      std::size_t tried = 0;
      for (const std::size_t n : {len, std::min(len, to_page), std::size_t{1}}) {
        if (n == tried) continue;  // the same read as the try before
        tried = n;
        buffer_.resize(n);
        auto r = d_.read_table("kallsyms_names", va, buffer_);
        if (r) break;
        if (n == 1) return r.error();
      }
      consumed_ += buffer_.size();
      pos_ = 0;
      return success();
    }
    const kallsyms_decoder& d_;
    std::size_t limit_;
    std::vector<std::byte> buffer_;
    std::size_t pos_ = 0;
    std::uint64_t consumed_ = 0;
  };

  [[nodiscard]] result<void> read_names(std::uint32_t n, const std::vector<std::uint64_t>& values,
                                        kallsyms_table& t) const {
    names_stream s(*this, limits_.max_names_bytes);
    t.entries_.reserve(std::min<std::size_t>(n, 1u << 18));
    std::string name;
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint64_t at = s.offset();
      KVMXX_TRY(b0, s.next());
      std::size_t len = b0;
      if (b0 & 0x80) {
        KVMXX_TRY(b1, s.next());
        len = (b0 & 0x7fu) | std::size_t{b1} << 7;
      }
      if (len == 0)
        return detail::fail(errc::corrupt, "kallsyms: symbol %u (kallsyms_names + %#llx) has an empty name", i,
                            ull(at));
      if (len > limits_.max_name_length)
        return detail::fail(errc::corrupt,
                            "kallsyms: symbol %u (kallsyms_names + %#llx) has %zu name bytes, more than the "
                            "limit of %zu",
                            i, ull(at), len, limits_.max_name_length);
      name.clear();
      for (std::size_t k = 0; k < len; ++k) {
        KVMXX_TRY(byte, s.next());
        name += tokens_[byte];
        if (name.size() > limits_.max_name_length)
          return detail::fail(errc::corrupt,
                              "kallsyms: symbol %u (kallsyms_names + %#llx) expands to more than %zu characters", i,
                              ull(at), limits_.max_name_length);
      }
      if (name.size() < 2)
        return detail::fail(errc::corrupt,
                            "kallsyms: symbol %u (kallsyms_names + %#llx) expands to \"%s\": no type letter and name",
                            i, ull(at), name.c_str());
      const char type = name[0];
      if (static_cast<unsigned char>(type) <= 0x20 || static_cast<unsigned char>(type) >= 0x7f)
        return detail::fail(errc::corrupt, "kallsyms: symbol %u (kallsyms_names + %#llx) has type byte %#x", i, ull(at),
                            unsigned{static_cast<unsigned char>(type)});
      if (t.names_.size() + name.size() > UINT32_MAX)
        return detail::fail(errc::corrupt, "kallsyms: more than 4 GiB of names");
      t.entries_.push_back({values[i], static_cast<std::uint32_t>(t.names_.size()),
                            static_cast<std::uint16_t>(name.size() - 1), type});
      t.names_.append(name, 1);
    }
    t.names_.shrink_to_fit();
    t.entries_.shrink_to_fit();
    return success();
  }

  kallsyms_location where_;
  const Read& read_;
  kallsyms_abi abi_;
  kallsyms_limits limits_;
  std::vector<std::byte> token_bytes_;
  std::array<std::string_view, 256> tokens_{};
};

/// Decodes the kallsyms tables at `where`, reading target memory through `read`.
/// \code
///   auto where = kvmxx::linux_::kallsyms_location::from_vmcoreinfo(core.vmcoreinfo());
///   auto table = kvmxx::linux_::decode_kallsyms(where.value(), kvmxx::linux_::kernel_reader(arch, core));
/// \endcode
/// \errors errc::corrupt for a count of 0 or above limits.max_symbols, a token without a
/// NUL, a name of 0 bytes or longer than limits.max_name_length, a non-printable type
/// letter, or names longer than limits.max_names_bytes — each naming the table, symbol
/// number and offset; the read's own errors (unmapped_address, page_not_dumped, …)
/// prefixed with the table being read
template <kallsyms_reader Read>
[[nodiscard]] result<kallsyms_table> decode_kallsyms(const kallsyms_location& where, const Read& read,
                                                     kallsyms_abi abi = {}, kallsyms_limits limits = {}) {
  return kallsyms_decoder<Read>(where, read, abi, limits).run();
}

/// A kallsyms_reader reading kernel virtual memory through an architecture's page walk
/// and a backend's physical reads, or straight from a backend that reads virtual
/// addresses itself (/proc/kcore) — no handle needed, so it works while one is being built.
template <class Arch, class Backend>
requires translation_arch<Arch, Backend>
class kernel_reader {
 public:
  kernel_reader(const Arch& arch, const Backend& backend) noexcept : arch_(arch), backend_(backend) {}

  /// \errors those of Arch::translate and Backend::read_physical; errc::page_not_dumped
  /// when a physical read stops short
  [[nodiscard]] result<void> operator()(std::uint64_t va, std::span<std::byte> out) const {
    std::size_t done = 0;
    if constexpr (virtual_backend<Backend>) {
      while (done < out.size()) {
        KVMXX_TRY(got, backend_.read_virtual(kvaddr{va + done}, out.subspan(done)));
        if (got == 0)
          return detail::fail(errc::page_not_dumped, "%#llx: no bytes could be read",
                              static_cast<unsigned long long>(va + done));
        done += got;
      }
      return success();
    }
    while (done < out.size()) {
      KVMXX_TRY(tr, arch_.translate(backend_, kvaddr{va + done}));
      const std::size_t want = std::min(out.size() - done, tr.contiguous);
      KVMXX_TRY(got, backend_.read_physical(tr.pa, out.subspan(done, want)));
      if (got == 0)
        return detail::fail(errc::page_not_dumped, "%#llx: no bytes could be read",
                            static_cast<unsigned long long>(va + done));
      done += got;
    }
    return success();
  }

 private:
  const Arch& arch_;
  const Backend& backend_;
};

}  // namespace kvmxx::inline KVMXX_ABI::linux_

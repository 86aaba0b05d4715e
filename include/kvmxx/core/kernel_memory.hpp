// SPDX-License-Identifier: BSD-2-Clause
//
// kernel_memory<Backend, Arch, Resolver>: the handle. Open modes are named constructors
// returning result<kernel_memory> (DESIGN.md "Open modes are named constructors"); the
// architecture's translation is a template parameter, so read() inlines the walk.
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/kernel_file.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/detail/tlb.hpp>
#include <kvmxx/resolver/none.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace kvmxx::inline KVMXX_ABI {

namespace backend {
class null;
class live_physical;
class live_virtual;
}  // namespace backend
struct live_options;

namespace detail {
/// The error a short read becomes in the all-or-nothing calls (read_exact, read_as): the
/// failure that stopped the read, as recorded for this thread.
inline std::error_code short_read_error() noexcept {
  const auto& rec = last_error_record();
  return rec.code ? rec.code : make_error_code(errc::page_not_dumped);
}
}  // namespace detail

/// Backends whose pages lie in a mapped file that never changes (crash dumps): the handle
/// may cache virtual page → host address per thread (detail/tlb.hpp). Live sources are not.
template <class B>
concept mapped_backend = memory_backend<B> && !virtual_backend<B> && requires(const B& cb, physaddr pa) {
  { cb.mapped_page(pa) } noexcept -> std::same_as<const std::byte*>;
};

/// Backends that open from a core file path (crash dumps).
template <class B>
concept dump_file_backend = memory_backend<B> && requires(const char* path) {
  { B::open(path) } -> std::same_as<result<B>>;
};
/// Backends that open a live memory device.
template <class B>
concept live_device_backend = memory_backend<B> && requires(const live_options& o) {
  { B::open(o) } -> std::same_as<result<B>>;
};

/// A handle on the memory of one kernel: a crash dump, a live system, or nothing (null
/// mode). Move-only; the destructor closes what the backend owns.
///
/// * read() is thread-safe: many threads may read through one handle at once.
/// * Every failure returns an error code and records a message for the calling thread
///   that says what failed and where: kvmxx::describe(ec).
///
/// \code
///   using handle = kvmxx::kernel_memory<kvmxx::backend::minidump, kvmxx::arch::amd64,
///                                       kvmxx::resolver::elf_symtab>;
///   auto km = handle::open_dump("/boot/kernel/kernel", "/var/crash/vmcore.0");
///   if (!km) return std::fprintf(stderr, "%s\n", kvmxx::describe(km.error()).c_str()), 1;
///   auto hz = km.value().address_of("hz");
///   if (hz) if (auto v = km.value().read_as<int>(hz.value())) std::printf("hz = %d\n", v.value());
/// \endcode
template <class Backend, class Arch, class Resolver>
class kernel_memory {
  static_assert(memory_backend<Backend>, "kvmxx: Backend must model kvmxx::memory_backend");
  static_assert(translation_arch<Arch, Backend>, "kvmxx: Arch must model kvmxx::translation_arch<Backend>");
  static_assert(symbol_resolver<Resolver>, "kvmxx: Resolver must model kvmxx::symbol_resolver");

 public:
  using backend_type = Backend;
  using arch_type = Arch;
  using resolver_type = Resolver;

  // ---- opening -------------------------------------------------------------------

  /// Takes an opened backend and a resolver (the building block of the other modes).
  /// \errors errc::arch_mismatch when the backend's machine is not Arch's
  [[nodiscard]] static result<kernel_memory> adopt(Backend backend, Resolver resolver,
                                                   std::optional<kernel_file_info> kernel = std::nullopt) {
    if (backend.machine() != Arch::id)
      return detail::fail(errc::arch_mismatch, "%s: the image is for %s, but this handle was compiled for %s",
                          backend.info().format.c_str(), name_of(backend.machine()).data(), name_of(Arch::id).data());
    return kernel_memory(std::move(backend), std::move(resolver), kernel);
  }

  /// A crash dump, with symbols from the kernel file (kvm_openfiles(kernel, core, …)).
  /// `kernel` may be nullptr: no symbols then. With a kernel, its ELF header must name the
  /// dump's architecture (libkvm's probe, specs/freebsd-libkvm.md §1.6). The core is opened
  /// first, so a missing core is reported before a missing kernel, as libkvm does.
  /// \errors the backend's open errors; errc::not_a_kernel, errc::arch_mismatch, the
  /// resolver's open errors; system errors naming the path
  [[nodiscard]] static result<kernel_memory> open_dump(const char* kernel, const char* core)
    requires dump_file_backend<Backend> && (kernel_file_resolver<Resolver> || std::default_initializable<Resolver>)
  {
    KVMXX_TRY(b, Backend::open(core));
    KVMXX_TRY(k, check_kernel(kernel, b));
    if constexpr (kernel_file_resolver<Resolver>) {
      if (kernel != nullptr) {
        KVMXX_TRY(r, Resolver::open(kernel));
        return adopt(std::move(b), std::move(r), k);
      }
      if constexpr (std::default_initializable<Resolver>) return adopt(std::move(b), Resolver{}, k);
      else return detail::fail(errc::no_symbol_table, "%s: this handle's resolver needs a kernel file", core);
    } else {
      return adopt(std::move(b), Resolver{}, k);
    }
  }

  /// A crash dump with a caller-supplied resolver — kvm_open2's case. The kernel file, if
  /// given, is only probed for its architecture.
  [[nodiscard]] static result<kernel_memory> open_dump(const char* kernel, const char* core, Resolver resolver)
    requires dump_file_backend<Backend>
  {
    KVMXX_TRY(b, Backend::open(core));
    KVMXX_TRY(k, check_kernel(kernel, b));
    return adopt(std::move(b), std::move(resolver), k);
  }

  /// The running kernel, through a memory device (kvm_openfiles(kernel, NULL, …)): the
  /// device and access mode are in `options`. The kernel file supplies symbols.
  [[nodiscard]] static result<kernel_memory> open_live(const char* kernel, const live_options& options)
    requires live_device_backend<Backend> && (kernel_file_resolver<Resolver> || std::default_initializable<Resolver>)
  {
    KVMXX_TRY(b, Backend::open(options));
    KVMXX_TRY(k, check_kernel(kernel, b));
    if constexpr (kernel_file_resolver<Resolver>) {
      if (kernel != nullptr) {
        KVMXX_TRY(r, Resolver::open(kernel));
        return adopt(std::move(b), std::move(r), k);
      }
    }
    if constexpr (std::default_initializable<Resolver>) return adopt(std::move(b), Resolver{}, k);
    else return detail::fail(errc::no_symbol_table, "live kernel: this handle's resolver needs a kernel file");
  }

  /// The running kernel with a caller-supplied resolver.
  [[nodiscard]] static result<kernel_memory> open_live(const char* kernel, const live_options& options,
                                                       Resolver resolver)
    requires live_device_backend<Backend>
  {
    KVMXX_TRY(b, Backend::open(options));
    KVMXX_TRY(k, check_kernel(kernel, b));
    return adopt(std::move(b), std::move(resolver), k);
  }

  /// No memory at all — the "/dev/null" core of ps(1)-like tools: symbols (if a kernel is
  /// given) but every read fails with errc::no_memory_source.
  [[nodiscard]] static result<kernel_memory> open_null(const char* kernel = nullptr)
    requires std::same_as<Backend, backend::null> &&
             (kernel_file_resolver<Resolver> || std::default_initializable<Resolver>)
  {
    machine m = Arch::id;
    std::optional<kernel_file_info> k;
    if (kernel != nullptr) {
      KVMXX_TRY(info, probe_kernel_file(kernel));
      k = info;
      m = info.arch;
    }
    Backend b(m);
    if constexpr (kernel_file_resolver<Resolver>) {
      if (kernel != nullptr) {
        KVMXX_TRY(r, Resolver::open(kernel));
        return adopt(std::move(b), std::move(r), k);
      }
    }
    if constexpr (std::default_initializable<Resolver>) return adopt(std::move(b), Resolver{}, k);
    else return detail::fail(errc::no_symbol_table, "null mode: this handle's resolver needs a kernel file");
  }

  // A moved-from handle gets a fresh cache tag: the cached pages belong to the new owner.
  kernel_memory(kernel_memory&& o) noexcept(std::is_nothrow_move_constructible_v<Backend> &&
                                            std::is_nothrow_move_constructible_v<Resolver>)
      : backend_(std::move(o.backend_)),
        arch_(std::move(o.arch_)),
        resolver_(std::move(o.resolver_)),
        kernel_(std::move(o.kernel_)),
        closed_(o.closed_),
        generation_(std::exchange(o.generation_, detail::next_tlb_generation())) {}
  kernel_memory& operator=(kernel_memory&& o) noexcept(std::is_nothrow_move_assignable_v<Backend> &&
                                                       std::is_nothrow_move_assignable_v<Resolver>) {
    if (this != &o) {
      backend_ = std::move(o.backend_);
      arch_ = std::move(o.arch_);
      resolver_ = std::move(o.resolver_);
      kernel_ = std::move(o.kernel_);
      closed_ = o.closed_;
      generation_ = std::exchange(o.generation_, detail::next_tlb_generation());
    }
    return *this;
  }
  kernel_memory(const kernel_memory&) = delete;
  kernel_memory& operator=(const kernel_memory&) = delete;
  ~kernel_memory() = default;  // the backend's members close what it owns

  /// Closes the memory source now and reports close(2) errors (kvm_close's result). Every
  /// later memory access (read, write, translate, walk_pages) fails with
  /// errc::no_memory_source; symbol lookups keep working, the resolver being separate from
  /// the memory source. Closing twice is a no-op.
  [[nodiscard]] result<void> close() noexcept {
    if (closed_) return success();
    closed_ = true;
    generation_ = detail::next_tlb_generation();  // forget the cached pages
    if constexpr (requires(Backend& b) { { b.close() } -> std::same_as<result<void>>; }) return backend_.close();
    else return success();
  }

  // ---- memory ----------------------------------------------------------------------

  /// Reads kernel virtual memory, crossing pages. If the first byte cannot be read, fails;
  /// if a later page cannot be, returns the bytes read before it (a short count) and the
  /// calling thread's last_error_message() says why it stopped. This differs from
  /// kvm_read2, which returns -1 even after a partial copy (specs/freebsd-libkvm.md §6.8).
  /// Reading 0 bytes succeeds without translating anything.
  /// \errors errc::unmapped_address, errc::page_not_dumped, errc::truncated,
  /// errc::no_memory_source, system errors of live devices
  [[nodiscard]] result<std::size_t> read(kvaddr va, std::span<std::byte> out) const noexcept {
    if (KVMXX_UNLIKELY(closed_)) return closed_error();
    if constexpr (virtual_backend<Backend>) {
      return backend_.read_virtual(va, out);
    } else if constexpr (mapped_backend<Backend>) {
      if (out.empty()) return std::size_t{0};  // its data() may be null: no memcpy with it
      return read_mapped(to_integer(va), out);
    } else {
      return read_uncached(va, out);
    }
  }

 private:
  static constexpr std::uint64_t tlb_block = std::uint64_t{1} << detail::tlb_block_shift;

  // Whether Arch can resume a walk at the page table of a block (translate_leaf).
  static constexpr bool resumable_arch = requires(const Arch& a, const Backend& b, physaddr table) {
    { a.translate_leaf(b, kvaddr{}, table) } -> std::same_as<result<translation>>;
  };

  // A block entry without bytes holds in pa the block's physical address, or (bit 0 set —
  // never a block's address: blocks are cached only when even) the page table that maps
  // the block's 4 KiB pages. The physical address of addr inside block b, or nullopt when
  // the page table says it is not mapped.
  [[nodiscard]] std::optional<std::uint64_t> pa_in_block(const detail::tlb_entry& b, std::uint64_t addr) const noexcept {
    if ((b.pa & 1) == 0) return b.pa + (addr & (tlb_block - 1));
    if constexpr (resumable_arch) {
      auto t = arch_.translate_leaf(backend_, kvaddr{addr}, physaddr{b.pa & ~std::uint64_t{1}});
      if (t) return to_integer(t.value().pa);
    }
    return std::nullopt;
  }

  // The per-thread translation cache's hit path (detail/tlb.hpp), straight-line for the
  // common cases so that it inlines into the caller's loop: the read lies in one cached
  // block (the copy's length is then the caller's, a constant when it reads an object), or
  // in one page of a block whose physical address or page table is cached. Everything else
  // goes through read_mapped_loop, and misses out of line to fill_tlb.
  [[nodiscard]] result<std::size_t> read_mapped(std::uint64_t addr, std::span<std::byte> out) const noexcept {
    constexpr unsigned bshift = detail::tlb_block_shift;
    detail::thread_tlb_tables* tlb = detail::thread_tlb();
    if (KVMXX_UNLIKELY(tlb == nullptr)) return read_uncached(kvaddr{addr}, out);  // no memory for the cache
    const detail::tlb_entry& b = tlb->block[detail::tlb_slot<detail::tlb_block_entries>(addr >> bshift)];
    if (KVMXX_LIKELY(b.generation == generation_ && b.vpage == addr >> bshift)) {
      if (KVMXX_LIKELY(b.host != nullptr)) {
        if (KVMXX_LIKELY((addr & (tlb_block - 1)) + out.size() <= tlb_block)) {
          std::memcpy(out.data(), b.host + (addr & (tlb_block - 1)), out.size());
          return out.size();
        }
      } else if (const auto pa = pa_in_block(b, addr)) {
        // Pages scattered in the file (a sparse minidump's direct map) or mapped one by one:
        // one file lookup finds the page. Random reads here would miss a page cache, so
        // none is kept.
        constexpr std::uint64_t page = Arch::page_size;
        if ((*pa & (page - 1)) + out.size() <= page) {
          if (const std::byte* h = backend_.mapped_page(physaddr{*pa & ~(page - 1)})) {
            std::memcpy(out.data(), h + (*pa & (page - 1)), out.size());
            return out.size();
          }
        }
      }
    }
    return read_mapped_loop(*tlb, addr, out);
  }

  [[nodiscard]] result<std::size_t> read_mapped_loop(detail::thread_tlb_tables& tlb, std::uint64_t addr,
                                                     std::span<std::byte> out) const noexcept {
    constexpr std::uint64_t page = Arch::page_size;
    constexpr unsigned shift = std::countr_zero(page);
    static_assert(std::has_single_bit(page));
    constexpr unsigned bshift = detail::tlb_block_shift;
    std::size_t done = 0;
    while (done < out.size()) {
      const std::byte* host;
      std::uint64_t avail;
      const detail::tlb_entry& b = tlb.block[detail::tlb_slot<detail::tlb_block_entries>(addr >> bshift)];
      const bool in_block = b.generation == generation_ && b.vpage == addr >> bshift;
      if (KVMXX_LIKELY(in_block && b.host != nullptr)) {
        host = b.host + (addr & (tlb_block - 1));
        avail = tlb_block - (addr & (tlb_block - 1));
      } else {
        const detail::tlb_entry& p = tlb.page[detail::tlb_slot<detail::tlb_page_entries>(addr >> shift)];
        if (KVMXX_LIKELY(p.generation == generation_ && p.vpage == addr >> shift)) {
          host = p.host + (addr & (page - 1));
          avail = page - (addr & (page - 1));
        } else {
          host = fill_tlb(tlb, addr, avail, in_block ? &b : nullptr);
          if (host == nullptr) {  // not wholly in the file: the general path says why
            auto rest = read_uncached(kvaddr{addr}, out.subspan(done));
            if (!rest) return done == 0 ? rest : result<std::size_t>(done);
            return done + rest.value();
          }
        }
      }
      const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(avail, out.size() - done));
      std::memcpy(out.data() + done, host, chunk);
      done += chunk;
      addr += chunk;
    }
    return done;
  }

  // A translation-cache miss. Inside a cached block without bytes (known), pa_in_block
  // needs no full walk; otherwise translate, and cache the 2 MiB block when one leaf maps
  // it (with its host address when its bytes are contiguous in the file), or its page table
  // when 4 KiB pages map it. Then cache the page when its bytes are in the file. Returns the
  // host address of addr and (in avail) how many bytes from there the entry covers, or
  // nullptr.
  KVMXX_NOINLINE const std::byte* fill_tlb(detail::thread_tlb_tables& tlb, std::uint64_t addr, std::uint64_t& avail,
                                           const detail::tlb_entry* known) const noexcept {
    constexpr std::uint64_t page = Arch::page_size;
    constexpr unsigned shift = std::countr_zero(page);
    constexpr unsigned bshift = detail::tlb_block_shift;
    std::uint64_t pa;
    if (known != nullptr) {
      const auto p = pa_in_block(*known, addr);
      if (!p) return nullptr;
      pa = *p;
    } else {
      auto t = arch_.translate(backend_, kvaddr{addr});
      if (!t) return nullptr;
      pa = to_integer(t.value().pa);
      const std::uint64_t bs = t.value().block_size;
      const std::uint64_t in = addr & (tlb_block - 1);
      detail::tlb_entry& slot = tlb.block[detail::tlb_slot<detail::tlb_block_entries>(addr >> bshift)];
      if (bs >= tlb_block && bs % tlb_block == 0 && ((pa - in) & 1) == 0) {
        const std::byte* h = nullptr;
        if constexpr (requires { { backend_.mapped_range(physaddr{}, std::uint64_t{}) } -> std::same_as<const std::byte*>; })
          h = backend_.mapped_range(physaddr{pa - in}, tlb_block);
        slot = {generation_, addr >> bshift, h, pa - in};
        if (h != nullptr) {
          avail = tlb_block - in;
          return h + in;
        }
      } else if (resumable_arch && t.value().leaf_table != 0 && (t.value().leaf_table & 1) == 0) {
        slot = {generation_, addr >> bshift, nullptr, t.value().leaf_table | 1};
      }
    }
    const std::uint64_t in = addr & (page - 1);
    const std::byte* h = backend_.mapped_page(physaddr{pa - in});
    if (h == nullptr) return nullptr;
    tlb.page[detail::tlb_slot<detail::tlb_page_entries>(addr >> shift)] = {generation_, addr >> shift, h, pa - in};
    avail = page - in;
    return h + in;
  }

  // The general read: translate, read_physical, cross pages; short count after the first page.
  [[nodiscard]] result<std::size_t> read_uncached(kvaddr va, std::span<std::byte> out) const noexcept {
    std::size_t done = 0;
    std::uint64_t addr = to_integer(va);
    while (done < out.size()) {
      auto t = arch_.translate(backend_, kvaddr{addr});
      if (KVMXX_UNLIKELY(!t)) {
        if (done == 0) return t.error();
        return done;
      }
      const std::size_t chunk = std::min(t.value().contiguous, out.size() - done);
      auto got = backend_.read_physical(t.value().pa, out.subspan(done, chunk));
      if (KVMXX_UNLIKELY(!got)) {
        const auto ec = name_virtual_address(got.error(), addr);
        if (done == 0) return ec;
        return done;
      }
      done += got.value();
      if (got.value() < chunk) {  // the backend recorded why
        (void)name_virtual_address(detail::last_error_record().code, addr + got.value());
        break;
      }
      addr += chunk;
    }
    return done;
  }

 public:
  /// Reads exactly out.size() bytes or fails (a short read becomes the error that stopped it).
  [[nodiscard]] result<void> read_exact(kvaddr va, std::span<std::byte> out) const noexcept {
    KVMXX_TRY(n, read(va, out));
    if (n != out.size()) return detail::short_read_error();
    return success();
  }

  /// Reads one object (whole or nothing), in the host's representation.
  template <class T>
    requires std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>
  [[nodiscard]] result<T> read_as(kvaddr va) const noexcept {
    std::array<std::byte, sizeof(T)> raw{};
    KVMXX_TRYV(read_exact(va, raw));
    T v;
    std::memcpy(&v, raw.data(), sizeof v);
    return v;
  }

  /// Reads target physical memory (same short-read rule as read()).
  [[nodiscard]] result<std::size_t> read_physical(physaddr pa, std::span<std::byte> out) const noexcept {
    if (KVMXX_UNLIKELY(closed_)) return closed_error();
    return backend_.read_physical(pa, out);
  }

  /// Writes kernel virtual memory of a live kernel opened with access::read_write.
  /// \errors errc::read_only for dumps and read-only handles; translation errors
  [[nodiscard]] result<std::size_t> write(kvaddr va, std::span<const std::byte> in) const noexcept {
    if (KVMXX_UNLIKELY(closed_)) return closed_error();
    if constexpr (!writable_backend<Backend>) {
      return detail::fail(errc::read_only, "%s: cannot write to a crash dump (0x%zx bytes at 0x%llx)",
                          backend_format(), in.size(), static_cast<unsigned long long>(to_integer(va)));
    } else if constexpr (virtual_backend<Backend>) {
      return backend_.write_at(to_integer(va), in);
    } else {
      if (!backend_.writable()) return backend_.write_at(to_integer(va), in);  // reports read-only
      std::size_t done = 0;
      std::uint64_t addr = to_integer(va);
      while (done < in.size()) {
        auto t = arch_.translate(backend_, kvaddr{addr});
        if (!t) {
          if (done == 0) return t.error();
          return done;
        }
        const std::size_t chunk = std::min(t.value().contiguous, in.size() - done);
        auto put = backend_.write_at(to_integer(t.value().pa), in.subspan(done, chunk));
        if (!put) {
          if (done == 0) return put.error();
          return done;
        }
        done += put.value();
        if (put.value() < chunk) break;
        addr += chunk;
      }
      return done;
    }
  }

  /// Virtual → physical (libkvm's kvatop): the physical address and how many bytes are
  /// contiguous from there.
  /// \errors errc::unmapped_address, errc::page_not_dumped (a page-table page is missing),
  /// errc::not_supported for backends that read virtual addresses themselves
  [[nodiscard]] result<translation> translate(kvaddr va) const noexcept {
    if (KVMXX_UNLIKELY(closed_)) return closed_error();
    if constexpr (virtual_backend<Backend>) {
      return detail::fail(errc::not_supported, "%s: translate(0x%llx): this source reads virtual addresses directly",
                          backend_format(), static_cast<unsigned long long>(to_integer(va)));
    } else {
      return arch_.translate(backend_, va);
    }
  }

  /// Reports every kernel mapping, then every dumped page reachable only through the
  /// direct map (kvm_walk_pages as it was meant; specs/freebsd-libkvm.md §2.4). f takes a
  /// const page_info& and returns bool (false stops the walk).
  /// \returns true when everything was walked, false when f stopped it
  /// \errors errc::not_supported when the backend/architecture has no page walk
  template <class F>
  [[nodiscard]] result<bool> walk_pages(F&& f) const {
    if (closed_) return closed_error();
    if constexpr (page_walking_arch<Arch, Backend>) {
      return arch_.walk_pages(backend_, [&](const page_info& p) { return static_cast<bool>(f(p)); });
    } else {
      return detail::fail(errc::not_supported, "%s: walk_pages is not supported for this kind of image",
                          backend_format());
    }
  }

  // ---- symbols ---------------------------------------------------------------------

  /// \errors errc::symbol_not_found, errc::no_symbol_table
  [[nodiscard]] result<symbol> lookup(std::string_view name) const { return resolver_.lookup(name); }

  [[nodiscard]] result<kvaddr> address_of(std::string_view name) const {
    KVMXX_TRY(s, resolver_.lookup(name));
    return s.value;
  }

  /// kvm_nlist2: resolves entries up to the first empty name; found entries get a non-zero
  /// type and their address, others 0/0. Returns how many were not found.
  /// \errors errc::no_symbol_table when there is nothing to look names up in (kvm_nlist2's -1)
  [[nodiscard]] result<std::size_t> lookup(std::span<nlist_entry> entries) const {
    std::size_t missing = 0;
    for (auto& e : entries) {
      if (e.name.empty()) break;
      auto s = resolver_.lookup(e.name);
      if (s) {
        e.type = s.value().type != 0 ? s.value().type : std::uint8_t{nlist_type::data | nlist_type::ext};
        e.value = s.value().value;
      } else {
        if (s.error() == errc::no_symbol_table) return s.error();
        e.type = 0;
        e.value = kvaddr{0};
        ++missing;
      }
    }
    return missing;
  }

  // ---- about the target ----------------------------------------------------------

  [[nodiscard]] machine target_machine() const noexcept { return backend_.machine(); }
  [[nodiscard]] os_kind os() const noexcept { return backend_.os(); }
  /// kvm_native: the target's architecture is the host's.
  [[nodiscard]] bool native() const noexcept { return backend_.machine() == host_machine; }
  /// kvm_kerndisp: runtime kernel base minus link-time base (0 when there is none or it
  /// is unknown; FreeBSD has no KASLR on amd64).
  [[nodiscard]] std::int64_t kerndisp() const noexcept {
    if constexpr (requires(const Backend& b) { { b.kerndisp() } noexcept -> std::same_as<std::int64_t>; })
      return backend_.kerndisp();
    else
      return 0;
  }
  [[nodiscard]] backend_info info() const { return backend_.info(); }
  /// The kernel file's ELF facts, when a kernel file was given.
  [[nodiscard]] const std::optional<kernel_file_info>& kernel_file() const noexcept { return kernel_; }

  /// The policies themselves: the backend's format-specific metadata (minidump header,
  /// message buffer, …) lives there.
  [[nodiscard]] const Backend& source() const noexcept { return backend_; }
  [[nodiscard]] const Arch& arch() const noexcept { return arch_; }
  [[nodiscard]] const Resolver& resolver() const noexcept { return resolver_; }

 private:
  kernel_memory(Backend b, Resolver r, std::optional<kernel_file_info> k) noexcept(
      std::is_nothrow_move_constructible_v<Backend> && std::is_nothrow_move_constructible_v<Resolver>)
      : backend_(std::move(b)), resolver_(std::move(r)), kernel_(k) {}

  static result<std::optional<kernel_file_info>> check_kernel(const char* kernel, const Backend& b) {
    if (kernel == nullptr) return std::optional<kernel_file_info>{};
    KVMXX_TRY(k, probe_kernel_file(kernel));
    if (k.arch != b.machine())
      return detail::fail(errc::arch_mismatch, "%s is a kernel for %s, but the memory image is for %s", kernel,
                          name_of(k.arch).data(), name_of(b.machine()).data());
    return std::optional<kernel_file_info>{k};
  }

  const char* backend_format() const noexcept {
    if constexpr (requires(const Backend& b) { { b.path() } -> std::convertible_to<const char*>; })
      return backend_.path();
    else
      return "memory image";
  }

  // The backend speaks of physical addresses; the caller asked for a virtual one.
  static std::error_code name_virtual_address(std::error_code ec, std::uint64_t va) noexcept {
    const std::string& msg = detail::last_error_record().message;
    if (detail::last_error_record().code != ec) return ec;
    try {
      const std::string copy = msg;
      return detail::fail(ec, "virtual address 0x%llx: %s", static_cast<unsigned long long>(va), copy.c_str());
    } catch (...) {
      return ec;
    }
  }

  static std::error_code closed_error() noexcept {
    return detail::fail(errc::no_memory_source, "the handle was closed");
  }

  Backend backend_;
  [[no_unique_address]] Arch arch_{};
  [[no_unique_address]] Resolver resolver_;
  std::optional<kernel_file_info> kernel_;
  bool closed_ = false;
  std::uint64_t generation_ = detail::next_tlb_generation();  // tags this handle's cached pages
};

}  // namespace kvmxx::inline KVMXX_ABI

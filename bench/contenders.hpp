// SPDX-License-Identifier: BSD-2-Clause
//
// kvmxx as a contender (case.hpp's reader): through its typed handle, and through the
// handles kvmxx::open / open_dump_handle / open_any hand out at run time. The limit is in
// limit.hpp, the peer in peer_kdumpfile.hpp.
#pragma once
#include "case.hpp"
#include "limit.hpp"

#include <kvmxx/core/any_kernel_memory.hpp>
#include <kvmxx/core/open.hpp>

#include <array>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace kvmxx_bench {

[[noreturn]] inline void throw_kvmxx(const char* what, std::error_code ec) {
  throw open_error(std::string(what) + ": " + kvmxx::describe(ec));
}

/// The per-read loops, shared by every kvmxx flavour: `h` is anything with kvmxx's
/// read()/read_physical() (a typed handle, any_kernel_memory) — inlined for a typed one.
template <class H>
struct kvmxx_loops {
  static std::uint64_t read8(const H& h, const address_set& s, std::size_t begin, std::size_t end,
                             std::size_t& failed) noexcept {
    std::uint64_t sum = 0;
    const std::uint64_t* a = s.addr.data();
    if (s.is_virtual) {
      for (std::size_t i = begin; i < end; ++i) {
        std::uint64_t v = 0;
        auto r = h.read(kvmxx::kvaddr{a[i]}, std::as_writable_bytes(std::span(&v, 1)));
        if (!r || r.value() != sizeof v) ++failed;
        sum += v;
      }
    } else {
      for (std::size_t i = begin; i < end; ++i) {
        std::uint64_t v = 0;
        auto r = h.read_physical(kvmxx::physaddr{a[i]}, std::as_writable_bytes(std::span(&v, 1)));
        if (!r || r.value() != sizeof v) ++failed;
        sum += v;
      }
    }
    return sum;
  }
  static bool read_block(const H& h, const block& b, std::byte* out) noexcept {
    const std::span<std::byte> dst(out, b.len);
    auto r = b.is_virtual ? h.read(kvmxx::kvaddr{b.addr}, dst) : h.read_physical(kvmxx::physaddr{b.addr}, dst);
    return r && r.value() == b.len;
  }
  static std::size_t lookup_each(const H& h, std::span<const std::string> names, std::uint64_t& sum) {
    std::size_t found = 0;
    for (const auto& n : names) {
      auto s = h.lookup(std::string_view(n));
      if (s) {
        ++found;
        sum += kvmxx::to_integer(s.value().value);
      }
    }
    return found;
  }
  static std::optional<std::size_t> lookup_batch(const H& h, std::span<const std::string> names, std::uint64_t& sum) {
    // kvm_nlist2's shape: an array of entries, resolved in one call. Building the array
    // is part of what a caller pays, so it is timed too (it is small next to a lookup).
    thread_local std::vector<kvmxx::nlist_entry> entries;
    entries.resize(names.size() + 1);
    for (std::size_t i = 0; i < names.size(); ++i) entries[i] = kvmxx::nlist_entry{names[i], 0, kvmxx::kvaddr{0}};
    entries[names.size()] = kvmxx::nlist_entry{};
    auto missing = h.lookup(std::span<kvmxx::nlist_entry>(entries));
    if (!missing) return std::nullopt;
    for (std::size_t i = 0; i < names.size(); ++i) sum += kvmxx::to_integer(entries[i].value);
    return names.size() - missing.value();
  }
};

/// kvmxx through a handle of a type known at compile time.
template <class Handle>
class kvmxx_reader final : public reader {
 public:
  explicit kvmxx_reader(Handle&& h) : h_(std::move(h)) {}
  std::uint64_t read8(const address_set& s, std::size_t begin, std::size_t end, std::size_t& failed) override {
    return kvmxx_loops<Handle>::read8(h_, s, begin, end, failed);
  }
  bool read_block(const block& b, std::byte* out) override { return kvmxx_loops<Handle>::read_block(h_, b, out); }
  std::optional<std::uint64_t> translate(std::uint64_t va) override {
    auto t = h_.translate(kvmxx::kvaddr{va});
    if (!t) return std::nullopt;
    return kvmxx::to_integer(t.value().pa);
  }
  std::optional<std::size_t> lookup_each(std::span<const std::string> names, std::uint64_t& sum) override {
    return kvmxx_loops<Handle>::lookup_each(h_, names, sum);
  }
  std::optional<std::size_t> lookup_batch(std::span<const std::string> names, std::uint64_t& sum) override {
    return kvmxx_loops<Handle>::lookup_batch(h_, names, sum);
  }
  const Handle& handle() const noexcept { return h_; }

 private:
  Handle h_;
};

/// Opens a typed handle with `open` (a callable returning kvmxx::result<Handle>).
template <class F>
std::unique_ptr<reader> make_typed_reader(F&& open) {
  auto r = std::forward<F>(open)();
  if (!r) throw_kvmxx("kvmxx typed open", r.error());
  using handle = std::remove_cvref_t<decltype(r.value())>;
  return std::make_unique<kvmxx_reader<handle>>(std::move(r.value()));
}

/// The handle kvmxx::open probes at run time and passes to its callable (the callable
/// keeps it): the reads then run in the loop instantiated for that handle's type.
inline std::unique_ptr<reader> open_probed(const std::string& kernel, const std::string& core) {
  std::unique_ptr<reader> out;
  auto r = kvmxx::open(kernel.empty() ? nullptr : kernel.c_str(), core.c_str(), [&](auto& km) {
    using handle = std::remove_cvref_t<decltype(km)>;
    out = std::make_unique<kvmxx_reader<handle>>(std::move(km));
  });
  if (!r) throw_kvmxx("kvmxx::open", r.error());
  return out;
}

/// open_dump_handle's variant kept as is, visited on every read (what a caller gets who
/// stores the variant instead of dispatching once).
class kvmxx_visit_reader final : public reader {
 public:
  explicit kvmxx_visit_reader(kvmxx::any_dump_handle&& h) : h_(std::move(h)) {}
  std::uint64_t read8(const address_set& s, std::size_t begin, std::size_t end, std::size_t& failed) override {
    std::uint64_t sum = 0;
    for (std::size_t i = begin; i < end; ++i) {
      std::uint64_t v = 0;
      const auto out = std::as_writable_bytes(std::span(&v, 1));
      auto r = std::visit(
          [&](const auto& km) {
            return s.is_virtual ? km.read(kvmxx::kvaddr{s.addr[i]}, out) : km.read_physical(kvmxx::physaddr{s.addr[i]}, out);
          },
          h_);
      if (!r || r.value() != sizeof v) ++failed;
      sum += v;
    }
    return sum;
  }
  bool read_block(const block& b, std::byte* out) override {
    return std::visit([&](const auto& km) { return kvmxx_loops<std::remove_cvref_t<decltype(km)>>::read_block(km, b, out); },
                      h_);
  }

 private:
  kvmxx::any_dump_handle h_;
};

inline std::unique_ptr<reader> open_visit(const std::string& kernel, const std::string& core) {
  auto h = kvmxx::open_dump_handle(kernel.empty() ? nullptr : kernel.c_str(), core.c_str());
  if (!h) throw_kvmxx("kvmxx::open_dump_handle", h.error());
  return std::make_unique<kvmxx_visit_reader>(std::move(h.value()));
}

/// The type-erased handle (a virtual call per read).
class kvmxx_any_reader final : public reader {
 public:
  explicit kvmxx_any_reader(kvmxx::any_kernel_memory&& h) : h_(std::move(h)) {}
  std::uint64_t read8(const address_set& s, std::size_t begin, std::size_t end, std::size_t& failed) override {
    return kvmxx_loops<kvmxx::any_kernel_memory>::read8(h_, s, begin, end, failed);
  }
  bool read_block(const block& b, std::byte* out) override {
    return kvmxx_loops<kvmxx::any_kernel_memory>::read_block(h_, b, out);
  }
  std::optional<std::size_t> lookup_each(std::span<const std::string> names, std::uint64_t& sum) override {
    return kvmxx_loops<kvmxx::any_kernel_memory>::lookup_each(h_, names, sum);
  }

 private:
  kvmxx::any_kernel_memory h_;
};

inline std::unique_ptr<reader> open_any(const std::string& kernel, const std::string& core) {
  auto h = kvmxx::open_any(kernel.empty() ? nullptr : kernel.c_str(), core.c_str());
  if (!h) throw_kvmxx("kvmxx::open_any", h.error());
  return std::make_unique<kvmxx_any_reader>(std::move(h.value()));
}

}  // namespace kvmxx_bench

// SPDX-License-Identifier: BSD-2-Clause
//
// any_kernel_memory: a type-erased handle for callers that must store handles of
// different Backend/Arch/Resolver types in one place. This is the slower path: every call
// is a virtual call and read() cannot inline the page walk. Prefer kvmxx::open(kernel,
// core, f), which hands f the fully typed handle (DESIGN.md: type erasure only at the edge).
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/kernel_memory.hpp>
#include <kvmxx/core/open.hpp>
#include <kvmxx/core/types.hpp>

#include <array>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace kvmxx::inline KVMXX_ABI {

class any_kernel_memory {
 public:
  /// Takes over a typed handle of any kind.
  template <class Backend, class Arch, class Resolver>
  explicit any_kernel_memory(kernel_memory<Backend, Arch, Resolver>&& km)
      : impl_(std::make_unique<model<kernel_memory<Backend, Arch, Resolver>>>(std::move(km))) {}

  any_kernel_memory(any_kernel_memory&&) noexcept = default;
  any_kernel_memory& operator=(any_kernel_memory&&) noexcept = default;

  [[nodiscard]] result<std::size_t> read(kvaddr va, std::span<std::byte> out) const noexcept {
    return impl_->read(va, out);
  }
  [[nodiscard]] result<void> read_exact(kvaddr va, std::span<std::byte> out) const noexcept {
    KVMXX_TRY(n, impl_->read(va, out));
    if (n != out.size()) return detail::short_read_error();
    return success();
  }
  template <class T>
    requires std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>
  [[nodiscard]] result<T> read_as(kvaddr va) const noexcept {
    std::array<std::byte, sizeof(T)> raw{};
    KVMXX_TRYV(read_exact(va, raw));
    T v;
    std::memcpy(&v, raw.data(), sizeof v);
    return v;
  }
  [[nodiscard]] result<std::size_t> read_physical(physaddr pa, std::span<std::byte> out) const noexcept {
    return impl_->read_physical(pa, out);
  }
  [[nodiscard]] result<std::size_t> write(kvaddr va, std::span<const std::byte> in) const noexcept {
    return impl_->write(va, in);
  }
  [[nodiscard]] result<translation> translate(kvaddr va) const noexcept { return impl_->translate(va); }
  [[nodiscard]] result<symbol> lookup(std::string_view name) const { return impl_->lookup(name); }
  [[nodiscard]] result<kvaddr> address_of(std::string_view name) const {
    KVMXX_TRY(s, impl_->lookup(name));
    return s.value;
  }
  [[nodiscard]] result<std::size_t> lookup(std::span<nlist_entry> entries) const { return impl_->lookup(entries); }
  [[nodiscard]] result<bool> walk_pages(const std::function<bool(const page_info&)>& f) const {
    return impl_->walk_pages(f);
  }
  [[nodiscard]] machine target_machine() const noexcept { return impl_->target_machine(); }
  [[nodiscard]] os_kind os() const noexcept { return impl_->os(); }
  [[nodiscard]] bool native() const noexcept { return impl_->native(); }
  [[nodiscard]] std::int64_t kerndisp() const noexcept { return impl_->kerndisp(); }
  [[nodiscard]] backend_info info() const { return impl_->info(); }
  /// Also harmless on a moved-from handle (every other call needs a live one).
  [[nodiscard]] result<void> close() noexcept { return impl_ ? impl_->close() : success(); }

  /// The typed handle, when the caller knows (or guesses) its type; nullptr otherwise.
  template <class Handle>
  [[nodiscard]] const Handle* get_if() const noexcept {
    auto* m = dynamic_cast<const model<Handle>*>(impl_.get());
    return m != nullptr ? &m->km : nullptr;
  }

 private:
  struct iface {
    virtual ~iface() = default;
    virtual result<std::size_t> read(kvaddr, std::span<std::byte>) const noexcept = 0;
    virtual result<std::size_t> read_physical(physaddr, std::span<std::byte>) const noexcept = 0;
    virtual result<std::size_t> write(kvaddr, std::span<const std::byte>) const noexcept = 0;
    virtual result<translation> translate(kvaddr) const noexcept = 0;
    virtual result<symbol> lookup(std::string_view) const = 0;
    virtual result<std::size_t> lookup(std::span<nlist_entry>) const = 0;
    virtual result<bool> walk_pages(const std::function<bool(const page_info&)>&) const = 0;
    virtual machine target_machine() const noexcept = 0;
    virtual os_kind os() const noexcept = 0;
    virtual bool native() const noexcept = 0;
    virtual std::int64_t kerndisp() const noexcept = 0;
    virtual backend_info info() const = 0;
    virtual result<void> close() noexcept = 0;
  };
  template <class Handle>
  struct model final : iface {
    explicit model(Handle&& h) : km(std::move(h)) {}
    result<std::size_t> read(kvaddr va, std::span<std::byte> out) const noexcept override { return km.read(va, out); }
    result<std::size_t> read_physical(physaddr pa, std::span<std::byte> out) const noexcept override {
      return km.read_physical(pa, out);
    }
    result<std::size_t> write(kvaddr va, std::span<const std::byte> in) const noexcept override {
      return km.write(va, in);
    }
    result<translation> translate(kvaddr va) const noexcept override { return km.translate(va); }
    result<symbol> lookup(std::string_view n) const override { return km.lookup(n); }
    result<std::size_t> lookup(std::span<nlist_entry> e) const override { return km.lookup(e); }
    result<bool> walk_pages(const std::function<bool(const page_info&)>& f) const override {
      return km.walk_pages(f);
    }
    machine target_machine() const noexcept override { return km.target_machine(); }
    os_kind os() const noexcept override { return km.os(); }
    bool native() const noexcept override { return km.native(); }
    std::int64_t kerndisp() const noexcept override { return km.kerndisp(); }
    backend_info info() const override { return km.info(); }
    result<void> close() noexcept override { return km.close(); }
    Handle km;
  };
  std::unique_ptr<iface> impl_;
};

/// kvmxx::open's probing, returning a stored, type-erased handle (the slower path).
[[nodiscard]] inline result<any_kernel_memory> open_any(const char* kernel, const char* core) {
  KVMXX_TRY(h, open_dump_handle(kernel, core));
  return std::visit([](auto& km) { return any_kernel_memory(std::move(km)); }, h);
}

}  // namespace kvmxx::inline KVMXX_ABI

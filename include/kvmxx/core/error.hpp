// SPDX-License-Identifier: BSD-2-Clause
//
// One error convention for the whole library: kvmxx::errc, its std::error_category, and
// kvmxx::result<T> (Boost.Outcome std_result). DESIGN.md "Errors", STYLE.md §11.
//
// Where a failure happened (path, address, file offset, expected vs. actual value) is
// kept beside the code, per thread, as libkvm keeps it in kvm_geterr()'s buffer
// (specs/freebsd-libkvm.md §1.5): every failing kvmxx call records one message, and
// kvmxx::describe(ec) returns it. Like libkvm's errbuf the message is sticky: a
// successful call never clears it.
#pragma once
#include <kvmxx/core/config.hpp>

#include <boost/outcome/std_result.hpp>
#include <boost/outcome/try.hpp>
#include <boost/version.hpp>
#include <cstdarg>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>

// Outcome v2.2 (Boost >= 1.76) wants the declaration inside TRY; v2.1 (Debian's 1.74)
// declares `auto&&` itself.
#if BOOST_VERSION >= 107600
#define KVMXX_TRY(name, ...) BOOST_OUTCOME_TRY(auto&& name, __VA_ARGS__)
#else
#define KVMXX_TRY(name, ...) BOOST_OUTCOME_TRY(name, __VA_ARGS__)
#endif
#define KVMXX_TRYV(...) BOOST_OUTCOME_TRYV(__VA_ARGS__)

namespace kvmxx::inline KVMXX_ABI {

/// Everything kvmxx itself can report. System call failures are reported with
/// std::system_category() codes (errno) instead; both compare against std::errc.
enum class errc : int {
  not_a_dump = 1,        ///< the core file is of no format kvmxx knows
  unsupported_format,    ///< a known format in a flavour not supported (yet)
  unsupported_version,   ///< a known format with a version outside the accepted range
  truncated,             ///< a section or structure runs past the end of the file
  corrupt,               ///< a field has an impossible value
  arch_mismatch,         ///< kernel and core (or handle type) disagree on the architecture
  not_a_kernel,          ///< the kernel file is not an ELF kernel this core can belong to
  unmapped_address,      ///< the virtual address has no valid translation
  page_not_dumped,       ///< the page exists in the target but is not in the dump
  symbol_not_found,      ///< the resolver does not know the name
  no_symbol_table,       ///< there is nothing to resolve names with (stripped kernel, no kernel)
  read_only,             ///< a write to a dump, or to a live source opened read-only
  not_supported,         ///< the operation does not exist for this kind of handle
  no_memory_source,      ///< a handle opened in null mode has no memory to read
  invalid_argument,      ///< a caller-supplied value is out of range
};

namespace detail {
class errc_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "kvmxx"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::not_a_dump: return "not a crash dump of a known format";
      case errc::unsupported_format: return "unsupported dump format";
      case errc::unsupported_version: return "unsupported dump format version";
      case errc::truncated: return "file is truncated";
      case errc::corrupt: return "file is corrupt";
      case errc::arch_mismatch: return "architecture mismatch";
      case errc::not_a_kernel: return "not a kernel ELF file";
      case errc::unmapped_address: return "invalid address";
      case errc::page_not_dumped: return "page not in the dump";
      case errc::symbol_not_found: return "symbol not found";
      case errc::no_symbol_table: return "no symbol table";
      case errc::read_only: return "memory is read-only";
      case errc::not_supported: return "operation not supported";
      case errc::no_memory_source: return "handle has no memory source";
      case errc::invalid_argument: return "invalid argument";
    }
    return "unknown kvmxx error";
  }
  std::error_condition default_error_condition(int ev) const noexcept override {
    switch (static_cast<errc>(ev)) {
      case errc::unsupported_format:
      case errc::unsupported_version:
      case errc::not_supported: return std::errc::not_supported;
      case errc::not_a_dump:
      case errc::arch_mismatch:
      case errc::not_a_kernel: return std::errc::executable_format_error;
      case errc::unmapped_address:
      case errc::page_not_dumped: return std::errc::bad_address;
      case errc::read_only: return std::errc::read_only_file_system;
      case errc::invalid_argument: return std::errc::invalid_argument;
      default: return {ev, *this};
    }
  }
};
}  // namespace detail

/// The one category object of the program (a function-local static, so header-only use
/// in many translation units still yields one instance).
inline const std::error_category& error_category() noexcept {
  static const detail::errc_category category;
  return category;
}

/// Found by ADL, so `std::error_code ec = errc::truncated;` works.
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// Every fallible kvmxx function returns this: a T or a std::error_code.
template <class T>
using result = BOOST_OUTCOME_V2_NAMESPACE::std_result<T>;

/// Spelled for `return kvmxx::success();` in result<void> functions.
using BOOST_OUTCOME_V2_NAMESPACE::success;

namespace detail {
struct error_record {
  std::error_code code;
  std::string message;
};
inline error_record& last_error_record() noexcept {
  thread_local error_record record;
  return record;
}

/// Records "what and where" for the calling thread and returns the code, so that parsers
/// can write `return fail(errc::truncated, "%s: bitmap …", path, …);`.
/// The message costs an allocation, which is fine: it is built only on failure.
inline std::error_code vfail(std::error_code code, const char* format, std::va_list args) noexcept {
  char buffer[2048];  // libkvm's _POSIX2_LINE_MAX errbuf; longer messages are cut
  std::vsnprintf(buffer, sizeof buffer, format, args);
  auto& rec = last_error_record();
  rec.code = code;
  try {
    rec.message.assign(buffer);
  } catch (...) {  // out of memory while reporting: keep the code, lose the detail
    rec.message.clear();
  }
  return code;
}
KVMXX_PRINTF(2, 3)
inline std::error_code fail(std::error_code code, const char* format, ...) noexcept {
  std::va_list args;
  va_start(args, format);
  auto ec = vfail(code, format, args);
  va_end(args);
  return ec;
}
KVMXX_PRINTF(2, 3)
inline std::error_code fail(errc code, const char* format, ...) noexcept {
  std::va_list args;
  va_start(args, format);
  auto ec = vfail(make_error_code(code), format, args);
  va_end(args);
  return ec;
}
/// For system call failures: "<what>: <strerror>" with the errno code.
inline std::error_code fail_errno(int err, const char* what) noexcept {
  return fail(std::error_code(err, std::system_category()), "%s: %s", what,
              std::generic_category().message(err).c_str());
}
}  // namespace detail

/// The message of the calling thread's last kvmxx failure ("" before any failure). Sticky:
/// successes leave it alone (libkvm's kvm_geterr() semantics, specs/freebsd-libkvm.md §1.5).
inline const std::string& last_error_message() noexcept { return detail::last_error_record().message; }

/// A message for `ec` that says what failed and where when this thread's last failure was
/// `ec` (the usual case right after a call failed), else the category's generic text.
inline std::string describe(const std::error_code& ec) {
  const auto& rec = detail::last_error_record();
  if (rec.code == ec && !rec.message.empty()) return rec.message;
  return ec.message();
}

}  // namespace kvmxx::inline KVMXX_ABI

template <>
struct std::is_error_code_enum<kvmxx::errc> : std::true_type {};

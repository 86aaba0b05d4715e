// kvmxx::errc, its category, result<T> and the per-thread "what and where" message.
#include <catch2/catch.hpp>
#include <kvmxx/core/error.hpp>

#include <string>
#include <system_error>
#include <thread>

TEST_CASE("every errc has its own message and the category is named kvmxx", "[core][error]") {
  using kvmxx::errc;
  REQUIRE(std::string(kvmxx::error_category().name()) == "kvmxx");
  std::string previous;
  for (int e = static_cast<int>(errc::not_a_dump); e <= static_cast<int>(errc::invalid_argument); ++e) {
    const auto msg = kvmxx::make_error_code(static_cast<errc>(e)).message();
    CHECK_FALSE(msg.empty());
    CHECK(msg != "unknown kvmxx error");
    CHECK(msg != previous);
    previous = msg;
  }
  CHECK(kvmxx::error_category().message(0) == "unknown kvmxx error");  // 0 is success, not an errc
}

TEST_CASE("errc values start at 1 and convert implicitly to std::error_code", "[core][error]") {
  std::error_code ec = kvmxx::errc::truncated;
  CHECK(ec.value() == 4);
  CHECK(ec.category() == kvmxx::error_category());
  CHECK(static_cast<int>(kvmxx::errc::not_a_dump) == 1);
}

TEST_CASE("errc maps to the portable std::errc conditions where one fits", "[core][error]") {
  using kvmxx::errc;
  CHECK(std::error_code(errc::unmapped_address) == std::errc::bad_address);
  CHECK(std::error_code(errc::page_not_dumped) == std::errc::bad_address);
  CHECK(std::error_code(errc::unsupported_format) == std::errc::not_supported);
  CHECK(std::error_code(errc::not_a_dump) == std::errc::executable_format_error);
  CHECK(std::error_code(errc::arch_mismatch) == std::errc::executable_format_error);
  CHECK(std::error_code(errc::read_only) == std::errc::read_only_file_system);
  CHECK(std::error_code(errc::invalid_argument) == std::errc::invalid_argument);
  CHECK(std::error_code(errc::truncated) != std::errc::bad_address);
  CHECK(std::error_code(errc::truncated) == std::error_code(errc::truncated).default_error_condition());
}

TEST_CASE("a failure records its message for the calling thread and describe() returns it", "[core][error]") {
  const auto ec = kvmxx::detail::fail(kvmxx::errc::corrupt, "%s: field at 0x%x is %d", "vmcore.0", 0x40, 7);
  CHECK(ec == kvmxx::errc::corrupt);
  CHECK(kvmxx::last_error_message() == "vmcore.0: field at 0x40 is 7");
  CHECK(kvmxx::describe(ec) == "vmcore.0: field at 0x40 is 7");
  // Another code gets the category's text: the record is only for the last failure.
  CHECK(kvmxx::describe(kvmxx::errc::truncated) == "file is truncated");
}

TEST_CASE("the message is per thread and sticky across successes", "[core][error]") {
  (void)kvmxx::detail::fail(kvmxx::errc::truncated, "main thread");
  std::string seen_in_other = "unset";
  std::thread([&] { seen_in_other = kvmxx::last_error_message(); }).join();
  CHECK(seen_in_other.empty());  // a fresh thread has no message, like kvm_geterr of a new kd
  kvmxx::result<int> ok = 5;
  CHECK(ok.has_value());
  CHECK(kvmxx::last_error_message() == "main thread");
}

TEST_CASE("system errors carry errno and the path", "[core][error]") {
  const auto ec = kvmxx::detail::fail_errno(ENOENT, "/no/such/vmcore");
  CHECK(ec == std::errc::no_such_file_or_directory);
  CHECK(kvmxx::describe(ec).find("/no/such/vmcore: ") == 0);
}

TEST_CASE("overlong messages are cut at libkvm's 2048-byte buffer, not overflowed", "[core][error]") {
  const std::string long_path(5000, 'x');
  (void)kvmxx::detail::fail(kvmxx::errc::truncated, "%s", long_path.c_str());
  CHECK(kvmxx::last_error_message().size() == 2047);
}

namespace {
kvmxx::result<int> half(int v) {
  if (v % 2) return kvmxx::errc::invalid_argument;
  return v / 2;
}
kvmxx::result<int> quarter(int v) {
  KVMXX_TRY(h, half(v));
  return half(h);
}
}  // namespace

TEST_CASE("KVMXX_TRY propagates errors and unwraps values", "[core][error]") {
  CHECK(quarter(8).value() == 2);
  CHECK(quarter(6).error() == kvmxx::errc::invalid_argument);
  CHECK(quarter(3).error() == kvmxx::errc::invalid_argument);
}

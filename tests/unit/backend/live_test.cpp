// backend::live_physical / live_virtual over regular files standing in for /dev/mem and
// /dev/kmem (a real /dev/mem of this Linux host is not readable in CI: STRICT_DEVMEM).
#include <catch2/catch.hpp>
#include <file_util.hpp>
#include <kvmxx/backend/live.hpp>

#include <cstring>
#include <vector>

namespace {
std::vector<std::byte> pattern(std::size_t n) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = std::byte(i * 13 + 1);
  return v;
}
}  // namespace

TEST_CASE("a physical memory device reads at the physical address as file offset", "[backend][live]") {
  kvmxx_test::temp_dir dir;
  const auto path = dir.path("mem");
  const auto bytes = pattern(3 * 4096);
  kvmxx_test::write_file(path, bytes);
  auto mem = kvmxx::backend::live_physical::open({.device = path.c_str()});
  REQUIRE(mem.has_value());
  std::vector<std::byte> out(100);
  auto n = mem.value().read_physical(kvmxx::physaddr{4090}, out);
  REQUIRE(n.value() == 100);
  CHECK(std::memcmp(out.data(), bytes.data() + 4090, 100) == 0);
  CHECK_FALSE(mem.value().writable());
  CHECK_FALSE(mem.value().page_table_root().has_value());
  CHECK(mem.value().info().format == "live physical memory");
}

TEST_CASE("reads past the device's end are short, then fail, and say where", "[backend][live]") {
  kvmxx_test::temp_dir dir;
  const auto path = dir.path("mem");
  kvmxx_test::write_file(path, pattern(4096));
  auto mem = kvmxx::backend::live_physical::open({.device = path.c_str()}).value();
  std::vector<std::byte> out(200);
  auto short_read = mem.read_physical(kvmxx::physaddr{4000}, out);
  REQUIRE(short_read.has_value());
  CHECK(short_read.value() == 96);
  CHECK(kvmxx::last_error_message().find("short read at physical address 0x1000") != std::string::npos);
  auto past = mem.read_physical(kvmxx::physaddr{8192}, out);
  REQUIRE_FALSE(past.has_value());
  CHECK(past.error() == kvmxx::errc::page_not_dumped);
  CHECK(kvmxx::describe(past.error()).find("0x2000") != std::string::npos);
  auto huge = mem.read_physical(kvmxx::physaddr{0x8000000000000000ull}, out);
  CHECK(huge.error() == kvmxx::errc::unmapped_address);
  CHECK(mem.read_physical(kvmxx::physaddr{8192}, std::span<std::byte>{}).value() == 0);
}

TEST_CASE("writes need access::read_write and land in the device", "[backend][live]") {
  kvmxx_test::temp_dir dir;
  const auto path = dir.path("mem");
  kvmxx_test::write_file(path, pattern(4096));
  const std::byte data[4] = {std::byte{0xde}, std::byte{0xad}, std::byte{0xbe}, std::byte{0xef}};
  {
    auto ro = kvmxx::backend::live_physical::open({.device = path.c_str()}).value();
    auto w = ro.write_at(16, data);
    REQUIRE_FALSE(w.has_value());
    CHECK(w.error() == kvmxx::errc::read_only);
    CHECK(kvmxx::describe(w.error()).find(path) == 0);
  }
  auto rw = kvmxx::backend::live_physical::open({.device = path.c_str(), .mode = kvmxx::access::read_write}).value();
  CHECK(rw.writable());
  REQUIRE(rw.write_at(16, data).value() == 4);
  std::byte back[4];
  REQUIRE(rw.read_physical(kvmxx::physaddr{16}, back).value() == 4);
  CHECK(std::memcmp(back, data, 4) == 0);
  CHECK(rw.close().has_value());
  CHECK(rw.close().has_value());  // closing twice is harmless
}

TEST_CASE("a virtual memory device reads at the virtual address and has no physical view", "[backend][live]") {
  kvmxx_test::temp_dir dir;
  const auto path = dir.path("kmem");
  const auto bytes = pattern(8192);
  kvmxx_test::write_file(path, bytes);
  auto kmem = kvmxx::backend::live_virtual::open({.device = path.c_str()}).value();
  std::vector<std::byte> out(64);
  REQUIRE(kmem.read_virtual(kvmxx::kvaddr{5000}, out).value() == 64);
  CHECK(std::memcmp(out.data(), bytes.data() + 5000, 64) == 0);
  auto phys = kmem.read_physical(kvmxx::physaddr{0}, out);
  CHECK(phys.error() == kvmxx::errc::not_supported);
}

TEST_CASE("opening a missing device or a directory fails with the path", "[backend][live]") {
  kvmxx_test::temp_dir dir;
  const auto missing = dir.path("nope");
  auto m = kvmxx::backend::live_physical::open({.device = missing.c_str()});
  REQUIRE_FALSE(m.has_value());
  CHECK(m.error() == std::errc::no_such_file_or_directory);
  CHECK(kvmxx::describe(m.error()).find(missing) == 0);
  const auto d = dir.path("");
  auto dd = kvmxx::backend::live_virtual::open({.device = d.c_str()});
  REQUIRE_FALSE(dd.has_value());
  CHECK(kvmxx::describe(dd.error()).find("is a directory") != std::string::npos);
}

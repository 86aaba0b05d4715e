// detail/: byte-order integers, checked arithmetic, the rank bitmap, mappings, ELF strings.
#include <catch2/catch.hpp>
#include <file_util.hpp>
#include <kvmxx/detail/bits.hpp>
#include <kvmxx/detail/byte_order.hpp>
#include <kvmxx/detail/checked.hpp>
#include <kvmxx/detail/elf_reader.hpp>
#include <kvmxx/detail/mmap.hpp>

#include <cstring>
#include <random>
#include <vector>

using kvmxx::detail::be32;
using kvmxx::detail::le32;
using kvmxx::detail::le64;

TEST_CASE("packed integers store bytes in their declared order on any host", "[detail][byte_order]") {
  le32 l(0x11223344);
  be32 b(0x11223344);
  unsigned char lb[4], bb[4];
  std::memcpy(lb, &l, 4);
  std::memcpy(bb, &b, 4);
  CHECK((lb[0] == 0x44 && lb[1] == 0x33 && lb[2] == 0x22 && lb[3] == 0x11));
  CHECK((bb[0] == 0x11 && bb[1] == 0x22 && bb[2] == 0x33 && bb[3] == 0x44));
  CHECK(l.value() == 0x11223344u);
  CHECK(b.value() == 0x11223344u);
  const unsigned char raw[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  CHECK(kvmxx::detail::load<std::uint64_t>(raw) == 0x0807060504030201ull);
  CHECK((kvmxx::detail::load<std::uint64_t, std::endian::big>(raw)) == 0x0102030405060708ull);
  STATIC_REQUIRE(alignof(le64) == 1);
  STATIC_REQUIRE(kvmxx::detail::byteswap(std::uint16_t{0x1234}) == 0x3412);
}

TEST_CASE("checked arithmetic reports wrap-around instead of wrapping", "[detail][checked]") {
  using namespace kvmxx::detail;
  CHECK(checked_add(1, 2).value() == 3);
  CHECK_FALSE(checked_add(~0ull, 1).has_value());
  CHECK_FALSE(checked_mul(1ull << 33, 1ull << 33).has_value());
  CHECK(fits(0, 10, 10));
  CHECK_FALSE(fits(1, 10, 10));
  CHECK_FALSE(fits(11, 0, 10));
  CHECK_FALSE(fits(5, ~0ull, 10));  // size alone overflows offset + size
  CHECK(round_up(4097, 4096).value() == 8192);
  CHECK_FALSE(round_up(~0ull, 4096).has_value());
}

TEST_CASE("the rank bitmap agrees with counting bit by bit", "[detail][bits]") {
  std::mt19937_64 rng(7);
  for (std::size_t size : {1u, 7u, 8u, 9u, 63u, 64u, 65u, 4096u}) {
    std::vector<std::byte> bytes(size);
    for (auto& b : bytes) b = std::byte(rng() & (rng() & 1 ? 0xff : 0x11));
    kvmxx::detail::rank_bitmap map(bytes.data(), bytes.size());
    REQUIRE(map.size() == size * 8);
    std::uint64_t running = 0;
    for (std::uint64_t i = 0; i < size * 8; ++i) {
      const bool set = (std::to_integer<unsigned>(bytes[i / 8]) >> (i % 8)) & 1;
      REQUIRE(map.test(i) == set);
      const auto r = map.rank_if_set(i);
      REQUIRE(r.has_value() == set);
      if (set) REQUIRE(*r == running);
      // next_set from i is the first set bit at or after i
      std::uint64_t j = i;
      while (j < size * 8 && !((std::to_integer<unsigned>(bytes[j / 8]) >> (j % 8)) & 1)) ++j;
      const auto n = map.next_set(i);
      if (j < size * 8) REQUIRE(n == j); else REQUIRE_FALSE(n.has_value());
      running += set;
    }
    CHECK(map.count() == running);
    CHECK_FALSE(map.test(size * 8));
    CHECK_FALSE(map.rank_if_set(size * 8 + 100).has_value());
  }
}

TEST_CASE("popcount64 agrees with counting bit by bit", "[detail][bits]") {
  std::mt19937_64 rng(42);
  std::vector<std::uint64_t> values = {0, 1, ~std::uint64_t{0}, std::uint64_t{1} << 63, 0x8000000000000001ull};
  for (int i = 0; i < 10000; ++i) values.push_back(rng() & rng());  // sparse and dense words
  for (int i = 0; i < 10000; ++i) values.push_back(rng());
  for (const std::uint64_t v : values) {
    unsigned naive = 0;
    for (unsigned b = 0; b < 64; ++b) naive += (v >> b) & 1;
    REQUIRE(kvmxx::detail::popcount64(v) == naive);
  }
  STATIC_REQUIRE(kvmxx::detail::popcount64(0xffull) == 8);
}

TEST_CASE("mappings at offsets that are not host-page aligned see the right bytes", "[detail][mmap]") {
  kvmxx_test::temp_dir dir;
  const auto path = dir.path("data");
  std::vector<std::byte> bytes(3 * kvmxx::detail::host_page_size() + 100);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = std::byte(i * 7 + 3);
  kvmxx_test::write_file(path, bytes);
  auto fd = kvmxx::detail::open_file(path.c_str(), O_RDONLY);
  REQUIRE(fd.has_value());
  for (std::uint64_t off : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{4095}, std::uint64_t{4096 + 17}}) {
    auto m = kvmxx::detail::mapped_region::map(fd.value().get(), off, 50, path.c_str());
    REQUIRE(m.has_value());
    REQUIRE(m.value().bytes().size() == 50);
    CHECK(std::memcmp(m.value().bytes().data(), bytes.data() + off, 50) == 0);
  }
  auto zero = kvmxx::detail::mapped_region::map(fd.value().get(), 0, 0, path.c_str());
  CHECK(zero.error() == kvmxx::errc::invalid_argument);
}

TEST_CASE("file images refuse empty files, directories and missing paths with the path in the message",
          "[detail][mmap]") {
  kvmxx_test::temp_dir dir;
  const auto empty = dir.path("empty");
  kvmxx_test::write_file(empty, std::vector<std::byte>{});
  auto e = kvmxx::detail::file_image::open(empty.c_str());
  REQUIRE_FALSE(e.has_value());
  CHECK(e.error() == kvmxx::errc::invalid_argument);
  CHECK(kvmxx::describe(e.error()) == empty + ": empty file");
  auto d = kvmxx::detail::file_image::open(dir.path("").c_str());
  REQUIRE_FALSE(d.has_value());
  CHECK(kvmxx::describe(d.error()).find("is a directory") != std::string::npos);
  const auto missing = dir.path("missing");
  auto m = kvmxx::detail::file_image::open(missing.c_str());
  REQUIRE_FALSE(m.has_value());
  CHECK(m.error() == std::errc::no_such_file_or_directory);
  CHECK(kvmxx::describe(m.error()).rfind(missing, 0) == 0);
}

TEST_CASE("ELF string-table reads stop at the table's end", "[detail][elf]") {
  const char table[] = "\0abc\0unterminated";
  const std::span<const std::byte> t(reinterpret_cast<const std::byte*>(table), sizeof table - 1);
  CHECK(kvmxx::detail::string_at(t, 0).value().empty());
  CHECK(kvmxx::detail::string_at(t, 1).value() == "abc");
  CHECK(kvmxx::detail::string_at(t, 3).value() == "c");
  CHECK_FALSE(kvmxx::detail::string_at(t, 5).has_value());  // runs off the end unterminated
  CHECK_FALSE(kvmxx::detail::string_at(t, 1000).has_value());
}

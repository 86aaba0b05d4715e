// The vocabulary types: strong addresses, machines, protections.
#include <catch2/catch.hpp>
#include <kvmxx/core/types.hpp>

#include <type_traits>

TEST_CASE("virtual and physical addresses are distinct types", "[core][types]") {
  STATIC_REQUIRE_FALSE(std::is_convertible_v<kvmxx::kvaddr, kvmxx::physaddr>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<std::uint64_t, kvmxx::kvaddr>);
  STATIC_REQUIRE(sizeof(kvmxx::kvaddr) == 8);
  constexpr kvmxx::kvaddr a{0xffffffff80000000};
  STATIC_REQUIRE(kvmxx::to_integer(a + 0x1000) == 0xffffffff80001000);
  STATIC_REQUIRE(kvmxx::to_integer(kvmxx::physaddr{~0ull} + 1) == 0);  // wraps like the CPU
}

TEST_CASE("machines have FreeBSD's MACHINE_ARCH names", "[core][types]") {
  CHECK(kvmxx::name_of(kvmxx::machine::amd64) == "amd64");
  CHECK(kvmxx::name_of(kvmxx::machine::aarch64) == "aarch64");
  CHECK(kvmxx::name_of(kvmxx::machine::powerpc64le) == "powerpc64le");
  CHECK(kvmxx::name_of(kvmxx::os_kind::freebsd) == "FreeBSD");
#if defined(__x86_64__)
  CHECK(kvmxx::host_machine == kvmxx::machine::amd64);
#endif
}

TEST_CASE("protection bits combine like VM_PROT_*", "[core][types]") {
  using kvmxx::protection;
  constexpr auto rw = protection::read | protection::write;
  STATIC_REQUIRE(static_cast<int>(rw) == 3);
  STATIC_REQUIRE(kvmxx::has(rw, protection::write));
  STATIC_REQUIRE_FALSE(kvmxx::has(rw, protection::execute));
  STATIC_REQUIRE(static_cast<int>(protection::execute) == 4);
}

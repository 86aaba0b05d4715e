// libFuzzer target: arbitrary bytes as a kernel ELF file (probe + .symtab index + lookups).
#include <kvmxx/kvmxx.hpp>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  (void)kvmxx::probe_kernel_image(bytes, "fuzz");
  auto t = kvmxx::resolver::elf_symtab::from_bytes(bytes, "fuzz");
  if (!t) return 0;
  for (const char* name : {"hz", "_hz", "version", "msgbufp", "", "_"}) (void)t.value().lookup(name);
  std::size_t n = 0;
  t.value().for_each([&](std::string_view s, kvmxx::kvaddr, std::uint8_t) {
    if (n++ < 16) (void)t.value().lookup(s);
  });
  return 0;
}

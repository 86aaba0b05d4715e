// libFuzzer target: arbitrary bytes as a minidump. Opening must fail cleanly or yield a
// handle whose reads, translations and page walk never crash, hang or read out of bounds.
#include <kvmxx/kvmxx.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  (void)kvmxx::count_matching_probes(bytes);
  auto md = kvmxx::backend::minidump::from_bytes(bytes, "fuzz");
  if (!md) return 0;
  using handle = kvmxx::kernel_memory<kvmxx::backend::minidump, kvmxx::arch::amd64, kvmxx::resolver::none>;
  auto km = handle::adopt(std::move(md).value(), {});
  if (!km) return 0;
  const auto& h = km.value().source().header();
  std::array<std::byte, 64> buf;
  // Addresses derived from the header, so the fuzzer reaches the page-table paths.
  const std::uint64_t probes[] = {h.kernbase,          h.kernbase + 0x1234,   h.kernbase + (1ull << 21) + 8,
                                  h.kernbase + 0xfff8, h.dmapbase,           h.dmapbase + 0x100ff8,
                                  h.dmapend - 8,       0,                    ~0ull - 7};
  for (auto va : probes) {
    (void)km.value().read(kvmxx::kvaddr{va}, buf);
    (void)km.value().translate(kvmxx::kvaddr{va});
  }
  for (std::uint64_t pa = 0; pa < (64u << 12); pa += 4096 - 8) (void)km.value().read_physical(kvmxx::physaddr{pa}, buf);
  std::size_t n = 0;
  (void)km.value().walk_pages([&](const kvmxx::page_info&) { return ++n < 100000; });
  (void)kvmxx::freebsd::ring_to_text(km.value().source().message_buffer(), 5);
  return 0;
}

// SPDX-License-Identifier: BSD-2-Clause
//
// The FreeBSD kernel message buffer as text (what dmesg(8) prints).
// Layout of struct msgbuf (sys/sys/msgbuf.h): char *msg_ptr; u_int msg_magic (MSG_MAGIC
// 0x063062); u_int msg_size; u_int msg_wseq; u_int msg_rseq; … — the ring's oldest byte
// is at MSGBUF_SEQ_TO_POS(msg_wseq) = msg_wseq % msg_size.
//
// A minidump keeps the ring's bytes in its msgbuf section but not the indices
// (specs/freebsd-libkvm.md §2.1); with the kernel's symbols the indices come from the
// `msgbufp` structure in the dump, so the text is printed oldest first. Without them the
// section is printed as stored (the kernel's ring order).
#pragma once
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/detail/byte_order.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace kvmxx::inline KVMXX_ABI::freebsd {

inline constexpr std::uint32_t msg_magic = 0x063062;

/// The ring indices of struct msgbuf, read through `msgbufp`.
struct msgbuf_header {
  std::uint64_t msg_ptr = 0;
  std::uint32_t msg_size = 0;
  std::uint32_t msg_wseq = 0;
  std::uint32_t msg_rseq = 0;
};

/// Reads *msgbufp from the kernel's memory. Pointer width follows the target (8 bytes on
/// 64-bit machines, 4 on 32-bit ones); integers are read little-endian, which holds for
/// every little-endian FreeBSD target.
/// \errors symbol and read errors; errc::corrupt when msg_magic is wrong
template <class Handle>
[[nodiscard]] result<msgbuf_header> read_msgbuf_header(const Handle& km) {
  const machine m = km.target_machine();
  const bool ptr64 = m != machine::i386 && m != machine::arm && m != machine::mips;
  const std::size_t ps = ptr64 ? 8 : 4;
  KVMXX_TRY(where, km.address_of("msgbufp"));
  std::array<std::byte, 8> p{};
  KVMXX_TRYV(km.read_exact(where, std::span<std::byte>(p.data(), ps)));
  const std::uint64_t mb = ptr64 ? detail::load<std::uint64_t>(p.data()) : detail::load<std::uint32_t>(p.data());
  std::array<std::byte, 8 + 4 * 4> raw{};
  const std::span<std::byte> s(raw.data(), ps + 16);
  KVMXX_TRYV(km.read_exact(kvaddr{mb}, s));
  msgbuf_header h;
  h.msg_ptr = ptr64 ? detail::load<std::uint64_t>(raw.data()) : detail::load<std::uint32_t>(raw.data());
  const auto magic = detail::load<std::uint32_t>(raw.data() + ps);
  h.msg_size = detail::load<std::uint32_t>(raw.data() + ps + 4);
  h.msg_wseq = detail::load<std::uint32_t>(raw.data() + ps + 8);
  h.msg_rseq = detail::load<std::uint32_t>(raw.data() + ps + 12);
  if (magic != msg_magic)
    return detail::fail(errc::corrupt, "struct msgbuf at 0x%llx has magic 0x%x, expected 0x%x",
                        static_cast<unsigned long long>(mb), magic, msg_magic);
  if (h.msg_size == 0) return detail::fail(errc::corrupt, "struct msgbuf at 0x%llx has size 0",
                                           static_cast<unsigned long long>(mb));
  return h;
}

/// Turns the ring's bytes into text: oldest first when `wseq` is known, NUL bytes (unused
/// parts of the ring) dropped.
[[nodiscard]] inline std::string ring_to_text(std::span<const std::byte> ring, std::optional<std::uint32_t> wseq) {
  std::string text;
  text.reserve(ring.size());
  const std::size_t start = wseq && !ring.empty() ? *wseq % ring.size() : 0;
  for (std::size_t k = 0; k < ring.size(); ++k) {
    const char c = static_cast<char>(ring[(start + k) % ring.size()]);
    if (c != '\0') text.push_back(c);
  }
  return text;
}

/// The message buffer of a FreeBSD kernel as text. Uses the dump's msgbuf section when
/// the backend has one, else the buffer `msgbufp` points to (live kernels, full dumps).
/// \errors when there is neither a section nor a readable msgbufp
template <class Handle>
[[nodiscard]] result<std::string> message_buffer_text(const Handle& km) {
  auto hdr = read_msgbuf_header(km);
  if constexpr (message_buffer_backend<typename Handle::backend_type>) {
    const auto ring = km.source().message_buffer();
    std::optional<std::uint32_t> wseq;
    if (hdr && hdr.value().msg_size == ring.size()) wseq = hdr.value().msg_wseq;
    return ring_to_text(ring, wseq);
  } else {
    if (!hdr) return hdr.error();
    constexpr std::uint32_t max_size = 64u << 20;  // no allocation without bound from a bad header
    if (hdr.value().msg_size > max_size)
      return detail::fail(errc::corrupt, "struct msgbuf size 0x%x is implausible", hdr.value().msg_size);
    std::vector<std::byte> ring(hdr.value().msg_size);
    KVMXX_TRYV(km.read_exact(kvaddr{hdr.value().msg_ptr}, ring));
    return ring_to_text(ring, hdr.value().msg_wseq);
  }
}

}  // namespace kvmxx::inline KVMXX_ABI::freebsd

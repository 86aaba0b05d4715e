// SPDX-License-Identifier: BSD-2-Clause
//
// The Linux kernel log (what dmesg prints) from the lockless printk ring buffer of Linux
// 5.10 and later, located and decoded with the symbols and offsets VMCOREINFO exports
// (kernel/printk/printk.c log_buf_vmcoreinfo_setup: SYMBOL(prb), OFFSET(printk_ringbuffer.*),
// OFFSET(prb_desc_ring.*), OFFSET(prb_data_ring.*), OFFSET(printk_info.*), …).
//
// Ring layout, as the kernel's printk_ringbuffer.h documents it: descriptors are indexed by
// id % 2^count_bits, and a descriptor's state_var holds the id in its low bits and the state
// in the top two (committed = 1 and finalized = 2 are complete records). A record's text
// lives in the data ring at [begin, next) (logical positions modulo 2^size_bits); a block
// that would wrap is stored from the ring's start instead; each block starts with the
// descriptor id (one unsigned long) before the text.
//
// Every pointer and count read from the dump is bounded before use, so a damaged ring
// gives an error or fewer lines, never a crash or an unbounded allocation.
// Not supported: the variable-length log_buf records of kernels before 5.10.
#pragma once
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/detail/byte_order.hpp>
#include <kvmxx/os/linux/vmcoreinfo.hpp>

#include <array>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvmxx::inline KVMXX_ABI::linux_ {

/// One record of the kernel log.
struct printk_record {
  std::uint64_t seq = 0;
  std::uint64_t ts_nsec = 0;
  std::string text;
};

/// Reads every complete record of the ring, oldest first.
/// \errors errc::not_supported when VMCOREINFO lacks the ring's description (no VMCOREINFO,
/// or a kernel before 5.10); read errors of the ring's control structures; errc::corrupt for
/// impossible sizes
template <class Handle>
[[nodiscard]] result<std::vector<printk_record>> read_printk_records(const Handle& km, const vmcoreinfo& vi) {
  auto need = [&](std::optional<std::int64_t> v, const char* what) -> result<std::uint64_t> {
    if (!v || *v < 0)
      return detail::fail(errc::not_supported, "kernel log: VMCOREINFO has no %s (kernel before 5.10, or no VMCOREINFO)",
                          what);
    return static_cast<std::uint64_t>(*v);
  };
  const auto prb_sym = vi.symbol("prb");
  if (!prb_sym)
    return detail::fail(errc::not_supported,
                        "kernel log: VMCOREINFO has no SYMBOL(prb) (kernel before 5.10, or no VMCOREINFO)");
  KVMXX_TRY(off_desc_ring, need(vi.offset("printk_ringbuffer.desc_ring"), "OFFSET(printk_ringbuffer.desc_ring)"));
  KVMXX_TRY(off_text_ring, need(vi.offset("printk_ringbuffer.text_data_ring"), "OFFSET(printk_ringbuffer.text_data_ring)"));
  KVMXX_TRY(off_count_bits, need(vi.offset("prb_desc_ring.count_bits"), "OFFSET(prb_desc_ring.count_bits)"));
  KVMXX_TRY(off_descs, need(vi.offset("prb_desc_ring.descs"), "OFFSET(prb_desc_ring.descs)"));
  KVMXX_TRY(off_infos, need(vi.offset("prb_desc_ring.infos"), "OFFSET(prb_desc_ring.infos)"));
  KVMXX_TRY(off_head_id, need(vi.offset("prb_desc_ring.head_id"), "OFFSET(prb_desc_ring.head_id)"));
  KVMXX_TRY(off_tail_id, need(vi.offset("prb_desc_ring.tail_id"), "OFFSET(prb_desc_ring.tail_id)"));
  KVMXX_TRY(size_desc, need(vi.size("prb_desc"), "SIZE(prb_desc)"));
  KVMXX_TRY(off_state, need(vi.offset("prb_desc.state_var"), "OFFSET(prb_desc.state_var)"));
  KVMXX_TRY(off_lpos, need(vi.offset("prb_desc.text_blk_lpos"), "OFFSET(prb_desc.text_blk_lpos)"));
  KVMXX_TRY(off_begin, need(vi.offset("prb_data_blk_lpos.begin"), "OFFSET(prb_data_blk_lpos.begin)"));
  KVMXX_TRY(off_next, need(vi.offset("prb_data_blk_lpos.next"), "OFFSET(prb_data_blk_lpos.next)"));
  KVMXX_TRY(size_info, need(vi.size("printk_info"), "SIZE(printk_info)"));
  KVMXX_TRY(off_seq, need(vi.offset("printk_info.seq"), "OFFSET(printk_info.seq)"));
  KVMXX_TRY(off_ts, need(vi.offset("printk_info.ts_nsec"), "OFFSET(printk_info.ts_nsec)"));
  KVMXX_TRY(off_text_len, need(vi.offset("printk_info.text_len"), "OFFSET(printk_info.text_len)"));
  KVMXX_TRY(off_size_bits, need(vi.offset("prb_data_ring.size_bits"), "OFFSET(prb_data_ring.size_bits)"));
  KVMXX_TRY(off_data, need(vi.offset("prb_data_ring.data"), "OFFSET(prb_data_ring.data)"));
  const std::uint64_t off_counter = static_cast<std::uint64_t>(vi.offset("atomic_long_t.counter").value_or(0));

  // Longs and pointers (ids, lpos, state_var, the ring pointers) are SIZE(atomic_long_t)
  // bytes: 8 on 64-bit kernels, 4 on i386 (VMCOREINFO says so since 5.10; absent → 8).
  // seq and ts_nsec are u64 everywhere; integers little-endian.
  const std::int64_t word_size = vi.size("atomic_long_t").value_or(8);
  if (word_size != 4 && word_size != 8)
    return detail::fail(errc::corrupt, "kernel log: SIZE(atomic_long_t) is %lld, expected 4 or 8",
                        static_cast<long long>(word_size));
  const bool wide = word_size == 8;
  auto u64 = [&](std::uint64_t va) -> result<std::uint64_t> {
    KVMXX_TRY(v, km.template read_as<std::uint64_t>(kvaddr{va}));
    return v;
  };
  auto u32 = [&](std::uint64_t va) -> result<std::uint32_t> {
    KVMXX_TRY(v, km.template read_as<std::uint32_t>(kvaddr{va}));
    return v;
  };
  auto word = [&](std::uint64_t va) -> result<std::uint64_t> {
    if (wide) return u64(va);
    KVMXX_TRY(v, u32(va));
    return std::uint64_t{v};
  };
  KVMXX_TRY(prb, word(*prb_sym));
  const std::uint64_t desc_ring = prb + off_desc_ring, text_ring = prb + off_text_ring;
  KVMXX_TRY(count_bits, u32(desc_ring + off_count_bits));
  KVMXX_TRY(descs, word(desc_ring + off_descs));
  KVMXX_TRY(infos, word(desc_ring + off_infos));
  KVMXX_TRY(head_id, word(desc_ring + off_head_id + off_counter));
  KVMXX_TRY(tail_id, word(desc_ring + off_tail_id + off_counter));
  KVMXX_TRY(size_bits, u32(text_ring + off_size_bits));
  KVMXX_TRY(data, word(text_ring + off_data));
  if (count_bits > 24 || size_bits > 30 || size_bits < 4)
    return detail::fail(errc::corrupt, "kernel log: implausible ring sizes (2^%u descriptors, 2^%u bytes of text)",
                        count_bits, size_bits);
  const std::uint64_t count = std::uint64_t{1} << count_bits, data_size = std::uint64_t{1} << size_bits;
  const unsigned state_shift = wide ? 62 : 30;  // DESC_FLAGS_SHIFT = BITS_PER_LONG - 2
  const std::uint64_t id_mask = (std::uint64_t{1} << state_shift) - 1;
  const std::uint64_t w = static_cast<std::uint64_t>(word_size);

  // The text ring is read once (at most 1 GiB by the check above; the kernel's default is 2^17..2^25).
  std::vector<std::byte> text(static_cast<std::size_t>(data_size));
  KVMXX_TRYV(km.read_exact(kvaddr{data}, text));

  std::vector<printk_record> out;
  std::uint64_t id = tail_id & id_mask;
  const std::uint64_t last = head_id & id_mask;
  for (std::uint64_t n = 0; n <= count; ++n, id = (id + 1) & id_mask) {
    const std::uint64_t idx = id % count;
    if (size_desc < off_lpos + std::max(off_begin, off_next) + w || off_state + w > size_desc) break;
    const std::uint64_t desc = descs + idx * size_desc;
    KVMXX_TRY(state_var, word(desc + off_state + off_counter));
    KVMXX_TRY(begin, word(desc + off_lpos + off_begin));
    KVMXX_TRY(next, word(desc + off_lpos + off_next));
    const unsigned state = static_cast<unsigned>(state_var >> state_shift);
    const bool complete = (state == 1 || state == 2) && (state_var & id_mask) == id;
    if (complete) {
      const std::uint64_t info = infos + idx * size_info;
      KVMXX_TRY(seq, u64(info + off_seq));
      KVMXX_TRY(ts, u64(info + off_ts));
      std::array<std::byte, 2> len_raw{};
      KVMXX_TRYV(km.read_exact(kvaddr{info + off_text_len}, len_raw));
      const std::uint16_t text_len = detail::load<std::uint16_t>(len_raw.data());
      printk_record rec{seq, ts, {}};
      // Data-less records (begin & 1, or begin == next) carry no text.
      if ((begin & 1) == 0 && begin != next) {
        std::uint64_t start = begin % data_size, end = next % data_size;
        if (begin / data_size != next / data_size) start = 0;  // wrapped: stored from the ring's start
        if (end == 0) end = data_size;
        if (end > start && end - start > w) {
          const std::uint64_t avail = end - start - w;  // the block starts with its descriptor id (a long)
          const std::uint64_t len = std::min<std::uint64_t>(text_len, avail);
          rec.text.assign(reinterpret_cast<const char*>(text.data()) + start + w, static_cast<std::size_t>(len));
        }
      }
      out.push_back(std::move(rec));
    }
    if (id == last) break;
  }
  return out;
}

/// The log as makedumpfile --dump-dmesg prints it: "[    5.123456] text", one line per record
/// line, continuation lines indented.
[[nodiscard]] inline std::string format_printk(const std::vector<printk_record>& records) {
  std::string s;
  for (const auto& r : records) {
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "[%5" PRIu64 ".%06" PRIu64 "] ", r.ts_nsec / 1000000000u,
                  (r.ts_nsec % 1000000000u) / 1000u);
    const std::string indent(std::char_traits<char>::length(stamp), ' ');
    std::size_t pos = 0;
    bool first = true;
    do {  // continuation lines are indented under the text, as makedumpfile --dump-dmesg prints them
      const std::size_t nl = r.text.find('\n', pos);
      s += first ? std::string_view(stamp) : std::string_view(indent);
      first = false;
      s.append(r.text, pos, nl == std::string::npos ? std::string::npos : nl - pos);
      s += '\n';
      pos = nl == std::string::npos ? r.text.size() : nl + 1;
    } while (pos < r.text.size());
  }
  return s;
}

}  // namespace kvmxx::inline KVMXX_ABI::linux_

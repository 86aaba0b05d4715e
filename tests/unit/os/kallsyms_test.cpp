// The kallsyms decoder (os/linux/kallsyms.hpp) and resolver (resolver/kallsyms.hpp) on
// tables made by an independent encoder (tests/support/kallsyms_encoder.hpp, which knows
// nothing of kvmxx): every symbol given to the encoder must come back with its address and
// type, and damaged tables must fail with an error naming what is wrong — never crash,
// hang or allocate without bound.
#include <catch2/catch.hpp>
#include <kvmxx/os/linux/kallsyms.hpp>
#include <kvmxx/os/linux/vmcoreinfo.hpp>
#include <kvmxx/resolver/kallsyms.hpp>

#include <kallsyms_encoder.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace {

using kvmxx::errc;
using kvmxx::linux_::decode_kallsyms;
using kvmxx::linux_::kallsyms_location;
using kvmxx::linux_::vmcoreinfo;
using kvmxx_test::encode_kallsyms;
using kvmxx_test::kallsyms_encoding;
using kvmxx_test::kallsyms_image;
using kvmxx_test::kallsyms_layout;
using kvmxx_test::ksym;
using Catch::Matchers::Contains;

// Reads the image; outside it, fails as an unmapped address would.
struct image_reader {
  const kallsyms_image* img;
  kvmxx::result<void> operator()(std::uint64_t va, std::span<std::byte> out) const {
    if (va < img->base_va || va - img->base_va > img->bytes.size() ||
        out.size() > img->bytes.size() - (va - img->base_va))
      return kvmxx::detail::fail(errc::unmapped_address, "test image: %#llx + %zu is outside",
                                 static_cast<unsigned long long>(va), out.size());
    std::copy_n(img->bytes.begin() + static_cast<std::ptrdiff_t>(va - img->base_va), out.size(), out.begin());
    return kvmxx::success();
  }
};

// Appends the first `n` bytes of the names at the image's end (so that they end where the
// readable memory ends) and returns their address.
std::uint64_t append_names_copy(kallsyms_image& img, std::size_t n) {
  const auto from = static_cast<std::ptrdiff_t>(img.at(img.names));
  const auto first = img.bytes.begin() + from;
  const std::vector<std::byte> copy(first, first + static_cast<std::ptrdiff_t>(n));
  const std::uint64_t va = img.base_va + img.bytes.size();
  img.bytes.insert(img.bytes.end(), copy.begin(), copy.end());
  return va;
}

kallsyms_location where(const kallsyms_image& img) {
  auto l = kallsyms_location::from_vmcoreinfo(vmcoreinfo::parse(img.vmcoreinfo()));
  REQUIRE(l.has_value());
  return l.value();
}

kvmxx::result<kvmxx::linux_::kallsyms_table> decode(const kallsyms_image& img,
                                                    kvmxx::linux_::kallsyms_limits lim = {}) {
  return decode_kallsyms(where(img), image_reader{&img}, {}, lim);
}

std::string error_of(const kvmxx::result<kvmxx::linux_::kallsyms_table>& r) {
  return r.has_value() ? std::string("(decoded)") : kvmxx::describe(r.error());
}

// A kernel-like symbol set: text and data, locals and globals, a duplicate local, names
// with and without a leading '_', per-CPU absolutes, and one name longer than 127 tokens.
std::vector<ksym> sample_symbols() {
  std::vector<ksym> s = {
      {"fixed_percpu_data", 'A', 0x0},
      {"cpu_debug_store", 'A', 0x1000},
      {"irq_stack_backing_store", 'A', 0x6000},
      {"_text", 'T', 0xffffffff81000000},
      {"startup_64", 'T', 0xffffffff81000000},
      {"do_one_initcall", 'T', 0xffffffff81002000},
      {"sys_read", 'T', 0xffffffff81003000},
      {"sys_write", 'T', 0xffffffff81003100},
      {"__sys_sendmsg", 'T', 0xffffffff81003200},
      {"helper", 't', 0xffffffff81004000},  // a local in one file
      {"helper", 't', 0xffffffff81004100},  // and another
      {"counter", 'd', 0xffffffff82000000},
      {"counter", 'D', 0xffffffff82000100},  // the global one must win
      {"linux_banner", 'R', 0xffffffff82100000},
      {"jiffies_64", 'D', 0xffffffff82200000},
      {"__bss_start", 'B', 0xffffffff83000000},
      {"weak_thing", 'W', 0xffffffff81005000},
      {"init_task", 'D', 0xffffffff82300000},
  };
  std::string longname = "rust_";
  while (longname.size() < 300) longname += "_RNvMs_NtCs4Vx";
  longname.resize(300);
  s.push_back({longname, 'T', 0xffffffff81006000});
  for (int i = 0; i < 200; ++i)
    s.push_back({"generated_symbol_" + std::to_string(i), i % 3 == 0 ? 't' : 'T',
                 0xffffffff81010000ull + 0x40ull * static_cast<unsigned>(i)});
  return s;
}

// What lookup must return for each name: the first global, else the first entry.
std::map<std::string, ksym> expected_by_name(const std::vector<ksym>& syms) {
  std::map<std::string, ksym> m;
  for (const auto& s : syms) {
    auto it = m.find(s.name);
    const bool global = s.type >= 'A' && s.type <= 'Z';
    if (it == m.end()) m.emplace(s.name, s);
    else if (global && !(it->second.type >= 'A' && it->second.type <= 'Z')) it->second = s;
  }
  return m;
}

void check_round_trip(const std::vector<ksym>& syms, const kallsyms_encoding& enc) {
  const auto img = encode_kallsyms(syms, enc);
  auto t = decode(img);
  INFO(error_of(t));
  REQUIRE(t.has_value());
  const auto& table = t.value();
  REQUIRE(table.size() == syms.size());
  for (std::size_t i = 0; i < syms.size(); ++i) {
    const auto& e = table.entries()[i];
    INFO("symbol " << i << " " << syms[i].name);
    CHECK(table.name(e) == syms[i].name);
    CHECK(e.type == syms[i].type);
    CHECK(e.value == syms[i].address);
  }
  CHECK(table.absolute_percpu() == (enc.layout == kallsyms_layout::base_relative_absolute_percpu));

  const kvmxx::resolver::kallsyms r(std::move(t).value());
  REQUIRE(r.loaded());
  CHECK(r.size() == syms.size());
  for (const auto& [name, s] : expected_by_name(syms)) {
    INFO(name);
    auto hit = r.lookup(name);
    REQUIRE(hit.has_value());
    CHECK(kvmxx::to_integer(hit.value().value) == s.address);
    CHECK(hit.value().type == kvmxx::resolver::kallsyms::n_type_of(s.type));
  }
}

}  // namespace

TEST_CASE("kallsyms: every symbol of an independently encoded table decodes, in each layout",
          "[os][linux][kallsyms]") {
  const auto syms = sample_symbols();
  kallsyms_encoding enc;
  enc.tokens = {"Tsys_", "generated_", "symbol_", "_RNvMs", "init", "_64", "er", "ta"};
  SECTION("base-relative, absolute per-CPU (x86_64)") { check_round_trip(syms, enc); }
  SECTION("base-relative") {
    enc.layout = kallsyms_layout::base_relative;
    std::vector<ksym> no_abs;
    for (const auto& s : syms)
      if (s.type != 'A') no_abs.push_back(s);
    check_round_trip(no_abs, enc);
  }
  SECTION("kallsyms_addresses") {
    enc.layout = kallsyms_layout::absolute;
    check_round_trip(syms, enc);
  }
  SECTION("no multi-character tokens") {
    enc.tokens.clear();
    check_round_trip(syms, enc);
  }
}

TEST_CASE("kallsyms: a name of more than 127 tokens takes a two-byte length", "[os][linux][kallsyms]") {
  const auto syms = sample_symbols();
  const auto img = encode_kallsyms(syms, {});
  // The encoder wrote the long name's length as two bytes: find it where the format says.
  std::size_t pos = 0;
  bool two_byte = false;
  for (std::size_t i = 0; i < syms.size(); ++i) {
    const auto b0 = static_cast<unsigned>(img.get(img.names + pos, 1));
    std::size_t len = b0;
    if (b0 & 0x80) {
      len = (b0 & 0x7f) | static_cast<std::size_t>(img.get(img.names + pos + 1, 1)) << 7;
      two_byte = syms[i].name.size() == 300;
      pos += 1;
    }
    pos += 1 + len;
  }
  REQUIRE(two_byte);
  auto r = kvmxx::resolver::kallsyms(decode(img).value()).lookup(syms[18].name);
  REQUIRE(r.has_value());
  CHECK(kvmxx::to_integer(r.value().value) == 0xffffffff81006000ull);
}

TEST_CASE("kallsyms: lookups follow the project's name rules", "[os][linux][kallsyms][resolver]") {
  const kvmxx::resolver::kallsyms r(decode(encode_kallsyms(sample_symbols(), {})).value());
  // Exact name, then without one leading '_'.
  CHECK(kvmxx::to_integer(r.lookup("_sys_read").value().value) == 0xffffffff81003000ull);
  CHECK(kvmxx::to_integer(r.lookup("__sys_sendmsg").value().value) == 0xffffffff81003200ull);
  CHECK(kvmxx::to_integer(r.lookup("_text").value().value) == 0xffffffff81000000ull);
  // Global over local; among locals the first.
  CHECK(kvmxx::to_integer(r.lookup("counter").value().value) == 0xffffffff82000100ull);
  CHECK(kvmxx::to_integer(r.lookup("helper").value().value) == 0xffffffff81004000ull);
  CHECK(r.lookup("helper").value().type == kvmxx::nlist_type::text);
  CHECK(r.lookup("init_task").value().type == (kvmxx::nlist_type::data | kvmxx::nlist_type::ext));
  CHECK(r.lookup("fixed_percpu_data").value().type == (kvmxx::nlist_type::abs | kvmxx::nlist_type::ext));
  CHECK(r.lookup("__bss_start").value().type == (kvmxx::nlist_type::bss | kvmxx::nlist_type::ext));
  // Not a prefix match, not case-folded.
  auto miss = r.lookup("sys_rea");
  REQUIRE_FALSE(miss.has_value());
  CHECK(miss.error() == errc::symbol_not_found);
  CHECK_THAT(kvmxx::describe(miss.error()), Contains("sys_rea"));
  CHECK(r.lookup("INIT_TASK").error() == errc::symbol_not_found);
  // for_each walks name order, the preferred entry of a name first.
  std::vector<std::string> names;
  std::vector<std::uint64_t> counter_values;
  r.for_each([&](std::string_view n, kvmxx::kvaddr v, std::uint8_t) {
    names.emplace_back(n);
    if (n == "counter") counter_values.push_back(kvmxx::to_integer(v));
  });
  CHECK(std::is_sorted(names.begin(), names.end()));
  CHECK(names.size() == sample_symbols().size());
  CHECK(counter_values == std::vector<std::uint64_t>{0xffffffff82000100ull, 0xffffffff82000000ull});
}

TEST_CASE("kallsyms: concurrent lookups agree with single-threaded ones", "[os][linux][kallsyms][resolver]") {
  const auto syms = sample_symbols();
  const kvmxx::resolver::kallsyms r(decode(encode_kallsyms(syms, {})).value());
  const kvmxx::resolver::kallsyms copy = r;  // copies share the table
  const auto want = expected_by_name(syms);
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round)
        for (const auto& [name, s] : want) {
          auto hit = (t % 2 ? copy : r).lookup(name);
          if (!hit || kvmxx::to_integer(hit.value().value) != s.address) ++bad[static_cast<std::size_t>(t)];
          if ((t % 2 ? copy : r).lookup(name + "_missing")) ++bad[static_cast<std::size_t>(t)];
        }
    });
  for (auto& th : threads) th.join();
  CHECK(bad == std::vector<int>(4, 0));
}

TEST_CASE("kallsyms: an empty resolver says why it is empty", "[os][linux][kallsyms][resolver]") {
  const kvmxx::resolver::kallsyms none;
  CHECK_FALSE(none.loaded());
  CHECK(none.size() == 0);
  CHECK(none.lookup("init_task").error() == errc::no_symbol_table);
  const auto why = kvmxx::resolver::kallsyms::unavailable("kallsyms: the dump has no VMCOREINFO");
  auto r = why.lookup("init_task");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == errc::no_symbol_table);
  CHECK_THAT(kvmxx::describe(r.error()), Contains("init_task") && Contains("no VMCOREINFO"));
  CHECK(why.why_empty() == "kallsyms: the dump has no VMCOREINFO");
}

TEST_CASE("kallsyms: VMCOREINFO without the tables names the missing line", "[os][linux][kallsyms]") {
  auto empty = kallsyms_location::from_vmcoreinfo(vmcoreinfo::parse(""));
  REQUIRE_FALSE(empty.has_value());
  CHECK(empty.error() == errc::no_symbol_table);
  CHECK_THAT(kvmxx::describe(empty.error()), Contains("no VMCOREINFO"));

  // Linux 5.x: VMCOREINFO but no kallsyms lines.
  auto old = kallsyms_location::from_vmcoreinfo(
      vmcoreinfo::parse("OSRELEASE=5.10.0\nSYMBOL(init_uts_ns)=ffffffff82a13000\nKERNELOFFSET=0\n"));
  REQUIRE_FALSE(old.has_value());
  CHECK(old.error() == errc::no_symbol_table);
  CHECK_THAT(kvmxx::describe(old.error()), Contains("SYMBOL(kallsyms_num_syms)") && Contains("6.0"));

  const auto img = encode_kallsyms(sample_symbols(), {});
  std::string text = img.vmcoreinfo();
  const auto cut = [&](const std::string& key) {
    std::string t = text;
    const auto at = t.find(key);
    REQUIRE(at != std::string::npos);
    t.erase(at, t.find('\n', at) + 1 - at);
    return t;
  };
  auto no_index = kallsyms_location::from_vmcoreinfo(vmcoreinfo::parse(cut("SYMBOL(kallsyms_token_index)")));
  REQUIRE_FALSE(no_index.has_value());
  CHECK_THAT(kvmxx::describe(no_index.error()), Contains("SYMBOL(kallsyms_token_index)"));
  auto no_base = kallsyms_location::from_vmcoreinfo(vmcoreinfo::parse(cut("SYMBOL(kallsyms_relative_base)")));
  REQUIRE_FALSE(no_base.has_value());
  CHECK_THAT(kvmxx::describe(no_base.error()), Contains("kallsyms_relative_base") && Contains("kallsyms_addresses"));
}

TEST_CASE("kallsyms: damaged tables fail with an error naming the table, never crash", "[os][linux][kallsyms]") {
  const auto syms = sample_symbols();
  const auto good = encode_kallsyms(syms, kallsyms_encoding{kallsyms_layout::base_relative_absolute_percpu,
                                                            {"Tsys_", "generated_", "symbol_"}});
  REQUIRE(decode(good).has_value());

  SECTION("a count of 0") {
    auto img = good;
    img.put(img.num_syms, 0, 4);
    auto r = decode(img);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::corrupt);
    CHECK_THAT(error_of(r), Contains("kallsyms_num_syms") && Contains("is 0"));
  }
  SECTION("a count above the limit") {
    auto img = good;
    img.put(img.num_syms, 0xffffffffu, 4);
    auto r = decode(img);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::corrupt);
    CHECK_THAT(error_of(r), Contains("kallsyms_num_syms") && Contains("limit"));
  }
  SECTION("a count larger than the table: reads run off the tables") {
    auto img = good;
    img.put(img.num_syms, syms.size() * 1000, 4);
    auto r = decode(img);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::unmapped_address);
    CHECK_THAT(error_of(r), Contains("kallsyms_offsets"));
  }
  SECTION("a count one larger than the names: the names run off the readable memory") {
    auto img = good;
    auto l = where(img);
    l.names = append_names_copy(img, img.names_size);
    img.put(img.num_syms, syms.size() + 1, 4);
    auto r = decode_kallsyms(l, image_reader{&img});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::unmapped_address);
    CHECK_THAT(error_of(r), Contains("kallsyms_names"));
  }
  SECTION("truncated names") {
    auto img = good;
    auto l = where(img);
    l.names = append_names_copy(img, img.names_size / 2);
    auto r = decode_kallsyms(l, image_reader{&img});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::unmapped_address);
    CHECK_THAT(error_of(r), Contains("kallsyms_names"));
  }
  SECTION("a token index past the token table") {
    auto img = good;
    img.put(img.token_index + 2 * 's', 0xfff0, 2);  // 's' is used by names
    auto r = decode(img);
    REQUIRE_FALSE(r.has_value());
    CHECK_THAT(error_of(r), Contains("kallsyms_token_table"));
  }
  SECTION("a token table without a NUL") {
    // The tables point at a token table of 'x' only that runs to the end of memory.
    auto img = good;
    auto l = where(img);
    l.token_table = img.base_va + img.bytes.size();
    img.bytes.resize(img.bytes.size() + img.token_table_size + 300, std::byte{'x'});
    auto r = decode_kallsyms(l, image_reader{&img});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::unmapped_address);
    CHECK_THAT(error_of(r), Contains("kallsyms_token_table"));
    // With more 'x' readable, the search stops at the length limit instead.
    img.bytes.resize(img.bytes.size() + 2000, std::byte{'x'});
    r = decode_kallsyms(l, image_reader{&img});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::corrupt);
    CHECK_THAT(error_of(r), Contains("kallsyms_token_table") && Contains("no NUL"));
  }
  SECTION("a name of 0 bytes") {
    auto img = good;
    img.put(img.names, 0, 1);
    auto r = decode(img);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::corrupt);
    CHECK_THAT(error_of(r), Contains("symbol 0") && Contains("empty name"));
  }
  SECTION("a name longer than KSYM_NAME_LEN") {
    auto img = good;
    img.put(img.names, 0x80 | 0x7f, 1);
    img.put(img.names + 1, 0x7f, 1);  // 16383 bytes
    auto r = decode(img);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::corrupt);
    CHECK_THAT(error_of(r), Contains("symbol 0") && Contains("limit"));
  }
  SECTION("tokens that expand past KSYM_NAME_LEN") {
    kallsyms_encoding enc;
    enc.tokens = {std::string(200, 'q')};
    std::vector<ksym> s = {{std::string(200, 'q') + "a", 'T', 0xffffffff81000000}};
    auto img = encode_kallsyms(s, enc);
    // One name of 3 tokens 'T', qqq…, 'a': make it T + qqq… ×3 (601 characters).
    const unsigned q = static_cast<unsigned>(img.get(img.names + 2, 1));
    img.put(img.names + 3, q, 1);
    img.put(img.names, 4, 1);
    img.put(img.names + 4, q, 1);
    auto r = decode(img);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::corrupt);
    CHECK_THAT(error_of(r), Contains("expands to more than 512"));
  }
  SECTION("a control character as the type") {
    auto img = good;
    // The first symbol's first token is its type letter 'A': point that byte's token at
    // an empty token then a control character — simplest: rewrite the token's text.
    const unsigned a = static_cast<unsigned>(img.get(img.names + 1, 1));
    const auto off = img.get(img.token_index + 2 * a, 2);
    img.put(img.token_table + off, 0x01, 1);
    auto r = decode(img);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::corrupt);
    CHECK_THAT(error_of(r), Contains("type byte 0x1"));
  }
  SECTION("names longer than the names limit") {
    kvmxx::linux_::kallsyms_limits lim;
    lim.max_names_bytes = good.names_size / 2;
    auto r = decode(good, lim);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::corrupt);
    CHECK_THAT(error_of(r), Contains("kallsyms_names") && Contains("limit"));
  }
  SECTION("unreadable offsets") {
    auto img = good;
    auto text = img.vmcoreinfo();
    const auto at = text.find("SYMBOL(kallsyms_offsets)=");
    text.replace(at, text.find('\n', at) - at, "SYMBOL(kallsyms_offsets)=1000");
    auto l = kallsyms_location::from_vmcoreinfo(vmcoreinfo::parse(text));
    REQUIRE(l.has_value());
    auto r = decode_kallsyms(l.value(), image_reader{&img});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == errc::unmapped_address);
    CHECK_THAT(error_of(r), Contains("kallsyms_offsets") && Contains("0x1000"));
  }
  SECTION("a table at the top of the address space") {
    auto l = where(good);
    l.names = ~std::uint64_t{0} - 3;
    auto r = decode_kallsyms(l, image_reader{&good});
    REQUIRE_FALSE(r.has_value());
    CHECK_THAT(error_of(r), Contains("kallsyms_names"));
  }
}

TEST_CASE("kallsyms: random damage to the names and tokens decodes or fails cleanly", "[os][linux][kallsyms]") {
  const auto syms = sample_symbols();
  const auto good = encode_kallsyms(syms, kallsyms_encoding{kallsyms_layout::base_relative_absolute_percpu,
                                                            {"Tsys_", "generated_", "symbol_", "er"}});
  std::mt19937_64 rng(20261126);
  std::size_t decoded = 0, failed = 0;
  const std::uint64_t first = good.num_syms, end = good.base_va + good.bytes.size();
  for (int round = 0; round < 400; ++round) {
    auto img = good;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int f = 0; f < flips; ++f) {
      const std::uint64_t va = first + rng() % (end - first);  // sequenced: the same damage with every compiler
      img.put(va, rng() & 0xff, 1);
    }
    auto r = decode(img);
    if (r.has_value()) {
      ++decoded;
      CHECK(r.value().size() <= 4u << 20);
      for (const auto& e : r.value().entries()) CHECK(e.name_length < 512);
    } else {
      ++failed;
      CHECK_FALSE(kvmxx::describe(r.error()).empty());
    }
  }
  CHECK(decoded + failed == 400);
  CHECK(failed > 0);  // some damage must be noticed
}

// SPDX-License-Identifier: BSD-2-Clause
//
// kvmxx-bench-profile DUMP [rand_va|rand_pa] [kvmxx|kvmxx-any|limit|libkdumpfile] [N]
//
// One workload's reads once, for a profiler: prepares the case as kvmxx-bench does, takes
// the first N (default 100,000) addresses of the same set, reads them once untimed, then
// again between CALLGRIND_ZERO_STATS and CALLGRIND_DUMP_STATS, so that
//   valgrind --tool=callgrind build-bench/bench/kvmxx-bench-profile linux-elf rand_va kvmxx
// shows the cost per read (divide by N). Prints ns per read without valgrind.
#include "case.hpp"
#include "contenders.hpp"
#include "prepare.hpp"

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS
#endif

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  using namespace kvmxx_bench;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DUMP [rand_va|rand_pa] [kvmxx|kvmxx-any|limit|libkdumpfile] [N]\n", argv[0]);
    return 2;
  }
  const std::string dump = argv[1], workload = argc > 2 ? argv[2] : "rand_va", who = argc > 3 ? argv[3] : "kvmxx";
  const std::size_t n = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 100000;
  const auto env = read_environment();
  for (dump_case* c : sorted_cases()) {
    if (c->name() != dump) continue;
    if (auto why = c->prepare(env); !why.empty()) {
      std::fprintf(stderr, "%s: %s\n", dump.c_str(), why.c_str());
      return 1;
    }
    auto typed = c->open_typed();
    const file_map layout = c->physical_layout();
    auto limit = std::make_unique<limit_reader>(c->core_path());
    std::string log;
    address_set s = workload == "rand_pa"
                        ? sample_physical(*c, *typed, layout, limit->data(), random_reads, physical_seed, log)
                        : sample_virtual(*c, *typed, layout, limit->data(), random_reads, virtual_seed, log);
    s.addr.resize(std::min(n, s.addr.size()));
    s.offset.resize(s.addr.size());
    std::unique_ptr<reader> r;
    if (who == "kvmxx") r = std::move(typed);
    else if (who == "kvmxx-any") r = open_any(c->kernel_path(), c->core_path());
    else if (who == "limit") r = std::move(limit);
    else if (who == "libkdumpfile") r = c->open_peer();
    if (!r) {
      std::fprintf(stderr, "no contender %s on %s\n", who.c_str(), dump.c_str());
      return 1;
    }
    std::size_t failed = 0;
    std::uint64_t sum = r->read8(s, 0, s.addr.size(), failed);  // warm: page cache, mappings
    const auto t0 = std::chrono::steady_clock::now();
    CALLGRIND_ZERO_STATS;
    sum += r->read8(s, 0, s.addr.size(), failed);
    CALLGRIND_DUMP_STATS;
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s %s %s: %zu reads, %.1f ns/read, %zu failed (sum %llx)\n", dump.c_str(), workload.c_str(),
                who.c_str(), s.addr.size(), ns / static_cast<double>(s.addr.size()), failed,
                static_cast<unsigned long long>(sum));
    return 0;
  }
  std::fprintf(stderr, "no dump case named %s\n", dump.c_str());
  return 1;
}

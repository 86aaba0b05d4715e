// SPDX-License-Identifier: BSD-2-Clause
//
// kvmxx-bench: registers every workload for every dump case (case.hpp) with Google
// Benchmark. Names are "<workload>/<dump>/<contender>"; bench/table.py turns the JSON
// output into the comparison table. Nothing here knows a dump format: a new case_*.cpp
// adds its rows.
//
// Workloads (the letters):
//   rand_va (a)  1,000,000 random 8-byte reads at kernel virtual addresses
//   rand_pa (b)  the same at physical addresses
//   seq_va, seq_pa (c)  64 MiB sequential in 1 MiB reads (direct map / physical)
//   sym_each, sym_batch (d)  symbol lookups one by one / in one kvm_nlist2-style call
//   open (e)     open the dump, read 8 bytes at one kernel VA, close
//   threads (f)  (a)'s reads shared by N threads through one handle (libkdumpfile: a
//                kdump_clone per thread)
//   probed (g)   rand_va through kvmxx's run-time handles, each paired with the typed handle
//   (h) peak memory is kvmxx-bench-memory (memory.cpp).
// Every contender reads the same addresses; each run checks its sum of the values read
// against the file's bytes (counter checksum_ok) and counts failed reads. Where a target
// is a ratio, the run also times its reference in the same iterations (paired_loop).
#include "case.hpp"
#include "contenders.hpp"
#include "prepare.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

namespace kvmxx_bench {
namespace {

struct prepared {
  dump_case* c = nullptr;
  file_map layout;
  std::unique_ptr<limit_reader> limit;
  std::unique_ptr<reader> typed, probed, visit, any, peer;
  std::string peer_skip;
  std::vector<std::unique_ptr<reader>> peer_threads;  // index 0 unused (the peer itself)
  address_set va, pa, one_va;
  std::vector<block> seq_va, seq_pa;
  std::vector<std::string> names;
};

std::vector<std::unique_ptr<prepared>> all;
std::set<std::pair<const reader*, const void*>> warmed;  // (contender, workload data) read once untimed

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<int> thread_counts() {
  const int n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::set<int> s{1, 2, n};
  return {s.begin(), s.end()};
}

// ---- workload bodies --------------------------------------------------------------------

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// Runs measured(0, ops) once per iteration. With a reference, the reference does the
// same work in the same iteration, over the four quarters of [0, ops) in the order
// A B | B A | B A | A B (A = measured, B = reference: each goes first on two quarters and
// second, after the other read the same addresses, on two), each part timed in thread CPU
// time. The iteration's time is the measured parts alone (UseManualTime), and the counters
// paired_ratio (measured / reference) and paired_ref_ns (per operation) come out: a ratio
// that drift and other processes' bursts affect far less than a ratio of two separately
// timed benchmarks, with no side favoured by its position. Both (or the measured side
// alone, unpaired) first run untimed over the last eighth: with repetitions interleaved,
// the previous benchmark often read another dump, and Google Benchmark often runs a
// repetition as one iteration, which would otherwise pay for that cold state.
template <class Measured, class Reference>
void paired_loop(benchmark::State& st, std::size_t ops, bool paired, Measured&& measured, Reference&& reference) {
  double t_measured = 0, t_reference = 0;
  if (paired) reference(ops - ops / 8, ops);
  measured(ops - ops / 8, ops);
  auto timed = [](auto& f, std::size_t b, std::size_t e) {
    const double t0 = thread_cpu_seconds();
    f(b, e);
    return thread_cpu_seconds() - t0;
  };
  static constexpr bool measured_first[4] = {true, false, false, true};
  for (auto _ : st) {
    if (!paired) {
      measured(std::size_t{0}, ops);
      continue;
    }
    double dt = 0;
    for (std::size_t q = 0; q < 4; ++q) {
      const std::size_t b = ops * q / 4, e = ops * (q + 1) / 4;
      if (measured_first[q]) {
        dt += timed(measured, b, e);
        t_reference += timed(reference, b, e);
      } else {
        t_reference += timed(reference, b, e);
        dt += timed(measured, b, e);
      }
    }
    t_measured += dt;
    st.SetIterationTime(dt);
  }
  if (paired && t_reference > 0) {
    st.counters["paired_ratio"] = t_measured / t_reference;
    st.counters["paired_ref_ns"] = t_reference * 1e9 / (static_cast<double>(st.iterations()) * static_cast<double>(ops));
  }
}

void random_reads_body(benchmark::State& st, reader* r, const address_set& s, reader* paired) {
  std::size_t failed = 0, ref_failed = 0;
  if (warmed.insert({r, &s}).second) (void)r->read8(s, 0, s.addr.size(), failed);
  if (paired != nullptr && warmed.insert({paired, &s}).second) (void)paired->read8(s, 0, s.addr.size(), ref_failed);
  std::uint64_t sum = 0, ref_sum = 0;
  paired_loop(
      st, s.addr.size(), paired != nullptr,
      [&](std::size_t b, std::size_t e) {
        if (b == 0) failed = 0, sum = 0;
        sum += r->read8(s, b, e, failed);
        benchmark::DoNotOptimize(sum);
      },
      [&](std::size_t b, std::size_t e) {
        ref_sum += paired->read8(s, b, e, ref_failed);
        benchmark::DoNotOptimize(ref_sum);
      });
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * s.addr.size()));
  st.counters["failed"] = static_cast<double>(failed);
  st.counters["checksum_ok"] = sum == s.expected ? 1 : 0;
}

// The first call checks every block against `check` (the limit, else kvmxx's typed handle).
void sequential_body(benchmark::State& st, reader* r, reader* check, const std::vector<block>& blocks,
                     reader* paired) {
  thread_local std::vector<std::byte> out(sequential_chunk), want(sequential_chunk);
  double ok = 1;
  if (warmed.insert({r, &blocks}).second) {
    for (const auto& b : blocks) {
      std::fill(out.begin(), out.end(), std::byte{0});
      if (!r->read_block(b, out.data())) ok = 0;
      if (check != r) {
        check->read_block(b, want.data());
        if (std::memcmp(out.data(), want.data(), b.len) != 0) ok = 0;
      }
    }
  }
  std::size_t failed = 0;
  paired_loop(
      st, blocks.size(), paired != nullptr,
      [&](std::size_t from, std::size_t to) {
        if (from == 0) failed = 0;
        for (std::size_t k = from; k < to; ++k) failed += r->read_block(blocks[k], out.data()) ? 0 : 1;
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
      },
      [&](std::size_t from, std::size_t to) {
        for (std::size_t k = from; k < to; ++k) (void)paired->read_block(blocks[k], want.data());
        benchmark::DoNotOptimize(want.data());
        benchmark::ClobberMemory();
      });
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * blocks.size()));
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * blocks.size() * sequential_chunk));
  st.counters["failed"] = static_cast<double>(failed);
  st.counters["checksum_ok"] = ok;
}

void symbols_body(benchmark::State& st, reader* r, const std::vector<std::string>& names, bool batch) {
  std::optional<std::size_t> found;
  std::uint64_t sum = 0;
  for (auto _ : st) {
    sum = 0;
    found = batch ? r->lookup_batch(names, sum) : r->lookup_each(names, sum);
    benchmark::DoNotOptimize(sum);
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * names.size()));
  st.counters["failed"] = static_cast<double>(names.size() - found.value_or(0));
}

void open_body(benchmark::State& st, const std::function<std::unique_ptr<reader>()>& open, const address_set& one) {
  std::size_t failed = 0;
  std::uint64_t sum = 0;
  for (auto _ : st) {
    failed = 0;
    auto r = open();
    sum = r->read8(one, 0, 1, failed);
    benchmark::DoNotOptimize(sum);
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
  st.counters["failed"] = static_cast<double>(failed);
  st.counters["checksum_ok"] = sum == one.expected ? 1 : 0;
}

// The threads share (a)'s 1,000,000 reads: thread k of N reads the k-th N-th of the set,
// so an iteration is the same work for every N and the items per second are throughput.
void threads_body(benchmark::State& st, prepared* p, reader* shared, bool per_thread_peer) {
  const address_set& s = p->va;
  reader* r = shared;
  if (per_thread_peer && st.thread_index() > 0) r = p->peer_threads.at(static_cast<std::size_t>(st.thread_index())).get();
  const std::size_t n = s.addr.size(), k = static_cast<std::size_t>(st.thread_index());
  const std::size_t threads = static_cast<std::size_t>(st.threads());
  const std::size_t begin = n * k / threads, end = n * (k + 1) / threads;
  std::size_t failed = 0;
  {  // each thread's share read once, untimed, the first time (page faults, the peer's cache)
    static std::mutex mutex;
    static std::set<std::tuple<const reader*, std::size_t, std::size_t>> done;
    bool first = false;
    {
      const std::lock_guard<std::mutex> lock(mutex);
      first = done.insert({r, k, threads}).second;
    }
    // Every call, the last eighth of the share untimed (see paired_loop).
    (void)r->read8(s, first ? begin : end - (end - begin) / 8, end, failed);
  }
  for (auto _ : st) {
    failed = 0;
    std::uint64_t sum = r->read8(s, begin, end, failed);
    benchmark::DoNotOptimize(sum);
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * (end - begin)));
  st.counters["failed"] = static_cast<double>(failed);
}

// The machine's own scaling, for (f): an ALU loop touching no memory.
void alu_control_body(benchmark::State& st) {
  constexpr std::uint64_t steps = 10'000'000;
  for (auto _ : st) {
    std::uint64_t x = 0;
    for (std::uint64_t i = 0; i < steps; ++i) {
      x = x * 6364136223846793005ull + i;
      benchmark::DoNotOptimize(x);
    }
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * steps));
}

// ---- preparation and registration -------------------------------------------------------

template <class F>
std::unique_ptr<reader> try_open(const std::string& what, const std::string& dump, F&& f, std::string* why = nullptr) {
  try {
    return f();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvmxx-bench: %s on %s: %s\n", what.c_str(), dump.c_str(), e.what());
    benchmark::AddCustomContext("error " + dump + " " + what, e.what());
    if (why != nullptr) *why = e.what();
    return nullptr;
  }
}

std::unique_ptr<prepared> prepare_case(dump_case* c, const environment& env) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string dump = c->name();
  std::string skip;
  try {
    skip = c->prepare(env);
  } catch (const std::exception& e) {
    skip = e.what();
  }
  if (!skip.empty()) {
    std::fprintf(stderr, "kvmxx-bench: skipping %s: %s\n", dump.c_str(), skip.c_str());
    benchmark::AddCustomContext("skipped " + dump, skip);
    return nullptr;
  }
  auto p = std::make_unique<prepared>();
  p->c = c;
  benchmark::AddCustomContext("dump " + dump, c->description());
  p->typed = try_open("kvmxx typed open", dump, [&] { return c->open_typed(); });
  if (!p->typed) return nullptr;
  p->layout = c->physical_layout();
  if (!p->layout.empty())
    p->limit = std::unique_ptr<limit_reader>(static_cast<limit_reader*>(
        try_open("memcpy limit", dump, [&] { return std::make_unique<limit_reader>(c->core_path()); }).release()));
  const std::string kernel = c->kernel_path(), core = c->core_path();
  p->probed = try_open("kvmxx::open", dump, [&] { return open_probed(kernel, core); });
  p->visit = try_open("kvmxx::open_dump_handle", dump, [&] { return open_visit(kernel, core); });
  p->any = try_open("kvmxx::open_any", dump, [&] { return open_any(kernel, core); });
  p->peer = try_open("libkdumpfile", dump, [&] { return c->open_peer(); }, &p->peer_skip);
  if (!p->peer && p->peer_skip.empty()) p->peer_skip = c->peer_unsupported_reason();
  benchmark::AddCustomContext("peer " + dump, p->peer ? "libkdumpfile" : "n/a: " + p->peer_skip);
  if (p->peer) {
    const auto counts = thread_counts();
    p->peer_threads.resize(static_cast<std::size_t>(counts.back()));
    for (std::size_t i = 1; i < p->peer_threads.size(); ++i) p->peer_threads[i] = p->peer->for_thread();
  }

  // The addresses, once, for every contender: where their bytes lie in the file when the
  // format stores them as they are (the limit's mapping), else as kvmxx reads them.
  const std::byte* file = p->limit ? p->limit->data() : nullptr;
  std::string log;
  p->va = sample_virtual(*c, *p->typed, p->layout, file, random_reads, virtual_seed, log);
  log += " ";
  p->pa = sample_physical(*c, *p->typed, p->layout, file, random_reads, physical_seed, log);
  benchmark::AddCustomContext("addresses " + dump, log);
  p->one_va.is_virtual = true;
  p->one_va.addr = {p->va.addr[0]};
  p->one_va.offset = {p->va.offset[0]};
  p->one_va.expected = *p->typed->read_one(true, p->va.addr[0]);
  const auto seq = c->sequential();
  p->seq_va = sequential_blocks(seq, true, sequential_chunk, p->layout);
  p->seq_pa = sequential_blocks(seq, false, sequential_chunk, p->layout);
  if (p->limit)
    for (const auto& b : p->seq_pa)
      if (b.pieces.empty()) {
        std::fprintf(stderr, "kvmxx-bench: %s: sequential range not wholly in the file\n", dump.c_str());
        return nullptr;
      }
  p->names = c->symbol_names();
  std::fprintf(stderr, "kvmxx-bench: prepared %s in %.1f s (%zu+%zu addresses, %zu sequential blocks, %zu names)\n",
               dump.c_str(), seconds_since(t0), p->va.addr.size(), p->pa.addr.size(), p->seq_va.size(),
               p->names.size());
  return p;
}

std::string bench_name(const char* workload, const prepared& p, const char* contender) {
  return std::string(workload) + "/" + p.c->name() + "/" + contender;
}

// The contenders of the comparison workloads: kvmxx's typed handle, the limit, the peer.
std::vector<std::pair<const char*, reader*>> comparison(const prepared& p) {
  std::vector<std::pair<const char*, reader*>> out{{"kvmxx", p.typed.get()}};
  if (p.limit) out.emplace_back("limit", p.limit.get());
  if (p.peer) out.emplace_back("libkdumpfile", p.peer.get());
  return out;
}

reader* reference(const prepared& p) {
  return p.limit ? static_cast<reader*>(p.limit.get()) : p.typed.get();
}

void register_all() {
  // (a), (b): kvmxx is paired with the limit, the peer with kvmxx (the targets' ratios).
  for (const char* w : {"rand_va", "rand_pa"})
    for (auto& pp : all) {
      prepared* p = pp.get();
      const address_set& set = std::strcmp(w, "rand_va") == 0 ? p->va : p->pa;
      for (auto [who, r] : comparison(*p)) {
        reader* paired = r == p->typed.get() ? p->limit.get() : r == p->peer.get() ? p->typed.get() : nullptr;
        auto* b = benchmark::RegisterBenchmark(bench_name(w, *p, who).c_str(), random_reads_body, r, std::cref(set),
                                               paired);
        b->Unit(benchmark::kMillisecond);
        if (paired != nullptr) b->UseManualTime();
      }
    }
  // (c): kvmxx paired with the limit.
  for (const char* w : {"seq_va", "seq_pa"})
    for (auto& pp : all) {
      prepared* p = pp.get();
      const auto& blocks = std::strcmp(w, "seq_va") == 0 ? p->seq_va : p->seq_pa;
      for (auto [who, r] : comparison(*p)) {
        reader* paired = r == p->typed.get() ? p->limit.get() : nullptr;
        auto* b = benchmark::RegisterBenchmark(bench_name(w, *p, who).c_str(), sequential_body, r, reference(*p),
                                               std::cref(blocks), paired);
        b->Unit(benchmark::kMillisecond);
        if (paired != nullptr) b->UseManualTime();
      }
    }
  for (auto& pp : all) {
    prepared* p = pp.get();
    benchmark::RegisterBenchmark(bench_name("sym_each", *p, "kvmxx").c_str(), symbols_body, p->typed.get(),
                                 std::cref(p->names), false);
    std::uint64_t ignored = 0;
    if (p->peer && p->peer->lookup_each(p->names, ignored))
      benchmark::RegisterBenchmark(bench_name("sym_each", *p, "libkdumpfile").c_str(), symbols_body, p->peer.get(),
                                   std::cref(p->names), false);
    benchmark::RegisterBenchmark(bench_name("sym_batch", *p, "kvmxx").c_str(), symbols_body, p->typed.get(),
                                 std::cref(p->names), true);
  }
  for (auto& pp : all) {
    prepared* p = pp.get();
    const std::string kernel = p->c->kernel_path(), core = p->c->core_path();
    std::vector<std::pair<const char*, std::function<std::unique_ptr<reader>()>>> openers{
        {"kvmxx", [p] { return p->c->open_typed(); }},
        {"kvmxx-open", [kernel, core] { return open_probed(kernel, core); }},
        {"kvmxx-any", [kernel, core] { return open_any(kernel, core); }}};
    if (p->limit) openers.emplace_back("limit", [core] { return std::unique_ptr<reader>(std::make_unique<limit_reader>(core)); });
    if (p->peer) openers.emplace_back("libkdumpfile", [p] { return p->c->open_peer(); });
    for (auto& [who, f] : openers)
      benchmark::RegisterBenchmark(bench_name("open", *p, who).c_str(), open_body, f, std::cref(p->one_va))
          ->Unit(benchmark::kMillisecond);
  }
  for (auto& pp : all) {
    prepared* p = pp.get();
    for (auto [who, r] : comparison(*p)) {
      auto* b = benchmark::RegisterBenchmark(bench_name("threads", *p, who).c_str(), threads_body, p, r,
                                             r == p->peer.get());
      b->Unit(benchmark::kMillisecond)->UseRealTime();
      for (int n : thread_counts()) b->Threads(n);
    }
  }
  {
    auto* b = benchmark::RegisterBenchmark("threads/machine/alu-loop", alu_control_body);
    b->Unit(benchmark::kMillisecond)->UseRealTime();
    for (int n : thread_counts()) b->Threads(n);
  }
  // (g): each run-time handle paired with the typed handle, on (a)'s addresses.
  for (auto& pp : all) {
    prepared* p = pp.get();
    const std::pair<const char*, reader*> runtime[] = {
        {"kvmxx-open", p->probed.get()}, {"kvmxx-visit", p->visit.get()}, {"kvmxx-any", p->any.get()}};
    for (auto [who, r] : runtime)
      if (r != nullptr)
        benchmark::RegisterBenchmark(bench_name("probed", *p, who).c_str(), random_reads_body, r, std::cref(p->va),
                                     p->typed.get())
            ->Unit(benchmark::kMillisecond)
            ->UseManualTime();
  }
}

}  // namespace
}  // namespace kvmxx_bench

int main(int argc, char** argv) {
  using namespace kvmxx_bench;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  const auto env = read_environment();
  benchmark::AddCustomContext("random_reads", std::to_string(random_reads));
  benchmark::AddCustomContext("sequential", "64 MiB in 1 MiB reads");
  for (dump_case* c : sorted_cases())
    if (auto p = prepare_case(c, env)) all.push_back(std::move(p));
  if (all.empty()) {
    std::fprintf(stderr, "kvmxx-bench: no dump case could be prepared\n");
    return 1;
  }
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

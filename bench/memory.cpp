// SPDX-License-Identifier: BSD-2-Clause
//
// kvmxx-bench-memory — workload (h): memory a contender needs beyond the mapped dump file.
// For every dump case the parent picks the same 1,000,000 random kernel virtual addresses
// as kvmxx-bench; then for every contender (kvmxx's typed handle, libkdumpfile, the memcpy
// limit) a forked child gives freed heap back (malloc_trim), resets the peak RSS, opens
// the dump and reads every address once. From /proc/self/status:
//   open_peak   peak RSS during open, minus the file pages open touched;
//   after_reads anonymous RSS (heap, caches) after the reads, beyond the baseline;
//   peak        the larger of open_peak and the anonymous RSS after open plus the peak
//               growth during the reads (file pages taken out);
//   file        pages of the dump file resident in this process after the reads.
// Writes Google-Benchmark-shaped JSON (bench/table.py reads it) to the file named by
// --out (default: stdout).
#include "case.hpp"
#include "limit.hpp"
#include "prepare.hpp"

#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace kvmxx_bench {
namespace {

struct figures {
  long open_peak = 0, after_reads = 0, peak = 0, file = 0;
  std::size_t failed = 0;
  bool checksum_ok = false;
};

std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) {
      o += ' ';
      continue;
    }
    o += ch;
  }
  return o;
}

// The addresses, picked in the parent before the children fork (the sampling's handle and
// mapping are gone before any baseline).
address_set pick_addresses(dump_case& c, bool& has_layout) {
  auto typed = c.open_typed();
  const file_map layout = c.physical_layout();
  std::unique_ptr<limit_reader> file;
  has_layout = !layout.empty();
  if (has_layout) file = std::make_unique<limit_reader>(c.core_path());
  std::string log;
  return sample_virtual(c, *typed, layout, file ? file->data() : nullptr, random_reads, virtual_seed, log);
}

// In the child: open and read, measured from a clean baseline.
figures measure(dump_case& c, const std::string& contender, const address_set& va, bool has_layout) {
  figures f;
  malloc_trim(0);  // freed heap back to the system, so that reusing it shows as growth
  reset_peak_rss();
  const proc_memory m0 = read_proc_memory();
  std::unique_ptr<reader> r;
  if (contender == "kvmxx") r = c.open_typed();
  else if (contender == "libkdumpfile") r = c.open_peer();
  else if (has_layout) r = std::make_unique<limit_reader>(c.core_path());
  else throw open_error("n/a");
  const proc_memory m1 = read_proc_memory();
  reset_peak_rss();
  std::size_t failed = 0;
  const std::uint64_t sum = r->read8(va, 0, va.addr.size(), failed);
  const proc_memory m2 = read_proc_memory();
  f.open_peak = m1.vm_hwm - m0.vm_rss - (m1.rss_file - m0.rss_file);
  f.after_reads = (m2.rss_anon + m2.rss_shmem) - (m0.rss_anon + m0.rss_shmem);
  const long reads_peak = m2.vm_hwm - m1.vm_rss - (m2.rss_file - m1.rss_file);
  f.peak = std::max(f.open_peak, (m1.rss_anon + m1.rss_shmem) - (m0.rss_anon + m0.rss_shmem) + reads_peak);
  f.file = m2.rss_file - m1.rss_file;
  f.failed = failed;
  f.checksum_ok = sum == va.expected;
  return f;
}

}  // namespace
}  // namespace kvmxx_bench

int main(int argc, char** argv) {
  using namespace kvmxx_bench;
  std::string out_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--out=", 0) == 0) out_path = a.substr(6);
    else {
      std::fprintf(stderr, "usage: %s [--out=FILE]\n", argv[0]);
      return 2;
    }
  }
  const auto env = read_environment();
  std::ostringstream js;
  js << "{\n  \"context\": {\"program\": \"kvmxx-bench-memory\", \"random_reads\": " << random_reads
     << "},\n  \"benchmarks\": [";
  bool first = true;
  for (dump_case* c : sorted_cases()) {
    std::string skip;
    try {
      skip = c->prepare(env);
    } catch (const std::exception& e) {
      skip = e.what();
    }
    if (!skip.empty()) {
      std::fprintf(stderr, "kvmxx-bench-memory: skipping %s: %s\n", c->name().c_str(), skip.c_str());
      continue;
    }
    bool has_layout = false;
    address_set va;
    try {
      va = pick_addresses(*c, has_layout);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kvmxx-bench-memory: skipping %s: %s\n", c->name().c_str(), e.what());
      continue;
    }
    bool has_peer = false;
    try {
      has_peer = c->open_peer() != nullptr;
    } catch (const std::exception&) {
    }
    for (const std::string contender : {"kvmxx", "libkdumpfile", "limit"}) {
      int fds[2];
      if (::pipe(fds) != 0) return 1;
      std::fflush(nullptr);
      const pid_t pid = ::fork();
      if (pid == 0) {
        ::close(fds[0]);
        std::string line;
        try {
          if ((contender == "libkdumpfile" && !has_peer) || (contender == "limit" && !has_layout)) {
            line = "n/a";
          } else {
            const figures f = measure(*c, contender, va, has_layout);
            line = std::to_string(f.open_peak) + " " + std::to_string(f.after_reads) + " " + std::to_string(f.peak) +
                   " " + std::to_string(f.file) + " " + std::to_string(f.failed) + " " + (f.checksum_ok ? "1" : "0");
          }
        } catch (const std::exception& e) {
          line = std::string(e.what()) == "n/a" ? "n/a" : std::string("error ") + e.what();
        }
        (void)!::write(fds[1], line.data(), line.size());
        ::close(fds[1]);
        std::_Exit(0);
      }
      ::close(fds[1]);
      std::string line;
      char buf[512];
      ssize_t n;
      while ((n = ::read(fds[0], buf, sizeof buf)) > 0) line.append(buf, static_cast<std::size_t>(n));
      ::close(fds[0]);
      int status = 0;
      ::waitpid(pid, &status, 0);
      const std::string name = "memory/" + c->name() + "/" + contender;
      if (line == "n/a") continue;
      js << (first ? "\n" : ",\n") << "    {\"name\": \"" << name << "\", \"run_name\": \"" << name << "\"";
      first = false;
      long open_peak = 0, after = 0, peak = 0, file = 0, failed = 0, ok = 0;
      std::istringstream s(line);
      if (line.rfind("error", 0) == 0 || !(s >> open_peak >> after >> peak >> file >> failed >> ok)) {
        js << ", \"error_occurred\": true, \"error_message\": \"" << json_escape(line) << "\"}";
        std::fprintf(stderr, "kvmxx-bench-memory: %s: %s\n", name.c_str(), line.c_str());
        continue;
      }
      js << ", \"open_peak_kib\": " << open_peak << ", \"after_reads_kib\": " << after << ", \"peak_kib\": " << peak
         << ", \"file_resident_kib\": " << file << ", \"failed\": " << failed << ", \"checksum_ok\": " << ok << "}";
      std::fprintf(stderr, "kvmxx-bench-memory: %-40s peak %ld KiB beyond the file (open %ld, after reads %ld; %ld KiB of the file resident)\n",
                   name.c_str(), peak, open_peak, after, file);
    }
  }
  js << "\n  ]\n}\n";
  if (out_path.empty()) {
    std::fputs(js.str().c_str(), stdout);
  } else {
    std::ofstream f(out_path);
    f << js.str();
    if (!f) return 1;
  }
  return 0;
}

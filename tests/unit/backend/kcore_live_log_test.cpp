// The in-guest live test's results (tests/live/kcore_live_test.cpp, run by the 'live' boot
// of tests/real/make-linux-dumps.sh inside QEMU, output in $KVMXX_LINUX_DUMPS/live/live.log)
// turned into test results here, each CHECK line one assertion, and cross-checked with what
// the guest's /init reported on its own (live/facts.txt: /proc/version, the kallsyms line
// count, the binary's exit status). Skips, saying why, only when the live boot's log is
// absent (KVMXX_LINUX_DUMPS unset, or the dumps made without --live-binary).
#include <catch2/catch.hpp>

#include <skip.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct live_log {
  std::map<std::string, std::pair<std::string, std::string>> checks;  // name → (PASS|FAIL, detail)
  std::map<std::string, unsigned long long> counts;
  std::string summary;
};

std::string live_dir() {
  const char* d = std::getenv("KVMXX_LINUX_DUMPS");
  if (d == nullptr || *d == '\0') return {};
  const auto p = std::filesystem::path(d) / "live";
  return std::filesystem::exists(p / "live.log") ? p.string() : std::string();
}

live_log parse(const std::string& path) {
  live_log l;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::istringstream s(line);
    std::string tag, name, status;
    s >> tag;
    if (tag == "CHECK") {
      s >> name >> status;
      std::string rest;
      std::getline(s, rest);
      l.checks[name] = {status, rest};
    } else if (tag == "COUNT") {
      unsigned long long n = 0;
      s >> name >> n;
      l.counts[name] = n;
    } else if (tag == "SUMMARY") {
      l.summary = line;
    }
  }
  return l;
}

std::multimap<std::string, std::string> facts(const std::string& path) {
  std::multimap<std::string, std::string> out;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.find(' ');
    out.emplace(line.substr(0, sp), sp == std::string::npos ? std::string() : line.substr(sp + 1));
  }
  return out;
}

}  // namespace

TEST_CASE("live: every check of the in-guest /proc/kcore test passed", "[live][real]") {
  const auto dir = live_dir();
  if (dir.empty())
    KVMXX_TEST_SKIP("no live/live.log in KVMXX_LINUX_DUMPS (run tests/real/make-linux-dumps.sh --live-binary "
                    "build/tests/kvmxx-live-test, as tests/run-all.sh does)");
  const auto log = parse(dir + "/live.log");
  // Each check the program makes must be there: a crash half-way leaves some out.
  for (const char* name :
       {"probe", "open_dispatch", "open", "live", "vmcoreinfo_note", "banner", "uts_release", "uts_nodename",
        "uts_sysname_machine", "kallsyms_resolve", "kallsyms_readable", "vmcoreinfo_symbols", "vmcoreinfo_physical",
        "direct_map", "jiffies", "dmesg", "kcore_write_refused", "devmem_ro", "devmem_rw", "devmem_low_read"}) {
    INFO("check " << name);
    const auto it = log.checks.find(name);
    REQUIRE(it != log.checks.end());
    INFO("detail:" << it->second.second);
    CHECK(it->second.first == "PASS");
  }
  CHECK(log.summary.find("fail=0") != std::string::npos);
}

TEST_CASE("live: the numbers agree with what the guest's /init saw", "[live][real]") {
  const auto dir = live_dir();
  if (dir.empty()) KVMXX_TEST_SKIP("no live/live.log in KVMXX_LINUX_DUMPS");
  const auto log = parse(dir + "/live.log");
  const auto f = facts(dir + "/facts.txt");
  REQUIRE(f.count("live_rc") == 1);
  CHECK(f.find("live_rc")->second == "0");
  // /init counted /proc/kallsyms with awk before the test ran: the test saw the same file.
  REQUIRE(f.count("kallsyms_count") == 1);
  CHECK(log.counts.at("kallsyms_lines") == std::stoull(f.find("kallsyms_count")->second));
  CHECK(log.counts.at("kallsyms_compared") == log.counts.at("kallsyms_lines"));
  CHECK(log.counts.at("kallsyms_mismatched") == 0);
  CHECK(log.counts.at("kallsyms_not_found") == 0);
  CHECK(log.counts.at("kallsyms_addresses_read") > 10000);
  CHECK(log.counts.at("kallsyms_addresses_unreadable") == 0);
  CHECK(log.counts.at("kallsyms_past_end") < 10);  // _end and the few markers after it
  CHECK(log.counts.at("vmcoreinfo_symbols_compared") >= 5);
  // The banner kvmxx read is /proc/version as /init printed it.
  REQUIRE(f.count("banner") == 1);
  CHECK(log.checks.at("banner").second.find("kvmxx=[" + f.find("banner")->second + "]") != std::string::npos);
}

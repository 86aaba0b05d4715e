#!/usr/bin/env bash
# The whole test suite, as CI runs it (README, second command):
#   1. g++ 12 build, -Werror: unit tests, tool tests, ODR check (+ the configure-time
#      self-contained-header and compile-fail checks);
#   2. clang 14 AddressSanitizer + UndefinedBehaviorSanitizer build, -Werror: unit, tool and
#      peer tests again (this is also the clang warning check);
#   3. libFuzzer targets (clang), each for KVMXX_FUZZ_SECONDS (default 60) from a seed corpus.
# Before them, tests/real/make-linux-dumps.sh boots Debian's kernel under QEMU and writes
# real Linux dumps into KVMXX_LINUX_DUMPS (default /var/tmp/kvmxx-linux-dumps; about
# 2 minutes and 1.7 GB the first time, a cache hit afterwards); after the gcc build its
# 'live' boot runs the static build-gcc/tests/kvmxx-live-test in the guest. The real-dump tests and the
# libkdumpfile differential test read them; without them those tests count as skipped.
# tests/real/make-linux-dumps-i386.sh does the same for i386 (KVMXX_LINUX_DUMPS_I386).
# Build trees are kept (build-gcc, build-asan, build-fuzz) so a second run only
# rebuilds what changed. The last line is "N passed, N failed[, N skipped]", counted from
# the test reports (tests/summarize.py); the exit status is non-zero when anything failed.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
results=$root/build-results
rm -rf "$results"
mkdir -p "$results"
fuzz_seconds=${KVMXX_FUZZ_SECONDS:-60}

record() { echo "$1 $2" >>"$results/$3.result"; }

# build NAME COMPILER MESON_ARGS...: configures (once) and builds; records the build itself.
build() {
  local name=$1 cxx=$2
  shift 2
  local dir=$root/build-$name
  echo "=== build $name ($cxx $*)"
  if [ ! -f "$dir/build.ninja" ]; then
    if ! CXX=$cxx meson setup "$dir" "$@" >"$results/$name-setup.log" 2>&1; then
      cat "$results/$name-setup.log"
      record fail "build-$name: meson setup failed (see above)" builds
      return 1
    fi
  fi
  if ! ninja -C "$dir" >"$results/$name-build.log" 2>&1; then
    tail -50 "$results/$name-build.log"
    record fail "build-$name: compilation failed (see above)" builds
    return 1
  fi
  record pass "build-$name" builds
}

# catch NAME BINARY: runs a Catch2 binary with the XML reporter.
run_catch() {
  local name=$1 bin=$2
  echo "=== test $name"
  "$bin" -r xml -o "$results/$name.xml" >"$results/$name.stdout" 2>&1
  local rc=$?
  if [ ! -s "$results/$name.xml" ]; then
    cat "$results/$name.stdout"
    record fail "$name: the test binary produced no report (exit $rc)" crashes
  elif [ $rc -ne 0 ] && grep -q "Sanitizer" "$results/$name.stdout"; then
    # A sanitizer report at exit (LeakSanitizer runs after the last test case) leaves a
    # complete XML report behind: it must still count.
    grep -A12 "Sanitizer" "$results/$name.stdout" | head -30
    record fail "$name: exit $rc with a sanitizer report ($results/$name.stdout)" crashes
  fi
}

export KVMXX_LINUX_DUMPS=${KVMXX_LINUX_DUMPS:-/var/tmp/kvmxx-linux-dumps}
echo "=== real Linux dumps in $KVMXX_LINUX_DUMPS"
if tests/real/make-linux-dumps.sh "$KVMXX_LINUX_DUMPS" >"$results/real-dumps.log" 2>&1; then
  record pass "real-dumps: QEMU + makedumpfile dumps of Debian's kernel ($(tail -1 "$results/real-dumps.log" | cut -c1-80))" real
else
  tail -40 "$results/real-dumps.log"
  record fail "real-dumps: tests/real/make-linux-dumps.sh failed (the real-dump tests will skip)" real
  unset KVMXX_LINUX_DUMPS
fi
# The real System.map of the dumps' kernel (from its -dbg package; about a minute the first
# time), for the kallsyms test that resolves every System.map symbol from a dump alone.
if [ -n "${KVMXX_LINUX_DUMPS:-}" ] && [ -z "${KVMXX_SYSTEM_MAP:-}" ]; then
  if map=$(tests/real/fetch-system-map.sh "$KVMXX_LINUX_DUMPS" 2>"$results/system-map.log"); then
    export KVMXX_SYSTEM_MAP=$map
  else
    tail -5 "$results/system-map.log"
  fi
fi

# The i386 dumps (tests/real/make-linux-dumps-i386.sh, tests/real/README-i386.md): Debian's
# 686 and 686-pae kernels under qemu-system-i386; about 4 minutes and 1.7 GB the first
# time, a cache hit afterwards. Without them the i386 real-dump tests count as skipped.
export KVMXX_LINUX_DUMPS_I386=${KVMXX_LINUX_DUMPS_I386:-/var/tmp/kvmxx-linux-dumps-i386}
echo "=== real i386 Linux dumps in $KVMXX_LINUX_DUMPS_I386"
if tests/real/make-linux-dumps-i386.sh "$KVMXX_LINUX_DUMPS_I386" >"$results/real-dumps-i386.log" 2>&1; then
  record pass "real-dumps-i386: QEMU dumps of Debian's 686 and 686-pae kernels ($(tail -1 "$results/real-dumps-i386.log" | cut -c1-80))" real
else
  tail -40 "$results/real-dumps-i386.log"
  record fail "real-dumps-i386: tests/real/make-linux-dumps-i386.sh failed (the i386 real-dump tests will skip)" real
  unset KVMXX_LINUX_DUMPS_I386
fi

# arm64: Debian's arm64 kernel under qemu-system-aarch64 (about 1 minute and 0.6 GB the
# first time, a cache hit afterwards); the aarch64 real-dump tests read KVMXX_LINUX_DUMPS_ARM64.
export KVMXX_LINUX_DUMPS_ARM64=${KVMXX_LINUX_DUMPS_ARM64:-/var/tmp/kvmxx-linux-dumps-arm64}
echo "=== real Linux arm64 dumps in $KVMXX_LINUX_DUMPS_ARM64"
if tests/real/make-linux-dumps-arm64.sh "$KVMXX_LINUX_DUMPS_ARM64" >"$results/real-dumps-arm64.log" 2>&1; then
  record pass "real-dumps-arm64: qemu-system-aarch64 dumps of Debian's arm64 kernel ($(tail -1 "$results/real-dumps-arm64.log" | cut -c1-80))" real
else
  tail -40 "$results/real-dumps-arm64.log"
  record fail "real-dumps-arm64: tests/real/make-linux-dumps-arm64.sh failed (the arm64 real-dump tests will skip)" real
  unset KVMXX_LINUX_DUMPS_ARM64
fi

for cfg in gcc; do
  cxx=g++
  if build $cfg $cxx --buildtype=debugoptimized; then
    # The in-guest live test: the 'live' boot runs the static kvmxx-live-test inside QEMU
    # (cached by the binary's sha256); the unit tests' [live] cases check its log.
    if [ -n "${KVMXX_LINUX_DUMPS:-}" ]; then
      if [ ! -x "build-$cfg/tests/kvmxx-live-test" ]; then
        record fail "live-boot: build-$cfg/tests/kvmxx-live-test was not built (no static libc/libstdc++?)" real
      elif tests/real/make-linux-dumps.sh --only live --live-binary "build-$cfg/tests/kvmxx-live-test" \
          "$KVMXX_LINUX_DUMPS" >"$results/live-boot.log" 2>&1; then
        record pass "live-boot: /proc/kcore test run in the QEMU guest" real
      else
        tail -40 "$results/live-boot.log"
        record fail "live-boot: tests/real/make-linux-dumps.sh --only live failed (the [live] tests will skip)" real
      fi
    fi
    run_catch $cfg-unit "build-$cfg/tests/kvmxx-unit"
    run_catch $cfg-tool "build-$cfg/tests/kvmxx-tool-test"
    if [ -x "build-$cfg/tests/kvmxx-peer-test" ]; then
      run_catch $cfg-peer "build-$cfg/tests/kvmxx-peer-test"
    else
      record fail "$cfg-peer: libkdumpfile-dev not found, the differential test was not built" peer
    fi
    for t in odr writer-selftest; do
      if meson test -C "build-$cfg" "$t" >"$results/$cfg-$t.log" 2>&1; then
        record pass "$cfg-$t" plain
      else
        cat "$results/$cfg-$t.log"
        record fail "$cfg-$t: see the log above" plain
      fi
    done
  fi
done

# Sanitizers: leaks, out-of-bounds reads on damaged dumps, undefined behaviour.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
# libkdumpfile 0.5.1 (the peer, not our code) leaks a 104-byte object per i386 dump it
# opens, allocated inside the library; the suppression matches only stacks through it.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/peer/lsan-libkdumpfile.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if build asan clang++ --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false; then
  run_catch asan-unit build-asan/tests/kvmxx-unit
  run_catch asan-tool build-asan/tests/kvmxx-tool-test
  [ -x build-asan/tests/kvmxx-peer-test ] && run_catch asan-peer build-asan/tests/kvmxx-peer-test
fi

if build fuzz clang++ --buildtype=debugoptimized -Dfuzzing=true -Dtests=enabled -Dtools=false; then
  rm -rf "$results/corpus" && mkdir -p "$results/corpus/minidump" "$results/corpus/elf"
  build-fuzz/tests/fuzz/make_seeds "$results/corpus/minidump" "$results/corpus/elf"
  for t in minidump:minidump_fuzz elf:elf_symtab_fuzz; do
    corpus=${t%%:*} bin=${t##*:}
    echo "=== fuzz $bin for ${fuzz_seconds}s"
    if build-fuzz/tests/fuzz/$bin -max_total_time="$fuzz_seconds" -max_len=65536 -rss_limit_mb=2048 \
        -artifact_prefix="$results/" "$results/corpus/$corpus" >"$results/$bin.log" 2>&1; then
      record pass "fuzz-$bin (${fuzz_seconds}s, $(grep -o 'Done [0-9]* runs' "$results/$bin.log"))" fuzz
    else
      tail -40 "$results/$bin.log"
      record fail "fuzz-$bin: crash or sanitizer report, artifacts in $results" fuzz
    fi
  done
fi

echo "=== results"
exec python3 tests/summarize.py "$results"

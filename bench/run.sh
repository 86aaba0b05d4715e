#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# bench/run.sh — builds and runs every kvmxx benchmark and prints the comparison table
# (bench/README.md). From anywhere:
#
#   bench/run.sh                 # everything
#   bench/run.sh --quick         # 1 repetition, shorter runs (a smoke test, not for figures)
#   bench/run.sh --filter REGEX  # only the matching benchmarks (Google Benchmark names)
#
# Environment: KVMXX_LINUX_DUMPS (default /var/tmp/kvmxx-linux-dumps) — where
# tests/real/make-linux-dumps.sh keeps the real Linux dumps (made or refreshed here; a
# cache hit takes well under a second). BUILD (default build-bench).
set -euo pipefail

start_ms=$(( $(date +%s%N) / 1000000 ))
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
cd "$top"

reps=5
filter=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) reps=1 ;;
    --filter) filter=$2; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

build=${BUILD:-build-bench}
export KVMXX_LINUX_DUMPS=${KVMXX_LINUX_DUMPS:-/var/tmp/kvmxx-linux-dumps}

say() { printf 'bench/run.sh: %s\n' "$*" >&2; }

# 1. A release build with the benchmarks (and without the tests and the tool).
opts=(-Dbenchmarks=true --buildtype=release -Dtests=disabled -Dtools=false)
if [ -f "$build/build.ninja" ]; then
  meson configure "$build" "${opts[@]}" >/dev/null
else
  say "configuring $build"
  meson setup "$build" "${opts[@]}" >/dev/null
fi
say "building"
ninja -C "$build" bench/kvmxx-bench bench/kvmxx-bench-memory bench/kvmxx-bench-profile >/dev/null

# 2. The real Linux dumps (only the nokaslr boot is benchmarked).
say "checking the real Linux dumps in $KVMXX_LINUX_DUMPS"
tests/real/make-linux-dumps.sh --only nokaslr "$KVMXX_LINUX_DUMPS" >&2

# 3. Run. The FreeBSD minidump is generated into the build directory on first use.
out="$build/bench"
bench_args=(--benchmark_repetitions=$reps --benchmark_report_aggregates_only=true
            --benchmark_enable_random_interleaving=true
            --benchmark_out="$out/results.json" --benchmark_out_format=json)
[ -n "$filter" ] && bench_args+=(--benchmark_filter="$filter")
if [ "$reps" = 1 ]; then bench_args+=(--benchmark_min_time=0.01); else bench_args+=(--benchmark_min_time=0.1); fi
say "running the benchmarks (progress: $out/results.log)"
"$out/kvmxx-bench" "${bench_args[@]}" >"$out/results.log" 2>&1 || {
  tail -20 "$out/results.log" >&2
  exit 1
}
memory_json=
if [ -z "$filter" ] || [[ memory =~ $filter ]]; then
  say "measuring memory (h)"
  "$out/kvmxx-bench-memory" --out="$out/memory.json" 2>>"$out/results.log"
  memory_json=$out/memory.json
fi

# 4. The table.
wall_ms=$(( $(date +%s%N) / 1000000 - start_ms ))
/usr/bin/python3 "$here/table.py" "$out/results.json" $memory_json --wall "$((wall_ms / 1000)).$(printf %03d $((wall_ms % 1000)))"

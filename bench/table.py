#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""Prints kvmxx's benchmark table from Google Benchmark JSON (kvmxx-bench) and the JSON of
kvmxx-bench-memory: per workload and dump, kvmxx vs the memcpy limit vs libkdumpfile, the
ratios, and each target of the issue with PASS/MISS. Python 3 standard library only.

usage: table.py BENCH.json [MEMORY.json] [--wall SECONDS]
"""
import json
import math
import sys

WORKLOADS = [
    # id, letter, title, op (what one operation is)
    ("rand_va", "a", "random reads, virtual", "8-byte read"),
    ("rand_pa", "b", "random reads, physical", "8-byte read"),
    ("seq_va", "c", "sequential, virtual (direct map)", "1 MiB read"),
    ("seq_pa", "c", "sequential, physical", "1 MiB read"),
    ("sym_each", "d", "symbol lookups, one by one", "lookup"),
    ("sym_batch", "d", "symbol lookups, one batch call", "lookup"),
    ("open", "e", "open + one 8-byte read + close", "open"),
    ("threads", "f", "threads, random virtual reads", "8-byte read"),
    ("probed", "g", "run-time handles, random virtual reads", "8-byte read"),
    ("memory", "h", "memory beyond the mapped file", "peak"),
]
RUNTIME_HANDLES = [
    ("kvmxx", "typed handle (reference)"),
    ("kvmxx-open", "kvmxx::open's handle"),
    ("kvmxx-visit", "variant, std::visit per read"),
    ("kvmxx-any", "open_any (virtual per read)"),
]
OPEN_HANDLES = [("kvmxx", "typed"), ("kvmxx-open", "kvmxx::open"), ("kvmxx-any", "open_any")]
OPEN_TARGET_S = 0.5  # "well under a second"


def fmt_time(ns):
    if ns is None:
        return "n/a"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e4:
        return f"{ns / 1e3:.1f} µs"
    if ns >= 100:
        return f"{ns:.0f} ns"
    return f"{ns:.1f} ns"


def fmt_kib(kib):
    if kib is None:
        return "n/a"
    if abs(kib) >= 1024:
        return f"{kib / 1024:.1f} MiB"
    return f"{kib:.0f} KiB"


def fmt_ratio(r):
    if r is None:
        return "—"
    if r >= 100:
        return f"{r:.0f}×"
    if r >= 10:
        return f"{r:.1f}×"
    return f"{r:.2f}×"


def div(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


class Results:
    def __init__(self):
        self.rows = {}  # (workload, dump, contender, threads) -> dict
        self.dumps = []
        self.context = {}
        self.problems = []

    def load_bench(self, path):
        with open(path) as f:
            data = json.load(f)
        self.context.update(data.get("context", {}))
        for b in data.get("benchmarks", []):
            if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
                continue
            name = b.get("run_name", b["name"])
            parts = name.split("/")
            if len(parts) < 3:
                continue
            workload, dump, who = parts[0], parts[1], parts[2]
            threads = int(b.get("threads", 1))
            key = (workload, dump, who, threads)
            if b.get("error_occurred"):
                self.rows[key] = {"error": b.get("error_message", "error")}
                self.problems.append(f"{name}: {b.get('error_message', 'error')}")
                continue
            ips = b.get("items_per_second")
            unit = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}.get(b.get("time_unit", "ns"), 1)
            r = {"ns": 1e9 / ips if ips else None, "bps": b.get("bytes_per_second"),
                 "cpu_per_iter_ns": b.get("cpu_time", 0) * unit,
                 "paired_ratio": b.get("paired_ratio"), "paired_ref_ns": b.get("paired_ref_ns"),
                 "failed": b.get("failed", 0), "checksum_ok": b.get("checksum_ok", 1),
                 "reps": b.get("repetitions", 1), "median": b.get("aggregate_name") == "median"}
            self.rows[key] = r
            if dump not in self.dumps and dump != "machine":
                self.dumps.append(dump)
                self.dumps.sort()
            if r["failed"] or r["checksum_ok"] < 1:
                self.problems.append(f"{name}: {r['failed']:.0f} failed reads, checksum "
                                     f"{'matches' if r['checksum_ok'] >= 1 else 'DIFFERS from'} the file's bytes")

    def load_memory(self, path):
        with open(path) as f:
            data = json.load(f)
        for b in data.get("benchmarks", []):
            workload, dump, who = b["name"].split("/")[:3]
            if b.get("error_occurred"):
                self.rows[(workload, dump, who, 1)] = {"error": b.get("error_message", "error")}
                self.problems.append(f"{b['name']}: {b.get('error_message')}")
                continue
            self.rows[(workload, dump, who, 1)] = {"kib": b["peak_kib"], "open_kib": b["open_peak_kib"],
                                                   "after_kib": b["after_reads_kib"],
                                                   "file_kib": b["file_resident_kib"]}
            if dump not in self.dumps:
                self.dumps.append(dump)
                self.dumps.sort()
            if b.get("failed") or not b.get("checksum_ok", 1):
                self.problems.append(f"{b['name']}: {b.get('failed')} failed reads / checksum differs")

    def get(self, workload, dump, who, threads=1, field="ns"):
        r = self.rows.get((workload, dump, who, threads))
        if r is None or "error" in r:
            return None
        return r.get(field)

    def has(self, workload, dump, who, threads=1):
        return (workload, dump, who, threads) in self.rows

    def peer_cell(self, workload, dump, threads=1, field="ns", fmt=fmt_time):
        if self.has(workload, dump, "libkdumpfile", threads):
            return fmt(self.get(workload, dump, "libkdumpfile", threads, field))
        peer = self.context.get(f"peer {dump}", "")
        return "n/a" if peer.startswith("n/a") or not peer else "—"


def build_rows(res):
    """Returns table rows: [workload, dump, op, kvmxx, limit, peer, k/l, p/k, check, result]."""
    out = []
    checks = []  # (passed: bool)

    def check_row(row, text, passed):
        row[8], row[9] = text, ("PASS" if passed else "MISS") if passed is not None else "—"
        if passed is not None:
            checks.append(passed)

    letters_seen = set()
    for wid, letter, title, op in WORKLOADS:
        label = f"({letter}) {title}"
        for dump in res.dumps:
            if wid in ("rand_va", "rand_pa", "seq_va", "seq_pa", "sym_each", "sym_batch"):
                if not res.has(wid, dump, "kvmxx"):
                    continue
                k = res.get(wid, dump, "kvmxx")
                lim = res.get(wid, dump, "limit")
                peer = res.get(wid, dump, "libkdumpfile")
                no_limit = wid.startswith("sym")
                peer_txt = res.peer_cell(wid, dump)
                if wid == "sym_batch" and peer_txt == "—":
                    peer_txt = "no such call"
                row = [label, dump, op, fmt_time(k), "—" if no_limit else fmt_time(lim), peer_txt,
                       "—" if no_limit else fmt_ratio(div(k, lim)), fmt_ratio(div(peer, k)), "—", "—"]
                if wid.startswith("seq"):
                    kb, lb = res.get(wid, dump, "kvmxx", field="bps"), res.get(wid, dump, "limit", field="bps")
                    row[2] = op + (f" ({kb / 1e9:.1f} vs {lb / 1e9:.1f} GB/s)" if kb and lb else "")
                out.append(row)
                if wid == "rand_va":
                    # Against the limit: the limit as the issue defines it, run alone
                    # (ratio of the medians); the paired ratio in parentheses.
                    r, rp = div(k, lim), res.get(wid, dump, "kvmxx", field="paired_ratio")
                    check_row(row, f"kvmxx/limit {fmt_ratio(r)} (paired {fmt_ratio(rp)}) ≤ 2×",
                              r is not None and r <= 2.0)
                    if peer is not None:
                        # Reader against reader: paired (apart in parentheses).
                        p = res.get(wid, dump, "libkdumpfile", field="paired_ratio") or div(peer, k)
                        out.append([""] * 8 + ["", ""])
                        check_row(out[-1], f"libkdumpfile/kvmxx {fmt_ratio(p)} paired (apart {fmt_ratio(div(peer, k))}) "
                                  "≥ 10×", p is not None and p >= 10)
                elif wid.startswith("seq"):
                    kb, lb = res.get(wid, dump, "kvmxx", field="bps"), res.get(wid, dump, "limit", field="bps")
                    frac = div(kb, lb)
                    rp = res.get(wid, dump, "kvmxx", field="paired_ratio")
                    paired = f" (paired {100 / rp:.0f}%)" if rp else ""
                    check_row(row, f"bandwidth {frac * 100:.0f}% of memcpy{paired} ≥ 90%" if frac else "≥ 90% of memcpy",
                              frac is not None and frac >= 0.9)
                label = ""
            elif wid == "open":
                if not res.has(wid, dump, "kvmxx"):
                    continue
                lim = res.get(wid, dump, "limit")
                peer = res.get(wid, dump, "libkdumpfile")
                for who, what in OPEN_HANDLES:
                    if not res.has(wid, dump, who):
                        continue
                    k = res.get(wid, dump, who)
                    first = who == "kvmxx"
                    row = [label, dump if first else "", f"open ({what})", fmt_time(k),
                           fmt_time(lim) if first else "", res.peer_cell(wid, dump) if first else "",
                           fmt_ratio(div(k, lim)), fmt_ratio(div(peer, k)), "—", "—"]
                    out.append(row)
                    check_row(row, f"{fmt_time(k)} ≤ {OPEN_TARGET_S:.1f} s (well under 1 s)",
                              k is not None and k <= OPEN_TARGET_S * 1e9)
                    label = ""
            elif wid == "threads":
                if dump == res.dumps[0] and res.has(wid, "machine", "alu-loop"):
                    mc = sorted({t for (w, d, who, t) in res.rows if w == wid and d == "machine"})
                    for t in mc[1:]:
                        sc = div(res.get(wid, "machine", "alu-loop", 1), res.get(wid, "machine", "alu-loop", t))
                        out.append([label, "(machine)", f"ALU loop, no memory: throughput {t} threads / 1",
                                    fmt_ratio(sc), "", "", "", "", "(control: what this machine gives)", ""])
                        label = ""
                counts = sorted({t for (w, d, who, t) in res.rows if w == wid and d == dump and who == "kvmxx"})
                if not counts:
                    continue
                for t in counts:
                    k, lim, peer = (res.get(wid, dump, who, t) for who in ("kvmxx", "limit", "libkdumpfile"))
                    out.append([label, dump if t == counts[0] else "", f"{t} thread{'s' if t > 1 else ''}: "
                                f"wall time per read", fmt_time(k), fmt_time(lim), res.peer_cell(wid, dump, t),
                                fmt_ratio(div(k, lim)), fmt_ratio(div(peer, k)), "—", "—"])
                    label = ""
                for t in counts:
                    if t == 1:
                        continue
                    sk, sl, sp = (div(res.get(wid, dump, who, 1), res.get(wid, dump, who, t))
                                  for who in ("kvmxx", "limit", "libkdumpfile"))
                    row = ["", "", f"throughput {t} threads / 1", fmt_ratio(sk), fmt_ratio(sl),
                           fmt_ratio(sp) if res.has(wid, dump, "libkdumpfile", t) else res.peer_cell(wid, dump, t),
                           "", "", "—", "—"]
                    out.append(row)
                    if t == 2:
                        check_row(row, f"kvmxx scaling {fmt_ratio(sk)} ≥ 1.8×", sk is not None and sk >= 1.8)
                    # Diagnostic: CPU time per read in each thread. Flat = no contention
                    # inside the contender; then a lack of scaling is the machine's.
                    # (each of t threads reads 1/t of the set per iteration)
                    reads = float(res.context.get("random_reads", "1000000"))
                    c1, ct = (res.get(wid, dump, "kvmxx", n, field="cpu_per_iter_ns") for n in (1, t))
                    l1, lt = (res.get(wid, dump, "limit", n, field="cpu_per_iter_ns") for n in (1, t))
                    if c1 and ct:
                        out.append(["", "", f"CPU time per read, 1 → {t} threads",
                                    f"{c1 / reads:.0f}→{ct * t / reads:.0f} ns",
                                    f"{l1 / reads:.1f}→{lt * t / reads:.1f} ns" if l1 and lt else "", "", "", "",
                                    "(diagnostic: flat = no contention)", ""])
            elif wid == "probed":
                if not res.has(wid, dump, "kvmxx-open"):
                    continue
                ref = res.get(wid, dump, "kvmxx-open", field="paired_ref_ns")
                lim = res.get("rand_va", dump, "limit")
                out.append([label, dump, RUNTIME_HANDLES[0][1], fmt_time(ref), "", "", fmt_ratio(div(ref, lim)), "",
                            "—", "—"])
                label = ""
                for who, what in RUNTIME_HANDLES[1:]:
                    if not res.has(wid, dump, who):
                        continue
                    k = res.get(wid, dump, who)
                    r = res.get(wid, dump, who, field="paired_ratio")
                    row = ["", "", what, fmt_time(k), "", "", fmt_ratio(div(k, lim)), "", "—", "—"]
                    out.append(row)
                    passed = r is not None and r <= 1.10
                    # The target names kvmxx::open's handle; the other two are shown for
                    # comparison (the README calls open_any the slower path).
                    check_row(row, f"{fmt_ratio(r)} of typed (paired) ≤ 1.10×" + ("" if who == "kvmxx-open" else " (info)"),
                              passed if who == "kvmxx-open" else None)
                    if who != "kvmxx-open":
                        row[9] = "(" + ("pass" if passed else "miss") + ")"
            elif wid == "memory":
                if not res.has(wid, dump, "kvmxx"):
                    continue
                k, lim, peer = (res.get(wid, dump, who, field="kib") for who in ("kvmxx", "limit", "libkdumpfile"))
                ko = res.get(wid, dump, "kvmxx", field="open_kib")
                ka = res.get(wid, dump, "kvmxx", field="after_kib")
                out.append([label, dump, "peak beyond the file", fmt_kib(k), fmt_kib(lim),
                            res.peer_cell(wid, dump, field="kib", fmt=fmt_kib), "", fmt_ratio(div(peer, k)) if k and k > 0 else "",
                            f"open {fmt_kib(ko)}, after reads {fmt_kib(ka)}", "—"])
                label = ""
    return out, checks


def print_table(rows, header):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    right = {3, 4, 5, 6, 7}

    def line(r):
        cells = []
        for i, c in enumerate(r):
            c = str(c)
            cells.append(c.rjust(widths[i]) if i in right else c.ljust(widths[i]))
        return "| " + " | ".join(cells) + " |"

    print(line(header))
    print("|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|")
    prev = None
    for r in rows:
        print(line(r))


def main(argv):
    args, wall, rest = [], None, argv[1:]
    while rest:
        a = rest.pop(0)
        if a == "--wall" and rest:
            wall = float(rest.pop(0))
        elif a.startswith("--"):
            print(f"table.py: unknown option {a}", file=sys.stderr)
            return 2
        else:
            args.append(a)
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    res = Results()
    res.load_bench(args[0])
    if len(args) > 1:
        res.load_memory(args[1])
    ctx = res.context
    reps = next((r.get("reps") for r in res.rows.values() if r.get("median")), None)
    print(f"kvmxx benchmarks — {ctx.get('date', '')}, {ctx.get('host_name', '')}: {ctx.get('num_cpus', '?')} CPUs "
          f"@ {ctx.get('mhz_per_cpu', '?')} MHz, load average {', '.join(f'{x:.2f}' for x in ctx.get('load_avg', []))}"
          )
    if reps:
        how = (f"Every figure is the median of {reps} repetitions (Google Benchmark --benchmark_repetitions={reps} "
               "--benchmark_report_aggregates_only=true, repetitions of all benchmarks randomly interleaved)")
    else:
        how = "Every figure is from ONE repetition (a smoke test: no medians; do not quote these figures)"
    print(how + ", measured in the same run, as CPU time per operation — except (f), wall time per read over "
          "all threads (i.e. total throughput), and (h), one measurement per contender in a fresh process.")
    print("Checks against the limit ((a), (c)) use the ratio of the medians: the limit run alone, as the issue "
          "defines it. Checks between two readers ((a) libkdumpfile, (g)) use a paired ratio: the reference (kvmxx; "
          "the typed handle) was timed in the same iterations, over quarters of the work in the order A B, B A, "
          "B A, A B, and the median of the per-repetition ratios is shown. The checks of (a) and (c) show the "
          "other ratio in parentheses. They differ most against the limit in (a): the limit alone, repeated, keeps its own "
          "mapping's page-table entries cached; paired, it runs in the cache state kvmxx's reads leave.")
    print("limit = memcpy of the same bytes from a read-only mmap of the same file. kvmxx/limit: how many times "
          "the limit's time kvmxx takes; libkdumpfile/kvmxx: how many times faster kvmxx is. "
          "n/a = the peer does not read this format. In (h) the ratio is how many times kvmxx's memory the peer needs.")
    print()
    for d in res.dumps:
        desc = ctx.get(f"dump {d}")
        if desc:
            print(f"  {d}: {desc}")
    for k, v in sorted(ctx.items()):
        if k.startswith("skipped "):
            print(f"  {k}: {v}")
    print()
    rows, checks = build_rows(res)
    header = ["workload", "dump", "operation", "kvmxx", "limit", "libkdumpfile", "kvmxx/limit", "libkdumpfile/kvmxx",
              "target", "result"]
    print_table(rows, header)
    print()
    print(f"Targets: {sum(checks)} PASS, {len(checks) - sum(checks)} MISS "
          "((info) rows are shown for comparison and not counted).")
    if res.problems:
        print("Problems:")
        for p in res.problems:
            print(f"  {p}")
    else:
        print("Every contender read every address and its checksum matched the file's bytes.")
    for k, v in sorted(ctx.items()):
        if k.startswith("error "):
            print(f"  {k}: {v}")
    if wall is not None:
        print(f"Total wall time of bench/run.sh: {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

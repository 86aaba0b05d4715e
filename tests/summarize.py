#!/usr/bin/env python3
"""Counts test cases from Catch2 XML reports and plain pass/fail records.

usage: summarize.py RESULTS_DIR
  RESULTS_DIR/*.xml      Catch2 v2 `-r xml` reports (one per test binary and build)
  RESULTS_DIR/*.result   one line "pass NAME", "fail NAME" or "skip NAME: REASON" (builds, ODR, fuzzers)
Prints every failure and skip, then one line "N passed, N failed[, N skipped]".
A test case that WARNs "SKIPPED: …" (tests/support/skip.hpp) counts as skipped, not passed.
Exits 1 when anything failed or no test ran at all.
"""
import glob
import os
import sys
import xml.etree.ElementTree as ET


def main() -> int:
    results = sys.argv[1]
    passed = failed = skipped = 0
    lines = []
    for path in sorted(glob.glob(os.path.join(results, "*.xml"))):
        suite = os.path.basename(path)[:-4]
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            failed += 1
            lines.append(f"FAILED  {suite}: unreadable report ({e})")
            continue
        for case in root.iter("TestCase"):
            name = case.get("name")
            overall = case.find("OverallResult")
            ok = overall is not None and overall.get("success") == "true"
            skip_reason = next((w.text.strip() for w in case.iter("Warning")
                                if w.text and w.text.strip().startswith("SKIPPED:")), None)
            if not ok:
                failed += 1
                where = ""
                for expr in case.iter("Expression"):
                    if expr.get("success") == "false":
                        orig = (expr.findtext("Original") or "").strip()
                        exp = (expr.findtext("Expanded") or "").strip()
                        where = f" at {expr.get('filename')}:{expr.get('line')}: {orig} ({exp})"
                        break
                for exc in case.iter("Exception"):
                    where = where or f" exception at {exc.get('filename')}:{exc.get('line')}: {(exc.text or '').strip()}"
                for fatal in case.iter("FatalErrorCondition"):
                    where = where or f" fatal: {(fatal.text or '').strip()}"
                lines.append(f"FAILED  {suite}: {name}{where}")
            elif skip_reason:
                skipped += 1
                lines.append(f"SKIPPED {suite}: {name}: {skip_reason[len('SKIPPED:'):].strip()}")
            else:
                passed += 1
    for path in sorted(glob.glob(os.path.join(results, "*.result"))):
        with open(path) as f:
            for line in f:
                kind, _, rest = line.strip().partition(" ")
                if kind == "pass":
                    passed += 1
                elif kind == "skip":
                    skipped += 1
                    lines.append(f"SKIPPED {rest}")
                elif kind == "fail":
                    failed += 1
                    lines.append(f"FAILED  {rest}")
    for line in lines:
        print(line)
    total = f"{passed} passed, {failed} failed"
    if skipped:
        total += f", {skipped} skipped"
    print(total)
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())

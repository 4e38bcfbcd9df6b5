#!/usr/bin/env python3
"""Prints one closing line, 'LABEL: N passed, N failed[, N skipped]', for the
meson test runs of the build directories given, counting each gtest test case
(from meson's JUnit log) and each meson test that failed without reporting
its cases (a crash, a timeout).  Exits non-zero if anything failed."""
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def summarize(build: Path):
    passed = failed = skipped = 0
    junit = build / "meson-logs" / "testlog.junit.xml"
    suites_with_cases = set()
    if junit.exists():
        for suite in ET.parse(junit).getroot().iter("testsuite"):
            # camrelay.<meson test name>.<gtest suite>
            parts = suite.get("name", "").split(".")
            if len(parts) >= 2:
                suites_with_cases.add(parts[1])
            for case in suite.iter("testcase"):
                if case.find("failure") is not None or case.find("error") is not None:
                    failed += 1
                elif case.find("skipped") is not None or case.get("status") == "notrun":
                    skipped += 1
                else:
                    passed += 1
    log = build / "meson-logs" / "testlog.json"
    if log.exists():
        for line in log.read_text().splitlines():
            test = json.loads(line)
            result = test.get("result")
            if result in ("OK", "EXPECTEDFAIL"):
                if test.get("name") not in suites_with_cases:
                    passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                # The process failed (crash, leak report, timeout): count it even
                # when all of its cases passed.
                failed += 1
    return passed, failed, skipped


def main():
    label = sys.argv[1]
    totals = [0, 0, 0]
    for build in sys.argv[2:]:
        for i, n in enumerate(summarize(Path(build))):
            totals[i] += n
    passed, failed, skipped = totals
    line = f"{label}: {passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())

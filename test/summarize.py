#!/usr/bin/env python3
"""Counts the individual test cases in meson's testlog.json (TAP lines of the unit tests, unittest
results of the black-box tests) and prints 'N passed, N failed'. Exit 1 if anything failed."""
import json
import re
import sys

passed = failed = 0
with open(sys.argv[1]) as f:
    for line in f:
        t = json.loads(line)
        out = (t.get("stdout") or "") + (t.get("stderr") or "")
        ok = t.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
        tap_ok = len(re.findall(r"^ok \d+", out, re.M))
        tap_nok = len(re.findall(r"^not ok \d+", out, re.M))
        ran = re.search(r"^Ran (\d+) tests?", out, re.M)
        if tap_ok or tap_nok:
            p, fl = tap_ok, tap_nok
        elif ran:
            n = int(ran.group(1))
            m = re.search(r"^FAILED \(([^)]*)\)", out, re.M)
            fl = 0
            if m:
                fl = sum(int(x) for x in re.findall(r"(?:failures|errors)=(\d+)", m.group(1)))
            p = n - fl
        else:
            p, fl = (1, 0) if ok else (0, 1)
        if not ok and fl == 0:
            fl = 1  # crashed or timed out after its last reported case
        passed += p
        failed += fl
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)

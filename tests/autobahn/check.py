#!/usr/bin/env python3
"""Compare an Autobahn report with the checked-in expectation.

usage: check.py EXPECTED_JSON INDEX_JSON [INDEX_JSON...]

Several reports (the shards of one run, each with its own cases) are
merged first; a case reported twice is an error.

EXPECTED_JSON maps a case pattern ("*", "6.*", "7.13.1") to the set of main
behaviours allowed for it; the most specific pattern wins. Every case must
also close cleanly (behaviorClose OK or INFORMATIONAL). Exit 1 on any
mismatch, 2 on a missing or short report.
"""
import json
import sys


def allowed(case, expected):
    best, best_len = None, -1
    for pat, behaviours in expected["cases"].items():
        if pat == case or (pat.endswith("*") and case.startswith(pat[:-1])):
            if len(pat) > best_len:
                best, best_len = behaviours, len(pat)
    return best or []


def main(expected_path, *index_paths):
    expected = json.load(open(expected_path))
    results = {}
    for path in index_paths:
        try:
            index = json.load(open(path))
        except (OSError, ValueError) as e:
            print(f"autobahn check: no report: {e}")
            return 2
        for case, r in next(iter(index.values())).items():
            if case in results:
                print(f"autobahn check: case {case} reported twice")
                return 2
            results[case] = r
    if len(results) < expected["min_cases"]:
        print(f"autobahn check: {len(results)} cases, expected at least {expected['min_cases']}")
        return 2
    bad = []
    for case, r in sorted(results.items()):
        ok = allowed(case, expected)
        if r["behavior"] not in ok or r["behaviorClose"] not in ("OK", "INFORMATIONAL"):
            bad.append(f"{case}: {r['behavior']}/{r['behaviorClose']} (allowed {ok})")
    for b in bad:
        print("autobahn check: " + b)
    print(f"autobahn check: {len(results) - len(bad)} passed, {len(bad)} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))

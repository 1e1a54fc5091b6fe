#!/usr/bin/python3
"""Run lossc_bench on every case at small sizes (odd lengths, rows shorter and
longer than a vector) and check its JSON: the keys bench/run needs are there
and finite, and lossc and the hand-written fused loop agree.

Tolerances: the loss within 1e-6 relative (both are f32 kernels summing in
wider types, measured to differ by < 1e-7); each gradient element within
1e-5 / n absolute, where n is the batch the mean divides by (gradients are
O(1/n); measured differences are below 3e-7 / n).

usage: test_bench_cases.py LOSSC_BENCH LOSSES_DIR
"""
import json
import math
import subprocess
import sys

CASES = [("mse", 10007, 1), ("huber", 10007, 1), ("bce", 10007, 1), ("focal", 4099, 1),
         ("ce", 301, 37), ("ce", 1000, 10), ("ce", 7, 3), ("dice", 10007, 1)]
KEYS = ["loss", "shape", "lossc_ms", "hand_c_ms", "bound_ms", "compile_ms", "lossc_extra_mb",
        "lossc_cache_ms", "hand_c_cache_ms", "triad_gbs", "lossc_value", "hand_c_value",
        "grad_max_abs_diff"]


def main():
    bench, losses = sys.argv[1], sys.argv[2]
    failed = 0
    for loss, n, c in CASES:
        cmd = [bench, "--case", loss, "--n", str(n), "--c", str(c), "--threads", "2",
               "--reps", "1", "--check", "1", "--losses", losses]
        out = subprocess.run(cmd, capture_output=True, text=True)
        what = f"{loss} n={n} c={c}"
        if out.returncode != 0:
            print(f"FAIL {what}: exit {out.returncode}: {out.stderr.strip()}")
            failed += 1
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        bad = [k for k in KEYS if k not in r or
               (not isinstance(r[k], str) and not math.isfinite(r[k]))]
        lv, hv = r.get("lossc_value", math.nan), r.get("hand_c_value", math.nan)
        if bad:
            print(f"FAIL {what}: missing or not finite: {bad}")
        elif abs(lv - hv) > 1e-6 * max(1.0, abs(hv)):
            print(f"FAIL {what}: loss {lv!r}, the hand-written loop {hv!r}")
            bad = True
        elif r["grad_max_abs_diff"] > 1e-5 / n:
            print(f"FAIL {what}: gradients differ by {r['grad_max_abs_diff']}")
            bad = True
        else:
            print(f"ok   {what}: loss {lv!r}, gradient difference {r['grad_max_abs_diff']}")
        failed += bool(bad)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

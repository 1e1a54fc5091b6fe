#!/usr/bin/python3
"""PyTorch eager forward+backward for one benchmark case, in its own process.

Prints one JSON object: torch_ms (median), torch_extra_mb (peak resident
memory beyond the inputs and the gradient), loss. Run by bench/run.
"""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def rss_peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def focal(x, y, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    pt = p * y + (1 - p) * (1 - y)
    at = alpha * y + (1 - alpha) * (1 - y)
    return (at * (1 - pt) ** gamma * ce).mean()


def dice(x, t, smooth=1.0):
    p = torch.sigmoid(x)
    return 1 - (2 * (p * t).sum() + smooth) / (p.sum() + t.sum() + smooth)


CASES = {
    "mse": lambda a, b: F.mse_loss(a, b),
    "huber": lambda a, b: F.huber_loss(a, b),
    "bce": lambda a, b: F.binary_cross_entropy_with_logits(a, b),
    "focal": focal,
    "ce": lambda a, b: F.cross_entropy(a, b),
    "dice": dice,
}


def make_inputs(case, n, c):
    g = torch.Generator().manual_seed(1)
    if case == "ce":
        x = torch.randn(n, c, generator=g)
        y = torch.randint(0, c, (n,), generator=g)
    else:
        x = torch.randn(n, generator=g)
        y = torch.rand(n, generator=g)
    return x.requires_grad_(True), y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--c", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    fn = CASES[a.case]
    x, y = make_inputs(a.case, a.n, a.c)
    # The gradient buffer exists before the baseline, as in the C benchmarks.
    x.grad = torch.zeros_like(x)
    x.grad.add_(1)
    base = rss_peak_mb()
    times = []
    loss = None
    for _ in range(a.reps):
        x.grad.zero_()
        t0 = time.perf_counter()
        loss = fn(x, y)
        loss.backward()
        times.append((time.perf_counter() - t0) * 1e3)
        del loss
        loss = None
    extra = max(0.0, rss_peak_mb() - base)
    with torch.no_grad():
        value = float(fn(x, y))
    print(json.dumps({"torch_ms": statistics.median(times), "torch_extra_mb": extra,
                      "loss": value, "torch_version": torch.__version__}))


if __name__ == "__main__":
    sys.exit(main())

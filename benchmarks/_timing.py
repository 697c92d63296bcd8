"""Timing shared by the benchmark scripts: best-of-N wall time, the contenders taking turns."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def timed_interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, device: torch.device
) -> tuple[dict[str, float], dict[str, object]]:
    """Best-of-``repeats`` wall time of each function, after one warm-up call each.

    The functions take turns within every repeat, so background load on a shared machine
    hits all of them alike; the minimum is the least noisy estimate of the cost.
    """

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    results = {name: fn() for name, fn in fns.items()}  # warm-up (allocator, lazy init)
    sync()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            results[name] = fn()
            sync()
            best[name] = min(best[name], time.perf_counter() - start)
    return best, results

"""Helpers shared by the benchmarks: interleaved timing and a uniform report line."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def interleaved(fns: dict[str, Callable[[], object]], runs: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time each function ``runs`` times, interleaved so drift hits all alike.

    The order flips every round (ABBA...): whatever runs right after another
    function pays for its cache misses, and neither side should always pay.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    items = list(fns.items())
    for round_ in range(runs):
        for name, fn in items if round_ % 2 == 0 else items[::-1]:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def report(name: str, ratio: float, goal: str, ok: bool, details: str) -> None:
    print(f"{name}: ratio {ratio:.3f} (goal {goal}) -> {'PASS' if ok else 'MISS'}; {details}")


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def paired_ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median of per-round ratios a/b: rounds run back to back, so slow drift of a shared VM cancels."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))

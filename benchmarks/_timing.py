"""Timing helpers the benchmark scripts share (wall-clock time.perf_counter unless told otherwise)."""

from __future__ import annotations

import statistics
import time


def median_time(fn, repeats: int, clock=time.perf_counter) -> float:
    """Median seconds of ``repeats`` calls of ``fn()``, measured with ``clock``."""
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def best_time(fn, repeats: int) -> tuple[float, object]:
    """Fewest seconds of ``repeats`` calls of ``fn()``, and the last call's result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result

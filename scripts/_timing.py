"""Median wall time of a callable, for the scripts' benchmarks."""
from __future__ import annotations

import statistics
import time


def median_time(fn, repeats: int, warmup: bool = True, sync=None) -> float:
    """Median seconds of `repeats` calls of fn(), after one untimed call when `warmup`.

    `sync` (e.g. torch.cuda.synchronize) is called before the clock starts and before it stops,
    so that work queued asynchronously on a device is inside the time."""
    sync = sync or (lambda: None)
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)

"""In-process ONNX Runtime baselines, run on the server side's CPUs with as many threads as it has.

best = ort_best_batch(path, feeds, batch_sizes=(1, 8, 32), cpus=frozenset({0}), duration_s=2)
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tritonstack.loadtest.pinning import pinned_thread

__all__ = ["ort_batch_rows_per_s", "ort_best_batch", "ort_session", "rows_per_s"]

Feeds = Callable[[int], dict[str, Any]]


def ort_session(path: Path, threads: int) -> Any:
    """A CPU ONNX Runtime session with `threads` intra-op threads (1 inter-op)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def rows_per_s(
    run: Callable[[], Any], rows_per_call: int, duration_s: float, max_calls: int = 100_000
) -> float:
    """Rows per second of `run()` called repeatedly for about `duration_s` (after one warm-up call)."""
    run()
    calls, start = 0, time.perf_counter()
    while calls < max_calls and time.perf_counter() - start < duration_s:
        run()
        calls += 1
    return calls * rows_per_call / (time.perf_counter() - start)


def ort_best_batch(
    path: Path, feeds: Feeds, *, batch_sizes: Sequence[int], cpus: frozenset[int], duration_s: float
) -> dict[str, Any]:
    """Rows/s at each batch size and the best one, pinned to `cpus` with len(cpus) threads."""
    with pinned_thread(cpus):
        session = ort_session(path, len(cpus))
        by_batch = {}
        for size in batch_sizes:
            by_batch[size] = rows_per_s(functools.partial(session.run, None, feeds(size)), size, duration_s)
    best = max(by_batch, key=by_batch.__getitem__)
    return {
        "best_batch": best,
        "rows_per_s": by_batch[best],
        "by_batch": {str(k): round(v, 1) for k, v in by_batch.items()},
        "threads": len(cpus),
    }


def ort_batch_rows_per_s(path: Path, feeds: Feeds, *, batch: int, cpus: frozenset[int],
                         duration_s: float) -> float:
    """Rows/s at one batch size, pinned to `cpus` with len(cpus) threads (a fresh session)."""
    with pinned_thread(cpus):
        session = ort_session(path, len(cpus))
        return rows_per_s(functools.partial(session.run, None, feeds(batch)), batch, duration_s)


def tile(rows: Sequence[dict[str, np.ndarray]], size: int) -> dict[str, np.ndarray]:
    """Stack single-row requests into one batch of `size` rows."""
    names = rows[0].keys()
    return {n: np.concatenate([rows[i % len(rows)][n] for i in range(size)], axis=0) for n in names}

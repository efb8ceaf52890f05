"""Traffic split between versions of one model (canary, A/B), with per-version statistics.

    from tritonstack.client import SplitRouter, TrafficSplit, TritonClient

    with TritonClient("127.0.0.1:8001") as client:
        router = SplitRouter(client, "digits_mlp", TrafficSplit({"1": 0.9, "2": 0.1}))
        out = router.infer(batch)                # version 1 nine times out of ten
        for version, stats in router.stats().items():
            print(version, stats.count, stats.errors, stats.p95_latency_s)

`TrafficSplit` chooses versions by weight and keeps the counts and latencies (pure, thread-safe);
`SplitRouter` / `AsyncSplitRouter` send through a sync or asyncio client (also a balanced one).
"""

from __future__ import annotations

import math
import numbers
import random
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tritonstack.errors import ConfigError

__all__ = ["AsyncSplitRouter", "SplitRouter", "TrafficSplit", "VersionStats"]


@dataclass(frozen=True)
class VersionStats:
    """Calls routed to one version: how many, how many failed, and their latency in seconds."""

    version: str
    weight: float
    count: int
    errors: int
    mean_latency_s: float
    p50_latency_s: float
    p95_latency_s: float


@dataclass
class _Tally:
    count: int = 0
    errors: int = 0
    total_s: float = 0.0
    recent_s: deque[float] = field(default_factory=lambda: deque(maxlen=2048))


class TrafficSplit:
    """Weighted choice of a model version, and what happened to the calls sent to each.

    Weights are relative (``{"1": 9, "2": 1}`` equals ``{"1": 0.9, "2": 0.1}``); a weight of 0
    keeps a version in the statistics but sends it nothing. `seed` makes the choice repeatable.
    Percentiles cover the latest 2048 calls per version, so memory stays bounded.
    """

    def __init__(self, weights: Mapping[int | str, float], *, seed: int | None = None) -> None:
        total = _checked_total(weights)
        self.weights = {str(version): w / total for version, w in weights.items()}
        self._random = random.Random(seed)  # noqa: S311 - routing, not cryptography
        self._tallies = {version: _Tally() for version in self.weights}
        self._lock = threading.Lock()

    def choose(self) -> str:
        """The version for the next call."""
        with self._lock:
            return self._random.choices(list(self.weights), weights=list(self.weights.values()))[0]

    @contextmanager
    def routed(self) -> Iterator[str]:
        """Choose a version for one call and record its latency and outcome when the block ends."""
        version = self.choose()
        start = time.perf_counter()
        try:
            yield version
        except BaseException:
            self.record(version, time.perf_counter() - start, ok=False)
            raise
        self.record(version, time.perf_counter() - start, ok=True)

    def record(self, version: str, latency_s: float, *, ok: bool) -> None:
        """Count one call to `version` that took `latency_s` and succeeded or not."""
        with self._lock:
            tally = self._tallies[version]
            tally.count += 1
            tally.errors += 0 if ok else 1
            tally.total_s += latency_s
            tally.recent_s.append(latency_s)

    def stats(self) -> dict[str, VersionStats]:
        """A snapshot of every version's counts and latency."""
        with self._lock:
            return {version: self._snapshot(version, tally) for version, tally in self._tallies.items()}

    def _snapshot(self, version: str, tally: _Tally) -> VersionStats:
        recent = np.asarray(tally.recent_s) if tally.recent_s else np.zeros(1)
        return VersionStats(
            version=version, weight=self.weights[version], count=tally.count, errors=tally.errors,
            mean_latency_s=tally.total_s / tally.count if tally.count else 0.0,
            p50_latency_s=float(np.percentile(recent, 50)), p95_latency_s=float(np.percentile(recent, 95)),
        )


def _checked_total(weights: Mapping[int | str, float]) -> float:
    """The sum of `weights`; ConfigError unless every weight is a finite number >= 0 and the sum is
    finite and positive (NaN or inf would make every later `choose()` fail)."""
    values = list(weights.values()) if isinstance(weights, Mapping) else []
    valid = bool(values) and all(isinstance(w, numbers.Real) and not isinstance(w, bool)
                                 and math.isfinite(w) and w >= 0 for w in values)
    total = float(sum(values)) if valid else 0.0
    if not math.isfinite(total) or total <= 0:
        shown = dict(weights) if isinstance(weights, Mapping) else weights
        raise ConfigError(f"weights={shown}; give versions with finite weights >= 0 (no NaN or inf) "
                          "and a positive sum, e.g. {'1': 0.9, '2': 0.1}")
    return total


class SplitRouter:
    """Send a model's calls through a blocking client, to versions chosen by a `TrafficSplit`."""

    def __init__(self, client: Any, model: str, split: TrafficSplit) -> None:
        self.client, self.model, self.split = client, model, split

    def infer(self, inputs: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        """`client.infer(model, inputs, version=<chosen>, **kwargs)`, timed and counted."""
        with self.split.routed() as version:
            result: dict[str, np.ndarray] = self.client.infer(self.model, inputs, version=version, **kwargs)
        return result

    def stats(self) -> dict[str, VersionStats]:
        """Per-version counts and latency so far."""
        return self.split.stats()


class AsyncSplitRouter:
    """`SplitRouter` for an asyncio client."""

    def __init__(self, client: Any, model: str, split: TrafficSplit) -> None:
        self.client, self.model, self.split = client, model, split

    async def infer(self, inputs: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        """`await client.infer(model, inputs, version=<chosen>, **kwargs)`, timed and counted."""
        with self.split.routed() as version:
            result: dict[str, np.ndarray] = await self.client.infer(self.model, inputs, version=version,
                                                                    **kwargs)
        return result

    def stats(self) -> dict[str, VersionStats]:
        """Per-version counts and latency so far."""
        return self.split.stats()

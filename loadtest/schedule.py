"""Arrival schedules for open-loop load: when each request *should* be sent.

    offsets = arrival_offsets(rate_rps=500, duration_s=10, process="poisson", seed=0)

An open-loop generator sends request i at `start + offsets[i]` whether or not earlier requests
have finished, and measures its latency from that scheduled instant (see `stats`). This is what
perf_analyzer's request-rate mode does not do (Triton issue #3113): it measures from the actual
send time, so a stalled server hides its own queueing from the client's percentiles.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from tritonstack.errors import ConfigError

__all__ = ["Arrival", "arrival_offsets", "latency_from_schedule"]


class Arrival(str, Enum):
    """Inter-arrival process of an open-loop schedule."""

    CONSTANT = "constant"
    POISSON = "poisson"


def arrival_offsets(
    *,
    rate_rps: float,
    duration_s: float,
    process: Arrival | str = Arrival.CONSTANT,
    seed: int = 0,
    max_requests: int = 1_000_000,
) -> np.ndarray:
    """Seconds from the start at which each request is due, within `duration_s` (bounded count)."""
    if rate_rps <= 0 or duration_s <= 0:
        raise ConfigError(f"rate_rps={rate_rps} and duration_s={duration_s} must be > 0")
    count = min(int(rate_rps * duration_s), max_requests)
    if Arrival(process) is Arrival.CONSTANT:
        return np.arange(count) / rate_rps
    if count == 0:
        return np.zeros(0)
    gaps = np.random.default_rng(seed).exponential(1.0 / rate_rps, size=count)
    offsets = np.cumsum(gaps) - gaps[0]
    return offsets[offsets < duration_s]


def latency_from_schedule(scheduled_s: float, start_s: float, end_s: float) -> tuple[float, float]:
    """(latency, schedule delay) of one open-loop request: latency counts from the schedule."""
    return end_s - scheduled_s, max(start_s - scheduled_s, 0.0)

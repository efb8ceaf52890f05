"""Latency figures of a distributed Locust run that keep microseconds and real windows: each worker
sends, with every report to the master, HdrHistograms of its successful and of its failed requests'
latencies, and per time window a compact log-bucket histogram; the master merges them.

    import locust
    from tritonstack.loadtest.locust_hdr import install, read_merged

    install(locust.events, window_s=0.25)   # in the locustfile; the master writes the merged figures
                                             # as JSON to $TRITONSTACK_HDR_OUT when Locust exits
    merged = read_merged(path)               # after the run: .summary_ms(), .ok_p99_ms, .windows(...)

Latency is `end - scheduled` from the request's context when our user set it (failures included),
else Locust's response time. Windows are fixed slices of unix time (`window_s` wide, from the epoch),
so every process puts a request in the same window; their percentiles are within 1% (log buckets),
and each window holds only the requests that ended in it (Locust's own "current" percentiles are a
rolling 10 s window, which hides a short stall and mixes windows).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonstack.loadtest.stats import PERCENTILES, LatencyHistogram

__all__ = ["ENV_OUT", "REPORT_KEY", "Merged", "install", "read_merged"]

_LOGGER = logging.getLogger(__name__)

ENV_OUT = "TRITONSTACK_HDR_OUT"
REPORT_KEY = "tritonstack_hdr"
_STEP = math.log(1.01)  # window buckets 1% apart


def _bucket(latency_s: float) -> int:
    return round(math.log(max(latency_s, 1e-6)) / _STEP)


@dataclass
class _Window:
    """One time window's failures and latencies (log buckets, failures included)."""

    errors: int = 0
    buckets: Counter[int] = field(default_factory=Counter)

    def add(self, errors: int, buckets: Any) -> None:
        self.errors += errors
        self.buckets.update(dict(buckets))

    def row(self, index: int) -> list[Any]:
        return [index, self.errors, sorted(self.buckets.items())]


@dataclass
class Merged:
    """What the master merged: the run's histograms and its windows."""

    every: LatencyHistogram
    ok: LatencyHistogram
    width_s: float
    windows: dict[int, _Window]

    def summary_ms(self) -> dict[str, float | None]:
        """p50/p90/p99 and mean over every request (failures included), and the successful ones' p99."""
        return {**self.every.summary_ms(), "ok_p99_ms": self.ok.summary_ms()["p99_ms"]}

    def rows(self, start_unix_s: float | None, duration_s: float) -> list[dict[str, Any]]:
        """The report's windows: time from `start_unix_s` (the load's start; else the first window's),
        each window's rate over the part of it within the load."""
        if not self.windows:
            return []
        start = min(self.windows) * self.width_s if start_unix_s is None else start_unix_s
        end, out = start + duration_s, []
        last, windows = math.floor(end / self.width_s - 1e-9), dict(self.windows)
        for index in [i for i in windows if i > last and last in windows]:  # ended in the drain: the last
            windows[last].add(windows[index].errors, windows.pop(index).buckets)
        for index in sorted(windows):
            window = windows[index]
            low, high = max(index * self.width_s, start), min((index + 1) * self.width_s, end)
            count = sum(window.buckets.values())
            span = high - low if high - low > self.width_s / 10 else self.width_s
            out.append({"t_s": round(min((index + 1) * self.width_s, end) - start, 3), "count": count,
                        "throughput_rps": count / span, "errors": window.errors,
                        "error_rate": window.errors / count if count else 0.0, **_percentiles_ms(window)})
        return out


def _percentiles_ms(window: _Window) -> dict[str, float | None]:
    """Nearest-rank percentiles of a window's buckets, in ms."""
    total, ranked = sum(window.buckets.values()), sorted(window.buckets.items())
    out: dict[str, float | None] = {}
    for p in PERCENTILES:
        rank, seen = max(math.ceil(p / 100 * total), 1), 0
        for bucket, count in ranked:
            seen += count
            if seen >= rank:
                out[f"p{p}_ms"] = math.exp(bucket * _STEP) * 1e3
                break
        else:
            out[f"p{p}_ms"] = None
    return out


class _State:
    """This process's figures: what a worker has not reported yet, what a master has merged."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._reset()
        self.merged = Merged(LatencyHistogram(), LatencyHistogram(), window_s, {})
        self.environment: Any = None

    def on_request(self, response_time: float, context: dict | None = None, exception: Any = None,
                   **_: Any) -> None:
        ctx = context or {}
        latency_s = ctx["end_s"] - ctx["scheduled_s"] if "end_s" in ctx and "scheduled_s" in ctx else (
            response_time / 1e3)
        (self.pending_ok if exception is None else self.pending_failed).record(latency_s)  # once: ~2 µs
        window = self.pending_windows.get(index := int(time.time() // self.window_s))
        if window is None:
            window = self.pending_windows[index] = _Window()
        window.errors += exception is not None
        window.buckets[_bucket(latency_s)] += 1

    def on_report_to_master(self, data: dict[str, Any], **_: Any) -> None:
        data[REPORT_KEY] = {"failed": self.pending_failed.encode(), "ok": self.pending_ok.encode(),
                            "windows": [w.row(i) for i, w in self.pending_windows.items()]}
        self._reset()

    def _reset(self) -> None:
        """Nothing pending: what was recorded went to the master."""
        self.pending_ok, self.pending_failed = LatencyHistogram(), LatencyHistogram()
        self.pending_windows: dict[int, _Window] = {}

    def on_worker_report(self, data: dict[str, Any], **_: Any) -> None:
        report = data.get(REPORT_KEY)
        if not isinstance(report, dict):
            return
        ok = LatencyHistogram.decode(report["ok"])
        self.merged.every.merge(LatencyHistogram.decode(report["failed"])).merge(ok)
        self.merged.ok.merge(ok)
        for index, errors, buckets in report["windows"]:
            self.merged.windows.setdefault(int(index), _Window()).add(int(errors), buckets)

    def on_quit(self, **_: Any) -> None:
        from locust.runners import MasterRunner

        path = os.environ.get(ENV_OUT)
        if path and isinstance(getattr(self.environment, "runner", None), MasterRunner):
            merged = self.merged
            Path(path).write_text(json.dumps({
                "all": merged.every.encode(), "ok": merged.ok.encode(), "width_s": merged.width_s,
                "windows": [w.row(i) for i, w in sorted(merged.windows.items())]}))
            _LOGGER.info("wrote the merged latencies (%d requests) to %s", len(merged.every), path)


def read_merged(path: Path) -> Merged | None:
    """What the master wrote to `path`; None when it wrote nothing readable (e.g. killed)."""
    try:
        data = json.loads(path.read_text())
        windows: dict[int, _Window] = {}
        for index, errors, buckets in data["windows"]:
            windows.setdefault(int(index), _Window()).add(int(errors), buckets)
        return Merged(LatencyHistogram.decode(data["all"]), LatencyHistogram.decode(data["ok"]),
                      float(data["width_s"]), windows)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def install(events: Any, *, window_s: float = 1.0) -> None:
    """Record, report and merge the histograms through Locust's events (`locust.events`)."""
    state = _State(window_s)
    events.init.add_listener(lambda environment, **_: setattr(state, "environment", environment))
    events.request.add_listener(state.on_request)
    events.report_to_master.add_listener(state.on_report_to_master)
    events.worker_report.add_listener(state.on_worker_report)
    events.quit.add_listener(state.on_quit)

"""Server-side view of a run from Triton's statistics API: queue vs compute time, batch size.

    with ServerStatsPoller(url, "digits_mlp", interval_s=1.0) as poller:
        ...  # run load
    timeline = poller.timeline()   # [{"t_s", "requests", "avg_queue_us", "avg_compute_us", "avg_batch"}]

Triton counts per model: requests (`inference_stats.success.count`), cumulative queue and compute
nanoseconds, and `inference_count / execution_count` = the average batch the dynamic batcher
formed. Differences between two snapshots give the figures of that interval.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

__all__ = ["ServerStatsPoller", "Snapshot", "interval", "snapshot"]

_COMPUTE = ("compute_input", "compute_infer", "compute_output")


@dataclass(frozen=True)
class Snapshot:
    """Cumulative counters of one model at one instant."""

    t_s: float
    requests: int
    failures: int
    inferences: int
    executions: int
    queue_ns: int
    compute_ns: int


def _ns(stats: dict[str, Any], key: str) -> int:
    return int(stats.get(key, {}).get("ns", 0))


def snapshot(statistics: dict[str, Any], model: str, t_s: float) -> Snapshot:
    """Sum the JSON statistics (`get_inference_statistics(as_json=True)`) of every version."""
    total = Snapshot(t_s, 0, 0, 0, 0, 0, 0)
    for entry in statistics.get("model_stats", []):
        if entry.get("name") != model:
            continue
        stats = entry.get("inference_stats", {})
        total = Snapshot(
            t_s,
            total.requests + int(stats.get("success", {}).get("count", 0)),
            total.failures + int(stats.get("fail", {}).get("count", 0)),
            total.inferences + int(entry.get("inference_count", 0)),
            total.executions + int(entry.get("execution_count", 0)),
            total.queue_ns + _ns(stats, "queue"),
            total.compute_ns + sum(_ns(stats, k) for k in _COMPUTE),
        )
    return total


def interval(before: Snapshot, after: Snapshot, origin_s: float = 0.0) -> dict[str, Any]:
    """What happened between two snapshots: request count, mean queue/compute time, mean batch."""
    requests = after.requests - before.requests
    executions = after.executions - before.executions
    return {
        "t_s": round(after.t_s - origin_s, 3),
        "requests": requests,
        "failures": after.failures - before.failures,
        "avg_queue_us": (after.queue_ns - before.queue_ns) / requests / 1e3 if requests else 0.0,
        "avg_compute_us": (after.compute_ns - before.compute_ns) / requests / 1e3 if requests else 0.0,
        "avg_batch": (after.inferences - before.inferences) / executions if executions else 0.0,
    }


class ServerStatsPoller:
    """Poll one model's statistics every `interval_s` in a background thread (gevent-friendly)."""

    def __init__(self, url: str, model: str, *, interval_s: float = 1.0) -> None:
        self.url, self.model, self.interval_s = url, model, interval_s
        self.snapshots: list[Snapshot] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def _poll(self, client: Any) -> None:
        statistics = client.get_inference_statistics(self.model, as_json=True, client_timeout=5.0)
        self.snapshots.append(snapshot(statistics, self.model, time.perf_counter()))

    def _loop(self) -> None:
        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(self.url)
        try:
            while True:
                try:
                    self._poll(client)
                except Exception as exc:  # noqa: BLE001 - statistics are optional; say why missing
                    self.error = f"statistics unavailable: {exc}"
                if self._stop.wait(self.interval_s):
                    break
            self._poll(client)
        except Exception as exc:  # noqa: BLE001
            self.error = f"statistics unavailable: {exc}"
        finally:
            client.close()

    def __enter__(self) -> ServerStatsPoller:
        self._thread = threading.Thread(target=self._loop, name="triton-stats", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def timeline(self, origin_s: float | None = None) -> list[dict[str, Any]]:
        """Per-interval figures between consecutive snapshots (time relative to `origin_s`)."""
        points = self.snapshots
        origin = points[0].t_s if origin_s is None and points else (origin_s or 0.0)
        return [interval(a, b, origin) for a, b in zip(points, points[1:], strict=False)]

    def total(self) -> dict[str, Any] | None:
        """Figures over the whole polling period."""
        if len(self.snapshots) < 2:
            return None
        return interval(self.snapshots[0], self.snapshots[-1], self.snapshots[0].t_s)

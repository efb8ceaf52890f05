"""Server-side view of a run from Triton's statistics API: queue vs compute time, batch size.

    with ServerStatsPoller(url, "digits_mlp", interval_s=1.0) as poller:
        ...  # run load
    timeline = poller.timeline()   # [{"t_s", "requests", "avg_queue_us", "avg_compute_us", "avg_batch"}]

Triton counts per model: requests (`inference_stats.success.count`), cumulative queue and compute
nanoseconds, and `inference_count / execution_count` = the average batch the dynamic batcher
formed. Differences between two snapshots give the figures of that interval, version by version:
Triton's counters belong to one loaded version and start again from zero when it is (re)loaded.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

__all__ = ["Counters", "ServerStatsPoller", "Snapshot", "interval", "snapshot", "went_back"]

_COMPUTE = ("compute_input", "compute_infer", "compute_output")


@dataclass(frozen=True)
class Counters:
    """Cumulative counters of one model version (Triton restarts them when it (re)loads a version)."""

    requests: int = 0
    failures: int = 0
    inferences: int = 0
    executions: int = 0
    queue_ns: int = 0
    compute_ns: int = 0

    def since(self, before: Counters | None) -> Counters:
        """What this version did after `before`; a version that is new or was reloaded (a counter
        went down) counts from zero. Never negative."""
        if before is None or any(getattr(self, k) < getattr(before, k) for k in _FIELDS):
            before = Counters()
        return Counters(**{k: getattr(self, k) - getattr(before, k) for k in _FIELDS})

    def __add__(self, other: Counters) -> Counters:
        return Counters(**{k: getattr(self, k) + getattr(other, k) for k in _FIELDS})


_FIELDS = ("requests", "failures", "inferences", "executions", "queue_ns", "compute_ns")


@dataclass(frozen=True)
class Snapshot:
    """Cumulative counters of one model at one instant, per version."""

    t_s: float
    versions: dict[str, Counters] = field(default_factory=dict)

    def __getattr__(self, name: str) -> int:
        """Counters summed over versions (`snapshot.requests`), for a quick look."""
        if name in _FIELDS:
            return sum(getattr(c, name) for c in self.versions.values())
        raise AttributeError(name)


def _ns(stats: dict[str, Any], key: str) -> int:
    return int(stats.get(key, {}).get("ns", 0))


def _counters(entry: dict[str, Any]) -> Counters:
    stats = entry.get("inference_stats", {})
    return Counters(
        requests=int(stats.get("success", {}).get("count", 0)),
        failures=int(stats.get("fail", {}).get("count", 0)),
        inferences=int(entry.get("inference_count", 0)),
        executions=int(entry.get("execution_count", 0)),
        queue_ns=_ns(stats, "queue"),
        compute_ns=sum(_ns(stats, k) for k in _COMPUTE),
    )


def snapshot(statistics: dict[str, Any], model: str, t_s: float) -> Snapshot:
    """The JSON statistics (`get_inference_statistics(as_json=True)`) of every version of `model`."""
    versions = {
        str(entry.get("version", "")): _counters(entry)
        for entry in statistics.get("model_stats", [])
        if entry.get("name") == model
    }
    return Snapshot(t_s, versions)


def interval(before: Snapshot, after: Snapshot, origin_s: float = 0.0) -> dict[str, Any]:
    """What happened between two snapshots: request count, mean queue/compute time, mean batch.

    Diffed version by version, so a version loaded or unloaded in between (a canary, a switch
    during the run) never makes a figure negative.
    """
    return _figures(_done(before, after), round(after.t_s - origin_s, 3))


def _done(before: Snapshot, after: Snapshot) -> Counters:
    return sum((c.since(before.versions.get(v)) for v, c in after.versions.items()), Counters())


def _figures(done: Counters, t_s: float) -> dict[str, Any]:
    return {
        "t_s": t_s,
        "requests": done.requests,
        "failures": done.failures,
        "avg_queue_us": done.queue_ns / done.requests / 1e3 if done.requests else 0.0,
        "avg_compute_us": done.compute_ns / done.requests / 1e3 if done.requests else 0.0,
        "avg_batch": done.inferences / done.executions if done.executions else 0.0,
    }


def went_back(before: Snapshot, after: Snapshot) -> bool:
    """True when a version's requests counter went down between the snapshots: its server restarted (or
    the version was reloaded) and its statistics started again from zero."""
    return any(c.requests < before.versions[v].requests for v, c in after.versions.items()
               if v in before.versions)


#: a statistics call answers in milliseconds even under load (it does not queue behind inferences);
#: a hung (e.g. SIGSTOPped) server must not hold the end of a run, or Ctrl-C, for long
POLL_TIMEOUT_S = 2.0


class ServerStatsPoller:
    """Poll one model's statistics every `interval_s` in a background thread (gevent-friendly)."""

    def __init__(self, url: str, model: str, *, interval_s: float = 1.0) -> None:
        self.url, self.model, self.interval_s = url, model, interval_s
        self.snapshots: list[Snapshot] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        self.down_since_s: float | None = None  # perf_counter of the first failed poll of the last streak
        #: (last snapshot before, first after) of each time the counters went back: a restarted server
        #: (or a reloaded model) whose statistics started again from zero
        self.restarts: list[tuple[float, float]] = []

    def _poll(self, client: Any) -> None:
        asked_s = time.perf_counter()
        try:
            statistics = client.get_inference_statistics(self.model, as_json=True,
                                                         client_timeout=POLL_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - statistics are optional; say why missing
            self.error = f"statistics unavailable: {' '.join(str(exc).replace('[StatusCode.', '[').split())}"
            self.down_since_s = self.down_since_s or asked_s
            return
        self.down_since_s = None
        now = snapshot(statistics, self.model, time.perf_counter())
        if self.snapshots and went_back(self.snapshots[-1], now):
            self.restarts.append((self.snapshots[-1].t_s, now.t_s))
        self.snapshots.append(now)

    def _loop(self) -> None:
        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(self.url)
        try:
            while True:
                self._poll(client)
                if self._stop.wait(self.interval_s):
                    break
            if self.down_since_s is None:  # a hung server is not asked once more (Ctrl-C stays quick)
                self._poll(client)
        finally:
            client.close()

    @property
    def stopped_answering(self) -> bool:
        """True when the server had answered and its last polls failed: it went away during the run."""
        return self.down_since_s is not None and bool(self.snapshots)

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

    def timeline(self, origin_s: float | None = None, until_s: float | None = None) -> list[dict[str, Any]]:
        """Per-interval figures between consecutive snapshots, time relative to `origin_s`.

        With `until_s`, only intervals whose middle lies within [0, until_s] are kept (the run
        itself, not the polls before its start or after its end), each stamped at most `until_s`:
        the server's time axis is then the client's.
        """
        points = self.snapshots
        origin = points[0].t_s if origin_s is None and points else (origin_s or 0.0)
        rows = []
        for a, b in zip(points, points[1:], strict=False):
            middle = (a.t_s + b.t_s) / 2 - origin
            if until_s is not None and not 0 <= middle <= until_s:
                continue
            row = interval(a, b, origin)
            if until_s is not None:
                row["t_s"] = min(row["t_s"], round(until_s, 3))
            rows.append(row)
        return rows

    def total(self) -> dict[str, Any] | None:
        """Figures over the whole polling period (interval by interval, so no version is lost)."""
        points = self.snapshots
        if len(points) < 2:
            return None
        done = sum((_done(a, b) for a, b in zip(points, points[1:], strict=False)), Counters())
        return _figures(done, round(points[-1].t_s - points[0].t_s, 3))

"""Per-request samples and what is computed from them: percentiles that count failures, windows.

    recorder = Recorder()
    recorder.add(scheduled_s=t0, start_s=t0, end_s=t1, ok=True)
    summary = summarize(recorder.frame())       # {"count", "errors", "p50_ms", "p99_ms", ...}

Latency is always `end - scheduled`: in a closed loop the scheduled time is the send time; in an
open loop it is the time the schedule wanted the request sent, so time spent waiting for a free
slot (coordinated omission) is part of the latency. Failed requests keep their latency (time
until the error) and count in every percentile: a load test never looks better by failing.

Two recorders, each where it is the better tool (measured here, 2026-12-01, 200k samples):
- `Recorder` keeps every sample: exact percentiles, per-window percentiles at any width, error kinds,
  schedule delay. 1.6 us per `add` (HdrHistogram's Python `record_value`: 5.0 us), 112 bytes per
  sample. Used by the in-process runners (asyncio, open loop, Locust local).
- `LatencyHistogram` is an HdrHistogram (the `hdrhistogram` package; 1 us to 1 h, 3 significant
  digits): fixed memory, and its 4 KB encoding merges exactly across processes. Locust workers record
  into one and send it with each report, the master merges them (loadtest/locustfile.py): a
  distributed run's percentiles keep microseconds, where Locust's own are rounded to whole ms.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PERCENTILES", "LatencyHistogram", "Recorder", "Samples", "error_breakdown", "error_status",
           "late_answer", "summarize", "window_width", "windows"]

PERCENTILES = (50, 90, 99)


def late_answer(elapsed_s: float, timeout_s: float | None, model: str) -> Exception | None:
    """DEADLINE_EXCEEDED (our typed error) for a request that succeeded `elapsed_s` after it was due
    (its send time; in an open loop its scheduled instant), past its `timeout_s`; else None. The
    deadline timer only fires when the generator's loop gets to it, and it starts at the send: an
    answer read late (a big body already buffered, a busy loop) or a request sent behind its schedule
    would otherwise count as OK with a latency over the deadline."""
    if timeout_s is None or elapsed_s <= timeout_s:
        return None
    from tritonstack.client.errors import error_for_status

    return error_for_status("DEADLINE_EXCEEDED", f"answered {elapsed_s * 1e3:.3f} ms after it was due, past "
                            f"the {timeout_s * 1e3:g} ms deadline (--timeout-s)", model=model)


@dataclass(frozen=True)
class Samples:
    """Column arrays of one run; times in seconds on one monotonic clock."""

    scheduled_s: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    ok: np.ndarray  # bool
    errors: tuple[str, ...]  # error kind per failed request, in order ("" for successes)
    first_errors: dict[str, tuple[str, str]] = field(default_factory=dict)  # kind -> (status, message)

    @property
    def latency_s(self) -> np.ndarray:
        """End minus scheduled time, for every request (failures included)."""
        return self.end_s - self.scheduled_s

    @property
    def schedule_delay_s(self) -> np.ndarray:
        """How late each request was sent compared with its schedule (0 in a closed loop)."""
        return self.start_s - self.scheduled_s

    def __len__(self) -> int:
        return len(self.end_s)


class Recorder:
    """Thread-safe, append-only collector of request samples."""

    def __init__(self) -> None:
        self._rows: list[tuple[float, float, float, bool, str]] = []
        self._first: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def note_error(self, kind: str, exc: BaseException) -> None:
        """Keep the gRPC status and message of the first failure of each kind (for the breakdown)."""
        if kind not in self._first:
            with self._lock:
                self._first.setdefault(kind, (error_status(exc), " ".join(str(exc).split())[:300]))

    def add(self, *, scheduled_s: float, start_s: float, end_s: float, ok: bool, error: str = "") -> None:
        """Record one finished request (successful or not)."""
        with self._lock:
            self._rows.append((scheduled_s, start_s, end_s, ok, "" if ok else (error or "error")))

    def __len__(self) -> int:
        return len(self._rows)

    def frame(self) -> Samples:
        """The samples so far, sorted by end time, as column arrays."""
        with self._lock:
            rows, first = sorted(self._rows, key=lambda r: r[2]), dict(self._first)
        if not rows:
            empty = np.zeros(0)
            return Samples(empty, empty, empty, np.zeros(0, dtype=bool), (), first)
        sched, start, end, ok, err = zip(*rows, strict=True)
        return Samples(np.array(sched), np.array(start), np.array(end), np.array(ok, dtype=bool), err, first)


def error_status(exc: BaseException) -> str:
    """The gRPC status code name of a failure (looked for on it and on its causes, then at the end of
    our typed error's message: "... [DEADLINE_EXCEEDED]"), or ""."""
    seen: BaseException | None = exc
    for _ in range(4):
        code = getattr(seen, "code", None)
        if callable(code):
            try:
                return str(getattr(code(), "name", code()))
            except Exception:  # noqa: BLE001 - a `code` that is not gRPC's
                return ""
        if seen is None or seen.__cause__ is None:
            break
        seen = seen.__cause__
    text = str(exc).rstrip()
    name = text.rsplit("[", 1)[-1][:-1] if text.endswith("]") else ""
    return name if name and name.replace("_", "").isalpha() and name.isupper() else ""


def error_breakdown(kinds: dict[str, int], first: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """One row per error kind, most frequent first: kind, gRPC status, count, first message."""
    rows = []
    for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
        status, message = first.get(kind, ("", ""))
        rows.append({"error": kind, "status": status, "count": count, "first_message": message})
    return rows


class LatencyHistogram:
    """Request latencies (failures included) in an HdrHistogram: fixed memory, mergeable, encodable."""

    LOWEST_US, HIGHEST_US, DIGITS = 1, 3_600_000_000, 3

    def __init__(self) -> None:
        from hdrh.histogram import HdrHistogram

        self._hdr = HdrHistogram(self.LOWEST_US, self.HIGHEST_US, self.DIGITS)

    def record(self, latency_s: float) -> None:
        """Add one latency (clamped to 1 us .. 1 h)."""
        self._hdr.record_value(min(max(round(latency_s * 1e6), self.LOWEST_US), self.HIGHEST_US))

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """Add all of `other`'s counts to this one; return self."""
        self._hdr.add(other._hdr)
        return self

    def encode(self) -> str:
        """A compact text form (HdrHistogram's compressed V2 encoding, base64) to send to another process."""
        return self._hdr.encode().decode("ascii")

    @classmethod
    def decode(cls, text: str) -> LatencyHistogram:
        """Inverse of `encode`."""
        histogram = cls()
        histogram._hdr.decode_and_add(text.encode("ascii"))
        return histogram

    def __len__(self) -> int:
        return int(self._hdr.get_total_count())

    def summary_ms(self) -> dict[str, float | None]:
        """p50/p90/p99 and mean in ms (None when empty)."""
        if not len(self):
            return {"mean_ms": None, **{f"p{p}_ms": None for p in PERCENTILES}}
        values = self._hdr.get_percentile_to_value_dict(list(PERCENTILES))
        return {"mean_ms": self._hdr.get_mean_value() / 1e3,
                **{f"p{p}_ms": values[p] / 1e3 for p in PERCENTILES}}


def _percentiles_ms(latency_s: np.ndarray) -> dict[str, float | None]:
    if len(latency_s) == 0:
        return {f"p{p}_ms": None for p in PERCENTILES}
    values = np.percentile(latency_s, PERCENTILES) * 1e3
    return {f"p{p}_ms": float(v) for p, v in zip(PERCENTILES, values, strict=True)}


def summarize(samples: Samples, *, duration_s: float | None = None) -> dict[str, Any]:
    """Counts, throughput, error rate and latency percentiles (failures included) of a run."""
    count = len(samples)
    if duration_s is None:
        duration_s = float(samples.end_s.max() - samples.start_s.min()) if count else 0.0
    errors = int(count - samples.ok.sum())
    kinds: dict[str, int] = {}
    for kind in samples.errors:
        if kind:
            kinds[kind] = kinds.get(kind, 0) + 1
    return {
        "count": count,
        "errors": errors,
        "error_rate": errors / count if count else 0.0,
        "error_kinds": kinds,
        "error_breakdown": error_breakdown(kinds, samples.first_errors),
        "duration_s": duration_s,
        "throughput_rps": count / duration_s if duration_s > 0 else 0.0,
        "ok_throughput_rps": (count - errors) / duration_s if duration_s > 0 else 0.0,
        "mean_ms": float(samples.latency_s.mean() * 1e3) if count else None,
        **_percentiles_ms(samples.latency_s),
        "ok_p99_ms": _percentiles_ms(samples.latency_s[samples.ok])["p99_ms"],
        "max_schedule_delay_ms": float(samples.schedule_delay_s.max() * 1e3) if count else None,
    }


def window_width(duration_s: float) -> float:
    """The report's window (s) for a run of `duration_s`: about 40 windows, 0.25 s to 1 s wide."""
    return max(0.25, round(duration_s / 40, 2)) if duration_s < 40 else 1.0


def windows(
    samples: Samples, *, origin_s: float, width_s: float, duration_s: float | None = None
) -> list[dict[str, Any]]:
    """Per time window (by end time): throughput, error rate, p50/p90/p99 (failures included).

    Requests that end after `duration_s` (the drain) count in the last window.
    """
    if len(samples) == 0:
        return []
    index = np.floor((samples.end_s - origin_s) / width_s).astype(int)
    if duration_s is not None:
        index = np.clip(index, 0, max(int(duration_s / width_s + 1e-6), 1) - 1)
    rows = []
    for i in range(int(index.max()) + 1):
        mask = index == i
        count = int(mask.sum())
        errors = int(count - samples.ok[mask].sum())
        rows.append(
            {
                "t_s": round((i + 1) * width_s, 3),
                "count": count,
                "throughput_rps": count / width_s,
                "errors": errors,
                "error_rate": errors / count if count else 0.0,
                **_percentiles_ms(samples.latency_s[mask]),
            }
        )
    return rows

"""CPU use of process trees, read from /proc (Linux): to show whether the load generator or the server
was the busy side of a measurement.

    sides = {"server": lambda procs: tree(server.pid, procs),
             "generator": lambda procs: tree(os.getpid(), procs)}
    with TreeCpu(sides) as meter:
        run_load()
    meter.use()                          # {"server": 0.97, "generator": 0.64} over the whole block
    meter.use(between=(t0, t1))          # over a window in unix seconds (e.g. a load's steady part)

A figure is CPU seconds per wall second: 1.0 is one core busy all the time. Each side is sampled
every `interval_s` in a background thread; a process that exits keeps the CPU time it was last seen
with, and a process seen for the first time counts from zero (its start-up before the first sample
is charged to the first interval).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType

__all__ = ["CpuCounter", "TreeCpu", "parse_stat", "snapshot", "tree", "use_between"]

_LOGGER = logging.getLogger(__name__)
_PROC = "/proc"
_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
#: One sample: (unix seconds, {side: cumulative CPU seconds}).
Sample = tuple[float, dict[str, float]]
#: pid -> (parent pid, CPU seconds), as `snapshot()` returns it.
Processes = Mapping[int, tuple[int, float]]


def parse_stat(text: str) -> tuple[int, float]:
    """(parent pid, user + system CPU seconds) from the text of /proc/<pid>/stat."""
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return int(fields[1]), (int(fields[11]) + int(fields[12])) * _TICK_S


def snapshot() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds) of every process visible now."""
    out = {}
    for name in os.listdir(_PROC):
        if name.isdigit():
            try:
                with open(f"{_PROC}/{name}/stat", encoding="utf-8", errors="replace") as handle:
                    out[int(name)] = parse_stat(handle.read())
            except (OSError, ValueError):
                continue  # exited while being read
    return out


def tree(root: int, processes: Processes | None = None) -> set[int]:
    """`root` and every process below it (present in `processes`, default: a fresh snapshot)."""
    processes = snapshot() if processes is None else processes
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in processes.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root] if root in processes else []
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


class CpuCounter:
    """Cumulative CPU seconds of a changing set of processes: each pid's highest reading is kept, so a
    process that exits between two readings keeps what it had used."""

    def __init__(self) -> None:
        self._seen: dict[int, float] = {}

    def update(self, readings: Mapping[int, float]) -> float:
        """Add the readings (pid -> CPU seconds so far); return the total so far."""
        for pid, cpu_s in readings.items():
            self._seen[pid] = max(cpu_s, self._seen.get(pid, 0.0))
        return self.total

    @property
    def total(self) -> float:
        """CPU seconds of every process ever read."""
        return sum(self._seen.values())


def _at(samples: list[Sample], side: str, t: float) -> float:
    """The side's cumulative CPU at unix time `t`, linear between the samples around it."""
    for (t0, a), (t1, b) in zip(samples, samples[1:], strict=False):
        if t0 <= t <= t1:
            share = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
            return a[side] + share * (b[side] - a[side])
    return samples[0][1][side] if t < samples[0][0] else samples[-1][1][side]


def use_between(samples: list[Sample], start_s: float, end_s: float) -> dict[str, float]:
    """CPU seconds per wall second of each side between two unix times (clipped to the samples)."""
    if len(samples) < 2:
        return {}
    start_s, end_s = max(start_s, samples[0][0]), min(end_s, samples[-1][0])
    if end_s <= start_s:
        return {}
    return {side: round((_at(samples, side, end_s) - _at(samples, side, start_s)) / (end_s - start_s), 2)
            for side in samples[0][1]}


class TreeCpu:
    """Samples the CPU of named sides in a thread; a side is a callable that picks its pids from a
    `snapshot()` (e.g. `lambda procs: tree(pid, procs)`)."""

    def __init__(self, sides: Mapping[str, Callable[[Processes], Iterable[int]]], *,
                 interval_s: float = 0.5) -> None:
        self.sides = dict(sides)
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self._counters = {side: CpuCounter() for side in self.sides}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-cpu", daemon=True)

    def sample(self) -> None:
        """Read every side once."""
        processes = snapshot()
        now, totals = time.time(), {}
        for side, pids in self.sides.items():
            wanted = set(pids(processes))
            totals[side] = self._counters[side].update(
                {pid: cpu for pid, (_, cpu) in processes.items() if pid in wanted})
        self.samples.append((now, totals))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - a failed reading only makes the figure coarser
                _LOGGER.debug("reading /proc failed", exc_info=True)

    def use(self, between: tuple[float, float] | None = None) -> dict[str, float]:
        """CPU seconds per wall second of each side, over the whole run or `between` unix times."""
        if between is None and self.samples:
            between = (self.samples[0][0], self.samples[-1][0])
        return use_between(self.samples, *between) if between else {}

    def __enter__(self) -> TreeCpu:
        self.sample()
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()

"""Split the machine's cores between the server side and the load generator, the same for every run.

    split = CoreSplit.default()          # 2 cores: server on {0}, generator on {1}
    pin_process_group(server.pid, split.server)
    with pinned_thread(split.server):
        run_in_process_baseline()

Linux affinity is per thread, so a process is pinned thread by thread (`/proc/<pid>/task`), and a
whole server (tritonserver + its Python-backend stubs share one process group) group by group.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CoreSplit", "pin_pid", "pin_process_group", "pinned_thread"]


@dataclass(frozen=True, kw_only=True)
class CoreSplit:
    """Which CPUs the server side (server, baseline server, in-process model) and the load use."""

    server: frozenset[int]
    generator: frozenset[int]

    @classmethod
    def default(cls) -> CoreSplit:
        """Half the allowed CPUs each (server gets the lower half); one CPU: shared."""
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return cls(server=frozenset(cpus), generator=frozenset(cpus))
        half = len(cpus) // 2
        return cls(server=frozenset(cpus[:half]), generator=frozenset(cpus[half:]))

    @classmethod
    def parse(cls, text: str) -> CoreSplit:
        """'0:1' or '0-1:2-3' -> server CPUs before the colon, generator CPUs after."""
        server, _, generator = text.partition(":")
        return cls(server=_cpus(server), generator=_cpus(generator or server))

    def describe(self) -> str:
        """Human-readable split for reports."""
        return (
            f"server side on CPU {_fmt(self.server)} (tritonserver + stubs, uvicorn workers, "
            f"in-process ONNX Runtime), load generator on CPU {_fmt(self.generator)}"
        )


def _cpus(text: str) -> frozenset[int]:
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return frozenset(cpus)


def _fmt(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def pin_pid(pid: int, cpus: frozenset[int]) -> None:
    """Pin every thread of process `pid` (threads started later inherit from their creator)."""
    tasks = Path(f"/proc/{pid}/task")
    for tid in (int(t.name) for t in tasks.iterdir()) if tasks.exists() else [pid]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.sched_setaffinity(tid, cpus)


def process_group(pgid: int) -> list[int]:
    """Process ids whose process group is `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(ProcessLookupError, FileNotFoundError):
                if os.getpgid(int(entry.name)) == pgid:
                    members.append(int(entry.name))
    return members


def pin_process_group(pgid: int, cpus: frozenset[int]) -> list[int]:
    """Pin every process (and thread) of a process group; return the pinned pids."""
    members = process_group(pgid)
    for pid in members:
        pin_pid(pid, cpus)
    return members


@contextlib.contextmanager
def pinned_thread(cpus: frozenset[int]) -> Iterator[None]:
    """Run the calling thread on `cpus` for the duration of the block."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


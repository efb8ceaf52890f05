"""Resident memory of a process and all its descendants, read from /proc (Linux).

    usage = tree_rss(server.pid)
    usage.total_bytes               # tritonserver + every Python stub it started
    usage.by_name()                 # {"tritonserver": ..., "triton_python_backend_stub": ...}

A process that exits while it is being read is left out (its memory is gone anyway).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tritonstack.errors import LoadTestError

__all__ = ["ProcessRss", "TreeRss", "descendants", "tree_rss"]

_PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessRss:
    """One process: id, command name and resident set size in bytes."""

    pid: int
    name: str
    rss_bytes: int


@dataclass
class TreeRss:
    """The processes of one tree and their resident memory."""

    processes: list[ProcessRss] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        """Sum of the resident set sizes (shared pages count once per process, as `ps` shows them)."""
        return sum(p.rss_bytes for p in self.processes)

    def by_name(self) -> dict[str, int]:
        """Bytes per command name, largest first."""
        totals: Counter[str] = Counter()
        for process in self.processes:
            totals[process.name] += process.rss_bytes
        return dict(totals.most_common())


def _status(pid: int) -> dict[str, str]:
    """Fields of /proc/<pid>/status; empty when the process is gone."""
    try:
        text = (_PROC / str(pid) / "status").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process visible in /proc."""
    parents = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            ppid = _status(int(entry.name)).get("PPid", "").strip()
            if ppid.isdigit():
                parents[int(entry.name)] = int(ppid)
    return parents


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children...), not `pid` itself."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], list(children.get(pid, []))
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return sorted(found)


def tree_rss(pid: int) -> TreeRss:
    """Resident memory of `pid` and all its descendants; LoadTestError when `pid` is not running."""
    if not os.path.isdir(_PROC / str(pid)):
        raise LoadTestError(f"process {pid} is not running; start the server before measuring its memory")
    tree = TreeRss()
    for member in [pid, *descendants(pid)]:
        status = _status(member)
        rss = status.get("VmRSS", "").split()
        if rss:  # kernel threads and exited processes have none
            tree.processes.append(ProcessRss(member, status.get("Name", "?").strip(), int(rss[0]) * 1024))
    return tree

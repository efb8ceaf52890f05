"""Keep CPUs from halting while idle: `tritonstack serve --keep-awake`, and `tritonstack bench` for W2-p99.

    with kept_awake(frozenset(os.sched_getaffinity(0))):
        serve_until_stopped()
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["Spinners", "kept_awake"]


# Spins at the lowest priority (SCHED_IDLE: any other runnable thread of the CPU preempts it at once) until
# its parent (argv[1]: read before start-up, which a parent killed at once would not outlive) is gone, so
# a killed benchmark leaves no spinner behind.
_SPINNER = """
import os, sys
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
parent = int(sys.argv[1])
while os.getppid() == parent:
    for _ in range(200_000):
        pass
"""


class Spinners:
    """One idle-priority spinner process per CPU; `replace_dead` starts again any that died."""

    def __init__(self, cpus: frozenset[int]) -> None:
        self.cpus = sorted(cpus)
        self._running: dict[int, subprocess.Popen] = {}

    def start(self) -> None:
        """Start a spinner on each CPU."""
        for cpu in self.cpus:
            self._running[cpu] = _spawn(cpu)

    def replace_dead(self) -> list[int]:
        """Reap the spinners that died (killed by someone) or were stopped (SIGSTOP: their CPU would halt
        again) and start them again; their CPUs."""
        dead = []
        for cpu, spinner in self._running.items():
            if spinner.poll() is None and _stopped(spinner.pid):
                spinner.kill()
                spinner.wait()
            if spinner.poll() is not None:
                dead.append(cpu)
        for cpu in dead:
            self._running[cpu] = _spawn(cpu)
        return dead

    def pids(self) -> list[int]:
        """The spinners' process ids."""
        return [spinner.pid for spinner in self._running.values()]

    def stop(self) -> None:
        """Kill and reap every spinner."""
        for spinner in self._running.values():
            spinner.kill()
            spinner.wait()
        self._running.clear()


def _stopped(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return False


def _spawn(cpu: int) -> subprocess.Popen:
    spinner = subprocess.Popen([sys.executable, "-c", _SPINNER, str(os.getpid())], stdin=subprocess.DEVNULL)
    with contextlib.suppress(ProcessLookupError, PermissionError):  # at once, not after its start-up
        os.sched_setaffinity(spinner.pid, {cpu})
        os.sched_setscheduler(spinner.pid, os.SCHED_IDLE, os.sched_param(0))
    return spinner


@contextlib.contextmanager
def kept_awake(cpus: frozenset[int]) -> Iterator[Spinners]:
    """Keep `cpus` from going idle for the duration of the block: one idle-priority spinner per CPU.

    On a virtual machine an idle vCPU halts, and waking it again (an interrupt for a network reply)
    can take the hypervisor up to a millisecond or more: at concurrency 1 that wake-up, paid by the
    load generator's core between requests, is most of the p99 (measured on this VM, whose guest
    polls for 0 ns before halting: `haltpoll.guest_halt_poll_ns=0`), on the server's core as on the
    client's. A spinner takes no time from any other thread; it only keeps the CPU from halting, as
    `idle=poll` would. The price: the CPUs never idle (power; CPU credits of burstable cloud VMs), and
    CPU-use metrics (Triton's `nv_cpu_utilization`, top) read them as busy.
    """
    spinners = Spinners(cpus)
    try:
        spinners.start()
        yield spinners
    finally:
        spinners.stop()

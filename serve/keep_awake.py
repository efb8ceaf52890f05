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

__all__ = ["kept_awake"]


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


@contextlib.contextmanager
def kept_awake(cpus: frozenset[int]) -> Iterator[None]:
    """Keep `cpus` from going idle for the duration of the block: one idle-priority spinner per CPU.

    On a virtual machine an idle vCPU halts, and waking it again (an interrupt for a network reply)
    can take the hypervisor up to a millisecond or more: at concurrency 1 that wake-up, paid by the
    load generator's core between requests, is most of the p99 (measured on this VM, whose guest
    polls for 0 ns before halting: `haltpoll.guest_halt_poll_ns=0`), on the server's core as on the
    client's. A spinner takes no time from any other thread; it only keeps the CPU from halting, as
    `idle=poll` would. The price: the CPUs never idle (power; CPU credits of burstable cloud VMs).
    """
    spinners = []
    try:
        for cpu in sorted(cpus):
            spinner = subprocess.Popen([sys.executable, "-c", _SPINNER, str(os.getpid())],
                                       stdin=subprocess.DEVNULL)
            spinners.append(spinner)
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(spinner.pid, {cpu})
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()

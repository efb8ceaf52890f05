"""`kept_awake`: one idle-priority spinner per CPU while the block runs, none after, none if the bench dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tritonstack.serve.keep_awake import kept_awake


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_one_idle_priority_spinner_per_cpu_while_the_block_runs() -> None:
    cpu = min(os.sched_getaffinity(0))
    before = set(_children(os.getpid()))
    with kept_awake(frozenset({cpu})):
        spinners = [p for p in _children(os.getpid()) if p not in before]
        assert len(spinners) == 1
        time.sleep(0.3)  # the spinner sets its own policy first thing
        assert os.sched_getscheduler(spinners[0]) == os.SCHED_IDLE
        assert os.sched_getaffinity(spinners[0]) == {cpu}
    assert not _alive(spinners[0])


def test_a_spinner_ends_when_the_process_that_started_it_is_killed() -> None:
    script = ("import os, time\nfrom tritonstack.serve.keep_awake import kept_awake\n"
              "with kept_awake(frozenset({min(os.sched_getaffinity(0))})):\n"
              "    print(flush=True)\n    time.sleep(60)\n")
    bench = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert bench.stdout is not None and bench.stdout.readline() == b"\n"
        spinners = _children(bench.pid)
        assert len(spinners) == 1
        bench.send_signal(signal.SIGKILL)
        bench.wait()
        deadline = time.monotonic() + 10
        while _alive(spinners[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(spinners[0]), "the spinner outlived the benchmark"
    finally:
        bench.kill()
        bench.wait()


def test_a_spinner_that_died_or_was_stopped_is_started_again() -> None:
    """Outsider rounds 10 and 11: a spinner SIGKILLed stayed a zombie, one SIGSTOPped stayed stopped; in
    both cases its CPU could halt again."""
    cpu = min(os.sched_getaffinity(0))
    with kept_awake(frozenset({cpu, cpu + 1} & os.sched_getaffinity(0))) as spinners:
        first = spinners.pids()
        assert spinners.replace_dead() == []
        os.kill(first[0], signal.SIGKILL)
        os.kill(first[-1], signal.SIGSTOP)
        time.sleep(0.2)
        assert sorted(spinners.replace_dead()) == sorted(spinners.cpus)
        assert not set(spinners.pids()) & set(first) and not any(map(_alive, first))
        assert spinners.replace_dead() == []

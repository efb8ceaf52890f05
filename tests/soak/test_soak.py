"""R10 soak (opt-in: `pytest -m soak tests/soak`; TRITONSTACK_SOAK_S sets the length, default 600 s).

Steady closed-loop load on digits_mlp with a stub killed every 120 s. Asserts, and prints: client
and server memory flat, stubs and /dev/shm files back to their starting count, and failures only
inside the windows that follow an injected fault.
"""

from __future__ import annotations

import os
import resource
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from tritonstack.client import ClientOptions, RetryPolicy, TritonClient
from tritonstack.serve.supervisor import find_stubs, stub_named

SOAK_S = float(os.environ.get("TRITONSTACK_SOAK_S", "600"))
pytestmark = [pytest.mark.soak, pytest.mark.timeout(SOAK_S + 300)]  # the suite-wide 300 s would cut it
FAULT_EVERY_S = min(120.0, SOAK_S / 2)
FAULT_WINDOW_S = 6.0
SAMPLE_EVERY_S = min(60.0, SOAK_S / 8)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _worker(url: str, stop: float, fault_times: list[float]) -> tuple[int, int, int]:
    ok = injected = other = 0
    batch = np.zeros((4, 64), np.float32)
    options = ClientOptions(timeout_s=3, retry=RetryPolicy(attempts=3))
    with TritonClient(url, options) as client:
        while time.monotonic() < stop and ok + injected + other < 5_000_000:
            try:
                client.infer("digits_mlp", batch)
                ok += 1
            except Exception:  # noqa: BLE001 - classified below
                now = time.monotonic()
                if any(0 <= now - t <= FAULT_WINDOW_S for t in fault_times):
                    injected += 1
                else:
                    other += 1
    return ok, injected, other


def test_r10_soak(server) -> None:  # noqa: ANN001
    shm_start = len([f for f in os.listdir("/dev/shm") if f.startswith(server.shm_prefix)])
    stubs_start = len(find_stubs(server.pid))
    rss_start = (_rss_kib(server.pid), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    begin = time.monotonic()
    stop, fault_times = begin + SOAK_S, []
    samples: list[tuple[float, int, int]] = []  # (s since start, server RSS, client RSS) in KiB
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(_worker, server.grpc_url, stop, fault_times) for _ in range(4)]
        next_fault = time.monotonic() + FAULT_EVERY_S / 2
        next_sample = begin
        while time.monotonic() < stop - FAULT_WINDOW_S:
            if time.monotonic() >= next_sample:
                samples.append((time.monotonic() - begin, _rss_kib(server.pid), _rss_kib(os.getpid())))
                next_sample += SAMPLE_EVERY_S
            if time.monotonic() >= next_fault:
                fault_times.append(time.monotonic())
                os.kill(stub_named(server.pid, "digits_mlp_0_0").pid, signal.SIGKILL)
                next_fault += FAULT_EVERY_S
            time.sleep(0.5)
        totals = [sum(x) for x in zip(*(f.result() for f in futures), strict=True)]
    time.sleep(FAULT_WINDOW_S)
    rss_end = (_rss_kib(server.pid), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    shm_end = len([f for f in os.listdir("/dev/shm") if f.startswith(server.shm_prefix)])
    print(f"\nR10: {SOAK_S:.0f} s, {totals[0]} ok, {totals[1]} failed inside {len(fault_times)} fault "
          f"windows, {totals[2]} other failures; server RSS {rss_start[0]} -> {rss_end[0]} KiB, client "
          f"max RSS {rss_start[1]} -> {rss_end[1]} KiB; stubs {stubs_start} -> {len(find_stubs(server.pid))}; "
          f"shm files {shm_start} -> {shm_end}")
    samples.append((time.monotonic() - begin, rss_end[0], _rss_kib(os.getpid())))
    print("R10: RSS (MiB) server/client over time: " + ", ".join(
        f"{t:.0f}s {srv / 1024:.1f}/{cli / 1024:.1f}" for t, srv, cli in samples))
    heals = [f"{e.healed_s - e.detected_s:.1f}" for e in server.supervisor.events if e.healed_s]
    print(f"R10: heal times after detection: {', '.join(heals)} s")
    assert totals[2] == 0
    assert len(find_stubs(server.pid)) == stubs_start and shm_end <= shm_start
    assert rss_end[0] < rss_start[0] * 1.5 + 50_000
    assert rss_end[1] < rss_start[1] * 1.5 + 50_000
    # Flat once warm: over the second half, neither process grows by more than 10% + 8 MiB.
    half = [sample for sample in samples if sample[0] >= SOAK_S / 2]
    for column in (1, 2):
        assert half[-1][column] <= half[0][column] * 1.1 + 8192, samples

"""Statistics: failures keep their latency and count in every percentile; windows; open-loop timing."""

import numpy as np
import pytest
from tritonstack.loadtest.schedule import latency_from_schedule
from tritonstack.loadtest.stats import Recorder, summarize, windows


def _recorder(ok_latencies, failed_latencies, start=100.0):
    recorder = Recorder()
    for i, latency in enumerate(ok_latencies):
        t = start + i * 0.01
        recorder.add(scheduled_s=t, start_s=t, end_s=t + latency, ok=True)
    for i, latency in enumerate(failed_latencies):
        t = start + i * 0.01
        recorder.add(scheduled_s=t, start_s=t, end_s=t + latency, ok=False, error="InferenceTimeoutError")
    return recorder


def test_failures_count_in_percentiles():
    # 90 fast successes and 10 requests that failed after 2 s: p99 must show the failures.
    summary = summarize(_recorder([0.001] * 90, [2.0] * 10).frame(), duration_s=1.0)
    assert summary["count"] == 100 and summary["errors"] == 10
    assert summary["error_rate"] == 0.1
    assert summary["p99_ms"] > 1900
    assert summary["ok_p99_ms"] < 2
    assert summary["error_kinds"] == {"InferenceTimeoutError": 10}


def test_only_failures_still_have_percentiles():
    summary = summarize(_recorder([], [0.5] * 5).frame(), duration_s=1.0)
    assert summary["errors"] == summary["count"] == 5
    assert summary["p50_ms"] == 500.0
    assert summary["ok_p99_ms"] is None


def test_empty_run():
    summary = summarize(Recorder().frame(), duration_s=1.0)
    assert summary["count"] == 0 and summary["p50_ms"] is None and summary["throughput_rps"] == 0


def test_latency_counts_from_scheduled_time_not_send_time():
    # Open loop: due at t=10.0, the generator could only send at 10.3, answer at 10.31.
    recorder = Recorder()
    recorder.add(scheduled_s=10.0, start_s=10.3, end_s=10.31, ok=True)
    samples = recorder.frame()
    assert np.isclose(samples.latency_s[0], 0.31)  # not 0.01: the 300 ms wait is part of it
    assert np.isclose(samples.schedule_delay_s[0], 0.3)
    assert latency_from_schedule(10.0, 10.3, 10.31) == (10.31 - 10.0, 10.3 - 10.0)


def test_windows_split_by_end_time_and_clip_the_drain():
    recorder = Recorder()
    for i in range(40):  # 10 per 0.25 s window over 1 s, the last one ends after the run (drain)
        t = i * 0.025
        recorder.add(scheduled_s=t, start_s=t, end_s=t + 0.02, ok=i % 10 != 0)
    rows = windows(recorder.frame(), origin_s=0.0, width_s=0.25, duration_s=1.0)
    assert len(rows) == 4
    assert sum(r["count"] for r in rows) == 40
    assert all(r["errors"] >= 1 for r in rows)
    assert rows[0]["p50_ms"] is not None


def test_latency_histograms_merge_exactly_across_processes_and_keep_microseconds():
    from tritonstack.loadtest.stats import LatencyHistogram

    latency_s = np.random.default_rng(0).lognormal(np.log(0.0008), 0.5, 20000)  # sub-ms, like the MLP
    workers = [LatencyHistogram(), LatencyHistogram()]
    whole = LatencyHistogram()
    for i, value in enumerate(latency_s):
        workers[i % 2].record(value)
        whole.record(value)
    merged = LatencyHistogram()
    for worker in workers:  # what the master does with each worker's report
        merged.merge(LatencyHistogram.decode(worker.encode()))
    assert len(merged) == len(whole) == 20000 and merged.summary_ms() == whole.summary_ms()
    exact = np.percentile(latency_s, [50, 90, 99]) * 1e3
    summary = merged.summary_ms()
    for p, value in zip((50, 90, 99), exact, strict=True):
        assert abs(summary[f"p{p}_ms"] - value) <= 1e-3 * value + 1e-3  # 3 significant digits, not whole ms
    assert len(workers[0].encode()) < 8000
    assert LatencyHistogram().summary_ms()["p99_ms"] is None
    print(f"merged p50/p99 {summary['p50_ms']:.3f}/{summary['p99_ms']:.3f} ms, exact "
          f"{exact[0]:.3f}/{exact[2]:.3f} ms; encoded {len(workers[0].encode())} chars per worker")


HDR_LOCUSTFILE = '''
import locust
from locust import User, constant, task
from tritonstack.loadtest.locust_hdr import install

install(locust.events)


class Synthetic(User):
    """Reports a fixed 0.5 ms latency per request through Locust's request event, as our gRPC user does."""

    wait_time = constant(0.01)

    @task
    def call(self):
        self.environment.events.request.fire(
            request_type="grpc", name="m", response_time=0.5, response_length=0, exception=None,
            context={"scheduled_s": 1.0, "end_s": 1.0005})
'''


def test_locust_workers_send_histograms_that_the_master_merges(tmp_path):
    """Real Locust processes (master + 2 workers, no server): the merged histogram counts every request
    the workers reported and keeps the sub-millisecond latency."""
    import os
    import socket
    import subprocess
    import sys

    from tritonstack.loadtest.locust_hdr import ENV_OUT, read_merged

    (tmp_path / "locustfile.py").write_text(HDR_LOCUSTFILE)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, ENV_OUT: str(tmp_path / "hdr.json")}
    locust = [sys.executable, "-m", "locust", "-f", str(tmp_path / "locustfile.py")]
    master = subprocess.Popen([*locust, "--master", "--headless", "--master-bind-host", "127.0.0.1",
                               "--master-bind-port", str(port), "--expect-workers", "2", "-u", "4", "-r", "4",
                               "-t", "3s", "--csv", str(tmp_path / "run"), "--only-summary"],
                              env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    workers = [subprocess.Popen([*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                                env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(2)]
    try:
        _, stderr = master.communicate(timeout=60)
    finally:
        for process in (master, *workers):
            if process.poll() is None:
                process.kill()
            process.wait()
    assert (tmp_path / "hdr.json").is_file(), stderr[-2000:]
    whole = read_merged(tmp_path / "hdr.json")
    assert whole is not None
    merged = whole.every
    import csv

    total = next(r for r in csv.DictReader((tmp_path / "run_stats.csv").open()) if r["Name"] == "Aggregated")
    locust_count = int(total["Request Count"])
    summary = merged.summary_ms()
    print(f"master merged {len(merged)} requests from 2 workers (Locust counted {locust_count}); "
          f"p50 {summary['p50_ms']:.3f} ms (Locust's own p50: {total['50%']} ms)")
    assert len(merged) == locust_count > 100
    assert abs(summary["p50_ms"] - 0.5) < 0.001 and abs(summary["p99_ms"] - 0.5) < 0.001
    # outsider round 5: windows of the requests that ended in them (not Locust's rolling 10 s), and the
    # successful requests' p99
    assert whole.summary_ms()["ok_p99_ms"] == summary["p99_ms"]
    rows = whole.rows(None, 3.0)
    assert sum(r["count"] for r in rows) == locust_count and all(r["errors"] == 0 for r in rows)
    assert all(abs(r["p99_ms"] - 0.5) < 0.005 for r in rows), rows


def test_distributed_windows_hold_only_the_requests_that_ended_in_them(monkeypatch):
    """Outsider round 5: a distributed report's windows were Locust's rolling 10 s percentiles, so a
    window with no slow request could show a p99 over the deadline; and it had no OK-only p99."""
    from tritonstack.loadtest import locust_hdr

    worker, master = locust_hdr._State(window_s=1.0), locust_hdr._State(window_s=1.0)
    now = [1000.2]
    monkeypatch.setattr(locust_hdr.time, "time", lambda: now[0])
    for second, latency_ms, failed in ((0, 2.0, 0), (1, 900.0, 1), (2, 2.0, 0), (3, 2.0, 0)):
        now[0] = 1000.2 + second
        for _ in range(100):
            worker.on_request(latency_ms, exception=RuntimeError() if failed else None)
        data: dict = {}
        worker.on_report_to_master(data)
        master.on_worker_report(data)
    rows = master.merged.rows(1000.0, 3.0)  # the requests of second 3 ended in the drain: in the last
    assert [r["count"] for r in rows] == [100, 100, 200] and [r["errors"] for r in rows] == [0, 100, 0]
    assert [r["p99_ms"] for r in rows] == pytest.approx([2.0, 900.0, 2.0], rel=0.01)  # 1% buckets
    assert master.merged.summary_ms()["ok_p99_ms"] == pytest.approx(2.0, rel=0.01)

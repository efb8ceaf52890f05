"""Statistics: failures keep their latency and count in every percentile; windows; open-loop timing."""

import numpy as np
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

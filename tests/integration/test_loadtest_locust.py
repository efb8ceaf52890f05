"""Locust against the real server: headless local runs and distributed mode (master + 1 worker).

Locust monkey-patches with gevent, so every run happens in a subprocess (`tritonstack loadtest`).
"""

import json
import subprocess
import sys

import pytest


def _loadtest(*args, timeout=90):
    argv = [sys.executable, "-m", "tritonstack", "loadtest", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize(
    ("scenario", "extra"),
    [
        ("steady", ["--users", "2"]),
        ("open", ["--users", "2", "--rate", "100", "--arrival", "constant"]),
        ("spike", ["--users", "1", "--spike-users", "4", "--spike-at", "0.5", "--spike-s", "0.5"]),
    ],
)
def test_local_scenarios_write_reports(server, tmp_path, scenario, extra):
    out = _loadtest(scenario, "--url", server.grpc_url, "--duration", "2", "--out", str(tmp_path), *extra)
    print(out)
    data = json.loads((tmp_path / f"{scenario}.json").read_text())
    assert data["summary"]["count"] > 0 and data["summary"]["errors"] == 0
    assert data["summary"]["locust"]["requests"] == data["summary"]["count"]
    assert (tmp_path / f"{scenario}.html").read_text().count("<svg") == 5
    assert data["server_total"]["requests"] > 0


def test_failed_requests_count_in_the_percentiles(server, tmp_path):
    # A 0.1 ms deadline (the client rounds it up to 1 ms): nearly every request fails with
    # DEADLINE_EXCEEDED, and every failure still has a latency in the percentiles.
    _loadtest(
        "open",
        "--url",
        server.grpc_url,
        "--duration",
        "1.5",
        "--rate",
        "40",
        "--users",
        "1",
        "--timeout-s",
        "0.0001",
        "--out",
        str(tmp_path),
    )
    summary = json.loads((tmp_path / "open.json").read_text())["summary"]
    assert summary["count"] > 0 and summary["errors"] > summary["count"] / 2
    assert summary["p50_ms"] is not None and summary["p99_ms"] is not None
    assert summary["locust"]["failures"] == summary["errors"]
    assert summary["locust"]["requests"] == summary["count"]  # failures are requests too
    assert "InferenceTimeoutError" in summary["error_kinds"]  # by kind, in the JSON


def test_distributed_master_and_worker(server, tmp_path):
    out = _loadtest(
        "steady",
        "--url",
        server.grpc_url,
        "--duration",
        "3",
        "--users",
        "2",
        "--workers",
        "1",
        "--out",
        str(tmp_path),
        timeout=120,
    )
    print(out)
    data = json.loads((tmp_path / "steady_distributed.json").read_text())
    assert data["scenario"]["runner"] == "locust distributed" and data["scenario"]["workers"] == 1
    assert data["summary"]["count"] > 0
    assert (tmp_path / "steady_distributed_locust_stats.csv").exists()
    assert len(data["windows"]) >= 1  # latency over time, from Locust's CSV history
    assert (tmp_path / "steady_distributed.html").exists()


def test_loadtest_starts_its_own_server(repository, tmp_path):
    _loadtest("steady", "--repository", str(repository), "--duration", "1", "--users", "2",
              "--out", str(tmp_path), timeout=120)
    assert json.loads((tmp_path / "steady.json").read_text())["summary"]["count"] > 0

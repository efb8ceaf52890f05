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
    assert (tmp_path / f"{scenario}.html").read_text().count("<svg") == 6
    assert data["server_total"]["requests"] > 0
    if scenario == "steady":  # round 8: each user's last request (in flight at the end) was missing
        assert data["summary"]["count"] == data["server_total"]["requests"]
    print("generator CPU use", data["summary"]["generator_cpu_use"])  # the load generator's own CPU
    assert 0 < data["summary"]["generator_cpu_use"] <= data["summary"]["generator_cpus"] * 1.5
    assert "load generator CPU" in (tmp_path / f"{scenario}.html").read_text()


FAILING_USER = """
import json, sys
import numpy as np
from locust import task
from tritonstack.loadtest.locust_user import SteadyUser
from tritonstack.loadtest.locust_runner import run_local
from tritonstack.loadtest.scenario import Scenario

class HalfBad(SteadyUser):
    abstract = False
    sent = 0

    @task
    def predict(self):
        HalfBad.sent += 1  # every other request has a wrong shape: InvalidInputError, a failure
        self.infer({"features": np.zeros((1, 3), np.float32)} if HalfBad.sent % 2 else None)

result = run_local(Scenario(users=1, duration_s=1.5), sys.argv[1], user=HalfBad)
print(json.dumps(result.summary), flush=True)
import os
os._exit(0)  # as `tritonstack loadtest` does: gRPC under gevent can block at interpreter exit
"""


def test_failed_requests_count_in_the_percentiles(server, tmp_path):
    script = tmp_path / "half_bad.py"
    script.write_text(FAILING_USER)
    done = subprocess.run(
        [sys.executable, str(script), server.grpc_url], capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["count"] > 10 and 0 < summary["errors"] < summary["count"]
    assert summary["error_kinds"] == {"InvalidInputError": summary["errors"]}
    assert summary["locust"]["requests"] == summary["count"]  # failures are requests too ...
    assert summary["locust"]["failures"] == summary["errors"]
    assert (
        summary["p50_ms"] is not None and summary["ok_p99_ms"] is not None
    )  # ... and are in the percentiles


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
    print("generator CPU use (master + worker)", data["summary"]["generator_cpu_use"])
    assert data["summary"]["generator_processes"] == 2 and data["summary"]["generator_cpu_use"] > 0


def test_a_distributed_open_loop_reports_every_request_the_server_counted(server, tmp_path):
    """Outsider round 6: `open --workers 2` reported 1525 requests where the server counted 2321: the
    open-loop users never ended their schedule on Locust's graceful stop and were killed 2 s later
    ('Tried to stop User in an unexpected state: stopping'), their last requests lost to the report."""
    _loadtest("open", "--url", server.grpc_url, "--rate", "300", "--duration", "4", "--workers", "2",
              "--out", str(tmp_path), timeout=120)
    data = json.loads((tmp_path / "open_distributed.json").read_text())
    counted = (data["server_total"] or {}).get("requests")
    print("report", data["summary"]["count"], "server", counted)
    assert data["summary"]["count"] == counted > 900
    assert sum(w["count"] for w in data["windows"]) == data["summary"]["count"]
    assert "unexpected state" not in (tmp_path / "open_distributed_locust.log").read_text()


def test_a_sparse_locust_open_loop_sends_its_first_request_at_once(server, tmp_path):
    """Outsider round 7: `open --rate 2 --duration 0.5` scheduled nothing (each user waited one gap,
    ~0.5 s, before its first request) and exited 2 after the run. As in the asyncio engine, the
    schedule's first request leaves at offset 0."""
    _loadtest("open", "--url", server.grpc_url, "--rate", "2", "--duration", "0.5", "--users", "1",
              "--arrival", "constant", "--out", str(tmp_path))
    assert json.loads((tmp_path / "open.json").read_text())["summary"]["count"] >= 1


def test_loadtest_starts_its_own_server(repository, tmp_path):
    _loadtest(
        "steady",
        "--repository",
        str(repository),
        "--duration",
        "1",
        "--users",
        "2",
        "--out",
        str(tmp_path),
        timeout=120,
    )
    assert json.loads((tmp_path / "steady.json").read_text())["summary"]["count"] > 0


def test_real_samples_and_the_shapes_sent_are_in_the_report(server, digits_data, tmp_path):
    """--inputs samples.npz: every request carries one real row, and the report says what was sent."""
    import numpy as np

    x_test, _ = digits_data
    np.savez(tmp_path / "samples.npz", features=x_test[:50].astype(np.float64))  # cast to FP32 on the way
    out = _loadtest(
        "steady",
        "--url",
        server.grpc_url,
        "--duration",
        "1",
        "--users",
        "2",
        "--out",
        str(tmp_path / "r"),
        "--inputs",
        str(tmp_path / "samples.npz"),
        "--shape",
        "features:64",
        "--model-version",
        "1",
    )
    print(out)
    data = json.loads((tmp_path / "r" / "steady.json").read_text())
    assert data["summary"]["count"] > 0 and data["summary"]["errors"] == 0
    assert data["scenario"]["input_shapes"] == {"features": [[1, 64]]}
    assert data["scenario"]["inputs"].endswith("samples.npz") and data["scenario"]["version"] == "1"
    html = (tmp_path / "r" / "steady.html").read_text()
    assert "input_shapes" in html and "[[1, 64]]" in html


WRONG_SHAPE_PREPARED = """
import json, os, sys
import numpy as np
from tritonstack.loadtest.http_wire import http_request
from tritonstack.loadtest.locust_user import _request_bytes, user_class
from tritonstack.loadtest.locust_runner import run_local
from tritonstack.loadtest.scenario import Scenario

http_url = sys.argv[2] if len(sys.argv) > 2 else ""
scenario = Scenario(users=2, duration_s=1.0, http_url=http_url)
build = http_request if http_url else _request_bytes

class WrongShape(user_class(scenario, sys.argv[1])):
    abstract = False

    def on_start(self):
        super().on_start()  # the engine's prepared requests; then every other one has a shape the model refuses
        info = self.client.model_info(self.model)
        self._wire = [self._wire[0], build(info, self.model, "", {"features": np.zeros((1, 3), np.float32)})]

result = run_local(scenario, sys.argv[1], user=WrongShape)
print(json.dumps(result.summary), flush=True)
os._exit(0)
"""


def assert_wrong_shape_fails_alone(tmp_path, *argv) -> None:
    """Run WRONG_SHAPE_PREPARED (argv: the gRPC url [, the HTTP address]); every other prepared request is
    refused as our typed error, counted, and the others succeed."""
    script = tmp_path / "wrong_shape.py"
    script.write_text(WRONG_SHAPE_PREPARED)
    done = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    print("prepared requests refused:", summary["errors"], "of", summary["count"], summary["error_kinds"])
    assert summary["count"] > 10 and 0 < summary["errors"] < summary["count"]
    assert summary["error_kinds"] == {"InvalidInputError": summary["errors"]}
    assert abs(summary["errors"] - summary["count"] / 2) <= 2  # every other request, per user


def test_prepared_requests_fail_with_our_typed_errors(server, tmp_path):
    """The engine's users send prepared request bytes; a refused one is still our typed error, counted."""
    assert_wrong_shape_fails_alone(tmp_path, server.grpc_url)


def test_referee_says_what_a_gap_means(server, tmp_path):
    """With --referee, one line says what a gap between this engine and perf_analyzer means, given the
    load generator's own CPU use (in the report too)."""
    import numpy as np

    np.savez(tmp_path / "samples.npz", features=np.random.default_rng(0).random((20, 64), np.float32))
    argv = [sys.executable, "-m", "tritonstack", "loadtest", "steady", "--url", server.grpc_url, "--users", "4",
            "--duration", "2", "--referee", "--inputs", str(tmp_path / "samples.npz"), "--out", str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    print(done.stdout, done.stderr[-1000:])
    report = json.loads((tmp_path / "steady.json").read_text())
    if "perf_analyzer not found" in str((report["referee"] or {}).get("failed")):
        pytest.skip(f"perf_analyzer unavailable here: {report['referee']['failed']}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert not any("random data" in note for note in report["notes"])  # it sent the load's own requests
    meaning = report["referee"]["meaning"]
    assert "perf_analyzer" in meaning and f"referee: {meaning}" in " ".join(done.stdout.split())
    assert report["summary"]["generator_cpu_use"] > 0


DOWN_AT_START_USER = """
import json, sys
from tritonstack.errors import ServerUnavailableError
from tritonstack.loadtest.locust_user import SteadyUser
from tritonstack.loadtest.locust_runner import run_local
from tritonstack.loadtest.scenario import Scenario

class StartsWhileTheServerIsDown(SteadyUser):
    abstract = False

    def on_start(self):
        real, calls = self.client.model_info, []

        def down_three_times(*args, **kwargs):  # as a server down or restarting as the users start
            calls.append(1)
            if len(calls) <= 3:
                raise ServerUnavailableError("model 'digits_mlp': connection refused [UNAVAILABLE]")
            return real(*args, **kwargs)

        self.client.model_info = down_three_times
        super().on_start()

result = run_local(Scenario(users=2, duration_s=1.5), sys.argv[1], user=StartsWhileTheServerIsDown)
print(json.dumps(result.summary), flush=True)
import os
os._exit(0)
"""


def test_users_starting_while_the_server_is_down_count_failures_and_then_load(server, tmp_path):
    """Outsider round 5: with --workers, users whose start met a server down or hung died silently
    (Locust drops a user whose on_start raised): '774 requests, 0 failed' at half the offered rate, or
    'no request completed, nothing written' where the local engine counted 48 failures."""
    script = tmp_path / "down_at_start.py"
    script.write_text(DOWN_AT_START_USER)
    done = subprocess.run([sys.executable, str(script), server.grpc_url], capture_output=True, text=True,
                          timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["errors"] == 6 and summary["error_kinds"] == {"ServerUnavailableError": 6}, summary
    assert summary["count"] > 100  # then both users loaded the server

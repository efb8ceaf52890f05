"""No command hangs after an error: failing commands across the CLI, each a subprocess with a time limit.

Each must exit != 0 with one line saying what is wrong, no traceback, no report, within the limit.
The referee failure is the case that hung for 10 minutes: Locust (gevent) had run, perf_analyzer then
failed, and interpreter shutdown blocked on a gRPC channel; `TRITONSTACK_PERF_ANALYZER` points the
referee at a binary that fails as perf_analyzer did (exit 99). That case now keeps the load test's report
(exit 1), so it lives in test_loadtest_signals.py, with the same time limit.
"""

import os
import socket
import subprocess
import sys
import time

import pytest

LIMIT_S = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cases(url, repository, tmp):
    dead = f"127.0.0.1:{_free_port()}"
    load = ["loadtest", "steady", "--url", url, "--duration", "1", "--users", "1", "--out", str(tmp / "r")]
    return {
        "scenario typo": (["loadtest", "stedy", "--url", url], "use one of: steady | ramp | spike | open"),
        "unknown model": ([*load, "--model", "nope"], "model 'nope' is not served at"),
        "unknown model, asyncio": ([*load, "--model", "nope", "--engine", "asyncio"], "'nope' is not served"),
        "unknown version": ([*load, "--model-version", "7"], "version 7 is not served"),
        "shape of a fixed dim": ([*load, "--shape", "features:3"], "keep the rank and the fixed dims"),
        "unreachable server": (["loadtest", "steady", "--url", dead, "--duration", "1"], "failed to connect"),
        "referee on a ramp": ([*load[:1], "ramp", *load[2:], "--referee"], "--referee needs a fixed load"),
        "tune unknown model": (["tune", "nope", "--p99-ms", "5", "--repository", str(repository)], "'nope'"),
        "tune bad grid": (
            ["tune", "digits_mlp", "--p99-ms", "5", "--repository", str(repository), "--max-batch", "8,x"],
            "comma-separated list of integers",
        ),
        "repository unknown model": (
            ["loadtest", "steady", "--repository", str(repository), "--model", "nope"], "models in"
        ),
        "deadline below 1 ms": ([*load, "--timeout-s", "0.000001"], "millisecond resolution"),
        "nan duration": ([*load, "--duration", "nan"], "--duration nan is not a finite number"),
        "tune empty grid element": (
            ["tune", "digits_mlp", "--p99-ms", "5", "--repository", str(repository), "--max-batch", "8,,32"],
            "has an empty element",
        ),
        "bench unknown workload": (["bench", "--only", "W99"], "unknown workload"),
        "bench cores": (["bench", "--cores", "0:64"], "may use CPUs"),
        "convert missing file": (["convert", str(tmp / "missing.onnx"), "--name", "x"], "does not exist"),
        "serve missing repository": (["serve", "--repository", str(tmp / "nope")], "does not exist"),
        "versions unreachable": (
            ["versions", "list", "digits_mlp", "--url", dead, "--repository", str(repository)],
            "cannot reach",
        ),
    }


@pytest.fixture(scope="module")
def failing_perf_analyzer(tmp_path_factory):
    script = tmp_path_factory.mktemp("pa") / "perf_analyzer"
    script.write_text(
        "#!/bin/sh\necho 'Failed to obtain stable measurement within 10 measurement windows' >&2\nexit 99\n"
    )
    script.chmod(0o755)
    return script


@pytest.mark.parametrize(
    "case", list(_cases("u", "r", __import__("pathlib").Path("t"))), ids=lambda c: c.replace(" ", "_")
)
def test_failing_commands_end_fast_with_one_line(case, server, repository, tmp_path, failing_perf_analyzer):
    argv, needle = _cases(server.grpc_url, repository, tmp_path)[case]
    env = {**os.environ, "TRITONSTACK_PERF_ANALYZER": str(failing_perf_analyzer), "COLUMNS": "200"}
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tritonstack", *argv],
            capture_output=True,
            text=True,
            timeout=LIMIT_S,
            env=env,
            cwd=tmp_path,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case}: `tritonstack {' '.join(argv)}` still running after {LIMIT_S} s")
    took = time.monotonic() - started
    output = done.stdout + done.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    print(f"{case}: exit {done.returncode} in {took:.1f} s: {lines}")
    assert done.returncode != 0 and "Traceback" not in output
    assert len(lines) == 1 and needle in lines[0], output
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())  # no report

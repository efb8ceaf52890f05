"""`loadtest` and `tune` as a user runs them, against the real server, each a subprocess with a time
limit: Ctrl-C during a load keeps a partial report (exit 130); too many failed requests exit 1 with the
report written; a failing referee keeps the report; SIGTERM to `tune` mid-sweep, with its tritonserver
hung (SIGSTOP), stops that server's process group, writes nothing and exits 143."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.integration.conftest import tree_digest

LIMIT_S = 120


def _env(**extra):
    return {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1", **extra}


def _successes(url: str, model: str = "digits_mlp") -> int:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    try:
        stats = client.get_inference_statistics(model, as_json=True, client_timeout=10)
    finally:
        client.close()
    return sum(int(m["inference_stats"]["success"].get("count", 0)) for m in stats.get("model_stats", []))


def _wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout_s:.0f} s")
        time.sleep(0.2)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _interrupt_after(argv: list[str], url: str, *, requests: int, pause_s: float = 0.0):
    """Run `argv`; once the server answered `requests` more, wait `pause_s` and SIGINT it.
    (exit code, stdout, stderr, seconds from the signal to the exit)."""
    before = _successes(url)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        _wait_for(lambda: _successes(url) > before + requests or process.poll() is not None, 60, "the load")
        time.sleep(pause_s)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=LIMIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, out, err, time.monotonic() - started


@pytest.mark.parametrize("engine", ["locust", "asyncio"])
def test_ctrl_c_during_a_load_writes_a_partial_report_and_exits_130(server, tmp_path, engine):
    argv = [sys.executable, "-m", "tritonstack", "loadtest", "steady", "--url", server.grpc_url, "--users", "2",
            "--duration", "600", "--engine", engine, "--out", str(tmp_path / "r")]
    returncode, out, err, took = _interrupt_after(argv, server.grpc_url, requests=50, pause_s=1.0)
    print(f"{engine}: exit {returncode} {took:.1f} s after SIGINT; stdout {out!r}; stderr {err!r}")
    assert returncode == 130 and "Traceback" not in out + err
    assert _lines(err) == [line for line in _lines(err) if "interrupted after" in line] and len(_lines(err)) == 1
    assert "partial report written to" in err and not _lines(out)
    report = json.loads((tmp_path / "r" / "steady.json").read_text())
    assert report["interrupted_after_s"] > 0 and report["summary"]["count"] > 0
    assert any("interrupted by SIGINT" in note for note in report["notes"])
    print(f"{engine}: {report['summary']['count']} requests kept, interrupted after {report['interrupted_after_s']} s")


def test_ctrl_c_of_a_distributed_run_reports_every_request_the_server_answered(server, tmp_path):
    """Outsider round 7: Ctrl-C of `loadtest --workers` SIGTERMed the Locust master, which quits at once
    and waits 0.5 s for its workers' last reports: requests were lost to the report, against an
    overloaded server all of them. Now the master ends the run as at its duration (SIGUSR1)."""
    argv = [sys.executable, "-m", "tritonstack", "loadtest", "open", "--url", server.grpc_url, "--rate", "400",
            "--duration", "600", "--workers", "1", "--out", str(tmp_path / "r")]
    returncode, out, err, _ = _interrupt_after(argv, server.grpc_url, requests=400)
    print(f"exit {returncode}; stdout {out!r}; stderr {err!r}")
    assert returncode == 130 and "Traceback" not in out + err
    report = json.loads((tmp_path / "r" / "open_distributed.json").read_text())
    counted = (report["server_total"] or {}).get("requests")
    print("report", report["summary"]["count"], "server", counted)
    assert report["summary"]["count"] == counted > 400
    assert any("interrupted by SIGINT" in note for note in report["notes"])


def test_most_requests_failing_exits_1_with_the_report_written(tmp_path):
    """A model whose every response is an error (a deadline short enough to fail most requests is
    refused now, and 1-2 ms deadlines can crash Triton 2.51)."""
    from tests.integration.test_client_faults import _add_failing_model

    _add_failing_model(tmp_path / "repo" / "always_fails")
    done = subprocess.run(
        [sys.executable, "-m", "tritonstack", "loadtest", "steady", "--repository", str(tmp_path / "repo"),
         "--model", "always_fails", "--users", "2", "--duration", "1", "--engine", "asyncio",
         "--out", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=LIMIT_S, env=_env(),
    )
    print(f"exit {done.returncode}; stdout {done.stdout!r}; stderr {done.stderr!r}")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert len(_lines(done.stderr)) == 1 and "requests failed (" in done.stderr
    assert "over the --max-error-rate 1%" in done.stderr
    report = json.loads((tmp_path / "r" / "steady.json").read_text())
    assert report["summary"]["error_rate"] > 0.01


def test_a_failing_referee_keeps_the_load_tests_report(server, tmp_path):
    script = tmp_path / "perf_analyzer"
    script.write_text("#!/bin/sh\necho 'Failed to obtain stable measurement within 10 windows' >&2\nexit 99\n")
    script.chmod(0o755)
    done = subprocess.run(
        [sys.executable, "-m", "tritonstack", "loadtest", "steady", "--url", server.grpc_url, "--users", "1",
         "--duration", "1", "--referee", "--out", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=LIMIT_S, env=_env(TRITONSTACK_PERF_ANALYZER=str(script)),
    )
    print(f"exit {done.returncode}; stdout {done.stdout!r}; stderr {done.stderr!r}")
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    assert len(_lines(done.stderr)) == 1 and done.stderr.startswith("referee failed: perf_analyzer failed (exit 99)")
    report = json.loads((tmp_path / "r" / "steady.json").read_text())
    assert "exit 99" in report["referee"]["failed"] and report["summary"]["count"] > 0


# -- tune ------------------------------------------------------------------------------------------------
def _stat(pid: int) -> tuple[int, int, str] | None:
    """(ppid, pgid, starttime) of a live process; None once it is gone (a zombie counts as live)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[2]), fields[19]


def _descendants(root: int) -> dict[int, tuple[int, str]]:
    """{pid: (pgid, starttime)} of every process below `root`."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _stat(int(entry.name))) is not None:
            table[int(entry.name)] = found
    out, todo = {}, [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, pgid, start) in table.items():
            if ppid == parent and pid not in out:
                out[pid] = (pgid, start)
                todo.append(pid)
    return out


def _survivors(seen: dict[int, tuple[int, str]]) -> list[int]:
    """Processes of `seen` still there (same PID and start time) or still in one of its groups."""
    alive = [pid for pid, (_, start) in seen.items() if (s := _stat(pid)) is not None and s[2] == start]
    for pgid in {g for g, _ in seen.values()} - {os.getpgid(0)}:
        try:
            os.killpg(pgid, 0)
            alive.append(-pgid)
        except ProcessLookupError:
            pass
        except PermissionError:
            alive.append(-pgid)
    return alive


def test_sigterm_to_tune_stops_a_hung_server_writes_nothing_and_exits_143(repo_copy, tmp_path):
    before = tree_digest(repo_copy)
    argv = [sys.executable, "-m", "tritonstack", "tune", "digits_mlp", "--p99-ms", "50", "--repository", str(repo_copy),
            "--duration", "1", "--max-batch", "8,16,32,64", "--delay-us", "0,100", "--instances", "1",
            "--concurrency", "4", "--out", str(tmp_path / "report")]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                               cwd=tmp_path)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(process.stdout), daemon=True)
    reader.start()
    try:
        _wait_for(lambda: any("req/s" in line for line in out) or process.poll() is not None, 240, "a first point")
        assert process.poll() is None, "".join(out) + process.stderr.read()
        seen = _descendants(process.pid)
        servers = [pid for pid in seen if "tritonserver" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(
            errors="replace")]
        assert servers, f"no tritonserver below the tune process: {seen}"
        for pid in servers:
            os.kill(pid, signal.SIGSTOP)  # a hung server: it can no longer act on SIGTERM
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        err = process.communicate(timeout=LIMIT_S)[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    took = time.monotonic() - started
    reader.join(timeout=10)
    print(f"exit {process.returncode} {took:.1f} s after SIGTERM; stderr {err!r}; {len(seen)} processes below tune")
    assert process.returncode == 143 and "Traceback" not in err
    said = [line for line in _lines(err) if " WARNING " not in line]  # log lines: the forced kill, expected
    assert len(said) == 1 and "interrupted (SIGTERM)" in said[0] and "nothing written" in said[0], err
    assert _survivors(seen) == [], f"left running: {_survivors(seen)} of {seen}"
    assert tree_digest(repo_copy) == before
    shown = [line.strip() for line in out if "req/s" in line]
    print(f"points shown: {shown}")
    assert not [line for line in shown if ": 0 req/s" in line], "a point cut short was shown as a measurement"


def test_ctrl_c_during_the_referee_keeps_the_report_and_exits_130(server, tmp_path):
    """A terminal's Ctrl-C reaches the whole foreground group: perf_analyzer (here a stand-in that would
    run 60 s) fails, and the load test's report is written, marked interrupted, with no traceback."""
    marker = tmp_path / "started"
    script = tmp_path / "perf_analyzer"
    script.write_text(f"#!/bin/sh\ntouch {marker}\nsleep 60\nexit 0\n")
    script.chmod(0o755)
    argv = [sys.executable, "-m", "tritonstack", "loadtest", "steady", "--url", server.grpc_url, "--users", "2",
            "--duration", "1", "--referee", "--out", str(tmp_path / "r")]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=_env(TRITONSTACK_PERF_ANALYZER=str(script)), start_new_session=True)
    try:
        _wait_for(lambda: marker.exists() or process.poll() is not None, 60, "the referee")
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=LIMIT_S)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    print(f"exit {process.returncode}; stdout {out!r}; stderr {err!r}")
    assert process.returncode == 130 and "Traceback" not in out + err
    # the load had finished: its report is complete, the referee is what was interrupted
    assert len(_lines(err)) == 1 and "interrupted during the referee" in err
    report = json.loads((tmp_path / "r" / "steady.json").read_text())
    assert report["referee"]["failed"] and report["summary"]["count"] > 0


STRANGER = """
import sys, time
import locust
from locust.rpc import Message, zmqrpc

client = zmqrpc.Client("127.0.0.1", int(sys.argv[1]), "stranger_0")
client.send(Message("client_ready", locust.__version__, "stranger_0"))
time.sleep(20)
"""


def test_a_worker_this_run_did_not_start_stops_it_with_no_report(server, tmp_path):
    """Outsider round 8: another local user's fake worker joined `loadtest --workers 2`'s master (loopback,
    no authentication) and took users that never sent: users 8 -> 5, exit 0, no note. Now one worker
    more than started ends the run: one line, exit 2, nothing written."""
    argv = [sys.executable, "-m", "tritonstack", "loadtest", "steady", "--url", server.grpc_url, "--users", "4",
            "--duration", "30", "--workers", "1", "--out", str(tmp_path / "r")]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    stranger = None
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline and process.poll() is None:
            for entry in Path("/proc").iterdir():
                try:
                    words = (entry / "cmdline").read_bytes().decode().split("\0")
                except (OSError, UnicodeDecodeError):
                    continue
                if "--master" in words and "--master-bind-port" in words and str(tmp_path) in " ".join(words):
                    port = words[words.index("--master-bind-port") + 1]
            time.sleep(0.2)
        assert port is not None, "no Locust master found"
        time.sleep(3)  # our worker is in and the load runs
        stranger = subprocess.Popen([sys.executable, "-c", STRANGER, port])
        out, err = process.communicate(timeout=LIMIT_S)
    finally:
        for running in (process, stranger):
            if running is not None and running.poll() is None:
                running.kill()
                running.wait()
    print(f"exit {process.returncode}; stdout {out!r}; stderr {err!r}")
    assert process.returncode == 2 and "Traceback" not in out + err
    assert "a Locust worker this run did not start joined its master" in err
    assert not (tmp_path / "r" / "steady_distributed.json").exists()

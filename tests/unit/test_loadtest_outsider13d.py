"""Outside test 13d: the loadtest defects it found, each pinned down without a server."""

from tritonstack.loadtest.report import RunResult


def _result(**summary) -> RunResult:
    base = {"count": 10, "errors": 0, "throughput_rps": 5.0, "p50_ms": 1.0, "p90_ms": 1.0, "p99_ms": 1.0}
    return RunResult(name="open", scenario={}, summary={**base, **summary}, windows=[])


def test_the_console_says_when_the_open_loop_fell_behind(capsys):
    from tritonstack.loadtest.asyncio_runner import _note_unsent

    from tritonstack.cli.loadtest import _print_summary

    result = _result()
    _note_unsent(result, 989, 1.0)
    _print_summary(result, {})
    out = " ".join(capsys.readouterr().out.split())
    print(out)
    assert "note: 989 scheduled requests were never sent" in out
    assert result.summary["unsent"] == 989


def test_a_request_deadline_too_far_out_for_grpc_is_refused():
    import pytest
    from tritonstack.loadtest.scenario import Scenario

    from tritonstack.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--timeout-s 1e\+10 is over 3600 s.*use 0.001 to 3600 s"):
        Scenario(kind="steady", timeout_s=1e10)
    assert Scenario(kind="steady", timeout_s=3600).timeout_s == 3600


def test_a_second_run_into_the_same_report_is_refused_while_the_first_runs(tmp_path):
    import pytest

    from tritonstack.cli.loadtest import _reserve_report
    from tritonstack.errors import ConfigError

    with _reserve_report(tmp_path / "same", "steady"):
        with pytest.raises(ConfigError, match="another loadtest is writing a steady report there right now"):
            with _reserve_report(tmp_path / "same", "steady"):
                pass
        with _reserve_report(tmp_path / "same", "open"):  # another scenario's report: its own name
            pass
    with _reserve_report(tmp_path / "same", "steady"):  # released once the first run ends
        pass
    assert not (tmp_path / "same").exists()  # nothing written into --out


_GEVENT_REAPS = """
import subprocess, sys, time
from types import SimpleNamespace
from pathlib import Path
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
from gevent import monkey; monkey.patch_all()
import gevent
from tritonstack.loadtest.server_death import ServerDeathWatch
from tritonstack.loadtest.report import RunResult
kept = []
server = SimpleNamespace(process=child, crash_log_dir=Path("crash-logs"),
                         keep_crash_log=lambda code: kept.append(code) or Path("crash-logs/crash-x.log"))
watch = ServerDeathWatch(server)
watch.arm()
watch.load_ended()  # alive at the end of the load
child.kill()
deadline = time.monotonic() + 20
while not watch._watcher.rpid and time.monotonic() < deadline:
    gevent.sleep(0.1)  # the hub runs: libev reaps the child on SIGCHLD (Popen is not asked first)
result = RunResult(name="steady", scenario={}, summary={"count": 1}, windows=[])
watch.note(result)
print("poll", child.poll())
print("kept", kept)
print("note", result.notes[0])
"""


def test_a_server_killed_during_the_referee_is_reported_with_its_real_signal_under_gevent():
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _GEVENT_REAPS], capture_output=True, text=True, timeout=120)
    print(run.stdout, run.stderr[-2000:])
    assert run.returncode == 0
    assert "poll 0" in run.stdout  # what Popen says once gevent reaped the child: the status is lost
    assert "kept [-9]" in run.stdout  # the log is kept under the real status
    assert ("note the embedded tritonserver died after the load, during the referee (the load's figures are "
            "complete) (killed by SIGKILL); its log is kept in crash-logs/crash-x.log") in run.stdout


def test_a_server_restarted_mid_run_is_named_and_its_totals_marked_partial():
    from tritonstack.loadtest.report import server_notes
    from tritonstack.loadtest.server_stats import ServerStatsPoller

    class Client:  # answers the poller as Triton does: 100, 200, refused (dying), 30 (restarted), 60
        def __init__(self) -> None:
            self.counts = iter([100, 200, None, 30, 60])

        def get_inference_statistics(self, model, as_json, client_timeout):  # noqa: ANN001, ANN201
            n = next(self.counts)
            if n is None:
                raise ConnectionRefusedError("Connection refused")
            return {"model_stats": [{"name": "m", "version": "1", "inference_stats": {"success": {"count": n}}}]}

    poller, client = ServerStatsPoller("unused:1", "m"), Client()
    origin = __import__("time").perf_counter()
    for _ in range(5):
        poller._poll(client)
    summary = {"errors": 7}
    notes = server_notes(poller, summary, origin_s=origin)
    print(notes, poller.total())
    assert len(poller.restarts) == 1 and notes[0].startswith("the server restarted at ~")
    assert "statistics started again from zero" in notes[0] and "partial" in notes[0]
    assert poller.total()["requests"] == 100 + 30 + 30  # each server's segment added up, none negative
    assert summary["server_restarted_s"]


def test_ctrl_c_during_the_referee_keeps_the_complete_load_and_says_the_referee_was_cut(tmp_path, capsys):
    from tritonstack.loadtest.stats import Recorder

    from tritonstack.cli.loadtest import _finish

    recorder = Recorder()
    for i in range(100):
        recorder.add(scheduled_s=10.0 + i * 0.01, start_s=10.0 + i * 0.01, end_s=10.001 + i * 0.01, ok=True)
    result = RunResult.build(name="steady", scenario={"kind": "steady", "duration_s": 1.0},
                             samples=recorder.frame(), origin_s=10.0, duration_s=1.0)
    result.mark_referee_interrupted("SIGINT")
    code = _finish(result, tmp_path, max_error_rate_pct=1, interrupted_code=130)
    captured = capsys.readouterr()
    print(result.notes, captured.err)
    assert code == 130 and result.interrupted_after_s is None
    assert "the load's figures are complete" in result.notes[-1] and "partial run" not in " ".join(result.notes)
    assert "interrupted during the referee; the load's report is complete" in " ".join(captured.err.split())
    assert (tmp_path / "steady.json").is_file()


def test_a_distributed_run_times_the_server_from_when_the_users_were_sent_out(tmp_path):
    import time

    from tritonstack.loadtest.locust_runner import _distributed_result, load_start_unix_s
    from tritonstack.loadtest.scenario import Scenario
    from tritonstack.loadtest.server_stats import ServerStatsPoller, Snapshot

    (tmp_path / "x_locust.log").write_text(
        "[2026-12-02 07:56:21,595] vm/INFO/root: Waiting for workers to be ready, 0 of 2 connected\n"
        "[2026-12-02 07:56:22,598] vm/INFO/locust.runners: Sending spawn jobs of 8 users at 100.00 spawn rate\n")
    start = load_start_unix_s(tmp_path / "x_locust.log")
    assert start == time.mktime(time.strptime("2026-12-02 07:56:22", "%Y-%m-%d %H:%M:%S")) + 0.598
    assert load_start_unix_s(tmp_path / "missing.log") is None
    # Locust measured 7 s; the master exited 3 s after the load (at 110); the server answered until 101.5
    (tmp_path / "x_locust_stats.csv").write_text(
        "Name,Request Count,Failure Count,Requests/s\nAggregated,7000,5000,1000\n")
    (tmp_path / "x_locust_stats_history.csv").write_text("Timestamp,Name,Total Request Count\n")
    poller = ServerStatsPoller("127.0.0.1:1", "m")
    poller.snapshots, poller.down_since_s, poller.error = [Snapshot(100.0), Snapshot(101.5)], 102.0, "gone"
    result = _distributed_result(Scenario(), "127.0.0.1:1", 2, tmp_path / "x_locust", "x", poller,
                                 (99.0, 110.0), load_start_s=100.0)
    print(result.notes[0])
    assert result.notes[0].startswith("the server stopped answering 2.0 s into the run (last answer at 1.5 s")


def test_inputs_that_is_a_folder_is_called_a_folder(tmp_path):
    import pytest
    from tritonstack.loadtest.scenario import Scenario

    from tritonstack.cli.loadtest import check_options
    from tritonstack.errors import ConfigError

    with pytest.raises(ConfigError, match=f"--inputs {tmp_path} is a folder; pass an .npz file"):
        check_options(Scenario(), url="127.0.0.1:8001", repository=None, engine="locust", referee=False,
                      inputs=tmp_path)


def test_distributed_windows_count_from_when_the_users_were_sent_out():
    from tritonstack.loadtest.locust_runner import _windows_from_history

    def row(t: int, count: int) -> dict[str, str]:
        return {"Name": "Aggregated", "Timestamp": str(t), "Total Request Count": str(count),
                "Total Failure Count": "0", "50%": "1", "90%": "1", "99%": "1"}

    # master up at 181, users sent out at 182.5, first worker report counted at 185 (2.5 s of load)
    history = [row(181, 0), row(182, 0), row(183, 0), row(185, 2500), row(186, 3500)]
    windows = _windows_from_history(history, start_unix_s=182.5)
    print(windows)
    assert windows[0]["t_s"] == 2.5 and windows[0]["throughput_rps"] == 1000.0
    assert windows[1]["t_s"] == 3.5 and windows[1]["throughput_rps"] == 1000.0
    assert _windows_from_history(history)[0]["throughput_rps"] == 625.0  # without the start: from 181


def test_the_report_lock_lives_in_a_folder_of_this_user_closed_to_others(tmp_path, monkeypatch):
    """Outsider round 6: the lock was /tmp/tritonstack-loadtest-<hash of --out>.lock, a stable name that
    another local user could create first (blocking the run with a misleading message) or plant as a
    symlink (root then created the file it pointed to)."""
    import os
    import tempfile

    import pytest

    from tritonstack.cli.loadtest import _reserve_report
    from tritonstack.errors import ConfigError

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with _reserve_report(tmp_path / "out", "steady"):
        pass
    folder = tmp_path / f"tritonstack-{os.getuid()}"
    assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700
    lock = next(folder.iterdir())
    lock.unlink()
    lock.symlink_to(tmp_path / "victim")  # planted by someone who could write there: not followed
    with pytest.raises(ConfigError, match="cannot open the lock file"):
        with _reserve_report(tmp_path / "out", "steady"):
            pass
    assert not (tmp_path / "victim").exists()
    folder.chmod(0o777)  # open to others (or another user's): ~/.cache/tritonstack instead (round 8)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with _reserve_report(tmp_path / "out", "steady"):
        pass
    home = tmp_path / "home" / ".cache" / "tritonstack"
    assert home.stat().st_mode & 0o777 == 0o700 and any(home.iterdir())
    home.chmod(0o777)
    with pytest.raises(ConfigError, match="are not folders of this user closed to others"):
        with _reserve_report(tmp_path / "out", "steady"):
            pass


def test_asyncio_engine_with_workers_is_refused_and_its_busy_note_names_locust():
    """Round 8: `--engine asyncio --workers 2` silently ran Locust; the asyncio engine's 'generator
    busy' note advised '--workers', which that engine does not take."""
    import pytest
    from tritonstack.loadtest.report import schedule_note
    from tritonstack.loadtest.scenario import Scenario

    from tritonstack.cli.loadtest import check_options
    from tritonstack.errors import ConfigError

    with pytest.raises(ConfigError, match="--workers 2 runs Locust worker processes; drop --engine asyncio"):
        check_options(Scenario(), url="127.0.0.1:8001", repository=None, engine="asyncio", referee=False,
                      inputs=None, workers=2)
    busy = {"max_schedule_delay_ms": 3000.0, "duration_s": 3.0, "count": 10, "generator_cpu_use": 0.97,
            "generator_cpus": 1, "generator_processes": 1}
    scenario = {"kind": "steady", "duration_s": 3.0, "users": 8}
    assert "use --engine locust --workers N" in schedule_note(busy, {**scenario, "runner": "asyncio generator"})
    assert "or add --workers" in schedule_note(busy, {**scenario, "runner": "locust local"})

"""Issue 13 follow-up (an outside tester's first hour with `tritonstack loadtest`): a dead server named as
such, asyncio's errors broken down by status, --out never overwritten silently, every interrupt exit
130, float64 inputs cast with a note, no spawn-rate warning of ours, no pointer at a log that is not
there, and an interrupted report's durations from the measured span. No server needed here."""

import asyncio
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from tritonstack.client.model import ModelInfo
from tritonstack.loadtest.generator import closed_loop, open_loop
from tritonstack.loadtest.report import RunResult, render_html, server_notes, write_report
from tritonstack.loadtest.server_stats import ServerStatsPoller, Snapshot
from tritonstack.loadtest.stats import Recorder, summarize

from tests.unit.test_loadtest_guards import _cli, _one_line
from tritonstack.errors import ConfigError, LoadTestError

MLP = ModelInfo.from_config(
    {
        "name": "mlp",
        "max_batch_size": 8,
        "input": [{"name": "features", "data_type": "TYPE_FP32", "dims": ["4"]}],
        "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": ["2"]}],
    }
)


def _samples(ok_ends, failed_ends):
    recorder = Recorder()
    for end in ok_ends:
        recorder.add(scheduled_s=end - 0.001, start_s=end - 0.001, end_s=end, ok=True)
    for end in failed_ends:
        recorder.add(scheduled_s=end - 0.001, start_s=end - 0.001, end_s=end, ok=False, error="X")
    return recorder.frame()


# -- 1: a server that stops answering is named, at its second, and the failures are put on it ---------
def test_a_server_that_went_away_is_named_with_its_second_and_the_failures_after_it():
    poller = ServerStatsPoller("127.0.0.1:1", "m")
    poller.snapshots = [Snapshot(100.0), Snapshot(101.0), Snapshot(102.0)]
    poller.down_since_s, poller.error = 102.5, "statistics unavailable: failed to connect"
    samples = _samples(ok_ends=[100.5, 101.5], failed_ends=[100.8, 102.6, 103.0, 103.5])
    summary = summarize(samples, duration_s=4.0)
    notes = server_notes(poller, summary, origin_s=100.0, samples=samples)
    print(notes)
    assert len(notes) == 1 and "the server stopped answering 2.5 s into the run" in notes[0]
    assert "last answer at 2.0 s" in notes[0] and "3 of the 4 failed requests" in notes[0]
    assert summary["server_stopped_answering_s"] == 2.5 and summary["failures_after_server_stopped"] == 3


def test_a_restart_the_statistics_missed_is_named_from_the_unreachable_failures():
    """Outsider round 5: a fresh server killed and restarted by `serve` right after the load started
    (its new counters passed the old ones by the next poll) got no note: its failures read as the model's."""
    poller = ServerStatsPoller("127.0.0.1:1", "m")
    poller.snapshots = [Snapshot(100.0), Snapshot(101.0), Snapshot(102.0)]
    recorder = Recorder()
    for end in (100.2, 100.9, 101.5):
        recorder.add(scheduled_s=end - 0.001, start_s=end - 0.001, end_s=end, ok=True)
    for end in (100.4, 100.5, 100.6):
        recorder.add(scheduled_s=end - 0.001, start_s=end - 0.001, end_s=end, ok=False,
                     error="ServerUnavailableError")
    recorder.add(scheduled_s=100.7, start_s=100.7, end_s=100.71, ok=False, error="InvalidInputError")
    samples = recorder.frame()
    summary = summarize(samples, duration_s=2.0)
    notes = server_notes(poller, summary, origin_s=100.0, samples=samples)
    assert len(notes) == 1 and notes[0].startswith("3 requests failed because the server could not be reached")
    assert "between 0.4 and 0.6 s" in notes[0] and "came back" in notes[0]
    assert summary["server_unreachable_s"] == [0.4, 0.6]
    # no success after them: the server did not come back, nothing is said of a restart
    samples = _samples(ok_ends=[100.2], failed_ends=[])
    assert server_notes(poller, summarize(samples, duration_s=2.0), origin_s=100.0, samples=samples) == []


def test_load_generator_channels_reconnect_within_100_ms():
    """gRPC's first reconnect backoff is 1 s: a 0.2 s restart under load failed requests for 1.1 s
    (3,064 of them at 8 users); with 100 ms, 0.3 s (529)."""
    from tritonstack.client.core import wire_channel_options

    options = dict(wire_channel_options())
    assert options["grpc.initial_reconnect_backoff_ms"] == options["grpc.min_reconnect_backoff_ms"] == 100
    assert options["grpc.max_send_message_length"] == -1


def test_a_server_that_never_answered_is_not_said_to_have_stopped(tmp_path):
    with ServerStatsPoller("127.0.0.1:1", "m", interval_s=0.1) as poller:
        pass
    notes = server_notes(poller, {"errors": 0}, origin_s=0.0)
    assert not poller.stopped_answering and notes == [poller.error] and "statistics unavailable" in notes[0]


def test_our_embedded_server_dying_gives_its_exit_status_and_log_folder(tmp_path):
    from tritonstack.loadtest.server_death import ServerDeathWatch

    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    process.kill()
    process.wait(timeout=30)
    result = RunResult(name="steady", scenario={}, summary={"count": 0}, windows=[], notes=["other"])
    watch = ServerDeathWatch(SimpleNamespace(process=process, crash_log_dir=tmp_path / "crash-logs"))
    watch.load_ended()
    watch.note(result)
    print(result.notes[0])
    assert result.notes[0] == (
        f"the embedded tritonserver died during the load (killed by SIGKILL); its log is kept in "
        f"{tmp_path / 'crash-logs'}"
    )
    assert result.summary["server_exit_status"] == -9
    ServerDeathWatch(None).note(result)  # --url: not ours, nothing to say
    assert len(result.notes) == 2


# -- 2: asyncio's failures by gRPC status, as Locust's ----------------------------------------------
def test_asyncio_failures_are_broken_down_by_status_with_the_first_message(capsys):
    import grpc
    from grpc.aio import AioRpcError, Metadata
    from tritonstack.loadtest.asyncio_runner import _noting_errors

    async def send(i: int) -> None:
        code = grpc.StatusCode.UNAVAILABLE if i % 2 else grpc.StatusCode.INVALID_ARGUMENT
        raise AioRpcError(code, Metadata(), Metadata(), details=f"failure {i}")

    recorder = Recorder()
    asyncio.run(closed_loop(_noting_errors(send, recorder, "mlp"), concurrency=1, duration_s=30,
                            max_requests=10, recorder=recorder))
    summary = summarize(recorder.frame())
    rows = {r["status"]: r for r in summary["error_breakdown"]}
    print(summary["error_breakdown"])
    assert set(rows) == {"UNAVAILABLE", "INVALID_ARGUMENT"} and sum(r["count"] for r in rows.values()) == 10
    assert rows["INVALID_ARGUMENT"]["first_message"] == "model 'mlp': failure 0 [INVALID_ARGUMENT]"
    assert rows["UNAVAILABLE"]["error"].endswith("Error") and "AioRpcError" not in str(rows)

    result = RunResult(name="steady", scenario={"sent": "features (1, 4) FP32"}, summary=summary, windows=[])
    from tritonstack.cli.loadtest import _print_summary

    _print_summary(result, {})
    out = " ".join(capsys.readouterr().out.split())
    assert "5 x InvalidInputError [INVALID_ARGUMENT]: model 'mlp': failure 0" in out
    assert "sent: features (1, 4) FP32" in out
    assert "Failed requests by kind" in render_html(result) and "failure 1 [UNAVAILABLE]" in render_html(result)


def test_an_answer_read_after_the_deadline_fails_as_deadline_exceeded():
    """Outsider round 3: a 16 MB answer over HTTP with --timeout-s 0.1 counted OK at 141 ms (p99): the
    deadline timer fires only when the loop gets to it. Both engines now fail such an answer."""
    import time

    from tritonstack.loadtest.asyncio_runner import _noting_errors
    from tritonstack.loadtest.stats import late_answer

    async def send(i: int) -> int:
        time.sleep(0.03 if i % 2 else 0.0)  # blocks the loop, as reading a big buffered answer does
        return i

    def late(elapsed_s: float) -> Exception | None:
        return late_answer(elapsed_s, 0.02, "mlp")

    recorder = Recorder()
    asyncio.run(closed_loop(_noting_errors(send, recorder, "mlp"), concurrency=1, duration_s=30,
                            max_requests=10, recorder=recorder, late=late))
    summary = summarize(recorder.frame())
    assert summary["errors"] == 5 and summary["error_kinds"] == {"InferenceTimeoutError": 5}, summary
    assert "past the 20 ms deadline (--timeout-s)" in summary["error_breakdown"][0]["first_message"]
    assert late_answer(0.5, 1.0, "m") is None and late_answer(0.5, None, "m") is None
    assert type(late_answer(1.5, 1.0, "m")).__name__ == "InferenceTimeoutError"
    assert "answered 2.001 ms after it was due, past the 2 ms deadline" in str(late_answer(0.002001, 0.002, "m"))
    assert summary["error_breakdown"][0]["status"] == "DEADLINE_EXCEEDED"  # read from our message
    assert summary["ok_p99_ms"] <= 20.0


def test_open_loop_deadlines_count_from_the_scheduled_instant():
    """Outsider round 4: an open loop whose generator fell behind (paused 1.5 s, --timeout-s 0.3) counted
    its requests OK with p99 1443 ms: the latency counts from the schedule, the deadline did from the send."""
    import time

    from tritonstack.loadtest.stats import late_answer

    async def send(i: int) -> int:
        if i == 0:
            time.sleep(0.1)  # the loop stalls 0.1 s: requests 1-3 are sent 70-90 ms behind their schedule
        return i

    recorder = Recorder()
    asyncio.run(open_loop(send, offsets=[0.0, 0.01, 0.02, 0.03, 0.2], recorder=recorder, max_in_flight=8,
                          late=lambda elapsed_s: late_answer(elapsed_s, 0.05, "mlp")))
    summary = summarize(recorder.frame())
    assert (summary["count"], summary["errors"]) == (5, 4), summary  # 0-3 answered > 50 ms after due; 4 not
    assert summary["error_kinds"] == {"InferenceTimeoutError": 4} and summary["ok_p99_ms"] <= 50.0


def test_the_status_of_a_typed_error_without_a_grpc_cause_is_read_from_its_message():
    from tritonstack.client.errors import error_for_status
    from tritonstack.loadtest.stats import error_status

    assert error_status(error_for_status("UNAVAILABLE", "HTTP 127.0.0.1:1: refused", model="m")) == "UNAVAILABLE"
    assert error_status(ValueError("shape [2, 3]")) == "" and error_status(ValueError("x [a]")) == ""


def test_locusts_failures_csv_becomes_the_same_breakdown(tmp_path):
    from tritonstack.loadtest.locust_runner import _failures, _summary_from_locust

    path = tmp_path / "f.csv"
    path.write_text('Method,Name,Error,Occurrences\ngrpc,m,"ServerUnavailableError(""model \'m\': '
                    'gone [UNAVAILABLE]"")",7\n')
    summary = _summary_from_locust({"Request Count": "9", "Failure Count": "7"}, _failures(path))
    assert summary["error_kinds"] == {"ServerUnavailableError": 7}
    assert summary["error_breakdown"][0]["status"] == "UNAVAILABLE"


# -- 3: --out is never overwritten silently ---------------------------------------------------------
def test_a_second_run_into_the_same_out_is_refused_naming_overwrite(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "steady.json").write_text("{}")
    done = _cli("loadtest", "steady", "--url", "127.0.0.1:1", "--out", "r", cwd=tmp_path)
    line = _one_line(done)
    print(line)
    assert done.returncode == 2 and "already holds a steady report" in line and "--overwrite" in line
    assert (tmp_path / "r" / "steady.json").read_text() == "{}"
    again = _cli("loadtest", "steady", "--url", "127.0.0.1:1", "--out", "r", "--overwrite", cwd=tmp_path)
    assert "already holds" not in again.stdout + again.stderr  # past that check: no server on port 1
    help_text = " ".join(_cli("loadtest", "--help", cwd=tmp_path).stdout.split())
    assert "--overwrite" in help_text and "refused" in help_text


# -- 4: an interrupt at any moment is exit 130, one line ----------------------------------------------
def test_distributed_stopped_before_locust_wrote_its_csv_is_an_empty_result(tmp_path):
    from tritonstack.loadtest.locust_runner import _distributed_result
    from tritonstack.loadtest.scenario import Scenario

    poller = ServerStatsPoller("127.0.0.1:1", "m")
    args = (Scenario(), "127.0.0.1:1", 2, tmp_path / "x_locust", "x", poller, (0.0, 2.0))
    result = _distributed_result(*args, stopped=True)
    assert result.summary["count"] == 0 and str(tmp_path / "x_locust.log") in result.notes[0]
    with pytest.raises(LoadTestError, match="locust wrote no"):
        _distributed_result(*args, stopped=False)


@pytest.mark.parametrize(("how", "code", "line"), [("int", 130, "interrupted"), ("term", 143, "terminated")])
def test_an_interrupt_outside_the_load_after_gevent_is_one_line(tmp_path, how, code, line):
    script = (
        "import gevent, signal, os\n"
        "from tritonstack.cli import _raise_on_sigterm\n"
        "from tritonstack.cli.loadtest import _exit_hard_after_gevent\n"
        "signal.signal(signal.SIGTERM, _raise_on_sigterm)\n"
        "with _exit_hard_after_gevent():\n"
        f"    os.kill(os.getpid(), signal.{'SIGINT' if how == 'int' else 'SIGTERM'})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    print(done.returncode, done.stderr)
    assert done.returncode == code and done.stderr.strip() == line and not done.stdout


# -- 5: float64 for FP32 is said once; values beyond FP32 are refused ---------------------------------
def test_float64_samples_for_an_fp32_input_are_cast_with_one_note(tmp_path):
    from tritonstack.loadtest.inputs import cast_notes, request_rows, sent_inputs_text

    path = tmp_path / "s.npz"
    np.savez(path, features=np.random.default_rng(0).random((5, 4)))
    rows = request_rows(MLP, count=8, samples_path=path)
    assert rows[0]["features"].dtype == np.float32
    notes = cast_notes(path, rows)
    print(notes, sent_inputs_text(rows))
    assert notes == [f"--inputs {path}: input 'features' holds float64, sent as FP32 "
                     "(cast; every value within FP32 range)"]
    assert sent_inputs_text(rows) == "features (1, 4) FP32"
    np.savez(path, features=np.full((5, 4), 1e300))
    with pytest.raises(ConfigError, match=r"float64 values that do not fit in FP32 \(e.g. 1e\+300\)"):
        request_rows(MLP, count=8, samples_path=path)
    np.savez(path, features=np.ones((5, 4), dtype=np.float32))
    assert cast_notes(path, request_rows(MLP, count=8, samples_path=path)) == []


def test_samples_with_nan_or_inf_are_sent_with_a_note(tmp_path):
    """Outsider round 10: 2751 all-NaN requests ran with no word (0 failed: the server answers them)."""
    from tritonstack.loadtest.inputs import nonfinite_notes

    path = tmp_path / "s.npz"
    features = np.ones((5, 4), dtype=np.float32)
    np.savez(path, features=features)
    assert nonfinite_notes(path) == []
    features[1, 2], features[3, 0] = np.nan, np.inf
    np.savez(path, features=features)
    assert nonfinite_notes(path) == [f"--inputs {path}: input 'features' has NaN or inf in 2 of 5 rows, sent as "
                                     "they are (the server answers them; `TritonClient` would refuse them)"]


# -- 6: our spike does not make Locust warn about its spawn rate --------------------------------------
def test_the_spike_asks_locust_for_no_more_than_100_users_per_second():
    script = (
        "from tritonstack.loadtest.shapes import Spike, SPIKE_SPAWN_RATE\n"
        "from tritonstack.loadtest.scenario import Scenario, Kind\n"
        "s = Spike(Scenario(kind=Kind.SPIKE, users=2, spike_users=8, spike_at_s=0, spike_s=5, duration_s=9))\n"
        "print(s.tick()[1], SPIKE_SPAWN_RATE)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    rate, _ = map(float, done.stdout.split())
    assert rate <= 100, "Locust warns 'spawn rate is very high (>100)' on every tick above 100"


# -- 7: never "see the log above" when no log was shown ------------------------------------------------
def test_a_run_with_no_request_says_why_instead_of_pointing_at_nothing(tmp_path):
    from tritonstack.cli.loadtest import _finish

    empty = RunResult(name="steady", scenario={"duration_s": 5}, summary={"count": 0}, windows=[])
    with pytest.raises(LoadTestError) as caught:
        _finish(empty, tmp_path, max_error_rate_pct=1, interrupted_code=0)
    assert "log above" not in str(caught.value) and "none ended within --duration 5 s" in str(caught.value)
    empty.notes.append(f"Locust's log: {tmp_path / 'x_locust.log'}")
    with pytest.raises(LoadTestError, match="x_locust.log"):
        _finish(empty, tmp_path, max_error_rate_pct=1, interrupted_code=0)
    assert list(tmp_path.iterdir()) == []


# -- 8: an interrupted report's durations are the measured ones ---------------------------------------
def test_an_interrupted_run_states_the_measured_span_not_the_planned_one(tmp_path):
    samples = _samples(ok_ends=[10.5 + i * 0.01 for i in range(400)], failed_ends=[])
    result = RunResult.build(name="steady", scenario={"kind": "steady", "duration_s": 30.0}, samples=samples,
                             origin_s=10.0, duration_s=5.0)
    result.mark_interrupted(6.3, "SIGINT")  # the signal came 6.3 s after the handler was set
    data = write_report(result, tmp_path)["json"].read_text()
    print(result.notes[-1])
    assert result.interrupted_after_s == 5.0 and "after 5.0 s of load" in result.notes[-1]
    assert result.summary["throughput_rps"] == pytest.approx(400 / 5.0) and '"interrupted_after_s": 5.0' in data
    assert "<th>measured duration (s)</th><td>5.000</td>" in render_html(result)


def test_a_distributed_runs_duration_and_throughput_are_locusts_measured_span():
    from tritonstack.loadtest.locust_runner import _measured_s

    summary = {"count": 946, "errors": 0, "throughput_rps": 518.3}
    assert _measured_s(summary, (100.0, 105.6)) == pytest.approx(946 / 518.3, abs=1e-3)
    assert summary["duration_s"] == pytest.approx(1.825, abs=1e-3)
    assert summary["throughput_rps"] == pytest.approx(946 / summary["duration_s"])
    long = {"count": 100, "errors": 0, "throughput_rps": 1.0}  # never beyond the time it ran
    assert _measured_s(long, (0.0, 5.0)) == 5.0



def test_the_stats_poller_does_not_ask_a_server_that_stopped_answering_once_more(monkeypatch):
    """Outsider round 3: Ctrl-C against a SIGSTOPped server took ~11 s (a 5 s poll, then a 5 s last
    poll). Polls now give up after POLL_TIMEOUT_S and the last one is skipped after a failed one."""
    import threading

    import tritonclient.grpc as grpcclient
    from tritonstack.loadtest.server_stats import POLL_TIMEOUT_S, ServerStatsPoller

    calls = []

    class Hung:
        def get_inference_statistics(self, model, as_json, client_timeout):  # noqa: ANN001, ANN201
            calls.append(client_timeout)
            raise TimeoutError("[StatusCode.DEADLINE_EXCEEDED] Deadline Exceeded")

        def close(self) -> None:
            pass

    monkeypatch.setattr(grpcclient, "InferenceServerClient", lambda url: Hung())  # noqa: ARG005
    poller = ServerStatsPoller("127.0.0.1:1", "m", interval_s=30)
    thread = threading.Thread(target=poller._loop)
    thread.start()
    threading.Event().wait(0.2)  # the first poll failed; the loop waits its 30 s interval
    poller._stop.set()
    thread.join(5)
    assert not thread.is_alive() and poller.down_since_s is not None
    assert calls == [POLL_TIMEOUT_S] and POLL_TIMEOUT_S <= 2.0  # no last poll of a server that hung
    assert poller.error == "statistics unavailable: [DEADLINE_EXCEEDED] Deadline Exceeded"


def test_a_hung_server_without_failures_is_not_blamed_for_zero_of_zero():
    """Outsider round 4: "0 of the 0 failed requests ended after its last answer" and a raw
    "[StatusCode.DEADLINE_EXCEEDED]" in the note of a server that hung."""
    poller = ServerStatsPoller("127.0.0.1:1", "m")
    poller.snapshots = [Snapshot(t_s=1.0)]
    poller.down_since_s, poller.error = 2.0, "statistics unavailable: [DEADLINE_EXCEEDED] Deadline Exceeded"
    summary = {"errors": 0}
    recorder = Recorder()
    recorder.add(scheduled_s=0.5, start_s=0.5, end_s=0.6, ok=True)
    note = server_notes(poller, summary, origin_s=0.0, samples=recorder.frame())[0]
    assert "0 of the 0" not in note and "no request failed" in note and "StatusCode." not in note

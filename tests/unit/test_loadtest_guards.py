"""What a load test and `tune` refuse or keep, without a server: a stop signal ends the load and keeps
its samples, rates must be finite, inputs within the model's maxima, the referee's failure is kept in
the report, too many failed requests fail the command, grid values out of range are refused."""

import asyncio
import math
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
from tritonstack.loadtest.generator import closed_loop, open_loop
from tritonstack.loadtest.interrupt import StopOnSignals
from tritonstack.loadtest.preflight import check_maxima, in_context, max_input_dims
from tritonstack.loadtest.report import RunResult, write_report
from tritonstack.loadtest.scenario import Kind, Scenario
from tritonstack.loadtest.stats import Recorder

from tritonstack.cli.loadtest import _referee, _verdict
from tritonstack.errors import ConfigError

LIMIT_S = 60


def _cli(*argv, cwd):
    return subprocess.run(
        [sys.executable, "-m", "tritonstack", *argv],
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
    )


def _one_line(done):
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stdout + done.stderr
    return lines[0]


# -- a: a stop signal ends the load early, samples kept ----------------------------------------------
def test_a_signal_sets_the_flag_instead_of_raising_and_the_old_handler_comes_back():
    before = signal.getsignal(signal.SIGINT)
    with StopOnSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 5
        while not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert stop.is_set() and stop.exit_code == 130 and stop.after_s is not None
    assert signal.getsignal(signal.SIGINT) is before


def test_a_signal_ignored_since_the_start_stays_ignored_during_the_load():
    """Round 8: `loadtest ... &` in a script (SIGINT ignored from the start, as the shell sets it) ignored
    a SIGINT before the load and stopped on one during it. Now it is ignored throughout, as by `serve`."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopOnSignals() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
        assert not stop.is_set() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_second_signal_is_counted_and_hurries_a_distributed_stop():
    """Ctrl-C of `loadtest --workers` waits for the workers' requests in flight (13.2 s against a hung
    server); a second Ctrl-C ends that wait: the Locust master is SIGTERMed at once."""
    from tritonstack.loadtest.locust_runner import _wait_master

    with StopOnSignals() as stop:
        for _ in range(2):
            os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 5
        while not stop.repeated() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert stop.repeated() and stop.exit_code == 130
    deaf = "import signal, time; signal.signal(signal.SIGUSR1, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
    master = subprocess.Popen([sys.executable, "-c", deaf], stdout=subprocess.PIPE)
    try:
        master.stdout.readline()  # its handler is in place
        begin = time.monotonic()
        _wait_master(master, 60, lambda: True, stop_wait_s=30, hurry=lambda: True)
        assert master.returncode == -signal.SIGTERM and time.monotonic() - begin < 5
    finally:
        master.kill()
        master.wait()


@pytest.mark.parametrize("loop", ["closed", "open"])
def test_the_generator_stops_early_and_keeps_what_it_measured(loop):
    """A 60 s run told to stop at 0.3 s ends within a few seconds with its samples."""
    recorder, begin = Recorder(), time.perf_counter()

    async def send(i: int) -> None:
        await asyncio.sleep(0.005)

    def should_stop() -> bool:
        return time.perf_counter() - begin > 0.3

    if loop == "closed":
        run = closed_loop(send, concurrency=4, duration_s=60, recorder=recorder, should_stop=should_stop)
    else:
        offsets = np.arange(0, 60, 0.01)
        run = open_loop(send, offsets=offsets, recorder=recorder, should_stop=should_stop)
    took = asyncio.run(run).duration_s
    print(f"{loop} loop: stopped after {took:.2f} s of 60 with {len(recorder)} samples")
    assert took < 10 and len(recorder) > 0


def test_a_cancelled_run_is_not_swallowed_as_a_failed_request():
    """asyncio.run's Ctrl-C cancels the main task; a transport that turns the cancellation into its
    own error (as gRPC can) must not make the run go on to its end as if nothing happened."""

    async def send(i: int) -> None:
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            raise RuntimeError("call cancelled") from None

    async def main() -> str:
        task = asyncio.create_task(closed_loop(send, concurrency=2, duration_s=30, recorder=Recorder()))
        await asyncio.sleep(0.2)
        task.cancel()
        try:
            await asyncio.wait_for(task, timeout=10)
        except asyncio.CancelledError:
            return "cancelled"
        return "ran on"

    assert asyncio.run(main()) == "cancelled"


def test_an_interrupted_report_says_so():
    result = RunResult(name="steady", scenario={}, summary={"count": 3}, windows=[])
    result.mark_interrupted(2.04, "SIGINT")
    assert result.interrupted_after_s == 2.0 and "interrupted by SIGINT after 2.0 s" in result.notes[0]


# -- b: too many failed requests -------------------------------------------------------------------
def test_too_many_failures_fail_the_command_in_one_line(capsys):
    failing = RunResult(name="s", scenario={}, summary={"count": 200, "errors": 150, "error_rate": 0.75}, windows=[])
    assert _verdict(failing, 1.0) == 1
    line = capsys.readouterr().err.strip()
    print(line)
    assert line == "150 of 200 requests failed (75.0%), over the --max-error-rate 1%"
    fine = RunResult(name="s", scenario={}, summary={"count": 1000, "errors": 5, "error_rate": 0.005}, windows=[])
    assert _verdict(fine, 1.0) == 0 and capsys.readouterr().err == ""
    assert _verdict(failing, 80) == 0


# -- c: inputs bigger than the model allows --------------------------------------------------------
def _info(max_batch_size=8, dims=(-1,)):
    return SimpleNamespace(
        name="enc",
        batched=max_batch_size > 0,
        max_batch_size=max_batch_size,
        inputs={"input_ids": SimpleNamespace(dims=dims, datatype="INT64")},
    )


def test_dims_beyond_the_configs_maxima_are_refused_before_any_load():
    config = {"parameters": {"max_input_dims": {"string_value": '{"input_ids": [256]}'}}}
    limits = max_input_dims(config)
    assert limits == {"input_ids": [256]} and max_input_dims({}) == {}
    scenario = Scenario(model="enc", shapes={"input_ids": (300,)})
    rows = [{"input_ids": np.zeros((1, 300), np.int64)}]
    with pytest.raises(ConfigError) as caught:
        check_maxima(_info(), rows, limits, scenario)
    print(caught.value)
    assert "input 'input_ids' would be sent with dims (300,) (from --shape input_ids); model 'enc' accepts at most (256,)" in str(caught.value)
    check_maxima(_info(), [{"input_ids": np.zeros((1, 256), np.int64)}], limits, scenario)  # at the limit
    with pytest.raises(ConfigError, match="exceed max_batch_size 2"):
        check_maxima(_info(max_batch_size=2), [{"input_ids": np.zeros((3, 8), np.int64)}], {}, scenario)


# -- d: the referee fails, the report stays ---------------------------------------------------------
def test_a_failing_referee_is_recorded_and_the_report_is_written(tmp_path, monkeypatch, capsys):
    script = tmp_path / "perf_analyzer"
    script.write_text("#!/bin/sh\necho 'Failed to obtain stable measurement' >&2\nexit 99\n")
    script.chmod(0o755)
    monkeypatch.setenv("TRITONSTACK_PERF_ANALYZER", str(script))
    recorder = Recorder()
    for i in range(10):
        recorder.add(scheduled_s=i * 0.1, start_s=i * 0.1, end_s=i * 0.1 + 0.002, ok=True)
    result = RunResult.build(name="steady", scenario={}, samples=recorder.frame(), origin_s=0, duration_s=1)
    info = SimpleNamespace(batched=True)
    _referee(result, Scenario(), "127.0.0.1:1", info, [{"features": np.zeros((1, 64), np.float32)}])
    assert "perf_analyzer failed (exit 99)" in result.referee["failed"]
    assert any("referee (perf_analyzer) failed" in note for note in result.notes)
    paths = write_report(result, tmp_path / "out")
    assert "perf_analyzer failed (exit 99)" in paths["html"].read_text()
    assert _verdict(result, 1.0) == 1
    line = capsys.readouterr().err.strip()
    print(line)
    assert line.startswith("referee failed: ") and "report is kept" in line and "\n" not in line


# -- e: rates ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [math.inf, math.nan, -5.0, 0.0])
def test_non_finite_or_non_positive_rates_are_refused(rate):
    with pytest.raises(ConfigError, match="--rate .*: use a finite number > 0"):
        Scenario(kind="open", rate_rps=rate)


def test_an_open_loop_that_schedules_no_request_is_refused_up_front():
    """Outsider round 5: `open --rate 0.1 --duration 2` was an IndexError traceback (asyncio) or 'no
    request completed' after the run (Locust)."""
    from tritonstack.loadtest.schedule import arrival_offsets

    with pytest.raises(ConfigError, match=r"--rate 0.1 for --duration 2 s schedules 0.2 requests"):
        Scenario(kind=Kind.OPEN, rate_rps=0.1, duration_s=2.0)
    assert len(arrival_offsets(rate_rps=0.1, duration_s=2.0, process="poisson")) == 0


def test_a_sparse_open_loop_lasts_its_duration():
    """`open --rate 0.5 --duration 2` (asyncio) reported 16 req/s: the run ended with its one request."""
    recorder = Recorder()

    async def send(i):
        return i

    run = asyncio.run(open_loop(send, offsets=[0.0], recorder=recorder, send_for_s=0.5))
    assert run.duration_s >= 0.5 and len(recorder) == 1


def test_rate_inf_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    done = _cli("loadtest", "open", "--url", "127.0.0.1:1", "--rate", "inf", "--out", "r", cwd=tmp_path)
    assert done.returncode == 2 and "--rate inf is not a finite number; use one >= 0.1" in _one_line(done)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "flag",
    [
        ["--duration", "nan"],
        ["--rate", "nan"],
        ["--max-error-rate", "nan"],
        ["--timeout-s", "nan"],
        ["--spike-s", "inf"],
        ["--spike-at", "-inf"],
        ["--step", "nan"],
    ],
    ids=lambda v: "_".join(v),
)
def test_non_finite_loadtest_options_are_refused_naming_the_option(tmp_path, flag):
    """nan passes click's range checks (nan < min is false): --max-error-rate nan never failed a run."""
    done = _cli("loadtest", "open", "--url", "127.0.0.1:1", *flag, "--out", "r", cwd=tmp_path)
    line = _one_line(done)
    print(line)
    assert done.returncode == 2 and f"{flag[0]} {flag[1]} is not a finite number" in line
    assert not (tmp_path / "r").exists()


def test_a_deadline_below_a_millisecond_is_refused_with_the_reason(tmp_path):
    """gRPC deadlines and the client's floor are 1 ms: a 1 us deadline let ~80% of requests succeed."""
    with pytest.raises(ConfigError, match="millisecond resolution"):
        Scenario(timeout_s=1e-6)
    assert Scenario(timeout_s=0.001).timeout_s == 0.001
    done = _cli("loadtest", "steady", "--url", "127.0.0.1:1", "--timeout-s", "0.000001", "--out", "r", cwd=tmp_path)
    line = _one_line(done)
    print(line)
    assert done.returncode == 2 and line.startswith("error: --timeout-s 1e-06 is below 0.001 s")
    assert not (tmp_path / "r").exists()


# -- f: tune grid values ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flag", "needle"),
    [
        (["--max-batch", "3000000000"], "--max-batch 3000000000 is out of range"),
        (["--max-batch", "128"], "--max-batch 128 is above the max_batch_size 64 that model 'm'"),
        (["--max-batch", "0"], "--max-batch 0 is out of range"),
        (["--instances", "0"], "--instances 0 is out of range; use values from 1 to 16"),
        (["--instances=-2"], "--instances -2 is out of range"),
        (["--delay-us=-5"], "--delay-us -5 is out of range"),
        (["--p99-ms", "inf"], "--p99-ms inf is not a finite number"),
        (["--p99-ms", "nan"], "--p99-ms nan is not a finite number; use one >= 0.01"),
        (["--duration", "nan"], "--duration nan is not a finite number; use one from 0.5 to 60"),
        (["--min-gain", "nan"], "--min-gain nan is not a finite number"),
        (["--max-batch", "8,,32"], "--max-batch '8,,32' has an empty element"),
        (["--max-batch", "8,32,8"], "--max-batch '8,32,8': 8 is given twice"),
        (["--delay-us", "0,abc"], "--delay-us '0,abc': element 'abc' is not an integer"),
        (["--instances", "1,"], "--instances '1,' has an empty element"),
        (["--instances", "1,17"], "--instances 17 is out of range; use values from 1 to 16"),
    ],
    ids=lambda v: "_".join(v) if isinstance(v, list) else "",
)
def test_tune_refuses_out_of_range_grid_values_up_front(tmp_path, flag, needle):
    repo = tmp_path / "repo"
    (repo / "m").mkdir(parents=True)
    (repo / "m" / "config.pbtxt").write_text('name: "m"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 64\n')
    before = sorted(p.name for p in repo.rglob("*"))
    done = _cli("tune", "m", "--p99-ms", "5", "--repository", str(repo), *flag, cwd=tmp_path)
    assert done.returncode == 2 and needle in _one_line(done)
    assert sorted(p.name for p in repo.rglob("*")) == before


# -- h: the model is named once -------------------------------------------------------------------------
def test_an_error_that_names_the_model_is_not_prefixed_with_it_again():
    said = "model 'x' on 127.0.0.1:1 not ready after 10 s; check the server log"
    assert in_context(said, "model 'x'", "x", "127.0.0.1:1") == said
    bare = "failed to connect to all addresses"
    assert in_context(bare, "model 'x'", "x", "h:1") == "model 'x' at h:1: failed to connect to all addresses"
    assert in_context("model 'x' is gone", "model 'x'", "x", "h:1") == "model 'x' is gone (server h:1)"


# -- g: where the KeyboardInterrupt went ------------------------------------------------------------------
def test_a_keyboard_interrupt_in_any_command_exits_130_with_one_line(tmp_path):
    """typer turns KeyboardInterrupt into Exit(130) and, in non-standalone mode, *returns* 130; `main`
    dropped that value, so Ctrl-C (or SIGTERM made a KeyboardInterrupt) ended `tune` with exit 0."""
    code = (
        "from tritonstack import cli\n"
        "@cli.app.command('interrupted-here')\n"
        "def interrupted_here() -> None:\n"
        "    raise KeyboardInterrupt\n"
        "cli.main(['interrupted-here'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=LIMIT_S, cwd=tmp_path)
    print(f"exit {done.returncode}: {done.stderr!r}")
    assert done.returncode == 130 and _one_line(done) == "interrupted"


# -- i: --repository: an unknown model is refused before a server starts; no temporary port in messages ---
def test_an_unknown_model_or_version_in_the_repository_is_refused_before_any_server(tmp_path):
    from tritonstack.cli.loadtest import check_options

    (tmp_path / "a" / "1").mkdir(parents=True)
    (tmp_path / "a" / "config.pbtxt").write_text('name: "a"\n')
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.pbtxt").write_text('name: "b"\n')
    check = dict(url=None, repository=tmp_path, engine="locust", referee=False, inputs=None)
    with pytest.raises(ConfigError) as caught:
        check_options(Scenario(model="nope"), **check)
    print(caught.value)
    assert "model 'nope'" in str(caught.value) and "a, b" in str(caught.value)
    with pytest.raises(ConfigError, match=r"no version 3 .*\(versions present: 1\)"):
        check_options(Scenario(model="a", version="3"), **check)
    check_options(Scenario(model="a", version="1"), **check)


def test_preflight_names_the_server_as_shown_not_its_temporary_port():
    import socket

    from tritonstack.loadtest.preflight import preflight

    with socket.socket() as sock:  # a port nothing listens on: connection refused at once
        sock.bind(("127.0.0.1", 0))
        url = f"127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the client's typed error, whichever it is
        preflight(Scenario(model="m"), url, timeout_s=2.0, shown="the server started on repo")
    print(caught.value)
    assert "the server started on repo" in str(caught.value)
    assert url not in str(caught.value) and url.split(":")[1] not in str(caught.value)


def test_the_asyncio_target_turns_an_unreachable_server_into_one_line():
    """A server that died after the preflight (seen: Triton 2.51 crashing on 1-2 ms deadlines) gave a
    grpc traceback instead of one line."""
    import socket

    from tritonstack.loadtest.targets import triton_raw

    from tritonstack.errors import LoadTestError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"127.0.0.1:{sock.getsockname()[1]}"

    async def go() -> None:
        async with triton_raw(url, "m", [{}], timeout_s=2.0):
            pass

    with pytest.raises(LoadTestError) as caught:
        asyncio.run(go())
    print(caught.value)
    assert "model 'm'" in str(caught.value) and "UNAVAILABLE" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_distributed_run_does_not_bring_gevent_into_the_parent():
    """Round 9: with --workers the parent imported Locust, so gevent turned its statistics thread into a
    greenlet whose blocking gRPC poll of a hung server stalled the whole process (2 s per poll): a second
    Ctrl-C took 10.7 s. Locust runs in the worker processes; the parent stays plain."""
    code = """
import sys
import tritonstack.loadtest.locust_runner as runner
from tritonstack.cli.loadtest import _run
runner.run_distributed = lambda *a, **k: "ran"
assert _run(None, "127.0.0.1:1", workers=1, engine="locust", out=None, should_stop=lambda: False,
            armed=lambda: None) == "ran"
print("gevent" in sys.modules, "locust" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=LIMIT_S)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "False"]

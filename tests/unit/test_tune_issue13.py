"""Issue 13 on `tune`, without a server: --shape / --inputs taken and refused as `loadtest` does (same
one line), what each point sent, the current config's own row, and a stop that is seen at once (a
line printed from the signal handler; a config load in progress abandoned)."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from tritonclient.grpc import model_config_pb2

LIMIT_S = 60


def _cli(*argv, cwd):
    return subprocess.run([sys.executable, "-m", "tritonstack", *argv], capture_output=True, text=True,
                          timeout=LIMIT_S, cwd=cwd, env={**os.environ, "COLUMNS": "200"})


def _one_line(done) -> str:
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stdout + done.stderr
    return lines[0]


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "m" / "1").mkdir(parents=True)
    (repo / "m" / "config.pbtxt").write_text('name: "m"\nbackend: "python"\nmax_batch_size: 8\n')
    return repo


@pytest.mark.parametrize(
    "extra",
    [
        ["--shape", "tokens"],
        ["--shape", "tokens:0"],
        ["--shape", "tokens:4,x"],
        ["--shape", "tokens:4", "--shape", "tokens:5"],
        ["--inputs", "missing.npz"],
    ],
    ids=["no_dims", "zero_dim", "not_an_int", "twice", "missing_npz"],
)
def test_tune_refuses_shape_and_inputs_with_loadtests_own_line(tmp_path, extra):
    """Before any server: exit 2, one line, the same line `loadtest` prints, nothing written."""
    repo = _repo(tmp_path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    tuned = _cli("tune", "m", "--p99-ms", "5", "--repository", str(repo), *extra, cwd=tmp_path)
    loaded = _cli("loadtest", "steady", "--repository", str(repo), "--model", "m", *extra, cwd=tmp_path)
    print(f"tune: {tuned.stderr.strip()!r}")
    assert tuned.returncode == 2 and loaded.returncode == 2
    assert _one_line(tuned) == _one_line(loaded)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_tune_passes_shapes_and_samples_on_to_the_sweep(tmp_path):
    from tritonstack.cli import tune as cli_tune

    samples = tmp_path / "s.npz"
    np.savez(samples, tokens=np.zeros((3, 5), np.float32))
    given = cli_tune._given_inputs("m", _repo(tmp_path), samples, ["tokens:5"])
    assert given == {"shapes": {"tokens": (5,)}, "inputs_path": str(samples)}


def test_each_point_says_what_it_sent():
    from tritonstack.loadtest.tune import sent

    rows = [{"tokens": np.zeros((1, 7), np.float32), "text": np.array([["a"]], dtype=np.object_)}] * 3
    rows.append({"tokens": np.zeros((1, 9), np.float32), "text": np.array([["b"]], dtype=np.object_)})
    assert sent(rows) == {
        "tokens": {"shapes": [[1, 7], [1, 9]], "datatype": "FP32"},
        "text": {"shapes": [[1, 1]], "datatype": "BYTES"},
    }


def test_the_current_configs_own_fields():
    from tritonstack.loadtest.tune import current_fields

    config = model_config_pb2.ModelConfig(max_batch_size=32)
    config.dynamic_batching.max_queue_delay_microseconds = 500
    config.instance_group.add(count=2)
    assert current_fields(config) == {"max_batch_size": 32, "max_queue_delay_us": 500, "instances": 2}
    assert current_fields(model_config_pb2.ModelConfig(max_batch_size=8))["instances"] == 1


def test_the_current_row_shows_its_config_and_the_inputs_sent(capsys):
    from tritonstack.loadtest.tune import TuneOutcome

    from tritonstack.cli.tune import _print

    sent = {"tokens": {"shapes": [[1, 32]], "datatype": "FP32"}}
    figures = {"count": 10, "errors": 0, "throughput_rps": 100.0, "p50_ms": 1.0, "p99_ms": 2.0, "sent": sent}
    baseline = {"config": "current config.pbtxt", "max_batch_size": 64, "max_queue_delay_us": 700,
                "instances": 3, **figures}
    point = {"max_batch_size": 8, "max_queue_delay_us": 0, "instances": 1, **figures}
    outcome = TuneOutcome(model="m", p99_ms=5.0, baseline=baseline, points=[point], best=None,
                          inputs={"source": "random", "sent": sent}, decision="kept")
    _print(outcome, 4, 5.0)
    out = capsys.readouterr().out
    print(out)
    row = next(line for line in out.splitlines() if "│" in line and "current" in line)
    assert [cell.strip() for cell in row.split("│") if cell.strip()][:3] == ["64", "700", "3"]
    assert "each point sent (random): tokens [1, 32] FP32" in out


def test_a_signal_prints_its_line_at_once_while_the_main_thread_waits(capfd):
    """The handler itself prints (the main thread may be waiting on a load for a minute)."""
    from tritonstack.cli.tune import _StopSaying

    with _StopSaying() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        said = capfd.readouterr().out
    print(repr(said))
    assert stop.exit_code == 143
    assert said.strip() == ("interrupted (SIGTERM): stopping tritonserver; the current config stays as it is, "
                            "nothing will be written")


def test_a_load_in_progress_is_abandoned_once_a_stop_is_asked():
    """The load call runs in a worker; a stop 0.3 s in ends the wait while the call still runs."""
    from tritonstack.loadtest.pinning import CoreSplit
    from tritonstack.loadtest.tune_server import StoppedError, TuneServer

    asked_at = time.monotonic() + 0.3
    ts = TuneServer(Path("."), "m", split=CoreSplit.default(), should_stop=lambda: time.monotonic() > asked_at)
    release = threading.Event()
    with pytest.raises(StoppedError):
        ts._unless_stopped(lambda: release.wait(60))
    still_loading = not release.is_set()
    release.set()
    assert still_loading
    assert TuneServer(Path("."), "m", split=CoreSplit.default())._unless_stopped(lambda: 7) == 7


@pytest.mark.parametrize("where", ["a_file", "under_a_file"])
def test_tune_refuses_an_unusable_out_before_the_sweep(tmp_path, where):
    """Outsider 13d: `--out` at a file ran the whole sweep, then a traceback; now one line, exit 2."""
    repo = _repo(tmp_path)
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" if where == "a_file" else tmp_path / "file" / "r"
    done = _cli("tune", "m", "--p99-ms", "5", "--repository", str(repo), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2 and "--out" in _one_line(done)

"""Issue 13 on `tune`, as a user runs it (subprocesses with a time limit, the real server): a model with
a dynamic (-1) axis tuned with --shape or --inputs, its report saying what every point sent; without
them it sends what `loadtest` sends; bad samples refused with loadtest's line; Ctrl-C / SIGTERM during
a slow candidate load said at once, ended promptly, nothing written, nothing left running.

The model is an own Python-backend model ("seqlen": input tokens FP32 [-1], output its length) whose
load is slow, honestly, when it is given more than 2 instances: each instance's initialize sleeps
SLOW_LOAD_S (as a large model copied once per instance would)."""

import json
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

from tests.integration.conftest import tree_digest
from tests.integration.test_loadtest_signals import _descendants, _survivors
from tritonstack.model_config import new_config, write_config

LIMIT_S = 180
SLOW_LOAD_S = 60

_MODEL = f"""
import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        groups = json.loads(args["model_config"]).get("instance_group", [])
        if sum(int(g.get("count", 1)) for g in groups) > 2:
            time.sleep({SLOW_LOAD_S})

    def execute(self, requests):
        responses = []
        for request in requests:
            tokens = pb_utils.get_input_tensor_by_name(request, "tokens").as_numpy()
            length = np.full((tokens.shape[0], 1), tokens.shape[1], np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("length", length)]))
        return responses
"""


@pytest.fixture()
def seq_repo(tmp_path: Path) -> Path:
    """A repository with only `seqlen`, readable by the server's own user."""
    repo = tmp_path / "repo"
    (repo / "seqlen" / "1").mkdir(parents=True)
    (repo / "seqlen" / "1" / "model.py").write_text(_MODEL)
    config = new_config()
    config.name, config.backend, config.max_batch_size = "seqlen", "python", 8
    config.dynamic_batching.SetInParent()
    config.instance_group.add(count=1, kind=model_config_pb2.ModelInstanceGroup.KIND_CPU)
    for group, name, dims in ((config.input, "tokens", -1), (config.output, "length", 1)):
        tensor = group.add()
        tensor.name, tensor.data_type = name, model_config_pb2.TYPE_FP32
        tensor.dims.append(dims)
    write_config(config, repo / "seqlen" / "config.pbtxt")
    for folder in (tmp_path, repo, repo / "seqlen", repo / "seqlen" / "1"):
        folder.chmod(0o755)
    return repo


def _env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}


def _cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tritonstack", *argv], capture_output=True, text=True,
                          timeout=LIMIT_S, cwd=cwd, env=_env())


def _tune(repo: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return _cli("tune", "seqlen", "--p99-ms", "1000", "--repository", str(repo), "--max-batch", "4",
                "--delay-us", "0", "--instances", "1", "--duration", "0.5", "--concurrency", "2",
                "--out", str(out), *extra, cwd=out.parent)


def _gone(seen: dict, grace_s: float = 15.0) -> bool:
    """True once nothing of `seen` is left. The stubs are SIGKILLed with tritonserver's group; being
    its children, their zombies pass to PID 1, which reaps them within a second or two here."""
    deadline = time.monotonic() + grace_s
    while _survivors(seen):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_tune_sends_the_given_shape_and_every_point_says_so(seq_repo, tmp_path):
    done = _tune(seq_repo, tmp_path / "r", "--shape", "tokens:7")
    print(done.stdout)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    report = json.loads((tmp_path / "r" / "seqlen.json").read_text())
    sent = {"tokens": {"shapes": [[1, 7]], "datatype": "FP32"}}
    measured = [report["baseline"], *report["points"], *(report["confirmation"] or {}).values()]
    assert [p["sent"] for p in measured] == [sent] * len(measured) and len(measured) >= 2
    assert report["inputs"] == {"source": "random", "shapes_given": {"tokens": [7]}, "sent": sent}
    base = report["baseline"]
    assert (base["max_batch_size"], base["max_queue_delay_us"], base["instances"]) == (8, 0, 1)
    assert "each point sent (random): tokens [1, 7] FP32" in done.stdout
    row = next(line for line in done.stdout.splitlines() if "│" in line and "current" in line)
    assert [cell.strip() for cell in row.split("│") if cell.strip()][:3] == ["8", "0", "1"]


def test_tune_sends_real_samples_from_an_npz(seq_repo, tmp_path):
    samples = tmp_path / "samples.npz"
    np.savez(samples, tokens=np.random.default_rng(0).random((4, 9)).astype(np.float32))
    done = _tune(seq_repo, tmp_path / "r", "--inputs", str(samples))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    report = json.loads((tmp_path / "r" / "seqlen.json").read_text())
    print(report["inputs"])
    assert report["inputs"]["source"] == f"--inputs {samples}"
    assert report["baseline"]["sent"] == {"tokens": {"shapes": [[1, 9]], "datatype": "FP32"}}


def test_without_shape_or_inputs_tune_sends_what_loadtest_sends(seq_repo, tmp_path):
    """A dynamic axis of length 1, as `loadtest` sends it (and reports it)."""
    tuned = _tune(seq_repo, tmp_path / "t")
    loaded = _cli("loadtest", "steady", "--repository", str(seq_repo), "--model", "seqlen", "--engine", "asyncio",
                  "--users", "1", "--duration", "0.5", "--out", str(tmp_path / "l"), cwd=tmp_path)
    assert tuned.returncode == 0 and loaded.returncode == 0, tuned.stderr + loaded.stderr
    by_tune = json.loads((tmp_path / "t" / "seqlen.json").read_text())["baseline"]["sent"]
    by_loadtest = json.loads((tmp_path / "l" / "steady.json").read_text())["scenario"]["input_shapes"]
    print(f"tune sent {by_tune}; loadtest sent {by_loadtest}")
    assert {name: what["shapes"] for name, what in by_tune.items()} == by_loadtest == {"tokens": [[1, 1]]}


def test_samples_that_do_not_fit_are_refused_with_loadtests_line(seq_repo, tmp_path):
    samples = tmp_path / "bad.npz"
    np.savez(samples, words=np.zeros((2, 3), np.float32))
    before = tree_digest(seq_repo)
    tuned = _tune(seq_repo, tmp_path / "t", "--inputs", str(samples))
    loaded = _cli("loadtest", "steady", "--repository", str(seq_repo), "--model", "seqlen", "--engine", "asyncio",
                  "--inputs", str(samples), "--out", str(tmp_path / "l"), cwd=tmp_path)
    said = [_lines(done.stdout + done.stderr) for done in (tuned, loaded)]
    print(said)
    assert tuned.returncode == loaded.returncode == 2 and said[0] == said[1] and len(said[0]) == 1
    assert "names ['words'], which model 'seqlen' has no input for" in said[0][0]
    assert not (tmp_path / "t").exists() and tree_digest(seq_repo) == before


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_slow_candidate_load_is_said_at_once_and_ends_promptly(seq_repo, tmp_path, signum):
    """The candidate (3 instances) would take SLOW_LOAD_S to load; the signal comes right after tune
    says it is loading it. Before: no output until the load ended (17.5 s in the issue)."""
    before = tree_digest(seq_repo)
    argv = [sys.executable, "-m", "tritonstack", "tune", "seqlen", "--p99-ms", "1000", "--repository", str(seq_repo),
            "--max-batch", "4", "--delay-us", "0", "--instances", "3", "--duration", "0.5", "--concurrency", "2",
            "--out", str(tmp_path / "r")]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                               cwd=tmp_path)
    out: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: out.extend((time.monotonic(), line) for line in process.stdout),
                              daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + LIMIT_S
        while not any("loading candidate" in line for _, line in out) and process.poll() is None:
            assert time.monotonic() < deadline, "no 'loading candidate' line"
            time.sleep(0.1)
        assert process.poll() is None, "".join(line for _, line in out) + process.stderr.read()
        seen = _descendants(process.pid)
        time.sleep(1.0)  # the load is under way
        sent_at = time.monotonic()
        process.send_signal(signum)
        process.wait(timeout=LIMIT_S)  # stdout is the reader's; stderr is a few lines
        err = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    took = time.monotonic() - sent_at
    reader.join(timeout=10)
    said = [(t - sent_at, line.strip()) for t, line in out if line.startswith("interrupted")]
    name = signal.Signals(signum).name
    print(f"{name}: line after {said[0][0] if said else None} s, exit {process.returncode} after {took:.1f} s "
          f"(the load alone would take {SLOW_LOAD_S} s); stderr {err!r}")
    assert process.returncode == 128 + signum and "Traceback" not in err
    assert said and said[0][1].startswith(f"interrupted ({name}): stopping tritonserver")
    assert took < SLOW_LOAD_S / 2, "the command waited for the load it was told to abandon"
    errors = [line for line in _lines(err) if " WARNING " not in line]
    assert len(errors) == 1 and f"interrupted ({name})" in errors[0] and "nothing written" in errors[0], err
    assert _gone(seen), f"left running: {_survivors(seen)} of {seen}"
    assert not (tmp_path / "r").exists() and tree_digest(seq_repo) == before

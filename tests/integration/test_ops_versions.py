"""Versions on the real embedded Triton: add, promote under load, refuse a broken one, roll back, canary.

The server gets its own repository (a copy of the session's digits_mlp) because these tests change
it. Load loops use tritonclient directly, without retries, so a lost request would show as a failure.

The stub supervisor is off here: it keys stubs by instance name, which every version of a model
shares, so it takes the exit of an old version's stub (after a promote) or of a refused version's
stub (failed initialize) for a crash and force-reloads the model in the middle of the version change;
under load that made requests hang (8 DEADLINE_EXCEEDED of ~8500) and later loads time out.
Reported to the owner of serve/supervisor.py.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonstack.ops.versions import HISTORY_FILE

from tritonstack.cli import main

MODEL = "digits_mlp"
THREADS = 8
MAX_REQUESTS_PER_THREAD = 3000


@pytest.fixture(scope="module")
def vserver(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from tritonstack.serve import EmbeddedServer, ServerConfig

    repo = tmp_path_factory.mktemp("ops_versions") / "model_repository"
    shutil.copytree(repository / MODEL, repo / MODEL)
    # restart_on_crash as `serve` has it: Triton 2.51 has crashed (rarely) after refusing a broken version
    with EmbeddedServer(ServerConfig(repository=repo, ort_threads=1, restart_on_crash=True,
                                     log_dir=tmp_path_factory.mktemp("ops_versions_crash_logs"))) as running:
        yield running


@pytest.fixture(autouse=True)
def _serving(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts on a serving server (restarted by the watchdog if an earlier test crashed it)."""
    if "vserver" in request.fixturenames:
        import tritonclient.grpc as grpcclient

        server = request.getfixturevalue("vserver")
        deadline = time.monotonic() + 90
        while True:
            raw = grpcclient.InferenceServerClient(server.grpc_url)
            try:
                if raw.is_server_ready(client_timeout=2) and raw.is_model_ready(MODEL, client_timeout=2):
                    break
            except grpcclient.InferenceServerException:
                pass
            finally:
                raw.close()
            assert time.monotonic() < deadline, "the versions test server is not serving"
            time.sleep(0.5)
    yield


class _Stderr:
    """What the CLI wrote to stderr so far (its JSON log lines and its error line)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys, self.text = capsys, ""

    def getvalue(self) -> str:
        self.text += self.capsys.readouterr().err
        return self.text


@pytest.fixture()
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[_Stderr]:
    """The CLI's log records, as it writes them with --log-json."""
    from tritonstack.logs import configure_logging

    yield _Stderr(capsys)
    configure_logging(json_lines=False, level=logging.WARNING)


def _records(stream: _Stderr, logger: str) -> list[dict]:
    lines = [line for line in stream.getvalue().splitlines() if line.startswith("{")]
    return [r for r in map(json.loads, lines) if r["logger"] == logger]


def _cli(server, *args: str) -> None:  # noqa: ANN001
    main(["--log-json", "--log-level", "INFO", "versions", *args, "--url", server.grpc_url, "--admin-key", server.admin_key,
          "--repository", str(server.config.repository)])


class Load:
    """THREADS clients sending small batches until stopped (or MAX_REQUESTS_PER_THREAD each)."""

    def __init__(self, server, rows: np.ndarray) -> None:  # noqa: ANN001
        self.server, self.rows = server, rows
        self.stop = threading.Event()
        self.versions: Counter[str] = Counter()
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(THREADS)]

    def _run(self) -> None:
        with grpcclient.InferenceServerClient(self.server.grpc_url) as raw:
            for i in range(MAX_REQUESTS_PER_THREAD):
                if self.stop.is_set():
                    return
                tensor = grpcclient.InferInput("features", [4, 64], "FP32")
                tensor.set_data_from_numpy(self.rows[(i * 4) % 400:(i * 4) % 400 + 4])
                try:
                    version = raw.infer(MODEL, [tensor], client_timeout=30).get_response().model_version
                except grpcclient.InferenceServerException as exc:
                    with self.lock:
                        self.failures.append(str(exc))
                    continue
                with self.lock:
                    self.versions[version] += 1

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        time.sleep(1.0)  # load is running before the change
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(1.0)  # and keeps running after it
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    @property
    def total(self) -> int:
        return sum(self.versions.values()) + len(self.failures)


def _served_by(server) -> str:  # noqa: ANN001
    with grpcclient.InferenceServerClient(server.grpc_url) as raw:
        tensor = grpcclient.InferInput("features", [1, 64], "FP32")
        tensor.set_data_from_numpy(np.zeros((1, 64), np.float32))
        return raw.infer(MODEL, [tensor]).get_response().model_version


def test_promote_under_load_loses_no_request(vserver, digits_data, json_logs) -> None:  # noqa: ANN001
    repo = vserver.config.repository
    _cli(vserver, "add", MODEL, str(repo / MODEL / "1"))
    assert (repo / MODEL / "2" / "model.onnx").is_file()
    assert _served_by(vserver) == "1", "an added version is not served before promote"
    with Load(vserver, digits_data[0]) as load:
        started = time.monotonic()
        _cli(vserver, "promote", MODEL, "2")
        promote_s = time.monotonic() - started
    print(f"promote 1 -> 2 took {promote_s:.1f} s; {load.total} requests during the run "
          f"({dict(load.versions)}), {len(load.failures)} failures")
    assert load.failures == []
    assert load.versions["1"] > 0 and load.versions["2"] > 0
    assert _served_by(vserver) == "2"
    promoted = [r for r in _records(json_logs, "tritonstack.ops.versions") if "now serves" in r["message"]]
    assert promoted and promoted[0]["request_id"].startswith("versions-promote-")
    assert promoted[0]["served"] == "[2]" and promoted[0]["model"] == MODEL


def test_broken_version_is_refused_and_the_old_one_keeps_serving(vserver, digits_data, tmp_path,
                                                                 capsys, json_logs) -> None:  # noqa: ANN001
    broken = tmp_path / "3"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(_unloadable_model())  # a valid ONNX file (add checks that) ORT refuses
    _cli(vserver, "add", MODEL, str(broken))
    config_before = (vserver.config.repository / MODEL / "config.pbtxt").read_text()
    with Load(vserver, digits_data[0]) as load, pytest.raises(SystemExit) as exit_info:
        _cli(vserver, "promote", MODEL, "3")
    err = json_logs.getvalue()
    print(f"refused promote: {load.total} requests during the run, {len(load.failures)} failures; {err[:160]}")
    assert exit_info.value.code == 2
    assert "refused versions [3]" in err and "it serves versions [2]" in err
    assert load.failures == [] and set(load.versions) == {"2"}
    assert (vserver.config.repository / MODEL / "config.pbtxt").read_text() == config_before
    assert _served_by(vserver) == "2"
    records = _records(json_logs, "tritonstack.ops.versions")
    refused = [r for r in records if "refused" in r]
    assert refused and refused[0]["refused"] == "[3]" and "NoSuchOp" in refused[0]["reason"]
    assert not [r for r in records if r["level"] == "WARNING"], "the error line says it all (outsider 13c D11)"
    with pytest.raises(SystemExit):
        _cli(vserver, "canary", MODEL, "3")  # 2 stays fine: only 3 is named (it said "refused [2, 3]")
    err = json_logs.getvalue()
    print(f"refused canary: {err.splitlines()[-1][:200]}")
    assert "refused versions [3] of" in err.splitlines()[-1] and "[2, 3]" not in err.splitlines()[-1]


def _unloadable_model() -> bytes:
    """An ONNX model that passes onnx.checker but whose operator ONNX Runtime does not have."""
    from onnx import TensorProto, helper

    domain = "com.tritonstack.missing"
    node = helper.make_node("NoSuchOp", ["features"], ["probabilities"], domain=domain)  # the config's names
    graph = helper.make_graph([node], "broken",
                              [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 64])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(domain, 1)])
    model.ir_version = 8
    return model.SerializeToString()


def test_rollback_serves_the_previous_version(vserver, capsys) -> None:  # noqa: ANN001
    _cli(vserver, "rollback", MODEL)
    assert "serves versions [1]" in capsys.readouterr().out
    assert _served_by(vserver) == "1"
    _cli(vserver, "list", MODEL)
    listing = capsys.readouterr().out
    assert re.search(r"│ 1\s+│ yes\s+│ yes\s+│ READY", listing), listing
    assert re.search(r"│ 3\s+│ yes\s+│\s+│ UNAVAILABLE", listing), listing


def _success_by_version(server) -> Counter[str]:  # noqa: ANN001
    with urllib.request.urlopen(server.metrics_url) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    pattern = rf'^nv_inference_request_success{{model="{MODEL}",version="(\d+)"}} (\d+)'
    return Counter({v: int(n) for v, n in re.findall(pattern, text, re.MULTILINE)})


def test_canary_split_with_per_version_metrics(vserver, digits_data) -> None:  # noqa: ANN001
    from tritonstack.client import SplitRouter, TrafficSplit, TritonClient

    _cli(vserver, "canary", MODEL, "2")
    assert (vserver.config.repository / MODEL / HISTORY_FILE).is_file()
    x_test, y_test = digits_data
    before = _success_by_version(vserver)
    with TritonClient(vserver.grpc_url) as client:
        router = SplitRouter(client, MODEL, TrafficSplit({"1": 0.8, "2": 0.2}, seed=0))
        correct = sum(int(router.infer(x_test[i:i + 1])["probabilities"].argmax() == y_test[i])
                      for i in range(300))
    stats = router.stats()
    expected = Counter({"1": stats["1"].count, "2": stats["2"].count})
    deadline = time.monotonic() + 10  # Triton's counters trail the responses slightly
    while (served := _success_by_version(vserver) - before) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    print(f"canary: client counts {({v: s.count for v, s in stats.items()})}, "
          f"Triton per-version successes {dict(served)}, accuracy {correct / 300:.3f}")
    assert stats["1"].count + stats["2"].count == 300 and stats["1"].errors == stats["2"].errors == 0
    assert 20 <= stats["2"].count <= 100
    assert served == expected
    _cli(vserver, "promote", MODEL, "2")
    assert _served_by(vserver) == "2"


class _InterruptedAfterSend:
    """A TritonControl whose first load is sent to the server and then interrupted (Ctrl-C while Triton
    loads): the request goes on in the background, as it does on the server after a real Ctrl-C."""

    def __init__(self, control) -> None:  # noqa: ANN001
        self.control, self.background = control, None

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.control, name)

    def load(self, model: str, config_override: str | None = None) -> str | None:
        if self.background is None:
            self.background = threading.Thread(target=self.control.load, args=(model, config_override))
            self.background.start()
            time.sleep(0.3)  # the request is on the server
            raise KeyboardInterrupt
        return self.control.load(model, config_override)


def test_an_interrupted_promote_leaves_served_what_config_says(vserver) -> None:  # noqa: ANN001
    """Issue 13 D1: after Ctrl-C Triton finished loading the new version and requests without a version
    went to it while config.pbtxt did not list it."""
    from tritonstack.ops.versions import TritonControl, VersionChangeInterrupted, VersionManager

    repo = vserver.config.repository
    control = _InterruptedAfterSend(TritonControl(vserver.grpc_url, admin_key=vserver.admin_key))
    manager = VersionManager(repo, control)
    before = manager.policy(MODEL)
    new = manager.add(MODEL, repo / MODEL / "1")
    config = (repo / MODEL / "config.pbtxt").read_bytes()
    with pytest.raises(VersionChangeInterrupted) as caught:
        manager.promote(MODEL, new)
    control.background.join(timeout=120)
    time.sleep(1.0)  # anything Triton still had queued for the model has run
    ready = sorted(int(s["version"]) for s in control.index() if s.get("name") == MODEL
                   and s.get("state") == "READY")
    served = _served_by(vserver)
    print(f"interrupted promote {before} -> [{new}]: {caught.value}; READY {ready}, unversioned -> {served}")
    assert (repo / MODEL / "config.pbtxt").read_bytes() == config
    assert new not in ready and set(ready) <= set(before)
    assert served == str(max(before))
    assert f"serves versions {before} again" in str(caught.value)


def test_a_wrong_admin_key_is_said_to_be_wrong(vserver, capsys, monkeypatch) -> None:  # noqa: ANN001
    """Outsider 13c D11: with a wrong key, `versions` said "pass --admin-key" although one was passed."""
    monkeypatch.setenv("TRITONSTACK_ADMIN_KEY", "not-the-key")
    with pytest.raises(SystemExit) as exited:
        main(["versions", "promote", MODEL, "1", "--url", vserver.grpc_url,
              "--repository", str(vserver.config.repository)])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    print(f"wrong key: {lines[-1][:200]}")
    assert exited.value.code == 2 and len(lines) == 1 and "refused the admin key given" in lines[0], lines
    assert "pass --admin-key (" not in lines[0]


def test_a_model_added_after_start_says_restart(vserver, capsys, monkeypatch) -> None:  # noqa: ANN001
    """Outsider 13c D9: promoting a model converted into the repository while `serve` runs said "Triton
    refused versions [1] ... versions [1] keep serving ... fix the version": nothing served it, and the
    version was fine. `serve` sees the model folders present at its start: the line says restart."""
    monkeypatch.setenv("TRITONSTACK_ADMIN_KEY", vserver.admin_key)
    repo = vserver.config.repository
    late = repo / "late_model"
    shutil.copytree(repo / MODEL, late, ignore=shutil.ignore_patterns(HISTORY_FILE))
    config = (late / "config.pbtxt").read_text().replace(f'name: "{MODEL}"', 'name: "late_model"')
    (late / "config.pbtxt").write_text(config)
    newest = str(max(int(p.name) for p in late.iterdir() if p.name.isdigit()))
    try:
        with pytest.raises(SystemExit) as exited:
            main(["versions", "promote", "late_model", newest, "--url", vserver.grpc_url,
                  "--repository", str(repo)])
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        print(f"model added after start: {lines[-1][:240]}")
        assert exited.value.code == 2 and len(lines) == 1, lines
        assert "restart it to serve 'late_model'" in lines[0] and "keep serving" not in lines[0]
        assert (late / "config.pbtxt").read_text() == config
    finally:
        shutil.rmtree(late)


def test_a_canary_of_a_version_written_next_to_a_latest_policy_keeps_the_served_one(repository: Path, tmp_path,
                                                                                    capsys) -> None:  # noqa: ANN001
    """Outsider round 8: `convert` wrote version 2 next to a `latest: 1` policy while 1 was served;
    `versions canary 2` took "served now" from the policy ([2]), unloaded 1, and `rollback` had nothing
    to go back to. Served now is what Triton has READY."""
    from tritonstack.serve import EmbeddedServer, ServerConfig

    from tritonstack.model_config import read_config, write_config

    repo = tmp_path / "model_repository"
    shutil.copytree(repository / MODEL, repo / MODEL, ignore=shutil.ignore_patterns("[2-9]"))
    config = read_config(repo / MODEL / "config.pbtxt")
    config.version_policy.latest.num_versions = 1
    write_config(config, repo / MODEL / "config.pbtxt")
    with EmbeddedServer(ServerConfig(repository=repo, ort_threads=1)) as server:
        shutil.copytree(repo / MODEL / "1", repo / MODEL / "2")  # what `convert --name` into it does
        _cli(server, "canary", MODEL, "2")
        assert "serves versions [1, 2]" in capsys.readouterr().out
        _cli(server, "rollback", MODEL)
        assert "serves versions [1]" in capsys.readouterr().out
        assert _served_by(server) == "1"

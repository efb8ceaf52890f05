"""`tritonstack versions` against issue 13's D1, D5, D6, D7: an interrupted change leaves served what
config.pbtxt says; a no-op promote is not a rollback step; version commands on one model are serialized;
`add` refuses a model folder and a model whose inputs/outputs differ from config.pbtxt."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from tritonstack.ops.versions import HISTORY_FILE, VersionChangeInterrupted, VersionManager, model_lock

from tritonstack.errors import ConfigError, OperationsError

from .test_ops_versions import CONFIG, FakeControl, model_bytes
from .test_versions_hardening import _cli, _refused, _snapshot

IO = ('input { name: "x" data_type: TYPE_FP32 dims: [4] }\n'
      'output { name: "y" data_type: TYPE_FP32 dims: [4] }\n')


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    repository = tmp_path / "repo"
    for version in (1, 2):
        (repository / "m" / str(version)).mkdir(parents=True)
        (repository / "m" / str(version) / "model.onnx").write_bytes(model_bytes(f"v{version}"))
    (repository / "m" / "config.pbtxt").write_text(CONFIG + "version_policy { specific { versions: [1] } }\n")
    return repository


class InterruptedControl(FakeControl):
    """The first load is interrupted (Ctrl-C while Triton loads); a signal may arrive during the next."""

    def __init__(self, repository: Path, signal_on_reload: bool = False) -> None:
        super().__init__(repository)
        self.signal_on_reload, self.finished = signal_on_reload, []

    def load(self, model: str, config_override: str | None = None) -> str | None:
        result = super().load(model, config_override)
        if len(self.loads) == 1:
            raise KeyboardInterrupt
        if self.signal_on_reload:
            os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C while the old config is loaded again
            time.sleep(0.2)
        self.finished.append(self.loads[-1])
        return result


def test_d1_an_interrupted_promote_loads_the_old_config_again_and_says_so(repo: Path) -> None:
    before = (repo / "m" / "config.pbtxt").read_bytes()
    control = InterruptedControl(repo)
    with pytest.raises(VersionChangeInterrupted, match=r"serves versions \[1\] again") as caught:
        VersionManager(repo, control).promote("m", 2)
    print(caught.value, control.loads)
    assert isinstance(caught.value, KeyboardInterrupt)
    assert control.loads == [[2], [1]], "the old config must be loaded again after the interrupt"
    assert (repo / "m" / "config.pbtxt").read_bytes() == before


def test_d1_a_second_ctrl_c_does_not_cut_the_reload_short(repo: Path) -> None:
    control = InterruptedControl(repo, signal_on_reload=True)
    with pytest.raises(VersionChangeInterrupted, match="again"):
        VersionManager(repo, control).canary("m", 2)
    assert control.finished == [[1]], "the reload of the old config must run to its end"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_d1_the_cli_says_in_one_line_what_is_served_and_exits_130(repo: Path, monkeypatch, capsys) -> None:
    from tritonstack import cli
    from tritonstack.cli import versions as cli_versions

    monkeypatch.setattr(cli_versions, "_manager", lambda *a: VersionManager(repo, InterruptedControl(repo)))
    with pytest.raises(SystemExit) as done:
        cli.main(["versions", "canary", "m", "2", "--repository", str(repo)])
    lines = capsys.readouterr().err.strip().splitlines()
    print(lines)
    assert done.value.code == 130 and len(lines) == 1
    assert lines[0].startswith("interrupted: m serves versions [1] again"), lines


def test_d5_a_promote_that_changes_nothing_is_not_a_rollback_step(repo: Path) -> None:
    control = FakeControl(repo)
    manager = VersionManager(repo, control)
    for _ in range(3):
        assert manager.promote("m", 2, keep=[1]) == [1, 2]
    assert manager.rollback("m") == [1]
    with pytest.raises(OperationsError, match="nothing to roll back to"):
        manager.rollback("m")


def test_d5_rollback_skips_repeated_sets_recorded_before_the_fix(repo: Path) -> None:
    manager = VersionManager(repo, FakeControl(repo))
    manager.promote("m", 2, keep=[1])
    (repo / "m" / HISTORY_FILE).write_text('{"served": [[1], [1, 2], [1, 2], [1, 2]]}\n')
    assert manager.rollback("m") == [1]
    assert manager.policy("m") == [1]


class SlowControl(FakeControl):
    """Loads take a while and count how many run at once."""

    def __init__(self, repository: Path) -> None:
        super().__init__(repository)
        self.running, self.most, self.guard = 0, 0, threading.Lock()

    def load(self, model: str, config_override: str | None = None) -> str | None:
        with self.guard:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.3)
        with self.guard:
            self.running -= 1
        return super().load(model, config_override)


def test_d6_version_commands_started_together_run_one_at_a_time(repo: Path) -> None:
    control = SlowControl(repo)
    manager = VersionManager(repo, control, lock_timeout_s=60)
    start, errors = threading.Barrier(3), []

    def run(call) -> None:  # noqa: ANN001
        start.wait()
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    calls = (lambda: manager.promote("m", 2), lambda: manager.promote("m", 1), lambda: manager.canary("m", 2))
    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    print(f"loads {control.loads}, at most {control.most} at once, errors {errors}")
    assert errors == [] and control.most == 1 and len(control.loads) == 3


def test_d6_a_command_that_cannot_get_the_lock_in_time_says_another_is_running(repo: Path) -> None:
    manager = VersionManager(repo, FakeControl(repo), lock_timeout_s=0.5)
    with model_lock(repo / "m", 5, "m"), pytest.raises(OperationsError, match="another version command"):
        manager.promote("m", 2)
    assert manager.promote("m", 2) == [2]


def test_d7_the_model_folder_as_source_is_refused_and_nothing_is_written(repo: Path) -> None:
    before = _snapshot(repo)
    _refused(_cli(repo, "add", "m", repo / "m"), "model folder")
    with pytest.raises(ConfigError, match="model folder"):
        VersionManager(repo, FakeControl(repo)).add("m", repo / "m")
    source = repo.parent / "src"
    (source / "1").mkdir(parents=True)
    (source / "model.onnx").write_bytes(model_bytes("v3"))
    _refused(_cli(repo, "add", "m", source), "not a version folder", "1")
    (source / "1").rmdir()
    (source / ".m.3.abc").mkdir()
    _refused(_cli(repo, "add", "m", source), "half-written")
    assert _snapshot(repo) == before and not (repo / "m" / "3").exists()


def _io_model(path: Path, name: str = "x", elem: str = "FLOAT", rank: int = 2) -> Path:
    from onnx import TensorProto, helper

    dims = ["N", 4, 1, 1][:rank]
    inp = helper.make_tensor_value_info(name, getattr(TensorProto, elem), dims)
    out = helper.make_tensor_value_info("y", getattr(TensorProto, elem), dims)
    graph = helper.make_graph([helper.make_node("Identity", [name], ["y"])], "m", [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize(("kwargs", "needle"), [({"name": "features"}, "no input 'x'"),
                                                ({"elem": "INT64"}, "TYPE_INT64"),
                                                ({"rank": 3}, "rank 3")])
def test_d7_a_model_with_other_inputs_is_refused_naming_the_mismatch(repo: Path, kwargs: dict,
                                                                      needle: str) -> None:
    config = repo / "m" / "config.pbtxt"
    config.write_text(config.read_text() + IO)
    before = _snapshot(repo)
    other = _io_model(repo.parent / "other.onnx", **kwargs)
    _refused(_cli(repo, "add", "m", other), needle, "not a version of this model")
    assert _snapshot(repo) == before
    assert VersionManager(repo, FakeControl(repo)).add("m", _io_model(repo.parent / "same.onnx")) == 3


class StrayControl(FakeControl):
    """Triton has a version READY that config.pbtxt does not list (a change finished after Ctrl-C)."""

    def index(self) -> list[dict]:
        return [*super().index(), {"name": "m", "version": "2", "state": "READY"}]


def test_d1_list_warns_of_a_ready_version_that_config_does_not_list(repo: Path, monkeypatch, capsys) -> None:
    from tritonstack import cli
    from tritonstack.cli import versions as cli_versions

    monkeypatch.setattr(cli_versions, "_manager", lambda *a: VersionManager(repo, StrayControl(repo)))
    cli.main(["versions", "list", "m", "--repository", str(repo)])
    out = capsys.readouterr().out
    print(out.strip().splitlines()[-1])
    assert "versions [2] are READY on Triton but config.pbtxt does not list them" in out
    assert "tritonstack versions promote m 1`" in out


class TerminatedControl(FakeControl):
    """SIGTERM arrives while the first load is on the server."""

    def load(self, model: str, config_override: str | None = None) -> str | None:
        result = super().load(model, config_override)
        if len(self.loads) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler interrupts this
        return result


def test_d1_sigterm_during_the_load_is_undone_too_and_exits_143(repo: Path, monkeypatch, capsys) -> None:
    from tritonstack import cli
    from tritonstack.cli import versions as cli_versions

    monkeypatch.setattr(cli_versions, "_TERMINATED", [])
    if hasattr(cli, "_TERMINATED"):
        monkeypatch.setattr(cli, "_TERMINATED", [])
    control = TerminatedControl(repo)
    monkeypatch.setattr(cli_versions, "_manager", lambda *a: VersionManager(repo, control))
    with pytest.raises(SystemExit) as done:
        cli.main(["versions", "promote", "m", "2", "--repository", str(repo)])
    lines = capsys.readouterr().err.strip().splitlines()
    print(lines, control.loads)
    assert done.value.code == 143 and len(lines) == 1 and control.loads == [[2], [1]]
    assert lines[0].startswith("terminated: m serves versions [1] again"), lines
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_d7_a_reshaped_input_is_compared_by_its_reshaped_rank_and_a_parent_folder_is_refused(repo: Path) -> None:
    config = repo / "m" / "config.pbtxt"
    config.write_text(config.read_text() + IO.replace("dims: [4] }", "dims: [4] reshape { shape: [4, 1, 1] } }", 1))
    manager = VersionManager(repo, FakeControl(repo))
    with pytest.raises(ConfigError, match="holds the model folder"):
        manager.add("m", repo)
    with pytest.raises(ConfigError, match="rank 2 but"):
        manager.add("m", _io_model(repo.parent / "flat.onnx"))
    source = repo.parent / "v3"
    source.mkdir()
    _io_model(source / "model.onnx", rank=4)
    with pytest.raises(ConfigError, match="output 'y'"):  # the output is declared without reshape
        manager.add("m", source)

"""`tritonstack versions` refuses what an outside tester broke it with (issue 13 items 1, 2, 3, 5, 10):
links out of the repository or the source, unsafe names, versions out of int64, corrupt models, and a
failed promote leaves config.pbtxt byte for byte as it was. Each refusal is one line, exit 2, no trace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tritonstack.ops.versions import VersionManager

from tritonstack.errors import ConfigError, ModelLoadError, RepositoryWriteError

from .test_ops_versions import CONFIG, FakeControl, model_bytes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    repository = tmp_path / "repo"
    (repository / "m" / "1").mkdir(parents=True)
    (repository / "m" / "1" / "model.onnx").write_bytes(model_bytes("v1"))
    (repository / "m" / "config.pbtxt").write_text(CONFIG)
    (tmp_path / "new.onnx").write_bytes(model_bytes("v2"))
    return repository


def _cli(repo: Path, *args: object, url: str = "127.0.0.1:1") -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tritonstack", "versions", *map(str, args), "--repository", str(repo),
               "--url", url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=repo.parent, env=env)


def _refused(done: subprocess.CompletedProcess, *needles: str) -> None:
    lines = done.stderr.strip().splitlines()
    print(done.stderr.strip())
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_add_through_a_symlinked_model_folder_is_refused_and_writes_nothing(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "vx"
    (outside / "1").mkdir(parents=True)
    (outside / "config.pbtxt").write_text(CONFIG)
    (repo / "lnk").symlink_to(outside)
    before = _snapshot(outside)
    _refused(_cli(repo, "add", "lnk", tmp_path / "new.onnx"), "symbolic link", "lnk")
    assert _snapshot(outside) == before and not (outside / "2").exists()


def test_a_source_folder_linking_outside_itself_is_refused(repo: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"not for the repository")
    source = tmp_path / "src"
    source.mkdir()
    (source / "model.onnx").symlink_to(secret)
    before = _snapshot(repo)
    with pytest.raises(ConfigError, match="outside"):
        VersionManager(repo, FakeControl(repo)).add("m", source)
    assert _snapshot(repo) == before
    with pytest.raises(ConfigError, match="not a regular file"):
        VersionManager(repo, FakeControl(repo)).add("m", Path("/dev/null"))


@pytest.mark.parametrize("name", ["../vx", "/tmp/vx", "a/b", ".."])
def test_unsafe_model_names_are_refused_before_anything_is_read(repo: Path, tmp_path: Path, name: str) -> None:
    manager = VersionManager(repo, FakeControl(repo))
    for call in (lambda: manager.add(name, tmp_path / "missing"), lambda: manager.promote(name, 1),
                 lambda: manager.list(name), lambda: manager.rollback(name), lambda: manager.policy(name)):
        with pytest.raises(RepositoryWriteError, match="model name"):
            call()


def test_cli_unsafe_name_is_one_line(repo: Path, tmp_path: Path) -> None:
    _refused(_cli(repo, "add", "../vx", tmp_path / "new.onnx"), "model name '../vx' is not allowed")
    _refused(_cli(repo, "canary", "/abs/vx", "2"), "model name '/abs/vx' is not allowed")


def test_versions_outside_int64_are_refused(repo: Path, tmp_path: Path) -> None:
    manager = VersionManager(repo, FakeControl(repo))
    before = _snapshot(repo)
    for bad in (0, -3, 2**63, 99999999999999999999):
        with pytest.raises(ConfigError, match="out of range"):
            manager.add("m", tmp_path / "new.onnx", version=bad)
        with pytest.raises(ConfigError, match="out of range"):
            manager.promote("m", bad)
    assert _snapshot(repo) == before
    _refused(_cli(repo, "add", "m", tmp_path / "new.onnx", "--version", "99999999999999999999"), "out of range")
    _refused(_cli(repo, "promote", "m", "99999999999999999999"), "out of range")


def test_a_corrupt_model_is_refused_at_add_time(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.onnx").write_bytes(b"not an onnx file")
    before = _snapshot(repo)
    with pytest.raises(ModelLoadError, match="not a valid ONNX model"):
        VersionManager(repo, FakeControl(repo)).add("m", tmp_path / "bad.onnx")
    assert _snapshot(repo) == before
    _refused(_cli(repo, "add", "m", tmp_path / "bad.onnx"), "not a valid ONNX model")


def test_promote_to_an_unreachable_server_leaves_config_byte_identical(repo: Path, tmp_path: Path) -> None:
    VersionManager(repo, FakeControl(repo)).add("m", tmp_path / "new.onnx")
    config = (repo / "m" / "config.pbtxt").read_bytes()
    _refused(_cli(repo, "promote", "m", "2"), "cannot reach Triton")
    assert (repo / "m" / "config.pbtxt").read_bytes() == config
    _refused(_cli(repo, "canary", "m", "2"), "cannot reach Triton")
    assert (repo / "m" / "config.pbtxt").read_bytes() == config


class _Interrupted(FakeControl):
    def load(self, model: str, config_override: str | None = None) -> str | None:
        raise KeyboardInterrupt


def test_ctrl_c_during_promote_restores_the_config(repo: Path, tmp_path: Path) -> None:
    VersionManager(repo, FakeControl(repo)).add("m", tmp_path / "new.onnx")
    config = (repo / "m" / "config.pbtxt").read_bytes()
    with pytest.raises(KeyboardInterrupt):
        VersionManager(repo, _Interrupted(repo)).promote("m", 2)
    assert (repo / "m" / "config.pbtxt").read_bytes() == config
    assert not list((repo / "m").glob(".*tmp"))

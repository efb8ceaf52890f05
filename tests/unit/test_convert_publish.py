"""Publishing a version: killed at every step it leaves the old model or the new one; bad names,
links out of the repository and a repository that is a mount point.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from tritonstack.convert import atomic_publish
from tritonstack.convert.atomic_publish import STAGING_PREFIX, recover, repository_lock
from tritonstack.convert.pipeline import ConvertOptions
from tritonstack.convert.reference.digits import DIGITS_SPEC
from tritonstack.convert.repository import write_version
from tritonstack.convert.spec import VersionPolicy

from tritonstack.errors import RepositoryWriteError
from tritonstack.model_config import read_config

from .convert_models import mlp_onnx

ROOT = Path(__file__).resolve().parents[2]


def tree_digest(root: Path) -> dict[str, str]:
    """Every path under `root` with the SHA-256 of its bytes (folders: 'dir', links: their target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = "link:" + os.readlink(path)
        elif path.is_dir():
            found[key] = "dir"
        else:
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _artifact(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / f"model-{hashlib.sha256(content).hexdigest()[:8]}.onnx"
    path.write_bytes(content)
    return path


def _served(model_dir: Path) -> dict[str, object]:
    """What Triton would serve: the config (minus policy) and the files of each served version."""
    config = read_config(model_dir / "config.pbtxt")
    folders = sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())
    policy = config.version_policy
    kind = policy.WhichOneof("policy_choice")
    served = (sorted(policy.specific.versions) if kind == "specific" else
              folders if kind == "all" else folders[-(policy.latest.num_versions or 1):])
    config.ClearField("version_policy")
    return {"config": str(config), "versions": {v: tree_digest(model_dir / str(v)) for v in served}}


def _kill_at(step_index: int, repo: Path, artifact: Path) -> list[str]:
    """Run one write_version in a forked child that SIGKILLs itself before step `step_index`."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: count steps, die at the chosen one
        os.close(read)
        seen: list[str] = []

        def hook(name: str) -> None:
            seen.append(name)
            os.write(write, f"{name}\n".encode())
            if len(seen) == step_index:
                os.kill(os.getpid(), signal.SIGKILL)

        atomic_publish.set_step_hook(hook)
        try:
            write_version(repo, DIGITS_SPEC, files={"model.onnx": artifact}, manifest={"n": 2})
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        steps = pipe.read().splitlines()
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    return steps if killed else [*steps, "(finished)"]


@pytest.mark.parametrize("existing", [True, False], ids=["existing-model", "new-model"])
def test_a_kill_at_every_step_leaves_the_old_model_or_the_new_one(tmp_path: Path, existing: bool) -> None:
    base = tmp_path / "base"
    write_version(base, replace(DIGITS_SPEC, name="other"),
                  files={"model.onnx": _artifact(tmp_path, b"other")}, manifest={})
    if existing:
        write_version(base, DIGITS_SPEC, files={"model.onnx": _artifact(tmp_path, b"v1")}, manifest={})
    new_artifact = _artifact(tmp_path, b"v2")
    done = tmp_path / "done"
    shutil.copytree(base, done)
    write_version(done, DIGITS_SPEC, files={"model.onnx": new_artifact}, manifest={"n": 2})
    old_tree, new_tree = tree_digest(base), tree_digest(done)
    old_view = _served(base / "digits_mlp") if existing else None
    new_view = _served(done / "digits_mlp")
    step = 0
    outcomes = []
    while True:
        step += 1
        repo = tmp_path / f"kill-{step}"
        shutil.copytree(base, repo)
        steps = _kill_at(step, repo, new_artifact)
        if steps[-1] == "(finished)":
            break
        view = _served(repo / "digits_mlp") if (repo / "digits_mlp" / "config.pbtxt").is_file() else None
        assert view in (old_view, new_view), f"killed before {steps[-1]!r}: a mix of old and new"
        assert (repo / "other" / "1" / "model.onnx").is_file()
        with repository_lock(repo):
            recover(repo)
        after = tree_digest(repo)
        assert after in (old_tree, new_tree), f"killed before {steps[-1]!r}: recovery left {after}"
        assert not list(repo.rglob(f"{STAGING_PREFIX}*"))
        outcomes.append((steps[-1], "new" if after == new_tree else "old"))
    print(f"\n{'existing' if existing else 'new'} model: killed at {len(outcomes)} steps, each left old or new:",
          ", ".join(f"{name}->{state}" for name, state in outcomes))
    assert len(outcomes) >= 6 and {state for _, state in outcomes} == {"old", "new"}


def _step_names(tmp_path: Path, repo: Path) -> list[str]:
    """The steps a write of version 2 goes through (recorded on a copy of `repo`)."""
    copy = tmp_path / "record"
    shutil.copytree(repo, copy)
    steps = _kill_at(0, copy, _artifact(tmp_path, b"v2"))
    shutil.rmtree(copy)
    return steps


def test_the_next_write_cleans_a_killed_writers_leftovers(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_version(repo, DIGITS_SPEC, files={"model.onnx": _artifact(tmp_path, b"v1")}, manifest={})
    kill_at = _step_names(tmp_path, repo).index("replace config") + 1  # version 2 moved in, old config
    _kill_at(kill_at, repo, _artifact(tmp_path, b"v2"))
    assert (repo / "digits_mlp" / "2").is_dir() and list(repo.rglob(f"{STAGING_PREFIX}*"))
    assert write_version(repo, DIGITS_SPEC, files={"model.onnx": _artifact(tmp_path, b"v3")}, manifest={}) == 2
    assert not list(repo.rglob(f"{STAGING_PREFIX}*"))
    assert (repo / "digits_mlp" / "2" / "model.onnx").read_bytes() == b"v3"


def test_an_old_policy_never_serves_the_new_version_with_the_old_config(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    spec = replace(DIGITS_SPEC, version_policy=VersionPolicy.parse("latest:1"))
    write_version(repo, spec, files={"model.onnx": _artifact(tmp_path, b"v1")}, manifest={})
    kill_at = _step_names(tmp_path, repo).index("replace config") + 1  # version 2 moved in, old config
    _kill_at(kill_at, repo, _artifact(tmp_path, b"v2"))
    assert (repo / "digits_mlp" / "2").is_dir()
    assert list(read_config(repo / "digits_mlp" / "config.pbtxt").version_policy.specific.versions) == [1]


@pytest.mark.parametrize("name", ["../r1/ok/1", "../evil", "a/b", "..", ".hidden", "x" * 130])
def test_bad_names_write_nothing_anywhere_cli(tmp_path: Path, name: str) -> None:
    (tmp_path / "src").mkdir()
    model = mlp_onnx(tmp_path / "src" / "mlp.onnx")
    published = tmp_path / "r1" / "ok" / "1"
    published.mkdir(parents=True)
    (published / "model.onnx").write_bytes(b"published")
    before = tree_digest(tmp_path)
    done = subprocess.run([sys.executable, "-m", "tritonstack", "convert", str(model), "--name", name,
                           "--repository", str(tmp_path / "repo"), "--workdir", str(tmp_path / "work"),
                           "--precision", "fp32,fp16", "--no-progress"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "not allowed" in done.stderr
    assert tree_digest(tmp_path) == before


def test_bad_names_write_nothing_anywhere_function(tmp_path: Path) -> None:
    from tritonstack.convert.precision import Precision

    (tmp_path / "r1" / "ok" / "1").mkdir(parents=True)
    before = tree_digest(tmp_path)
    for name in ("../r1/ok/1", "../evil"):
        with pytest.raises(RepositoryWriteError, match="not allowed"):
            ConvertOptions(model=mlp_onnx(tmp_path.parent / "mlp.onnx"), name=name, repository=tmp_path / "repo",
                           workdir=tmp_path / "work")
    too_long = "m" * 126  # fits alone, not as m..._fp16
    with pytest.raises(RepositoryWriteError, match="_fp16"):
        ConvertOptions(model="x.onnx", name=too_long, repository=tmp_path / "repo", workdir=tmp_path / "work",
                       precisions=(Precision.FP32, Precision.FP16))
    with pytest.raises(RepositoryWriteError, match="plain file name"):
        write_version(tmp_path / "repo", DIGITS_SPEC, files={"../../x": tmp_path / "nothing"}, manifest={})
    assert tree_digest(tmp_path) == before


def test_convert_checks_the_repository_before_it_writes_its_workdir(tmp_path: Path) -> None:
    from tritonstack.convert.pipeline import convert_model

    model = mlp_onnx(tmp_path.parent / f"{tmp_path.name}-mlp.onnx")
    (tmp_path / "repo").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "repo" / "mlp").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    before = tree_digest(tmp_path)
    with pytest.raises(RepositoryWriteError, match="symbolic link"):
        convert_model(ConvertOptions(model=model, name="mlp", repository=tmp_path / "repo",
                                     workdir=tmp_path / "work"))
    assert tree_digest(tmp_path) == before


@pytest.mark.parametrize("where", ["model-folder", "version-folder", "file"])
def test_a_link_out_of_the_repository_is_refused_and_nothing_written(tmp_path: Path, where: str) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"keep")
    if where == "model-folder":
        repo.mkdir()
        (repo / "digits_mlp").symlink_to(outside, target_is_directory=True)
    else:
        write_version(repo, DIGITS_SPEC, files={"model.onnx": _artifact(tmp_path, b"v1")}, manifest={})
        target = repo / "digits_mlp" / ("7" if where == "version-folder" else "labels.txt")
        target.symlink_to(outside if where == "version-folder" else outside / "secret.txt")
    artifact = _artifact(tmp_path, b"v2")
    before = tree_digest(tmp_path)
    with pytest.raises(RepositoryWriteError, match="symbolic link") as raised:
        write_version(repo, DIGITS_SPEC, files={"model.onnx": artifact}, manifest={})
    assert "\n" not in str(raised.value)
    assert tree_digest(tmp_path) == before


def test_a_repository_that_is_a_mount_point(tmp_path: Path) -> None:
    repo = tmp_path / "volume"
    repo.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(repo)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); needs root with CAP_SYS_ADMIN")
    try:
        assert os.stat(repo).st_dev != os.stat(tmp_path).st_dev
        first = write_version(repo, DIGITS_SPEC, files={"model.onnx": _artifact(tmp_path, b"v1")}, manifest={})
        second = write_version(repo, DIGITS_SPEC, files={"model.onnx": _artifact(tmp_path, b"v2")}, manifest={})
        other = replace(DIGITS_SPEC, name="second_model")
        write_version(repo, other, files={"model.onnx": _artifact(tmp_path, b"s")}, manifest={})
        assert (first, second) == (1, 2)
        assert sorted(p.name for p in repo.iterdir()) == ["digits_mlp", "second_model"]
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
        print(f"\nrepository on its own tmpfs mount: versions {first}, {second} and a new model written")
    finally:
        subprocess.run(["umount", str(repo)], check=True)


def test_a_leftover_staging_folder_is_readable_like_its_model_folder(tmp_path: Path) -> None:
    """A server running as another user must still read the model folder (and skip the leftover)."""
    repo = tmp_path / "repo"
    write_version(repo, DIGITS_SPEC, files={"model.onnx": _artifact(tmp_path, b"v1")}, manifest={})
    _kill_at(_step_names(tmp_path, repo).index("rename version in") + 1, repo, _artifact(tmp_path, b"v2"))
    (staged,) = repo.glob(f"*/{STAGING_PREFIX}*")
    assert staged.stat().st_mode & 0o777 == (repo / "digits_mlp").stat().st_mode & 0o777


@pytest.mark.parametrize("at", ["pin old config", "rename version in", "replace config"])
def test_a_failed_step_is_rolled_back_at_once(tmp_path: Path, at: str) -> None:
    repo = tmp_path / "repo"
    write_version(repo, DIGITS_SPEC, files={"model.onnx": _artifact(tmp_path, b"v1")}, manifest={})
    artifact = _artifact(tmp_path, b"v2")
    before = tree_digest(repo)

    def fail(name: str) -> None:
        if name == at:
            raise OSError(28, "No space left on device")

    atomic_publish.set_step_hook(fail)
    try:
        with pytest.raises(RepositoryWriteError, match="No space left on device.*repository is unchanged"):
            write_version(repo, DIGITS_SPEC, files={"model.onnx": artifact}, manifest={})
    finally:
        atomic_publish.set_step_hook(None)
    assert tree_digest(repo) == before

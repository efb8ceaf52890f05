"""Publish a staged model version so that a kill at any point leaves the old model or the new one.

    with repository_lock(repository), model_folder_lock(repository / "mlp"):   # the latter if it exists
        recover(repository)
        publish(repository / "mlp", staged)      # `staged` = stage_dir(...) filled with <n>/ and config

Triton 2.51 treats every folder of a repository as a model (a stray `.staging/` there stops a
server started with the default `--exit-on-error`), but ignores non-numeric folders inside a model
folder. So a version is staged inside its own model folder (`<model>/.tritonstack-staging-*`; for a
new model, inside another model's folder), on the repository's own filesystem (a repository that is
a mount point works), and moved in by single renames, each atomic:

    existing model                                    new model
    1. config.pbtxt <- old config pinned to the       1. <repository>/<model> <- the staged model
       versions it serves now (skipped if pinned)        folder, complete
    2. <n>/ <- staged version (not served: pinned)
    3. config.pbtxt <- new config

Between 1 and 3 Triton serves exactly what it served before. A kill leaves a staging folder; the
next writer (under the repository lock) finds it: if step 3 was done it is deleted, otherwise the
version is moved back out and the original config restored, then it is deleted. `set_step_hook`
lets a test stop the process before any step.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tritonstack.errors import RepositoryWriteError
from tritonstack.model_config import config_text, read_config

__all__ = ["STAGING_PREFIX", "model_folder_lock", "publish", "recover", "repository_lock", "set_step_hook",
           "stage_dir", "step"]

_LOGGER = logging.getLogger(__name__)
STAGING_PREFIX = ".tritonstack-staging-"
_JOURNAL = "journal.json"
_ORIGINAL = "config.original.pbtxt"
_HOOK: Callable[[str], None] | None = None


def set_step_hook(hook: Callable[[str], None] | None) -> None:
    """Call `hook(step_name)` before every file-system change (tests kill the process there)."""
    global _HOOK  # noqa: PLW0603 - a test seam, set once per test
    _HOOK = hook


def step(name: str) -> None:
    """Mark the start of one file-system change."""
    if _HOOK is not None:
        _HOOK(name)


@contextmanager
def repository_lock(repository: Path) -> Iterator[None]:
    """Hold an exclusive lock on the repository folder (one writer at a time; no file is created)."""
    fd = os.open(repository, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def model_folder_lock(model_dir: Path, timeout_s: float = 600.0) -> Iterator[None]:
    """Hold an exclusive flock on an existing model folder, the lock `versions` commands take too, so a
    convert and a `versions add` never pick the same version number. Polled for up to `timeout_s`;
    RepositoryWriteError if another writer holds it that long. No file is created."""
    fd = os.open(model_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + timeout_s
        while not _try_flock(fd):
            if time.monotonic() >= deadline:
                raise RepositoryWriteError(
                    f"another writer (a versions command) holds the lock on {model_dir} for more than "
                    f"{timeout_s:.0f} s; nothing was written: wait for it to finish and retry")
            time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def stage_dir(repository: Path, model_dir: Path) -> Path:
    """A new staging folder on the repository's filesystem that Triton does not take for a model."""
    host = model_dir if model_dir.is_dir() else _host_for_new_model(repository)
    step("mkdir staging")
    staged = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=host))
    os.chmod(staged, host.stat().st_mode & 0o777)  # readable like its host (a server may run as another user)
    return staged


def _host_for_new_model(repository: Path) -> Path:
    device = repository.stat().st_dev
    for candidate in sorted(repository.iterdir()):
        if (candidate.is_dir() and not candidate.is_symlink() and not candidate.name.startswith(".")
                and (candidate / "config.pbtxt").is_file() and candidate.stat().st_dev == device):
            return candidate
    return repository  # an empty repository: nothing a stray folder could stop from loading


def publish(model_dir: Path, staged: Path, version: int) -> None:
    """Move `staged/<version>` and `staged/config.pbtxt` into `model_dir` (see the module docstring)."""
    if not model_dir.exists():
        _publish_new(model_dir, staged, version)
        return
    original = model_dir / "config.pbtxt"
    shutil.copyfile(original, staged / _ORIGINAL)
    _write(staged / _JOURNAL, json.dumps({"version": version}))
    _sync_tree(staged)
    pinned = _pinned_config(original, model_dir)
    if pinned is not None:
        _write(staged / "config.pinned.pbtxt", pinned)
        step("pin old config")
        os.replace(staged / "config.pinned.pbtxt", original)
    step("rename version in")
    os.rename(staged / str(version), model_dir / str(version))
    step("replace config")
    os.replace(staged / "config.pbtxt", original)
    _fsync_dir(model_dir)
    _discard(staged)


def _publish_new(model_dir: Path, staged: Path, version: int) -> None:
    folder = staged / model_dir.name
    step("mkdir model folder")
    folder.mkdir()
    step("move staged files")
    os.rename(staged / str(version), folder / str(version))
    os.rename(staged / "config.pbtxt", folder / "config.pbtxt")
    _sync_tree(folder)
    step("rename model in")
    os.rename(folder, model_dir)
    _fsync_dir(model_dir.parent)
    _discard(staged)


def _pinned_config(config_path: Path, model_dir: Path) -> str | None:
    """The old config with its policy pinned to the versions it serves now; None if already pinned."""
    config = read_config(config_path)
    policy = config.version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "specific":
        return None
    folders = sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())
    served = folders if kind == "all" else folders[-(policy.latest.num_versions or 1):]
    config.version_policy.specific.versions.extend(served)
    return config_text(config)


def recover(repository: Path) -> None:
    """Undo or finish what a killed writer left: every staging folder goes; old-or-new is restored."""
    for staged in _leftovers(repository):
        model_dir = staged.parent
        journal = staged / _JOURNAL
        if journal.is_file() and (staged / "config.pbtxt").is_file():  # killed before the new config
            version = str(json.loads(journal.read_text())["version"])
            if (model_dir / version).is_dir() and not (staged / version).exists():
                step("recover: move version out")
                os.rename(model_dir / version, staged / version)
            if (staged / _ORIGINAL).is_file():
                step("recover: restore config")
                os.replace(staged / _ORIGINAL, model_dir / "config.pbtxt")
        _LOGGER.warning("removed %s, left by an interrupted write", staged)
        _discard(staged)


def _leftovers(repository: Path) -> list[Path]:
    if not repository.is_dir():
        return []
    found = [p for p in repository.glob(f"{STAGING_PREFIX}*") if p.is_dir() and not p.is_symlink()]
    found += [p for p in repository.glob(f"*/{STAGING_PREFIX}*") if p.is_dir() and not p.is_symlink()]
    return sorted(found)


def _discard(staged: Path) -> None:
    """Delete a staging folder (Triton ignores it meanwhile: a non-numeric folder in a model folder)."""
    step("remove staging")
    shutil.rmtree(staged, ignore_errors=True)


def _write(path: Path, text: str) -> None:
    step(f"write {path.name}")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_tree(root: Path) -> None:
    """fsync every file and folder under `root`, so a rename never publishes unwritten data."""
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(Path(folder) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

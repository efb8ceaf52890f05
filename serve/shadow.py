"""The model repository one launch of tritonserver serves: the user's, with the Python-routed models switched.

    shadow = build_shadow(Path("model_repository"), plan, workdir / "repository", owner=user)
    argv += [f"--model-repository={shadow}", *(f"--load-model={m}" for m in plan.models)]
    ...  # ready: every model loaded, the Python-routed ones on the Python runner
    release_shadow(shadow, Path("model_repository"), plan)  # later loads read the user's folders as they are

Each model folder of the user's repository is a symlink in the shadow, except those the plan leaves to the
Python runner (`plan.python`): their shadow folder holds config.pbtxt switched to the Python runner
(`python_runner_model_config`) and a symlink to everything else the model folder holds. So every model is
loaded before the server reports ready, and a (re)start answers no NOT_FOUND for them. Skipped models
(`plan.skipped`) are left out. Once the server is ready, `release_shadow` turns those folders into symlinks
too: an explicit load then reads the user's current config and version folders (`ops/versions.py` adds
version folders after launch), and `EmbeddedServer.load_model` sends the switch as a config override.
The shadow is built anew at every launch (the user may have changed configs in between).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from tritonstack.serve.plan import RepositoryPlan, python_runner_model_config
from tritonstack.serve.sandbox import ServiceUser

from tritonstack.model_config import write_config

__all__ = ["build_shadow", "release_shadow"]

_LOGGER = logging.getLogger(__name__)
_CONFIG = "config.pbtxt"


def build_shadow(repository: Path, plan: RepositoryPlan, target: Path, *,
                 owner: ServiceUser | None = None) -> Path:
    """Create `target` (it must not exist) serving the models of `plan` from `repository`; return it.
    Folders and files made here are readable by `owner` (the service user), or by their creator."""
    root = Path(repository).resolve()
    _make_dir(target, owner)
    for name in plan.models:
        if name in plan.python:
            _switched_folder(root / name, target / name, owner)
        else:
            (target / name).symlink_to(root / name, target_is_directory=True)
    _LOGGER.debug("shadow repository %s: %d models, %d switched to the Python runner", target,
                  len(plan.models), len(plan.python))
    return target


def release_shadow(shadow: Path, repository: Path, plan: RepositoryPlan) -> None:
    """Replace each switched folder of `shadow` by a symlink to the user's folder (after the launch loads)."""
    root = Path(repository).resolve()
    for name in plan.python:
        folder = shadow / name
        if folder.is_symlink() or not folder.is_dir():
            continue
        link = shadow.parent / f".{shadow.name}-{name}.link"
        aside = shadow.parent / f".{shadow.name}-{name}.released"
        link.symlink_to(root / name, target_is_directory=True)
        folder.rename(aside)
        link.rename(folder)
        shutil.rmtree(aside, ignore_errors=True)


def _switched_folder(model_dir: Path, folder: Path, owner: ServiceUser | None) -> None:
    """`folder`: config.pbtxt switched to the Python runner, a symlink to each other entry of `model_dir`."""
    _make_dir(folder, owner)
    write_config(python_runner_model_config(model_dir), folder / _CONFIG)
    os.chmod(folder / _CONFIG, 0o644)
    if owner is not None:
        os.chown(folder / _CONFIG, owner.uid, owner.gid)
    for entry in model_dir.iterdir():
        if entry.name != _CONFIG:
            (folder / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())


def _make_dir(path: Path, owner: ServiceUser | None) -> None:
    path.mkdir()
    os.chmod(path, 0o755)  # inside the server's private 0700 work dir
    if owner is not None:
        os.chown(path, owner.uid, owner.gid)

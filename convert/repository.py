"""Write model versions into a Triton model repository, atomically and never overwriting.

    version = write_version(
        Path("model_repository"), spec, files={"model.onnx": onnx_path}, manifest={"precision": "fp32"}
    )

Names, versions and the repository's folders are checked before anything is written. A version is
staged on the repository's own filesystem and moved in by atomic renames (`atomic_publish`), so a
failure or a kill at any point leaves the old model or the new one, never a mix. Every version gets
`manifest.json`, holding the SHA-256 of each file next to it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from tritonstack.convert.atomic_publish import (
    model_folder_lock,
    publish,
    recover,
    repository_lock,
    stage_dir,
    step,
)
from tritonstack.convert.existing import carry_over
from tritonstack.convert.manifest import MANIFEST, files_sha256
from tritonstack.convert.spec import ModelSpec, check_model_name

from tritonstack.errors import RepositoryWriteError
from tritonstack.model_config import config_text, read_config

__all__ = ["MANIFEST", "check_repository", "existing_versions", "write_version"]


def existing_versions(model_dir: Path) -> list[int]:
    """The numeric version folders of a model, sorted."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def check_repository(repository: Path, names: list[str]) -> None:
    """Refuse, before anything is written, names and folders a write could escape through.

    Each name must be a plain model name; the repository must be a folder (or not exist yet); a
    model folder must not be a symbolic link, nor hold one that points outside the repository.
    """
    for name in names:
        check_model_name(name)
    repository = Path(repository)
    if repository.exists() and not repository.is_dir():
        raise RepositoryWriteError(f"repository {repository} is a file, not a folder; pass a folder "
                                   "with --repository")
    if not repository.exists():
        return
    root = repository.resolve()
    for name in names:
        model_dir = repository / name
        if model_dir.is_symlink():
            raise RepositoryWriteError(
                f"model folder {model_dir} is a symbolic link (to {os.readlink(model_dir)}); tritonstack "
                "writes only real folders inside the repository: replace the link with a folder")
        _check_links(model_dir, root)


def _check_links(model_dir: Path, root: Path) -> None:
    for folder, dirs, files in os.walk(model_dir):
        for entry in (Path(folder) / n for n in (*dirs, *files)):
            if entry.is_symlink() and not entry.resolve().is_relative_to(root):
                raise RepositoryWriteError(
                    f"{entry} is a symbolic link to {entry.resolve()}, outside the repository {root}; "
                    "nothing was written: replace the link with the real folder or file")


def write_version(
    repository: Path,
    spec: ModelSpec,
    *,
    files: dict[str, Path],
    manifest: dict[str, Any],
    version: int | None = None,
    keep: tuple[str, ...] = (),
) -> int:
    """Add `files` as a new version of `spec.name`, with config.pbtxt and manifest.json.

    `keep`: fields of the model's existing config.pbtxt (from `existing.KEEPABLE`) the new config keeps.
    """
    repository = Path(repository)
    check_repository(repository, [spec.name])
    for name, source in files.items():
        if Path(name).name != name or name in (MANIFEST, "config.pbtxt"):
            raise RepositoryWriteError(f"artifact name {name!r} must be a plain file name other than "
                                       f"{MANIFEST}")
        if not Path(source).is_file():
            raise RepositoryWriteError(f"artifact {source} for {name!r} does not exist; the repository "
                                       "is unchanged")
    repository.mkdir(parents=True, exist_ok=True)
    with repository_lock(repository):
        recover(repository)
        model_dir = repository / spec.name
        if not model_dir.is_dir():  # a new model: only converts (holding the repository lock) create one
            return _write_locked(repository, spec, files, manifest, version, keep)
        with model_folder_lock(model_dir):  # `versions add` picks numbers under the same lock
            return _write_locked(repository, spec, files, manifest, version, keep)


def _write_locked(repository: Path, spec: ModelSpec, files: dict[str, Path], manifest: dict[str, Any],
                  version: int | None, keep: tuple[str, ...]) -> int:
    model_dir = repository / spec.name
    config = spec.to_config()
    if keep and (model_dir / "config.pbtxt").is_file():
        carry_over(read_config(model_dir / "config.pbtxt"), config, keep)
    taken = existing_versions(model_dir)
    version = version if version is not None else (taken[-1] + 1 if taken else 1)
    if version < 1 or version in taken or (model_dir / str(version)).exists():
        raise RepositoryWriteError(
            f"version {version} of model {spec.name!r} is invalid or exists already; "
            f"existing versions: {taken or 'none'} (a new version never overwrites an old one)"
        )
    try:
        staged = stage_dir(repository, model_dir)
        _stage(staged, config, files, {**manifest, "model": spec.name, "version": version}, version)
        publish(model_dir, staged, version)
    except OSError as exc:
        recover(repository)
        raise RepositoryWriteError(
            f"writing version {version} of {spec.name!r} failed ({exc.strerror or exc}); "
            "the repository is unchanged"
        ) from exc
    return version


def _stage(staging: Path, config: Any, files: dict[str, Path], manifest: dict, version: int) -> None:
    version_dir = staging / str(version)
    step("mkdir version")
    version_dir.mkdir()
    for name, source in files.items():
        step(f"copy {name}")
        shutil.copyfile(source, version_dir / name)
    manifest = {**manifest, "files": files_sha256(version_dir)}
    step("write manifest")
    (version_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    step("write config")
    (staging / "config.pbtxt").write_text(config_text(config))

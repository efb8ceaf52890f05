"""Write model versions into a Triton model repository, atomically and never overwriting.

    version = write_version(
        Path("model_repository"), spec, files={"model.onnx": onnx_path}, manifest={"precision": "fp32"}
    )

A version is staged next to the repository and moved in with one rename, so a failure at any
point (bad input, gate failure, disk full, Ctrl-C) leaves the repository as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tritonstack.convert.spec import ModelSpec, check_model_name

from tritonstack.errors import RepositoryWriteError
from tritonstack.model_config import config_text

__all__ = ["existing_versions", "write_version"]

MANIFEST = "manifest.json"


def existing_versions(model_dir: Path) -> list[int]:
    """The numeric version folders of a model, sorted."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def write_version(
    repository: Path,
    spec: ModelSpec,
    *,
    files: dict[str, Path],
    manifest: dict[str, Any],
    version: int | None = None,
) -> int:
    """Add `files` as a new version of `spec.name`, with config.pbtxt and manifest.json."""
    model_dir = Path(repository) / check_model_name(spec.name)
    taken = existing_versions(model_dir)
    version = version if version is not None else (taken[-1] + 1 if taken else 1)
    if version < 1 or version in taken:
        raise RepositoryWriteError(
            f"version {version} of model {spec.name!r} is invalid or exists already; "
            f"existing versions: {taken or 'none'} (a new version never overwrites an old one)"
        )
    Path(repository).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", dir=Path(repository).parent))
    try:
        _stage(staging, spec, files, {**manifest, "model": spec.name, "version": version}, version)
        _commit(staging, model_dir, version)
    except OSError as exc:
        raise RepositoryWriteError(
            f"writing version {version} of {spec.name!r} failed ({exc.strerror or exc}); "
            "the repository is unchanged"
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return version


def _stage(staging: Path, spec: ModelSpec, files: dict[str, Path], manifest: dict, version: int) -> None:
    version_dir = staging / str(version)
    version_dir.mkdir()
    for name, source in files.items():
        if Path(name).name != name:
            raise RepositoryWriteError(f"artifact name {name!r} must be a plain file name")
        shutil.copy2(source, version_dir / name)
    (version_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (staging / "config.pbtxt").write_text(config_text(spec.to_config()))


def _commit(staging: Path, model_dir: Path, version: int) -> None:
    if not model_dir.exists():
        os.rename(staging, model_dir)
        staging.mkdir()  # so the caller's cleanup finds something to remove
        return
    os.rename(staging / str(version), model_dir / str(version))
    os.replace(staging / "config.pbtxt", model_dir / "config.pbtxt")

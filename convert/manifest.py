"""Facts recorded next to every model version (`<version>/manifest.json`), and checking them.

    manifest = base_manifest(source=Path("digits.joblib"), precision="fp32")
    check = check_version(Path("model_repository/digits_mlp/1"))
    check.status        # "verified", "unverified", "changed: model.onnx", "no manifest", ...

Every manifest holds `files`: the SHA-256 of each file of its version folder, so what is served can
be compared with what was verified. A manifest written by `tritonstack convert` also records how
the version was verified (`verified_by`); one written by `versions add` records only the hashes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tritonstack.errors import ConfigError

__all__ = ["ADDED", "MANIFEST", "VersionCheck", "base_manifest", "check_version", "file_sha256",
           "files_sha256", "record_file", "tool_versions", "write_added_manifest"]

MANIFEST = "manifest.json"
#: status of a version `versions add` copied in: its files match the hashes recorded then, but no
#: accuracy check ran on it (not a problem for `ops status`'s exit code; a later change is)
ADDED = "unverified: added by `versions add`, hashes match, no accuracy gate ran"

_TOOLS = ("torch", "onnx", "onnxruntime", "skl2onnx", "scikit-learn", "onnxconverter-common",
          "transformers", "tritonstack")


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tool_versions() -> dict[str, str]:
    """Installed versions of the tools a conversion may use."""
    versions = {}
    for tool in _TOOLS:
        try:
            versions[tool] = importlib.metadata.version(tool)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def base_manifest(*, source: Path, precision: str, **extra: Any) -> dict[str, Any]:
    """The fields every manifest has: source hash, precision, tool versions, creation time."""
    return {
        "source": str(source),
        "source_sha256": file_sha256(source),
        "precision": precision,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "tools": tool_versions(),
        "verified_by": "tritonstack convert",
        **extra,
    }


def files_sha256(version_dir: Path) -> dict[str, str]:
    """SHA-256 of every file under a version folder (relative paths), the manifest left out."""
    files = sorted(p for p in Path(version_dir).rglob("*") if p.is_file() and p.name != MANIFEST)
    return {p.relative_to(version_dir).as_posix(): file_sha256(p) for p in files}


@dataclass(frozen=True)
class VersionCheck:
    """Whether a version folder holds what its manifest describes."""

    status: str  # verified | ADDED | unverified | changed: <files> | no manifest | no file hashes
    verified: bool


def check_version(version_dir: Path) -> VersionCheck:
    """Compare a version folder's files with the hashes of its manifest (verified = all equal + gated)."""
    try:
        manifest = json.loads((Path(version_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return VersionCheck("no manifest", False)
    recorded = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(recorded, dict):
        return VersionCheck("no file hashes", False)
    actual = files_sha256(version_dir)
    changed = sorted(n for n in set(recorded) | set(actual) if recorded.get(n) != actual.get(n))
    if changed:
        return VersionCheck(f"changed: {', '.join(changed)}", False)
    if not manifest.get("verified_by"):
        return VersionCheck(ADDED if manifest.get("added_by") else "unverified", False)
    return VersionCheck("verified", True)


def write_added_manifest(version_dir: Path, *, source: Path, model: str, version: int) -> dict[str, Any]:
    """Give a version copied in by hand (`versions add`) a manifest with the hashes of its files.

    A manifest that came with the folder is kept (with `model`/`version` updated) if its hashes
    match the files; a mismatch raises ConfigError naming the files. Without one, a manifest is
    written that records the hashes but no verification (status ADDED).
    """
    path = Path(version_dir) / MANIFEST
    actual = files_sha256(version_dir)
    try:
        manifest: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError as exc:
        raise ConfigError(f"{source}: {MANIFEST} is not valid JSON ({exc}); fix or remove it") from exc
    recorded = manifest.get("files")
    if isinstance(recorded, dict) and recorded != actual:
        changed = sorted(n for n in set(recorded) | set(actual) if recorded.get(n) != actual.get(n))
        raise ConfigError(f"{source} does not hold what its {MANIFEST} describes (changed: "
                          f"{', '.join(changed)}); add the folder as it was converted, or convert again")
    if not manifest:
        manifest = {"source": str(Path(source).resolve()), "added_by": "tritonstack versions add",
                    "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        if Path(source).is_file():
            manifest["source_sha256"] = file_sha256(Path(source))
    manifest.update({"model": model, "version": version, "files": actual})
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def record_file(version_dir: Path, path: Path, *, by: str) -> bool:
    """Add the hash of `path` (a file just written into `version_dir` by a tritonstack command, e.g. the
    drift reference) to the folder's manifest, when every other file still matches it; the manifest's
    verification stands, since the model files are unchanged. False (manifest untouched) otherwise."""
    manifest_path = Path(version_dir) / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return False
    recorded = manifest.get("files") if isinstance(manifest, dict) else None
    name = Path(path).relative_to(version_dir).as_posix()
    actual = files_sha256(version_dir)
    if not isinstance(recorded, dict) or any(recorded.get(n) != actual.get(n)
                                             for n in set(recorded) | set(actual) if n != name):
        return False
    manifest["files"] = {**recorded, name: actual[name]}
    manifest.setdefault("added_files", {})[name] = by
    staged = manifest_path.with_name(f".{MANIFEST}.tmp")
    staged.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    staged.replace(manifest_path)
    return True

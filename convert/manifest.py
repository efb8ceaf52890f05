"""Facts recorded next to every model version (`<version>/manifest.json`).

    manifest = base_manifest(source=Path("digits.joblib"), precision="fp32")
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
from pathlib import Path
from typing import Any

__all__ = ["base_manifest", "file_sha256", "tool_versions"]

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
        **extra,
    }

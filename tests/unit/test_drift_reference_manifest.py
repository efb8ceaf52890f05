"""`ops drift-reference` into a converted (verified) version folder keeps it verified: the new file's
hash goes into the manifest (it said "changed: drift_reference.json" and failed `ops status`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tritonstack.convert.manifest import MANIFEST, check_version, files_sha256

from tritonstack.cli import main


def _verified_version(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"not really onnx, only hashed")
    manifest = {"verified_by": "accuracy gate", "files": files_sha256(folder)}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def _drift_reference(version: Path, values: Path) -> None:
    main(["ops", "drift-reference", str(version), "--values", str(values), "--tensor", "features"])


def test_drift_reference_keeps_a_verified_version_verified(tmp_path: Path) -> None:
    version = _verified_version(tmp_path / "iris" / "1")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((500, 4), dtype=np.float32))
    _drift_reference(version, tmp_path / "x.npy")
    assert check_version(version).status == "verified", check_version(version)
    manifest = json.loads((version / MANIFEST).read_text())
    assert manifest["added_files"] == {"drift_reference.json": "tritonstack ops drift-reference"}


def test_a_changed_version_is_not_blessed_by_drift_reference(tmp_path: Path) -> None:
    version = _verified_version(tmp_path / "iris" / "1")
    (version / "model.onnx").write_bytes(b"tampered")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((500, 4), dtype=np.float32))
    _drift_reference(version, tmp_path / "x.npy")
    assert check_version(version).status.startswith("changed: ")
    assert "drift_reference.json" in check_version(version).status

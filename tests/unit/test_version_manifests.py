"""Every version has a manifest with its files' hashes; `ops status` says whether they are what was verified."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tritonstack.convert.manifest import ADDED, check_version
from tritonstack.convert.reference.digits import DIGITS_SPEC
from tritonstack.convert.repository import write_version
from tritonstack.ops.versions import VersionManager

from tritonstack.errors import ConfigError

from .test_ops_versions import FakeControl
from .test_ops_versions import digits_model_bytes as model_bytes  # the config's tensors

ROOT = Path(__file__).resolve().parents[2]


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    artifact = tmp_path / "model.onnx"
    artifact.write_bytes(model_bytes("v1"))
    write_version(repo, DIGITS_SPEC, files={"model.onnx": artifact},
                  manifest={"verified_by": "tritonstack convert"})
    return repo


def test_versions_add_writes_a_manifest_with_the_file_hashes(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    new = tmp_path / "new.onnx"
    new.write_bytes(model_bytes("v2"))
    manager = VersionManager(repo, FakeControl(repo))
    assert manager.add("digits_mlp", new) == 2
    manifest = json.loads((repo / "digits_mlp" / "2" / "manifest.json").read_text())
    assert manifest["files"] == {"model.onnx": hashlib.sha256(model_bytes("v2")).hexdigest()}
    assert manifest["source_sha256"] == manifest["files"]["model.onnx"]
    assert manifest["version"] == 2 and manifest["added_by"] == "tritonstack versions add"
    assert check_version(repo / "digits_mlp" / "2").status == ADDED
    assert check_version(repo / "digits_mlp" / "1").status == "verified"


def test_a_converted_folder_keeps_its_manifest_and_a_tampered_one_is_refused(tmp_path: Path) -> None:
    repo, other = _repo(tmp_path), tmp_path / "other"
    artifact = tmp_path / "m2.onnx"
    artifact.write_bytes(model_bytes("v2 converted"))
    write_version(other, DIGITS_SPEC, files={"model.onnx": artifact}, manifest={"verified_by": "tritonstack convert"})
    manager = VersionManager(repo, FakeControl(repo))
    assert manager.add("digits_mlp", other / "digits_mlp" / "1") == 2
    assert check_version(repo / "digits_mlp" / "2").status == "verified"
    (other / "digits_mlp" / "1" / "model.onnx").write_bytes(model_bytes("tampered"))
    with pytest.raises(ConfigError, match=r"changed: model.onnx"):
        manager.add("digits_mlp", other / "digits_mlp" / "1")
    assert sorted(p.name for p in (repo / "digits_mlp").iterdir() if p.name.isdigit()) == ["1", "2"]


def test_ops_status_flags_changed_files_and_exits_1(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "digits_mlp" / "2").mkdir()  # a version folder copied in by hand, no manifest
    (repo / "digits_mlp" / "2" / "model.onnx").write_bytes(b"x")

    def status(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tritonstack", "ops", "status", "--repository", str(repo),
                               *extra], capture_output=True, text=True, timeout=60, cwd=ROOT)

    calm = status("--allow-unverified")
    assert calm.returncode == 0, calm.stderr
    assert "verified" in calm.stdout and "no manifest" in calm.stdout
    served_unverified = status()  # the config serves the latest version: 2, which has no manifest
    print(served_unverified.stderr.strip())
    assert served_unverified.returncode == 1 and len(served_unverified.stderr.strip().splitlines()) == 1
    assert "served versions not verified: digits_mlp 2 (no manifest)" in served_unverified.stderr
    (repo / "digits_mlp" / "1" / "model.onnx").write_bytes(b"swapped after verification")
    alarmed = status("--allow-unverified")
    assert alarmed.returncode == 1 and "changed: model.onnx" in alarmed.stdout


def test_a_served_versions_add_version_says_no_gate_ran_and_passes_ops_status(tmp_path: Path) -> None:
    """Outside tester's find: after the documented `versions add`, the new version showed a bare
    "unverified". It is deliberate (no accuracy gate ran), so the table says so and the exit code
    stays 0 while its hashes match; a later change to its files still exits 1."""
    repo, new = _repo(tmp_path), tmp_path / "new.onnx"
    new.write_bytes(model_bytes("v2"))
    manager = VersionManager(repo, FakeControl(repo))
    manager._write_policy("digits_mlp", [manager.add("digits_mlp", new), 1])  # as `versions canary` leaves it

    def status() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tritonstack", "ops", "status", "--repository", str(repo)],
                              capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, "COLUMNS": "200"})

    ok = status()
    print(ok.stdout)
    assert ok.returncode == 0, ok.stderr
    assert "no accuracy gate ran" in ok.stdout
    (repo / "digits_mlp" / "2" / "model.onnx").write_bytes(model_bytes("swapped"))
    assert status().returncode == 1

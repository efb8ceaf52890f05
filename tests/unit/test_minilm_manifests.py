"""A freshly built MiniLM repository passes its own `ops status` (outside tester's find: every MiniLM
version was "unverified", so `ops status` exited 1 on a fresh `models build`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from tritonstack.convert.manifest import check_version
from tritonstack.convert.reference import minilm

ROOT = Path(__file__).resolve().parents[2]


def test_the_minilm_fp32_versions_are_verified_and_pass_ops_status(tmp_path: Path) -> None:
    repo, fake_onnx = tmp_path / "repo", tmp_path / "model.onnx"
    fake_onnx.write_bytes(b"stands in for the exported encoder")
    error = SimpleNamespace(max_abs=1e-7, as_dict=lambda: {"max_abs": 1e-7})
    minilm._write_fp32(repo, fake_onnx, minilm._base_manifest(), {"embedding": error}, {"variants": {}})
    checks = {name: check_version(repo / name / "1").status
              for name in ("minilm_tokenizer", "minilm_encoder", "minilm")}
    print(checks)
    assert set(checks.values()) == {"verified"}
    status = subprocess.run([sys.executable, "-m", "tritonstack", "ops", "status", "--repository", str(repo)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert status.returncode == 0, status.stderr

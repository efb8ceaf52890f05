"""`tritonstack convert` end to end in a subprocess: success, and one-line errors that write nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tritonstack.convert.verify import run_onnx

from .convert_models import mlp_onnx

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tritonstack", "convert", *map(str, args)],
                          capture_output=True, text=True, timeout=240, cwd=ROOT)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    model = mlp_onnx(root / "mlp.onnx")
    rng = np.random.default_rng(0)
    calibration, holdout = rng.standard_normal((32, 4)), rng.standard_normal((64, 4))
    np.save(root / "calib.npy", calibration.astype(np.float32))
    labels = run_onnx(model, {"x": holdout.astype(np.float32)})["y"].argmax(1)
    np.savez(root / "holdout.npz", x=holdout.astype(np.float32), labels=labels)
    np.save(root / "calib_bad.npy", rng.standard_normal((32, 5)).astype(np.float32))
    (root / "corrupt.onnx").write_bytes(b"\x08\x07garbage that is not a protobuf")
    return {"model": model, "calib": root / "calib.npy", "holdout": root / "holdout.npz",
            "calib_bad": root / "calib_bad.npy", "corrupt": root / "corrupt.onnx"}


def _snapshot(repo: Path) -> list[str]:
    return sorted(str(p.relative_to(repo)) for p in repo.rglob("*")) if repo.exists() else []


def _one_line_error(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_convert_writes_fp32_fp16_int8_models(files: dict[str, Path], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    done = _run(files["model"], "--name", "mlp", "--repository", repo, "--workdir", tmp_path / "build",
                "--precision", "fp32,fp16,int8", "--calibration", files["calib"], "--holdout", files["holdout"],
                "--budget", "0.05", "--version-policy", "latest:2", "--preferred-batch-size", "8",
                "--trt-accelerator", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in repo.iterdir()) == ["mlp", "mlp_fp16", "mlp_int8"]
    config = (repo / "mlp_int8" / "config.pbtxt").read_text()
    assert "num_versions: 2" in config and "preferred_batch_size: 8" in config and 'value: "INT8"' in config
    assert "mlp_int8" in done.stdout and "passed" in done.stdout
    again = _run(files["model"], "--name", "mlp", "--repository", repo, "--workdir", tmp_path / "build",
                 "--no-progress")
    assert again.returncode == 0 and sorted(p.name for p in (repo / "mlp").iterdir()) == ["1", "2", "config.pbtxt"]


@pytest.mark.parametrize(
    ("case", "needles"),
    [
        ("corrupt", ("corrupt.onnx is not a valid ONNX model", "re-export")),
        ("wrong_spec", ("input 'x' declared FP32[7]", "takes FP32[4]")),
        ("wrong_name", ("do not match the model's inputs ['x']",)),
        ("bad_calibration", ("calibration data: input 'x' has shape (32, 5)", "expects ('N', 4)")),
        ("gate", ("mlp_int8 (minmax calibration, 32 samples) rejected by the accuracy gate", "cosine")),
        ("missing_holdout", ("needs a held-out set", "--holdout")),
        ("bad_precision", ("precision(s) ['int4'] unknown",)),
    ],
)
def test_errors_are_one_line_and_leave_the_repository_unchanged(files: dict[str, Path], tmp_path: Path,
                                                                case: str, needles: tuple[str, ...]) -> None:
    repo = tmp_path / "repo"
    ok = _run(files["model"], "--name", "mlp", "--repository", repo, "--workdir", tmp_path / "b", "--no-progress")
    assert ok.returncode == 0, ok.stderr
    before = _snapshot(repo)
    int8 = ["--precision", "int8", "--calibration", files["calib"]]
    args = {
        "corrupt": [files["corrupt"]],
        "wrong_spec": [files["model"], "--input", "x:FP32:7"],
        "wrong_name": [files["model"], "--input", "features:FP32:4"],
        "bad_calibration": [files["model"], "--precision", "int8", "--calibration", files["calib_bad"],
                            "--holdout", files["holdout"]],
        "gate": [files["model"], *int8, "--holdout", files["holdout"], "--metric", "cosine",
                 "--budget", "0.99999999"],
        "missing_holdout": [files["model"], *int8],
        "bad_precision": [files["model"], "--precision", "int4"],
    }[case]
    done = _run(*args, "--name", "mlp", "--repository", repo, "--workdir", tmp_path / "b", "--no-progress")
    _one_line_error(done, *needles)
    assert _snapshot(repo) == before
    assert not [p for p in repo.parent.iterdir() if p.name.startswith(".mlp")]


def test_torch_factory_with_weights_and_fp16(tmp_path: Path) -> None:
    import torch

    from .convert_models import tiny_cnn

    torch.save(tiny_cnn().state_dict(), tmp_path / "w.pt")
    torch.save({"unexpected": torch.zeros(1)}, tmp_path / "wrong.pt")
    common = ["--name", "cnn", "--repository", tmp_path / "repo", "--workdir", tmp_path / "b", "--no-progress"]
    done = _run("tests.unit.convert_models:tiny_cnn", "--weights", tmp_path / "w.pt", "--input", "image:FP32:1,8,8",
                "--output", "logits", "--precision", "fp16", *common)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["cnn", "cnn_fp16"]
    wrong = _run("tests.unit.convert_models:tiny_cnn", "--weights", tmp_path / "wrong.pt",
                 "--input", "image:FP32:1,8,8", *common)
    _one_line_error(wrong, "wrong.pt is not a state dict for this module")
    no_spec = _run("tests.unit.convert_models:tiny_cnn", *common)
    _one_line_error(no_spec, "needs an input spec", "--input NAME:DTYPE:DIMS")

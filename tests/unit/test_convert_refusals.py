"""`tritonstack convert` refuses in one line what an outside tester broke it with (issue 13 items 7, 8, 9):
NaN/Inf samples, INT8 of a RandomForest, and a --name that reads as a variant of another model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tritonstack.convert.pipeline import ConvertOptions
from tritonstack.convert.samples import load_samples
from tritonstack.convert.spec import TensorSpec

from tritonstack.errors import CalibrationError, ConfigError

from .convert_models import mlp_onnx

ROOT = Path(__file__).resolve().parents[2]


def _convert(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tritonstack", "convert", *map(str, args), "--no-progress"],
                          capture_output=True, text=True, timeout=240, cwd=ROOT)


def _one_line(done: subprocess.CompletedProcess, *needles: str) -> str:
    print(done.stderr.strip())
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Warning" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def test_nan_samples_are_refused_before_use() -> None:
    spec = [TensorSpec(name="x", dtype="FP32", dims=(4,))]
    data = np.ones((8, 4), np.float32)
    data[2, 1] = np.nan
    data[5, 0] = np.inf
    with pytest.raises(CalibrationError, match=r"calibration data 'x' contains NaN/Inf \(2 of 32 values\)"):
        load_samples(data, spec, what="calibration data")
    with pytest.raises(CalibrationError, match=r"held-out data 'labels' contains NaN/Inf"):
        load_samples({"x": np.ones((2, 4), np.float32), "labels": np.array([np.nan, 1.0])}, spec,
                     what="held-out data")


def test_all_nan_calibration_is_one_line(tmp_path: Path) -> None:
    model = mlp_onnx(tmp_path / "m.onnx")
    np.save(tmp_path / "calib.npy", np.full((16, 4), np.nan, np.float32))
    done = _convert(model, "--name", "m", "--repository", tmp_path / "repo", "--workdir", tmp_path / "w",
                    "--precision", "fp32,int8", "--calibration", tmp_path / "calib.npy")
    _one_line(done, "calibration data 'x' contains NaN/Inf (64 of 64 values)")
    assert not (tmp_path / "repo").exists()


def test_int8_of_a_random_forest_says_trees_are_not_quantizable(tmp_path: Path) -> None:
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    x, y = load_breast_cancer(return_X_y=True)
    x = x[:, :13].astype(np.float32)
    joblib.dump(RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(x[:400], y[:400]),
                tmp_path / "rf.joblib")
    np.save(tmp_path / "calib.npy", x[:64])
    np.savez(tmp_path / "holdout.npz", features=x[400:], labels=y[400:])
    done = _convert(tmp_path / "rf.joblib", "--name", "rf", "--repository", tmp_path / "repo", "--workdir",
                    tmp_path / "w", "--precision", "fp32,int8", "--calibration", tmp_path / "calib.npy",
                    "--holdout", tmp_path / "holdout.npz")
    line = _one_line(done, "ONNX Runtime quantizes none of its operators", "leave int8 out")
    assert "calibration data fits" not in line and "ai.onnx domain" not in line
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize("name", ["base_fp16", "base_int8", "base_trt", "base_trt_fp16", "BASE_INT8"])
def test_a_name_that_reads_as_a_variant_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=f"model name '{name}' ends with .* holds the FP32 model"):
        ConvertOptions(model=tmp_path / "m.onnx", name=name, repository=tmp_path / "repo",
                       workdir=tmp_path / "w")
    ConvertOptions(model=tmp_path / "m.onnx", name="base_fp32", repository=tmp_path / "repo", workdir=tmp_path)
    ConvertOptions(model=tmp_path / "m.onnx", name="fp16_base", repository=tmp_path / "repo", workdir=tmp_path)


def test_cli_variant_name_is_one_line(tmp_path: Path) -> None:
    model = mlp_onnx(tmp_path / "m.onnx")
    done = _convert(model, "--name", "base_fp16", "--precision", "fp32", "--repository", tmp_path / "repo",
                    "--workdir", tmp_path / "w")
    _one_line(done, "model name 'base_fp16'", "--name base")
    assert not (tmp_path / "repo").exists()

"""`ops drift-reference` refuses, in one line, references that could never score drift (outsider 13c
defect 8): a tensor the model lacks, a width that is not the tensor's, NaN values, a folder with no model,
an .npz archive; and the shape message has all its words (rich ate "[rows >= 20, features]")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tritonstack.cli import main

_CONFIG = """name: "mlp"
max_batch_size: 64
input { name: "x" data_type: TYPE_FP32 dims: 64 }
output { name: "logits" data_type: TYPE_FP32 dims: 10 }
"""


def _version(tmp_path: Path, *, model: bool = True) -> Path:
    folder = tmp_path / "mlp" / "1"
    folder.mkdir(parents=True)
    (tmp_path / "mlp" / "config.pbtxt").write_text(_CONFIG)
    if model:
        (folder / "model.onnx").write_bytes(b"only its config is read")
    return folder


def _refusal(capsys: pytest.CaptureFixture, version: Path, values: Path, *extra: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main(["ops", "drift-reference", str(version), "--values", str(values), *extra])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exited.value.code == 2 and len(lines) == 1, lines
    assert not (version / "drift_reference.json").exists()
    print(f"\n{lines[0]}")
    return lines[0]


def _npy(tmp_path: Path, x: np.ndarray) -> Path:
    np.save(tmp_path / "x.npy", x)
    return tmp_path / "x.npy"


def test_unknown_tensor_is_refused_naming_the_inputs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    values = _npy(tmp_path, np.random.default_rng(0).random((300, 64)))
    line = _refusal(capsys, _version(tmp_path), values, "--tensor", "nope")
    assert "no input named 'nope'" in line and "x (64 wide)" in line


def test_a_narrower_reference_is_refused_naming_the_width(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    values = _npy(tmp_path, np.random.default_rng(0).random((300, 32)))
    line = _refusal(capsys, _version(tmp_path), values, "--tensor", "x")
    assert "32 features" in line and "64 wide" in line and "(rows, 64)" in line


def test_an_output_reference_is_checked_against_the_outputs(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    values = _npy(tmp_path, np.random.default_rng(0).random((300, 64)))
    line = _refusal(capsys, _version(tmp_path), values, "--tensor", "logits", "--source", "output")
    assert "output 'logits' is 10 wide" in line


def test_nan_values_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    values = _npy(tmp_path, np.full((300, 64), np.nan))
    line = _refusal(capsys, _version(tmp_path), values, "--tensor", "x")
    assert "19200 of 19200 values NaN or infinite" in line


def test_a_folder_with_no_model_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    values = _npy(tmp_path, np.random.default_rng(0).random((300, 64)))
    line = _refusal(capsys, _version(tmp_path, model=False), values, "--tensor", "x")
    assert "holds no model file" in line


def test_an_npz_archive_is_refused_saying_the_format(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    np.savez(tmp_path / "calib.npz", x=np.zeros((300, 64), np.float32))
    line = _refusal(capsys, _version(tmp_path), tmp_path / "calib.npz", "--tensor", "x")
    assert ".npz archive (arrays: x)" in line and "np.save" in line and "could not convert" not in line


def test_the_shape_message_keeps_every_word(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    values = _npy(tmp_path, np.zeros((3, 64)))
    line = _refusal(capsys, _version(tmp_path), values, "--tensor", "x")
    assert "must be a 2-D array (rows >= 20, features); got shape (3, 64)" in line


def test_a_matching_reference_is_written(tmp_path: Path) -> None:
    version = _version(tmp_path)
    main(["ops", "drift-reference", str(version), "--values",
          str(_npy(tmp_path, np.random.default_rng(0).random((300, 64)))), "--tensor", "x"])
    assert (version / "drift_reference.json").is_file()

"""`tritonstack convert` on a scikit-learn tree model (issue 13 items 10, 11, 12, 16) and whole errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tritonstack", "convert", *map(str, args), "--no-progress"],
                          capture_output=True, text=True, timeout=240, cwd=ROOT)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A GradientBoosting classifier on 13 features of sklearn's bundled breast-cancer data."""
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import GradientBoostingClassifier

    root = tmp_path_factory.mktemp("tree")
    x, y = load_breast_cancer(return_X_y=True)
    x = x[:, :13].astype(np.float32)
    joblib.dump(GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0).fit(x[:400], y[:400]),
                root / "gb.joblib")
    np.save(root / "calib.npy", x[:64])
    np.savez(root / "holdout.npz", features=x[400:], labels=y[400:])
    np.savez(root / "samples_x.npz", X=x[400:460])
    return {"model": root / "gb.joblib", "calib": root / "calib.npy", "holdout": root / "holdout.npz",
            "samples_x": root / "samples_x.npz"}


def test_int8_and_fp16_of_a_tree_are_refused_alone_with_keep_going(tree: dict[str, Path], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    done = _run(tree["model"], "--name", "gb", "--repository", repo, "--workdir", tmp_path / "b",
                "--precision", "fp32,fp16,int8", "--calibration", tree["calib"], "--holdout", tree["holdout"],
                "--keep-going")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in repo.iterdir()) == ["gb"]
    rejected = {line.split(":", 1)[0]: line for line in done.stdout.splitlines() if line.startswith("rejected")}
    assert "TreeEnsembleClassifier" in rejected["rejected gb_fp16"] and "no FP16" in rejected["rejected gb_fp16"]
    assert "FP32 model under an INT8 name" in rejected["rejected gb_int8"]
    assert not any("--keep-going" in line for line in rejected.values())  # it was passed already
    print(f"\n{rejected['rejected gb_int8']}\n{rejected['rejected gb_fp16']}")


def test_int8_of_a_tree_without_keep_going_is_one_line_and_writes_nothing(tree: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    done = _run(tree["model"], "--name", "gb", "--repository", repo, "--workdir", tmp_path / "b",
                "--precision", "fp32,int8", "--calibration", tree["calib"], "--holdout", tree["holdout"])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "leave int8 out" in done.stderr
    assert not repo.exists()


def test_input_name_is_honoured_for_scikit_learn(tree: dict[str, Path], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    done = _run(tree["model"], "--name", "gbx", "--repository", repo, "--workdir", tmp_path / "b",
                "--input", "X:FP32:13", "--samples", tree["samples_x"])
    assert done.returncode == 0, done.stderr
    assert 'name: "X"' in (repo / "gbx" / "config.pbtxt").read_text()
    wrong = _run(tree["model"], "--name", "gbx", "--repository", repo, "--workdir", tmp_path / "b",
                 "--input", "X:FP32:12")
    assert wrong.returncode == 2 and "X:FP32:13" in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1


def test_a_second_run_says_it_added_a_version(tree: dict[str, Path], tmp_path: Path) -> None:
    common = ("--name", "gb", "--repository", tmp_path / "repo", "--workdir", tmp_path / "b")
    first = _run(tree["model"], *common)
    assert first.returncode == 0 and "already existed" not in first.stdout
    second = _run(tree["model"], *common)
    assert second.returncode == 0, second.stderr
    note = " ".join(second.stdout.split())
    assert "model gb already existed: added version 2 next to version(s) 1" in note
    manifest = json.loads((tmp_path / "repo" / "gb" / "2" / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.onnx"} and manifest["verified_by"] == "tritonstack convert"


def test_errors_are_never_cut_before_what_to_fix() -> None:
    from tritonstack.convert.errtext import one_line

    tail = "does not match expected type (tensor(float))"
    text = "Load model failed:Type Error: Type (tensor(float16)) of output arg (N1_cast) of node (N1) " + tail
    assert one_line(RuntimeError(text)).endswith(tail)
    state = "Error(s) in loading state_dict for SeqModel:\n\tMissing key(s) in state_dict: \"fc.weight\"."
    assert one_line(RuntimeError(state)) == ("Error(s) in loading state_dict for SeqModel: Missing key(s) in "
                                             "state_dict: \"fc.weight\".")
    long = "head " + "x " * 3000 + "the fix is here"
    assert one_line(RuntimeError(long)).endswith("the fix is here") and len(one_line(RuntimeError(long))) < 2100


def test_state_dict_mismatch_names_the_keys(tmp_path: Path) -> None:
    import torch
    from tritonstack.convert.torch_export import load_torch_module

    from tritonstack.errors import ModelLoadError

    torch.save({"unexpected.weight": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(ModelLoadError) as raised:
        load_torch_module("tests.unit.convert_models:tiny_cnn", weights=tmp_path / "wrong.pt")
    message = str(raised.value)
    assert "missing keys [0.bias, 0.weight, 3.bias, 3.weight]" in message
    assert "unexpected keys [unexpected.weight]" in message and "\n" not in message


def test_a_corrupt_calibration_cache_says_which_file_to_delete(tmp_path: Path) -> None:
    from tritonstack.convert.quantize import onnx2int8

    from tritonstack.errors import CalibrationError

    from .convert_models import mlp_onnx

    cache = tmp_path / "cache.json"
    cache.write_text("{not json")
    with pytest.raises(CalibrationError) as raised:
        onnx2int8(mlp_onnx(tmp_path / "m.onnx"), tmp_path / "q.onnx", calibration=None, cache_path=cache)
    assert str(cache) in str(raised.value) and "delete it" in str(raised.value)

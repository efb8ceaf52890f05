"""ONNX models with external data (torch.onnx.export's default: net.onnx + net.onnx.data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tritonstack.convert import onnx_io
from tritonstack.convert.onnx_io import copy_onnx_with_external_data, external_data_files
from tritonstack.convert.pipeline import ConvertOptions, convert_model
from tritonstack.convert.verify import run_onnx

from tritonstack.errors import ModelLoadError, RepositoryWriteError

from .convert_models import mlp_onnx


def _external(folder: Path) -> Path:
    """mlp_onnx re-saved with every weight in net.onnx.data, as torch 2.x exports it."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(mlp_onnx(folder / "inline.onnx")))
    onnx.save(model, str(folder / "net.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="net.onnx.data", size_threshold=0)
    (folder / "inline.onnx").unlink()
    return folder / "net.onnx"


def _feeds() -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)}


def test_copy_embeds_small_external_weights(tmp_path: Path) -> None:
    src = _external(tmp_path / "src")
    dst = tmp_path / "7"
    dst.mkdir()
    copy_onnx_with_external_data(src, dst)
    assert sorted(p.name for p in dst.iterdir()) == ["model.onnx"]
    assert external_data_files(dst / "model.onnx") == {}
    np.testing.assert_array_equal(run_onnx(dst / "model.onnx", _feeds())["y"], run_onnx(src, _feeds())["y"])


def test_copy_keeps_large_weights_external(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_io, "EMBED_LIMIT_BYTES", 1)  # stands for a model above protobuf's 2 GiB
    src = _external(tmp_path / "src")
    dst = tmp_path / "7"
    dst.mkdir()
    copy_onnx_with_external_data(src, dst)
    assert sorted(p.name for p in dst.iterdir()) == ["model.onnx", "net.onnx.data"]
    np.testing.assert_array_equal(run_onnx(dst / "model.onnx", _feeds())["y"], run_onnx(src, _feeds())["y"])


def test_missing_data_file_is_named_in_one_line(tmp_path: Path) -> None:
    src = _external(tmp_path / "src")
    (src.parent / "net.onnx.data").unlink()
    dst = tmp_path / "7"
    dst.mkdir()
    with pytest.raises(ModelLoadError) as caught:
        copy_onnx_with_external_data(src, dst)
    message = str(caught.value)
    print("\nmessage:", message)
    assert "\n" not in message and "'net.onnx.data'" in message and "save_as_external_data=False" in message
    assert not any(dst.iterdir())


def test_convert_publishes_a_model_with_external_data(tmp_path: Path) -> None:
    src = _external(tmp_path / "src")
    report = convert_model(ConvertOptions(model=src, name="ext", repository=tmp_path / "repo",
                                          workdir=tmp_path / "work", progress=False))
    version = tmp_path / "repo" / "ext" / str(report.variants[0].version)
    assert sorted(p.name for p in version.iterdir()) == ["manifest.json", "model.onnx"]
    np.testing.assert_allclose(run_onnx(version / "model.onnx", _feeds())["y"], run_onnx(src, _feeds())["y"])


def test_convert_publishes_weights_too_big_to_embed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_io, "EMBED_LIMIT_BYTES", 1)  # stands for a model above protobuf's 2 GiB
    src = _external(tmp_path / "src")
    report = convert_model(ConvertOptions(model=src, name="big", repository=tmp_path / "repo",
                                          workdir=tmp_path / "work", progress=False))
    version = tmp_path / "repo" / "big" / str(report.variants[0].version)
    assert sorted(p.name for p in version.iterdir()) == ["manifest.json", "model.onnx", "net.onnx.data"]
    np.testing.assert_allclose(run_onnx(version / "model.onnx", _feeds())["y"], run_onnx(src, _feeds())["y"])


def test_copy_creates_the_folder_and_takes_another_file_name(tmp_path: Path) -> None:
    src = _external(tmp_path / "src")
    copy_onnx_with_external_data(src, tmp_path / "new" / "3", filename="net.onnx")
    assert sorted(p.name for p in (tmp_path / "new" / "3").iterdir()) == ["net.onnx"]


def test_an_unwritable_folder_is_a_repository_write_error(tmp_path: Path) -> None:
    src = _external(tmp_path / "src")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RepositoryWriteError, match="writing .*file/3/model.onnx failed"):
        copy_onnx_with_external_data(src, tmp_path / "file" / "3")

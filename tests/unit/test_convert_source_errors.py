"""Source models that cannot be loaded or converted give one line that names the cause and the fix."""

from __future__ import annotations

import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from tritonstack.convert.errtext import one_line
from tritonstack.convert.spec import TensorSpec

from tritonstack.errors import ModelLoadError

SPEC = [TensorSpec(name="x", dtype="FP32", dims=(4,))]


def _module_file(folder: Path, name: str) -> Path:
    """A module `name` with a factory `make` (Linear 4 -> 3) and a factory `boom` that raises."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent("""
        import torch
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(4, 3)
            def forward(self, x):
                return self.fc(x)
        def make():
            return Net()
        def boom():
            raise RuntimeError("factory exploded")
    """))
    return folder


def test_a_factory_that_raises_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tritonstack.convert.torch_export import load_torch_module

    monkeypatch.syspath_prepend(str(_module_file(tmp_path, "mods_boom")))
    with pytest.raises(ModelLoadError, match=r"the factory mods_boom:boom raised RuntimeError: factory "
                                             r"exploded; fix it"):
        load_torch_module("mods_boom:boom")


def test_a_factory_without_weights_gets_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tritonstack.convert.sources import load_source

    monkeypatch.syspath_prepend(str(_module_file(tmp_path, "mods_note")))
    source = load_source("mods_note:make", inputs=SPEC)
    print(f"\nnotes: {source.notes}")
    assert len(source.notes) == 1 and source.notes[0].startswith("no --weights given: mods_note:make")


def test_a_saved_module_whose_class_is_not_importable_names_pythonpath(tmp_path: Path) -> None:
    import torch
    from tritonstack.convert.torch_export import load_torch_module

    folder = _module_file(tmp_path / "code", "mods_saved")
    sys.path.insert(0, str(folder))
    try:
        import mods_saved  # type: ignore[import-not-found]

        torch.save(mods_saved.make(), folder / "net.pt")
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("mods_saved", None)
    with pytest.raises(ModelLoadError) as info:
        load_torch_module(folder / "net.pt")
    message = str(info.value)
    assert "class is defined in 'mods_saved', which is not importable here" in message, message
    assert f"PYTHONPATH={folder.resolve()}" in message and "torch.save(module" not in message, message


def test_weights_that_hold_a_whole_module_are_one_plain_line(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from tritonstack.convert.torch_export import load_torch_module

    monkeypatch.syspath_prepend(str(_module_file(tmp_path, "mods_weights")))
    import mods_weights  # type: ignore[import-not-found]

    torch.save(mods_weights.make(), tmp_path / "whole.pt")
    with pytest.raises(ModelLoadError, match=r"holds pickled objects, not only tensors") as info:
        load_torch_module("mods_weights:make", weights=tmp_path / "whole.pt")
    assert "\x1b" not in str(info.value) and "\n" not in str(info.value)


def test_one_line_drops_terminal_escape_codes() -> None:
    assert one_line(ValueError("a \x1b[1mbold\x1b[0m word\n\tnext")) == "a bold word next"


def test_an_unconvertible_sklearn_step_is_named(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from tritonstack.convert.sklearn import sklearn2onnx

    x, y = np.random.default_rng(0).random((40, 4)), np.arange(40) % 2
    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()).fit(x, y)
    with pytest.raises(ModelLoadError, match=r"skl2onnx cannot convert the step FunctionTransformer of this "
                                             r"Pipeline .*update_registered_converter.*drop the step"):
        sklearn2onnx(model, tmp_path / "m.onnx", n_features=4)


def test_a_float64_kmeans_runs_and_converts(tmp_path: Path) -> None:
    from sklearn.cluster import KMeans
    from tritonstack.convert.sklearn import run_estimator, sklearn2onnx
    from tritonstack.convert.verify import run_onnx

    x = np.random.default_rng(0).random((60, 4))
    model = KMeans(n_clusters=3, n_init=2, random_state=0).fit(x)  # fitted on float64
    rows = x[:8].astype(np.float32)
    expected = run_estimator(model, rows, "variable")["variable"]
    got = run_onnx(sklearn2onnx(model, tmp_path / "km.onnx", n_features=4), {"features": rows})["variable"]
    assert expected.shape == got.shape == (8, 1) and (expected == got).all()


def test_fp16_converter_warnings_stay_off_the_terminal(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tritonstack.convert.fp16 import onnx2fp16

    weight = numpy_helper.from_array(np.array([[1e-9, 1e6], [1.0, -1e-9]], np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "m.onnx"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        onnx2fp16(tmp_path / "m.onnx", tmp_path / "m16.onnx")
    assert [str(w.message) for w in caught] == []


def test_an_output_the_export_lacks_is_one_line() -> None:
    from tritonstack.convert.verify import verify_outputs

    from tritonstack.errors import ExportMismatchError

    with pytest.raises(ExportMismatchError, match=r"has no output 'variable' \(its outputs: \['label'\]\)"):
        verify_outputs(expected={"variable": np.zeros((2, 1))}, actual={"label": np.zeros(2)}, atol=0, rtol=0,
                       what="km fp32")

"""Scale-free verification (issue 13 item 13): a model whose outputs are ~1e-9 cannot pass by construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tritonstack.convert.pipeline import ConvertOptions, convert_model
from tritonstack.convert.precision import DEFAULT_TOLERANCES, Precision, Tolerance, parse_precisions
from tritonstack.convert.verify import row_cosine, verify_outputs

from tritonstack.errors import ConfigError, ExportMismatchError


def _tiny_output_onnx(path: Path, scale: float) -> Path:
    """x FP32[N, 8] -> y FP32[N, 4] = x @ W, with W of magnitude `scale`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = (np.random.default_rng(1).standard_normal((8, 4)) * scale).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_near_zero_outputs_that_are_wrong_fail_the_cosine_check() -> None:
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((16, 4)) * 1e-9
    broken = rng.standard_normal((16, 4)) * 1e-9  # unrelated values of the same size
    fp32 = DEFAULT_TOLERANCES[Precision.FP32]
    verify_outputs(expected={"y": reference}, actual={"y": broken}, atol=fp32.atol, rtol=fp32.rtol,
                   what="absolute only")  # the old check: passes whatever the values
    with pytest.raises(ExportMismatchError, match=r"m fp32: output 'y' does not follow the source: cosine "
                                                  r"similarity -?0\.\d+ < 0\.999 \(source outputs up to"):
        verify_outputs(expected={"y": reference}, actual={"y": broken}, atol=fp32.atol, rtol=fp32.rtol,
                       min_cosine=fp32.min_cosine, what="m fp32")
    good = verify_outputs(expected={"y": reference}, actual={"y": reference * (1 + 1e-6)}, atol=fp32.atol,
                          rtol=fp32.rtol, min_cosine=fp32.min_cosine, what="m fp32")
    print(f"near-zero model: broken min cosine {row_cosine(reference, broken):.3f}, "
          f"correct {good['y'].min_cosine:.6f}")
    assert good["y"].min_cosine > 0.999999


def test_cosine_skips_zero_rows_and_compares_single_value_rows_as_one_vector() -> None:
    reference = np.array([[0.0, 0.0], [1.0, 2.0]])
    assert row_cosine(reference, np.array([[1e-7, 0.0], [1.0, 2.0]])) == pytest.approx(1.0)
    assert row_cosine(np.zeros((3, 2)), np.ones((3, 2))) == 1.0
    column = np.array([[1e-9], [2e-9], [3e-9]])
    assert row_cosine(column, column * 2) == pytest.approx(1.0)
    assert row_cosine(column, column[::-1]) < 0.9


@pytest.mark.filterwarnings("ignore:the float32 number:UserWarning")  # onnxconverter-common's FP16 clamp
def test_a_conversion_of_a_near_zero_model_is_judged_by_scale(tmp_path: Path) -> None:
    source = _tiny_output_onnx(tmp_path / "tiny.onnx", scale=1e-9)
    options = {"model": source, "name": "tiny", "repository": tmp_path / "repo", "workdir": tmp_path / "w",
               "progress": False}
    report = convert_model(ConvertOptions(**options))  # FP32 follows the source: passes
    assert report.variants[0].errors["y"].min_cosine > 0.9999
    with pytest.raises(ExportMismatchError, match="tiny2_fp16 fp16: output 'y' does not follow the source") as caught:
        convert_model(ConvertOptions(**{**options, "name": "tiny2"}, precisions=parse_precisions("fp16")))
    print(f"FP16 of a near-zero model: {caught.value}")  # passed the absolute tolerance 0.05 before
    assert not (tmp_path / "repo" / "tiny2_fp16").exists()


def test_tolerance_parses_an_optional_cosine() -> None:
    assert Tolerance.parse("1e-2,1e-2,0.95").min_cosine == 0.95
    assert Tolerance.parse("1e-2,1e-2").min_cosine == 0.999
    with pytest.raises(ConfigError, match=r"ATOL,RTOL\[,MIN_COSINE\]"):
        Tolerance.parse("1,2,3,4")
    with pytest.raises(ConfigError, match="min_cosine=2.0 must be in"):
        Tolerance(atol=0, rtol=0, min_cosine=2.0)


def test_outputs_of_the_wrong_size_fail_even_with_cosine_one() -> None:
    """Issue 13 (outside tester) item 4: outputs 119x the source's have cosine 1.0; the norm check fails them."""
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((16, 4)) * 1e-9
    fp16 = DEFAULT_TOLERANCES[Precision.FP16]
    with pytest.raises(ExportMismatchError, match=r"m fp16: output 'y' is not the size of the source's: a row's "
                                                  r"norm is off by 118"):
        verify_outputs(expected={"y": reference}, actual={"y": reference * 119}, atol=fp16.atol, rtol=fp16.rtol,
                       min_cosine=fp16.min_cosine, what="m fp16")
    good = verify_outputs(expected={"y": reference}, actual={"y": reference * 1.001}, atol=fp16.atol,
                          rtol=fp16.rtol, min_cosine=fp16.min_cosine, what="m fp16")
    print(f"norm error of a 0.1% larger output: {good['y'].max_norm_rel:.2e}, max_rel {good['y'].max_rel:.2e}")
    assert good["y"].max_norm_rel == pytest.approx(1e-3) and good["y"].max_rel == pytest.approx(1e-3, rel=1e-3)


@pytest.mark.filterwarnings("ignore:the float32 number:UserWarning")  # onnxconverter-common's FP16 clamp
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.onnx.export
def test_fp16_of_a_torch_linear_times_1e_minus_9_is_rejected(tmp_path: Path) -> None:
    """The tester's model: torch Linear(8, 4) whose output is multiplied by 1e-9, exported, fp16 variant."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x) * 1e-9

    torch.manual_seed(0)
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(Tiny().eval(), (torch.zeros(2, 8),), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, dynamo=False)
    options = {"model": path, "name": "lin", "repository": tmp_path / "repo", "workdir": tmp_path / "w",
               "progress": False}
    report = convert_model(ConvertOptions(**options))
    fp32 = report.variants[0].errors["y"]
    print(f"fp32 of Linear*1e-9: max_rel {fp32.max_rel:.2e}, norm error {fp32.max_norm_rel:.2e}")
    assert fp32.max_rel < 1e-3 and fp32.max_norm_rel < 1e-3
    with pytest.raises(ExportMismatchError, match="lin2_fp16 fp16: output 'y'") as caught:
        convert_model(ConvertOptions(**{**options, "name": "lin2"}, precisions=parse_precisions("fp16")))
    print(f"FP16 of Linear*1e-9: {caught.value}")
    assert not (tmp_path / "repo" / "lin2_fp16").exists()

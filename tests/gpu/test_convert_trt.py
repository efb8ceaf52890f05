"""TensorRT engines from ONNX (FP16, and INT8 from the QDQ model): only on a GPU host with tensorrt."""

from __future__ import annotations

from pathlib import Path

import pytest
from tritonstack.convert.precision import Precision
from tritonstack.convert.trt import is_tensorrt_available, onnx2trt, trt_skip_reason

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not is_tensorrt_available(), reason=f"TensorRT engine tests skipped: {trt_skip_reason()}"),
]


@pytest.fixture()
def mlp(tmp_path: Path) -> Path:
    from tests.unit.convert_models import mlp_onnx

    return mlp_onnx(tmp_path / "mlp.onnx")


@pytest.mark.parametrize("precision", [Precision.FP16, Precision.FP32])
def test_engine_builds_with_profile_and_timing_cache(mlp: Path, tmp_path: Path, precision: Precision) -> None:
    cache = tmp_path / "timing.cache"
    plan = onnx2trt(mlp, tmp_path / "model.plan", precision=precision, batch_sizes=(1, 8, 32),
                    timing_cache=cache, progress=False)
    assert plan.stat().st_size > 0 and cache.stat().st_size > 0
    again = onnx2trt(mlp, tmp_path / "again.plan", precision=precision, batch_sizes=(1, 8, 32),
                     timing_cache=cache, progress=False)
    assert again.stat().st_size > 0


def test_int8_engine_from_the_qdq_model(mlp: Path, tmp_path: Path) -> None:
    import numpy as np
    from tritonstack.convert.quantize import onnx2int8
    from tritonstack.convert.samples import SampleSet

    calibration = SampleSet(feeds={"x": np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32)})
    qdq = onnx2int8(mlp, tmp_path / "int8.onnx", calibration=calibration, progress=False).path
    plan = onnx2trt(qdq, tmp_path / "int8.plan", precision=Precision.INT8, batch_sizes=(1, 32), progress=False)
    assert plan.stat().st_size > 0

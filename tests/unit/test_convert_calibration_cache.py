"""A calibration cache is a cache: a refused INT8 attempt never blocks a later one (outside test 13c, defect 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tritonstack.convert.pipeline import ConvertOptions, convert_model
from tritonstack.convert.precision import Precision
from tritonstack.convert.quantize import Int8Recipe, onnx2int8
from tritonstack.convert.samples import SampleSet

from tritonstack.errors import ConfigError, PrecisionUnsupportedError

from .convert_models import mlp_onnx


def _rows(count: int, seed: int) -> SampleSet:
    rng = np.random.default_rng(seed)
    return SampleSet(feeds={"x": rng.standard_normal((count, 4)).astype(np.float32)},
                     labels=rng.integers(0, 3, count))


def _options(tmp_path: Path, **changes: object) -> ConvertOptions:
    base = {"model": mlp_onnx(tmp_path / "m.onnx"), "name": "n", "repository": tmp_path / "repo",
            "workdir": tmp_path / "work", "precisions": (Precision.FP32, Precision.INT8),
            "calibration": _rows(32, 1), "holdout": _rows(32, 2), "budget": 0.5, "progress": False}
    return ConvertOptions(**{**base, **changes})


def _caches(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "work" / "n").glob("calibration-*"))


def test_refused_op_types_leave_no_cache_that_blocks_int8(tmp_path: Path) -> None:
    with pytest.raises(PrecisionUnsupportedError, match=r"--int8-op-types names \(Conv\).*MatMul"):
        convert_model(_options(tmp_path, recipe=Int8Recipe(op_types=("Conv",))))
    print("\ncaches after the refused attempt:", _caches(tmp_path))
    report = convert_model(_options(tmp_path))
    assert [v.name for v in report.variants] == ["n", "n_int8"]


def test_a_refused_gate_output_then_a_good_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        convert_model(_options(tmp_path, gate_output="nope"))
    report = convert_model(_options(tmp_path))
    assert report.variants[1].int8.cache_hit  # the ranges computed before were right, and reused


def test_a_cache_that_does_not_fit_is_recomputed_when_data_is_at_hand(tmp_path: Path) -> None:
    cache = tmp_path / "cache.json"
    cache.write_text('{"data": {"x": {"lowest": -1.0, "highest": 1.0}}}')  # ranges for one tensor only
    result = onnx2int8(mlp_onnx(tmp_path / "m.onnx"), tmp_path / "q.onnx", calibration=_rows(32, 1),
                       cache_path=cache, progress=False)
    assert (result.cache_hit, result.samples) == (False, 32)
    again = onnx2int8(tmp_path / "m.onnx", tmp_path / "q2.onnx", calibration=None, cache_path=cache,
                      progress=False)
    assert (again.cache_hit, again.samples) == (True, 32)

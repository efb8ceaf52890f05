"""The drift tap writer: a Python-backend tap and an ensemble, from the model's config and reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tritonstack.ops.drift import REFERENCE_FILE, reference_from_training
from tritonstack.ops.drift_tap import ROWS_OUTPUT, write_drift_tap

from tritonstack.errors import ConfigError
from tritonstack.model_config import read_config

CONFIG = '''name: "m"
platform: "onnxruntime_onnx"
max_batch_size: 64
input { name: "x" data_type: TYPE_FP32 dims: [4] }
output { name: "y" data_type: TYPE_FP32 dims: [2] }
'''


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "config.pbtxt").write_text(CONFIG)
    return tmp_path


def _reference(repo: Path, **kwargs: str) -> None:
    values = np.random.default_rng(0).normal(size=(200, 4))
    reference_from_training(values, window_rows=100, **{"tensor": "x", **kwargs}).save(
        repo / "m" / "1" / REFERENCE_FILE)


def test_tap_and_ensemble_are_written_from_the_model_config(repo: Path) -> None:
    _reference(repo)
    assert write_drift_tap(repo, "m") == ("m_drift", "m_monitored")
    tap = read_config(repo / "m_drift" / "config.pbtxt")
    assert tap.backend == "python" and tap.max_batch_size == 64 and tap.input[0].name == "x"
    assert tap.parameters["monitored_model"].string_value == "m"
    assert sorted(p.name for p in (repo / "m_drift" / "1").iterdir()) == [
        REFERENCE_FILE, "model.py", "tritonstack_drift.py"]
    ensemble = read_config(repo / "m_monitored" / "config.pbtxt")
    assert ensemble.platform == "ensemble" and [o.name for o in ensemble.output] == ["y", ROWS_OUTPUT]
    steps = {s.model_name: (dict(s.input_map), dict(s.output_map)) for s in ensemble.ensemble_scheduling.step}
    assert steps == {"m": ({"x": "x"}, {"y": "y"}), "m_drift": ({"x": "x"}, {ROWS_OUTPUT: ROWS_OUTPUT})}


def test_tap_refuses_missing_or_output_references(repo: Path) -> None:
    with pytest.raises(ConfigError, match="drift-reference"):
        write_drift_tap(repo, "m")
    _reference(repo, tensor="y", source="output")
    with pytest.raises(ConfigError, match="inputs only"):
        write_drift_tap(repo, "m")
    _reference(repo, tensor="z")
    with pytest.raises(ConfigError, match="no input 'z'"):
        write_drift_tap(repo, "m")

import numpy as np
import pytest
from tritonstack.client import Bounds, ModelInfo, validate_inputs

from tritonstack.errors import InvalidInputError

INFO = ModelInfo.from_config({
    "name": "digits_mlp", "max_batch_size": 512,
    "input": [{"name": "features", "data_type": "TYPE_FP32", "dims": ["64"]}],
    "output": [{"name": "probabilities", "data_type": "TYPE_FP32", "dims": ["10"]}],
})


def test_valid_batch_passes() -> None:
    validate_inputs(INFO, {"features": np.zeros((3, 64), np.float32)})


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        ({"features": np.zeros((3, 65), np.float32)}, "has shape (3, 65); model 'digits_mlp' expects (-1, 64) with batch <= 512"),
        ({"features": np.zeros((513, 64), np.float32)}, "batch <= 512"),
        ({"features": np.zeros((3, 64), np.float64)}, "has dtype float64; model 'digits_mlp' expects float32"),
        ({}, "missing ['features']"),
        ({"features": np.zeros((1, 64), np.float32), "x": np.zeros(1)}, "unexpected ['x']"),
        ({"features": np.full((1, 64), np.nan, np.float32)}, "NaN/Inf"),
    ],
)
def test_structure_errors_name_input_value_and_expectation(inputs, fragment) -> None:
    with pytest.raises(InvalidInputError) as info:
        validate_inputs(INFO, inputs)
    assert fragment in str(info.value)


def test_bounds_and_rules() -> None:
    batch = {"features": np.full((1, 64), 20, np.float32)}
    with pytest.raises(InvalidInputError, match=r"values in \[20, 20\]; model 'digits_mlp' accepts \[0, 16\]"):
        validate_inputs(INFO, batch, bounds={"features": Bounds(min=0, max=16)})
    with pytest.raises(InvalidInputError, match="business rule failed: too bright"):
        validate_inputs(INFO, batch, rules=[lambda x: "too bright" if x["features"].max() > 16 else None])

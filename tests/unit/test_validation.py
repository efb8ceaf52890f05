import numpy as np
import pytest
from tritonstack.client import Bounds, ModelInfo, validate_inputs
from tritonstack.client.validation import as_arrays

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


TWO = ModelInfo.from_config({
    "name": "two_input", "max_batch_size": 8,
    "input": [{"name": "image", "data_type": "TYPE_FP32", "dims": ["4"]},
              {"name": "ids", "data_type": "TYPE_INT64", "dims": ["2"]}],
    "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": ["1"]}],
})


def test_inputs_with_different_batch_sizes_are_refused_before_sending() -> None:
    inputs = {"image": np.zeros((3, 4), np.float32), "ids": np.zeros((2, 2), np.int64)}
    with pytest.raises(InvalidInputError, match=r"different batch sizes \('image': 3, 'ids': 2\); model "
                                                r"'two_input' needs the same first dimension"):
        validate_inputs(TWO, inputs)
    validate_inputs(TWO, {"image": np.zeros((2, 4), np.float32), "ids": np.zeros((2, 2), np.int64)})


def test_lists_are_converted_with_the_model_dtype() -> None:
    arrays = as_arrays(INFO, [[1] * 64, [2.5] * 64])
    assert arrays["features"].dtype == np.float32 and arrays["features"].shape == (2, 64)
    validate_inputs(INFO, arrays)
    arrays = as_arrays(TWO, {"image": [[0.5] * 4], "ids": ([1, 2],)})
    assert arrays["ids"].dtype == np.int64 and arrays["image"].dtype == np.float32
    strings = ModelInfo.from_config({"name": "s", "max_batch_size": 4, "input": [
        {"name": "TEXT", "data_type": "TYPE_STRING", "dims": ["1"]}], "output": []})
    assert as_arrays(strings, [["hello"], [b"x"]])["TEXT"].dtype == np.object_


@pytest.mark.parametrize(("inputs", "fragment"), [
    ([[1.0, 2.0], [3.0]], "input 'features' is a list numpy cannot make an array of"),
    ({"image": [[0.0] * 4], "ids": [[0.5, 1.5]]}, "input 'ids' is a list of float64 values; model "
                                                  "'two_input' expects int64"),
    ({"image": [["a"] * 4], "ids": [[1, 2]]}, "input 'image' is a list of <U1 values"),
    ([[0.0] * 4], "model 'two_input' has inputs ['ids', 'image']; pass a dict"),
])
def test_bad_lists_name_the_input_and_the_fix(inputs, fragment) -> None:
    info = INFO if isinstance(inputs, list) and len(inputs) == 2 else TWO
    with pytest.raises(InvalidInputError) as caught:
        as_arrays(info, inputs)
    assert fragment in str(caught.value)

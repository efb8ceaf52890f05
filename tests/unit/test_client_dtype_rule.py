"""One dtype rule for every client path (issue 13): numpy arrays as they are, plain lists converted if they fit.

`ClientCore.prepare` is what both `TritonClient.infer` and `AsyncTritonClient.infer` call; `bulk.Plan`
is what `predict_many` / `predict_iter` (sync and asyncio) cut into chunks before `infer`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from tritonstack.client import ClientOptions, ModelInfo, bulk
from tritonstack.client.core import ClientCore
from tritonstack.client.plain import RULE, is_plain

from tritonstack.errors import InvalidInputError

INFO = ModelInfo.from_config({
    "name": "digits_mlp", "max_batch_size": 8,
    "input": [{"name": "features", "data_type": "TYPE_FP32", "dims": ["4"]}],
    "output": [{"name": "probabilities", "data_type": "TYPE_FP32", "dims": ["2"]}],
})
TYPED = ModelInfo.from_config({
    "name": "typed", "max_batch_size": 8,
    "input": [{"name": "small", "data_type": "TYPE_UINT8", "dims": ["1"]},
              {"name": "half", "data_type": "TYPE_FP16", "dims": ["1"]},
              {"name": "flag", "data_type": "TYPE_BOOL", "dims": ["1"]}],
    "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": ["1"]}],
})


def _prepare(info: ModelInfo, inputs: object) -> dict[str, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning may leak before (or instead of) our error
        return ClientCore("h:1", ClientOptions()).prepare(info, inputs)


def test_int64_array_and_int_list_follow_one_stated_rule() -> None:
    assert _prepare(INFO, [[1, 2, 3, 4]])["features"].dtype == np.float32
    with pytest.raises(InvalidInputError) as caught:
        _prepare(INFO, np.array([[1, 2, 3, 4]], np.int64))
    assert "has dtype int64; model 'digits_mlp' expects float32 (use array.astype(np.float32)" in str(caught.value)
    assert RULE in str(caught.value)


@pytest.mark.parametrize(("value", "fragment"), [
    ([[1e40, 0, 0, 0]], "value 1e+40 is out of the FP32 range (|x| <= 3.402823e+38)"),
    ([[-1e300, 0.5, 0, 0]], "value -1e+300 is out of the FP32 range"),
    ([[16777217, 0, 0, 0]], "value 16777217 has no exact FP32 representation"),
    ([[2**62 + 1, 0, 0, 0]], "has no exact FP32 representation"),
    ([[True, False, True, False]], "bool values cannot become float32"),
    ([[2**70, 0, 0, 0]], "numpy found no numeric dtype for them (ints beyond 64 bits"),
])
def test_plain_values_that_do_not_fit_fp32_are_refused_with_the_value_and_no_warning(value, fragment) -> None:
    with pytest.raises(InvalidInputError) as caught:
        _prepare(INFO, value)
    message = str(caught.value)
    assert fragment in message and RULE in message and message.startswith("input 'features' is a list of")


def test_values_that_fit_are_converted_and_rounded_floats_are_fine() -> None:
    arrays = _prepare(INFO, [[0.1, 2**24, -(2**40), 3.0e38]])  # 2**40 is a power of two: exact in FP32
    assert arrays["features"].dtype == np.float32 and arrays["features"][0, 2] == -(2**40)
    typed = _prepare(TYPED, {"small": [[255]], "half": [[65504.0]], "flag": [[True]]})
    assert [a.dtype for a in typed.values()] == [np.uint8, np.float16, np.bool_]


@pytest.mark.parametrize(("inputs", "fragment"), [
    ({"small": [[256]], "half": [[0.0]], "flag": [[True]]}, "value 256 is out of the UINT8 range [0, 255]"),
    ({"small": [[-1]], "half": [[0.0]], "flag": [[True]]}, "value -1 is out of the UINT8 range"),
    ({"small": [[1.0]], "half": [[0.0]], "flag": [[True]]}, "floats are not rounded to integers"),
    ({"small": [[1]], "half": [[70000.0]], "flag": [[True]]}, "value 70000 is out of the FP16 range"),
    ({"small": [[1]], "half": [[70000]], "flag": [[True]]}, "value 70000 is out of the FP16 range"),
    ({"small": [[1]], "half": [[2049]], "flag": [[True]]}, "value 2049 has no exact FP16 representation"),
    ({"small": [[1]], "half": [[0.5]], "flag": [[1]]}, "int64 values cannot become bool"),
])
def test_integer_half_and_bool_inputs(inputs, fragment) -> None:
    with pytest.raises(InvalidInputError) as caught:
        _prepare(TYPED, inputs)
    assert fragment in str(caught.value)


def test_numpy_scalars_carry_a_dtype_python_scalars_do_not() -> None:
    assert is_plain(1.5) and is_plain(3) and is_plain(True) and is_plain((1,))
    assert not is_plain(np.float64(1.5)) and not is_plain(np.int64(3)) and not is_plain(np.zeros(2))


def test_bulk_rows_follow_the_same_rule() -> None:
    rows = [[1, 2, 3, 4]] * 5  # an iterable of plain rows
    chunks = list(bulk.Plan.make(INFO, rows, batch_size=4, in_flight=1).chunks)
    assert [c["features"].dtype for c in chunks] == [np.float32, np.float32]
    assert [len(c["features"]) for c in chunks] == [4, 1]
    mapping = list(bulk.Plan.make(INFO, {"features": [[0.5] * 4] * 3}, batch_size=None, in_flight=1).chunks)
    assert mapping[0]["features"].dtype == np.float32
    with pytest.raises(InvalidInputError, match="out of the FP32 range"):
        list(bulk.Plan.make(INFO, [[1e40, 0, 0, 0]], batch_size=4, in_flight=1).chunks)

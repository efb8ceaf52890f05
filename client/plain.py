"""Plain Python values (lists, tuples, scalars) to arrays of a model input's dtype, by one rule.

    from_plain(info, "features", [[0, 1, 2] + [0] * 61])   # -> float32 array of shape (1, 64)

The rule (stated in every refusal, in the README's client section):

* **numpy arrays carry a dtype and are sent as they are**: they must already have the input's dtype
  (`array.astype(np.float32)`), as tritonclient's `set_data_from_numpy` demands. Nothing is cast
  behind the caller's back, so an int64 array for an FP32 input is refused.
* **plain Python lists, tuples and scalars carry no dtype**: they are converted to the input's
  dtype when no value changes kind or leaves the dtype: ints become any integer or float dtype that
  holds them exactly (16777217 does not fit FP32 exactly and is refused), floats become float dtypes
  (rounded to the nearest representable value, as `np.float32(0.1)` is, and refused when out of the
  dtype's range, e.g. 1e40 for FP32), bools become BOOL only. Floats are never rounded to integers.

Conversion raises no numpy warning: values are checked before the cast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tritonstack.client.model import ModelInfo, TensorInfo

from tritonstack.errors import InvalidInputError

__all__ = ["RULE", "from_plain", "is_plain"]

#: One sentence that every dtype refusal ends with.
RULE = ("numpy arrays must already have the input's dtype; plain Python lists/scalars are converted "
        "when every value fits it: ints exactly, floats within range, never a float to an int")


def is_plain(value: object) -> bool:
    """True for a Python list, tuple, int, float or bool (numpy scalars carry a dtype: not plain)."""
    return isinstance(value, (list, tuple, int, float, bool)) and not isinstance(value, np.generic)


def from_plain(info: ModelInfo, name: str, value: Any) -> np.ndarray:
    """`value` as an array of input `name`'s dtype, or InvalidInputError saying which value does not fit."""
    tensor = info.inputs.get(name)
    if tensor is None:  # refused by name in validate_inputs
        return np.asarray(value, dtype=np.object_)
    try:
        raw = np.asarray(value, dtype=np.object_ if tensor.datatype == "BYTES" else None)
    except ValueError as exc:
        raise InvalidInputError(f"input {name!r} is a list numpy cannot make an array of "
                                f"({str(exc).splitlines()[0]}); pass a regular (rectangular) "
                                f"numpy array of {tensor.dtype}") from exc
    if tensor.datatype == "BYTES" or raw.dtype == tensor.dtype:
        return raw
    problem = _kind_problem(raw.dtype, tensor.dtype) or _range_problem(raw, tensor)
    if problem:
        raise InvalidInputError(f"input {name!r} is a list of {raw.dtype} values; model {info.name!r} "
                                f"expects {tensor.dtype}: {problem} ({RULE})")
    return raw.astype(tensor.dtype)


def _kind_problem(source: np.dtype, target: np.dtype) -> str | None:
    allowed = {"b": "b", "i": "iuf", "u": "iuf", "f": "f"}.get(source.kind, "")
    if target.kind in allowed:
        return None
    if source.kind == "f" and target.kind in "iu":
        return "floats are not rounded to integers"
    if source.kind == "O":
        return "numpy found no numeric dtype for them (ints beyond 64 bits, None, or mixed types)"
    return f"{source} values cannot become {target}"


def _range_problem(raw: np.ndarray, tensor: TensorInfo) -> str | None:
    if raw.size == 0 or raw.dtype.kind == "b":
        return None
    target = tensor.dtype
    if target.kind in "iu":
        limits = np.iinfo(target)
        low, high = int(raw.min()), int(raw.max())
        bad = low if low < limits.min else high if high > limits.max else None
        return None if bad is None else (f"value {bad} is out of the {tensor.datatype} range "
                                         f"[{limits.min}, {limits.max}]")
    if raw.dtype.kind == "f":
        return _float_range_problem(raw, tensor)
    return _int_exactness_problem(raw, tensor)


def _float_range_problem(raw: np.ndarray, tensor: TensorInfo) -> str | None:
    largest = float(np.finfo(tensor.dtype).max)
    finite = raw[np.isfinite(raw)]
    if finite.size == 0 or float(np.abs(finite).max()) <= largest:
        return None
    bad = float(finite[np.argmax(np.abs(finite))])
    return f"value {bad:g} is out of the {tensor.datatype} range (|x| <= {largest:.7g})"


def _int_exactness_problem(raw: np.ndarray, tensor: TensorInfo) -> str | None:
    """Ints into a float dtype: each must be held exactly (only the few beyond 2**mantissa are looked at)."""
    finfo = np.finfo(tensor.dtype)
    always_exact = 2 ** (finfo.nmant + 1)
    for value in (int(v) for v in raw[(raw > always_exact) | (raw < -always_exact)].flat):
        magnitude = abs(value)
        odd = magnitude >> ((magnitude & -magnitude).bit_length() - 1)
        if magnitude > float(finfo.max):
            return f"value {value} is out of the {tensor.datatype} range (|x| <= {float(finfo.max):.7g})"
        if odd.bit_length() > finfo.nmant + 1:
            return f"value {value} has no exact {tensor.datatype} representation"
    return None

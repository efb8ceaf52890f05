"""Check inputs before they are sent: structure, value range, business rules.

    validate_inputs(info, {"features": batch},
                    bounds={"features": Bounds(min=0, max=16)},
                    rules=[lambda inputs: None if inputs["features"].sum() > 0 else "all zeros"])

Every message names the input, the value seen and what the model expects, e.g.
"input 'features' has shape (3, 65); model 'digits_mlp' expects (-1, 64) with batch <= 4096".

One dtype rule (client/plain.py): numpy arrays must already have the input's dtype; plain Python
lists, tuples and scalars are converted by `as_arrays` when every value fits the dtype (ints exactly,
floats within range, never float to int). A list numpy cannot turn into a regular array, or a
value that does not fit, is an InvalidInputError naming the input and the value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tritonstack.client.model import ModelInfo, TensorInfo
from tritonstack.client.plain import RULE, from_plain, is_plain

from tritonstack.errors import InvalidInputError

__all__ = ["Bounds", "Rule", "as_arrays", "validate_inputs"]

#: A business rule: gets all inputs, returns None when fine or a message saying what is wrong.
Rule = Callable[[Mapping[str, np.ndarray]], "str | None"]


@dataclass(frozen=True, kw_only=True)
class Bounds:
    """Declared value range of a numeric input; NaN/Inf are refused unless allowed."""

    min: float | None = None
    max: float | None = None
    allow_nonfinite: bool = False


def validate_inputs(
    info: ModelInfo,
    inputs: Mapping[str, np.ndarray],
    *,
    bounds: Mapping[str, Bounds] | None = None,
    rules: Sequence[Rule] = (),
) -> None:
    """Raise InvalidInputError at the first input that breaks structure, range or a rule."""
    if inputs.keys() != info.inputs.keys():
        _check_names(info, inputs)
    for name, array in inputs.items():
        _check_structure(info, info.inputs[name], array)
        if array.dtype != np.object_:
            _check_range(info, name, array, bounds.get(name, _UNBOUNDED) if bounds else _UNBOUNDED)
    if info.batched and len(inputs) > 1:
        _check_batch_sizes(info, inputs)
    for rule in rules:
        problem = rule(inputs)
        if problem:
            raise InvalidInputError(f"model {info.name!r}: business rule failed: {problem}")


_UNBOUNDED = Bounds()


def as_arrays(info: ModelInfo, inputs: object) -> dict[str, np.ndarray]:
    """Inputs as a dict of arrays: one array (or list) for a single-input model, else a mapping.

    Plain lists, tuples and scalars are converted with the model's dtype (see the module docstring).
    """
    if isinstance(inputs, Mapping):
        items: Mapping[str, Any] = inputs
    elif len(info.inputs) == 1:
        items = {next(iter(info.inputs)): inputs}
    else:
        raise InvalidInputError(f"model {info.name!r} has inputs {sorted(info.inputs)}; "
                                "pass a dict of arrays by input name")
    return {name: from_plain(info, name, value) if is_plain(value) else value
            for name, value in items.items()}


def _check_batch_sizes(info: ModelInfo, inputs: Mapping[str, np.ndarray]) -> None:
    sizes = {name: array.shape[0] for name, array in inputs.items()}
    if len(set(sizes.values())) > 1:
        seen = ", ".join(f"{name!r}: {size}" for name, size in sizes.items())
        raise InvalidInputError(f"inputs of one call have different batch sizes ({seen}); model "
                                f"{info.name!r} needs the same first dimension in every input")


def _check_names(info: ModelInfo, inputs: Mapping[str, np.ndarray]) -> None:
    missing = sorted(set(info.inputs) - set(inputs))
    extra = sorted(set(inputs) - set(info.inputs))
    if missing or extra:
        raise InvalidInputError(
            f"model {info.name!r} expects inputs {sorted(info.inputs)}; "
            f"missing {missing or 'none'}, unexpected {extra or 'none'}"
        )


def _expected(info: ModelInfo, tensor: TensorInfo) -> str:
    dims = ((-1,) if info.batched else ()) + tensor.dims
    limit = f" with batch <= {info.max_batch_size}" if info.batched else ""
    return f"model {info.name!r} expects {dims}{limit}"


def _check_structure(info: ModelInfo, tensor: TensorInfo, array: np.ndarray) -> None:
    if not isinstance(array, np.ndarray):
        raise InvalidInputError(
            f"input {tensor.name!r} is a {type(array).__name__}; pass a numpy array of {tensor.dtype}"
        )
    # A dtype and shape seen valid before needs only its batch size checked (the common case).
    signature = (tensor.name, array.dtype, array.shape[1:] if info.batched else array.shape)
    if signature in info.checked and (not info.batched or 1 <= array.shape[0] <= info.max_batch_size):
        return
    if tensor.datatype == "BYTES":
        if array.dtype.kind not in "OSU":
            raise InvalidInputError(f"input {tensor.name!r} has dtype {array.dtype}; "
                                    f"model {info.name!r} expects strings (object, bytes or str)")
    elif array.dtype != tensor.dtype:
        raise InvalidInputError(
            f"input {tensor.name!r} has dtype {array.dtype}; model {info.name!r} expects "
            f"{tensor.dtype} (use array.astype(np.{tensor.dtype.name}); {RULE})"
        )
    shape = array.shape[1:] if info.batched else array.shape
    fits = len(shape) == len(tensor.dims) and all(
        d in (-1, s) for d, s in zip(tensor.dims, shape, strict=True))
    too_big = info.batched and (array.ndim == 0 or not 1 <= array.shape[0] <= info.max_batch_size)
    if not fits or too_big:
        raise InvalidInputError(
            f"input {tensor.name!r} has shape {array.shape}; {_expected(info, tensor)}"
        )
    info.checked.add(signature)


def _check_range(info: ModelInfo, name: str, array: np.ndarray, bounds: Bounds) -> None:
    # One float64 sum is finite when every value is (a float32 sum cannot overflow in float64);
    # only when it is not (NaN, Inf, or float64 overflow) is the array scanned value by value.
    if (array.dtype.kind == "f" and not bounds.allow_nonfinite
            and not math.isfinite(np.add.reduce(array, axis=None, dtype=np.float64))
            and not np.isfinite(array).all()):
        count = int((~np.isfinite(array)).sum())
        raise InvalidInputError(f"input {name!r} holds {count} NaN/Inf value(s); model {info.name!r} "
                                "accepts finite values only (Bounds(allow_nonfinite=True) to allow)")
    if array.size == 0 or (bounds.min is None and bounds.max is None):
        return
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    if (bounds.min is not None and low < bounds.min) or (bounds.max is not None and high > bounds.max):
        raise InvalidInputError(f"input {name!r} has values in [{low:g}, {high:g}]; model "
                                f"{info.name!r} accepts [{bounds.min}, {bounds.max}]")

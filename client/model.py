"""What the client knows of a served model, read once from its config and metadata and cached.

    info = ModelInfo.from_config(raw_client.get_model_config("digits_mlp", as_json=True)["config"],
                                 metadata=raw_client.get_model_metadata("digits_mlp", as_json=True))
    info.inputs["features"].dims   # (64,)
    info.versions                  # ("1",): the versions the server serves
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

__all__ = ["ModelInfo", "TensorInfo", "fixed_width_dtypes", "numpy_dtype"]

_NUMPY = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
    "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64, "STRING": np.object_,
    "BYTES": np.object_,
}


def fixed_width_dtypes() -> dict[str, np.dtype]:
    """numpy dtypes of the Triton types sent as plain little-endian arrays (all but BYTES)."""
    return {name: np.dtype(kind) for name, kind in _NUMPY.items() if kind is not np.object_}


def numpy_dtype(triton_type: str) -> type:
    """numpy dtype for a Triton type name ("FP32" or "TYPE_FP32")."""
    return _NUMPY[triton_type.removeprefix("TYPE_")]


@dataclass(frozen=True, kw_only=True)
class TensorInfo:
    """One input or output as the server declares it (dims without the batch axis)."""

    name: str
    datatype: str  # Triton wire name: FP32, INT64, BYTES...
    dims: tuple[int, ...]

    @cached_property
    def dtype(self) -> np.dtype:
        """numpy dtype of this tensor."""
        return np.dtype(numpy_dtype(self.datatype))


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """A model's name, batch limit and tensors; versions and platform when metadata was given."""

    name: str
    max_batch_size: int
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    versions: tuple[str, ...] = ()
    platform: str = ""
    #: The config enables dynamic batching (and no sequence batching): the server may merge requests.
    dynamic_batching: bool = False
    #: (input name, dtype, shape without the batch axis) combinations that passed validation
    checked: set[tuple[str, np.dtype, tuple[int, ...]]] = field(
        default_factory=set, compare=False, repr=False)

    @cached_property
    def output_names(self) -> tuple[str, ...]:
        """Output names in config order (what `infer` returns by default)."""
        return tuple(self.outputs)

    @property
    def batched(self) -> bool:
        """True when the first axis of every tensor is the batch axis."""
        return self.max_batch_size > 0

    @classmethod
    def from_config(cls, config: dict[str, Any], metadata: dict[str, Any] | None = None) -> ModelInfo:
        """Build from the JSON form of a ModelConfig (`get_model_config(..., as_json=True)`) and,
        optionally, of the model metadata (`get_model_metadata(..., as_json=True)`)."""
        def tensors(items: list[dict[str, Any]]) -> dict[str, TensorInfo]:
            return {
                t["name"]: TensorInfo(
                    name=t["name"],
                    datatype=_wire(t.get("data_type", "TYPE_FP32")),
                    dims=tuple(int(d) for d in t.get("dims", [])),
                )
                for t in items
            }

        return cls(
            name=config["name"],
            max_batch_size=int(config.get("max_batch_size", 0)),
            inputs=tensors(config.get("input", [])),
            outputs=tensors(config.get("output", [])),
            versions=tuple(str(v) for v in (metadata or {}).get("versions", [])),
            platform=str((metadata or {}).get("platform", "")),
            dynamic_batching="dynamic_batching" in config and "sequence_batching" not in config,
        )


def _wire(config_type: str) -> str:
    name = config_type.removeprefix("TYPE_")
    return "BYTES" if name == "STRING" else name

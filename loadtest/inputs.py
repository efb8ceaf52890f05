"""Random requests shaped and typed as a model declares (for load, not for accuracy).

rows = random_rows(client.model_info("digits_mlp"), count=16)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["random_rows"]

_WORDS = ("triton", "serves", "models", "on", "cpu", "with", "dynamic", "batching", "fast", "today")


def _tensor(datatype: str, shape: list[int], rng: np.random.Generator) -> np.ndarray:
    if datatype == "BYTES":
        texts = [" ".join(rng.choice(_WORDS, size=8)) for _ in range(int(np.prod(shape)))]
        return np.array(texts, dtype=np.object_).reshape(shape)
    if datatype.startswith(("INT", "UINT")):
        return rng.integers(0, 8, size=shape).astype(datatype.lower())
    if datatype == "BOOL":
        return rng.random(shape) > 0.5
    return (rng.random(shape) * 8).astype(
        {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64}[datatype]
    )


def random_rows(info: Any, *, count: int = 16, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """`count` single-row requests for a `ModelInfo` (dims of -1 become 1; batch axis of 1 added)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        row = {}
        for name, tensor in info.inputs.items():
            shape = ([1] if info.batched else []) + [1 if d < 0 else d for d in tensor.dims]
            row[name] = _tensor(tensor.datatype, shape, rng)
        rows.append(row)
    return rows

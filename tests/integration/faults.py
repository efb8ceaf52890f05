"""Helpers for the fault-matrix tests: a repository with deliberately slow models, raw gRPC calls."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tritonstack.convert import Batching, ModelSpec, Platform, TensorSpec, write_version

from tritonstack.model_config import read_config, write_config

ASSETS = Path(__file__).parent.parent / "assets" / "models"


def add_sleepy_model(repository: Path, name: str, *, delay_ms: int, batching: Batching,
                     max_batch_size: int = 1) -> None:
    """A Python model echoing x→y after delay_ms; max_batch_size 1 so nothing is merged."""
    spec = ModelSpec(
        name=name, platform=Platform.PYTHON, max_batch_size=max_batch_size,
        inputs=[TensorSpec(name="x", dtype="FP32", dims=(1,))],
        outputs=[TensorSpec(name="y", dtype="FP32", dims=(1,))],
        batching=batching,
    )
    write_version(repository, spec, files={"model.py": ASSETS / "sleepy.py"}, manifest={"test": True})
    config = read_config(repository / name / "config.pbtxt")
    config.parameters["delay_ms"].string_value = str(delay_ms)
    write_config(config, repository / name / "config.pbtxt")


def timed(call) -> tuple[float, object]:  # noqa: ANN001
    """(seconds, result or exception) of call()."""
    start = time.perf_counter()
    try:
        result = call()
    except Exception as exc:  # noqa: BLE001 - the caller inspects it
        result = exc
    return time.perf_counter() - start, result


def one() -> np.ndarray:
    """A valid input for the sleepy models."""
    return np.ones((1, 1), np.float32)

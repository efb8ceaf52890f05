"""Decide which models of a standard Triton repository this host can serve, and why not the others.

    plan = plan_repository(Path("model_repository"))
    plan.models        # ["digits_mlp", ...]: loaded at start
    plan.skipped       # {"resnet18_trt": "TensorRT plan needs an NVIDIA GPU ..."}
    plan.python        # {"digits_mlp": "config.pbtxt asks for it ..."}: ONNX models for the Python runner

The repository is served as it is (the NGC container serves the same folder). What differs on this
CPU host lives in the server's backend directory, not in the repository: see `binary.py`. With the
native runner (default), an ONNX model still goes to the Python runner when its config.pbtxt says
`parameters { key: "tritonstack_runner" value { string_value: "python" } }`; `string_value: "native"`
or no such parameter keeps it native. A drift reference no longer moves a model: the native backend
publishes the same `tritonstack_drift_*` gauges itself (serve/native/drift_monitor.cc). Models for the
Python runner are served at launch from a shadow repository holding their config switched to the
Python-based backend `onnxruntime_python` (`shadow.py`), and loaded later with the same switch as a
config override (`python_runner_config`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tritonstack.serve.binary import PYTHON_RUNNER_BACKEND

from tritonstack.errors import ConfigError
from tritonstack.model_config import read_config

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig

__all__ = ["RUNNER_PARAMETER", "RepositoryPlan", "gpu_available", "plan_repository", "python_runner_config",
           "python_runner_model_config", "python_runner_reason"]

_TENSORRT = ("tensorrt_plan", "tensorrt")
_ONNX = ("onnxruntime_onnx", "onnxruntime")
#: config.pbtxt parameter that picks the runner of one ONNX model ("python" or "native").
RUNNER_PARAMETER = "tritonstack_runner"


@dataclass
class RepositoryPlan:
    """Models to load at start, and models left out with a one-line reason."""

    models: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    python: dict[str, str] = field(default_factory=dict)  # subset of models: Python runner, and why


def gpu_available() -> bool:
    """Return True when an NVIDIA GPU driver is visible on this host."""
    return Path("/dev/nvidiactl").exists() and shutil.which("nvidia-smi") is not None


def skip_reason(model_dir: Path) -> str | None:
    """Why this host cannot serve the model in `model_dir`, or None when it can."""
    try:
        config = read_config(model_dir / "config.pbtxt")
    except ConfigError as exc:
        return str(exc)
    kind = config.platform or config.backend
    if kind in _TENSORRT and not gpu_available():
        return "TensorRT plan needs an NVIDIA GPU and the tensorrt backend; this host has neither"
    if kind in _ONNX and any(g.kind == g.KIND_GPU for g in config.instance_group) and not gpu_available():
        return "instance_group asks for KIND_GPU and this host has no GPU; use KIND_AUTO or KIND_CPU"
    return None


def python_runner_reason(model_dir: Path) -> str | None:
    """Why the ONNX model in `model_dir` goes to the Python runner under the native default, or None:
    only when its config.pbtxt asks for it. A drift reference keeps it native: the native backend
    publishes the drift gauges itself."""
    try:
        config = read_config(model_dir / "config.pbtxt")
    except ConfigError:
        return None
    if (config.platform or config.backend) not in _ONNX:
        return None
    asked = config.parameters[RUNNER_PARAMETER].string_value if RUNNER_PARAMETER in config.parameters else ""
    if asked in ("python", "native"):
        return f"config.pbtxt asks for it ({RUNNER_PARAMETER}={asked})" if asked == "python" else None
    return None


def python_runner_model_config(model_dir: Path) -> ModelConfig:
    """The model's config switched to the Python runner (what the launch shadow serves, `shadow.py`)."""
    config = read_config(model_dir / "config.pbtxt")
    config.name = config.name or model_dir.name
    config.platform = ""
    config.backend = PYTHON_RUNNER_BACKEND
    return config


def python_runner_config(model_dir: Path) -> str:
    """The model's config as JSON, switched to the Python runner: the config override of a load call."""
    from google.protobuf import json_format

    config = python_runner_model_config(model_dir)
    return json_format.MessageToJson(config, preserving_proto_field_name=True)


def plan_repository(repository: Path, *, runner: str = "native") -> RepositoryPlan:
    """Sort every model folder of `repository` (one holding config.pbtxt) into load or skip, and mark
    the ONNX models that the native runner leaves to the Python runner."""
    plan = RepositoryPlan()
    for model_dir in sorted(p for p in Path(repository).iterdir() if (p / "config.pbtxt").is_file()):
        reason = skip_reason(model_dir)
        if reason:
            plan.skipped[model_dir.name] = reason
            continue
        plan.models.append(model_dir.name)
        why = python_runner_reason(model_dir) if runner == "native" else None
        if why:
            plan.python[model_dir.name] = why
    return plan

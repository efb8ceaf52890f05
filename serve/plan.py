"""Decide which models of a standard Triton repository this host can serve, and why not the others.

    plan = plan_repository(Path("model_repository"))
    plan.models        # ["digits_mlp", ...]: loaded at start
    plan.skipped       # {"resnet18_trt": "TensorRT plan needs an NVIDIA GPU ..."}

The repository is served as it is (the NGC container serves the same folder). What differs on this
CPU host lives in the server's backend directory, not in the repository: see `binary.py`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tritonstack.errors import ConfigError
from tritonstack.model_config import read_config

__all__ = ["RepositoryPlan", "gpu_available", "plan_repository"]

_TENSORRT = ("tensorrt_plan", "tensorrt")
_ONNX = ("onnxruntime_onnx", "onnxruntime")


@dataclass
class RepositoryPlan:
    """Models to load at start, and models left out with a one-line reason."""

    models: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


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


def plan_repository(repository: Path) -> RepositoryPlan:
    """Sort every model folder of `repository` (one holding config.pbtxt) into load or skip."""
    plan = RepositoryPlan()
    for model_dir in sorted(p for p in Path(repository).iterdir() if (p / "config.pbtxt").is_file()):
        reason = skip_reason(model_dir)
        if reason:
            plan.skipped[model_dir.name] = reason
        else:
            plan.models.append(model_dir.name)
    return plan

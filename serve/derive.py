"""Derive what the embedded server runs from a standard Triton model repository.

    plan = derive_repository(Path("model_repository"), workdir / "repository", ort_threads=2)
    for name, reason in plan.skipped.items():
        print(name, reason)

The source repository stays standard Triton (`onnxruntime_onnx`, `tensorrt_plan`, `python`,
`ensemble`) so the NGC container serves it unchanged. This CPU build of tritonserver has no
onnxruntime or tensorrt backend, so here:

- an `onnxruntime_onnx` model becomes a Python-backend model running ONNX Runtime
  (`runners/onnx_model.py`), its version folders linked to the source files;
- a `tensorrt_plan` model is skipped with a one-line reason when no GPU is present;
- Python-backend models and ensembles are linked unchanged.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tritonstack.model_config import read_config, write_config

__all__ = ["DerivedRepository", "derive_model", "derive_repository", "gpu_available"]

_RUNNER = Path(__file__).parent / "runners" / "onnx_model.py"
_ONNX = ("onnxruntime_onnx", "onnxruntime")
_TENSORRT = ("tensorrt_plan", "tensorrt")


@dataclass
class DerivedRepository:
    """The repository handed to tritonserver, and what was left out of it and why."""

    path: Path
    models: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def gpu_available() -> bool:
    """Return True when an NVIDIA GPU driver is visible on this host."""
    return Path("/dev/nvidiactl").exists() and shutil.which("nvidia-smi") is not None


def derive_repository(source: Path, target: Path, *, ort_threads: int | None = None) -> DerivedRepository:
    """Build `target` so the embedded tritonserver can serve every model of `source` it can run."""
    target.mkdir(parents=True, exist_ok=True)
    derived = DerivedRepository(path=target)
    for model_dir in sorted(p for p in source.iterdir() if (p / "config.pbtxt").is_file()):
        reason = _derive_model(model_dir, target / model_dir.name, ort_threads)
        if reason:
            derived.skipped[model_dir.name] = reason
        else:
            derived.models.append(model_dir.name)
    return derived


def derive_model(model_dir: Path, out: Path, *, ort_threads: int | None = None) -> str | None:
    """(Re)derive one model into `out`, replacing what was there; return a skip reason or None.

    Used when a model changes while the server runs (a new version folder, a new config):
    the model is re-derived, then loaded again through Triton's model-control API.
    """
    staging = out.with_name(f".{out.name}.new")
    if staging.is_symlink() or staging.is_file():
        staging.unlink()
    shutil.rmtree(staging, ignore_errors=True)
    reason = _derive_model(model_dir, staging, ort_threads)
    old = out.with_name(f".{out.name}.old")
    if out.is_symlink() or out.exists():
        out.rename(old)
    if not reason:
        staging.rename(out)
    if old.is_symlink():
        old.unlink()
    shutil.rmtree(old, ignore_errors=True)
    return reason


def _derive_model(model_dir: Path, out: Path, ort_threads: int | None) -> str | None:
    config = read_config(model_dir / "config.pbtxt")
    kind = config.platform or config.backend
    if kind in _TENSORRT and not gpu_available():
        return "TensorRT plan needs an NVIDIA GPU and the tensorrt backend; this host has neither"
    if kind not in _ONNX:
        out.symlink_to(model_dir.resolve(), target_is_directory=True)
        return None
    out.mkdir()
    for version in (p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()):
        (out / version.name).mkdir()
        for item in version.iterdir():
            (out / version.name / item.name).symlink_to(item.resolve())
        (out / version.name / "model.py").symlink_to(_RUNNER.resolve())
    write_config(_as_python_model(config, ort_threads), out / "config.pbtxt")
    return None


def _as_python_model(config, ort_threads: int | None):  # noqa: ANN001, ANN202 - ModelConfig
    config.platform = ""
    config.backend = "python"
    config.ClearField("optimization")
    if config.default_model_filename:  # the Python backend would take it for model.py
        config.parameters["onnx_filename"].string_value = config.default_model_filename
        config.default_model_filename = ""
    for group in config.instance_group:
        group.kind = group.KIND_CPU
        group.ClearField("gpus")
    if ort_threads:
        for key in ("intra_op_thread_count", "inter_op_thread_count"):
            config.parameters[key].string_value = str(ort_threads if key.startswith("intra") else 1)
    return config

"""TensorRT engines from ONNX, where an NVIDIA GPU and the `tensorrt` package exist.

    if is_tensorrt_available():
        onnx2trt(Path("model.onnx"), Path("model.plan"), precision=Precision.FP16,
                 batch_sizes=(1, 8, 32), timing_cache=Path("build/timing.cache"))
    else:
        print(trt_skip_reason())

INT8 engines are built from the QDQ model (explicit quantization: the scales come from the ONNX
graph, no TensorRT calibrator). One optimization profile covers batch 1 to the largest batch size,
optimised for the largest preferred size. The timing cache is read before and written after each
build, so rebuilds are faster. `tensorrt` is imported lazily: this module imports on any host.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from pathlib import Path
from typing import Any

from tritonstack.convert.precision import Precision

from tritonstack.errors import ConversionError

__all__ = ["is_tensorrt_available", "onnx2trt", "trt_skip_reason"]

_LOGGER = logging.getLogger(__name__)


def _gpu_present() -> bool:
    return Path("/dev/nvidiactl").exists() and shutil.which("nvidia-smi") is not None


def trt_skip_reason() -> str | None:
    """Why no TensorRT engine can be built on this host, or None when one can."""
    if not _gpu_present():
        return "no NVIDIA GPU on this host (TensorRT engines are built and run on the GPU they target)"
    if importlib.util.find_spec("tensorrt") is None:
        return "the tensorrt package is not installed (pip install 'tritonstack[gpu]')"
    return None


def is_tensorrt_available() -> bool:
    """True when a GPU and the tensorrt package are present."""
    return trt_skip_reason() is None


def onnx2trt(onnx_path: Path, plan_path: Path, *, precision: Precision, batch_sizes: tuple[int, ...],
             timing_cache: Path | None = None, workspace_bytes: int = 1 << 30,
             dynamic_dims: tuple[int, int, int] = (1, 128, 256), progress: bool = True) -> Path:
    """Build a serialized TensorRT engine for `onnx_path`; raise ConversionError on failure."""
    reason = trt_skip_reason()
    if reason:
        raise ConversionError(f"cannot build a TensorRT engine: {reason}")
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    _parse(trt, network, logger, Path(onnx_path))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if precision in (Precision.FP16, Precision.INT8):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision is Precision.INT8:
        config.set_flag(trt.BuilderFlag.INT8)
    config.add_optimization_profile(_profile(builder, network, batch_sizes, dynamic_dims))
    cache = _load_timing_cache(config, timing_cache)
    if progress:
        config.progress_monitor = _progress_monitor(trt)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ConversionError(f"TensorRT could not build an engine from {onnx_path}; see its log above")
    Path(plan_path).write_bytes(bytes(plan))
    if timing_cache is not None:
        Path(timing_cache).write_bytes(bytes(cache.serialize()))
    return Path(plan_path)


def _parse(trt: Any, network: Any, logger: Any, onnx_path: Path) -> None:
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ConversionError(f"TensorRT cannot parse {onnx_path}: {errors[:300]}")


def _profile(builder: Any, network: Any, batch_sizes: tuple[int, ...], dims: tuple[int, int, int]) -> Any:
    profile = builder.create_optimization_profile()
    sizes = sorted(set(batch_sizes))
    largest, opt = sizes[-1], sizes[-2] if len(sizes) > 1 else sizes[-1]
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        rest = list(tensor.shape)[1:]
        shapes = [[b, *(d if d > 0 else dims[k] for d in rest)] for k, b in enumerate((1, opt, largest))]
        profile.set_shape(tensor.name, *shapes)
    return profile


def _load_timing_cache(config: Any, path: Path | None) -> Any:
    data = Path(path).read_bytes() if path is not None and Path(path).is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def _progress_monitor(trt: Any) -> Any:
    from tqdm.auto import tqdm

    class _Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.bars: dict[str, Any] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.bars[phase_name] = tqdm(total=num_steps, desc=phase_name, leave=False)

        def step_complete(self, phase_name: str, step: int) -> bool:
            self.bars[phase_name].update(1)
            return True

        def phase_finish(self, phase_name: str) -> None:
            self.bars.pop(phase_name).close()

    return _Monitor()

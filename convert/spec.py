"""Typed description of a model as Triton serves it, turned into a ModelConfig protobuf.

    spec = ModelSpec(
        name="digits_mlp", platform=Platform.ONNX, max_batch_size=512,
        inputs=[TensorSpec(name="features", dtype="FP32", dims=(64,))],
        outputs=[TensorSpec(name="probabilities", dtype="FP32", dims=(10,))],
    )
    config = spec.to_config()
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum

from tritonstack.errors import InputSpecError, RepositoryWriteError
from tritonstack.model_config import new_config

__all__ = [
    "DEFAULT_MAX_QUEUE_SIZE", "DEFAULT_QUEUE_TIMEOUT_US",
    "Batching", "EnsembleStep", "ModelSpec", "Platform", "TensorSpec", "TrtAccelerator", "VersionPolicy",
    "check_model_name", "with_max_dims",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_DTYPES = ("BOOL", "UINT8", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "STRING")


class Platform(str, Enum):
    """How Triton runs the model."""

    ONNX = "onnxruntime_onnx"
    TENSORRT = "tensorrt_plan"
    PYTHON = "python"
    ENSEMBLE = "ensemble"


def with_max_dims(specs: list[TensorSpec], given: list[TensorSpec] | None) -> list[TensorSpec]:
    """`specs` (e.g. read from the ONNX file) with the -1 dims' maxima of the same-named `given` specs."""
    limits = {g.name: g.max_dims for g in given or () if g.max_dims is not None}
    out = []
    for spec in specs:
        maxima = limits.get(spec.name)
        if maxima is not None and len(maxima) == len(spec.dims):
            bounded = tuple(m if d == -1 else d for d, m in zip(spec.dims, maxima, strict=True))
            spec = TensorSpec(name=spec.name, dtype=spec.dtype, dims=spec.dims, max_dims=bounded)
        out.append(spec)
    return out


def unbounded_notes(specs: list[TensorSpec]) -> list[str]:
    """One warning per input with a dynamic dim and no maximum: one request may then carry any size."""
    return [f"input '{spec.name}' has a dynamic dimension {list(spec.dims)} and no bound, so one request may "
            f"carry any size; bound it with --input {spec.name}:{spec.dtype}:"
            f"{','.join(str(d) for d in spec.dims)}:MAX (one maximum per -1 dim, checked per request)"
            for spec in specs if -1 in spec.dims and spec.max_dims is None]


def check_model_name(name: str) -> str:
    """Return `name` if it is a safe model folder name; refuse path traversal and odd characters."""
    if not _NAME.match(name) or name in (".", ".."):
        raise RepositoryWriteError(
            f"model name {name!r} is not allowed; use letters, digits, '_', '-', '.' "
            "(no path separators, at most 128 characters)"
        )
    return name


@dataclass(frozen=True, kw_only=True)
class TensorSpec:
    """One input or output; `dims` exclude the batch axis when the model batches.

    `max_dims` (inputs): the largest size each `-1` dim may take (e.g. an encoder's sequence
    length), same length as `dims`. Triton 2.51's config has no per-dim maximum, so it is written
    as the model parameter `max_input_dims` (JSON), which the ONNX runner enforces per request.
    """

    name: str
    dtype: str
    dims: tuple[int, ...]
    max_dims: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise InputSpecError(f"tensor {self.name!r}: dtype {self.dtype!r} is not one of {_DTYPES}")
        if any(d == 0 or d < -1 for d in self.dims):
            raise InputSpecError(f"tensor {self.name!r}: dims {self.dims} must be positive or -1")
        if self.max_dims is not None and (len(self.max_dims) != len(self.dims) or any(
                m < 1 or d not in (-1, m) for d, m in zip(self.dims, self.max_dims, strict=False))):
            raise InputSpecError(f"tensor {self.name!r}: max_dims {self.max_dims} must give one positive "
                                 f"maximum per dim of {self.dims} (equal to the dim where it is fixed)")


#: Queue bounds of generated configs: off by default. Triton 2.51's dynamic batcher stalls for its
#: 500 ms idle wait whenever a queue policy (`default_queue_policy` or `priority_queue_policy`, size or
#: timeout) is set: digits_mlp at concurrency 32 under perf_analyzer, same server, 5,200-5,700 req/s
#: (p99 13-15 ms) without one, 210-620 req/s (p99 508-516 ms) with one (pinned or not). `--max-queue-size`
#: / `--queue-timeout-us` still write one for who accepts that cost (README, "Queue bounds").
DEFAULT_QUEUE_TIMEOUT_US = 0
DEFAULT_MAX_QUEUE_SIZE = 0


@dataclass(frozen=True, kw_only=True)
class Batching:
    """Dynamic batching settings. A queue size or timeout (REJECT on timeout) is written only when set:
    see DEFAULT_QUEUE_TIMEOUT_US for what it costs on Triton 2.51."""

    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 500
    max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE  # 0: unbounded
    queue_timeout_us: int = DEFAULT_QUEUE_TIMEOUT_US  # 0: none

    def __post_init__(self) -> None:
        if min(self.max_queue_delay_us, self.max_queue_size, self.queue_timeout_us) < 0:
            raise InputSpecError(f"batching {self}: delays, queue size and timeout must be >= 0")


@dataclass(frozen=True, kw_only=True)
class VersionPolicy:
    """Which versions Triton serves: the `latest` N, `all`, or the `specific` ones listed."""

    kind: str = "latest"
    versions: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        if self.kind not in ("latest", "all", "specific"):
            raise InputSpecError(f"version policy {self.kind!r} is not one of latest, all, specific")
        if self.kind != "all" and (not self.versions or min(self.versions) < 1):
            raise InputSpecError(f"version policy {self.kind}: versions {self.versions} must be >= 1")
        if self.kind == "latest" and len(self.versions) != 1:
            raise InputSpecError(f"version policy latest takes one count, got {self.versions}")

    @classmethod
    def parse(cls, text: str) -> VersionPolicy:
        """Parse `latest:2`, `all` or `specific:1,3`."""
        kind, _, rest = text.partition(":")
        try:
            versions = tuple(int(v) for v in rest.split(",") if v.strip()) if rest else ()
        except ValueError as exc:
            raise InputSpecError(f"version policy {text!r}: use latest:N, all or specific:1,3") from exc
        return cls(kind=kind, versions=versions or ((1,) if kind == "latest" else ()))

    def apply(self, config) -> None:  # noqa: ANN001 - ModelConfig
        """Set `version_policy` on a ModelConfig."""
        policy = config.version_policy
        if self.kind == "all":
            policy.all.SetInParent()
        elif self.kind == "latest":
            policy.latest.num_versions = self.versions[0]
        else:
            policy.specific.versions.extend(self.versions)


@dataclass(frozen=True, kw_only=True)
class TrtAccelerator:
    """ONNX Runtime's TensorRT execution accelerator block (GPU hosts; ignored on CPU-only serving)."""

    precision: str = "FP16"
    max_workspace_bytes: int = 1 << 30
    engine_cache_path: str | None = None

    def __post_init__(self) -> None:
        if self.precision not in ("FP32", "FP16", "INT8"):
            raise InputSpecError(f"TensorRT precision {self.precision!r} is not one of FP32, FP16, INT8")

    def apply(self, config) -> None:  # noqa: ANN001 - ModelConfig
        """Add the gpu_execution_accelerator entry to a ModelConfig."""
        accelerators = config.optimization.execution_accelerators
        accelerator = accelerators.gpu_execution_accelerator.add(name="tensorrt")
        accelerator.parameters["precision_mode"] = self.precision
        accelerator.parameters["max_workspace_size_bytes"] = str(self.max_workspace_bytes)
        if self.engine_cache_path:
            accelerator.parameters["trt_engine_cache_enable"] = "1"
            accelerator.parameters["trt_engine_cache_path"] = self.engine_cache_path


@dataclass(frozen=True, kw_only=True)
class EnsembleStep:
    """One step of an ensemble: a model and how its tensors map to the ensemble's tensors."""

    model_name: str
    input_map: dict[str, str]
    output_map: dict[str, str]
    model_version: int = -1


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """Everything `config.pbtxt` says about one model."""

    name: str
    platform: Platform
    max_batch_size: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    batching: Batching | None = field(default_factory=Batching)
    instance_count: int = 1
    intra_op_threads: int | None = None
    response_cache: bool = False
    warmup_batch_size: int | None = None
    version_policy: VersionPolicy | None = None
    trt_accelerator: TrtAccelerator | None = None
    steps: tuple[EnsembleStep, ...] = ()
    parameters: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_model_name(self.name)
        if self.max_batch_size < 0:
            raise InputSpecError(f"max_batch_size={self.max_batch_size} must be >= 0")
        if self.instance_count < 1:
            raise InputSpecError(f"instance_count={self.instance_count} must be >= 1")
        if (self.platform is Platform.ENSEMBLE) != bool(self.steps):
            raise InputSpecError(f"model {self.name!r}: an ensemble needs steps, and only an ensemble "
                                 "has them")

    def to_config(self):  # noqa: ANN201 - ModelConfig
        """Return this spec as Triton's ModelConfig protobuf message."""
        config = new_config()
        config.name = self.name
        if self.platform is Platform.PYTHON:
            config.backend = "python"
        else:
            config.platform = self.platform.value
        config.max_batch_size = self.max_batch_size
        for spec, target in ((self.inputs, config.input), (self.outputs, config.output)):
            for tensor in spec:
                item = target.add(name=tensor.name, data_type=f"TYPE_{tensor.dtype}")
                item.dims.extend(tensor.dims)
        limits = {t.name: list(t.max_dims) for t in self.inputs if t.max_dims is not None}
        if limits:
            config.parameters["max_input_dims"].string_value = json.dumps(limits, sort_keys=True)
        self._add_scheduling(config)
        self._add_extras(config)
        return config

    def _add_extras(self, config) -> None:  # noqa: ANN001
        if self.version_policy is not None:
            self.version_policy.apply(config)
        if self.trt_accelerator is not None:
            self.trt_accelerator.apply(config)
        for key, value in self.parameters.items():
            config.parameters[key].string_value = value
        for step in self.steps:
            item = config.ensemble_scheduling.step.add(model_name=step.model_name,
                                                       model_version=step.model_version)
            item.input_map.update(step.input_map)
            item.output_map.update(step.output_map)

    def _add_scheduling(self, config) -> None:  # noqa: ANN001
        batched = self.max_batch_size > 0 and self.platform is not Platform.ENSEMBLE
        if self.batching is not None and batched:
            b = config.dynamic_batching
            b.preferred_batch_size.extend(self.batching.preferred_batch_sizes)
            b.max_queue_delay_microseconds = self.batching.max_queue_delay_us
            if self.batching.max_queue_size:
                b.default_queue_policy.max_queue_size = self.batching.max_queue_size
            if self.batching.queue_timeout_us:
                b.default_queue_policy.default_timeout_microseconds = self.batching.queue_timeout_us
                b.default_queue_policy.timeout_action = b.default_queue_policy.REJECT
        if self.platform is not Platform.ENSEMBLE:
            config.instance_group.add(count=self.instance_count, kind="KIND_AUTO")
        if self.intra_op_threads:
            config.parameters["intra_op_thread_count"].string_value = str(self.intra_op_threads)
        if self.response_cache:
            config.response_cache.enable = True
        if self.warmup_batch_size:
            self._add_warmup(config)

    def _add_warmup(self, config) -> None:  # noqa: ANN001
        warmup = config.model_warmup.add(name="zeros", batch_size=self.warmup_batch_size)
        for tensor in self.inputs:
            data = warmup.inputs[tensor.name]
            data.data_type = f"TYPE_{tensor.dtype}"
            data.dims.extend(max(d, 1) for d in tensor.dims)
            data.zero_data = True

"""What a conversion is asked to do (ConvertOptions) and what it built (Variant, ConvertReport).

    options = ConvertOptions(model="model.onnx", name="net", repository=Path("model_repository"),
                             workdir=Path("build"), precisions=(Precision.FP32, Precision.FP16))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tritonstack.convert.gate import GateResult, check_budget
from tritonstack.convert.precision import DEFAULT_TOLERANCES, Precision, Tolerance
from tritonstack.convert.quantize import Int8Recipe, Int8Result
from tritonstack.convert.samples import SampleSet
from tritonstack.convert.sources import Source
from tritonstack.convert.spec import Batching, Platform, TensorSpec, VersionPolicy, check_model_name
from tritonstack.convert.verify import OutputError

from tritonstack.errors import ConfigError

__all__ = ["ConvertOptions", "ConvertReport", "SampleSource", "Variant"]

SampleSource = Path | SampleSet | dict | np.ndarray


@dataclass(frozen=True, kw_only=True)
class ConvertOptions:
    """What to convert, into which precisions, checked how, and served how."""

    model: str | Path
    name: str
    repository: Path
    workdir: Path
    inputs: list[TensorSpec] | None = None
    output_names: list[str] | None = None
    weights: Path | None = None
    precisions: tuple[Precision, ...] = (Precision.FP32,)
    tolerances: dict[Precision, Tolerance | None] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    samples: SampleSource | None = None
    random_samples: int = 16
    calibration: SampleSource | Iterable[dict[str, np.ndarray]] | None = None
    calibration_cache: Path | None = None
    recipe: Int8Recipe = field(default_factory=Int8Recipe)
    holdout: SampleSource | None = None
    metric: str | Callable = "top1"
    budget: float | None = None
    gate_output: str | None = None
    on_gate_failure: str = "raise"  # or "skip": write the other variants, report the rejection
    max_batch_size: int = 64
    batching: Batching | None = field(default_factory=Batching)
    instance_count: int = 1
    warmup_batch_size: int | None = 1
    response_cache: bool = False
    version_policy: VersionPolicy | None = None
    trt_engine: bool = False
    trt_accelerator: bool = False
    progress: bool = True
    manifest_extra: dict[str, Any] = field(default_factory=dict)  # added to every manifest written

    def __post_init__(self) -> None:
        object.__setattr__(self, "tolerances", {**DEFAULT_TOLERANCES, **self.tolerances})
        if self.on_gate_failure not in ("raise", "skip"):
            raise ConfigError(f"on_gate_failure={self.on_gate_failure!r}; use 'raise' or 'skip'")
        _check_numbers(self)
        check_budget(self.metric, self.budget)  # before any conversion, not when the gate runs
        _check_workdir(Path(self.workdir))
        if self.calibration_cache is not None and Path(self.calibration_cache).is_dir():
            raise ConfigError(f"--calibration-cache {self.calibration_cache} is a folder; pass a file path "
                              "(it is written after a calibration and read by the next one)")
        for name in self.variant_names():  # before anything is written anywhere (workdir included)
            check_model_name(name)
        _check_base_name(self.name)

    def variant_names(self) -> list[str]:
        """Every model name this conversion may write (`name`, `name_fp16`, `name_int8`, TensorRT)."""
        names = [self.name]
        names += [f"{self.name}_{p.value}" for p in (Precision.FP16, Precision.INT8) if p in self.precisions]
        if self.trt_engine:
            names += [f"{self.name}_trt_{p.value}" for p in (Precision.FP16, Precision.INT8)]
        return names


#: Triton's max_batch_size and instance count are int32, queue sizes uint32, versions int64 (ModelConfig);
#: random verification rows are one batch held in memory.
_INT32, _UINT32, _UINT64, _INT64 = 2**31 - 1, 2**32 - 1, 2**64 - 1, 2**63 - 1
_MAX_RANDOM_SAMPLES = 65536


def _check_numbers(options: ConvertOptions) -> None:
    """Refuse numbers Triton refuses (or protobuf cannot hold) and verification counts that cannot run."""
    batch = options.max_batch_size
    _in_range("--max-batch-size", batch, 1, _INT32, "(e.g. 64)")
    for size in options.batching.preferred_batch_sizes if options.batching else ():
        _in_range("--preferred-batch-size", size, 1, batch, "(at most --max-batch-size)")
    if options.batching:
        _in_range("--max-queue-size", options.batching.max_queue_size, 0, _UINT32, "(0: unbounded)")
        _in_range("--max-queue-delay-us", options.batching.max_queue_delay_us, 0, _UINT64, "(e.g. 500)")
        _in_range("--queue-timeout-us", options.batching.queue_timeout_us, 0, _UINT64, "(0: none)")
    if options.warmup_batch_size is not None:
        _in_range("--warmup-batch-size", options.warmup_batch_size, 0, batch,
                  "(0: no warm-up; at most --max-batch-size)")
    _in_range("--instances", options.instance_count, 1, _INT32, "(e.g. 1)")
    _in_range("--random-samples", options.random_samples, 1, _MAX_RANDOM_SAMPLES, "(e.g. 16)")
    policy = options.version_policy
    for version in policy.versions if policy is not None and policy.kind != "all" else ():
        _in_range("--version-policy", version, 1, _INT64 if policy.kind == "specific" else _UINT32, "")


def _in_range(option: str, value: int, low: int, high: int, hint: str) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{option} {value} is out of range; pass a whole number from {low} to {high} "
                          f"{hint}".rstrip())


def _check_workdir(workdir: Path) -> None:
    """Refuse a scratch folder that is, or lies under, a file (nothing could be written there)."""
    for folder in (workdir, *workdir.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(f"--workdir {workdir}: {folder} is a file, not a folder; pass a folder "
                                  "(it is created if missing)")
            return


#: Endings of variant names; the base name holds FP32, so it must not end like a variant.
_VARIANT_SUFFIX = re.compile(r"_(fp16|int8|trt(_\w*)?)$", re.IGNORECASE)


def _check_base_name(name: str) -> None:
    """Refuse a --name that reads as a variant (`base_fp16`) but would hold the FP32 model."""
    match = _VARIANT_SUFFIX.search(name)
    if match:
        raise ConfigError(
            f"model name {name!r} ends with {match.group(0)!r}, the suffix of a variant, but holds the FP32 "
            f"model; pass the base name (--name {name[:match.start()] or 'NAME'}) and get "
            f"{match.group(0)[1:]} with --precision")


@dataclass
class Variant:
    """One built and checked model variant, ready to be written."""

    name: str
    precision: Precision
    path: Path
    platform: Platform = Platform.ONNX
    errors: dict[str, OutputError] = field(default_factory=dict)
    errors_by_set: dict[str, dict[str, OutputError]] = field(default_factory=dict)
    gate: GateResult | None = None
    int8: Int8Result | None = None
    extra_files: dict[str, Path] = field(default_factory=dict)
    version: int | None = None
    previous_versions: list[int] = field(default_factory=list)  # of this model, before it was written
    io_path: Path | None = None  # the ONNX file whose inputs/outputs the variant has (TensorRT plans)
    accuracy: dict[str, Any] | None = None  # the task metric on the held-out set, when there is one
    not_served: str | None = None  # why the version written is not served yet (a `specific` policy kept)


@dataclass
class ConvertReport:
    """What a conversion built, wrote, rejected and skipped, and why."""

    source: Source
    variants: list[Variant] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

"""The write step: checked variants into the model repository, one model per variant.

    write_variants(options, report)   # after build_variants(options) returned `report`

Each variant becomes a new version of its own model (`name`, `name_fp16`, `name_int8`, ...), with a
config.pbtxt generated from Triton's ModelConfig protobuf and a manifest of what was measured.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from tritonstack.convert.existing import KEEPABLE, check_same_interface, not_served_note
from tritonstack.convert.manifest import tool_versions
from tritonstack.convert.onnx_io import external_data_files, onnx_tensor_specs
from tritonstack.convert.options import ConvertOptions, ConvertReport, Variant
from tritonstack.convert.precision import Precision
from tritonstack.convert.repository import existing_versions, write_version
from tritonstack.convert.sources import Source
from tritonstack.convert.spec import ModelSpec, Platform, TrtAccelerator, with_max_dims

from tritonstack.model_config import read_config

__all__ = ["write_variants"]


def write_variants(options: ConvertOptions, report: ConvertReport) -> None:
    """Write each variant as a new version of its own model, with config.pbtxt and manifest.json.

    A model that exists already must keep its interface (checked for every variant before the first
    is written) and keeps the settings of its config.pbtxt this conversion was not told to change.
    """
    specs = [_spec(options, report.source, variant) for variant in report.variants]
    for spec in specs:
        check_same_interface(Path(options.repository) / spec.name, spec)
    for variant, spec in zip(report.variants, specs, strict=True):
        _write(options, report, variant, spec)


def _write(options: ConvertOptions, report: ConvertReport, variant: Variant, spec: ModelSpec) -> None:
    filename = "model.plan" if variant.platform is Platform.TENSORRT else "model.onnx"
    extra = {k: v for k, v in variant.extra_files.items() if Path(v).is_file()}
    if variant.platform is Platform.ONNX:  # weights too big to embed lie next to the model; publish them too
        extra.update(external_data_files(variant.path))
    files = {filename: variant.path, **extra}
    variant.previous_versions = existing_versions(Path(options.repository) / variant.name)
    variant.version = write_version(Path(options.repository), spec, files=files, keep=_kept(options),
                                    manifest=_manifest(options, report.source, variant))
    if variant.previous_versions:
        config = read_config(Path(options.repository) / variant.name / "config.pbtxt")
        variant.not_served = not_served_note(config, variant.version)


def _kept(options: ConvertOptions) -> tuple[str, ...]:
    """The fields of an existing config this conversion keeps: those whose option was left at its default."""
    defaults = {f.name: f.default if f.default_factory is MISSING else f.default_factory()
                for f in fields(ConvertOptions)}
    return tuple(k for k in KEEPABLE if getattr(options, _OPTION[k]) == defaults[_OPTION[k]])


_OPTION = {"version_policy": "version_policy", "instance_group": "instance_count",
           "dynamic_batching": "batching", "response_cache": "response_cache"}


def _spec(options: ConvertOptions, source: Source, variant: Variant) -> ModelSpec:

    inputs, outputs = onnx_tensor_specs(variant.io_path or variant.path)
    inputs = with_max_dims(inputs, options.inputs)  # --input NAME:DTYPE:DIMS:MAX bounds the -1 dims
    accelerate = options.trt_accelerator and variant.platform is Platform.ONNX
    return ModelSpec(
        name=variant.name, platform=variant.platform, max_batch_size=options.max_batch_size,
        inputs=inputs, outputs=outputs, batching=options.batching, instance_count=options.instance_count,
        warmup_batch_size=options.warmup_batch_size, response_cache=options.response_cache,
        version_policy=options.version_policy,
        trt_accelerator=TrtAccelerator(precision="INT8" if variant.precision is Precision.INT8 else "FP16")
        if accelerate else None,
    )


def _manifest(options: ConvertOptions, source: Source, variant: Variant) -> dict[str, Any]:

    tolerance = options.tolerances.get(variant.precision)
    manifest: dict[str, Any] = {
        "source": source.location, "source_kind": source.kind, "source_sha256": source.sha256,
        "precision": variant.precision.value, "platform": variant.platform.value,
        "tolerance": None if tolerance is None else {"atol": tolerance.atol, "rtol": tolerance.rtol,
                                                     "min_cosine": tolerance.min_cosine},
        "errors": {k: v.as_dict() for k, v in variant.errors.items()},
        "errors_by_set": {kind: {k: v.as_dict() for k, v in errs.items()}
                          for kind, errs in variant.errors_by_set.items()},
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "tools": tool_versions(),
        "verified_by": "tritonstack convert",
        **options.manifest_extra,
    }
    if variant.accuracy is not None:
        manifest["accuracy"] = variant.accuracy
    if variant.gate is not None:
        manifest["accuracy"] = variant.gate.as_dict()
    if variant.platform is Platform.TENSORRT:
        manifest["built_from"] = str(variant.io_path)
    if variant.int8 is not None:
        manifest["calibration"] = {"method": variant.int8.method_label, "samples": variant.int8.samples,
                                   "cache_reused": variant.int8.cache_hit,
                                   "per_channel": options.recipe.per_channel,
                                   "format": "dynamic" if variant.int8.dynamic else "QDQ"}
    return manifest

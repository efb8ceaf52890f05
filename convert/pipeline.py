"""One conversion, end to end: source -> verified FP32/FP16/INT8 (+TensorRT) -> model repository.

    report = convert_model(ConvertOptions(
        model="resnet.pt", name="resnet", repository=Path("model_repository"), workdir=Path("build"),
        inputs=parse_input_specs(["image:FP32:3,224,224"]), precisions=(Precision.FP32, Precision.INT8),
        calibration=Path("calib.npz"), holdout=Path("holdout.npz"), metric="top1",
    ))

Every variant is built and checked (tolerances, accuracy gate) before anything is written, so a
failure leaves the repository unchanged. Variants are separate models (`name`, `name_fp16`,
`name_int8`, `name_trt_fp16`...), each version with a manifest of what was measured. TensorRT
plans cannot be run where no GPU is (they are skipped with the reason); on a GPU host they are
built, and their manifest carries the figures of the ONNX model they were built from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from tritonstack.convert.errtext import KEEP_GOING_HINT, one_line
from tritonstack.convert.gate import GateResult, run_gate
from tritonstack.convert.onnx_io import copy_onnx_with_external_data, onnx_tensor_specs
from tritonstack.convert.options import ConvertOptions, ConvertReport, Variant
from tritonstack.convert.precision import Precision
from tritonstack.convert.publish import write_variants
from tritonstack.convert.quantize import onnx2int8
from tritonstack.convert.repository import check_repository
from tritonstack.convert.samples import SampleSet, as_batches, load_samples, random_feeds, row_digests
from tritonstack.convert.sources import Source, load_source
from tritonstack.convert.spec import Platform, unbounded_notes, with_max_dims
from tritonstack.convert.verify import run_onnx, verify_outputs

from tritonstack.errors import (
    AccuracyGateError,
    CalibrationError,
    ConfigError,
    ExportMismatchError,
    InputSpecError,
    PrecisionUnsupportedError,
)

__all__ = ["ConvertOptions", "ConvertReport", "Variant", "build_variants", "convert_model", "write_variants"]


def convert_model(options: ConvertOptions) -> ConvertReport:
    """Build, verify, gate and write every requested variant; nothing is written if a check fails."""
    report = build_variants(options)
    write_variants(options, report)
    return report


def build_variants(options: ConvertOptions) -> ConvertReport:
    """Export and check every variant in `options.workdir`; raise on the first failed check.

    With `on_gate_failure="skip"` (--keep-going) a derived variant that fails (its gate, FP16 or INT8
    not possible for this model) is reported in `report.rejected` and the others go on.
    """
    check_repository(Path(options.repository), options.variant_names())
    source = load_source(options.model, inputs=options.inputs, output_names=options.output_names,
                         weights=options.weights)
    report = ConvertReport(source=source, warnings=list(source.notes))
    workdir = Path(options.workdir) / options.name
    workdir.mkdir(parents=True, exist_ok=True)
    checks = _verification_set(options, source)
    fp32 = _checked(options, source, checks, Variant(name=options.name, precision=Precision.FP32,
                                                      path=_export(source, workdir)))
    report.variants.append(fp32)
    report.warnings += unbounded_notes(with_max_dims(onnx_tensor_specs(fp32.path)[0], options.inputs))
    if Precision.FP16 in options.precisions:
        _optional(options, report, f"{options.name}_fp16",
                  lambda: report.variants.append(_fp16(options, source, checks, fp32, workdir)))
    if Precision.INT8 in options.precisions:
        calibration = _calibration(options, source)
        holdout = _holdout(options, source, calibration)
        _optional(options, report, f"{options.name}_int8",
                  lambda: _int8(options, source, checks, fp32, workdir, report, calibration, holdout))
    if options.trt_engine:
        _trt(options, report, workdir)
    return report


def _export(source: Source, workdir: Path) -> Path:
    """The FP32 ONNX model in `workdir`; an ONNX source comes with the weights it keeps in external files."""
    if source.kind == "onnx":
        copy_onnx_with_external_data(Path(source.location), workdir)
        return workdir / "model.onnx"
    return source.export(workdir / "model.onnx")


def _optional(options: ConvertOptions, report: ConvertReport, name: str, build: Callable[[], None]) -> None:
    """Build one derived variant; with --keep-going its failure rejects it alone."""
    try:
        build()
    except (AccuracyGateError, CalibrationError, ExportMismatchError, PrecisionUnsupportedError) as exc:
        if options.on_gate_failure == "raise":
            raise
        report.rejected[name] = str(exc).replace(KEEP_GOING_HINT, "")


def _verification_set(options: ConvertOptions, source: Source) -> list[tuple[str, dict[str, np.ndarray]]]:
    sets = [("random", random_feeds(source.inputs, batch_size=options.random_samples, seed=0))]
    if options.samples is not None:
        given = load_samples(options.samples, source.inputs, what="verification samples",
                             error=InputSpecError)
        sets += [("samples", feeds) for feeds in as_batches(given, 64)]
    return sets


def _checked(options: ConvertOptions, source: Source, checks: list[tuple[str, dict[str, np.ndarray]]],
             variant: Variant) -> Variant:
    """Measure the variant against the source on every check set; fail beyond its tolerance."""
    tolerance = options.tolerances.get(variant.precision)
    atol, rtol = (tolerance.atol, tolerance.rtol) if tolerance else (np.inf, 0.0)
    for kind, feeds in checks:
        measured = verify_outputs(expected=source.run(feeds), actual=_run_variant(variant, feeds), atol=atol,
                                  rtol=rtol, what=f"{variant.name} {variant.precision.value}",
                                  min_cosine=tolerance.min_cosine if tolerance else None)
        for target in (variant.errors, variant.errors_by_set.setdefault(kind, {})):
            for name, error in measured.items():
                target[name] = target.get(name, error).merged(error)
    return variant


def _run_variant(variant: Variant, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    try:
        return run_onnx(variant.path, feeds)
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own kinds
        first = one_line(exc)
        shapes = {name: array.shape for name, array in feeds.items()}
        raise ExportMismatchError(f"{variant.name} {variant.precision.value} fails to run on inputs {shapes} "
                                  f"({first})") from exc


def _fp16(options: ConvertOptions, source: Source, checks: list, fp32: Variant, workdir: Path) -> Variant:
    from tritonstack.convert.fp16 import onnx2fp16

    path = onnx2fp16(fp32.path, workdir / "model_fp16.onnx")
    return _checked(options, source, checks, Variant(name=f"{options.name}_fp16", precision=Precision.FP16,
                                                     path=path))


def _int8(options: ConvertOptions, source: Source, checks: list, fp32: Variant, workdir: Path,
          report: ConvertReport, calibration: Any, holdout: SampleSet) -> None:
    cache = options.calibration_cache or workdir / f"calibration-{options.recipe.method.value}-" \
        f"{_fingerprint(fp32.path, calibration, options.recipe)}.json"
    result = onnx2int8(fp32.path, workdir / "model_int8.onnx", calibration=calibration,
                       recipe=options.recipe, cache_path=cache, progress=options.progress)
    report.warnings += result.warnings
    variant = _checked(options, source, checks, Variant(name=f"{options.name}_int8", precision=Precision.INT8,
                                                        path=result.path, int8=result,
                                                        extra_files={"calibration.json": cache}))
    variant.gate = _gate(options, source, fp32.path, result.path, holdout)
    if variant.gate.note:
        report.warnings.append(f"{variant.name}: {variant.gate.note}")
    fp32.accuracy = {"metric": variant.gate.metric, "value": variant.gate.before, "samples": len(holdout)}
    variant.gate.check(f"{variant.name} ({result.method_label} calibration, {result.samples} samples)")
    report.variants.append(variant)


def _calibration(options: ConvertOptions, source: Source) -> SampleSet | Iterable | None:
    data = options.calibration
    if isinstance(data, (Path, str, SampleSet, dict, np.ndarray)):
        return load_samples(data, source.inputs, what="calibration data")
    return data  # None (a cached calibration may do) or an iterable of feeds, consumed once


def _holdout(options: ConvertOptions, source: Source, calibration: Any) -> SampleSet:
    if options.holdout is None:
        raise CalibrationError("INT8 needs a held-out set for the accuracy gate; pass --holdout FILE.npz "
                               "(never the calibration data)")
    holdout = load_samples(options.holdout, source.inputs, what="held-out data")
    if isinstance(calibration, SampleSet):
        shared = len(row_digests(holdout) & row_digests(calibration))
        if shared:
            raise CalibrationError(f"the held-out set shares {shared} of {len(holdout)} samples with the "
                                   "calibration set; the gate needs data never used for calibration")
    return holdout


def _fingerprint(model: Path, calibration: Any, recipe: Any) -> str:
    """A digest of all that decides the calibrated ranges: model, calibration rows, recipe."""
    import hashlib

    from tritonstack.convert.manifest import file_sha256

    digest = hashlib.sha256(file_sha256(model).encode())
    digest.update(repr(sorted(vars(recipe).items())).encode())
    if isinstance(calibration, SampleSet):
        for row in sorted(row_digests(calibration)):
            digest.update(row)
    return digest.hexdigest()[:16]


def _gate(options: ConvertOptions, source: Source, fp32: Path, int8: Path, holdout: SampleSet) -> GateResult:
    output = options.gate_output or source.output_names[0]
    if output not in source.output_names:
        raise ConfigError(f"gate output {output!r} is not one of the model's outputs {source.output_names}")
    reference = np.concatenate([run_onnx(fp32, f)[output] for f in as_batches(holdout, 64)])
    candidate = np.concatenate([run_onnx(int8, f)[output] for f in as_batches(holdout, 64)])
    return run_gate(metric=options.metric, reference=reference, candidate=candidate,
                    labels=holdout.labels, budget=options.budget)


def _trt(options: ConvertOptions, report: ConvertReport, workdir: Path) -> None:
    """TensorRT FP16 from the FP32 ONNX model, INT8 from the QDQ model; skipped with a reason here."""
    from tritonstack.convert.trt import onnx2trt, trt_skip_reason

    reason = trt_skip_reason()
    sources = {Precision.FP16: report.variants[0]}
    sources.update({v.precision: v for v in report.variants if v.precision is Precision.INT8})
    for precision, variant in sources.items():
        name = f"{options.name}_trt_{precision.value}"
        if reason:
            report.skipped[name] = reason
            continue
        preferred = options.batching.preferred_batch_sizes if options.batching else ()
        plan = onnx2trt(variant.path, workdir / f"{name}.plan", precision=precision,
                        batch_sizes=(*preferred, options.max_batch_size),
                        timing_cache=workdir / "timing.cache", progress=options.progress)
        report.variants.append(Variant(name=name, precision=precision, path=plan, platform=Platform.TENSORRT,
                                       gate=variant.gate, io_path=variant.path))



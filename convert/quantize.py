"""INT8 quantization with ONNX Runtime: static QDQ, per-channel weights, cached calibration.

    result = onnx2int8(Path("model.onnx"), Path("model_int8.onnx"),
                       calibration=load_samples(Path("calib.npz"), specs, what="calibration data"),
                       method=CalibrationMethod.ENTROPY, cache_path=Path("build/calib.json"))

The computed tensor ranges are saved at `cache_path` (ONNX Runtime's JSON calibration cache); when
that file exists, calibration is skipped, so a rebuild gives the same INT8 model without running
the calibration set again. Fewer samples than a method needs give a warning, not an error.
`Int8Recipe(dynamic=True)` is the alternative for transformer encoders: per-channel INT8 weights,
activation ranges computed per call (no calibration data).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from tritonstack.convert.onnx_io import load_onnx
from tritonstack.convert.quiet import quiet
from tritonstack.convert.samples import SampleSet, as_batches

from tritonstack.errors import CalibrationError

__all__ = ["MIN_SAMPLES", "CalibrationMethod", "Int8Recipe", "Int8Result", "onnx2int8"]

_LOGGER = logging.getLogger(__name__)


class CalibrationMethod(str, Enum):
    """How activation ranges are computed from the calibration data."""

    MINMAX = "minmax"
    ENTROPY = "entropy"
    PERCENTILE = "percentile"

    def ort(self) -> Any:
        """The matching onnxruntime.quantization.CalibrationMethod."""
        from onnxruntime.quantization import CalibrationMethod as Ort

        return {"minmax": Ort.MinMax, "entropy": Ort.Entropy, "percentile": Ort.Percentile}[self.value]


#: Fewer calibration samples than this gives a warning: histogram methods need more than MinMax.
MIN_SAMPLES = {CalibrationMethod.MINMAX: 16, CalibrationMethod.ENTROPY: 64, CalibrationMethod.PERCENTILE: 64}


@dataclass(frozen=True, kw_only=True)
class Int8Recipe:
    """What to quantize: operator types (None: all ONNX Runtime supports) and nodes to leave in FP32."""

    method: CalibrationMethod = CalibrationMethod.MINMAX
    per_channel: bool = True
    op_types: tuple[str, ...] | None = None
    exclude_nodes: tuple[str, ...] = ()
    percentile: float = 99.999
    batch_size: int = 8
    dynamic: bool = False  # weights INT8 ahead of time, activation ranges per call: no calibration


@dataclass(frozen=True, kw_only=True)
class Int8Result:
    """What calibration did: samples used (read back when the cache was reused) and any warnings."""

    path: Path
    method: CalibrationMethod
    samples: int
    cache_path: Path | None
    cache_hit: bool
    warnings: list[str] = field(default_factory=list)
    dynamic: bool = False

    @property
    def method_label(self) -> str:
        """The calibration method, or `dynamic` when activations are quantized at run time."""
        return "dynamic" if self.dynamic else self.method.value


class _Reader:
    """A CalibrationDataReader over feeds, with a progress bar."""

    def __init__(self, batches: Iterable[dict[str, np.ndarray]], total: int | None, progress: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc="calibrating", unit="sample", disable=None if progress else True,
                        leave=False)
        self.batches: Iterator[dict[str, np.ndarray]] = iter(batches)
        self.seen = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        feeds = next(self.batches, None)
        if feeds is None:
            self.bar.close()
            return None
        count = len(next(iter(feeds.values())))
        self.seen += count
        self.bar.update(count)
        return feeds

    def rewind(self) -> None:  # the calibrator may ask; one pass is all it needs here
        return None


def onnx2int8(src: Path, dst: Path, *, calibration: SampleSet | Iterable[dict[str, np.ndarray]] | None,
              recipe: Int8Recipe | None = None, cache_path: Path | None = None,
              progress: bool = True) -> Int8Result:
    """Write a QDQ INT8 model of `src` to `dst`, calibrated on `calibration` (or the cache)."""
    recipe = recipe or Int8Recipe()
    if recipe.dynamic:
        return _dynamic(Path(src), Path(dst), recipe)
    cache_hit = cache_path is not None and Path(cache_path).is_file()
    if calibration is None and not cache_hit:
        raise CalibrationError("INT8 needs calibration data; pass --calibration FILE.npz (or .npy)")
    warnings = [] if cache_hit else _check_count(calibration, recipe.method)
    prepared = _preprocess(Path(src), Path(dst).with_suffix(".prep.onnx"))
    reader = None if cache_hit else _reader(calibration, recipe, progress)
    try:
        _quantize(prepared, Path(dst), reader, recipe, cache_path)
    finally:
        if prepared != Path(src):
            prepared.unlink(missing_ok=True)
    load_onnx(dst)
    samples = _cached_count(cache_path) if reader is None else _save_count(cache_path, reader.seen, recipe)
    return Int8Result(path=Path(dst), method=recipe.method, samples=samples, cache_path=cache_path,
                      cache_hit=cache_hit, warnings=warnings)


def _dynamic(src: Path, dst: Path, recipe: Int8Recipe) -> Int8Result:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        with quiet():
            quantize_dynamic(str(src), str(dst), per_channel=recipe.per_channel, weight_type=QuantType.QInt8,
                             op_types_to_quantize=list(recipe.op_types or []) or None,
                             nodes_to_exclude=list(recipe.exclude_nodes))
    except Exception as exc:  # noqa: BLE001
        raise CalibrationError(f"dynamic quantization of {src} failed ({exc})") from exc
    load_onnx(dst)
    return Int8Result(path=dst, method=recipe.method, samples=0, cache_path=None, cache_hit=False,
                      dynamic=True)


def _save_count(cache_path: Path | None, samples: int, recipe: Int8Recipe) -> int:
    if cache_path is not None:
        meta = {"method": recipe.method.value, "samples": samples}
        Path(f"{cache_path}.meta.json").write_text(json.dumps(meta))
    return samples


def _cached_count(cache_path: Path | None) -> int:
    try:
        return int(json.loads(Path(f"{cache_path}.meta.json").read_text())["samples"])
    except (OSError, ValueError, KeyError):
        return 0


def _check_count(calibration: Any, method: CalibrationMethod) -> list[str]:
    count = len(calibration) if isinstance(calibration, SampleSet) else None
    needed = MIN_SAMPLES[method]
    if count is not None and count < needed:
        message = (f"calibration with {method.value} on {count} samples; it needs at least {needed} "
                   "for stable ranges: pass more samples or use minmax")
        _LOGGER.warning("%s", message)
        return [message]
    return []


def _reader(calibration: Any, recipe: Int8Recipe, progress: bool) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    if isinstance(calibration, SampleSet):
        # histogram calibrators stack every batch's tensors: all batches must have one shape
        size = recipe.batch_size if recipe.method is CalibrationMethod.MINMAX else 1
        batches, total = as_batches(calibration, size), len(calibration)
    else:
        batches, total = calibration, None
    reader = _Reader(batches, total, progress)
    CalibrationDataReader.register(_Reader)
    return reader


def _preprocess(src: Path, dst: Path) -> Path:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        with quiet():
            quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    except Exception as exc:  # noqa: BLE001 - fall back to the plain model
        _LOGGER.warning("pre-processing for quantization skipped (%s)", exc)
        return src
    return dst


def _quantize(src: Path, dst: Path, reader: Any, recipe: Int8Recipe, cache_path: Path | None) -> None:
    try:
        with quiet():  # the histogram calibrators print(), ORT logs hints on the root logger
            _quantize_static(src, dst, reader, recipe, cache_path)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own kinds on mismatched feeds
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CalibrationError(f"INT8 quantization failed ({first}); check that the calibration data fits "
                               "the model's inputs, or leave int8 out for this model") from exc


def _quantize_static(src: Path, dst: Path, reader: Any, recipe: Int8Recipe, cache_path: Path | None) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        str(src), str(dst), reader, quant_format=QuantFormat.QDQ, per_channel=recipe.per_channel,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        calibrate_method=recipe.method.ort(), op_types_to_quantize=list(recipe.op_types or []) or None,
        nodes_to_exclude=list(recipe.exclude_nodes), calibration_cache_path=cache_path,
        extra_options={"CalibPercentile": recipe.percentile},
    )

"""INT8 quantization with ONNX Runtime: static QDQ, per-channel weights, cached calibration.

    result = onnx2int8(Path("model.onnx"), Path("model_int8.onnx"),
                       calibration=load_samples(Path("calib.npz"), specs, what="calibration data"),
                       method=CalibrationMethod.ENTROPY, cache_path=Path("build/calib.json"))

The computed tensor ranges are saved at `cache_path` (ONNX Runtime's JSON calibration cache); when
that file exists, calibration is skipped, so a rebuild gives the same INT8 model without running
the calibration set again. Fewer samples than a method needs give a warning, not an error.
`Int8Recipe(dynamic=True)` is the alternative for transformer encoders: per-channel INT8 weights,
activation ranges computed per call (no calibration data).

`Int8Recipe(space_to_depth_stem=True)` rewrites a strided convolution on a graph input with few
channels (an image stem: 3 channels, 7x7, stride 2) as SpaceToDepth + a stride-1 convolution on
stride^2 times the channels, before calibration. The result is the same function (the weights are
only rearranged, with zeros), but ONNX Runtime's INT8 convolution needs a multiple of 4 input
channels for its fast kernel: on 3 channels the INT8 stem runs slower than the FP32 one. The FP32
model is left as it is (for FP32 the plain stem is faster).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from tritonstack.convert.errtext import KEEP_GOING_HINT, one_line
from tritonstack.convert.onnx_io import load_onnx
from tritonstack.convert.quiet import quiet
from tritonstack.convert.samples import SampleSet, as_batches

from tritonstack.errors import CalibrationError, PrecisionUnsupportedError

__all__ = ["MIN_SAMPLES", "CalibrationMethod", "Int8Recipe", "Int8Result", "check_quantized", "onnx2int8"]

#: Operators that only an INT8 (QDQ, QOperator or dynamic) graph holds.
_INT8_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger",
                       "ConvInteger", "QLinearConv", "QLinearMatMul", "QGemm", "QAttention",
                       "DynamicQuantizeMatMul"})

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
    space_to_depth_stem: bool = False  # strided few-channel Conv on an input -> SpaceToDepth + Conv


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
    """Write a QDQ INT8 model of `src` to `dst`, calibrated on `calibration` (or the cache).

    A cache that does not fit the model is recomputed when calibration data is given; a new cache is
    kept only once its INT8 model is made (a refused attempt leaves none behind).
    """
    recipe = recipe or Int8Recipe()
    check_quantizable(Path(src))
    if recipe.dynamic:
        return _dynamic(Path(src), Path(dst), recipe)
    prepared = _preprocess(Path(src), Path(dst).with_suffix(".prep.onnx"))
    partial = None if cache_path is None else Path(f"{cache_path}.partial")
    try:
        keep_fp32: tuple[str, ...] = ()
        if recipe.space_to_depth_stem:
            prepared, keep_fp32 = _space_to_depth_stem(prepared, Path(dst).with_suffix(".s2d.onnx"))
            _drop_stale_cache(cache_path, keep_fp32, can_calibrate=calibration is not None)
        reader, warnings = _from_cache_or_calibrated(Path(src), prepared, Path(dst), calibration, recipe,
                                                     cache_path, keep_fp32, progress)
        samples = _cached_count(cache_path) if reader is None else \
            _keep_cache(cache_path, reader.seen, recipe)
    finally:
        for temporary in {prepared, Path(dst).with_suffix(".prep.onnx"), partial} - {Path(src), None}:
            temporary.unlink(missing_ok=True)
    return Int8Result(path=Path(dst), method=recipe.method, samples=samples, cache_path=cache_path,
                      cache_hit=reader is None, warnings=warnings)


def _from_cache_or_calibrated(src: Path, prepared: Path, dst: Path, calibration: Any, recipe: Int8Recipe,
                              cache_path: Path | None, keep_fp32: tuple[str, ...],
                              progress: bool) -> tuple[Any, list[str]]:
    """Quantize with the cached ranges if they fit, else calibrate (the new ranges go to `<cache>.partial`).

    Returns the reader used (None: the cache was) and the warnings about the calibration data.
    """
    if cache_path is not None and Path(cache_path).is_file():
        try:
            _quantize(prepared, dst, None, recipe, cache_path, keep_fp32)
            check_quantized(src, dst, recipe.op_types)
            return None, []
        except (CalibrationError, PrecisionUnsupportedError) as exc:
            if calibration is None:
                raise
            _LOGGER.warning("calibration cache %s does not fit this model (%s); calibrating again",
                            cache_path, one_line(exc))
    if calibration is None:
        raise CalibrationError("INT8 needs calibration data; pass --calibration FILE.npz (or .npy)")
    warnings = _check_count(calibration, recipe.method)
    reader = _reader(calibration, recipe, progress)
    partial = None if cache_path is None else Path(f"{cache_path}.partial")
    if partial is not None:
        partial.unlink(missing_ok=True)
    _quantize(prepared, dst, reader, recipe, partial, keep_fp32)
    check_quantized(src, dst, recipe.op_types)
    return reader, warnings


def _dynamic(src: Path, dst: Path, recipe: Int8Recipe) -> Int8Result:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        with quiet():
            quantize_dynamic(str(src), str(dst), per_channel=recipe.per_channel, weight_type=QuantType.QInt8,
                             op_types_to_quantize=list(recipe.op_types or []) or None,
                             nodes_to_exclude=list(recipe.exclude_nodes))
    except Exception as exc:  # noqa: BLE001
        raise CalibrationError(f"dynamic quantization of {src} failed ({one_line(exc)})") from exc
    check_quantized(src, dst, recipe.op_types)
    return Int8Result(path=dst, method=recipe.method, samples=0, cache_path=None, cache_hit=False,
                      dynamic=True)


def check_quantizable(src: Path) -> None:
    """Raise PrecisionUnsupportedError, before quantizing, for a graph with no standard ONNX operator
    (scikit-learn trees and linear models are `ai.onnx.ml` operators ONNX Runtime does not quantize)."""
    nodes = load_onnx(src).graph.node
    if any(node.domain in ("", "ai.onnx") for node in nodes):
        return
    _unchanged(src, sorted({node.op_type for node in nodes}))


def check_quantized(src: Path, dst: Path, op_types: tuple[str, ...] | None = None) -> None:
    """Raise PrecisionUnsupportedError unless `dst` holds INT8 operators (an FP32 graph is no INT8 model)."""
    ops = {node.op_type for node in load_onnx(dst).graph.node}
    if ops & _INT8_OPS:
        return
    source_ops = sorted({node.op_type for node in load_onnx(src).graph.node})
    if op_types:
        raise PrecisionUnsupportedError(
            f"INT8 quantization of only the operators --int8-op-types names ({','.join(op_types)}) left "
            f"{Path(src).name} unchanged; its operators are {', '.join(source_ops)}: name some of those, or "
            f"leave --int8-op-types out{KEEP_GOING_HINT}")
    _unchanged(src, source_ops)


def _unchanged(src: Path, source_ops: list[str]) -> None:
    raise PrecisionUnsupportedError(
        f"INT8 quantization left {Path(src).name} unchanged: ONNX Runtime quantizes none of its operators "
        f"({', '.join(source_ops)}), so an INT8 model would be the FP32 model under an INT8 name and is not "
        f"written; leave int8 out for this model{KEEP_GOING_HINT}")


def _keep_cache(cache_path: Path | None, samples: int, recipe: Int8Recipe) -> int:
    """Move the ranges just computed (`<cache>.partial`) in as the cache, with their sample count."""
    if cache_path is not None:
        meta = {"method": recipe.method.value, "samples": samples}
        Path(f"{cache_path}.meta.json").write_text(json.dumps(meta))
        os.replace(f"{cache_path}.partial", cache_path)
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


def _space_to_depth_stem(src: Path, dst: Path) -> tuple[Path, tuple[str, ...]]:
    """Rewrite each strided Conv on a graph input with a channel count not a multiple of 4.

    Conv(x, W, stride s) becomes Conv(SpaceToDepth(x, s), W', stride 1): W' holds W's weights
    rearranged to s*s*C channels (shifted so that the leading pads are whole blocks, zero-filled).
    Returns the model to quantize and the SpaceToDepth nodes, named like their outputs: the nodes
    stay in FP32 (the first QuantizeLinear comes after them), the outputs need calibrated ranges.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    inputs = {value.name: value for value in graph.input}
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    nodes: list[str] = []
    for conv in [node for node in graph.node if node.op_type == "Conv" and node.input[0] in inputs]:
        rewrite = _s2d_plan(conv, inputs[conv.input[0]], initializers.get(conv.input[1]))
        if rewrite is None:
            continue
        block, weights, pads = rewrite
        name = f"{conv.name or conv.output[0]}_space_to_depth"
        graph.initializer.append(numpy_helper.from_array(weights, f"{conv.input[1]}_space_to_depth"))
        graph.node.insert(list(graph.node).index(conv), helper.make_node(
            "SpaceToDepth", [conv.input[0]], [name], name=name, blocksize=block))
        old_weight = conv.input[1]
        conv.input[0], conv.input[1] = name, f"{conv.input[1]}_space_to_depth"
        del conv.attribute[:]
        conv.attribute.extend([helper.make_attribute("kernel_shape", list(weights.shape[2:])),
                               helper.make_attribute("strides", [1, 1]), helper.make_attribute("pads", pads)])
        if not any(old_weight in node.input for node in graph.node):
            graph.initializer.remove(initializers[old_weight])
        nodes.append(name)
    if not nodes:
        return src, ()
    del graph.value_info[:]  # shapes changed: the quantizer infers them again
    onnx.save(model, str(dst))
    _LOGGER.info("stem convolution(s) rewritten with SpaceToDepth for INT8: %s", ", ".join(nodes))
    return dst, tuple(nodes)


def _s2d_plan(conv: Any, value: Any, weight: Any) -> tuple[int, np.ndarray, list[int]] | None:
    """(block, rearranged weights, pads) for a Conv that the rewrite fits, else None."""
    from onnx import helper, numpy_helper

    attrs = {attr.name: helper.get_attribute_value(attr) for attr in conv.attribute}
    dims = [dim.dim_value if dim.HasField("dim_value") else 0 for dim in value.type.tensor_type.shape.dim]
    if weight is None or len(dims) != 4 or attrs.get("group", 1) != 1:
        return None
    w = numpy_helper.to_array(weight)
    strides = list(attrs.get("strides", [1, 1]))
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    block = strides[0]
    if (w.ndim != 4 or block < 2 or strides != [block, block] or w.shape[1] % 4 == 0
            or list(attrs.get("dilations", [1, 1])) != [1, 1]
            or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
            or not all(size and size % block == 0 for size in dims[2:])):
        return None
    out_ch, channels, kh, kw = w.shape
    shift = [(-pads[0]) % block, (-pads[1]) % block]  # leading pads become whole blocks
    size = [-(-(kh + shift[0]) // block), -(-(kw + shift[1]) // block)]
    padded = np.zeros((out_ch, channels, size[0] * block, size[1] * block), dtype=w.dtype)
    padded[:, :, shift[0]:shift[0] + kh, shift[1]:shift[1] + kw] = w
    # SpaceToDepth puts pixel (a, b) of each block of channel c at channel (a * block + b) * C + c
    rearranged = padded.reshape(out_ch, channels, size[0], block, size[1], block)
    rearranged = rearranged.transpose(0, 3, 5, 1, 2, 4).reshape(out_ch, block * block * channels, *size)
    out = [(dims[2 + i] + pads[i] + pads[i + 2] - (kh, kw)[i]) // block + 1 for i in range(2)]
    lead = [(pads[i] + shift[i]) // block for i in range(2)]
    tail = [out[i] - 1 + size[i] - lead[i] - dims[2 + i] // block for i in range(2)]
    if min(tail) < 0:
        return None
    return block, np.ascontiguousarray(rearranged), [lead[0], lead[1], tail[0], tail[1]]


def _drop_stale_cache(cache_path: Path | None, tensors: tuple[str, ...], *, can_calibrate: bool) -> None:
    """Delete a calibration cache made before the rewrite: it has no ranges for the new tensors."""
    if cache_path is None or not tensors or not Path(cache_path).is_file():
        return
    try:
        cached = json.loads(Path(cache_path).read_text()).get("data", {})
    except (OSError, ValueError, AttributeError):
        cached = {}
    if not all(name in cached for name in tensors):
        if not can_calibrate:
            raise CalibrationError(f"calibration cache {cache_path} predates the SpaceToDepth stem (no range "
                                   "for it); pass --calibration FILE.npz to calibrate again")
        _LOGGER.info("calibration cache %s predates the SpaceToDepth stem; calibrating again", cache_path)
        Path(cache_path).unlink()
        Path(f"{cache_path}.meta.json").unlink(missing_ok=True)


def _quantize(src: Path, dst: Path, reader: Any, recipe: Int8Recipe, cache_path: Path | None,
              keep_fp32: tuple[str, ...] = ()) -> None:
    try:
        with quiet():  # the histogram calibrators print(), ORT logs hints on the root logger
            _quantize_static(src, dst, reader, recipe, cache_path, keep_fp32)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own kinds on mismatched feeds
        if reader is None:  # the ranges came from the cache
            raise CalibrationError(
                f"INT8 quantization with the calibration cache {cache_path} failed ({one_line(exc)}); the "
                "cache is corrupt or from another model: delete it (or pass another --calibration-cache) "
                "and pass --calibration FILE.npz to calibrate again") from exc
        raise CalibrationError(f"INT8 quantization failed ({one_line(exc)}); check that the calibration data "
                               "fits the model's inputs, or leave int8 out for this model") from exc


def _quantize_static(src: Path, dst: Path, reader: Any, recipe: Int8Recipe, cache_path: Path | None,
                     keep_fp32: tuple[str, ...] = ()) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        str(src), str(dst), reader, quant_format=QuantFormat.QDQ, per_channel=recipe.per_channel,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        calibrate_method=recipe.method.ort(), op_types_to_quantize=list(recipe.op_types or []) or None,
        nodes_to_exclude=[*recipe.exclude_nodes, *keep_fp32], calibration_cache_path=cache_path,
        extra_options={"CalibPercentile": recipe.percentile},
    )

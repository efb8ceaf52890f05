"""FP16 variant of an ONNX model; inputs and outputs stay FP32 so clients do not change.

    onnx2fp16(Path("model.onnx"), Path("model_fp16.onnx"))

Operators outside the default ONNX domain (the `ai.onnx.ml` trees and linear models skl2onnx
writes) have no FP16 kernels: such a model is refused with PrecisionUnsupportedError up front.
The converter's warnings about weights out of FP16's range are logged, not printed: the verification
against the source judges what the truncation costs.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from tritonstack.convert.errtext import KEEP_GOING_HINT, one_line
from tritonstack.convert.onnx_io import load_onnx
from tritonstack.convert.quiet import quiet

from tritonstack.errors import PrecisionUnsupportedError

__all__ = ["onnx2fp16"]

_LOGGER = logging.getLogger(__name__)


def onnx2fp16(src: Path, dst: Path) -> Path:
    """Write `src` with FP16 weights and compute, FP32 inputs and outputs kept; return `dst`."""
    import onnx
    from onnxconverter_common import float16

    model = load_onnx(src)
    foreign = sorted({f"{n.op_type} ({n.domain})" for n in model.graph.node
                      if n.domain not in ("", "ai.onnx")})
    if foreign:
        raise PrecisionUnsupportedError(
            f"FP16 cannot be made of {Path(src).name}: its operators {', '.join(foreign)} have no FP16 "
            f"version; leave fp16 out for this model{KEEP_GOING_HINT}")
    try:
        with quiet(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            converted = float16.convert_float_to_float16(model, keep_io_types=True)
    except Exception as exc:  # noqa: BLE001 - the converter raises many kinds
        raise PrecisionUnsupportedError(f"FP16 conversion of {Path(src).name} failed ({one_line(exc)}); "
                                        "leave fp16 out for this model") from exc
    if caught:
        _LOGGER.info("FP16 of %s: %d converter warnings, e.g. %s", Path(src).name, len(caught),
                     caught[0].message)
    onnx.save(converted, str(dst))
    return Path(dst)

"""FP16 variant of an ONNX model; inputs and outputs stay FP32 so clients do not change.

    onnx2fp16(Path("model.onnx"), Path("model_fp16.onnx"))
"""

from __future__ import annotations

from pathlib import Path

from tritonstack.convert.onnx_io import load_onnx

__all__ = ["onnx2fp16"]


def onnx2fp16(src: Path, dst: Path) -> Path:
    """Write `src` with FP16 weights and compute, FP32 inputs and outputs kept; return `dst`."""
    import onnx
    from onnxconverter_common import float16

    model = float16.convert_float_to_float16(load_onnx(src), keep_io_types=True)
    onnx.save(model, str(dst))
    return Path(dst)

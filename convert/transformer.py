"""Graph fusions for transformer encoders (ONNX Runtime's transformer optimizer), before INT8.

    optimize_encoder(Path("encoder.onnx"), Path("encoder_opt.onnx"), num_heads=12, hidden_size=384)

Fusing LayerNorm, GELU + bias and the attention's reshapes gives ONNX Runtime the MatMul + bias
patterns its INT8 kernels run fast; the fused graph computes the same function (checked by the
caller's verification against the source).
"""

from __future__ import annotations

from pathlib import Path

from tritonstack.convert.onnx_io import load_onnx
from tritonstack.convert.quiet import quiet

__all__ = ["optimize_encoder"]


def optimize_encoder(src: Path, dst: Path, *, num_heads: int, hidden_size: int) -> Path:
    """Write the fused BERT-style graph of `src` to `dst`; return `dst`."""
    from onnxruntime.transformers.optimizer import optimize_model

    with quiet():
        model = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                               opt_level=1)
        model.save_model_to_file(str(dst))
    load_onnx(dst)
    return Path(dst)

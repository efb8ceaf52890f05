"""Compare a converted model's outputs with its source and fail loudly beyond tolerance.

    report = verify_outputs(expected={"probabilities": ref}, actual={"probabilities": out},
                            atol=1e-5, rtol=1e-3, what="digits_mlp fp32")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tritonstack.errors import ExportMismatchError

__all__ = ["OutputError", "run_onnx", "verify_outputs"]


@dataclass(frozen=True, kw_only=True)
class OutputError:
    """Measured difference of one output."""

    name: str
    max_abs: float
    max_rel: float

    def as_dict(self) -> dict[str, float]:
        """The measurement as plain numbers, for manifests and reports."""
        return {"max_abs": self.max_abs, "max_rel": self.max_rel}


def run_onnx(path: Path, feeds: dict[str, np.ndarray], threads: int = 2) -> dict[str, np.ndarray]:
    """Run an ONNX file with ONNX Runtime on CPU; return outputs by name."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=False))


def verify_outputs(
    *, expected: dict[str, np.ndarray], actual: dict[str, np.ndarray], atol: float, rtol: float, what: str
) -> dict[str, OutputError]:
    """Return per-output errors; raise ExportMismatchError if any exceeds atol + rtol*|expected|."""
    report = {}
    for name, ref in expected.items():
        got = np.asarray(actual[name], dtype=np.float64)
        ref = np.asarray(ref, dtype=np.float64)
        if got.shape != ref.shape or not np.isfinite(got).all():
            raise ExportMismatchError(f"{what}: output {name!r} has shape {got.shape} or non-finite "
                                      f"values; the source gives shape {ref.shape}")
        diff = np.abs(got - ref)
        report[name] = OutputError(name=name, max_abs=float(diff.max(initial=0.0)),
                                   max_rel=float((diff / np.maximum(np.abs(ref), 1e-6)).max(initial=0.0)))
        if (diff > atol + rtol * np.abs(ref)).any():
            raise ExportMismatchError(
                f"{what}: output {name!r} differs from the source by up to {report[name].max_abs:.3g} "
                f"(tolerance atol={atol:g}, rtol={rtol:g}); the conversion is rejected"
            )
    return report

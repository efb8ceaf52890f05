"""Compare a converted model's outputs with its source and fail loudly beyond tolerance.

    report = verify_outputs(expected={"probabilities": ref}, actual={"probabilities": out},
                            atol=1e-5, rtol=1e-3, min_cosine=0.999, what="digits_mlp fp32")

Two checks per output: element-wise `|actual - expected| <= atol + rtol * |expected|`, and, when
`min_cosine` is given, a scale-free one: the cosine similarity of each row (of the whole output
when rows hold one value) to the source's must reach `min_cosine`. An absolute tolerance alone
passes anything for a model whose outputs are ~1e-9; the cosine does not depend on the scale, so
with it comes a scale check: each row's norm must be within `max(rtol, 1 - min_cosine)` of the
source's (an FP16 variant whose outputs are 100x too large has cosine 1.0 and fails it).
Rows whose source output is zero (or below 1e-3 of the largest row) are left to the element-wise
check. `max_rel` is relative to each element's size, floored at 1e-3 of the output's largest value,
so it is the same at any scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tritonstack.errors import ExportMismatchError

__all__ = ["OutputError", "row_cosine", "row_norm_error", "run_onnx", "verify_outputs"]

#: Elements and rows smaller than this fraction of the output's largest are not judged relatively.
_RELATIVE_FLOOR = 1e-3


@dataclass(frozen=True, kw_only=True)
class OutputError:
    """Measured difference of one output."""

    name: str
    max_abs: float
    max_rel: float
    min_cosine: float = 1.0
    max_norm_rel: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """The measurement as plain numbers, for manifests and reports."""
        return {"max_abs": self.max_abs, "max_rel": self.max_rel, "min_cosine": self.min_cosine,
                "max_norm_rel": self.max_norm_rel}

    def merged(self, other: OutputError) -> OutputError:
        """The worst of both measurements (of one output on two sample sets)."""
        return OutputError(name=self.name, max_abs=max(self.max_abs, other.max_abs),
                           max_rel=max(self.max_rel, other.max_rel),
                           min_cosine=min(self.min_cosine, other.min_cosine),
                           max_norm_rel=max(self.max_norm_rel, other.max_norm_rel))


def run_onnx(path: Path, feeds: dict[str, np.ndarray], threads: int = 2) -> dict[str, np.ndarray]:
    """Run an ONNX file with ONNX Runtime on CPU; return outputs by name."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=False))


def verify_outputs(
    *, expected: dict[str, np.ndarray], actual: dict[str, np.ndarray], atol: float, rtol: float, what: str,
    min_cosine: float | None = None,
) -> dict[str, OutputError]:
    """Return per-output errors; raise ExportMismatchError if any exceeds atol + rtol*|expected|, or
    if a row's cosine similarity to the source is below `min_cosine` (None: not checked)."""
    report = {}
    for name, ref in expected.items():
        if name not in actual:
            raise ExportMismatchError(f"{what}: the converted model has no output {name!r} (its outputs: "
                                      f"{sorted(actual)}); the source's output names must match its export")
        got = np.asarray(actual[name], dtype=np.float64)
        ref = np.asarray(ref, dtype=np.float64)
        if got.shape != ref.shape or not np.isfinite(got).all():
            raise ExportMismatchError(f"{what}: output {name!r} has shape {got.shape} or non-finite "
                                      f"values; the source gives shape {ref.shape}")
        report[name] = _measure(name, ref, got)
        if (np.abs(got - ref) > atol + rtol * np.abs(ref)).any():
            raise ExportMismatchError(
                f"{what}: output {name!r} differs from the source by up to {report[name].max_abs:.3g} "
                f"(tolerance atol={atol:g}, rtol={rtol:g}); the conversion is rejected"
            )
        if min_cosine is not None and report[name].min_cosine < min_cosine:
            raise ExportMismatchError(
                f"{what}: output {name!r} does not follow the source: cosine similarity "
                f"{report[name].min_cosine:.4f} < {min_cosine:g} (source outputs up to "
                f"{np.abs(ref).max(initial=0.0):.3g}, differences up to {report[name].max_abs:.3g}); "
                "the conversion is rejected"
            )
        _check_scale(report[name], ref, rtol=rtol, min_cosine=min_cosine, what=what)
    return report


def _measure(name: str, ref: np.ndarray, got: np.ndarray) -> OutputError:
    diff = np.abs(got - ref)
    floor = max(_RELATIVE_FLOOR * float(np.abs(ref).max(initial=0.0)), 1e-30)
    return OutputError(name=name, max_abs=float(diff.max(initial=0.0)),
                       max_rel=float((diff / np.maximum(np.abs(ref), floor)).max(initial=0.0)),
                       min_cosine=row_cosine(ref, got), max_norm_rel=row_norm_error(ref, got))


def _check_scale(error: OutputError, ref: np.ndarray, *, rtol: float, min_cosine: float | None,
                 what: str) -> None:
    """Fail an output whose size is off, whatever its direction (the companion of the cosine check)."""
    if min_cosine is None:
        return
    bound = max(rtol, 1.0 - min_cosine)
    if error.max_norm_rel > bound:
        raise ExportMismatchError(
            f"{what}: output {error.name!r} is not the size of the source's: a row's norm is off by "
            f"{error.max_norm_rel:.3g} of the source's (bound {bound:g}; source outputs up to "
            f"{np.abs(ref).max(initial=0.0):.3g}, differences up to {error.max_abs:.3g}); "
            "the conversion is rejected")


def _rows(reference: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both outputs as rows (first axis); an output with one value per row is one vector."""
    ref = np.asarray(reference, np.float64)
    got = np.asarray(candidate, np.float64)
    rows = 1 if ref.ndim < 2 or ref[0].size < 2 else len(ref)
    return ref.reshape(rows, -1), got.reshape(rows, -1)


def row_norm_error(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Largest |‖candidate row‖ - ‖reference row‖| / ‖reference row‖ (0.0 when no row is judged).

    Rows below 1e-3 of the largest reference row norm are not judged (their size is noise)."""
    ref, got = _rows(reference, candidate)
    ref_norm, got_norm = np.linalg.norm(ref, axis=1), np.linalg.norm(got, axis=1)
    judged = ref_norm > max(_RELATIVE_FLOOR * float(ref_norm.max(initial=0.0)), 0.0)
    if not judged.any():
        return 0.0
    return float((np.abs(got_norm[judged] - ref_norm[judged]) / ref_norm[judged]).max())


def row_cosine(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Lowest cosine similarity of candidate rows to reference rows (1.0 when no row is non-zero).

    Rows are the first axis; an output with one value per row is compared as one vector.
    """
    ref, got = _rows(reference, candidate)
    ref_norm, got_norm = np.linalg.norm(ref, axis=1), np.linalg.norm(got, axis=1)
    judged = ref_norm > 0
    if not judged.any():
        return 1.0
    cosine = (ref * got).sum(axis=1)[judged] / (ref_norm[judged] * np.maximum(got_norm[judged], 1e-300))
    return float(np.clip(cosine, -1.0, 1.0).min())

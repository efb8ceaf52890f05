"""Accuracy gate: a quantized variant is accepted only if its task metric stays within budget.

    result = run_gate(metric="top1", reference=fp32_logits, candidate=int8_logits, labels=y_holdout)
    result.check("digits_cnn int8")   # raises AccuracyGateError with the measured figures

Metrics (higher is better): `top1` (accuracy against labels; budget = the largest allowed drop,
default 1 percentage point), `cosine` (mean cosine similarity of candidate to reference outputs;
budget = the lowest allowed mean, default 0.99), or a user function `package.module:function`
taking (outputs, labels) and returning a score (budget = the largest allowed drop, default 0.01).
The held-out set must not share samples with the calibration set. A budget that would switch the
gate off (infinite, a top1 drop of 1 or more, a cosine floor of 0 or less) is a ConfigError, and so are
top1 labels that are not class indices of the gated output.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from tritonstack.convert.errtext import one_line

from tritonstack.errors import AccuracyGateError, ConfigError

__all__ = ["DEFAULT_BUDGETS", "GateResult", "check_budget", "cosine_similarity", "resolve_metric", "run_gate",
           "top1"]

DEFAULT_BUDGETS = {"top1": 0.01, "cosine": 0.99}
_DEFAULT_DROP = 0.01


@dataclass(frozen=True, kw_only=True)
class GateResult:
    """The metric before (reference) and after (candidate) and the verdict."""

    metric: str
    before: float
    after: float
    budget: float
    kind: str  # "max_drop" or "min_value"
    samples: int
    passed: bool
    note: str | None = None  # e.g. the reference itself at chance: the gate then measures little

    def as_dict(self) -> dict:
        """Plain values, for manifests and reports."""
        return asdict(self)

    def check(self, what: str) -> None:
        """Raise AccuracyGateError when the candidate is over budget."""
        if self.passed:
            return
        if self.kind == "min_value":
            f = _formatter(self.budget)
            detail = f"mean {self.metric} {f(self.after)} < required {f(self.budget)}"
        else:
            f = _formatter(self.budget)
            detail = (f"{self.metric} {f(self.before)} -> {f(self.after)}, drop "
                      f"{f(self.before - self.after)} > budget {f(self.budget)}")
        raise AccuracyGateError(f"{what} rejected by the accuracy gate on {self.samples} held-out "
                                f"samples: {detail}; keep FP32, or calibrate differently")


def _formatter(budget: float) -> Callable[[float], str]:
    """Figures with 4 decimals, or as many as the budget needs to be shown exactly (up to 10): a
    budget of 0.99999 was printed as 1.0000, next to a candidate's 0.9793."""
    decimals = next((d for d in range(4, 11) if abs(round(budget, d) - budget) < 1e-12), 10)
    return lambda value: f"{value:.{decimals}f}"


def top1(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose argmax equals the label."""
    return float((np.asarray(outputs).argmax(axis=-1) == np.asarray(labels)).mean())


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two [N, ...] arrays."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


def resolve_metric(metric: str | Callable) -> tuple[str, Callable | None]:
    """Return (name, function); the function is None for the built-in cosine metric."""
    if callable(metric):
        return getattr(metric, "__name__", "custom"), metric
    if metric == "top1":
        return "top1", top1
    if metric == "cosine":
        return "cosine", None
    module, _, attr = metric.partition(":")
    try:
        return metric, getattr(importlib.import_module(module), attr)
    except Exception as exc:  # noqa: BLE001 - importing user code can raise anything
        raise ConfigError(f"metric {metric!r} is not top1, cosine or an importable "
                          f"package.module:function ({type(exc).__name__}: {exc})") from exc


def check_budget(metric: str | Callable, budget: float | None) -> None:
    """Raise ConfigError for a budget that is not a number in the metric's meaningful range.

    top1: the largest allowed drop of accuracy, 0 <= budget < 1; cosine: the lowest allowed mean
    similarity, 0 < budget <= 1; a user metric: the largest allowed drop, finite and >= 0.
    """
    if budget is None:
        return
    name = metric if isinstance(metric, str) else getattr(metric, "__name__", "custom")
    ranges = {"top1": ("largest allowed drop of accuracy", lambda b: 0 <= b < 1,
                       "0 <= budget < 1, e.g. 0.01"),
              "cosine": ("lowest allowed mean cosine similarity", lambda b: 0 < b <= 1,
                         "0 < budget <= 1, e.g. 0.99")}
    meaning, fits, bounds = ranges.get(name, ("largest allowed drop of the metric", lambda b: b >= 0,
                                              "a finite budget >= 0"))
    if not (math.isfinite(budget) and fits(budget)):
        raise ConfigError(f"--budget {budget:g} does not fit metric {name!r}: its budget is the {meaning}, "
                          f"{bounds} (outside that range the gate is off or fails every model)")


def run_gate(*, metric: str | Callable, reference: np.ndarray, candidate: np.ndarray,
             labels: np.ndarray | None, budget: float | None = None) -> GateResult:
    """Measure the metric on reference and candidate outputs and decide."""
    check_budget(metric, budget)
    name, function = resolve_metric(metric)
    if function is None:
        after = float(cosine_similarity(candidate, reference).mean())
        limit = DEFAULT_BUDGETS["cosine"] if budget is None else budget
        return GateResult(metric=name, before=1.0, after=after, budget=limit, kind="min_value",
                          samples=len(candidate), passed=after >= limit)
    if labels is None:
        raise ConfigError(f"metric {name!r} needs labels: add a 'labels' array to the held-out .npz")
    if function is top1:
        _check_class_labels(np.asarray(labels), np.asarray(reference))
    before, after = _score(name, function, reference, labels), _score(name, function, candidate, labels)
    limit = DEFAULT_BUDGETS.get(name, _DEFAULT_DROP) if budget is None else budget
    return GateResult(metric=name, before=before, after=after, budget=limit, kind="max_drop",
                      samples=len(candidate), passed=before - after <= limit + 1e-12,
                      note=_chance_note(name, before, reference) if function is top1 else None)


def _score(name: str, function: Callable, outputs: np.ndarray, labels: np.ndarray) -> float:
    """The metric's value, or ConfigError naming the metric when it raises or gives no number."""
    try:
        value = float(function(outputs, labels))
    except Exception as exc:  # noqa: BLE001 - a user metric can raise anything
        raise ConfigError(f"metric {name!r} raised {type(exc).__name__}: {one_line(exc)}; fix the function "
                          "(it takes (outputs, labels) and returns a number, higher is better)") from exc
    if not math.isfinite(value):
        raise ConfigError(f"metric {name!r} returned {value}; it must return a finite number")
    return value


def _check_class_labels(labels: np.ndarray, reference: np.ndarray) -> None:
    """top1 labels must be class indices of the output's last axis, one per held-out row."""
    classes = reference.shape[-1] if reference.ndim else 0
    if labels.ndim != 1 or len(labels) != len(reference) or labels.dtype.kind not in "iufb":
        raise ConfigError(f"the held-out 'labels' array has shape {labels.shape} and dtype {labels.dtype}; "
                          f"top1 needs one class index per row ({len(reference)} numbers)")
    flat = labels.astype(np.float64)
    bad = ~np.isfinite(flat) | (flat != np.round(flat)) | (flat < 0) | (flat >= classes)
    if bad.any():
        shown = ", ".join(f"{v:g}" for v in np.unique(flat[bad])[:6])
        raise ConfigError(f"held-out labels [{shown}] ({int(bad.sum())} of {len(flat)}) are not classes of "
                          f"the gated output, which has {classes} classes (0..{classes - 1}); the 'labels' "
                          "array must hold class indices, or gate another output with --gate-output")


def _chance_note(name: str, before: float, reference: np.ndarray) -> str | None:
    """A note when the reference itself is no better than guessing: the gate then measures little."""
    chance = 1.0 / max(reference.shape[-1], 1)
    if before > chance:
        return None
    return (f"the FP32 reference itself scores {name} {before:.4f} on the held-out set (chance is "
            f"{chance:.4f}): the gate measures little; check that the labels belong to these inputs")

"""Accuracy gate: a quantized variant is accepted only if its task metric stays within budget.

    result = run_gate(metric="top1", reference=fp32_logits, candidate=int8_logits, labels=y_holdout)
    result.check("digits_cnn int8")   # raises AccuracyGateError with the measured figures

Metrics (higher is better): `top1` (accuracy against labels; budget = the largest allowed drop,
default 1 percentage point), `cosine` (mean cosine similarity of candidate to reference outputs;
budget = the lowest allowed mean, default 0.99), or a user function `package.module:function`
taking (outputs, labels) and returning a score (budget = the largest allowed drop, default 0.01).
The held-out set must not share samples with the calibration set.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from tritonstack.errors import AccuracyGateError, ConfigError

__all__ = ["DEFAULT_BUDGETS", "GateResult", "cosine_similarity", "resolve_metric", "run_gate", "top1"]

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
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"metric {metric!r} is not top1, cosine or an importable "
                          "package.module:function") from exc


def run_gate(*, metric: str | Callable, reference: np.ndarray, candidate: np.ndarray,
             labels: np.ndarray | None, budget: float | None = None) -> GateResult:
    """Measure the metric on reference and candidate outputs and decide."""
    name, function = resolve_metric(metric)
    if function is None:
        after = float(cosine_similarity(candidate, reference).mean())
        limit = DEFAULT_BUDGETS["cosine"] if budget is None else budget
        return GateResult(metric=name, before=1.0, after=after, budget=limit, kind="min_value",
                          samples=len(candidate), passed=after >= limit)
    if labels is None:
        raise ConfigError(f"metric {name!r} needs labels: add a 'labels' array to the held-out .npz")
    before, after = float(function(reference, labels)), float(function(candidate, labels))
    limit = DEFAULT_BUDGETS.get(name, _DEFAULT_DROP) if budget is None else budget
    return GateResult(metric=name, before=before, after=after, budget=limit, kind="max_drop",
                      samples=len(candidate), passed=before - after <= limit + 1e-12)

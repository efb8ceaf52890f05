"""The accuracy gate refuses settings and labels that would make it measure nothing."""

from __future__ import annotations

import numpy as np
import pytest
from tritonstack.convert.gate import check_budget, run_gate

from tritonstack.errors import ConfigError

LABELS = np.array([0, 1, 2, 3] * 5)
REFERENCE = np.eye(4)[LABELS]


def broken_metric(outputs: np.ndarray, labels: np.ndarray) -> float:
    """A user metric with a bug."""
    raise RuntimeError("boom")


@pytest.mark.parametrize(("metric", "budget", "needle"), [
    ("top1", float("inf"), r"0 <= budget < 1"),
    ("top1", 5.0, r"0 <= budget < 1"),
    ("top1", 1.0, r"0 <= budget < 1"),
    ("top1", -0.1, r"0 <= budget < 1"),
    ("top1", float("nan"), r"0 <= budget < 1"),
    ("cosine", -1.0, r"0 < budget <= 1"),
    ("cosine", 1.5, r"0 < budget <= 1"),
    ("cosine", 0.0, r"0 < budget <= 1"),
    ("tests.unit.convert_models:negative_mse", float("inf"), r"finite budget >= 0"),
])
def test_a_budget_that_switches_the_gate_off_is_refused(metric: str, budget: float, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        check_budget(metric, budget)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=needle):  # and the gate itself never decides with it
        run_gate(metric=metric, reference=REFERENCE, candidate=REFERENCE, labels=LABELS, budget=budget)


@pytest.mark.parametrize(("metric", "budget"), [("top1", 0.0), ("top1", 0.5), ("cosine", 1.0),
                                                ("cosine", 0.9), ("m:f", 0.0), ("top1", None)])
def test_budgets_in_range_are_taken(metric: str, budget: float | None) -> None:
    check_budget(metric, budget)


def test_labels_outside_the_outputs_classes_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"labels \[100, 101, 102, 103\] \(20 of 20\).*has 4 classes \(0..3\)"):
        run_gate(metric="top1", reference=REFERENCE, candidate=REFERENCE, labels=LABELS + 100)
    with pytest.raises(ConfigError, match=r"labels \[0.5\]"):
        run_gate(metric="top1", reference=REFERENCE, candidate=REFERENCE, labels=np.full(20, 0.5))
    with pytest.raises(ConfigError, match=r"shape \(20, 1\).*one class index per row"):
        run_gate(metric="top1", reference=REFERENCE, candidate=REFERENCE, labels=LABELS[:, None])


def test_a_reference_at_chance_is_named() -> None:
    wrong = (LABELS + 1) % 4
    result = run_gate(metric="top1", reference=REFERENCE, candidate=REFERENCE, labels=wrong)
    print(f"\nreference top1 {result.before:.4f} on labels that do not belong: note {result.note!r}")
    assert result.passed and result.note and "scores top1 0.0000" in result.note and "chance is 0.2500" in result.note
    assert result.as_dict()["note"] == result.note
    assert run_gate(metric="top1", reference=REFERENCE, candidate=REFERENCE, labels=LABELS).note is None


def test_a_user_metric_that_raises_or_gives_nan_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"metric 'tests.unit.test_convert_gate_checks:broken_metric' raised "
                                          r"RuntimeError: boom; fix the function"):
        run_gate(metric="tests.unit.test_convert_gate_checks:broken_metric", reference=REFERENCE, candidate=REFERENCE,
                 labels=LABELS)
    with pytest.raises(ConfigError, match=r"returned nan"):
        run_gate(metric=lambda outputs, labels: float("nan"), reference=REFERENCE, candidate=REFERENCE,
                 labels=LABELS)

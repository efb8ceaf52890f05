"""Drift statistics: reference round trip, scores of unshifted vs shifted windows, the monitor."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from tritonstack.ops.drift import (
    DriftMonitor,
    DriftReference,
    DriftWindow,
    js_divergence,
    kl_divergence,
    mmd_rbf,
    psi,
    reference_from_training,
)

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def digits():  # noqa: ANN201
    from tritonstack.convert.reference import digits_split

    x_train, x_test, _, _ = digits_split()
    return reference_from_training(x_train, tensor="features", window_rows=512), x_test


def test_divergences_of_known_distributions() -> None:
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    assert psi(p, p) == 0 and kl_divergence(p, p) == 0 and js_divergence(p, p) == 0
    assert psi(p, q) == pytest.approx((0.4 * np.log(0.9 / 0.5)) + (-0.4 * np.log(0.1 / 0.5)))
    assert kl_divergence(p, q) == pytest.approx(0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1))
    assert 0 < js_divergence(np.array([1 - 1e-12, 1e-12]), np.array([1e-12, 1 - 1e-12])) <= np.log(2)


def test_mmd_is_small_for_same_distribution_and_large_for_shift() -> None:
    a, b = RNG.normal(size=(200, 8)), RNG.normal(size=(200, 8))
    assert mmd_rbf(a, b, 4.0) < 0.02 < mmd_rbf(a, b + 2.0, 4.0)


def test_reference_round_trip(tmp_path: Path, digits) -> None:  # noqa: ANN001
    reference, _ = digits
    loaded = DriftReference.load(reference.save(tmp_path / "ref.json"))
    assert loaded.features == 64 and loaded.window_rows == 512 and loaded.tensor == "features" and loaded.source == "input"
    assert all(np.array_equal(a, b) for a, b in zip(loaded.cuts, reference.cuts, strict=True))
    assert loaded.null_scores == pytest.approx(reference.null_scores)


def test_out_of_range_values_get_their_own_bin() -> None:
    reference = reference_from_training(np.zeros((100, 1)), tensor="x", window_rows=50, min_rows=10)
    assert DriftWindow(reference).add(np.zeros((50, 1))).scores().psi[0] < 0.01
    assert DriftWindow(reference).add(np.full((50, 1), 4.0)).scores().psi[0] > 1


def test_held_out_digits_stay_below_and_faint_digits_cross_the_thresholds(digits) -> None:  # noqa: ANN001
    reference, x_test = digits
    unshifted = DriftWindow(reference).add(x_test).scores().summary()
    shifted = DriftWindow(reference).add(np.round(x_test * 0.5)).scores().summary()
    print("unshifted", unshifted, "\nshifted", shifted, "\nnull", reference.null_scores)
    # the production alert thresholds (deploy/prometheus/alerts.yml)
    assert unshifted["psi_mean"] < 0.1 < shifted["psi_mean"]
    assert unshifted["js_mean"] < 0.02 < shifted["js_mean"]
    assert unshifted["embedding_mmd"] < 0.05 < shifted["embedding_mmd"]
    assert reference.null_scores["psi_mean"] < 0.1


def test_window_keeps_only_the_newest_rows() -> None:
    reference = reference_from_training(RNG.normal(size=(300, 2)), tensor="x", window_rows=100)
    window = DriftWindow(reference)
    for start in range(0, 250, 30):
        window.add(np.arange(start, start + 30, dtype=float)[:, None].repeat(2, 1))
    assert window.count == 100
    assert window.newest(100)[:, 0].tolist() == list(range(170, 270))
    window.add(np.arange(1000, 1250, dtype=float)[:, None].repeat(2, 1))  # larger than the window
    assert window.newest(100)[:, 0].tolist() == list(range(1150, 1250))


class _Gauge:
    def __init__(self) -> None:
        self.value = None

    def set(self, value: float) -> None:
        self.value = value


def test_monitor_publishes_when_due_and_enough_rows(digits) -> None:  # noqa: ANN001
    reference, x_test = digits
    gauges: dict[tuple, _Gauge] = {}
    now = [0.0]

    def make_gauge(name: str, description: str, labels: dict[str, str]) -> _Gauge:
        assert description
        return gauges.setdefault((name, tuple(sorted(labels.items()))), _Gauge())

    monitor = DriftMonitor(reference, make_gauge, {"model": "m", "version": "1"}, clock=lambda: now[0])
    assert monitor.observe(x_test[:100]) is None  # below min_rows
    assert gauges[("tritonstack_drift_window_rows", (("model", "m"), ("version", "1")))].value == 100
    assert monitor.observe(x_test[100:300]) is None  # not due yet
    now[0] = 2.0
    scores = monitor.observe(np.round(x_test[300:450] * 0.5))
    assert scores is not None and scores.rows == 450
    psi_mean = gauges[("tritonstack_drift_psi_mean", (("model", "m"), ("version", "1")))].value
    assert psi_mean == pytest.approx(scores.summary()["psi_mean"])
    assert len([k for k in gauges if k[0] == "tritonstack_drift_feature_psi"]) == 64


def test_rows_after_a_publication_are_published_when_the_interval_is_up_without_another_request(
        digits) -> None:  # noqa: ANN001
    """Outsider round 9: hostile rows, then 600 clean ones within the second after a publication, then
    silence. The gauges kept the hostile window's score (psi_mean 8.8 against ~0.01) for good."""
    reference, x_test = digits
    gauges: dict[str, _Gauge] = {}
    now = [0.0]

    def make_gauge(name: str, description: str, labels: dict[str, str]) -> _Gauge:
        return gauges.setdefault(name + labels.get("feature", ""), _Gauge())

    monitor = DriftMonitor(reference, make_gauge, {"model": "m"}, clock=lambda: now[0])
    hostile = RNG.random((reference.window_rows, 64)) * 100
    assert monitor.observe(hostile) is not None  # published at once: far off
    assert gauges["tritonstack_drift_psi_mean"].value > 1
    now[0] = 0.5
    assert monitor.observe(np.concatenate([x_test, x_test])[:reference.window_rows]) is None  # within the second: not yet
    assert monitor.publish_pending() is None
    now[0] = 1.0
    scores = monitor.publish_pending()
    assert scores is not None and gauges["tritonstack_drift_psi_mean"].value < 0.2
    assert monitor.publish_pending() is None  # nothing new since


def test_the_trailing_thread_publishes_pending_rows_by_itself(digits) -> None:  # noqa: ANN001
    reference, x_test = digits
    gauges: dict[str, _Gauge] = {}

    def make_gauge(name: str, description: str, labels: dict[str, str]) -> _Gauge:
        return gauges.setdefault(name + labels.get("feature", ""), _Gauge())

    monitor = DriftMonitor(reference, make_gauge, {"model": "m"}, interval_s=0.05, trailing=True)
    try:
        monitor.observe(RNG.random((reference.window_rows, 64)) * 100)
        monitor.observe(np.concatenate([x_test, x_test])[:reference.window_rows])
        deadline = time.monotonic() + 10
        while gauges["tritonstack_drift_psi_mean"].value > 0.2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gauges["tritonstack_drift_psi_mean"].value < 0.2
    finally:
        monitor.close()


def test_rows_with_nan_or_inf_score_as_far_off_not_as_a_match(digits) -> None:  # noqa: ANN001
    """Outsider round 10: a window of NaN/inf rows (or one NaN per row) read embedding_mmd 0.0. Such rows
    are now one point infinitely far from the reference; finite windows score as before."""
    reference, x_test = digits
    clean = np.concatenate([x_test, x_test])[:reference.window_rows]
    finite_score = DriftWindow(reference).add(clean).scores().embedding_mmd
    assert finite_score == pytest.approx(mmd_rbf(clean[-len(reference.sample):], reference.sample,
                                                 reference.bandwidth))
    one_nan_per_row = clean.copy()
    one_nan_per_row[:, 7] = np.nan
    for label, rows in [("nan", np.full_like(clean, np.nan)), ("inf", np.full_like(clean, np.inf)),
                        ("-inf", np.full_like(clean, -np.inf)), ("one NaN per row", one_nan_per_row)]:
        mmd = DriftWindow(reference).add(rows).scores().embedding_mmd
        assert mmd > 1.0 > 100 * finite_score, label  # 1 + the sample's own kernel mean
    half = clean.copy()
    half[::2, 3] = np.inf
    assert finite_score < DriftWindow(reference).add(half).scores().embedding_mmd < 1.0
    assert mmd_rbf(np.full((3, 2), np.nan), np.full((4, 2), np.nan), 1.0) == 0.0  # both all off: alike


def test_scores_read_nan_until_the_window_holds_min_rows(digits) -> None:  # noqa: ANN001
    reference, x_test = digits
    gauges: dict[str, _Gauge] = {}

    def make_gauge(name: str, description: str, labels: dict[str, str]) -> _Gauge:
        return gauges.setdefault(name + labels.get("feature", ""), _Gauge())

    monitor = DriftMonitor(reference, make_gauge, {"model": "m"})
    assert all(np.isnan(g.value) for n, g in gauges.items() if n != "tritonstack_drift_window_rows")
    monitor.observe(RNG.random((reference.min_rows - 1, 64)) * 100)
    assert gauges["tritonstack_drift_window_rows"].value == reference.min_rows - 1
    assert np.isnan(gauges["tritonstack_drift_psi_mean"].value) and np.isnan(gauges["tritonstack_drift_feature_psi0"].value)


def test_output_reference_round_trip_and_bad_source(tmp_path: Path) -> None:
    embeddings = np.tanh(RNG.normal(size=(300, 8)))
    reference = reference_from_training(embeddings, tensor="embedding", source="output", window_rows=100)
    loaded = DriftReference.load(reference.save(tmp_path / "ref.json"))
    assert (loaded.tensor, loaded.source) == ("embedding", "output")
    with pytest.raises(ValueError, match="'input' or an 'output'"):
        reference_from_training(embeddings, tensor="embedding", source="state")


def test_an_old_or_foreign_reference_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "ref.json").write_text('{"format": 1, "input": "features"}')
    with pytest.raises(ValueError, match="rebuild it"):
        DriftReference.load(tmp_path / "ref.json")


def test_divergences_equal_scipys() -> None:
    """scipy is the oracle for our numpy divergences (kept numpy for the stub: see the module docstring)."""
    from scipy.spatial.distance import jensenshannon
    from scipy.special import rel_entr

    counts = RNG.integers(0, 50, size=(2, 64, 11)) + 0.5
    p, q = counts / counts.sum(-1, keepdims=True)
    np.testing.assert_allclose(kl_divergence(p, q), rel_entr(p, q).sum(-1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(js_divergence(p, q), jensenshannon(p, q, axis=-1) ** 2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(psi(p, q), (rel_entr(p, q) + rel_entr(q, p)).sum(-1), rtol=0, atol=1e-12)
    assert js_divergence(p, q).max() <= np.log(2)

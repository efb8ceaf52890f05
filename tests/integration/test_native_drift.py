"""The native backend publishes the same `tritonstack_drift_*` gauges as the Python runner.

One real server, one repository: `digits_native` (a copy of digits_mlp with its drift reference, served by
the native C++ backend by default) and `digits_python` (the same files, with `tritonstack_runner: python`).
The same requests go to both, one at a time, past the window size (the ring buffer wraps), all within the
second after the first publication; no request follows, and both runners must still publish the final
window when its second is up (outsider round 9: the gauges kept the window of the first publication). Every
drift gauge (aggregates, per-feature PSI, window rows) must agree between the runners and with
`tritonstack.ops.drift.DriftWindow` computed here over the same rows. Run with `-s` to see the figures.
"""

from __future__ import annotations

import re
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tritonstack.client import ClientOptions, TritonClient
from tritonstack.ops.drift import REFERENCE_FILE, DriftReference, DriftWindow
from tritonstack.serve import EmbeddedServer, ServerConfig

from tritonstack.model_config import read_config, write_config

MODELS = ("digits_native", "digits_python")
_LINE = re.compile(r'^(tritonstack_drift_\w+)\{([^}]*)\} (\S+)$')


@pytest.fixture(scope="module")
def drift_server(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    root = tmp_path_factory.mktemp("native_drift") / "model_repository"
    for name in MODELS:
        shutil.copytree(repository / "digits_mlp", root / name)
        config = read_config(root / name / "config.pbtxt")
        config.name = name
        if name == "digits_python":
            config.parameters["tritonstack_runner"].string_value = "python"
        write_config(config, root / name / "config.pbtxt")
    with EmbeddedServer(ServerConfig(repository=root, ort_threads=1)) as running:
        assert running.plan.python.keys() == {"digits_python"}, running.plan.python
        yield running


def _gauges(metrics_url: str, model: str) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(metrics_url, timeout=10) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    found = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match and f'model="{model}"' in match.group(2):
            feature = re.search(r'feature="(\d+)"', match.group(2))
            found[(match.group(1), feature.group(1) if feature else "")] = float(match.group(3))
    return found


def _expected(reference: DriftReference, rows: np.ndarray) -> dict[tuple[str, str], float]:
    window = DriftWindow(reference).add(rows)
    scores = window.scores()
    expected = {(f"tritonstack_drift_{k}", ""): v for k, v in scores.summary().items()}
    expected[("tritonstack_drift_window_rows", "")] = float(window.count)
    expected.update({("tritonstack_drift_feature_psi", str(j)): float(v) for j, v in enumerate(scores.psi)})
    return expected


def test_warm_up_is_not_traffic_and_a_short_window_has_no_score(drift_server, repository: Path) -> None:
    """Outsider round 10: the warm-up row was counted as traffic (with `--warmup-batch-size 64` a fresh
    server alerted on training data), and a window below min_rows read 0 ("no drift") and `ok`. Runs
    first, on the fresh server: no row in either window, every score NaN; after a few rows, still NaN."""
    reference = DriftReference.load(next((repository / "digits_mlp").glob(f"*/{REFERENCE_FILE}")))
    for name in MODELS:
        gauges = _gauges(drift_server.metrics_url, name)
        assert gauges[("tritonstack_drift_window_rows", "")] == 0, (name, "warm-up rows in the window")
        scores = [v for (gauge, _), v in gauges.items() if gauge != "tritonstack_drift_window_rows"]
        assert scores and all(np.isnan(scores)), name
    rows = (np.random.default_rng(3).random((reference.min_rows // 2, 64)) * 100).astype(np.float32)  # far off
    with TritonClient(drift_server.grpc_url) as client:
        for name in MODELS:
            client.infer(name, {"features": rows})
    deadline = time.monotonic() + 15
    while any(_gauges(drift_server.metrics_url, n)[("tritonstack_drift_window_rows", "")] != len(rows)
              for n in MODELS) and time.monotonic() < deadline:
        time.sleep(0.2)
    for name in MODELS:
        gauges = _gauges(drift_server.metrics_url, name)
        assert gauges[("tritonstack_drift_window_rows", "")] == len(rows)
        assert np.isnan(gauges[("tritonstack_drift_psi_mean", "")]), "a window below min_rows must not score"


def test_native_and_python_runners_publish_the_same_drift_gauges(drift_server, repository: Path,
                                                                 digits_data) -> None:  # noqa: ANN001
    reference = DriftReference.load(next((repository / "digits_mlp").glob(f"*/{REFERENCE_FILE}")))
    x_test, _ = digits_data
    rng = np.random.default_rng(7)
    total = reference.window_rows + 150  # wraps the ring buffer
    rows = np.concatenate([x_test, x_test * 0.5, x_test])[:total].astype(np.float32)
    rows = rows + rng.normal(0, 0.5, rows.shape).astype(np.float32)
    rows[-20, 5] = np.nan  # round 8: one NaN made the MMD gauge NaN while that row was in the window
    assert len(rows) > reference.window_rows
    sizes, sent = [], 0
    while sent < len(rows):
        sizes.append(min(int(rng.integers(1, 24)), len(rows) - sent))
        sent += sizes[-1]
    with TritonClient(drift_server.grpc_url, ClientOptions(validate=False)) as client:  # NaN sent as is
        start = 0
        for size in sizes:
            for name in MODELS:
                client.infer(name, {"features": rows[start:start + size]})
            start += size
    expected = _expected(reference, rows)
    deadline = time.monotonic() + 15  # published by each runner's own thread when the second is up
    while True:
        native, python = (_gauges(drift_server.metrics_url, name) for name in MODELS)
        if all(g == pytest.approx(expected, rel=1e-6, abs=1e-9) for g in (native, python)) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert native.keys() == python.keys() == expected.keys(), (sorted(native), sorted(python))
    worst = 0.0
    for key, value in expected.items():
        worst = max(worst, abs(native[key] - python[key]))
        assert native[key] == pytest.approx(python[key], rel=1e-6, abs=1e-9), key
        assert native[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert np.isfinite(native[("tritonstack_drift_embedding_mmd", "")])
    print(f"\ndrift gauges over {len(rows)} rows in {len(sizes)} requests per runner: {len(expected)} gauges, "
          f"largest native-python difference {worst:.2e}; psi_mean {native[('tritonstack_drift_psi_mean', '')]:.4f}, "
          f"embedding_mmd {native[('tritonstack_drift_embedding_mmd', '')]:.5f}")
    assert native[("tritonstack_drift_window_rows", "")] == reference.window_rows
    assert native[("tritonstack_drift_psi_mean", "")] > 0


def test_drift_gauges_false_leaves_the_native_gauges_out(repository: Path, tmp_path: Path) -> None:
    """ServerConfig(drift_gauges=False): a model with a drift reference serves natively without gauges."""
    root = tmp_path / "model_repository"
    shutil.copytree(repository / "digits_mlp", root / "digits_mlp")
    with EmbeddedServer(ServerConfig(repository=root, ort_threads=1, drift_gauges=False)) as server:
        assert server.plan.python == {}
        with TritonClient(server.grpc_url) as client:
            client.infer("digits_mlp", {"features": np.zeros((4, 64), np.float32)})
        assert _gauges(server.metrics_url, "digits_mlp") == {}

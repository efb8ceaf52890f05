"""`tritonstack bench` machinery on the session repository (digits_mlp only): rows, n/a rows, JSON."""

import json
import shutil

import pytest
from tritonstack.loadtest.bench.context import BenchOptions
from tritonstack.loadtest.bench.harness import run_bench
from tritonstack.loadtest.pinning import CoreSplit


def test_quick_bench_rows(repository, tmp_path):
    options = BenchOptions(
        build_dir=tmp_path / "bench", repository=repository, quick=True, split=CoreSplit.default()
    )
    document = run_bench(options, only=("W1", "W2-p99", "W5", "W8"))
    print(json.dumps(document, indent=1, default=str)[:3000])
    rows = document["workloads"]
    assert list(rows) == ["W1", "W2-p99", "W5", "W8"]
    assert rows["W1"]["value"] is None and "resnet" in rows["W1"]["detail"]["na"].lower()
    for key in ("W2-p99", "W5", "W8"):
        assert rows[key]["value"] > 0, rows[key]
        assert set(rows[key]) >= {"value", "goal", "better", "detail"}
    assert rows["W5"]["detail"]["batching_off"]["server"]["avg_batch"] == 1.0
    p99 = rows["W2-p99"]["detail"]  # perf_analyzer against serve's defaults is the value; kept awake beside it
    assert p99["perf_analyzer"]["p99_ms"] == rows["W2-p99"]["value"] and "p99" in p99["generator_wakeup"]
    assert p99["perf_analyzer_core_awake"]["p99_ms"] > 0
    assert rows["W5"]["detail"]["identity"]["errors"] == 0 and rows["W5"]["detail"]["mlp"]["errors"] == 0
    assert "core_split" in document["machine"]
    json.dumps(document, default=str)


def test_seed_style_baseline_answers(repository, tmp_path):
    import asyncio

    import numpy as np
    from tritonstack.loadtest.baseline import BaselineServer
    from tritonstack.loadtest.baseline_app import export_mlp_weights
    from tritonstack.loadtest.generator import closed_loop
    from tritonstack.loadtest.stats import Recorder
    from tritonstack.loadtest.targets import http_json

    joblib_path = repository.parent / "build" / "digits_mlp" / "model.joblib"
    weights = export_mlp_weights(joblib_path, tmp_path / "w.npz")
    recorder = Recorder()
    payloads = [{"features": np.full((1, 64), 3.0).tolist()}]

    async def go(url):
        async with http_json(url + "/predict", payloads) as send:
            await send(0)
            await closed_loop(send, concurrency=4, duration_s=1.0, recorder=recorder, max_requests=400)

    with BaselineServer(weights=weights, workers=2) as baseline:
        asyncio.run(go(baseline.url))
    frame = recorder.frame()
    assert len(frame) > 0 and frame.ok.all()
    assert shutil.which("uvicorn") or True


def test_quick_bench_l4_locust_against_perf_analyzer(repository, tmp_path):
    """L4: `tritonstack loadtest` (Locust) / perf_analyzer on one server, per-side CPU use in the detail."""
    options = BenchOptions(
        build_dir=tmp_path / "bench", repository=repository, quick=True, split=CoreSplit.default()
    )
    row = run_bench(options, only=("L4",))["workloads"]["L4"]
    print(json.dumps(row, indent=1, default=str)[:3000])
    if row["value"] is None and "perf_analyzer" in row["detail"].get("na", ""):
        pytest.skip(row["detail"]["na"])
    assert row["value"] > 0, row
    detail = row["detail"]
    assert set(detail["locust"]) == {"grpc/0", "http/0"} and detail["locust_best"] in detail["locust"]
    assert {r.split()[0] for r in detail["perf_analyzer_runs_rps"]} == {"grpc", "http"}
    for run in [*detail["locust"].values(), detail["perf_analyzer"]]:
        assert set(run["cpu_use"]) == {"server", "generator"}, run
    assert all(run["errors"] == 0 and run["generator_cpu_use"] > 0 for run in detail["locust"].values())

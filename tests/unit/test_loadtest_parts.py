"""Scenario, load shapes, perf_analyzer CSV, tuning choices, bench rows, core split: no server."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from tritonstack.loadtest.bench.workloads import WORKLOADS, Row, pick
from tritonstack.loadtest.perf_analyzer import compare, parse_csv
from tritonstack.loadtest.pinning import CoreSplit
from tritonstack.loadtest.scenario import Kind, Scenario, spike_users_at, step_users_at
from tritonstack.loadtest.tune import Candidate, TuneOptions, beats, candidates, choose, with_candidate

from tritonstack.errors import ConfigError

PA_CSV = """Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency
32,7653.02,2,702,1532,157,643,1136,0,3964,5682,6323,8629
"""


def test_scenario_round_trips_through_the_environment():
    scenario = Scenario(kind="open", rate_rps=300, arrival="constant", users=3)
    back = Scenario.from_env(scenario.to_env())
    assert back == scenario and back.kind is Kind.OPEN
    assert json.loads(scenario.to_env()["TRITONSTACK_SCENARIO"])["arrival"] == "constant"
    with pytest.raises(ConfigError):
        Scenario(users=0)
    with pytest.raises(ConfigError, match="use one of: steady | ramp | spike | open"):
        Scenario(kind="sawtooth")
    with pytest.raises(ConfigError, match="poisson"):
        Scenario(arrival="bursty")
    shaped = Scenario(version=2, shapes={"tokens": [32]}, inputs_path="s.npz")
    assert Scenario.from_env(shaped.to_env()) == shaped and shaped.shapes == {"tokens": (32,)}


def test_step_ramp_and_spike_profiles():
    assert [step_users_at(t, step_users=4, step_s=2, steps=3) for t in (0, 1.9, 2, 5.9, 6)] == [
        4,
        4,
        8,
        12,
        None,
    ]
    args = {"users": 2, "spike_users": 20, "spike_at_s": 3, "spike_s": 1, "duration_s": 6}
    assert [spike_users_at(t, **args) for t in (0, 2.99, 3, 3.99, 4, 6)] == [2, 2, 20, 20, 2, None]


def test_perf_analyzer_csv_and_side_by_side():
    figures = parse_csv(PA_CSV)
    assert figures["throughput_rps"] == pytest.approx(7653.02)
    assert figures["p50_ms"] == pytest.approx(3.964) and figures["p99_ms"] == pytest.approx(8.629)
    assert figures["server_compute_us"] == pytest.approx(157 + 643 + 1136)
    side = compare({"throughput_rps": 7000.0, "p50_ms": 4.2, "p99_ms": 9.0}, figures)
    assert side["throughput_rps"]["within"] and side["p50_ms"]["within"]
    assert not compare({"throughput_rps": 3000.0, "p50_ms": 4.0}, figures)["throughput_rps"]["within"]


def test_tune_grid_config_and_choice():
    from tritonstack.model_config import parse_config

    base = parse_config('name: "m" max_batch_size: 64 instance_group { count: 1 } dynamic_batching { }')
    options = TuneOptions(
        repository=".",
        model="m",
        p99_ms=5,
        max_queue_delays_us=(0, 100),
        instance_counts=(1, 2),
    )
    grid = candidates(options, base.max_batch_size)  # the default sizes, cut to the model's 64
    assert {c.max_batch_size for c in grid} == {8, 32} and len(grid) == 8
    given = dataclasses.replace(options, max_batch_sizes=(8, 128))
    with pytest.raises(ConfigError, match="--max-batch 128 is above the max_batch_size 64"):
        candidates(given, base.max_batch_size)  # given explicitly: refused, never dropped
    new = with_candidate(base, Candidate(max_batch_size=8, max_queue_delay_us=100, instances=2))
    assert (
        new.max_batch_size,
        new.dynamic_batching.max_queue_delay_microseconds,
        new.instance_group[0].count,
    ) == (8, 100, 2)
    assert base.max_batch_size == 64  # the original is untouched
    points = [
        {"throughput_rps": 900, "p99_ms": 9.0, "errors": 0},
        {"throughput_rps": 500, "p99_ms": 4.0, "errors": 0},
        {"throughput_rps": 700, "p99_ms": 3.0, "errors": 2},
        {"throughput_rps": 400, "p99_ms": 2.0, "errors": 0},
    ]
    assert choose(points, 5.0) is points[1]
    assert choose(points, 1.0) is None
    # never worse than the current config: the run wrote 4,069 req/s p99 5.60 over 4,673 p99 4.43
    current = {"throughput_rps": 4673, "p99_ms": 4.43, "errors": 0}
    worse = {"throughput_rps": 4069, "p99_ms": 5.60, "errors": 0}
    assert choose([worse], 6.0, current) is None and not beats(worse, current, 6.0)
    slightly = {"throughput_rps": 4700, "p99_ms": 4.0, "errors": 0}
    assert choose([slightly], 5.0, current, min_gain=0.05) is None  # within noise: keep the current
    assert choose([slightly], 5.0, current) is slightly
    over = {"throughput_rps": 5000, "p99_ms": 9.0, "errors": 0}  # the current one misses the budget:
    assert choose([points[3]], 5.0, over) is points[3]  # anything that fits it is better
    failing = {"throughput_rps": 5000, "p99_ms": 1.0, "errors": 3}
    assert choose([points[1]], 5.0, failing) is points[1]
    with pytest.raises(ConfigError):
        TuneOptions(repository=".", model="m", p99_ms=0)
    with pytest.raises(ConfigError, match="--instances 0 is out of range; use values from 1 to 16"):
        TuneOptions(repository=".", model="m", p99_ms=5, instance_counts=(0,))
    loaded = parse_config('name: "m" max_batch_size: 64 dynamic_batching { preferred_batch_size: [4, 64] }')
    small = with_candidate(loaded, Candidate(max_batch_size=8, max_queue_delay_us=0, instances=1))
    assert list(small.dynamic_batching.preferred_batch_size) == [4]  # 64 > 8 would not load


def test_tune_names_the_models_of_a_repository_without_the_one_asked(tmp_path):
    from tritonstack.loadtest.tune_server import model_folder

    (tmp_path / "digits_mlp").mkdir()
    (tmp_path / "digits_mlp" / "config.pbtxt").write_text('name: "digits_mlp"')
    with pytest.raises(ConfigError, match="models in .*: digits_mlp"):
        model_folder(tmp_path, "nope")


def test_bench_rows_and_model_picking():
    assert [w.key for w in WORKLOADS] == ["W1", "W2", "W2-p99", "W3", "W4", "W5", "W6", "W7", "W8", "C1", "W9",
                                          "W10", "L4"]
    models = ["digits_mlp", "minilm", "minilm_encoder", "minilm_int8", "resnet18", "resnet18_int8"]
    assert pick(models, "resnet", without=("int8",)) == "resnet18"
    assert pick(models, "resnet", "int8") == "resnet18_int8"
    assert pick(models, "minilm", without=("encoder", "tokenizer", "int8")) == "minilm"
    assert pick(models, "bert") is None
    assert Row("W8", "t", 15.0, "lower", "s", value=3.0).met is True
    assert Row("W1", "t", 0.97, "higher", value=0.5).met is False
    assert Row("W1", "t", 0.97, "higher", na="missing").met is None


def test_core_split():
    split = CoreSplit.parse("0:1")
    assert split.server == {0} and split.generator == {1}
    assert CoreSplit.parse("0-1:2,3").generator == {2, 3}
    assert "CPU 0" in split.describe()


def test_loadtest_library_does_not_import_locust_or_gevent():
    code = (
        "import sys, tritonstack.client, tritonstack.loadtest.report, tritonstack.loadtest.generator, "
        "tritonstack.loadtest.bench.harness, tritonstack.loadtest.tune, tritonstack.cli;"
        "print(sorted(m for m in ('locust', 'gevent', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_workload_that_cannot_run_becomes_an_na_row():
    from tritonstack.loadtest.bench.harness import _as_json, _measure, format_value, verdict
    from tritonstack.loadtest.bench.workloads import Workload

    from tritonstack.errors import LoadTestError

    def missing(bench, row):
        raise LoadTestError("resnet18: no such reference model yet")

    def broken(bench, row):
        raise RuntimeError("boom")

    row = _measure(None, Workload("W1", "t", 0.97, "higher", "x", missing))
    assert row.value is None and verdict(row) == "n/a (resnet18: no such reference model yet)"
    assert _as_json(row)["detail"]["na"].startswith("resnet18")
    assert "RuntimeError" in _measure(None, Workload("W3", "t", 3.5, "higher", "x", broken)).na
    assert format_value(None, "x") == "n/a" and format_value(2.345, "x") == "2.35x"


def test_distributed_windows_from_locust_history():
    from tritonstack.loadtest.locust_runner import _windows_from_history

    def row(t, count, fail, p50):
        return {"Timestamp": str(t), "Name": "Aggregated", "Total Request Count": str(count),
                "Total Failure Count": str(fail), "50%": p50, "90%": "3", "99%": "9"}

    history = [row(100, 0, 0, "N/A"), row(101, 0, 0, "N/A"), row(103, 3000, 30, "2"), row(104, 3000, 30, "2"),
               row(106, 9000, 30, "2"), {"Timestamp": "106", "Name": "digits_mlp"}]
    windows = _windows_from_history(history)
    assert [w["t_s"] for w in windows] == [3, 6]
    assert windows[0]["throughput_rps"] == 1000 and windows[0]["error_rate"] == 0.01
    assert windows[1]["count"] == 6000 and windows[1]["errors"] == 0 and windows[1]["throughput_rps"] == 2000


def test_a_tune_point_cut_short_by_a_stop_is_not_shown_as_a_measurement(monkeypatch):
    """Ctrl-C mid-point: the candidate measured until the stop is left out, never printed as 0 req/s."""
    from pathlib import Path
    from types import SimpleNamespace

    from tritonclient.grpc import model_config_pb2
    from tritonstack.loadtest import tune as tune_module

    stopped = []

    def point(ts, config, rows, options):  # the second candidate is interrupted while measured
        if config.max_batch_size == 16:
            stopped.append(True)
            return {"count": 0, "errors": 0, "throughput_rps": 0.0, "p50_ms": None, "p99_ms": None}
        return {"count": 900, "errors": 0, "throughput_rps": 450.0, "p50_ms": 1.0, "p99_ms": 2.0}

    monkeypatch.setattr(tune_module, "_point", point)
    options = TuneOptions(
        repository=Path("r"), model="m", p99_ms=5, max_batch_sizes=(8, 16, 32), max_queue_delays_us=(0,),
        instance_counts=(1,), should_stop=lambda: bool(stopped),
    )
    shown = []
    grid = candidates(options, 64)
    ts = SimpleNamespace(current=model_config_pb2.ModelConfig(name="m", max_batch_size=64))
    points, skipped = tune_module._grid(ts, options, grid, [], shown.append, None)
    print(f"points kept after a stop during the 2nd of 3: {[p['max_batch_size'] for p in points]}")
    assert [p["max_batch_size"] for p in points] == [8] and shown == points and skipped == []


def test_tune_says_what_to_change_when_no_point_met_the_budget() -> None:
    """The README's `tune digits_mlp --p99-ms 5` on a busy box: every point over budget at concurrency
    32, and the decision gave the user nothing to act on."""
    from tritonstack.loadtest.tune import TuneOptions, TuneOutcome, _budget_hint

    options = TuneOptions(model="digits_mlp", repository=Path("r"), p99_ms=5.0)
    over = TuneOutcome(model="digits_mlp", p99_ms=5.0, baseline={"p99_ms": 7.5},
                       points=[{"p99_ms": 6.25}, {"p99_ms": None}], best=None)
    hint = _budget_hint(over, options)
    assert "lowest was 6.25 ms" in hint and "lower --concurrency or raise --p99-ms" in hint
    met = TuneOutcome(model="digits_mlp", p99_ms=5.0, baseline={"p99_ms": 4.0}, points=[], best=None)
    assert _budget_hint(met, options) == ""


def test_failures_breakdown_is_one_row_per_kind_and_status_local_or_distributed(tmp_path):
    """Outsider round 3: with --workers the kinds read "'InvalidInputError" and every message was a row."""
    import csv

    from tritonstack.loadtest.locust_runner import _failures

    from tritonstack.errors import InvalidInputError, ServerUnavailableError

    def error(n: int) -> InvalidInputError:
        return InvalidInputError(f"input 'x' has shape [{n}, 3], model wants [-1, 4] [INVALID_ARGUMENT]")

    # Locust's StatsError.parse_error is repr(error) (no importing locust here: it monkey-patches the
    # test session); the master of a distributed run holds the worker's repr as a string: repr(repr(e))
    local = [repr(error(1)), repr(error(2))]
    distributed = [repr(repr(e)) for e in (error(3), error(4), ServerUnavailableError("gone [UNAVAILABLE]"))]
    for rows in (local, distributed):
        path = tmp_path / "failures.csv"
        with path.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["Method", "Name", "Error", "Occurrences"])
            for n, text in enumerate(rows):
                out.writerow(["grpc", "m", text, 10 + n])
        got = [(r["error"], r["status"], r["count"]) for r in _failures(path)]
        assert got[0] == ("InvalidInputError", "INVALID_ARGUMENT", 21), got
        assert _failures(path)[0]["first_message"].startswith("input 'x' has shape [")
    assert got[1:] == [("ServerUnavailableError", "UNAVAILABLE", 12)]

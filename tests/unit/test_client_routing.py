"""EndpointPool (ejection, probing, re-admission) and TrafficSplit (weights, statistics)."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest
from tritonstack.client import ModelInfo, TrafficSplit
from tritonstack.client.core import ClientCore
from tritonstack.client.pool import EndpointPool, ejects
from tritonstack.client.shm import SHM_DIR, ShmTensors, region_prefix

from tritonstack import errors


def test_pick_spreads_over_healthy_endpoints() -> None:
    pool = EndpointPool(["a", "b", "c"])
    assert Counter(pool.pick() for _ in range(30)) == {"a": 10, "b": 10, "c": 10}
    pool.started("a")
    assert {pool.pick() for _ in range(10)} == {"b", "c"}, "least in flight first"


def test_down_endpoint_is_ejected_busy_one_is_not() -> None:
    pool = EndpointPool(["a", "b"], eject_s=60, max_eject_s=60)
    pool.started("a")
    pool.finished("a", errors.OverloadedError("queue full"))
    assert all(s.healthy for s in pool.states())
    pool.started("a")
    pool.finished("a", errors.ServerUnavailableError("connection refused"))
    assert {pool.pick() for _ in range(5)} == {"b"}
    state = {s.url: s for s in pool.states()}
    assert not state["a"].healthy and state["a"].failures == 2 and state["a"].ejections == 1
    assert pool.due_for_probe() == []
    assert ejects(errors.ServerStoppingError("stopping")) and not ejects(errors.InvalidInputError("x"))


def test_probe_readmits_or_doubles_the_ejection() -> None:
    pool = EndpointPool(["a", "b"], eject_s=0.01, max_eject_s=0.02)
    pool.started("a")
    pool.finished("a", errors.ServerUnavailableError("down"))
    time.sleep(0.03)
    assert pool.due_for_probe() == ["a"]
    assert pool.due_for_probe() == [], "one prober at a time"
    pool.probed("a", ready=False)
    assert not pool.states()[0].healthy
    time.sleep(0.03)
    assert pool.due_for_probe() == ["a"]
    pool.probed("a", ready=True)
    assert pool.states()[0].healthy
    assert pool.pick() in {"a", "b"}


def test_all_ejected_means_no_pick() -> None:
    pool = EndpointPool(["a"], eject_s=60, max_eject_s=60)
    pool.started("a")
    pool.finished("a", errors.ServerUnavailableError("down"))
    assert pool.pick() is None


@pytest.mark.parametrize("urls", [[], ["a", "a"]])
def test_pool_needs_distinct_endpoints(urls) -> None:
    with pytest.raises(errors.ConfigError):
        EndpointPool(urls)


def test_split_follows_weights_and_counts() -> None:
    split = TrafficSplit({1: 3, "2": 1}, seed=7)
    assert split.weights == {"1": 0.75, "2": 0.25}
    chosen = Counter(split.choose() for _ in range(4000))
    assert 0.70 < chosen["1"] / 4000 < 0.80
    for version, count in chosen.items():
        for i in range(count):
            split.record(version, 0.001 * (1 + i % 10), ok=i % 100 != 0)
    stats = split.stats()
    assert stats["1"].count == chosen["1"] and stats["2"].count == chosen["2"]
    assert stats["1"].errors == len(range(0, chosen["1"], 100))
    assert 0.001 <= stats["1"].p50_latency_s <= stats["1"].p95_latency_s <= 0.010
    assert stats["2"].mean_latency_s == pytest.approx(0.0055, rel=0.05)


def test_zero_weight_gets_no_traffic_and_bad_weights_are_refused() -> None:
    split = TrafficSplit({"1": 1, "2": 0})
    assert {split.choose() for _ in range(200)} == {"1"}
    assert split.stats()["2"].count == 0
    for weights in ({}, {"1": -1, "2": 2}, {"1": 0}):
        with pytest.raises(errors.ConfigError):
            TrafficSplit(weights)



@pytest.mark.parametrize("weights", [
    {"2": float("nan"), "3": 1}, {"2": float("inf"), "3": 1}, {"2": -0.5, "3": 1}, {"2": float("-inf"), "3": 1},
    {"2": 1e308, "3": 1e308}, {"2": "0.5", "3": 1}, {"2": None, "3": 1}, {"2": True, "3": 1},
])
def test_d10a_nan_inf_negative_or_non_number_weights_are_refused_at_construction(weights: dict) -> None:
    """Issue 13 D10a: NaN / inf were accepted, then every choose() raised a bare ValueError."""
    with pytest.raises(errors.ConfigError, match="finite weights >= 0") as refused:
        TrafficSplit(weights)
    assert "\n" not in str(refused.value)
    print(f"\nD10a: {weights} -> ConfigError: {refused.value}")

INFO = ModelInfo.from_config({
    "name": "m", "max_batch_size": 8,
    "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": ["4"]}],
    "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": ["2"]},
               {"name": "v", "data_type": "TYPE_FP32", "dims": ["-1"]}],
})


def _leftovers() -> list[str]:
    return sorted(p.name for p in SHM_DIR.glob(f"{region_prefix()}*"))


def test_shm_regions_are_sized_filled_and_always_unlinked() -> None:
    core = ClientCore("h:1", None)
    call = core.new_call(INFO, np.arange(12, dtype=np.float32).reshape(3, 4), deadline=core.deadline(1),
                         outputs=["y"])
    with pytest.raises(RuntimeError), ShmTensors(call) as shm:
        assert [r.byte_size for r in shm.regions] == [48, 24]
        assert len(_leftovers()) == 2
        assert shm.regions[0].buffer is not None
        assert np.frombuffer(shm.regions[0].buffer, np.float32).tolist() == list(range(12))
        raise RuntimeError("the call failed")
    assert _leftovers() == []


def test_shm_refuses_variable_size_outputs_before_creating_anything() -> None:
    core = ClientCore("h:1", None)
    call = core.new_call(INFO, np.zeros((3, 4), np.float32), deadline=core.deadline(1))
    with pytest.raises(errors.SharedMemoryError, match="output 'v'.*use infer"):
        ShmTensors(call)
    assert _leftovers() == []

"""Coalescing of concurrent asyncio calls (client/coalesce.py), without a server: merge and split
are pure, and the Coalescer is driven through its `send` seam."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from tritonstack.client.coalesce import Coalescer, _parts, eligible, held, merge, split
from tritonstack.client.core import Call
from tritonstack.client.model import ModelInfo

from tritonstack.errors import InferenceTimeoutError, InternalServerError, OverloadedError

CONFIG = {"name": "m", "max_batch_size": 8, "dynamic_batching": {},
          "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": ["3"]}],
          "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": ["3"]}]}


def _info(**changes: object) -> ModelInfo:
    return ModelInfo.from_config({**CONFIG, **changes})


def _call(info: ModelInfo, rows: int, start: float = 0.0, *, deadline: float = 0.0, request_id: str = "") -> Call:
    x = (np.arange(rows * 3, dtype=np.float32).reshape(rows, 3) + start)
    return Call(info=info, arrays={"x": x}, outputs=("y",), version="", deadline=deadline or time.monotonic() + 5,
                request_id=request_id)


def test_dynamic_batching_read_from_the_config() -> None:
    assert _info().dynamic_batching
    assert not ModelInfo.from_config({k: v for k, v in CONFIG.items() if k != "dynamic_batching"}).dynamic_batching
    assert not _info(sequence_batching={}).dynamic_batching


def test_only_dynamically_batched_calls_without_request_id_are_eligible() -> None:
    assert eligible(_call(_info(), 1))
    assert not eligible(_call(_info(), 1, request_id="r1"))
    plain = ModelInfo.from_config({k: v for k, v in CONFIG.items() if k != "dynamic_batching"})
    assert not eligible(_call(plain, 1))


def test_empty_and_full_batch_calls_go_alone() -> None:
    """Outsider 15a: a 0-row call merged with a good one got an empty result, alone INVALID_ARGUMENT."""
    info = _info()
    assert not eligible(_call(info, 0))
    assert not eligible(_call(info, info.max_batch_size))
    assert eligible(_call(info, info.max_batch_size - 1))


def test_held_calls_do_not_see_the_callers_later_writes() -> None:
    """Outsider 15a: a caller that reused its input buffer after starting the call got the result of
    the new contents, because the merged request read the buffer a loop turn later."""
    call = _call(_info(), 2, 1.0)
    kept = held(call)
    before = {name: array.copy() for name, array in call.arrays.items()}
    for array in call.arrays.values():
        array[...] = 0
    assert all(np.array_equal(kept.arrays[name], before[name]) for name in before)


def test_merge_then_split_gives_each_call_its_rows_in_order() -> None:
    info = _info()
    calls = [_call(info, 1, 0, deadline=10.0), _call(info, 2, 100, deadline=5.0), _call(info, 1, 200, deadline=7.0)]
    merged = merge(calls)
    assert merged.arrays["x"].shape == (4, 3) and merged.deadline == 5.0
    parts = split({"y": merged.arrays["x"] * 2}, [1, 2, 1], "m")
    for call, part in zip(calls, parts, strict=True):
        np.testing.assert_array_equal(part["y"], call.arrays["x"] * 2)


def test_split_refuses_an_output_without_the_merged_batch_axis() -> None:
    with pytest.raises(InternalServerError, match="needs 4 on the first axis"):
        split({"y": np.zeros((3, 3), np.float32)}, [1, 3], "m")


def test_parts_never_exceed_max_batch_size() -> None:
    info = _info()  # max_batch_size 8
    members = [(_call(info, n), None) for n in (3, 4, 2, 8, 1)]
    sizes = [[int(c.arrays["x"].shape[0]) for c, _ in part] for part in _parts(members)]  # type: ignore[arg-type]
    assert sizes == [[3, 4], [2], [8], [1]]


def _run(coalescer_send, calls):  # noqa: ANN001, ANN202
    async def go():  # noqa: ANN202
        coalescer = Coalescer(coalescer_send)
        results = await asyncio.gather(*(coalescer.infer(call) for call in calls))
        await coalescer.close()
        return results

    return asyncio.run(go())


def test_calls_of_one_turn_share_one_request_and_get_their_own_rows() -> None:
    sent: list[Call] = []

    async def send(call: Call) -> dict[str, np.ndarray]:
        sent.append(call)
        return {"y": call.arrays["x"] + 1}

    info = _info()
    calls = [_call(info, 1, 10 * i) for i in range(5)]
    results = _run(send, calls)
    assert len(sent) == 1 and sent[0].arrays["x"].shape == (5, 3)
    for call, result in zip(calls, results, strict=True):
        np.testing.assert_array_equal(result["y"], call.arrays["x"] + 1)


def test_a_failed_merged_request_sends_every_call_alone() -> None:
    async def send(call: Call) -> dict[str, np.ndarray]:
        raise OverloadedError("queue full [UNAVAILABLE]")

    info = _info()
    assert _run(send, [_call(info, 1), _call(info, 2)]) == [None, None]


def test_a_single_call_goes_alone_without_a_merged_request() -> None:
    async def send(call: Call) -> dict[str, np.ndarray]:
        raise AssertionError("not sent through the coalescer")

    assert _run(send, [_call(_info(), 1)]) == [None]


def test_a_timed_out_merged_request_fails_calls_past_their_deadline_only() -> None:
    async def send(call: Call) -> dict[str, np.ndarray]:
        raise InferenceTimeoutError("model 'm': Deadline Exceeded [DEADLINE_EXCEEDED]")

    async def go() -> list[object]:
        coalescer, info = Coalescer(send), _info()
        calls = [_call(info, 1, deadline=time.monotonic() - 1), _call(info, 1, deadline=time.monotonic() + 60)]
        return await asyncio.gather(*(coalescer.infer(c) for c in calls), return_exceptions=True)

    first, second = asyncio.run(go())
    assert isinstance(first, InferenceTimeoutError) and "DEADLINE_EXCEEDED" in str(first)
    assert second is None  # goes alone with its own deadline

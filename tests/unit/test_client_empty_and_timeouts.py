"""Issue 13c: `predict_many` on zero rows returns every output with 0 rows (the model's dtype and
dims), sync and asyncio; a timeout that is NaN, infinite, zero, negative or not a number is refused
as ConfigError at the call and at construction (NaN ended every call at once as a timeout)."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from tritonstack.client import AsyncTritonClient, ClientOptions, RetryPolicy, TritonClient, bulk

from tritonstack.errors import ConfigError, InvalidInputError

_CONFIG = {
    "name": "m", "max_batch_size": 8,
    "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": ["4"]}],
    "output": [{"name": "probabilities", "data_type": "TYPE_FP32", "dims": ["3"]},
               {"name": "label", "data_type": "TYPE_INT64", "dims": ["1"]},
               {"name": "tokens", "data_type": "TYPE_STRING", "dims": ["-1"]}],
}
_BAD_TIMEOUTS = [math.nan, math.inf, -math.inf, 0, -1.0, True, "5"]
_URL = "127.0.0.1:1"  # never reached: every case here is decided before a request


def _seeded(client: TritonClient | AsyncTritonClient) -> None:
    """Cache the model's config as a first model_info() call would (no server needed)."""
    client._core.remember("m", "", ({"config": _CONFIG}, {"versions": ["1"]}))  # noqa: SLF001


def _check_no_rows(out: dict[str, np.ndarray]) -> None:
    shapes = {name: (a.shape, a.dtype) for name, a in out.items()}
    print(f"predict_many on 0 rows: {shapes}")
    assert shapes == {"probabilities": ((0, 3), np.dtype(np.float32)), "label": ((0, 1), np.dtype(np.int64)),
                      "tokens": ((0, 0), np.dtype(object))}


@pytest.mark.parametrize("data", [np.empty((0, 4), np.float32), {"x": np.empty((0, 4), np.float32)}, []])
def test_predict_many_on_zero_rows_returns_every_output_with_zero_rows(data) -> None:
    with TritonClient(_URL) as client:
        _seeded(client)
        _check_no_rows(client.predict_many("m", data))
        assert set(client.predict_many("m", data, outputs=["label"])) == {"label"}
        with pytest.raises(InvalidInputError, match="outputs \\['nope'\\] requested"):
            client.predict_many("m", data, outputs=["nope"])


def test_async_predict_many_on_zero_rows_returns_every_output_with_zero_rows() -> None:
    async def run() -> dict[str, np.ndarray]:
        async with AsyncTritonClient(_URL) as client:
            _seeded(client)
            return await client.predict_many("m", np.empty((0, 4), np.float32))

    _check_no_rows(asyncio.run(run()))


def test_no_rows_keeps_the_empty_dict_only_without_a_model() -> None:
    assert bulk.concatenate([]) == {}


@pytest.mark.parametrize("timeout_s", _BAD_TIMEOUTS)
def test_a_bad_timeout_is_refused_at_every_sync_call(timeout_s) -> None:
    with TritonClient(_URL) as client:
        _seeded(client)
        x = np.zeros((1, 4), np.float32)
        calls = [lambda: client.infer("m", x, timeout_s=timeout_s),
                 lambda: client.predict_many("m", x, timeout_s=timeout_s),
                 lambda: client.model_info("m", timeout_s=timeout_s),
                 lambda: client.wait_until_ready(timeout_s)]
        for call in calls:
            with pytest.raises(ConfigError, match=r"timeout_s=.*; pass a finite number of seconds > 0"):
                call()


@pytest.mark.parametrize("timeout_s", _BAD_TIMEOUTS)
def test_a_bad_timeout_is_refused_at_every_async_call(timeout_s) -> None:
    async def run() -> None:
        async with AsyncTritonClient(_URL) as client:
            _seeded(client)
            x = np.zeros((1, 4), np.float32)
            for call in (client.infer("m", x, timeout_s=timeout_s),
                         client.predict_many("m", x, timeout_s=timeout_s),
                         client.wait_until_ready(timeout_s)):
                with pytest.raises(ConfigError, match="pass a finite number of seconds > 0"):
                    await call

    asyncio.run(run())


@pytest.mark.parametrize("field", ["timeout_s", "probe_timeout_s", "max_reconnect_backoff_s"])
@pytest.mark.parametrize("value", _BAD_TIMEOUTS)
def test_a_bad_timeout_is_refused_when_the_options_are_built(field, value) -> None:
    with pytest.raises(ConfigError, match=f"{field}="):
        ClientOptions(**{field: value})


@pytest.mark.parametrize("kwargs", [{"initial_backoff_s": math.nan}, {"max_backoff_s": math.nan},
                                    {"max_backoff_s": -1.0}, {"multiplier": math.inf}, {"attempts": math.nan}])
def test_a_retry_policy_with_nan_or_infinite_numbers_is_refused(kwargs) -> None:
    with pytest.raises(ConfigError, match="invalid retry policy"):
        RetryPolicy(**kwargs)

"""What the generator sends to: `send(i)` coroutine functions over one connection each.

    async with triton_raw(url, "digits_mlp", rows) as send:
        await closed_loop(send, concurrency=32, duration_s=5, recorder=recorder)

- `triton_raw`: tritonclient's own asyncio gRPC client, nothing of ours (what perf_analyzer does).
- `triton_ours`: our `AsyncTritonClient` (validation, deadlines, retries, typed errors).
- `http_json`: a JSON POST over HTTP (aiohttp), for the seed-style FastAPI baseline.

`rows` is a list of input dicts (numpy arrays with the batch axis); request i sends rows[i % n].
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import numpy as np
from tritonstack.loadtest.generator import Send

from tritonstack.errors import LoadTestError

__all__ = ["http_json", "our_client_available", "triton_ours", "triton_raw"]

Rows = Sequence[Mapping[str, np.ndarray]]


def our_client_available() -> str | None:
    """None when `tritonstack.client.AsyncTritonClient` exists, else why not."""
    try:
        from tritonstack.client import AsyncTritonClient  # noqa: F401
    except ImportError as exc:
        return f"tritonstack.client.AsyncTritonClient not available ({exc})"
    return None


def _prepare_raw(module: Any, config: Mapping[str, Any], rows: Rows) -> list[list[Any]]:
    dtypes = {i["name"]: i["data_type"].removeprefix("TYPE_") for i in config["input"]}
    prepared = []
    for row in rows:
        items = []
        for name, array in row.items():
            dtype = "BYTES" if dtypes[name] == "STRING" else dtypes[name]
            item = module.InferInput(name, list(array.shape), dtype)
            item.set_data_from_numpy(array)
            items.append(item)
        prepared.append(items)
    return prepared


@contextlib.asynccontextmanager
async def triton_raw(url: str, model: str, rows: Rows, *, timeout_s: float = 10.0) -> AsyncIterator[Send]:
    """Send rows with tritonclient.grpc.aio, inputs encoded once up front."""
    import tritonclient.grpc.aio as aio

    client = aio.InferenceServerClient(url)
    try:
        config = (await client.get_model_config(model, as_json=True))["config"]
        prepared = _prepare_raw(aio, config, rows)
        outputs = [aio.InferRequestedOutput(o["name"]) for o in config["output"]]

        async def send(i: int) -> object:
            return await client.infer(
                model, prepared[i % len(prepared)], outputs=outputs, client_timeout=timeout_s
            )

        yield send
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def triton_ours(url: str, model: str, rows: Rows, *, timeout_s: float = 10.0) -> AsyncIterator[Send]:
    """Send rows with our AsyncTritonClient (validation and decoding included)."""
    reason = our_client_available()
    if reason:
        raise LoadTestError(reason)
    from tritonstack.client import AsyncTritonClient, ClientOptions

    async with AsyncTritonClient(url, ClientOptions(timeout_s=timeout_s)) as client:
        await client.model_info(model)

        async def send(i: int) -> object:
            return await client.infer(model, dict(rows[i % len(rows)]))

        yield send


@contextlib.asynccontextmanager
async def http_json(
    url: str, payloads: Sequence[Any], *, timeout_s: float = 10.0, connections: int = 64
) -> AsyncIterator[Send]:
    """POST JSON payloads to `url` over keep-alive connections (aiohttp)."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def send(i: int) -> object:
            async with session.post(url, json=payloads[i % len(payloads)]) as response:
                response.raise_for_status()
                return await response.read()

        yield send

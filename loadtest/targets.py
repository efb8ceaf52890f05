"""What the generator sends to: `send(i)` coroutine functions over one connection each.

    async with triton_raw(url, "digits_mlp", rows) as send:
        await closed_loop(send, concurrency=32, duration_s=5, recorder=recorder)

- `triton_raw`: prepared requests on a plain grpc.aio channel, nothing of ours (as perf_analyzer).
- `triton_ours`: our `AsyncTritonClient` (validation, deadlines, retries, typed errors).
- `http_json`: a JSON POST over HTTP (aiohttp), for the seed-style FastAPI baseline.

`rows` is a list of input dicts (numpy arrays with the batch axis); request i sends rows[i % n].
"""

from __future__ import annotations

import contextlib
import json
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


def _request(
    model: str, datatypes: Mapping[str, str], row: Mapping[str, np.ndarray], version: str = ""
) -> Any:
    """A ModelInferRequest protobuf carrying `row` as raw tensor contents (built once, sent often)."""
    from tritonclient.grpc import service_pb2
    from tritonstack.client.core import raw_tensor_bytes

    request = service_pb2.ModelInferRequest(model_name=model, model_version=version)
    for name, array in row.items():
        request.inputs.add(name=name, datatype=datatypes[name], shape=list(array.shape))
        request.raw_input_contents.append(raw_tensor_bytes(array, datatypes[name]))
    return request


@contextlib.asynccontextmanager
async def triton_raw(
    url: str, model: str, rows: Rows, *, timeout_s: float = 10.0, version: str = ""
) -> AsyncIterator[Send]:
    """Send prepared ModelInferRequest protobufs on a plain grpc.aio channel (nothing of ours).

    Like perf_analyzer, requests are encoded once up front and responses are not decoded: the
    per-request cost on the generator core is gRPC's alone. `version` "" lets the server choose.
    """
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc
    from tritonstack.client.core import wire_channel_options

    async with grpc.aio.insecure_channel(url, options=wire_channel_options()) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = service_pb2.ModelConfigRequest(name=model, version=version)
        try:
            config = await stub.ModelConfig(request, timeout=max(timeout_s, 10.0))  # not a measured request
        except grpc.aio.AioRpcError as exc:  # e.g. the server died since the preflight
            raise LoadTestError(
                f"model {model!r}: reading its config before the load failed ({exc.code().name}: "
                f"{(exc.details() or '').strip()}); is the server at {url} still up?"
            ) from exc
        datatypes = {i.name: _wire_type(i.data_type) for i in config.config.input}
        prepared = [_request(model, datatypes, row, version) for row in rows]

        async def send(i: int) -> object:
            return await stub.ModelInfer(prepared[i % len(prepared)], timeout=timeout_s)

        yield send


def _wire_type(data_type: int) -> str:
    from tritonclient.grpc import model_config_pb2

    name = model_config_pb2.DataType.Name(data_type).removeprefix("TYPE_")
    return "BYTES" if name == "STRING" else name


@contextlib.asynccontextmanager
async def triton_ours(
    url: str, model: str, rows: Rows, *, timeout_s: float = 10.0, validate: bool = True,
    coalesce: bool = False,
) -> AsyncIterator[Send]:
    """Send rows with our AsyncTritonClient (decoding included; validation unless turned off;
    `coalesce`: concurrent calls may share a request, see `tritonstack.client.coalesce`)."""
    reason = our_client_available()
    if reason:
        raise LoadTestError(reason)
    from tritonstack.client import AsyncTritonClient, ClientOptions

    options = ClientOptions(timeout_s=timeout_s, validate=validate, coalesce=coalesce)
    async with AsyncTritonClient(url, options) as client:
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
        bodies = [json.dumps(p).encode() for p in payloads]  # encoded once, as on the Triton side
        headers = {"Content-Type": "application/json"}

        async def send(i: int) -> object:
            async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as response:
                response.raise_for_status()
                return await response.read()

        yield send

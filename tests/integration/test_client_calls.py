"""The client against the session's real embedded server: happy paths, errors, shared memory."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonstack.client import (
    AsyncTritonClient,
    ClientOptions,
    RetryPolicy,
    TritonClient,
    grpc_restricted_headers,
)
from tritonstack.client.shm import SHM_DIR, region_prefix
from tritonstack.convert.verify import run_onnx

from tritonstack import errors

MODEL = "digits_mlp"


def grpc_admin_headers(server) -> dict[str, str]:  # noqa: ANN001
    return grpc_restricted_headers(server.admin_headers)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shm_leftovers() -> list[str]:
    return sorted(p.name for p in SHM_DIR.glob(f"{region_prefix()}*"))


def server_regions(server) -> dict:  # noqa: ANN001
    raw = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        return raw.get_system_shared_memory_status(headers=grpc_admin_headers(server), as_json=True)
    finally:
        raw.close()


# -- happy paths -------------------------------------------------------------------------------
def test_sync_infer_matches_onnxruntime_and_caches_the_config(client, repository, digits_data) -> None:
    x, y = digits_data
    out = client.infer(MODEL, {"features": x[:200]}, outputs=["probabilities"], version=1, timeout_s=30)
    local = run_onnx(repository / MODEL / "1" / "model.onnx", {"features": x[:200]})["probabilities"]
    assert set(out) == {"probabilities"}
    assert np.abs(out["probabilities"] - local).max() <= 1e-5
    assert client.model_info(MODEL) is client.model_info(MODEL)
    assert client.model_info(MODEL).max_batch_size == 4096
    assert client.model_info(MODEL).versions == ("1",)
    assert client.is_ready() and client.is_ready(MODEL)


def test_async_infer_concurrently_matches_sync(server, client, digits_data) -> None:
    x, _ = digits_data
    expected = client.infer(MODEL, x[:64])["probabilities"]

    async def run() -> list[np.ndarray]:
        async with AsyncTritonClient(server.grpc_url) as aio:
            await aio.wait_until_ready(timeout_s=30, model=MODEL)
            assert await aio.is_ready()
            assert await aio.model_info(MODEL) is await aio.model_info(MODEL)
            results = await asyncio.gather(*(aio.infer(MODEL, x[i:i + 1]) for i in range(64)))
            return [r["probabilities"][0] for r in results]

    assert np.abs(np.stack(asyncio.run(run())) - expected).max() <= 1e-5


def test_predict_many_sync_array_and_iterable_keep_order(client, digits_data) -> None:
    x, y = digits_data
    big = np.concatenate([x] * 4)  # 1800 rows: several chunks of 512
    expected = np.concatenate([client.infer(MODEL, big[i:i + 500])["probabilities"]
                               for i in range(0, len(big), 500)])
    seen: list[int] = []
    out = client.predict_many(MODEL, big, batch_size=512, in_flight=3, progress=seen.append)["probabilities"]
    assert out.shape == (len(big), 10) and sum(seen) == len(big)
    assert np.abs(out - expected).max() <= 1e-5
    chunks = list(client.predict_iter(MODEL, iter(big), batch_size=100, in_flight=2))
    assert [len(c["probabilities"]) for c in chunks[:2]] == [100, 100]
    assert np.abs(np.concatenate([c["probabilities"] for c in chunks]) - expected).max() <= 1e-5
    assert (out[:len(y)].argmax(1) == y).mean() > 0.95


def test_predict_many_on_zero_rows_has_the_real_outputs_with_zero_rows(client, digits_data) -> None:
    x, _ = digits_data
    one = client.infer(MODEL, x[:1])
    none = client.predict_many(MODEL, x[:0])
    print(f"0 rows: {({k: (v.shape, str(v.dtype)) for k, v in none.items()})}")
    assert {k: (v.shape[1:], v.dtype) for k, v in none.items()} == {k: (v.shape[1:], v.dtype) for k, v in one.items()}
    assert all(len(v) == 0 for v in none.values())


def test_balanced_predict_many_on_zero_rows_has_the_real_outputs(server, digits_data) -> None:
    from tritonstack.client import AsyncBalancedClient, BalancedClient

    x, _ = digits_data
    with BalancedClient([server.grpc_url]) as balanced:
        none = balanced.predict_many(MODEL, x[:0])

    async def aio():
        async with AsyncBalancedClient([server.grpc_url]) as balanced:
            return await balanced.predict_many(MODEL, x[:0])

    for result in (none, asyncio.run(aio())):
        assert result and {k: v.shape for k, v in result.items()} == {"probabilities": (0, 10)}


def test_predict_many_async(server, client, digits_data) -> None:
    x, _ = digits_data
    expected = client.infer(MODEL, x[:500])["probabilities"]

    async def run() -> tuple[np.ndarray, int]:
        async with AsyncTritonClient(server.grpc_url) as aio:
            whole = await aio.predict_many(MODEL, x[:500], batch_size=64, in_flight=3)
            count = 0
            async for chunk in aio.predict_iter(MODEL, (row for row in x[:130]), batch_size=50):
                count += len(chunk["probabilities"])
            return whole["probabilities"], count

    whole, count = asyncio.run(run())
    assert np.abs(whole - expected).max() <= 1e-5
    assert count == 130


# -- each error, for real ---------------------------------------------------------------------------
def test_unknown_model_and_version_are_model_not_found(server, client) -> None:
    with pytest.raises(errors.ModelNotFoundError, match="'no_such_model'"):
        client.infer("no_such_model", np.zeros((1, 64), np.float32))
    with pytest.raises(errors.ModelNotFoundError):
        client.infer(MODEL, np.zeros((1, 64), np.float32), version=99)

    async def run() -> None:
        async with AsyncTritonClient(server.grpc_url) as aio:
            await aio.infer("no_such_model", np.zeros((1, 64), np.float32))

    with pytest.raises(errors.ModelNotFoundError):
        asyncio.run(run())


def test_bad_dtype_and_shape_are_invalid_input_before_and_at_the_server(server, client) -> None:
    with pytest.raises(errors.InvalidInputError, match="'features' has dtype float64; model 'digits_mlp'"):
        client.infer(MODEL, np.zeros((2, 64)))
    with pytest.raises(errors.InvalidInputError, match=r"shape \(2, 65\).*batch <= 4096"):
        client.infer(MODEL, np.zeros((2, 65), np.float32))
    with pytest.raises(errors.InvalidInputError, match="NaN/Inf"):
        client.infer(MODEL, np.full((1, 64), np.inf, np.float32))
    with TritonClient(server.grpc_url, ClientOptions(validate=False)) as unchecked:
        with pytest.raises(errors.InvalidInputError, match="INVALID_ARGUMENT"):
            unchecked.infer(MODEL, np.zeros((2, 65), np.float32))
        with pytest.raises(errors.InvalidInputError, match="INVALID_ARGUMENT"):
            unchecked.infer(MODEL, np.zeros((4097, 64), np.float32))


def test_unreachable_server_is_unavailable_after_bounded_retries() -> None:
    options = ClientOptions(timeout_s=2, retry=RetryPolicy(attempts=3, initial_backoff_s=0.01))
    with TritonClient(f"127.0.0.1:{unused_port()}", options) as down:
        assert not down.is_ready()
        with pytest.raises(errors.ServerUnavailableError):
            down.wait_until_ready(timeout_s=0.3)
        with pytest.raises(errors.ServerUnavailableError):
            down.model_info(MODEL)


def test_wait_until_ready_for_a_missing_model_is_model_not_ready(client) -> None:
    with pytest.raises(errors.ModelNotReadyError, match="'no_such_model'.*not ready after"):
        client.wait_until_ready(timeout_s=0.3, model="no_such_model")


def test_async_use_after_close_is_an_error(server) -> None:
    async def run() -> None:
        aio = AsyncTritonClient(server.grpc_url)
        await aio.infer(MODEL, np.zeros((1, 64), np.float32))
        await aio.close()
        await aio.close()
        await aio.infer(MODEL, np.zeros((1, 64), np.float32))

    with pytest.raises(errors.ClientClosedError):
        asyncio.run(run())


# -- shared memory ---------------------------------------------------------------------------------
def test_infer_shm_equals_infer_and_leaves_nothing(server, digits_data) -> None:
    x, _ = digits_data
    with TritonClient(server.grpc_url, ClientOptions(headers=grpc_admin_headers(server))) as client:
        expected = client.infer(MODEL, x[:512])["probabilities"]
        out = client.infer_shm(MODEL, x[:512])["probabilities"]
    assert np.abs(out - expected).max() <= 1e-6
    assert shm_leftovers() == []
    assert not server_regions(server).get("regions")


def test_shm_cleanup_after_a_call_the_server_rejects(server) -> None:
    options = ClientOptions(headers=grpc_admin_headers(server), validate=False)
    with TritonClient(server.grpc_url, options) as client:
        with pytest.raises(errors.InvalidInputError, match="INVALID_ARGUMENT"):
            client.infer_shm(MODEL, np.zeros((4, 65), np.float32))  # registered, then rejected
    assert shm_leftovers() == []
    assert not server_regions(server).get("regions")


def test_shm_without_admin_header_is_access_denied_and_cleaned(server) -> None:
    with TritonClient(server.grpc_url) as client:
        with pytest.raises(errors.AccessDeniedError, match="restricted"):
            client.infer_shm(MODEL, np.zeros((4, 64), np.float32))
    assert shm_leftovers() == []


def test_async_infer_shm(server, digits_data) -> None:
    x, _ = digits_data

    async def run() -> tuple[np.ndarray, np.ndarray]:
        options = ClientOptions(headers=grpc_admin_headers(server))
        async with AsyncTritonClient(server.grpc_url, options) as aio:
            plain = await aio.infer(MODEL, x[:100])
            shared = await aio.infer_shm(MODEL, x[:100])
            with pytest.raises(errors.InvalidInputError):
                await aio.infer_shm(MODEL, x[:100], version=1, outputs=["nope"])
            return plain["probabilities"], shared["probabilities"]

    plain, shared = asyncio.run(run())
    assert np.abs(plain - shared).max() <= 1e-6
    assert shm_leftovers() == []
    assert not server_regions(server).get("regions")



def test_predict_many_through_shared_memory_equals_grpc_and_leaves_nothing(server, digits_data) -> None:
    """W7: the chunks of predict_many through `in_flight` shared-memory slots registered once (the
    server maps each region once, not per chunk); same result, sync and asyncio, regions released."""
    x, _ = digits_data
    rows = np.concatenate([x] * 3)[:5000]
    options = ClientOptions(headers=grpc_admin_headers(server))
    with TritonClient(server.grpc_url, options) as client:
        expected = client.predict_many(MODEL, rows, batch_size=1024)["probabilities"]
        shared = client.predict_many(MODEL, rows, batch_size=1024, in_flight=3, shared_memory=True)
        chunks = client.predict_iter(MODEL, rows, batch_size=512, shared_memory=True)
        first = next(chunks)["probabilities"]  # stopped early: the slots are released by close()
        chunks.close()

    async def run() -> np.ndarray:
        async with AsyncTritonClient(server.grpc_url, options) as aio:
            out = await aio.predict_many(MODEL, rows, batch_size=1000, in_flight=2, shared_memory=True)
            return out["probabilities"]

    assert np.abs(shared["probabilities"] - expected).max() <= 1e-6
    assert np.abs(asyncio.run(run()) - expected).max() <= 1e-6
    assert np.abs(first - expected[:512]).max() <= 1e-6
    assert shm_leftovers() == []
    assert not server_regions(server).get("regions")


def test_predict_many_through_shared_memory_fails_cleanly(server) -> None:
    """No admin header: AccessDeniedError; a chunk the server rejects: its error; nothing left behind."""
    rows = np.zeros((300, 64), np.float32)
    with TritonClient(server.grpc_url) as client:
        with pytest.raises(errors.AccessDeniedError, match="restricted"):
            client.predict_many(MODEL, rows, batch_size=100, shared_memory=True)
    options = ClientOptions(headers=grpc_admin_headers(server), validate=False)
    with TritonClient(server.grpc_url, options) as client:
        with pytest.raises(errors.InvalidInputError, match="INVALID_ARGUMENT"):
            client.predict_many(MODEL, np.zeros((300, 63), np.float32), batch_size=100, shared_memory=True)
        with pytest.raises(errors.InvalidInputError, match="takes FP32 rows of dims"):  # over the regions
            client.predict_many(MODEL, np.zeros((300, 65), np.float32), batch_size=100, shared_memory=True)
        with pytest.raises(errors.InvalidInputError, match="dtype int32.*expects FP32"):  # raw bytes: no dtype
            client.predict_many(MODEL, np.ones((300, 64), np.int32), batch_size=100, shared_memory=True)
        chunks = client.predict_iter(MODEL, np.ones((300, 64), np.float32), batch_size=100, shared_memory=True)
        next(chunks)  # left unfinished: the client's close() releases its regions (outsider round 6)
    with pytest.raises(errors.ClientClosedError, match="before this predict_iter finished"):
        next(chunks)  # not a silent end as if every row were done (outsider round 7)

    async def cut_short() -> None:
        async with AsyncTritonClient(server.grpc_url, options) as aio:
            chunks = aio.predict_iter(MODEL, np.ones((300, 64), np.float32), batch_size=100,
                                      shared_memory=True)
            await chunks.__anext__()
        with pytest.raises(errors.ClientClosedError):
            await chunks.__anext__()

    asyncio.run(cut_short())
    assert shm_leftovers() == []
    assert not server_regions(server).get("regions")


def test_regions_of_a_client_killed_mid_call_are_removed_by_the_next_shared_memory_call(server) -> None:
    """Outsider round 7: SIGTERM (systemd's, Kubernetes' stop) or SIGKILL of a client mid
    predict_many(shared_memory=True) left its regions registered on the server and in /dev/shm for
    good; the next shared-memory call of any client now unregisters and unlinks those of dead pids."""
    import os
    import signal
    import subprocess
    import sys
    import time

    child = subprocess.Popen([sys.executable, "-c", (
        "import json, os, numpy as np\n"
        "from tritonstack.client import ClientOptions, TritonClient, grpc_restricted_headers\n"
        "headers = grpc_restricted_headers(json.loads(os.environ['ADMIN']))\n"
        "x = np.random.default_rng(0).random((3_000_000, 64), dtype=np.float32)\n"
        f"with TritonClient('{server.grpc_url}', ClientOptions(headers=headers)) as client:\n"
        "    client.predict_many('digits_mlp', x, batch_size=1000, shared_memory=True)\n")],
        env={**os.environ, "ADMIN": json.dumps(server.admin_headers)})
    prefix = f"tritonstack_client_{child.pid}_"
    deadline = time.monotonic() + 60
    while not list(SHM_DIR.glob(f"{prefix}*")) and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == -signal.SIGTERM
    assert list(SHM_DIR.glob(f"{prefix}*")), "the child left no region: the test did not kill it mid-call"
    with TritonClient(server.grpc_url, ClientOptions(headers=grpc_admin_headers(server))) as client:
        client.predict_many(MODEL, np.zeros((10, 64), np.float32), shared_memory=True)
    assert not list(SHM_DIR.glob(f"{prefix}*"))
    assert not [name for name in (server_regions(server).get("regions") or {}) if name.startswith(prefix)]


def test_concurrent_infer_shm_unregisters_every_region(server, caplog) -> None:  # noqa: ANN001
    """Triton 2.51 can answer a request before it drops its hold on the request's regions: an
    unregister right after the answer was refused as "currently in use" (1 in ~60 calls at 4 in
    flight) and the region stayed mapped by the server. The client now retries it briefly."""
    x = np.random.default_rng(0).random((4096, 64), dtype=np.float32)
    options = ClientOptions(headers=grpc_admin_headers(server), timeout_s=30)

    async def run() -> int:
        async with AsyncTritonClient(server.grpc_url, options) as aio:
            await aio.model_info(MODEL)
            gate = asyncio.Semaphore(4)

            async def one() -> int:
                async with gate:
                    return len((await aio.infer_shm(MODEL, x))["probabilities"])
            return sum(await asyncio.gather(*(one() for _ in range(240))))

    with caplog.at_level("WARNING", logger="tritonstack.client"):
        rows = asyncio.run(run())
    assert rows == 240 * len(x)
    assert not [r for r in caplog.records if "could not unregister" in r.getMessage()], caplog.text
    assert shm_leftovers() == []
    assert not server_regions(server).get("regions")

# -- coalescing (ClientOptions.coalesce, on by default) -------------------------------------------------------
def _successes(server, model: str) -> int:  # noqa: ANN001
    raw = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        stats = raw.get_inference_statistics(model, as_json=True)["model_stats"][0]
    finally:
        raw.close()
    return int(stats.get("inference_stats", {}).get("success", {}).get("count", 0))


def test_coalesced_calls_match_unary_in_order_with_fewer_requests(server, client, digits_data) -> None:
    x, _ = digits_data
    sizes = [1] * 40 + [3, 2] + [1] * 22  # a different batch size shares the request too
    starts = np.cumsum([0, *sizes])
    batches = [x[lo:hi] for lo, hi in zip(starts[:-1], starts[1:], strict=True)]
    expected = [client.infer(MODEL, b)["probabilities"] for b in batches]

    async def run() -> list[dict[str, np.ndarray]]:
        async with AsyncTritonClient(server.grpc_url, ClientOptions(timeout_s=30)) as aio:  # the default
            assert (await aio.model_info(MODEL)).dynamic_batching
            return await asyncio.gather(*(aio.infer(MODEL, b) for b in batches))

    before = _successes(server, MODEL)
    results = asyncio.run(run())
    for _ in range(50):  # Triton updates its statistics just after it answers
        requests = _successes(server, MODEL) - before
        if requests >= 1:
            break
        time.sleep(0.1)
    print(f"\n{len(batches)} coalesced infer() calls reached the server as {requests} request(s)")
    assert 1 <= requests < len(batches)
    for got, want in zip(results, expected, strict=True):
        assert got["probabilities"].shape == want.shape
        assert np.abs(got["probabilities"] - want).max() <= 1e-5


def _requests_for(server, model: str, send) -> int:  # noqa: ANN001
    """How many requests reached the server while `send()` ran (Triton counts just after it answers)."""
    before = _successes(server, model)
    send()
    requests = 0
    for _ in range(50):
        requests = _successes(server, model) - before
        if requests >= 1:
            time.sleep(0.2)
            return _successes(server, model) - before
        time.sleep(0.1)
    return requests


def test_one_request_per_call_and_per_chunk_where_asked(server, digits_data) -> None:
    """`coalesce=False` sends every call alone; predict_many's chunks are never merged (they are
    batches already, sent `in_flight` at a time), with the default options too."""
    x, _ = digits_data

    async def calls(options: ClientOptions) -> None:
        async with AsyncTritonClient(server.grpc_url, options) as aio:
            await aio.model_info(MODEL)
            await asyncio.gather(*(aio.infer(MODEL, x[i:i + 1]) for i in range(12)))

    async def chunks() -> dict[str, np.ndarray]:
        async with AsyncTritonClient(server.grpc_url, ClientOptions(timeout_s=30)) as aio:
            await aio.model_info(MODEL)
            return await aio.predict_many(MODEL, x[:96], batch_size=16, in_flight=4)

    alone = _requests_for(server, MODEL, lambda: asyncio.run(calls(ClientOptions(coalesce=False))))
    merged = _requests_for(server, MODEL, lambda: asyncio.run(calls(ClientOptions())))
    out: dict[str, np.ndarray] = {}
    chunked = _requests_for(server, MODEL, lambda: out.update(asyncio.run(chunks())))
    print(f"\n12 calls: {alone} requests with coalesce=False, {merged} by default; 6 chunks: {chunked}")
    assert alone == 12 and merged < 12 and chunked == 6
    assert out["probabilities"].shape[0] == 96

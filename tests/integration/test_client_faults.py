"""Faults for real, on an own embedded server (fixed ports, restartable): queue full, deadline,
server stopped, retries across a restart, load balancing with a server down, traffic split.

Servers are started and stopped from the main thread only (the child's death signal is tied to
the launching thread); request loops run in worker threads, bounded in count and time.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.grpc import model_config_pb2
from tritonstack.client import (
    AsyncBalancedClient,
    AsyncTritonClient,
    BalancedClient,
    ClientOptions,
    RetryPolicy,
    SplitRouter,
    TrafficSplit,
    TritonClient,
)

from tritonstack import errors
from tritonstack.model_config import new_config, read_config, write_config

QUEUE_DELAY_US = 2_000_000


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _build_repository(root: Path) -> Path:
    """digits_mlp with versions 1 and 2, and digits_queue: a 2-deep queue that waits 2 s to batch."""
    from tritonstack.convert.reference import build_all

    repo = root / "model_repository"
    build_all(repo, root / "build", ["digits_mlp"])
    mlp = repo / "digits_mlp"
    shutil.copytree(mlp / "1", mlp / "2")
    config = read_config(mlp / "config.pbtxt")
    config.version_policy.specific.versions.extend([1, 2])
    write_config(config, mlp / "config.pbtxt")

    queue = repo / "digits_queue"
    shutil.copytree(mlp, queue, ignore=shutil.ignore_patterns("2"))
    config = read_config(queue / "config.pbtxt")
    config.name = "digits_queue"
    config.ClearField("version_policy")
    config.dynamic_batching.max_queue_delay_microseconds = QUEUE_DELAY_US
    config.dynamic_batching.preferred_batch_size.append(512)
    config.dynamic_batching.default_queue_policy.max_queue_size = 2
    # the generated 2 s queue timeout would expire the batch this model waits 2 s to fill
    config.dynamic_batching.default_queue_policy.default_timeout_microseconds = 0
    write_config(config, queue / "config.pbtxt")
    _add_failing_model(repo / "always_fails")
    return repo


_FAILING_MODEL = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse(error=pb_utils.TritonError("deliberate failure"))
                for _ in requests]
"""


def _add_failing_model(path: Path) -> None:
    """A Python-backend model whose every response is an error (Triton reports INTERNAL)."""
    (path / "1").mkdir(parents=True)
    (path / "1" / "model.py").write_text(_FAILING_MODEL)
    config = new_config()
    config.name, config.backend, config.max_batch_size = path.name, "python", 8
    for group, name, dims in ((config.input, "features", 64), (config.output, "probabilities", 10)):
        tensor = group.add()
        tensor.name, tensor.data_type = name, model_config_pb2.TYPE_FP32
        tensor.dims.append(dims)
    write_config(config, path / "config.pbtxt")


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A restartable server on fixed free ports (restart keeps the same gRPC address)."""
    from tritonstack.serve import EmbeddedServer, ServerConfig

    repo = _build_repository(tmp_path_factory.mktemp("faults"))
    config = ServerConfig(repository=repo, ort_threads=1, grpc_port=_unused_port(),
                          http_port=_unused_port(), metrics_port=_unused_port())
    server = EmbeddedServer(config).start()
    yield server
    server.stop()


def _restart(server) -> None:  # noqa: ANN001
    server.stop()
    server.start()


def _ensure_running(server) -> None:  # noqa: ANN001
    if server.process is None:
        server.start()


def _rows(n: int) -> np.ndarray:
    return np.random.default_rng(0).random((n, 64), dtype=np.float32) * 16


def _drain_queue(server) -> None:  # noqa: ANN001
    """Wait until digits_queue's 2-deep queue is empty: a request a previous test left there (its
    client gave up at a deadline; Triton keeps it queued until the 2 s batch window ends) would
    make this test's calls overloaded. One patient call succeeds only after its batch ran, and the
    batch takes everything queued."""
    patient = ClientOptions(timeout_s=30, retry=RetryPolicy(attempts=40, initial_backoff_s=0.2, max_backoff_s=0.5))
    with TritonClient(server.grpc_url, patient) as client:
        client.infer("digits_queue", _rows(1))


# -- overload, deadline, not ready, stopped ---------------------------------------------------------
def test_queue_full_is_overloaded(own) -> None:
    _drain_queue(own)
    options = ClientOptions(timeout_s=30, retry=RetryPolicy(attempts=1))
    outcomes: list[object] = []
    barrier = threading.Barrier(8)
    with TritonClient(own.grpc_url, options) as client:
        client.model_info("digits_queue")

        def one(i: int) -> None:
            barrier.wait(timeout=30)
            try:
                outcomes.append(client.infer("digits_queue", _rows(1)))
            except errors.ClientError as error:
                outcomes.append(error)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    failures = [o for o in outcomes if isinstance(o, Exception)]
    assert len(outcomes) == 8
    assert failures and all(isinstance(f, errors.OverloadedError) for f in failures), failures
    assert "Exceeds maximum queue size" in str(failures[0])
    assert len(failures) < 8, "the queued requests are served"


def test_deadline_is_inference_timeout_and_not_retried(own) -> None:
    _drain_queue(own)
    with TritonClient(own.grpc_url, ClientOptions(retry=RetryPolicy(attempts=5))) as client:
        client.model_info("digits_queue")
        start = time.monotonic()
        with pytest.raises(errors.InferenceTimeoutError, match="DEADLINE_EXCEEDED"):
            client.infer("digits_queue", _rows(1), timeout_s=0.3)
        assert time.monotonic() - start < QUEUE_DELAY_US / 1e6, "gave up at the deadline, no retry"


def test_coalesced_calls_keep_their_deadline_and_typed_error(own) -> None:
    """Two calls merged into one request that outlives their deadline: each caller gets its own
    InferenceTimeoutError (the merged failure sends each alone; nothing is retried merged)."""
    options = ClientOptions(retry=RetryPolicy(attempts=5), coalesce=True)
    _drain_queue(own)

    async def run() -> list[BaseException | dict]:
        async with AsyncTritonClient(own.grpc_url, options) as client:
            await client.model_info("digits_queue")
            calls = (client.infer("digits_queue", _rows(1), timeout_s=0.3) for _ in range(2))
            return await asyncio.gather(*calls, return_exceptions=True)

    start = time.monotonic()
    results = asyncio.run(run())
    elapsed = time.monotonic() - start
    print(f"\ncoalesced calls with a 0.3 s deadline ended after {elapsed:.2f} s: "
          f"{[type(r).__name__ for r in results]}")
    assert all(isinstance(r, errors.InferenceTimeoutError) for r in results), results
    assert elapsed < QUEUE_DELAY_US / 1e6, "gave up at the deadline, no retry"


def test_model_failure_is_internal_and_not_retried(own) -> None:
    with TritonClient(own.grpc_url, ClientOptions(retry=RetryPolicy(attempts=5))) as client:
        with pytest.raises(errors.InternalServerError, match="deliberate failure"):
            client.infer("always_fails", _rows(2))

    def executions() -> int:  # Triton updates statistics just after it answers
        raw = grpcclient.InferenceServerClient(own.grpc_url)
        try:
            stats = raw.get_inference_statistics("always_fails", as_json=True)["model_stats"][0]
        finally:
            raw.close()
        return int(stats.get("execution_count", 0))

    _wait_for(lambda: executions() > 0, timeout_s=10)
    time.sleep(0.5)
    assert executions() == 1, "sent once, not retried"


def test_unloaded_model_is_not_ready(own) -> None:
    _drain_queue(own)
    with TritonClient(own.grpc_url) as client:
        client.infer("digits_queue", _rows(1), timeout_s=30)
        own.unload_model("digits_queue")
        try:
            with pytest.raises(errors.ModelNotReadyError, match="digits_queue"):
                client.infer("digits_queue", _rows(1))
            assert not client.is_ready("digits_queue")
        finally:
            own.load_model("digits_queue")
        client.wait_until_ready(timeout_s=60, model="digits_queue")


def test_stopped_server_is_unavailable(own) -> None:
    options = ClientOptions(timeout_s=3, retry=RetryPolicy(attempts=2, initial_backoff_s=0.01))
    client, aio_error = TritonClient(own.grpc_url, options), []
    try:
        client.infer("digits_mlp", _rows(2))
        own.stop()
        with pytest.raises(errors.ServerUnavailableError):
            client.infer("digits_mlp", _rows(2))

        async def run() -> None:
            async with AsyncTritonClient(own.grpc_url, options) as aio:
                try:
                    await aio.infer("digits_mlp", _rows(2))
                except errors.ClientError as error:
                    aio_error.append(error)

        asyncio.run(run())
        assert len(aio_error) == 1 and isinstance(aio_error[0], errors.ServerUnavailableError)
    finally:
        client.close()
        _ensure_running(own)


# -- retries across a restart ---------------------------------------------------------------------
PATIENT = ClientOptions(timeout_s=90, retry=RetryPolicy(attempts=200, initial_backoff_s=0.05,
                                                        max_backoff_s=1.0))


def _sync_loop(url: str, rows: np.ndarray, results: dict, failures: list, stop_at: float) -> None:
    """Send every row once, one at a time; record results by row and any failure."""
    with TritonClient(url, PATIENT) as client:
        for i in range(len(rows)):
            if time.monotonic() > stop_at:
                return
            try:
                results[i] = client.infer("digits_mlp", rows[i:i + 1])["probabilities"][0]
            except BaseException as error:  # noqa: BLE001 - recorded, asserted by the test
                failures.append(error)
            time.sleep(0.02)


async def _aio_loop(url: str, rows: np.ndarray, results: dict, failures: list, stop_at: float) -> None:
    """The same with 4 concurrent asyncio workers sharing one client."""
    async with AsyncTritonClient(url, PATIENT) as client:
        async def worker(start: int) -> None:
            for i in range(start, len(rows), 4):
                if time.monotonic() > stop_at:
                    return
                try:
                    results[i] = (await client.infer("digits_mlp", rows[i:i + 1]))["probabilities"][0]
                except BaseException as error:  # noqa: BLE001
                    failures.append(error)
                await asyncio.sleep(0.08)

        await asyncio.gather(*(worker(s) for s in range(4)))


def test_restart_mid_run_loses_no_request(own) -> None:
    rows = _rows(300)
    with TritonClient(own.grpc_url) as reference:
        expected = reference.predict_many("digits_mlp", rows)["probabilities"]
    sync_results: dict[int, np.ndarray] = {}
    aio_results: dict[int, np.ndarray] = {}
    failures: list[BaseException] = []
    stop_at = time.monotonic() + 240  # every loop is bounded in count and time
    threads = [
        threading.Thread(target=_sync_loop, args=(own.grpc_url, rows, sync_results, failures, stop_at)),
        threading.Thread(target=lambda: asyncio.run(
            _aio_loop(own.grpc_url, rows, aio_results, failures, stop_at))),
    ]
    for thread in threads:
        thread.start()
    _wait_for(lambda: len(sync_results) >= 20 and len(aio_results) >= 20, timeout_s=60)
    _restart(own)  # main thread: stop (SIGTERM), then start again on the same ports
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, (len(failures), failures[:3])
    assert len(sync_results) == len(rows) and len(aio_results) == len(rows)
    for results in (sync_results, aio_results):
        got = np.stack([results[i] for i in range(len(rows))])
        assert np.abs(got - expected).max() <= 1e-5


def test_a_restart_during_predict_many_through_shared_memory_registers_the_regions_again(own) -> None:
    """Outsider round 6: a server restart during predict_many(shared_memory=True) lost its registrations
    and the call failed (ModelNotFoundError "Unable to find shared memory region"), even with a retry
    budget spanning the restart, where the same call over gRPC carried on."""
    from tritonstack.client import grpc_restricted_headers
    from tritonstack.client.shm import SHM_DIR, region_prefix

    rows = _rows(4000)
    options = ClientOptions(timeout_s=60, retry=RetryPolicy(attempts=200, max_backoff_s=1.0),
                            headers=grpc_restricted_headers(own.admin_headers))
    with TritonClient(own.grpc_url, options) as client:
        expected = client.predict_many("digits_mlp", rows, batch_size=500)["probabilities"]
        got = []
        chunks = client.predict_iter("digits_mlp", rows, batch_size=500, in_flight=2, shared_memory=True)
        for i, chunk in enumerate(chunks):
            got.append(chunk["probabilities"])
            if i == 1:
                _restart(own)
    assert np.abs(np.concatenate(got) - expected).max() <= 1e-5
    assert not list(SHM_DIR.glob(f"{region_prefix()}*"))
    raw = grpcclient.InferenceServerClient(own.grpc_url)
    try:
        status = raw.get_system_shared_memory_status(headers=grpc_restricted_headers(own.admin_headers),
                                                     as_json=True)
    finally:
        raw.close()
    assert not status.get("regions")


def _wait_for(condition, timeout_s: float) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


# -- load balancing --------------------------------------------------------------------------------
def test_balancing_ejects_a_stopped_server_and_readmits_it(server, own) -> None:
    rows = _rows(64)
    urls = [server.grpc_url, own.grpc_url]
    with BalancedClient(urls, ClientOptions(timeout_s=30), eject_s=0.5, max_eject_s=2.0) as client:
        for i in range(40):
            client.infer("digits_mlp", rows[i:i + 1])
        assert all(s.successes > 0 for s in client.endpoints()), client.endpoints()
        spread = client.predict_many("digits_mlp", _rows(1000), batch_size=100, in_flight=4)["probabilities"]
        assert spread.shape == (1000, 10) and np.allclose(spread.sum(axis=1), 1, atol=1e-4)
        own.stop()
        try:
            results = [client.infer("digits_mlp", rows[i % 64:i % 64 + 1]) for i in range(100)]
            assert len(results) == 100
            state = {s.url: s for s in client.endpoints()}
            assert not state[own.grpc_url].healthy and state[own.grpc_url].ejections >= 1
        finally:
            own.start()
        before = {s.url: s.successes for s in client.endpoints()}[own.grpc_url]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # bounded: re-admission needs a probe after eject_s
            client.infer("digits_mlp", rows[:1])
            if {s.url: s.successes for s in client.endpoints()}[own.grpc_url] > before:
                break
            time.sleep(0.05)
        state = {s.url: s for s in client.endpoints()}
        assert state[own.grpc_url].healthy and state[own.grpc_url].successes > before


def test_async_balancing_with_one_server_down(server) -> None:
    down = f"127.0.0.1:{_unused_port()}"

    async def run() -> list:
        async with AsyncBalancedClient([down, server.grpc_url], eject_s=60, max_eject_s=60) as client:
            results = await asyncio.gather(*(client.infer("digits_mlp", _rows(1)) for _ in range(50)))
            assert len(results) == 50
            everything = await client.predict_many("digits_mlp", _rows(300), batch_size=64)
            assert everything["probabilities"].shape == (300, 10)
            return client.endpoints()

    states = {s.url: s for s in asyncio.run(run())}
    assert not states[down].healthy and states[down].successes == 0
    assert states[server.grpc_url].successes == 50 + 5 + 2  # infer, predict chunks, model_info (chunking and 0-row outputs)


# -- traffic split -------------------------------------------------------------------------------
def _version_successes(server, version: str) -> int:  # noqa: ANN001
    raw = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        stats = raw.get_inference_statistics("digits_mlp", version, as_json=True)["model_stats"][0]
    finally:
        raw.close()
    return int(stats.get("inference_stats", {}).get("success", {}).get("count", 0))


def test_traffic_split_counts_match_the_server(own) -> None:
    with TritonClient(own.grpc_url) as client:
        client.wait_until_ready(timeout_s=60, model="digits_mlp")
        before = {v: _version_successes(own, v) for v in ("1", "2")}
        router = SplitRouter(client, "digits_mlp", TrafficSplit({"1": 0.75, "2": 0.25}, seed=3))
        for _ in range(200):
            router.infer(_rows(1), timeout_s=30)
        stats = router.stats()
    _wait_for(lambda: sum(_version_successes(own, v) - before[v] for v in before) >= 200, timeout_s=10)
    after = {v: _version_successes(own, v) for v in ("1", "2")}
    assert stats["1"].count + stats["2"].count == 200
    assert stats["1"].count > stats["2"].count > 0
    assert {v: after[v] - before[v] for v in after} == {v: stats[v].count for v in stats}
    assert stats["1"].errors == stats["2"].errors == 0
    assert 0 < stats["1"].p50_latency_s <= stats["1"].p95_latency_s

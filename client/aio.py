"""asyncio gRPC client for Triton: the same core as `TritonClient`, awaited.

    from tritonstack.client import AsyncTritonClient

    async with AsyncTritonClient("127.0.0.1:8001") as client:
        await client.wait_until_ready(timeout_s=30)
        results = await asyncio.gather(*(client.infer("digits_mlp", row) for row in rows))
        everything = await client.predict_many("digits_mlp", big_array, in_flight=4)

Create and use it inside one running event loop (tritonclient's aio channel is bound to it).
Validation, deadlines, retry decisions and decoding come from `ClientCore`; this module only
awaits the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TypeVar

import numpy as np
from tritonstack.client import bulk
from tritonstack.client.coalesce import Coalescer, eligible, held
from tritonstack.client.core import Call, ClientCore, ClientOptions, Inputs, model_infer, version_string
from tritonstack.client.errors import translate_errors
from tritonstack.client.model import ModelInfo
from tritonstack.client.retry import checked_seconds
from tritonstack.client.shm import (
    ShmPool,
    ShmTensors,
    UnregisterRetry,
    lost_registration,
    remove_stale_files,
    stale_regions,
)

from tritonstack.errors import ClientError, ConfigError, ModelNotReadyError

__all__ = ["AsyncTritonClient"]

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")


class AsyncTritonClient:
    """One asyncio gRPC channel to one Triton server; many concurrent `infer` awaits are fine.

    Every call has a deadline; inference is retried on retryable errors with backoff inside it.
    Use after `close()` raises ClientClosedError.
    """

    def __init__(self, url: str, options: ClientOptions | None = None) -> None:
        import grpc
        import tritonclient.grpc.aio as aioclient

        self._grpc = aioclient
        self._rpc_error = grpc.RpcError
        self._core = ClientCore(url, options)
        try:
            self._raw = aioclient.InferenceServerClient(
                url, ssl=self._core.options.ssl, root_certificates=self._core.options.root_certificates,
                channel_args=self._core.channel_args(),
            )
        except RuntimeError as exc:  # grpc.aio needs an event loop (outsider 15a: an untyped error)
            if "event loop" not in str(exc):
                raise
            raise ConfigError("AsyncTritonClient needs an event loop: create it inside a coroutine "
                              "(`async with AsyncTritonClient(url) as client:`), or use TritonClient "
                              "outside asyncio") from exc
        self._model_infer = model_infer(self._raw._channel)  # noqa: SLF001 - tritonclient's channel
        self._loading: dict[tuple[str, str], asyncio.Future[ModelInfo]] = {}
        self._coalescer = Coalescer(self._send) if self._core.options.coalesce else None
        #: predict_iter iterations not finished: close() closes them (their chunks end, then a
        #: shared-memory iteration releases its regions)
        self._iterations: weakref.WeakSet[bulk.AsyncIteration] = weakref.WeakSet()

    @property
    def url(self) -> str:
        """host:port this client talks to."""
        return self._core.url

    @property
    def options(self) -> ClientOptions:
        """The options this client was made with."""
        return self._core.options

    async def close(self) -> None:
        """Close the channel; later calls raise ClientClosedError. Closing twice is harmless."""
        for iteration in list(self._iterations):
            with contextlib.suppress(RuntimeError):  # being iterated by another task: it releases its own
                await iteration.cut()
        if self._core.mark_closed():
            if self._coalescer is not None:
                await self._coalescer.close()
            await self._raw.close()

    async def __aenter__(self) -> AsyncTritonClient:
        self._core.check_open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- readiness and discovery ------------------------------------------------------------------
    async def is_ready(self, model: str | None = None) -> bool:
        """True when the server (or the model) answers ready; False when it cannot be reached."""
        self._core.check_open()
        timeout, headers = self._core.options.probe_timeout_s, self._core.headers()
        try:
            with translate_errors(model=model):
                if model is None:
                    return bool(await self._raw.is_server_ready(headers=headers, client_timeout=timeout))
                return bool(await self._raw.is_model_ready(model, headers=headers, client_timeout=timeout))
        except ClientError:
            return False

    async def wait_until_ready(self, timeout_s: float = 30.0, *, model: str | None = None) -> None:
        """Wait until the server (or model) is ready; raise ServerUnavailableError
        (ModelNotReadyError for a model) after timeout_s."""
        deadline = time.monotonic() + checked_seconds("timeout_s", timeout_s)
        while not await self.is_ready(model):
            if time.monotonic() >= deadline:
                raise self._core.not_ready_error(model, timeout_s)
            await asyncio.sleep(0.1)

    async def model_info(self, model: str, version: int | str | None = None, *,
                         timeout_s: float | None = None) -> ModelInfo:
        """The model's config, fetched once per (model, version) and cached (concurrent first
        calls share one fetch); the fetch is retried like inference (it only reads)."""
        return await self._model_info(model, version_string(version), self._core.deadline(timeout_s))

    async def _model_info(self, model: str, key: str, deadline: float) -> ModelInfo:
        info = self._core.cached(model, key)
        if info is not None:
            return info
        loading = self._loading.get((model, key))
        if loading is None:
            loading = asyncio.ensure_future(
                self._with_retries(model, deadline, lambda: self._fetch_model(model, key, deadline)))
            self._loading[(model, key)] = loading
            loading.add_done_callback(lambda _: self._loading.pop((model, key), None))
        return await asyncio.shield(loading)

    async def _fetch_model(self, model: str, key: str, deadline: float) -> ModelInfo:
        self._core.check_open()
        headers, timeout = self._core.headers(), max(deadline - time.monotonic(), 0.001)
        with translate_errors(model=model):
            config, metadata = await asyncio.gather(
                self._raw.get_model_config(model, key, as_json=True, headers=headers,
                                           client_timeout=timeout),
                self._raw.get_model_metadata(model, key, as_json=True, headers=headers,
                                             client_timeout=timeout))
        return self._core.remember(model, key, (config, metadata))

    # -- inference --------------------------------------------------------------------------------
    async def infer(self, model: str, inputs: Inputs, *, outputs: Sequence[str] | None = None,
                    version: int | str | None = None, timeout_s: float | None = None,
                    request_id: str = "", headers: Mapping[str, str] | None = None
                    ) -> dict[str, np.ndarray]:
        """Validate, send and decode one inference; retry only retryable errors, within the deadline.

        Same arguments and result as `TritonClient.infer`. Calls of a dynamically batched model
        ready in the same event-loop turn share one request (`client.coalesce`) unless
        `ClientOptions(coalesce=False)`.
        """
        call = await self._call(model, inputs, outputs, version, timeout_s, request_id, headers)
        if self._coalescer is not None and eligible(call):
            call = held(call)
            merged = await self._coalescer.infer(call)
            if merged is not None:
                return merged
        return await self._infer_alone(call)

    async def infer_one_request(self, model: str, inputs: Inputs, *, outputs: Sequence[str] | None = None,
                                version: int | str | None = None, timeout_s: float | None = None,
                                request_id: str = "", headers: Mapping[str, str] | None = None
                                ) -> dict[str, np.ndarray]:
        """Like `infer`, always as a gRPC request of its own (never coalesced): for inputs that are
        a batch already, such as `predict_iter`'s chunks, which then overlap `in_flight` at a time."""
        call = await self._call(model, inputs, outputs, version, timeout_s, request_id, headers)
        return await self._infer_alone(call)

    async def _infer_alone(self, call: Call) -> dict[str, np.ndarray]:
        """`call` as one request of its own, with retries within its deadline."""
        model = call.info.name
        try:  # the first attempt inline: the common case costs no retry machinery
            return await self._send(call)
        except ClientError as error:
            failed = error
        return await self._with_retries(model, call.deadline, lambda: self._send(call), failed=failed)

    async def infer_shm(self, model: str, inputs: Inputs, *, outputs: Sequence[str] | None = None,
                        version: int | str | None = None, timeout_s: float | None = None,
                        headers: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
        """Like `infer`, through system shared memory; regions are always released (see shm)."""
        call = await self._call(model, inputs, outputs, version, timeout_s, "", headers)
        return await self._with_retries(model, call.deadline, lambda: self._send_shm(call))

    async def predict_many(self, model: str, data: bulk.Data, *, batch_size: int | None = None,
                           in_flight: int = 4, outputs: Sequence[str] | None = None,
                           version: int | str | None = None, timeout_s: float | None = None,
                           progress: bool | Callable[[int], None] = False,
                           shared_memory: bool = False) -> dict[str, np.ndarray]:
        """Run inference over all rows of `data`; outputs concatenated in input order (each with 0
        rows, the model's dtype and dims when `data` has none). Arguments as in
        `TritonClient.predict_iter`."""
        empty = bulk.no_rows(await self.model_info(model, version, timeout_s=timeout_s), outputs)
        return await bulk.aconcatenate(self.predict_iter(
            model, data, batch_size=batch_size, in_flight=in_flight, outputs=outputs, version=version,
            timeout_s=timeout_s, progress=progress, shared_memory=shared_memory), empty)

    def predict_iter(self, model: str, data: bulk.Data, *, batch_size: int | None = None,
                     in_flight: int = 4, outputs: Sequence[str] | None = None,
                     version: int | str | None = None, timeout_s: float | None = None,
                     progress: bool | Callable[[int], None] = False, shared_memory: bool = False
                     ) -> bulk.AsyncIteration:
        """Yield one result dict per chunk, in input order, at most `in_flight` chunks sent (see
        `TritonClient.predict_iter`, also for `shared_memory`):
        `async for out in client.predict_iter(model, data): ...`."""
        iteration = bulk.AsyncIteration(self._predict_iter(
            model, data, batch_size, in_flight, outputs, version, timeout_s, progress, shared_memory))
        self._iterations.add(iteration)
        return iteration

    async def _predict_iter(self, model: str, data: bulk.Data, batch_size: int | None, in_flight: int,
                            outputs: Sequence[str] | None, version: int | str | None, timeout_s: float | None,
                            progress: bool | Callable[[int], None], shared_memory: bool
                            ) -> AsyncGenerator[dict[str, np.ndarray], None]:
        info = await self.model_info(model, version, timeout_s=timeout_s)
        plan = bulk.Plan.make(info, data, batch_size=batch_size, in_flight=in_flight, progress=progress)
        pool = ShmPool(plan.batch_rows) if shared_memory else None

        async def send_shm(chunk: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            assert pool is not None
            call = await self._call(model, chunk, outputs, version, timeout_s, "", None)
            return await self._with_retries(model, call.deadline, lambda: self._send_pooled(call, pool))

        def send(chunk: dict[str, np.ndarray]) -> Awaitable[dict[str, np.ndarray]]:
            return self.infer_one_request(model, chunk, outputs=outputs, version=version, timeout_s=timeout_s)

        if pool is not None:
            await self._remove_stale_regions()
        try:
            async for result in bulk.run_async(plan, send if pool is None else send_shm):
                yield result  # run_async's finally: no chunk left in flight
        finally:
            if pool is not None:
                await self._release_pool(pool)

    # -- internals --------------------------------------------------------------------------------
    async def _call(self, model: str, inputs: Inputs, outputs: Sequence[str] | None,
                    version: int | str | None, timeout_s: float | None, request_id: str,
                    headers: Mapping[str, str] | None) -> Call:
        deadline, key = self._core.deadline(timeout_s), version_string(version)
        info = self._core.cached(model, key) or await self._model_info(model, key, deadline)
        return self._core.new_call(info, inputs, deadline=deadline, outputs=outputs, version=version,
                                   request_id=request_id, headers=headers)

    async def _with_retries(self, model: str, deadline: float, attempt_once: Callable[[], Awaitable[_T]], *,
                            failed: ClientError | None = None) -> _T:
        """Call `attempt_once` until it succeeds or the retry policy gives up (re-raising the last
        error); `failed` is the error of an attempt already made."""
        attempt, error = (0, None) if failed is None else (1, failed)
        while True:
            if error is not None:
                pause = self._core.options.retry.pause_s(error, attempt, deadline)
                if pause is None:
                    raise error
                _LOGGER.debug("attempt %d for %r failed (%s); retrying in %.3f s",
                              attempt, model, error, pause)
                await asyncio.sleep(pause)
            attempt += 1
            try:
                return await attempt_once()
            except ClientError as exc:
                error = exc

    async def _send(self, call: Call) -> dict[str, np.ndarray]:
        """One ModelInfer of `call` (the bytes of `ClientCore.encode`), decoded; errors typed."""
        try:
            response = await self._model_infer(self._core.encode(call), metadata=self._core.metadata(call),
                                                timeout=call.remaining_s())
        except self._rpc_error as exc:
            error = self._core.rpc_error(exc, call)
            if isinstance(error, ModelNotReadyError):
                error = self._core.refine_not_ready(error, await self.is_ready())
            raise error from exc
        return self._core.decode(response, call.outputs)

    async def _send_shm(self, call: Call) -> dict[str, np.ndarray]:
        with ShmTensors(call) as shm:
            try:
                return await self._infer_in(shm, call)
            finally:
                await self._release(shm)

    async def _send_pooled(self, call: Call, pool: ShmPool) -> dict[str, np.ndarray]:
        slot = pool.take(call)
        try:
            return await self._infer_in(slot, call)
        finally:
            pool.give_back(slot)

    async def _infer_in(self, shm: ShmTensors, call: Call) -> dict[str, np.ndarray]:
        """`call` through the regions of `shm` (loaded with its inputs), registering those not yet."""
        for region in shm.regions:
            if region.name not in shm.registered:
                with translate_errors(model=call.info.name):
                    await self._raw.register_system_shared_memory(
                        region.name, region.key, region.byte_size, headers=call.headers,
                        client_timeout=call.remaining_s())
                shm.registered.append(region.name)
        kwargs = self._core.infer_kwargs(self._grpc, call, tensors=shm.tensors(self._grpc))
        try:
            with translate_errors(model=call.info.name):
                result = await self._raw.infer(**kwargs)
        except ClientError as error:
            lost = lost_registration(error, shm)
            if lost is error:
                raise
            raise lost from error
        return shm.read_outputs(result)

    async def _release_pool(self, pool: ShmPool) -> None:
        """Unregister and unlink the regions of `pool`. An iteration never finished nor closed keeps
        its registrations until the server restarts (its files are unlinked at exit)."""
        try:
            if not self._core.closed:
                for slot in pool.slots:
                    await self._release(slot)
        finally:
            pool.close()

    async def _remove_stale_regions(self) -> None:
        """Unregister (and unlink) the regions of clients killed before they released theirs (SIGKILL,
        SIGTERM): without this they stay registered until the server restarts. Best effort: a server
        that refuses the status call (no admin header) refuses the registrations just after, anyway."""
        headers = dict(self._core.options.headers) or None
        try:
            with translate_errors():
                status = await self._raw.get_system_shared_memory_status(
                    headers=headers, as_json=True, client_timeout=self._core.options.probe_timeout_s)
        except ClientError:
            return
        for name in stale_regions(status):
            await self._unregister(name, headers)
        remove_stale_files()

    async def _release(self, shm: ShmTensors) -> None:
        """Unregister the regions of `shm` the server has."""
        for name in shm.registered:
            await self._unregister(name, shm.call.headers)
        shm.registered.clear()

    async def _unregister(self, name: str, headers: dict[str, str] | None) -> None:
        retry = UnregisterRetry(name)
        while retry.again(await self._unregister_once(name, headers)):
            await asyncio.sleep(retry.pause)

    async def _unregister_once(self, name: str, headers: dict[str, str] | None) -> ClientError | None:
        try:
            with translate_errors():
                await self._raw.unregister_system_shared_memory(
                    name, headers=headers, client_timeout=self._core.options.timeout_s)
        except ClientError as error:
            return error
        return None

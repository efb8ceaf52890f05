"""Client-side load balancing across several Triton servers, with health-based ejection.

    from tritonstack.client import BalancedClient

    with BalancedClient(["127.0.0.1:8001", "127.0.0.1:9001"], eject_s=1.0) as client:
        out = client.infer("digits_mlp", batch)      # goes to a healthy server
        print(client.endpoints())                    # EndpointState per server

A call that fails because its server is down (UNAVAILABLE, not overload) ejects that server and
is retried on another one within the call's deadline and the `RetryPolicy` (inference is
idempotent). Ejected servers are probed after `eject_s` and re-admitted when ready. The
per-server clients do not retry themselves: the balancer owns the retry loop. `predict_many`
spreads its chunks over the servers the same way. Create `AsyncBalancedClient` inside the event
loop that uses it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from tritonstack.client import bulk
from tritonstack.client.aio import AsyncTritonClient
from tritonstack.client.bulk import BulkOptions
from tritonstack.client.core import ClientCore, ClientOptions, InferOptions, Inputs, RetryPolicy
from tritonstack.client.model import ModelInfo
from tritonstack.client.pool import EndpointPool, EndpointState
from tritonstack.client.sync import TritonClient

from tritonstack.errors import ClientError, ServerUnavailableError

__all__ = ["AsyncBalancedClient", "BalancedClient", "EndpointState"]

if TYPE_CHECKING:
    from tritonstack.client.core import Unpack

_T = TypeVar("_T")


class _Balancer:
    """What both balanced clients share: options, pool, lifecycle and deadline bookkeeping."""

    def __init__(self, urls: Sequence[str], options: ClientOptions | None, eject_s: float,
                 max_eject_s: float) -> None:
        self.pool = EndpointPool(urls, eject_s=eject_s, max_eject_s=max_eject_s)
        self.core = ClientCore(",".join(urls), options)
        self.inner_options = replace(self.core.options, retry=RetryPolicy(attempts=1))

    def deadline(self, timeout_s: float | None) -> float:
        self.core.check_open()
        return time.monotonic() + (timeout_s if timeout_s is not None else self.core.options.timeout_s)

    def pick(self) -> str:
        url = self.pool.pick()
        if url is None:
            raise ServerUnavailableError(f"all endpoints {self.pool.urls} are ejected as down; "
                                         "check the servers, they are probed again shortly")
        return url

    def pause_s(self, error: ClientError, attempt: int, deadline: float) -> float | None:
        return self.core.options.retry.pause_s(error, attempt, deadline)

    @staticmethod
    def remaining_s(deadline: float) -> float:
        return max(deadline - time.monotonic(), 0.001)


class BalancedClient:
    """A blocking client spreading calls over several servers (least in flight, healthy only)."""

    def __init__(self, urls: Sequence[str], options: ClientOptions | None = None, *,
                 eject_s: float = 1.0, max_eject_s: float = 30.0) -> None:
        self._b = _Balancer(urls, options, eject_s, max_eject_s)
        self._clients = {url: TritonClient(url, self._b.inner_options) for url in urls}

    def endpoints(self) -> list[EndpointState]:
        """Health, traffic and failure counts of every server."""
        return self._b.pool.states()

    def close(self) -> None:
        """Close every connection; later calls raise ClientClosedError."""
        if self._b.core.mark_closed():
            for client in self._clients.values():
                client.close()

    def __enter__(self) -> BalancedClient:
        self._b.core.check_open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def model_info(self, model: str, version: int | str | None = None, *,
                   timeout_s: float | None = None) -> ModelInfo:
        """The model's config, from a healthy server (cached per server)."""
        return self._failover(lambda client, deadline: client.model_info(
            model, version, timeout_s=self._b.remaining_s(deadline)), timeout_s)

    def infer(self, model: str, inputs: Inputs, *, timeout_s: float | None = None,
              **kwargs: Unpack[InferOptions]) -> dict[str, np.ndarray]:
        """`TritonClient.infer` on a healthy server; fails over to another one when it is down."""
        return self._failover(lambda client, deadline: client.infer(
            model, inputs, timeout_s=self._b.remaining_s(deadline), **kwargs), timeout_s)

    def predict_many(self, model: str, data: bulk.Data,
                     **kwargs: Unpack[BulkOptions]) -> dict[str, np.ndarray]:
        """`TritonClient.predict_many` with every chunk balanced (and failed over) on its own."""
        info = self.model_info(model, kwargs.get("version"), timeout_s=kwargs.get("timeout_s"))
        return bulk.concatenate(self.predict_iter(model, data, **kwargs),
                                bulk.no_rows(info, kwargs.get("outputs")))

    def predict_iter(self, model: str, data: bulk.Data, *, batch_size: int | None = None,
                     in_flight: int = 4, timeout_s: float | None = None,
                     progress: bool | Callable[[int], None] = False,
                     **kwargs: Unpack[InferOptions]) -> Iterator[dict[str, np.ndarray]]:
        """`TritonClient.predict_iter` with every chunk balanced on its own."""
        info = self.model_info(model, kwargs.get("version"), timeout_s=timeout_s)
        plan = bulk.Plan.make(info, data, batch_size=batch_size, in_flight=in_flight, progress=progress)
        return bulk.run_threaded(plan, lambda chunk: self.infer(model, chunk, timeout_s=timeout_s, **kwargs))

    def probe(self) -> None:
        """Probe the ejected servers that are due now (also done before every call)."""
        for url in self._b.pool.due_for_probe():
            ready = False
            try:
                ready = self._clients[url].is_ready()
            finally:
                self._b.pool.probed(url, ready=ready)

    def _failover(self, call: Callable[[TritonClient, float], _T], timeout_s: float | None) -> _T:
        deadline = self._b.deadline(timeout_s)
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(call, deadline)
            except ClientError as error:
                pause = self._b.pause_s(error, attempt, deadline)
                if pause is None:
                    raise
                time.sleep(pause)

    def _attempt(self, call: Callable[[TritonClient, float], _T], deadline: float) -> _T:
        self.probe()
        url = self._b.pick()
        self._b.pool.started(url)
        try:
            result = call(self._clients[url], deadline)
        except BaseException as error:
            self._b.pool.finished(url, error)
            raise
        self._b.pool.finished(url, None)
        return result


class AsyncBalancedClient:
    """The asyncio twin of `BalancedClient` (same pool and retry decisions)."""

    def __init__(self, urls: Sequence[str], options: ClientOptions | None = None, *,
                 eject_s: float = 1.0, max_eject_s: float = 30.0) -> None:
        self._b = _Balancer(urls, options, eject_s, max_eject_s)
        self._clients = {url: AsyncTritonClient(url, self._b.inner_options) for url in urls}

    def endpoints(self) -> list[EndpointState]:
        """Health, traffic and failure counts of every server."""
        return self._b.pool.states()

    async def close(self) -> None:
        """Close every connection; later calls raise ClientClosedError."""
        if self._b.core.mark_closed():
            await asyncio.gather(*(client.close() for client in self._clients.values()))

    async def __aenter__(self) -> AsyncBalancedClient:
        self._b.core.check_open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def model_info(self, model: str, version: int | str | None = None, *,
                         timeout_s: float | None = None) -> ModelInfo:
        """The model's config, from a healthy server (cached per server)."""
        return await self._failover(lambda client, deadline: client.model_info(
            model, version, timeout_s=self._b.remaining_s(deadline)), timeout_s)

    async def infer(self, model: str, inputs: Inputs, *, timeout_s: float | None = None,
                    **kwargs: Unpack[InferOptions]) -> dict[str, np.ndarray]:
        """`AsyncTritonClient.infer` on a healthy server; fails over when it is down."""
        return await self._failover(lambda client, deadline: client.infer(
            model, inputs, timeout_s=self._b.remaining_s(deadline), **kwargs), timeout_s)

    async def predict_many(self, model: str, data: bulk.Data,
                           **kwargs: Unpack[BulkOptions]) -> dict[str, np.ndarray]:
        """`AsyncTritonClient.predict_many` with every chunk balanced on its own."""
        info = await self.model_info(model, kwargs.get("version"), timeout_s=kwargs.get("timeout_s"))
        return await bulk.aconcatenate(self.predict_iter(model, data, **kwargs),
                                       bulk.no_rows(info, kwargs.get("outputs")))

    async def predict_iter(self, model: str, data: bulk.Data, *, batch_size: int | None = None,
                           in_flight: int = 4, timeout_s: float | None = None,
                           progress: bool | Callable[[int], None] = False,
                           **kwargs: Unpack[InferOptions]) -> AsyncIterator[dict[str, np.ndarray]]:
        """`AsyncTritonClient.predict_iter` with every chunk balanced on its own."""
        info = await self.model_info(model, kwargs.get("version"), timeout_s=timeout_s)
        plan = bulk.Plan.make(info, data, batch_size=batch_size, in_flight=in_flight, progress=progress)
        async for result in bulk.run_async(plan, lambda chunk: self._failover(
                lambda client, deadline: client.infer_one_request(
                    model, chunk, timeout_s=self._b.remaining_s(deadline), **kwargs), timeout_s)):
            yield result

    async def probe(self) -> None:
        """Probe the ejected servers that are due now (also done before every call)."""
        for url in self._b.pool.due_for_probe():
            ready = False
            try:
                ready = await self._clients[url].is_ready()
            finally:
                self._b.pool.probed(url, ready=ready)

    async def _failover(self, call: Callable[[AsyncTritonClient, float], Awaitable[_T]],
                        timeout_s: float | None) -> _T:
        deadline = self._b.deadline(timeout_s)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(call, deadline)
            except ClientError as error:
                pause = self._b.pause_s(error, attempt, deadline)
                if pause is None:
                    raise
                await asyncio.sleep(pause)

    async def _attempt(self, call: Callable[[AsyncTritonClient, float], Awaitable[_T]],
                       deadline: float) -> _T:
        await self.probe()
        url = self._b.pick()
        self._b.pool.started(url)
        try:
            result = await call(self._clients[url], deadline)
        except BaseException as error:
            self._b.pool.finished(url, error)
            raise
        self._b.pool.finished(url, None)
        return result

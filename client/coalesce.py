"""Client-side coalescing: concurrent single calls of a dynamically batched model share one request.

    client = AsyncTritonClient(url, ClientOptions(coalesce=True))
    outs = await asyncio.gather(*(client.infer("digits_mlp", row) for row in rows))  # few gRPC calls

Calls that become ready in the same event-loop turn, for the same model, version, outputs, headers
and input signature (dtype and shape without the batch axis), are concatenated along the batch axis
(at most `max_batch_size` rows per request), sent as one request, and their outputs are split back
in order. Only models whose config enables dynamic batching take part: their owner already lets the
server merge requests into one execution, and Python's gRPC costs ~0.3 ms of CPU per call, which
one generator core pays per request otherwise.

A merged request that fails is never retried merged: each of its calls is then sent by itself,
so every caller gets its own typed error, deadline and retries, exactly as without coalescing; a
call whose own deadline has passed when the merged request times out gets that
InferenceTimeoutError (DEADLINE_EXCEEDED) at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import replace

import numpy as np
from tritonstack.client.core import Call

from tritonstack.errors import ClientError, InferenceTimeoutError, InternalServerError

__all__ = ["Coalescer", "eligible", "held", "merge", "split"]

_LOGGER = logging.getLogger(__name__)
Result = dict[str, np.ndarray]
#: A caller's pending call and the future its merged result (or None: "send it alone") goes to.
_Member = tuple[Call, "asyncio.Future[Result | None]"]


def eligible(call: Call) -> bool:
    """True when `call` may share a request: a dynamically batched model, no request id, arrays with
    at least one row and fewer than max_batch_size (a call of 0 rows, or of a full batch, goes alone)."""
    info = call.info
    return (info.batched and info.dynamic_batching and not call.request_id
            and all(isinstance(a, np.ndarray) and a.ndim >= 1 for a in call.arrays.values())
            and bool(call.arrays) and 0 < _rows(call) < info.max_batch_size)


def held(call: Call) -> Call:
    """`call` with copies of its arrays: a merged request reads them a loop turn later, and a caller
    may reuse its buffer once its call has started (the copy of a few rows costs ~1 us)."""
    return replace(call, arrays={name: array.copy() for name, array in call.arrays.items()})


def _signature(call: Call) -> Hashable:
    headers = tuple(sorted(call.headers.items())) if call.headers else ()
    arrays = tuple((name, a.dtype.str, a.shape[1:]) for name, a in call.arrays.items())
    return (call.info.name, call.version, call.outputs, headers, arrays)


def _rows(call: Call) -> int:
    return int(next(iter(call.arrays.values())).shape[0])


def merge(calls: Sequence[Call]) -> Call:
    """One call carrying the rows of `calls` in order; its deadline is the earliest of theirs."""
    first = calls[0]
    arrays = {name: np.concatenate([c.arrays[name] for c in calls]) for name in first.arrays}
    return Call(info=first.info, arrays=arrays, outputs=first.outputs, version=first.version,
                deadline=min(c.deadline for c in calls), headers=first.headers)


def split(result: Result, rows: Sequence[int], model: str) -> list[Result]:
    """The per-call slices of a merged result (every output has the batch axis first)."""
    total = sum(rows)
    for name, array in result.items():
        if array.ndim == 0 or array.shape[0] != total:
            raise InternalServerError(f"model {model!r}: output {name!r} has shape {array.shape}; "
                                      f"a merged request of {total} rows needs {total} on the first axis")
    bounds = np.cumsum([0, *rows])
    return [{name: array[lo:hi].copy() for name, array in result.items()}  # not views of the merged buffer
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


class Coalescer:
    """Collects eligible calls during one event-loop turn and sends each group as one request.

    `send(call)` is the transport's single-request path (typed errors, no retries).
    """

    def __init__(self, send: Callable[[Call], Awaitable[Result]]) -> None:
        self._send = send
        self._groups: dict[Hashable, list[_Member]] = {}
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def infer(self, call: Call) -> Result | None:
        """The result of `call` from a merged request, or None when it is to be sent alone."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result | None] = loop.create_future()
        self._groups.setdefault(_signature(call), []).append((call, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        groups, self._groups = self._groups, {}
        for members in groups.values():
            for part in _parts(members):
                if len(part) == 1:
                    _settle(part[0][1], None)
                    continue
                task = asyncio.ensure_future(self._merged(part))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _merged(self, part: list[_Member]) -> None:
        calls = [call for call, _ in part]
        results: Sequence[Result | None]
        try:
            merged = await self._send(merge(calls))
            results = split(merged, [_rows(c) for c in calls], calls[0].info.name)
        except InferenceTimeoutError as error:  # the earliest deadline passed; later ones go alone
            now = time.monotonic()
            for call, future in part:
                if call.deadline <= now and not future.done():
                    future.set_exception(InferenceTimeoutError(str(error)))
            results = [None] * len(calls)
        except ClientError as error:  # each call goes alone: its own error, deadline and retries
            _LOGGER.debug("merged request of %d calls failed (%s); sending each alone", len(calls), error)
            results = [None] * len(calls)
        except Exception as error:  # noqa: BLE001 - e.g. the client used from another event loop:
            _LOGGER.debug("merged request failed (%r); sending each call alone", error)  # each call
            results = [None] * len(calls)  # then meets that error itself, as without coalescing
        except BaseException:
            for _, future in part:
                _settle(future, None)
            raise
        for (_, future), result in zip(part, results, strict=True):
            _settle(future, result)

    async def close(self) -> None:
        """Wait for merged requests still in flight (their callers get their results)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _parts(members: list[_Member]) -> list[list[_Member]]:
    """Members in order, cut so that no part holds more than the model's max_batch_size rows."""
    limit = members[0][0].info.max_batch_size
    parts: list[list[_Member]] = [[]]
    rows = 0
    for member in members:
        size = _rows(member[0])
        if parts[-1] and rows + size > limit:
            parts.append([])
            rows = 0
        parts[-1].append(member)
        rows += size
    return parts


def _settle(future: asyncio.Future[Result | None], result: Result | None) -> None:
    if not future.done():  # the caller may have been cancelled meanwhile
        future.set_result(result)

"""Bulk prediction: chunk rows to the model's batch limit, keep N chunks in flight, keep order.

    out = client.predict_many("digits_mlp", x, in_flight=4, progress=True)   # dict of arrays
    for chunk_out in client.predict_iter("digits_mlp", rows_from_disk()):    # bounded memory
        sink.write(chunk_out["probabilities"])

`Plan` turns the caller's data into chunks (pure); `run_threaded` and `run_async` send them
through a client's `infer` (so validation, deadlines and retries apply per chunk) and yield the
results in input order. At most `in_flight` chunks exist at a time besides the one being built.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
from tritonstack.client.core import wanted_outputs
from tritonstack.client.model import ModelInfo
from tritonstack.client.validation import as_arrays

from tritonstack.errors import ClientClosedError, ClientError, ConfigError, InvalidInputError

__all__ = ["MAX_IN_FLIGHT", "AsyncIteration", "BulkOptions", "Data", "Iteration", "Plan", "aconcatenate",
           "concatenate", "no_rows", "run_async", "run_threaded"]

Row = np.ndarray | Mapping[str, np.ndarray]
#: Batch-first array(s), or an iterable of single rows (arrays or dicts without the batch axis).
Data = np.ndarray | Mapping[str, np.ndarray] | Iterable[Row]
Chunk = dict[str, np.ndarray]
#: chunks in flight at most: each is a thread (sync client) and, with shared memory, a set of regions
MAX_IN_FLIGHT = 256


class BulkOptions(TypedDict, total=False):
    """Keyword arguments of `predict_many` / `predict_iter` (see `TritonClient.predict_iter`)."""

    batch_size: int | None
    in_flight: int
    outputs: Sequence[str] | None
    version: int | str | None
    request_id: str
    headers: Mapping[str, str] | None
    timeout_s: float | None
    progress: bool | Callable[[int], None]
    shared_memory: bool


class _Progress:
    """Rows done so far, shown with tqdm (imported only when asked for) or passed to a callback."""

    def __init__(self, progress: bool | Callable[[int], None], total: int | None) -> None:
        self._callback: Callable[[int], None] | None = None
        self._bar: Any = None
        if callable(progress):
            self._callback = progress
        elif progress:
            try:
                from tqdm.auto import tqdm
            except ImportError as exc:
                raise ConfigError("progress=True needs tqdm; `pip install tqdm` or pass a callback") from exc
            self._bar = tqdm(total=total, unit="rows")

    def update(self, rows: int) -> None:
        if self._callback is not None:
            self._callback(rows)
        if self._bar is not None:
            self._bar.update(rows)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@dataclass
class Plan:
    """Chunks to send, how many may be in flight, and where progress goes."""

    chunks: Iterator[Chunk]
    total_rows: int | None
    in_flight: int
    progress: bool | Callable[[int], None] = False
    batch_rows: int = 0  # rows per chunk at most

    @classmethod
    def make(cls, info: ModelInfo, data: Data, *, batch_size: int | None, in_flight: int,
             progress: bool | Callable[[int], None] = False) -> Plan:
        """Check the limits and describe how `data` is cut into chunks for `info`."""
        if not info.batched:
            raise ConfigError(f"model {info.name!r} does not batch (max_batch_size 0); "
                              "call infer() per request")
        rows = info.max_batch_size if batch_size is None else batch_size
        whole = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (rows, in_flight))
        if not whole or not 1 <= rows <= info.max_batch_size or not 1 <= in_flight <= MAX_IN_FLIGHT:
            raise ConfigError(f"batch_size={batch_size!r}, in_flight={in_flight!r}; need whole numbers, "
                              f"1 <= batch_size <= {info.max_batch_size} (model {info.name!r}) and "
                              f"1 <= in_flight <= {MAX_IN_FLIGHT}")
        if isinstance(data, (np.ndarray, Mapping)):
            arrays = _as_dict(info, data)
            total = _common_length(info, arrays)
            return cls(_slices(arrays, total, rows), total, in_flight, progress, rows)
        return cls(_stacked(info, data, rows), None, in_flight, progress, rows)


def _as_dict(info: ModelInfo, data: Row) -> dict[str, np.ndarray]:
    if isinstance(data, np.ndarray):
        if len(info.inputs) != 1:
            raise InvalidInputError(f"model {info.name!r} has inputs {sorted(info.inputs)}; "
                                    "pass a dict of arrays by input name")
        return {next(iter(info.inputs)): data}
    return as_arrays(info, data)  # plain lists/rows: the client's one dtype rule (client/plain.py)


def _common_length(info: ModelInfo, arrays: dict[str, np.ndarray]) -> int:
    lengths = {name: (len(a) if np.ndim(a) else 0) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidInputError(f"inputs of model {info.name!r} have different row counts {lengths}; "
                                "every input needs the same number of rows")
    return next(iter(lengths.values()), 0)


def _slices(arrays: dict[str, np.ndarray], total: int, rows: int) -> Iterator[Chunk]:
    for start in range(0, total, rows):
        yield {name: array[start:start + rows] for name, array in arrays.items()}


def _stacked(info: ModelInfo, samples: Iterable[Row], rows: int) -> Iterator[Chunk]:
    buffer: list[dict[str, np.ndarray]] = []
    for sample in samples:
        buffer.append(_as_dict(info, sample))
        if len(buffer) == rows:
            yield _stack(buffer)
            buffer = []
    if buffer:
        yield _stack(buffer)


def _stack(buffer: list[dict[str, np.ndarray]]) -> Chunk:
    out = {}
    for name in buffer[0]:
        shapes = {np.shape(row[name]) for row in buffer}
        if len(shapes) > 1:
            raise InvalidInputError(f"rows of input {name!r} have different shapes {sorted(shapes)}; every "
                                    "row of a predict_many call needs the same shape")
        out[name] = np.stack([row[name] for row in buffer])
    return out


def _rows(chunk: Chunk) -> int:
    return len(next(iter(chunk.values())))


def _located(error: ClientError, start: int, rows: int) -> ClientError:
    """The same error class, with the rows the failed chunk held."""
    return type(error)(f"rows {start}-{start + rows - 1}: {error}")


_CUT = ("the client was closed before this predict_iter finished: the rows after the last chunk it "
        "returned were not predicted")


class Iteration(Iterator[Chunk]):
    """A `predict_iter` that its client may end early (close()): the next chunk asked for then raises
    ClientClosedError, instead of the iteration ending as if every row were done."""

    def __init__(self, chunks: Generator[Chunk, None, None]) -> None:
        self._chunks, self._cut = chunks, False

    def __next__(self) -> Chunk:
        if self._cut:
            raise ClientClosedError(_CUT)
        return next(self._chunks)

    def close(self) -> None:
        """Stop: no chunk left in flight, everything released."""
        self._chunks.close()

    def cut(self) -> None:
        """`close`, by the client: the next chunk asked for raises ClientClosedError."""
        self._cut = True
        self._chunks.close()


class AsyncIteration(AsyncIterator[Chunk]):
    """`Iteration` for the asyncio client."""

    def __init__(self, chunks: AsyncGenerator[Chunk, None]) -> None:
        self._chunks, self._cut = chunks, False

    async def __anext__(self) -> Chunk:
        if self._cut:
            raise ClientClosedError(_CUT)
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        """Stop: no chunk left in flight, everything released."""
        await self._chunks.aclose()

    async def cut(self) -> None:
        """`aclose`, by the client: the next chunk asked for raises ClientClosedError."""
        self._cut = True
        await self._chunks.aclose()


def run_threaded(plan: Plan, send: Callable[[Chunk], Chunk]) -> Iterator[Chunk]:
    """Send chunks from a thread pool of `plan.in_flight` workers; yield results in order."""
    progress = _Progress(plan.progress, plan.total_rows)
    pool = ThreadPoolExecutor(plan.in_flight, thread_name_prefix="tritonstack-predict")
    pending: deque[tuple[Future[Chunk], int, int]] = deque()
    try:
        start = 0
        for chunk in plan.chunks:
            pending.append((pool.submit(send, chunk), start, _rows(chunk)))
            start += _rows(chunk)
            if len(pending) >= plan.in_flight:
                yield _collect(pending.popleft(), progress)
        while pending:
            yield _collect(pending.popleft(), progress)
    finally:
        for future, _, _ in pending:
            future.cancel()
        pool.shutdown(wait=True)
        progress.close()


def _collect(item: tuple[Future[Chunk], int, int], progress: _Progress) -> Chunk:
    future, start, rows = item
    try:
        result = future.result()
    except ClientError as error:
        raise _located(error, start, rows) from error
    progress.update(rows)
    return result


async def run_async(plan: Plan, send: Callable[[Chunk], Awaitable[Chunk]]) -> AsyncIterator[Chunk]:
    """Send chunks as asyncio tasks, at most `plan.in_flight` at a time; yield results in order."""
    progress = _Progress(plan.progress, plan.total_rows)
    pending: deque[tuple[asyncio.Future[Chunk], int, int]] = deque()
    try:
        start = 0
        for chunk in plan.chunks:
            pending.append((asyncio.ensure_future(send(chunk)), start, _rows(chunk)))
            start += _rows(chunk)
            if len(pending) >= plan.in_flight:
                yield await _acollect(pending.popleft(), progress)
        while pending:
            yield await _acollect(pending.popleft(), progress)
    finally:
        for task, _, _ in pending:
            task.cancel()
        await asyncio.gather(*(task for task, _, _ in pending), return_exceptions=True)
        progress.close()


async def _acollect(item: tuple[asyncio.Future[Chunk], int, int], progress: _Progress) -> Chunk:
    task, start, rows = item
    try:
        result = await task
    except ClientError as error:
        raise _located(error, start, rows) from error
    progress.update(rows)
    return result


def concatenate(results: Iterable[Chunk], empty: Chunk | None = None) -> Chunk:
    """Join chunk results along the batch axis; with no chunks (no rows), `empty` (see `no_rows`),
    else an empty dict."""
    parts: dict[str, list[np.ndarray]] = {}
    for result in results:
        for name, array in result.items():
            parts.setdefault(name, []).append(array)
    if not parts and empty is not None:
        return empty
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}


async def aconcatenate(results: AsyncIterator[Chunk], empty: Chunk | None = None) -> Chunk:
    """`concatenate` for the asyncio client's chunk stream."""
    return concatenate([result async for result in results], empty)


def no_rows(info: ModelInfo, outputs: Sequence[str] | None) -> Chunk:
    """The result of predicting zero rows: each wanted output with 0 rows, its dtype and its other
    dims as the model declares them (a variable dim, -1, is 0)."""
    return {name: np.empty((0, *(max(d, 0) for d in info.outputs[name].dims)), info.outputs[name].dtype)
            for name in wanted_outputs(info, outputs)}

"""One asyncio load generator for every target: closed loop (N in flight) or open loop (a schedule).

    recorder = Recorder()
    run = asyncio.run(closed_loop(send, concurrency=32, duration_s=5, recorder=recorder))
    run = asyncio.run(open_loop(send, offsets=arrival_offsets(rate_rps=500, duration_s=5),
                                max_in_flight=256, recorder=recorder))

`send(i)` is any coroutine function doing request number i (raising on failure): Triton over
gRPC, our async client, or plain HTTP to a baseline server. Because the scheduling, timing and
statistics are the same code for both sides of a comparison, a ratio measures the servers, not
two different load generators. Every loop is bounded in time *and* in request count.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from tritonstack.loadtest.stats import Recorder

from tritonstack.errors import ConfigError

__all__ = ["Run", "Send", "closed_loop", "error_kind", "open_loop"]

Send = Callable[[int], Awaitable[object]]
StopCheck = Callable[[], bool]
#: given the seconds from a successful request's scheduled instant to its answer, the failure to count
#: instead (an answer past the deadline: stats.late_answer), or None
Late = Callable[[float], "Exception | None"]
_POLL_S = 0.1  # how often a waiting loop looks at `should_stop`
#: After `should_stop()`, requests in flight get this long to finish, then are cancelled (not recorded):
#: a stop must not wait out their deadlines on a hung server.
STOP_GRACE_S = 1.0


@dataclass(frozen=True)
class Run:
    """When the measured part of a run began and ended (monotonic seconds)."""

    origin_s: float
    end_s: float
    concurrency: int
    unsent: int = 0  # scheduled requests never sent because the send window (`send_for_s`) ran out

    @property
    def duration_s(self) -> float:
        """Length of the measured part."""
        return max(self.end_s - self.origin_s, 1e-9)


class _Completed:
    """A recorder that keeps the requests that complete inside [origin_s, stop_s], whenever sent, and
    every failure after origin_s (a failure that comes after the window is still reported)."""

    def __init__(self, recorder: Recorder, origin_s: float, stop_s: float) -> None:
        self.recorder, self.origin_s, self.stop_s = recorder, origin_s, stop_s

    def add(self, *, scheduled_s: float, start_s: float, end_s: float, ok: bool, error: str = "") -> None:
        if self.origin_s <= end_s and (end_s <= self.stop_s or not ok):
            self.recorder.add(scheduled_s=scheduled_s, start_s=start_s, end_s=end_s, ok=ok, error=error)

    def note_error(self, kind: str, exc: BaseException) -> None:
        self.recorder.note_error(kind, exc)


def error_kind(exc: BaseException) -> str:
    """A short, stable label for a failed request (the exception class name)."""
    return type(exc).__name__


async def _timed(send: Send, i: int, scheduled_s: float, recorder: Recorder | _Completed | None,
                 late: Late | None) -> None:
    start = time.perf_counter()
    try:
        await send(i)
    except Exception as exc:  # noqa: BLE001 - every failure is a sample, never lost
        task = asyncio.current_task()
        if task is not None and task.cancelling():  # e.g. asyncio.run's Ctrl-C: pass it on
            raise asyncio.CancelledError from exc
        if recorder is not None:
            recorder.add(
                scheduled_s=scheduled_s,
                start_s=start,
                end_s=time.perf_counter(),
                ok=False,
                error=error_kind(exc),
            )
        return
    end = time.perf_counter()
    if recorder is None:  # warm-up
        return
    failure = late(end - scheduled_s) if late is not None else None
    if failure is not None:
        recorder.note_error(type(failure).__name__, failure)
    recorder.add(scheduled_s=scheduled_s, start_s=start, end_s=end, ok=failure is None,
                 error=error_kind(failure) if failure is not None else "")


def _never() -> bool:
    return False


async def _until(instant_s: float, *, spin_s: float = 0.002, should_stop: StopCheck = _never) -> None:
    """Wait until `instant_s` (perf_counter): sleep, then yield to the loop for the last `spin_s`;
    return early once `should_stop()` (checked at least every `_POLL_S`).

    The event loop's timers have ~1 ms granularity (epoll timeouts are in ms), so sleeping to the
    exact instant would send requests up to a millisecond late and charge that to the server.
    """
    while (delay := instant_s - time.perf_counter()) > 0 and not should_stop():
        await asyncio.sleep(min(delay - spin_s, _POLL_S) if delay > spin_s else 0)


async def _settle(tasks: list[asyncio.Future[None]], *, should_stop: StopCheck,
                  timeout_s: float | None = None) -> None:
    """Wait for `tasks`; once `should_stop()` (or after `timeout_s`), give them STOP_GRACE_S more, then
    cancel what is left. A task's own exception is raised."""
    pending, deadline = set(tasks), None if timeout_s is None else time.perf_counter() + timeout_s
    try:
        while pending and not should_stop() and (deadline is None or time.perf_counter() < deadline):
            _, pending = await asyncio.wait(pending, timeout=_POLL_S)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=STOP_GRACE_S)
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    for task in tasks:
        if not task.cancelled():
            task.result()


async def closed_loop(
    send: Send,
    *,
    concurrency: int,
    duration_s: float,
    recorder: Recorder,
    warmup_s: float = 0.0,
    max_requests: int = 2_000_000,
    should_stop: StopCheck = _never,
    late: Late | None = None,
    completed_in_window: bool = False,
) -> Run:
    """Keep `concurrency` requests in flight for `warmup_s + duration_s`; record after warm-up.
    Once `should_stop()` is true no new request starts; those in flight get STOP_GRACE_S to finish.
    `late`: a success it names a failure (an answer past the deadline) is recorded as that failure.

    Which requests are recorded: by default those sent after the warm-up, and the run ends when the
    last of them is back (nothing sent in the window goes unreported: the load-test report). With
    `completed_in_window`, those that complete between the end of the warm-up and `duration_s` later,
    whenever they were sent, and the run ends there: a steady state's throughput, as perf_analyzer
    measures it (failures are recorded whenever they come after the warm-up: none goes unreported).
    The default undercounts throughput by about latency / duration: the server spends the window's
    start on requests sent during the warm-up, which are not counted, and the drain is
    counted as time (ResNet-18 at concurrency 16, ~0.5 s latency over 5 s: ~5% low)."""
    if concurrency < 1 or duration_s <= 0:
        raise ConfigError(f"concurrency={concurrency} must be >= 1 and duration_s={duration_s} > 0")
    begin = time.perf_counter()
    origin, stop = begin + warmup_s, begin + warmup_s + duration_s
    counter = iter(range(max_requests))
    completed = _Completed(recorder, origin, stop) if completed_in_window else None

    async def worker() -> None:
        for i in counter:
            now = time.perf_counter()
            if now >= stop or should_stop():
                return
            await _timed(send, i, now, completed or (recorder if now >= origin else None), late)

    await _settle([asyncio.ensure_future(worker()) for _ in range(concurrency)], should_stop=should_stop)
    end = time.perf_counter()
    return Run(origin_s=origin, end_s=min(end, stop) if completed else end, concurrency=concurrency)


async def open_loop(
    send: Send,
    *,
    offsets: Sequence[float],
    recorder: Recorder,
    max_in_flight: int = 1024,
    drain_timeout_s: float = 30.0,
    should_stop: StopCheck = _never,
    send_for_s: float | None = None,
    late: Late | None = None,
) -> Run:
    """Send request i at `start + offsets[i]`; latency counts from that scheduled instant.

    When `max_in_flight` requests are outstanding the next one waits for a slot, and the wait is
    part of its latency (the schedule does not move). Once `should_stop()` is true nothing more is
    sent; those in flight get STOP_GRACE_S to finish (`drain_timeout_s` without a stop).
    `send_for_s`: nothing is sent later than this after the start, however far behind the schedule
    is; the scheduled requests left over are counted in `Run.unsent`. The run lasts at least that
    long (a sparse schedule's last arrival may come well before its end). `late` as in `closed_loop`,
    from the scheduled instant: a request sent late has less of its deadline left.
    """
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    origin = time.perf_counter()
    cutoff = float("inf") if send_for_s is None else origin + send_for_s
    sent = 0

    async def one(i: int, scheduled: float) -> None:
        try:
            await _timed(send, i, scheduled, recorder, late)
        finally:
            slots.release()

    def past_cutoff() -> bool:
        return should_stop() or time.perf_counter() >= cutoff

    for i, offset in enumerate(offsets):
        scheduled = origin + float(offset)
        if scheduled >= cutoff:
            break
        await _until(scheduled, should_stop=should_stop)
        if past_cutoff() or not await _acquire(slots, past_cutoff):
            break
        task = asyncio.create_task(one(i, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
    if send_for_s is not None:  # the schedule spans send_for_s, even when its last arrival comes earlier
        await _until(cutoff, should_stop=should_stop)
    if tasks:
        await _settle(list(tasks), should_stop=should_stop, timeout_s=drain_timeout_s)
    unsent = 0 if should_stop() else len(offsets) - sent
    return Run(origin_s=origin, end_s=time.perf_counter(), concurrency=max_in_flight, unsent=unsent)


async def _acquire(slots: asyncio.Semaphore, give_up: StopCheck) -> bool:
    """Take a slot; False (no slot taken) once `give_up()` turns true first (checked every `_POLL_S`)."""
    while not give_up():
        try:
            await asyncio.wait_for(slots.acquire(), timeout=_POLL_S)
        except TimeoutError:
            continue
        return True
    return False

"""Run a steady or open-loop Scenario with the asyncio generator (no Locust, no gevent).

    result = run_asyncio(Scenario(kind=Kind.STEADY, users=32, duration_s=10), "127.0.0.1:8001")

Faster than Locust per request (one event loop, tritonclient's aio channel): the engine to use
when the load generator must not be the bottleneck, e.g. next to perf_analyzer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tritonstack.loadtest.generator import StopCheck, closed_loop, open_loop
from tritonstack.loadtest.inputs import sent_shapes
from tritonstack.loadtest.preflight import preflight
from tritonstack.loadtest.report import RunResult, add_generator_cpu
from tritonstack.loadtest.scenario import Kind, Scenario
from tritonstack.loadtest.schedule import arrival_offsets
from tritonstack.loadtest.server_stats import ServerStatsPoller
from tritonstack.loadtest.stats import Recorder, late_answer
from tritonstack.loadtest.targets import triton_raw

from tritonstack.errors import LoadTestError

__all__ = ["run_asyncio"]


def _noting_errors(send: Any, recorder: Recorder, model: str) -> Any:
    """`send`, with a failure turned into our typed error (by gRPC status, as the Locust users do) and
    its status and first message kept for the report's error breakdown."""
    from tritonstack.client.errors import error_for_status

    async def noted(i: int) -> object:
        try:
            return await send(i)
        except Exception as exc:
            code, details = getattr(exc, "code", None), getattr(exc, "details", None)
            text = (details() if callable(details) else "") or ""
            if not callable(code):
                recorder.note_error(type(exc).__name__, exc)
                raise
            typed = error_for_status(code().name, text, model=model)
            typed.__cause__ = exc  # the status is read from it
            recorder.note_error(type(typed).__name__, typed)
            raise typed from exc

    return noted


async def _run(
    scenario: Scenario, url: str, rows: list[Any], recorder: Recorder, should_stop: StopCheck
) -> Any:
    async with triton_raw(
        url, scenario.model, rows, timeout_s=scenario.timeout_s, version=scenario.version
    ) as raw:
        send = _noting_errors(raw, recorder, scenario.model)

        def late(elapsed_s: float) -> Exception | None:  # an answer past --timeout-s fails
            return late_answer(elapsed_s, scenario.timeout_s, scenario.model)

        if scenario.kind is Kind.STEADY:
            return await closed_loop(
                send,
                concurrency=scenario.users,
                duration_s=scenario.duration_s,
                recorder=recorder,
                should_stop=should_stop,
                late=late,
            )
        offsets = arrival_offsets(
            rate_rps=scenario.rate_rps, duration_s=scenario.duration_s, process=scenario.arrival
        )
        return await open_loop(
            send,
            offsets=offsets,
            recorder=recorder,
            max_in_flight=scenario.max_in_flight * scenario.users,
            should_stop=should_stop,
            send_for_s=scenario.duration_s,
            late=late,
        )


def run_asyncio(
    scenario: Scenario, url: str, *, name: str | None = None, should_stop: StopCheck | None = None
) -> RunResult:
    """Run a steady (closed loop) or open-loop scenario; ramp and spike need Locust.

    `should_stop`: polled while running; once true the load ends early and the result covers what
    was measured until then (e.g. `StopOnSignals().is_set` for Ctrl-C)."""
    if scenario.kind not in (Kind.STEADY, Kind.OPEN):
        raise LoadTestError(f"scenario {scenario.kind.value!r} needs Locust; use --engine locust")
    _, rows = preflight(scenario, url)
    recorder = Recorder()
    with ServerStatsPoller(url, scenario.model, interval_s=max(scenario.duration_s / 30, 0.25)) as poller:
        wall_s, cpu_s, unix_s = time.perf_counter(), time.process_time(), time.time()  # the generator's CPU
        run = asyncio.run(_run(scenario, url, rows, recorder, should_stop or (lambda: False)))
        wall_s, cpu_s = time.perf_counter() - wall_s, time.process_time() - cpu_s
    result = RunResult.build(
        name=name or scenario.kind.value,
        scenario={
            **scenario.describe(),
            "url": url,
            "runner": "asyncio generator",
            "inputs": scenario.inputs_path or "random",
            "input_shapes": sent_shapes(rows),
        },
        samples=recorder.frame(),
        origin_s=run.origin_s,
        duration_s=run.duration_s,
        server=poller,
    )
    add_generator_cpu(result.summary, cpu_s / wall_s, processes=1, window_unix_s=(unix_s, unix_s + wall_s))
    if scenario.kind is Kind.STEADY:  # the closed loop's users over time: constant
        result.load = [{"t_s": 0.0, "users": scenario.users},
                       {"t_s": round(run.duration_s, 3), "users": scenario.users}]
    _note_unsent(result, getattr(run, "unsent", 0), scenario.duration_s)
    return result


def _note_unsent(result: RunResult, unsent: int, duration_s: float) -> None:
    """Say how many scheduled requests the open loop never sent because --duration ran out first."""
    if not unsent:
        return
    result.summary["unsent"] = int(unsent)
    result.notes.append(
        f"{unsent} scheduled requests were never sent: --duration {duration_s:g} s ended before their turn "
        "came (see why in the other notes); the offered load was not delivered"
    )

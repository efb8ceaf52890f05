"""Sweep max_batch_size, max_queue_delay and instance count; keep a config only if it beats the current one.

    outcome = tune(TuneOptions(repository=Path("model_repository"), model="digits_mlp", p99_ms=5.0))
    outcome.baseline, outcome.points, outcome.skipped, outcome.best, outcome.written

The current config is measured first, as the baseline, on an embedded server that serves only this
model (`tune_server`). Each candidate is the loaded config with the three fields changed, applied
with Triton's load-with-config override (no file is touched while sweeping) and measured closed-loop
at `concurrency` with the asyncio generator. A candidate that fails to load is skipped with Triton's
reason and the current config is restored (the server restarted if it died). A winner must fit the
p99 budget without errors and, when the current config fits too, have `min_gain` more throughput;
it is then measured again next to the baseline, interleaved, and must win again. Only then is it
written to `<model>/configs/tuned.pbtxt` (Triton's custom-config folder; `config.pbtxt` is left
alone unless `apply=True`, which keeps the old one as `configs/before_tune_<time>.pbtxt`). When
nothing wins, the repository is left exactly as it was.

What is sent is what `tritonstack loadtest` would send (`preflight`): random rows with dynamic (-1)
dims of length 1, unless `shapes` (`--shape NAME:d1,d2`) sizes them or `inputs_path` (`--inputs
samples.npz`) gives real samples; every point (the baseline too) records it under "sent", and the
baseline also carries the current config's max_batch_size, queue delay and instance count.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonstack.loadtest.generator import closed_loop
from tritonstack.loadtest.inputs import sent_shapes
from tritonstack.loadtest.pinning import CoreSplit
from tritonstack.loadtest.stats import Recorder, summarize
from tritonstack.loadtest.targets import triton_raw
from tritonstack.loadtest.tune_server import TuneServer, model_folder

from tritonstack.errors import ConfigError, LoadTestError

__all__ = [
    "Candidate",
    "TuneOptions",
    "TuneOutcome",
    "beats",
    "candidates",
    "choose",
    "tune",
    "with_candidate",
]


DEFAULT_BATCH_SIZES = (8, 32, 128)
#: What a grid value may be (inclusive): Triton's int32 batch size, a queue delay of at most 10 s,
#: at most 16 instances (each one a copy of the model; more never helps on a CPU host).
GRID_RANGES = {"max_batch": (1, 2**31 - 1), "delay_us": (0, 10_000_000), "instances": (1, 16)}


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One point of the sweep."""

    max_batch_size: int
    max_queue_delay_us: int
    instances: int

    def label(self) -> str:
        """Short text form."""
        return f"max_batch={self.max_batch_size} delay={self.max_queue_delay_us}us instances={self.instances}"


@dataclass(frozen=True, kw_only=True)
class TuneOptions:
    """The model, the budget, the grid and how long to measure each point."""

    repository: Path
    model: str
    p99_ms: float
    max_batch_sizes: tuple[int, ...] | None = None  # None: DEFAULT_BATCH_SIZES up to the model's limit
    max_queue_delays_us: tuple[int, ...] = (0, 500, 2000)
    instance_counts: tuple[int, ...] = (1, 2)
    concurrency: int = 32
    duration_s: float = 2.0
    warmup_s: float = 0.5
    apply: bool = False
    min_gain: float = 0.05  # a winner needs this much more throughput than the current config
    split: CoreSplit = field(default_factory=CoreSplit.default)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # dims for -1 axes (--shape)
    inputs_path: str = ""  # an .npz of real samples (--inputs); "": random rows
    #: Polled while sweeping (e.g. `StopOnSignals().is_set`): once true the sweep ends, nothing is written.
    should_stop: Callable[[], bool] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        finite = (("--p99-ms", self.p99_ms), ("--duration", self.duration_s), ("--min-gain", self.min_gain))
        for flag, value in finite:
            if not math.isfinite(value):
                raise ConfigError(f"{flag} {value}: use a finite number")
        if self.p99_ms <= 0 or self.concurrency < 1 or self.duration_s <= 0:
            raise ConfigError(
                f"p99_ms={self.p99_ms}, concurrency={self.concurrency} and "
                f"duration_s={self.duration_s} must be positive"
            )
        for flag, values, (low, high) in (
            ("--max-batch", self.max_batch_sizes or (), GRID_RANGES["max_batch"]),
            ("--delay-us", self.max_queue_delays_us, GRID_RANGES["delay_us"]),
            ("--instances", self.instance_counts, GRID_RANGES["instances"]),
        ):
            bad = [v for v in values if not low <= v <= high]
            if bad:
                raise ConfigError(f"{flag} {bad[0]} is out of range; use values from {low} to {high}")
        if not 0 <= self.min_gain < 1:
            raise ConfigError(f"min_gain={self.min_gain}: use a fraction in [0, 1), e.g. 0.05 for 5 %")
        grid = len(self.max_batch_sizes or DEFAULT_BATCH_SIZES) * len(self.max_queue_delays_us) * len(
            self.instance_counts
        )
        if not 1 <= grid <= 64:
            raise ConfigError(f"the grid has {grid} points; use 1-64 (fewer values per axis)")


@dataclass
class TuneOutcome:
    """The baseline, every point measured or skipped, the winner (None: keep the current config),
    the second measurement that confirmed it, why, and the files written."""

    model: str
    p99_ms: float
    baseline: dict[str, Any]
    points: list[dict[str, Any]]
    best: dict[str, Any] | None
    skipped: list[dict[str, Any]] = field(default_factory=list)
    confirmation: dict[str, Any] | None = None
    decision: str = ""
    server_restarts: int = 0
    inputs: dict[str, Any] = field(default_factory=dict)  # what every point sent, and from what
    written: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "model": self.model,
            "p99_budget_ms": self.p99_ms,
            "baseline": self.baseline,
            "points": self.points,
            "skipped": self.skipped,
            "best": self.best,
            "confirmation": self.confirmation,
            "decision": self.decision,
            "server_restarts": self.server_restarts,
            "inputs": self.inputs,
            "written": self.written,
            "interrupted": self.interrupted,
        }


def candidates(options: TuneOptions, model_max_batch: int) -> list[Candidate]:
    """The grid. Batch sizes given above what the model was built for: ConfigError; the default
    sizes are cut to it instead."""
    if options.max_batch_sizes is None:
        sizes = [b for b in DEFAULT_BATCH_SIZES if b <= model_max_batch] or [model_max_batch]
    else:
        sizes = list(options.max_batch_sizes)
        over = [b for b in sizes if b > model_max_batch]
        if over:
            raise ConfigError(
                f"--max-batch {over[0]} is above the max_batch_size {model_max_batch} that model "
                f"{options.model!r} was built for; use values from 1 to {model_max_batch}"
            )
    return [
        Candidate(max_batch_size=b, max_queue_delay_us=d, instances=i)
        for b, d, i in itertools.product(sizes, options.max_queue_delays_us, options.instance_counts)
    ]


def with_candidate(config: Any, candidate: Candidate) -> Any:
    """A copy of a ModelConfig with the candidate's batching and instance settings."""
    new = type(config)()
    new.CopyFrom(config)
    new.max_batch_size = candidate.max_batch_size
    new.dynamic_batching.max_queue_delay_microseconds = candidate.max_queue_delay_us
    if not new.instance_group:
        new.instance_group.add()
    for group in new.instance_group:
        group.count = candidate.instances
    preferred = [b for b in new.dynamic_batching.preferred_batch_size if b <= candidate.max_batch_size]
    del new.dynamic_batching.preferred_batch_size[:]  # Triton fills in max_batch_size; keep what fits
    new.dynamic_batching.preferred_batch_size.extend(preferred)
    return new


def fits(point: dict[str, Any] | None, p99_ms: float) -> bool:
    """Measured without errors and with p99 within the budget."""
    return (
        bool(point)
        and point.get("errors") == 0
        and point.get("p99_ms") is not None
        and point["p99_ms"] <= p99_ms
    )


def beats(
    point: dict[str, Any], baseline: dict[str, Any] | None, p99_ms: float, min_gain: float = 0.0
) -> bool:
    """True when `point` fits the budget and is better than `baseline` on the target: the baseline
    does not fit, or `point` has at least `min_gain` more throughput."""
    if not fits(point, p99_ms):
        return False
    return not fits(baseline, p99_ms) or point["throughput_rps"] >= baseline["throughput_rps"] * (
        1 + min_gain
    )


def choose(
    points: list[dict[str, Any]], p99_ms: float, baseline: dict[str, Any] | None = None, min_gain: float = 0.0
) -> dict[str, Any] | None:
    """The highest-throughput point that beats `baseline` (without one: that fits the budget)."""
    fit = [p for p in points if beats(p, baseline, p99_ms, min_gain)]
    return max(fit, key=lambda p: p["throughput_rps"]) if fit else None


def _measure(url: str, model: str, rows: list[Any], options: TuneOptions) -> dict[str, Any]:
    """One closed-loop measurement (ends early once `options.should_stop()`)."""
    recorder = Recorder()

    async def go() -> Any:
        async with triton_raw(url, model, rows) as send:
            return await closed_loop(
                send,
                concurrency=options.concurrency,
                duration_s=options.duration_s,
                warmup_s=options.warmup_s,
                recorder=recorder,
                should_stop=options.should_stop or _never,
                completed_in_window=True,
            )

    run = asyncio.run(go())
    s = summarize(recorder.frame(), duration_s=run.duration_s)
    figures = {k: s[k] for k in ("count", "errors", "throughput_rps", "p50_ms", "p99_ms")}
    return {**figures, "sent": sent(rows)}


def sent(rows: list[Any]) -> dict[str, dict[str, Any]]:
    """Per input, every shape sent (batch axis included) and its Triton datatype."""
    from tritonclient.utils import np_to_triton_dtype

    dtypes = {name: np_to_triton_dtype(array.dtype) for name, array in rows[0].items()} if rows else {}
    return {name: {"shapes": shapes, "datatype": dtypes[name]} for name, shapes in sent_shapes(rows).items()}


def current_fields(config: Any) -> dict[str, int]:
    """The three tuned fields of a loaded ModelConfig, named as a candidate's."""
    return {
        "max_batch_size": config.max_batch_size,
        "max_queue_delay_us": config.dynamic_batching.max_queue_delay_microseconds,
        "instances": sum(group.count or 1 for group in config.instance_group) or 1,
    }


def _write(options: TuneOptions, base: Any, best: Candidate) -> dict[str, str]:
    from tritonstack.model_config import write_config

    folder = options.repository / options.model
    (folder / "configs").mkdir(exist_ok=True)
    tuned = folder / "configs" / "tuned.pbtxt"
    write_config(with_candidate(base, best), tuned)
    written = {"tuned": str(tuned)}
    if options.apply:
        backup = folder / "configs" / f"before_tune_{time.strftime('%Y%m%dT%H%M%S')}.pbtxt"
        shutil.copy2(folder / "config.pbtxt", backup)
        write_config(with_candidate(base, best), folder / "config.pbtxt")
        written.update(applied=str(folder / "config.pbtxt"), previous=str(backup))
    return written


def _point(ts: TuneServer, config: Any, rows: list[Any], options: TuneOptions) -> dict[str, Any]:
    """Load `config` and measure it; LoadTestError (current config restored) if either fails."""
    ts.load(config)
    try:
        measured = _measure(ts.url, options.model, rows, options)
    except Exception as exc:  # noqa: BLE001 - e.g. the server went away mid-measure
        measured, reason = None, f"measuring failed: {exc}"
    crash = ts.crash_reason() if measured is not None else ""
    if measured is None or crash:
        reason = (
            reason if measured is None else f"tritonserver crashed while this config was measured: {crash}"
        )
        ts.restore()
        raise LoadTestError(reason)
    return measured


def _confirm(ts: TuneServer, best: Candidate, rows: list[Any], options: TuneOptions) -> dict[str, Any]:
    """The baseline and the winner measured once more, one after the other."""
    baseline = {**current_fields(ts.current), **_point(ts, ts.current, rows, options)}
    winner = _point(ts, with_candidate(ts.current, best), rows, options)
    return {"baseline": baseline, "best": winner}


def _sweep(
    ts: TuneServer,
    options: TuneOptions,
    grid: list[Candidate],
    on_point: Callable | None,
    on_skip: Callable | None,
    on_load: Callable | None = None,
) -> tuple[dict[str, Any], list[Any], list[Any], list[Any]]:
    from tritonstack.loadtest.preflight import preflight
    from tritonstack.loadtest.scenario import Scenario

    scenario = Scenario(model=options.model, shapes=options.shapes, inputs_path=options.inputs_path)
    _info, rows = preflight(scenario, ts.url, count=16, shown=f"the server started on {options.repository}")
    try:
        measured = _measure(ts.url, options.model, rows, options)
        baseline = {"config": "current config.pbtxt", **current_fields(ts.current), **measured}
    except Exception as exc:  # noqa: BLE001 - without a baseline there is nothing to compare with
        said = repr(options.model) in str(exc)  # the reason names the model already: say it once
        whose = "" if said else f" of {options.model!r}"
        raise LoadTestError(f"measuring the current config{whose} failed: {exc}") from exc
    points, skipped = _grid(ts, options, grid, rows, on_point, on_skip, on_load)
    return baseline, points, skipped, rows


def _grid(
    ts: TuneServer,
    options: TuneOptions,
    grid: list[Candidate],
    rows: list[Any],
    on_point: Callable | None,
    on_skip: Callable | None,
    on_load: Callable | None = None,
) -> tuple[list[Any], list[Any]]:
    """Measure each candidate (points) or skip it (skipped); a candidate a stop cut short is left out of
    both, and not reported: a partial run is not a measurement (it showed as "0 req/s")."""
    points, skipped = [], []
    for candidate in grid:
        if _stop_asked(options):
            break
        if on_load is not None:
            on_load(candidate)
        try:
            point = {**candidate.__dict__, **_point(ts, with_candidate(ts.current, candidate), rows, options)}
        except LoadTestError as exc:
            if _stop_asked(options):
                break
            skipped.append({**candidate.__dict__, "reason": str(exc)})
            if on_skip is not None:
                on_skip(candidate, str(exc))
            continue
        if _stop_asked(options):
            break
        points.append(point)
        if on_point is not None:
            on_point(point)
    return points, skipped


def _inputs(options: TuneOptions, rows: list[Any]) -> dict[str, Any]:
    """Where the requests came from and what they were (the report's "inputs")."""
    source = f"--inputs {options.inputs_path}" if options.inputs_path else "random"
    given = {k: list(v) for k, v in options.shapes.items()}
    return {"source": source, "shapes_given": given, "sent": sent(rows)}


def _budget_hint(outcome: TuneOutcome, options: TuneOptions) -> str:
    """When no measured point (the current config included) met --p99-ms, say what to change."""
    measured = [p for p in [outcome.baseline, *outcome.points] if p and p.get("p99_ms") is not None]
    if not measured or any(p["p99_ms"] <= options.p99_ms for p in measured):
        return ""
    fastest = min(p["p99_ms"] for p in measured)
    return (f" (no point met p99 <= {options.p99_ms:g} ms at concurrency {options.concurrency}; the lowest "
            f"was {fastest:.2f} ms: lower --concurrency or raise --p99-ms)")


def _stop_asked(options: TuneOptions) -> bool:
    return options.should_stop is not None and options.should_stop()


def _decide(ts: TuneServer, outcome: TuneOutcome, rows: list[Any], options: TuneOptions) -> Candidate | None:
    """Pick the winner and confirm it against the baseline; set outcome.best/decision."""
    best = choose(outcome.points, options.p99_ms, outcome.baseline, options.min_gain)
    if best is None:
        hint = _budget_hint(outcome, options)
        outcome.decision = f"no candidate beat the current config; nothing written to the repository{hint}"
        return None
    chosen = Candidate(**{k: best[k] for k in ("max_batch_size", "max_queue_delay_us", "instances")})
    try:
        outcome.confirmation = _confirm(ts, chosen, rows, options)
    except LoadTestError as exc:
        outcome.decision = f"the winner could not be measured again ({exc}); nothing written"
        return None
    again = outcome.confirmation
    if not beats(again["best"], again["baseline"], options.p99_ms, options.min_gain):
        outcome.decision = "the winner did not beat the current config when measured again; nothing written"
        return None
    outcome.best = best
    outcome.decision = f"{chosen.label()} beat the current config twice"
    return chosen


def _never() -> bool:
    return False


def _stopped(options: TuneOptions, outcome: TuneOutcome) -> bool:
    """True (and the outcome marked interrupted) once `options.should_stop()`."""
    if options.should_stop is None or not options.should_stop():
        return False
    outcome.interrupted, outcome.best = True, None
    outcome.decision = "interrupted; nothing written"
    return True


def tune(
    options: TuneOptions,
    *,
    on_point: Callable | None = None,
    on_skip: Callable | None = None,
    on_load: Callable | None = None,
) -> TuneOutcome:
    """Measure the current config, sweep the grid, write a winner only if it beats it; see the module doc.
    `on_load(candidate)` before each candidate loads, `on_point(point)` / `on_skip(candidate, reason)`
    after."""
    from tritonstack.model_config import read_config

    base = read_config(model_folder(options.repository, options.model) / "config.pbtxt")
    if base.max_batch_size == 0:
        raise ConfigError(f"model {options.model!r} has max_batch_size 0 (no batching); nothing to tune")
    grid = candidates(options, base.max_batch_size)
    stop = options.should_stop
    with TuneServer(options.repository, options.model, split=options.split, should_stop=stop) as ts:
        baseline, points, skipped, rows = _sweep(ts, options, grid, on_point, on_skip, on_load)
        outcome = TuneOutcome(
            model=options.model,
            p99_ms=options.p99_ms,
            baseline=baseline,
            points=points,
            best=None,
            skipped=skipped,
            inputs=_inputs(options, rows),
        )
        chosen = None if _stopped(options, outcome) else _decide(ts, outcome, rows, options)
        outcome.server_restarts = ts.restarts
    if _stopped(options, outcome):  # also when the stop came while confirming the winner
        return outcome
    if chosen is not None:
        outcome.written = _write(options, base, chosen)
    return outcome

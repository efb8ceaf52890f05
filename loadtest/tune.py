"""Sweep max_batch_size, max_queue_delay and instance count; keep the fastest config under a p99 budget.

    outcome = tune(TuneOptions(repository=Path("model_repository"), model="digits_mlp", p99_ms=5.0))
    outcome.best, outcome.points, outcome.written

Each candidate is loaded into one embedded server with Triton's load-with-config override (no file
is touched while sweeping), measured closed-loop at `concurrency` with the asyncio generator, and
the winner is written to `<model>/configs/tuned.pbtxt` (Triton's custom-config folder; the active
`config.pbtxt` is left alone). With `apply=True` the winner becomes `config.pbtxt` and the old one
is kept as `configs/before_tune_<time>.pbtxt`. What Model Analyzer does, for the CPU server here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonstack.loadtest.generator import closed_loop
from tritonstack.loadtest.inputs import random_rows
from tritonstack.loadtest.pinning import CoreSplit, pin_pid, pin_process_group
from tritonstack.loadtest.stats import Recorder, summarize
from tritonstack.loadtest.targets import triton_raw

from tritonstack.errors import ConfigError, LoadTestError

__all__ = ["Candidate", "TuneOptions", "TuneOutcome", "candidates", "choose", "tune", "with_candidate"]


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
    max_batch_sizes: tuple[int, ...] = (8, 32, 128)
    max_queue_delays_us: tuple[int, ...] = (0, 500, 2000)
    instance_counts: tuple[int, ...] = (1, 2)
    concurrency: int = 32
    duration_s: float = 2.0
    warmup_s: float = 0.5
    apply: bool = False
    split: CoreSplit = field(default_factory=CoreSplit.default)

    def __post_init__(self) -> None:
        if self.p99_ms <= 0 or self.concurrency < 1 or self.duration_s <= 0:
            raise ConfigError(
                f"p99_ms={self.p99_ms}, concurrency={self.concurrency} and "
                f"duration_s={self.duration_s} must be positive"
            )
        grid = len(self.max_batch_sizes) * len(self.max_queue_delays_us) * len(self.instance_counts)
        if not 1 <= grid <= 64:
            raise ConfigError(f"the grid has {grid} points; use 1-64 (fewer values per axis)")


@dataclass
class TuneOutcome:
    """Every point tried, the chosen one (None if none met the budget) and the files written."""

    model: str
    p99_ms: float
    baseline: dict[str, Any]
    points: list[dict[str, Any]]
    best: dict[str, Any] | None
    written: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "model": self.model,
            "p99_budget_ms": self.p99_ms,
            "baseline": self.baseline,
            "points": self.points,
            "best": self.best,
            "written": self.written,
        }


def candidates(options: TuneOptions, model_max_batch: int) -> list[Candidate]:
    """The grid, without batch sizes above what the model was built for (0: no batching axis)."""
    sizes = [b for b in options.max_batch_sizes if b <= model_max_batch] or [model_max_batch]
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
    return new


def choose(points: list[dict[str, Any]], p99_ms: float) -> dict[str, Any] | None:
    """The error-free point with the highest throughput whose p99 is within budget."""
    fit = [
        p for p in points if p.get("errors") == 0 and p.get("p99_ms") is not None and p["p99_ms"] <= p99_ms
    ]
    return max(fit, key=lambda p: p["throughput_rps"]) if fit else None


def _measure(url: str, model: str, rows: list[Any], options: TuneOptions) -> dict[str, Any]:
    recorder = Recorder()

    async def go() -> Any:
        async with triton_raw(url, model, rows) as send:
            return await closed_loop(
                send,
                concurrency=options.concurrency,
                duration_s=options.duration_s,
                warmup_s=options.warmup_s,
                recorder=recorder,
            )

    run = asyncio.run(go())
    s = summarize(recorder.frame(), duration_s=run.duration_s)
    return {k: s[k] for k in ("count", "errors", "throughput_rps", "p50_ms", "p99_ms")}


def _load(server: Any, model: str, config: Any | None) -> None:
    import tritonclient.grpc as grpcclient
    from google.protobuf import json_format

    body = json.dumps(json_format.MessageToDict(config, preserving_proto_field_name=True)) if config else None
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        client.load_model(model, headers=server.grpc_admin_headers, config=body, client_timeout=120)
    except Exception as exc:  # noqa: BLE001 - tritonclient raises its own error type
        raise LoadTestError(f"loading {model!r} with the candidate config failed: {exc}") from exc
    finally:
        client.close()


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


def tune(options: TuneOptions, *, on_point: Any = None) -> TuneOutcome:
    """Start a server on the repository, sweep the grid, write the winner; see the module doc."""
    from tritonstack.client import TritonClient
    from tritonstack.serve import EmbeddedServer, ServerConfig

    from tritonstack.model_config import read_config

    base = read_config(options.repository / options.model / "config.pbtxt")
    grid = candidates(options, base.max_batch_size)
    if base.max_batch_size == 0:
        raise ConfigError(f"model {options.model!r} has max_batch_size 0 (no batching); nothing to tune")
    # supervise=False: the stub supervisor would take the stubs that a reload retires for dead ones and
    # reload the model from config.pbtxt, silently undoing the candidate being measured.
    config = ServerConfig(
        repository=options.repository,
        ort_threads=len(options.split.server),
        ready_timeout_s=120,
        supervise=False,
    )
    affinity = frozenset(os.sched_getaffinity(0))
    with EmbeddedServer(config) as server, contextlib.ExitStack() as restore:
        restore.callback(pin_pid, os.getpid(), affinity)
        pin_process_group(server.pid, options.split.server)
        pin_pid(os.getpid(), options.split.generator)  # new stubs inherit the server's CPUs
        with TritonClient(server.grpc_url) as client:
            client.wait_until_ready(timeout_s=60, model=options.model)
            rows = random_rows(client.model_info(options.model), count=16)
        baseline = {"config": "config.pbtxt as is", **_measure(server.grpc_url, options.model, rows, options)}
        points = []
        for candidate in grid:
            _load(server, options.model, with_candidate(base, candidate))
            point = {**candidate.__dict__, **_measure(server.grpc_url, options.model, rows, options)}
            points.append(point)
            if on_point is not None:
                on_point(point)
    best = choose(points, options.p99_ms)
    outcome = TuneOutcome(
        model=options.model, p99_ms=options.p99_ms, baseline=baseline, points=points, best=best
    )
    if best is not None:
        chosen = Candidate(
            max_batch_size=best["max_batch_size"],
            max_queue_delay_us=best["max_queue_delay_us"],
            instances=best["instances"],
        )
        outcome.written = _write(options, base, chosen)
    return outcome

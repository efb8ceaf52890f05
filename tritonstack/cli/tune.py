"""`tritonstack tune MODEL --p99-ms X`: find the fastest batching/instance config under a p99 budget.

tritonstack tune digits_mlp --p99-ms 5 --repository model_repository
tritonstack tune digits_mlp --p99-ms 5 --max-batch 16,64 --delay-us 0,500 --instances 1,2 --apply
tritonstack tune gru --p99-ms 20 --shape tokens:32        # or --inputs samples.npz, as `loadtest` takes

What is sent is what `tritonstack loadtest` sends, checked by the same code with the same messages:
without --shape / --inputs, dynamic (-1) dims have length 1. The report says what each point sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import FrameType
from typing import Annotated, get_type_hints

import typer

from tritonstack.cli import loadtest as _loadtest
from tritonstack.cli.finite import finite
from tritonstack.loadtest.interrupt import StopOnSignals

__all__ = ["register"]

#: --inputs and --shape are declared once, by `loadtest`; `tune` takes them as they are there.
_LOADTEST_OPTIONS = get_type_hints(_loadtest.loadtest, include_extras=True)
InputsOption, ShapeOption = _LOADTEST_OPTIONS["inputs"], _LOADTEST_OPTIONS["shape"]


def _ints(flag: str, text: str) -> tuple[int, ...]:
    """A comma list of integers; ConfigError naming `flag` and the element for an empty, non-integer,
    duplicate or out-of-range one (GRID_RANGES)."""
    from tritonstack.errors import ConfigError
    from tritonstack.loadtest.tune import GRID_RANGES

    low, high = GRID_RANGES[flag.removeprefix("--").replace("-", "_")]
    values: list[int] = []
    for element in text.split(","):
        if not element.strip():
            raise ConfigError(
                f"{flag} {text!r} has an empty element; pass a comma-separated list of integers, "
                "e.g. 8,32,128"
            )
        try:
            value = int(element)
        except ValueError:
            raise ConfigError(
                f"{flag} {text!r}: element {element.strip()!r} is not an integer; pass a comma-separated "
                "list of integers, e.g. 8,32,128"
            ) from None
        if not low <= value <= high:
            raise ConfigError(f"{flag} {value} is out of range; use values from {low} to {high}")
        if value in values:
            raise ConfigError(f"{flag} {text!r}: {value} is given twice; list each value once")
        values.append(value)
    return tuple(values)


def tune(
    model: Annotated[str, typer.Argument(help="Model folder in the repository.")],
    p99_ms: Annotated[
        float, typer.Option("--p99-ms", help="p99 latency budget (ms).", **finite("--p99-ms", 0.01))
    ],
    repository: Annotated[Path, typer.Option(help="Model repository.")] = Path("model_repository"),
    max_batch: Annotated[
        str, typer.Option(help="max_batch_size values (default: 8,32,128 up to the model's own).")
    ] = "",
    delay_us: Annotated[str, typer.Option(help="max_queue_delay_microseconds values.")] = "0,500,2000",
    instances: Annotated[str, typer.Option(help="Instance counts.")] = "1,2",
    inputs: InputsOption = None,
    shape: ShapeOption = None,
    concurrency: Annotated[int, typer.Option(help="Requests in flight while measuring.",
                                             min=1, max=1000)] = 32,
    duration: Annotated[
        float, typer.Option(help="Seconds measured per point.", **finite("--duration", 0.5, 60))
    ] = 2.0,
    min_gain: Annotated[
        float,
        typer.Option(
            help="Throughput a winner needs over the current config (0.05: 5 %).",
            **finite("--min-gain", 0, 0.99),
        ),
    ] = 0.05,
    apply: Annotated[bool, typer.Option(help="Also make the winner config.pbtxt (old one kept).")] = False,
    out: Annotated[Path, typer.Option(help="Where the JSON report of every point goes.")] = Path(
        "reports/tune"
    ),
) -> None:
    """Sweep max_batch_size x queue delay x instance count; keep a config only if it beats the current one.

    Ctrl-C or SIGTERM: a line at once, then the sweep stops (a config still loading is abandoned),
    tritonserver is stopped, nothing is written; exit 130 / 143.
    """
    from tritonstack.cli import console
    from tritonstack.cli.loadtest import check_out
    from tritonstack.errors import TritonStackError
    from tritonstack.loadtest.tune import TuneOptions
    from tritonstack.loadtest.tune import tune as run_tune

    check_out(out)  # an unusable --out is refused before the sweep, as loadtest does
    stop = _StopSaying()
    given = _given_inputs(model, repository, inputs, shape or [])
    options = TuneOptions(
        repository=repository,
        model=model,
        p99_ms=p99_ms,
        max_batch_sizes=_ints("--max-batch", max_batch) if max_batch.strip() else None,
        max_queue_delays_us=_ints("--delay-us", delay_us),
        instance_counts=_ints("--instances", instances),
        concurrency=concurrency,
        duration_s=duration,
        min_gain=min_gain,
        apply=apply,
        should_stop=stop.is_set,
        **given,
    )
    try:
        with stop:
            outcome = run_tune(
                options,
                on_load=lambda c: console.print(f"  loading candidate {c.label()}"),
                on_point=lambda p: console.print(
                    f"  batch {p['max_batch_size']:>4} delay {p['max_queue_delay_us']:>5} us "
                    f"x{p['instances']}: {p['throughput_rps']:.0f} req/s, p99 {p['p99_ms'] or 0:.2f} ms, "
                    f"{p['errors']} errors"
                ),
                on_skip=lambda c, reason: console.print(
                    f"  {c.label()}: skipped ({reason}); the current config was restored"
                ),
            )
    except TritonStackError:
        if not stop.is_set():
            raise
    if stop.is_set():
        _interrupted(stop, repository)
    _print(outcome, concurrency, p99_ms)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{model}.json").write_text(json.dumps(outcome.as_dict(), indent=2), encoding="utf-8")
    console.print(f"report: {out / (model + '.json')}")


def _given_inputs(model: str, repository: Path, inputs: Path | None, shapes: list[str]) -> dict:
    """TuneOptions' `shapes` and `inputs_path`, refused (before any server starts) by loadtest's own
    checks, so both commands take and refuse the same --shape / --inputs with the same message."""
    from tritonstack.cli.loadtest import check_options
    from tritonstack.loadtest.inputs import parse_shapes
    from tritonstack.loadtest.scenario import Scenario

    spec = Scenario(model=model, shapes=parse_shapes(shapes), inputs_path=str(inputs) if inputs else "")
    check_options(spec, url=None, repository=repository, engine="asyncio", referee=False, inputs=inputs)
    return {"shapes": spec.shapes, "inputs_path": spec.inputs_path}


class _StopSaying(StopOnSignals):
    """`StopOnSignals` that also says, at once, that the command is stopping (the stop itself takes a
    few seconds: the load or measurement in progress is left, then the server is stopped)."""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        super()._handle(signum, frame)
        if first:
            _say_now(f"interrupted ({_name(signum)}): stopping tritonserver; the current config "
                     "stays as it is, nothing will be written")


def _name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name


def _say_now(line: str) -> None:
    """One stdout line from a signal handler: straight to the file descriptor (a buffered write that
    the handler interrupted cannot be re-entered); through the console when stdout has none."""
    import os
    import sys

    try:
        sys.stdout.flush()
        os.write(sys.stdout.fileno(), (line + "\n").encode())
    except (OSError, ValueError, AttributeError, RuntimeError):
        from tritonstack.cli import console

        console.print(line)


def _interrupted(stop, repository: Path) -> None:  # noqa: ANN001
    """One line and exit 128 + signal: the sweep stopped, its server too, nothing written."""
    import sys

    from tritonstack.cli import err_console

    name = _name(stop.signum)
    err_console.print(
        f"interrupted ({name}) after {stop.after_s or 0:.1f} s; tritonserver stopped, "
        f"nothing written to {repository}"
    )
    sys.exit(stop.exit_code)


def _print(outcome, concurrency: int, p99_ms: float) -> None:  # noqa: ANN001
    from rich.table import Table

    from tritonstack.cli import console

    model = outcome.model
    table = Table(
        title=f"tune {model}: concurrency {concurrency}, p99 budget {p99_ms} ms", title_justify="left"
    )
    for column in ("batch", "delay us", "inst", "req/s", "p50 ms", "p99 ms", "errors", ""):
        table.add_column(column)
    for p in [outcome.baseline, *outcome.points]:
        mark = "best" if p is outcome.best else ("over budget" if (p["p99_ms"] or 1e9) > p99_ms else "")
        mark = f"current{', ' + mark if mark else ''}" if p is outcome.baseline else mark
        table.add_row(
            str(p["max_batch_size"]),
            str(p["max_queue_delay_us"]),
            str(p["instances"]),
            f"{p['throughput_rps']:.0f}",
            f"{p['p50_ms'] or 0:.2f}",
            f"{p['p99_ms'] or 0:.2f}",
            str(p["errors"]),
            mark,
        )
    console.print(table)
    source, sent = outcome.inputs.get("source", "random"), outcome.baseline.get("sent", {})
    console.print(f"each point sent ({source}): {_sent_text(sent)}", soft_wrap=True)
    if outcome.confirmation:
        again = outcome.confirmation
        console.print(
            f"measured again: current {again['baseline']['throughput_rps']:.0f} req/s "
            f"(p99 {again['baseline']['p99_ms'] or 0:.2f} ms), "
            f"winner {again['best']['throughput_rps']:.0f} req/s "
            f"(p99 {again['best']['p99_ms'] or 0:.2f} ms)"
        )
    console.print(outcome.decision)
    if outcome.written:
        console.print("written: " + ", ".join(f"{k} {v}" for k, v in outcome.written.items()))


def _sent_text(sent: dict) -> str:
    """'tokens [1, 32] FP32, mask [1, 32] BOOL': every shape (batch axis included) and datatype sent."""
    parts = [f"{n} {' | '.join(map(str, what['shapes']))} {what['datatype']}" for n, what in sent.items()]
    return ", ".join(parts) or "nothing"


def register(app: typer.Typer) -> None:
    """Add `tune` to the CLI."""
    app.command("tune")(tune)

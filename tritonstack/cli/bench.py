"""`tritonstack bench`: measure W1-W10, W2-p99, C1 and L4 in one run on this machine and print each
ratio with its goal.

tritonstack bench                         # build reference models into build/bench, measure all
tritonstack bench --quick --only W2,W5    # short points, two workloads
tritonstack bench --repository model_repository --json reports/bench.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def bench(
    repository: Annotated[
        Path | None,
        typer.Option(help="Serve this model repository instead of building the reference models."),
    ] = None,
    build_dir: Annotated[Path, typer.Option(help="Where reference models are built and cached.")] = Path(
        "build/bench"
    ),
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON here.")
    ] = None,
    rebuild: Annotated[bool, typer.Option(help="Rebuild the reference models even if cached.")] = False,
    quick: Annotated[bool, typer.Option(help="Short measuring points (noisier, ~1/3 of the time).")] = False,
    only: Annotated[str | None, typer.Option(help="Comma-separated workloads, e.g. W2,W5.")] = None,
    cores: Annotated[
        str | None,
        typer.Option(help="Core split SERVER:GENERATOR, e.g. 0:1 (default: lower half for the server side)."),
    ] = None,
) -> None:
    """Run the benchmark rows W1-W10, W2-p99, C1 and L4 on the embedded Triton server; print the table."""
    from tritonstack.cli import console
    from tritonstack.loadtest.bench.context import BenchOptions
    from tritonstack.loadtest.bench.harness import run_bench

    split = _split(cores)
    selected = _selected(only)
    options = BenchOptions(
        build_dir=build_dir, repository=repository, quick=quick, rebuild=rebuild, split=split
    )
    console.print(f"core split: {split.describe()}")
    document = run_bench(
        options,
        only=selected,
        on_row=lambda row: console.print(f"  {row.key} done ({row.detail.get('seconds')} s)"),
    )
    _print_table(document)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
        console.print(f"JSON written to {json_path}")


def _split(cores: str | None):  # noqa: ANN202
    """The core split asked for, checked against the CPUs this process may use (before any build)."""
    import os

    from tritonstack.errors import ConfigError
    from tritonstack.loadtest.pinning import CoreSplit

    allowed = sorted(os.sched_getaffinity(0))
    try:
        split = CoreSplit.parse(cores) if cores else CoreSplit.default()
    except ValueError:
        raise ConfigError(f"--cores {cores!r}: use SERVER:GENERATOR CPU lists, e.g. 0:1 or 0-1:2-3") from None
    if not split.server | split.generator <= set(allowed):
        raise ConfigError(f"--cores {cores}: this process may use CPUs {allowed} only; pick among them")
    return split


def _selected(only: str | None) -> list[str] | None:
    """The workloads of --only, each checked against the known workloads (before any build)."""
    from tritonstack.errors import ConfigError
    from tritonstack.loadtest.bench.workloads import WORKLOADS

    if not only:
        return None
    selected = [w.strip() for w in only.split(",") if w.strip()]
    known = {w.key for w in WORKLOADS} | {w.key.split("-")[0] for w in WORKLOADS}
    unknown = [w for w in selected if w not in known]
    if unknown or not selected:
        raise ConfigError(f"--only {only!r}: unknown workload(s) {unknown}; use some of {sorted(known)}")
    return selected


def _print_table(document: dict) -> None:
    from rich.table import Table

    from tritonstack.cli import console
    from tritonstack.loadtest.bench.harness import format_value

    m = document["machine"]
    table = Table(
        title=f"tritonstack bench — {m['cpu']}, {m['cpus']} CPUs, {m['date']}", title_justify="left"
    )
    for column in ("workload", "measured", "goal", "verdict"):
        table.add_column(column, overflow="fold")
    for key, w in document["workloads"].items():
        goal = ("≥ " if w["better"] == "higher" else "≤ ") + format_value(w["goal"], w["unit"])
        verdict = (
            ("met" if w["met"] else "MISSED") if w["met"] is not None else f"n/a ({w['detail'].get('na')})"
        )
        table.add_row(f"{key} {w['title']}", format_value(w["value"], w["unit"]), goal, verdict)
    console.print(table)
    start, end = (tuple(round(x, 2) for x in m.get(k) or ()) for k in ("load_average_start",
                                                                      "load_average_end"))
    console.print(f"core split: {m['core_split']}")
    console.print(f"load average {start} -> {end}; {m.get('bench_seconds')} s in all (builds included)")


def register(app: typer.Typer) -> None:
    """Add `bench` to the CLI."""
    app.command("bench")(bench)

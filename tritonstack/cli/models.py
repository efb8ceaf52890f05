"""`tritonstack models build`: build the reference model repository."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]

models_app = typer.Typer(help="Reference models.", no_args_is_help=True)


@models_app.command("build")
def build(
    repository: Annotated[Path, typer.Option(help="Repository to write into.")] = Path("model_repository"),
    workdir: Annotated[Path, typer.Option(help="Scratch folder for intermediate files.")] = Path("build"),
    only: Annotated[list[str] | None, typer.Option(help="Build only these models.")] = None,  # noqa: UP007
) -> None:
    """Train/export the reference models and add them as new versions in the repository."""
    from rich.table import Table

    from tritonstack.cli import console
    from tritonstack.convert.reference import BUILDERS
    from tritonstack.errors import ConfigError

    unknown = sorted(set(only or ()) - set(BUILDERS))
    if unknown:
        raise ConfigError(f"unknown reference model(s) {unknown}; choose from {sorted(BUILDERS)}")
    table = Table("model", "prec", "ver", "max abs err", "gate: metric before -> after", "s")
    started, notes = time.monotonic(), []
    for name in only or BUILDERS:
        begin = time.monotonic()
        with console.status(f"building {name}..."):
            summary = BUILDERS[name](repository, workdir)
        for row in _rows(summary):
            table.add_row(*row, f"{time.monotonic() - begin:.0f}")
        notes += [f"{kind} {n}: {reason}" for kind in ("rejected", "skipped")
                  for n, reason in summary.get(kind, {}).items()]
    console.print(table)
    for note in notes:
        console.print(f"[yellow]{note}[/]")
    console.print(f"built in {time.monotonic() - started:.0f} s")


def _rows(summary: dict[str, Any]) -> list[tuple[str, ...]]:
    """Table rows of one builder's summary, one per written variant (rejections are printed below)."""
    if "variants" not in summary:  # digits_mlp: one FP32 model
        return [(summary["model"], "fp32", str(summary["version"]), f"{summary['max_abs_error']:.2e}",
                 f"(top1 {summary['accuracy']:.3f})")]
    rows = []
    for name, v in summary["variants"].items():
        gate = v.get("gate")
        verdict = "" if gate is None else ("ok" if gate["passed"] else "REJECTED")
        metric = "-" if gate is None else (
            f"{gate['metric']} {gate['before']:.3f}->{gate['after']:.3f} {verdict}")
        version = str(v.get("version") or "-")
        rows.append((name, v["precision"], version, f"{v['max_abs_error']:.2e}", metric))
    return rows


def register(app: typer.Typer) -> None:
    """Add the command group to the app."""
    app.add_typer(models_app, name="models")

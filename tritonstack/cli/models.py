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
    """Train/export the reference models and add them as new versions in the repository.

    On a terminal a spinner shows the model being built; otherwise (a log, CI) one line per model
    is printed as it starts and as it is written, with the elapsed time.
    """
    from rich.table import Table

    from tritonstack.cli import console
    from tritonstack.convert.reference import BUILDERS, build_steps
    from tritonstack.errors import ConfigError

    unknown = sorted(set(only or ()) - set(BUILDERS))
    if unknown:
        raise ConfigError(f"unknown reference model(s) {unknown}; choose from {sorted(BUILDERS)}")
    names = list(only or BUILDERS)
    table = Table("model", "prec", "ver", "max abs err", "gate: metric before -> after", "s")
    started, notes = time.monotonic(), []
    with _Progress(console, names, started) as progress:
        for name, summary, seconds in build_steps(repository, workdir, names):
            progress.done(name, summary, seconds)
            for row in _rows(summary):
                table.add_row(*row, f"{seconds:.0f}")
            notes += [f"{kind} {n}: {reason}" for kind in ("rejected", "skipped")
                      for n, reason in summary.get(kind, {}).items()]
    console.print(table)
    for note in notes:
        console.print(f"[yellow]{note}[/]")
    console.print(f"built in {time.monotonic() - started:.0f} s")


class _Progress:
    """Progress of `models build`: a spinner on a terminal, else a line per model start and end."""

    def __init__(self, console: Any, names: list[str], started: float) -> None:
        self.console, self.names, self.started = console, names, started
        self.lines = not console.is_terminal
        self.status = None if self.lines else console.status(f"building {names[0]}...")

    def __enter__(self) -> _Progress:
        if self.status is not None:
            self.status.start()
        self._starting(0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.stop()

    def _starting(self, index: int) -> None:
        if index >= len(self.names):
            return
        if self.status is not None:
            self.status.update(f"building {self.names[index]}...")
        else:
            self._line(f"{self.names[index]}: building ({index + 1}/{len(self.names)})")

    def done(self, name: str, summary: dict[str, Any], seconds: float) -> None:
        """Report a written model, then announce the next one."""
        if self.lines:
            variants = ", ".join(f"{r[0]} v{r[2]}" for r in _rows(summary)) or "nothing written"
            self._line(f"{name}: built in {seconds:.1f} s ({variants})")
        self._starting(self.names.index(name) + 1)

    def _line(self, text: str) -> None:
        self.console.print(f"[{time.monotonic() - self.started:6.1f} s] {text}", markup=False)


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

"""`tritonstack models build`: build the reference model repository."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    from tritonstack.convert.reference import BUILDERS, build_all
    from tritonstack.errors import ConfigError

    unknown = sorted(set(only or ()) - set(BUILDERS))
    if unknown:
        raise ConfigError(f"unknown reference model(s) {unknown}; choose from {sorted(BUILDERS)}")
    summaries = build_all(repository, workdir, only)
    table = Table("model", "version", "accuracy", "max abs error vs source")
    for s in summaries.values():
        table.add_row(s["model"], str(s["version"]), f"{s['accuracy']:.4f}", f"{s['max_abs_error']:.2e}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the command group to the app."""
    app.add_typer(models_app, name="models")

"""The `tritonstack` command.

    tritonstack serve --repository model_repository
    tritonstack models build
    tritonstack demo

User errors (any TritonStackError) print one line saying what is wrong and how to fix it, and
exit with code 2; no traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from tritonstack.errors import TritonStackError

__all__ = ["app", "console", "main"]

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
app = typer.Typer(
    name="tritonstack", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Convert, serve, call and load-test models on a real Triton Inference Server.",
)


@app.callback()
def _options(
    log_json: Annotated[bool, typer.Option(
        "--log-json", envvar="TRITONSTACK_LOG_JSON", help="Log JSON lines (for ELK / Loki).")] = False,
    log_level: Annotated[str, typer.Option(envvar="TRITONSTACK_LOG_LEVEL", help="Log level.")] = "WARNING",
) -> None:
    """Convert, serve, call and load-test models on a real Triton Inference Server."""
    from tritonstack.logs import configure_logging

    configure_logging(json_lines=log_json, level=log_level.upper())


#: Command modules under tritonstack/cli/, each with `register(app)`; one per area of the product.
COMMAND_MODULES = ("serve", "models", "demo", "convert", "versions", "loadtest", "bench", "tune", "ops")


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"tritonstack.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"tritonstack.cli.{name}":
                raise
            continue
        module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn our errors into one line and exit code 2."""
    _register()
    try:
        app(args=argv, standalone_mode=False)
    except TritonStackError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise

"""The `tritonstack` command.

    tritonstack serve --repository model_repository
    tritonstack models build
    tritonstack demo

User errors (any TritonStackError) print one line saying what is wrong and how to fix it, and
exit with code 2; no traceback.
"""

from __future__ import annotations

import sys

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


def _register() -> None:
    from tritonstack.cli import demo, models, serve

    for module in (serve, models, demo):
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

"""The `tritonstack` command.

    tritonstack serve --repository model_repository
    tritonstack models build
    tritonstack demo

User errors (any TritonStackError) print one line saying what is wrong and how to fix it, and
exit with code 2; no traceback. With `--log-json` (or TRITONSTACK_LOG_JSON) that line is a JSON
object like every log line: {"level": "ERROR", "message": ..., "error": "ConfigError", "exit_code": 2}.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
from typing import Annotated

import typer
from rich.console import Console

from tritonstack import entry
from tritonstack.errors import TritonStackError

__all__ = ["app", "console", "main"]

#: exit code when the reader of our output went away (`... | head`): 128 + SIGPIPE, as a shell reports a
#: command killed by it; not 1, which `ops drift-status` uses for "an alert is firing"
EXIT_BROKEN_PIPE = 141
EXIT_CANNOT_WRITE = 74


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """Rich's own: quiet from now on, stdout to /dev/null; but exit 141, not 1."""
        try:
            super().on_broken_pipe()
        except SystemExit:
            raise SystemExit(EXIT_BROKEN_PIPE) from None


console = _Console(highlight=False, soft_wrap=True)
err_console = _Console(stderr=True, highlight=False, soft_wrap=True)
app = typer.Typer(
    name="tritonstack", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: wraps at the terminal width, never cuts a name with '…'
    help="Convert, serve, call and load-test models on a real Triton Inference Server.",
)


def _command_returned(value: object, **_params: object) -> object:
    """The command has returned (its change, if any, is made): a signal from here on is ignored, so it
    cannot turn the command's exit code into 130/143 while click tears down and the process exits."""
    entry.finish()
    return value


@app.callback(result_callback=_command_returned)
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


_TRUE = {"1", "true", "t", "yes", "y", "on"}


def _json_errors(argv: list[str] | None) -> bool:
    """Whether this run logs JSON lines (`--log-json` before any `--`, or TRITONSTACK_LOG_JSON)."""
    import os

    args = sys.argv[1:] if argv is None else argv
    args = args[:args.index("--")] if "--" in args else args
    return "--log-json" in args or os.environ.get("TRITONSTACK_LOG_JSON", "").strip().lower() in _TRUE


def _fail(message: str, error: str, exit_code: int, *, json_lines: bool, plain: str | None = None) -> None:
    """Print the one line of a failed run (JSON with --log-json) and exit with `exit_code`."""
    if json_lines:
        from tritonstack.logs import error_line

        sys.stderr.write(error_line(message, error=error, exit_code=exit_code) + "\n")
        sys.stderr.flush()
    else:
        err_console.print(plain if plain is not None else message, soft_wrap=True)
    sys.exit(exit_code)


def _is_usage_error(exc: Exception) -> bool:
    """A click usage error: click's own, or typer's (typer >= 0.2x vendors click as `typer._click`)."""
    try:
        import click
    except ImportError:  # pragma: no cover - typer no longer depends on click
        click = None
    kinds = (typer.TyperException,) if click is None else (typer.TyperException, click.ClickException)
    return isinstance(exc, kinds) and hasattr(exc, "format_message") and hasattr(exc, "exit_code")


_TERMINATED: list[int] = []  # SIGTERM arrived (outside a command's own handling); read by commands


def _raise_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM as a KeyboardInterrupt in the main thread (`entry.on_signal`), noted in `_TERMINATED`;
    ignored once the command has returned."""
    if entry.finished():
        return
    _TERMINATED.append(signum)
    entry.on_signal(signum, frame)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn our errors into one line and exit code 2. SIGTERM raises
    KeyboardInterrupt (as Ctrl-C does) so `with` blocks clean up; commands with their own handling
    (serve, loadtest, tune) replace it."""
    if threading.current_thread() is not threading.main_thread():
        _main(argv)
        return
    entry.arm()
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> None:
    json_lines = _json_errors(argv)
    try:
        with entry.deferred():  # a signal while command modules import waits for the imports' end
            _register()
        code = app(args=argv, standalone_mode=False)
    except TritonStackError as exc:
        entry.finish()
        _fail(str(exc), type(exc).__name__, 2, json_lines=json_lines, plain=f"[bold red]error:[/] {exc}")
    except KeyboardInterrupt:
        _interrupted(json_lines=json_lines)
    except OSError as exc:
        if exc.errno not in _CANNOT_WRITE:
            raise
        entry.finish()
        _cannot_write(exc)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        if entry.ends_as_interrupt(exc):  # e.g. a signal that Python wrapped in another error
            _interrupted(json_lines=json_lines)
        if not _is_usage_error(exc):
            raise
        entry.finish()
        if json_lines:
            _fail(exc.format_message(), type(exc).__name__, exc.exit_code, json_lines=True)
        _usage_error(exc)
    entry.finish()
    _exit_code(code, json_lines=json_lines)


#: errors of a write that no retry fixes (output to /dev/full, a full disk or quota, an I/O error)
_CANNOT_WRITE = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG}


def _cannot_write(exc: OSError) -> None:
    """Output or a file could not be written: one line on stderr, exit 74 (sysexits' EX_IOERR; not 1,
    which `ops drift-status` uses for "an alert is firing"), and no second failure at exit."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush of stdout would fail again
    with contextlib.suppress(OSError):
        where = f" {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"error: cannot write{where}: {exc.strerror}; free some space (or send the "
                         "output elsewhere) and run it again\n")
        sys.stderr.flush()
    sys.exit(EXIT_CANNOT_WRITE)


def _usage_error(exc: Exception) -> None:
    """A bad option or argument: one line with what is wrong and where the help is, exit 2 (click's
    four-line usage block otherwise); a bare group (no command) still shows its help."""
    if type(exc).__name__ == "NoArgsIsHelpError" or not exc.format_message():
        exc.show()
        sys.exit(exc.exit_code)
    ctx = getattr(exc, "ctx", None)
    hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
    err_console.print(f"error: {exc.format_message()}{hint}", soft_wrap=True, markup=False, highlight=False)
    sys.exit(exc.exit_code)


def _exit_code(code: object, *, json_lines: bool) -> None:
    """Honour the exit code typer returns in non-standalone mode instead of raising: it turns a
    KeyboardInterrupt (Ctrl-C, or SIGTERM converted) into Exit(130) and returns 130, which was
    silently dropped (exit 0, no message); a command's `typer.Exit(n)` comes back the same way."""
    if isinstance(code, int) and not isinstance(code, bool) and code:
        if code == 130:
            _interrupted(json_lines=json_lines)
        sys.exit(code)


def _interrupted(*, json_lines: bool) -> None:
    """Ctrl-C: 'interrupted', exit 130; SIGTERM: 'terminated', exit 143 (a further signal is ignored)."""
    entry.finish()
    if _TERMINATED or entry.TERMINATED:
        _fail("terminated", "SIGTERM", 143, json_lines=json_lines)
    _fail("interrupted", "KeyboardInterrupt", 130, json_lines=json_lines)

"""The `tritonstack` command's entry point: a signal at any moment of a run ends it the same way.

    tritonstack ops status    # Ctrl-C -> 'interrupted', exit 130; SIGTERM -> 'terminated', exit 143

That holds from the first instant of `main()`, while the CLI is still being imported (its first
~0.2-0.9 s), not only once a command runs: one line, no KeyboardInterrupt traceback. Once the command
has returned, a late SIGINT or SIGTERM is ignored and the command's own exit code stands, so a change
it has made (a promoted version) is never reported as interrupted. This module imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["TERMINATED", "arm", "deferred", "ends_as_interrupt", "finish", "finished", "main", "on_signal",
           "signalled"]

#: SIGTERM arrived while a run could still be interrupted: say 'terminated' and exit 143.
TERMINATED: list[int] = []
_FINISHED: list[bool] = []  # non-empty once the command's outcome is decided
_SIGNALLED: list[int] = []  # SIGINT/SIGTERM seen by `on_signal` during this run
_DEFERRING: list[bool] = []  # non-empty inside `deferred()`


def on_signal(signum: int, _frame: object) -> None:
    """SIGINT/SIGTERM as a KeyboardInterrupt in the main thread (so `with` blocks clean up: an embedded
    server being started is stopped with its stubs and /dev/shm files); ignored once `finish()` ran."""
    if _FINISHED:
        return
    if signum == signal.SIGTERM:
        TERMINATED.append(signum)
    _SIGNALLED.append(signum)
    if _DEFERRING:  # `deferred()` raises it when its block ends
        return
    if _importing(_frame):  # a lazy import inside a command: deliver it again once the import is over
        _redeliver(signum)
        return
    raise KeyboardInterrupt


def _redeliver(signum: int) -> None:
    """Send `signum` to this process again in a moment (it arrived where it could not act)."""
    again = threading.Timer(_REDELIVER_S, os.kill, (os.getpid(), signum))
    again.daemon = True  # never holds the interpreter's exit
    again.start()


#: How soon a signal that arrived during an import is delivered again (imports take ms to ~0.5 s).
_REDELIVER_S = 0.02


def _importing(frame: object) -> bool:
    """Whether the interrupted code runs inside Python's import machinery, where a KeyboardInterrupt
    is swallowed ('Exception ignored in ... _get_module_lock') or turned into another error."""
    current: Any = frame
    while current is not None:
        if current.f_code.co_filename.startswith("<frozen importlib"):
            return True
        current = current.f_back
    return False


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM (through `on_signal`) back until the block ends, then raise the
    KeyboardInterrupt: a KeyboardInterrupt in the middle of an import does not arrive as one (Python
    wraps it in a RuntimeError inside `__set_name__`; numpy's C import prints its traceback and raises
    ImportError 'numpy.core.multiarray failed to import'). The CLI imports its modules in here."""
    seen = len(_SIGNALLED)
    _DEFERRING.append(True)
    try:
        yield
    finally:
        _DEFERRING.pop()
    if len(_SIGNALLED) > seen and not _DEFERRING and not _FINISHED:
        raise KeyboardInterrupt


def signalled() -> bool:
    """Whether `on_signal` saw SIGINT/SIGTERM during this run (an error after it ends the run as
    interrupted: the signal may have broken whatever raised it)."""
    return bool(_SIGNALLED)


def ends_as_interrupt(exc: BaseException) -> bool:
    """Whether an unexpected error ends the run as interrupted: it came from the KeyboardInterrupt
    (`_caused_by_interrupt`), or a signal arrived during the run (it may have broken what raised)."""
    return _caused_by_interrupt(exc) or signalled()


def _caused_by_interrupt(exc: BaseException) -> bool:
    """Whether `exc` is, or was raised while handling, the KeyboardInterrupt `on_signal` raised: Python
    3.11 wraps an exception raised in a descriptor's `__set_name__` (a dataclass field created while
    a module imports) in a RuntimeError, so a signal that lands there arrives as that RuntimeError."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def finished() -> bool:
    """Whether the run's outcome is decided (`finish()` ran)."""
    return bool(_FINISHED)


def arm() -> None:
    """A run starts: signals interrupt it again (an in-process caller may run several)."""
    _FINISHED.clear()
    TERMINATED.clear()
    _SIGNALLED.clear()


def finish() -> None:
    """The run's outcome is decided (the command returned, or its one error line is chosen): from now
    on SIGINT and SIGTERM handled by `on_signal` are ignored."""
    _FINISHED.append(True)


def _quiet_half_built_clients(unraisable: Any) -> None:
    """sys.unraisablehook: a Ctrl-C inside tritonclient's InferenceServerClient.__init__ leaves a
    half-built client whose __del__ then fails ('has no attribute _stream') and printed a traceback
    after 'interrupted' (CI, 2026-12-03). That one is dropped; every other goes to the default hook."""
    obj, exc = getattr(unraisable, "object", None), unraisable.exc_value
    if isinstance(exc, KeyboardInterrupt) and _SIGNALLED:  # `on_signal` raised inside a finalizer, where
        _redeliver(_SIGNALLED[-1])  # Python drops it ("Exception ignored in: 'Path'", CI 2026-12-03): the
        return  # signal is delivered again, so the run still ends as interrupted
    if (isinstance(exc, AttributeError) and str(getattr(exc, "name", "") or "").startswith("_")
            and "tritonclient" in getattr(obj, "__module__", "")):  # a private attribute __init__ never set
        return
    sys.__unraisablehook__(unraisable)


def main() -> None:
    """Install the signal handling first, then import the CLI and run it."""
    sys.unraisablehook = _quiet_half_built_clients
    try:
        with deferred():  # also a SIGINT between installing the two handlers waits for the block's end
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not SIG_IGN (`cmd &`)
                signal.signal(signal.SIGINT, on_signal)
            signal.signal(signal.SIGTERM, on_signal)
            from tritonstack.cli import main as run

        run()
    except KeyboardInterrupt:
        finish()
        _interrupted()
    except Exception as exc:
        if not ends_as_interrupt(exc):
            raise
        finish()
        _interrupted()
    finally:
        finish()


def _interrupted() -> None:
    """The one line of a run interrupted outside the CLI's own handling (JSON with --log-json once the
    CLI is imported), and exit 130 (SIGINT) or 143 (SIGTERM)."""
    cli = sys.modules.get("tritonstack.cli")
    if cli is not None and hasattr(cli, "_interrupted"):
        cli._interrupted(json_lines=cli._json_errors(None))  # noqa: SLF001
    sys.stderr.write("terminated\n" if TERMINATED else "interrupted\n")
    sys.exit(143 if TERMINATED else 130)

"""Keep third-party chatter (prints, root-logger warnings) out of the terminal during one step.

    with quiet():
        quantize_dynamic(...)

Our own warnings are returned to the caller (e.g. `Int8Result.warnings`) and printed by the CLI.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

__all__ = ["quiet"]


@contextlib.contextmanager
def quiet(level: int = logging.ERROR) -> Iterator[None]:
    """Silence stdout and log records below `level` from loggers without their own level."""
    root = logging.getLogger()
    previous = root.level
    root.setLevel(max(level, previous))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(previous)

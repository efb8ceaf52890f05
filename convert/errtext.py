"""Library errors as one complete line for our messages.

    raise ModelLoadError(f"{path} is not a valid ONNX model ({one_line(exc)}); re-export it")

Third-party messages often put what to fix at their end (missing keys after "Error(s) in loading
state_dict", the expected type after "does not match"), so a message is never cut at a fixed width:
lines are joined, terminal escape codes (torch's bold text) dropped and whitespace collapsed; only one
longer than `limit` loses part of its middle.
"""

from __future__ import annotations

import re

__all__ = ["KEEP_GOING_HINT", "one_line"]

#: Ends the message of a variant a model cannot take; left out where --keep-going already applies.
KEEP_GOING_HINT = " (or pass --keep-going to write the other variants)"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def one_line(exc: BaseException, *, limit: int = 2000) -> str:
    """The whole message of `exc` on one line; an over-long one keeps its head and its tail."""
    text = " ".join(_ANSI.sub("", str(exc)).split()) or type(exc).__name__
    if len(text) <= limit:
        return text
    head = text[: limit // 3].rsplit(" ", 1)[0]
    tail = text[-(limit - limit // 3):].split(" ", 1)[-1]
    return f"{head} ... {tail}"

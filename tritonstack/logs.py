"""Logging for tritonstack's processes: structured JSON lines (for ELK / Loki) or plain text.

    from tritonstack.logs import configure_logging, request_context

    configure_logging(json_lines=True)           # once, at process start (the CLI does it)
    with request_context("req-42"):
        _LOGGER.info("promoted %s to %s", model, version)
    # {"ts": "2026-11-23T18:40:01.123Z", "level": "INFO", "logger": "tritonstack.ops.versions",
    #  "message": "promoted digits_mlp to 2", "request_id": "req-42", "pid": 4242}

A request id comes from `request_context` (a contextvar, so it follows threads' and asyncio tasks'
own contexts) or from `extra={"request_id": ...}` on one call. Other `extra` fields are kept as
JSON keys; exceptions become an `exc_info` string.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

__all__ = ["JsonFormatter", "configure_logging", "current_request_id", "error_line", "request_context"]

_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tritonstack_request_id", default=None)
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_HANDLER_NAME = "tritonstack"


def current_request_id() -> str | None:
    """The request id of the current context, if any."""
    return _REQUEST_ID.get()


@contextmanager
def request_context(request_id: str) -> Iterator[None]:
    """Tag every log record emitted inside the block with `request_id`."""
    token = _REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        _REQUEST_ID.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ms), level, logger, message, request_id, pid, extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as a single line of JSON."""
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or _REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        entry["pid"] = record.process or os.getpid()
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(json_lines: bool, *, level: int | str = logging.INFO,
                      stream: IO[str] | None = None) -> logging.Handler:
    """Send the root logger's records to `stream` (stderr) as JSON lines or plain text.

    Idempotent: a second call replaces the handler this function installed, never others'.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def error_line(message: str, *, error: str, exit_code: int, logger: str = "tritonstack.cli") -> str:
    """The JSON line a failing CLI run ends with: same keys as a log record, plus `error` and `exit_code`."""
    record = logging.LogRecord(logger, logging.ERROR, __file__, 0, message, None, None)
    record.error, record.exit_code = error, exit_code
    return JsonFormatter().format(record)

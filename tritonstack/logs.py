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

The JSON rendering is python-json-logger's (extras, `exc_info` / `stack_info`, a dict passed as the
message, values JSON cannot encode); this module only fixes the keys (ts, level, logger, pid) and
adds the request id.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

__all__ = ["JsonFormatter", "configure_logging", "current_request_id", "error_line", "request_context"]

_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tritonstack_request_id", default=None)
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


class JsonFormatter(_LibraryJsonFormatter):
    """One JSON object per line: ts (UTC, ms), level, logger, message, extras, request_id, pid."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s", json_ensure_ascii=False,
                         rename_fields={"levelname": "level", "name": "logger"})

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        """Our keys around the library's: `ts` first, then `request_id` and `pid`."""
        log_data["ts"] = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                          + f".{int(record.msecs):03d}Z")
        super().add_fields(log_data, record, message_dict)
        request_id = getattr(record, "request_id", None) or _REQUEST_ID.get()
        if request_id:
            log_data["request_id"] = request_id
        log_data["pid"] = record.process or os.getpid()


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

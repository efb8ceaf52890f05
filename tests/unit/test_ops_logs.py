"""Structured JSON log lines with request ids."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tritonstack.logs import configure_logging, current_request_id, request_context


@pytest.fixture()
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(json_lines=True, stream=out)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_request_id_extras_and_exceptions(stream: io.StringIO) -> None:
    log = logging.getLogger("tritonstack.ops.test")
    with request_context("req-42"):
        log.info("promoted %s to %s", "digits_mlp", 2, extra={"model": "digits_mlp", "version": 2})
    log.warning("no request here")
    log.info("explicit", extra={"request_id": "req-7"})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    first, second, third, fourth = _lines(stream)
    assert first["message"] == "promoted digits_mlp to 2" and first["request_id"] == "req-42"
    assert first["model"] == "digits_mlp" and first["version"] == 2 and first["level"] == "INFO"
    assert first["logger"] == "tritonstack.ops.test" and first["ts"].endswith("Z") and first["pid"] > 0
    assert "request_id" not in second
    assert third["request_id"] == "req-7"
    assert "ValueError: boom" in fourth["exc_info"] and fourth["level"] == "ERROR"


def test_request_ids_do_not_leak_between_threads(stream: io.StringIO) -> None:
    log = logging.getLogger("tritonstack.ops.test")

    def work(rid: str) -> None:
        with request_context(rid):
            for _ in range(50):
                log.info("step", extra={"expected": rid})

    threads = [threading.Thread(target=work, args=(f"r{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = _lines(stream)
    assert len(lines) == 200 and all(line["request_id"] == line["expected"] for line in lines)
    assert current_request_id() is None


def test_configure_twice_keeps_one_handler_and_plain_text_mode() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    out = io.StringIO()
    configure_logging(json_lines=True, stream=io.StringIO())
    handler = configure_logging(json_lines=False, stream=out)
    try:
        assert [h for h in root.handlers if h not in before] == [handler]
        logging.getLogger("x").warning("plain %d", 1)
        assert out.getvalue().rstrip().endswith("WARNING x: plain 1")
    finally:
        root.removeHandler(handler)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tritonstack", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("how", ["flag", "env"])
def test_cli_errors_are_one_json_line_with_log_json(tmp_path: Path, how: str) -> None:
    args = ["serve", "--repository", str(tmp_path / "nope")]
    done = _cli("--log-json", *args) if how == "flag" else _cli(*args, env={"TRITONSTACK_LOG_JSON": "1"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    entry = json.loads(lines[0])
    assert entry["level"] == "ERROR" and entry["error"] == "ConfigError" and entry["exit_code"] == 2
    assert "does not exist" in entry["message"] and entry["ts"].endswith("Z") and entry["pid"] > 0


def test_cli_usage_errors_are_json_too_and_plain_text_stays_plain(tmp_path: Path) -> None:
    done = _cli("--log-json", "models", "biuld")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    entry = json.loads(line)
    assert entry["error"] == "UsageError" and "biuld" in entry["message"]
    plain = _cli("serve", "--repository", str(tmp_path / "nope"))
    assert plain.returncode == 2 and plain.stderr.startswith("error: ")


def test_dict_messages_stack_info_and_unencodable_extras_render(stream: io.StringIO) -> None:
    """What the library adds over a hand-written formatter: a dict as the message, stack_info, and any
    extra value (a Path, a set) rendered rather than failing the log call."""
    log = logging.getLogger("tritonstack.ops.test")
    log.info({"event": "promoted", "version": 2})
    log.warning("where", stack_info=True, extra={"path": Path("/tmp/x"), "tags": {"a"}})
    first, second = _lines(stream)
    assert first["event"] == "promoted" and first["version"] == 2 and first["level"] == "INFO"
    assert "test_dict_messages_stack_info" in second["stack_info"] and second["path"] == "/tmp/x"
    assert second["tags"] == "{'a'}" and list(second)[:4] == ["ts", "level", "logger", "message"]

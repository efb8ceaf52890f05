"""`ops drift-status` with a URL that is not one, or one on a port that does not speak HTTP (the gRPC
port), ends in one line with exit 2 (outsider 13c defect 4: a ValueError and a BadStatusLine traceback)."""

from __future__ import annotations

import socket
import threading

import pytest

from tritonstack.cli import main


def _one_line(capsys: pytest.CaptureFixture, url: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main(["ops", "drift-status", "--metrics-url", url])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exited.value.code == 2 and len(lines) == 1, lines
    print(f"\n{lines[0]}")
    return lines[0]


def test_garbage_url_is_one_line(capsys: pytest.CaptureFixture) -> None:
    assert "is not an http:// URL" in _one_line(capsys, "garbage")


def test_a_port_that_answers_no_http_is_one_line(capsys: pytest.CaptureFixture) -> None:
    """A loopback socket that answers like an HTTP/2-only (gRPC) port: bytes that are no status line."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)

    def answer_once() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(4096)
            conn.sendall(b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64\r\n")

    thread = threading.Thread(target=answer_once, daemon=True)
    thread.start()
    try:
        line = _one_line(capsys, f"http://127.0.0.1:{listener.getsockname()[1]}/metrics")
    finally:
        listener.close()
        thread.join(timeout=20)
    assert "did not answer as an HTTP metrics page" in line and "gRPC port" in line

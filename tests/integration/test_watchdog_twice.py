"""A second crash while the watchdog is still restarting the server is recovered too (outside tester's
find: the restart thread died on the new server's dropped connection, and `serve` stayed up serving
nothing)."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tritonstack.client import TritonClient
from tritonstack.serve import EmbeddedServer, ServerConfig


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def watched(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    config = ServerConfig(repository=repository, ort_threads=1, restart_on_crash=True,
                          log_dir=tmp_path_factory.mktemp("crash-logs-twice"),
                          grpc_port=_port(), http_port=_port(), metrics_port=_port())
    with EmbeddedServer(config) as server:
        yield server


def _until(predicate, timeout_s: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_kill_during_the_restart_is_recovered(watched: EmbeddedServer) -> None:
    first = watched.pid
    os.kill(first, signal.SIGKILL)
    assert _until(lambda: watched.pid not in (None, first), 30), "no relaunch started"
    second = watched.pid
    os.kill(second, signal.SIGKILL)  # while the relaunch is still starting or loading models
    started = time.monotonic()
    assert _until(lambda: watched.pid not in (None, first, second) and watched.is_model_ready("digits_mlp"), 60)
    with TritonClient(watched.grpc_url) as client:
        client.wait_until_ready(timeout_s=30, model="digits_mlp")
        out = client.infer("digits_mlp", np.zeros((2, 64), np.float32))["probabilities"]
    print(f"\nkilled pid {first}, then pid {second} during its restart: serving again "
          f"{time.monotonic() - started:.1f} s later as pid {watched.pid}; "
          f"{len(watched.watchdog.events)} restart events, {len(list(watched.crash_log_dir.iterdir()))} crash logs")
    assert out.shape == (2, 10)
    assert watched.alive and not watched.watchdog.gave_up
    assert watched.watchdog._thread.is_alive(), "the watchdog thread survived"

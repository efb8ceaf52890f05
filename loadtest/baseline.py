"""Start and stop the seed-style FastAPI + PyTorch baseline (uvicorn, N workers) on loopback.

with BaselineServer(weights=Path("mlp.npz"), cpus=frozenset({0})) as baseline:
    url = baseline.url + "/predict"
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tritonstack.errors import LoadTestError

__all__ = ["BaselineServer"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class BaselineServer:
    """uvicorn serving `tritonstack.loadtest.baseline_app:app`, pinned to `cpus`."""

    weights: Path
    cpus: frozenset[int] | None = None
    workers: int = 2
    ready_timeout_s: float = 60.0
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        """http://127.0.0.1:port"""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BaselineServer:
        """Launch uvicorn and wait until /health answers."""
        self.port = _free_port()
        env = {**os.environ, "TRITONSTACK_BASELINE_WEIGHTS": str(Path(self.weights).resolve())}
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "tritonstack.loadtest.baseline_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        cpus = self.cpus
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter and module
            argv,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                err = (
                    self.process.stderr.read().decode(errors="replace")[-800:] if self.process.stderr else ""
                )
                raise LoadTestError(f"baseline uvicorn exited with {self.process.returncode}: {err}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise LoadTestError(f"baseline uvicorn not ready after {self.ready_timeout_s:.0f} s")

    def stop(self) -> None:
        """SIGTERM the uvicorn process group (master and workers), SIGKILL after 10 s."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        self.process = None

    def __enter__(self) -> BaselineServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

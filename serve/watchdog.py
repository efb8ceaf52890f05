"""Restart a tritonserver that died on its own (SIGKILL, SIGSEGV, ...) and keep the log of the crash.

    watchdog = ServerWatchdog(process=lambda: server.process, relaunch=server.relaunch,
                              keep_log=server.keep_crash_log)
    watchdog.start()
    ...
    watchdog.stop()
    watchdog.events   # [RestartEvent(exit_code=-9, log=Path(".../crash-20261201-221503-SIGKILL.log"), ...)]

A crash in the server (a native backend's bug, Triton 2.51's HTTP stack overflow on a large body)
takes every model down at once, and Triton does not come back by itself. The watchdog polls the
process; when it has exited while nobody asked it to stop, the log is copied out of the work dir
(which the relaunch replaces) and the server is started again with the same repository, ports and
admin key. A relaunch that fails is retried `attempts` times, one second apart, then given up
(`gave_up`): the caller (e.g. `tritonstack serve`) then stops with the reason.

The relaunch runs in the watchdog's own thread, which lives until `stop()`: the child's death signal
(PR_SET_PDEATHSIG) is tied to the thread that started it.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tritonstack.errors import TritonStackError

__all__ = ["RestartEvent", "ServerWatchdog", "default_log_dir", "describe_exit", "how_it_ended", "keep_log"]

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RestartEvent:
    """One death of the server and what followed (times from time.monotonic())."""

    exit_code: int | None
    detected_s: float
    ready_s: float | None
    log: Path | None
    error: str | None = None

    @property
    def restart_s(self) -> float | None:
        """Seconds from detecting the death to the server answering ready again."""
        return None if self.ready_s is None else self.ready_s - self.detected_s


def default_log_dir() -> Path:
    """Where crash logs are kept: `$XDG_STATE_HOME/tritonstack/crash-logs` (~/.local/state/...)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "tritonstack" / "crash-logs"


def how_it_ended(code: int | None) -> str:
    """'was killed by SIGKILL' or 'exited with code 1', for messages."""
    if code is not None and code < 0:
        return f"was killed by {describe_exit(code)}"
    return f"exited with code {code}"


def describe_exit(code: int | None) -> str:
    """'SIGKILL' or 'exit1' (crash-log file names)."""
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal{-code}"
    return f"exit{code}"


def keep_log(source: Path, log_dir: Path, exit_code: int | None) -> Path | None:
    """Copy a dead server's log to `log_dir/crash-<UTC time>-<signal>.log` (0600); None if there is none."""
    if not source.is_file():
        return None
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    target = log_dir / f"crash-{stamp}-{describe_exit(exit_code)}.log"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, source.open("rb") as log:
        shutil.copyfileobj(log, out)
    _prune(log_dir)
    return target


KEEP_CRASH_LOGS = 50  # the newest ones; crash logs of older deaths are removed (a kill loop made 71)


def _prune(log_dir: Path) -> None:
    """Remove all but the newest KEEP_CRASH_LOGS crash logs (their names sort by time)."""
    for old in sorted(log_dir.glob("crash-*.log"))[:-KEEP_CRASH_LOGS]:
        try:
            old.unlink()
        except OSError:
            pass


class ServerWatchdog:
    """Background thread: relaunch the server when its process exits unasked."""

    def __init__(self, *, process: Callable[[], subprocess.Popen[bytes] | None],
                 relaunch: Callable[[], None], keep_log: Callable[[int | None], Path | None],
                 interval_s: float = 0.1, attempts: int = 3) -> None:
        self.process = process
        self.relaunch = relaunch
        self.keep_log = keep_log
        self.interval_s = interval_s
        self.attempts = attempts
        self.events: list[RestartEvent] = []
        self.gave_up = False
        self._restart_reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="server-watchdog", daemon=True)

    def start(self) -> None:
        """Start watching."""
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop watching (idempotent); waits for a relaunch in progress, which sees the stop."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout_s)

    @property
    def stopping(self) -> bool:
        """True once stop() was called."""
        return self._stop.is_set()

    def request_restart(self, reason: str) -> None:
        """Restart the server from the watchdog's thread (e.g. to heal what a reload cannot): its
        process group is killed, the log kept, and it is relaunched like after a crash."""
        self._restart_reason = reason

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s) and not self.gave_up:
            process = self.process()
            if process is not None and process.poll() is None and self._restart_reason is not None:
                self._kill(process)
            if process is not None and process.poll() is not None:
                self._recover(process.returncode)

    def _kill(self, process: subprocess.Popen[bytes]) -> None:
        _LOGGER.warning("restarting tritonserver: %s", self._restart_reason)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def _recover(self, code: int | None) -> None:
        detected = time.monotonic()
        log = self.keep_log(code)
        reason, self._restart_reason = self._restart_reason, None
        if reason is None:
            _LOGGER.warning("tritonserver died (%s); its log is kept in %s; restarting it",
                            describe_exit(code), log)
        error = None
        for attempt in range(1, self.attempts + 1):
            if self._stop.is_set():
                return
            try:
                self.relaunch()
            except Exception as exc:  # noqa: BLE001 - any failure (the new server dying mid-start too) is retried
                error = (str(exc).splitlines() or [type(exc).__name__])[0]
                if not isinstance(exc, TritonStackError):
                    error = f"{type(exc).__name__}: {error}"
                _LOGGER.warning("restart %d/%d of tritonserver failed: %s", attempt, self.attempts, error)
                self._keep_failed_attempt_log()
                self._stop.wait(1.0)
                continue
            ready = time.monotonic()
            _LOGGER.warning("tritonserver restarted in %.1f s (same ports and repository)", ready - detected)
            self.events.append(RestartEvent(exit_code=code, detected_s=detected, ready_s=ready, log=log))
            return
        self.events.append(RestartEvent(exit_code=code, detected_s=detected, ready_s=None, log=log,
                                        error=error))
        self.gave_up = not self._stop.is_set()

    def _keep_failed_attempt_log(self) -> None:
        process = self.process()
        if process is not None and process.poll() is not None:
            try:
                self.keep_log(process.returncode)
            except OSError as exc:
                _LOGGER.warning("could not keep the log of the failed restart: %s", exc)

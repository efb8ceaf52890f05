"""The watchdog's requested restart, on `sleep` processes standing in for tritonserver (no server)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tritonstack.serve.watchdog import ServerWatchdog


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"], start_new_session=True)  # noqa: S607 - own process group


def test_a_requested_restart_kills_the_server_and_relaunches_it(tmp_path: Path) -> None:
    processes = [_sleeper()]
    watchdog = ServerWatchdog(process=lambda: processes[-1], relaunch=lambda: processes.append(_sleeper()),
                              keep_log=lambda code: None, interval_s=0.01)
    watchdog.start()
    try:
        time.sleep(0.1)
        assert not watchdog.events, "a live server is left alone"
        watchdog.request_restart("model m lost a stub while serving 2 versions")
        deadline = time.monotonic() + 20
        while not watchdog.events and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
    finally:
        watchdog.stop()
        for process in processes:
            process.kill()
            process.wait()
    assert len(processes) == 2 and len(watchdog.events) == 1, "restarted once, not again"
    assert processes[0].returncode == -9 and watchdog.events[0].error is None

"""The reaper (serve/reaper.py): when the process that started it is SIGKILLed, the tracked server group
is stopped (SIGKILL after the grace period when SIGTERM is ignored), its /dev/shm files and work dir
removed; a clean `done` leaves everything alone. No Triton here: a stand-in "server" that ignores
SIGTERM (the real thing is tests/integration/test_serve_killed.py)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from tritonstack.serve.reaper import Reaper, _stop_group, group_members, process_start_time

ROOT = Path(__file__).resolve().parents[2]
STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
            "time.sleep(600)")
PARENT = f"""
import subprocess, sys, time
from pathlib import Path
from tritonstack.serve.reaper import Reaper
server = subprocess.Popen([sys.executable, "-c", {STUBBORN!r}], start_new_session=True, stdout=subprocess.PIPE)
server.stdout.readline()  # SIGTERM is ignored from now on
reaper = Reaper.start(sys.argv[1], grace_s=1)
reaper.track(Path(sys.argv[2]), server.pid)
print(server.pid, reaper.process.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _wait(condition, timeout_s: float = 30.0) -> float:  # noqa: ANN001
    start = time.monotonic()
    while not condition() and time.monotonic() - start < timeout_s:
        time.sleep(0.1)
    return time.monotonic() - start


def _leftovers(tmp_path: Path) -> tuple[str, Path, Path]:
    prefix = f"tritonstack_test_{secrets.token_hex(4)}_"
    shm = Path("/dev/shm") / f"{prefix}region"
    shm.write_bytes(b"x")
    workdir = tmp_path / "tritonstack-serve-test"
    (workdir / "repository").mkdir(parents=True)
    (workdir / "admin.key").write_text("secret\n")
    return prefix, shm, workdir


def test_a_sigkilled_parent_leaves_no_server_shm_file_or_work_dir(tmp_path: Path) -> None:
    prefix, shm, workdir = _leftovers(tmp_path)
    parent = subprocess.Popen([sys.executable, "-c", PARENT, prefix, str(workdir)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    server = reaper = None
    try:
        server, reaper = map(int, parent.stdout.readline().split())
        assert _alive(server) and _alive(reaper)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        took = _wait(lambda: not _alive(server) and not workdir.exists() and not shm.exists())
        print(f"\nreaper: server (ignoring SIGTERM) killed and leftovers removed {took:.1f} s after SIGKILL")
        assert not _alive(server) and not workdir.exists() and not shm.exists()
        assert _wait(lambda: not _alive(reaper)) < 30 and not _alive(reaper)
    finally:
        for pid in (parent.pid, server, reaper):
            if pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)
        parent.wait(timeout=30)
        parent.stdout.close()
        shm.unlink(missing_ok=True)


def test_done_leaves_everything_alone_and_the_reaper_exits(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    prefix, shm, workdir = _leftovers(tmp_path)
    monkeypatch.setenv("TRITONSTACK_ADMIN_KEY", "do-not-inherit")
    try:
        reaper = Reaper.start(prefix, grace_s=1)
        assert b"do-not-inherit" not in Path(f"/proc/{reaper.process.pid}/environ").read_bytes()
        reaper.track(workdir, None)
        reaper.clear()
        reaper.track(workdir, None)
        reaper.done()
        assert reaper.process.returncode == 0
        assert workdir.is_dir() and shm.exists()
    finally:
        shm.unlink(missing_ok=True)


def test_a_reused_pid_is_not_signalled() -> None:
    other = subprocess.Popen([sys.executable, "-c", STUBBORN], start_new_session=True, stdout=subprocess.PIPE)
    try:
        other.stdout.readline()  # SIGTERM is ignored from now on
        started = process_start_time(other.pid)
        assert started is not None and group_members(other.pid) == [other.pid]
        _stop_group(other.pid, started + 1, grace_s=0.1)  # recorded start differs: another process
        assert other.poll() is None
        _stop_group(other.pid, started, grace_s=0.2)  # ignores SIGTERM: killed after the grace period
        assert other.wait(timeout=30) == -signal.SIGKILL
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
        other.stdout.close()

"""Clean up after a `serve` that died without stopping its server (SIGKILL, OOM killer, crash).

    reaper = Reaper.start(shm_prefix="tritonstack_123_ab12cd34_", grace_s=5)
    reaper.track(workdir, server_pid)     # after each launch (pid None while there is no server yet)
    reaper.clear()                        # after serve's own teardown
    reaper.done()                         # serve is stopping cleanly: the reaper exits, doing nothing

A SIGKILLed `serve` runs no cleanup. Its tritonserver gets SIGTERM from the kernel
(PR_SET_PDEATHSIG, sandbox.py) and, when it shuts down cleanly, takes its stubs and their /dev/shm
files with it; but nothing removed the work dir (admin key file, TLS copies, shadow repository)
before the next start, and a server that ignored SIGTERM, or stubs that outlived it, stayed.

The reaper is a small separate Python process (stdlib only, this file run as a script, its own
session so Ctrl-C on the terminal does not reach it) that holds the read end of a pipe whose only
write end is in `serve` (not inheritable: tritonserver never gets it). `serve` tells it what to clean
up; when the pipe ends without `done`, `serve` is gone, and the reaper: SIGTERMs the server (a no-op
after the death signal), waits `grace_s` for the server's process group to empty, SIGKILLs what is
left, then removes the /dev/shm files with the server's prefix and the work dir. A server whose pid
now belongs to another process (start time differs) is not signalled. The next start's
`remove_stale_workdirs` stays as the fallback for a reaper that was killed too.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["Reaper", "group_members", "process_start_time"]

_LOGGER = logging.getLogger(__name__)
_KILL_WAIT_S = 10.0


def process_start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot, /proc/<pid>/stat field 22), None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": field 3 onwards
    return int(fields[19])


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


class Reaper:
    """`serve`'s side: starts the reaper process and tells it what to clean up (see module docstring)."""

    def __init__(self, process: subprocess.Popen[bytes], pipe: int) -> None:
        self.process = process
        self._pipe = pipe

    @classmethod
    def start(cls, shm_prefix: str, grace_s: float) -> Reaper:
        """Start the reaper process for a server whose /dev/shm files start with `shm_prefix`."""
        read_end, write_end = os.pipe()  # both non-inheritable; only the reaper gets read_end
        argv = [sys.executable, "-I", str(Path(__file__).resolve()), str(read_end), shm_prefix, str(grace_s)]
        try:
            process = subprocess.Popen(  # noqa: S603 - this interpreter, this file
                argv,
                pass_fds=(read_end,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True, cwd="/",
                env={"PYTHONUTF8": "1"})  # nothing of serve's environment (e.g. TRITONSTACK_ADMIN_KEY)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        return cls(process, write_end)

    def track(self, workdir: Path, pid: int | None) -> None:
        """The server's work dir and, once launched, its pid (also its process group id)."""
        start = process_start_time(pid) if pid else None
        self._send(f"track {pid or 0} {start or 0} {workdir}")

    def clear(self) -> None:
        """`serve` removed the server and its work dir itself: nothing to clean up now."""
        self._send("clear")

    def done(self) -> None:
        """`serve` stops cleanly: the reaper exits without touching anything."""
        self._send("done")
        self._close()
        try:
            self.process.wait(timeout=_KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            _LOGGER.warning("the reaper (pid %s) did not exit; killing it", self.process.pid)
            self.process.kill()
            self.process.wait()

    def _send(self, line: str) -> None:
        if self._pipe < 0:
            return
        try:
            os.write(self._pipe, f"{line}\n".encode())
        except OSError as exc:  # the reaper is gone: the next start's stale-workdir sweep remains
            _LOGGER.warning("the reaper (pid %s) is gone (%s); a SIGKILLed serve would leave its work dir",
                            self.process.pid, exc)
            self._close()

    def _close(self) -> None:
        if self._pipe >= 0:
            os.close(self._pipe)
            self._pipe = -1


# -- the reaper process ---------------------------------------------------------------------------
def _stop_group(pid: int, started: int, grace_s: float) -> None:
    """SIGTERM the server, wait up to `grace_s` for its group to empty, SIGKILL what is left."""
    now = process_start_time(pid)
    if now is not None and now != started:
        return  # the pid is another process now: the server's group is long empty
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, _KILL_WAIT_S)):
        if not group_members(pid):
            return
        try:
            os.kill(pid, sig) if sig == signal.SIGTERM else os.killpg(pid, sig)
        except OSError:
            pass
        deadline = time.monotonic() + wait_s
        while group_members(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def _clean(tracked: tuple[int, int, Path] | None, shm_prefix: str, grace_s: float) -> None:
    if tracked is not None and tracked[0]:
        _stop_group(tracked[0], tracked[1], grace_s)
    for leftover in Path("/dev/shm").glob(f"{shm_prefix}*"):
        leftover.unlink(missing_ok=True)
    if tracked is not None:
        shutil.rmtree(tracked[2], ignore_errors=True)


def _main(argv: list[str]) -> int:
    """Read serve's messages until `done` (exit) or the end of the pipe (serve died: clean up)."""
    fd, shm_prefix, grace_s = int(argv[0]), argv[1], float(argv[2])
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    tracked: tuple[int, int, Path] | None = None
    with os.fdopen(fd, "r") as pipe:
        for line in pipe:
            word, _, rest = line.rstrip("\n").partition(" ")
            if word == "done":
                return 0
            if word == "clear":
                tracked = None
            elif word == "track":
                pid, start, workdir = rest.split(" ", 2)
                tracked = (int(pid), int(start), Path(workdir))
    _clean(tracked, shm_prefix, grace_s)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

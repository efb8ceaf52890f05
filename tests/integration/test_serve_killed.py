"""Issue 13: `kill -9 <tritonstack serve>` leaves nothing behind, without waiting for the next start.

The real CLI is started as a subprocess on free loopback ports, with the Python runner (so there is a
stub and /dev/shm files), and a private temp dir (so its work dir is known). Once it serves, every
process of it is recorded by PID from /proc (tritonserver, its stubs, the reaper); `serve` is then
SIGKILLed and, within a generous bound, none of them may remain, the work dir must be gone and no
/dev/shm file with its prefix (`tritonstack_<serve pid>_`) may remain. Prints the time it took (-s).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tritonstack.serve.supervisor import find_stubs

from tests.integration.test_lifecycle import _port, _ready

BOUND_S = 30.0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat and int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _wait(condition, timeout_s: float) -> float:  # noqa: ANN001
    start = time.monotonic()
    while not condition() and time.monotonic() - start < timeout_s:
        time.sleep(0.2)
    return time.monotonic() - start


def _end(serve: subprocess.Popen, pids: list[int]) -> None:
    """Whatever a failed test left: serve, then the processes it tracked, by PID."""
    if serve.poll() is None:
        serve.kill()
        serve.wait()
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture()
def small_repo(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("killed") / "model_repository"
    shutil.copytree(repository / "digits_mlp", root / "digits_mlp", ignore=shutil.ignore_patterns("[2-9]"))
    return root


def test_sigkilled_serve_leaves_no_process_work_dir_or_shm_file(small_repo: Path, tmp_path_factory) -> None:  # noqa: ANN001
    temp = tmp_path_factory.mktemp("serve-tmp")  # the work-dir root (TMPDIR), reachable by the server's user
    grpc_port, metrics_port = _port(), _port()
    argv = [sys.executable, "-m", "tritonstack", "serve", "--repository", str(small_repo), "--runner", "python",
            f"--grpc-port={grpc_port}", f"--metrics-port={metrics_port}", "--ort-threads=1",
            "--log-dir", str(tmp_path_factory.mktemp("crash-logs"))]
    serve = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,  # noqa: S603
                             env={**os.environ, "TMPDIR": str(temp)})
    tracked: list[int] = []
    try:
        assert _wait(lambda: _ready(grpc_port) or serve.poll() is not None, 180) < 180 and _ready(grpc_port)
        servers = [pid for pid in _children(serve.pid) if "tritonserver" in Path(f"/proc/{pid}/cmdline").read_text()]
        tracked = [pid for s in servers for pid in (s, *(stub.pid for stub in find_stubs(s)))]
        tracked = sorted({*tracked, *_children(serve.pid)})  # the reaper as well
        shm_prefix = f"tritonstack_{serve.pid}_"
        shm = lambda: sorted(p.name for p in Path("/dev/shm").glob(f"{shm_prefix}*"))  # noqa: E731
        workdirs = [p.name for p in temp.iterdir()]
        print(f"\nserve {serve.pid}: tritonserver {servers}, tracked {tracked}, work dirs {workdirs}, "
              f"{len(shm())} shm file(s)")
        assert len(servers) == 1 and len(tracked) >= 3 and len(workdirs) == 1 and shm()  # a stub and its files

        os.kill(serve.pid, signal.SIGKILL)
        serve.wait(timeout=30)
        took = _wait(lambda: not any(map(_alive, tracked)) and not any(temp.iterdir()) and not shm(), BOUND_S)
        print(f"after SIGKILL: processes {[p for p in tracked if _alive(p)]}, work dirs "
              f"{[p.name for p in temp.iterdir()]}, shm {shm()} after {took:.1f} s")
        assert [p for p in tracked if _alive(p)] == []
        assert list(temp.iterdir()) == []
        assert shm() == []
    finally:
        _end(serve, tracked)


def test_a_server_killed_during_start_up_is_started_again_with_its_log_kept(small_repo: Path, tmp_path) -> None:  # noqa: ANN001
    """Outsider round 8: SIGKILL of tritonserver 0.2 s into `serve`'s first start ended `serve` (exit 2,
    no crash log); after start-up the watchdog restarts it. Now the start is tried again too."""
    import threading

    from tritonstack.serve import EmbeddedServer, ServerConfig

    server = EmbeddedServer(ServerConfig(repository=small_repo, ort_threads=1, restart_on_crash=True,
                                         log_dir=tmp_path / "crash-logs"))
    killed: list[int] = []

    def kill_the_first_one() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            process = server.process
            if process is not None and process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                killed.append(process.pid)
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_the_first_one)
    killer.start()
    with server:
        killer.join()
        states = {s["name"]: s["state"] for s in server.model_states()}
        pid = server.pid
    print(f"killed {killed} during start-up; served by {pid}: {states}")
    assert killed and pid != killed[0] and states.get("digits_mlp") == "READY"
    assert list((tmp_path / "crash-logs").glob("*SIGKILL*"))


def test_keep_awake_spinners_live_with_serve_and_end_with_it(small_repo: Path, tmp_path) -> None:  # noqa: ANN001
    """`serve --keep-awake`: one idle-priority spinner per CPU of serve while it serves; a spinner killed by
    someone is reaped and started again (outsider round 10: it stayed a zombie, its CPU no longer kept
    awake); a SIGKILLed serve leaves none behind (they watch their parent)."""
    grpc_port, metrics_port = _port(), _port()
    argv = [sys.executable, "-m", "tritonstack", "serve", "--repository", str(small_repo), "--keep-awake",
            f"--grpc-port={grpc_port}", f"--metrics-port={metrics_port}", "--ort-threads=1",
            "--log-dir", str(tmp_path / "crash-logs")]
    serve = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    cpus = sorted(os.sched_getaffinity(0))
    spinners: list[int] = []

    def find() -> list[int]:
        found = []
        for pid in _children(serve.pid):
            with contextlib.suppress(OSError):
                if "SCHED_IDLE" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace") and _alive(pid) \
                        and os.sched_getscheduler(pid) == os.SCHED_IDLE:
                    found.append(pid)
        return found

    try:
        assert _wait(lambda: _ready(grpc_port) or serve.poll() is not None, 180) < 180 and _ready(grpc_port)
        _wait(lambda: len(find()) == len(cpus), 30)
        spinners = find()
        assert len(spinners) == len(cpus)
        assert sorted(next(iter(os.sched_getaffinity(p))) for p in spinners) == cpus
        os.kill(spinners[0], signal.SIGKILL)
        took = _wait(lambda: len(find()) == len(cpus) and spinners[0] not in find(), 15)
        again = find()
        assert len(again) == len(cpus) and spinners[0] not in again
        assert not Path(f"/proc/{spinners[0]}").exists(), "the killed spinner was not reaped"
        print(f"\n{len(spinners)} spinner(s) {spinners}; one SIGKILLed, replaced in {took:.2f} s: {again}")
        spinners = again
        os.kill(serve.pid, signal.SIGKILL)
        serve.wait(timeout=30)
        took = _wait(lambda: not any(map(_alive, spinners)), BOUND_S)
        print(f"after SIGKILL of serve, its spinners were gone in {took:.2f} s")
        assert not any(map(_alive, spinners))
    finally:
        _end(serve, spinners)

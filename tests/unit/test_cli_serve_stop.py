"""`tritonstack serve` stopping: a requested stop (SIGTERM) is a calm "stopped", whatever exit code
tritonserver gives after SIGTERM; a server that died on its own is an error with its exit code and log.

The server is a stand-in object (this is about the CLI's lines, not Triton): each case runs the real
command in a subprocess, so its signal handlers never touch the test process.
"""

import subprocess
import sys

import pytest

LIMIT_S = 60

_CODE = """
import os, signal, sys
import tritonstack.serve as serve

class Server:
    security, grpc_url, http_url, metrics_url, crash_log_dir = None, "127.0.0.1:1", None, "m", "/crash-logs"
    log_path, death = "/work/tritonserver.log", "was killed by SIGSEGV"
    def __init__(self, config): self.alive = sys.argv[1] == "stop"
    def start(self): return self
    def model_states(self):
        if sys.argv[1] == "stop":
            os.kill(os.getpid(), signal.SIGTERM)
        return [{"name": "m", "version": "1", "state": "READY"}]
    def interrupt(self): pass
    def kill(self): pass
    def stop(self): return 1  # what tritonserver returned after SIGTERM in the outsider's run

serve.EmbeddedServer = Server
from tritonstack.cli import main
main(["serve", "--repository", sys.argv[2], "--grpc-port", "0", "--metrics-port", "0", *sys.argv[3:]])
"""


@pytest.mark.parametrize("case", ["stop", "died", "died-no-restart"])
def test_a_requested_stop_is_calm_and_a_crash_says_its_exit_code_and_log(case, tmp_path):
    extra = ["--no-restart-on-crash"] if case == "died-no-restart" else []
    done = subprocess.run(
        [sys.executable, "-c", _CODE, case.split("-")[0], str(tmp_path), *extra], capture_output=True, text=True,
        timeout=LIMIT_S,
    )
    tail = (done.stdout + done.stderr).strip().splitlines()[-1]
    print(f"{case}: exit {done.returncode}, last line: {tail}")
    assert "Traceback" not in done.stderr
    if case == "stop":
        assert done.returncode == 0 and tail == "stopped" and "exit code" not in done.stdout + done.stderr
    elif case == "died":
        assert done.returncode == 2 and "/crash-logs" in tail  # round 8: it said "exit code None"
        assert tail.endswith("tritonserver was killed by SIGSEGV and could not be restarted; its logs are in "
                             "/crash-logs")
    else:  # round 10: "could not be restarted" when no restart was tried
        assert done.returncode == 2
        assert tail.endswith("tritonserver was killed by SIGSEGV and was not restarted (--no-restart-on-crash); "
                             "its logs are in /crash-logs")


def test_how_a_server_ended_reads_as_words():
    from tritonstack.serve.watchdog import how_it_ended

    assert how_it_ended(-9) == "was killed by SIGKILL" and how_it_ended(3) == "exited with code 3"


def test_only_the_newest_crash_logs_are_kept(tmp_path):
    """Round 8: a kill loop left 71 crash logs; the newest KEEP_CRASH_LOGS stay."""
    from tritonstack.serve.watchdog import KEEP_CRASH_LOGS, keep_log

    log = tmp_path / "tritonserver.log"
    log.write_text("boom\n")
    kept = [keep_log(log, tmp_path / "crash-logs", -9) for _ in range(KEEP_CRASH_LOGS + 5)]
    left = sorted((tmp_path / "crash-logs").glob("crash-*.log"))
    assert left == sorted(kept[-KEEP_CRASH_LOGS:])

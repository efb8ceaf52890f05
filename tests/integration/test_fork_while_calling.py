"""Starting processes with a preexec_fn (how `serve` starts tritonserver) while gRPC calls are in flight.

grpcio >= 1.81 runs its fork handlers in every fork; with them on, ~2% of such children aborted before
exec ("epoll_wait error: Bad file descriptor") or hung, and once the test session itself segfaulted (CI, stop 21).
Importing tritonstack turns gRPC's fork support off; every child must then exec and exit 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def test_children_started_while_calling_the_server_all_exec(server) -> None:  # noqa: ANN001
    script = textwrap.dedent(f"""
        import resource, subprocess, threading, time
        import tritonstack  # sets GRPC_ENABLE_FORK_SUPPORT before gRPC's first use
        from tritonstack.client import TritonClient
        stop = threading.Event()
        def call():
            with TritonClient({server.grpc_url!r}) as client:
                while not stop.is_set():
                    client.is_ready()
        threads = [threading.Thread(target=call) for _ in range(2)]
        for t in threads:
            t.start()
        def pre():
            resource.setrlimit(resource.RLIMIT_STACK, resource.getrlimit(resource.RLIMIT_STACK))
        codes = [subprocess.Popen(["/bin/true"], preexec_fn=pre).wait() for _ in range(400)]
        stop.set()
        for t in threads:
            t.join()
        print(sum(c != 0 for c in codes), "of", len(codes), "children failed")
    """)
    env = {k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "0 of 400 children failed", (done.stdout, done.stderr[-2000:])
    assert "Bad file descriptor" not in done.stderr

"""Process limits of the tritonserver child.

    subprocess.Popen(argv, preexec_fn=with_large_stack(guard.preexec), ...)

Triton 2.51's HTTP server overflows a thread stack on a request body of about half the stack size,
whatever the path (inference, health, an unknown URL) and before any restricted-API check:
measured here, 8 MiB stacks (the usual `ulimit -s`) crash on bodies over 4 MiB (SIGSEGV), 64 MiB
stacks on 40 MiB but not 30 MiB. Threads take their default stack size from RLIMIT_STACK at exec,
and stack pages cost memory only when touched, so the server runs with SERVER_STACK_BYTES of stack.
A larger body still crashes it: that is why HTTP is off unless asked for (`ServerConfig.http`,
`serve --http`), and why the watchdog (`watchdog.py`) restarts the server. The large stack is kept with
HTTP off too (it costs nothing); the metrics port, another HTTP library, answered a 300 MiB POST with 405
with 8 MiB and 1 GiB stacks alike.
"""

from __future__ import annotations

import resource
from collections.abc import Callable

__all__ = ["HTTP_SAFE_BODY_BYTES", "SERVER_STACK_BYTES", "with_large_stack"]

SERVER_STACK_BYTES = 1 << 30
#: HTTP request bodies up to this size cannot crash the server (under half its stack, with margin).
HTTP_SAFE_BODY_BYTES = 256 << 20


def with_large_stack(preexec: Callable[[], None] | None) -> Callable[[], None]:
    """A preexec_fn: raise the stack limit (up to the hard limit), then run `preexec`."""

    def run() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_STACK)
        soft = SERVER_STACK_BYTES if hard == resource.RLIM_INFINITY else min(SERVER_STACK_BYTES, hard)
        resource.setrlimit(resource.RLIMIT_STACK, (soft, hard))
        if preexec is not None:
            preexec()

    return run

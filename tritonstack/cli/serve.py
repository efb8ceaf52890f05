"""`tritonstack serve`: run the embedded Triton server until Ctrl-C or SIGTERM.

    tritonstack serve                     # gRPC :8001 and metrics :8002 on 127.0.0.1; no HTTP
    tritonstack serve --http              # also HTTP :8000 (one warning line: its residual risk)
    tritonstack serve --keep-awake        # CPUs kept from halting: on some VMs, a lower p99 at low load
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

__all__ = ["HTTP_RISK", "register", "states_table"]

_LOGGER = logging.getLogger(__name__)

#: The one line `serve --http` prints at start (serve/limits.py has the measurements).
HTTP_RISK = ("HTTP is on: Triton 2.51's HTTP endpoint can be crashed by one request body over 256 MiB "
             "(no key needed); `serve` restarts it (--restart-on-crash), see README, Security")


def states_table(states: list[dict]) -> Table:
    """Rich table of model states."""
    table = Table("model", "version", "state", "reason")
    for s in states:
        state = s.get("state") or "UNAVAILABLE"
        colour = "green" if state == "READY" else "yellow"
        table.add_row(s["name"], s.get("version", ""), f"[{colour}]{state}[/]", s.get("reason", ""))
    return table


def serve(
    repository: Annotated[Path, typer.Option(help="Triton model repository to serve.")] = Path(
        "model_repository"),
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    grpc_port: Annotated[int, typer.Option(help="gRPC port (0: any free port).")] = 8001,
    http: Annotated[bool, typer.Option(
        "--http", help="Also open Triton's HTTP endpoint (off by default: 2.51's can be crashed by a "
                       "request body over 256 MiB; see README, Security).")] = False,
    http_port: Annotated[int, typer.Option(help="HTTP port, with --http (0: any free port).")] = 8000,
    metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port.")] = 8002,
    ort_threads: Annotated[int | None, typer.Option(help="ONNX Runtime threads per instance.")] = None,  # noqa: UP007
    runner: Annotated[str, typer.Option(
        help="ONNX models run on the 'native' C++ backend or the 'python' runner.")] = "native",
    admin_key: Annotated[str | None, typer.Option(  # noqa: UP007
        envvar="TRITONSTACK_ADMIN_KEY",
        help="Key for the restricted endpoints (model control, shared memory, logging, trace). "
             "Prefer TRITONSTACK_ADMIN_KEY or @FILE: a value here shows in `ps`.")] = None,
    unrestricted: Annotated[bool, typer.Option(help="Do not restrict admin endpoints (unsafe).")] = False,
    tls_cert: Annotated[Path | None, typer.Option(help="gRPC TLS server certificate (PEM).")] = None,  # noqa: UP007
    tls_key: Annotated[Path | None, typer.Option(help="gRPC TLS server key (PEM).")] = None,  # noqa: UP007
    tls_root_cert: Annotated[Path | None, typer.Option(  # noqa: UP007
        help="Root certificate: enables mutual TLS.")] = None,
    user: Annotated[str | None, typer.Option(  # noqa: UP007
        help="Started as root: run tritonserver as this user (default: the dedicated 'tritonstack', "
             "created if missing; 'root' opts out, unsafe).")] = None,
    restart_on_crash: Annotated[bool, typer.Option(
        help="Restart tritonserver on the same ports if it dies; its log is kept.")] = True,
    log_dir: Annotated[Path | None, typer.Option(  # noqa: UP007
        help="Where crashed servers' logs are kept (default ~/.local/state/tritonstack/crash-logs).")] = None,
    cache_size_mb: Annotated[int | None, typer.Option(  # noqa: UP007
        help="Response cache size for models with response_cache enabled (default 64 when any "
             "model enables it; 0 turns it off).")] = None,
    latency_quantiles: Annotated[bool, typer.Option(
        help="Per-request latency summaries (p50/p90/p99) on /metrics; the p99 alert needs them. "
             "They cost ~20% of req/s for tiny models at ~10k req/s.")] = True,
    keep_awake: Annotated[bool, typer.Option(
        help="Keep this server's CPUs from halting when idle (an idle-priority spinner per CPU). On a "
             "virtual machine whose idle vCPUs are slow to wake, a lower tail at low load (perf_analyzer "
             "p99 at concurrency 1 on one host: 1.0-1.6 ms vs 0.9-2.4 ms); on another host it made no "
             "difference or a worse tail: measure before using it (README W2-p99). The CPUs never idle: "
             "power, cloud CPU credits, and CPU metrics (nv_cpu_utilization, top) read 100%.")] = False,
) -> None:
    """Serve a model repository with the real Triton Inference Server (embedded, CPU)."""
    from tritonstack.cli import console
    from tritonstack.cli.admin_key import admin_key as key_of
    from tritonstack.errors import ConfigError, ServerError
    from tritonstack.serve import EmbeddedServer, ServerConfig, TlsConfig

    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together; pass both or neither")
    tls = TlsConfig(server_cert=tls_cert, server_key=tls_key, root_cert=tls_root_cert) if tls_cert else None
    config = ServerConfig(repository=repository, host=host, grpc_port=grpc_port, http=http,
                          http_port=http_port, metrics_port=metrics_port, ort_threads=ort_threads,
                          admin_key=key_of(admin_key), restrict_endpoints=not unrestricted, tls=tls,
                          runner=runner, user=user, restart_on_crash=restart_on_crash, log_dir=log_dir,
                          cache_size_mb=cache_size_mb, latency_quantiles=latency_quantiles)
    stop, server = threading.Event(), EmbeddedServer(config)
    _stop_on_signals(stop, server)
    if http:
        restart = "" if restart_on_crash else " (not with --no-restart-on-crash: it stays down)"
        console.print(f"[yellow]warning: {HTTP_RISK}{restart}[/]", soft_wrap=True)
    try:
        with console.status("starting tritonserver..."):
            server.start()
    except ServerError:
        if not stop.is_set():
            raise
        console.print("stopped during start-up (SIGINT/SIGTERM); nothing left running")
        return  # a stop asked for: exit 0, as while serving
    died = False
    try:
        for warning in server.security.warnings if server.security else []:
            console.print(f"[yellow]warning: {warning}[/]")
        console.print(f"gRPC     {server.grpc_url}\nHTTP     {server.http_url or 'off (--http to open it)'}")
        console.print(f"metrics  {server.metrics_url}")
        restarted = " (restarted on crash)" if restart_on_crash else ""
        console.print(f"logs     server log {server.log_path} (removed at stop); crashed servers' logs are "
                      f"kept in {server.crash_log_dir}{restarted}", soft_wrap=True)
        states = server.model_states()
        console.print(states_table(states))
        if states and not any(state.get("state") == "READY" for state in states):
            console.print("[yellow]warning: no model is READY: every request will fail; see the reasons "
                          "above (or the server log) and fix the repository[/]")
        console.print("serving; Ctrl-C or SIGTERM to stop")
        _wait_for_stop(stop, server, keep_awake)
        died = not stop.is_set()
        death = server.death if died else ""
    finally:
        code = server.stop()
        if not died:  # a stop asked for: tritonserver's own exit code after SIGTERM says nothing more
            _LOGGER.debug("tritonserver exit code %s after the requested stop", code)
            console.print("stopped")
    if died:
        after = "could not be restarted" if restart_on_crash else "was not restarted (--no-restart-on-crash)"
        raise ServerError(f"tritonserver {death} and {after}; its logs are in {server.crash_log_dir}")


def _wait_for_stop(stop: threading.Event, server, keep_awake: bool) -> None:  # noqa: ANN001
    """Until a stop is asked for or tritonserver is gone; --keep-awake spinners that died are replaced."""
    from tritonstack.cli import console

    with _awake(keep_awake) as spinners:
        ticks = 0
        while not stop.is_set() and server.alive:
            # Never stop.wait(): the signal handler runs in this thread and sets `stop`; interrupting this
            # thread inside Event.wait() while it holds the Event's lock, Event.set() waited for that lock
            # for good (1 stop in 6 hung on SIGTERM right after "serving"). is_set() takes no lock.
            time.sleep(0.1)
            ticks += 1
            for cpu in spinners.replace_dead() if spinners and ticks % 5 == 0 else []:
                console.print(f"the --keep-awake spinner of CPU {cpu} died; started again")


def _awake(keep_awake: bool):  # noqa: ANN202
    """This process's CPUs kept from halting (`--keep-awake`), else nothing."""
    if not keep_awake:
        return contextlib.nullcontext(None)
    from tritonstack.cli import console
    from tritonstack.serve.keep_awake import kept_awake

    cpus = frozenset(os.sched_getaffinity(0))
    console.print(f"keeping CPU {','.join(map(str, sorted(cpus)))} awake (--keep-awake)")
    return kept_awake(cpus)


def _stop_on_signals(stop: threading.Event, server) -> None:  # noqa: ANN001
    """SIGINT/SIGTERM: stop (a start-up in progress gives up at once); a second one kills the server."""

    def handler(*_: object) -> None:
        if stop.is_set():
            server.kill()
        stop.set()
        server.interrupt()

    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # ignored since the start (`serve &`): stays so
            signal.signal(sig, handler)


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command()(serve)

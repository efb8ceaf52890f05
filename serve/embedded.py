"""Run the real Triton Inference Server from the nvidia-pytriton wheel as a child process.

    from tritonstack.serve import EmbeddedServer, ServerConfig

    with EmbeddedServer(ServerConfig(repository=Path("model_repository"))) as server:
        print(server.grpc_url, server.model_states())

The repository is served through a shadow of it in the server's work dir (`shadow.py`: the models left
to the Python runner switched to it, so every model is loaded before ready). The server gets its own process
group, a private work directory (backend directory, shadow repository, log) and a private shared-memory
prefix, so `stop()` leaves no tritonserver or stub process and no
/dev/shm file behind. HTTP is off unless `ServerConfig.http` (config.py): every call the launcher makes
(readiness, model control, the repository index) goes over gRPC with the admin key (`control.py`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from tritonclient.utils import InferenceServerException
from tritonstack.serve.binary import PYTHON_RUNNER_BACKEND, TritonInstall, find_install
from tritonstack.serve.cache import cache_arguments
from tritonstack.serve.config import ADMIN_HEADER, ServerConfig
from tritonstack.serve.control import TritonGrpc, grpc_key_headers, status_name
from tritonstack.serve.launch_security import LaunchSecurity, http_host
from tritonstack.serve.limits import with_large_stack
from tritonstack.serve.load_errors import load_errors, one_line
from tritonstack.serve.plan import (
    RepositoryPlan,
    plan_repository,
    python_runner_config,
    python_runner_reason,
    skip_reason,
)
from tritonstack.serve.ports import check_free, owns_listeners
from tritonstack.serve.reaper import Reaper
from tritonstack.serve.shadow import build_shadow, release_shadow
from tritonstack.serve.supervisor import StubSupervisor
from tritonstack.serve.tls_check import check_tls_files
from tritonstack.serve.watchdog import ServerWatchdog, default_log_dir, how_it_ended, keep_log
from tritonstack.serve.workdirs import make_workdir

from tritonstack.errors import ConfigError, ServerError, ServerStartError, TritonStackError

__all__ = ["EmbeddedServer", "ModelState"]

_LOGGER = logging.getLogger(__name__)
START_ATTEMPTS = 5  # a server killed by a signal during start-up is started again, as the watchdog does
#: (2.51 segfaults in 1 of 4-8 starts when a model's warm-up fails, either runner: outsider round 12)


class _CrashedDuringStart(ServerStartError):
    """tritonserver was killed by a signal during start-up (its log is kept)."""


class _ControlTimeout(ServerError):
    """A load/unload call got no answer in time."""

#: Triton's default gRPC request-object reuse pool is kept: with `--grpc-infer-allocation-pool-size=0`
#: (which freed a refused huge request's buffer, issue 12 A10) tritonserver 2.51 segfaults in
#: TRITONSERVER_InferenceRequestDelete as soon as a ModelStreamInfer stream has two requests in flight;
#: with 1 the memory is kept all the same. So reused objects keep their largest buffers (R13, open).
#: Bounds of the launcher's own gRPC calls (seconds): a model load, a readiness probe, anything else.
LOAD_TIMEOUT_S, PROBE_TIMEOUT_S, QUERY_TIMEOUT_S = 120.0, 1.0, 10.0
#: A stub's model reloaded by the supervisor: a reload takes 1-5 s; one whose new stub was killed during the
#: reload never finishes in 2.51 (outsider round 13), and it held the supervisor (every other model's heal)
#: for LOAD_TIMEOUT_S at a time, so past this the server is restarted instead (with a watchdog: `serve`'s
#: default; without one the heal fails, is recorded, and is tried again while the deficit lasts).
HEAL_TIMEOUT_S = 20.0
ModelState = dict  # {"name", "version", "state", "reason"} as Triton's repository index reports
#: Per-request latency summaries (deploy/prometheus/alerts.yml reads the p99), unless
#: ServerConfig(latency_quantiles=False): measured 2026-12-02, server on one core, perf_analyzer at
#: concurrency 32 on the MLP, ~8.2k req/s with them vs ~10.5k without (the error bounds do not matter).
LATENCY_QUANTILES = ("--metrics-config=summary_latencies=true",
                     "--metrics-config=summary_quantiles=0.5:0.05,0.9:0.01,0.99:0.001")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmbeddedServer:
    """A running tritonserver serving a standard model repository (explicit model control)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.admin_key = config.admin_key or secrets.token_hex(16)
        self.shm_prefix = f"tritonstack_{os.getpid()}_{secrets.token_hex(4)}_"
        self.process: subprocess.Popen[bytes] | None = None
        self.workdir: Path | None = None
        self.plan: RepositoryPlan | None = None
        self.shadow: Path | None = None  # the repository tritonserver serves (shadow.py)
        self.ports: dict[str, int] = {}
        self.supervisor: StubSupervisor | None = None
        self.security: LaunchSecurity | None = None
        self.watchdog: ServerWatchdog | None = None
        self._stopping = threading.Event()
        self._pinned_ports: dict[str, int] = {}  # a relaunch keeps the ports it had
        self._reaper: Reaper | None = None  # cleans up if this process dies without stop() (reaper.py)


    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> EmbeddedServer:
        """Start the server and wait until it is ready; raise ServerStartError otherwise. With
        `restart_on_crash`, a watchdog restarts it when it dies (same ports; the crash log is kept)."""
        self._stopping.clear()
        try:
            self._start_through_crashes()
        except BaseException:
            self._dismiss_reaper()
            raise
        if self.config.restart_on_crash and self.watchdog is None:
            self.watchdog = ServerWatchdog(process=lambda: self.process, relaunch=self.relaunch,
                                           keep_log=self.keep_crash_log)
            self.watchdog.start()
        return self

    def _start_through_crashes(self) -> None:
        """_start; with `restart_on_crash`, a server killed by a signal during start-up (a crash, or a
        kill from outside) is started again, same ports, up to START_ATTEMPTS times, its log kept
        (outsider round 8: a SIGKILL 0.2 s into the first start ended `serve` with no log)."""
        try:
            for attempt in range(1, START_ATTEMPTS + 1):
                try:
                    self._start()
                    return
                except _CrashedDuringStart as exc:
                    last = attempt == START_ATTEMPTS
                    if not self.config.restart_on_crash or last or self._stopping.is_set():
                        raise
                    _LOGGER.warning("%s; starting it again (%d/%d)", exc, attempt + 1, START_ATTEMPTS)
                    self._pinned_ports = dict(self.ports)
        finally:
            self._pinned_ports = {}

    def _start(self) -> None:
        if self.config.tls is not None:
            check_tls_files(self.config.tls)  # one line naming the file, not gRPC core's 45 (tls_check.py)
        install = find_install()
        if self._reaper is None:
            self._reaper = Reaper.start(self.shm_prefix, grace_s=min(self.config.exit_timeout_s, 5))
        self.workdir = make_workdir()  # stale ones of a SIGKILLed serve removed first
        self._reaper.track(self.workdir, None)
        try:
            backends = install.prepare_backends(self.workdir, runner=self.config.runner)
            self.plan = plan_repository(self.config.repository, runner=self.config.runner)
            self._secure(install)
            self.shadow = build_shadow(self.config.repository, self.plan, self.workdir / "repository",
                                       owner=self.security.user if self.security else None)
            self.ports = dict(self._pinned_ports) or {k: getattr(self.config, f"{k}_port") or _free_port(
                self._host(k)) for k in self._listeners}
            argv = [str(install.binary), *self._arguments(backends), *install.backend_arguments(
                runner=self.config.runner, ort_threads=self.config.ort_threads,
                drift_gauges=self.config.drift_gauges)]
            self._launch(argv, install.environment(ort_threads=self.config.ort_threads))
            self._wait_ready()
            release_shadow(self.shadow, self.config.repository, self.plan)  # later loads: user's files
            if self.config.supervise:
                self.supervisor = StubSupervisor(self.pid, heal=self.heal_model, states=self.model_states,
                                                 instances=self.instance_count)
                self.supervisor.start()
        except BaseException:
            self._teardown()
            raise

    def _secure(self, install: TritonInstall) -> None:
        """User, key file, shim, TLS copies (launch_security.py); ports free; unreadable models skipped."""
        assert self.workdir is not None and self.plan is not None
        check_free(self.config.host, {"grpc": self.config.grpc_port, "metrics": self.config.metrics_port})
        if self.config.http:
            check_free(self._host("http"), {"http": self.config.http_port})
        self.security = LaunchSecurity.prepare(self.workdir, self.config, admin_key=self.admin_key,
                                               runtime=[install.root, install.libs])
        for warning in self.security.warnings:
            _LOGGER.warning("%s", warning)
        for model, reason in self.security.unreadable.items():
            if model in self.plan.models:
                self.plan.models.remove(model)
                self.plan.skipped[model] = reason

    def _host(self, kind: str) -> str:
        return http_host(self.config) if kind == "http" else self.config.host

    @property
    def _listeners(self) -> tuple[str, ...]:
        """The endpoints tritonserver opens: no HTTP unless asked for (config.py)."""
        return ("grpc", "http", "metrics") if self.config.http else ("grpc", "metrics")

    def _launch(self, argv: list[str], env: dict[str, str]) -> None:
        assert self.workdir is not None and self.security is not None
        log = open(self.workdir / "tritonserver.log", "wb")  # noqa: SIM115 - owned by the child
        _LOGGER.debug("starting %s", " ".join(argv))
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary, our arguments
            argv, env=self.security.environment(env), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=self.workdir, umask=0o077,
            preexec_fn=with_large_stack(self.security.preexec),  # limits.py: 2.51's HTTP stack overflow
        )
        log.close()
        if self._reaper is not None:
            self._reaper.track(self.workdir, self.process.pid)

    def _arguments(self, backends: Path) -> list[str]:
        assert self.plan is not None
        c = self.config
        args = [
            f"--model-repository={self.shadow}",
            f"--backend-directory={backends}",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            *self._http_arguments(),
            f"--grpc-address={c.host}", f"--grpc-port={self.ports['grpc']}",
            f"--metrics-address={c.host}", f"--metrics-port={self.ports['metrics']}",
            "--model-control-mode=explicit",
            *(f"--load-model={m}" for m in self.plan.models),  # Python-routed ones too: see shadow.py
            "--exit-on-error=false", "--strict-readiness=false",
            f"--exit-timeout-secs={c.exit_timeout_s}", f"--log-verbose={c.log_verbose}",
            "--allow-cpu-metrics=true",
            *(LATENCY_QUANTILES if c.latency_quantiles else ()),
        ]
        assert self.security is not None
        cache = cache_arguments(c.repository, self.plan.models, c.cache_size_mb)
        return args + self.security.arguments(c) + cache

    def _http_arguments(self) -> list[str]:
        if not self.config.http:
            return ["--allow-http=false"]
        return [f"--http-address={self._host('http')}", f"--http-port={self.ports['http']}"]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.config.ready_timeout_s
        while time.monotonic() < deadline:
            if self._stopping.is_set():
                raise ServerStartError("tritonserver start-up interrupted: the server is being stopped")
            if self.process is not None and self.process.poll() is not None:
                raise self._start_failure()
            if self._answers_ready() and self._listening():
                return
            time.sleep(0.1)
        raise ServerStartError(
            f"tritonserver was not ready after {self.config.ready_timeout_s:.0f} s; "
            f"raise ready_timeout_s or read the log:\n{self.log_tail()}"
        )

    def _listening(self) -> bool:
        """True when the process we started holds every port (not another server on them), with the
        key taken over by the shim (never a server running with the placeholder as its key)."""
        assert self.process is not None and self.security is not None
        if not owns_listeners(self.process.pid, self.ports.values()):
            return False
        if not self.security.key_consumed():
            raise ServerStartError("tritonserver started without reading its admin key (the launch shim "
                                   "did not run); refusing to serve with a placeholder key")
        return True

    def _start_failure(self) -> TritonStackError:
        """One line for a start-up exit: a port taken since the check, or the log's last lines."""
        assert self.process is not None
        tail = self.log_tail()
        taken = [line for line in tail.splitlines() if "already in use" in line]
        for kind, port in self.ports.items():
            if any(f":{port}" in line for line in taken) and self._port_taken(kind, port):
                return ConfigError(f"{kind} port {port} is already in use; pass --{kind}-port with another "
                                   "port (0 picks a free one) or stop what holds it")
        code = self.process.returncode
        if code is not None and code < 0:  # a crash or a kill: the log is kept, the start may be tried again
            kept = self.keep_crash_log(code)
            return _CrashedDuringStart(f"tritonserver {how_it_ended(code)} during start-up (its log is kept "
                                       f"in {kept}); last log lines:\n{tail or '(none)'}")
        return ServerStartError(f"tritonserver {how_it_ended(code)} during start-up; last log lines:\n"
                                f"{tail or '(none)'}")

    def _port_taken(self, kind: str, port: int) -> bool:
        """True when `port` cannot be bound now: tritonserver says "already in use" for any gRPC
        start-up failure (a bad TLS file too), so its word alone never blames the port."""
        try:
            check_free(self._host(kind), {kind: port})
        except ConfigError:
            return True
        return False

    def stop(self) -> int | None:
        """Stop the server (SIGTERM, then SIGKILL), its stubs and watchdog, and remove what it left
        behind; the log of a server that had died on its own is kept (`keep_crash_log`)."""
        self._stopping.set()
        if self.watchdog is not None:
            self.watchdog.stop(timeout_s=self.config.ready_timeout_s + 10)
            self.watchdog = None
        if self.process is not None and self.process.poll() not in (None, 0):
            self.keep_crash_log(self.process.returncode)
        code = self._teardown()
        self._dismiss_reaper()
        return code

    def _dismiss_reaper(self) -> None:
        """Everything is cleaned up by us: let the reaper exit without doing anything."""
        if self._reaper is not None:
            self._reaper.done()
            self._reaper = None

    def relaunch(self) -> None:
        """Start the server again after it died: same repository, ports and admin key."""
        if self._stopping.is_set():
            return
        self._pinned_ports = dict(self.ports)
        try:
            self._teardown()
            self._start()
        finally:
            self._pinned_ports = {}

    def keep_crash_log(self, exit_code: int | None) -> Path | None:
        """Copy the server's log to the crash-log folder (ServerConfig.log_dir); return its path."""
        if self.workdir is None:
            return None
        return keep_log(self.workdir / "tritonserver.log", self.crash_log_dir, exit_code)

    @property
    def crash_log_dir(self) -> Path:
        """Where the logs of servers that died are kept."""
        return self.config.log_dir or default_log_dir()

    @property
    def alive(self) -> bool:
        """True while the server runs, or is being restarted by its watchdog."""
        if self.watchdog is not None and not self.watchdog.gave_up:
            return True
        return self.process is not None and self.process.poll() is None

    @property
    def death(self) -> str:
        """How the server last died, for messages: 'was killed by SIGKILL' (the watchdog's last restart
        event when it gave up: its own process object is the failed restart's)."""
        events = self.watchdog.events if self.watchdog is not None else []
        code = events[-1].exit_code if events else (self.process.poll() if self.process is not None else None)
        return how_it_ended(code)

    def interrupt(self) -> None:
        """Make a start-up in progress give up (from a signal handler); stop() still has to follow."""
        self._stopping.set()

    def kill(self) -> None:
        """SIGKILL the server's process group now (a second Ctrl-C); stop() still cleans up."""
        self._stopping.set()
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _teardown(self) -> int | None:
        code = None
        if self.supervisor is not None:
            self.supervisor.stop()
            self.supervisor = None
        if self.process is not None:
            code = self._terminate(self.process)
            self.process = None
        self._remove_shm()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
            self.shadow = None
        if self._reaper is not None:
            self._reaper.clear()
        return code

    def _terminate(self, process: subprocess.Popen[bytes]) -> int | None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self.config.exit_timeout_s + 10)
            except subprocess.TimeoutExpired:
                _LOGGER.warning("tritonserver ignored SIGTERM; killing it")
        try:
            os.killpg(process.pid, signal.SIGKILL)  # stubs left in the group, if any
        except ProcessLookupError:
            pass
        return process.wait()

    def _remove_shm(self) -> None:
        for leftover in Path("/dev/shm").glob(f"{self.shm_prefix}*"):
            leftover.unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedServer:
        return self if self.process is not None else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- model control (explicit mode; needs the admin key, which this object holds) ------------
    def load_model(self, name: str) -> None:
        """(Re)load `name` from the repository as it is now; Triton keeps serving the old version
        if the new one fails to load. Raise ServerError with Triton's reason."""
        reason = skip_reason(self.config.repository / name)
        if reason:
            raise ServerError(f"model {name!r} cannot run on this host: {reason}")
        if self.config.runner == "native" and python_runner_reason(self.config.repository / name):
            config = python_runner_config(self.config.repository / name)
            return self._model_control(name, "load", config)
        self._model_control(name, "load")

    def reload_model(self, name: str, *, timeout_s: float = LOAD_TIMEOUT_S) -> None:
        """Force a reload of `name` with its current config (new model instances, new stubs)."""
        config = self._query(lambda triton: triton.config(name, timeout_s=QUERY_TIMEOUT_S))
        # Triton reloads only when the config differs from the loaded one: stamp it.
        config.setdefault("parameters", {})["tritonstack_reload"] = {"string_value": str(time.time_ns())}
        self._model_control(name, "reload", json.dumps(config), timeout_s=timeout_s)

    def heal_model(self, name: str) -> None:
        """Bring back a model whose stub died: reload it, or, when it serves several versions and a
        watchdog runs, restart the server. Triton 2.51 crashed (SIGSEGV in TRITONBACKEND_ResponseSend)
        reloading a two-version Python-backend model under load after one version's stub died, in
        2 of 3 runs: a restart on the same ports (~3 s) is what reliably heals it."""
        ready = [s for s in self.model_states() if s.get("name") == name and s.get("state") == "READY"]
        if len(ready) > 1 and self.watchdog is not None:
            self.watchdog.request_restart(f"model {name} lost a stub while serving {len(ready)} versions "
                                          "(Triton 2.51 cannot reload that safely)")
            return
        try:
            self.reload_model(name, timeout_s=HEAL_TIMEOUT_S)
        except _ControlTimeout:
            if self.watchdog is None:
                raise
            self.watchdog.request_restart(f"model {name} did not come back from its reload within "
                                          f"{HEAL_TIMEOUT_S:g} s (a stub killed during the reload hangs "
                                          "it in Triton 2.51)")

    def instance_count(self, name: str) -> int:
        """How many Python stubs one loaded version of `name` runs (0 for ensembles)."""
        config = self._query(lambda triton: triton.config(name, timeout_s=QUERY_TIMEOUT_S))
        native = self.config.runner == "native"
        stub_backends = ("python", PYTHON_RUNNER_BACKEND) + (() if native else ("onnxruntime",))
        if config.get("platform") == "ensemble" or config.get("backend") not in stub_backends:
            return 0
        return sum(int(group.get("count", 1)) for group in config.get("instance_group", [])) or 1

    def is_model_ready(self, name: str) -> bool:
        """True when Triton reports `name` ready."""
        try:
            with self._grpc() as triton:
                return triton.is_model_ready(name, timeout_s=PROBE_TIMEOUT_S)
        except InferenceServerException:
            return False

    def unload_model(self, name: str) -> None:
        """Unload `name` (in-flight requests finish first)."""
        self._model_control(name, "unload")

    def _model_control(self, name: str, action: str, config: str | None = None, *,
                       timeout_s: float = LOAD_TIMEOUT_S) -> None:
        """Load/reload/unload over gRPC; ServerError with Triton's reason if it fails."""
        try:
            with self._grpc() as triton:
                if action == "unload":
                    triton.unload(name, timeout_s=timeout_s)
                else:
                    triton.load(name, config=config, timeout_s=timeout_s)
        except InferenceServerException as exc:
            kind = _ControlTimeout if status_name(exc) == "DEADLINE_EXCEEDED" else ServerError
            raise kind(f"{action} of model {name!r} failed: {exc.message()}") from exc

    @contextmanager
    def _grpc(self) -> Iterator[TritonGrpc]:
        """A channel for one control call (a relaunch may change nothing but the process behind it)."""
        triton = TritonGrpc(self._control_target, admin_key=self.admin_key, tls=self.config.tls)
        try:
            yield triton
        finally:
            triton.close()

    def _query(self, call):  # noqa: ANN001, ANN202 - TritonGrpc -> answer
        """Run a read-only call; an unreachable or silent server is ConnectionError (as a refused socket
        is), any other refusal ServerError."""
        try:
            with self._grpc() as triton:
                return call(triton)
        except InferenceServerException as exc:
            if status_name(exc) in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
                raise ConnectionError(f"tritonserver at {self._control_target}: {exc.message()}") from exc
            raise ServerError(f"tritonserver at {self._control_target} refused: {exc.message()}") from exc

    @property
    def _control_target(self) -> str:
        """host:port the launcher calls: loopback when bound to every address."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.config.host, self.config.host)  # noqa: S104
        return f"[{host}]:{self.ports['grpc']}" if ":" in host else f"{host}:{self.ports['grpc']}"

    # -- inspection --------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The tritonserver process id while running."""
        return self.process.pid if self.process is not None else None

    @property
    def grpc_url(self) -> str:
        """host:port of the gRPC endpoint."""
        return f"{self.config.host}:{self.ports['grpc']}"

    @property
    def http_url(self) -> str | None:
        """http://host:port of the HTTP endpoint; None when HTTP is off (the default, config.py)."""
        return None if self.http_address is None else f"http://{self.http_address}"

    @property
    def http_address(self) -> str | None:
        """host:port of the HTTP endpoint ([::1]:port for IPv6); None when HTTP is off."""
        if "http" not in self.ports:
            return None
        host = self._host("http")
        return f"[{host}]:{self.ports['http']}" if ":" in host else f"{host}:{self.ports['http']}"

    @property
    def metrics_url(self) -> str:
        """URL of the Prometheus metrics endpoint."""
        return f"http://{self.config.host}:{self.ports['metrics']}/metrics"

    @property
    def admin_headers(self) -> dict[str, str]:
        """HTTP headers that unlock the restricted endpoints (model control, shared memory, ...)."""
        return {ADMIN_HEADER: self.admin_key}

    @property
    def grpc_admin_headers(self) -> dict[str, str]:
        """gRPC metadata that unlocks the restricted protocols (Triton prefixes the key)."""
        return grpc_key_headers(self.admin_key)

    def model_states(self) -> list[ModelState]:
        """Every model of the repository with its state and reason, plus skipped ones."""
        index = self._query(lambda triton: triton.index(timeout_s=QUERY_TIMEOUT_S))
        assert self.plan is not None
        states = [s for s in index if s["name"] not in self.plan.skipped]
        logged = functools.cache(self._load_errors)  # the log is read only for a model that needs it
        for entry in states:  # a folder Triton lists but never loaded has no state: its log says why
            if "state" not in entry:
                entry.update(version=entry.get("version", ""), state="UNAVAILABLE",
                             reason=entry.get("reason") or self._not_loaded_reason(entry["name"], logged()))
            elif entry.get("reason"):
                entry["reason"] = one_line(entry["reason"])
        skipped = [{"name": n, "version": "", "state": "SKIPPED", "reason": r}
                   for n, r in self.plan.skipped.items()]
        listed = {s["name"] for s in states + skipped}
        unlisted = [{"name": d.name, "version": "", "state": "UNAVAILABLE",
                     "reason": self._not_loaded_reason(d.name, logged())}
                    for d in self.config.repository.iterdir()
                    if d.is_dir() and not d.name.startswith(".") and d.name not in listed]
        return sorted(states + skipped + unlisted, key=lambda s: (s["name"], s.get("version", "")))

    def _load_errors(self) -> dict[str, str]:
        """model -> Triton's newest load error for it in this server's log (load_errors.py)."""
        log = self.log_path
        return load_errors(log.read_text(errors="replace")) if log is not None and log.is_file() else {}

    @property
    def log_path(self) -> Path | None:
        """The running server's log (removed at stop; a crashed server's is kept in `crash_log_dir`)."""
        return self.workdir / "tritonserver.log" if self.workdir is not None else None

    def _not_loaded_reason(self, name: str, logged: dict[str, str]) -> str:
        if name in logged:
            return logged[name]
        folder = self.config.repository / name
        if not (folder / "config.pbtxt").is_file():
            return f"{folder} has no config.pbtxt: add one, or remove the folder"
        if not any(p.is_dir() and p.name.isdigit() for p in folder.iterdir()):
            return f"{folder} has no version folder (1/, 2/, ...): add one"
        return f"not loaded; load it (model control) or read the server log {self.log_path}"

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server logged."""
        if self.workdir is None or not (self.workdir / "tritonserver.log").exists():
            return ""
        text = (self.workdir / "tritonserver.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _answers_ready(self) -> bool:
        """True when the gRPC endpoint answers server-ready (ownership of the ports: `_listening`)."""
        try:
            with self._grpc() as triton:
                return triton.is_ready(timeout_s=PROBE_TIMEOUT_S)
        except InferenceServerException:
            return False

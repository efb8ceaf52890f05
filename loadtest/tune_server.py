"""The server `tune` measures on: one embedded Triton serving only the tuned model, config swaps that
fail without taking the sweep down, and a restart when the server itself dies.

    with TuneServer(repository, "digits_mlp", split=CoreSplit.default()) as ts:
        current = ts.current                  # the ModelConfig as Triton loaded it (the baseline)
        ts.load(candidate_config)             # LoadTestError with Triton's reason; current restored
        ts.url                                # gRPC host:port for the load generator

The server sees a private repository view (a temp folder with a link to the model's folder, and to
the models an ensemble steps through), so the other models of a full repository neither load nor
share the server's core while points are measured. Candidates are the loaded config with fields
changed (same backend and runner as the baseline), applied with Triton's load-with-config override:
no file is touched.

Every load is a full reload (each config carries a fresh `tritonstack_tune_load` parameter), so each
candidate is measured on fresh instances, never on an in-place instance update of the previous one.

The model is measured as `serve` runs it, without drift gauges (`drift_gauges=False`: no work that is
not the model's). Drift-reference models used to run on the Python backend, which is what broke the
README's sweep: loading a 2-instance candidate sometimes aborted tritonserver itself
during the second Python stub's ModelInstanceInitialize ("malloc_consolidate(): unaligned fastbin
chunk detected", SIGABRT; 2 of 3 sweeps here, 0 of 24 loads of the same configs in a loop). The
server then either exits (the next load: "Connection refused") or hangs in its shutdown (the next
load: "Deadline Exceeded"). So a load is bounded (`LOAD_TIMEOUT_S`), a failed load checks the
process and its log for a fatal signal, and a crashed or hung server is restarted: the candidate is
skipped with that reason and the sweep goes on.

A stop (`should_stop()`, e.g. Ctrl-C) is honoured within ~0.1 s while the server starts or a config
loads: the load call runs in a worker thread that is abandoned (its channel closed), the start-up is
interrupted, and `__exit__` stops the server; its `exit_timeout_s` is short (`EXIT_TIMEOUT_S`) since
nothing it still does matters once the sweep ends, and after a stop a server still there (hung) then is
SIGKILLed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from tritonstack.loadtest.pinning import CoreSplit, pin_pid, pin_process_group

from tritonstack.errors import ConfigError, LoadTestError, TritonStackError

__all__ = ["TuneServer", "model_folder"]

_LOGGER = logging.getLogger(__name__)
LOAD_TIMEOUT_S = 60  # digits_mlp loads in 1-3 s here; a load still pending after a minute is a hang
_CRASH_MARKS = ("Signal (6)", "Signal (11)", "Signal (7)", "malloc")
EXIT_TIMEOUT_S = 3  # SIGTERM to SIGKILL when the sweep ends: nothing in flight is worth waiting for
_POLL_S = 0.1


class StoppedError(LoadTestError):
    """The sweep was asked to stop (Ctrl-C / SIGTERM) while the server started or a config loaded."""


def model_folder(repository: Path, model: str) -> Path:
    """The model's folder; ConfigError naming the models the repository has otherwise."""
    folder = Path(repository) / model
    if not (folder / "config.pbtxt").is_file():
        known = ", ".join(sorted(p.parent.name for p in Path(repository).glob("*/config.pbtxt"))) or "none"
        raise ConfigError(
            f"model {model!r} has no {folder / 'config.pbtxt'}; models in {repository}: {known} "
            "(pass --repository or build it with `tritonstack models build`)"
        )
    return folder


def _steps(folder: Path) -> list[str]:
    """Models an ensemble's config steps through (none for other models)."""
    from tritonstack.model_config import read_config

    config = read_config(folder / "config.pbtxt")
    return [step.model_name for step in config.ensemble_scheduling.step]


def _view(repository: Path, model: str) -> Path:
    """A temp repository holding links to `model` and, recursively, its ensemble steps."""
    view = Path(tempfile.mkdtemp(prefix="tritonstack-tune-"))
    view.chmod(0o755)  # the server may run as its own user
    todo, seen = [model], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        folder = model_folder(repository, name).resolve()
        (view / name).symlink_to(folder, target_is_directory=True)
        todo += _steps(folder)
    return view


class TuneServer:
    """An embedded server on the model's repository view, pinned to the server side of `split`."""

    def __init__(
        self, repository: Path, model: str, *, split: CoreSplit, should_stop: Callable[[], bool] | None = None
    ) -> None:
        self.repository, self.model, self.split = Path(repository), model, split
        self.should_stop = should_stop  # once true (Ctrl-C/SIGTERM), nothing is restored or restarted
        self.view: Path | None = None
        self.server: Any = None
        self.current: Any = None
        self._affinity = frozenset(os.sched_getaffinity(0))
        self.restarts = 0

    def __enter__(self) -> TuneServer:
        self.view = _view(self.repository, self.model)
        try:
            self._start()
            self.current = self._loaded_config()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.server is not None:
            group = self.server.pid
            if self._stopping():
                _end_within(self.server, EXIT_TIMEOUT_S)
            self.server.stop()
            self.server = None
            _wait_group_gone(group)
        pin_pid(os.getpid(), self._affinity)
        if self.view is not None:
            shutil.rmtree(self.view, ignore_errors=True)
            self.view = None

    def _start(self) -> None:
        from tritonstack.client import TritonClient
        from tritonstack.serve import EmbeddedServer, ServerConfig

        # supervise=False: the stub supervisor would take the stubs that a reload retires for dead
        # ones and reload the model from config.pbtxt, silently undoing the candidate being measured.
        # drift_gauges=False: the drift gauges' per-batch work is not part of what is tuned.
        config = ServerConfig(repository=self.view, ort_threads=len(self.split.server), ready_timeout_s=120,
                              supervise=False, drift_gauges=False, exit_timeout_s=EXIT_TIMEOUT_S)
        server = EmbeddedServer(config)
        with _interrupt_on_stop(server, self._stopping):
            self.server = server.start()
        pin_process_group(self.server.pid, self.split.server)
        pin_pid(os.getpid(), self.split.generator)  # new stubs inherit the server's CPUs
        with TritonClient(self.server.grpc_url) as client:
            client.wait_until_ready(timeout_s=120, model=self.model)

    @property
    def url(self) -> str:
        """gRPC host:port of the running server."""
        return self.server.grpc_url

    def alive(self) -> bool:
        """True while the tritonserver process runs."""
        return (
            self.server is not None and self.server.process is not None and self.server.process.poll() is None
        )

    def _raw(self) -> Any:
        import tritonclient.grpc as grpcclient

        return grpcclient.InferenceServerClient(self.server.grpc_url)

    def _loaded_config(self) -> Any:
        from google.protobuf import json_format
        from tritonclient.grpc import model_config_pb2

        client = self._raw()
        try:
            loaded = client.get_model_config(self.model, as_json=True, client_timeout=30)["config"]
        finally:
            client.close()
        return json_format.ParseDict(loaded, model_config_pb2.ModelConfig(), ignore_unknown_fields=True)

    def load(self, config: Any) -> None:
        """Serve `config` (a ModelConfig) for the model. On failure: restore the current config
        (restarting the server if it died) and raise LoadTestError with Triton's reason."""
        try:
            self._load(config)
        except LoadTestError:
            self.restore()
            raise

    def _load(self, config: Any) -> None:
        from google.protobuf import json_format

        stamped = type(config)()
        stamped.CopyFrom(config)
        stamped.parameters["tritonstack_tune_load"].string_value = str(time.time_ns())  # a full reload
        body = json.dumps(json_format.MessageToDict(stamped, preserving_proto_field_name=True))
        client = self._raw()
        headers = self.server.grpc_admin_headers
        try:
            self._unless_stopped(lambda: client.load_model(
                self.model, headers=headers, config=body, client_timeout=LOAD_TIMEOUT_S
            ))
        except StoppedError:
            raise
        except Exception as exc:  # noqa: BLE001 - tritonclient raises its own error type
            crash = self.crash_reason()
            died = f" (tritonserver crashed: {crash})" if crash else self._logged_error()
            message = exc.message() if hasattr(exc, "message") else str(exc)
            raise LoadTestError(f"{_first_line(message)}{died}") from exc
        finally:
            client.close()

    def _stopping(self) -> bool:
        return self.should_stop is not None and self.should_stop()

    def _unless_stopped(self, call: Callable[[], Any]) -> Any:
        """`call()` in a worker thread, waited for in slices: StoppedError once a stop is asked (the
        call is abandoned; closing its client or stopping the server ends it)."""
        done: dict[str, Any] = {}

        def work() -> None:
            try:
                done["value"] = call()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                done["error"] = exc

        worker = threading.Thread(target=work, name="tune-load", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(_POLL_S)
            if worker.is_alive() and self._stopping():
                raise StoppedError("stopped while the config was loading")
        if "error" in done:
            raise done["error"]
        return done.get("value")

    def crash_reason(self) -> str:
        """Why the server is unusable ('' when it is fine): exited, or a fatal signal in its log."""
        if not self.alive():
            return f"exited, its log ends: {self._last_log_line()}"
        tail = self.server.log_tail(40) or ""
        marks = [line.strip() for line in tail.splitlines() if any(m in line for m in _CRASH_MARKS)]
        return "; ".join(marks[:2])

    def restore(self) -> None:
        """Serve the current (baseline) config again; restart the server if it crashed or hangs.
        Nothing once `should_stop()`: the server is about to be stopped anyway."""
        if self._stopping():
            _LOGGER.info("stopping: the current config is not restored")
            return
        if not self.crash_reason():
            try:
                self._load(self.current)
                return
            except LoadTestError as exc:
                _LOGGER.warning("restoring the current config failed (%s); restarting tritonserver", exc)
        self.restart()

    def restart(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL of its group) and start it again on the view."""
        _LOGGER.warning("tritonserver is unusable; restarting it for the rest of the sweep")
        with contextlib.suppress(TritonStackError):
            self.server.stop()
        self.restarts += 1
        self._start()

    def _logged_error(self) -> str:
        """The server's last error log line, which says more than the load call's generic reply."""
        errors = [line for line in (self.server.log_tail(20) or "").splitlines() if line.startswith("E")]
        return f"; server log: {errors[-1].split('] ', 1)[-1].strip()}" if errors else ""

    def _last_log_line(self) -> str:
        lines = [line for line in (self.server.log_tail(5) or "").splitlines() if line.strip()]
        return lines[-1].strip() if lines else "nothing"


def _end_within(server: Any, grace_s: float) -> None:
    """SIGTERM, and SIGKILL of its group if it has not ended within `grace_s` (a sweep that was told
    to stop keeps nothing the server still does; a hung server must not hold the command)."""
    process = server.process
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _LOGGER.info("tritonserver did not end %.0f s after SIGTERM; killing it", grace_s)
        server.kill()


def _wait_group_gone(pgid: int | None, timeout_s: float = 10.0) -> None:
    """Wait (bounded) until the server's process group has no live process: its stubs, SIGKILLed with
    it, are gone before `tune` says the server was stopped (and before the command exits)."""
    deadline = time.monotonic() + timeout_s
    while pgid and _live_in_group(pgid):
        if time.monotonic() > deadline:
            _LOGGER.warning("tritonserver's process group %d still has processes %.0f s after it stopped",
                            pgid, timeout_s)
            return
        time.sleep(_POLL_S)


def _live_in_group(pgid: int) -> bool:
    """True while a process that is not a zombie is in process group `pgid`."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


@contextlib.contextmanager
def _interrupt_on_stop(server: Any, stopping: Callable[[], bool]) -> Any:
    """While inside: once `stopping()`, make the server's start-up give up (it raises and cleans up)."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(_POLL_S):
            if stopping():
                server.interrupt()
                return

    watcher = threading.Thread(target=watch, name="tune-start-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else "no reason given"

"""Model versions on a running Triton (explicit model control): list, add, promote, canary, roll back.

    control = TritonControl("127.0.0.1:8001", admin_key=key)     # Triton's gRPC endpoint
    versions = VersionManager(Path("model_repository"), control)
    new = versions.add("digits_mlp", Path("build/digits_mlp/model.onnx"))   # copied in; not served yet
    versions.promote("digits_mlp", new, keep=(1,))                  # canary: 1 and 2 are served
    versions.promote("digits_mlp", new)                             # 2 only; 1 unloaded
    versions.rollback("digits_mlp")                                 # back to 1 and 2

What is served is the `version_policy { specific { versions: [...] } }` of `config.pbtxt`: each
command rewrites it (atomically, through the ModelConfig protobuf) and asks Triton to load the model.
Triton loads the new versions next to the old ones and switches only when they are ready, so no
request is lost; if a new version fails to load, Triton keeps the old ones and this module puts the
old policy back and raises VersionRefusedError. Works against the embedded server and the NGC image
alike (gRPC model-control API; the admin key as metadata when the repository endpoint is restricted).
Served sets are stacked in `<model>/tritonstack_versions.json` for rollback.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tritonclient.utils import InferenceServerException
from tritonstack.convert.manifest import write_added_manifest
from tritonstack.convert.onnx_io import copy_onnx_with_external_data, load_onnx
from tritonstack.convert.repository import check_repository
from tritonstack.serve.binary import PYTHON_RUNNER_BACKEND
from tritonstack.serve.control import ClientTls, TritonGrpc, check_grpc_url, status_name
from tritonstack.serve.load_errors import one_line
from tritonstack.serve.plan import python_runner_config

from tritonstack.errors import (
    AccessDeniedError,
    ConfigError,
    OperationsError,
    ServerUnavailableError,
    VersionRefusedError,
)
from tritonstack.model_config import config_text, read_config

__all__ = ["HISTORY_FILE", "TritonControl", "VersionChangeInterrupted", "VersionInfo", "VersionManager"]

_LOGGER = logging.getLogger(__name__)
HISTORY_FILE = "tritonstack_versions.json"
#: Triton's words when a load names a model folder its repository does not hold (added after start).
_NOT_IN_REPOSITORY = "failed to poll from model repository"
#: Triton's version numbers are int64 and start at 1.
MAX_VERSION = 2**63 - 1


class VersionChangeInterrupted(KeyboardInterrupt):  # noqa: N818 - it is an interrupt, and stays one
    """A version change was interrupted (Ctrl-C/SIGTERM) after its load request; str() says what is served."""


class _LoadRefused(Exception):
    """Triton answered a load request with an error (internal to this module)."""


class TritonControl:
    """Triton's model-control, readiness and statistics calls, over gRPC (`serve/control.py`).

    `url` is Triton's gRPC endpoint, host:port: the embedded server runs with HTTP off. Every call is
    bounded: a model load by `timeout_s`, every other call by `query_timeout_s`, so a stuck server is
    reported in seconds, as such, not as unreachable."""

    def __init__(self, url: str, *, admin_key: str | None = None, timeout_s: float = 30.0,
                 query_timeout_s: float = 5.0, tls: ClientTls | None = None) -> None:
        self.url = check_grpc_url(url.rstrip("/"))
        self.admin_key = admin_key
        self.tls = tls
        self.timeout_s = timeout_s
        self.query_timeout_s = query_timeout_s

    @contextmanager
    def _call(self, what: str) -> Iterator[TritonGrpc]:
        """A channel for one call; its errors mapped onto tritonstack's error tree (the one place)."""
        triton = TritonGrpc(self.url, admin_key=self.admin_key, client_tls=self.tls)
        try:
            yield triton
        except InferenceServerException as exc:
            raise self._translate(triton, exc, what) from exc
        finally:
            triton.close()

    def _translate(self, triton: TritonGrpc, exc: InferenceServerException, what: str) -> Exception:
        """By status code: DEADLINE_EXCEEDED is a stuck server; UNAVAILABLE from a server that answers
        live is the restricted endpoint refusing the key, else an unreachable server."""
        code = status_name(exc)
        if code == "DEADLINE_EXCEEDED":
            return ServerUnavailableError(f"{what}: Triton at {self.url} did not answer in time; it is up "
                                          "but busy or stuck: read its log")
        if code == "UNAVAILABLE" and self._live(triton) and self.admin_key:
            return AccessDeniedError(
                f"{what}: {self.url} refused the admin key given ({exc.message()}): it is not the server's "
                "key; pass the key the server was started with (--admin-key @FILE or TRITONSTACK_ADMIN_KEY)")
        if code == "UNAVAILABLE" and self._live(triton):
            return AccessDeniedError(
                f"{what}: {self.url} refused the call ({exc.message()}); pass --admin-key "
                "(the key of the server's restricted model-repository endpoint)")
        if code == "UNAVAILABLE":
            return ServerUnavailableError(f"{what}: cannot reach Triton at {self.url} ({exc.message()}); "
                                          "is it running? (--url is its gRPC endpoint, host:port; "
                                          "a TLS server also needs --tls-root-cert)")
        return _LoadRefused(exc.message())

    def _live(self, triton: TritonGrpc) -> bool:
        try:
            return triton.is_live(timeout_s=self.query_timeout_s)
        except InferenceServerException:
            return False

    def statistics(self) -> list[dict]:
        """Triton's inference statistics of every loaded model version (`model_stats`, HTTP's shape)."""
        try:
            with self._call("statistics") as triton:
                return triton.statistics(timeout_s=self.query_timeout_s).get("model_stats", [])
        except _LoadRefused as exc:
            raise OperationsError(f"statistics failed: {exc}") from exc

    def load(self, model: str, config_override: str | None = None) -> str | None:
        """(Re)load `model` from the repository as it is now (with `config_override`, a config as JSON,
        in place of its config.pbtxt); Triton's error text, or None if loaded."""
        try:
            with self._call(f"load of {model!r}") as triton:
                triton.load(model, config=config_override, timeout_s=self.timeout_s)
        except _LoadRefused as exc:
            return str(exc)
        return None

    def served_backend(self, model: str) -> str | None:
        """The backend the loaded `model` runs on (None when Triton cannot say)."""
        try:
            with self._call(f"config of {model!r}") as triton:
                return triton.config(model, timeout_s=self.query_timeout_s).get("backend")
        except (_LoadRefused, OperationsError, ValueError):
            return None

    def index(self) -> list[dict]:
        """Triton's repository index: every model version it knows, with state and reason."""
        try:
            with self._call("repository index") as triton:
                return triton.index(timeout_s=self.query_timeout_s)
        except _LoadRefused as exc:
            raise OperationsError(f"repository index failed: {exc}") from exc

    def is_ready(self, model: str, version: int) -> bool:
        """True when `model` version `version` answers ready."""
        try:
            with self._call("readiness") as triton:
                return triton.is_model_ready(model, str(version), timeout_s=self.query_timeout_s)
        except _LoadRefused:
            return False


@dataclass(frozen=True)
class VersionInfo:
    """One version of a model: in the repository or not, served by the policy or not, Triton's state."""

    version: int
    in_repository: bool
    in_policy: bool
    state: str
    reason: str = ""


class VersionManager:
    """Adds, promotes and rolls back versions of the models of one repository on one server."""

    def __init__(self, repository: Path, control: TritonControl, *, lock_timeout_s: float = 120.0) -> None:
        self.repository = Path(repository)
        self.control = control
        self.lock_timeout_s = lock_timeout_s

    # -- reading --------------------------------------------------------------------------------
    def _model_dir(self, model: str) -> Path:
        check_repository(self.repository, [model])  # a plain name, no link out of the repository
        path = self.repository / model
        if not (path / "config.pbtxt").is_file():
            raise ConfigError(f"model {model!r} has no config.pbtxt in {self.repository}; "
                              "pass the repository the server serves (--repository)")
        return path

    def on_disk(self, model: str) -> list[int]:
        """Version folders of `model` in the repository, sorted."""
        folders = self._model_dir(model).iterdir()
        return sorted(int(p.name) for p in folders if p.is_dir() and p.name.isdigit())

    def policy(self, model: str) -> list[int]:
        """The versions the config's policy serves (resolving `latest` / `all` against the folders)."""
        policy = read_config(self._model_dir(model) / "config.pbtxt").version_policy
        folders = self.on_disk(model)
        if policy.WhichOneof("policy_choice") == "specific":
            return sorted(policy.specific.versions)
        if policy.WhichOneof("policy_choice") == "all":
            return folders
        return folders[-(policy.latest.num_versions or 1):]

    def served_now(self, model: str) -> list[int]:
        """The versions Triton has READY now, else (none) the config's policy. Not the policy alone: a
        version folder written next to a `latest` policy (`convert` into an existing model) is in the
        policy at once but served only after a load, and a canary kept it instead of the one served
        (outsider round 8: `canary iris 2` unloaded version 1, and `rollback` had nothing to go back to)."""
        ready = sorted(int(s["version"]) for s in self.control.index() if s.get("name") == model
                       and s.get("state") == "READY" and str(s.get("version", "")).isdigit())
        return ready or self.policy(model)

    def _served_or_policy(self, model: str) -> list[int]:
        """`served_now`, or the policy when no server answers (`add` works offline, even without one)."""
        if self.control is None:
            return self.policy(model)
        try:
            return self.served_now(model)
        except (ServerUnavailableError, OperationsError, AccessDeniedError):
            return self.policy(model)

    def list(self, model: str) -> list[VersionInfo]:
        """Every version on disk or known to Triton, with its state."""
        self._model_dir(model)
        states = {int(s["version"]): s for s in self.control.index()
                  if s.get("name") == model and str(s.get("version", "")).isdigit()}
        served, disk = set(self.policy(model)), set(self.on_disk(model))
        return [VersionInfo(v, v in disk, v in served, states.get(v, {}).get("state", "NOT LOADED"),
                            states.get(v, {}).get("reason", ""))
                for v in sorted(disk | set(states))]

    # -- changing -------------------------------------------------------------------------------
    def add(self, model: str, source: Path, *, version: int | None = None) -> int:
        """Copy `source` (a version folder, or one model file) in as a new version; not served yet.

        The current policy is pinned first, so the new folder is not picked up by a later load. The
        version gets a manifest with the SHA-256 of its files (one that came with the folder is kept
        if the files still match it; if not, nothing is added).
        """
        model_dir = self._model_dir(model)  # the name first: nothing is read before it is known to be plain
        source = Path(source)
        _check_source(source)
        _check_version_folder(source, model_dir)
        with self._locked(model):
            taken = self.on_disk(model)
            version = _check_version(version if version is not None else (taken[-1] + 1 if taken else 1))
            if version in taken:
                raise ConfigError(f"version {version} of {model!r} exists; taken: {taken}")
            _check_onnx(source, self._model_filename(model))
            check_io_matches(_model_file(source, self._model_filename(model)), model_dir / "config.pbtxt")
            with self._config_restored_on_failure(model):
                self._write_policy(model, self._served_or_policy(model))
                self._copy_in(model, source, version)
        _LOGGER.info("added version %s of %s from %s", version, model, source)
        return version

    def _copy_in(self, model: str, source: Path, version: int) -> None:
        staging = Path(tempfile.mkdtemp(prefix=f".{model}.{version}.", dir=self._model_dir(model)))
        os.chmod(staging, self._model_dir(model).stat().st_mode & 0o777)  # mkdtemp's 0700 would hide it
        try:
            if source.is_dir():
                shutil.copytree(source, staging, dirs_exist_ok=True)
            elif source.suffix == ".onnx":  # with the external data files it names (torch's default export)
                copy_onnx_with_external_data(source, staging)
                if self._model_filename(model) != "model.onnx":
                    (staging / "model.onnx").rename(staging / self._model_filename(model))
            else:
                shutil.copy2(source, staging / self._model_filename(model))
            write_added_manifest(staging, source=source, model=model, version=version)  # hashes of its files
            os.rename(staging, self._model_dir(model) / str(version))
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def promote(self, model: str, version: int, *, keep: Sequence[int] = ()) -> list[int]:
        """Serve `version` (plus `keep`, for a canary); raise VersionRefusedError if it fails to load."""
        with self._locked(model):
            return self._promote(model, version, keep)

    def canary(self, model: str, version: int) -> list[int]:
        """Serve `version` next to the versions served now (read under the same lock)."""
        with self._locked(model):
            return self._promote(model, version, self.served_now(model))

    def _promote(self, model: str, version: int, keep: Sequence[int]) -> list[int]:
        target = sorted({_check_version(int(v)) for v in (version, *keep)})
        missing = sorted(set(target) - set(self.on_disk(model)))
        if missing:
            raise ConfigError(f"versions {missing} of {model!r} are not in {self.repository}; add them first")
        previous = self.served_now(model)
        self._apply(model, target, previous)
        if target != previous:  # the same set again changes nothing a rollback could undo
            self._push_history(model, previous, target)
        return target

    def rollback(self, model: str) -> list[int]:
        """Serve again the last recorded served set that differs from the one served now; return it."""
        with self._locked(model):
            current = self.served_now(model)
            history = self._history(model)
            earlier = [i for i, served in enumerate(history) if sorted(served) != current]
            if not earlier:
                raise OperationsError(
                    f"nothing to roll back to for {model!r}: it serves {current} and no different served set "
                    f"is recorded in {self._model_dir(model) / HISTORY_FILE}")
            previous = sorted(history[earlier[-1]])
            self._apply(model, previous, current)
            self._save_history(model, history[:earlier[-1] + 1])
            return previous

    @contextmanager
    def _locked(self, model: str) -> Iterator[None]:
        """One version command per model at a time: an exclusive lock on the model folder, waited for at
        most `lock_timeout_s`; OperationsError if another holds it longer."""
        with model_lock(self._model_dir(model), self.lock_timeout_s, model):
            yield

    def _runner_override(self, model: str) -> str | None:
        """A model `tritonstack serve` runs on the Python runner (a drift reference, or asked for) is
        loaded with the same switch, so a version change keeps its runner and its drift gauges."""
        if self.control.served_backend(model) != PYTHON_RUNNER_BACKEND:
            return None
        return python_runner_config(self._model_dir(model))

    @contextmanager
    def _config_restored_on_failure(self, model: str) -> Iterator[None]:
        """Put config.pbtxt back byte for byte (atomically) if the block fails in any way, Ctrl-C too."""
        path = self._model_dir(model) / "config.pbtxt"
        original = path.read_bytes()
        try:
            yield
        except BaseException:
            _atomic_write(path, original)
            raise

    def _apply(self, model: str, target: list[int], previous: list[int]) -> None:
        original = (self._model_dir(model) / "config.pbtxt").read_bytes()
        with self._config_restored_on_failure(model):
            self._write_policy(model, target)
            override = self._runner_override(model)
            try:
                error = self.control.load(model, override)
                not_ready = target if error else [v for v in target if not self.control.is_ready(model, v)]
            except KeyboardInterrupt:
                raise self._interrupted(model, target, previous, original) from None
            if error is None and not not_ready:
                _LOGGER.info("model %s now serves versions %s (was %s)", model, target, previous,
                             extra={"model": model, "served": str(target), "previous": str(previous)})
                return
            self._refused(model, target, previous, error, not_ready)

    def _interrupted(self, model: str, target: list[int], previous: list[int],
                     original: bytes) -> VersionChangeInterrupted:
        """Ctrl-C/SIGTERM after the load request was sent: Triton goes on loading `target` on its own, and a
        request without a version would reach its newest READY version, which config.pbtxt is about to stop
        listing. Put config.pbtxt back and load it again (shielded from another Ctrl-C, bounded by the load
        timeout), so what is served is what config.pbtxt says; the exception says which state it is in."""
        path = self._model_dir(model) / "config.pbtxt"
        with _shielded(f"putting {model} back on versions {previous}"):
            _atomic_write(path, original)
            try:
                error = self.control.load(model, self._runner_override(model))
            except (OperationsError, ServerUnavailableError, AccessDeniedError) as exc:
                error = str(exc)
            extra = [] if error else self._extra_ready(model, previous)
        if error is None and not extra:
            state = (f"{model} serves versions {previous} again, as {path} says (the change to "
                     f"{target} was undone)")
        else:
            state = (f"{path} says versions {previous} but Triton may still serve "
                     f"{extra or target} ({error or 'still READY'}); {_redo(model, previous)}")
        _LOGGER.info("version change of %s interrupted: %s", model, state)
        return VersionChangeInterrupted(state)

    def _extra_ready(self, model: str, listed: list[int]) -> list[int]:
        """Versions of `model` Triton has READY that `listed` (config.pbtxt) does not name."""
        return [v for v in self._ready_versions(model) if v not in listed]

    def _refused(self, model: str, target: list[int], previous: list[int], error: str | None,
                 not_ready: list[int]) -> None:
        """Raise the refusal in one line, naming only the versions that are not READY and what Triton
        serves now (read back from it); the caller's context puts config.pbtxt back."""
        ready = self._ready_versions(model)
        refused = [v for v in target if v not in ready] or not_ready or target
        reason = one_line(error) if error else f"{refused} not ready"
        _LOGGER.info("Triton refused versions %s of %s (%s); it serves %s", refused, model, reason, ready,
                     extra={"model": model, "refused": str(refused), "reason": (error or reason)[:500]})
        if error and _NOT_IN_REPOSITORY in error and not ready:
            raise VersionRefusedError(
                f"Triton does not see model {model!r} in the repository it serves ({reason}): `tritonstack "
                f"serve` sees only the model folders present when it started; restart it to serve {model!r} "
                "(config.pbtxt is restored)")
        serving = f"it serves versions {ready}" if ready else f"no version of {model!r} is served"
        raise VersionRefusedError(
            f"Triton refused versions {refused} of {model!r} ({reason}); {serving} and config.pbtxt is "
            f"restored; fix versions {refused} and retry")

    def _ready_versions(self, model: str) -> list[int]:
        """The versions of `model` Triton has READY now ([] if it cannot say)."""
        try:
            return sorted(int(s["version"]) for s in self.control.index()
                          if s.get("name") == model and str(s.get("version", "")).isdigit()
                          and s.get("state") == "READY")
        except (OperationsError, ServerUnavailableError, AccessDeniedError):
            return []

    # -- files ----------------------------------------------------------------------------------
    def _model_filename(self, model: str) -> str:
        config = read_config(self._model_dir(model) / "config.pbtxt")
        if config.default_model_filename:
            return config.default_model_filename
        defaults = {"onnxruntime_onnx": "model.onnx", "tensorrt_plan": "model.plan"}
        return defaults.get(config.platform, "model.py")

    def _write_policy(self, model: str, versions: Sequence[int]) -> None:
        path = self._model_dir(model) / "config.pbtxt"
        config = read_config(path)
        config.version_policy.specific.Clear()
        config.version_policy.specific.versions.extend(sorted(versions))
        _atomic_write(path, config_text(config))

    def _history(self, model: str) -> list[list[int]]:
        path = self._model_dir(model) / HISTORY_FILE
        return json.loads(path.read_text())["served"] if path.exists() else []

    def _push_history(self, model: str, previous: list[int], target: list[int]) -> None:
        history = self._history(model) or [previous]
        if history[-1] != previous:  # the policy was changed by hand: record it as it was
            history.append(previous)
        self._save_history(model, [*history, target])

    def _save_history(self, model: str, history: list[list[int]]) -> None:
        _atomic_write(self._model_dir(model) / HISTORY_FILE, json.dumps({"served": history[-50:]}) + "\n")


@contextmanager
def model_lock(model_dir: Path, timeout_s: float, model: str) -> Iterator[None]:
    """An exclusive flock on `model_dir` (no file is created), polled for up to `timeout_s`; OperationsError
    if another version command holds it that long. Released when the process ends, however it ends."""
    fd = os.open(model_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise OperationsError(
                        f"another version command on {model!r} is running (it holds the lock on {model_dir}) "
                        f"and did not finish in {timeout_s:.0f} s; wait for it and retry") from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def _redo(model: str, versions: list[int]) -> str:
    """The command that serves `versions` of `model` again."""
    if not versions:
        return f"run `tritonstack versions list {model}` and promote the version to serve"
    keep = "".join(f" --keep {v}" for v in versions[:-1])
    return f"run `tritonstack versions promote {model} {versions[-1]}{keep}`"


@contextmanager
def _shielded(what: str) -> Iterator[None]:
    """Hold SIGINT/SIGTERM off while `what` runs (its own calls are bounded); the main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _held(signum: int, _frame: object) -> None:
        _LOGGER.warning("%s received while %s; finishing that first (bounded by the load timeout)",
                        signal.Signals(signum).name, what)

    saved = {sig: signal.signal(sig, _held) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _atomic_write(path: Path, content: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    os.replace(tmp, path)


def _check_version(version: int) -> int:
    """`version` if Triton can take it (1 .. 2**63-1); ConfigError otherwise."""
    if not 1 <= version <= MAX_VERSION:
        raise ConfigError(f"version {version} is out of range; a Triton version is a whole number from 1 "
                          f"to {MAX_VERSION}")
    return version


def _check_source(source: Path) -> None:
    """Refuse a missing or empty source, a non-regular file, and links out of a source folder."""
    if not source.exists() or (source.is_dir() and not any(source.iterdir())):
        raise ConfigError(f"{source} is not a model file or a non-empty version folder")
    if not source.is_dir():
        if not source.is_file():
            raise ConfigError(f"{source} is not a regular file; pass a model file or a version folder")
        return
    root = source.resolve()
    for folder, dirs, files in os.walk(source):
        for entry in (Path(folder) / n for n in (*dirs, *files)):
            if entry.is_symlink() and not entry.resolve().is_relative_to(root):
                raise ConfigError(f"{entry} is a symbolic link to {entry.resolve()}, outside {source}; "
                                  "nothing was added: copy the real file into the folder")
            if not entry.is_dir() and not entry.is_file():
                raise ConfigError(f"{entry} is not a regular file; nothing was added: remove it from "
                                  f"{source}")


def _check_version_folder(source: Path, model_dir: Path) -> None:
    """Refuse a folder that is not one version's files: a model folder (config.pbtxt, numeric version
    folders), a staging folder, or a folder holding the model folder itself (copying it into itself)."""
    if not source.is_dir():
        return
    root = source.resolve()
    if model_dir.resolve().is_relative_to(root):
        what = "is the model folder" if model_dir.resolve() == root else f"holds the model folder {model_dir}"
        raise ConfigError(f"{source} {what}, not a version folder; nothing was added: pass one version "
                          f"folder (e.g. {model_dir / '1'}) or one model file")
    for entry in sorted(source.iterdir()):
        if entry.name in ("config.pbtxt", HISTORY_FILE) or (entry.is_dir() and entry.name.isdigit()):
            raise ConfigError(f"{source} is a model folder, not a version folder ({entry.name} in it); "
                              f"nothing was added: pass one version folder, e.g. {source / 'N'}, or its "
                              "model file")
        if entry.name.startswith("."):
            raise ConfigError(f"{entry} is a hidden or half-written folder/file; nothing was added: pass a "
                              "version folder holding only the version's files")


def _model_file(source: Path, model_filename: str) -> Path | None:
    """The ONNX file Triton would load from `source` (a file, or `model_filename` in a folder)."""
    path = source / model_filename if source.is_dir() else source
    return path if path.is_file() and path.suffix == ".onnx" else None


def _triton_type(elem_type: int) -> str:
    """ONNX tensor element type as Triton's data type name (TYPE_FP32, ...)."""
    from onnx import TensorProto

    name = TensorProto.DataType.Name(elem_type)
    renamed = {"FLOAT": "FP32", "FLOAT16": "FP16", "DOUBLE": "FP64", "BFLOAT16": "BF16"}
    return "TYPE_" + renamed.get(name, name)


def check_io_matches(onnx_path: Path | None, config_path: Path) -> None:
    """ConfigError naming the first difference between the ONNX model's inputs/outputs (names, types,
    ranks) and those of `config.pbtxt`; a config that lists none (auto-complete) is not checked."""
    if onnx_path is None:
        return
    import onnx

    config = read_config(config_path)
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    batch = 1 if config.max_batch_size > 0 else 0
    sides = (("input", config.input, [v for v in graph.input if v.name not in initializers]),
             ("output", config.output, list(graph.output)))
    for kind, declared, actual in sides:
        if declared:
            found = {v.name: (_triton_type(v.type.tensor_type.elem_type), len(v.type.tensor_type.shape.dim))
                     for v in actual}
            wanted = {t.name: (_data_type_name(t.data_type),
                               len(t.reshape.shape if t.HasField("reshape") else t.dims) + batch)
                      for t in declared}
            _compare(kind, found, wanted, f"{onnx_path}", f"{config_path}")


def _compare(kind: str, found: dict[str, tuple[str, int]], wanted: dict[str, tuple[str, int]],
             onnx_name: str, config_name: str) -> None:
    """ConfigError on the first declared tensor the model lacks or has with another type/rank, or an
    input the config does not declare."""
    tail = "; nothing was added: this is not a version of this model"
    for name, (dtype, rank) in wanted.items():
        if name not in found:
            raise ConfigError(f"{onnx_name} has no {kind} {name!r} (it has {sorted(found)}) but "
                              f"{config_name} declares it{tail}")
        if found[name] != (dtype, rank):
            raise ConfigError(f"{kind} {name!r} of {onnx_name} is {found[name][0]} rank {found[name][1]} but "
                              f"{config_name} declares {dtype} rank {rank}{tail}")
    unknown = sorted(set(found) - set(wanted))
    if unknown and kind == "input":
        raise ConfigError(f"{onnx_name} has inputs {unknown} that {config_name} does not declare{tail}")


def _data_type_name(value: int) -> str:
    """Triton's data type enum value as its name (TYPE_FP32, ...)."""
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2.DataType.Name(value)


def _check_onnx(source: Path, model_filename: str) -> None:
    """Refuse ONNX files that do not load (ModelLoadError), before anything is written."""
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*.onnx") if p.is_file())
    else:
        paths = [source] if model_filename.endswith(".onnx") or source.suffix == ".onnx" else []
    for path in paths:
        load_onnx(path)

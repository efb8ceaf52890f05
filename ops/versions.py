"""Model versions on a running Triton (explicit model control): list, add, promote, canary, roll back.

    control = TritonControl("http://127.0.0.1:8000", admin_key=key)
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
alike (HTTP model-control API; the admin header when the repository endpoint is restricted).
Served sets are stacked in `<model>/tritonstack_versions.json` for rollback.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tritonstack.convert.manifest import write_added_manifest
from tritonstack.serve.config import ADMIN_HEADER

from tritonstack.errors import (
    AccessDeniedError,
    ConfigError,
    OperationsError,
    ServerUnavailableError,
    VersionRefusedError,
)
from tritonstack.model_config import config_text, read_config

__all__ = ["HISTORY_FILE", "TritonControl", "VersionInfo", "VersionManager"]

_LOGGER = logging.getLogger(__name__)
HISTORY_FILE = "tritonstack_versions.json"


class _LoadRefused(Exception):
    """Triton answered a load request with an error (internal to this module)."""


@contextmanager
def _translate(url: str, what: str) -> Iterator[None]:
    """Map urllib errors of a call to Triton onto tritonstack's error tree (the one place)."""
    try:
        yield
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        if exc.code == 403:
            raise AccessDeniedError(
                f"{what}: {url} refused the call ({detail.strip()}); pass --admin-key "
                f"(the key of the server's restricted model-repository endpoint)") from exc
        raise _LoadRefused(detail) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ServerUnavailableError(f"{what}: cannot reach Triton at {url} ({exc}); is it running?") from exc


class TritonControl:
    """Triton's HTTP model-control and readiness endpoints."""

    def __init__(self, url: str, *, admin_key: str | None = None, timeout_s: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.headers = {ADMIN_HEADER: admin_key} if admin_key else {}
        self.timeout_s = timeout_s

    def _call(self, path: str, body: bytes | None = None) -> bytes:
        request = urllib.request.Request(self.url + path, data=body, headers=self.headers)
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
            return response.read()

    def load(self, model: str) -> str | None:
        """(Re)load `model` from the repository as it is now; Triton's error text, or None if loaded."""
        try:
            with _translate(self.url, f"load of {model!r}"):
                self._call(f"/v2/repository/models/{model}/load", b"{}")
        except _LoadRefused as exc:
            return str(exc)
        return None

    def index(self) -> list[dict]:
        """Triton's repository index: every model version it knows, with state and reason."""
        try:
            with _translate(self.url, "repository index"):
                return json.loads(self._call("/v2/repository/index", b"{}") or b"[]")
        except _LoadRefused as exc:
            raise OperationsError(f"repository index failed: {exc}") from exc

    def is_ready(self, model: str, version: int) -> bool:
        """True when `model` version `version` answers ready."""
        try:
            with _translate(self.url, "readiness"):
                self._call(f"/v2/models/{model}/versions/{version}/ready")
        except _LoadRefused:
            return False
        return True


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

    def __init__(self, repository: Path, control: TritonControl) -> None:
        self.repository = Path(repository)
        self.control = control

    # -- reading --------------------------------------------------------------------------------
    def _model_dir(self, model: str) -> Path:
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

    def list(self, model: str) -> list[VersionInfo]:
        """Every version on disk or known to Triton, with its state."""
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
        source = Path(source)
        if not source.exists() or (source.is_dir() and not any(source.iterdir())):
            raise ConfigError(f"{source} is not a model file or a non-empty version folder")
        taken = self.on_disk(model)
        version = version or (taken[-1] + 1 if taken else 1)
        if version < 1 or version in taken:
            raise ConfigError(f"version {version} of {model!r} exists or is invalid; taken: {taken}")
        self._write_policy(model, self.policy(model))
        staging = Path(tempfile.mkdtemp(prefix=f".{model}.{version}.", dir=self._model_dir(model)))
        os.chmod(staging, self._model_dir(model).stat().st_mode & 0o777)  # mkdtemp's 0700 would hide it
        try:
            if source.is_dir():
                shutil.copytree(source, staging, dirs_exist_ok=True)
            else:
                shutil.copy2(source, staging / self._model_filename(model))
            write_added_manifest(staging, source=source, model=model, version=version)  # hashes of its files
            os.rename(staging, self._model_dir(model) / str(version))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _LOGGER.info("added version %s of %s from %s", version, model, source)
        return version

    def promote(self, model: str, version: int, *, keep: Sequence[int] = ()) -> list[int]:
        """Serve `version` (plus `keep`, for a canary); raise VersionRefusedError if it fails to load."""
        target = sorted({int(version), *map(int, keep)})
        missing = sorted(set(target) - set(self.on_disk(model)))
        if missing:
            raise ConfigError(f"versions {missing} of {model!r} are not in {self.repository}; add them first")
        previous = self.policy(model)
        self._apply(model, target, previous)
        self._push_history(model, previous, target)
        return target

    def rollback(self, model: str) -> list[int]:
        """Serve again what was served before the last promote; return it."""
        history = self._history(model)
        if len(history) < 2:
            raise OperationsError(f"nothing to roll back for {model!r}: no earlier promote is recorded "
                                  f"in {self._model_dir(model) / HISTORY_FILE}")
        current, previous = history[-1], history[-2]
        self._apply(model, previous, current)
        self._save_history(model, history[:-1])
        return previous

    def _apply(self, model: str, target: list[int], previous: list[int]) -> None:
        self._write_policy(model, target)
        error = self.control.load(model)
        not_ready = [v for v in target if not self.control.is_ready(model, v)] if error is None else target
        if error is None and not not_ready:
            _LOGGER.info("model %s now serves versions %s (was %s)", model, target, previous,
                         extra={"model": model, "served": str(target), "previous": str(previous)})
            return
        self._write_policy(model, previous)
        _LOGGER.warning("Triton refused versions %s of %s; %s keep serving", target, model, previous,
                        extra={"model": model, "refused": str(target),
                               "reason": (error or "not ready")[:500]})
        raise VersionRefusedError(
            f"Triton refused versions {target} of {model!r} ({error or f'{not_ready} not ready'}); "
            f"versions {previous} keep serving and config.pbtxt is restored; fix the version and retry"
        )

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


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

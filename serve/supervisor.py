"""Watch the Python-backend stubs of a running tritonserver and heal models whose stub died.

    supervisor = StubSupervisor(server_pid, heal=server.reload_model)
    supervisor.start()
    ...
    supervisor.stop()
    supervisor.events   # [HealEvent(model="digits_mlp", detected_s=..., healed_s=...)]

Triton 2.51 never restarts a dead stub: every later request to that model fails with INTERNAL
"Stub process ... is not healthy" while server-ready and model-ready keep answering true, and after
enough failures requests hang. So supervision comes from outside: stubs are children of the server
process (`triton_python_backend_stub <model.py> <shm region> ... <instance name> ...`); an instance
whose stub is gone with no successor for two polls gets its model reloaded, and the dead stub's
shared-memory region is removed from /dev/shm.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HealEvent", "StubSupervisor", "find_stubs"]

_LOGGER = logging.getLogger(__name__)
_INSTANCE = re.compile(r"^(?P<model>.+)_\d+_\d+$")


@dataclass(frozen=True, kw_only=True)
class Stub:
    """One live stub process."""

    pid: int
    instance: str  # e.g. digits_mlp_0_0
    shm_region: str

    @property
    def model(self) -> str:
        """The model this stub serves."""
        match = _INSTANCE.match(self.instance)
        return match.group("model") if match else self.instance


@dataclass(frozen=True, kw_only=True)
class HealEvent:
    """A dead stub found and its model reloaded (times from time.monotonic())."""

    model: str
    instance: str
    detected_s: float
    healed_s: float | None
    error: str | None = None


def _read_stub(entry: Path, server_pid: int) -> Stub | None:
    try:
        stat = (entry / "stat").read_text()
        argv = (entry / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z" or int(fields[1]) != server_pid or len(argv) < 9:
        return None
    if not argv[0].endswith(b"triton_python_backend_stub"):
        return None
    return Stub(pid=int(entry.name), instance=argv[8].decode(), shm_region=argv[2].decode())


def find_stubs(server_pid: int) -> dict[str, Stub]:
    """Live stub processes of the server, by instance name."""
    stubs = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stub = _read_stub(entry, server_pid)
            if stub is not None:
                stubs[stub.instance] = stub
    return stubs


class StubSupervisor:
    """Background thread: detect dead stubs, reload their model through `heal(model)`."""

    def __init__(self, server_pid: int, *, heal: Callable[[str], None],
                 is_ready: Callable[[str], bool], interval_s: float = 0.25) -> None:
        self.server_pid = server_pid
        self.heal = heal
        self.is_ready = is_ready
        self.interval_s = interval_s
        self.events: list[HealEvent] = []
        self._known: dict[str, Stub] = {}
        self._missing: dict[str, float] = {}  # instance -> first seen missing
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stub-supervisor", daemon=True)

    def start(self) -> None:
        """Start watching."""
        self._known = find_stubs(self.server_pid)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._poll()
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad poll
                _LOGGER.exception("stub supervisor poll failed")

    def _poll(self) -> None:
        live = find_stubs(self.server_pid)
        now = time.monotonic()
        for instance in set(self._known) - set(live):
            self._missing.setdefault(instance, now)
        for instance in list(self._missing):
            if instance in live:
                del self._missing[instance]  # a successor came up: a normal reload
            elif now - self._missing[instance] >= self.interval_s * 1.5:
                self._heal(self._known[instance], self._missing.pop(instance))
        self._known = {**{k: v for k, v in self._known.items() if k in self._missing}, **live}

    def _heal(self, dead: Stub, detected_s: float) -> None:
        if not self.is_ready(dead.model):
            return  # unloaded on purpose, or being reloaded: not ours to heal
        _LOGGER.warning("stub of %s (pid %s) died; reloading model %s", dead.instance, dead.pid, dead.model)
        try:
            self.heal(dead.model)
        except Exception as exc:  # noqa: BLE001 - recorded, retried on the next death
            self.events.append(HealEvent(model=dead.model, instance=dead.instance,
                                         detected_s=detected_s, healed_s=None, error=str(exc)))
            return
        Path("/dev/shm", dead.shm_region.lstrip("/")).unlink(missing_ok=True)
        self.events.append(HealEvent(model=dead.model, instance=dead.instance,
                                     detected_s=detected_s, healed_s=time.monotonic()))

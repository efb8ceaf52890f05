"""Watch the Python-backend stubs of a running tritonserver and heal models whose stub died.

    supervisor = StubSupervisor(server_pid, heal=server.reload_model, states=server.model_states,
                                instances=server.instance_count)
    supervisor.start()
    ...
    supervisor.stop()
    supervisor.events   # [HealEvent(model="digits_mlp", detected_s=..., healed_s=...)]

Triton 2.51 never restarts a dead stub: every later request to that model fails with INTERNAL
"Stub process ... is not healthy" while server-ready and model-ready keep answering true, and after
enough failures requests hang. So supervision comes from outside: stubs are children of the server
process (`triton_python_backend_stub <model.py> <shm region> ... <instance name> ...`). A model whose
READY versions have fewer live stubs than instances for two polls is reloaded, and its dead stubs'
shared-memory regions are removed from /dev/shm.

Stubs are told apart by process id: every version of a model names its stubs alike (`digits_mlp_0_0`
for version 1 and version 2 of a canary). Models that never had a stub (native backends, ensembles)
are never healed, and one model is healed at most once per `min_heal_interval_s`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HealEvent", "Stub", "StubSupervisor", "find_stubs", "stub_named"]

_LOGGER = logging.getLogger(__name__)
_INSTANCE = re.compile(r"^(?P<model>.+)_\d+_\d+$")


@dataclass(frozen=True, kw_only=True)
class Stub:
    """One live stub process."""

    pid: int
    instance: str  # e.g. digits_mlp_0_0; digits_mlp_0 without instance_group, <name>_0 for a named group
    shm_region: str
    model_file: str = ""  # the stub's first argument: <repository>/<model>/<version>/<file>

    @property
    def model(self) -> str:
        """The model this stub serves: the folder above its version's, else read from its instance name
        (which only `<model>_<group>_<index>` names give: outsider round 12)."""
        path = Path(self.model_file)
        if len(path.parts) >= 3 and path.parent.name.isdigit():
            return path.parent.parent.name
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
    return Stub(pid=int(entry.name), instance=argv[8].decode(), shm_region=argv[2].decode(),
                model_file=argv[1].decode())


def _children(pid: int) -> list[Path] | None:
    """/proc entries of `pid`'s child processes, from its threads' `children` lists (a few small reads,
    where scanning every process of the host took 3.7 ms of the server's core 4 times a second and
    made the p99 of a concurrency-1 load 1.2 ms instead of 0.9); None when the kernel has no such
    lists (CONFIG_PROC_CHILDREN)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []  # the server is gone: no stubs
    found: set[str] = set()
    for task in tasks:
        try:
            found.update((task / "children").read_text().split())
        except FileNotFoundError:
            if not task.exists():
                continue  # a thread that just ended
            return None
        except OSError:
            continue
    return [Path("/proc", child) for child in sorted(found, key=int)]


def find_stubs(server_pid: int) -> list[Stub]:
    """Live stub processes of the server (several versions of a model have stubs of the same name)."""
    entries = _children(server_pid)
    if entries is None:
        entries = [entry for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    stubs = [stub for stub in (_read_stub(entry, server_pid) for entry in entries) if stub is not None]
    return sorted(stubs, key=lambda stub: stub.pid)


def stub_named(server_pid: int, instance: str) -> Stub:
    """The first live stub of instance `instance` (e.g. `digits_mlp_0_0`); KeyError if none."""
    for stub in find_stubs(server_pid):
        if stub.instance == instance:
            return stub
    raise KeyError(instance)


class StubSupervisor:
    """Background thread: compare live stubs with what Triton says is loaded; heal the deficit.

    A model needs `ready versions x instances` stubs. Stubs of versions being loaded, unloaded or
    refused come and go with their version's state, so only a deficit that outlasts two polls
    while Triton still reports the versions READY, and that a stub seen alive before accounts
    for, is a crash (a deficit with no dead stub is a snapshot race, and reloading a model
    under load for nothing stalls it).
    """

    def __init__(self, server_pid: int, *, heal: Callable[[str], None],
                 states: Callable[[], list[dict]], instances: Callable[[str], int],
                 interval_s: float = 0.25, min_heal_interval_s: float = 5.0,
                 stubs: Callable[[], list[Stub]] | None = None) -> None:
        self.server_pid = server_pid
        self.stubs = stubs or (lambda: find_stubs(server_pid))
        self.heal = heal
        self.states = states
        self.instances = instances
        self.interval_s = interval_s
        self.min_heal_interval_s = min_heal_interval_s
        self._healed_at: dict[str, float] = {}
        self.events: list[HealEvent] = []
        self._seen: dict[int, Stub] = {}  # pid -> stub, of every stub seen alive
        self._deficit_since: dict[str, float] = {}
        self._instances: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stub-supervisor", daemon=True)

    def start(self) -> None:
        """Start watching; the stubs alive now are seen at once (a stub that died before the first poll
        would otherwise never count as dead)."""
        self._seen.update({stub.pid: stub for stub in self.stubs()})
        self._thread.start()

    def has_seen(self, pid: int) -> bool:
        """Whether the stub `pid` was seen alive: only such a stub's death is healed (class docstring)."""
        return pid in self._seen

    def stop(self) -> None:
        """Stop watching (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._poll()
            except (OSError, ConnectionError) as exc:  # the server is restarting or stopping
                _LOGGER.warning("stub supervisor: server not reachable (%s); polling again", exc)
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad poll
                _LOGGER.exception("stub supervisor poll failed")

    def _poll(self) -> None:
        live = self.stubs()
        self._seen.update({stub.pid: stub for stub in live})
        with_stubs = {stub.model for stub in self._seen.values()}  # never-stubbed models: nothing to heal
        if not with_stubs:
            return  # no gRPC call either: a native-only server is not asked 4 times a second
        ready: dict[str, int] = {}
        for state in self.states():
            if state.get("state") == "READY" and state.get("name") in with_stubs:
                ready[state["name"]] = ready.get(state["name"], 0) + 1
        now = time.monotonic()
        for model, versions in ready.items():
            have = sum(1 for stub in live if stub.model == model)
            if have >= versions * self._expected(model):
                self._deficit_since.pop(model, None)
                self._forget_exited(model, {stub.pid for stub in live})
            elif (now - self._deficit_since.setdefault(model, now) >= self.interval_s * 1.5
                  and now - self._healed_at.get(model, -1e9) >= self.min_heal_interval_s):
                self._heal(model, self._deficit_since.pop(model), {stub.pid for stub in live})

    def _forget_exited(self, model: str, live_pids: set[int]) -> None:
        """Stubs that exited while the model had all it needs (an unloaded or refused version's) are
        not crashes: forget them, so a later snapshot race cannot pass them off as dead."""
        for pid in [pid for pid, stub in self._seen.items() if stub.model == model and pid not in live_pids]:
            del self._seen[pid]

    def _expected(self, model: str) -> int:
        if model not in self._instances:
            self._instances[model] = self.instances(model)
        return self._instances[model]

    def _heal(self, model: str, detected_s: float, live_pids: set[int]) -> None:
        dead = [stub for pid, stub in self._seen.items() if stub.model == model and pid not in live_pids]
        if not dead:
            return
        _LOGGER.warning("model %s lost its stub process(es) %s; reloading it", model, [s.pid for s in dead])
        instance = dead[0].instance
        self._healed_at[model] = time.monotonic()
        self._instances.pop(model, None)  # the reload may bring a changed instance count
        try:
            self.heal(model)
        except Exception as exc:  # noqa: BLE001 - recorded, tried again if the deficit remains
            self.events.append(HealEvent(model=model, instance=instance, detected_s=detected_s,
                                         healed_s=None, error=str(exc)))
            return
        for stub in dead:
            Path("/dev/shm", stub.shm_region.lstrip("/")).unlink(missing_ok=True)
            self._seen.pop(stub.pid, None)
        self.events.append(HealEvent(model=model, instance=instance, detected_s=detected_s,
                                     healed_s=time.monotonic()))

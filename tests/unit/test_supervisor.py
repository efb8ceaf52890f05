"""The stub supervisor's decisions, on scripted stub lists and model states (no server)."""

from __future__ import annotations

from tritonstack.serve.supervisor import Stub, StubSupervisor


class Scripted:
    """Live stubs and Triton's states, changed by the test between polls; heals recorded."""

    def __init__(self) -> None:
        self.live: list[Stub] = []
        self.states: list[dict] = []
        self.healed: list[str] = []

    def supervisor(self) -> StubSupervisor:
        return StubSupervisor(0, heal=self.healed.append, states=lambda: self.states,
                              instances=lambda model: 1, interval_s=0.0, min_heal_interval_s=0.0,
                              stubs=lambda: list(self.live))


def _stub(pid: int, instance: str = "digits_mlp_0_0") -> Stub:
    return Stub(pid=pid, instance=instance, shm_region=f"/tritonstack_test_{pid}")


def _ready(*versions: int, model: str = "digits_mlp") -> list[dict]:
    return [{"name": model, "version": str(v), "state": "READY"} for v in versions]


def test_a_stubs_model_is_the_folder_above_its_version_whatever_its_instance_name() -> None:
    # outsider round 12: without instance_group Triton names the stub <model>_0, with a named group
    # <name>_0; only <model>_<group>_<index> was understood, so those stubs were never healed
    for instance in ("strs_py_0", "cpu_0", "strs_py_0_0"):
        stub = Stub(pid=1, instance=instance, shm_region="/r", model_file="/tmp/w/repository/strs_py/3/model.onnx")
        assert stub.model == "strs_py"
    assert _stub(1).model == "digits_mlp"  # no file: the instance name


def test_a_stub_named_without_group_index_is_healed() -> None:
    world = Scripted()
    world.live = [Stub(pid=11, instance="texts_0", shm_region="/r", model_file="/w/repository/texts/1/model.onnx")]
    world.states = _ready(1, model="texts")
    supervisor = world.supervisor()
    supervisor._poll()  # seen alive
    world.live = []
    for _ in range(3):
        supervisor._poll()
    assert world.healed == ["texts"]


def test_two_versions_with_same_named_stubs_are_not_a_crash() -> None:
    world = Scripted()
    world.live, world.states = [_stub(11), _stub(12)], _ready(1, 2)  # a canary: both digits_mlp_0_0
    supervisor = world.supervisor()
    for _ in range(20):
        supervisor._poll()
    assert world.healed == []


def test_a_killed_stub_of_one_of_two_versions_is_healed_once() -> None:
    world = Scripted()
    world.live, world.states = [_stub(11), _stub(12)], _ready(1, 2)
    supervisor = world.supervisor()
    supervisor._poll()
    world.live = [_stub(12)]
    supervisor._poll()
    supervisor._poll()
    assert world.healed == ["digits_mlp"]
    world.live = [_stub(12), _stub(13)]  # the reload brought a new stub
    for _ in range(5):
        supervisor._poll()
    assert world.healed == ["digits_mlp"]


def test_a_model_without_stubs_is_never_healed() -> None:
    world = Scripted()
    world.states = _ready(1, model="native_model")  # e.g. served by the C++ backend
    supervisor = world.supervisor()
    for _ in range(5):
        supervisor._poll()
    assert world.healed == []


def test_an_unloaded_versions_stub_is_not_a_crash() -> None:
    world = Scripted()
    world.live, world.states = [_stub(11), _stub(12)], _ready(1, 2)
    supervisor = world.supervisor()
    supervisor._poll()
    world.live, world.states = [_stub(12)], _ready(2)  # promote 2: version 1 unloaded
    for _ in range(5):
        supervisor._poll()
    assert world.healed == []
    assert 11 not in supervisor._seen  # forgotten: a later race cannot pass it off as a crash


def test_heals_of_one_model_are_spaced() -> None:
    world = Scripted()
    world.live, world.states = [_stub(11)], _ready(1)
    supervisor = StubSupervisor(0, heal=world.healed.append, states=lambda: world.states,
                                instances=lambda model: 1, interval_s=0.0, min_heal_interval_s=60.0,
                                stubs=lambda: list(world.live))
    supervisor._poll()
    world.live = []
    supervisor._poll()
    world.live = [_stub(12)]
    supervisor._poll()
    world.live = []
    supervisor._poll()
    assert world.healed == ["digits_mlp"]


def test_a_stub_that_dies_before_the_first_poll_is_healed() -> None:
    # start() sees the stubs alive at once: a stub killed between start() and the first poll counts
    world = Scripted()
    world.live, world.states = [_stub(11), _stub(12)], _ready(1, 2)
    supervisor = world.supervisor()
    supervisor.interval_s = 3600.0  # the thread's first poll never comes during the test
    supervisor.start()
    supervisor.stop()
    supervisor.interval_s = 0.0
    world.live = [_stub(12)]
    supervisor._poll()
    supervisor._poll()
    assert world.healed == ["digits_mlp"]


def test_a_server_without_stubs_is_not_asked_for_its_states() -> None:
    """Every 0.25 s the supervisor opened a gRPC channel and asked a native-only server for its
    repository index (and scanned every process of the host): 2.4% of the server's core at
    concurrency 1, in bursts that sit in the latency tail."""
    world, asked = Scripted(), []
    supervisor = StubSupervisor(0, heal=world.healed.append, states=lambda: asked.append(1) or [],
                                instances=lambda model: 1, interval_s=0.0, stubs=lambda: [])
    for _ in range(5):
        supervisor._poll()
    assert asked == []


def test_stubs_are_found_among_the_servers_children_only() -> None:
    """find_stubs reads the server's children (/proc/<pid>/task/*/children), not the whole host."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tritonstack.serve.supervisor import _children

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert Path(f"/proc/{child.pid}") in (_children(os.getpid()) or [])
        assert _children(child.pid) == []
    finally:
        child.kill()
        child.wait()

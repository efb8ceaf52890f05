"""VersionManager against a fake control plane: policy pinning, refusal restores config, history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tritonstack.ops.versions import VersionManager

from tritonstack.errors import ConfigError, OperationsError, VersionRefusedError
from tritonstack.model_config import read_config

CONFIG = 'name: "m"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n'


class FakeControl:
    """Loads succeed unless the policy names a version listed in `broken`."""

    def __init__(self, repository: Path, broken: set[int] = frozenset(),  # noqa: B006
                 backend: str = "onnxruntime") -> None:
        self.repository, self.broken, self.loads, self.overrides = repository, set(broken), [], []
        self.backend = backend
        self.ready = [1]  # what Triton serves: changed only by a load that succeeds

    def served_backend(self, model: str) -> str | None:
        return self.backend

    def _policy(self) -> list[int]:
        return list(read_config(self.repository / "m" / "config.pbtxt").version_policy.specific.versions)

    def load(self, model: str, config_override: str | None = None) -> str | None:
        self.loads.append(self._policy())
        self.overrides.append(config_override)
        bad = self.broken & set(self._policy())
        if not bad:
            self.ready = self._policy()
        return f"version {min(bad)} is at UNAVAILABLE state" if bad else None

    def is_ready(self, model: str, version: int) -> bool:
        return version not in self.broken

    def index(self) -> list[dict]:
        return [{"name": "m", "version": str(v), "state": "READY"} for v in self.ready]


def digits_model_bytes(tag: str) -> bytes:
    """A model with digits_mlp's inputs and outputs (`versions add` checks them against config.pbtxt)."""
    return model_bytes(tag, ("features", "probabilities"), (64, 10))


def model_bytes(tag: str, names: tuple[str, str] = ("x", "y"), widths: tuple[int, int] = (4, 4)) -> bytes:
    """A small valid ONNX model told apart by its doc string (`versions add` checks models): Identity, or
    a MatMul when the widths differ (`digits_model_bytes`: digits_mlp's features[64] -> probabilities[10])."""
    from onnx import TensorProto, helper, numpy_helper

    (x, y), (w_in, w_out) = names, widths
    value = helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", w_in])
    weights = [] if w_in == w_out else [numpy_helper.from_array(np.zeros((w_in, w_out), np.float32), "w")]
    node = (helper.make_node("Identity", [x], [y]) if not weights else helper.make_node("MatMul", [x, "w"], [y]))
    graph = helper.make_graph([node], "m", [value],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["N", w_out])],
                              initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], doc_string=tag)
    model.ir_version = 8
    return model.SerializeToString()


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "1" / "model.onnx").write_bytes(model_bytes("v1"))
    (tmp_path / "m" / "config.pbtxt").write_text(CONFIG)
    return tmp_path


def test_add_pins_the_served_version_and_copies_a_file(repo: Path, tmp_path: Path) -> None:
    manager = VersionManager(repo, FakeControl(repo))
    assert manager.policy("m") == [1]  # no policy: latest 1
    (tmp_path / "new.onnx").write_bytes(model_bytes("v2"))
    assert manager.add("m", tmp_path / "new.onnx") == 2
    assert (repo / "m" / "2" / "model.onnx").read_bytes() == model_bytes("v2")
    assert manager.policy("m") == [1], "the new folder must not be served before promote"
    assert [p.name for p in (repo / "m").iterdir() if p.name.startswith(".")] == []
    with pytest.raises(ConfigError, match="exists"):
        manager.add("m", tmp_path / "new.onnx", version=2)


def test_promote_canary_and_rollback_walk_the_history(repo: Path) -> None:
    control = FakeControl(repo)
    manager = VersionManager(repo, control)
    manager.add("m", repo / "m" / "1")
    assert manager.promote("m", 2, keep=[1]) == [1, 2]
    assert manager.promote("m", 2) == [2]
    assert manager.rollback("m") == [1, 2]
    assert manager.rollback("m") == [1]
    assert control.loads == [[1, 2], [2], [1, 2], [1]]
    with pytest.raises(OperationsError, match="nothing to roll back"):
        manager.rollback("m")


def test_refused_version_restores_the_config(repo: Path) -> None:
    manager = VersionManager(repo, FakeControl(repo, broken={2}))
    manager.add("m", repo / "m" / "1")
    before = (repo / "m" / "config.pbtxt").read_text()
    with pytest.raises(VersionRefusedError, match=r"refused versions \[2\] .*; it serves versions \[1\]"):
        manager.promote("m", 2)
    assert (repo / "m" / "config.pbtxt").read_text() == before
    with pytest.raises(ConfigError, match="not in"):
        manager.promote("m", 9)


def test_a_model_served_by_the_python_runner_keeps_it_across_a_version_change(repo: Path, tmp_path: Path) -> None:
    """`serve` runs drift-monitored models on the Python runner (a config switch); a promote that
    reloaded them plainly moved them to the native backend and lost their drift gauges."""
    import json

    (tmp_path / "new.onnx").write_bytes(model_bytes("v2"))
    for backend, switched in (("onnxruntime", False), ("onnxruntime_python", True)):
        control = FakeControl(repo, backend=backend)
        manager = VersionManager(repo, control)
        if backend == "onnxruntime":
            manager.add("m", tmp_path / "new.onnx")
        manager.promote("m", 2)
        override = control.overrides[-1]
        assert (override is not None) == switched
        if switched:
            config = json.loads(override)
            assert config["backend"] == "onnxruntime_python" and config["version_policy"]["specific"]["versions"] in ([2], ["2"])


def test_add_of_an_onnx_file_with_external_data_brings_its_weights(repo: Path, tmp_path: Path) -> None:
    """Outsider 13c D1: `versions add m net.onnx` (weights in net.onnx.data beside it, torch's default
    export) exited 0 with a version folder holding model.onnx only, which ONNX Runtime cannot load."""
    import onnx
    import onnxruntime as ort

    source = tmp_path / "export" / "net.onnx"
    source.parent.mkdir()
    model = onnx.load_from_string(model_bytes("v2", widths=(4, 3)))
    onnx.save(model, str(source), save_as_external_data=True, all_tensors_to_one_file=True,
              location="net.onnx.data", size_threshold=0)
    assert (source.parent / "net.onnx.data").is_file()
    (repo / "m" / "1" / "model.onnx").write_bytes(model_bytes("v1", widths=(4, 3)))
    version = VersionManager(repo, FakeControl(repo)).add("m", source)
    folder = repo / "m" / str(version)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    out = session.run(None, {"x": np.ones((2, 4), np.float32)})[0]
    print(f"\nversion {version} files: {sorted(p.name for p in folder.iterdir())}; output shape {out.shape}")
    assert out.shape == (2, 3)

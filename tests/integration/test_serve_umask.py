"""Issue 13 D4 against the real server: `serve` under a restrictive umask (027, 077) still serves.

Started by root, tritonserver runs as the service user (sandbox.py), which must read the backends copy
and the shadow repository `serve` makes in its work dir whatever the caller's umask; the admin key file
stays 0600, the work dir private, and the server's shared-memory files 0600 (A11).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from tritonstack.client import TritonClient
from tritonstack.convert import Batching
from tritonstack.serve import EmbeddedServer, ServerConfig
from tritonstack.serve.plan import RUNNER_PARAMETER

from tests.integration.faults import add_sleepy_model, one
from tests.integration.test_native_backend import _identity, _save

ROOT = os.geteuid() == 0


@pytest.mark.parametrize(("mask", "runner"), [(0o077, "native"), (0o027, "python")])
def test_d4_serve_under_a_restrictive_umask_has_every_model_ready(tmp_path: Path, mask: int, runner: str) -> None:
    repo = tmp_path / "model_repository"
    _identity(repo, "FP32")  # the onnxruntime backend of `runner` (the backends copy)
    add_sleepy_model(repo, "sleepy", delay_ms=1, batching=Batching())  # a Python stub
    _switched_identity(repo)  # native: a shadow folder switched to the Python runner (shadow.py)
    server = EmbeddedServer(ServerConfig(repository=repo, supervise=False, ort_threads=1,
                                          runner=runner))
    previous = os.umask(mask)
    try:
        server.start()
    finally:
        os.umask(previous)
    try:
        states = {s["name"]: (s["state"], s.get("reason", "")) for s in server.model_states()}
        assert {name: state for name, (state, _) in states.items()} == {
            "id_fp32": "READY", "sleepy": "READY", "id_py": "READY"}, states
        with TritonClient(server.grpc_url) as client:
            x = np.arange(8, dtype=np.float32).reshape(2, 4)
            for model in ("id_fp32", "id_py"):
                assert np.array_equal(client.infer(model, {"x": x})["y"], x)
            assert client.infer("sleepy", {"x": one()})["y"].shape == one().shape
        assert server.workdir is not None and server.security is not None
        workdir = server.workdir.stat()
        assert stat.S_IMODE(workdir.st_mode) == 0o700, oct(workdir.st_mode)
        if ROOT:
            assert workdir.st_uid == server.security.user.uid
        assert server.security.key_consumed()  # the shim read and removed the 0600 key file
        shm = list(Path("/dev/shm").glob(f"{server.shm_prefix}*"))
        modes = {f"{stat.S_IMODE(f.stat().st_mode):04o}" for f in shm}
        assert shm and modes == {"0600"}, modes
        print(f"\nD4: umask {mask:04o}, runner {runner}, root={ROOT}: {sorted(states)} READY; work dir 0700; "
              f"{len(shm)} shm file(s) modes {sorted(modes)}")
    finally:
        server.stop()


def _switched_identity(repo: Path) -> None:
    """An ONNX identity model whose config.pbtxt asks for the Python runner."""
    f32 = TensorProto.FLOAT
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", f32, ["n", 4])],
                              [helper.make_tensor_value_info("y", f32, ["n", 4])])
    _save(repo, "id_py", graph, max_batch=8, inputs=[("x", "FP32", [4])], outputs=[("y", "FP32", [4])],
          parameters={RUNNER_PARAMETER: "python"})

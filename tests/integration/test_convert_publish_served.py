"""A conversion killed mid-publish, then served by the real Triton: the old model serves, untouched
by the leftovers; the next conversion cleans them up and its version loads.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonstack.convert import atomic_publish
from tritonstack.convert.pipeline import ConvertOptions, convert_model
from tritonstack.convert.verify import run_onnx

from tests.unit.convert_models import mlp_onnx

X = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)


def _second_model(first: Path, dst: Path) -> Path:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(first))
    bias = next(t for t in model.graph.initializer if t.name == "b")
    bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias) + 1.5, "b"))
    onnx.save(model, str(dst))
    return dst


def _options(model: Path, name: str, root: Path) -> ConvertOptions:
    return ConvertOptions(model=model, name=name, repository=root / "repo", workdir=root / "build", progress=False)


def _convert_killed_at(options: ConvertOptions, step: str) -> None:
    """Run the conversion in a forked child that SIGKILLs itself before the publish step `step`."""
    pid = os.fork()
    if pid == 0:
        def hook(name: str) -> None:
            if name == step:
                os.kill(os.getpid(), signal.SIGKILL)

        atomic_publish.set_step_hook(hook)
        try:
            convert_model(options)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status), f"the conversion was not killed at {step!r}"


def _infer(client: grpcclient.InferenceServerClient, model: str) -> np.ndarray:
    tensor = grpcclient.InferInput("x", list(X.shape), "FP32")
    tensor.set_data_from_numpy(X)
    return client.infer(model, [tensor]).as_numpy("y")


@pytest.mark.timeout(300)
def test_killed_publish_serves_the_old_model_then_the_next_one_loads(tmp_path: Path) -> None:
    from tritonstack.serve import EmbeddedServer, ServerConfig

    first = mlp_onnx(tmp_path / "first.onnx")
    second = _second_model(first, tmp_path / "second.onnx")
    convert_model(_options(first, "mlp", tmp_path))
    _convert_killed_at(_options(second, "mlp", tmp_path), "replace config")  # version 2 in, old config
    repo = tmp_path / "repo"
    assert (repo / "mlp" / "2").is_dir() and list(repo.glob("*/.tritonstack-staging-*"))
    assert sorted(p.name for p in repo.iterdir()) == ["mlp"]
    want_first, want_second = run_onnx(first, {"x": X})["y"], run_onnx(second, {"x": X})["y"]
    with EmbeddedServer(ServerConfig(repository=repo, ort_threads=1)) as server:
        client = grpcclient.InferenceServerClient(server.grpc_url)
        try:
            served = _infer(client, "mlp")
            assert client.is_model_ready("mlp", "1") and not client.is_model_ready("mlp", "2")
            assert np.abs(served - want_first).max() < 1e-5
            convert_model(_options(second, "mlp", tmp_path))  # cleans the leftovers, writes version 2
            assert not list(repo.glob("*/.tritonstack-staging-*"))
            server.load_model("mlp")
            after = _infer(client, "mlp")
            assert client.is_model_ready("mlp", "2")
            assert np.abs(after - want_second).max() < 1e-5
        finally:
            client.close()
    print(f"\nkilled mid-publish: Triton served version 1 (max abs diff to the first model "
          f"{np.abs(served - want_first).max():.1e}); after the next conversion version 2 "
          f"(diff to the second model {np.abs(after - want_second).max():.1e})")


@pytest.mark.timeout(300)
def test_a_killed_new_model_leaves_a_staging_folder_that_serve_neither_loads_nor_lists(tmp_path: Path) -> None:
    from tritonstack.serve import EmbeddedServer, ServerConfig

    first = mlp_onnx(tmp_path / "first.onnx")
    convert_model(_options(first, "mlp", tmp_path))
    _convert_killed_at(_options(first, "newmodel", tmp_path), "rename model in")  # staged inside mlp/
    repo = tmp_path / "repo"
    leftovers = list(repo.glob("mlp/.tritonstack-staging-*/newmodel/1"))
    assert leftovers and sorted(p.name for p in repo.iterdir()) == ["mlp"]
    with EmbeddedServer(ServerConfig(repository=repo, ort_threads=1)) as server:
        states = [(s["name"], str(s["version"]), s["state"]) for s in server.model_states()]
    print(f"\nleftover {leftovers[0].relative_to(repo)}; serve lists {states}")
    assert states == [("mlp", "1", "READY")]


@pytest.mark.timeout(300)
def test_weights_published_as_external_data_are_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnx
    from tritonstack.convert import onnx_io
    from tritonstack.serve import EmbeddedServer, ServerConfig

    monkeypatch.setattr(onnx_io, "EMBED_LIMIT_BYTES", 1)  # stands for a model above protobuf's 2 GiB
    inline = mlp_onnx(tmp_path / "inline.onnx")
    (tmp_path / "src").mkdir()
    onnx.save(onnx.load(str(inline)), str(tmp_path / "src" / "net.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="net.onnx.data", size_threshold=0)
    convert_model(_options(tmp_path / "src" / "net.onnx", "ext", tmp_path))
    repo = tmp_path / "repo"
    assert sorted(p.name for p in (repo / "ext" / "1").iterdir()) == ["manifest.json", "model.onnx",
                                                                      "net.onnx.data"]
    with EmbeddedServer(ServerConfig(repository=repo, ort_threads=1)) as server:
        client = grpcclient.InferenceServerClient(server.grpc_url)
        try:
            served = _infer(client, "ext")
        finally:
            client.close()
    diff = np.abs(served - run_onnx(inline, {"x": X})["y"]).max()
    print(f"\nserved from model.onnx + net.onnx.data: max abs diff to the source {diff:.1e}")
    assert diff < 1e-5

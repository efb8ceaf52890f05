from pathlib import Path

from tritonstack.convert.reference.digits import DIGITS_SPEC
from tritonstack.convert.repository import write_version
from tritonstack.serve.derive import derive_repository

from tritonstack.model_config import read_config


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    artifact = tmp_path / "model.onnx"
    artifact.write_bytes(b"onnx")
    write_version(repo, DIGITS_SPEC, files={"model.onnx": artifact}, manifest={})
    (repo / "engine").mkdir()
    (repo / "engine" / "config.pbtxt").write_text('name: "engine"\nplatform: "tensorrt_plan"\n')
    return repo


def test_onnx_model_becomes_python_runner_and_plan_is_skipped(tmp_path: Path) -> None:
    derived = derive_repository(_repo(tmp_path), tmp_path / "derived", ort_threads=2)
    assert derived.models == ["digits_mlp"]
    assert "needs an NVIDIA GPU" in derived.skipped["engine"]
    config = read_config(tmp_path / "derived" / "digits_mlp" / "config.pbtxt")
    assert config.backend == "python" and config.platform == ""
    assert config.parameters["intra_op_thread_count"].string_value == "2"
    assert config.dynamic_batching.max_queue_delay_microseconds == 200
    version = tmp_path / "derived" / "digits_mlp" / "1"
    assert (version / "model.py").resolve().name == "onnx_model.py"
    assert (version / "model.onnx").read_bytes() == b"onnx"

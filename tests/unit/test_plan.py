from pathlib import Path

from tritonstack.convert.reference.digits import DIGITS_SPEC
from tritonstack.convert.repository import write_version
from tritonstack.serve.binary import find_install
from tritonstack.serve.plan import plan_repository


def test_plan_loads_onnx_and_skips_tensorrt_with_a_reason(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    artifact = tmp_path / "model.onnx"
    artifact.write_bytes(b"onnx")
    write_version(repo, DIGITS_SPEC, files={"model.onnx": artifact}, manifest={})
    (repo / "engine").mkdir()
    (repo / "engine" / "config.pbtxt").write_text('name: "engine"\nplatform: "tensorrt_plan"\n')
    (repo / "broken").mkdir()
    (repo / "broken" / "config.pbtxt").write_text("this is { not protobuf")
    plan = plan_repository(repo)
    assert plan.models == ["digits_mlp"]
    assert "needs an NVIDIA GPU" in plan.skipped["engine"]
    assert "not a valid Triton model config" in plan.skipped["broken"]


def test_backend_dir_has_python_backend_and_onnxruntime_runner(tmp_path: Path) -> None:
    backends = find_install().prepare_backends(tmp_path, runner="python")
    assert (backends / "python" / "libtriton_python.so").is_file()
    assert (backends / "python" / "triton_python_backend_stub").is_file()
    assert "class TritonPythonModel" in (backends / "onnxruntime" / "model.py").read_text()


def test_native_backend_dir_has_the_library_and_the_python_runner_beside(tmp_path: Path) -> None:
    backends = find_install().prepare_backends(tmp_path)
    assert (backends / "onnxruntime" / "libtriton_onnxruntime.so").is_file()
    assert not (backends / "onnxruntime" / "model.py").exists()  # Triton would pick the .so anyway
    assert "class TritonPythonModel" in (backends / "onnxruntime_python" / "model.py").read_text()


def test_server_environment_fixes_glibc_mmap_threshold(monkeypatch) -> None:
    """Freed model-load buffers go back to the OS (W9: ~100 MiB of tritonserver's RSS); the caller's own
    setting wins."""
    from tritonstack.serve.binary import MMAP_THRESHOLD_BYTES

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert find_install().environment()["MALLOC_MMAP_THRESHOLD_"] == str(MMAP_THRESHOLD_BYTES) == "131072"
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert find_install().environment()["MALLOC_MMAP_THRESHOLD_"] == "65536"

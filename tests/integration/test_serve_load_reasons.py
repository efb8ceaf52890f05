"""`serve`'s model table gives Triton's own reason for a model that did not load, in one line, and the
banner names the server log (outsider 13c defect 5: every such model read "not loaded; load it (model
control) or read the server log", and the banner named only the crash-log folder)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import onnx
from onnx import TensorProto, helper

_CONFIG = """name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: 64
input {{ name: "x" data_type: TYPE_FP32 dims: 4 }}
output {{ name: "y" data_type: TYPE_FP32 dims: 4 }}
{extra}
"""


def _model(repo: Path, folder: str, *, name: str | None = None, extra: str = "", junk: bool = False) -> None:
    (repo / folder / "1").mkdir(parents=True)
    (repo / folder / "config.pbtxt").write_text(_CONFIG.format(name=name or folder, extra=extra))
    if junk:
        (repo / folder / "1" / "model.onnx").write_bytes(b"junk\n")
        return
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(repo / folder / "1" / "model.onnx"))


def _serve_banner(repo: Path) -> str:
    """serve's output up to "serving", then SIGTERM (the whole run bounded by a kill at 240 s)."""
    proc = subprocess.Popen([sys.executable, "-m", "tritonstack", "serve", "--repository", str(repo),
                             "--grpc-port", "0", "--metrics-port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "400"})
    guard = threading.Timer(240, proc.kill)
    guard.start()
    seen: list[str] = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("serving"):
                break
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    finally:
        guard.cancel()
        if proc.poll() is None:
            proc.kill()
    return "".join(seen)


def test_models_that_did_not_load_say_why_in_one_line(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _model(repo, "ok")
    _model(repo, "mismatch", name="ok")
    _model(repo, "pb", extra="dynamic_batching { preferred_batch_size: 128 }")
    _model(repo, "badonnx", junk=True)
    repo.chmod(0o755)
    out = _serve_banner(repo)
    print(f"\n{out}")
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 4}
    assert "READY" in rows["ok"], out
    assert "directory name must equal model name" in rows["mismatch"], out
    assert "preferred size must be <= max batch size" in rows["pb"], out
    assert "not loaded; load it" not in rows["badonnx"] and "UNAVAILABLE" in rows["badonnx"], out
    assert "not loaded; load it" not in out
    log_line = next(line for line in out.splitlines() if line.startswith("logs"))
    assert "tritonserver.log" in log_line, log_line

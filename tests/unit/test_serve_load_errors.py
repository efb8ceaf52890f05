"""Triton's load errors are read from its log, one line per model (outsider 13c defect 5)."""

from __future__ import annotations

from tritonstack.serve.load_errors import load_errors, one_line

_LOG = """I1202 08:06:53.0 1 server.cc:1] "started"
E1202 08:06:53.015240 2197 model_repository_manager.cc:1460] "Poll failed for model directory 'mismatch': \
unexpected directory name 'mismatch' for model 'ok', directory name must equal model name"
E1202 08:06:53.015457 2197 model_repository_manager.cc:1460] "Poll failed for model directory 'pb': dynamic \
batching preferred size must be <= max batch size for pb"
E1202 08:06:54.1 2197 model_lifecycle.cc:654] "failed to load 'badonnx' version 1: Internal: onnx runtime \
error 7: Load model from /x/model.onnx failed:Protobuf parsing failed.\\nsecond line"
"""


def test_each_model_gets_its_newest_error_in_one_line() -> None:
    reasons = load_errors(_LOG)
    assert reasons["mismatch"].endswith("directory name must equal model name")
    assert reasons["pb"] == "dynamic batching preferred size must be <= max batch size for pb"
    assert reasons["badonnx"].endswith("Protobuf parsing failed.") and "\n" not in reasons["badonnx"]
    later = _LOG + "E1202 08:07:00.1 1 model_lifecycle.cc:654] \"failed to load 'pb' version 1: newer\"\n"
    assert load_errors(later)["pb"] == "newer"


def test_one_line_cuts_a_long_multi_line_message() -> None:
    text = "Load model failed:\n" + "x" * 500
    assert one_line(text) == "Load model failed:"
    assert one_line("y" * 500) == "y" * 500  # never cut before the fix at the end

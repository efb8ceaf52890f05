"""tritonstack's gRPC client for Triton: validation, deadlines, retries, typed errors.

    from tritonstack.client import TritonClient

    with TritonClient("127.0.0.1:8001") as client:
        client.wait_until_ready(timeout_s=30)
        out = client.infer("digits_mlp", features)   # dict of numpy arrays

Depends on tritonclient[grpc] and numpy only: importing it never imports torch, onnx or locust.
"""

from tritonstack.client.core import ClientOptions, RetryPolicy
from tritonstack.client.model import ModelInfo, TensorInfo
from tritonstack.client.sync import TritonClient
from tritonstack.client.validation import Bounds, validate_inputs

__all__ = [
    "Bounds",
    "ClientOptions",
    "ModelInfo",
    "RetryPolicy",
    "TensorInfo",
    "TritonClient",
    "validate_inputs",
]

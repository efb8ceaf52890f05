"""tritonstack's gRPC client for Triton: validation, deadlines, retries, typed errors.

    from tritonstack.client import AsyncTritonClient, TritonClient

    with TritonClient("127.0.0.1:8001") as client:
        client.wait_until_ready(timeout_s=30)
        out = client.infer("digits_mlp", features)            # dict of numpy arrays
        everything = client.predict_many("digits_mlp", big)   # chunked, N in flight, in order

    async with AsyncTritonClient("127.0.0.1:8001") as client:
        out = await client.infer("digits_mlp", features)

    options = ClientOptions(headers=grpc_restricted_headers(server.admin_headers))
    with TritonClient("127.0.0.1:8001", options) as client:               # large tensors
        out = client.infer_shm("digits_mlp", features)                     # via /dev/shm, cleaned up

    with BalancedClient(["10.0.0.1:8001", "10.0.0.2:8001"]) as client:   # ejects dead endpoints
        out = client.infer("digits_mlp", features)
        print(client.endpoints())                                          # health and counts

    router = SplitRouter(client, "digits_mlp", TrafficSplit({"1": 0.9, "2": 0.1}))  # canary
    out = router.infer(features); print(router.stats())

Depends on tritonclient[grpc] and numpy only: importing it never imports torch, onnx or locust.
Errors are the classes of `tritonstack.errors` (ClientError and below).
"""

from tritonstack.client.aio import AsyncTritonClient
from tritonstack.client.balancer import AsyncBalancedClient, BalancedClient, EndpointState
from tritonstack.client.core import ClientOptions, RetryPolicy, grpc_restricted_headers
from tritonstack.client.model import ModelInfo, TensorInfo
from tritonstack.client.split import AsyncSplitRouter, SplitRouter, TrafficSplit, VersionStats
from tritonstack.client.sync import TritonClient
from tritonstack.client.validation import Bounds, Rule, validate_inputs

__all__ = [
    "AsyncBalancedClient",
    "AsyncSplitRouter",
    "AsyncTritonClient",
    "BalancedClient",
    "Bounds",
    "ClientOptions",
    "EndpointState",
    "ModelInfo",
    "RetryPolicy",
    "Rule",
    "SplitRouter",
    "TensorInfo",
    "TrafficSplit",
    "TritonClient",
    "VersionStats",
    "grpc_restricted_headers",
    "validate_inputs",
]

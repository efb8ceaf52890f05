"""A shape whose byte size wraps around 64 bits is refused by both runners (issue 12, A3).

Triton 2.51's own byte-size check multiplies in 64 bits: [2**62 + 1, 64] FP32 is 2**70 + 256 bytes,
which wraps to 256, so a request carrying 256 bytes passes Triton's check (and its batch-size check)
and reaches the model. The runners check shapes in exact arithmetic before touching the data.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import grpc
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonstack.serve import EmbeddedServer, ServerConfig

#: [2**62 + 1, 64]: Triton 2.51 keeps the batch size in 32 bits (2**62 + 1 -> 1) and hands the model a
#: one-row request whose 256 bytes are exactly one row: it is answered as that row, harmlessly.
#: [2**56, 64]: the batch becomes 0 and the input arrives without its batch axis: refused.
#: [5000, 64]: above the batch limit (4096): refused by Triton.
REFUSED = [[2**56, 64], [2**56 + 2**32, 64], [5000, 64]]


@pytest.fixture(scope="module", params=["native", "python"])
def any_runner(request: pytest.FixtureRequest, repository, tmp_path_factory) -> Iterator[EmbeddedServer]:  # noqa: ANN001
    """digits_mlp on each runner (its drift reference removed for the native one, which would
    otherwise hand it to the Python runner)."""
    if request.param == "native":
        copy = tmp_path_factory.mktemp("native_overflow") / "model_repository"
        shutil.copytree(repository, copy)
        for reference in copy.glob("*/*/drift_reference.json"):
            reference.unlink()
        copy.parent.chmod(0o755)
        repository = copy
    with EmbeddedServer(ServerConfig(repository=repository, ort_threads=1, runner=request.param)) as server:
        assert not server.plan.python, server.plan.python
        yield server


def _call(url: str, shape: list[int], data: bytes) -> grpc.RpcError | None:
    with grpc.insecure_channel(url) as channel:
        request = service_pb2.ModelInferRequest(model_name="digits_mlp")
        request.inputs.add(name="features", datatype="FP32", shape=shape)
        request.raw_input_contents.append(data)
        try:
            service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
        except grpc.RpcError as exc:
            return exc
    return None


def test_wrapping_shapes_are_refused_and_the_server_still_serves(any_runner: EmbeddedServer) -> None:
    errors = {}
    for shape in REFUSED:
        size = 256 if shape[0] != 5000 else 5000 * 64 * 4
        errors[str(shape)] = error = _call(any_runner.grpc_url, shape, bytes(size))
        print(f"{any_runner.config.runner}: shape {shape} with {size} bytes -> "
              f"{error.code() if error else 'OK'} {error.details()[:100] if error else ''}")
    assert all(e is not None and e.code() == grpc.StatusCode.INVALID_ARGUMENT for e in errors.values())
    assert _call(any_runner.grpc_url, [1, 64], bytes(256)) is None
    assert _call(any_runner.grpc_url, [2**62 + 1, 64], bytes(256)) is None  # run as the one row it holds

"""tritonstack: convert, serve, call and load-test models on a real Triton Inference Server.

    from tritonstack.serve import EmbeddedServer, ServerConfig

    with EmbeddedServer(ServerConfig(repository="model_repository")) as server:
        print(server.grpc_url)

Importing this package is cheap: it pulls in no framework (torch, onnx, tritonclient).
"""

import os

# grpcio >= 1.81 runs fork handlers in every fork: a subprocess.Popen with preexec_fn (how `serve`
# starts tritonserver as its own user) while a channel is busy aborted ~2% of the children before
# exec and, rarely, crashed the parent (grpc/grpc#43055). Nothing here forks a process that then
# uses gRPC, so fork support is off unless the caller chose otherwise. Read at gRPC's first use.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from tritonstack.errors import TritonStackError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["TritonStackError", "__version__"]

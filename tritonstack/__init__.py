"""tritonstack: convert, serve, call and load-test models on a real Triton Inference Server.

    from tritonstack.serve import EmbeddedServer, ServerConfig

    with EmbeddedServer(ServerConfig(repository="model_repository")) as server:
        print(server.grpc_url)

Importing this package is cheap: it pulls in no framework (torch, onnx, tritonclient).
"""

from tritonstack.errors import TritonStackError

__version__ = "0.1.0"
__all__ = ["TritonStackError", "__version__"]

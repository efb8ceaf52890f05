"""The embedded Triton Inference Server: the real tritonserver binary from nvidia-pytriton.

    from tritonstack.serve import EmbeddedServer, ServerConfig

    with EmbeddedServer(ServerConfig(repository=Path("model_repository"))) as server:
        print(server.grpc_url)
"""

from tritonstack.serve.config import ServerConfig, TlsConfig
from tritonstack.serve.embedded import EmbeddedServer

__all__ = ["EmbeddedServer", "ServerConfig", "TlsConfig"]

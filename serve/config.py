"""Configuration of the embedded Triton server.

    config = ServerConfig(repository=Path("model_repository"), grpc_port=8001)

HTTP is off unless `http=True`: Triton 2.51's HTTP endpoint can be crashed by one request body over
about 256 MiB even with the large thread stacks of `limits.py`, with no key needed; gRPC and metrics stay.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from tritonstack.errors import ConfigError

__all__ = ["RESTRICTED_APIS", "ServerConfig", "TlsConfig"]

#: Endpoints that need the admin header: 2.51 has CVEs in these paths (see README, Security).
RESTRICTED_APIS = ("shared-memory", "model-repository", "logging", "trace")
ADMIN_HEADER = "tritonstack-admin-key"
_KEY = re.compile(r"[A-Za-z0-9._~+/=-]{1,1000}")


@dataclass(frozen=True, kw_only=True)
class TlsConfig:
    """PEM files for gRPC TLS; `root_cert` set means mutual TLS."""

    server_cert: Path
    server_key: Path
    root_cert: Path | None = None

    def __post_init__(self) -> None:
        for name in ("server_cert", "server_key", "root_cert"):
            path = getattr(self, name)
            if path is None:
                continue
            if not Path(path).is_file():
                raise ConfigError(f"TLS file {path} does not exist; pass an existing PEM file")
            object.__setattr__(self, name, Path(path).resolve())  # relative to where it was given


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """How to run the embedded server. Port 0 means: pick a free port on the bind address."""

    repository: Path = Path("model_repository")
    host: str = "127.0.0.1"
    grpc_port: int = 0
    http: bool = False  # Triton's HTTP endpoint; off: 2.51's can be crashed by a large body (limits.py)
    http_port: int = 0  # used only with http=True
    metrics_port: int = 0
    ort_threads: int | None = None
    admin_key: str | None = None  # None: a random key per start
    restrict_endpoints: bool = True
    tls: TlsConfig | None = None
    ready_timeout_s: float = 60.0
    exit_timeout_s: int = 10
    log_verbose: int = 0
    runner: str = "native"  # ONNX models: "native" (C++ backend) or "python" (Python-backend runner)
    supervise: bool = True  # reload a model whose Python stub died (Triton 2.51 never does)
    drift_gauges: bool = True  # False: no tritonstack_drift_* gauges (native: drift references ignored)
    user: str | None = None  # started as root: run as this user (None: "tritonstack"; "root": opt out)
    restart_on_crash: bool = False  # a watchdog restarts a dead tritonserver on the same ports
    log_dir: Path | None = None  # where crash logs are kept (None: ~/.local/state/tritonstack/crash-logs)
    cache_size_mb: int | None = None  # response cache; None: 64 MB when a model enables it, 0: off
    latency_quantiles: bool = True  # Triton's latency summaries (embedded.LATENCY_QUANTILES: what they cost)

    def __post_init__(self) -> None:
        object.__setattr__(self, "repository", Path(self.repository))
        if not self.repository.is_dir():
            raise ConfigError(_not_a_repository(self.repository))
        try:
            ipaddress.ip_address(self.host)
        except ValueError as exc:
            raise ConfigError(f"host {self.host!r} is not an IP address; use e.g. 127.0.0.1") from exc
        for name in ("grpc_port", "http_port", "metrics_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ConfigError(f"{name}={getattr(self, name)} is not a port; use 0-65535")
        self._check_distinct_ports()
        if self.runner not in ("native", "python"):
            raise ConfigError(f"runner={self.runner!r} is not a runner; use 'native' or 'python'")
        if self.admin_key is not None and not _KEY.fullmatch(self.admin_key):
            raise ConfigError("the admin key must be 1-1000 letters, digits or . _ ~ + / = -; "
                              "generate one with `python -c 'import secrets; print(secrets.token_hex(16))'`")
        if self.cache_size_mb is not None and not 0 <= self.cache_size_mb <= 1 << 20:
            raise ConfigError(f"cache_size_mb={self.cache_size_mb} is out of range; use 0 (off) to 1048576")
        if self.ort_threads is not None and self.ort_threads < 1:
            raise ConfigError(f"ort_threads={self.ort_threads} must be >= 1")

    def _check_distinct_ports(self) -> None:
        """ConfigError naming both flags when two endpoints ask for the same (non-zero) port."""
        kinds = ("grpc", "http", "metrics") if self.http else ("grpc", "metrics")
        seen: dict[int, str] = {}
        for kind in kinds:
            port = getattr(self, f"{kind}_port")
            if port and port in seen:
                raise ConfigError(f"--{seen[port]}-port and --{kind}-port are both {port}; give each "
                                  "endpoint its own port (0 picks a free one)")
            seen.setdefault(port, kind)


def _not_a_repository(path: Path) -> str:
    """Why `path` (not a folder) cannot be served, and what to pass instead, in one line."""
    if path.exists():
        return (f"--repository {path} is a file, not a model repository folder; pass the folder that holds "
                "one sub-folder per model (e.g. model_repository, made by `tritonstack models build` or "
                "`tritonstack convert`)")
    return (f"model repository {path} does not exist; "
            "build it with `tritonstack models build` or pass --repository")

"""Triton's model-control, readiness and statistics calls over gRPC, the admin key sent as metadata.

    with TritonGrpc("127.0.0.1:8001", admin_key=key) as triton:
        triton.load("digits_mlp", config=json.dumps(config), timeout_s=30)
        states = triton.index(timeout_s=5)     # [{"name", "version", "state", "reason"}, ...]

The embedded server runs with HTTP off by default (Triton 2.51's HTTP endpoint can be crashed by a large
request body, see limits.py), so everything the launcher and `ops` ask Triton goes over gRPC, here.
Answers are shaped like Triton's HTTP JSON, which callers were written against: field names as in the
protobuf (snake_case), statistics with every counter present and int64 values as numbers. Failures are
tritonclient's InferenceServerException; callers map them onto the error tree by status code.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import tritonclient.grpc as grpcclient
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from tritonstack.serve.config import ADMIN_HEADER, TlsConfig

from tritonstack.errors import ConfigError

__all__ = ["ClientTls", "TritonGrpc", "check_grpc_url", "grpc_key_headers", "normalise_statistics",
           "status_name", "tls_credentials"]

#: Keys whose values are strings in Triton's HTTP statistics too (never turned into numbers).
_TEXT_KEYS = frozenset({"name", "version", "type"})


def grpc_key_headers(admin_key: str | None) -> dict[str, str]:
    """The gRPC metadata that unlocks the restricted protocols (Triton prefixes the header name)."""
    return {f"triton-grpc-protocol-{ADMIN_HEADER}": admin_key} if admin_key else {}


def split_host_port(address: str) -> tuple[str, int]:
    """("host", port) of "host:port" ("[::1]:8000" too); ValueError when it is not one."""
    host, _, port = address.rpartition(":")
    if not host or any(c.isspace() for c in address) or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{address!r} is not host:port with a port from 1 to 65535")
    return host.removeprefix("[").removesuffix("]"), int(port)


def check_grpc_url(url: str) -> str:
    """`url` if it is host:port with a port of 1-65535; ConfigError otherwise (gRPC would wrap the port)."""
    if "://" in url:  # gRPC would fail later with a cryptic "errors resolving http://..."
        host = url.split("://", 1)[1].rstrip("/")
        raise ConfigError(f"--url {url!r}: --url takes host:port for gRPC (no http://), e.g. {host}")
    try:
        split_host_port(url)
    except ValueError:
        raise ConfigError(f"--url {url!r} is not host:port with a port from 1 to 65535; pass Triton's gRPC "
                          "endpoint, e.g. 127.0.0.1:8001") from None
    return url


def status_name(exc: grpcclient.InferenceServerException) -> str:
    """The gRPC status code of a tritonclient error, e.g. "UNAVAILABLE" ("" when there is none)."""
    return str(exc.status() or "").removeprefix("StatusCode.")


def tls_credentials(tls: TlsConfig) -> tuple[grpc.ChannelCredentials, list[tuple[str, Any]]]:
    """Credentials for the launcher's own calls to a server using `tls`: the server's certificate is
    trusted (self-signed, or a chain file ending in its CA) and, for mutual TLS, presented as the client
    certificate; the name checked is the certificate's own, so any bind address works."""
    cert = tls.server_cert.read_bytes()
    roots = cert + (tls.root_cert.read_bytes() if tls.root_cert is not None else b"")
    mutual = tls.root_cert is not None
    creds = grpc.ssl_channel_credentials(root_certificates=roots,
                                         private_key=tls.server_key.read_bytes() if mutual else None,
                                         certificate_chain=cert if mutual else None)
    name = _certificate_name(tls)
    return creds, [("grpc.ssl_target_name_override", name)] if name else []


def _certificate_name(tls: TlsConfig) -> str | None:
    """The first DNS name (or the common name) of the server certificate; None if it cannot be read."""
    try:
        decoded = ssl._ssl._test_decode_cert(str(tls.server_cert))  # noqa: SLF001 - stdlib, no extra package
    except (AttributeError, ssl.SSLError, OSError):
        return None
    names = [value for kind, value in decoded.get("subjectAltName", ()) if kind == "DNS"]
    names += [value for rdn in decoded.get("subject", ()) for key, value in rdn if key == "commonName"]
    return names[0] if names else None


@dataclass(frozen=True, kw_only=True)
class ClientTls:
    """A user's TLS files for calling a TLS server: the CA to trust, and a client pair for mutual TLS."""

    root_cert: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ConfigError("--tls-cert and --tls-key go together; pass both or neither")
        for name in ("root_cert", "cert", "key"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"--tls-{name.replace('_', '-')} {path} is not a file; pass a PEM file")

    def credentials(self) -> grpc.ChannelCredentials:
        """gRPC channel credentials from these files (system CAs when no root is given)."""
        def read(path: Path | None) -> bytes | None:
            return Path(path).read_bytes() if path is not None else None

        return grpc.ssl_channel_credentials(root_certificates=read(self.root_cert),
                                            private_key=read(self.key), certificate_chain=read(self.cert))


class TritonGrpc:
    """One gRPC channel to Triton for control calls; every call takes its own timeout (seconds)."""

    def __init__(self, url: str, *, admin_key: str | None = None, tls: TlsConfig | None = None,
                 client_tls: ClientTls | None = None) -> None:
        """`tls`: the launcher's call to its own TLS server; `client_tls`: a user's files for any server."""
        self.url = url
        self.headers = grpc_key_headers(admin_key)
        creds, args = tls_credentials(tls) if tls is not None else (None, None)
        if client_tls is not None:
            creds, args = client_tls.credentials(), None
        self._client = grpcclient.InferenceServerClient(url, creds=creds, channel_args=args)

    def close(self) -> None:
        """Close the channel."""
        self._client.close()

    def __enter__(self) -> TritonGrpc:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def is_live(self, timeout_s: float) -> bool:
        """True when the server answers live (an unrestricted call: tells 'refused' from 'down')."""
        return self._client.is_server_live(client_timeout=timeout_s)

    def is_ready(self, timeout_s: float) -> bool:
        """True when the server answers ready."""
        return self._client.is_server_ready(headers=self.headers, client_timeout=timeout_s)

    def is_model_ready(self, model: str, version: str = "", *, timeout_s: float) -> bool:
        """True when `model` (one `version`, or any) answers ready."""
        return self._client.is_model_ready(model, version, headers=self.headers, client_timeout=timeout_s)

    def load(self, model: str, *, config: str | None = None, timeout_s: float) -> None:
        """(Re)load `model`; `config` (JSON) replaces its config.pbtxt for this load."""
        self._client.load_model(model, headers=self.headers, config=config, client_timeout=timeout_s)

    def unload(self, model: str, *, timeout_s: float) -> None:
        """Unload `model` (in-flight requests finish first)."""
        self._client.unload_model(model, headers=self.headers, client_timeout=timeout_s)

    def index(self, *, timeout_s: float) -> list[dict]:
        """The repository index as HTTP gives it: a model never loaded has no "state" key."""
        answer = self._client.get_model_repository_index(headers=self.headers, client_timeout=timeout_s)
        return _as_dict(answer).get("models", [])

    def config(self, model: str, *, timeout_s: float) -> dict:
        """The loaded config of `model` (protobuf JSON names; int64 values may be strings)."""
        answer = self._client.get_model_config(model, headers=self.headers, client_timeout=timeout_s)
        return _as_dict(answer.config)

    def statistics(self, model: str = "", *, timeout_s: float) -> dict:
        """`{"model_stats": [...]}` as Triton's HTTP statistics: every counter present, as a number."""
        answer = self._client.get_inference_statistics(model, headers=self.headers, client_timeout=timeout_s)
        return normalise_statistics(_as_dict(answer, defaults=True))


def _as_dict(message: Message, *, defaults: bool = False) -> dict:
    """A protobuf message as a dict with the protobuf field names (optionally with zero values)."""
    if not defaults:
        return MessageToDict(message, preserving_proto_field_name=True)
    try:
        return MessageToDict(message, preserving_proto_field_name=True, including_default_value_fields=True)
    except TypeError:  # protobuf >= 5.26 renamed the switch
        return MessageToDict(message, preserving_proto_field_name=True,
                             always_print_fields_with_no_presence=True)


def normalise_statistics(value: Any, key: str = "") -> Any:  # noqa: ANN401 - JSON
    """Triton's gRPC statistics JSON with int64 counters (strings in protobuf JSON) made numbers."""
    if isinstance(value, dict):
        return {k: normalise_statistics(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise_statistics(v, key) for v in value]
    if isinstance(value, str) and key not in _TEXT_KEYS and value.isdigit():
        return int(value)
    return value

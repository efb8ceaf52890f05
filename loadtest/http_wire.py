"""Triton's HTTP/REST inference request, prepared once and sent often by Locust users (gevent).

    request = http_request(info, "digits_mlp", "", row)          # built once per row
    sender = HttpSender("127.0.0.1:8000", model="digits_mlp", timeout_s=10.0)   # one per user
    sender.send(request)    # returns when the server answered 200; else one of our typed errors

The tensors travel in Triton's binary-data extension (a small JSON header, then the raw bytes; outputs
asked for as binary too), so the server parses no JSON numbers and the generator builds nothing per
request. Under gevent this costs the load generator ~2.5x less CPU per request than a gRPC call
(gRPC's gevent mode does its socket work in Python), measured 97 vs 264 µs on this machine.
`geventhttpclient` is Locust's own fast HTTP client (a Locust dependency).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np

from tritonstack.errors import ClientError, ConfigError

__all__ = ["HttpRequest", "HttpSender", "check_http_path", "http_error", "http_request"]

#: Triton's HTTP status for each error class it answers with, as the gRPC code our error tree takes.
_CODES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED", 409: "ALREADY_EXISTS",
          429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 501: "UNIMPLEMENTED",
          503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

#: Characters Triton's HTTP endpoint finds a model by when they stand in the path as they are (it does not
#: decode %-escapes): RFC 3986's unreserved and sub-delims, ':' and '@'.
_SAFE_TEXT = "!$&'()*+,;=:@"
_PATH_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~" + _SAFE_TEXT)


@dataclass(frozen=True)
class HttpRequest:
    """One inference request: the path, its body (JSON header + raw tensors) and its headers."""

    path: str
    body: bytes
    headers: dict[str, str]


def http_request(info: Any, model: str, version: str, row: dict[str, np.ndarray]) -> HttpRequest:
    """The request carrying `row` (input name -> array, batch axis included when batched)."""
    from tritonstack.client.core import raw_tensor_bytes

    inputs, blobs = [], []
    for name, array in row.items():
        datatype = info.inputs[name].datatype
        blob = raw_tensor_bytes(array, datatype)
        inputs.append({"name": name, "shape": list(array.shape), "datatype": datatype,
                       "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    outputs = [{"name": name, "parameters": {"binary_data": True}} for name in info.output_names]
    header = json.dumps({"inputs": inputs, "outputs": outputs}, separators=(",", ":")).encode()
    path = f"/v2/models/{quote(model, safe=_SAFE_TEXT)}"
    if version:
        path += f"/versions/{quote(version, safe=_SAFE_TEXT)}"
    headers = {"Inference-Header-Content-Length": str(len(header)),
               "Content-Type": "application/octet-stream"}
    return HttpRequest(f"{path}/infer", header + b"".join(blobs), headers)


def check_http_path(model: str, version: str) -> None:
    """ConfigError (one line) when Triton's HTTP endpoint cannot address `model` / `version`."""
    odd = sorted({c for c in model if c not in _PATH_SAFE})
    if odd:
        raise ConfigError(f"model {model!r} cannot be reached over Triton's HTTP endpoint (its name has "
                          f"{''.join(odd)!r}, which an HTTP path must escape and Triton does not unescape); "
                          "send this load over gRPC (drop --protocol http)")
    if version and not version.isdigit():
        raise ConfigError(f"--model-version {version!r}: Triton's HTTP endpoint takes a version number only")


def http_error(status: int, body: bytes, *, model: str) -> ClientError:
    """Our typed error for a non-200 answer (Triton's body is {"error": "..."})."""
    from tritonstack.client.errors import error_for_status

    try:
        message = str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        message = body[:300].decode(errors="replace").strip() or "no message"
    code = _CODES.get(status) or ("INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
    return error_for_status(code, f"{message} (HTTP {status})", model=model)


class HttpSender:
    """Keep-alive connections to Triton's HTTP endpoint at `address` (gevent-cooperative), up to
    `connections` requests in flight at once (more wait for a connection).

    `timeout_s` is each request's deadline, sending and answer included (DEADLINE_EXCEEDED after it).
    After any transport failure the connections are dropped and the next request opens new ones (a
    request that was still waiting for a connection then takes a new one: it had sent nothing). No
    retries beyond geventhttpclient's resend on a keep-alive connection the server had already closed
    before the request was read.
    """

    def __init__(self, address: str, *, model: str, timeout_s: float, connections: int = 1) -> None:
        from tritonstack.serve.control import split_host_port

        self.host, self.port = split_host_port(address)
        self.address, self.model, self.timeout_s, self.connections = address, model, timeout_s, connections
        self._client: Any = None

    def _connection(self) -> Any:
        if self._client is None:
            from geventhttpclient import HTTPClient

            self._client = HTTPClient(self.host, self.port, concurrency=self.connections,
                                      connection_timeout=self.timeout_s, network_timeout=self.timeout_s)
        return self._client

    def send(self, request: HttpRequest) -> None:
        """POST `request`; return once answered 200 (the reply is read, not decoded)."""
        import gevent
        from geventhttpclient._parser import HTTPParseError
        from tritonstack.client.errors import error_for_status

        deadline = gevent.Timeout(self.timeout_s)
        deadline.start()
        try:
            response = self._post(request)
            body = response.read()
        except (gevent.Timeout, TimeoutError) as exc:
            if isinstance(exc, gevent.Timeout) and exc is not deadline:
                raise
            self.close()
            raise error_for_status("DEADLINE_EXCEEDED", f"no answer from {self.address} within "
                                   f"{self.timeout_s:g} s", model=self.model) from None
        except (OSError, HTTPParseError, RuntimeError) as exc:
            self.close()
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise error_for_status("UNAVAILABLE", f"HTTP {self.address}: {reason}", model=self.model) from exc
        finally:
            deadline.close()
        if response.status_code != 200:
            raise http_error(response.status_code, body, model=self.model)

    def _post(self, request: HttpRequest) -> Any:
        for attempt in (1, 2):
            client = self._connection()
            try:
                return client.request("POST", request.path, body=request.body, headers=request.headers)
            except RuntimeError:  # "connection pool closed": another request's failure closed it while this
                if attempt == 2 or client is self._client:  # one waited for a connection, so nothing was
                    raise  # sent: take a new one, once
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Drop the connection (the next `send` opens a new one)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

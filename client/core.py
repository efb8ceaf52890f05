"""What the sync and asyncio clients share: options, request building, result decoding, retries.

    options = ClientOptions(timeout_s=5.0, retry=RetryPolicy(attempts=4))

The transports (`sync.TritonClient`, `aio.AsyncTritonClient`) only do I/O; every decision that
does not wait on the network lives here, once: the model cache, validation, request encoding,
deadlines and whether (and how long) to back off before the next attempt.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
from tritonstack.client.errors import error_for_status
from tritonstack.client.model import ModelInfo, fixed_width_dtypes
from tritonstack.client.retry import RetryPolicy, checked_seconds
from tritonstack.client.validation import Bounds, Rule, as_arrays, validate_inputs

from tritonstack.errors import (
    ClientClosedError,
    ClientError,
    ConfigError,
    InternalServerError,
    InvalidInputError,
    ModelNotReadyError,
    ServerStoppingError,
    ServerUnavailableError,
)

__all__ = ["Call", "ClientCore", "ClientOptions", "InferOptions", "Inputs", "RetryPolicy",
           "grpc_restricted_headers", "model_infer", "raw_tensor_bytes", "reconnect_backoff",
           "version_string", "wanted_outputs", "wire_channel_options"]

if TYPE_CHECKING:
    from typing_extensions import Unpack as Unpack  # noqa: PLC0414 - re-exported for the balancers

Inputs = Mapping[str, np.ndarray] | np.ndarray
#: Triton's gRPC endpoint reads the key of `--grpc-restricted-protocol=<apis>:<key>=<value>` from
#: the header `triton-grpc-protocol-<key>` (HTTP reads `<key>` itself).
GRPC_RESTRICTED_PREFIX = "triton-grpc-protocol-"


def grpc_restricted_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """gRPC headers that unlock restricted endpoints (shared memory, model control), from the
    `key: value` pairs the server was given, e.g. `EmbeddedServer.admin_headers`.

        ClientOptions(headers=grpc_restricted_headers(server.admin_headers))
    """
    return {(k if k.startswith(GRPC_RESTRICTED_PREFIX) else GRPC_RESTRICTED_PREFIX + k): v
            for k, v in headers.items()}


_HEADER_KEY = re.compile(r"[0-9a-z_.-]+")


def checked_headers(headers: Mapping[str, str] | None) -> None:
    """ConfigError for a header gRPC cannot send as metadata (grpc raised an untyped error): keys
    are lowercase letters, digits, '-', '_' and '.', not 'grpc-...'; values printable ASCII."""
    for key, value in (headers or {}).items():
        if not isinstance(key, str) or not _HEADER_KEY.fullmatch(key) or key.startswith("grpc-"):
            hint = f" (gRPC metadata keys are lowercase: {key.lower()!r})" if isinstance(key, str) else ""
            raise ConfigError(f"header {key!r}: not a valid gRPC metadata key{hint}")
        if not isinstance(value, str) or not all(" " <= ch <= "~" for ch in value):
            raise ConfigError(f"header {key!r}: its value must be printable ASCII text (no newline)")


class InferOptions(TypedDict, total=False):
    """The per-call options of `infer` that wrappers (balancers) pass through unchanged."""

    outputs: Sequence[str] | None
    version: int | str | None
    request_id: str
    headers: Mapping[str, str] | None


def version_string(version: int | str | None) -> str:
    """Triton's wire form of a model version: "" means the server's choice (latest ready)."""
    return "" if version is None else str(version)


def wanted_outputs(info: ModelInfo, outputs: Sequence[str] | None) -> tuple[str, ...]:
    """The outputs a call returns: `outputs` if given (each must be one of the model's), else all."""
    if not outputs:
        return info.output_names
    unknown = sorted(set(outputs) - set(info.outputs))
    if unknown:
        raise InvalidInputError(f"outputs {unknown} requested; model {info.name!r} has "
                                f"outputs {sorted(info.outputs)}")
    return tuple(outputs)


def reconnect_backoff(max_s: float) -> list[tuple[str, int]]:
    """gRPC channel options: reconnect within 100 ms of losing the server, backing off to `max_s`.

    gRPC's own first backoff is 1 s: after a server restart of 0.2 s, every call on the channel fails
    at once (UNAVAILABLE) for about a second, an outage the server did not have."""
    max_ms = int(max_s * 1000)
    return [
        ("grpc.initial_reconnect_backoff_ms", min(100, max_ms)),
        ("grpc.min_reconnect_backoff_ms", min(100, max_ms)),
        ("grpc.max_reconnect_backoff_ms", max_ms),
    ]


def wire_channel_options() -> list[tuple[str, int]]:
    """Options of a plain gRPC channel that sends prepared requests (load generators): no message size
    limit, and a client's default reconnect backoff, so a restart costs what it costs our client."""
    return [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1),
            *reconnect_backoff(ClientOptions.max_reconnect_backoff_s)]


@dataclass(frozen=True, kw_only=True)
class ClientOptions:
    """Per-client defaults: deadline per call, retry policy, validation, TLS, headers.

    `headers` go with every call, including shared-memory registration; for `infer_shm` against a
    server with restricted endpoints, add `grpc_restricted_headers(<its admin header>)`.
    `probe_timeout_s` bounds each readiness probe (`is_ready`, balancer health checks).
    `max_reconnect_backoff_s` caps gRPC's reconnect backoff (default 120 s in gRPC), so a
    restarted server is reached again within seconds.
    `coalesce` (asyncio client, on by default): concurrent `infer` calls of a dynamically batched
    model that are ready in the same event-loop turn share one request (see `client.coalesce`);
    results, errors, deadlines and retries stay per call. `coalesce=False` sends one gRPC request
    per call (what a load generator must do).
    """

    timeout_s: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    validate: bool = True
    bounds: Mapping[str, Mapping[str, Bounds]] = field(default_factory=dict)  # model -> input -> bounds
    rules: Mapping[str, Sequence[Rule]] = field(default_factory=dict)  # model -> rules
    ssl: bool = False
    root_certificates: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    probe_timeout_s: float = 1.0
    max_reconnect_backoff_s: float = 2.0
    coalesce: bool = True

    def __post_init__(self) -> None:
        for name in ("timeout_s", "probe_timeout_s", "max_reconnect_backoff_s"):
            checked_seconds(name, getattr(self, name))
        checked_headers(self.headers)


@dataclass(slots=True)
class Call:
    """One prepared inference: validated arrays, wanted outputs, version and absolute deadline."""

    info: ModelInfo
    arrays: dict[str, np.ndarray]
    outputs: tuple[str, ...]
    version: str
    deadline: float  # time.monotonic()
    request_id: str = ""
    headers: dict[str, str] | None = None

    def remaining_s(self) -> float:
        """Seconds left before the deadline (at least 1 ms, so the server sees a deadline)."""
        return max(self.deadline - time.monotonic(), 0.001)


class ClientCore:
    """State and pure logic shared by both clients: lifecycle, model cache, validation, encoding."""

    def __init__(self, url: str, options: ClientOptions | None) -> None:
        self.url = url
        self.options = options or ClientOptions()
        self._models: dict[tuple[str, str], ModelInfo] = {}
        self._heads: dict[tuple[Any, ...], bytes] = {}  # see encode()
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True after close()."""
        return self._closed

    def mark_closed(self) -> bool:
        """Mark the client closed; True when it was open (so the transport closes once)."""
        was_open, self._closed = not self._closed, True
        return was_open

    def check_open(self) -> None:
        """Raise ClientClosedError after close()."""
        if self._closed:
            raise ClientClosedError(f"client for {self.url} is closed; create a new one")

    def channel_args(self) -> list[tuple[str, int]]:
        """gRPC channel options: tritonclient's defaults plus the capped reconnect backoff."""
        from tritonclient.grpc import MAX_GRPC_MESSAGE_SIZE, KeepAliveOptions

        keepalive = KeepAliveOptions()
        return [
            ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_SIZE),
            ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_SIZE),
            ("grpc.keepalive_time_ms", keepalive.keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", keepalive.keepalive_timeout_ms),
            ("grpc.keepalive_permit_without_calls", int(keepalive.keepalive_permit_without_calls)),
            ("grpc.http2.max_pings_without_data", keepalive.http2_max_pings_without_data),
            *reconnect_backoff(self.options.max_reconnect_backoff_s),
        ]

    # -- model cache ----------------------------------------------------------------------------
    def cached(self, model: str, version: str) -> ModelInfo | None:
        """The cached ModelInfo of (model, version), if fetched before."""
        self.check_open()
        return self._models.get((model, version))

    def remember(self, model: str, version: str, found: tuple[Mapping[str, Any], Mapping[str, Any]]
                 ) -> ModelInfo:
        """Cache (config, metadata), the JSON forms of `get_model_config` and `get_model_metadata`,
        as the ModelInfo of (model, version) and return it."""
        config, metadata = found
        info = ModelInfo.from_config(dict(config["config"]), dict(metadata))
        self._models[(model, version)] = info
        return info

    def not_ready_error(self, model: str | None, timeout_s: float) -> ClientError:
        """The error `wait_until_ready` raises when its time is up."""
        if model:
            return ModelNotReadyError(f"model {model!r} on {self.url} not ready after {timeout_s:g} s; "
                                      "check the server log or `tritonstack serve` output")
        return ServerUnavailableError(f"server {self.url} not ready after {timeout_s:g} s; "
                                      "is `tritonstack serve` running?")

    @staticmethod
    def refine_not_ready(error: ModelNotReadyError, server_ready: bool) -> ClientError:
        """A model with no ready version on a server that is not ready: the server is stopping.

        Triton 2.51, once it got SIGTERM, unloads idle models first and answers NOT_FOUND "has no
        available versions" for them; only models with requests in flight say "Server is stopping".
        """
        if server_ready:
            return error
        return ServerStoppingError(f"{error}; the server reports not ready: it is stopping or restarting")

    # -- requests -------------------------------------------------------------------------------
    def deadline(self, timeout_s: float | None) -> float:
        """The `time.monotonic()` by which a call must end (`timeout_s` or the client default)."""
        self.check_open()
        if timeout_s is None:
            return time.monotonic() + self.options.timeout_s
        return time.monotonic() + checked_seconds("timeout_s", timeout_s)

    def new_call(self, info: ModelInfo, inputs: Inputs, *, deadline: float,
                 outputs: Sequence[str] | None = None, version: int | str | None = None,
                 request_id: str = "", headers: Mapping[str, str] | None = None) -> Call:
        """Validate `inputs` for `info`; the call must end by `deadline` (see `deadline()`)."""
        wanted = wanted_outputs(info, outputs)
        return Call(info=info, arrays=self.prepare(info, inputs), outputs=wanted,
                    version=version_string(version), deadline=deadline, request_id=request_id,
                    headers=self.headers(headers))

    def as_dict(self, info: ModelInfo, inputs: Inputs) -> dict[str, np.ndarray]:
        """Accept one array for single-input models, else a dict by input name (lists converted)."""
        if isinstance(inputs, np.ndarray):
            if len(info.inputs) != 1:
                raise InvalidInputError(f"model {info.name!r} has inputs {sorted(info.inputs)}; "
                                        "pass a dict of arrays by input name")
            return {next(iter(info.inputs)): inputs}
        return as_arrays(info, inputs)

    def prepare(self, info: ModelInfo, inputs: Inputs) -> dict[str, np.ndarray]:
        """Normalise and validate inputs for `info`."""
        arrays = self.as_dict(info, inputs)
        if self.options.validate:
            validate_inputs(info, arrays, bounds=self.options.bounds.get(info.name),
                            rules=self.options.rules.get(info.name, ()))
        return arrays

    def infer_kwargs(self, module: Any, call: Call,
                     tensors: tuple[list[Any], list[Any]] | None = None) -> dict[str, Any]:
        """Keyword arguments of `raw.infer` for `call` (`module` is tritonclient.grpc or .aio).

        `tensors` replaces the (inputs, outputs) built from the call, e.g. shared-memory ones.
        """
        self.check_open()
        inputs, outputs = tensors or (
            self.infer_inputs(module, call.info, call.arrays),
            [module.InferRequestedOutput(name) for name in call.outputs],
        )
        return {
            "model_name": call.info.name,
            "inputs": inputs,
            "model_version": call.version,
            "outputs": outputs,
            "request_id": call.request_id,
            "client_timeout": call.remaining_s(),
            "headers": call.headers,
        }

    def encode(self, call: Call) -> bytes:
        """The serialized ModelInferRequest of `call`, tensors as raw contents (see `model_infer`).

        What tritonclient's `infer` builds through InferInput objects, without their per-call
        checks (validation did them): the protobuf part (names, shapes, outputs) is serialized
        once per request signature and cached; each call appends only its raw tensor bytes. The
        per-request cost on the caller's core is what limits a Python load generator.
        """
        self.check_open()
        tensors, shapes = call.info.inputs, []
        chunks: list[bytes] = [b""]
        for name, array in call.arrays.items():
            tensor = tensors.get(name)
            if tensor is None or (tensor.datatype not in ("BYTES", "BF16") and array.dtype != tensor.dtype):
                raise InvalidInputError(  # only reachable with validate=False
                    f"input {name!r} ({array.dtype}) does not match model {call.info.name!r}: it "
                    f"expects {', '.join(f'{t.name} ({t.datatype})' for t in tensors.values())}")
            raw = raw_tensor_bytes(array, tensor.datatype)
            shapes.append(array.shape)
            chunks += (_RAW_INPUT_TAG, _varint(len(raw)), raw)
        key = (call.info.name, call.version, call.request_id, call.outputs, tuple(call.arrays), tuple(shapes))
        head = self._heads.get(key)
        if head is None:
            head = self._heads[key] = _request_head(call, shapes)
            if len(self._heads) > _MAX_HEADS:  # e.g. a distinct request_id per call
                self._heads.clear()
        chunks[0] = head
        return b"".join(chunks)

    @staticmethod
    def metadata(call: Call) -> tuple[tuple[str, str], ...]:
        """gRPC metadata of `call` (its headers)."""
        return tuple(call.headers.items()) if call.headers else ()

    @staticmethod
    def infer_inputs(module: Any, info: ModelInfo, arrays: Mapping[str, np.ndarray]) -> list[Any]:
        """tritonclient InferInput objects carrying the arrays."""
        items = []
        for name, array in arrays.items():
            item = module.InferInput(name, list(array.shape), info.inputs[name].datatype)
            item.set_data_from_numpy(array)
            items.append(item)
        return items

    @staticmethod
    def decode(response: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
        """numpy arrays by output name from a ModelInferResponse (raw output contents, as Triton's
        gRPC endpoint sends them when no shared memory is involved)."""
        raw = response.raw_output_contents
        found = {tensor.name: _from_raw(raw[i], tensor.datatype, tensor.shape)
                 for i, tensor in enumerate(response.outputs) if i < len(raw)}
        if len(found) == len(names) and found.keys() == set(names):
            return found
        missing = [name for name in names if name not in found]
        if missing:
            raise InternalServerError(f"model {response.model_name!r} answered without outputs {missing}")
        return {name: found[name] for name in names}

    def rpc_error(self, error: Any, call: Call) -> ClientError:
        """The typed error of a failed ModelInfer (a grpc.RpcError) for `call`."""
        return error_for_status(error.code().name, error.details() or str(error), model=call.info.name)

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str] | None:
        """Headers for a call: the client's, then the call's (None when there are none)."""
        if not extra and not self.options.headers:
            return None
        checked_headers(extra)
        merged = {**self.options.headers, **(extra or {})}
        return merged or None


def model_infer(channel: Any) -> Any:
    """Triton's ModelInfer on a grpc (or grpc.aio) channel, taking `ClientCore.encode` bytes and
    returning a ModelInferResponse; tritonclient's own stub method with the request serializer
    left out."""
    from tritonclient.grpc import service_pb2

    return channel.unary_unary("/inference.GRPCInferenceService/ModelInfer", request_serializer=None,
                               response_deserializer=service_pb2.ModelInferResponse.FromString,
                               _registered_method=True)


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


#: The key of ModelInferRequest.raw_input_contents (field 7, length-delimited); protobuf parsers
#: accept fields in any order, so raw contents can follow the cached rest of the message.
_RAW_INPUT_TAG = _varint(7 << 3 | 2)
_MAX_HEADS = 4096


def _request_head(call: Call, shapes: Sequence[tuple[int, ...]]) -> bytes:
    """ModelInferRequest of `call` without raw contents, serialized."""
    from tritonclient.grpc import service_pb2

    request = service_pb2.ModelInferRequest(model_name=call.info.name, model_version=call.version,
                                            id=call.request_id)
    for name, shape in zip(call.arrays, shapes, strict=True):
        request.inputs.add(name=name, datatype=call.info.inputs[name].datatype, shape=shape)
    for name in call.outputs:
        request.outputs.add(name=name)
    return request.SerializeToString()


def raw_tensor_bytes(array: np.ndarray, datatype: str) -> bytes:
    """Triton's raw wire form of a tensor: little-endian, row-major; BYTES length-prefixed."""
    if datatype == "BYTES":
        from tritonclient.utils import serialize_byte_tensor

        return serialize_byte_tensor(array).item() if array.size else b""
    if datatype == "BF16":
        from tritonclient.utils import serialize_bf16_tensor

        return serialize_bf16_tensor(array).item()
    return np.ascontiguousarray(array).tobytes()


def _from_raw(raw: bytes, datatype: str, shape: Sequence[int]) -> np.ndarray:
    """The numpy array of one raw output tensor (the inverse of `raw_tensor_bytes`)."""
    dtype = _FIXED_WIDTH.get(datatype)
    if dtype is not None:
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
    if datatype == "BYTES":
        from tritonclient.utils import deserialize_bytes_tensor

        return deserialize_bytes_tensor(raw).reshape(shape)
    from tritonclient.utils import deserialize_bf16_tensor

    return deserialize_bf16_tensor(raw).reshape(shape)


_FIXED_WIDTH = fixed_width_dtypes()

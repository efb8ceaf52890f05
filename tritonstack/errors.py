"""The one error tree of tritonstack.

    try:
        client.infer("mlp", batch)
    except InvalidInputError as exc:
        print(exc)          # names the input, the value seen and what was expected

    TritonStackError
    ├── ConfigError                  bad option or config value given by the user
    ├── ServerError                  the embedded server
    │   ├── ServerBinaryNotFoundError    nvidia-pytriton (the tritonserver binary) is missing
    │   ├── ServerStartError             the server exited or did not become ready in time
    │   └── NativeBuildError             the native onnxruntime backend cannot be built (no compiler)
    ├── ConversionError              convert/: building an artifact
    │   ├── ModelLoadError               the source model file cannot be read
    │   ├── InputSpecError               the declared input spec does not fit the model
    │   ├── ExportMismatchError          a converted model disagrees with its source
    │   ├── CalibrationError             calibration data is missing or of the wrong shape
    │   ├── AccuracyGateError            a quantized variant lost more accuracy than allowed
    │   ├── PrecisionUnsupportedError    the model cannot be made into the precision asked for
    │   └── RepositoryWriteError         the model repository cannot be written safely
    ├── ClientError                  client/: talking to a running server
    │   ├── ClientClosedError            the client was used after close()
    │   ├── InvalidInputError            rejected before sending, or INVALID_ARGUMENT
    │   ├── ModelNotFoundError           NOT_FOUND: unknown model or version
    │   ├── ModelNotReadyError           the model exists but is not ready
    │   ├── ServerUnavailableError       UNAVAILABLE: server down or unreachable
    │   │   ├── OverloadedError              queue full / request timed out in the queue
    │   │   └── ServerStoppingError          the server is shutting down
    │   ├── InferenceTimeoutError        DEADLINE_EXCEEDED: the call's deadline passed
    │   ├── AccessDeniedError            a restricted endpoint was called without the admin header
    │   ├── SharedMemoryError            a local shared-memory region cannot be created or read
    │   └── InternalServerError          INTERNAL or anything else the server reports
    ├── LoadTestError                loadtest/: a scenario or benchmark cannot run
    └── OperationsError              ops/: day-two operations (versions, drift, monitoring)
        └── VersionRefusedError          a new version failed to load; the served ones keep serving
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "AccuracyGateError",
    "CalibrationError",
    "ClientClosedError",
    "ClientError",
    "ConfigError",
    "ConversionError",
    "ExportMismatchError",
    "InferenceTimeoutError",
    "InputSpecError",
    "InternalServerError",
    "InvalidInputError",
    "LoadTestError",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelNotReadyError",
    "NativeBuildError",
    "OperationsError",
    "OverloadedError",
    "PrecisionUnsupportedError",
    "RepositoryWriteError",
    "ServerBinaryNotFoundError",
    "ServerError",
    "ServerStartError",
    "ServerStoppingError",
    "ServerUnavailableError",
    "SharedMemoryError",
    "TritonStackError",
    "VersionRefusedError",
]


class TritonStackError(Exception):
    """Base of every error tritonstack raises on purpose."""


class ConfigError(TritonStackError):
    """An option or configuration value given by the user is invalid."""


class ServerError(TritonStackError):
    """The embedded Triton server cannot be started or managed."""


class ServerBinaryNotFoundError(ServerError):
    """The tritonserver binary (shipped in the nvidia-pytriton wheel) is not installed."""


class ServerStartError(ServerError):
    """The server exited during start-up or did not become ready in time."""


class NativeBuildError(ServerError):
    """The native onnxruntime backend cannot be built (no C++ compiler, or the compiler failed)."""


class ConversionError(TritonStackError):
    """A conversion step failed; the model repository was left unchanged."""


class ModelLoadError(ConversionError):
    """The source model file is missing, corrupt or of an unsupported kind."""


class InputSpecError(ConversionError):
    """The declared input spec does not fit the model."""


class ExportMismatchError(ConversionError):
    """A converted artifact's outputs differ from its source beyond tolerance."""


class CalibrationError(ConversionError):
    """INT8 calibration data is missing, too small or of the wrong shape."""


class AccuracyGateError(ConversionError):
    """A quantized variant lost more task accuracy than the budget allows."""


class PrecisionUnsupportedError(ConversionError):
    """The model cannot be converted to a precision (no FP16 kernels, nothing to quantize)."""


class RepositoryWriteError(ConversionError):
    """The model repository cannot be written safely (bad name, version exists, disk error)."""


class ClientError(TritonStackError):
    """A call to a running Triton server failed."""


class ClientClosedError(ClientError):
    """The client was used after it was closed."""


class InvalidInputError(ClientError):
    """An input was rejected, before sending or by the server (INVALID_ARGUMENT)."""


class ModelNotFoundError(ClientError):
    """The server knows no such model or version (NOT_FOUND)."""


class ModelNotReadyError(ClientError):
    """The model exists but is not ready to serve."""


class ServerUnavailableError(ClientError):
    """The server is down, unreachable or refusing work (UNAVAILABLE). Retryable."""


class OverloadedError(ServerUnavailableError):
    """The model's queue is full or the request timed out in the queue. Retryable."""


class ServerStoppingError(ServerUnavailableError):
    """The server is shutting down and accepts no new requests."""


class InferenceTimeoutError(ClientError):
    """The call's deadline passed before a response arrived (DEADLINE_EXCEEDED)."""


class AccessDeniedError(ClientError):
    """A restricted endpoint (shared memory, model control) refused the call: admin header missing.

    Not retryable; pass `grpc_restricted_headers(<admin header>)` in `ClientOptions.headers`.
    """


class SharedMemoryError(ClientError):
    """A local system shared-memory region cannot be created, filled, read or destroyed."""


class InternalServerError(ClientError):
    """The server reported an internal error (INTERNAL or another unexpected status)."""


class LoadTestError(TritonStackError):
    """A load test or benchmark cannot run as configured."""


class OperationsError(TritonStackError):
    """A day-two operation (model versions, drift, monitoring) cannot be carried out."""


class VersionRefusedError(OperationsError):
    """Triton refused to load a new model version; the versions served before keep serving."""

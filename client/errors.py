"""Translate tritonclient / gRPC failures into tritonstack's error tree, in exactly one place.

    with translate_errors(model="digits_mlp"):
        raw_client.infer(...)

Classification is by gRPC status code. Within UNAVAILABLE, Triton uses one code for three
situations a caller treats differently; the subclass (overloaded, stopping) is refined from the
message, and all three remain `ServerUnavailableError`. Triton also answers UNAVAILABLE to a call
of a restricted endpoint without the admin header: that one becomes `AccessDeniedError`, which is
not retryable.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tritonstack.errors import (
    AccessDeniedError,
    ClientError,
    InferenceTimeoutError,
    InternalServerError,
    InvalidInputError,
    ModelNotFoundError,
    ModelNotReadyError,
    OverloadedError,
    ServerStoppingError,
    ServerUnavailableError,
)

__all__ = ["RETRYABLE", "error_for_status", "translate_errors"]

_BY_CODE: dict[str, type[ClientError]] = {
    "INVALID_ARGUMENT": InvalidInputError,
    "NOT_FOUND": ModelNotFoundError,
    "UNAVAILABLE": ServerUnavailableError,
    # the server cancelled the call before answering (Triton 2.51 does so to a few of thousands in
    # flight when it stops): not done, so retryable (a cancel by the caller raises CancelledError)
    "CANCELLED": ServerUnavailableError,
    "DEADLINE_EXCEEDED": InferenceTimeoutError,
    "RESOURCE_EXHAUSTED": OverloadedError,
    "FAILED_PRECONDITION": ModelNotReadyError,
    "INTERNAL": InternalServerError,
    "PERMISSION_DENIED": AccessDeniedError,
    "UNAUTHENTICATED": AccessDeniedError,
}
_UNAVAILABLE_REFINED = (
    ("exceeds maximum queue size", OverloadedError),
    ("request timeout expired", OverloadedError),
    ("server is stopping", ServerStoppingError),
    ("protocol is restricted", AccessDeniedError),
)
#: NOT_FOUND texts meaning "known, but no version is loaded" (e.g. after an unload).
_NOT_READY = ("not ready", "has no available versions")
#: Errors after which an idempotent inference call may be retried. ModelNotReadyError is one: a
#: known model without a ready version is loading or unloading, and Triton 2.51 answers NOT_FOUND
#: "has no available versions" for seconds while it shuts down, before its port closes.
RETRYABLE: tuple[type[ClientError], ...] = (ServerUnavailableError, ModelNotReadyError)


def error_for_status(code: str | None, message: str, *, model: str | None = None) -> ClientError:
    """Build the typed error for a gRPC status code name (e.g. "UNAVAILABLE") and its message."""
    name = (code or "UNKNOWN").rsplit(".", 1)[-1]
    cls = _BY_CODE.get(name, InternalServerError)
    lowered = message.lower()
    if cls is ServerUnavailableError:
        cls = next((sub for text, sub in _UNAVAILABLE_REFINED if text in lowered), cls)
    if cls is ModelNotFoundError and any(text in lowered for text in _NOT_READY):
        cls = ModelNotReadyError
    where = f"model {model!r}: " if model else ""
    return cls(f"{where}{message} [{name}]")


@contextmanager
def translate_errors(*, model: str | None = None) -> Iterator[None]:
    """Re-raise tritonclient and gRPC errors raised inside the block as tritonstack errors."""
    from tritonclient.utils import InferenceServerException

    try:
        yield
    except InferenceServerException as exc:
        raise error_for_status(exc.status(), exc.message() or str(exc), model=model) from exc

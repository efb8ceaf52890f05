import inspect

import pytest
from tritonstack.client.errors import error_for_status

import tritonstack.errors as errors


def test_all_matches_the_classes_defined() -> None:
    defined = {n for n, o in vars(errors).items() if inspect.isclass(o) and issubclass(o, Exception)}
    assert set(errors.__all__) == defined


def test_every_error_descends_from_one_root() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.TritonStackError)


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("StatusCode.INVALID_ARGUMENT", "unexpected shape", errors.InvalidInputError),
        ("StatusCode.NOT_FOUND", "Request for unknown model", errors.ModelNotFoundError),
        ("StatusCode.UNAVAILABLE", "failed to connect", errors.ServerUnavailableError),
        ("StatusCode.UNAVAILABLE", "Exceeds maximum queue size", errors.OverloadedError),
        ("StatusCode.UNAVAILABLE", "Request timeout expired", errors.OverloadedError),
        ("StatusCode.UNAVAILABLE", "Server is stopping...", errors.ServerStoppingError),
        ("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded", errors.InferenceTimeoutError),
        ("StatusCode.INTERNAL", "Stub process is not healthy", errors.InternalServerError),
        ("StatusCode.UNKNOWN", "?", errors.InternalServerError),
        (None, "?", errors.InternalServerError),
    ],
)
def test_grpc_status_maps_to_typed_error(code, message, expected) -> None:
    error = error_for_status(code, message, model="m")
    assert type(error) is expected
    assert "'m'" in str(error)

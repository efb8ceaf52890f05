"""ClientCore, RetryPolicy and bulk chunking: the decisions that do not wait on the network."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from tritonstack.client import ClientOptions, ModelInfo, RetryPolicy, TritonClient, bulk
from tritonstack.client.core import ClientCore
from tritonstack.client.errors import error_for_status

from tritonstack import errors

INFO = ModelInfo.from_config({
    "name": "digits_mlp", "max_batch_size": 8,
    "input": [{"name": "features", "data_type": "TYPE_FP32", "dims": ["4"]}],
    "output": [{"name": "probabilities", "data_type": "TYPE_FP32", "dims": ["2"]}],
})


def test_retry_only_retryable_errors_within_attempts_and_deadline() -> None:
    policy = RetryPolicy(attempts=3, initial_backoff_s=0.01)
    far = time.monotonic() + 60
    assert policy.pause_s(errors.ServerUnavailableError("down"), 1, far) is not None
    assert policy.pause_s(errors.OverloadedError("queue full"), 2, far) is not None
    assert policy.pause_s(errors.ModelNotReadyError("loading"), 1, far) is not None
    assert policy.pause_s(errors.ServerUnavailableError("down"), 3, far) is None  # attempts spent
    for error in (errors.InvalidInputError("x"), errors.InferenceTimeoutError("x"),
                  errors.ModelNotFoundError("x"), errors.InternalServerError("x"),
                  errors.AccessDeniedError("x")):
        assert policy.pause_s(error, 1, far) is None
    assert policy.pause_s(errors.ServerUnavailableError("down"), 1, time.monotonic()) is None  # no time left


def test_backoff_grows_exponentially_with_jitter_under_the_cap() -> None:
    policy = RetryPolicy(attempts=10, initial_backoff_s=0.1, max_backoff_s=0.5, multiplier=2)
    for attempt in range(1, 10):
        cap = min(0.5, 0.1 * 2 ** (attempt - 1))
        samples = [policy.backoff_s(attempt) for _ in range(50)]
        assert all(0 <= s <= cap for s in samples)
    assert len({policy.backoff_s(3) for _ in range(20)}) > 1, "jitter expected"


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"initial_backoff_s": -1}, {"multiplier": 0.5}])
def test_bad_retry_policy_is_a_config_error(kwargs) -> None:
    with pytest.raises(errors.ConfigError):
        RetryPolicy(**kwargs)


def test_restricted_endpoint_without_key_is_access_denied_not_retryable() -> None:
    error = error_for_status("StatusCode.UNAVAILABLE",
                             "This protocol is restricted, expecting header 'triton-grpc-protocol-k'")
    assert type(error) is errors.AccessDeniedError
    assert not RetryPolicy().should_retry(error, 1)
    assert type(error_for_status("StatusCode.PERMISSION_DENIED", "no")) is errors.AccessDeniedError


def test_new_call_validates_and_sets_deadline() -> None:
    core = ClientCore("h:1", ClientOptions(timeout_s=5, headers={"k": "v"}))
    call = core.new_call(INFO, np.zeros((2, 4), np.float32), deadline=core.deadline(None), version=2,
                         headers={"x": "y"})
    assert call.version == "2" and call.outputs == ("probabilities",)
    assert 4 < call.remaining_s() <= 5
    assert call.headers == {"k": "v", "x": "y"}
    with pytest.raises(errors.InvalidInputError, match=r"outputs \['nope'\] requested"):
        core.new_call(INFO, np.zeros((2, 4), np.float32), deadline=core.deadline(1), outputs=["nope"])
    with pytest.raises(errors.InvalidInputError, match="has shape"):
        core.new_call(INFO, np.zeros((2, 5), np.float32), deadline=core.deadline(1))
    with pytest.raises(errors.ConfigError):
        core.deadline(0)


def test_encode_is_the_protobuf_request_with_raw_contents_appended() -> None:
    from tritonclient.grpc import service_pb2

    info = ModelInfo.from_config({
        "name": "two", "max_batch_size": 8,
        "input": [{"name": "ids", "data_type": "TYPE_INT64", "dims": ["3"]},
                  {"name": "text", "data_type": "TYPE_STRING", "dims": ["1"]}],
        "output": [{"name": "a", "data_type": "TYPE_FP32", "dims": ["1"]},
                   {"name": "b", "data_type": "TYPE_FP32", "dims": ["1"]}],
    })
    core = ClientCore("h:1", ClientOptions())
    for rows in (1, 2, 1, 8):  # a repeated signature reuses the cached head
        ids = np.arange(rows * 3, dtype=np.int64).reshape(rows, 3) * 1_000_003
        text = np.array([[f"row {i} " * 40] for i in range(rows)], dtype=object)
        call = core.new_call(info, {"ids": ids, "text": text}, deadline=core.deadline(None), version=3,
                             outputs=["b"], request_id="r1")
        parsed = service_pb2.ModelInferRequest.FromString(core.encode(call))
        assert (parsed.model_name, parsed.model_version, parsed.id) == ("two", "3", "r1")
        assert [(t.name, t.datatype, list(t.shape)) for t in parsed.inputs] == [
            ("ids", "INT64", [rows, 3]), ("text", "BYTES", [rows, 1])]
        assert [o.name for o in parsed.outputs] == ["b"]
        assert np.array_equal(np.frombuffer(parsed.raw_input_contents[0], np.int64).reshape(rows, 3), ids)
        assert len(parsed.raw_input_contents[1]) == sum(4 + len(t[0]) for t in text)
    with pytest.raises(errors.InvalidInputError, match="does not match"):
        lean = ClientCore("h:1", ClientOptions(validate=False))
        lean.encode(lean.new_call(info, {"ids": ids.astype(np.int32), "text": text}, deadline=1e9))


def test_sync_client_use_after_close_is_an_error() -> None:
    client = TritonClient("127.0.0.1:9")  # nothing listens; construction does not connect
    client.close()
    client.close()
    with pytest.raises(errors.ClientClosedError, match="closed"):
        client.infer("digits_mlp", np.zeros((1, 4), np.float32))
    with pytest.raises(errors.ClientClosedError):
        client.is_ready()
    with pytest.raises(errors.ClientClosedError), client:
        pass


def test_plan_slices_arrays_to_the_batch_limit_in_order() -> None:
    data = np.arange(21 * 4, dtype=np.float32).reshape(21, 4)
    plan = bulk.Plan.make(INFO, data, batch_size=None, in_flight=2)
    chunks = list(plan.chunks)
    assert [len(c["features"]) for c in chunks] == [8, 8, 5]
    assert np.array_equal(np.concatenate([c["features"] for c in chunks]), data)
    assert plan.total_rows == 21


def test_rows_of_different_shapes_are_a_typed_error() -> None:
    """Outsider round 6: numpy's 'all input arrays must have the same shape' leaked."""
    rows = iter([np.zeros(4, np.float32), np.zeros(3, np.float32)])
    with pytest.raises(errors.InvalidInputError, match=r"rows of input 'features' have different shapes"):
        list(bulk.Plan.make(INFO, rows, batch_size=4, in_flight=1).chunks)


def test_plan_stacks_an_iterable_of_rows() -> None:
    rows = (np.full(4, i, np.float32) for i in range(10))
    chunks = list(bulk.Plan.make(INFO, rows, batch_size=4, in_flight=1).chunks)
    assert [c["features"].shape for c in chunks] == [(4, 4), (4, 4), (2, 4)]
    assert chunks[2]["features"][:, 0].tolist() == [8, 9]


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"batch_size": 9, "in_flight": 1}, "batch_size <= 8"),
    ({"batch_size": None, "in_flight": 0}, "1 <= in_flight <= 256"),
    ({"batch_size": 0, "in_flight": 1}, "1 <= batch_size"),  # outsider round 6: 0 meant the default
    ({"batch_size": None, "in_flight": 1.5}, "whole numbers"),
    ({"batch_size": None, "in_flight": 10_000}, "in_flight <= 256"),
])
def test_plan_limits(kwargs, fragment) -> None:
    with pytest.raises(errors.ConfigError, match=fragment):
        bulk.Plan.make(INFO, np.zeros((3, 4), np.float32), **kwargs)


def test_run_threaded_keeps_order_and_bounds_in_flight() -> None:
    data = np.arange(100 * 4, dtype=np.float32).reshape(100, 4)
    lock, state = threading.Lock(), {"now": 0, "peak": 0}
    done_rows: list[int] = []

    def send(chunk):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.002 * (chunk["features"][0, 0] % 3))  # finish out of order
        with lock:
            state["now"] -= 1
        return {"y": chunk["features"] * 2}

    plan = bulk.Plan.make(INFO, data, batch_size=7, in_flight=3, progress=done_rows.append)
    out = bulk.concatenate(bulk.run_threaded(plan, send))
    assert np.array_equal(out["y"], data * 2)
    assert state["peak"] <= 3
    assert sum(done_rows) == 100


def test_run_threaded_names_the_rows_of_a_failed_chunk() -> None:
    def send(chunk):
        if chunk["features"][0, 0] >= 8 * 4:
            raise errors.OverloadedError("queue full")
        return {"y": chunk["features"]}

    plan = bulk.Plan.make(INFO, np.arange(30 * 4, dtype=np.float32).reshape(30, 4), batch_size=None,
                          in_flight=2)
    with pytest.raises(errors.OverloadedError, match="rows 8-15: queue full"):
        list(bulk.run_threaded(plan, send))


def test_concatenate_of_nothing_is_empty() -> None:
    assert bulk.concatenate([]) == {}


def test_unloaded_model_is_not_ready_unknown_model_is_not_found() -> None:
    unloaded = error_for_status("StatusCode.NOT_FOUND",
                                "Request for unknown model: 'm' has no available versions", model="m")
    unknown = error_for_status("StatusCode.NOT_FOUND", "Request for unknown model: 'x' is not found")
    assert type(unloaded) is errors.ModelNotReadyError
    assert type(unknown) is errors.ModelNotFoundError


def test_grpc_restricted_headers_use_tritons_prefix() -> None:
    from tritonstack.client import grpc_restricted_headers

    assert grpc_restricted_headers({"tritonstack-admin-key": "k"}) == {
        "triton-grpc-protocol-tritonstack-admin-key": "k"}
    assert grpc_restricted_headers({"triton-grpc-protocol-a": "b"}) == {"triton-grpc-protocol-a": "b"}


def test_every_client_module_exports_what_it_lists() -> None:
    import importlib

    for name in ("aio", "balancer", "bulk", "core", "errors", "model", "pool", "retry", "shm", "split", "sync",
                 "validation"):
        module = importlib.import_module(f"tritonstack.client.{name}")
        assert module.__doc__ and module.__doc__.strip(), name
        for exported in module.__all__:
            assert hasattr(module, exported), f"{name}.{exported}"


def test_progress_bar_is_optional_tqdm(capsys) -> None:
    plan = bulk.Plan.make(INFO, np.zeros((20, 4), np.float32), batch_size=8, in_flight=2, progress=True)
    out = bulk.concatenate(bulk.run_threaded(plan, lambda chunk: {"y": chunk["features"]}))
    assert out["y"].shape == (20, 4)
    assert "20/20" in capsys.readouterr().err


def test_channel_args_keep_tritonclient_defaults_and_cap_reconnect_backoff() -> None:
    args = dict(ClientCore("h:1", ClientOptions(max_reconnect_backoff_s=1.5)).channel_args())
    assert args["grpc.max_reconnect_backoff_ms"] == 1500
    assert args["grpc.max_receive_message_length"] == 2**31 - 1
    with pytest.raises(errors.ConfigError, match="max_reconnect_backoff_s"):
        ClientOptions(max_reconnect_backoff_s=0)

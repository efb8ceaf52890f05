"""The native C++ onnxruntime backend (serve/native) in the real tritonserver 2.51.

Tiny ONNX models are made here with `onnx.helper` (every fixed-size dtype, a non-batched model,
dynamic dims, a Gather that an out-of-range index breaks) next to the reference digits_mlp (its
drift reference removed, so the native runner serves it). Results are compared with ONNX Runtime in
Python; bad requests are sent as raw gRPC ModelInferRequests. The last test runs the same traffic
through an AddressSanitizer build of the backend and fails on any ASan report.
Run with `-s` to see the figures.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
from onnx import TensorProto, helper, numpy_helper
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException
from tritonstack.serve import EmbeddedServer, ServerConfig
from tritonstack.serve.binary import find_install
from tritonstack.serve.native_build import LIBRARY_NAME, native_backend

from tritonstack.model_config import new_config, read_config, write_config

DTYPES = {  # Triton name: (numpy, ONNX)
    "FP32": (np.float32, TensorProto.FLOAT), "FP16": (np.float16, TensorProto.FLOAT16),
    "INT8": (np.int8, TensorProto.INT8), "UINT8": (np.uint8, TensorProto.UINT8),
    "INT32": (np.int32, TensorProto.INT32), "INT64": (np.int64, TensorProto.INT64),
    "BOOL": (np.bool_, TensorProto.BOOL),
}
GATHER_ROWS = 10


def _save(repository: Path, name: str, graph: onnx.GraphProto, *, max_batch: int, inputs: list, outputs: list,
          parameters: dict[str, str] | None = None, delay_us: int = 0, filename: str = "model.onnx",
          batching: bool = True) -> None:
    """Write `graph` as <name>/1/<filename> and its config.pbtxt; inputs/outputs: (name, TYPE, dims)."""
    (repository / name / "1").mkdir(parents=True)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, repository / name / "1" / filename)
    config = new_config()
    config.name, config.platform, config.max_batch_size = name, "onnxruntime_onnx", max_batch
    for target, tensors in ((config.input, inputs), (config.output, outputs)):
        for tensor_name, dtype, dims in tensors:
            target.add(name=tensor_name, dims=dims, data_type=_type(dtype))
    if filename != "model.onnx":
        config.default_model_filename = filename
    for key, value in (parameters or {}).items():
        config.parameters[key].string_value = value
    if max_batch and batching:
        config.dynamic_batching.max_queue_delay_microseconds = delay_us
    write_config(config, repository / name / "config.pbtxt")


def _type(dtype: str) -> int:
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2.DataType.Value("TYPE_STRING" if dtype == "BYTES" else f"TYPE_{dtype}")


def _identity(repository: Path, dtype: str) -> None:
    onnx_type = DTYPES[dtype][1]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", onnx_type, ["n", 4])],
                              [helper.make_tensor_value_info("y", onnx_type, ["n", 4])])
    _save(repository, f"id_{dtype.lower()}", graph, max_batch=64, inputs=[("x", dtype, [4])],
          outputs=[("y", dtype, [4])], delay_us=2000, parameters={"max_run_rows": "2"})  # 3 rows: 2 runs


def build_native_repository(repository: Path, digits_mlp: Path) -> None:
    """digits_mlp (native) plus the tiny models and the ones the backend must refuse."""
    shutil.copytree(digits_mlp, repository / "digits_mlp")
    for reference in (repository / "digits_mlp").glob("*/drift_reference.json"):
        reference.unlink()
    for dtype in DTYPES:
        _identity(repository, dtype)
    f32 = TensorProto.FLOAT
    double = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "double",
                               [helper.make_tensor_value_info("x", f32, ["a", "b"])],
                               [helper.make_tensor_value_info("y", f32, ["a", "b"])])
    _save(repository, "nobatch_double", double, max_batch=0, inputs=[("x", "FP32", [-1, -1])],
          outputs=[("y", "FP32", [-1, -1])], filename="double.onnx")
    rowsum = helper.make_graph([helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)], "rowsum",
                               [helper.make_tensor_value_info("x", f32, ["n", "k"])],
                               [helper.make_tensor_value_info("y", f32, ["n", 1])],
                               [helper.make_tensor("axes", TensorProto.INT64, [1], [1])])
    _save(repository, "dyn_rowsum", rowsum, max_batch=256, inputs=[("x", "FP32", [-1])],
          outputs=[("y", "FP32", [1])], delay_us=20000,
          parameters={"max_input_dims": '{"x": [1000]}', "intra_op_thread_count": "1"})
    table = np.arange(GATHER_ROWS * 2, dtype=np.float32).reshape(GATHER_ROWS, 2)
    gather = helper.make_graph([helper.make_node("Gather", ["table", "i"], ["y"], axis=0)], "gather",
                               [helper.make_tensor_value_info("i", TensorProto.INT64, ["n", 1])],
                               [helper.make_tensor_value_info("y", f32, ["n", 1, 2])],
                               [numpy_helper.from_array(table, "table")])
    _save(repository, "gather", gather, max_batch=128, inputs=[("i", "INT64", [1])],
          outputs=[("y", "FP32", [1, 2])], delay_us=300000)  # long enough to batch on a loaded machine
    text = helper.make_graph([helper.make_node("Identity", ["t"], ["u"])], "text",
                             [helper.make_tensor_value_info("t", TensorProto.STRING, ["n", 1])],
                             [helper.make_tensor_value_info("u", TensorProto.STRING, ["n", 1])])
    _save(repository, "refuse_bytes", text, max_batch=8, inputs=[("t", "BYTES", [1])], outputs=[("u", "BYTES", [1])])
    wrong = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "wrong",
                              [helper.make_tensor_value_info("x", f32, ["n", 4])],
                              [helper.make_tensor_value_info("y", f32, ["n", 4])])
    _save(repository, "refuse_dtype", wrong, max_batch=8, inputs=[("x", "FP16", [4])], outputs=[("y", "FP16", [4])])
    _masked(repository)
    fixed = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "fixed",
                              [helper.make_tensor_value_info("x", f32, [4, 2])],
                              [helper.make_tensor_value_info("y", f32, [4, 2])])
    _save(repository, "refuse_fixed_batch", fixed, max_batch=8, inputs=[("x", "FP32", [2])], outputs=[("y", "FP32", [2])])
    _save(repository, "refuse_dims", wrong, max_batch=8, inputs=[("x", "FP32", [5])], outputs=[("y", "FP32", [5])])
    _save(repository, "refuse_output_dims", wrong, max_batch=8, inputs=[("x", "FP32", [4])],
          outputs=[("y", "FP32", [7])])
    _save(repository, "refuse_input_name", wrong, max_batch=8, inputs=[("z", "FP32", [4])],
          outputs=[("y", "FP32", [4])])
    _save(repository, "refuse_warmup", wrong, max_batch=8, inputs=[("x", "FP32", [-1])], outputs=[("y", "FP32", [-1])])
    config = read_config(repository / "refuse_warmup" / "config.pbtxt")
    sample = config.model_warmup.add(name="zeros", batch_size=1)
    sample.inputs["x"].data_type, sample.inputs["x"].zero_data = _type("FP32"), True
    sample.inputs["x"].dims.extend([5])
    write_config(config, repository / "refuse_warmup" / "config.pbtxt")
    mean = helper.make_graph([helper.make_node("ReduceMean", ["x"], ["m"], axes=[0], keepdims=1),
                              helper.make_node("Expand", ["m", "shape"], ["y"]), helper.make_node("Shape", ["x"], ["shape"])],
                             "batch_mean", [helper.make_tensor_value_info("x", f32, ["n", 4])],
                             [helper.make_tensor_value_info("y", f32, ["n", 4])])
    for name, batching, parameters in (("mean_unbatched", False, {}), ("mean_sliced", False, {"max_run_rows": "2"})):
        _save(repository, name, mean, max_batch=2048, inputs=[("x", "FP32", [4])], outputs=[("y", "FP32", [4])],
              parameters=parameters, batching=batching)


def _masked(repository: Path) -> None:
    """`masked` (trim_padding on its mask): per row, `total` = sum(ids * mask) and `width` = the number of
    columns the model was given; plus the trim_padding configs the backend must refuse."""
    i64, f32 = TensorProto.INT64, TensorProto.FLOAT
    nodes = [helper.make_node("Mul", ["ids", "mask"], ["kept"]), helper.make_node("Cast", ["kept"], ["kf"], to=f32),
             helper.make_node("ReduceSum", ["kf", "axes"], ["total"], keepdims=1),
             helper.make_node("Mul", ["kf", "zero"], ["z"]), helper.make_node("Add", ["z", "one"], ["ones"]),
             helper.make_node("ReduceSum", ["ones", "axes"], ["width"], keepdims=1)]
    graph = helper.make_graph(nodes, "masked",
                              [helper.make_tensor_value_info("ids", i64, ["n", "k"]),
                               helper.make_tensor_value_info("mask", i64, ["n", "k"])],
                              [helper.make_tensor_value_info("total", f32, ["n", 1]),
                               helper.make_tensor_value_info("width", f32, ["n", 1])],
                              [helper.make_tensor("axes", i64, [1], [1]), helper.make_tensor("zero", f32, [], [0.0]),
                               helper.make_tensor("one", f32, [], [1.0])])
    ids, outs = [("ids", "INT64", [-1]), ("mask", "INT64", [-1])], [("total", "FP32", [1]), ("width", "FP32", [1])]
    _save(repository, "masked", graph, max_batch=64, inputs=ids, outputs=outs, delay_us=300000,
          parameters={"trim_padding": "mask"})
    refusals = {  # name: (parameters, inputs, outputs); both runners refuse them at load
        "refuse_trim_name": ({"trim_padding": "attention"}, ids, outs),
        "refuse_trim_output": ({"trim_padding": "mask"}, ids, [("total", "FP32", [-1]), ("width", "FP32", [1])]),
        "refuse_trim_float": ({"trim_padding": "mask"}, [ids[0], ("mask", "FP32", [-1])], outs),
        "refuse_trim_cost": ({"trim_padding": "mask", "trim_padding_run_cost": "abc"}, ids, outs),
    }
    for name, (parameters, inputs, outputs) in refusals.items():
        _save(repository, name, graph, max_batch=64, inputs=inputs, outputs=outputs, parameters=parameters)


BOTH_REFUSALS = {"refuse_trim_name": "trim_padding='attention' names no input",
                 "refuse_trim_output": "output 'total' has a dynamic dimension",
                 "refuse_trim_float": "the mask must be an integer or BOOL input",
                 "refuse_trim_cost": "trim_padding_run_cost='abc' is not a cost in token-rows",
                 # outsider round 12: a fixed first dim let the batcher mix two clients' rows in one sample,
                 # and a dims mismatch loaded READY (or crashed 2.51 when its warm-up failed)
                 "refuse_fixed_batch": "has a fixed first dimension (4), but max_batch_size 8 batches along it",
                 "refuse_dims": "has dims [-1, 4] but config.pbtxt says [5] (after the batch axis)",
                 # outsider round 13: READY, then answers of another shape or INTERNAL on the Python runner
                 "refuse_output_dims": "ONNX output 'y' has dims [-1, 4] but config.pbtxt says [7]",
                 "refuse_input_name": "ONNX input 'x' is missing from config.pbtxt; add it",
                 # a failed warm-up made 2.51 segfault at start-up now and then (outsider round 13, D)
                 "refuse_warmup": "model_warmup sample 'zeros' gives input 'x' dims [5], which the ONNX input "
                                  "[-1, 4] does not take"}


@pytest.fixture(scope="module")
def native_repo(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository of this module (digits_mlp from the session's reference build)."""
    root = tmp_path_factory.mktemp("native") / "model_repository"
    build_native_repository(root, repository / "digits_mlp")
    return root


@pytest.fixture(scope="module")
def native(native_repo: Path) -> Iterator[EmbeddedServer]:
    """A server with the native backend (the default runner)."""
    with EmbeddedServer(ServerConfig(repository=native_repo, ort_threads=1)) as running:
        yield running


@pytest.fixture(scope="module")
def stub(native: EmbeddedServer) -> service_pb2_grpc.GRPCInferenceServiceStub:
    """Raw gRPC stub, for requests tritonclient refuses to build."""
    channel = grpc.insecure_channel(native.grpc_url)
    yield service_pb2_grpc.GRPCInferenceServiceStub(channel)
    channel.close()


def _raw_request(model: str, name: str, dtype: str, shape: list[int], data: bytes) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name=model)
    request.inputs.add(name=name, datatype=dtype, shape=shape)
    request.raw_input_contents.append(data)
    return request


def _infer(url: str, model: str, name: str, array: np.ndarray, dtype: str) -> np.ndarray:
    with grpcclient.InferenceServerClient(url) as client:
        tensor = grpcclient.InferInput(name, list(array.shape), dtype)
        tensor.set_data_from_numpy(array)
        result = client.infer(model, [tensor])
        return result.as_numpy(result.get_response().outputs[0].name)


def _ort(path: Path, feeds: dict) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def test_digits_mlp_equals_onnx_runtime_at_batch_1_3_257(native: EmbeddedServer, native_repo: Path) -> None:
    rng = np.random.default_rng(0)
    for rows in (1, 3, 257):
        x = rng.random((rows, 64), dtype=np.float32) * 16
        served = _infer(native.grpc_url, "digits_mlp", "features", x, "FP32")
        expected = _ort(native_repo / "digits_mlp" / "1" / "model.onnx", {"features": x})
        print(f"digits_mlp batch {rows}: max |served - ORT| = {np.abs(served - expected).max():.2e}")
        np.testing.assert_array_equal(served, expected)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_every_fixed_size_dtype_round_trips(native: EmbeddedServer, dtype: str) -> None:
    """3 rows through a model with max_run_rows 2: two runs, the rows back in order."""
    numpy_type = DTYPES[dtype][0]
    x = (np.arange(12).reshape(3, 4) % 2).astype(numpy_type) if dtype == "BOOL" else \
        (np.arange(12).reshape(3, 4) - 6).astype(numpy_type)
    served = _infer(native.grpc_url, f"id_{dtype.lower()}", "x", x, dtype)
    assert served.dtype == numpy_type
    np.testing.assert_array_equal(served, x)


def test_non_batched_model_with_dynamic_dims_and_default_model_filename(native: EmbeddedServer) -> None:
    for shape in ((2, 3), (5, 1), (1, 7)):
        x = np.random.default_rng(1).random(shape, dtype=np.float32)
        np.testing.assert_array_equal(_infer(native.grpc_url, "nobatch_double", "x", x, "FP32"), x + x)


def test_dynamic_dims_of_different_lengths_batch_concurrently(native: EmbeddedServer) -> None:
    lengths = [3, 5, 3, 8, 5, 3, 1, 8] * 4
    inputs = [np.full((1, n), i, np.float32) for i, n in enumerate(lengths)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda x: _infer(native.grpc_url, "dyn_rowsum", "x", x, "FP32"), inputs))
    for x, y in zip(inputs, results, strict=True):
        np.testing.assert_array_equal(y, x.sum(axis=1, keepdims=True))
    stats = _statistics(native, "dyn_rowsum", len(inputs))
    print(f"dyn_rowsum: {len(inputs)} requests of 4 lengths in {stats.execution_count} executions")


def test_poisoned_request_fails_alone_in_a_concurrent_batch(native: EmbeddedServer,
                                                            stub: service_pb2_grpc.GRPCInferenceServiceStub) -> None:
    before = _statistics(native, "gather", 0).execution_count
    indices = [i % GATHER_ROWS for i in range(39)] + [GATHER_ROWS + 5]  # the last one is out of range
    requests = [_raw_request("gather", "i", "INT64", [1, 1], np.array([[i]], np.int64).tobytes()) for i in indices]

    def call(request: service_pb2.ModelInferRequest) -> object:
        try:
            return stub.ModelInfer(request, timeout=30)
        except grpc.RpcError as exc:
            return exc

    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(call, requests))
    good = [a for a in answers[:-1] if not isinstance(a, grpc.RpcError)]
    bad = answers[-1]
    executions = _statistics(native, "gather", len(good)).execution_count - before
    print(f"gather: {len(good)}/{len(indices) - 1} good requests succeeded, poisoned one: "
          f"{getattr(bad, 'code', lambda: 'ok')()}, in {executions} batched executions")
    assert len(good) == len(indices) - 1
    for answer, index in zip(good, indices, strict=False):
        row = np.frombuffer(answer.raw_output_contents[0], np.float32)
        np.testing.assert_array_equal(row, [2 * index, 2 * index + 1])
    assert isinstance(bad, grpc.RpcError) and bad.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
    # executions counts successful Runs: a failed batch re-run one by one adds one per good request


def test_python_runner_also_fails_a_poisoned_request_alone(native_repo: Path) -> None:
    """Same rule for serve/runners/onnx_model.py (--runner python): a failed batch is re-run one by one."""
    with EmbeddedServer(ServerConfig(repository=native_repo, ort_threads=1, runner="python")) as server:
        channel = grpc.insecure_channel(server.grpc_url)
        python_stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        indices = [i % GATHER_ROWS for i in range(23)] + [GATHER_ROWS + 1]
        requests = [_raw_request("gather", "i", "INT64", [1, 1], np.array([[i]], np.int64).tobytes())
                    for i in indices]

        def call(request: service_pb2.ModelInferRequest) -> object:
            try:
                return python_stub.ModelInfer(request, timeout=60)
            except grpc.RpcError as exc:
                return exc

        with ThreadPoolExecutor(len(requests)) as pool:
            answers = list(pool.map(call, requests))
        channel.close()
        executions = _statistics(server, "gather", len(indices)).execution_count
        feed = _masked_rows(np.arange(1, 17, dtype=np.int64).reshape(2, 8), [3, 5])
        with grpcclient.InferenceServerClient(server.grpc_url) as client:
            masked = _infer_masked(client, feed)
            texts = np.array([[b"hello"], ["w\u00f6rld".encode()]], dtype=np.object_)
            strings = grpcclient.InferInput("t", [2, 1], "BYTES")
            strings.set_data_from_numpy(texts)
            echoed = client.infer("refuse_bytes", [strings]).as_numpy("u")  # the native runner refuses BYTES
            not_utf8 = grpcclient.InferInput("t", [1, 1], "BYTES")
            not_utf8.set_data_from_numpy(np.array([[b"\xff\xfe"]], dtype=np.object_))
            with pytest.raises(InferenceServerException) as not_text:  # outsider round 12: was INTERNAL
                client.infer("refuse_bytes", [not_utf8])
        _assert_both_refusals(server)  # the same refusals as the native runner's
    assert echoed.tolist() == texts.tolist()  # outsider round 8: b"hello" came back as b"b'hello'"
    assert not_text.value.status() == "StatusCode.INVALID_ARGUMENT" and "not UTF-8" in not_text.value.message()
    np.testing.assert_array_equal(masked.as_numpy("width")[:, 0], [5, 5])  # trim_padding, as the native runner
    np.testing.assert_array_equal(masked.as_numpy("total")[:, 0], feed["ids"].sum(axis=1))
    good = [a for a in answers[:-1] if not isinstance(a, grpc.RpcError)]
    print(f"python runner gather: {len(good)}/{len(indices) - 1} good succeeded, poisoned: "
          f"{getattr(answers[-1], 'code', lambda: 'ok')()}, {executions} executions")
    assert len(good) == len(indices) - 1
    assert isinstance(answers[-1], grpc.RpcError) and answers[-1].code() == grpc.StatusCode.INVALID_ARGUMENT


def test_overflowing_shape_is_refused_with_invalid_argument(stub: service_pb2_grpc.GRPCInferenceServiceStub) -> None:
    for model, shape in (("nobatch_double", [2**56, 64]), ("nobatch_double", [2**56 + 1, 64]),
                         ("dyn_rowsum", [1, 2**62])):
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(_raw_request(model, "x", "FP32", shape, bytes(256)), timeout=30)
        print(f"{model} shape {shape} with 256 bytes: {caught.value.code()} {caught.value.details()[:90]}")
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_input_above_max_input_dims_is_refused_alone(stub: service_pb2_grpc.GRPCInferenceServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(_raw_request("dyn_rowsum", "x", "FP32", [1, 1001], bytes(4004)), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most [1000]" in caught.value.details()


def test_load_time_refusals_name_the_model_and_the_fix(native: EmbeddedServer) -> None:
    states = {s["name"]: s for s in native.model_states()}
    print("refusals:", {n: states[n]["reason"][:120] for n in ("refuse_bytes", "refuse_dtype")})
    assert states["refuse_bytes"]["state"] == "UNAVAILABLE"
    assert "model 'refuse_bytes'" in states["refuse_bytes"]["reason"]
    assert "tritonstack_runner" in states["refuse_bytes"]["reason"]
    assert "FLOAT but config.pbtxt says TYPE_FP16" in states["refuse_dtype"]["reason"]
    _assert_both_refusals(native)
    assert all(states[n]["state"] == "READY" for n in states if not n.startswith("refuse_"))


def test_rows_are_sliced_only_where_independent(native: EmbeddedServer) -> None:
    """A model whose rows depend on each other (each row: the batch's mean) and no dynamic batching is not
    sliced by default (1100 rows, one run); with max_run_rows set it is, as asked."""
    x = np.arange(1100 * 4, dtype=np.float32).reshape(1100, 4)
    whole = _infer(native.grpc_url, "mean_unbatched", "x", x, "FP32")
    np.testing.assert_allclose(whole, np.broadcast_to(x.mean(axis=0), x.shape), rtol=1e-5)
    sliced = _infer(native.grpc_url, "mean_sliced", "x", x[:4], "FP32")
    np.testing.assert_array_equal(sliced, np.repeat([x[:2].mean(axis=0), x[2:4].mean(axis=0)], 2, axis=0))


def _masked_rows(ids: np.ndarray, lengths: list[int]) -> dict[str, np.ndarray]:
    mask = np.zeros(ids.shape, np.int64)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
    return {"ids": ids * mask, "mask": mask}


def _infer_masked(client: grpcclient.InferenceServerClient, feed: dict[str, np.ndarray]) -> object:
    """The `masked` model's result for INT64 `feed` (ids and mask)."""
    tensors = []
    for name, array in feed.items():
        tensors.append(grpcclient.InferInput(name, list(array.shape), "INT64"))
        tensors[-1].set_data_from_numpy(array)
    return client.infer("masked", tensors)


def _assert_both_refusals(server: EmbeddedServer) -> None:
    """Every BOTH_REFUSALS model (both runners refuse it at load) is UNAVAILABLE, with a reason naming it and
    the problem."""
    states = {state["name"]: state for state in server.model_states()}
    for name, reason in BOTH_REFUSALS.items():
        assert states[name]["state"] == "UNAVAILABLE" and f"model '{name}'" in states[name]["reason"], states[name]
        assert reason in states[name]["reason"], states[name]


def test_trim_padding_cuts_the_columns_no_row_uses_and_keeps_the_results(native: EmbeddedServer) -> None:
    """Requests padded to 16 columns, 2-6 of them used, sent together: one batch that runs at its longest
    row's width; every row's masked sum as unpadded; a request with no column used runs at width 1."""
    rng = np.random.default_rng(3)
    lengths = [[2, 5], [3], [6, 1], [4]] * 4
    feeds = [_masked_rows(rng.integers(1, 100, (len(rows), 16)), rows) for rows in lengths]
    with ThreadPoolExecutor(len(feeds)) as pool, grpcclient.InferenceServerClient(native.grpc_url) as client:
        def call(feed: dict[str, np.ndarray]) -> object:
            return _infer_masked(client, feed)

        results = list(pool.map(call, feeds))
        widths = [int(r.as_numpy("width").max()) for r in results]
        for feed, result in zip(feeds, results, strict=True):
            np.testing.assert_array_equal(result.as_numpy("total")[:, 0], feed["ids"].sum(axis=1).astype(np.float32))
        empty = call({"ids": np.ones((1, 16), np.int64), "mask": np.zeros((1, 16), np.int64)})
    print(f"masked: widths seen by the model {sorted(set(widths))} (padded to 16); all-masked request: "
          f"width {empty.as_numpy('width')[0, 0]}")
    for rows, width in zip(lengths, widths, strict=True):
        assert max(rows) <= width <= 6, (rows, width)  # its batch's longest row, never the padding
    assert empty.as_numpy("width")[0, 0] == 1 and empty.as_numpy("total")[0, 0] == 0


def test_trim_padding_runs_short_and_long_rows_apart(native: EmbeddedServer) -> None:
    """Rows of 2, 200, 3 and 190 used columns (padded to 256) in one request: two runs (rows of similar
    length together, trim_padding_run_cost 16), every row's result in its place."""
    feed = _masked_rows(np.arange(4 * 256, dtype=np.int64).reshape(4, 256) % 7 + 1, [2, 200, 3, 190])
    with grpcclient.InferenceServerClient(native.grpc_url) as client:
        result = _infer_masked(client, feed)
    print(f"masked rows of 2, 200, 3, 190 columns: widths seen {result.as_numpy('width')[:, 0]}")
    np.testing.assert_array_equal(result.as_numpy("width")[:, 0], [3, 200, 3, 200])
    np.testing.assert_array_equal(result.as_numpy("total")[:, 0], feed["ids"].sum(axis=1))


def _statistics(server: EmbeddedServer, model: str, at_least: int):  # noqa: ANN202
    """The model's statistics once Triton counts `at_least` successes (it updates after responding)."""
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        for _ in range(50):
            stats = client.get_inference_statistics(model).model_stats[0]
            if stats.inference_stats.success.count >= at_least:
                return stats
            time.sleep(0.1)
    return stats


def test_statistics_reach_triton(native: EmbeddedServer) -> None:
    x = np.ones((2, 64), np.float32)
    for _ in range(5):
        _infer(native.grpc_url, "digits_mlp", "features", x, "FP32")
    stats = _statistics(native, "digits_mlp", 5)
    infer = stats.inference_stats
    print(f"digits_mlp: success {infer.success.count}, compute_infer {infer.compute_infer.ns / max(infer.compute_infer.count, 1) / 1000:.0f} us/req, "
          f"executions {stats.execution_count}, inferences {stats.inference_count}, batch sizes {[b.batch_size for b in stats.batch_stats]}")
    assert infer.success.count >= 5 and infer.compute_infer.count >= 5 and infer.compute_infer.ns > 0
    assert infer.queue.count >= 5 and stats.execution_count >= 1 and stats.inference_count >= 10
    assert stats.batch_stats, "batch statistics missing"
    with urllib.request.urlopen(native.metrics_url, timeout=10) as response:  # noqa: S310 - loopback
        metrics = response.read().decode()
    assert re.search(r'nv_inference_compute_infer_duration_us\{model="digits_mlp"', metrics)


# -- AddressSanitizer run -------------------------------------------------------------------------------
def _libasan() -> str | None:
    compiler = shutil.which("g++")
    if compiler is None:
        return None
    path = subprocess.run([compiler, "-print-file-name=libasan.so"], capture_output=True, text=True,
                          check=False).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


@pytest.mark.timeout(240)
def test_backend_under_address_sanitizer(native_repo: Path, repository: Path, tmp_path: Path) -> None:
    """ASan build of the backend, libasan preloaded into tritonserver (not built with ASan): the models
    above plus `digits_drift` (digits_mlp with its drift reference: the native drift gauges), concurrent
    batches and malformed requests; any AddressSanitizer report fails the test."""
    libasan = _libasan()
    if libasan is None:
        pytest.skip("needs g++ with libasan (make sysdeps)")
    reference_mlp = repository / "digits_mlp"
    repository = tmp_path / "repo"
    shutil.copytree(native_repo, repository, ignore=shutil.ignore_patterns("refuse_*"))
    shutil.copytree(reference_mlp, repository / "digits_drift")
    config = (repository / "digits_drift" / "config.pbtxt").read_text()
    (repository / "digits_drift" / "config.pbtxt").write_text(config.replace('"digits_mlp"', '"digits_drift"'))
    install = find_install()
    backends = install.prepare_backends(tmp_path / "work")
    shutil.copy2(native_backend(sanitize=True), backends / "onnxruntime" / LIBRARY_NAME)
    env = install.environment()
    env.update(LD_PRELOAD=libasan, ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0")
    ports = [_free_port() for _ in range(3)]
    log = tmp_path / "tritonserver.log"
    argv = [str(install.binary), f"--model-repository={repository}", f"--backend-directory={backends}",
            "--http-address=127.0.0.1", f"--http-port={ports[0]}", "--grpc-address=127.0.0.1",
            f"--grpc-port={ports[1]}", "--metrics-address=127.0.0.1", f"--metrics-port={ports[2]}",
            "--exit-timeout-secs=5",
            *install.backend_arguments(ort_threads=1)]
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603
    try:
        _wait_http_ready(ports[0], process, log)
        counts = _asan_traffic(f"127.0.0.1:{ports[1]}", repository)
        psi = _drift_psi_after_pause(f"127.0.0.1:{ports[1]}", ports[2])
        alive = process.poll() is None
        print(f"under ASan: {counts}, digits_drift psi_mean gauge {psi}, server alive after the traffic: {alive}")
    finally:
        _stop(process, log)
    text = log.read_text(errors="replace")
    reports = [line for line in text.splitlines() if "AddressSanitizer" in line]
    assert not reports, "AddressSanitizer reported:\n" + "\n".join(text.splitlines()[-60:])
    assert alive, text[-3000:]


def _drift_psi_after_pause(url: str, metrics_port: int) -> float:
    """One more digits_drift request after the one-second publishing interval: the native backend scores
    the window (>= min_rows rows by now) and sets its gauges, after the response is sent (so the gauge is
    polled for); return the published psi_mean."""
    time.sleep(1.5)
    channel = grpc.insecure_channel(url)
    request = _raw_request("digits_drift", "features", "FP32", [3, 64], np.ones((3, 64), np.float32).tobytes())
    service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=60)
    channel.close()
    deadline, psi, text = time.monotonic() + 30, 0.0, ""
    while psi <= 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:  # noqa: S310
            text = response.read().decode()
        found = re.search(r'^tritonstack_drift_psi_mean\{[^}]*model="digits_drift"[^}]*\} (\S+)$', text,
                          re.MULTILINE)
        assert found, "no drift gauge for digits_drift:\n" + text[-2000:]
        psi = float(found.group(1))
    assert psi > 0, text[-2000:]
    return psi


def _stop(process: subprocess.Popen, log: Path) -> None:
    """SIGTERM, and SIGKILL after the models are unloaded: under LD_PRELOAD=libasan tritonserver 2.51
    unloads every model (our finalizers run) and then does not exit."""
    process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        if "Found 0 live models" in log.read_text(errors="replace"):
            time.sleep(1)  # leave ASan a moment to report anything from the unload
            break
        time.sleep(0.2)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http_ready(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1) as r:  # noqa: S310
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail("tritonserver with the ASan backend was not ready in 120 s:\n" + log.read_text()[-3000:])


def _asan_traffic(url: str, repository: Path) -> dict[str, int]:
    """Good batches on every model, concurrent, plus malformed and poisoned requests; bounded in count."""
    channel = grpc.insecure_channel(url)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    rng = np.random.default_rng(2)
    calls = []
    for _ in range(24):
        rows = int(rng.integers(1, 40))
        calls.append(_raw_request("digits_mlp", "features", "FP32", [rows, 64], rng.random((rows, 64), np.float32).tobytes()))
        calls.append(_raw_request("digits_drift", "features", "FP32", [rows + 10, 64],
                                  rng.random((rows + 10, 64), np.float32).tobytes()))
        calls.append(_raw_request("gather", "i", "INT64", [1, 1], np.array([[rng.integers(0, 12)]], np.int64).tobytes()))
        n = int(rng.integers(1, 9))
        calls.append(_raw_request("dyn_rowsum", "x", "FP32", [1, n], np.ones(n, np.float32).tobytes()))
    for dtype, (numpy_type, _) in DTYPES.items():
        calls.append(_raw_request(f"id_{dtype.lower()}", "x", dtype, [5, 4], np.zeros((5, 4), numpy_type).tobytes()))
    for rows in ([3], [1, 4], [0], [2, 2, 7]):
        feed = _masked_rows(np.ones((len(rows), 8), np.int64), rows)
        request = _raw_request("masked", "ids", "INT64", [len(rows), 8], feed["ids"].tobytes())
        request.inputs.add(name="mask", datatype="INT64", shape=[len(rows), 8])
        request.raw_input_contents.append(feed["mask"].tobytes())
        calls.append(request)
    calls += [_raw_request("nobatch_double", "x", "FP32", [2**56, 64], bytes(256)),
              _raw_request("nobatch_double", "x", "FP32", [2, 3], bytes(5)),
              _raw_request("dyn_rowsum", "x", "FP32", [1, 2000], bytes(8000)),
              _raw_request("digits_mlp", "features", "FP32", [1, 64], bytes(255))]
    counts = {"ok": 0, "error": 0}

    def call(request: service_pb2.ModelInferRequest) -> None:
        try:
            stub.ModelInfer(request, timeout=60)
            counts["ok"] += 1
        except grpc.RpcError:
            counts["error"] += 1

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(call, calls))
    channel.close()
    assert counts["ok"] >= 24 * 2 + len(DTYPES), counts
    return counts

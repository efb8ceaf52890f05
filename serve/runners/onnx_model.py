"""Triton Python-backend model that runs an ONNX file with ONNX Runtime, batching for real.

The embedded tritonserver (nvidia-pytriton wheel) has no onnxruntime backend. By default
`tritonstack serve` installs our native one (serve/native) and this file as the Python-based backend
`onnxruntime_python`, for the ONNX models that ask for it (serve/plan.py);
with `--runner python` this file is the backend `onnxruntime` and serves every standard
`platform: "onnxruntime_onnx"` model, unchanged. The dynamic batcher hands `execute()` several
requests at once; they are concatenated along the batch axis, run through ONNX Runtime once, and the
outputs are split back per request. When that run fails, the requests run one by one, so that only the
bad ones get an (INVALID_ARGUMENT) error response.

Honoured config parameters (the same keys as Triton's onnxruntime backend):
`intra_op_thread_count`, `inter_op_thread_count`; `TRITONSTACK_ORT_THREADS` in the server's
environment (`tritonstack serve --ort-threads`) overrides the first. The ONNX file is
`<version>/<default_model_filename or model.onnx>`. `max_input_dims` (JSON, e.g.
`{"input_ids": [256]}`, dims without the batch axis; written by `convert` where the model has a
maximum) refuses a request with a larger input alone, with INVALID_ARGUMENT, before any work.
`trim_padding` (the name of a [batch, -1] integer mask input, e.g. "attention_mask") cuts the padding
columns that no row of a batch uses from every input of the mask's shape before the run, as the
native backend does (the outputs must have fixed dims).

Drift hook: when the version folder holds `drift_reference.json` (written at convert time by
`tritonstack.ops.drift`), the rows of the monitored input (or output, e.g. an embedding) are kept in
a sliding window and PSI / KL / JS / embedding-MMD scores are published as Python-backend custom
metrics (`tritonstack_drift_*`, labelled model, version, model_instance) on Triton's metrics
endpoint. Drift never fails a request, and a bad reference never stops the model from loading.
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

try:  # the stub runs the venv's Python, where tritonstack is installed
    from tritonstack.ops.drift import REFERENCE_FILE, DriftMonitor, DriftReference
except ImportError:  # pragma: no cover - drift monitoring is optional
    DriftMonitor = None


def _param(config, key, default):
    value = config.get("parameters", {}).get(key, {}).get("string_value", "")
    return int(value) if value else default


class TritonPythonModel:
    """Serves one ONNX model; one instance per Triton model instance."""

    def initialize(self, args):
        """Open the ONNX Runtime session for this model version."""
        config = json.loads(args["model_config"])
        filename = config.get("default_model_filename") or "model.onnx"
        path = os.path.join(args["model_repository"], args["model_version"], filename)
        options = ort.SessionOptions()
        override = int(os.environ.get("TRITONSTACK_ORT_THREADS", "0"))
        options.intra_op_num_threads = override or _param(config, "intra_op_thread_count", 1)
        options.inter_op_num_threads = _param(config, "inter_op_thread_count", 1)
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.batched = config.get("max_batch_size", 0) > 0
        self.inputs = [i["name"] for i in config["input"]]
        self.outputs = [
            (o["name"], pb_utils.triton_string_to_numpy(o["data_type"])) for o in config["output"]
        ]
        self.drift = _drift_monitor(args, os.path.dirname(path))
        # Triton's warm-up (model_warmup) runs each sample `count` times (at least once) on each instance
        # before it takes traffic: those executions are kept out of the drift window.
        self.warmup_left = sum(max(int(w.get("count", 0)), 1) for w in config.get("model_warmup", []))
        limits = config.get("parameters", {}).get("max_input_dims", {}).get("string_value", "")
        self.max_dims = json.loads(limits) if limits else {}
        self.max_batch = config.get("max_batch_size", 0)
        self.item_bytes = {i["name"]: _item_bytes(i["data_type"]) for i in config["input"]}
        self.ranks = {i["name"]: len(i.get("dims", [])) + self.batched for i in config["input"]
                      if "reshape" not in i}
        problem = _trim_problem(config) or _dims_problem(config, self.session)
        if problem:
            raise pb_utils.TritonModelException(f"model '{config.get('name', '')}': {problem}")
        self.trim_mask = config.get("parameters", {}).get("trim_padding", {}).get("string_value", "")

    def execute(self, requests):
        """Run the requests handed over by the dynamic batcher in one session call."""
        if self.warmup_left <= 0:
            return self._execute(requests)
        self.warmup_left -= 1
        drift, self.drift = self.drift, None
        try:
            return self._execute(requests)
        finally:
            self.drift = drift

    def _execute(self, requests):
        refused = [self._refusal(r) for r in requests]
        if any(refused):
            good = [r for r, error in zip(requests, refused, strict=True) if error is None]
            answers = iter(self._execute(good) if good else [])
            return [error or next(answers) for error in refused]
        if not self.batched:
            return [self._run([request])[0] for request in requests]
        return self._run(requests)

    def _refusal(self, request):
        """An INVALID_ARGUMENT response for a request that must not run, else None: a shape whose
        byte size overflows 64 bits (Triton 2.51's own size check wraps around and lets it through),
        a batch above max_batch_size, or an input above its `max_input_dims`."""
        for name, item_bytes in self.item_bytes.items():
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            shape = list(tensor.shape()) if tensor is not None else []
            message = _shape_problem(name, shape, item_bytes, self.max_batch if self.batched else 0)
            if not message and len(shape) != self.ranks.get(name, len(shape)):
                message = (f"input '{name}' arrived with shape {shape}; this model expects rank "
                           f"{self.ranks[name]} (a batch dimension above 2**32 is cut by Triton 2.51)")
            if message:
                error = pb_utils.TritonError(message, pb_utils.TritonError.INVALID_ARG)
                return pb_utils.InferenceResponse(output_tensors=[], error=error)
        return _too_large(request, self.max_dims, self.batched) if self.max_dims else None

    def _run(self, requests):
        try:
            parts = {
                name: [_text(pb_utils.get_input_tensor_by_name(r, name).as_numpy()) for r in requests]
                for name in self.inputs
            }
            feeds = _trim({name: _concat(arrays) for name, arrays in parts.items()}, self.trim_mask)
            results = self.session.run([name for name, _ in self.outputs], feeds)
        except Exception as exc:  # noqa: BLE001 - raised, so Triton counts the failures
            if len(requests) > 1:  # a bad request fails alone: find it by running them one by one
                return self._run_alone(requests, exc)
            if isinstance(exc, NotText):  # the input is at fault, whatever ORT would say: INVALID_ARGUMENT
                return [_error_response(exc)]
            # Triton 2.51 counts a response carrying an error as a success; an exception raised
            # from execute() fails every request of the batch and is counted as a failure.
            raise pb_utils.TritonModelException(f"ONNX Runtime failed: {exc}") from exc
        sizes = [len(array) for array in parts[self.inputs[0]]]
        self._observe(feeds, results)
        return self._split(results, sizes)

    def _run_alone(self, requests, batch_error):
        """The batch failed: run each request by itself; the failing ones get an INVALID_ARGUMENT
        response (their input is at fault, the others ran). Raise when every one fails."""
        answers = []
        for request in requests:
            try:
                answers.append(self._run([request])[0])
            except pb_utils.TritonModelException as exc:
                answers.append(exc)
        if all(isinstance(answer, Exception) for answer in answers):
            raise pb_utils.TritonModelException(f"ONNX Runtime failed: {batch_error}") from batch_error
        return [_error_response(a) if isinstance(a, Exception) else a for a in answers]

    def _observe(self, feeds, results):
        if self.drift is None:
            return
        outputs = {name: value for (name, _), value in zip(self.outputs, results, strict=False)}
        tensors = feeds if self.drift.source == "input" else outputs
        try:
            self.drift.observe(tensors[self.drift.tensor])
        except Exception as exc:  # noqa: BLE001 - drift must never fail a request
            pb_utils.Logger.log_warn(f"drift monitoring disabled: {exc}")
            self.drift.close()
            self.drift = None

    def _split(self, results, sizes):
        responses, start = [], 0
        for size in sizes:
            piece = slice(start, start + size) if self.batched else slice(None)
            tensors = [
                pb_utils.Tensor(name, np.ascontiguousarray(value[piece].astype(dtype, copy=False)))
                for (name, dtype), value in zip(self.outputs, results, strict=False)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += size
        return responses

    def finalize(self):
        """Release the session."""
        self.session = None
        if self.drift is not None:
            self.drift.close()
        self.drift = None


def _drift_monitor(args, version_dir):
    """A DriftMonitor when the version folder holds a drift reference, else None."""
    if DriftMonitor is None or not os.path.isfile(os.path.join(version_dir, REFERENCE_FILE)):
        return None
    try:
        reference = DriftReference.load(os.path.join(version_dir, REFERENCE_FILE))
    except Exception as exc:  # noqa: BLE001 - a bad reference must not stop the model from serving
        pb_utils.Logger.log_warn(f"drift monitoring off: cannot read {REFERENCE_FILE}: {exc!r}")
        return None
    families = {}

    def make_gauge(name, description, labels):
        if name not in families:
            families[name] = pb_utils.MetricFamily(
                name=name, description=description, kind=pb_utils.MetricFamily.GAUGE)
        return families[name].Metric(labels=labels)

    labels = {"model": args["model_name"], "version": args["model_version"],
              "model_instance": args["model_instance_name"]}
    monitor = DriftMonitor(reference, make_gauge, labels, trailing=True)
    monitor.families = families  # the metric families must outlive their metrics
    return monitor


def _too_large(request, max_dims, batched):
    """An INVALID_ARGUMENT response when an input exceeds its `max_input_dims`, else None."""
    for name, limits in max_dims.items():
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        shape = tuple(tensor.as_numpy().shape) if tensor is not None else ()
        dims = shape[1:] if batched else shape
        if any(d > limit for d, limit in zip(dims, limits, strict=False)):
            message = (f"input '{name}' has shape {list(shape)}; this model accepts at most {limits} "
                       f"(without the batch axis): shorten the input")
            error = pb_utils.TritonError(message, pb_utils.TritonError.INVALID_ARG)
            return pb_utils.InferenceResponse(output_tensors=[], error=error)
    return None


def _item_bytes(data_type):
    """Bytes per element of a config data type, or 0 for BYTES (variable size)."""
    dtype = pb_utils.triton_string_to_numpy(data_type)
    return 0 if dtype in (np.object_, np.bytes_) else np.dtype(dtype).itemsize


def _shape_problem(name, shape, item_bytes, max_batch):
    """Why `shape` cannot be run (in exact integer arithmetic), or None."""
    if any(d < 0 for d in shape):
        return f"input '{name}' has shape {shape}: negative dimension; send the real shape"
    if max_batch and shape and shape[0] > max_batch:
        return (f"input '{name}' has batch {shape[0]}; this model accepts at most {max_batch}: "
                f"split the request")
    elements = 1
    for d in shape:
        elements *= d
    if elements * max(item_bytes, 1) >= 2**63:
        return (f"input '{name}' has shape {shape}, whose byte size does not fit in 64 bits; "
                f"send the real shape of the data")
    return None


def _error_response(exc):
    """A response carrying `exc` as INVALID_ARGUMENT, for a request whose input made ORT fail."""
    return pb_utils.InferenceResponse(
        output_tensors=[], error=pb_utils.TritonError(str(exc), pb_utils.TritonError.INVALID_ARG))


def _trim_problem(config):
    """Why the config's `trim_padding` / `trim_padding_run_cost` cannot be used ('' when they can), with
    the native runner's rules: a batched [batch, -1] integer or BOOL mask input, fixed output dims."""
    parameters = config.get("parameters", {})
    mask = parameters.get("trim_padding", {}).get("string_value", "")
    if not mask:
        return ""
    where = f"parameter trim_padding='{mask}'"
    cost = parameters.get("trim_padding_run_cost", {}).get("string_value", "")
    if cost and not (cost.isdigit() and int(cost) <= 2**20):
        return f"parameter trim_padding_run_cost='{cost}' is not a cost in token-rows (0-{2**20})"
    spec = next((i for i in config.get("input", []) if i.get("name") == mask), None)
    if spec is None:
        return f"{where} names no input of the model; name its attention-mask input"
    if (config.get("max_batch_size", 0) <= 0 or [int(d) for d in spec.get("dims", [])] != [-1]
            or spec.get("data_type") in ("TYPE_FP16", "TYPE_FP32", "TYPE_FP64", "TYPE_BF16", "TYPE_STRING")):
        return (f"{where}: the mask must be an integer or BOOL input of dims [-1] in a model with "
                "max_batch_size > 0")
    for output in config.get("output", []):
        if any(int(d) < 0 for d in output.get("dims", [])):
            return (f"{where}: output '{output.get('name')}' has a dynamic dimension; trimming needs fixed "
                    "output dims (remove the parameter)")
    return ""


def _dims_problem(config, session):
    """Why the config's tensors cannot serve the ONNX graph's ('' when they can), with the native runner's
    rules: every graph input in the config and every config tensor in the graph; inputs of the same rank
    (plus the batch axis), a dynamic first dimension when batched (else the batcher would put two
    clients' rows in one sample); fixed dims equal where both are fixed (outputs of another rank keep the
    graph's own shape)."""
    batched = config.get("max_batch_size", 0) > 0
    inputs = _graph_dims(session.get_inputs())
    for role, graph in (("input", inputs), ("output", _graph_dims(session.get_outputs()))):
        specs = {spec.get("name"): spec for spec in config.get(role, [])}
        missing = [name for name in graph if name not in specs] if role == "input" else []
        if missing:
            return f"ONNX input '{missing[0]}' is missing from config.pbtxt; add it"
        for name, spec in specs.items():
            if name not in graph:
                return f"config.pbtxt {role} '{name}' is not in the ONNX graph"
            if "reshape" in spec:
                continue
            problem = _shape_problem_of(role, name, graph[name], [int(d) for d in spec.get("dims", [])],
                                        batched, config.get("max_batch_size", 0))
            if problem:
                return problem
    return _warmup_problem(config, inputs, batched)


def _graph_dims(tensors):
    """{name: dims} of ONNX Runtime's inputs or outputs, -1 where a dim is dynamic or symbolic."""
    return {t.name: [d if isinstance(d, int) and d > 0 else -1 for d in t.shape] for t in tensors}


def _contradicts(onnx, dims, batched):
    """Whether `dims` (without the batch axis) differ from the graph's at a dim fixed in both."""
    return any(a > 0 and b > 0 and a != b for a, b in zip(onnx[batched:], dims, strict=True))


def _warmup_problem(config, graph, batched):
    """A model_warmup sample whose dims the graph cannot take: the load would fail, and Triton 2.51
    segfaults now and then on a failed warm-up (outsider rounds 12-13). '' when every sample fits."""
    for sample in config.get("model_warmup", []):
        for name, spec in sample.get("inputs", {}).items():
            onnx, dims = graph.get(name, []), [int(d) for d in spec.get("dims", [])]
            if name in graph and (len(onnx) != len(dims) + batched or _contradicts(onnx, dims, batched)):
                return (f"model_warmup sample '{sample.get('name', '')}' gives input '{name}' dims {dims}, "
                        f"which the ONNX input {onnx} does not take"
                        f"{' (after the batch axis)' if batched else ''}; make them agree")
    return ""


def _shape_problem_of(role, name, onnx, dims, batched, max_batch):
    where = f"ONNX {role} '{name}'"
    if len(onnx) != len(dims) + batched:
        if role == "output":
            return ""
        return (f"{where} has rank {len(onnx)} but config.pbtxt dims {dims}"
                f"{' plus the batch dimension' if batched else ''} give {len(dims) + batched}")
    if batched and onnx[0] > 0:
        return (f"{where} has a fixed first dimension ({onnx[0]}), but max_batch_size {max_batch} batches "
                f"along it; export it with a dynamic batch axis, or set max_batch_size: 0 and dims {onnx}")
    if _contradicts(onnx, dims, batched):
        return (f"{where} has dims {onnx} but config.pbtxt says {dims}"
                f"{' (after the batch axis)' if batched else ''}; make them agree")
    return ""


def _trim(feeds, mask_name):
    """`feeds` without the padding columns that no row uses (mask 0 in every row, at the end of axis 1),
    cut from every input of the mask's shape (parameter trim_padding; '' = off)."""
    mask = feeds.get(mask_name) if mask_name else None
    if mask is None or mask.ndim != 2 or mask.shape[0] == 0 or mask.shape[1] <= 1:
        return feeds
    used = np.flatnonzero(mask.any(axis=0))
    kept = int(used[-1]) + 1 if used.size else 1
    if kept == mask.shape[1]:
        return feeds
    return {name: np.ascontiguousarray(array[:, :kept]) if array.shape == mask.shape else array
            for name, array in feeds.items()}


class NotText(ValueError):
    """A BYTES input element that is not UTF-8 text."""


def _text(array):
    """BYTES tensors arrive as numpy arrays of `bytes`; ONNX Runtime takes strings as `str` (it would
    turn b"a" into the string "b'a'": outsider round 8). Elements must be UTF-8 (else NotText: an
    INVALID_ARGUMENT answer, not INTERNAL: outsider round 12)."""
    if array.dtype != np.object_:
        return array
    try:
        return np.array([v.decode("utf-8") if isinstance(v, bytes) else v for v in array.ravel()],
                        dtype=np.object_).reshape(array.shape)
    except UnicodeDecodeError as exc:
        raise NotText(f"a BYTES element is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                      "ONNX Runtime takes strings as UTF-8") from exc


def _concat(arrays):
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)

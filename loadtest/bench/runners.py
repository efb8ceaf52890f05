"""W9 and W10: the native backend against the Python runner, side by side in one bench run.

    w9(bench, row)   # RSS of tritonserver + children, all reference models, native / Python runner
    w10(bench, row)  # MLP throughput at concurrency 32, native / Python runner

The native side is the bench server (`Bench.start`, the default runner). The Python side is a second
server, started once per bench run on the reference models alone (`--runner python`), pinned to the
same server CPUs and stopped with the bench. Memory is read after warm-up: every model without a
config warm-up gets one request first (the MiniLM ensembles warm their tokenizer and encoder).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from tritonstack.loadtest.bench.context import CACHED, NATIVE_MLP, NOBATCH, Bench
from tritonstack.loadtest.bench.memory import TreeRss, tree_rss
from tritonstack.loadtest.perf_analyzer import PerfAnalyzerRun, run_perf_analyzer
from tritonstack.loadtest.pinning import pin_process_group
from tritonstack.loadtest.targets import triton_raw

from tritonstack.errors import LoadTestError

if TYPE_CHECKING:
    from tritonstack.loadtest.bench.workloads import Row

__all__ = ["python_runner_server", "w9", "w10"]

_LOGGER = logging.getLogger(__name__)
MLP = "digits_mlp"
_BENCH_ONLY = (NOBATCH, CACHED, NATIVE_MLP)  # copies the bench adds; not reference models
_MIB = 2**20


def python_runner_server(bench: Bench) -> Any:
    """The bench's Python-runner server on the reference models (started at the first call, warmed)."""
    if bench.python_server is None:
        bench.python_server, bench.python_start_to_ready_s = start_server(bench, "python")
    return bench.python_server


def start_server(bench: Bench, runner: str) -> tuple[Any, float]:
    """A server with `serve`'s defaults and `runner` on the reference models, pinned to the server CPUs
    and warmed up; and its start-to-ready seconds. The caller stops it."""
    from tritonstack.serve import EmbeddedServer, ServerConfig

    config = ServerConfig(repository=bench.source_repository(), runner=runner,
                          ort_threads=len(bench.split.server), ready_timeout_s=180, supervise=False)
    start = time.perf_counter()
    server = EmbeddedServer(config).start()
    seconds = time.perf_counter() - start
    try:
        pin_process_group(server.pid, bench.split.server)
        warm_up(server, bench)
    except BaseException:
        server.stop()
        raise
    return server, seconds


def warm_up(server: Any, bench: Bench) -> dict[str, str]:
    """One request to each READY model that has no config warm-up; model -> "ok" or the error."""
    import tritonclient.grpc as grpcclient

    outcome = {}
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        for state in server.model_states():
            config = bench.config(state["name"])
            if state["state"] != "READY" or len(config.model_warmup):
                continue
            try:
                client.infer(state["name"], _inputs(config, bench), client_timeout=60)
                outcome[state["name"]] = "ok"
            except Exception as exc:  # noqa: BLE001 - warm-up is best effort; the row says what failed
                outcome[state["name"]] = str(exc)[:200]
                _LOGGER.warning("warm-up request to %s failed: %s", state["name"], outcome[state["name"]])
    finally:
        client.close()
    return outcome


def _inputs(config: Any, bench: Bench) -> list[Any]:
    """One single-row request for `config`: a short text for STRING inputs, small numbers otherwise."""
    import tritonclient.grpc as grpcclient
    from tritonclient.grpc import model_config_pb2

    numeric = bench.rows(config.name, 1)[0] if not _has_strings(config) else {}
    inputs = []
    for tensor in config.input:
        if tensor.data_type == model_config_pb2.TYPE_STRING:
            shape = ([1] if config.max_batch_size > 0 else []) + [max(d, 1) for d in tensor.dims]
            array = np.full(shape, b"warm up the tokenizer", dtype=np.object_)
            datatype = "BYTES"
        else:
            array = numeric[tensor.name]
            datatype = model_config_pb2.DataType.Name(tensor.data_type).removeprefix("TYPE_")
        item = grpcclient.InferInput(tensor.name, list(array.shape), datatype)
        item.set_data_from_numpy(array)
        inputs.append(item)
    return inputs


def _has_strings(config: Any) -> bool:
    from tritonclient.grpc import model_config_pb2

    return any(t.data_type == model_config_pb2.TYPE_STRING for t in config.input)


def reference_rss(pid: int) -> TreeRss:
    """RSS of the server tree without the Python stubs of the bench-only copies of the MLP."""
    tree = tree_rss(pid)
    tree.processes = [p for p in tree.processes if _stub_model(p.pid) not in _BENCH_ONLY]
    return tree


def _stub_model(pid: int) -> str | None:
    """The model a Python-backend stub serves (from its command line `<model>_<instance>_<n>`), or None."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return None
    for model in _BENCH_ONLY:
        if any(arg.startswith(f"{model}_") for arg in argv):
            return model
    return None


def _mib(tree: TreeRss) -> dict[str, Any]:
    return {"total_mib": round(tree.total_bytes / _MIB, 1), "processes": len(tree.processes),
            "by_name_mib": {k: round(v / _MIB, 1) for k, v in tree.by_name().items()}}


# -- W9 RSS native / Python runner ------------------------------------------------------------------
def w9(bench: Bench, row: Row) -> None:
    """RSS of tritonserver and every child process, all reference models loaded and warm, `serve`'s
    defaults on both sides (drift-reference models on the Python runner under native, for their gauges):
    native / Python runner. The bench server itself (drift gauges off) is in the detail."""
    python = python_runner_server(bench)
    native_server, native_start_s = start_server(bench, "native")
    try:
        time.sleep(1.0)  # let the stubs settle after their first requests
        native = tree_rss(native_server.pid)
        python_tree = tree_rss(python.pid)
        stubs = dict(native_server.plan.python) if native_server.plan else {}
    finally:
        native_server.stop()
    warm_up(bench.server, bench)
    bench_native = reference_rss(bench.server.pid)
    row.value = native.total_bytes / python_tree.total_bytes
    row.detail = {"native": _mib(native), "python_runner": _mib(python_tree),
                  "native_python_stubs": stubs,
                  "start_to_ready_s": {"native": round(native_start_s, 2),
                                       "python_runner": round(bench.python_start_to_ready_s or 0, 2)},
                  "bench_server_drift_gauges_off": {
                      **_mib(bench_native), "ratio": bench_native.total_bytes / python_tree.total_bytes,
                      "note": f"the Python stubs of the bench-only copies {list(_BENCH_ONLY)} are left out"}}


# -- W10 MLP throughput native / Python runner ------------------------------------------------------
def w10(bench: Bench, row: Row) -> None:
    """MLP req/s at concurrency 32, native backend / Python runner (perf_analyzer both sides when it
    is available, else our asyncio generator): the same ONNX file and config on both servers."""
    native_model = bench.require(NATIVE_MLP, "digits MLP pinned to the native backend")
    other = python_runner_server(bench)
    if MLP not in {s["name"] for s in other.model_states() if s["state"] == "READY"}:
        raise LoadTestError(f"{MLP} is not READY on the Python-runner server")
    try:
        native = _perf_analyzer(bench, bench.grpc_url, native_model)
        python = _perf_analyzer(bench, other.grpc_url, MLP)
        value_from = "perf_analyzer, both sides"
    except LoadTestError as exc:
        native = _generator(bench, bench.grpc_url, native_model)
        python = _generator(bench, other.grpc_url, MLP)
        value_from = f"loadtest.generator (perf_analyzer unavailable: {exc})"
    row.value = native["throughput_rps"] / python["throughput_rps"]
    row.detail = {"native": {"model": native_model, **native}, "python_runner": {"model": MLP, **python},
                  "value_from": value_from}


def _perf_analyzer(bench: Bench, url: str, model: str) -> dict[str, Any]:
    run = PerfAnalyzerRun(url=url, model=model, concurrency=32, shapes={"features": [64]},
                          cpus=bench.split.generator,
                          measurement_interval_ms=1000 if bench.options.quick else 2000)
    return run_perf_analyzer(run)


def _generator(bench: Bench, url: str, model: str) -> dict[str, Any]:
    summary = bench.closed(lambda: triton_raw(url, model, bench.rows(MLP)), concurrency=32)
    keys = ("count", "errors", "p50_ms", "p99_ms")
    return {"throughput_rps": summary["ok_throughput_rps"], **{k: summary.get(k) for k in keys}}


"""A real Prometheus (Debian's package) scrapes the real embedded Triton and runs our alert rules.

The rules are the production file deploy/prometheus/alerts.yml with its time windows shortened
(`[5m]` -> `[10s]`, `for: 10m` -> `for: 2s`); thresholds are unchanged. The server gets its own
repository: digits_mlp (with its drift reference on the input pixels), `ops_encoder` (a small ONNX
encoder whose drift reference is on its output embedding) and `ops_probe`, a Python model that fails
or sleeps on request, so failures and latency can be driven on purpose.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
#: tritonserver flags the alert rules need (p99 from the latency summaries).
WAIT_S = 60

pytestmark = pytest.mark.skipif(not Path(PROMETHEUS).exists(),
                                reason="needs Debian's prometheus (make sysdeps)")

PROBE_MODEL = '''
import time
import numpy as np
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    """DELAY_MS < 0: fail the request; else sleep DELAY_MS and echo it.

    Triton 2.51 counts a response carrying an error as a *success* in nv_inference_request_*;
    only an exception raised from execute() counts as a failure (reason BACKEND).
    """

    def execute(self, requests):
        responses = []
        for request in requests:
            delay = pb_utils.get_input_tensor_by_name(request, "DELAY_MS").as_numpy()
            if delay[0] < 0:
                raise pb_utils.TritonModelException("asked to fail")
            time.sleep(float(delay[0]) / 1000)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", delay)]))
        return responses
'''
PROBE_CONFIG = '''name: "ops_probe"
backend: "python"
max_batch_size: 0
input { name: "DELAY_MS" data_type: TYPE_FP32 dims: [1] }
output { name: "OUT" data_type: TYPE_FP32 dims: [1] }
'''


ENCODER_CONFIG = '''name: "ops_encoder"
platform: "onnxruntime_onnx"
max_batch_size: 256
input { name: "tokens" data_type: TYPE_FP32 dims: [32] }
output { name: "embedding" data_type: TYPE_FP32 dims: [16] }
dynamic_batching { max_queue_delay_microseconds: 200 }
instance_group { count: 1 kind: KIND_CPU }
'''
RNG = np.random.default_rng(0)
ENCODER_W = (RNG.normal(size=(32, 16)) / np.sqrt(32)).astype(np.float32)


def _write_encoder(version_dir: Path) -> None:
    """tanh(x @ W) as ONNX, with a drift reference on its output embedding."""
    from onnx import TensorProto, helper, numpy_helper
    from tritonstack.ops.drift import REFERENCE_FILE, reference_from_training

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["tokens", "W"], ["z"]), helper.make_node("Tanh", ["z"], ["embedding"])],
        "encoder", [helper.make_tensor_value_info("tokens", TensorProto.FLOAT, [None, 32])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [None, 16])],
        [numpy_helper.from_array(ENCODER_W, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    version_dir.mkdir(parents=True)
    (version_dir / "model.onnx").write_bytes(model.SerializeToString())
    train = np.tanh(RNG.normal(size=(2000, 32)).astype(np.float32) @ ENCODER_W)
    reference_from_training(train, tensor="embedding", source="output", window_rows=512).save(
        version_dir / REFERENCE_FILE)


def short_windows(rules: str) -> str:
    """The production rules with minutes/hours shrunk to seconds, thresholds untouched."""
    rules = rules.replace("[1h]", "[60s]")
    rules = re.sub(r"\[\d+m\]", "[10s]", rules)
    return re.sub(r"for: \d+[mh]", "for: 2s", rules)


@pytest.fixture(scope="module")
def ops_server(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from tritonstack.ops.drift_tap import write_drift_tap
    from tritonstack.serve import EmbeddedServer, ServerConfig

    repo = tmp_path_factory.mktemp("ops_prom") / "model_repository"
    shutil.copytree(repository / "digits_mlp", repo / "digits_mlp")
    (repo / "ops_probe" / "1").mkdir(parents=True)
    (repo / "ops_probe" / "1" / "model.py").write_text(PROBE_MODEL)
    (repo / "ops_probe" / "config.pbtxt").write_text(PROBE_CONFIG)
    _write_encoder(repo / "ops_encoder" / "1")
    shutil.copytree(repository / "digits_mlp", repo / "digits_badref")  # a corrupt drift reference
    config = (repo / "digits_badref" / "config.pbtxt").read_text()
    (repo / "digits_badref" / "config.pbtxt").write_text(config.replace('"digits_mlp"', '"digits_badref"'))
    (repo / "digits_badref" / "1" / "drift_reference.json").write_text('{"format": 1, "input": "old"}')
    write_drift_tap(repo, "digits_mlp")  # digits_mlp_drift + ensemble digits_mlp_monitored
    (repo / "ops_encoder" / "config.pbtxt").write_text(ENCODER_CONFIG)
    with EmbeddedServer(ServerConfig(repository=repo, ort_threads=1)) as running:
        yield running


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def prometheus(ops_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: ANN001
    work = tmp_path_factory.mktemp("prometheus")
    rules = short_windows((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    (work / "alerts.yml").write_text(rules)
    target = ops_server.metrics_url.split("//")[1].split("/")[0]
    (work / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(work / "alerts.yml")],
        "scrape_configs": [{"job_name": "triton", "static_configs": [{"targets": [target]}]}],
    }))
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603
        [PROMETHEUS, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(work / "prometheus.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: _get(url, "/-/ready", raw=True) == b"Prometheus Server is Ready.\n",
               "Prometheus ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _get(base: str, path: str, raw: bool = False):  # noqa: ANN202
    try:
        with urllib.request.urlopen(base + path, timeout=5) as response:  # noqa: S310 - loopback
            body = response.read()
    except OSError:
        return None
    return body if raw else json.loads(body)["data"]


def _until(check: Callable[[], object], what: str, *, action: Callable[[], None] | None = None,
           timeout_s: float = WAIT_S) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if action is not None:
            action()
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s} s waiting for: {what}")


def _query(url: str, promql: str) -> list[dict]:
    return _get(url, "/api/v1/query?query=" + urllib.parse.quote(promql))["result"]


def _firing(url: str, alertname: str, **labels: str) -> list[dict]:
    alerts = (_get(url, "/api/v1/alerts") or {}).get("alerts", [])
    return [a for a in alerts if a["labels"].get("alertname") == alertname and a["state"] == "firing"
            and all(a["labels"].get(k) == v for k, v in labels.items())]


def _probe(server, delay_ms: float) -> bool:  # noqa: ANN001
    with grpcclient.InferenceServerClient(server.grpc_url) as raw:
        tensor = grpcclient.InferInput("DELAY_MS", [1], "FP32")
        tensor.set_data_from_numpy(np.array([delay_ms], np.float32))
        try:
            raw.infer("ops_probe", [tensor])
        except grpcclient.InferenceServerException:
            return False
    return True


def test_prometheus_scrapes_triton_and_drift_metrics(prometheus: str, ops_server, digits_data) -> None:  # noqa: ANN001
    from tritonstack.client import TritonClient

    x_test, _ = digits_data
    with TritonClient(ops_server.grpc_url) as client:
        client.infer("digits_mlp", x_test[:300])
        time.sleep(1.1)  # the runner publishes drift scores at most once a second
        client.infer("digits_mlp", x_test[300:])
    _until(lambda: _query(prometheus, 'nv_inference_request_success{model="digits_mlp"} > 0'),
           "Triton's request counter in Prometheus")
    rows = _until(lambda: _query(prometheus, "tritonstack_drift_window_rows >= 450"), "drift window gauge")
    assert rows[0]["metric"]["model"] == "digits_mlp" and rows[0]["metric"]["version"] == "1"


def test_slow_requests_fire_the_p99_latency_alert(prometheus: str, ops_server) -> None:  # noqa: ANN001
    assert not _firing(prometheus, "TritonP99LatencyOverBudget")  # ops_probe has had no request yet
    started = time.monotonic()
    alert = _until(lambda: _firing(prometheus, "TritonP99LatencyOverBudget", model="ops_probe"),
                   "TritonP99LatencyOverBudget firing", action=lambda: _probe(ops_server, 120))
    print(f"TritonP99LatencyOverBudget fired after {time.monotonic() - started:.1f} s; "
          f"p99 {alert[0]['value']} us")
    assert float(alert[0]["value"]) >= 100_000, "p99 should be one of our 120 ms requests"


def test_failures_fire_the_failure_ratio_alert(prometheus: str, ops_server) -> None:  # noqa: ANN001
    assert _probe(ops_server, 0)
    assert not _firing(prometheus, "TritonFailureRatioHigh")
    started = time.monotonic()
    sent = []
    alert = _until(lambda: _firing(prometheus, "TritonFailureRatioHigh", model="ops_probe"),
                   "TritonFailureRatioHigh firing", action=lambda: sent.extend(_probe(ops_server, -1)
                                                                              for _ in range(5)))
    print(f"TritonFailureRatioHigh fired {time.monotonic() - started:.1f} s after the first failure, "
          f"{len(sent)} failed requests sent; value {alert[0]['value']}")
    assert not any(sent)
    assert not _firing(prometheus, "TritonFailureRatioHigh", model="digits_mlp")


def _send_for_drift(server, rows: np.ndarray) -> Callable[[], None]:  # noqa: ANN001
    from tritonstack.client import TritonClient

    def send() -> None:
        with TritonClient(server.grpc_url) as client:
            for start in range(0, len(rows), 150):
                client.infer("digits_mlp", rows[start:start + 150])
    return send


def _psi_mean(url: str) -> float:
    result = _query(url, 'tritonstack_drift_psi_mean{model="digits_mlp"}')
    return float(result[0]["value"][1]) if result else float("nan")


def test_unshifted_inputs_stay_below_and_shifted_inputs_fire_the_drift_alert(
        prometheus: str, ops_server, digits_data) -> None:  # noqa: ANN001
    x_test, _ = digits_data
    unshifted = _send_for_drift(ops_server, x_test)
    for _ in range(4):  # > 1 s apart, so the runner publishes; then 2 scrapes
        unshifted()
        time.sleep(1.1)
    time.sleep(2.5)
    calm = _psi_mean(prometheus)
    assert calm < 0.1, f"held-out digits scored PSI {calm}"
    assert not _firing(prometheus, "DataDriftHigh") and not _firing(prometheus, "EmbeddingShiftHigh")

    started = time.monotonic()
    shifted = _send_for_drift(ops_server, np.round(x_test * 0.5))  # fainter strokes
    _until(lambda: _firing(prometheus, "DataDriftHigh", model="digits_mlp"), "DataDriftHigh firing",
           action=shifted)
    embedding = _until(lambda: _firing(prometheus, "EmbeddingShiftHigh", model="digits_mlp"),
                       "EmbeddingShiftHigh firing", action=shifted)
    print(f"PSI mean unshifted {calm:.4f}, shifted {_psi_mean(prometheus):.4f}; MMD shifted "
          f"{embedding[0]['value']}; drift alerts fired after {time.monotonic() - started:.1f} s")


def test_drift_tap_ensemble_scores_like_the_runner_and_fires(prometheus: str, ops_server, digits_data) -> None:  # noqa: ANN001
    """The tap (for models on native backends, e.g. the NGC image) sees what the model sees."""
    from tritonstack.client import TritonClient

    x_test, y_test = digits_data
    tap = '{model="digits_mlp",model_instance="digits_mlp_drift_0_0"}'

    def send(rows: np.ndarray) -> Callable[[], None]:
        def action() -> None:
            with TritonClient(ops_server.grpc_url) as client:
                for start in range(0, len(rows), 150):
                    out = client.infer("digits_mlp_monitored", rows[start:start + 150])
                    assert out["probabilities"].shape == (len(rows[start:start + 150]), 10)
        return action

    for _ in range(3):
        send(x_test)()
        time.sleep(1.1)
    send(x_test[:10])()
    calm = _until(lambda: _query(prometheus, f"tritonstack_drift_psi_mean{tap}"), "tap gauge")
    assert float(calm[0]["value"][1]) < 0.1
    started = time.monotonic()
    shifted = np.round(x_test * 0.5)
    _until(lambda: _query(prometheus, f"tritonstack_drift_psi_mean{tap} > 0.1"),
           "the tap's PSI over the alert threshold", action=send(shifted))
    send(shifted)()  # the runner's and the tap's windows now hold the same shifted rows
    time.sleep(2.5)
    runner = _query(prometheus, 'tritonstack_drift_psi_mean{model_instance="digits_mlp_0_0"}')[0]["value"][1]
    tapped = _query(prometheus, f"tritonstack_drift_psi_mean{tap}")[0]["value"][1]
    print(f"drift tap: PSI mean unshifted {float(calm[0]['value'][1]):.4f}, shifted {float(tapped):.4f} "
          f"(runner hook {float(runner):.4f}); over the threshold after {time.monotonic() - started:.1f} s")
    assert float(tapped) == pytest.approx(float(runner), rel=0.05)


def _metric(url: str, name: str, model: str) -> float:
    result = _query(url, f'{name}{{model="{model}"}}')
    return float(result[0]["value"][1]) if result else float("nan")


def test_encoder_output_embedding_shift_fires_for_shifted_inputs_only(prometheus: str, ops_server) -> None:  # noqa: ANN001
    from tritonstack.client import TritonClient

    def send(offset: float) -> Callable[[], None]:
        def action() -> None:
            with TritonClient(ops_server.grpc_url) as client:
                client.infer("ops_encoder", (RNG.normal(size=(200, 32)) + offset).astype(np.float32))
        return action

    unshifted = send(0.0)
    for _ in range(4):
        unshifted()
        time.sleep(1.1)
    time.sleep(2.5)
    calm = _metric(prometheus, "tritonstack_drift_embedding_mmd", "ops_encoder")
    assert calm < 0.05, f"unshifted encoder inputs scored MMD {calm}"
    assert not _firing(prometheus, "EmbeddingShiftHigh", model="ops_encoder")
    started = time.monotonic()
    alert = _until(lambda: _firing(prometheus, "EmbeddingShiftHigh", model="ops_encoder"),
                   "EmbeddingShiftHigh firing for ops_encoder", action=send(1.0))
    print(f"encoder embedding MMD unshifted {calm:.4f}, shifted {float(alert[0]['value']):.4f}; "
          f"alert fired after {time.monotonic() - started:.1f} s")


def test_drift_status_command_reads_the_live_gauges(ops_server, capsys) -> None:  # noqa: ANN001
    from tritonstack.cli import main

    with pytest.raises(SystemExit) as exited:  # ops_encoder's last window was shifted: exit 1 (cron, CI)
        main(["ops", "drift-status", "--json", "--metrics-url", ops_server.metrics_url])
    assert exited.value.code == 1
    rows = {r["model"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    print({model: (row["scores"].get("psi_mean"), row["alerting"]) for model, row in rows.items()})
    assert rows["ops_probe"]["scores"] == {} and not rows["ops_probe"]["alerting"]  # served, no gauges
    assert rows["ops_encoder"]["alerting"] == ["psi_mean", "embedding_mmd"]  # the last window was shifted
    assert rows["digits_mlp"]["scores"]["window_rows"] == 512 and rows["digits_mlp"]["version"] == "1"


def test_a_corrupt_drift_reference_never_stops_a_model_from_serving(ops_server, digits_data) -> None:  # noqa: ANN001
    from tritonstack.client import TritonClient

    x_test, y_test = digits_data
    with TritonClient(ops_server.grpc_url) as client:
        for start in range(0, 450, 150):
            out = client.infer("digits_badref", x_test[start:start + 150])["probabilities"]
            assert (out.argmax(1) == y_test[start:start + 150]).mean() > 0.9
    with urllib.request.urlopen(ops_server.metrics_url) as response:  # noqa: S310 - loopback
        assert 'model="digits_badref"' not in "".join(
            line for line in response.read().decode().splitlines() if line.startswith("tritonstack_drift"))
    assert "drift monitoring off: cannot read drift_reference.json" in ops_server.log_tail(400)


def test_every_dashboard_query_runs_and_the_core_panels_have_data(prometheus: str) -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "tritonstack.json").read_text())
    every_model = next(v for v in dashboard["templating"]["list"] if v["name"] == "model")["allValue"]
    exprs = {t["expr"].replace("$__rate_interval", "10s").replace("$model", every_model): panel["title"]
             for panel in dashboard["panels"] for t in panel.get("targets", [])}
    empty = []
    for expr, title in exprs.items():
        with urllib.request.urlopen(  # noqa: S310 - loopback
                f"{prometheus}/api/v1/query?query={urllib.parse.quote(expr)}", timeout=5) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", (title, expr, body)
        if not body["data"]["result"]:
            empty.append(title)
    print(f"{len(exprs)} dashboard queries ran; panels without data yet: {sorted(set(empty))}")
    for core in ("Request rate (req/s)", "Latency p50 / p99 (ms)", "Mean batch size (inferences per execution)",
                 "Data drift: mean PSI (alert > 0.1) and mean JS"):
        assert core not in empty, f"panel {core!r} shows nothing against the real server"


def test_unloaded_model_fires_model_not_ready(prometheus: str, ops_server) -> None:  # noqa: ANN001
    assert _probe(ops_server, 0)
    _until(lambda: _query(prometheus, 'nv_inference_count{model="ops_probe"}'), "ops_probe series")
    ops_server.unload_model("ops_probe")
    started = time.monotonic()
    _until(lambda: _firing(prometheus, "TritonModelNotReady", model="ops_probe"),
           "TritonModelNotReady firing")
    print(f"TritonModelNotReady fired {time.monotonic() - started:.1f} s after the unload")
    assert not _firing(prometheus, "TritonModelNotReady", model="digits_mlp")

"""The Locust engine's HTTP transport: the prepared request, error mapping, and the CLI's refusals."""

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from tritonstack.loadtest.http_wire import http_error, http_request
from tritonstack.loadtest.perf_analyzer import PerfAnalyzerRun, _argv
from tritonstack.loadtest.scenario import Scenario
from tritonstack.serve.control import split_host_port

from tritonstack.errors import (
    ConfigError,
    InferenceTimeoutError,
    InternalServerError,
    InvalidInputError,
    ModelNotFoundError,
    ServerUnavailableError,
)


def _info():
    tensor = SimpleNamespace
    return SimpleNamespace(inputs={"features": tensor(datatype="FP32"), "ids": tensor(datatype="INT64")},
                           output_names=("probabilities", "logits"))


def test_the_request_is_a_json_header_then_the_raw_tensors_in_order():
    row = {"features": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.array([[7], [8]], np.int64)}
    request = http_request(_info(), "my model/x", "3", row)
    assert request.path == "/v2/models/my%20model%2Fx/versions/3/infer"
    size = int(request.headers["Inference-Header-Content-Length"])
    header = json.loads(request.body[:size])
    assert [(i["name"], i["shape"], i["datatype"], i["parameters"]["binary_data_size"]) for i in header["inputs"]] \
        == [("features", [2, 3], "FP32", 24), ("ids", [2, 1], "INT64", 16)]
    assert [o["name"] for o in header["outputs"]] == ["probabilities", "logits"]
    assert all(o["parameters"]["binary_data"] for o in header["outputs"])
    assert request.body[size:] == row["features"].tobytes() + row["ids"].tobytes()
    assert http_request(_info(), "m", "", row).path == "/v2/models/m/infer"
    assert http_request(_info(), "a+b:c@d(1)", "", row).path == "/v2/models/a+b:c@d(1)/infer"  # as Triton reads it


@pytest.mark.parametrize(("model", "version", "needle"), [
    ("q?x", "", "its name has '?'"), ("my model", "", "its name has ' '"), ("mödel", "", "'ö'"),
    ("a%3Fb", "", "'%'"), ("m", "1/../1", "takes a version number only"),
])
def test_names_triton_cannot_find_over_http_are_refused_before_any_load(model, version, needle):
    from tritonstack.loadtest.http_wire import check_http_path

    with pytest.raises(ConfigError) as caught:
        check_http_path(model, version)
    assert needle in str(caught.value) and "\n" not in str(caught.value)
    check_http_path("digits_mlp.v2-a+b", "12")


def test_big_inputs_get_fewer_prepared_requests_not_gigabytes():
    from tritonstack.loadtest.inputs import request_rows

    info = SimpleNamespace(inputs={"big": SimpleNamespace(datatype="FP32", dims=(-1,))}, batched=True,
                           max_batch_size=8)
    rows = request_rows(info, count=64, shapes={"big": (1_000_000,)}, budget_bytes=10 << 20)
    assert len(rows) == 2 and rows[0]["big"].shape == (1, 1_000_000)  # 4 MB each, 10 MiB budget
    assert len(request_rows(info, count=64, shapes={"big": (10,)})) == 64


@pytest.mark.parametrize(("status", "body", "cls", "code"), [
    (400, b'{"error":"unexpected shape for input"}', InvalidInputError, "INVALID_ARGUMENT"),
    (404, b'{"error":"Request for unknown model"}', ModelNotFoundError, "NOT_FOUND"),
    (503, b'{"error":"Server not ready"}', ServerUnavailableError, "UNAVAILABLE"),
    (504, b"", InferenceTimeoutError, "DEADLINE_EXCEEDED"),
    (502, b"<html>bad gateway</html>", InternalServerError, "INTERNAL"),
    (418, b"not json", InvalidInputError, "INVALID_ARGUMENT"),
])
def test_an_http_error_becomes_our_typed_error_with_the_servers_words(status, body, cls, code):
    error = http_error(status, body, model="m")
    assert type(error) is cls
    text = str(error)
    assert text.startswith("model 'm': ") and f"(HTTP {status})" in text and text.endswith(f"[{code}]")
    if body.startswith(b"{"):
        assert json.loads(body)["error"] in text


def test_addresses_are_host_and_port():
    assert split_host_port("127.0.0.1:8000") == ("127.0.0.1", 8000)
    assert split_host_port("[::1]:8000") == ("::1", 8000)
    for bad in ("127.0.0.1", ":8000", "h:0", "h:70000", "h:x"):
        with pytest.raises(ValueError, match="host:port"):
            split_host_port(bad)


def test_perf_analyzer_runs_over_the_protocol_asked_for():
    argv = _argv(PerfAnalyzerRun(url="127.0.0.1:8000", model="m", protocol="http"), csv_path="x.csv")
    assert argv[argv.index("-i") + 1] == "http" and argv[argv.index("-u") + 1] == "127.0.0.1:8000"
    assert _argv(PerfAnalyzerRun(url="h:1", model="m"), csv_path="x.csv")[6] == "grpc"


def _check(**options):
    from tritonstack.cli.loadtest import check_options

    base = {"url": "127.0.0.1:8001", "repository": None, "engine": "locust", "referee": False, "inputs": None}
    check_options(Scenario(), **{**base, **options})


@pytest.mark.parametrize(("options", "needle"), [
    ({"protocol": "h2"}, "--protocol 'h2': use grpc or http"),
    ({"http_url": "127.0.0.1:8000"}, "add --protocol http"),
    ({"protocol": "http", "engine": "asyncio", "http_url": "h:1"}, "the asyncio engine sends gRPC"),
    ({"protocol": "http"}, "needs --http-url host:port"),
    ({"protocol": "http", "url": None, "repository": "r", "http_url": "h:1"}, "with --repository the started"),
    ({"protocol": "http", "http_url": "http://127.0.0.1:8000/"}, "pass host:port (no scheme), e.g. 127.0.0.1:8000"),
    ({"protocol": "http", "http_url": "localhost"}, "'localhost' is not host:port"),
    ({"protocol": "http", "http_url": " 127.0.0.1:8000"}, "' 127.0.0.1:8000' is not host:port"),
])
def test_protocol_options_that_cannot_work_are_refused_in_one_line(options, needle):
    with pytest.raises(ConfigError) as caught:
        _check(**options)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_a_good_http_setup_passes_and_the_scenario_carries_it_to_workers():
    _check(protocol="http", http_url="127.0.0.1:8000")
    _check(protocol="http", url=None, repository="does-not-exist")
    scenario = Scenario(http_url="127.0.0.1:8000")
    assert Scenario.from_env(scenario.to_env()).http_url == "127.0.0.1:8000"
    assert scenario.describe()["http_url"] == "127.0.0.1:8000" and "http_url" not in Scenario().describe()


def test_the_cli_refusal_is_exit_2_without_a_traceback(tmp_path):
    argv = [sys.executable, "-m", "tritonstack", "loadtest", "steady", "--url", "127.0.0.1:9", "--protocol", "http",
            "--out", str(tmp_path / "r")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "needs --http-url" in done.stderr and not (tmp_path / "r").exists()


SENDER_FAILURES = """
import socket, sys
from tritonstack.loadtest.http_wire import HttpRequest, HttpSender

request = HttpRequest("/v2/models/m/infer", b"{}", {"Inference-Header-Content-Length": "2"})
free = socket.socket(); free.bind(("127.0.0.1", 0)); port = free.getsockname()[1]; free.close()
silent = socket.socket(); silent.bind(("127.0.0.1", 0)); silent.listen(8)  # accepts, never answers
for address in (f"127.0.0.1:{port}", f"127.0.0.1:{silent.getsockname()[1]}"):
    sender = HttpSender(address, model="m", timeout_s=0.3)
    for _ in range(2):  # the connection is dropped after a failure and the next send opens a new one
        try:
            sender.send(request)
        except Exception as exc:
            print(type(exc).__name__, str(exc).replace(str(port), "PORT"))
"""


def test_a_dead_or_silent_endpoint_is_our_typed_error_every_time():
    done = subprocess.run([sys.executable, "-c", SENDER_FAILURES], capture_output=True, text=True, timeout=60)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) == 4, done.stdout + done.stderr
    assert all(line.startswith("ServerUnavailableError model 'm': HTTP 127.0.0.1:PORT") for line in lines[:2])
    assert all(line.startswith("InferenceTimeoutError model 'm': no answer from") and "within 0.3 s" in line
               for line in lines[2:]), lines


def test_the_referee_gets_the_loads_own_requests_as_input_data():
    from tritonstack.loadtest.perf_analyzer import MAX_INPUT_ELEMENTS, input_data

    rows = [{"ids": np.array([[3, 7]], np.int64), "text": np.array([[b"hi"]], np.object_)},
            {"ids": np.array([[5, 9]], np.int64), "text": np.array([["yo"]], np.object_)}]
    data = input_data(rows, batched=True)
    assert data == {"data": [{"ids": {"content": [3, 7], "shape": [2]}, "text": {"content": ["hi"], "shape": [1]}},
                             {"ids": {"content": [5, 9], "shape": [2]}, "text": {"content": ["yo"], "shape": [1]}}]}
    assert input_data([{"x": np.zeros((2, 3), np.float32)}], batched=False)["data"][0]["x"]["shape"] == [2, 3]
    assert input_data([{"x": np.zeros((1, MAX_INPUT_ELEMENTS + 1), np.float32)}], batched=True) is None
    run = PerfAnalyzerRun(url="h:1", model="m", shapes={"x": [3]}, input_data={"data": []})
    argv = _argv(run, csv_path="x.csv", input_path="in.json")
    assert argv[-2:] == ["--input-data", "in.json"] and "--shape" not in argv


SENDER_DEADLINE_AND_POOL = """
import threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import gevent
from tritonstack.loadtest.http_wire import HttpRequest, HttpSender

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/trickle":  # each byte in time for a per-read timeout, the whole far too late
            for byte in b"HTTP/1.1 200 OK\\r\\nContent-Length: 0\\r\\n\\r\\n":
                self.wfile.write(bytes([byte])); self.wfile.flush(); time.sleep(0.05)
            return
        time.sleep(0.3)
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
address = f"127.0.0.1:{server.server_address[1]}"
started = time.perf_counter()
try:
    HttpSender(address, model="m", timeout_s=0.5).send(HttpRequest("/trickle", b"x", {}))
except Exception as exc:
    print(type(exc).__name__, round(time.perf_counter() - started, 3))
sender = HttpSender(address, model="m", timeout_s=5, connections=4)
started = time.perf_counter()
gevent.joinall([gevent.spawn(sender.send, HttpRequest("/slow", b"x", {})) for _ in range(4)], raise_error=True)
print("4 in flight", round(time.perf_counter() - started, 3))
"""


def test_the_deadline_covers_the_whole_request_and_open_loops_get_their_connections():
    done = subprocess.run([sys.executable, "-c", SENDER_DEADLINE_AND_POOL], capture_output=True, text=True,
                          timeout=60)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) == 2, done.stdout + done.stderr
    kind, seconds = lines[0].split()
    assert kind == "InferenceTimeoutError" and 0.5 <= float(seconds) < 1.5, lines  # 0.5 s, not the 2 s trickle
    assert lines[1].startswith("4 in flight ") and float(lines[1].split()[-1]) < 0.9, lines  # side by side:
    # 0.3 s; one connection would queue them for 1.2 s (bounds generous: a busy machine adds delay)

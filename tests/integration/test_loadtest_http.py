"""The Locust engine over Triton's HTTP endpoint (`--protocol http`), against a real server with HTTP on.

Every Locust run happens in a subprocess (gevent monkey-patches the process that imports Locust).
"""

import json
import socket
import subprocess
import sys

import pytest

from tests.integration.test_loadtest_locust import assert_wrong_shape_fails_alone


@pytest.fixture(scope="module")
def http_server(repository):
    """The real tritonserver with its HTTP endpoint on too (loopback, free ports)."""
    from tritonstack.serve import EmbeddedServer, ServerConfig

    with EmbeddedServer(ServerConfig(repository=repository, ort_threads=1, http=True)) as running:
        yield running


def _address(server) -> str:
    return server.http_address


def _loadtest(*args, timeout=120):
    argv = [sys.executable, "-m", "tritonstack", "loadtest", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("workers", [0, 1])
def test_the_load_goes_over_http_and_the_report_says_so(http_server, tmp_path, workers):
    before = _http_successes(http_server)
    done = _loadtest("steady", "--url", http_server.grpc_url, "--protocol", "http", "--http-url",
                     _address(http_server), "--users", "4", "--duration", "2", "--workers", str(workers),
                     "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    name = "steady_distributed" if workers else "steady"
    data = json.loads((tmp_path / f"{name}.json").read_text())
    summary = data["summary"]
    assert summary["count"] > 0 and summary["errors"] == 0
    assert data["scenario"]["http_url"] == _address(http_server)
    assert _http_successes(http_server) - before >= summary["count"]  # the server counted them as HTTP


def _http_successes(server) -> float:
    """Successful HTTP inferences the server has counted (its Prometheus counter)."""
    import urllib.request

    text = urllib.request.urlopen(server.metrics_url, timeout=10).read().decode()  # noqa: S310
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("nv_inference_request_success{") and 'model="digits_mlp"' in line)


def test_its_own_server_opens_http_and_the_referee_runs_over_it(repository, tmp_path):
    done = _loadtest("steady", "--repository", str(repository), "--protocol", "http", "--users", "4",
                     "--duration", "2", "--referee", "--out", str(tmp_path), timeout=240)
    print(done.stdout, done.stderr[-1500:])
    data = json.loads((tmp_path / "steady.json").read_text())
    assert data["summary"]["count"] > 0 and data["summary"]["errors"] == 0
    assert data["scenario"]["http_url"].startswith("127.0.0.1:")
    referee = data["referee"] or {}
    if "not found" in str(referee.get("failed", "")):
        pytest.skip(referee["failed"])
    assert done.returncode == 0 and referee["throughput_rps (perf_analyzer)"] > 0, referee


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("where", ["nothing listens", "the gRPC port"])
def test_an_http_url_that_is_no_http_endpoint_is_one_line_before_any_load(http_server, tmp_path, where):
    address = f"127.0.0.1:{_free_port()}" if where == "nothing listens" else http_server.grpc_url
    done = _loadtest("steady", "--url", http_server.grpc_url, "--protocol", "http", "--http-url", address,
                     "--duration", "1", "--out", str(tmp_path / "r"))
    print(done.stderr)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--http-url {address}: no HTTP endpoint answers there" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_a_refused_request_over_http_is_our_typed_error_and_the_others_succeed(http_server, tmp_path):
    assert_wrong_shape_fails_alone(tmp_path, http_server.grpc_url, _address(http_server))


def test_an_http_url_of_another_server_is_refused_before_any_load(server, http_server, tmp_path):
    """--url names one server, --http-url another one serving the same model: the load would go to a
    server whose statistics the report does not read. Refused in one line."""
    done = _loadtest("steady", "--url", server.grpc_url, "--protocol", "http", "--http-url",
                     _address(http_server), "--duration", "1", "--out", str(tmp_path / "r"))
    print(done.stderr)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--http-url {_address(http_server)} is not the server at {server.grpc_url}" in done.stderr
    assert not (tmp_path / "r").exists()


def test_a_body_over_what_tritons_http_endpoint_survives_is_refused(http_server, monkeypatch):
    """Triton 2.51's HTTP endpoint crashes on huge bodies: such a load is refused, naming gRPC instead
    (the limit is lowered here so that a small request crosses it)."""
    from tritonstack.loadtest.preflight import preflight
    from tritonstack.loadtest.scenario import Scenario
    from tritonstack.serve import limits

    from tritonstack.errors import ConfigError

    monkeypatch.setattr(limits, "HTTP_SAFE_BODY_BYTES", 100)
    with pytest.raises(ConfigError, match=r"over the 0 MiB that Triton 2.51's HTTP endpoint takes .*\(drop "
                       r"--protocol http\)"):
        preflight(Scenario(http_url=_address(http_server)), http_server.grpc_url)
    assert http_server.alive

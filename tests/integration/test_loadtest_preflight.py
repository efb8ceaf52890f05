"""Preflight against a real server reads the limits the converter writes into config.pbtxt
(`max_input_dims`) and refuses inputs above them in one line, before any request is sent."""

import os
import shutil
import subprocess
import sys

import pytest
from tritonstack.loadtest.preflight import preflight
from tritonstack.loadtest.scenario import Scenario

from tritonstack.errors import ConfigError


@pytest.fixture(scope="module")
def limited(repository, tmp_path_factory):
    """digits_mlp served with `max_input_dims` {"features": [32]}: its 64 features are over the limit."""
    from tritonstack.serve import EmbeddedServer, ServerConfig

    from tritonstack.model_config import read_config, write_config

    copy = tmp_path_factory.mktemp("limited") / "repo"
    shutil.copytree(repository, copy)
    copy.chmod(0o755)
    path = copy / "digits_mlp" / "config.pbtxt"
    config = read_config(path)
    config.parameters["max_input_dims"].string_value = '{"features": [32]}'
    del config.model_warmup[:]  # the native backend enforces the limit: its 64-wide warm-up would fail the load
    write_config(config, path)
    from tritonstack.client import TritonClient

    with EmbeddedServer(ServerConfig(repository=copy, supervise=False, drift_gauges=False)) as server:
        with TritonClient(server.grpc_url) as client:
            client.wait_until_ready(timeout_s=120, model="digits_mlp")
        yield server


def _successes(url: str) -> int:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    try:
        stats = client.get_inference_statistics("digits_mlp", as_json=True, client_timeout=10)
    finally:
        client.close()
    return sum(int(m["inference_stats"]["success"].get("count", 0)) for m in stats.get("model_stats", []))


def test_inputs_above_the_configs_maxima_are_refused_before_any_load(limited, tmp_path):
    with pytest.raises(ConfigError, match=r"dims \(64,\) \(its declared dims\); model 'digits_mlp' accepts at most \(32,\)"):
        preflight(Scenario(model="digits_mlp"), limited.grpc_url)
    before = _successes(limited.grpc_url)
    done = subprocess.run(
        [sys.executable, "-m", "tritonstack", "loadtest", "steady", "--url", limited.grpc_url, "--duration", "2",
         "--out", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    print(f"exit {done.returncode}: {lines}")
    assert done.returncode == 2 and len(lines) == 1 and "accepts at most (32,)" in lines[0]
    assert _successes(limited.grpc_url) == before and not (tmp_path / "r").exists()

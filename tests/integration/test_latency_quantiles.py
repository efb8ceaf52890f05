"""Triton's latency summaries: on by default (the p99 alert reads them), off with
`ServerConfig(latency_quantiles=False)` / `serve --no-latency-quantiles`, where they cost ~20% of req/s
for a tiny model (README, Benchmarks). Both checked on the real server's /metrics."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import numpy as np
from tritonstack.client import TritonClient
from tritonstack.serve import EmbeddedServer, ServerConfig

SUMMARY = "nv_inference_request_summary_us"


def _metrics_after_one_request(server: EmbeddedServer) -> str:
    with TritonClient(server.grpc_url) as client:
        client.infer("digits_mlp", {"features": np.zeros((1, 64), np.float32)})
    with urllib.request.urlopen(server.metrics_url, timeout=10) as response:
        return response.read().decode()


def test_the_default_server_publishes_latency_quantiles(server) -> None:  # noqa: ANN001
    text = _metrics_after_one_request(server)
    assert f'{SUMMARY}{{model="digits_mlp",version="1",quantile="0.99"}}' in text


def test_no_latency_quantiles_leaves_them_out_and_keeps_the_counters(repository: Path) -> None:
    config = ServerConfig(repository=repository, ort_threads=1, latency_quantiles=False)
    with EmbeddedServer(config) as quiet:
        text = _metrics_after_one_request(quiet)
    assert SUMMARY not in text
    success = re.search(r'^nv_inference_request_success\{model="digits_mlp",version="1"\} (\d+)', text, re.M)
    assert success and int(success.group(1)) >= 1

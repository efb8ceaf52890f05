"""`tritonstack demo`: build (if needed), serve, query over gRPC, report, stop."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

__all__ = ["register"]


def demo(
    repository: Annotated[Path, typer.Option(help="Model repository.")] = Path("model_repository"),
    requests: Annotated[int, typer.Option(
        help="Requests for the throughput line.", min=1, max=100000)] = 2000,
) -> None:
    """End to end on digits_mlp: real server, real gRPC requests, accuracy and latency."""
    from tritonstack.cli import console
    from tritonstack.client import TritonClient
    from tritonstack.convert.reference import build_all, digits_split
    from tritonstack.serve import EmbeddedServer, ServerConfig

    if not (repository / "digits_mlp" / "config.pbtxt").exists():
        with console.status("building digits_mlp..."):
            build_all(repository, Path("build"), ["digits_mlp"])
    _, x_test, _, y_test = digits_split()
    with console.status("starting tritonserver..."):
        server = EmbeddedServer(ServerConfig(repository=repository)).start()
    with server, TritonClient(server.grpc_url) as client:
        console.print(f"Triton {server.grpc_url} (gRPC), models: "
                      + ", ".join(f"{s['name']}:{s['state']}" for s in server.model_states()))
        probabilities = client.infer("digits_mlp", x_test)["probabilities"]
        predictions = probabilities.argmax(axis=1)
        console.print(f"first predictions {predictions[:10].tolist()} (labels {y_test[:10].tolist()})")
        console.print(f"test accuracy over gRPC: {(predictions == y_test).mean():.4f} ({len(y_test)} images)")
        _latency_line(client, x_test, requests)


def _latency_line(client, x_test: np.ndarray, requests: int) -> None:  # noqa: ANN001
    from tritonstack.cli import console

    rows = [x_test[i % len(x_test)][None] for i in range(requests)]
    latencies = [_timed(client, row) for row in rows[: min(200, requests)]]
    start = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda row: client.infer("digits_mlp", row), rows))
    elapsed = time.perf_counter() - start
    p50, p99 = np.percentile(latencies, [50, 99]) * 1e3
    console.print(f"latency at concurrency 1: p50 {p50:.2f} ms, p99 {p99:.2f} ms; "
                  f"throughput at concurrency 16: {requests / elapsed:.0f} req/s ({requests} requests)")


def _timed(client, row: np.ndarray) -> float:  # noqa: ANN001
    start = time.perf_counter()
    client.infer("digits_mlp", row)
    return time.perf_counter() - start


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command()(demo)

"""The backbone, end to end against the real embedded tritonserver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
from tritonstack.convert.verify import run_onnx


def test_grpc_outputs_equal_in_process_onnxruntime(client, repository, digits_data) -> None:
    x_test, y_test = digits_data
    served = client.infer("digits_mlp", x_test)["probabilities"]
    local = run_onnx(repository / "digits_mlp" / "1" / "model.onnx", {"features": x_test})
    diff = float(np.abs(served - local["probabilities"]).max())
    print(f"max abs diff gRPC vs in-process ORT: {diff:.2e}")
    assert diff <= 1e-5
    assert (served.argmax(1) == y_test).mean() > 0.95


def _execution_stats(server) -> tuple[int, int]:  # noqa: ANN001
    raw = grpcclient.InferenceServerClient(server.grpc_url)
    stats = raw.get_inference_statistics("digits_mlp", as_json=True)["model_stats"][0]
    raw.close()
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


def test_dynamic_batching_under_concurrent_load(server, client, digits_data) -> None:
    """1,500 single-row requests, 256 in flight (asyncio client): the server, not the client, sets the
    pace, so the batcher finds several queued requests per execution (32 Python threads could not:
    the native backend answers a batch-1 request faster than they send the next, mean batch 1.5)."""
    import asyncio

    from tritonstack.client import AsyncTritonClient

    x_test, _ = digits_data
    before = _execution_stats(server)
    rows = [x_test[i % len(x_test)][None] for i in range(1500)]

    async def send_all() -> list:
        gate = asyncio.Semaphore(256)
        async with AsyncTritonClient(server.grpc_url) as aclient:
            async def one(row: np.ndarray) -> dict:
                async with gate:
                    return await aclient.infer("digits_mlp", row)

            return await asyncio.gather(*(one(row) for row in rows))

    answers = asyncio.run(send_all())
    assert len(answers) == len(rows) and all(a["probabilities"].shape == (1, 10) for a in answers)
    deadline = time.monotonic() + 10  # Triton updates its statistics just after responding
    while _execution_stats(server)[0] - before[0] < len(rows) and time.monotonic() < deadline:
        time.sleep(0.1)
    inferences, executions = (a - b for a, b in zip(_execution_stats(server), before, strict=True))
    print(f"inference_count {inferences}, execution_count {executions}, "
          f"mean batch {inferences / executions:.1f}")
    assert inferences == len(rows)
    assert executions * 2 <= inferences, "the dynamic batcher should have merged requests"


def _descendants(root: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += children
        frontier = children
    return found


def test_serve_sigterm_leaves_nothing_behind(repository: Path, tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "tritonstack", "serve", "--repository", str(repository), "--runner", "python",
           "--grpc-port", "0", "--http-port", "0", "--metrics-port", "0"]  # python: a stub must be left behind too
    proc = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "serving;" in line:
            break
    output = "".join(lines)
    assert "digits_mlp" in output and "READY" in output, output
    shm_prefix = f"tritonstack_{proc.pid}_"
    children = _descendants(proc.pid)
    assert len(children) >= 2, "expected tritonserver and its Python stub to run"
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output + rest
    assert "stopped" in [line.strip() for line in rest.splitlines()], rest  # a requested stop: no exit code
    time.sleep(0.2)
    assert [p for p in children if os.path.exists(f"/proc/{p}") and _alive(p)] == []
    assert not [f for f in os.listdir("/dev/shm") if f.startswith(shm_prefix)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"

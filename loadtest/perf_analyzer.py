"""Run perf_analyzer (from the tritonclient 2.51 wheel) as the referee and read its CSV.

    figures = run_perf_analyzer(PerfAnalyzerRun(url=url, model="digits_mlp", concurrency=32,
                                                shapes={"features": [64]}))
    figures["throughput_rps"], figures["p50_ms"], figures["p99_ms"]

perf_analyzer needs `libb64.so.0d` (Debian libb64-0d, `make sysdeps`) and `libcudart.so.12`
(the nvidia-cuda-runtime-cu12 wheel); both are put on its `LD_LIBRARY_PATH` here.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tritonstack.errors import LoadTestError

__all__ = ["PerfAnalyzerRun", "compare", "find_perf_analyzer", "parse_csv", "run_perf_analyzer"]


@dataclass(frozen=True, kw_only=True)
class PerfAnalyzerRun:
    """One perf_analyzer measurement over gRPC (or HTTP): closed loop at `concurrency`, or, with
    `request_rate`, its request-rate mode (which times each request from its actual send, not
    from its schedule: Triton issue #3113)."""

    url: str
    model: str
    concurrency: int = 32
    protocol: str = "grpc"  # grpc | http (then `url` is the HTTP endpoint's host:port)
    request_rate: float | None = None
    distribution: str = "poisson"  # request-rate mode: poisson | constant
    measurement_interval_ms: int = 2000
    stability_percent: int = 100
    max_trials: int = 10
    shapes: Mapping[str, Sequence[int]] = field(default_factory=dict)
    input_data: Mapping[str, Any] | None = None  # --input-data JSON (`input_data(rows)`); None: random data
    cpus: frozenset[int] | None = None
    timeout_s: float = 120.0


def find_perf_analyzer() -> Path:
    """$TRITONSTACK_PERF_ANALYZER if set, else the perf_analyzer next to this Python (tritonclient
    2.51 wheel), else the one on PATH."""
    chosen = os.environ.get("TRITONSTACK_PERF_ANALYZER")
    if chosen:
        if not os.access(chosen, os.X_OK):
            raise LoadTestError(f"TRITONSTACK_PERF_ANALYZER={chosen} is not an executable; fix or unset it")
        return Path(chosen)
    local = Path(sys.executable).parent / "perf_analyzer"
    found = local if local.exists() else shutil.which("perf_analyzer")
    if not found:
        raise LoadTestError(
            "perf_analyzer not found; install tritonclient==2.51.0 (its manylinux wheel "
            "ships the binary) in this environment"
        )
    return Path(found)


def _environment() -> dict[str, str]:
    import importlib.util

    env = dict(os.environ)
    spec = importlib.util.find_spec("nvidia")
    dirs = [Path(p) / "cuda_runtime" / "lib" for p in (spec.submodule_search_locations or [])] if spec else []
    libs = [str(d) for d in dirs if d.is_dir()]
    if not libs:
        raise LoadTestError("perf_analyzer needs libcudart.so.12; pip install nvidia-cuda-runtime-cu12")
    env["LD_LIBRARY_PATH"] = os.pathsep.join([*libs, env.get("LD_LIBRARY_PATH", "")]).rstrip(os.pathsep)
    return env


#: The most tensor elements handed to perf_analyzer as real input data (JSON); above, it sends random data.
MAX_INPUT_ELEMENTS = 1 << 21


def input_data(rows: Sequence[Mapping[str, np.ndarray]], *, batched: bool) -> dict[str, Any] | None:
    """perf_analyzer's --input-data JSON sending `rows` in turn (one request each, the batch axis left
    out when `batched`); None when they hold more than MAX_INPUT_ELEMENTS elements."""
    if not rows or sum(a.size for row in rows for a in row.values()) > MAX_INPUT_ELEMENTS:
        return None

    def entry(array: np.ndarray) -> dict[str, Any]:
        one = array[0] if batched else array
        if one.dtype == np.object_:
            content = [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in one.ravel()]
        else:
            content = one.ravel().tolist()
        return {"content": content, "shape": list(one.shape)}

    return {"data": [{name: entry(array) for name, array in row.items()} for row in rows]}


def _argv(run: PerfAnalyzerRun, csv_path: Path, input_path: Path | None = None) -> list[str]:
    argv = [
        str(find_perf_analyzer()),
        "-m",
        run.model,
        "-u",
        run.url,
        "-i",
        run.protocol,
        *(
            ["--request-rate-range", f"{run.request_rate:g}", "--request-distribution", run.distribution]
            if run.request_rate
            else ["--concurrency-range", str(run.concurrency)]
        ),
        "--measurement-interval",
        str(run.measurement_interval_ms),
        "-s",
        str(run.stability_percent),
        "-r",
        str(run.max_trials),
        "-f",
        str(csv_path),
    ]
    if input_path is not None:
        return [*argv, "--input-data", str(input_path)]  # its shapes are in the data
    for name, dims in run.shapes.items():
        argv += ["--shape", f"{name}:{','.join(str(d) for d in dims)}"]
    return argv


def parse_csv(text: str) -> dict[str, Any]:
    """The figures of perf_analyzer's `-f` CSV (first row): throughput, latencies, server split."""
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        raise LoadTestError("perf_analyzer wrote an empty CSV; see its output for the reason")
    row = rows[0]

    def us(key: str) -> float:
        return float(row.get(key) or 0)

    return {
        "concurrency": int(row["Concurrency"]) if "Concurrency" in row else None,
        "request_rate": float(row["Request Rate"]) if "Request Rate" in row else None,
        "throughput_rps": float(row["Inferences/Second"]),
        "p50_ms": us("p50 latency") / 1e3,
        "p90_ms": us("p90 latency") / 1e3,
        "p99_ms": us("p99 latency") / 1e3,
        "server_queue_us": us("Server Queue"),
        "server_compute_us": us("Server Compute Input")
        + us("Server Compute Infer")
        + us("Server Compute Output"),
    }


def run_perf_analyzer(run: PerfAnalyzerRun) -> dict[str, Any]:
    """Run perf_analyzer once; return its figures or raise LoadTestError with its last lines."""
    with tempfile.TemporaryDirectory(prefix="tritonstack-pa-") as tmp:
        csv_path, input_path = Path(tmp) / "pa.csv", None
        if run.input_data is not None:
            input_path = Path(tmp) / "input.json"
            input_path.write_text(json.dumps(run.input_data))
        cpus = run.cpus
        try:
            done = subprocess.run(  # noqa: S603 - our binary, our arguments
                _argv(run, csv_path, input_path),
                env=_environment(),
                capture_output=True,
                text=True,
                timeout=run.timeout_s,
                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
            )
        except subprocess.TimeoutExpired as exc:
            raise LoadTestError(f"perf_analyzer did not finish in {run.timeout_s:.0f} s") from exc
        if done.returncode != 0 or not csv_path.exists():
            lines = (done.stdout + done.stderr).strip().splitlines()
            last = lines[-1].strip() if lines else "no output"
            libraries = _environment().get("LD_LIBRARY_PATH", "")
            data = " (--input-data: a JSON file of the load's requests)" if input_path else ""
            raise LoadTestError(
                f"perf_analyzer failed (exit {done.returncode}): {last}; run it by hand with the same "
                f"arguments to see all of its output{data}: LD_LIBRARY_PATH={libraries} "
                f"{' '.join(_argv(run, Path('pa.csv'), input_path and Path('input.json')))}"
            )
        return parse_csv(csv_path.read_text())


def compare(
    ours: Mapping[str, Any], referee: Mapping[str, Any], *, tolerance: float = 0.15
) -> dict[str, Any]:
    """Side by side: throughput and p50 of ours vs perf_analyzer, and whether each is within tolerance."""
    out: dict[str, Any] = {}
    for key in ("throughput_rps", "p50_ms", "p99_ms"):
        a, b = ours.get(key), referee.get(key)
        ratio = a / b if a and b else None
        out[key] = {"ours": a, "perf_analyzer": b, "ratio": ratio}
        if key != "p99_ms":
            out[key]["within"] = ratio is not None and abs(ratio - 1) <= tolerance
    return out

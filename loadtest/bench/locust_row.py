"""L4: `tritonstack loadtest` with the Locust engine / perf_analyzer, same model, concurrency and server.

    l4(bench, row)   # row.value: the best Locust run's req/s / the best perf_analyzer run's req/s

Both sides run on the generator CPUs (`bench.split.generator`), the server on its own, as in W6.
The Locust side is the real command, `python -m tritonstack loadtest steady --url ... [--protocol http
--http-url ...] --workers N`, run over gRPC and over HTTP (the bench server opens both on loopback),
its figures read from the JSON report it writes. perf_analyzer runs over both protocols too, and the
ratio divides by its best: Locust over HTTP is never compared with a slower referee on the other
protocol. While each side runs, the CPU of the server tree and of the generator tree (this process's
children, the server left out) is sampled from /proc: over the Locust run's load window (its start-up
left out) and over the whole perf_analyzer run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tritonstack.loadtest.bench.context import Bench
from tritonstack.loadtest.cpu_use import TreeCpu
from tritonstack.loadtest.perf_analyzer import PerfAnalyzerRun, run_perf_analyzer

from tritonstack.errors import LoadTestError

if TYPE_CHECKING:
    from tritonstack.loadtest.bench.workloads import Row

__all__ = ["CONCURRENCY", "best_run", "l4"]

MLP = "digits_mlp"
CONCURRENCY = 32


def l4(bench: Bench, row: Row) -> None:
    """Req/s of `tritonstack loadtest steady` (Locust; best of gRPC and HTTP, and worker counts) / the
    best perf_analyzer run (gRPC and HTTP), digits_mlp at concurrency 32; per run, server and generator
    CPU use in the detail."""
    bench.require(MLP, "digits MLP")
    quick = bench.options.quick
    protocols = ("grpc", "http")
    referee = [_perf_analyzer(bench, protocol) for protocol in protocols]
    plan = (("grpc", 0), ("http", 0)) if quick else (("grpc", 0), ("http", 0), ("http", 1))
    runs = {f"{protocol}/{workers}": _locust(bench, protocol, workers) for protocol, workers in plan}
    if not quick:  # before and after: noise only ever slows a side down
        referee += [_perf_analyzer(bench, protocol) for protocol in protocols]
    best, pa = best_run(runs), max(referee, key=lambda r: r["throughput_rps"])
    row.value = runs[best]["throughput_rps"] / pa["throughput_rps"]
    row.detail = {
        "value_from": f"Locust over {best.replace('/', ' with --workers ')} (best of {sorted(runs)}) / "
        f"perf_analyzer over {pa['protocol']} (best of {len(referee)} runs, both protocols), concurrency "
        f"{CONCURRENCY}, both on the generator CPU {sorted(bench.split.generator)}",
        "locust_best": best,
        "locust": runs,
        "ratio_by_run": {key: round(run["throughput_rps"] / pa["throughput_rps"], 3)
                         for key, run in runs.items()},
        "perf_analyzer": pa,
        "perf_analyzer_runs_rps": {f"{r['protocol']} #{i}": round(r["throughput_rps"])
                                   for i, r in enumerate(referee)},
        "cpu_use_note": "CPU seconds per wall second (1.0 = one core busy) of the server tree and of the "
        "generator tree; near the generator's CPU count, the generator, not the server, is the limit",
        "protocol_note": "under gevent, gRPC's Python socket layer costs the Locust generator ~2.5x the CPU "
        "per request of Triton's HTTP endpoint with binary tensors (geventhttpclient)",
    }


def best_run(runs: dict[str, dict[str, Any]]) -> str:
    """The run whose throughput was highest with no failed request (any, if all failed)."""
    clean = {n: r for n, r in runs.items() if not r.get("errors")} or runs
    return max(clean, key=lambda n: clean[n]["throughput_rps"])


def _perf_analyzer(bench: Bench, protocol: str) -> dict[str, Any]:
    run = PerfAnalyzerRun(url=bench.http_address if protocol == "http" else bench.grpc_url, protocol=protocol,
                          model=MLP, concurrency=CONCURRENCY, shapes={"features": [64]},
                          cpus=bench.split.generator,
                          measurement_interval_ms=1000 if bench.options.quick else 2000)
    with TreeCpu(bench.cpu_sides(generator_in_process=False)) as meter:
        figures = run_perf_analyzer(run)
    return {**figures, "protocol": protocol, "cpu_use": meter.use(),
            "cpu_window": "the whole perf_analyzer run"}


def _loadtest_argv(bench: Bench, protocol: str, workers: int, duration_s: float, out: Path) -> list[str]:
    over = ["--protocol", "http", "--http-url", bench.http_address] if protocol == "http" else []
    return [sys.executable, "-m", "tritonstack", "loadtest", "steady", "--url", bench.grpc_url, *over,
            "--model", MLP, "--users", str(CONCURRENCY), "--duration", f"{duration_s:g}", "--workers",
            str(workers), "--out", str(out), "--max-error-rate", "100"]


def _locust(bench: Bench, protocol: str, workers: int) -> dict[str, Any]:
    """One `tritonstack loadtest` run with the Locust engine: its summary and both sides' CPU use."""
    duration_s = 5.0 if bench.options.quick else 10.0
    cpus = bench.split.generator
    with tempfile.TemporaryDirectory(prefix="tritonstack-l4-") as tmp:
        argv = _loadtest_argv(bench, protocol, workers, duration_s, Path(tmp))
        with TreeCpu(bench.cpu_sides(generator_in_process=False)) as meter:
            try:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 120,  # noqa: S603
                                      preexec_fn=lambda: os.sched_setaffinity(0, cpus))
            except subprocess.TimeoutExpired as exc:
                raise LoadTestError(f"tritonstack loadtest over {protocol} --workers {workers} did not "
                                    "finish") from exc
        reports = sorted(Path(tmp).glob("*.json"))
        if done.returncode != 0 or not reports:
            lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
            raise LoadTestError(f"tritonstack loadtest over {protocol} --workers {workers} failed (exit "
                                f"{done.returncode}): "
                                f"{lines[-1]}")
        summary = json.loads(reports[0].read_text())["summary"]
    window = summary.get("load_window_unix_s")
    keys = ("count", "errors", "throughput_rps", "p50_ms", "p99_ms", "generator_cpu_use",
            "generator_processes")
    return {**{k: summary.get(k) for k in keys}, "cpu_use": meter.use(tuple(window) if window else None),
            "cpu_window": "the load window of the report" if window else "the whole command"}

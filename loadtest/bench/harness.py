"""Run the workloads in one process on one server and produce the JSON document and table rows.

    document = run_bench(BenchOptions(quick=True), only=("W2", "W5"))
    document["workloads"]["W5"]["value"]

JSON schema: {"machine": {...}, "workloads": {"W1": {"value", "goal", "better", "unit", "title",
"detail"}, ...}}; a workload that could not run has value null and detail {"na": reason}.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from tritonstack.loadtest.bench.context import Bench, BenchOptions
from tritonstack.loadtest.bench.workloads import WORKLOADS, Row, Workload

from tritonstack.errors import LoadTestError

__all__ = ["format_value", "machine", "run_bench", "verdict"]

_LOGGER = logging.getLogger(__name__)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):  # noqa: SIM115
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(options: BenchOptions) -> dict[str, Any]:
    """What the numbers were measured on, and how the cores were split."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "tritonserver": "2.51.0 (nvidia-pytriton " + str(_version("nvidia-pytriton")) + ")",
        "onnxruntime": _version("onnxruntime"),
        "torch": _version("torch"),
        "tritonclient": _version("tritonclient"),
        "core_split": options.split.describe(),
        "quick": options.quick,
        "duration_s_per_point": options.duration_s,
        "load_average_start": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def _measure(bench: Bench, workload: Workload) -> Row:
    row = workload.empty()
    start = time.perf_counter()
    try:
        workload.measure(bench, row)
    except LoadTestError as exc:
        row.na = str(exc)
    except Exception as exc:  # noqa: BLE001 - one broken workload never hides the others
        _LOGGER.exception("workload %s failed", workload.key)
        row.na = f"failed: {type(exc).__name__}: {exc}"[:300]
    row.detail["seconds"] = round(time.perf_counter() - start, 1)
    return row


def _as_json(row: Row) -> dict[str, Any]:
    detail = {"na": row.na, **row.detail} if row.na else row.detail
    return {
        "title": row.title,
        "value": row.value,
        "goal": row.goal,
        "better": row.better,
        "unit": row.unit,
        "met": row.met,
        "detail": detail,
    }


def run_bench(
    options: BenchOptions, *, only: Sequence[str] | None = None, on_row: Callable[[Row], None] | None = None
) -> dict[str, Any]:
    """Start the bench server, measure the selected workloads in order, return the JSON document."""
    chosen = [w for w in WORKLOADS if not only or w.key in only or w.key.split("-")[0] in only]
    document: dict[str, Any] = {"machine": machine(options), "workloads": {}}
    started = time.perf_counter()
    with Bench(options) as bench:
        document["machine"]["models"] = bench.ready_models()
        document["machine"]["runner"] = "native for every ONNX model (drift gauges off: see context.py)"
        for workload in chosen:
            row = _measure(bench, workload)
            document["workloads"][row.key] = _as_json(row)
            if on_row is not None:
                on_row(row)
    document["machine"]["load_average_end"] = os.getloadavg()
    document["machine"]["bench_seconds"] = round(time.perf_counter() - started, 1)  # builds included
    return document


def format_value(value: float | None, unit: str) -> str:
    """3.21x, 0.84 ms, 7.9 s."""
    if value is None:
        return "n/a"
    return f"{value:.2f}x" if unit == "x" else f"{value:.2f} {unit}"


def verdict(row: Row) -> str:
    """'met', 'MISSED' or 'n/a (reason)'."""
    if row.met is None:
        return f"n/a ({row.na})" if row.na else "n/a"
    return "met" if row.met else "MISSED"

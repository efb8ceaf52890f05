"""`tritonstack bench` W9/W10 on the session repository (digits_mlp): both runners measured in one run.

W9 reads the RSS of two real servers (native default, `--runner python`), W10 sends load to both; the
goal values are not asserted (a loaded 2-core box), only that each side was really measured.
"""

import json

from tritonstack.loadtest.bench.context import NATIVE_MLP, BenchOptions
from tritonstack.loadtest.bench.harness import run_bench
from tritonstack.loadtest.pinning import CoreSplit


def test_w9_w10_measure_both_runners(repository, tmp_path):
    options = BenchOptions(build_dir=tmp_path / "bench", repository=repository, quick=True,
                           split=CoreSplit.default())
    document = run_bench(options, only=("W9", "W10"))
    rows = document["workloads"]
    print(json.dumps(rows, indent=1, default=str)[:4000])
    assert list(rows) == ["W9", "W10"]
    w9, w10 = rows["W9"], rows["W10"]
    assert w9["value"] is not None and 0 < w9["value"] < 10, w9
    native, python = w9["detail"]["native"], w9["detail"]["python_runner"]
    assert native["total_mib"] > 0 and python["total_mib"] > 0
    # the Python-runner server serves digits_mlp from a stub: tritonserver and at least one child
    assert python["processes"] >= 2 and "tritonserver" in python["by_name_mib"]
    assert w9["detail"]["start_to_ready_s"]["python_runner"] > 0 and w9["detail"]["start_to_ready_s"]["native"] > 0
    assert 0 < w9["detail"]["bench_server_drift_gauges_off"]["ratio"] < 10
    assert w10["value"] is not None and w10["value"] > 0, w10
    assert w10["detail"]["native"]["model"] == NATIVE_MLP and w10["detail"]["python_runner"]["model"] == "digits_mlp"
    assert w10["detail"]["native"]["throughput_rps"] > 0 and w10["detail"]["python_runner"]["throughput_rps"] > 0
    print(f"\nW9 {w9['value']:.2f} ({native['total_mib']} vs {python['total_mib']} MiB), "
          f"W10 {w10['value']:.2f}x ({w10['detail']['value_from']})")

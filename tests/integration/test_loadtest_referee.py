"""perf_analyzer (tritonclient 2.51) and our generator on the same model and concurrency, side by side."""

import pytest
from tritonstack.loadtest.asyncio_runner import run_asyncio
from tritonstack.loadtest.perf_analyzer import PerfAnalyzerRun, compare, run_perf_analyzer
from tritonstack.loadtest.scenario import Scenario

from tritonstack.errors import LoadTestError


def test_perf_analyzer_and_ours_side_by_side(server):
    ours = run_asyncio(Scenario(kind="steady", users=16, duration_s=2.0), server.grpc_url).summary
    try:
        referee = run_perf_analyzer(
            PerfAnalyzerRun(
                url=server.grpc_url,
                model="digits_mlp",
                concurrency=16,
                shapes={"features": [64]},
                measurement_interval_ms=1000,
            )
        )
    except LoadTestError as exc:  # libb64 / libcudart missing on this host
        pytest.skip(str(exc))
    side = compare(ours, referee)
    for key, row in side.items():
        print(
            f"{key}: ours {row['ours']:.2f}  perf_analyzer {row['perf_analyzer']:.2f}  ratio {row['ratio']:.2f}"
            f"  within 15%: {row.get('within', '-')}"
        )
    # Printed, not asserted within 15 %: the machine is shared and both run for seconds only.
    assert referee["throughput_rps"] > 0 and ours["throughput_rps"] > 0
    # Wide: digits_mlp here runs on the Python runner (drift reference), which shows recurring ~0.5 s
    # stalls under load (open, issue 13 note); perf_analyzer's stability window magnifies them.
    assert 0.05 < side["throughput_rps"]["ratio"] < 20

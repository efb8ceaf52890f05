"""The HTML report of a real run, rendered by headless Chromium: the six plots are drawn."""

import re
import shutil
import subprocess

import pytest
from tritonstack.loadtest.asyncio_runner import run_asyncio
from tritonstack.loadtest.report import write_report
from tritonstack.loadtest.scenario import Scenario

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="chromium is not installed (make sysdeps)")
def test_chromium_renders_the_plots(server, tmp_path):
    result = run_asyncio(Scenario(kind="steady", users=4, duration_s=2.0), server.grpc_url)
    paths = write_report(result, tmp_path / "report")
    url = paths["html"].resolve().as_uri()
    base = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600"]
    dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=60).stdout
    assert len(re.findall(r'<svg class="chart"', dom)) == 6
    assert len(re.findall(r"<polyline", dom)) >= 5  # p50/p90/p99, error rate, queue/compute, batch
    assert len(re.findall(r'<circle class="point"', dom)) >= 2  # latency against throughput
    shot = tmp_path / "report.png"
    subprocess.run([*base, f"--screenshot={shot}", url], capture_output=True, timeout=60)
    assert shot.exists() and shot.stat().st_size > 20_000

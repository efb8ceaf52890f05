"""Report files: JSON and CSV parse, the HTML page is self-contained and has the six plots."""

import csv
import json
import re

import pytest
from tritonstack.loadtest.report import RunResult, render_html, write_report
from tritonstack.loadtest.stats import Recorder
from tritonstack.loadtest.svg import Series, line_chart, nice_ticks


def _result():
    recorder = Recorder()
    for i in range(400):
        t = i * 0.01
        recorder.add(scheduled_s=t, start_s=t, end_s=t + 0.002 + (i % 7) * 1e-4, ok=i % 50 != 0, error="X")
    result = RunResult.build(
        name="unit",
        scenario={"kind": "steady", "users": 4},
        samples=recorder.frame(),
        origin_s=0.0,
        duration_s=4.0,
    )
    result.server = [
        {
            "t_s": t,
            "requests": 100,
            "failures": 0,
            "avg_queue_us": 50.0 + t,
            "avg_compute_us": 300.0,
            "avg_batch": 2.5,
        }
        for t in (1, 2, 3, 4)
    ]
    result.server_total = result.server[-1]
    return result


def test_report_files_parse(tmp_path):
    paths = write_report(_result(), tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["summary"]["count"] == 400 and data["summary"]["errors"] == 8
    rows = list(csv.DictReader(paths["csv"].open()))
    assert len(rows) == len(data["windows"]) > 3 and {"p50_ms", "p90_ms", "p99_ms", "error_rate"} <= set(
        rows[0]
    )
    assert len(list(csv.DictReader(paths["server_csv"].open()))) == 4


def test_html_is_self_contained_with_six_plots():
    html = render_html(_result())
    assert html.count("<svg") == 6
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in html and "https://" not in html
    for title in (
        "Offered load: users over time",
        "Latency percentiles over time",
        "Latency against throughput",
        "Error rate",
        "queue vs compute",
        "average batch size",
    ):
        assert title in html


def test_chart_without_data_says_so():
    svg = line_chart("empty", [Series("p50", [], [], "#000")], x_label="t", y_label="ms")
    assert "no data" in svg


@pytest.mark.parametrize(("low", "high"), [(0, 1), (0, 7.3), (3, 250), (0, 0), (1e3, 8e3)])
def test_ticks_cover_the_range(low, high):
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high and len(ticks) >= 2


def test_time_charts_share_one_axis_and_a_spike_is_shaded():
    result = _result()
    result.scenario = {
        "kind": "spike",
        "users": 2,
        "spike_users": 16,
        "spike_at_s": 1.0,
        "spike_s": 1.5,
        "duration_s": 4.0,
    }
    result.server.append({**result.server[-1], "t_s": 4.07})  # the final poll, just after the run
    result.server.append({**result.server[-1], "t_s": 4.5, "requests": 0})  # an empty interval
    html = render_html(result)
    charts = html.split('<svg class="chart"')[1:]
    time_charts = [c for c in charts if "time (s)" in c]
    assert len(time_charts) == 5  # offered load, latency, errors, queue/compute, batch
    for chart in time_charts:
        ticks = re.findall(r'y="270" text-anchor="middle">([^<]+)</text>', chart)  # x-axis labels
        assert ticks[0] == "0" and ticks[-1] == "4", ticks  # 0 to the run's end, client and server alike
        assert chart.count('class="band"') == 1 and "spike: 16 users" in chart
    assert "users asked" in time_charts[0]

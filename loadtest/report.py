"""A load-test result and its three renderings: JSON, CSV, one self-contained HTML page.

    result = RunResult.build(name="steady", scenario={...}, samples=recorder.frame(),
                             origin_s=run.origin_s, duration_s=run.duration_s, server=poller)
    paths = write_report(result, Path("reports/steady"))   # {"json", "csv", "server_csv", "html"}

The HTML page inlines its SVG plots and CSS: it opens offline, from a file, in any browser. Every
time chart (client and server) spans the run, 0 to its duration, on the same axis; a spike's window
is shaded; the offered load (users, or scheduled requests per second in open loop) is plotted.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from tritonstack.loadtest.scenario import ramp_users_at, spike_users_at
from tritonstack.loadtest.server_stats import ServerStatsPoller
from tritonstack.loadtest.stats import Samples, summarize, window_width, windows
from tritonstack.loadtest.svg import Band, Series, line_chart, titled

__all__ = ["RunResult", "add_generator_cpu", "generator_capacity", "generator_cpu_text", "referee_meaning",
           "render_html", "schedule_note", "server_notes", "shared_server_note", "write_report"]

COLORS = {
    "p50": "#1f77b4",
    "p90": "#ff7f0e",
    "p99": "#d62728",
    "queue": "#9467bd",
    "compute": "#2ca02c",
    "batch": "#8c564b",
    "errors": "#d62728",
    "users": "#17becf",
    "offered": "#7f7f7f",
    "done": "#2ca02c",
}


@dataclass
class RunResult:
    """Everything a report shows; plain data, JSON-serialisable."""

    name: str
    scenario: dict[str, Any]
    summary: dict[str, Any]
    windows: list[dict[str, Any]]
    server: list[dict[str, Any]] = field(default_factory=list)
    server_total: dict[str, Any] | None = None
    referee: dict[str, Any] | None = None
    load: list[dict[str, Any]] = field(default_factory=list)  # [{"t_s", "users"}] sampled while running
    notes: list[str] = field(default_factory=list)
    interrupted_after_s: float | None = None  # set when Ctrl-C/SIGTERM ended the load early
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S %Z"))

    @classmethod
    def build(
        cls,
        *,
        name: str,
        scenario: dict[str, Any],
        samples: Samples,
        origin_s: float,
        duration_s: float,
        server: ServerStatsPoller | None = None,
    ) -> RunResult:
        """Summarise samples (failures included) and attach the server's timeline."""
        width = window_width(duration_s)
        result = cls(
            name=name,
            scenario=dict(scenario),
            summary=summarize(samples, duration_s=duration_s),
            windows=windows(samples, origin_s=origin_s, width_s=width, duration_s=duration_s),
        )
        _add_offered(result.windows, samples, origin_s=origin_s, width_s=width)
        result.summary["window_s"] = width
        if server is not None:
            result.server = server.timeline(origin_s, until_s=duration_s)
            result.server_total = server.total()
            if result.server_total is not None and server.restarts:
                result.server_total["partial"] = True
            result.notes.extend(server_notes(server, result.summary, origin_s=origin_s, samples=samples))
            shared = shared_server_note(result.server_total, int(result.summary.get("count", 0)))
            if shared:
                result.notes.append(shared)
        return result

    def mark_interrupted(self, after_s: float, signal_name: str = "SIGINT") -> None:
        """Record that `signal_name` ended the load: the report is partial. The time stated is the load's
        measured span (the summary's `duration_s`) when there is one, else `after_s`."""
        measured = self.summary.get("duration_s")
        after_s = float(measured) if measured else after_s
        self.interrupted_after_s = round(after_s, 1)
        self.notes.append(
            f"interrupted by {signal_name} after {after_s:.1f} s of load: a partial run, every figure covers "
            "only what was measured until then"
        )

    def mark_referee_interrupted(self, signal_name: str = "SIGINT") -> None:
        """Record that `signal_name` came after the load, during the referee: the load is complete, the
        referee's figures are missing or partial."""
        self.summary["referee_interrupted_by"] = signal_name
        self.notes.append(
            f"interrupted by {signal_name} during the referee (perf_analyzer), after the load had run its "
            "full duration: the load's figures are complete, the referee's are missing or partial"
        )

    def fail_referee(self, reason: str) -> None:
        """Record that the referee (perf_analyzer) run failed, and why; the load test's figures stand."""
        self.referee = {"failed": reason}
        self.notes.append(f"the referee (perf_analyzer) failed: {reason}")

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)


def server_notes(
    server: ServerStatsPoller, summary: dict[str, Any], *, origin_s: float, samples: Samples | None = None
) -> list[str]:
    """Notes on the server's side of a run. When it stopped answering (it died, or its port closed):
    at what second, and the failed requests from then on attributed to it (also in `summary`:
    `server_stopped_answering_s`, `failures_after_server_stopped`)."""
    if server.restarts:
        return [_restart_note(server, summary, origin_s)]
    if not server.stopped_answering or server.down_since_s is None:
        came_back = _came_back_note(samples, summary, origin_s) if samples is not None else None
        return [note for note in (server.error, came_back) if note]
    last_ok_s = server.snapshots[-1].t_s
    at_s, ok_s = max(server.down_since_s - origin_s, 0.0), max(last_ok_s - origin_s, 0.0)
    summary["server_stopped_answering_s"] = round(at_s, 1)
    errors = int(summary.get("errors") or 0)
    if samples is not None and len(samples):
        after = int(((samples.end_s >= last_ok_s) & ~samples.ok).sum())
        summary["failures_after_server_stopped"] = after
        blame = (f"{after} of the {errors} failed requests ended after its last answer: they are the server "
                 "going away, not the model failing") if errors else (
                 "no request failed (those still in flight when the run ended are not counted)")
    else:
        blame = f"the failed requests ({errors}) from then on are the server going away, not the model's"
    reason = (server.error or "").removeprefix("statistics unavailable: ")
    return [f"the server stopped answering {at_s:.1f} s into the run (last answer at {ok_s:.1f} s; "
            f"then: {reason}): {blame}"]


def _restart_note(server: ServerStatsPoller, summary: dict[str, Any], origin_s: float) -> str:
    """The server's statistics went back to zero mid-run (it restarted, e.g. `serve`'s watchdog after a
    crash): when, and that the server totals miss what the old server answered after its last poll."""
    spans = [(max(a - origin_s, 0.0), max(b - origin_s, 0.0)) for a, b in server.restarts]
    summary["server_restarted_s"] = [round(b, 1) for _, b in spans]
    when = ", ".join(f"~{(a + b) / 2:.1f} s (between {a:.1f} and {b:.1f} s)" for a, b in spans)
    return (f"the server restarted at {when} into the run (its statistics started again from zero): server "
            "totals add up what each server counted, less what the old one answered after its last poll, so "
            "they are partial (low); the failed requests around then are the restart, not the model")


#: failures that mean the server could not be reached (connection refused or reset, or it was stopping)
_UNREACHABLE = ("ServerUnavailableError", "ServerStoppingError")


def _came_back_note(samples: Samples, summary: dict[str, Any], origin_s: float) -> str | None:
    """Requests failed because the server could not be reached, and later ones succeeded, while its
    statistics never went back (a restart before the first poll after it, or between two polls of a
    fresh server whose counters caught up): name it, so those failures are not read as the model's."""
    if not len(samples):
        return None
    unreachable = np.isin(np.asarray(samples.errors, dtype=object), _UNREACHABLE) & ~samples.ok
    if not unreachable.any():
        return None
    last_s = float(samples.end_s[unreachable].max())
    if not (samples.ok & (samples.start_s > last_s)).any():
        return None
    first_s = float(samples.end_s[unreachable].min())
    span = (max(first_s - origin_s, 0.0), max(last_s - origin_s, 0.0))
    summary["server_unreachable_s"] = [round(t, 1) for t in span]
    return (f"{int(unreachable.sum())} requests failed because the server could not be reached (connection "
            f"refused, reset or stopping) between {span[0]:.1f} and {span[1]:.1f} s, and it answered again "
            "after: it went away and came back (a restart, e.g. `serve`'s watchdog after a crash, or a "
            "network cut); those failures are that, not the model, and the server totals may miss what a "
            "restarted server answered before its first poll")


def _add_offered(rows: list[dict[str, Any]], samples: Samples, *, origin_s: float, width_s: float) -> None:
    """Each window's offered load: requests scheduled in it, per second (open loop: the schedule)."""
    if not rows:
        return
    index = np.floor((samples.scheduled_s - origin_s) / width_s).astype(int)
    counts = np.bincount(index[(index >= 0) & (index < len(rows))], minlength=len(rows))
    for row, count in zip(rows, counts, strict=False):
        row["offered_rps"] = float(count) / width_s


def add_generator_cpu(summary: dict[str, Any], use: float, *, processes: int,
                      window_unix_s: tuple[float, float] | None = None) -> None:
    """Record the load generator's own CPU use (CPU seconds per wall second over the load) in a summary,
    with the CPUs it may run on, so that a saturated generator shows in the report."""
    import os

    summary["generator_cpu_use"] = round(use, 2)
    summary["generator_cpus"] = len(os.sched_getaffinity(0))
    summary["generator_processes"] = processes
    if window_unix_s is not None:
        summary["load_window_unix_s"] = [round(t, 3) for t in window_unix_s]


def busy_generator_note(summary: dict[str, Any]) -> str | None:
    """A note when the load generator used ≥ 90% of the CPU its processes can use: it, not the server,
    may be what limits the throughput, and (open loop) the latencies include its own queueing."""
    capacity, use = generator_capacity(summary), summary.get("generator_cpu_use")
    if not capacity or use is None or use < 0.9 * capacity:
        return None
    processes = _count(summary.get("generator_processes") or 1, "process")
    return (f"the load generator was busy ({use:.2f} CPU of the {_count(capacity, 'core')} its {processes} "
            "can use): it may be what limits the throughput, and the latencies include its own queueing; "
            "give it more cores (--workers) or a transport that costs less per request (--protocol http)")


def generator_capacity(summary: dict[str, Any]) -> int | None:
    """CPUs the generator can keep busy: one per process (each Python process runs on about one core),
    at most the CPUs it may run on; None when not measured."""
    cpus = summary.get("generator_cpus")
    return min(cpus, summary.get("generator_processes") or 1) if cpus else None


def _count(n: int, noun: str) -> str:
    """'1 core', '2 cores'."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def generator_cpu_text(summary: dict[str, Any]) -> str:
    """'0.72 CPU: 72 % of the 1 core a 1-process generator can use (2 CPUs allowed)', or 'not measured'."""
    use, capacity = summary.get("generator_cpu_use"), generator_capacity(summary)
    if use is None or not capacity:
        return "not measured"
    processes = summary.get("generator_processes") or 1
    return (f"{use:.2f} CPU: {100 * use / capacity:.0f} % of the {_count(capacity, 'core')} a "
            f"{processes}-process generator can use ({_count(summary['generator_cpus'], 'CPU')} allowed)")


def referee_meaning(summary: dict[str, Any], throughput_ratio: float | None, p50_ratio: float | None = None,
                    *, tolerance: float = 0.15) -> str:
    """One line: what a gap between this engine and perf_analyzer (a C++ client) means, given the load
    generator's own CPU use. The engines agree only when throughput and p50 are both within `tolerance`."""
    if throughput_ratio is None:
        return "no throughput ratio: one side completed no request"
    if throughput_ratio > 1 + tolerance:
        return (f"this engine reached {throughput_ratio:.2f}x of perf_analyzer's throughput: the two did not "
                "see the same load (a rate perf_analyzer could not hold, or a server that changed between "
                "the runs); run again before reading either")
    if throughput_ratio >= 1 - tolerance:
        if p50_ratio is None or abs(p50_ratio - 1) <= tolerance:
            return f"the engines agree ({throughput_ratio:.2f}x perf_analyzer): the figures are the server's"
        whose = ("this engine's include time in its own client (and its queue when busy): read "
                 "perf_analyzer's p50 as the server's" if p50_ratio > 1 else
                 "perf_analyzer's include more client time at this load: read this engine's p50")
        return (f"the throughputs agree ({throughput_ratio:.2f}x perf_analyzer) but the median latencies do "
                f"not ({p50_ratio:.2f}x): {whose}")
    use, capacity = summary.get("generator_cpu_use"), generator_capacity(summary)
    head = f"this engine reached {throughput_ratio:.2f}x of perf_analyzer (a C++ client) on the same server; "
    if use is None or not capacity:
        return head + "the generator's CPU use was not measured, so the gap may be the generator's"
    if use >= 0.85 * capacity:
        return head + (f"with the generator at {generator_cpu_text(summary)}, the generator, not the server, "
                       "is the limit: read perf_analyzer's figure as the server's, or give the generator "
                       "more cores (--workers)")
    return head + (f"the generator had CPU to spare ({generator_cpu_text(summary)}): look at the client "
                   "path and at the server's queue and compute times")


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    keys = list(rows[0]) if rows else ["t_s"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def write_report(result: RunResult, out_dir: Path) -> dict[str, Path]:
    """Write `<name>.json`, `<name>_windows.csv`, `<name>_server.csv` and `<name>.html`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / f"{result.name}.json",
        "csv": out_dir / f"{result.name}_windows.csv",
        "server_csv": out_dir / f"{result.name}_server.csv",
        "html": out_dir / f"{result.name}.html",
    }
    paths["json"].write_text(json.dumps(result.as_dict(), indent=2, default=str), encoding="utf-8")
    _write_csv(result.windows, paths["csv"])
    _write_csv(result.server, paths["server_csv"])
    paths["html"].write_text(render_html(result), encoding="utf-8")
    return paths


def _duration_s(result: RunResult) -> float:
    """The end of the shared time axis: the last client window's end (the run's windows tile it)."""
    if result.windows:
        return float(max(r["t_s"] for r in result.windows))
    return float(result.summary.get("duration_s") or result.scenario.get("duration_s") or 1.0)


def _bands(result: RunResult) -> list[Band]:
    sc = result.scenario
    if sc.get("kind") != "spike" or "spike_at_s" not in sc:
        return []
    start = float(sc["spike_at_s"])
    return [Band(start, start + float(sc["spike_s"]), f"spike: {sc.get('spike_users')} users")]


def _planned_users(result: RunResult, ts: list[float]) -> list[float | None]:
    """Users the scenario asks for at each time (closed loop)."""
    sc, duration = result.scenario, float(result.scenario.get("duration_s", 0) or 0)
    if sc.get("kind") == "ramp":
        cap = sc.get("users")  # absent from reports written before the ramp was capped at --users
        step = {"step_users": sc["step_users"], "step_s": sc["step_s"]}
        return [ramp_users_at(t - 1e-9, users=cap, duration_s=duration, **step) for t in ts]
    if sc.get("kind") == "spike":
        keys = ("users", "spike_users", "spike_at_s", "spike_s")
        return [spike_users_at(t - 1e-9, duration_s=duration, **{k: sc[k] for k in keys}) for t in ts]
    return [sc.get("users") for _ in ts]


def _offered_chart(result: RunResult, **axis: Any) -> str:
    w = result.windows
    ts = [r["t_s"] for r in w]
    if result.scenario.get("kind") == "open":
        series = [
            Series("scheduled req/s", ts, [r.get("offered_rps") for r in w], COLORS["offered"]),
            Series("completed req/s", ts, [r["throughput_rps"] for r in w], COLORS["done"]),
        ]
        return line_chart(
            "Offered load: scheduled vs completed requests",
            series,
            x_label="time (s)",
            y_label="requests/s",
            **axis,
        )
    grid = [round(i * 0.1, 3) for i in range(int(_duration_s(result) / 0.1) + 1)]
    series = [Series("users asked", grid, _planned_users(result, grid), COLORS["offered"])]
    if result.load:
        series.append(
            Series(
                "users running",
                [p["t_s"] for p in result.load],
                [p["users"] for p in result.load],
                COLORS["users"],
            )
        )
    return line_chart("Offered load: users over time", series, x_label="time (s)", y_label="users", **axis)


def _charts(result: RunResult) -> list[str]:
    w, s = result.windows, result.server
    axis = {"x_range": (0.0, _duration_s(result)), "bands": _bands(result)}
    ts = [r["t_s"] for r in w]
    lat = [Series(p, ts, [r[f"{p}_ms"] for r in w], COLORS[p]) for p in ("p50", "p90", "p99")]
    tput = [r["throughput_rps"] for r in w]
    vs = [Series(p, tput, [r[f"{p}_ms"] for r in w], COLORS[p], dots=True) for p in ("p50", "p99")]
    errors = [Series("error rate %", ts, [100 * r["error_rate"] for r in w], COLORS["errors"])]
    st = [min(r["t_s"], axis["x_range"][1]) for r in s]  # the last poll ends with the run

    def served(key: str) -> list[float | None]:  # an interval without requests has no average
        return [r[key] if r["requests"] else None for r in s]

    queue = [
        Series("queue", st, served("avg_queue_us"), COLORS["queue"]),
        Series("compute", st, served("avg_compute_us"), COLORS["compute"]),
    ]
    batch = [Series("avg batch", st, served("avg_batch"), COLORS["batch"])]
    return [
        _offered_chart(result, **axis),
        line_chart(
            "Latency percentiles over time (failures included)",
            lat,
            x_label="time (s)",
            y_label="latency (ms)",
            **axis,
        ),
        line_chart(
            "Latency against throughput (one dot per window)",
            vs,
            x_label="throughput (req/s)",
            y_label="latency (ms)",
        ),
        line_chart("Error rate over time", errors, x_label="time (s)", y_label="errors (%)", **axis),
        line_chart(
            "Server: queue vs compute time per request",
            queue,
            x_label="time (s)",
            y_label="time (µs)",
            **axis,
        ),
        line_chart(
            "Server: average batch size formed", batch, x_label="time (s)", y_label="requests/batch", **axis
        ),
    ]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return escape(str(value))


def _table(rows: dict[str, Any]) -> str:
    body = "".join(f"<tr><th>{escape(str(k))}</th><td>{_cell(v)}</td></tr>" for k, v in rows.items())
    return f"<table>{body}</table>"


def _headline(result: RunResult) -> dict[str, Any]:
    s, total = result.summary, result.server_total or {}
    return {
        "requests": s["count"],
        "measured duration (s)": s.get("duration_s", "n/a"),
        "errors": f"{s['errors']} ({100 * s['error_rate']:.2f} %)",
        "throughput (req/s)": s["throughput_rps"],
        "p50 (ms)": s["p50_ms"],
        "p90 (ms)": s["p90_ms"],
        "p99 (ms)": s["p99_ms"],
        "max schedule delay (ms)": s["max_schedule_delay_ms"],
        "load generator CPU": generator_cpu_text(s),
        "server avg queue (µs)": total.get("avg_queue_us", "n/a"),
        "server avg compute (µs)": total.get("avg_compute_us", "n/a"),
        "server avg batch": total.get("avg_batch", "n/a"),
    }


def _errors_card(result: RunResult) -> str:
    """The failed requests by kind (gRPC status, count, first message); "" when none failed."""
    rows = result.summary.get("error_breakdown") or []
    if not rows:
        return ""
    head = "<tr><th>error</th><th>status</th><th>count</th><th>first message</th></tr>"
    body = "".join(
        f"<tr><td>{escape(str(r['error']))}</td><td>{escape(str(r.get('status') or ''))}</td>"
        f"<td>{r['count']}</td><td>{escape(str(r.get('first_message') or ''))}</td></tr>"
        for r in rows
    )
    return f'<div class="card"><h2>Failed requests by kind</h2><table>{head}{body}</table></div>'


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;
background:#fafafa}h1{font-size:22px;margin:0 0 4px}.sub{color:#666;margin-bottom:16px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px}
.card h2{font-size:14px;margin:0 0 6px;color:#333}svg text{font-size:11px;fill:#333}
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 10px;border-bottom:1px solid #eee;
text-align:left}th{color:#555;font-weight:600}.notes{color:#a33;font-size:13px}"""


def render_html(result: RunResult) -> str:
    """One self-contained HTML page: headline numbers, scenario, referee and the six plots."""
    charts = "".join(f'<div class="card">{titled(svg)}</div>' for svg in _charts(result))
    referee = (
        f'<div class="card"><h2>Referee: perf_analyzer</h2>{_table(result.referee)}</div>'
        if result.referee
        else ""
    )
    notes = "".join(f"<p class='notes'>{escape(n)}</p>" for n in result.notes) + _errors_card(result)
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>tritonstack load test: {escape(result.name)}</title><style>{_CSS}</style></head><body>
<h1>Load test: {escape(result.name)}</h1>
<div class="sub">{escape(result.created)} · latency counts failures and, in open loop, the schedule
delay</div>
<div class="grid top"><div class="card"><h2>Summary</h2>{_table(_headline(result))}</div>
<div class="card"><h2>Scenario</h2>{_table(result.scenario)}</div>{referee}</div>{notes}
<h2 style="font-size:16px">Plots</h2><div class="grid">{charts}</div></body></html>"""


def shared_server_note(server_total: dict[str, Any] | None, sent: int) -> str | None:
    """A note when the server counted clearly more requests for the model than this test sent
    (10 % and 50 requests of slack for the polling edges): other clients' traffic is in its figures."""
    counted = int((server_total or {}).get("requests", 0))
    if counted <= sent * 1.1 + 50:
        return None
    return (f"the server counted {counted} requests for this model during the run, this test sent {sent}: "
            "other clients used it at the same time, so the server figures (queue, compute, batch) are not "
            "this test's alone")


def schedule_note(summary: dict[str, Any], scenario: dict[str, Any], *,
                  interrupted: bool = False) -> str | None:
    """A note when the run did not keep its schedule: requests started over 1 s late, the run lasted over
    1.5x its duration, or (open loop) the answers came at under 90% of the offered rate. Whose limit it
    was: the load generator's when it was busy (≥ 90% of the CPU it can use), else the server's (its
    late answers filled the generator's in-flight slots, so later requests waited for one). Call it once
    the generator's CPU use is in the summary. `interrupted`: a signal ended the load early, so the plan
    was only the span measured (neither unsent requests nor a long run are counted against the rest)."""
    measured_delay = summary.get("max_schedule_delay_ms") is not None  # not in distributed mode
    delay_s, ran_s = (summary.get("max_schedule_delay_ms") or 0.0) / 1e3, summary.get("duration_s") or 0.0
    planned_s = ran_s if interrupted else scenario.get("duration_s")
    rate = scenario.get("rate_rps") if scenario.get("kind") == "open" else None
    answered = (summary.get("count", 0) - (summary.get("errors") or 0)) / ran_s if ran_s else 0.0
    late, long = delay_s > 1.0, bool(planned_s) and ran_s > 1.5 * float(planned_s)
    short = bool(rate) and answered < 0.9 * float(rate or 0)
    due = float(rate or 0) * float(planned_s or 0)
    unsent = max(round(due - summary.get("count", 0)), 0) if "unsent" not in summary else 0  # asyncio: noted
    if not (late or long or short):
        return None
    planned = f" for a {float(planned_s):g} s scenario" if planned_s and not interrupted else ""
    capacity, use = generator_capacity(summary), summary.get("generator_cpu_use")
    more = ("add --workers" if str(scenario.get("runner", "locust")).startswith("locust")
            else "use --engine locust --workers N")  # the asyncio engine is one process
    if capacity and use is not None and use >= 0.9 * capacity:
        return (f"the load generator fell behind its schedule (requests started up to {delay_s:.1f} s late; "
                f"ran {ran_s:.1f} s{planned}; it used {use:.2f} CPU of {capacity}): the offered load was not "
                f"delivered and the latencies include that wait; lower --rate or --users, or {more}")
    said = [f"it answered {answered:.0f} req/s of the {float(rate or 0):g} offered"] if short else []
    if late:
        users, each = scenario.get("users") or 1, scenario.get("max_in_flight") or 0
        slots = f"{users} x {each} " if each else ""
        said.append(f"requests waited up to {delay_s:.1f} s to be sent, for one of the load generator's "
                    f"{slots}in-flight slots (--users x max_in_flight) held by unanswered requests")
    elif measured_delay:
        said.append(f"every request was sent on time (at most {delay_s * 1e3:.0f} ms late)")
    if rate and due and unsent > 0.05 * due:
        said.append(f"about {unsent} of the ~{due:.0f} scheduled requests were never sent before the run "
                    "ended: their latencies are missing, so the percentiles flatter the server")
    if long:
        said.append(f"the run lasted {ran_s:.1f} s{planned} waiting for the answers")
    cpu = f" (the load generator used {use:.2f} CPU of {capacity})" if capacity and use is not None else ""
    return (f"the server fell behind{cpu}: {'; '.join(said)}; more was offered than it serves, and the "
            "latencies include its queue: this is the server's limit at this load, not the generator's")

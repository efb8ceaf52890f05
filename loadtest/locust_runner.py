"""Run a Scenario with Locust, headless: in this process (library) or distributed (master + workers).

    result = run_local(Scenario(kind=Kind.OPEN, rate_rps=300, duration_s=10), "127.0.0.1:8001")
    result = run_distributed(scenario, "127.0.0.1:8001", workers=2, out_dir=Path("reports/lt"))

`run_local` imports Locust (gevent monkey-patching): call it from a process that does nothing
else, such as `tritonstack loadtest`. `run_distributed` only starts `locust` subprocesses (on
loopback, ended by PID) and reads their CSV; it never imports Locust itself.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tritonstack.loadtest.cpu_use import TreeCpu, tree
from tritonstack.loadtest.generator import StopCheck
from tritonstack.loadtest.locust_hdr import ENV_OUT, read_merged
from tritonstack.loadtest.report import RunResult, add_generator_cpu, server_notes, shared_server_note
from tritonstack.loadtest.scenario import Kind, Scenario
from tritonstack.loadtest.server_stats import ServerStatsPoller
from tritonstack.loadtest.stats import Recorder

from tritonstack.errors import LoadTestError

__all__ = ["LOCUSTFILE", "run_distributed", "run_local"]

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def _recording_listener(recorder: Recorder):  # noqa: ANN202
    def on_request(
        response_time: float, exception: BaseException | None = None, context: dict | None = None, **_: Any
    ) -> None:
        ctx = context or {}
        if exception is not None:
            recorder.note_error(ctx.get("error") or type(exception).__name__, exception)
        end = ctx.get("end_s", time.perf_counter())
        scheduled = ctx.get("scheduled_s", end - response_time / 1e3)
        recorder.add(
            scheduled_s=scheduled,
            start_s=ctx.get("start_s", scheduled),
            end_s=end,
            ok=exception is None,
            error=ctx.get("error") or type(exception).__name__,
        )

    return on_request


def _wait(
    runner: Any, scenario: Scenario, shaped: bool, origin_s: float, should_stop: StopCheck
) -> list[dict[str, Any]]:
    """Until the run ends (bounded) or `should_stop()`; return the users running, sampled every
    0.1 s (offered load)."""
    import gevent
    from locust.runners import STATE_STOPPED

    deadline = time.perf_counter() + scenario.duration_s + (5.0 if shaped else 0.0)
    users = []
    while time.perf_counter() < deadline and not should_stop():
        if shaped and runner.state == STATE_STOPPED:
            break
        users.append({"t_s": round(time.perf_counter() - origin_s, 3), "users": runner.user_count})
        gevent.sleep(0.1)
    if not should_stop():  # at the run's end the users finish their requests in flight (each user's last
        runner.environment.stop_timeout = scenario.stop_wait_s  # one, counted by the server, was lost)
    runner.quit()  # a Ctrl-C does not wait for them: the partial report is written at once
    return users


def _locust_totals(env: Any) -> dict[str, Any]:
    total = env.stats.total
    return {
        "requests": total.num_requests,
        "failures": total.num_failures,
        "p50_ms": total.get_response_time_percentile(0.5),
        "p99_ms": total.get_response_time_percentile(0.99),
    }


def run_local(
    scenario: Scenario,
    url: str,
    *,
    name: str | None = None,
    user: type | None = None,
    should_stop: StopCheck | None = None,
) -> RunResult:
    """Run `scenario` against `url` with a Locust LocalRunner in this process; return the result.

    `user`: your own TritonGrpcUser subclass instead of the scenario's (the shape still applies).
    `should_stop`: polled every 0.1 s; once true the users stop and the result covers what was
    measured until then.
    """
    from locust.env import Environment
    from tritonstack.loadtest.inputs import sent_shapes
    from tritonstack.loadtest.locust_user import close_clients, user_class
    from tritonstack.loadtest.preflight import preflight
    from tritonstack.loadtest.shapes import shape_for

    _, rows = preflight(scenario, url)  # after locust_user's init_gevent, before any load
    shape = shape_for(scenario)
    env = Environment(user_classes=[user or user_class(scenario, url)], shape_class=shape, host=url)
    recorder = Recorder()
    listener = _recording_listener(recorder)
    env.events.request.add_listener(listener)
    runner = env.create_local_runner()
    with _without_locust_cpu_warnings(), \
            ServerStatsPoller(url, scenario.model, interval_s=max(scenario.duration_s / 30, 0.25)) as poller:
        origin, wall, cpu = time.perf_counter(), time.time(), time.process_time()
        if shape is not None:
            runner.start_shape()
        else:
            runner.start(scenario.users, spawn_rate=scenario.spawn_rate)
        users = _wait(runner, scenario, shape is not None, origin, should_stop or (lambda: False))
        duration, cpu = time.perf_counter() - origin, time.process_time() - cpu
    env.events.request.remove_listener(listener)  # a call our close cancels ("Channel closed!"): no sample
    close_clients()
    described = {"url": url, "runner": "locust local", "inputs": scenario.inputs_path or "random"}
    result = RunResult.build(
        name=name or scenario.kind.value,
        scenario={**scenario.describe(), **described, "input_shapes": sent_shapes(rows)},
        samples=recorder.frame(),
        origin_s=origin,
        duration_s=duration,
        server=poller,
    )
    result.summary["locust"] = _locust_totals(env)
    result.notes.extend(_user_exceptions(runner))
    add_generator_cpu(result.summary, cpu / duration, processes=1, window_unix_s=(wall, wall + duration))
    result.load = users
    return result


class _NoCpuWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("CPU usage")


@contextlib.contextmanager
def _without_locust_cpu_warnings() -> Iterator[None]:
    """Locust's "CPU usage above 90%" lines (root and locust.runners loggers) are left out of the
    console: the report's own note says when the generator was busy, with its measured CPU use."""
    quiet, loggers = _NoCpuWarning(), (logging.getLogger(), logging.getLogger("locust.runners"))
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)


def _user_exceptions(runner: Any) -> list[str]:
    """One note per distinct exception Locust caught in a user (outside a request: e.g. in on_start)."""
    rows = sorted(getattr(runner, "exceptions", {}).values(), key=lambda r: -r["count"])
    return [f"a Locust user raised {' '.join(str(r['msg']).split())[:300]} ({r['count']} x)"
            for r in rows[:3]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _locust_argv(scenario: Scenario, url: str, workers: int, port: int, prefix: Path) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--master",
        "--headless",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(port),
        "--expect-workers",
        str(workers),
        "--expect-workers-max-wait",
        "30",
        "--host",
        url,
        "--csv",
        str(prefix),
        "--csv-full-history",
        "--only-summary",
        "--stop-timeout",  # open loop: users wait for their requests in flight
        f"{scenario.stop_wait_s + 1:g}",
    ]
    if scenario.kind in (Kind.RAMP, Kind.SPIKE):  # the shape sets users; -t only bounds the run
        return [*argv, "-t", f"{scenario.duration_s + 3:g}s"]
    return [
        *argv,
        "-u",
        str(scenario.users),
        "-r",
        str(scenario.spawn_rate),
        "-t",  # a backstop: the locustfile ends the run at --duration (and waits for what is in flight)
        f"{scenario.duration_s + scenario.stop_wait_s + 75:g}s",
    ]


#: the line the locustfile's master logs when one more worker than it was told to expect joined
FOREIGN_WORKER = "tritonstack: a Locust worker this run did not start joined its master"


def _die_with_parent() -> None:
    """A preexec_fn: SIGKILL this child when the process that started it dies (a SIGKILLed `loadtest`
    must not leave its Locust master and workers loading the server for the rest of --duration; on
    SIGTERM a worker tells its master it quits and, the master gone too, hung in 4 of 7 tries with
    --workers 2). Tied to the starting thread: run_distributed runs on the main thread."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _stop_all(processes: list[subprocess.Popen[bytes]], grace_s: float) -> None:
    """SIGTERM every process group at once, give them `grace_s` together, then SIGKILL what is left."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_master(master: subprocess.Popen[bytes], timeout_s: float, should_stop: StopCheck,
                 stop_wait_s: float, hurry: StopCheck, started: StopCheck = lambda: True) -> float:
    """Until the master exits (TimeoutExpired after `timeout_s`); once `should_stop()`, SIGUSR1 it
    (the locustfile then ends the run as at its duration: the workers finish their requests in flight
    and report them) and give it the stop wait, or until `hurry()` (a second Ctrl-C); then SIGTERM
    (Locust quits at once, the workers' last reports may be lost) and 30 s more.
    Returns when the load ended (perf_counter)."""
    deadline = time.monotonic() + timeout_s
    while master.poll() is None:
        if should_stop():
            master.send_signal(signal.SIGUSR1)  # before the users were sent out, nothing is waited for (its
            ended = time.perf_counter()  # wait for the workers ignored the stop: 15 s, outsider round 8)
            waited_until = time.monotonic() + (stop_wait_s + 5 if started() else 0.5)
            while master.poll() is None and time.monotonic() < waited_until and not hurry():
                time.sleep(0.1)
            if master.poll() is None:
                master.send_signal(signal.SIGTERM)  # after a second Ctrl-C, 1 s: a master whose stop waits
                try:  # for hung workers does not quit on SIGTERM either (10.7 s, outsider round 9)
                    master.wait(timeout=1.0 if hurry() else 30)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(master.pid, signal.SIGKILL)
                    master.wait()
            return ended
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(master.args, timeout_s)
        time.sleep(0.1)
    return time.perf_counter()


def run_distributed(
    scenario: Scenario,
    url: str,
    *,
    workers: int,
    out_dir: Path,
    name: str | None = None,
    should_stop: StopCheck | None = None,
    hurry: StopCheck | None = None,
) -> RunResult:
    """Run `scenario` with `locust --master` and `workers` x `locust --worker` on loopback;
    `should_stop` as in `run_local`; once stopping, `hurry()` (a second Ctrl-C) ends the wait for the
    requests in flight."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name = name or f"{scenario.kind.value}_distributed"
    prefix, port = out_dir / f"{name}_locust", _free_port()
    env = {**os.environ, **scenario.to_env(), ENV_OUT: f"{prefix}_hdr.json"}
    log_path = out_dir / f"{name}_locust.log"
    log = log_path.open("wb")
    master = subprocess.Popen(
        _locust_argv(scenario, url, workers, port, prefix),
        env=env,  # noqa: S603
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    worker_argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        str(port),
    ]
    started = [
        subprocess.Popen(
            worker_argv,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,  # noqa: S603
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        for _ in range(workers)
    ]
    origin = time.perf_counter()  # the master starts the users once its workers are in (~1 s)
    pids = [p.pid for p in (master, *started)]
    meter = TreeCpu({"generator": lambda procs: set().union(*(tree(pid, procs) for pid in pids))})
    try:
        interval_s = max(scenario.duration_s / 30, 0.25)
        with meter, ServerStatsPoller(url, scenario.model, interval_s=interval_s) as poller:
            ended = _wait_master(master, scenario.duration_s + 100, should_stop or (lambda: False),
                                 scenario.stop_wait_s, hurry or (lambda: False),
                                 started=lambda: load_start_unix_s(log_path) is not None)
    except subprocess.TimeoutExpired as exc:
        raise LoadTestError(f"locust master did not finish; see {log_path}") from exc
    finally:
        _stop_all([master], grace_s=10.0)  # the master gone, a worker has nobody to report to: the workers
        _stop_all(started, grace_s=0.0 if hurry and hurry() else 2.0)  # get 2 s together (hung: 5 s each)
        log.close()
    stopped = bool(should_stop and should_stop())
    _refuse_foreign_workers(log_path)
    start_unix = load_start_unix_s(log_path)
    start = None if start_unix is None else start_unix - (time.time() - time.perf_counter())
    result = _distributed_result(scenario, url, workers, prefix, name, poller, (origin, ended), stopped,
                                 load_start_s=start)
    measured = float(result.summary.get("duration_s") or 0.0)
    window = (start_unix, start_unix + measured) if start_unix is not None and measured else None
    _distributed_cpu(result, meter, window or load_window_unix_s(prefix))
    return result


def _refuse_foreign_workers(log: Path) -> None:
    """LoadTestError when a worker we did not start joined the master (the locustfile then ended the run):
    another local user took some of the users, so no figure of the run can be trusted."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return
    line = next((line for line in text.splitlines() if FOREIGN_WORKER in line), None)
    if line is not None:
        detail = line.split(FOREIGN_WORKER, 1)[1].strip()
        raise LoadTestError(f"a Locust worker this run did not start joined its master {detail}: another "
                            "local user can reach its loopback port; the run was stopped, no report written")


def load_start_unix_s(log: Path) -> float | None:
    """When the master sent the users to its workers (unix time, ms precision), from its log's "Sending
    spawn jobs" line; None without one. Locust's history CSV has whole seconds and lags the workers'
    reports by up to 3 s, and the master's exit comes a second or more after the load's end."""
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    for line in lines:
        if line.startswith("[") and "Sending spawn jobs" in line:
            stamp = line[1:24]  # "2026-12-02 07:56:22,598" (local time, as Python's logging writes it)
            try:
                whole = time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S"))
                return whole + int(stamp[20:23]) / 1e3
            except ValueError:
                return None
    return None


def load_window_unix_s(prefix: Path) -> tuple[float, float] | None:
    """First and last second of Locust's history (unix time) in which requests were counted."""
    path = Path(f"{prefix}_stats_history.csv")
    rows = list(csv.DictReader(path.open())) if path.exists() else []
    times = [int(r["Timestamp"]) for r in rows
             if r.get("Name") == "Aggregated" and int(r.get("Total Request Count") or 0) > 0]
    return (float(min(times)), float(max(times))) if len(times) > 1 and max(times) > min(times) else None


def _distributed_cpu(result: RunResult, meter: TreeCpu, window: tuple[float, float] | None) -> None:
    """The master's and workers' CPU use over the load (their start-up left out when the history
    gives the load's window)."""
    use = meter.use(window).get("generator")
    if use is not None:
        processes = 1 + int(result.scenario.get("workers") or 0)
        add_generator_cpu(result.summary, use, processes=processes, window_unix_s=window)


def _distributed_result(
    scenario: Scenario,
    url: str,
    workers: int,
    prefix: Path,
    name: str,
    poller: ServerStatsPoller,
    span_s: tuple[float, float],
    stopped: bool = False,
    load_start_s: float | None = None,
) -> RunResult:
    """The result from Locust's CSV files; `span_s`: (master started, load ended) on perf_counter;
    `load_start_s`: when the users were sent out (perf_counter), else taken as the measured span before
    the end.
    Stopped (Ctrl-C) before Locust wrote any: an empty result, as when no request finished."""
    stats_path, described = Path(f"{prefix}_stats.csv"), {"url": url, "runner": "locust distributed"}
    scenario_row = {**scenario.describe(), **described, "workers": workers}
    if not stats_path.exists():
        if stopped:
            empty = RunResult(name=name, scenario=scenario_row, summary=_summary_from_locust({}), windows=[])
            empty.notes.append(f"Locust's log: {prefix.parent / (name + '_locust.log')}")
            return empty
        raise LoadTestError(f"locust wrote no {stats_path}; see {prefix.parent / (name + '_locust.log')}")
    total = next(r for r in csv.DictReader(stats_path.open()) if r["Name"] == "Aggregated")
    history = list(csv.DictReader(Path(f"{prefix}_stats_history.csv").open()))
    summary = _summary_from_locust(total, _failures(Path(f"{prefix}_failures.csv")))
    measured_s = _measured_s(summary, span_s)
    start_unix = load_start_unix_s(prefix.parent / (name + "_locust.log"))
    merged = read_merged(Path(f"{prefix}_hdr.json"))
    windows = (merged.rows(start_unix, measured_s) if merged is not None and merged.windows
               else _windows_from_history(history, start_unix_s=start_unix))
    result = RunResult(name=name, scenario=scenario_row, summary=summary, windows=windows,
                       load=_users_from_history(history, start_unix_s=start_unix, until_s=measured_s))
    origin = span_s[1] - measured_s if load_start_s is None else load_start_s
    result.server = poller.timeline(origin, until_s=measured_s)
    result.server_total = poller.total()
    result.notes.extend(server_notes(poller, result.summary, origin_s=origin))
    result.notes.extend(filter(None, [shared_server_note(result.server_total, int(summary["count"]))]))
    if merged is not None and len(merged.every):
        result.summary.update(merged.summary_ms())
        source = ("the workers' histograms, merged (microsecond precision; each window's within 1%, of the "
                  "requests that ended in it")
    else:
        source = "Locust's (rounded to whole ms; each window's a rolling 10 s one"
    result.notes.append(
        f"distributed mode: percentiles are {source}; failed requests included); "
        f"Locust's CSV files and its log ({prefix.parent / (name + '_locust.log')}) are next to this report"
    )
    return result


def _measured_s(summary: dict[str, Any], span_s: tuple[float, float]) -> float:
    """The load's measured span: Locust's own (its request count over its rate: first to last request),
    at most the time from the master's start to the load's end; stored in the summary."""
    count, rate = summary["count"], summary["throughput_rps"]
    measured = count / rate if count and rate else span_s[1] - span_s[0]
    summary["duration_s"] = round(min(measured, span_s[1] - span_s[0]), 3)
    summary["throughput_rps"] = count / summary["duration_s"] if summary["duration_s"] > 0 else 0.0
    summary["ok_throughput_rps"] = (count - summary["errors"]) / summary["duration_s"] if count else 0.0
    return summary["duration_s"]


def _failures(path: Path) -> list[dict[str, Any]]:
    """Locust's failures CSV as the report's error breakdown: one row per (kind, gRPC status), with
    its count and first message. A distributed run's master holds each error as the repr of the
    worker's string (quoted), and messages can differ per request; both must not split a kind."""
    rows = list(csv.DictReader(path.open())) if path.is_file() else []
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        text = _error_text(row.get("Error") or "")
        status = text.rsplit("[", 1)[-1].split("]", 1)[0] if text.rstrip("')\"").endswith("]") else ""
        kind = text.split("(", 1)[0].strip() or "error"
        entry = out.setdefault((kind, status), {"error": kind, "status": status, "count": 0,
                                                "first_message": _message(kind, text)[:300]})
        entry["count"] += int(row.get("Occurrences") or 0)
    return sorted(out.values(), key=lambda r: -r["count"])


def _message(kind: str, text: str) -> str:
    """The message of an error written as `Kind('message')` (Locust's repr of an exception), else all."""
    return _error_text(text[len(kind) + 1:-1]) if text.startswith(kind + "(") and text.endswith(")") else text


def _error_text(raw: str) -> str:
    """One error of Locust's failures CSV, unquoted when it is the repr of a string, on one line."""
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        try:
            text = str(ast.literal_eval(text))
        except (ValueError, SyntaxError):
            text = text[1:-1]
    return " ".join(text.split())


def _summary_from_locust(
    total: dict[str, str], failures: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    count, failed = int(total.get("Request Count") or 0), int(total.get("Failure Count") or 0)
    kinds: dict[str, int] = {}
    for row in failures or []:
        kinds[row["error"]] = kinds.get(row["error"], 0) + row["count"]
    return {
        "count": count,
        "errors": failed,
        "error_rate": failed / count if count else 0.0,
        "throughput_rps": _number(total.get("Requests/s")) or 0.0,
        "p50_ms": _number(total.get("50%")),
        "p90_ms": _number(total.get("90%")),
        "p99_ms": _number(total.get("99%")),
        "mean_ms": _number(total.get("Average Response Time")),
        "max_schedule_delay_ms": None,
        "error_kinds": kinds,
        "error_breakdown": failures or [],
    }


def _number(text: str | None) -> float | None:
    """A figure of Locust's CSV; None for its 'N/A' (no request finished yet, e.g. a Ctrl-C early on)."""
    try:
        return float(text) if text not in (None, "", "N/A") else None
    except ValueError:
        return None


def _users_from_history(history: list[dict[str, str]], *, start_unix_s: float | None,
                        until_s: float) -> list[dict[str, Any]]:
    """The running users over the load (Locust's history, one row a second), from its start."""
    rows = [r for r in history if r.get("Name") == "Aggregated" and r.get("User Count")]
    if not rows:
        return []
    t0 = int(rows[0]["Timestamp"]) if start_unix_s is None else start_unix_s
    return [{"t_s": round(int(r["Timestamp"]) - t0, 3), "users": int(r["User Count"])} for r in rows
            if 0 <= int(r["Timestamp"]) - t0 <= until_s]


def _windows_from_history(
    history: list[dict[str, str]], start_unix_s: float | None = None
) -> list[dict[str, Any]]:
    """Windows from Locust's aggregated history: throughput and errors from count differences
    (workers report to the master every few seconds, so windows are that coarse). Time counts from
    `start_unix_s` (the users sent out) when known, else from the history's first row (the master's
    start, before the load: the first window's rate is then diluted)."""
    rows = [r for r in history if r.get("Name") == "Aggregated"]
    if not rows:
        return []
    t0, out = (int(rows[0]["Timestamp"]) if start_unix_s is None else start_unix_s), []
    last_t, last_count, last_fail = t0, 0, 0
    for r in rows:
        t, count, fail = int(r["Timestamp"]), int(r["Total Request Count"]), int(r["Total Failure Count"])
        if count <= last_count or t <= last_t or r.get("50%") in ("N/A", "", None):
            continue
        new, failed = count - last_count, fail - last_fail
        out.append(
            {
                "t_s": round(t - t0, 3),
                "count": new,
                "throughput_rps": new / (t - last_t),
                "errors": failed,
                "error_rate": failed / new,
                "p50_ms": float(r["50%"]),
                "p90_ms": float(r["90%"]),
                "p99_ms": float(r["99%"]),
            }
        )
        last_t, last_count, last_fail = t, count, fail
    return out

"""CPU accounting of process trees (loadtest.cpu_use), L4's choice of run, the report's generator line."""

import os
import subprocess
import sys
import time

import pytest
from tritonstack.loadtest.bench.locust_row import best_run
from tritonstack.loadtest.cpu_use import CpuCounter, TreeCpu, parse_stat, snapshot, tree, use_between
from tritonstack.loadtest.locust_runner import load_window_unix_s
from tritonstack.loadtest.report import add_generator_cpu, generator_cpu_text

_TICK = os.sysconf("SC_CLK_TCK")


def test_parse_stat_handles_spaces_and_parentheses_in_the_name():
    fields = ["S", "42"] + ["0"] * 9 + [str(3 * _TICK), str(_TICK)] + ["0"] * 30
    ppid, cpu_s = parse_stat("1234 (a (weird) name) " + " ".join(fields))
    assert ppid == 42 and cpu_s == pytest.approx(4.0)


def test_tree_follows_parents():
    processes = {1: (0, 0.0), 10: (1, 1.0), 11: (10, 2.0), 12: (10, 0.5), 20: (1, 9.0), 30: (99, 1.0)}
    assert tree(10, processes) == {10, 11, 12}
    assert tree(30, processes) == {30}
    assert tree(77, processes) == set()


def test_counter_keeps_the_cpu_of_processes_that_exited():
    counter = CpuCounter()
    assert counter.update({1: 1.0, 2: 0.5}) == pytest.approx(1.5)
    assert counter.update({1: 2.0}) == pytest.approx(2.5)  # pid 2 exited: its 0.5 s stay
    assert counter.update({1: 2.0, 3: 0.25}) == pytest.approx(2.75)


def test_use_between_interpolates_and_clips():
    samples = [(100.0, {"a": 0.0, "b": 0.0}), (101.0, {"a": 1.0, "b": 0.5}), (103.0, {"a": 1.0, "b": 1.5})]
    assert use_between(samples, 100.0, 101.0) == {"a": 1.0, "b": 0.5}
    assert use_between(samples, 100.5, 102.0) == {"a": pytest.approx(0.33, abs=0.01), "b": 0.5}
    assert use_between(samples, 50.0, 500.0) == {"a": pytest.approx(0.33, abs=0.01), "b": 0.5}
    assert use_between(samples, 200.0, 300.0) == {}
    assert use_between(samples[:1], 100.0, 101.0) == {}


def test_tree_cpu_sees_a_busy_child_and_an_idle_one():
    me = os.getpid()
    busy = "import time\nend = time.process_time() + 1.0\nwhile time.process_time() < end: pass"
    sides = {"children": lambda procs: tree(me, procs) - {me}}
    with TreeCpu(sides, interval_s=0.1) as meter:
        subprocess.run([sys.executable, "-c", busy], check=True, timeout=60)
    with TreeCpu(sides, interval_s=0.1) as idle:
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.5)"], check=True, timeout=60)
    print("busy child", meter.use(), "idle child", idle.use())
    assert meter.use()["children"] > 0.2  # ~1.0 on an idle machine, less when the core is shared
    assert idle.use()["children"] < meter.use()["children"]
    assert me in snapshot()


def test_best_run_prefers_clean_runs():
    runs = {"grpc/0": {"throughput_rps": 1500.0, "errors": 0}, "http/0": {"throughput_rps": 1700.0, "errors": 3},
            "http/1": {"throughput_rps": 1200.0, "errors": 0}}
    assert best_run(runs) == "grpc/0"
    assert best_run({"http/0": runs["http/0"]}) == "http/0"


def test_report_states_the_generator_cpu():
    summary: dict = {}
    assert generator_cpu_text(summary) == "not measured"
    add_generator_cpu(summary, 0.966, processes=3, window_unix_s=(10.0, 20.0))
    cpus = len(os.sched_getaffinity(0))
    assert summary["generator_cpu_use"] == 0.97 and summary["load_window_unix_s"] == [10.0, 20.0]
    capacity = min(cpus, 3)  # one Python process keeps about one core busy
    cores = f"{capacity} core" + ("s" if capacity > 1 else "")
    allowed = f"{cpus} CPU" + ("s" if cpus > 1 else "")
    assert generator_cpu_text(summary) == (f"0.97 CPU: {97 / capacity:.0f} % of the {cores} a 3-process "
                                           f"generator can use ({allowed} allowed)")


def test_the_generator_cpu_line_names_its_unit():
    """Issue 13: it read "72 % of the 1 a 1-process generator can use" (no unit after the count)."""
    summary = {"generator_cpu_use": 0.72, "generator_cpus": 2, "generator_processes": 1}
    text = generator_cpu_text(summary)
    print(text)
    assert text == "0.72 CPU: 72 % of the 1 core a 1-process generator can use (2 CPUs allowed)"


def test_load_window_from_locust_history(tmp_path):
    prefix = tmp_path / "run_locust"
    now = int(time.time())
    rows = ["Timestamp,Name,Total Request Count", f"{now},Aggregated,0", f"{now + 1},Aggregated,40",
            f"{now + 2},digits_mlp,90", f"{now + 3},Aggregated,90"]
    (tmp_path / "run_locust_stats_history.csv").write_text("\n".join(rows) + "\n")
    assert load_window_unix_s(prefix) == (now + 1.0, now + 3.0)
    assert load_window_unix_s(tmp_path / "missing") is None


def test_referee_meaning_names_the_limit():
    from tritonstack.loadtest.report import referee_meaning

    busy: dict = {}
    add_generator_cpu(busy, 0.98, processes=1)  # one process on one core or more: saturated
    spare: dict = {}
    add_generator_cpu(spare, 0.2, processes=1)
    assert "agree" in referee_meaning(busy, 0.95)
    assert "the generator, not the server, is the limit" in referee_meaning(busy, 0.3)
    assert "C++" in referee_meaning(busy, 0.3) and "0.30x" in referee_meaning(busy, 0.3)
    assert "CPU to spare" in referee_meaning(spare, 0.3)
    assert "not measured" in referee_meaning({}, 0.3)
    assert "no throughput ratio" in referee_meaning(busy, None)
    # outsider round 3: "engines agree" while the p50 was flagged as not within 15%
    assert "agree" in referee_meaning(busy, 0.95, 1.1) and "but" not in referee_meaning(busy, 0.95, 1.1)
    assert "the throughputs agree (0.95x perf_analyzer) but the median latencies do not (1.40x)" in (
        referee_meaning(busy, 0.95, 1.4))
    assert "read perf_analyzer's p50" in referee_meaning(busy, 0.95, 1.4)
    assert "did not see the same load" in referee_meaning(busy, 1.3, 1.0)


def test_a_server_shared_with_other_clients_is_noted() -> None:
    """Two load tests at once against one server: each report showed the other's requests as its own."""
    from tritonstack.loadtest.report import shared_server_note

    assert shared_server_note({"requests": 3430}, 2596) is not None
    assert "other clients" in shared_server_note({"requests": 3430}, 2596)
    assert shared_server_note({"requests": 2640}, 2596) is None
    assert shared_server_note(None, 10) is None


def test_a_generator_behind_its_schedule_is_noted() -> None:
    """`open --rate 20000 --duration 2` ran 18.9 s with a 16.7 s schedule delay and no note."""
    from tritonstack.loadtest.report import schedule_note

    busy = {"generator_cpu_use": 0.97, "generator_cpus": 1, "generator_processes": 1}
    open_loop = {"kind": "open", "duration_s": 2.0, "rate_rps": 20000, "users": 8, "max_in_flight": 64}
    note = schedule_note({"max_schedule_delay_ms": 16_700.0, "duration_s": 18.9, "count": 40000, **busy},
                         open_loop)
    assert note is not None and "load generator fell behind" in note and "18.9 s for a 2 s scenario" in note
    steady = {"kind": "steady", "duration_s": 2.0}
    assert schedule_note({"max_schedule_delay_ms": 3.0, "duration_s": 2.05, "count": 10, **busy}, steady) is None
    assert schedule_note({"max_schedule_delay_ms": None, "duration_s": 0.0}, {}) is None


def test_a_server_behind_an_open_loop_is_not_blamed_on_the_generator() -> None:
    """Outsider rounds 5 and 6: `open --rate 60` on ResNet-18 (serves ~25/s) sent every request on time and
    ran 6.2 s draining the server's queue; `open --rate 800` on a 330 req/s model filled the generator's
    in-flight slots (requests sent up to 3.3 s late) at 0.35 CPU; `--rate 600` answered at 499 req/s with
    no note. Each said the load generator fell behind, or nothing."""
    from tritonstack.loadtest.report import schedule_note

    idle = {"generator_cpu_use": 0.35, "generator_cpus": 1, "generator_processes": 1}
    scenario = {"kind": "open", "duration_s": 3.0, "rate_rps": 60, "users": 8, "max_in_flight": 64}
    note = schedule_note({"max_schedule_delay_ms": 2.0, "duration_s": 6.2, "count": 180, **idle}, scenario)
    assert note is not None and note.startswith("the server fell behind (the load generator used 0.35 CPU of 1)")
    assert "every request was sent on time" in note and "6.2 s for a 3 s scenario" in note
    assert "load generator fell behind" not in note
    scenario = {"kind": "open", "duration_s": 8.0, "rate_rps": 800, "users": 8, "max_in_flight": 64}
    note = schedule_note({"max_schedule_delay_ms": 3300.0, "duration_s": 8.5, "count": 2700, **idle}, scenario)
    assert note is not None and "it answered 318 req/s of the 800 offered" in note
    assert "waited up to 3.3 s to be sent, for one of the load generator's 8 x 64 in-flight slots" in note
    assert "about 3700 of the ~6400 scheduled requests were never sent" in note  # Locust says no more
    distributed = {"max_schedule_delay_ms": None, "duration_s": 6.0, "count": 2543, "errors": 0, **idle}
    note = schedule_note(distributed, {**scenario, "rate_rps": 700, "duration_s": 6.0})
    assert note is not None and "sent on time" not in note  # not measured with --workers
    scenario = {"kind": "open", "duration_s": 5.0, "rate_rps": 600, "users": 1000, "max_in_flight": 64}
    note = schedule_note({"max_schedule_delay_ms": 5.0, "duration_s": 5.9, "count": 2944, **idle}, scenario)
    assert note is not None and "it answered 499 req/s of the 600 offered" in note


def test_an_interrupted_open_loop_counts_unsent_requests_only_up_to_the_stop() -> None:
    """Round 8: Ctrl-C after 10.5 s of a 600 s open loop at 60 req/s said 'about 35501 of the ~36000
    scheduled requests were never sent': the plan ended at the stop (630 due, 499 sent)."""
    from tritonstack.loadtest.report import schedule_note

    idle = {"generator_cpu_use": 0.16, "generator_cpus": 2, "generator_processes": 2}
    scenario = {"kind": "open", "duration_s": 600.0, "rate_rps": 60, "users": 1, "max_in_flight": 64}
    summary = {"max_schedule_delay_ms": None, "duration_s": 10.5, "count": 499, "errors": 349, **idle}
    note = schedule_note(summary, scenario, interrupted=True)
    assert note is not None and "about 131 of the ~630 scheduled requests were never sent" in note
    assert "scenario" not in note
    assert "~36000" in (schedule_note(summary, scenario) or "")


def test_locust_na_figures_of_an_early_stop_are_not_a_traceback() -> None:
    """`--workers 2` and Ctrl-C before any request finished: Locust writes 'N/A', which was parsed
    with float() (ValueError traceback, exit 1)."""
    from tritonstack.loadtest.locust_runner import _summary_from_locust

    total = {"Request Count": "0", "Failure Count": "0", "Requests/s": "0", "50%": "N/A", "90%": "N/A",
             "99%": "N/A", "Average Response Time": "N/A"}
    summary = _summary_from_locust(total)
    assert summary["count"] == 0 and summary["p50_ms"] is None and summary["mean_ms"] is None


def test_a_busy_generator_is_named_in_a_note():
    from tritonstack.loadtest.report import busy_generator_note

    summary: dict = {}
    add_generator_cpu(summary, 0.96, processes=1)
    note = busy_generator_note(summary)
    assert note.startswith("the load generator was busy (0.96 CPU of the 1 core its 1 process can use)")
    add_generator_cpu(summary, 0.5, processes=1)
    assert busy_generator_note(summary) is None and busy_generator_note({}) is None

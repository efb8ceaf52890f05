"""Locustfile for the `locust` command, e.g. distributed mode (one master, N workers):

    TRITONSTACK_SCENARIO='{"kind": "steady", "model": "digits_mlp"}' \\
        locust -f loadtest/locustfile.py --master --headless -u 8 -r 8 -t 10s --host 127.0.0.1:8001
    TRITONSTACK_SCENARIO=... locust -f loadtest/locustfile.py --worker --master-host 127.0.0.1

The scenario comes from the environment (`Scenario.to_env()`); `tritonstack loadtest --workers N`
sets it and starts the processes for you. Exactly one user class and at most one shape are
defined here, so Locust needs no class picker.
"""

import logging

import locust
import locust.stats
from tritonstack.loadtest.locust_hdr import install as install_hdr
from tritonstack.loadtest.locust_runner import FOREIGN_WORKER
from tritonstack.loadtest.locust_user import user_class
from tritonstack.loadtest.scenario import Kind, Scenario
from tritonstack.loadtest.stats import window_width

# Write and flush the CSV history every second (the default flush is every 10 s, so a short run's
# history never reaches the file and the report has no latency-over-time).
locust.stats.CSV_STATS_INTERVAL_SEC = 1
locust.stats.CSV_STATS_FLUSH_INTERVAL_SEC = 1

SCENARIO = Scenario.from_env()

# Workers send histograms of their latencies (the run's and per window) with each report; the master
# merges them.
install_hdr(locust.events, window_s=window_width(SCENARIO.duration_s))
TritonUser = user_class(SCENARIO, host=None)

if SCENARIO.kind is Kind.RAMP:
    from tritonstack.loadtest.shapes import StepRamp  # noqa: F401 - Locust finds the shape here
elif SCENARIO.kind is Kind.SPIKE:
    from tritonstack.loadtest.shapes import Spike  # noqa: F401


def _end(runner) -> None:  # noqa: ANN001
    """stop() first, which has the workers finish the requests they have in flight and waits for them,
    then quit(). Locust's --run-time and its SIGTERM handler quit at once and wait 0.5 s for the
    workers' last reports: an overloaded server's late answers were lost to the report (outsider round
    7: 5158 reported, 5544 served; a Ctrl-C of `loadtest --workers` could report nothing at all)."""
    if getattr(runner, "_tritonstack_ending", False):
        return
    runner._tritonstack_ending = True  # noqa: SLF001 - once, whether the duration or a signal ends it
    runner.stop()
    runner.quit()


@locust.events.init.add_listener
def _end_on_sigusr1(environment, **_):  # noqa: ANN001, ANN202
    """`tritonstack loadtest` sends the master SIGUSR1 on Ctrl-C / SIGTERM: the run ends as at its
    duration (`_end`), with the workers' last requests in the report."""
    import signal

    import gevent
    from locust.runners import MasterRunner

    if isinstance(environment.runner, MasterRunner):
        gevent.signal_handler(signal.SIGUSR1, lambda: gevent.spawn(_end, environment.runner))
        _only_our_workers(environment)


def _only_our_workers(environment) -> None:  # noqa: ANN001
    """The master listens on a loopback port that any local user can reach, and Locust has no worker
    authentication: a stranger's worker could join and take users that never send (outsider round 8:
    users 8 -> 5, exit 0, no note). `tritonstack loadtest` starts exactly --expect-workers workers, so
    one more distinct worker is a stranger: the run is ended and `run_distributed` refuses its figures."""
    import gevent

    expected, seen = environment.parsed_options.expect_workers, set()

    def joined(client_id: str, **_: object) -> None:
        seen.add(client_id)
        if len(seen) > expected:
            logging.getLogger("tritonstack").error("%s (%s; %d workers for %d started)", FOREIGN_WORKER,
                                                   client_id, len(seen), expected)
            environment.process_exit_code = 3
            gevent.spawn(environment.runner.quit)

    environment.events.worker_connect.add_listener(joined)


if SCENARIO.kind in (Kind.STEADY, Kind.OPEN):

    @locust.events.test_start.add_listener
    def _end_at_duration(environment, **_):  # noqa: ANN001, ANN202
        """The master ends the run at --duration itself (`_end`); --run-time stays as a backstop."""
        import gevent
        from locust.runners import MasterRunner

        runner = environment.runner
        if isinstance(runner, MasterRunner):

            def end() -> None:
                gevent.sleep(SCENARIO.duration_s)
                _end(runner)

            gevent.spawn(end)


@locust.events.test_stop.add_listener
def _report_before_stopped(environment, **_):  # noqa: ANN001, ANN202
    """A worker whose users have stopped (their requests in flight finished) reports its statistics
    before it tells the master it stopped; else the master, which quits once every worker stopped, never
    got the requests answered since the worker's last periodic report (every 3 s)."""
    from locust.runners import WorkerRunner

    if isinstance(environment.runner, WorkerRunner):
        environment.runner._send_stats()  # noqa: SLF001 - Locust's own final-report call

"""Latency percentiles of a distributed Locust run that keep microseconds: one HdrHistogram per worker,
sent with every worker report and merged by the master.

    import locust
    from tritonstack.loadtest.locust_hdr import install

    install(locust.events)   # in the locustfile; the master writes the merged histogram, encoded, to
                             # $TRITONSTACK_HDR_OUT when Locust exits (after the workers' final reports)

Latency is `end - scheduled` from the request's context when our user set it (failures included),
else Locust's response time.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from tritonstack.loadtest.stats import LatencyHistogram

__all__ = ["ENV_OUT", "REPORT_KEY", "install"]

_LOGGER = logging.getLogger(__name__)

ENV_OUT = "TRITONSTACK_HDR_OUT"
REPORT_KEY = "tritonstack_hdr"


class _State:
    """This process's histograms: what a worker has not reported yet, what a master has merged."""

    def __init__(self) -> None:
        self.pending = LatencyHistogram()
        self.merged = LatencyHistogram()
        self.environment: Any = None

    def on_request(self, response_time: float, context: dict | None = None, **_: Any) -> None:
        ctx = context or {}
        if "end_s" in ctx and "scheduled_s" in ctx:
            self.pending.record(ctx["end_s"] - ctx["scheduled_s"])
        else:
            self.pending.record(response_time / 1e3)

    def on_report_to_master(self, data: dict[str, Any], **_: Any) -> None:
        data[REPORT_KEY], self.pending = self.pending.encode(), LatencyHistogram()

    def on_worker_report(self, data: dict[str, Any], **_: Any) -> None:
        if REPORT_KEY in data:
            self.merged.merge(LatencyHistogram.decode(data[REPORT_KEY]))

    def on_quit(self, **_: Any) -> None:
        from locust.runners import MasterRunner

        path = os.environ.get(ENV_OUT)
        if path and isinstance(getattr(self.environment, "runner", None), MasterRunner):
            Path(path).write_text(self.merged.encode())
            _LOGGER.info("wrote the merged latency histogram (%d requests) to %s", len(self.merged), path)


def install(events: Any) -> None:
    """Record, report and merge HdrHistograms through Locust's events (`locust.events`)."""
    state = _State()
    events.init.add_listener(lambda environment, **_: setattr(state, "environment", environment))
    events.request.add_listener(state.on_request)
    events.report_to_master.add_listener(state.on_report_to_master)
    events.worker_report.add_listener(state.on_worker_report)
    events.quit.add_listener(state.on_quit)

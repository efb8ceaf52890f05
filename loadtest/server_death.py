"""Our embedded tritonserver dying during a load test: when (load or referee), how (the real signal), and
where its log went.

    watch = ServerDeathWatch(server)   # server: EmbeddedServer, or None with --url
    watch.arm()                        # after Locust (gevent) is imported, before the load
    ...load...
    watch.load_ended()
    ...referee...
    watch.note(result)

Why a watch: once Locust has monkey-patched the process, gevent's event loop (libev) reaps *every* child
on SIGCHLD, so `Popen.poll()` then finds no child and reports exit status 0 for a server that was
SIGKILLed, and no crash log is kept. A gevent child watcher on the server's pid receives the real status.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

__all__ = ["ServerDeathWatch"]

_LOGGER = logging.getLogger(__name__)


class ServerDeathWatch:
    """Records whether and how our embedded server died, and whether it was during the load."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.died_during_load = False
        self._watcher: Any = None

    @property
    def _process(self) -> Any:
        return getattr(self.server, "process", None)

    def arm(self) -> None:
        """With gevent loaded, watch the server's pid so its exit status is not lost to gevent's reaping."""
        process = self._process
        if process is None or "gevent" not in sys.modules:
            return
        import gevent

        self._watcher = gevent.get_hub().loop.child(process.pid, ref=False)
        self._watcher.start(lambda: None)

    def load_ended(self) -> None:
        """Call when the load is over: a server dead by now died during the load."""
        self.died_during_load = self.exit_code() is not None

    def exit_code(self) -> int | None:
        """None while the server runs; else its exit code (negative: killed by that signal)."""
        process = self._process
        code = process.poll() if process is not None else None
        if code is None:
            return None
        watcher = self._watcher
        if watcher is not None and getattr(watcher, "rpid", 0) == process.pid:
            return os.waitstatus_to_exitcode(watcher.rstatus)
        return code

    def note(self, result: Any) -> None:
        """Put one note first in `result`: when the server died, how, and where its log is (if kept)."""
        code = self.exit_code()
        if code is None:
            return
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        result.summary["server_exit_status"] = code
        when = "during the load" if self.died_during_load else (
            "after the load, during the referee (the load's figures are complete)")
        result.notes.insert(0, f"the embedded tritonserver died {when} ({how}){self._log_text(code)}")

    def _log_text(self, code: int) -> str:
        """'; its log is kept in X' when a log is (or will be, at stop) kept; else ''."""
        if code == 0:
            return ""
        if self._process.poll() not in (None, 0):  # EmbeddedServer.stop() keeps it
            return f"; its log is kept in {self.server.crash_log_dir}"
        try:  # gevent hid the status from Popen, so stop() will not keep it: keep it now
            kept = self.server.keep_crash_log(code)
        except OSError as exc:
            _LOGGER.warning("could not keep the dead server's log: %s", exc)
            return ""
        return f"; its log is kept in {kept}" if kept else ""

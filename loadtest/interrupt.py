"""Ctrl-C (SIGINT) or SIGTERM during a load: stop sending, keep what was measured.

    with StopOnSignals() as stop:               # in the main thread, around the load only
        run = asyncio.run(closed_loop(send, ..., should_stop=stop.is_set))
    if stop.is_set():
        ...  # write the partial report, exit 128 + stop.signum

The handler only records the signal; the load loops poll `is_set()` (every ~0.1 s) and end early,
in-flight requests finish (each bounded by its deadline). Neither gevent nor asyncio sees a
KeyboardInterrupt, so neither prints a traceback. Outside the block the previous handlers are back,
so a Ctrl-C during start-up or preflight still ends the command at once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType, TracebackType

__all__ = ["StopOnSignals"]

_LOGGER = logging.getLogger(__name__)


class StopOnSignals:
    """While entered: SIGINT/SIGTERM set a flag instead of raising; `is_set`, `signum`, `after_s`;
    `repeated` once a second one came (a run that waits for its requests in flight then stops at once)."""

    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.signals = signals
        self.signum: int | None = None
        self.count = 0  # signals received
        self.after_s: float | None = None
        self._begin_s = time.monotonic()
        self._previous: dict[int, object] = {}

    def is_set(self) -> bool:
        """True once a signal arrived."""
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """128 + the signal number (130 for SIGINT, 143 for SIGTERM); 0 when none arrived."""
        return 128 + self.signum if self.signum is not None else 0

    def repeated(self) -> bool:
        """True once a second signal arrived: stop now, without waiting for requests in flight."""
        return self.count >= 2

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        if self.signum is None:
            self.signum, self.after_s = signum, time.monotonic() - self._begin_s
            _LOGGER.info("%s: stopping the load", signal.Signals(signum).name)

    def __enter__(self) -> StopOnSignals:
        self._begin_s = time.monotonic()
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                if signal.getsignal(sig) is signal.SIG_IGN:
                    continue  # ignored since the start (`cmd &` in a script, nohup): ignored here too
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)  # type: ignore[arg-type]
        self._previous.clear()

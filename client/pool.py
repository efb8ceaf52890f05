"""Health bookkeeping for client-side load balancing: pick, eject, probe, re-admit. No I/O.

    pool = EndpointPool(["10.0.0.1:8001", "10.0.0.2:8001"], eject_s=1.0)
    url = pool.pick()                 # least requests in flight among healthy endpoints
    pool.started(url); ...; pool.finished(url, error_or_none)
    for url in pool.due_for_probe():  # ejected endpoints whose time-out is over
        pool.probed(url, ready=client_for(url).is_ready())

An endpoint is ejected when a call to it fails with `ServerUnavailableError` other than
`OverloadedError` (the server is down, unreachable or stopping; a busy server stays in). After
`eject_s` (doubling on each failed probe, up to `max_eject_s`) one caller probes it; a ready
answer re-admits it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tritonstack.errors import ConfigError, OverloadedError, ServerUnavailableError

__all__ = ["EndpointPool", "EndpointState", "ejects"]


def ejects(error: BaseException) -> bool:
    """True when `error` says the endpoint itself is down (not merely busy)."""
    return isinstance(error, ServerUnavailableError) and not isinstance(error, OverloadedError)


@dataclass(frozen=True)
class EndpointState:
    """What a caller can read about one endpoint."""

    url: str
    healthy: bool
    in_flight: int
    successes: int
    failures: int
    ejections: int


@dataclass
class _Endpoint:
    url: str
    order: int
    in_flight: int = 0
    successes: int = 0
    failures: int = 0
    ejections: int = 0
    ejected_until: float | None = None  # None: healthy
    eject_s: float = 0.0
    probing: bool = False


class EndpointPool:
    """Thread-safe health state of a fixed set of endpoints."""

    def __init__(self, urls: Sequence[str], *, eject_s: float = 1.0, max_eject_s: float = 30.0) -> None:
        if not urls or len(set(urls)) != len(urls):
            raise ConfigError(f"urls={list(urls)}; give at least one endpoint, each once")
        if not 0 < eject_s <= max_eject_s:
            raise ConfigError(f"eject_s={eject_s}, max_eject_s={max_eject_s}; "
                              "need 0 < eject_s <= max_eject_s")
        self._eject_s, self._max_eject_s = eject_s, max_eject_s
        self._endpoints = {url: _Endpoint(url, i) for i, url in enumerate(urls)}
        self._turn = itertools.count()
        self._lock = threading.Lock()

    @property
    def urls(self) -> list[str]:
        """Every endpoint, healthy or not, in the order given."""
        return list(self._endpoints)

    def pick(self) -> str | None:
        """A healthy endpoint with the fewest calls in flight (rotating on ties), or None."""
        with self._lock:
            healthy = [e for e in self._endpoints.values() if e.ejected_until is None]
            if not healthy:
                return None
            turn = next(self._turn)
            size = len(self._endpoints)
            best = min(healthy, key=lambda e: (e.in_flight, (e.order - turn) % size))
            return best.url

    def started(self, url: str) -> None:
        """Count a call sent to `url`."""
        with self._lock:
            self._endpoints[url].in_flight += 1

    def finished(self, url: str, error: BaseException | None) -> None:
        """Record a call's outcome; eject `url` when the error says it is down."""
        with self._lock:
            endpoint = self._endpoints[url]
            endpoint.in_flight -= 1
            if error is None:
                endpoint.successes += 1
                return
            endpoint.failures += 1
            if ejects(error) and endpoint.ejected_until is None:
                self._eject(endpoint, self._eject_s)

    def _eject(self, endpoint: _Endpoint, for_s: float) -> None:
        endpoint.eject_s = min(for_s, self._max_eject_s)
        endpoint.ejected_until = time.monotonic() + endpoint.eject_s
        endpoint.ejections += 1
        endpoint.probing = False

    def due_for_probe(self) -> list[str]:
        """Ejected endpoints whose time-out is over; each is handed to one caller only."""
        now = time.monotonic()
        with self._lock:
            due = [e for e in self._endpoints.values()
                   if e.ejected_until is not None and e.ejected_until <= now and not e.probing]
            for endpoint in due:
                endpoint.probing = True
            return [e.url for e in due]

    def probed(self, url: str, *, ready: bool) -> None:
        """Re-admit `url` after a ready probe, or eject it again for twice as long."""
        with self._lock:
            endpoint = self._endpoints[url]
            if ready:
                endpoint.ejected_until, endpoint.probing, endpoint.eject_s = None, False, 0.0
            else:
                self._eject(endpoint, endpoint.eject_s * 2)

    def states(self) -> list[EndpointState]:
        """A snapshot of every endpoint."""
        with self._lock:
            return [EndpointState(url=e.url, healthy=e.ejected_until is None, in_flight=e.in_flight,
                                  successes=e.successes, failures=e.failures, ejections=e.ejections)
                    for e in self._endpoints.values()]

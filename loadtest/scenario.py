"""What a Locust load test runs: one frozen Scenario, passed to workers through the environment.

    scenario = Scenario(kind=Kind.OPEN, model="digits_mlp", users=4, rate_rps=400, duration_s=10)
    os.environ.update(scenario.to_env())          # a distributed worker reads Scenario.from_env()

Kinds: `steady` (closed loop, `users` in flight), `ramp` (step ramp: +`step_users` every `step_s`, never
above `users`, ending at `duration_s`),
`spike` (`users`, then `spike_users` from `spike_at_s` for `spike_s`), `open` (constant or Poisson
arrivals at `rate_rps` in total, latency from the scheduled send time).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, TypeVar

from tritonstack.loadtest.schedule import Arrival

from tritonstack.errors import ConfigError

__all__ = ["ENV_KEY", "MAX_TIMEOUT_S", "MIN_TIMEOUT_S", "STOP_WAIT_S", "Kind", "Scenario", "parse_kind",
           "ramp_users_at", "spike_users_at", "step_users_at"]

ENV_KEY = "TRITONSTACK_SCENARIO"
#: The shortest request deadline a scenario takes: gRPC rounds deadlines to milliseconds and the client
#: gives every call at least 1 ms, so a shorter one would let most requests succeed past it.
MIN_TIMEOUT_S = 0.001
#: The longest: gRPC turns a deadline into an absolute instant, and one far enough out (1e10 s) overflows
#: and expires at once, failing every request with DEADLINE_EXCEEDED.
MAX_TIMEOUT_S = 3600.0
#: an open-loop user that stops waits this long at most for its requests in flight; a distributed run's
#: Locust --stop-timeout is this plus 1 s (a user not done by then is killed, and the requests it still
#: had in flight are lost to the report while the server counted them)
STOP_WAIT_S = 10.0


class Kind(str, Enum):
    """Load profile."""

    STEADY = "steady"
    RAMP = "ramp"
    SPIKE = "spike"
    OPEN = "open"


E = TypeVar("E", bound=Enum)


def _parse(enum: type[E], text: E | str, what: str) -> E:
    """The member of `enum` named `text`; ConfigError listing the valid names otherwise."""
    try:
        return enum(text)
    except ValueError:
        valid = " | ".join(member.value for member in enum)
        raise ConfigError(f"unknown {what} {text!r}; use one of: {valid}") from None


def parse_kind(text: Kind | str) -> Kind:
    """The Kind named `text`; ConfigError listing the valid names otherwise."""
    return _parse(Kind, text, "scenario")


def _parse_arrival(text: Arrival | str) -> Arrival:
    return _parse(Arrival, text, "arrival process")


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A Locust load test against one model; every field has a unit in its name or is a count."""

    kind: Kind = Kind.STEADY
    model: str = "digits_mlp"
    users: int = 8
    duration_s: float = 10.0
    spawn_rate: float = 100.0
    rate_rps: float = 200.0
    arrival: Arrival = Arrival.POISSON
    max_in_flight: int = 64  # per user, open loop
    step_users: int = 4
    step_s: float = 2.0
    spike_users: int = 32
    spike_at_s: float = 3.0
    spike_s: float = 2.0
    timeout_s: float = 10.0
    version: str = ""  # model version to load ("": the server's version policy picks)
    inputs_path: str = ""  # .npz of real samples keyed by input name ("": random inputs)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # dims for -1 axes, by input
    http_url: str = ""  # host:port of the same server's HTTP endpoint: Locust's load goes there ("": gRPC)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", parse_kind(self.kind))
        object.__setattr__(self, "arrival", _parse_arrival(self.arrival))
        object.__setattr__(self, "version", str(self.version or ""))
        object.__setattr__(self, "http_url", str(self.http_url or ""))
        object.__setattr__(self, "shapes", {str(k): tuple(int(d) for d in v) for k, v in self.shapes.items()})
        self._check_finite()
        if self.users < 1 or self.duration_s <= 0 or self.timeout_s <= 0:
            raise ConfigError(
                f"users={self.users} must be >= 1, duration_s={self.duration_s} and "
                f"timeout_s={self.timeout_s} > 0"
            )
        if self.kind is Kind.OPEN and (self.rate_rps <= 0 or self.max_in_flight < 1):
            raise ConfigError(f"open loop needs rate_rps > 0 (got {self.rate_rps}) and max_in_flight >= 1")
        if self.kind is Kind.OPEN and self.rate_rps * self.duration_s < 1:
            raise ConfigError(f"--rate {self.rate_rps:g} for --duration {self.duration_s:g} s schedules "
                              f"{self.rate_rps * self.duration_s:g} requests: raise --rate or --duration so "
                              "that their product is at least 1")
        if self.duration_s > 3600:
            raise ConfigError(f"duration_s={self.duration_s} is over an hour; split the run")
        if self.kind is Kind.SPIKE:
            self._check_spike()

    def _check_spike(self) -> None:
        """A spike must happen, fit in the run and add users (else the run and its report mislead)."""
        at, end, run = self.spike_at_s, self.spike_at_s + self.spike_s, self.duration_s
        if at >= run:
            raise ConfigError(f"--spike-at {at:g} is not before --duration {run:g}: the spike would never "
                              "start; use a smaller --spike-at or a longer --duration")
        if end > run:
            raise ConfigError(f"the spike (--spike-at {at:g} + --spike-s {self.spike_s:g}) ends at "
                              f"{end:g} s, after --duration {run:g}; shorten --spike-s or raise --duration")
        if self.spike_users <= self.users:
            raise ConfigError(f"--spike-users {self.spike_users} is not above --users {self.users}: "
                              "no spike; raise --spike-users or lower --users")

    def _check_finite(self) -> None:
        """Rates and times must be finite and positive (inf/nan would reach the JSON report)."""
        flags = {"rate_rps": "--rate", "duration_s": "--duration", "timeout_s": "--timeout-s",
                 "step_s": "--step", "spike_s": "--spike-s", "spawn_rate": ""}
        for name, flag in flags.items():
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                shown = f"{flag} {value}" if flag else f"{name}={value}"
                raise ConfigError(f"{shown}: use a finite number > 0 (e.g. {getattr(Scenario, name):g})")
        if not math.isfinite(self.spike_at_s) or self.spike_at_s < 0:
            raise ConfigError(f"--spike-at {self.spike_at_s}: use a finite number of seconds >= 0")
        if self.timeout_s < MIN_TIMEOUT_S:
            raise ConfigError(
                f"--timeout-s {self.timeout_s:g} is below {MIN_TIMEOUT_S:g} s: gRPC deadlines (and the "
                "client's) have millisecond resolution, so a shorter one is not enforced; use >= 0.001"
            )
        if self.timeout_s > MAX_TIMEOUT_S:
            raise ConfigError(
                f"--timeout-s {self.timeout_s:g} is over {MAX_TIMEOUT_S:g} s: gRPC cannot hold a deadline "
                f"that far out (every request fails at once); use {MIN_TIMEOUT_S:g} to {MAX_TIMEOUT_S:g} s"
            )

    def as_dict(self) -> dict[str, Any]:
        """Plain values (enums as strings)."""
        return {k: (v.value if isinstance(v, Enum) else v) for k, v in asdict(self).items()}

    @property
    def stop_wait_s(self) -> float:
        """How long a stopping open-loop user waits for its requests in flight (see STOP_WAIT_S)."""
        return min(self.timeout_s, STOP_WAIT_S)

    def describe(self) -> dict[str, Any]:
        """The fields that matter for this kind (what a report shows)."""
        only = {
            Kind.STEADY: (),
            Kind.RAMP: ("step_users", "step_s"),
            Kind.SPIKE: ("spike_users", "spike_at_s", "spike_s"),
            Kind.OPEN: ("rate_rps", "arrival", "max_in_flight"),
        }[self.kind]
        optional = {
            "version",
            "inputs_path",
            "http_url",
            "shapes",
            "step_users",
            "step_s",
            "spike_users",
            "spike_at_s",
            "spike_s",
            "rate_rps",
            "arrival",
            "max_in_flight",
        }
        hidden = optional - set(only)
        given = {k: v for k, v in self.as_dict().items() if k in ("version", "inputs_path", "http_url") and v}
        return {k: v for k, v in self.as_dict().items() if k not in hidden} | given

    def to_env(self) -> dict[str, str]:
        """Environment variables that carry this scenario to Locust worker processes."""
        return {ENV_KEY: json.dumps(self.as_dict())}

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Scenario:
        """The scenario set by `to_env`, or the defaults."""
        text = (environ if environ is not None else os.environ).get(ENV_KEY)
        return cls(**json.loads(text)) if text else cls()


def step_users_at(t_s: float, *, step_users: int, step_s: float, steps: int) -> int | None:
    """Users wanted at `t_s` of a step ramp; None once the last step is over."""
    step = int(t_s // step_s)
    return None if step >= steps else step_users * (step + 1)


def ramp_users_at(
    t_s: float, *, users: int | None, step_users: int, step_s: float, duration_s: float
) -> int | None:
    """Users wanted at `t_s` of a step ramp: +`step_users` every `step_s`, capped at `users` (None: no
    cap, as in reports written before the cap), the last step cut at `duration_s`; None from then on."""
    if t_s >= duration_s:
        return None
    wanted = step_users * (int(t_s // step_s) + 1)
    return wanted if users is None else min(wanted, users)


def spike_users_at(
    t_s: float, *, users: int, spike_users: int, spike_at_s: float, spike_s: float, duration_s: float
) -> int | None:
    """Users wanted at `t_s` of a spike profile; None after `duration_s`."""
    if t_s >= duration_s:
        return None
    return spike_users if spike_at_s <= t_s < spike_at_s + spike_s else users

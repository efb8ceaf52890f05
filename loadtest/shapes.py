"""Load profiles as Locust `LoadTestShape`s: step ramp and spike, both ending on their own.

    shape = StepRamp(Scenario(kind=Kind.RAMP, users=12, step_users=4, step_s=2, duration_s=10))  # 4, 8, 12
    shape = Spike(Scenario(kind=Kind.SPIKE, users=8, spike_users=32, spike_at_s=3, spike_s=2))

The user-count logic lives in pure functions (`scenario.ramp_users_at`, `scenario.spike_users_at`) so
it is tested without Locust; the classes only adapt them to `tick()`.
"""

from __future__ import annotations

from locust import LoadTestShape
from tritonstack.loadtest.scenario import Kind, Scenario, ramp_users_at, spike_users_at

__all__ = ["Spike", "StepRamp", "shape_for"]


class StepRamp(LoadTestShape):
    """+`step_users` users every `step_s` seconds up to `users`, for `duration_s`, then stop.

    Built without arguments (as the `locust` command does) it reads `Scenario.from_env()`.
    """

    def __init__(self, scenario: Scenario | None = None) -> None:
        super().__init__()
        self.scenario = scenario or Scenario.from_env()

    def tick(self) -> tuple[int, float] | None:
        """(users, spawn rate) now, or None to stop."""
        s = self.scenario
        users = ramp_users_at(self.get_run_time(), users=s.users, step_users=s.step_users, step_s=s.step_s,
                              duration_s=s.duration_s)
        return None if users is None else (users, s.spawn_rate)


SPIKE_SPAWN_RATE = 100.0  # users/s: as fast as Locust goes without warning ("spawn rate is very high")


class Spike(LoadTestShape):
    """`users`, jumping to `spike_users` from `spike_at_s` for `spike_s`, for `duration_s` in all.

    Built without arguments (as the `locust` command does) it reads `Scenario.from_env()`.
    """

    def __init__(self, scenario: Scenario | None = None) -> None:
        super().__init__()
        self.scenario = scenario or Scenario.from_env()

    def tick(self) -> tuple[int, float] | None:
        """(users, spawn rate) now, or None to stop."""
        s = self.scenario
        users = spike_users_at(
            self.get_run_time(),
            users=s.users,
            spike_users=s.spike_users,
            spike_at_s=s.spike_at_s,
            spike_s=s.spike_s,
            duration_s=s.duration_s,
        )
        return None if users is None else (users, SPIKE_SPAWN_RATE)


def shape_for(scenario: Scenario) -> LoadTestShape | None:
    """The shape a scenario needs (None for steady and open loop, which run a fixed user count)."""
    if scenario.kind is Kind.RAMP:
        return StepRamp(scenario)
    if scenario.kind is Kind.SPIKE:
        return Spike(scenario)
    return None

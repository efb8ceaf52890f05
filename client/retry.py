"""When to retry: exponential backoff with full jitter, for retryable errors, within a deadline.

    policy = RetryPolicy(attempts=4, initial_backoff_s=0.05)
    pause = policy.pause_s(error, attempt, deadline)   # None: give up and re-raise

Both clients and the balancers run their own small loop (sleep vs. await) around this one
decision, so the rules live here once. Only idempotent reads and inference are retried.
"""

from __future__ import annotations

import math
import numbers
import random
import time
from dataclasses import dataclass

from tritonstack.client.errors import RETRYABLE

from tritonstack.errors import ConfigError

__all__ = ["RetryPolicy", "checked_seconds"]


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter, for idempotent calls (inference, model discovery).

    Retryable: `ServerUnavailableError` (down, unreachable, stopping, overloaded) and
    `ModelNotReadyError` (loading/unloading); see `tritonstack.client.errors.RETRYABLE`. Never
    retried: invalid input, unknown model, deadline exceeded, access denied, internal errors.
    """

    attempts: int = 4
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 2.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        numbers = (self.attempts, self.initial_backoff_s, self.max_backoff_s, self.multiplier)
        if not all(_is_number(n) and math.isfinite(n) for n in numbers) or self.attempts < 1 \
                or min(self.initial_backoff_s, self.max_backoff_s) < 0 or self.multiplier < 1:
            raise ConfigError(f"invalid retry policy {self}; attempts >= 1, finite backoffs >= 0, "
                              "finite multiplier >= 1")

    def backoff_s(self, attempt: int) -> float:
        """Seconds to sleep after failed attempt number `attempt` (1-based)."""
        cap = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))
        return random.uniform(0, cap)  # noqa: S311 - jitter, not cryptography

    def should_retry(self, error: Exception, attempt: int) -> bool:
        """True when `error` is retryable and attempts remain."""
        return isinstance(error, RETRYABLE) and attempt < self.attempts

    def pause_s(self, error: Exception, attempt: int, deadline: float) -> float | None:
        """Seconds to wait before retrying after `error`, or None to give up and re-raise.

        Gives up when the error is not retryable, the attempts are spent, or the pause would end
        past `deadline` (a `time.monotonic()` value).
        """
        if not self.should_retry(error, attempt):
            return None
        pause = self.backoff_s(attempt)
        return pause if time.monotonic() + pause < deadline else None


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)  # numpy scalars too


def checked_seconds(name: str, value: object) -> float:
    """`value` as a duration in seconds, or ConfigError naming `name` unless it is a finite number > 0
    (a NaN deadline would otherwise end every call at once, or a wait never)."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:  # type: ignore[arg-type,operator]
        raise ConfigError(f"{name}={value!r}; pass a finite number of seconds > 0")
    return float(value)  # type: ignore[arg-type]

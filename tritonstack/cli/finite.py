"""Float options that refuse nan and inf in one line naming the option: typer's own range check says
"nan: should be >= 0.5" (misleading) and, with no bound, lets nan through (`--max-error-rate nan` never
tripped).

    duration: Annotated[float, typer.Option(help="Seconds.", **finite("--duration", 0.5, 3600))] = 10.0
    # --duration nan -> ConfigError "--duration nan is not a finite number; use one from 0.5 to 3600"
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tritonstack.errors import ConfigError

__all__ = ["finite"]


def _bounds(low: float | None, high: float | None) -> str:
    """' from A to B', ' >= A', ' <= B' or ''."""
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    if low is not None:
        return f" >= {low:g}"
    return f" <= {high:g}" if high is not None else ""


def _parser(flag: str, low: float | None, high: float | None) -> Callable[[Any], float]:
    def parse(text: Any) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise ConfigError(f"{flag} {text!r} is not a number; use one{_bounds(low, high)}") from None
        if not math.isfinite(value):
            raise ConfigError(f"{flag} {text} is not a finite number; use one{_bounds(low, high)}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f"{flag} {value:g} is out of range; use a number{_bounds(low, high)}")
        return value

    return parse


def finite(flag: str, low: float | None = None, high: float | None = None) -> dict[str, Any]:
    """typer.Option keywords for a float option `flag` in [low, high] that must be finite: the bounds
    shown in --help (min/max) and a parser that enforces them, raising ConfigError (one line, exit 2)."""
    return {"min": low, "max": high, "parser": _parser(flag, low, high)}

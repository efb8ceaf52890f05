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


def _bounds(low: float | None, high: float | None, example: float = 1.0) -> str:
    """' from A to B', ' >= A', ' <= B' or, with no bound, ' such as <example>' (the sentence never ends
    on a bare "use one")."""
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    if low is not None:
        return f" >= {low:g}"
    return f" <= {high:g}" if high is not None else f" such as {example:g}"


def _parser(flag: str, low: float | None, high: float | None, example: float) -> Callable[[Any], float]:
    def parse(text: Any) -> float:
        hint = _bounds(low, high, example)
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise ConfigError(f"{flag} {text!r} is not a number; use one{hint}") from None
        if not math.isfinite(value):
            raise ConfigError(f"{flag} {text} is not a finite number; use one{hint}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f"{flag} {value:g} is out of range; use a number{hint}")
        return value

    return parse


def finite(
    flag: str, low: float | None = None, high: float | None = None, *, example: float = 1.0
) -> dict[str, Any]:
    """typer.Option keywords for a float option `flag` in [low, high] that must be finite: the bounds
    shown in --help (min/max) and a parser that enforces them, raising ConfigError (one line, exit 2).
    `example` is the value suggested when there is no bound ("use one such as 10")."""
    return {"min": low, "max": high, "parser": _parser(flag, low, high, example)}

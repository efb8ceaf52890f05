"""Precisions a model can be converted to, and how closely each must match its source.

    tolerance = DEFAULT_TOLERANCES[Precision.FP16]      # Tolerance(atol=0.05, rtol=0.05)
    tolerance = Tolerance.parse("1e-4,1e-3")

INT8 outputs are not expected to match element-wise: their errors are measured and recorded,
and the accuracy gate decides (pass `Tolerance` for INT8 to fail on element-wise error as well).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from tritonstack.errors import ConfigError

__all__ = ["DEFAULT_TOLERANCES", "Precision", "Tolerance", "parse_precisions"]


class Precision(str, Enum):
    """A numeric precision of a served model."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


@dataclass(frozen=True, kw_only=True)
class Tolerance:
    """Element-wise bound: |actual - expected| <= atol + rtol * |expected|."""

    atol: float
    rtol: float

    def __post_init__(self) -> None:
        if self.atol < 0 or self.rtol < 0:
            raise ConfigError(f"tolerance atol={self.atol}, rtol={self.rtol} must be >= 0")

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        """Parse `ATOL,RTOL`, e.g. `1e-4,1e-3`."""
        try:
            atol, rtol = (float(part) for part in text.split(","))
        except ValueError as exc:
            raise ConfigError(f"tolerance {text!r} is not ATOL,RTOL; use e.g. 1e-4,1e-3") from exc
        return cls(atol=atol, rtol=rtol)


DEFAULT_TOLERANCES: dict[Precision, Tolerance | None] = {
    Precision.FP32: Tolerance(atol=1e-4, rtol=1e-3),
    Precision.FP16: Tolerance(atol=5e-2, rtol=5e-2),
    Precision.INT8: None,
}


def parse_precisions(text: str) -> tuple[Precision, ...]:
    """Parse `fp32,fp16,int8`; FP32 is always built first because the others are derived from it."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    valid = [p.value for p in Precision]
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ConfigError(f"precision(s) {unknown} unknown; choose from {','.join(valid)}")
    return tuple(p for p in Precision if p.value in names or p is Precision.FP32)

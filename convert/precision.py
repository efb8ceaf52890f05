"""Precisions a model can be converted to, and how closely each must match its source.

    tolerance = DEFAULT_TOLERANCES[Precision.FP16]      # Tolerance(atol=0.05, rtol=0.05, min_cosine=0.99)
    tolerance = Tolerance.parse("1e-4,1e-3")            # min_cosine 0.999 unless given third

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
    """Element-wise bound |actual - expected| <= atol + rtol * |expected|, and a scale-free one:
    each output row's cosine similarity to the source's >= min_cosine (see convert.verify)."""

    atol: float
    rtol: float
    min_cosine: float | None = 0.999

    def __post_init__(self) -> None:
        if self.atol < 0 or self.rtol < 0:
            raise ConfigError(f"tolerance atol={self.atol}, rtol={self.rtol} must be >= 0")
        if self.min_cosine is not None and not -1.0 <= self.min_cosine <= 1.0:
            raise ConfigError(f"tolerance min_cosine={self.min_cosine} must be in [-1, 1]")

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        """Parse `ATOL,RTOL` or `ATOL,RTOL,MIN_COSINE`, e.g. `1e-4,1e-3` or `1e-2,1e-2,0.99`."""
        try:
            values = [float(part) for part in text.split(",")]
            if len(values) not in (2, 3):
                raise ValueError(text)
        except ValueError as exc:
            raise ConfigError(f"tolerance {text!r} is not ATOL,RTOL[,MIN_COSINE]; use e.g. 1e-4,1e-3 "
                              "or 1e-2,1e-2,0.99") from exc
        return cls(atol=values[0], rtol=values[1], min_cosine=values[2] if len(values) == 3 else 0.999)


DEFAULT_TOLERANCES: dict[Precision, Tolerance | None] = {
    Precision.FP32: Tolerance(atol=1e-4, rtol=1e-3, min_cosine=0.999),
    Precision.FP16: Tolerance(atol=5e-2, rtol=5e-2, min_cosine=0.99),
    Precision.INT8: None,
}


def parse_precisions(text: str) -> tuple[Precision, ...]:
    """Parse `fp32,fp16,int8`; FP32 is always built first because the others are derived from it."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    valid = [p.value for p in Precision]
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ConfigError(f"precision(s) {unknown} unknown; choose from {','.join(valid)}")
    if not names:
        raise ConfigError(f"--precision {text!r} is empty; pass one or more of {','.join(valid)}, "
                          "e.g. fp32,fp16")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"--precision {text!r} names {', '.join(map(repr, repeated))} more than once; "
                          "name each precision once")
    return tuple(p for p in Precision if p.value in names or p is Precision.FP32)

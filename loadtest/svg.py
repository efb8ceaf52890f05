"""Tiny inline-SVG charts for the self-contained HTML report (no JavaScript, no network).

svg = line_chart("Latency", [Series("p99", xs, ys, "#d62728")], x_label="s", y_label="ms",
                 x_range=(0, 10), bands=[Band(3, 5, "spike")])

Charts that share a time axis pass the same `x_range`; a `Band` shades a window (e.g. a spike).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Band", "Series", "line_chart", "nice_ticks", "titled"]

WIDTH, HEIGHT = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 62, 16, 36, 46


@dataclass(frozen=True)
class Series:
    """One named line (or set of dots) of a chart."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    color: str
    dots: bool = False


@dataclass(frozen=True)
class Band:
    """A shaded x window with a label, drawn behind the series."""

    x0: float
    x1: float
    label: str
    color: str = "#ff7f0e"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high) or high <= low:
        high = low + 1.0
    raw = (high - low) / max(count, 1)
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if raw <= step * m)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    ticks = [round(i * step, 10) for i in range(first, last + 1)]
    return ticks if len(ticks) > 1 else [ticks[0], ticks[0] + step]


def _fmt(value: float) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    return f"{value / 1e3:g}k" if abs(value) >= 1e3 else f"{value:g}"


def _bounds(series: Sequence[Series], x_range: tuple[float, float] | None) -> tuple[list[float], list[float]]:
    xs = [float(x) for s in series for x, y in zip(s.xs, s.ys, strict=False) if y is not None]
    ys = [float(y) for s in series for y in s.ys if y is not None]
    if not xs:
        return (nice_ticks(*x_range) if x_range else [0.0, 1.0]), [0.0, 1.0]
    x_ticks = nice_ticks(*x_range) if x_range else nice_ticks(min(xs), max(xs))
    y_ticks = nice_ticks(min(0.0, min(ys)), max(ys) * 1.05 if max(ys) > 0 else 1.0)
    return x_ticks, y_ticks


def _axes(x_ticks: list[float], y_ticks: list[float], sx, sy, x_label: str, y_label: str) -> list[str]:  # noqa: ANN001
    parts = []
    for y in y_ticks:
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#e5e5e5"/>'
        )
        parts.append(f'<text x="{LEFT - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{_fmt(y)}</text>')
    for x in x_ticks:
        parts.append(
            f'<text x="{sx(x):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{_fmt(x)}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}" '
        'stroke="#444"/>'
    )
    parts.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="#444"/>')
    parts.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 8}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    parts.append(
        f'<text transform="translate(14,{(TOP + HEIGHT - BOTTOM) / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    return parts


def _plot(series: Series, sx, sy) -> list[str]:  # noqa: ANN001
    points = [
        (sx(float(x)), sy(float(y))) for x, y in zip(series.xs, series.ys, strict=False) if y is not None
    ]
    color = escape(series.color)
    if series.dots or len(points) == 1:
        return [
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"/>' for x, y in points
        ]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return [f'<polyline class="line" fill="none" stroke="{color}" stroke-width="2" points="{path}"/>']


def _legend(series: Sequence[Series]) -> list[str]:
    parts, x = [], LEFT
    for s in series:
        parts.append(f'<rect x="{x}" y="{TOP - 22}" width="12" height="12" fill="{escape(s.color)}"/>')
        parts.append(f'<text x="{x + 16}" y="{TOP - 12}">{escape(s.name)}</text>')
        x += 24 + 8 * len(s.name)
    return parts


def _bands(bands: Sequence[Band], sx) -> list[str]:  # noqa: ANN001
    parts = []
    for b in bands:
        x0, x1 = sx(b.x0), sx(b.x1)
        color = escape(b.color)
        parts.append(
            f'<rect class="band" x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{HEIGHT - TOP - BOTTOM}" fill="{color}" fill-opacity="0.15"/>'
        )
        parts.append(f'<text x="{x0 + 4:.1f}" y="{TOP + 12}" fill="{color}">{escape(b.label)}</text>')
    return parts


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float] | None = None,
    bands: Sequence[Band] = (),
) -> str:
    """An <svg> element with axes, grid, legend, shaded bands and one polyline (or dots) per series.

    `x_range` fixes the x axis (charts over the same run share it); points outside are not drawn.
    """
    if x_range is not None:
        lo, hi = x_range
        series = [
            Series(
                s.name,
                s.xs,
                [y if lo <= x <= hi else None for x, y in zip(s.xs, s.ys, strict=False)],
                s.color,
                s.dots,
            )
            for s in series
        ]
    x_ticks, y_ticks = _bounds(series, x_range)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def sx(x: float) -> float:
        return LEFT + (x - x0) / ((x1 - x0) or 1) * (WIDTH - LEFT - RIGHT)

    def sy(y: float) -> float:
        return HEIGHT - BOTTOM - (y - y0) / ((y1 - y0) or 1) * (HEIGHT - TOP - BOTTOM)

    body = _bands(bands, sx) + _axes(x_ticks, y_ticks, sx, sy, x_label, y_label) + _legend(series)
    for s in series:
        body += _plot(s, sx, sy)
    if not any(y is not None for s in series for y in s.ys):
        body.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#888">no data</text>')
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def titled(svg: str) -> str:
    """The chart's <title> repeated as a visible heading above it."""
    title = svg.split("<title>", 1)[1].split("</title>", 1)[0] if "<title>" in svg else ""
    return f"<h2>{title}</h2>{svg}"

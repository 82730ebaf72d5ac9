"""Inline SVG charts for the HTML report: line charts and stacked bars, no JavaScript.

Charts scale to their container (``viewBox``, width 100 %); text sizes are chosen so that they
stay legible when a phone shrinks a chart to ~380 px. Colours come from CSS classes (``s0``...)
so the page's stylesheet decides them, in light and dark mode alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Series", "bar_chart", "line_chart", "nice_ticks"]

WIDTH, HEIGHT = 480.0, 210.0
LEFT, RIGHT, TOP, BOTTOM = 52.0, 12.0, 12.0, 28.0


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    values: Sequence[float | None]  # one per x; None leaves a gap


def nice_ticks(maximum: float, count: int = 4) -> list[float]:
    """0 and round steps (1, 2, 2.5, 5 × 10ⁿ) up to at least ``maximum``."""
    if not maximum > 0.0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < maximum * (1.0 - 1e-9):
        ticks.append(ticks[-1] + step)
    return ticks


def _fmt_tick(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    if value >= 1e4:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _fmt_time(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}"


class _Frame:
    """Maps data to the plot area and draws the axes."""

    def __init__(self, xs: Sequence[float], y_max: float, bands: bool = False) -> None:
        self.x_min = xs[0] if xs else 0.0
        self.x_span = max((xs[-1] - self.x_min) if xs else 0.0, 1e-9)
        self.x_pad = 0.0
        if bands:  # bars: each x is the middle of its band, the bands fill the plot area
            band = self.x_span / (len(xs) - 1) if len(xs) > 1 else 1.0
            self.x_span, self.x_pad = self.x_span + band, band / 2.0
        self.ticks = nice_ticks(y_max)
        self.y_top = self.ticks[-1]

    @property
    def band_width(self) -> float:
        return 2.0 * self.x_pad / self.x_span * (WIDTH - LEFT - RIGHT)

    def x(self, value: float) -> float:
        return LEFT + (value - self.x_min + self.x_pad) / self.x_span * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return HEIGHT - BOTTOM - value / self.y_top * (HEIGHT - TOP - BOTTOM)

    def axes(self, xs: Sequence[float], x_format: Callable[[float], str]) -> list[str]:
        parts = []
        for tick in self.ticks:
            y = self.y(tick)
            parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>')
            parts.append(f'<text class="ylab" x="{LEFT - 6}" y="{y + 4:.1f}">{_fmt_tick(tick)}</text>')
        indexes = _x_tick_indexes(len(xs))
        for index in indexes:
            last = index == indexes[-1] and index and not self.x_pad
            x, anchor = self.x(xs[index]), "end" if last else "middle"
            label, y = escape(x_format(xs[index])), HEIGHT - 8
            parts.append(f'<text class="xlab" x="{x:.1f}" y="{y:g}" text-anchor="{anchor}">{label}</text>')
        return parts


def _x_tick_indexes(n: int, count: int = 5) -> list[int]:
    """At most ``count`` evenly spaced indexes, starting at 0."""
    step = max(1, math.ceil((n - 1) / (count - 1))) if n > 1 else 1
    return list(range(0, n, step))


def _svg(title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH:g} {HEIGHT:g}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def _segments(frame: _Frame, xs: Sequence[float], values: Sequence[float | None]) -> list[list[str]]:
    segments: list[list[str]] = [[]]
    for x, value in zip(xs, values, strict=True):
        if value is None:
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append(f"{frame.x(x):.1f},{frame.y(value):.1f}")
    return [segment for segment in segments if segment]


def _legend(labels: Sequence[str]) -> str:
    items = "".join(
        f'<li><span class="sw s{i}"></span>{escape(label)}</li>' for i, label in enumerate(labels)
    )
    return f'<ul class="legend">{items}</ul>'


def line_chart(
    title: str, xs: Sequence[float], series: Sequence[Series], x_format: Callable[[float], str] = _fmt_time
) -> str:
    """A figure with one line per series over ``xs`` (by default seconds from the start of the run,
    labelled m:ss; ``x_format`` labels other axes, such as users)."""
    values = [v for s in series for v in s.values if v is not None]
    if not xs or not values:
        return _empty(title)
    frame = _Frame(xs, max(values))
    body = frame.axes(xs, x_format)
    for index, one in enumerate(series):
        for points in _segments(frame, xs, one.values):
            if len(points) == 1:
                x, y = points[0].split(",")
                body.append(f'<circle class="dot s{index}" cx="{x}" cy="{y}" r="2.5"/>')
            else:
                body.append(f'<polyline class="line s{index}" points="{" ".join(points)}"/>')
    return _figure(title, _svg(title, body), [one.label for one in series])


def bar_chart(title: str, xs: Sequence[float], series: Sequence[Series]) -> str:
    """Stacked bars (counts per bucket), one colour per series."""
    totals = [sum(s.values[i] or 0.0 for s in series) for i in range(len(xs))]
    if not xs or not series or max(totals, default=0.0) <= 0.0:
        return _empty(title, "none")
    frame = _Frame(xs, max(totals), bands=True)
    slot = frame.band_width
    body = frame.axes(xs, _fmt_time)
    for i, x in enumerate(xs):
        base = 0.0
        for index, one in enumerate(series):
            value = one.values[i] or 0.0
            if value > 0.0:
                top, bottom = frame.y(base + value), frame.y(base)
                left = frame.x(x) - slot * 0.4
                body.append(
                    f'<rect class="bar s{index}" x="{left:.1f}" y="{top:.1f}" '
                    f'width="{max(slot * 0.8, 1.0):.1f}" height="{bottom - top:.1f}"/>'
                )
                base += value
    return _figure(title, _svg(title, body), [one.label for one in series])


def _figure(title: str, svg: str, labels: Sequence[str]) -> str:
    return f'<figure class="card"><figcaption>{escape(title)}</figcaption>{svg}{_legend(labels)}</figure>'


def _empty(title: str, what: str = "no data") -> str:
    return (
        f'<figure class="card"><figcaption>{escape(title)}</figcaption><p class="muted">{what}</p></figure>'
    )

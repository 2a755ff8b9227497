"""Inline SVG charts of the printable tourism report: static markup (no script, no fonts or files
fetched), so the page prints and saves as PDF as it is.

Every chart draws intervals, not only points: a released value is an estimate with noise, and the
interval is the honest part of it. Sizes are SVG user units (the page scales them to its width).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 40
INK, BAND, CAPACITY, WARNING = "#1f4e79", "#9dc3e6", "#c00000", "#ed7d31"


@dataclass(frozen=True)
class Bar:
    """One value with its 95% interval, drawn at ``label``."""

    label: str
    value: float
    lo: float
    hi: float


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2 or 5 × a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(float(m * power) for m in (1, 2, 5, 10) if m * power >= value)


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 10 else f"{v:,.1f}".rstrip("0").rstrip(".")


class _Plot:
    """Axes of one chart: maps values to SVG coordinates and collects its elements."""

    def __init__(self, title: str, ymax: float, n: int, unit: str) -> None:
        self.title, self.ymax, self.n = title, _nice_max(ymax), max(n, 1)
        self.parts: list[str] = []
        self.unit = unit

    def x(self, i: float) -> float:
        """Centre of slot ``i`` of ``n``."""
        return LEFT + (i + 0.5) * (WIDTH - LEFT - RIGHT) / self.n

    def y(self, v: float) -> float:
        v = min(max(v, 0.0), self.ymax)  # intervals below zero are cut at the axis
        return TOP + (1 - v / self.ymax) * (HEIGHT - TOP - BOTTOM)

    @property
    def slot(self) -> float:
        return (WIDTH - LEFT - RIGHT) / self.n

    def axes(self, labels: Sequence[str], every: int = 1) -> None:
        bottom = HEIGHT - BOTTOM
        for k in range(5):
            v = self.ymax * k / 4
            y = self.y(v)
            self.parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                              f'stroke="#ddd"/><text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
                              f'font-size="11">{_num(v)}</text>')  # fmt: skip
        for i, label in enumerate(labels):
            if i % every == 0:
                self.parts.append(f'<text x="{self.x(i):.1f}" y="{bottom + 16}" text-anchor="middle" '
                                  f'font-size="11">{escape(label)}</text>')  # fmt: skip
        self.parts.append(f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" '
                          'stroke="#333"/>'
                          f'<text x="12" y="{TOP + 4}" font-size="11" transform="rotate(-90 12 {TOP + 4})" '
                          f'text-anchor="end">{escape(self.unit)}</text>')  # fmt: skip

    def hline(self, v: float, color: str, label: str, dash: str = "") -> None:
        y = self.y(v)
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                          f'stroke="{color}" stroke-width="1.5"{dashed}/><text x="{WIDTH - RIGHT - 4}" '
                          f'y="{y - 4:.1f}" text-anchor="end" font-size="11" fill="{color}">'
                          f'{escape(label)}</text>')  # fmt: skip

    def whisker(self, i: int, lo: float, hi: float) -> None:
        x, w = self.x(i), min(8.0, self.slot / 4)
        y0, y1 = self.y(lo), self.y(hi)
        self.parts.append(f'<path d="M{x:.1f} {y0:.1f}V{y1:.1f}M{x - w:.1f} {y0:.1f}H{x + w:.1f}'
                          f'M{x - w:.1f} {y1:.1f}H{x + w:.1f}" stroke="#333" fill="none"/>')  # fmt: skip

    def svg(self, role_label: str) -> str:
        body = "".join(self.parts)
        return (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
                f'aria-label="{escape(role_label)}" xmlns="http://www.w3.org/2000/svg">'
                f'<title>{escape(self.title)}</title>{body}</svg>')  # fmt: skip


def occupancy_chart(hours: Sequence[Bar], capacity: float | None, warning_at: float | None, unit: str) -> str:
    """Mean occupancy per local hour as a line inside its 95% band, with capacity and its 80% line."""
    top = max([h.hi for h in hours] + [capacity or 0.0, 1.0])
    plot = _Plot("Occupancy by local hour", top * 1.05, len(hours), unit)
    plot.axes([h.label for h in hours], every=2 if len(hours) > 12 else 1)
    if hours:
        upper = " ".join(f"{plot.x(i):.1f},{plot.y(h.hi):.1f}" for i, h in enumerate(hours))
        lower = " ".join(f"{plot.x(i):.1f},{plot.y(h.lo):.1f}" for i, h in reversed(list(enumerate(hours))))
        line = " ".join(f"{plot.x(i):.1f},{plot.y(h.value):.1f}" for i, h in enumerate(hours))
        plot.parts.append(f'<polygon class="band" points="{upper} {lower}" fill="{BAND}" stroke="none"/>'
                          f'<polyline class="curve" points="{line}" fill="none" stroke="{INK}" '
                          f'stroke-width="2.5"/>')  # fmt: skip
    if capacity:
        plot.hline(capacity, CAPACITY, f"capacity {_num(capacity)}")
    if warning_at:
        plot.hline(warning_at, WARNING, f"80% warning {_num(warning_at)}", dash="6 4")
    return plot.svg("hourly occupancy with 95% band, capacity and 80% warning line")


def bar_chart(title: str, bars: Sequence[Bar], unit: str, every: int = 1) -> str:
    """Bars with their 95% interval whiskers (dwell histogram, visitors per day); a bar whose value
    is NaN keeps its slot and draws nothing (a day not released)."""
    plot = _Plot(title, max([b.hi for b in bars if not math.isnan(b.hi)] + [1.0]) * 1.05, len(bars), unit)
    plot.axes([b.label for b in bars], every=every)
    width = plot.slot * 0.6
    for i, b in enumerate(bars):
        if math.isnan(b.value):
            continue
        y = plot.y(b.value)
        plot.parts.append(f'<rect class="bar" x="{plot.x(i) - width / 2:.1f}" y="{y:.1f}" '
                          f'width="{width:.1f}" height="{plot.y(0) - y:.1f}" fill="{INK}"/>')  # fmt: skip
        plot.whisker(i, b.lo, b.hi)
    return plot.svg(f"{title} with 95% intervals")

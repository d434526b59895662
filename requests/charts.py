"""Charts drawn on the server as SVG geometry: the template turns it into markup, so the page needs
no script, no chart library and no inline style (colours come from classes in portal.css)."""

from __future__ import annotations

import math
from dataclasses import dataclass

# The drawing's own units; the SVG scales to its container through its viewBox.
WIDTH = 720
HEIGHT = 260
LEFT = 40  # room for the axis numbers
RIGHT = 8
TOP = 12
BOTTOM = 40  # room for the month names
GROUP_GAP = 0.3  # share of a group's width left empty between groups


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str
    value: int


@dataclass(frozen=True)
class Group:
    label: object  # what the template formats (a month's date)
    center: float
    bars: list[Bar]


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    left: int
    right: float
    top: int
    baseline: float
    ticks: list[tuple[float, int]]  # (y, value) of each horizontal grid line
    groups: list[Group]


def nice_step(maximum: int, *, lines: int = 4) -> int:
    """A round step (1, 2 or 5 times a power of ten) giving at most `lines` grid lines."""
    if maximum <= lines:
        return 1
    raw = maximum / lines
    power = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        if multiple * power >= raw:
            return int(multiple * power)
    return int(10 * power)  # pragma: no cover - the loop always returns


def grouped_bars(rows: list[tuple[object, dict[str, int]]], series: list[str]) -> BarChart:
    """Bars grouped per row (a month), one bar per series (a kind) in the given order."""
    maximum = max((value for _, counts in rows for value in counts.values()), default=0)
    step = nice_step(maximum)
    top_value = max(step, math.ceil(maximum / step) * step)
    plot_height = HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_height
    plot_width = WIDTH - LEFT - RIGHT
    group_width = plot_width / max(len(rows), 1)
    bar_width = group_width * (1 - GROUP_GAP) / max(len(series), 1)

    def y_of(value: int) -> float:
        return round(baseline - plot_height * value / top_value, 2)

    groups = []
    for index, (label, counts) in enumerate(rows):
        start = LEFT + index * group_width + group_width * GROUP_GAP / 2
        bars = [
            Bar(
                x=round(start + position * bar_width, 2),
                y=y_of(counts.get(name, 0)),
                width=round(bar_width, 2),
                height=round(baseline - y_of(counts.get(name, 0)), 2),
                series=name,
                value=counts.get(name, 0),
            )
            for position, name in enumerate(series)
        ]
        groups.append(
            Group(label=label, center=round(LEFT + (index + 0.5) * group_width, 2), bars=bars)
        )
    return BarChart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP,
        baseline=baseline,
        ticks=[(y_of(value), value) for value in range(0, top_value + 1, step)],
        groups=groups,
    )

"""The admin console's charts, drawn on the server as SVG (no script, no CDN): bars by day and bars by app.
Each chart's numbers are also a table beside it (templates/admin_chart.html), for screen readers and for
copying."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

WIDTH, HEIGHT, GUTTER = 640, 200, 28  # the drawing's box; GUTTER holds the axis labels
LABELS = 190  # the apps' names beside horizontal bars


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int  # which of the chart's series (its colour)
    label: str  # what a pointer's tooltip says


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    ticks: list[tuple[float, str]]  # (x, label) under the bars
    maximum: float
    rows: list[tuple[str, list[float | None]]]  # the table: a label and one value per series


def days_ending(today: date, count: int) -> list[date]:
    return [today - timedelta(days=count - 1 - n) for n in range(count)]


def by_day(activity: list[dict[str, Any]], event_types: tuple[str, ...], days: list[date]) -> Chart:
    """Grouped bars per day: one series per event type (``activity_by_day`` of the statistics)."""
    counts = {(row["day"], row["event_type"]): row["count"] for row in activity}
    rows: list[tuple[str, list[float | None]]] = [
        (day.isoformat(), [float(counts.get((day.isoformat(), kind), 0)) for kind in event_types])
        for day in days
    ]
    maximum = max((value or 0 for _, values in rows for value in values), default=0) or 1
    slot = WIDTH / max(len(rows), 1)
    width = slot * 0.8 / len(event_types)
    bars, ticks = [], []
    for n, (day, values) in enumerate(rows):
        for s, value in enumerate(values):
            height = (value or 0) / maximum * (HEIGHT - GUTTER)
            x = n * slot + slot * 0.1 + s * width
            bars.append(Bar(x, HEIGHT - GUTTER - height, width, height, s, f"{day}: {value:g}"))
        if n % 7 == len(rows) % 7 - 1 or n == len(rows) - 1:
            ticks.append((n * slot + slot / 2, day[5:]))
    return Chart(bars, ticks, maximum, rows)


def by_app(rows: list[tuple[str, float | None]]) -> Chart:
    """One horizontal bar per app (most used apps, refresh rate), its name at the left (``LABELS`` wide)."""
    maximum = max((value or 0 for _, value in rows), default=0) or 1
    slot = (HEIGHT - GUTTER) / max(len(rows), 1)
    length = WIDTH - LABELS - GUTTER
    bars = [
        Bar(
            LABELS, n * slot + slot * 0.15, (value or 0) / maximum * length, slot * 0.7, 0, f"{name}: {value}"
        )
        for n, (name, value) in enumerate(rows)
    ]
    ticks = [(n * slot + slot / 2, name) for n, (name, _) in enumerate(rows)]
    return Chart(bars, ticks, maximum, [(name, [value]) for name, value in rows])

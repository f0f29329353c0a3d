"""Line charts over time as inline SVG, scaled to the data they draw.

The time axis spans the data's first to last time (a little wider when they are close
together, never years for a day of data), with ticks at round local times: minutes and
hours within a session, days and weeks over a course, months over a year. Values are
drawn as points joined by lines; limits as dashed horizontal rules; events (sessions
given) as grey vertical lines.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

from markupsafe import Markup

#: colours that stay apart in print and for the common colour-vision deficiencies (Okabe-Ito)
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")

_MINUTE_STEPS = (5, 10, 15, 20, 30, 60, 120, 180, 360, 720)
_DAY_STEPS = (1, 2, 7, 14)
_MONTH_STEPS = (1, 2, 3, 6, 12)
_MAX_TICKS = 8
#: the width of a character of the charts' 9-unit DejaVu Sans, a little generous
_TEXT_WIDTH = 5.6


@dataclass(frozen=True, slots=True)
class Series:
    """One line: its label and its points (aware times, values)."""

    label: str
    points: tuple[tuple[datetime, float], ...]


@dataclass(frozen=True, slots=True)
class Rule:
    """A horizontal reference line (a limit in force), with what it is."""

    value: float
    label: str


@dataclass(frozen=True, slots=True)
class Tick:
    """A tick of the time axis and its label (empty: the tick has no label)."""

    at: datetime
    label: str


def time_ticks(start: datetime, end: datetime, zone: ZoneInfo) -> list[Tick]:
    """Round local times between ``start`` and ``end``, at most eight, labelled.

    Examples
    --------
    >>> from datetime import UTC
    >>> z = ZoneInfo("Europe/Amsterdam")
    >>> [t.label for t in time_ticks(datetime(2026, 3, 2, 8, 50, tzinfo=UTC),
    ...                              datetime(2026, 3, 2, 13, 5, tzinfo=UTC), z)]
    ['10:00', '11:00', '12:00', '13:00', '14:00']
    >>> [t.label for t in time_ticks(datetime(2026, 3, 1, tzinfo=UTC),
    ...                              datetime(2026, 3, 20, tzinfo=UTC), z)]
    ['2 Mar', '9 Mar', '16 Mar']
    """
    span = (end - start).total_seconds()
    for minutes in _MINUTE_STEPS:
        if span / (minutes * 60) <= _MAX_TICKS:
            return _minute_ticks(start, end, zone, minutes)
    for days in _DAY_STEPS:
        if span / (days * 86400) <= _MAX_TICKS:
            return _day_ticks(start, end, zone, days)
    for months in _MONTH_STEPS:
        if span / (months * 30.44 * 86400) <= _MAX_TICKS:
            return _month_ticks(start, end, zone, months)
    years = max(1, math.ceil(span / (365.25 * 86400) / _MAX_TICKS))
    return [
        t for t in _month_ticks(start, end, zone, 12) if t.at.astimezone(zone).year % years == 0
    ]


def _minute_ticks(start: datetime, end: datetime, zone: ZoneInfo, minutes: int) -> list[Tick]:
    here = start.astimezone(zone)
    midnight = here.replace(hour=0, minute=0, second=0, microsecond=0)
    n = math.ceil((here - midnight).total_seconds() / 60 / minutes)
    ticks: list[Tick] = []
    seen_day = None
    while True:
        at = midnight + timedelta(minutes=n * minutes)  # wall-clock arithmetic in the zone
        if at > end:
            return ticks
        label = at.strftime("%H:%M")
        if at.hour == 0 and at.minute == 0:
            label = f"{at.day} {at:%b}"  # midnight: the day it begins
        elif seen_day is not None and at.date() != seen_day:
            label = f"{at.day} {at:%b} {label}"
        seen_day = at.date()
        ticks.append(Tick(at, label))
        n += 1


def _day_ticks(start: datetime, end: datetime, zone: ZoneInfo, days: int) -> list[Tick]:
    day = start.astimezone(zone).date()
    if days == 7 or days == 14:
        day += timedelta(days=(7 - day.weekday()) % 7)  # Mondays
    ticks: list[Tick] = []
    while True:
        at = datetime(day.year, day.month, day.day, tzinfo=zone)
        if at < start:
            day += timedelta(days=1 if days < 7 else 7)
            continue
        if at > end:
            return ticks
        ticks.append(Tick(at, f"{at.day} {at:%b}"))
        day += timedelta(days=days)


def _month_ticks(start: datetime, end: datetime, zone: ZoneInfo, months: int) -> list[Tick]:
    here = start.astimezone(zone)
    year, month = here.year, here.month
    ticks: list[Tick] = []
    while True:
        at = datetime(year, month, 1, tzinfo=zone)
        if at > end:
            return ticks
        if at >= start and (month - 1) % months == 0:
            ticks.append(Tick(at, f"{at:%b %Y}"))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round values from ``low`` to ``high`` (steps of 1, 2, 2.5 or 5 times a power of ten).

    Examples
    --------
    >>> nice_ticks(0, 10)
    [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    >>> nice_ticks(62, 178)
    [80.0, 100.0, 120.0, 140.0, 160.0]
    """
    if high <= low:
        return [low]
    raw = (high - low) / most
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    count = int(math.floor((high - first) / step + 1e-9)) + 1
    return [float(round(first + i * step, 10)) for i in range(count)]


def _extent(times: Sequence[datetime], least: timedelta) -> tuple[datetime, datetime]:
    start, end = min(times), max(times)
    if end - start < least:
        middle = start + (end - start) / 2
        start, end = middle - least / 2, middle + least / 2
    pad = (end - start) * 0.04
    return start - pad, end + pad


def time_chart(
    *,
    series: Sequence[Series],
    zone: ZoneInfo,
    y_label: str,
    least_span: timedelta,
    y_range: tuple[float, float] | None = None,
    rules: Sequence[Rule] = (),
    marks: Sequence[datetime] = (),
    mark_label: str = "",
    width: int = 680,
    height: int = 230,
) -> Markup:
    """The chart as an ``<svg>`` element (empty markup when no series has a point).

    ``least_span`` is the narrowest time axis (a single reading is shown in its context,
    e.g. 30 minutes of a session, not a point on an axis of years). The axis spans the
    points and the ``marks`` (sessions given after the latest score are shown too).
    """
    drawn = [s for s in series if s.points]
    if not drawn:
        return Markup("")
    times = [t for s in drawn for t, _ in s.points] + list(marks)
    start, end = _extent(times, least_span)
    if y_range is None:
        values = [v for s in drawn for _, v in s.points] + [r.value for r in rules]
        low, high = min(values), max(values)
        pad = max((high - low) * 0.1, abs(high) * 0.05, 1.0)
        low, high = low - pad, high + pad
    else:
        low, high = y_range
        pad = (high - low) * 0.03
        low, high = low - pad, high + pad
    left, right, top, bottom = 46.0, 12.0, 26.0, 30.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(at: datetime) -> float:
        return left + plot_w * (at - start).total_seconds() / (end - start).total_seconds()

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - low) / (high - low))

    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" font-family="DejaVu Sans" font-size="9" role="img" '
        f'aria-label="{escape(y_label)}">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#888" stroke-width="0.6"/>',
    ]
    for value in nice_ticks(low, high):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'stroke="#ddd" stroke-width="0.5"/>'
            f'<text x="{left - 4}" y="{y(value) + 3:.1f}" text-anchor="end">{value:g}</text>'
        )
    for tick in time_ticks(start, end, zone):
        at = x(tick.at)
        half = _TEXT_WIDTH * len(tick.label) / 2  # a label near an edge stays inside it
        anchor = "start" if at - half < 0 else "end" if at + half > width else "middle"
        parts.append(
            f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{top}" y2="{top + plot_h}" '
            'stroke="#eee" stroke-width="0.5"/>'
            f'<text x="{at:.1f}" y="{top + plot_h + 12}" text-anchor="{anchor}">'
            f"{escape(tick.label)}</text>"
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 4}" text-anchor="middle" fill="#444">'
        f"time ({escape(zone.key)})</text>"
        f'<text x="{left}" y="{top - 14}" fill="#444">{escape(y_label)}</text>'
    )
    for mark in marks:
        if start <= mark <= end:
            parts.append(
                f'<line x1="{x(mark):.1f}" x2="{x(mark):.1f}" y1="{top}" y2="{top + plot_h}" '
                'stroke="#999" stroke-width="1" stroke-dasharray="2 2"/>'
            )
    parts += list(_rules(rules, low, high, y, left, left + plot_w))
    legend = [(s.label, PALETTE[i % len(PALETTE)]) for i, s in enumerate(drawn)]
    for (_, colour), s in zip(legend, drawn, strict=True):
        points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in sorted(s.points))
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.3"/>'
        )
        parts += [
            f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.3" fill="{colour}"/>'
            for t, v in s.points
        ]
    parts += list(_legend(legend, marks, mark_label, width - right, top))
    parts.append("</svg>")
    return Markup("".join(parts))


def _rules(
    rules: Sequence[Rule],
    low: float,
    high: float,
    y: Callable[[float], float],
    left: float,
    right: float,
) -> Iterator[str]:
    """Dashed lines at the limits, labelled without overlap: limits at one value share a
    label; a label too close to the one above it moves to the left end of the plot."""
    labels: dict[float, list[str]] = {}
    for rule in rules:
        if low <= rule.value <= high:
            labels.setdefault(rule.value, []).append(rule.label)
    last = {"end": -1e9, "start": -1e9}
    for value in sorted(labels, reverse=True):
        at = y(value)
        yield (
            f'<line x1="{left}" x2="{right}" y1="{at:.1f}" y2="{at:.1f}" stroke="#B00020" '
            'stroke-width="0.8" stroke-dasharray="5 3"/>'
        )
        side = "end" if at - last["end"] >= 12 else "start"
        if at - last[side] < 12:
            continue  # both ends taken this close: the line speaks for itself in the legend
        last[side] = at
        x = right - 3 if side == "end" else left + 3
        yield (
            f'<text x="{x:.1f}" y="{at - 2.5:.1f}" text-anchor="{side}" fill="#B00020" '
            f'font-size="8">{escape(", ".join(labels[value]))}</text>'
        )


def _legend(
    entries: Sequence[tuple[str, str]],
    marks: Sequence[datetime],
    mark_label: str,
    right: float,
    top: float,
) -> Iterator[str]:
    """The legend above the plot, right-aligned, one entry after the other."""
    items = [(label, f'stroke="{colour}" stroke-width="2"') for label, colour in entries]
    if marks and mark_label:
        items.append((mark_label, 'stroke="#999" stroke-width="1" stroke-dasharray="2 2"'))
    if len(items) == 1 and not marks:
        return
    x = right
    for label, stroke in reversed(items):
        x -= 22 + _TEXT_WIDTH * len(label)
        yield (
            f'<line x1="{x:.1f}" x2="{x + 14:.1f}" y1="{top - 17}" y2="{top - 17}" {stroke}/>'
            f'<text x="{x + 17:.1f}" y="{top - 14}">{escape(label)}</text>'
        )

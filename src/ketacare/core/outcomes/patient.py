"""Per-patient outcomes: baseline, change, response over time.

Inputs are plain values: a :class:`MeasureSeries` per measure (times and
scores; lower is better for every shipped definition) and the
:class:`Sessions` given (times and doses). The rules, stated once:

- **Baseline**: the last value at or before the start of the first session
  (:data:`BASELINE_RULE`); optionally no older than ``baseline_window``. Give
  times with the time of day when a score and a session share a date.
- **Follow-up**: every value after the first session.
- **Response / remission**: a definition from the library met at a follow-up.
- **Loss of response**: ``loss_confirmations`` consecutive follow-ups that do
  not meet the definition (clinic-set, no default); dated at the first of them.
  A later follow-up that meets the definition starts a new episode.
- **Responder since**: the start of the current episode.
- **Durability**: first response to the first loss; censored at the last
  follow-up while still in response.
- **Futility** and **booster**: see :mod:`ketacare.core.outcomes.findings`, which also
  writes the patient's status line.

Examples
--------
>>> pain = MeasureSeries.from_pairs(measure="nrs_pain", points=[
...     ("2026-03-01", 8), ("2026-03-03", 5), ("2026-03-10", 4)])
>>> sessions = Sessions.build(time=["2026-03-02", "2026-03-09"], dose_mg=[35, 35])
>>> course = response_course(series=pain, sessions=sessions, definition_id="pain-50",
...                          loss_confirmations=2)
>>> course.state, format_day(course.responder_since)
('responding', '2026-03-10')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ketacare.core.errors import InvalidInput, OutOfRange
from ketacare.core.outcomes.definitions import (
    Definition,
    DefinitionLibrary,
    load_definitions,
)
from ketacare.core.outcomes.timeaxis import (
    SECONDS_PER_DAY,
    format_day,
    to_duration_seconds,
    to_seconds,
)

BASELINE_RULE = "last value at or before the start of the first session"

CourseState = Literal["not_assessable", "no_follow_up", "never", "responding", "lost"]


@dataclass(frozen=True, slots=True, eq=False)
class MeasureSeries:
    """One measure's scores over time, sorted by time; missing (NaN) dropped."""

    measure: str
    time: NDArray[np.int64]
    value: NDArray[np.float64]

    @classmethod
    def build(cls, *, measure: str, time: ArrayLike, value: ArrayLike) -> MeasureSeries:
        """Convert, drop missing values and sort by time (ties keep their order)."""
        t = to_seconds(time, field=f"{measure} time")
        v = np.asarray(value, dtype=np.float64).ravel()
        if t.size != v.size:
            raise InvalidInput(f"{measure}: {t.size} times but {v.size} values")
        keep = ~np.isnan(v)
        t, v = t[keep], v[keep]
        order = np.argsort(t, kind="stable")
        return cls(measure=measure, time=t[order], value=v[order])

    @classmethod
    def from_pairs(
        cls, *, measure: str, points: Iterable[tuple[object, float | None]]
    ) -> MeasureSeries:
        """Build from ``(time, value)`` pairs; ``None`` is a missing value."""
        pairs = list(points)
        times = np.array([p[0] for p in pairs], dtype="datetime64[s]")
        values = [np.nan if p[1] is None else p[1] for p in pairs]
        return cls.build(measure=measure, time=times, value=values)


@dataclass(frozen=True, slots=True, eq=False)
class Sessions:
    """Sessions given (start times) with their doses in mg (NaN if unknown)."""

    time: NDArray[np.int64]
    dose_mg: NDArray[np.float64]

    @classmethod
    def build(cls, *, time: ArrayLike, dose_mg: ArrayLike | None = None) -> Sessions:
        """Convert and sort by time."""
        t = to_seconds(time, field="session time")
        d = (
            np.full(t.size, np.nan)
            if dose_mg is None
            else np.asarray(dose_mg, dtype=np.float64).ravel()
        )
        if d.size != t.size:
            raise InvalidInput(f"sessions: {t.size} times but {d.size} doses")
        if np.any(d < 0):
            raise OutOfRange("session dose_mg", float(d[d < 0][0]), ">= 0 mg")
        order = np.argsort(t, kind="stable")
        return cls(time=t[order], dose_mg=d[order])

    @property
    def first(self) -> int | None:
        """The first session's time, or None."""
        return int(self.time[0]) if self.time.size else None


@dataclass(frozen=True, slots=True)
class Baseline:
    """The baseline value, when it was taken and the rule that chose it."""

    time: int
    value: float
    rule: str = BASELINE_RULE

    @property
    def day(self) -> str:
        """The baseline's date."""
        return format_day(self.time)


def select_baseline(
    *, series: MeasureSeries, sessions: Sessions, baseline_window: object | None = None
) -> Baseline | None:
    """The last value at or before the first session, or None.

    Examples
    --------
    >>> s = MeasureSeries.from_pairs(measure="phq9", points=[
    ...     ("2026-01-01", 20), ("2026-01-05", 18), ("2026-01-08", 9)])
    >>> b = select_baseline(series=s, sessions=Sessions.build(time=["2026-01-05"]))
    >>> (b.day, b.value)
    ('2026-01-05', 18.0)
    """
    i = _baseline_index(series, sessions, baseline_window)
    if i < 0:
        return None
    return Baseline(time=int(series.time[i]), value=float(series.value[i]))


def _follow_up(series: MeasureSeries, sessions: Sessions) -> NDArray[np.bool_]:
    first = sessions.first
    if first is None:
        return np.zeros(series.time.size, dtype=bool)
    return series.time > first


@dataclass(frozen=True, slots=True, eq=False)
class Trajectory:
    """A measure over time with the sessions on the same axis (for charts).

    ``phase`` is ``"baseline"``, ``"before"`` (earlier than the baseline) or
    ``"follow_up"``; ``change`` and ``change_percent`` are relative to the
    baseline (NaN without one; the percent is NaN for a zero baseline);
    ``met`` maps each definition id to a per-point flag (follow-ups only).
    """

    measure: str
    time: NDArray[np.int64]
    value: NDArray[np.float64]
    phase: tuple[str, ...]
    sessions_before: NDArray[np.int64]
    change: NDArray[np.float64]
    change_percent: NDArray[np.float64]
    met: dict[str, NDArray[np.bool_]]
    baseline: Baseline | None
    session_time: NDArray[np.int64]
    session_dose_mg: NDArray[np.float64]


def trajectory(
    *,
    series: MeasureSeries,
    sessions: Sessions,
    definition_ids: Sequence[str] | None = None,
    library: DefinitionLibrary | None = None,
    baseline_window: object | None = None,
) -> Trajectory:
    """Change from baseline and definition status at every point.

    Examples
    --------
    >>> s = MeasureSeries.from_pairs(measure="nrs_pain", points=[
    ...     ("2026-03-01", 8), ("2026-03-03", 6), ("2026-03-05", 4)])
    >>> tr = trajectory(series=s, sessions=Sessions.build(time=["2026-03-02"]))
    >>> tr.phase, tr.change.tolist(), tr.change_percent.tolist()
    (('baseline', 'follow_up', 'follow_up'), [0.0, -2.0, -4.0], [0.0, -25.0, -50.0])
    >>> tr.met["pain-30"].tolist(), tr.met["pain-50"].tolist()
    ([False, False, True], [False, False, True])
    """
    lib = library or load_definitions()
    definitions = definitions_for(lib, series.measure, definition_ids)
    for d in definitions:
        d.check_values(series.value, field=f"{series.measure} value")
    base = select_baseline(series=series, sessions=sessions, baseline_window=baseline_window)
    fu = _follow_up(series, sessions)
    b = np.nan if base is None else base.value
    change = series.value - b
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(b != 0, change / b * 100.0, np.nan) if base else np.full_like(change, np.nan)
    base_idx = _baseline_index(series, sessions, baseline_window)
    phases = tuple(
        "follow_up" if fu[i] else ("baseline" if i == base_idx else "before")
        for i in range(series.time.size)
    )
    met = {d.id: d.met(np.full(series.value.size, b), series.value) & fu for d in definitions}
    return Trajectory(
        measure=series.measure,
        time=series.time,
        value=series.value,
        phase=phases,
        sessions_before=np.searchsorted(sessions.time, series.time, side="left").astype(np.int64),
        change=change,
        change_percent=pct,
        met=met,
        baseline=base,
        session_time=sessions.time,
        session_dose_mg=sessions.dose_mg,
    )


def _baseline_index(series: MeasureSeries, sessions: Sessions, window: object | None) -> int:
    first = sessions.first
    if first is None:
        return -1
    pre = series.time <= first
    if window is not None:
        pre &= series.time >= first - to_duration_seconds(window, field="baseline_window")
    idx = np.flatnonzero(pre)
    return int(idx[-1]) if idx.size else -1


def definitions_for(
    library: DefinitionLibrary, measure: str, ids: Sequence[str] | None
) -> tuple[Definition, ...]:
    """The definitions ``ids`` (all of the measure's when None), each checked to be for it."""
    if ids is None:
        return library.for_measure(measure=measure)
    chosen = tuple(library.get(definition_id=i) for i in ids)
    for d in chosen:
        if d.measure != measure:
            raise InvalidInput(f"definition {d.id!r} is for {d.measure}, not {measure}")
    return chosen


@dataclass(frozen=True, slots=True)
class Episode:
    """A period in response: from its first meeting score to the dated loss (or open)."""

    start: int
    end: int | None


@dataclass(frozen=True, slots=True)
class ResponseCourse:
    """One definition followed over a patient's follow-up.

    ``state``: ``not_assessable`` (no baseline, or a baseline the definition
    excludes; see ``reason``), ``no_follow_up``, ``never`` (follow-ups, none
    meeting), ``responding`` (in an open episode) or ``lost``.
    """

    definition: Definition
    state: CourseState
    reason: str
    baseline: Baseline | None
    episodes: tuple[Episode, ...] = ()
    met_at_last: bool = False
    last_follow_up: int | None = None

    @property
    def first_response(self) -> int | None:
        """Time of the first follow-up meeting the definition."""
        return self.episodes[0].start if self.episodes else None

    @property
    def responder_since(self) -> int | None:
        """Start of the current episode, when responding."""
        return self.episodes[-1].start if self.state == "responding" else None

    @property
    def durability_days(self) -> float | None:
        """First response to first loss (or to the last follow-up if not lost), in days."""
        if not self.episodes or self.last_follow_up is None:
            return None
        first = self.episodes[0]
        end = first.end if first.end is not None else self.last_follow_up
        return (end - first.start) / SECONDS_PER_DAY

    @property
    def durability_event(self) -> bool:
        """True when the first episode ended in a confirmed loss (else censored)."""
        return bool(self.episodes) and self.episodes[0].end is not None


def _check_confirmations(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OutOfRange("loss_confirmations", value, "an integer >= 1 (clinic-set; no default)")
    return value


def response_course(
    *,
    series: MeasureSeries,
    sessions: Sessions,
    definition_id: str,
    loss_confirmations: int,
    library: DefinitionLibrary | None = None,
    baseline_window: object | None = None,
) -> ResponseCourse:
    """Follow one definition: episodes of response, responder since, durability.

    Examples
    --------
    Baseline 10; a loss needs 2 consecutive scores out of response:

    >>> s = MeasureSeries.from_pairs(measure="nrs_pain", points=[("2026-01-01", 10),
    ...     ("2026-01-03", 6), ("2026-01-10", 8), ("2026-01-17", 9), ("2026-01-24", 5)])
    >>> c = response_course(series=s, sessions=Sessions.build(time=["2026-01-02"]),
    ...     definition_id="pain-30", loss_confirmations=2)
    >>> c.state, [(format_day(e.start), e.end and format_day(e.end)) for e in c.episodes]
    ('responding', [('2026-01-03', '2026-01-10'), ('2026-01-24', None)])
    >>> c.durability_days, c.durability_event, format_day(c.responder_since)
    (7.0, True, '2026-01-24')
    """
    k = _check_confirmations(loss_confirmations)
    definition = (library or load_definitions()).get(definition_id=definition_id)
    if definition.measure != series.measure:
        raise InvalidInput(f"definition {definition.id!r} is for {definition.measure}")
    definition.check_values(series.value, field=f"{series.measure} value")
    base = select_baseline(series=series, sessions=sessions, baseline_window=baseline_window)
    if base is None:
        return ResponseCourse(definition, "not_assessable", "no baseline value", None)
    if not bool(definition.eligible([base.value])[0]):
        why = (
            f"baseline {base.value:g} is not above {definition.baseline_above:g}"
            if definition.baseline_above is not None and base.value <= definition.baseline_above
            else f"baseline {base.value:g} gives no percentage"
        )
        return ResponseCourse(definition, "not_assessable", why, base)
    fu = _follow_up(series, sessions)
    times, values = series.time[fu], series.value[fu]
    if not times.size:
        return ResponseCourse(definition, "no_follow_up", "no value after the first session", base)
    met = definition.met(np.full(values.size, base.value), values)
    episodes: list[Episode] = []
    start: int | None = None
    run, run_start = 0, 0
    for t, m in zip(times.tolist(), met.tolist(), strict=True):
        if m:
            if start is None:
                start = t
            run = 0
        elif start is not None:
            run += 1
            run_start = t if run == 1 else run_start
            if run == k:
                episodes.append(Episode(start=start, end=run_start))
                start, run = None, 0
    if start is not None:
        episodes.append(Episode(start=start, end=None))
    if not episodes:
        state: CourseState = "never"
    else:
        state = "responding" if episodes[-1].end is None else "lost"
    return ResponseCourse(
        definition=definition,
        state=state,
        reason="",
        baseline=base,
        episodes=tuple(episodes),
        met_at_last=bool(met[-1]),
        last_follow_up=int(times[-1]),
    )

"""Per-patient outcomes: baseline, change, response over time, futility, booster.

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
- **Futility**: a rule from the library (e.g. no response after 3 sessions);
  judged once a score exists after the rule's last session.
- **Booster**: a clinic-set :class:`BoosterRule` (no default); suggested when a
  patient who has responded has a latest score, taken after the last session,
  past the clinic's threshold.

Examples
--------
>>> pain = MeasureSeries.from_pairs(measure="nrs_pain", points=[
...     ("2026-03-01", 8), ("2026-03-03", 5), ("2026-03-10", 4)])
>>> sessions = Sessions.build(time=["2026-03-02", "2026-03-09"], dose_mg=[35, 35])
>>> status = patient_status(series=[pain], sessions=sessions, loss_confirmations=2,
...     booster_rules=[])
>>> for part in status.parts:
...     print(part)
responder since 2026-03-03 (pain >=30%)
responder since 2026-03-10 (pain >=50%)
booster threshold not set for nrs_pain
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ketacare.core.errors import InvalidInput, OutOfRange
from ketacare.core.outcomes.definitions import (
    BoosterRule,
    Definition,
    DefinitionLibrary,
    FutilityRule,
    load_definitions,
)
from ketacare.core.outcomes.timeaxis import (
    SECONDS_PER_DAY,
    format_day,
    to_duration_seconds,
    to_seconds,
)
from ketacare.core.sources import Source

BASELINE_RULE = "last value at or before the start of the first session"

CourseState = Literal["not_assessable", "no_follow_up", "never", "responding", "lost"]
FutilityState = Literal["flag", "clear", "pending", "not_assessable"]
BoosterState = Literal["suggested", "not_suggested", "not_configured", "not_applicable"]


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
    definitions = _definitions_for(lib, series.measure, definition_ids)
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


def _definitions_for(
    library: DefinitionLibrary, measure: str, ids: Sequence[str] | None
) -> tuple[Definition, ...]:
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


@dataclass(frozen=True, slots=True)
class FutilityFinding:
    """The outcome of a futility rule: ``flag`` means review whether to continue."""

    rule_id: str
    state: FutilityState
    message: str
    sessions_given: int
    sources: tuple[Source, ...]


def futility(
    *,
    series: MeasureSeries,
    sessions: Sessions,
    rule: FutilityRule,
    library: DefinitionLibrary | None = None,
    baseline_window: object | None = None,
) -> FutilityFinding:
    """Apply a futility rule: no response after ``rule.sessions`` sessions.

    The rule is judged once a score exists after session ``rule.sessions``;
    any follow-up meeting the rule's response definition clears it.

    Examples
    --------
    >>> lib = load_definitions()
    >>> rule = lib.futility_rules[0]
    >>> s = MeasureSeries.from_pairs(measure="phq9", points=[
    ...     ("2026-01-01", 20), ("2026-01-03", 18), ("2026-01-06", 17), ("2026-01-09", 16)])
    >>> three = Sessions.build(time=["2026-01-02", "2026-01-05", "2026-01-08"])
    >>> futility(series=s, sessions=three, rule=rule).state
    'flag'
    """
    lib = library or load_definitions()
    course = response_course(
        series=series,
        sessions=sessions,
        definition_id=rule.definition_id,
        loss_confirmations=1,
        library=lib,
        baseline_window=baseline_window,
    )
    given = int(sessions.time.size)

    def finding(state: FutilityState, message: str) -> FutilityFinding:
        return FutilityFinding(rule.id, state, message, given, rule.sources)

    if course.state == "not_assessable":
        return finding("not_assessable", f"{course.definition.short}: {course.reason}")
    if course.episodes:
        return finding("clear", f"{course.definition.short} reached")
    if given < rule.sessions:
        return finding("pending", f"{given} of {rule.sessions} sessions given, no response yet")
    after_nth = int(sessions.time[rule.sessions - 1])
    if not np.any(series.time > after_nth):
        return finding("pending", f"no {series.measure} score after session {rule.sessions} yet")
    return finding("flag", rule.text)


@dataclass(frozen=True, slots=True)
class BoosterFinding:
    """Whether a booster is suggested for a clinician to accept or dismiss."""

    measure: str
    state: BoosterState
    message: str
    rule: BoosterRule | None = None


def booster(
    *,
    series: MeasureSeries,
    sessions: Sessions,
    rule: BoosterRule | None,
    library: DefinitionLibrary | None = None,
    baseline_window: object | None = None,
) -> BoosterFinding:
    """Suggest a booster when a responder's latest score passes the clinic's threshold.

    ``rule=None`` is refused politely: the finding says the threshold is not
    set (``not_configured``); no threshold is assumed.

    Examples
    --------
    >>> s = MeasureSeries.from_pairs(measure="nrs_pain", points=[
    ...     ("2026-01-01", 8), ("2026-01-03", 3), ("2026-02-01", 6)])
    >>> one = Sessions.build(time=["2026-01-02"])
    >>> rule = BoosterRule(definition_id="pain-30", kind="score_at_or_above", threshold=6,
    ...                    set_by="clinic policy")
    >>> booster(series=s, sessions=one, rule=rule).state
    'suggested'
    >>> booster(series=s, sessions=one, rule=None).state
    'not_configured'
    """
    if rule is None:
        return BoosterFinding(
            series.measure,
            "not_configured",
            f"booster threshold not set for {series.measure} (a clinic-set parameter; "
            "no published threshold)",
        )
    lib = library or load_definitions()
    definition = lib.get(definition_id=rule.definition_id)
    if definition.role != "response":
        raise InvalidInput(f"booster rule: {definition.id!r} is not a response definition")
    if rule.kind == "score_at_or_above":
        definition.check_values([rule.threshold], field="booster threshold")
    elif rule.threshold > 100:
        raise OutOfRange("booster threshold", rule.threshold, "0 to 100 percent")
    course = response_course(
        series=series,
        sessions=sessions,
        definition_id=definition.id,
        loss_confirmations=1,
        library=lib,
        baseline_window=baseline_window,
    )
    if not course.episodes or course.baseline is None:
        return BoosterFinding(series.measure, "not_applicable", "not a responder", rule)
    t_last, v_last = int(series.time[-1]), float(series.value[-1])
    if t_last <= int(sessions.time[-1]):
        return BoosterFinding(
            series.measure, "not_suggested", "a session was given after the latest score", rule
        )
    b = course.baseline.value
    if rule.kind == "score_at_or_above":
        crossed = v_last >= rule.threshold
        detail = f"{series.measure} {v_last:g} {'>=' if crossed else '<'} {rule.threshold:g}"
    else:
        crossed = (b - v_last) * 100.0 < rule.threshold * b
        reduction = (b - v_last) / b * 100.0
        sign = "<" if crossed else ">="
        detail = f"{series.measure} reduction {reduction:.0f}% {sign} {rule.threshold:g}%"
    state: BoosterState = "suggested" if crossed else "not_suggested"
    return BoosterFinding(series.measure, state, f"{detail} (set by {rule.set_by})", rule)


@dataclass(frozen=True, slots=True)
class PatientStatus:
    """Every course, futility finding and booster finding, and the status line."""

    courses: tuple[ResponseCourse, ...]
    futility: tuple[FutilityFinding, ...]
    boosters: tuple[BoosterFinding, ...]
    text: str
    parts: tuple[str, ...] = field(default=())


def patient_status(
    *,
    series: Sequence[MeasureSeries],
    sessions: Sessions,
    loss_confirmations: int,
    booster_rules: Sequence[BoosterRule],
    definition_ids: Sequence[str] | None = None,
    library: DefinitionLibrary | None = None,
    baseline_window: object | None = None,
) -> PatientStatus:
    """The status line, e.g. ``responder since 2026-03-03 (pain >=30%); PHQ-9 remission ...``.

    ``loss_confirmations`` and ``booster_rules`` are clinic-set and have no
    default; an empty ``booster_rules`` shows "booster threshold not set" for
    each measure on which the patient has responded.

    Examples
    --------
    >>> phq = MeasureSeries.from_pairs(measure="phq9", points=[
    ...     ("2026-01-01", 20), ("2026-01-03", 18), ("2026-01-06", 17), ("2026-01-09", 16)])
    >>> three = Sessions.build(time=["2026-01-02", "2026-01-05", "2026-01-08"])
    >>> patient_status(series=[phq], sessions=three, loss_confirmations=2,
    ...                booster_rules=[]).text
    'no response yet (PHQ-9 response); futility review: no PHQ-9 response after 3 sessions'
    """
    lib = library or load_definitions()
    by_measure = {s.measure: s for s in series}
    if len(by_measure) != len(series):
        raise InvalidInput("one series per measure")
    courses: list[ResponseCourse] = []
    parts: list[str] = []
    responded_measures: list[str] = []
    for measure, s in by_measure.items():
        defs = _definitions_for(lib, measure, None)
        if definition_ids is not None:
            defs = tuple(d for d in defs if d.id in definition_ids)
        found = [
            response_course(
                series=s,
                sessions=sessions,
                definition_id=d.id,
                loss_confirmations=loss_confirmations,
                library=lib,
                baseline_window=baseline_window,
            )
            for d in defs
        ]
        courses.extend(found)
        parts.extend(_course_parts(found))
        if any(c.episodes for c in found if c.definition.role == "response"):
            responded_measures.append(measure)
    findings = []
    for rule in lib.futility_rules:
        target = lib.get(definition_id=rule.definition_id)
        if target.measure in by_measure and (definition_ids is None or target.id in definition_ids):
            f = futility(
                series=by_measure[target.measure],
                sessions=sessions,
                rule=rule,
                library=lib,
                baseline_window=baseline_window,
            )
            findings.append(f)
            if f.state == "flag":
                parts.append(f"futility review: no {target.short} after {rule.sessions} sessions")
    boosters: list[BoosterFinding] = []
    for measure in responded_measures:
        chosen: list[BoosterRule | None] = [
            r for r in booster_rules if lib.get(definition_id=r.definition_id).measure == measure
        ]
        for booster_rule in chosen or [None]:
            b = booster(
                series=by_measure[measure],
                sessions=sessions,
                rule=booster_rule,
                library=lib,
                baseline_window=baseline_window,
            )
            boosters.append(b)
    if any(b.state == "suggested" for b in boosters):
        parts.append("booster suggested")
    parts.extend(
        f"booster threshold not set for {b.measure}"
        for b in boosters
        if b.state == "not_configured"
    )
    return PatientStatus(
        courses=tuple(courses),
        futility=tuple(findings),
        boosters=tuple(boosters),
        text="; ".join(parts) if parts else "no assessable outcome yet",
        parts=tuple(parts),
    )


def _course_parts(courses: list[ResponseCourse]) -> list[str]:
    def since(c: ResponseCourse) -> str:
        when = format_day(c.responder_since or 0)
        if c.definition.role == "response":
            return f"responder since {when} ({c.definition.short})"
        return f"{c.definition.short} since {when}"

    responding = [c for c in courses if c.state == "responding"]
    if responding:
        return [since(c) for c in responding]
    lost = [c for c in courses if c.state == "lost"]
    if lost:
        return [
            f"{c.definition.role} lost on {format_day(c.episodes[-1].end or 0)} "
            f"({c.definition.short})"
            for c in lost
        ]
    judged = [c for c in courses if c.state == "never" and c.definition.role == "response"]
    if judged:
        weakest = min(judged, key=lambda c: c.definition.threshold)
        return [f"no response yet ({weakest.definition.short})"]
    return []

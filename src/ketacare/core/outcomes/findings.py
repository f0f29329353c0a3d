"""Per-patient findings: futility, booster, and the status line that sums them up.

- **Futility**: a rule from the library (e.g. no response after 3 sessions);
  judged once a score exists after the rule's last session.
- **Booster**: a clinic-set :class:`BoosterRule` (no default); suggested when a
  patient who has responded has a latest score, taken after the last session,
  past the clinic's threshold.

The courses they build on are in :mod:`ketacare.core.outcomes.patient`.

Examples
--------
>>> from ketacare.core.outcomes.patient import MeasureSeries, Sessions
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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ketacare.core.errors import InvalidInput, OutOfRange
from ketacare.core.outcomes.definitions import (
    BoosterRule,
    DefinitionLibrary,
    FutilityRule,
    load_definitions,
)
from ketacare.core.outcomes.patient import (
    MeasureSeries,
    ResponseCourse,
    Sessions,
    definitions_for,
    response_course,
)
from ketacare.core.outcomes.timeaxis import format_day
from ketacare.core.sources import Source

FutilityState = Literal["flag", "clear", "pending", "not_assessable"]
BoosterState = Literal["suggested", "not_suggested", "not_configured", "not_applicable"]


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
        defs = definitions_for(lib, measure, None)
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
        parts.extend(course_parts(found))
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


def course_parts(
    courses: Sequence[ResponseCourse], day: Callable[[int], str] = format_day
) -> list[str]:
    """One measure's courses in words: responding since, lost on, or no response yet.

    ``day`` writes a core time (seconds) as a day: :func:`format_day` by default, the
    clinic's local calendar day in the shell.
    """

    def since(c: ResponseCourse) -> str:
        when = day(c.responder_since or 0)
        # the episode stays open until the clinic's number of misses confirms the loss:
        # say so when the latest score already misses, so "responder" is not read as now
        missed = (
            ""
            if c.met_at_last
            else ", but the latest score does not meet it (loss not confirmed yet)"
        )
        if c.definition.role == "response":
            return f"responder since {when} ({c.definition.short}){missed}"
        return f"{c.definition.short} since {when}{missed}"

    responding = [c for c in courses if c.state == "responding"]
    if responding:
        return [since(c) for c in responding]
    lost = [c for c in courses if c.state == "lost"]
    if lost:
        return [
            f"{c.definition.role} lost on {day(c.episodes[-1].end or 0)} ({c.definition.short})"
            for c in lost
        ]
    judged = [c for c in courses if c.state == "never" and c.definition.role == "response"]
    if judged:
        weakest = min(judged, key=lambda c: c.definition.threshold)
        return [f"no response yet ({weakest.definition.short})"]
    return []

"""A patient's outcome record, gathered once for the chart panel and the progress report.

The panel, its JSON API and the PDF report all read scores and given sessions through
:func:`gather` and word the response status through :func:`status_line`, so they never
disagree. Reading here is not audited: callers audit their own read.

What counts:

- **Scores**: final assessments (``status == "final"``) of the measures in
  :data:`MEASURES`; a measure's value is the instrument's total or, for the BPI
  interference, its ``interference`` sub-score as scored when it was recorded. An
  assessment without that value (too many items missing) is not a point.
- **Sessions given**: dosing sessions whose dosing started; the dose is what the session
  log says was delivered (to the end of dosing, or to ``now`` while still dosing).
- **Dissociation**: what the chair recorded (present or absent) in the session's
  side-effect entries. It is not a score: the CADSS has no sourced scoring, so none is
  computed or drawn as one.

Times go to the core as naive UTC (its time axis); dates in the status line are the
clinic's local dates. Booster decisions (stored by :mod:`ketacare.clinic.outcomes.boosters`)
come in as a mapping, so the wording of an accepted or dismissed suggestion lives here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ketacare.clinic.assessments.orm import Assessment
from ketacare.clinic.sessions.orm import DosingSession
from ketacare.clinic.sessions.service import state_of
from ketacare.core.instruments import OutcomeMeasure, outcome_measures
from ketacare.core.outcomes import (
    BoosterFinding,
    BoosterRule,
    MeasureSeries,
    PatientStatus,
    ResponseCourse,
    Sessions,
    futility,
    load_definitions,
    patient_status,
)
from ketacare.core.outcomes.findings import course_parts
from ketacare.core.sessions import delivered_mg

#: One outcome measure: which instrument, which of its values, its display labels
#: (``[[use.measures]]`` in the instrument's data file).
Measure = OutcomeMeasure

#: The measures of the outcome panel and the progress report, in display order.
MEASURES: tuple[Measure, ...] = outcome_measures()
MEASURE_BY_ID = {m.id: m for m in MEASURES}

#: Shown on the chart (to the patient too) while the site policy's number of loss
#: confirmations (``KETACARE_OUTCOME_LOSS_CONFIRMATIONS``) is unset: plain words, no
#: configuration name.
NOT_SET = (
    "response status not computed: the clinic has not yet set how many consecutive scores "
    "out of response confirm a loss of response (a site policy setting)"
)


@dataclass(frozen=True, slots=True)
class Score:
    """One point of one measure."""

    assessment_id: int
    measure: str
    at: datetime  # aware, UTC
    value: float
    source: str  # staff | patient


@dataclass(frozen=True, slots=True)
class Given:
    """One session in which dosing started, with what the log says was delivered."""

    session_id: int
    plan_id: int
    session_number: int
    started_at: datetime  # aware
    dose_mg: float
    state: str
    ongoing: bool
    dissociation: bool | None  # recorded present / absent / not recorded


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """Scores per measure (oldest first) and sessions given (in the order given)."""

    patient_id: int
    scores: dict[str, tuple[Score, ...]]
    given: tuple[Given, ...]

    def series(self) -> list[MeasureSeries]:
        """The core's series, one per measure that has scores."""
        return [
            MeasureSeries.build(
                measure=measure,
                time=_times([s.at for s in points]),
                value=[s.value for s in points],
            )
            for measure, points in self.scores.items()
            if points
        ]

    def sessions(self) -> Sessions:
        """The core's sessions given (start times and delivered doses)."""
        return Sessions.build(
            time=_times([g.started_at for g in self.given]),
            dose_mg=[g.dose_mg for g in self.given],
        )


def naive_utc(value: datetime) -> datetime:
    """An aware time as the naive UTC the outcomes core expects."""
    return value.astimezone(UTC).replace(tzinfo=None)


def _times(values: Sequence[datetime]) -> NDArray[np.datetime64]:
    return np.array([naive_utc(v) for v in values], dtype="datetime64[us]")


def _value(row: Assessment, measure: Measure) -> float | None:
    if measure.field == "total":
        return row.total
    raw = (row.subscores or {}).get(measure.field)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw)


#: the side effects a session records as present or absent
SIDE_EFFECTS = ("nausea", "vomiting", "dizziness", "dissociation", "emergence_reaction")


# Built once (the chart reads them on every request): building a statement costs
# more than running it.
_SCORES = (
    select(Assessment)
    .where(
        Assessment.patient_id == bindparam("patient_id"),
        Assessment.status == "final",
        Assessment.instrument_id.in_(sorted({m.instrument for m in MEASURES})),
    )
    .order_by(Assessment.completed_at, Assessment.id)
)
_SESSIONS = (
    select(DosingSession)
    .where(DosingSession.patient_id == bindparam("patient_id"))
    .order_by(DosingSession.id)
)


def gather(*, session: Session, patient_id: int, now: datetime) -> OutcomeRecord:
    """The patient's scores and given sessions (not audited: the caller audits its read)."""
    rows = session.scalars(_SCORES, {"patient_id": patient_id})
    scores: dict[str, list[Score]] = {m.id: [] for m in MEASURES}
    for assessment in rows:
        for measure in MEASURES:
            if measure.instrument != assessment.instrument_id:
                continue
            value = _value(assessment, measure)
            if value is not None:
                at = assessment.completed_at.astimezone(UTC)
                scores[measure.id].append(
                    Score(assessment.id, measure.id, at, value, assessment.source)
                )
    given: list[Given] = []
    for row in session.scalars(_SESSIONS, {"patient_id": patient_id}):
        state = state_of(session=session, session_id=row.id)
        if state.dosing_started_at is None:
            continue
        ended = state.dosing_ended_at or state.finished_at
        ratings = [s.dissociation for s in state.side_effects if s.dissociation is not None]
        given.append(
            Given(
                session_id=row.id,
                plan_id=row.plan_id,
                session_number=row.session_number,
                started_at=state.dosing_started_at,
                dose_mg=delivered_mg(state, at=ended or now),
                state=state.state,
                ongoing=ended is None,
                dissociation=(True in ratings) if ratings else None,
            )
        )
    given.sort(key=lambda g: (g.started_at, g.session_id))
    return OutcomeRecord(
        patient_id=patient_id,
        scores={k: tuple(v) for k, v in scores.items()},
        given=tuple(given),
    )


def local_day(seconds: int, zone: ZoneInfo) -> str:
    """A core time (seconds, naive UTC) as the clinic's calendar day, e.g. ``3 March 2026``."""
    moment = datetime.fromtimestamp(seconds, UTC).astimezone(zone)
    return f"{moment.day} {moment:%B %Y}"


def local_date(value: datetime, zone: ZoneInfo) -> str:
    """An aware time as the clinic's calendar day, e.g. ``3 March 2026``."""
    moment = value.astimezone(zone)
    return f"{moment.day} {moment:%B %Y}"


def local_time(value: datetime, zone: ZoneInfo) -> str:
    """An aware time in the clinic's zone, e.g. ``3 Mar 2026 14:05``."""
    moment = value.astimezone(zone)
    return f"{moment.day} {moment:%b %Y %H:%M}"


@dataclass(frozen=True, slots=True)
class Decided:
    """The standing decision on one booster suggestion (the newest of its chain)."""

    id: int
    decision: str  # accepted | dismissed
    by: str  # the deciding physician's full name
    at: datetime  # aware
    note: str | None


@dataclass(frozen=True, slots=True)
class BoosterLine:
    """One measure's booster finding, the score it rests on and the decision on that score.

    ``state`` merges the core's findings of every rule on the measure: ``suggested`` when
    any rule suggests a booster, else ``not_suggested``, ``not_configured`` (no clinic
    rule) or ``not_applicable`` (not a responder). ``score`` is the measure's latest score:
    when suggested, the score that raised the suggestion, to which a decision is tied.
    """

    measure: str
    label: str
    state: str
    messages: tuple[str, ...]
    rules: tuple[BoosterRule, ...]
    score: Score | None
    decided: Decided | None

    @property
    def pending(self) -> bool:
        """Suggested and not yet accepted or dismissed."""
        return self.state == "suggested" and self.decided is None


@dataclass(frozen=True, slots=True)
class StatusLine:
    """The status line in plain words with the clinic's dates, and what stands behind it.

    ``computed`` is False when the clinic has not set ``loss_confirmations``; the text
    then says so (futility flags, which do not depend on it, are still shown).
    ``boosters`` has one line per measure on which the patient has responded.
    """

    computed: bool
    text: str
    parts: tuple[str, ...]
    notes: tuple[str, ...]
    status: PatientStatus | None
    boosters: tuple[BoosterLine, ...] = ()


def _label(measure: str) -> str:
    found = MEASURE_BY_ID.get(measure)
    return found.short if found else measure


def _finding_words(finding: BoosterFinding) -> str:
    """The core's booster message with its leading measure id in words ("pain (NRS) ...")."""
    if finding.message.startswith(f"{finding.measure} "):
        return _label(finding.measure) + finding.message[len(finding.measure) :]
    return finding.message


def _course_parts(courses: Sequence[ResponseCourse], zone: ZoneInfo) -> list[str]:
    """The core's wording of one measure's courses (:func:`course_parts`), local dates."""
    return course_parts(courses, day=lambda seconds: local_day(seconds, zone))


def _course_notes(courses: Sequence[ResponseCourse]) -> list[str]:
    notes = []
    for c in courses:
        if c.state == "not_assessable":
            notes.append(f"{c.definition.short} not assessed: {c.reason}")
        elif c.state == "no_follow_up":
            notes.append(f"{c.definition.short}: no score after the first session yet")
    return notes


def status_line(
    *,
    record: OutcomeRecord,
    loss_confirmations: int | None,
    booster_rules: Sequence[BoosterRule],
    zone: ZoneInfo,
    decisions: Mapping[tuple[str, int], Decided] | None = None,
) -> StatusLine:
    """Word the patient's status as the core judges it, with local dates.

    Without ``loss_confirmations`` (clinic-set, no default) no course is judged; a
    futility flag, which needs no such setting, is still reported. ``decisions`` are the
    standing booster decisions by (measure, assessment id of the raising score): a
    suggestion accepted reads "booster accepted by <name> on <date>" so the team books
    it; one dismissed leaves the line (the dismissal is a note) until a newer score
    raises a suggestion again.
    """
    series = record.series()
    sessions = record.sessions()
    library = load_definitions()
    if loss_confirmations is None:
        parts = [NOT_SET]
        notes: list[str] = []
        by_measure = {s.measure: s for s in series}
        for rule in library.futility_rules:
            target = library.get(definition_id=rule.definition_id)
            if target.measure in by_measure:
                found = futility(
                    series=by_measure[target.measure], sessions=sessions, rule=rule, library=library
                )
                if found.state == "flag":
                    parts.append(
                        f"futility review: no {target.short} after {rule.sessions} sessions"
                    )
                    notes.append(found.message)
        return StatusLine(False, "; ".join(parts), tuple(parts), tuple(notes), None)
    status = patient_status(
        series=series,
        sessions=sessions,
        loss_confirmations=loss_confirmations,
        booster_rules=booster_rules,
        library=library,
    )
    parts = []
    notes = []
    for measure in dict.fromkeys(s.measure for s in series):
        courses = [c for c in status.courses if c.definition.measure == measure]
        parts += _course_parts(courses, zone)
        notes += _course_notes(courses)
    for finding in status.futility:
        if finding.state == "flag":
            rule = next(r for r in library.futility_rules if r.id == finding.rule_id)
            target = library.get(definition_id=rule.definition_id)
            parts.append(f"futility review: no {target.short} after {rule.sessions} sessions")
            notes.append(finding.message)
    lines = booster_lines(record=record, status=status, decisions=decisions or {})
    if any(b.pending for b in lines):
        parts.append("booster suggested")
    for b in lines:
        if b.state != "suggested" or b.decided is None:
            continue
        day = local_date(b.decided.at, zone)
        if b.decided.decision == "accepted":
            accepted = f"booster accepted by {b.decided.by} on {day}"
            if accepted not in parts:
                parts.append(accepted)
        else:
            notes.append(
                f"booster ({b.label}) dismissed by {b.decided.by} on {day}: {b.decided.note}"
            )
    for f in status.boosters:
        if f.state == "not_configured":
            parts.append(f"booster threshold not set for {_label(f.measure)}")
        elif f.state in ("suggested", "not_suggested"):
            notes.append(f"booster: {_finding_words(f)}")  # the words begin with the measure
    if not record.given:
        notes.append(
            "no session given yet: response is judged against the last score at or before "
            "the first session"
        )
    text = "; ".join(parts) if parts else "no assessable outcome yet"
    return StatusLine(True, text, tuple(parts), tuple(notes), status, lines)


_STATE_ORDER = ("suggested", "not_suggested", "not_configured", "not_applicable")


def booster_lines(
    *,
    record: OutcomeRecord,
    status: PatientStatus,
    decisions: Mapping[tuple[str, int], Decided],
) -> tuple[BoosterLine, ...]:
    """One line per measure with booster findings, in the order the core found them.

    The core suggests a booster only on a responder's latest score (taken after the last
    session given), so that score is the one a decision is tied to.
    """
    by_measure: dict[str, list[BoosterFinding]] = {}
    for finding in status.boosters:
        by_measure.setdefault(finding.measure, []).append(finding)
    out = []
    for measure, findings in by_measure.items():
        state = min((f.state for f in findings), key=_STATE_ORDER.index)
        chosen = [f for f in findings if f.state == state]
        points = record.scores.get(measure, ())
        score = points[-1] if points else None
        out.append(
            BoosterLine(
                measure=measure,
                label=_label(measure),
                state=state,
                messages=tuple(_finding_words(f) for f in findings),
                rules=tuple(f.rule for f in chosen if f.rule is not None),
                score=score,
                decided=None if score is None else decisions.get((measure, score.assessment_id)),
            )
        )
    return tuple(out)

"""Booster suggestions a physician accepts or dismisses.

The core (:func:`ketacare.core.outcomes.booster`) suggests a booster when a responder's
latest score, taken after the last session given, passes the clinic's rule (from the
outcome policy file, :mod:`ketacare.clinic.outcomes.policy`; no rule has a default). A
physician then decides:

- **accept**, with an optional note: the status line reads "booster accepted by <name>
  on <date>" so the team books it;
- **dismiss**, with a reason (required): the suggestion leaves the status line.

A decision is tied to the score that raised the suggestion (its assessment), so a
dismissal holds until a newer score raises a suggestion again; a booster session given
after that score ends the suggestion. Decisions are append-only: a mistaken one is
superseded by a new decision naming it, with a note saying why (each decision can be
superseded once, so the chain never forks). Every read and write is audited.

Service functions are keyword-only, take the database session first and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.audit import service as audit
from ketacare.clinic.outcomes.orm import BoosterDecision
from ketacare.clinic.outcomes.record import (
    MEASURE_BY_ID,
    BoosterLine,
    Decided,
    OutcomeRecord,
    StatusLine,
    gather,
    local_date,
    local_time,
    status_line,
)
from ketacare.clinic.patients.service import get_patient
from ketacare.core.errors import InvalidInput, UnknownItem
from ketacare.core.outcomes import BoosterRule
from ketacare.infra.errors import Conflict, NotFound

DECISIONS: tuple[str, ...] = ("accepted", "dismissed")
NOTE_MAX = 2000


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """A stored decision with the decider's name and, when corrected, its successor."""

    row: BoosterDecision
    by: str
    superseded_by: int | None

    @property
    def standing(self) -> bool:
        """Not superseded: this is the decision that counts for its suggestion."""
        return self.superseded_by is None


# Built once (the chart reads it on every request): building a statement costs more
# than running it.
_DECISIONS = (
    select(BoosterDecision, User.full_name)
    .join(User, User.id == BoosterDecision.decided_by)
    .where(BoosterDecision.patient_id == bindparam("patient_id"))
    .order_by(BoosterDecision.id)
)


def _rows(session: Session, patient_id: int) -> list[DecisionRow]:
    found = session.execute(_DECISIONS, {"patient_id": patient_id}).all()
    successor = {r.supersedes_id: r.id for r, _ in found if r.supersedes_id is not None}
    return [DecisionRow(r, name, successor.get(r.id)) for r, name in found]


def decision_rows(*, session: Session, patient_id: int) -> list[DecisionRow]:
    """Every decision of the patient, oldest first (not audited: the caller audits)."""
    return _rows(session, patient_id)


def standing(rows: Sequence[DecisionRow]) -> dict[tuple[str, int], Decided]:
    """The decision that counts per suggestion, keyed by (measure, raising assessment id)."""
    return {
        (d.row.measure, d.row.assessment_id): Decided(
            d.row.id, d.row.decision, d.by, d.row.decided_at, d.row.note
        )
        for d in rows
        if d.standing
    }


def booster_status(
    *,
    session: Session,
    patient_id: int,
    now: datetime,
    zone: ZoneInfo,
    loss_confirmations: int | None,
    booster_rules: Sequence[BoosterRule],
) -> tuple[OutcomeRecord, StatusLine]:
    """The patient's record and status line with the standing decisions (not audited)."""
    record = gather(session=session, patient_id=patient_id, now=now)
    line = status_line(
        record=record,
        loss_confirmations=loss_confirmations,
        booster_rules=booster_rules,
        zone=zone,
        decisions=standing(_rows(session, patient_id)),
    )
    return record, line


def read_decisions(
    *, session: Session, actor: audit.Actor, patient_id: int, now: datetime
) -> list[DecisionRow]:
    """Every decision on the patient's booster suggestions, oldest first (audited read)."""
    get_patient(session=session, patient_id=patient_id)
    rows = _rows(session, patient_id)
    audit.read_patient(
        patient_id,
        session=session,
        actor=actor,
        at=now,
        resource_type="booster_decisions",
        detail={"decisions": len(rows)},
    )
    return rows


def _rule_record(rule: BoosterRule) -> dict[str, Any]:
    return {
        "definition_id": rule.definition_id,
        "kind": rule.kind,
        "threshold": rule.threshold,
        "set_by": rule.set_by,
    }


def _clean_note(note: str | None) -> str | None:
    text = (note or "").strip()
    if len(text) > NOTE_MAX:
        raise InvalidInput(f"note has {len(text)} characters: allowed at most {NOTE_MAX}")
    if "\x00" in text:
        raise InvalidInput("note contains a NUL character: allowed printable text only")
    return text or None


def _current(line: StatusLine, measure: str) -> BoosterLine:
    """The suggestion on ``measure`` now, or :class:`Conflict` saying why there is none."""
    label = MEASURE_BY_ID[measure].short
    if not line.computed:
        raise Conflict(
            "no booster can be suggested: response status is not computed until the clinic "
            "sets how many consecutive scores out of response confirm a loss of response "
            "(site policy KETACARE_OUTCOME_LOSS_CONFIRMATIONS)"
        )
    found = next((b for b in line.boosters if b.measure == measure), None)
    if found is None:
        raise Conflict(f"no booster is suggested for {label}: the patient has not responded on it")
    if found.state == "not_configured":
        raise Conflict(
            f"no booster is suggested for {label}: the clinic has not set a booster threshold "
            "for it (KETACARE_OUTCOME_POLICY_FILE)"
        )
    if found.state != "suggested" or found.score is None:
        why = "; ".join(found.messages) or found.state.replace("_", " ")
        raise Conflict(f"no booster is suggested for {label} now: {why}")
    return found


def decide(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    measure: str,
    assessment_id: int,
    decision: str,
    note: str | None,
    now: datetime,
    zone: ZoneInfo,
    loss_confirmations: int | None,
    booster_rules: Sequence[BoosterRule],
    supersedes: int | None = None,
) -> DecisionRow:
    """Accept or dismiss the booster suggested on ``measure`` by score ``assessment_id``.

    ``assessment_id`` is the score the physician saw raise the suggestion: when a newer
    score has arrived since, the decision is refused (:class:`Conflict`), so nobody
    decides on a suggestion that changed under them. A suggestion already decided is
    corrected only by naming the standing decision in ``supersedes`` with a note.
    """
    get_patient(session=session, patient_id=patient_id)
    if actor.user_id is None:
        raise InvalidInput("a booster decision is made by a named physician, not by the system")
    if not decision:
        raise InvalidInput(f"decision is missing: choose one of {', '.join(DECISIONS)}")
    if decision not in DECISIONS:
        raise UnknownItem("booster decision", decision, list(DECISIONS))
    if measure not in MEASURE_BY_ID:
        raise UnknownItem("outcome measure", measure, list(MEASURE_BY_ID))
    text = _clean_note(note)
    if decision == "dismissed" and text is None:
        raise InvalidInput("a reason is required to dismiss a booster suggestion (note)")
    label = MEASURE_BY_ID[measure].short
    if supersedes is not None:
        previous = _superseded(session, patient_id, supersedes, measure, assessment_id)
        if text is None:
            raise InvalidInput(
                f"a note is required to supersede decision {supersedes}: say why it was wrong"
            )
        value, basis = previous.score_value, dict(previous.basis)
    else:
        _, line = booster_status(
            session=session,
            patient_id=patient_id,
            now=now,
            zone=zone,
            loss_confirmations=loss_confirmations,
            booster_rules=booster_rules,
        )
        current = _current(line, measure)
        score = current.score
        assert score is not None  # _current refuses a line without a score
        if score.assessment_id != assessment_id:
            raise Conflict(
                f"the booster suggestion for {label} now rests on the score of "
                f"{local_time(score.at, zone)} ({score.value:g}, assessment "
                f"{score.assessment_id}), not on assessment {assessment_id}: reload and decide "
                "again"
            )
        if current.decided is not None:
            d = current.decided
            raise Conflict(
                f"this booster suggestion was already {d.decision} by {d.by} on "
                f"{local_date(d.at, zone)} (decision {d.id}): to correct it, record a new "
                f"decision that supersedes {d.id}, with a note saying why"
            )
        value = score.value
        basis = {
            "rules": [_rule_record(r) for r in current.rules],
            "findings": list(current.messages),
            "score_at": score.at.isoformat(),
            "loss_confirmations": loss_confirmations,
        }
    row = BoosterDecision(
        patient_id=patient_id,
        measure=measure,
        assessment_id=assessment_id,
        score_value=value,
        decision=decision,
        note=text,
        basis=basis,
        supersedes_id=supersedes,
        decided_by=actor.user_id,
        decided_at=now,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "another decision on this booster suggestion was recorded at the same moment: "
            "reload and look at it before deciding again"
        ) from exc
    audit.record(
        session=session,
        actor=actor,
        action="create",
        resource_type="booster_decision",
        resource_id=row.id,
        patient_id=patient_id,
        at=now,
        detail={
            "measure": measure,
            "assessment_id": assessment_id,
            "decision": decision,
            "supersedes": supersedes,
        },
    )
    user = session.get(User, actor.user_id) if actor.user_id is not None else None
    return DecisionRow(row, user.full_name if user else actor.username, None)


def _superseded(
    session: Session, patient_id: int, decision_id: int, measure: str, assessment_id: int
) -> BoosterDecision:
    """The standing decision ``decision_id`` of this patient, on this measure and score."""
    old = session.get(BoosterDecision, decision_id)
    if old is None or old.patient_id != patient_id:
        raise NotFound(f"booster decision {decision_id} does not exist for patient {patient_id}")
    if (old.measure, old.assessment_id) != (measure, assessment_id):
        raise InvalidInput(
            f"decision {decision_id} is on {old.measure} assessment {old.assessment_id}: a "
            "correction keeps the measure and the assessment of the decision it supersedes"
        )
    newer = session.scalar(
        select(BoosterDecision.id).where(BoosterDecision.supersedes_id == decision_id)
    )
    if newer is not None:
        raise Conflict(
            f"decision {decision_id} was already superseded by decision {newer}: supersede "
            f"{newer} instead"
        )
    return old

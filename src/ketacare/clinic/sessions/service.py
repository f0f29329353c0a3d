"""Dosing sessions: open from a signed plan, append events (optimistic), derive everything.

The log is the record; the chair view, the board and the summary are replays of it
(:func:`ketacare.core.sessions.replay`). Two staff writing at once never lose each
other's entries: each write names the sequence number it saw, and a stale one is
refused with a message saying to reload.

Replaying a long log on every write made each write slower than the last, so each
process keeps the replayed states of recently used sessions (:class:`StateCache`).
A cached state is only ever one that was committed, and it is used only when its
``last_seq`` equals the session row's: entries written since (by another process)
are read and applied on top; anything else falls back to a full replay.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ketacare.clinic.analytics import service as analytics
from ketacare.clinic.assessments.orm import ClinicalAlert
from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.orm import Patient
from ketacare.clinic.plans import service as plans
from ketacare.clinic.plans.orm import Appointment, Chair
from ketacare.clinic.screenings import service as screenings
from ketacare.clinic.sessions.orm import DosingSession, SessionEvent
from ketacare.core.errors import DoseLimitExceeded, InvalidInput, KetacareError
from ketacare.core.protocols import PlannedSession, build_plan
from ketacare.core.safeguards import CapCheck, CumulativeCap, DoseGiven, PlannedDose, check_caps
from ketacare.core.sessions import (
    ALERT_ACTIONS,
    FINAL_STATES,
    Amendment,
    MonitoringOrder,
    PreDoseCheck,
    Scheduled,
    SessionPolicy,
    SessionState,
    StaleSession,
    advance,
    apply_order,
    event_from_dict,
    event_to_dict,
    needs_order,
    replay,
    session_setup,
)
from ketacare.infra import policy as policies
from ketacare.infra.errors import Conflict, NotFound
from ketacare.infra.settings import Settings


def session_policy(settings: Settings) -> SessionPolicy | None:
    """The clinic's session policy (thresholds, intervals), when configured."""
    return policies.session_policy(settings)


def get_session(*, session: Session, session_id: int) -> DosingSession:
    row = session.get(DosingSession, session_id)
    if row is None:
        raise NotFound(f"session {session_id} does not exist")
    return row


@dataclass(frozen=True, slots=True)
class SessionHead:
    """The columns of a session row that a write and its answer need.

    Read as plain columns, not as a mapped object: every vitals post reads one, and
    building the object cost more than the rest of the read.
    """

    id: int
    plan_id: int
    patient_id: int
    session_number: int
    state: str
    last_seq: int


_HEAD = select(
    DosingSession.__table__.c.id,
    DosingSession.__table__.c.plan_id,
    DosingSession.__table__.c.patient_id,
    DosingSession.__table__.c.session_number,
    DosingSession.__table__.c.state,
    DosingSession.__table__.c.last_seq,
).where(DosingSession.__table__.c.id == bindparam("session_id"))


def head(*, session: Session, session_id: int) -> SessionHead:
    """The session's head (as committed, or as written earlier in this transaction)."""
    session.flush()  # a pending change to the row would otherwise be missed
    found = session.connection().execute(_HEAD, {"session_id": session_id}).first()
    if found is None:
        raise NotFound(f"session {session_id} does not exist")
    return SessionHead(*found)


def events_of(*, session: Session, session_id: int, after_seq: int = 0) -> tuple[Any, ...]:
    """The session's log as stored (from entry ``after_seq + 1`` on)."""
    rows = session.scalars(
        select(SessionEvent.data)
        .where(SessionEvent.session_id == session_id, SessionEvent.seq > after_seq)
        .order_by(SessionEvent.seq)
    )
    return tuple(event_from_dict(data) for data in rows)


class StateCache:
    """Committed session states of one database, most recently used first (bounded).

    Thread-safe: the server answers requests from a thread pool.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._states: OrderedDict[int, SessionState] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: int) -> SessionState | None:
        with self._lock:
            state = self._states.get(session_id)
            if state is not None:
                self._states.move_to_end(session_id)
            return state

    def put(self, session_id: int, state: SessionState) -> None:
        with self._lock:
            known = self._states.get(session_id)
            if known is not None and known.last_seq > state.last_seq:
                return  # a newer committed state is already here
            self._states[session_id] = state
            self._states.move_to_end(session_id)
            while len(self._states) > self.capacity:
                self._states.popitem(last=False)


_caches: weakref.WeakKeyDictionary[Engine, StateCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()
_PENDING = "ketacare.sessions.pending_states"


def cache_for(session: Session) -> StateCache:
    """The state cache of the database ``session`` is bound to."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    with _caches_lock:
        cache = _caches.get(engine)
        if cache is None:
            cache = _caches[engine] = StateCache()
        return cache


@sa_event.listens_for(Session, "after_commit")
def _publish_committed(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        cache = cache_for(session)
        for session_id, state in pending.items():
            cache.put(session_id, state)


@sa_event.listens_for(Session, "after_rollback")
def _drop_uncommitted(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _remember(session: Session, session_id: int, state: SessionState) -> None:
    """Offer ``state`` to the cache once (and only if) this transaction commits."""
    session.info.setdefault(_PENDING, {})[session_id] = state


def state_for(*, session: Session, row: DosingSession | SessionHead) -> SessionState:
    """The replayed state of the session ``row`` (cached, topped up, or replayed)."""
    pending = session.info.get(_PENDING, {}).get(row.id)
    if pending is not None and pending.last_seq == row.last_seq:
        return pending  # written earlier in this very transaction
    cached = cache_for(session).get(row.id)
    if cached is not None and cached.last_seq == row.last_seq:
        return cached
    if cached is not None and 0 < cached.last_seq < row.last_seq:
        state = cached
        newer = events_of(session=session, session_id=row.id, after_seq=cached.last_seq)
        for entry in newer:
            state = advance(state, entry, expected_seq=state.last_seq)
    else:
        state = replay(events_of(session=session, session_id=row.id))
    _remember(session, row.id, state)
    return state


def state_of(*, session: Session, session_id: int) -> SessionState:
    """The replayed state of a session."""
    return state_for(session=session, row=get_session(session=session, session_id=session_id))


def _planned(plan_schedule: Mapping[str, Any], number: int) -> dict[str, Any] | None:
    for s in plan_schedule.get("sessions", []):  # type: ignore[union-attr]
        if int(s["number"]) == number:
            return dict(s)
    return None


def open_session(
    *,
    session: Session,
    actor: audit.Actor,
    settings: Settings,
    plan_id: int,
    session_number: int,
    now: datetime,
    appointment_id: int | None = None,
    opened_at: datetime | None = None,
) -> DosingSession:
    """Open a session of a signed plan (a required preparation session must be documented)."""
    plan = plans.get_plan(session=session, plan_id=plan_id)
    if plan.status not in ("signed", "active"):
        raise Conflict(f"plan {plan_id} is {plan.status}: only a signed plan's sessions are given")
    if not plans.preparation_done(session=session, plan=plan):
        raise InvalidInput(
            "this plan requires a documented preparation session before the first dose"
        )
    if _planned(plan.schedule, session_number) is None:
        raise InvalidInput(f"plan {plan_id} has no session {session_number}")
    existing = session.scalar(
        select(DosingSession).where(
            DosingSession.plan_id == plan_id,
            DosingSession.session_number == session_number,
            DosingSession.state.not_in(("stopped_early",)),
        )
    )
    if existing is not None:
        raise Conflict(
            f"session {session_number} of plan {plan_id} is already open (session {existing.id})"
        )
    chair_id = None
    if appointment_id is not None:
        appt = session.get(Appointment, appointment_id)
        if appt is None or appt.plan_id != plan_id:
            raise InvalidInput(f"appointment {appointment_id} is not part of plan {plan_id}")
        chair_id = appt.chair_id
    protocol = plans.library(settings).get(protocol_id=plan.protocol_id)
    built = build_plan(
        protocol=protocol,
        weight_kg=plan.weight_kg,
        bag_mg=plan.bag_mg,
        bag_ml=plan.bag_ml,
        dose_mg_per_kg_per_h=plan.dose_mg_per_kg_per_h,
        dose_mg=plan.dose_mg,
        site_policy=plans.protocol_policy(settings),
    )
    planned: PlannedSession = next(s for s in built.sessions if s.number == session_number)
    setup = session_setup(
        protocol=protocol,
        weight_kg=plan.weight_kg,
        planned=planned,
        policy=session_policy(settings),
        limit_policy=plans.protocol_policy(settings),
    )
    if needs_order(protocol):
        if not plan.monitoring_order:
            raise InvalidInput(
                f"plan {plan_id} was signed without a monitoring order: a physician must sign "
                "a new version with one before a supervised session is given"
            )
        setup = apply_order(setup, MonitoringOrder.from_dict(plan.monitoring_order))
    if setup.observation.value is None:
        # fail closed: without a minimum observation, discharge could never be checked
        raise InvalidInput(
            f"no minimum observation after dosing is set for plan {plan_id} (protocol "
            f"{plan.protocol_id} publishes none, the plan's monitoring order has none and the "
            "clinic's session policy sets no observation_min): a physician must sign a new "
            "version of the plan with one, or the clinic must set it, before a session opens"
        )
    at = opened_at or now
    if at.tzinfo is None or at > now:
        raise InvalidInput(
            "the session's start must be a past time with a time zone "
            "(charting after the fact is allowed, ahead of time is not)"
        )
    # the clinic's caps on the cumulative dose, before anything is stored
    check_cumulative_dose(
        session=session,
        settings=settings,
        patient_id=plan.patient_id,
        planned=PlannedDose(
            molecule=setup.molecule,
            mg=setup.planned_dose_mg or 0.0,
            weight_kg=setup.weight_kg,
        ),
        at=at,
        now=now,
    )
    check_course_ceiling(
        session=session, patient_id=plan.patient_id, plan_id=plan_id, setup=setup, now=now
    )
    row = DosingSession(
        plan_id=plan_id,
        patient_id=plan.patient_id,
        session_number=session_number,
        appointment_id=appointment_id,
        chair_id=chair_id,
        state="scheduled",
        last_seq=0,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    _store(session, row, None, Scheduled(at=at, by=actor.username, setup=setup), 0, actor, now)
    audit.record(
        session=session,
        actor=actor,
        action="create",
        resource_type="session",
        resource_id=row.id,
        patient_id=plan.patient_id,
        at=now,
        detail={"plan": plan_id, "session": session_number},
    )
    return row


def _store(
    session: Session,
    row: DosingSession | SessionHead,
    before: SessionState | None,
    new: Any,
    expected_seq: int,
    actor: audit.Actor,
    now: datetime,
) -> SessionState:
    if before is None:
        if expected_seq != 0:
            raise StaleSession(expected_seq=expected_seq, actual_seq=0, latest="no entries")
        state = replay((dataclasses.replace(new, seq=1),))
    else:
        state = advance(before, new, expected_seq=expected_seq)
    seen = 0 if before is None else before.last_seq
    if _claim_and_append(session, row.id, seen, state, actor, now) is None:
        raise _overtaken(session, row.id, seen)
    return state


def _claim_and_append(
    session: Session,
    session_id: int,
    seen: int,
    state: SessionState,
    actor: audit.Actor,
    now: datetime,
) -> Row[Any] | None:
    """Write ``state``'s last entry; None (nothing written) when the row is past ``seen``.

    The next number is claimed on the session row first, guarded by the number this
    write saw: a concurrent writer that got there first leaves no row to update
    (PostgreSQL re-checks the guard once the other transaction ends), so the loser is
    refused cleanly before it inserts anything. Plain statements, not the unit of work
    (whose flush of one dirty row cost more than the rest of the write). Gives the
    row's plan, patient and number.
    """
    claimed = session.execute(
        _CLAIM,
        {
            "b_id": session_id,
            "b_seen": seen,
            "b_state": state.state,
            "b_seq": state.last_seq,
            "b_now": now,
        },
    ).first()
    if claimed is None:
        return None
    loaded = session.identity_map.get(Session.identity_key(DosingSession, session_id))
    if loaded is not None:  # keep a mapped copy of the row in step, without a flush
        for key, value in (
            ("state", state.state),
            ("last_seq", state.last_seq),
            ("updated_at", now),
        ):
            set_committed_value(loaded, key, value)
    added = state.events[-1]
    try:
        # a plain INSERT (entries are never changed, so the unit of work has nothing to
        # track); a duplicate (session, seq) means another writer took this number first
        session.execute(
            SessionEvent.__table__.insert(),
            {
                "session_id": session_id,
                "seq": added.seq,
                "kind": type(added).__name__,
                "at": added.at,
                "recorded_by": actor.user_id,
                "data": event_to_dict(added),
            },
        )
    except IntegrityError:
        # the row's guard makes this unreachable unless the row and its log disagree
        raise StaleSession(
            expected_seq=seen, actual_seq=added.seq, latest="written at the same moment"
        ) from None
    _remember(session, session_id, state)
    return claimed


def _fast_write(
    session: Session,
    session_id: int,
    event: Any,
    expected_seq: int,
    actor: audit.Actor,
    now: datetime,
) -> tuple[SessionHead, SessionState] | None:
    """The write without reading the row first, when this process's cached state is the
    one the writer saw; None (nothing written) when it may not be.

    The guard on the row is what makes it safe: the cached state is committed, and a
    row still at its entry number holds exactly the log that state was built from. A
    refusal on the cached state is not trusted (the session may have moved on in
    another process): the full path decides what to say.
    """
    if expected_seq == 0 or session_id in session.info.get(_PENDING, {}):
        return None
    cached = cache_for(session).get(session_id)
    if cached is None or cached.last_seq != expected_seq:
        return None
    try:
        state = advance(cached, event, expected_seq=expected_seq)
    except KetacareError:
        return None
    session.flush()  # a pending change of this transaction goes first, as in head()
    claimed = _claim_and_append(session, session_id, cached.last_seq, state, actor, now)
    if claimed is None:
        return None
    plan_id, patient_id, number = claimed
    return SessionHead(session_id, plan_id, patient_id, number, state.state, state.last_seq), state


def _overtaken(session: Session, session_id: int, seen: int) -> StaleSession:
    """The refusal for a write that another writer overtook: what the session holds now."""
    current = session.execute(
        select(DosingSession.last_seq).where(DosingSession.id == session_id)
    ).scalar_one()
    data = session.execute(
        select(SessionEvent.data).where(
            SessionEvent.session_id == session_id, SessionEvent.seq == current
        )
    ).scalar_one_or_none()
    latest = "no entries" if data is None else event_from_dict(data).describe()
    return StaleSession(expected_seq=seen, actual_seq=current, latest=latest)


_SESSIONS = DosingSession.__table__
_CLAIM = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("b_id"), _SESSIONS.c.last_seq == bindparam("b_seen"))
    .values(state=bindparam("b_state"), last_seq=bindparam("b_seq"), updated_at=bindparam("b_now"))
    .returning(_SESSIONS.c.plan_id, _SESSIONS.c.patient_id, _SESSIONS.c.session_number)
)


DOSE_KINDS = frozenset({"start_infusion", "bolus", "self_administration", "amendment"})
"""Entries after which the clinic dashboard's summary of the patient is recomputed."""


def record(
    *,
    session: Session,
    actor: audit.Actor,
    session_id: int,
    data: Mapping[str, Any],
    expected_seq: int,
    now: datetime,
) -> SessionState:
    """Append one event (kind and fields as in the event model); who and when are ours."""
    return record_entry(
        session=session,
        actor=actor,
        session_id=session_id,
        data=data,
        expected_seq=expected_seq,
        now=now,
    )[1]


def record_entry(
    *,
    session: Session,
    actor: audit.Actor,
    session_id: int,
    data: Mapping[str, Any],
    expected_seq: int,
    now: datetime,
) -> tuple[SessionHead, SessionState]:
    """As :func:`record`, also giving the session's head (for the answer)."""
    payload = {k: v for k, v in data.items() if k not in ("by", "seq")}
    at = payload.get("at")
    payload["at"] = now.isoformat() if at in (None, "") else at
    payload["by"] = actor.username
    event = event_from_dict(payload)
    if event.at > now:
        raise InvalidInput(f"at {event.at.isoformat()} is in the future")
    _refuse_a_hand_screening_check(event)
    if payload.get("kind") in COURSE_KINDS:
        _course_ceiling_at_the_chair(session, session_id, now)
    if payload.get("kind") in ("start_infusion", "self_administration"):
        expected_seq = _screening_from_record(session, session_id, event, expected_seq, actor, now)
    fast = _fast_write(session, session_id, event, expected_seq, actor, now)
    if fast is not None:
        row, state = fast
    else:
        row = head(session=session, session_id=session_id)
        state = _store(
            session, row, state_for(session=session, row=row), event, expected_seq, actor, now
        )
    if payload.get("kind") in ALERT_KINDS:
        sync_inbox(session=session, actor=actor, head=row, state=state, now=now)
    if payload.get("kind") in DOSE_KINDS:
        # a dose given (or an entry corrected) can change the patient's outcome summary
        analytics.refresh_patient(session=session, patient_id=row.patient_id, now=now)
    if state.state == "dosing" and payload.get("kind") in ("start_infusion", "self_administration"):
        plan = plans.get_plan(session=session, plan_id=row.plan_id)
        if plan.status == "signed":
            plan.status = "active"
    audit.record(
        session=session,
        actor=actor,
        action="record",
        resource_type="session",
        resource_id=row.id,
        patient_id=row.patient_id,
        at=now,
        detail={"kind": payload.get("kind"), "seq": state.last_seq},
    )
    return row, state


#: The pre-dose item read from the record when dosing starts, never ticked by hand.
RECORD_CHECK = "screening_valid"


def _refuse_a_hand_screening_check(event: Any) -> None:
    """Whether a screening holds is the record's answer, not a tick (nor a corrected tick)."""
    entry = event.replacement if isinstance(event, Amendment) else event
    if isinstance(entry, PreDoseCheck) and entry.item == RECORD_CHECK:
        raise InvalidInput(
            "the screening is not ticked by hand: it is read from the record when dosing "
            "starts (a physician-signed screening in force for the plan's molecule and route)"
        )


def screening_for_session(
    *, session: Session, patient_id: int, state: SessionState, at: datetime
) -> screenings.Coverage:
    """The record's screening for the session's molecule and route at ``at`` (a Coverage)."""
    setup = state.setup
    assert setup is not None  # the first entry of every session carries its setup
    return screenings.coverage(
        session=session,
        patient_id=patient_id,
        molecule=plans.MOLECULES[setup.molecule],
        route=plans.ROUTES[setup.route],
        at=at,
    )


def _screening_from_record(
    session: Session,
    session_id: int,
    event: Any,
    expected_seq: int,
    actor: audit.Actor,
    now: datetime,
) -> int:
    """Before the first dose, enter the screening check from the record (or refuse).

    The check is entered by the same write as the dose, dated with it, naming the
    screening it read; without a signed, unexpired screening that allows the plan's
    molecule and route, dosing does not start and nothing is stored. Gives the entry
    number the dose is then written after.
    """
    row = head(session=session, session_id=session_id)
    before = state_for(session=session, row=row)
    if (
        before.last_seq != expected_seq  # stale: the write below says so
        or before.state != "pre_dose_checks"
        or before.dosing_started_at is not None
        or before.setup is None
        or RECORD_CHECK not in before.setup.required_checks
    ):
        return expected_seq
    covered = screening_for_session(
        session=session, patient_id=row.patient_id, state=before, at=event.at
    )
    if not covered.ok:
        raise InvalidInput(f"dosing cannot start: {covered.problem}")
    check = PreDoseCheck(
        at=event.at,
        by=actor.username,
        item=RECORD_CHECK,
        ok=True,
        detail=f"from the record: {covered.describe()}",
    )
    return _store(session, row, before, check, expected_seq, actor, now).last_seq


ALERT_KINDS = frozenset({"vitals", "side_effects", "acknowledge_alert", "amendment"})
"""Entries after which the session's alerts are mirrored to the clinician's inbox."""


def sync_inbox(
    *,
    session: Session,
    actor: audit.Actor,
    head: SessionHead,
    state: SessionState,
    now: datetime,
) -> None:
    """Mirror the session's alerts to the responsible clinician's inbox (the one PHQ-9 item 9
    alerts use): a new alert raises an inbox alert at once; one acknowledged at the chair
    closes its inbox alert with the action taken."""
    rows = {
        a.session_alert: a
        for a in session.scalars(select(ClinicalAlert).where(ClinicalAlert.session_id == head.id))
    }
    recipient = None
    for alert in state.alerts:
        row = rows.get(alert.id)
        if row is None and alert.is_open:
            if recipient is None:
                recipient = session.get(Patient, head.patient_id)
            row = ClinicalAlert(
                patient_id=head.patient_id,
                kind="session_vitals",
                message=f"Session {head.id} (plan {head.plan_id}): {_alert_text(alert)}",
                routes_to=None,
                recipient_id=recipient.responsible_clinician_id if recipient else None,
                raised_at=now,
                session_id=head.id,
                session_alert=alert.id,
            )
            session.add(row)
            session.flush()
            audit.record(
                session=session,
                actor=actor,
                action="alert",
                resource_type="clinical_alert",
                resource_id=row.id,
                patient_id=head.patient_id,
                at=now,
                detail={"kind": "session_vitals", "session": head.id, "alert": alert.id},
            )
        elif row is not None and not alert.is_open and row.acknowledged_at is None:
            ack = alert.acknowledgement
            assert ack is not None
            row.acknowledged_at = now
            row.acknowledged_by = actor.user_id
            row.action = f"at the chair: {ack.action.replace('_', ' ')}" + (
                f" ({ack.note})" if ack.note else ""
            )


def acknowledged_at_the_chair(*, session: Session, alert: ClinicalAlert) -> bool:
    """True when the inbox alert mirrors a session alert still open at a chair in use.

    Such an alert is acknowledged at the chair only, with the action taken there
    (continue, reduce rate, pause, stop, call physician): the acknowledgement is an
    entry of the session's log, which is what the discharge rule and the chair read;
    an inbox note would close the inbox while the chair still shows the alert open,
    or clear the chair's alert with nobody at the chair having acted. Once the
    session has ended (ended early with the alert open) the chair can no longer
    record it, and the inbox acknowledgement is the record of the follow-up.
    """
    if alert.session_id is None or alert.session_alert is None:
        return False
    row = session.get(DosingSession, alert.session_id)
    if row is None or row.state in FINAL_STATES:
        return False
    state = state_for(session=session, row=row)
    return any(a.id == alert.session_alert and a.is_open for a in state.alerts)


def refuse_inbox_acknowledgement(*, session: Session, alert: ClinicalAlert) -> None:
    """Refuse to acknowledge from the inbox a session alert open at the chair (see
    :func:`acknowledged_at_the_chair`); nothing is stored.

    Raises
    ------
    Conflict
        Naming the session, where to acknowledge it and the actions to choose from.
    """
    if acknowledged_at_the_chair(session=session, alert=alert):
        actions = ", ".join(a.replace("_", " ") for a in ALERT_ACTIONS)
        raise Conflict(
            f"this alert is open at the chair of session {alert.session_id}: acknowledge it "
            f"there with the action taken ({actions}) at /sessions/{alert.session_id} "
            f"(API: POST /api/v1/sessions/{alert.session_id}/events with kind "
            "acknowledge_alert); the inbox closes with it"
        )


@dataclass(frozen=True)
class BoardPatient:
    id: int
    family_name: str
    given_name: str


@dataclass(frozen=True)
class BoardRow:
    session: DosingSession
    patient: BoardPatient
    chair: str | None
    state: SessionState


def board(*, session: Session, actor: audit.Actor, now: datetime) -> list[BoardRow]:
    """Every session still at a chair (not discharged or ended); the read is audited.

    Three queries and one audit row, however many chairs: the board refreshes every
    few seconds on every screen at the nurses' station.
    """
    rows = list(
        session.scalars(
            select(DosingSession)
            .where(DosingSession.state.not_in(tuple(FINAL_STATES)))
            .order_by(DosingSession.id)
        )
    )
    chairs = {c.id: c.name for c in session.scalars(select(Chair))}
    names = {
        pid: BoardPatient(pid, family, given)
        for pid, family, given in session.execute(
            select(Patient.id, Patient.family_name, Patient.given_name).where(
                Patient.id.in_({row.patient_id for row in rows})
            )
        )
    }
    out = [
        BoardRow(
            session=row,
            patient=names[row.patient_id],
            chair=chairs.get(row.chair_id) if row.chair_id else None,
            state=state_for(session=session, row=row),
        )
        for row in rows
    ]
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type="board",
        at=now,
        detail={"sessions": [row.id for row in rows], "patients": sorted(names)},
    )
    return out


def doses_given(
    *,
    session: Session,
    patient_id: int,
    now: datetime,
    before: datetime | None = None,
    pending: bool = False,
) -> list[DoseGiven]:
    """Every session of the patient in which dosing started, with what its log says was
    delivered (to the end of dosing, or to ``now`` while still dosing).

    ``before`` keeps only doses whose dosing started at or before it. With ``pending``
    (what a cap check needs) a session opened and not ended whose dosing has not
    started counts too, at its scheduled time with its planned dose, and a session
    still dosing counts with at least its planned dose. Not audited: the caller audits
    its own read.
    """
    from ketacare.core.sessions import delivered_mg

    roots = plans.course_roots(session=session, patient_id=patient_id)
    out: list[DoseGiven] = []
    for row in session.scalars(
        select(DosingSession)
        .where(DosingSession.patient_id == patient_id)
        .order_by(DosingSession.id)
    ):
        state = state_of(session=session, session_id=row.id)
        started = state.dosing_started_at
        planned_mg = state.setup.planned_dose_mg or 0.0
        if started is None:
            if not pending or state.state in FINAL_STATES:
                continue
            at, mg, ongoing = state.scheduled_at, planned_mg, True
        else:
            ended = state.dosing_ended_at or state.finished_at
            at, mg, ongoing = started, delivered_mg(state, at=ended or now), ended is None
            if pending and ongoing:
                mg = max(mg, planned_mg)
        if before is not None and at > before:
            continue
        out.append(
            DoseGiven(
                session_id=row.id,
                course_id=roots.get(row.plan_id, row.plan_id),
                at=at,
                molecule=state.setup.molecule,
                route=state.setup.route,
                mg=mg,
                weight_kg=state.setup.weight_kg,
                ongoing=ongoing,
            )
        )
    out.sort(key=lambda d: (d.at, d.session_id))
    return out


def cumulative_caps(settings: Settings) -> tuple[CumulativeCap, ...]:
    """The clinic's caps on the cumulative dose (none unless its session policy sets them)."""
    policy = session_policy(settings)
    return policy.cumulative_caps if policy is not None else ()


def check_cumulative_dose(
    *,
    session: Session,
    settings: Settings,
    patient_id: int,
    planned: PlannedDose,
    at: datetime,
    now: datetime,
) -> tuple[CapCheck, ...]:
    """The clinic's caps against the patient's doses with ``planned`` added at ``at``.

    Every dose counts, also one later than ``at`` (a session charted after the fact
    falls inside the windows of the doses given since), and so does every session
    opened and not ended: one not yet dosing with its planned dose, one still dosing
    with at least its planned dose (two sessions opened before either is given would
    otherwise each pass a cap that both together exceed).

    Raises
    ------
    DoseLimitExceeded
        When the planned dose would take a total above a cap; the message names the
        totals, the cap and who approved it. Nothing is stored.
    """
    caps = cumulative_caps(settings)
    if not caps:
        return ()
    doses = doses_given(session=session, patient_id=patient_id, now=now, pending=True)
    checks = check_caps(doses, caps=caps, at=at, planned=planned)
    over = [c for c in checks if c.exceeded]
    if over:
        open_ = sorted(d.session_id for d in doses if d.ongoing and d.molecule == planned.molecule)
        note = (
            f" (counted with their planned dose: session(s) {', '.join(map(str, open_))} "
            "opened and not finished; end one that will not be given)"
            if open_
            else ""
        )
        raise DoseLimitExceeded(
            "this session would exceed the clinic's cap on the cumulative dose: "
            + "; ".join(c.message() for c in over)
            + note
            + ". A physician must change the plan (or the clinic its policy)."
        )
    return checks


#: Entries that give a dose: the course ceiling is checked again before each is written.
COURSE_KINDS = frozenset({"start_infusion", "bolus", "self_administration"})


def check_course_ceiling(
    *,
    session: Session,
    patient_id: int,
    plan_id: int,
    setup: Any,
    now: datetime,
    exclude_session: int | None = None,
) -> float:
    """The course's total with this session's planned dose, refused above the hard ceiling
    per course (the protocol's ``course_mg``, from its source or the clinic's protocol policy).

    The course is the plan and the versions it supersedes (:func:`plans.course_roots`);
    its total counts every session of it as :func:`doses_given` does for a cap (what was
    given, a session still open with at least its planned dose), leaving out
    ``exclude_session`` (the session being charted, counted by its planned dose: the
    chair refuses any entry above it). Gives the total.

    Raises
    ------
    DoseLimitExceeded
        Naming the dose (given so far and this session's), the limit and the protocol.
        Nothing is stored.
    HardLimitNotSet
        When the session's protocol has no hard ceiling per course (fail closed).
    """
    from ketacare.core.errors import HardLimitNotSet

    ceiling = next(
        (lim for lim in setup.limits if lim.key == "course_mg" and lim.level == "hard"), None
    )
    pid = setup.protocol_id or "(no protocol)"
    if ceiling is None or ceiling.value is None:
        raise HardLimitNotSet(
            f"protocol {pid}: the hard limit per course (course_mg) is not set: no dose is "
            f"given until it is set in the protocol policy file ([{pid}.limits.course_mg] "
            "hard = ...)"
        )
    course = plans.course_roots(session=session, patient_id=patient_id).get(plan_id, plan_id)
    given = [
        d
        for d in doses_given(session=session, patient_id=patient_id, now=now, pending=True)
        if d.course_id == course and d.session_id != exclude_session
    ]
    so_far = sum(d.mg for d in given)
    planned = setup.planned_dose_mg or 0.0
    total = so_far + planned
    if total > ceiling.value * (1 + 1e-9) + 1e-9:
        where = f"sourced: {ceiling.source}" if ceiling.basis == "sourced" else "site policy"
        raise DoseLimitExceeded(
            f"course dose {total:.4g} mg ({so_far:.4g} mg in {len(given)} earlier session(s) of "
            f"this course + this session's planned {planned:.4g} mg) exceeds the hard limit "
            f"{ceiling.value:g} mg per course of protocol {pid} ({where}): no more ketamine in "
            "this course; a physician decides what follows"
        )
    return total


def _course_ceiling_at_the_chair(session: Session, session_id: int, now: datetime) -> None:
    """Before a dose is charted: the course ceiling with the sessions opened since."""
    row = head(session=session, session_id=session_id)
    state = state_for(session=session, row=row)
    if state.setup is None:
        return
    check_course_ceiling(
        session=session,
        patient_id=row.patient_id,
        plan_id=row.plan_id,
        setup=state.setup,
        now=now,
        exclude_session=row.id,
    )


def sessions_of_plan(*, session: Session, plan_id: int) -> list[DosingSession]:
    return list(
        session.scalars(
            select(DosingSession)
            .where(DosingSession.plan_id == plan_id)
            .order_by(DosingSession.session_number, DosingSession.id)
        )
    )


def view(
    *,
    row: DosingSession | SessionHead,
    state: SessionState,
    now: datetime,
    include_events: bool = True,
) -> dict[str, Any]:
    """What the chair view and the API show, all derived from the log."""
    from ketacare.core.sessions import (
        delivered_mg,
        discharge_status,
        event_to_dict,
        monitoring_schedule,
        timers,
    )

    schedule = monitoring_schedule(state, now=now)
    clock = timers(state, now=now)
    discharge = discharge_status(state, now=now)
    setup = state.setup
    return {
        "id": row.id,
        "plan_id": row.plan_id,
        "patient_id": row.patient_id,
        "session_number": row.session_number,
        "state": state.state,
        "last_seq": state.last_seq,
        "rate_mg_per_h": state.rate_mg_per_h,
        "paused": state.paused,
        "delivered_mg": round(delivered_mg(state, at=now), 3),
        "open_alerts": [
            {"id": a.id, "message": _alert_text(a), "opened_at": a.opened_at, "value": a.value}
            for a in state.open_alerts
        ],
        "next_check": None
        if schedule.next is None
        else {
            "what": schedule.next.what,
            "due_at": schedule.next.due_at,
            "status": schedule.next.status,
        },
        "overdue": [c.what for c in schedule.overdue],
        "schedule_notes": list(schedule.notes),
        "timers": {
            k: (v.total_seconds() if hasattr(v, "total_seconds") else v)
            for k, v in vars_of(clock).items()
        },
        "discharge": {
            "allowed": discharge.allowed,
            "reasons": list(discharge.reasons),
            "earliest_at": discharge.earliest_at,
            "notes": list(discharge.notes),
        },
        "news2": [_news2_dict(n) for n in state.news2],
        "news2_latest": None if state.latest_news2 is None else _news2_dict(state.latest_news2),
        "alerts": [
            {
                "id": a.id,
                "message": _alert_text(a),
                "open": a.is_open,
                "opened_at": a.opened_at,
                "action": None
                if a.acknowledgement is None
                else a.acknowledgement.action.replace("_", " "),
                "acknowledged_by": None if a.acknowledgement is None else a.acknowledgement.by,
            }
            for a in state.alerts
        ],
        "alert_actions": list(ALERT_ACTIONS),
        "order": order_lines(setup),
        "vitals_table": vitals_table(state),
        "record_vital_signs": _record_vital_signs(state),
        "missing_checks": list(state.missing_checks),
        "unset_policy": list(setup.unset()) if setup is not None else [],
        "events": [event_to_dict(e) for e in state.events] if include_events else None,
    }


def _news2_dict(n: Any) -> dict[str, Any]:
    """One NEWS2 result as the API and the pages show it (always-on RCP 2017 score)."""
    return {
        "seq": n.seq,
        "at": n.at,
        "total": n.total,
        "band": n.band,
        "band_label": n.band_label,
        "subscores": dict(n.subscores),
        "flags": list(n.flags),
        "alerting": n.alerting,
        "not_scored": n.not_scored,
    }


def order_lines(setup: Any) -> list[str]:
    """The monitoring order in force, one line per value with who set it and its origin."""
    lines = [
        s.describe()
        for s in (setup.vitals_interval, setup.recovery_vitals_interval, setup.observation)
        if s.basis == "order" or s.basis == "sourced"
    ]
    lines += [t.describe() for t in setup.thresholds if t.basis == "order"]
    return lines


def vitals_table(state: SessionState) -> list[dict[str, Any]]:
    """Every vitals set with each value's change from the pre-session baseline (percent) and
    whether it crossed a threshold in force (the breach is highlighted in the table)."""
    from ketacare.core.sessions import change_from_baseline

    base = state.baseline
    out = []
    for e in state.vitals:
        cells = {}
        for key in VITAL_NAMES:
            value = getattr(e, key)
            if value is None:
                cells[key] = None
                continue
            ref = None if base is None else getattr(base, key)
            pct = None if ref in (None, 0) or e is base else change_from_baseline(ref, value)
            breach = any(
                t.vital == key
                and t.breached_by(value)
                and not (
                    t.phase == "pre_dose"
                    and state.dosing_started_at is not None
                    and e.at >= state.dosing_started_at
                )
                for t in state.setup.thresholds
            )
            cells[key] = {"value": value, "pct": pct, "breach": breach}
        out.append({"at": e.at, "seq": e.seq, "baseline": e is base, "cells": cells})
    return out


def _record_vital_signs(state: SessionState) -> dict[str, Any] | None:
    from ketacare.core.sessions import record_vital_signs

    record = record_vital_signs(state)
    if record is None:
        return None
    return {
        "score": record.score,
        "text": record.describe(),
        "changes": [c.describe() for c in record.changes],
    }


def vars_of(obj: Any) -> dict[str, Any]:
    from dataclasses import fields, is_dataclass

    if is_dataclass(obj):
        return {f.name: getattr(obj, f.name) for f in fields(obj)}
    return dict(vars(obj))


def _alert_text(alert: Any) -> str:
    t = alert.threshold
    if t is None:  # NEWS2 (always on)
        news2 = alert.news2
        messages = " ".join(news2.flag_messages) if news2 is not None else ""
        return f"{news2.describe() if news2 is not None else 'NEWS2'}. {messages}".strip()
    above = "above" if t.direction == "high" else "below"
    if t.inclusive:
        above = "at or " + above
    basis = "monitoring order" if t.basis == "order" else str(t.basis).replace("_", " ")
    action = f" {t.action}" if getattr(t, "action", "") else ""
    name = _OBSERVED_NAMES.get(t.vital, t.vital)
    return f"{name} {alert.value:g} is {above} the {basis} limit {t.value:g}.{action}"


VITAL_NAMES = {
    "sbp_mmhg": "Systolic BP (mmHg)",
    "dbp_mmhg": "Diastolic BP (mmHg)",
    "hr_per_min": "Heart rate (/min)",
    "spo2_pct": "SpO2 (%)",
    "rr_per_min": "Respiratory rate (/min)",
    "temperature_c": "Temperature (°C)",
}
_OBSERVED_NAMES = {**VITAL_NAMES, "sedation_moaas": "Sedation (MOAA/S)"}

"""Build the per-patient outcome summary from the record, one patient or the whole clinic.

Two paths compute the same rows with the core's two implementations of the same rules
(:mod:`ketacare.core.outcomes`):

- :func:`patient_rows` follows one patient with the per-patient functions
  (:func:`~ketacare.core.outcomes.response_course`), when an assessment or a session
  of that patient changes;
- :func:`rebuild` judges every treated patient with the columnar
  :func:`~ketacare.core.outcomes.evaluate_patients`, a chunk of patients at a time,
  for ``ketacare analytics refresh`` (100,000 patients in seconds, not hours).

The test suite checks that both give identical rows.

What a row holds, and why:

- **Cohort entry** is the first *given* session: the first dosing entry (start of an
  infusion, a bolus, a self-administration) of the patient's sessions. Sessions that
  were opened but never dosed do not count. Sessions whose log holds an amendment are
  replayed (:func:`ketacare.core.sessions.replay`), because an amendment can correct
  or retire the dosing entry; all others are read with one query.
- **Protocol** is that first given session's plan's protocol (the treatment the
  patient entered the cohort with).
- **Condition** is the patient's first-recorded active diagnosis, grouped by
  :func:`~ketacare.clinic.analytics.reference.condition_group`.
- **Lost to follow-up** is not stored: it depends on the day of the query, so the row
  keeps ``last_contact`` (the last value of the measure after cohort entry, else cohort
  entry) and the dashboard compares it with the follow-up window.
- **Durability** needs the clinic's ``loss_confirmations`` (site policy, no default).
  The first response and the response at the last follow-up do not depend on it, so
  they are always stored; the loss date and the durability only when it is set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from time import perf_counter
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import BigInteger, Table, and_, delete, func, insert, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from ketacare.clinic.analytics.orm import OutcomeSummary, OutcomeSummaryRun
from ketacare.clinic.analytics.reference import NO_DIAGNOSIS, condition_group
from ketacare.clinic.assessments.orm import Assessment
from ketacare.clinic.patients.orm import Condition, Patient
from ketacare.clinic.plans.orm import Plan
from ketacare.clinic.sessions.orm import DosingSession, SessionEvent
from ketacare.core.outcomes import (
    STATUS_NAMES,
    Definition,
    MeasureColumns,
    MeasureSeries,
    Registry,
    ResponseCourse,
    Sessions,
    evaluate_patients,
    load_definitions,
    response_course,
)
from ketacare.core.sessions import event_from_dict, replay
from ketacare.core.sessions.events import Amendment, Bolus, SelfAdministration, StartInfusion

#: Session log entries that deliver a dose (their class names, as the log stores them).
DOSING_ENTRIES = (StartInfusion.__name__, Bolus.__name__, SelfAdministration.__name__)
AMENDMENT_ENTRY = Amendment.__name__
SECONDS_PER_DAY = 86_400
#: Patients judged together by the whole-clinic rebuild (bounds memory: ~50 scores each).
CHUNK_PATIENTS = 20_000
_INSERT_BATCH = 5_000
_NONE = np.iinfo(np.int64).max  # the core's "no time" sentinel
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Progress = Callable[[int, int], None]


def definitions() -> tuple[Definition, ...]:
    """The response and remission definitions the summary follows (all shipped ones)."""
    return load_definitions().definitions


def measures() -> tuple[str, ...]:
    """The instruments the definitions are measured with (e.g. ``nrs_pain``, ``phq9``)."""
    return tuple(sorted({d.measure for d in definitions()}))


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class Given:
    """A session in which a dose was given, and when dosing started."""

    session_id: int
    patient_id: int
    plan_id: int
    started_at: datetime


def given_sessions(session: Session, *, patient_id: int | None = None) -> list[Given]:
    """Sessions with a dose given, oldest first.

    One query finds each session's first dosing entry. A session is replayed only when
    an amendment corrects or retires one of its dosing entries.
    """
    first = select(SessionEvent.session_id, func.min(SessionEvent.seq).label("seq")).where(
        SessionEvent.kind.in_(DOSING_ENTRIES)
    )
    amendments = select(SessionEvent.session_id, SessionEvent.data).where(
        SessionEvent.kind == AMENDMENT_ENTRY
    )
    if patient_id is not None:
        mine = select(DosingSession.id).where(DosingSession.patient_id == patient_id)
        first = first.where(SessionEvent.session_id.in_(mine))
        amendments = amendments.where(SessionEvent.session_id.in_(mine))
    firsts = first.group_by(SessionEvent.session_id).subquery()
    rows = session.execute(
        select(DosingSession.id, DosingSession.patient_id, DosingSession.plan_id, SessionEvent.at)
        .join(firsts, firsts.c.session_id == DosingSession.id)
        .join(
            SessionEvent,
            and_(SessionEvent.session_id == firsts.c.session_id, SessionEvent.seq == firsts.c.seq),
        )
        # a record retired as entered in error leaves the dashboard
        .join(Patient, Patient.id == DosingSession.patient_id)
        .where(Patient.retired_at.is_(None))
    ).all()
    targets = {(sid, data.get("target_seq")) for sid, data in session.execute(amendments)}
    replayed: set[int] = set()
    if targets:
        amended = {sid for sid, _ in targets}
        for sid, seq in session.execute(
            select(SessionEvent.session_id, SessionEvent.seq).where(
                SessionEvent.kind.in_(DOSING_ENTRIES), SessionEvent.session_id.in_(amended)
            )
        ):
            if (sid, seq) in targets:
                replayed.add(sid)
    out: list[Given] = []
    for session_id, pid, plan_id, at in rows:
        if session_id in replayed:
            log = session.scalars(
                select(SessionEvent.data)
                .where(SessionEvent.session_id == session_id)
                .order_by(SessionEvent.seq)
            )
            started = replay(tuple(event_from_dict(data) for data in log)).dosing_started_at
            if started is None:  # the dosing entry was retired as entered in error
                continue
            at = started
        out.append(Given(session_id, pid, plan_id, at.astimezone(UTC)))
    out.sort(key=lambda g: (g.started_at, g.session_id))
    return out


@lru_cache(maxsize=4096)
def _group(code: str) -> str:
    return condition_group(code)[0]


def diagnoses(session: Session, *, patient_id: int | None = None) -> dict[int, str]:
    """The condition key of each patient's first-recorded active diagnosis."""
    query = (
        select(Condition.patient_id, Condition.icd10_code)
        .where(Condition.status == "active")
        .order_by(Condition.patient_id, Condition.id)
    )
    if patient_id is not None:
        query = query.where(Condition.patient_id == patient_id)
    found: dict[int, str] = {}
    for pid, code in session.execute(query):
        if pid not in found:
            found[pid] = _group(code)
    return found


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


def _from_seconds(value: int) -> datetime | None:
    return None if value == _NONE else datetime.fromtimestamp(int(value), UTC)


def _seconds(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(seconds=1)


# ----------------------------------------------------------------------- one patient


def _course_row(course: ResponseCourse, k: int | None) -> dict[str, Any]:
    """The judged part of a row from a per-patient course."""
    if course.state == "not_assessable":
        status = "no_baseline" if course.baseline is None else "not_eligible"
    elif course.state == "no_follow_up":
        status = "no_follow_up"
    elif course.state == "never":
        status = "non_responder"
    else:
        status = "responder"
    start = course.first_response
    loss = course.episodes[0].end if course.episodes and k is not None else None
    durability: int | None = None
    if start is not None and k is not None and course.last_follow_up is not None:
        end = loss if loss is not None else course.last_follow_up
        durability = (end - start) // SECONDS_PER_DAY
    return {
        "status": STATUS_NAMES.index(status),
        "baseline": None if course.baseline is None else course.baseline.value,
        "met_at_last": bool(course.met_at_last)
        if status in ("non_responder", "responder")
        else False,
        "first_response": None if start is None else _from_seconds(start),
        "loss_at": None if loss is None else _from_seconds(loss),
        "durability_days": durability,
        "durability_event": None if durability is None else loss is not None,
    }


def patient_rows(
    *, session: Session, patient_id: int, now: datetime, loss_confirmations: int | None
) -> list[dict[str, Any]]:
    """The summary rows of one patient (none when no dose has been given yet)."""
    given = [g for g in given_sessions(session, patient_id=patient_id) if g.started_at <= now]
    if not given:
        return []
    entry = given[0]
    plan = session.get(Plan, entry.plan_id)
    protocol = plan.protocol_id if plan is not None else "unknown"
    condition = diagnoses(session, patient_id=patient_id).get(patient_id, NO_DIAGNOSIS[0])
    scores: dict[str, list[tuple[datetime, float]]] = {m: [] for m in measures()}
    for instrument, at, total in session.execute(
        select(Assessment.instrument_id, Assessment.completed_at, Assessment.total)
        .where(
            Assessment.patient_id == patient_id,
            Assessment.status == "final",
            Assessment.total.is_not(None),
            Assessment.instrument_id.in_(measures()),
            Assessment.completed_at <= now,
        )
        .order_by(Assessment.completed_at, Assessment.id)
    ):
        if total is not None:
            scores[instrument].append((_naive(at), float(total)))
    sessions = Sessions.build(time=np.array([_naive(g.started_at) for g in given], "datetime64[s]"))
    first = int(sessions.time[0])
    k = loss_confirmations
    rows = []
    for definition in definitions():
        points = scores[definition.measure]
        series = MeasureSeries.build(
            measure=definition.measure,
            time=np.array([t for t, _ in points], "datetime64[s]"),
            value=[v for _, v in points],
        )
        course = response_course(
            series=series,
            sessions=sessions,
            definition_id=definition.id,
            loss_confirmations=k if k is not None else 1,
        )
        follow = series.time > first
        last = int(series.time[follow][-1]) if follow.any() else None
        rows.append(
            {
                "patient_id": patient_id,
                "definition_id": definition.id,
                "condition": condition,
                "protocol_id": protocol,
                "cohort_entry": _from_seconds(first),
                "sessions_given": len(given),
                "follow_ups": int(follow.sum()),
                "last_follow_up": None if last is None else _from_seconds(last),
                "last_value": float(series.value[follow][-1]) if last is not None else None,
                "last_contact": _from_seconds(last if last is not None else first),
                "loss_confirmations": k,
                "refreshed_at": now,
                **_course_row(course, k),
            }
        )
    return rows


def summary_loss_confirmations(session: Session) -> int | None:
    """The ``loss_confirmations`` the last whole-clinic rebuild used (None: unset or never)."""
    return session.scalar(
        select(OutcomeSummaryRun.loss_confirmations).order_by(OutcomeSummaryRun.id.desc()).limit(1)
    )


def last_run(session: Session) -> OutcomeSummaryRun | None:
    """The latest whole-clinic rebuild, if any."""
    return session.scalar(select(OutcomeSummaryRun).order_by(OutcomeSummaryRun.id.desc()).limit(1))


def write_patient(
    *, session: Session, patient_id: int, now: datetime, loss_confirmations: int | None
) -> int:
    """Replace one patient's rows; returns how many were written."""
    rows = patient_rows(
        session=session, patient_id=patient_id, now=now, loss_confirmations=loss_confirmations
    )
    session.execute(delete(OutcomeSummary).where(OutcomeSummary.patient_id == patient_id))
    _insert_all(session, rows)
    return len(rows)


# ----------------------------------------------------------------------- whole clinic


def _epoch(column: Any, dialect: str) -> Any:
    """Whole seconds since 1970 (UTC) of a timestamp column, computed by the database."""
    if dialect == "postgresql":
        return sql_cast(func.floor(func.extract("epoch", column)), BigInteger)
    return sql_cast(func.strftime("%s", column), BigInteger)


@dataclass(frozen=True, slots=True)
class RunReport:
    """What a whole-clinic rebuild did."""

    patients: int
    rows: int
    seconds: float
    loss_confirmations: int | None


def _chunk_rows(
    *,
    ids: NDArray[np.int64],
    table_by_definition: Sequence[tuple[Definition, Any]],
    first_session: NDArray[np.int64],
    sessions_given: NDArray[np.int64],
    protocol: Sequence[str],
    diagnosis: dict[int, str],
    k: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    none = NO_DIAGNOSIS[0]
    for definition, table in table_by_definition:
        status = table.status
        first = table.first_response
        loss = table.loss if k is not None else np.full(ids.size, _NONE, dtype=np.int64)
        last = table.last_follow_up
        responded = status == STATUS_NAMES.index("responder")
        end = np.where(loss != _NONE, loss, last)
        durable = responded & (k is not None)
        days = np.where(durable, (end - first) // SECONDS_PER_DAY, 0)
        judged = status >= STATUS_NAMES.index("non_responder")
        for i, pid in enumerate(ids.tolist()):
            condition = diagnosis.get(pid, none)
            contact = int(last[i]) if last[i] != _NONE else int(first_session[i])
            baseline = float(table.baseline[i])
            rows.append(
                {
                    "patient_id": pid,
                    "definition_id": definition.id,
                    "condition": condition,
                    "protocol_id": protocol[i],
                    "cohort_entry": _from_seconds(int(first_session[i])),
                    "sessions_given": int(sessions_given[i]),
                    "status": int(status[i]),
                    "baseline": baseline if np.isfinite(baseline) else None,
                    "follow_ups": int(table.n_follow_up[i]),
                    "last_follow_up": _from_seconds(int(last[i])),
                    "last_value": float(table.last_value[i]) if last[i] != _NONE else None,
                    "met_at_last": bool(table.met_at_last[i]) and bool(judged[i]),
                    "first_response": _from_seconds(int(first[i])),
                    "loss_at": _from_seconds(int(loss[i])),
                    "durability_days": int(days[i]) if durable[i] else None,
                    "durability_event": bool(loss[i] != _NONE) if durable[i] else None,
                    "last_contact": _from_seconds(contact),
                    "loss_confirmations": k,
                    "refreshed_at": now,
                }
            )
    return rows


def _copy_all(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """PostgreSQL: stream the rows with COPY (several times faster than INSERTs)."""
    columns = [c.name for c in OutcomeSummary.__table__.columns if c.name != "id"]
    driver = session.connection().connection.driver_connection
    with driver.cursor() as cursor:  # type: ignore[union-attr]
        with cursor.copy(f"COPY outcome_summaries ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])


def _insert_all(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """Core ``executemany`` (the ORM's bulk path splits rows whose None columns differ)."""
    table = cast(Table, OutcomeSummary.__table__)
    connection = session.connection()
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _INSERT_BATCH:
            connection.execute(insert(table), batch)
            batch = []
    if batch:
        connection.execute(insert(table), batch)


def rebuild(
    *,
    session: Session,
    now: datetime,
    loss_confirmations: int | None,
    progress: Progress | None = None,
    chunk_patients: int = CHUNK_PATIENTS,
) -> RunReport:
    """Recompute every row of the summary inside the caller's transaction.

    Readers keep seeing the previous summary until the transaction commits.
    """
    started = perf_counter()
    dialect = session.get_bind().dialect.name
    as_of = np.datetime64(_naive(now), "s")
    given = given_sessions(session)
    given = [g for g in given if g.started_at <= now]
    s_pid = np.array([g.patient_id for g in given], dtype=np.int64)
    s_time = np.array([_seconds(g.started_at) for g in given], dtype=np.int64)
    s_plan = np.array([g.plan_id for g in given], dtype=np.int64)
    patients = np.unique(s_pid)
    # the first given session of each patient (given is sorted by time, then session id)
    _, first_idx = np.unique(s_pid, return_index=True)
    plan_protocol: dict[int, str] = dict(session.execute(select(Plan.id, Plan.protocol_id)).all())
    protocol_of = [plan_protocol.get(int(p), "unknown") for p in s_plan[first_idx]]
    diagnosis = diagnoses(session)
    session.execute(delete(OutcomeSummary))
    k = loss_confirmations
    written = 0
    total = int(patients.size)
    if progress:
        progress(0, total)
    order = np.argsort(s_pid, kind="stable")
    s_pid, s_time = s_pid[order], s_time[order]
    for lo in range(0, total, max(1, chunk_patients)):
        ids = patients[lo : lo + chunk_patients]
        a = int(np.searchsorted(s_pid, ids[0], side="left"))
        b = int(np.searchsorted(s_pid, ids[-1], side="right"))
        sp = np.searchsorted(ids, s_pid[a:b])
        st = s_time[a:b]
        columns = session.execute(
            select(
                Assessment.patient_id,
                Assessment.instrument_id,
                _epoch(Assessment.completed_at, dialect),
                Assessment.total,
            )
            .where(
                Assessment.patient_id.between(int(ids[0]), int(ids[-1])),
                Assessment.status == "final",
                Assessment.total.is_not(None),
                Assessment.instrument_id.in_(measures()),
                Assessment.completed_at <= now,
            )
            .order_by(Assessment.patient_id, Assessment.completed_at, Assessment.id)
        ).all()
        cols: dict[str, MeasureColumns] = {}
        if columns:
            pid_col, inst_col, time_col, value_col = zip(*columns, strict=True)
            p = np.asarray(pid_col, dtype=np.int64)
            pos = np.searchsorted(ids, p)
            treated = (pos < ids.size) & (ids[np.minimum(pos, ids.size - 1)] == p)
            inst = np.asarray(inst_col, dtype=object)
            t = np.asarray(time_col, dtype=np.int64)
            v = np.asarray(value_col, dtype=np.float64)
            for measure in measures():
                keep = treated & (inst == measure)
                cols[measure] = MeasureColumns.build(
                    patient=pos[keep], time=t[keep].astype("datetime64[s]"), value=v[keep]
                )
        registry = Registry.build(
            n_patients=int(ids.size),
            session_patient=sp,
            session_time=st.astype("datetime64[s]"),
            measures=cols,
        )
        tables = [
            (
                definition,
                evaluate_patients(
                    registry=registry,
                    definition=definition,
                    as_of=as_of,
                    # lost to follow-up is judged at query time from last_contact;
                    # this window only fills a column the summary does not keep
                    lost_after=np.timedelta64(1, "s"),
                    loss_confirmations=k if k is not None else 1,
                ),
            )
            for definition in definitions()
        ]
        first_session = tables[0][1].first_session
        rows = _chunk_rows(
            ids=ids,
            table_by_definition=tables,
            first_session=first_session,
            sessions_given=tables[0][1].n_sessions,
            protocol=protocol_of[lo : lo + chunk_patients],
            diagnosis=diagnosis,
            k=k,
            now=now,
        )
        (_copy_all if dialect == "postgresql" else _insert_all)(session, rows)
        written += len(rows)
        if progress:
            progress(min(total, lo + chunk_patients), total)
    seconds = perf_counter() - started
    session.add(
        OutcomeSummaryRun(
            at=now, loss_confirmations=k, patients=total, rows=written, seconds=seconds
        )
    )
    session.flush()
    return RunReport(patients=total, rows=written, seconds=seconds, loss_confirmations=k)

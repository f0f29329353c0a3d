"""The audit trail as people read it: filtered pages, the actions seen, the CSV export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ketacare.clinic.audit.orm import AuditEvent
from ketacare.clinic.audit.service import Actor, record
from ketacare.core.errors import InvalidInput
from ketacare.infra.clock import as_utc


@dataclass(frozen=True, slots=True)
class TrailFilters:
    """What the audit trail page and its CSV export show: all given filters together.

    ``date_from`` and ``date_to`` are days of the clinic's time zone, both included.
    """

    username: str | None = None
    patient_id: int | None = None
    action: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    def where(self, zone: ZoneInfo) -> list[Any]:
        """The SQL conditions (each answered from an index: ``ix_audit_events_*``)."""
        e = AuditEvent
        found: list[Any] = []
        if self.username:
            found.append(e.username == self.username)
        if self.patient_id is not None:
            found.append(e.patient_id == self.patient_id)
        if self.action:
            found.append(e.action == self.action)
        if self.date_from is not None:
            found.append(e.at >= datetime.combine(self.date_from, time(0), zone).astimezone(UTC))
        if self.date_to is not None:
            after = datetime.combine(self.date_to + timedelta(days=1), time(0), zone)
            found.append(e.at < after.astimezone(UTC))
        return found

    def query(self) -> dict[str, str]:
        """The filters as URL query parameters (for the paging and export links)."""
        values = {
            "user": self.username or "",
            "patient_id": "" if self.patient_id is None else str(self.patient_id),
            "action": self.action or "",
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
        }
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True, slots=True)
class TrailPage:
    """One page of events, newest first, with the cursors of the pages around it."""

    events: list[AuditEvent]
    newer: int | None  # ``after`` of the newer page (None: this is the newest)
    older: int | None  # ``before`` of the older page (None: this is the oldest)


def trail(
    *,
    session: Session,
    filters: TrailFilters,
    zone: ZoneInfo,
    limit: int = 100,
    before: int | None = None,
    after: int | None = None,
) -> TrailPage:
    """A page of the events matching ``filters``, newest first.

    Keyset paging on the id: ``before`` gives the page of events older than that id,
    ``after`` the page of those newer; neither, the newest. A page costs one index range
    read whatever its depth (no OFFSET), so the trail pages as fast at its millionth row.
    """
    base = select(AuditEvent).where(*filters.where(zone))
    if after is not None:
        rows = list(
            session.scalars(
                base.where(AuditEvent.id > after).order_by(AuditEvent.id).limit(limit + 1)
            )
        )
        more_newer = len(rows) > limit
        rows = rows[:limit][::-1]
        has_newer, has_older = more_newer, True
    else:
        query = base.order_by(AuditEvent.id.desc())
        if before is not None:
            query = query.where(AuditEvent.id < before)
        rows = list(session.scalars(query.limit(limit + 1)))
        has_older = len(rows) > limit
        rows = rows[:limit]
        has_newer = before is not None
    if not rows:
        return TrailPage(events=[], newer=None, older=None)
    return TrailPage(
        events=rows,
        newer=rows[0].id if has_newer else None,
        older=rows[-1].id if has_older else None,
    )


def read_page(
    *,
    session: Session,
    actor: Actor,
    filters: TrailFilters,
    zone: ZoneInfo,
    limit: int,
    before: int | None,
    now: datetime,
) -> TrailPage:
    """A page of the trail for an API client, newest first; the read is audited.

    A program reading the trail page by page takes it out of the clinic as the CSV
    export does, so each page is recorded as an export (``format`` json, the rows and
    the filters); the page in the browser is not.
    """
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise InvalidInput(
            f"the date range ends ({filters.date_to}) before it starts ({filters.date_from})"
        )
    page = trail(session=session, filters=filters, zone=zone, limit=limit, before=before)
    extra = {} if before is None else {"before": before}
    _record_export(session, actor, filters, now, "json", len(page.events), **extra)
    return page


def _record_export(
    session: Session,
    actor: Actor,
    filters: TrailFilters,
    now: datetime,
    form: str,
    rows: int,
    **extra: object,
) -> None:
    """The trail taken out of the clinic (CSV, or a page through the API), in the trail."""
    record(
        session=session,
        actor=actor,
        action="export",
        resource_type="audit",
        patient_id=filters.patient_id,
        at=now,
        detail={"format": form, "rows": rows, "filters": filters.query(), **extra},
    )


def actions_seen(*, session: Session) -> list[str]:
    """Every action the trail holds (the filter's choices), from its index alone."""
    return list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


CSV_COLUMNS = (
    "id",
    "at_local",
    "at_utc",
    "username",
    "role",
    "action",
    "resource_type",
    "resource_id",
    "patient_id",
    "remote_addr",
    "detail",
    "hash",
)


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP: CSV injection)."""
    text_value = "" if value is None else str(value)
    return "'" + text_value if text_value[:1] in ("=", "+", "-", "@", "\t", "\r") else text_value


def _batches(session: Session, query: Select[AuditEvent]) -> Iterator[AuditEvent]:
    last: int | None = None
    while True:
        page = query if last is None else query.where(AuditEvent.id < last)
        rows = list(session.scalars(page.order_by(AuditEvent.id.desc()).limit(5000)))
        yield from rows
        if len(rows) < 5000:
            return
        last = rows[-1].id


def export_csv(
    *, session: Session, actor: Actor, filters: TrailFilters, zone: ZoneInfo, now: datetime
) -> str:
    """Every event matching ``filters`` as CSV, newest first; the export is audited."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for e in _batches(session, select(AuditEvent).where(*filters.where(zone))):
        at = as_utc(e.at)
        writer.writerow(
            [
                e.id,
                at.astimezone(zone).isoformat(timespec="seconds"),
                at.isoformat(timespec="seconds"),
                _cell(e.username),
                e.role,
                _cell(e.action),
                _cell(e.resource_type),
                _cell(e.resource_id),
                "" if e.patient_id is None else e.patient_id,
                _cell(e.remote_addr),
                _cell(json.dumps(e.detail, sort_keys=True, default=str)),
                e.hash,
            ]
        )
        count += 1
    _record_export(session, actor, filters, now, "csv", count)
    return out.getvalue()

"""Which person a record is: possible duplicates, and retired records kept read-only.

A new record whose name and birth date, or MRN, match one not retired is a possible
duplicate (:func:`possible_duplicates`, compared normalised); a record retired as
entered in error stays readable but nothing may be written against it, in any domain
(the ``before_flush`` guard below, registered when this module is imported, as the
patient service does).
"""

from __future__ import annotations

import unicodedata
from datetime import date

from sqlalchemy import event, func, inspect, select
from sqlalchemy.orm import Session, UOWTransaction

from ketacare.clinic.patients.orm import Patient
from ketacare.infra.errors import RecordRetired


def normalised_name(text: str) -> str:
    """A name as the duplicate check compares it: no accents, case folded, spaces collapsed.

    >>> normalised_name("  Tomás  HERRERA ")
    'tomas herrera'
    """
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split())


def possible_duplicates(
    *,
    session: Session,
    given_name: str,
    family_name: str,
    birth_date: date,
    mrn: str | None = None,
) -> list[Patient]:
    """Records not retired whose name and birth date, or MRN, match (normalised: case,
    accents and spaces; an MRN by case and surrounding spaces), oldest first."""
    name = (normalised_name(given_name), normalised_name(family_name))
    live = Patient.retired_at.is_(None)
    found = {
        p.id: p
        for p in session.scalars(select(Patient).where(Patient.birth_date == birth_date, live))
        if (normalised_name(p.given_name), normalised_name(p.family_name)) == name
    }
    key = (mrn or "").strip().casefold()
    if key:
        for p in session.scalars(select(Patient).where(func.lower(Patient.mrn) == key, live)):
            found[p.id] = p
    return [found[i] for i in sorted(found)]


def duplicate_message(matches: list[Patient]) -> str:
    named = "; ".join(
        f"patient {p.id} ({p.family_name}, {p.given_name}, born {p.birth_date.isoformat()}, "
        f"MRN {p.mrn})"
        for p in matches[:5]
    )
    return (
        f"possible duplicate: the name and birth date or the MRN match {named}. Open that "
        "record, or confirm to register a different person anyway (API: confirm_duplicate: true)"
    )


#: tables whose rows name a patient but are not part of the clinical record (an account
#: linked to a patient keeps logging in and out)
_NOT_RECORD = frozenset({"users"})


@event.listens_for(Session, "before_flush")
def _retired_records_are_read_only(
    session: Session, _context: UOWTransaction, _instances: object
) -> None:
    """Refuse any row added to or changed in a record retired as entered in error.

    One guard for every domain: a plan, a session, a questionnaire or an entry written
    against a retired patient is refused before it reaches the database. The retiring
    transaction's own changes pass.
    """
    patient_ids: set[int] = set()
    for obj in (*session.new, *session.dirty):
        if isinstance(obj, Patient):
            if obj.retired_at is not None and session.is_modified(obj):
                patient_ids.add(obj.id)
            continue
        if getattr(obj, "__tablename__", None) in _NOT_RECORD:
            continue
        pid = getattr(obj, "patient_id", None)
        if isinstance(pid, int) and (obj in session.new or session.is_modified(obj)):
            patient_ids.add(pid)
    if not patient_ids:
        return
    with session.no_autoflush:
        for pid in sorted(patient_ids):
            patient = session.get(Patient, pid)
            if patient is None or patient.retired_at is None:
                continue
            if inspect(patient).attrs.retired_at.history.has_changes():
                continue  # retired in this very transaction: its own changes
            raise RecordRetired(
                f"patient {pid} was retired as entered in error "
                f"({patient.retired_reason}): the record is read-only, nothing was changed"
            )

"""Controlled-substance stock: what became of the drug a dosing session opened, and
the hook every chair entry passes: no close while any of it is unaccounted for, and no
lot checked at the chair that no draw for the session names.

The dose a session gave is what its own log says
(:func:`ketacare.clinic.sessions.service.state_of`); the account is the core's
(:func:`ketacare.core.stock.account`) over the whole stored ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.sessions import service as sessions
from ketacare.clinic.stock.orm import StockLot
from ketacare.clinic.stock.reading import Ledger, _supply, ledger, library, read_audited
from ketacare.core.sessions import SessionState, delivered_mg
from ketacare.core.stock import Account, Draw, Purpose, Void, account, accounts
from ketacare.core.stock.lot_check import lot_disagreement
from ketacare.infra.errors import Conflict

#: What closes a dosing session (a remainder must be accounted for first).
CLOSING_KINDS = ("discharge", "end_session")


def _delivered(session: Session, dosing_session_id: int, now: datetime) -> tuple[float, Any]:
    state = sessions.state_of(session=session, session_id=dosing_session_id)
    return _given(state, now), state


def _given(state: SessionState, now: datetime) -> float:
    """What the session's log says was given (up to its end, or up to now)."""
    if state.dosing_started_at is None:
        return 0.0
    ended = state.dosing_ended_at or state.finished_at
    return delivered_mg(state, at=ended or now)


def _purpose_account(
    session: Session, book: Ledger, draw_entry: Draw, now: datetime
) -> tuple[Account, int]:
    if draw_entry.dosing_session_id is not None:
        given, _ = _delivered(session, draw_entry.dosing_session_id, now)
        patient = sessions.get_session(
            session=session, session_id=draw_entry.dosing_session_id
        ).patient_id
        return (
            account(
                book.entries,
                book.library,
                delivered_mg=given,
                dosing_session_id=draw_entry.dosing_session_id,
            ),
            patient,
        )
    assert draw_entry.take_home_id is not None
    supply = _supply(session, draw_entry.take_home_id)
    return (
        account(
            book.entries,
            book.library,
            delivered_mg=supply.strength_mg * supply.units,
            take_home_id=draw_entry.take_home_id,
        ),
        supply.patient_id,
    )


def session_account(*, session: Session, dosing_session_id: int, now: datetime) -> Account:
    """What became of the drug opened for a dosing session (not audited: the caller's)."""
    given, _ = _delivered(session, dosing_session_id, now)
    book = ledger(session=session)
    return account(
        book.entries, book.library, delivered_mg=given, dosing_session_id=dosing_session_id
    )


def read_session_account(
    *, session: Session, actor: audit.Actor, dosing_session_id: int, now: datetime
) -> tuple[Account, str | None]:
    """The session's account and why it cannot close yet (None: it may), audited as a read."""
    from ketacare.clinic.sessions.service import get_session

    acc = session_account(session=session, dosing_session_id=dosing_session_id, now=now)
    why = unaccounted_remainder(session=session, dosing_session_id=dosing_session_id, now=now)
    row = get_session(session=session, session_id=dosing_session_id)
    read_audited(
        session=session,
        actor=actor,
        what="stock_session",
        now=now,
        resource_id=dosing_session_id,
        patient_id=row.patient_id,
    )
    return acc, why


def keeps_stock_of(session: Session, molecule: str) -> bool:
    """Whether the clinic keeps stock of ``molecule``: a lot of a product of it (shipped or
    registered by the clinic) is on record."""
    kept = {p.id for p in library(session).values() if p.molecule == molecule}
    return bool(session.scalar(select(StockLot.id).where(StockLot.product.in_(kept)).limit(1)))


def unaccounted_remainder(
    *, session: Session, dosing_session_id: int, now: datetime | None = None
) -> str | None:
    """Why the session cannot be closed yet, or None when every mg is accounted for.

    A session that drew from stock must have given or wasted (witnessed) every mg it
    opened; once the clinic keeps stock of the session's molecule, a session that gave
    a dose without a draw cannot be closed either.
    """
    from ketacare.infra.clock import utc_now

    at = now or utc_now()
    given, state = _delivered(session, dosing_session_id, at)
    book = ledger(session=session)
    acc = account(
        book.entries,
        book.library,
        delivered_mg=given,
        dosing_session_id=dosing_session_id,
    )
    if not acc.draws:
        if given > 0 and keeps_stock_of(session, state.setup.molecule):
            return (
                f"session {dosing_session_id} gave {given:.2f} mg of {state.setup.molecule} but "
                "drew nothing from stock: record the draw (lot and units opened) first"
            )
        return None
    checked = state.checks.get("medication_lot")
    if checked is not None and checked.ok:
        wrong = lot_disagreement(
            session_id=dosing_session_id, checked=checked.detail, drawn=_lots(book, acc)
        )
        if wrong is not None:
            return wrong
    if acc.accounted:
        return None
    pending = (
        f" ({acc.pending_waste_mg:g} mg of waste awaits its witness)"
        if acc.pending_waste_mg
        else ""
    )
    if acc.remainder_mg < 0:
        return (
            f"session {dosing_session_id}: the log says {acc.delivered_mg:.2f} mg was given but "
            f"only {acc.opened_mg:g} mg was opened: record the missing draw or amend the log"
        )
    return (
        f"session {dosing_session_id} has {acc.remainder_mg:.2f} mg unaccounted for (opened "
        f"{acc.opened_mg:g} mg, given {acc.delivered_mg:.2f} mg, wasted {acc.wasted_mg:g} mg "
        f"with a witness){pending}: waste the remainder in front of a witness first"
    )


#: The states of a closed session (:mod:`ketacare.core.sessions`).
CLOSED_STATES = ("discharged", "stopped_early")


@dataclass(frozen=True, slots=True)
class Unbalanced:
    """A closed session whose drug no longer balances, and what its log now says."""

    dosing_session_id: int
    state: str
    account: Account


def closed_unbalanced(*, session: Session, now: datetime) -> list[Unbalanced]:
    """Closed sessions that drew from stock and whose account no longer balances: a
    correction of the log after the close changed what it says was given (more or less
    than was opened and wasted). Not audited: the caller's page read is."""
    book = ledger(session=session)
    voided = {e.target_id for e in book.entries if isinstance(e, Void)}
    drawn = sorted(
        {
            e.dosing_session_id
            for e in book.entries
            if isinstance(e, Draw) and e.dosing_session_id is not None and e.id not in voided
        }
    )
    closed: dict[Purpose, str] = {}
    given: dict[Purpose, float] = {}
    states = sessions.states_of(session=session, session_ids=drawn)
    for sid in drawn:  # in session order
        state = states[sid]
        if state.state in CLOSED_STATES:
            closed[("session", sid)] = state.state
            given[("session", sid)] = _given(state, now)
    found = accounts(book.entries, book.library, delivered=given)
    return [Unbalanced(key[1], closed[key], acc) for key, acc in found.items() if not acc.accounted]


def _lots(book: Ledger, acc: Account) -> list[str]:
    """The lot numbers of the draws that stand in ``acc``."""
    return [book.lots[d.lot_id].lot for d in acc.draws]


def _checked_lot(event: Mapping[str, Any]) -> str | None:
    """The lot a passed ``medication_lot`` check records (directly or as an amendment's
    replacement), else None."""
    replacement = event.get("replacement") if event.get("kind") == "amendment" else event
    if not isinstance(replacement, Mapping):
        return None
    if replacement.get("kind") != "pre_dose_check" or replacement.get("item") != "medication_lot":
        return None
    detail = replacement.get("detail")
    return detail if replacement.get("ok") is True and isinstance(detail, str) else None


def refuse_chair_entry(
    *, session: Session, dosing_session_id: int, event: Mapping[str, Any], now: datetime
) -> None:
    """The hook every chair entry goes through before it is recorded: :class:`Conflict`

    - on a ``discharge`` or ``end_session`` while drug is unaccounted for, or while the lot
      checked at the chair is none of the lots drawn for the session;
    - on a passed ``medication_lot`` check (or its amendment) naming none of the lots
      already drawn for the session (with no draw yet, the close checks it later).
    """
    kind = event.get("kind")
    if kind in CLOSING_KINDS:
        why = unaccounted_remainder(session=session, dosing_session_id=dosing_session_id, now=now)
        if why is not None:
            raise Conflict(f"the session cannot be closed: {why}")
        return
    checked = _checked_lot(event)
    if checked is None:
        return
    book = ledger(session=session)
    acc = account(book.entries, book.library, delivered_mg=0.0, dosing_session_id=dosing_session_id)
    wrong = lot_disagreement(session_id=dosing_session_id, checked=checked, drawn=_lots(book, acc))
    if wrong is not None:
        raise Conflict(wrong)

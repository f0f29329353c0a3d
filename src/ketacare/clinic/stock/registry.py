"""Products the clinic registers from its supplier's label: a compounding pharmacy's
ketamine oral solution or troche, which no source of ketacare's library describes.

Each is the clinic's own data, read from the label (or the certificate of analysis) of
what it actually stocks, with the supplier and that statement, who entered it and when.
The entries are append-only (migration 0024): an amendment or a retirement is a new
entry; the latest says what the product is now. Once a lot of a product is on record,
what one unit holds (molecule, form, unit, strength) is fixed: the ledger's history is
replayed with it; a wrong strength is corrected by retiring the product and registering
the right one (and voiding the receipt made against it). A retired product takes no new
receipt; its lots stay on record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.audit import service as audit
from ketacare.clinic.stock.orm import ClinicProduct, StockLot
from ketacare.core.errors import InvalidInput
from ketacare.core.stock import CLINIC_PREFIX, Product, clinic_product
from ketacare.infra.errors import Conflict, NotFound

#: What one unit holds: fixed once a lot of the product is on record.
_CONTENT = ("molecule", "form", "unit", "mg_per_unit", "strength_mg_per_ml", "volume_ml")


@dataclass(frozen=True, slots=True)
class Registered:
    """A clinic product: its latest entry as the core's product, and every entry."""

    product: Product
    entries: tuple[ClinicProduct, ...]
    names: dict[int, str]

    @property
    def current(self) -> ClinicProduct:
        return self.entries[-1]

    @property
    def first(self) -> ClinicProduct:
        return self.entries[0]

    @property
    def retired(self) -> bool:
        return self.current.retired


#: What a product is entered with (the arguments of :func:`clinic_product` but its id).
_ENTERED = (
    "molecule",
    "label",
    "form",
    "unit",
    "supplier",
    "statement",
    "mg_per_unit",
    "strength_mg_per_ml",
    "volume_ml",
)


def _entered(row: ClinicProduct) -> dict[str, Any]:
    """The fields an entry holds, as entered: read back into the core's product, or
    carried unchanged into the next entry (a retirement)."""
    return {name: getattr(row, name) for name in _ENTERED}


def _product(row: ClinicProduct) -> Product:
    return clinic_product(id=row.product_id, **_entered(row))


def registered(session: Session) -> dict[str, Registered]:
    """Every product the clinic registered (retired ones too), by product id."""
    rows = list(session.scalars(select(ClinicProduct).order_by(ClinicProduct.id)))
    users = {r.entered_by for r in rows}
    names = (
        {u.id: u.username for u in session.scalars(select(User).where(User.id.in_(users)))}
        if users
        else {}
    )
    grouped: dict[str, list[ClinicProduct]] = {}
    for r in rows:
        grouped.setdefault(r.product_id, []).append(r)
    return {
        key: Registered(_product(found[-1]), tuple(found), names) for key, found in grouped.items()
    }


def clinic_library(session: Session) -> dict[str, Product]:
    """The clinic's products as the core's (retired ones too: their lots replay)."""
    return {key: r.product for key, r in registered(session).items()}


def _get(session: Session, registration_id: int) -> Registered:
    found = registered(session).get(f"{CLINIC_PREFIX}{registration_id}")
    if found is None:
        raise NotFound(f"clinic product {CLINIC_PREFIX}{registration_id} is not registered")
    return found


def _entry(
    session: Session,
    actor: audit.Actor,
    now: datetime,
    *,
    action: str,
    registration_id: int | None,
    fields: dict[str, Any],
    reason: str | None = None,
    retired: bool = False,
) -> ClinicProduct:
    if actor.user_id is None:
        raise InvalidInput("a clinic's product is entered by a logged-in person")
    text: dict[str, Any] = {k: v.strip() if isinstance(v, str) else v for k, v in fields.items()}
    key = f"{CLINIC_PREFIX}{registration_id or 0}"
    product = clinic_product(id=key, **text)  # the reason when refused; nothing stored
    row = ClinicProduct(
        registration_id=registration_id,
        molecule=product.molecule,
        label=product.label[:200],
        form=product.form,
        unit=product.unit,
        mg_per_unit=product.mg_per_unit,
        strength_mg_per_ml=product.strength_mg_per_ml,
        volume_ml=product.volume_ml,
        supplier=text["supplier"],
        statement=text["statement"],
        retired=retired,
        reason=reason,
        entered_by=actor.user_id,
        entered_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action=action,
        resource_type="clinic_product",
        resource_id=row.product_id,
        at=now,
        detail={
            "entry": row.id,
            "label": row.label,
            "molecule": row.molecule,
            "form": row.form,
            "unit": row.unit,
            "mg_per_unit": row.mg_per_unit,
            **({"reason": reason} if reason else {}),
        },
    )
    return row


def register(
    *,
    session: Session,
    actor: audit.Actor,
    molecule: str,
    label: str,
    form: str,
    unit: str,
    supplier: str,
    statement: str,
    now: datetime,
    mg_per_unit: float | None = None,
    strength_mg_per_ml: float | None = None,
    volume_ml: float | None = None,
) -> ClinicProduct:
    """Register a product the clinic stocks, read from its supplier's label.

    Refused (nothing stored): an unknown molecule, form or unit, no strength (mg per unit,
    or mg/mL and mL per unit) or one that disagrees, no supplier or source statement.
    """
    return _entry(
        session,
        actor,
        now,
        action="create",
        registration_id=None,
        fields={
            "molecule": molecule,
            "label": label,
            "form": form,
            "unit": unit,
            "supplier": supplier,
            "statement": statement,
            "mg_per_unit": mg_per_unit,
            "strength_mg_per_ml": strength_mg_per_ml,
            "volume_ml": volume_ml,
        },
    )


def _lots_of(session: Session, product_id: str) -> list[str]:
    return list(session.scalars(select(StockLot.lot).where(StockLot.product == product_id)))


def amend(
    *,
    session: Session,
    actor: audit.Actor,
    registration_id: int,
    reason: str,
    molecule: str,
    label: str,
    form: str,
    unit: str,
    supplier: str,
    statement: str,
    now: datetime,
    mg_per_unit: float | None = None,
    strength_mg_per_ml: float | None = None,
    volume_ml: float | None = None,
) -> ClinicProduct:
    """A new entry of the product with the corrected fields and the reason.

    Refused: a retired product; a change of what one unit holds once a lot of it is on
    record (retire it and register the right product instead).
    """
    found = _get(session, registration_id)
    if found.retired:
        raise Conflict(f"{found.product.id} is retired: register the product anew")
    if not reason.strip():
        raise InvalidInput("an amendment needs its reason")
    fields: dict[str, Any] = {
        "molecule": molecule,
        "label": label,
        "form": form,
        "unit": unit,
        "supplier": supplier,
        "statement": statement,
        "mg_per_unit": mg_per_unit,
        "strength_mg_per_ml": strength_mg_per_ml,
        "volume_ml": volume_ml,
    }
    new = clinic_product(id=found.product.id, **fields)
    changed = [k for k in _CONTENT if getattr(new, k) != getattr(found.product, k)]
    lots = _lots_of(session, found.product.id)
    if changed and lots:
        raise Conflict(
            f"{found.product.id} has lots on record ({', '.join(sorted(lots))}): what one unit "
            f"holds ({', '.join(changed)}) is not changed under them; retire it and register "
            "the right product (void a receipt made against the wrong one)"
        )
    return _entry(
        session,
        actor,
        now,
        action="amend",
        registration_id=registration_id,
        fields=fields,
        reason=reason.strip(),
    )


def retire(
    *, session: Session, actor: audit.Actor, registration_id: int, reason: str, now: datetime
) -> ClinicProduct:
    """Retire a product (no longer stocked, or entered wrong): it takes no new receipt;
    its entries and lots stay on record."""
    found = _get(session, registration_id)
    if found.retired:
        raise Conflict(f"{found.product.id} is already retired")
    if not reason.strip():
        raise InvalidInput("a retirement needs its reason")
    return _entry(
        session,
        actor,
        now,
        action="retire",
        registration_id=registration_id,
        fields=_entered(found.current),
        reason=reason.strip(),
        retired=True,
    )


def refuse_retired(session: Session, product_id: str) -> None:
    """:class:`Conflict` when ``product_id`` is a retired clinic product (no new receipt)."""
    if not product_id.startswith(CLINIC_PREFIX):
        return
    found = registered(session).get(product_id)
    if found is not None and found.retired:
        raise Conflict(
            f"{product_id} ({found.product.label}) is retired: it takes no new receipt "
            f"({found.current.reason})"
        )

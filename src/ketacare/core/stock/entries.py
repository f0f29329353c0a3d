"""The entries of the controlled-substance ledger (:mod:`~ketacare.core.stock.ledger`),
each checked on its own when made: a receipt, a draw, a waste, a count, a disposal, a
resolution, a witness and a void. The rules between entries (balances, signatures,
what a witness or a void may name) are the ledger's replay.

>>> from datetime import UTC, datetime
>>> Witness(id=4, at=datetime(2026, 3, 2, 11, tzinfo=UTC), by="ben", target_id=3).kind
'witness'
>>> Count(id=6, at=datetime(2026, 3, 2, 18, tzinfo=UTC), by=" ", lot_id=1, units_counted=6)
Traceback (most recent call last):
...
ketacare.core.errors.InvalidInput: who recorded the count is required
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar, Literal

from ketacare.core.errors import InvalidInput

__all__ = [
    "DISPOSAL_KINDS",
    "OUTCOMES",
    "Count",
    "Disposal",
    "DisposalKind",
    "Draw",
    "Entry",
    "Outcome",
    "Receipt",
    "Resolution",
    "TransferIn",
    "TransferOut",
    "Void",
    "Waste",
    "Witness",
]

DisposalKind = Literal["returned", "destroyed"]
#: returned to the supplier or a reverse distributor; destroyed (21 CFR 1317).
DISPOSAL_KINDS: tuple[DisposalKind, ...] = ("returned", "destroyed")
Outcome = Literal["count_error", "adjusted", "loss", "theft"]
#: How a physician resolves a discrepancy; loss and theft are reported (DEA Form 106).
OUTCOMES: tuple[Outcome, ...] = ("count_error", "adjusted", "loss", "theft")
_REPORTED: tuple[Outcome, ...] = ("loss", "theft")


def _text(value: str, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} is required")


def _positive(value: float, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidInput(f"{what} must be a number above 0, got {value!r}")


def _units(value: int, what: str, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(f"{what} must be a whole number >= {minimum}, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One line of the ledger: its number, when it happened and who recorded it."""

    kind: ClassVar[str] = "entry"
    #: whether a second person must witness the entry before it counts
    witnessed: ClassVar[bool] = False
    id: int
    at: datetime
    by: str

    def __post_init__(self) -> None:
        _units(self.id, "entry id")
        if not isinstance(self.at, datetime) or self.at.tzinfo is None:
            raise InvalidInput(f"{self.kind} time must be a timezone-aware datetime")
        _text(self.by, f"who recorded the {self.kind}")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Arrival(Entry):
    """Whole units of one lot (product, lot number, expiry) coming to a site."""

    #: how the units came, in the message about them ("units received")
    came: ClassVar[str] = "received"
    lot_id: int
    site: str
    product: str
    lot: str
    expiry: date
    units: int

    def __post_init__(self) -> None:
        Entry.__post_init__(self)
        for value, what in (
            (self.site, "site"),
            (self.product, "product"),
            (self.lot, "lot number"),
        ):
            _text(value, what)
        _units(self.units, f"units {self.came}")
        if not isinstance(self.expiry, date):
            raise InvalidInput("expiry must be a date")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Taking(Entry):
    """Whole units taken out of one lot (opened, disposed of, transferred)."""

    #: what happens to the units, in the message about them ("units opened")
    went: ClassVar[str] = "taken"
    lot_id: int
    units: int

    def __post_init__(self) -> None:
        Entry.__post_init__(self)
        _units(self.units, f"units {self.went}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt(_Arrival):
    """Whole units of one lot received from a supplier (21 CFR 1304.22(c))."""

    kind: ClassVar[str] = "receipt"
    supplier: str
    reference: str

    def __post_init__(self) -> None:
        _Arrival.__post_init__(self)
        _text(self.supplier, "supplier")
        _text(self.reference, "invoice or order reference")


@dataclass(frozen=True, slots=True, kw_only=True)
class Draw(_Taking):
    """Units of a lot opened for one dosing session or one take-home supply."""

    kind: ClassVar[str] = "draw"
    went: ClassVar[str] = "opened"
    prepared_mg: float
    prepared_ml: float | None = None
    dosing_session_id: int | None = None
    take_home_id: int | None = None

    def __post_init__(self) -> None:
        _Taking.__post_init__(self)
        _positive(self.prepared_mg, "prepared mg")
        if self.prepared_ml is not None:
            _positive(self.prepared_ml, "prepared mL")
        if (self.dosing_session_id is None) == (self.take_home_id is None):
            raise InvalidInput("a draw is for exactly one dosing session or one take-home supply")

    @property
    def purpose(self) -> tuple[str, int]:
        """What the draw was for: ("session", id) or ("take_home", id)."""
        if self.dosing_session_id is not None:
            return ("session", self.dosing_session_id)
        assert self.take_home_id is not None
        return ("take_home", self.take_home_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Waste(Entry):
    """Drug of a draw not given, wasted by ``method`` (counts once witnessed)."""

    kind: ClassVar[str] = "waste"
    witnessed: ClassVar[bool] = True
    draw_id: int
    mg: float
    ml: float | None
    method: str

    def __post_init__(self) -> None:
        Entry.__post_init__(self)
        _positive(self.mg, "wasted mg")
        if self.ml is not None:
            _positive(self.ml, "wasted mL")
        _text(self.method, "the method of waste")


@dataclass(frozen=True, slots=True, kw_only=True)
class Count(Entry):
    """A physical count of one lot's unopened units (counts once witnessed)."""

    kind: ClassVar[str] = "count"
    witnessed: ClassVar[bool] = True
    lot_id: int
    units_counted: int

    def __post_init__(self) -> None:
        Entry.__post_init__(self)
        _units(self.units_counted, "units counted", minimum=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Disposal(_Taking):
    """Units returned or destroyed (expired, damaged, recalled; counts once witnessed)."""

    kind: ClassVar[str] = "disposal"
    witnessed: ClassVar[bool] = True
    went: ClassVar[str] = "disposed of"
    disposal: DisposalKind
    reason: str
    reference: str

    def __post_init__(self) -> None:
        _Taking.__post_init__(self)
        if self.disposal not in DISPOSAL_KINDS:
            raise InvalidInput(
                f"disposal {self.disposal!r} is not known: allowed {', '.join(DISPOSAL_KINDS)}"
            )
        _text(self.reason, "the reason for the disposal")
        _text(self.reference, "the disposal reference (return authorisation, DEA Form 41 ...)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolution(Entry):
    """A physician's resolution of the discrepancy a count opened."""

    kind: ClassVar[str] = "resolution"
    count_id: int
    outcome: Outcome
    reason: str
    report_reference: str | None = None

    def __post_init__(self) -> None:
        Entry.__post_init__(self)
        if self.outcome not in OUTCOMES:
            raise InvalidInput(
                f"outcome {self.outcome!r} is not known: allowed {', '.join(OUTCOMES)}"
            )
        _text(self.reason, "the reason for the resolution")
        if self.outcome in _REPORTED and not (self.report_reference or "").strip():
            raise InvalidInput(
                f"a {self.outcome} is reported to the DEA: give the DEA Form 106 reference "
                "(21 CFR 1301.76(b))"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferOut(_Taking):
    """Units of a lot sent to another site of the clinic (counts once witnessed); its
    :class:`TransferIn` at the other site is recorded with it."""

    kind: ClassVar[str] = "transfer_out"
    witnessed: ClassVar[bool] = True
    went: ClassVar[str] = "transferred"
    reference: str

    def __post_init__(self) -> None:
        _Taking.__post_init__(self)
        _text(self.reference, "the transfer reference (the transfer sheet or order)")


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferIn(_Arrival):
    """The units of :class:`TransferOut` ``transfer_id`` received at ``site``, into the
    same lot (product, lot number, expiry) there; it counts when the transfer out does."""

    kind: ClassVar[str] = "transfer_in"
    came: ClassVar[str] = "transferred"
    transfer_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Witness(Entry):
    """The second person's signature on entry ``target_id``."""

    kind: ClassVar[str] = "witness"
    target_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Void(Entry):
    """Entry ``target_id`` retired as entered in error, with the reason."""

    kind: ClassVar[str] = "void"
    target_id: int
    reason: str

    def __post_init__(self) -> None:
        Entry.__post_init__(self)
        _text(self.reason, "the reason the entry was entered in error")

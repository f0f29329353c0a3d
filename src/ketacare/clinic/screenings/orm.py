"""Tables of the screenings domain."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from ketacare.core.terminology.treatments import route_words
from ketacare.infra.db import Base, UTCDateTime


def treatment_words(molecule: str, route: str) -> str:
    """'ketamine by IV infusion': a screened treatment in clinical words."""
    return f"{molecule} by {route_words(route)}"


class Screening(Base):
    """An eligibility decision for one molecule and route, with its input and sign-off.

    One signed screening is in force for each (patient, molecule, route): signing a
    newer one for the same treatment supersedes the older (kept, with when and by
    which), and never touches the screening of another treatment. A partial unique
    index holds this even when two physicians sign at the same moment.
    """

    __tablename__ = "screenings"
    __table_args__ = (
        Index(
            "uq_screenings_in_force",
            "patient_id",
            "molecule",
            "route",
            unique=True,
            sqlite_where=text("status = 'signed'"),
            postgresql_where=text("status = 'signed'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    input: Mapped[dict[str, object]] = mapped_column(JSON)
    result: Mapped[dict[str, object]] = mapped_column(JSON)
    decision: Mapped[str] = mapped_column(String(30))
    ruleset_version: Mapped[str] = mapped_column(String(60))
    molecule: Mapped[str] = mapped_column(String(20))
    route: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    status: Mapped[str] = mapped_column(String(20), default="draft")  # draft|signed|superseded
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    sign_note: Mapped[str | None] = mapped_column(Text, default=None)
    valid_until: Mapped[date | None] = mapped_column(Date, default=None)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("screenings.id"), default=None)

    @property
    def treatment(self) -> str:
        """The molecule and route this screening covers, in clinical words."""
        return treatment_words(self.molecule, self.route)

    @property
    def route_words(self) -> str:
        """The route this screening covers, in clinical words."""
        return route_words(self.route)

"""Whether a patient's consent to a program is in force, and why not.

The consent in force for a program is the newest one signed by the patient and
countersigned (by a witness or the clinician). It holds unless it was withdrawn, or a
later version of the program's template was published marked "re-consent required".
A consent that awaits its countersignature holds nothing yet. Pure: the shell passes
the records and the clock.

Examples
--------
>>> from datetime import UTC, datetime
>>> t0 = datetime(2026, 1, 5, tzinfo=UTC)
>>> c = Signed(id=1, program="iv_racemic", version=1, signed_at=t0, countersigned_at=t0)
>>> standing(program="iv_racemic", consents=[c], published=[]).ok
True
>>> v2 = Published(program="iv_racemic", version=2, published_at=t0, reconsent_required=True)
>>> s = standing(program="iv_racemic", consents=[c], published=[v2])
>>> s.reconsent_due, s.problem.startswith("the consent signed 2026-01-05 (version 1) predates")
(True, True)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Published", "Signed", "Standing", "standing"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Signed:
    """One consent the patient signed (countersigned or not, withdrawn or not)."""

    id: int
    program: str
    version: int
    signed_at: datetime
    countersigned_at: datetime | None
    withdrawn_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Published:
    """One published version of a program's template."""

    program: str
    version: int
    published_at: datetime
    reconsent_required: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Standing:
    """The consent in force (or None) and, when none holds, what is wrong."""

    program: str
    consent: Signed | None
    problem: str | None
    reconsent_due: bool = False
    withdrawn: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None


def standing(
    *, program: str, consents: Iterable[Signed], published: Iterable[Published]
) -> Standing:
    """The standing of the patient's consent to ``program``."""
    mine = sorted((c for c in consents if c.program == program), key=lambda c: (c.signed_at, c.id))
    done = [c for c in mine if c.countersigned_at is not None]
    if not done:
        pending = " (one awaits its countersignature)" if mine else ""
        return Standing(
            program=program,
            consent=None,
            problem=f"no signed consent for program {program}{pending}: the patient must sign "
            "the current version and a witness or the clinician countersign it",
        )
    newest = done[-1]
    day = newest.signed_at.date().isoformat()
    if newest.withdrawn_at is not None:
        return Standing(
            program=program,
            consent=newest,
            withdrawn=True,
            problem=f"the patient withdrew consent to program {program} on "
            f"{newest.withdrawn_at.date().isoformat()}: no further dose without a new consent",
        )
    later = sorted(
        p.version
        for p in published
        if p.program == program and p.reconsent_required and p.version > newest.version
    )
    if later:
        return Standing(
            program=program,
            consent=newest,
            reconsent_due=True,
            problem=f"the consent signed {day} (version {newest.version}) predates version "
            f"{later[-1]} of the template, which requires re-consent: the patient must sign "
            f"version {later[-1]}",
        )
    return Standing(program=program, consent=newest, problem=None)

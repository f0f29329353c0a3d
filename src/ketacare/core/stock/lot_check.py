"""Whether the lot a nurse checked at the chair is a lot drawn from stock for the session.

The pre-dose check ``medication_lot`` is free text as it is read off the vial or the
bag's label ("lot K-2026A", "K-2026A, scanned 0123…"). Where the clinic keeps stock,
the ledger also says which lots were opened for the session. The two must agree: a lot
on the vial that no draw names is the wrong vial at the chair or a draw booked against
the wrong lot, and either way the controlled-substance record no longer says what the
patient was given.

A lot number is found in the text as a whole token, in any case: ``K1`` is not found in
"lot K10", and ``k-2026a`` is found in "Lot K-2026A".
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def named_lot(detail: str, lots: Iterable[str]) -> str | None:
    """The first of ``lots`` that ``detail`` names as a whole token, or None.

    >>> named_lot("lot K-2026A, scanned 0123", ["K-2026B", "K-2026A"])
    'K-2026A'
    >>> named_lot("Lot k-2026a", ["K-2026A"])
    'K-2026A'
    >>> named_lot("lot K10", ["K1"]) is None
    True
    >>> named_lot("K1", ["K1"])
    'K1'
    >>> named_lot("lot  ", ["K1"]) is None
    True
    """
    text = detail.casefold()
    for lot in lots:
        number = lot.strip().casefold()
        if not number:
            continue
        pattern = rf"(?<![0-9a-z]){re.escape(number)}(?![0-9a-z])"
        if re.search(pattern, text):
            return lot
    return None


def lot_disagreement(*, session_id: int, checked: str, drawn: Iterable[str]) -> str | None:
    """Why the checked lot and the drawn lots disagree, or None when the check names one.

    ``drawn``: the lot numbers of the session's draws that stand (not voided); with none,
    there is nothing to compare with, and None.

    >>> why = lot_disagreement(session_id=7, checked="lot K-9", drawn=["K-2026A"])
    >>> import textwrap
    >>> print(textwrap.fill(why, 88))
    the lot checked at the chair ('lot K-9') is none of the lots drawn from stock for
    session 7 (K-2026A): check the vial; then amend the pre-dose check, or void the draw and
    record the draw from the lot given
    >>> lot_disagreement(session_id=7, checked="lot K-2026A", drawn=["K-2026A"]) is None
    True
    >>> lot_disagreement(session_id=7, checked="lot K-9", drawn=[]) is None
    True
    """
    lots = sorted(set(drawn))
    if not lots or named_lot(checked, lots) is not None:
        return None
    return (
        f"the lot checked at the chair ({checked.strip()!r}) is none of the lots drawn from "
        f"stock for session {session_id} ({', '.join(lots)}): check the vial; then amend the "
        "pre-dose check, or void the draw and record the draw from the lot given"
    )

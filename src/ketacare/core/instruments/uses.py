"""What the clinic does with each instrument, read from the instruments' own data files.

Each data file's ``[use]`` table says whether patients fill the instrument in, which
screenings read its latest result and which of its values are outcome measures (with their
display labels). The shell asks here instead of keeping its own lists, so adding an
instrument is one data file.

Examples
--------
>>> self_report_ids()
('auditc', 'bpi_sf', 'dast10', 'gad7', 'nrs_pain', 'pcs', 'pgic', 'phq9')
>>> screening_instrument_ids("eligibility")
('auditc', 'cssrs_screener', 'dast10', 'gad7', 'ort', 'phq9')
>>> [(m.id, m.short) for m in outcome_measures()][:2]
[('nrs_pain', 'pain (NRS)'), ('bpi_interference', 'pain interference (BPI)')]
"""

from __future__ import annotations

from functools import lru_cache

from ketacare.core.errors import DataFileError, UnknownItem
from ketacare.core.instruments.loader import load_library
from ketacare.core.instruments.model import SCREENINGS, OutcomeMeasure

__all__ = ["outcome_measures", "screening_instrument_ids", "self_report_ids"]


def self_report_ids() -> tuple[str, ...]:
    """Ids of the instruments a patient fills in about themselves, sorted."""
    return tuple(i.id for i in load_library() if i.use.self_report)


def screening_instrument_ids(screening: str) -> tuple[str, ...]:
    """Ids of the instruments whose latest result a screening reads, sorted.

    >>> screening_instrument_ids("intake")
    Traceback (most recent call last):
    ...
    ketacare.core.errors.UnknownItem: unknown screening 'intake': known are eligibility
    """
    if screening not in SCREENINGS:
        raise UnknownItem("screening", screening, list(SCREENINGS))
    return tuple(i.id for i in load_library() if screening in i.use.screenings)


@lru_cache(maxsize=1)
def outcome_measures() -> tuple[OutcomeMeasure, ...]:
    """Every instrument's outcome measures, in panel order (ids and places unique)."""
    measures = sorted((m for i in load_library() for m in i.use.measures), key=lambda m: m.order)
    for before, after in zip(measures, measures[1:], strict=False):
        if before.order == after.order:
            raise DataFileError(
                f"{before.instrument}.toml and {after.instrument}.toml: measures "
                f"{before.id} and {after.id} both have order {before.order}"
            )
    ids = [m.id for m in measures]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise DataFileError(f"instrument data files: outcome measure id(s) given twice: {twice}")
    return tuple(measures)

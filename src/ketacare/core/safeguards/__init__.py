"""Safeguards against misuse: the cumulative dose and the clinic's caps on it.

See :mod:`ketacare.core.safeguards.cumulative`.
"""

from ketacare.core.safeguards.cumulative import (
    MEASURES,
    REPORT_WINDOWS_DAYS,
    CapCheck,
    CourseTotal,
    Cumulative,
    CumulativeCap,
    DoseGiven,
    Measure,
    PlannedDose,
    Total,
    check_caps,
    cumulative,
    molecule_label,
    parse_caps,
    total,
)

__all__ = [
    "MEASURES",
    "REPORT_WINDOWS_DAYS",
    "CapCheck",
    "CourseTotal",
    "DoseGiven",
    "Cumulative",
    "CumulativeCap",
    "Measure",
    "PlannedDose",
    "Total",
    "check_caps",
    "cumulative",
    "molecule_label",
    "parse_caps",
    "total",
]

"""Safeguards against misuse: the cumulative dose and the clinic's caps on it
(:mod:`~ketacare.core.safeguards.cumulative`), and the checks a take-home supply must
pass (:mod:`~ketacare.core.safeguards.dispensing`).
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
from ketacare.core.safeguards.dispensing import (
    Dispense,
    Finding,
    TakeHomePolicy,
    check_dispense,
    parse_take_home,
)

__all__ = [
    "MEASURES",
    "REPORT_WINDOWS_DAYS",
    "CapCheck",
    "CourseTotal",
    "Dispense",
    "Finding",
    "TakeHomePolicy",
    "check_dispense",
    "parse_take_home",
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

"""The clinic's days: opening days and hours, closures, and where a plan's sessions land.

:mod:`.hours` reads the clinic's opening days, hours and closures (a site policy: clinic
choices, not clinical numbers); :mod:`.placement` puts a plan's sessions on the days
the clinic is open, keeping the schedule's spacing.
"""

from ketacare.core.scheduling.hours import (
    DAY_NAMES,
    ClinicHours,
    Closure,
    OpeningHours,
    load_clinic_hours,
    parse_clinic_hours,
)
from ketacare.core.scheduling.placement import Placement, PlannedDay, place_sessions

__all__ = [
    "DAY_NAMES",
    "ClinicHours",
    "Closure",
    "OpeningHours",
    "Placement",
    "PlannedDay",
    "load_clinic_hours",
    "parse_clinic_hours",
    "place_sessions",
]

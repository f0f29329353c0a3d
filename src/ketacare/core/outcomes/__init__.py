"""Outcome analytics: response, remission, durability, futility and boosters.

Pure functions over plain values. Definitions are data with their sources
(``data/*.toml``, see :mod:`ketacare.core.outcomes.definitions`); thresholds no
source supports are clinic-set parameters without defaults
(``loss_confirmations``, ``lost_after``, :class:`BoosterRule`).

- per patient (:mod:`~ketacare.core.outcomes.patient`): baseline, change from
  baseline, response episodes, responder since, durability; and
  (:mod:`~ketacare.core.outcomes.findings`) futility, booster, status line;
- outcome schedules (:mod:`~ketacare.core.outcomes.schedule`,
  :mod:`~ketacare.core.outcomes.schedule_status`): what is asked when, and what is due;
- per clinic (:mod:`~ketacare.core.outcomes.cohort`): rates with denominators,
  lost to follow-up, completeness, groups, date range, over numpy columns;
- survival (:mod:`~ketacare.core.outcomes.survival`): Kaplan-Meier with
  Greenwood bands and the median.

Examples
--------
>>> [d.id for d in load_definitions().definitions]
['pain-30', 'pain-50', 'phq9-response', 'phq9-remission']
"""

from ketacare.core.outcomes.cohort import (
    STATUS_NAMES,
    ClinicOutcomes,
    MeasureColumns,
    PatientTable,
    Rate,
    RateRow,
    Registry,
    clinic_outcomes,
    evaluate_patients,
)
from ketacare.core.outcomes.definitions import (
    BoosterRule,
    Definition,
    DefinitionLibrary,
    FutilityRule,
    load_definitions,
    parse_definitions,
)
from ketacare.core.outcomes.findings import (
    BoosterFinding,
    FutilityFinding,
    PatientStatus,
    booster,
    futility,
    patient_status,
)
from ketacare.core.outcomes.patient import (
    BASELINE_RULE,
    Baseline,
    Episode,
    MeasureSeries,
    ResponseCourse,
    Sessions,
    Trajectory,
    response_course,
    select_baseline,
    trajectory,
)
from ketacare.core.outcomes.schedule import Schedule, parse_schedule
from ketacare.core.outcomes.schedule_status import (
    Measurement,
    PlanEnd,
    ScheduleStatus,
    SessionTime,
    evaluate_schedule,
)
from ketacare.core.outcomes.survival import KaplanMeier, kaplan_meier
from ketacare.core.outcomes.timeaxis import format_day, to_seconds
from ketacare.core.sources import Source

__all__ = [
    "BASELINE_RULE",
    "STATUS_NAMES",
    "Baseline",
    "BoosterFinding",
    "BoosterRule",
    "ClinicOutcomes",
    "Definition",
    "DefinitionLibrary",
    "Episode",
    "FutilityFinding",
    "FutilityRule",
    "KaplanMeier",
    "Measurement",
    "MeasureColumns",
    "MeasureSeries",
    "PatientStatus",
    "PatientTable",
    "PlanEnd",
    "Rate",
    "RateRow",
    "Registry",
    "ResponseCourse",
    "Schedule",
    "ScheduleStatus",
    "SessionTime",
    "Sessions",
    "Source",
    "Trajectory",
    "booster",
    "clinic_outcomes",
    "evaluate_schedule",
    "evaluate_patients",
    "format_day",
    "futility",
    "kaplan_meier",
    "load_definitions",
    "parse_schedule",
    "parse_definitions",
    "patient_status",
    "response_course",
    "select_baseline",
    "to_seconds",
    "trajectory",
]

"""Imports every domain's tables so the metadata is complete (migrations, tests)."""

from ketacare.clinic.accounts import orm as accounts_orm
from ketacare.clinic.analytics import orm as analytics_orm
from ketacare.clinic.assessments import orm as assessments_orm
from ketacare.clinic.audit import orm as audit_orm
from ketacare.clinic.consent import orm as consent_orm
from ketacare.clinic.followup import orm as followup_orm
from ketacare.clinic.outcomes import orm as outcomes_orm
from ketacare.clinic.patients import orm as patients_orm
from ketacare.clinic.personalise import orm as personalise_orm
from ketacare.clinic.plans import orm as plans_orm
from ketacare.clinic.rems import orm as rems_orm
from ketacare.clinic.research import orm as research_orm
from ketacare.clinic.safeguards import orm as safeguards_orm
from ketacare.clinic.screenings import orm as screenings_orm
from ketacare.clinic.sessions import orm as sessions_orm
from ketacare.clinic.stock import orm as stock_orm
from ketacare.clinic.system import orm as system_orm
from ketacare.infra.db import Base

__all__ = [
    "Base",
    "accounts_orm",
    "analytics_orm",
    "assessments_orm",
    "audit_orm",
    "consent_orm",
    "followup_orm",
    "outcomes_orm",
    "patients_orm",
    "personalise_orm",
    "plans_orm",
    "rems_orm",
    "research_orm",
    "safeguards_orm",
    "screenings_orm",
    "sessions_orm",
    "stock_orm",
    "system_orm",
]

"""The one permission table: which role may do what, and over whose records.

Every route declares one permission from :data:`PERMISSIONS`; a test walks every
route of the app and checks that each role gets exactly what this table says.
``Scope.OWN`` means a patient account reaches only its own record.

Examples
--------
>>> allowed("patient:read", Role.NURSE)
True
>>> allowed("audit:read", Role.NURSE)
False
>>> scope_of("patient:read", Role.PATIENT) is Scope.OWN
True
"""

from __future__ import annotations

from enum import StrEnum

from ketacare.infra.errors import Forbidden


class Role(StrEnum):
    """The roles of a ketamine program's team, and the patient."""

    ADMIN = "admin"
    PHYSICIAN = "physician"
    NURSE = "nurse"
    THERAPIST = "therapist"
    RESEARCHER = "researcher"
    PATIENT = "patient"


class Scope(StrEnum):
    """Over which records a permission applies."""

    ALL = "all"
    OWN = "own"


ALL, OWN = Scope.ALL, Scope.OWN
_CLINICAL_STAFF = {Role.PHYSICIAN: ALL, Role.NURSE: ALL, Role.THERAPIST: ALL}
_STAFF = {**_CLINICAL_STAFF, Role.ADMIN: ALL, Role.RESEARCHER: ALL}

#: permission -> {role: scope}. A role that is absent is refused (403).
PERMISSIONS: dict[str, dict[Role, Scope]] = {
    # the patient record: demographics, weights, conditions, medications, allergies
    "patient:read": {**_CLINICAL_STAFF, Role.PATIENT: OWN},
    "patient:create": {Role.PHYSICIAN: ALL, Role.NURSE: ALL},
    "patient:write": {Role.PHYSICIAN: ALL, Role.NURSE: ALL},
    # retiring a record entered in error (a duplicate, the wrong person): the clinicians who
    # register and keep records; the record is kept, hidden from lists, closed to writes
    "patient:retire": {Role.PHYSICIAN: ALL, Role.NURSE: ALL},
    # instruments filled by staff or by the patient (own record), and the alerts they raise
    "assessment:read": {**_CLINICAL_STAFF, Role.PATIENT: OWN},
    "assessment:write": {**_CLINICAL_STAFF, Role.PATIENT: OWN},
    "alert:read": {**_CLINICAL_STAFF},
    "alert:acknowledge": {Role.PHYSICIAN: ALL, Role.NURSE: ALL},
    # eligibility screening: run by nurses or physicians, signed by a physician
    "screening:read": {**_CLINICAL_STAFF},
    "screening:run": {Role.PHYSICIAN: ALL, Role.NURSE: ALL},
    "screening:sign": {Role.PHYSICIAN: ALL},
    # treatment plans: physicians prescribe, sign and co-sign; the team and the patient read
    "plan:read": {**_CLINICAL_STAFF, Role.PATIENT: OWN},
    "plan:write": {Role.PHYSICIAN: ALL},
    "plan:sign": {Role.PHYSICIAN: ALL},
    "therapy:document": {Role.THERAPIST: ALL},
    # treatment consent: the patient signs (on their own phone, or the clinic's tablet held
    # by the team), a witness or the clinician countersigns, physicians publish the
    # clinic's template versions; the patient reads and may withdraw their own
    "consent:read": {**_CLINICAL_STAFF, Role.PATIENT: OWN},
    "consent:sign": {**_CLINICAL_STAFF, Role.PATIENT: OWN},
    "consent:countersign": {**_CLINICAL_STAFF},
    "consent:withdraw": {**_CLINICAL_STAFF, Role.PATIENT: OWN},
    "consent:publish": {Role.PHYSICIAN: ALL},
    "consent:review": {**_CLINICAL_STAFF},
    # the SPRAVATO REMS: the setting's certification (a physician, as the authorized
    # representative records it) and the patients' enrolments
    "rems:read": {**_CLINICAL_STAFF},
    "rems:write": {Role.PHYSICIAN: ALL, Role.NURSE: ALL},
    "rems:certify": {Role.PHYSICIAN: ALL},
    # psychotherapy notes stay with the care team (not shown on the patient's own view)
    "therapy:read": {**_CLINICAL_STAFF},
    "schedule:read": {**_CLINICAL_STAFF},
    "schedule:write": {Role.PHYSICIAN: ALL, Role.NURSE: ALL},
    # dosing sessions at the chair: nurses and physicians chart, the team reads
    "session:read": {**_CLINICAL_STAFF},
    "session:write": {Role.PHYSICIAN: ALL, Role.NURSE: ALL},
    # take-home supplies of a controlled substance: the prescriber dispenses and voids
    "takehome:dispense": {Role.PHYSICIAN: ALL},
    # controlled-substance stock (21 CFR 1304): nurses and physicians receive, draw, waste,
    # count and witness (a second person, with their own login); physicians resolve a
    # count's discrepancy; admins and physicians see the reports (no patient names)
    "stock:read": {Role.PHYSICIAN: ALL, Role.NURSE: ALL, Role.ADMIN: ALL},
    "stock:write": {Role.PHYSICIAN: ALL, Role.NURSE: ALL},
    "stock:resolve": {Role.PHYSICIAN: ALL},
    "stock:report": {Role.PHYSICIAN: ALL, Role.ADMIN: ALL},
    # a product the clinic stocks that ketacare's library does not hold (a compounded oral
    # solution or troche), registered from the supplier's label: physicians and admins
    "stock:register": {Role.PHYSICIAN: ALL, Role.ADMIN: ALL},
    # measurement between visits: self-report links and reminders
    "followup:write": {Role.PHYSICIAN: ALL, Role.NURSE: ALL},
    # outcome schedules of plans: the team reads what is due; a patient reads and fills own
    "followup:read": {**_CLINICAL_STAFF},
    "outcome_schedule:read": {**_CLINICAL_STAFF, Role.PATIENT: OWN},
    "outcome_schedule:write": {Role.PHYSICIAN: ALL, Role.NURSE: ALL},
    "selfreport:fill": {Role.PATIENT: OWN},
    # the outcome panel (scores over sessions, status line): the care team; a patient, own
    "outcome:read": {**_CLINICAL_STAFF, Role.PATIENT: OWN},
    # the clinic dashboard: aggregates across patients (no patient named), for physicians
    # judging the program and researchers
    "analytics:read": {Role.PHYSICIAN: ALL, Role.RESEARCHER: ALL},
    # ... every treated patient, with every count; the others (researchers) read only the
    # patients who consented to research, with no count from 1 to 10 (core/research/
    # disclosure.py: the CMS cell size suppression policy)
    "analytics:whole_clinic": {Role.PHYSICIAN: ALL},
    # the research registry: exports without identifiers of consenting patients only
    "research:export": {Role.RESEARCHER: ALL},
    # a patient withdraws their own registry consent without asking anyone (staff record
    # decisions from the chart under patient:write)
    "research_consent:withdraw": {Role.PATIENT: OWN},
    # accounts and the audit trail are administration, not clinical care
    "user:read": {Role.ADMIN: ALL},
    "user:write": {Role.ADMIN: ALL},
    "audit:read": {Role.ADMIN: ALL},
    # separation of duties: a clinical role asked for by one administrator is approved by
    # a second administrator or a physician (accounts/approvals.py)
    "role:approve": {Role.ADMIN: ALL, Role.PHYSICIAN: ALL},
    # reference libraries and simulation hold no patient data
    "library:read": {**_STAFF},
    "simulate:run": {Role.PHYSICIAN: ALL, Role.NURSE: ALL, Role.RESEARCHER: ALL},
    # one's own account
    "self:read": {**_STAFF, Role.PATIENT: OWN},
}


def allowed(permission: str, role: Role | str) -> bool:
    """Whether ``role`` holds ``permission`` (over some scope)."""
    return Role(role) in PERMISSIONS[permission]


def scope_of(permission: str, role: Role | str) -> Scope | None:
    """The scope ``role`` holds for ``permission``, or None if refused."""
    return PERMISSIONS[permission].get(Role(role))


def check(permission: str, role: Role | str) -> Scope:
    """The scope held, or :class:`Forbidden` naming the role and the permission."""
    if permission not in PERMISSIONS:
        raise KeyError(f"permission {permission!r} is not in the permission table")
    scope = scope_of(permission, role)
    if scope is None:
        raise Forbidden(f"role {Role(role).value} may not {permission.replace(':', ' ')}")
    return scope

"""The demo clinic: staff accounts, a patient account and synthetic patients.

Every person here is invented. Every demo account has the password
:data:`DEMO_PASSWORD` (``demo-<username>`` before the password rules of
:mod:`ketacare.clinic.accounts.passwords`, which refuse a password containing the
username); a database holding them is marked as a demo, and its server binds to
127.0.0.1 only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.accounts import service as accounts
from ketacare.clinic.accounts.orm import User
from ketacare.clinic.audit.service import SYSTEM
from ketacare.clinic.patients import schemas
from ketacare.clinic.patients import service as patients
from ketacare.clinic.plans.orm import Chair
from ketacare.clinic.system import service as system
from ketacare.infra.settings import Settings

#: the password of every demo account (synthetic data, served on 127.0.0.1 only)
DEMO_PASSWORD = "ketacare-demo-clinic"
#: what demo databases seeded before the password rules used
_OLD_DEMO_PASSWORD = "demo-{username}"

STAFF = (
    ("admin", "Alex Admin", "admin"),
    ("physician", "Dr Priya Physician", "physician"),
    ("nurse", "Noor Nurse", "nurse"),
    ("therapist", "Theo Therapist", "therapist"),
    ("researcher", "Rosa Researcher", "researcher"),
)


@dataclass(frozen=True)
class DemoPatient:
    given: str
    family: str
    born: date
    sex: str
    weight: float
    height: float
    conditions: tuple[str, ...]
    medications: tuple[tuple[str, str], ...]
    allergies: tuple[str, ...] = ()


PATIENTS = (
    DemoPatient(
        "Maria",
        "Jansen",
        date(1979, 4, 12),
        "female",
        68.0,
        167,
        ("G90.512", "F33.1"),
        (("sertraline", "100 mg daily"), ("pregabalin", "150 mg twice daily")),
    ),
    DemoPatient(
        "David",
        "Okafor",
        date(1968, 11, 3),
        "male",
        91.5,
        181,
        ("G90.521",),
        (("gabapentin", "600 mg three times daily"),),
        ("penicillin",),
    ),
    DemoPatient(
        "Sofia",
        "Lindqvist",
        date(1990, 2, 27),
        "female",
        57.2,
        162,
        ("M79.7", "F32.1"),
        (("duloxetine", "60 mg daily"),),
    ),
    DemoPatient(
        "Tomás",
        "Herrera",
        date(1957, 7, 19),
        "male",
        78.4,
        174,
        ("B02.23",),
        (("amitriptyline", "25 mg at night"), ("lisinopril", "10 mg daily")),
    ),
    DemoPatient(
        "Aisha",
        "Rahman",
        date(1984, 9, 8),
        "female",
        73.9,
        170,
        ("E11.42", "G89.29"),
        (("metformin", "1 g twice daily"),),
    ),
    DemoPatient(
        "Lukas",
        "Becker",
        date(1995, 5, 30),
        "male",
        84.0,
        188,
        ("G54.6",),
        (("tramadol", "50 mg as needed"),),
    ),
    DemoPatient(
        "Hannah",
        "Cohen",
        date(1972, 12, 1),
        "female",
        62.5,
        158,
        ("G90.511", "F33.2"),
        (("bupropion", "150 mg daily"), ("lorazepam", "1 mg as needed")),
        ("latex",),
    ),
    DemoPatient(
        "Kenji",
        "Watanabe",
        date(1963, 3, 16),
        "male",
        70.1,
        169,
        ("G89.4",),
        (("oxycodone", "10 mg twice daily"),),
    ),
)


def seed(*, session: Session, now: datetime, settings: Settings) -> list[tuple[str, str, str]]:
    """Create the demo clinic; returns (username, password, role) for printing."""
    logins: list[tuple[str, str, str]] = []
    ids: dict[str, int] = {}
    for username, name, role in STAFF:
        ids[username] = accounts.create_user(
            session=session,
            username=username,
            full_name=name,
            role=role,
            password=DEMO_PASSWORD,
            now=now,
            settings=settings,
        ).id
        logins.append((username, DEMO_PASSWORD, role))
    first_id: int | None = None
    for i, p in enumerate(PATIENTS):
        patient = patients.create_patient(
            session=session,
            actor=SYSTEM,
            now=now,
            data=schemas.PatientCreate(
                given_name=p.given,
                family_name=p.family,
                birth_date=p.born,
                sex=p.sex,
                phone=f"+1 555 010 {i:04d}",
                email=f"{p.given.lower()}.{p.family.lower()}@example.org",
            ),
        )
        first_id = first_id or patient.id
        patient.responsible_clinician_id = ids["physician"]
        patients.add_weight(
            session=session,
            actor=SYSTEM,
            patient_id=patient.id,
            now=now,
            data=schemas.WeightCreate(
                weight_kg=p.weight + 0.8, height_cm=p.height, measured_at=now - timedelta(days=60)
            ),
        )
        patients.add_weight(
            session=session,
            actor=SYSTEM,
            patient_id=patient.id,
            now=now,
            data=schemas.WeightCreate(weight_kg=p.weight, measured_at=now - timedelta(days=3)),
        )
        for code in p.conditions:
            patients.add_condition(
                session=session,
                actor=SYSTEM,
                patient_id=patient.id,
                now=now,
                data=schemas.ConditionCreate(icd10_code=code),
            )
        for med, dose in p.medications:
            patients.add_medication(
                session=session,
                actor=SYSTEM,
                patient_id=patient.id,
                now=now,
                data=schemas.MedicationCreate(name=med, dose_text=dose),
            )
        for substance in p.allergies:
            patients.add_allergy(
                session=session,
                actor=SYSTEM,
                patient_id=patient.id,
                now=now,
                data=schemas.AllergyCreate(substance=substance),
            )
    accounts.create_user(
        session=session,
        username="patient1",
        full_name="Maria Jansen",
        role="patient",
        password=DEMO_PASSWORD,
        patient_id=first_id,
        now=now,
        settings=settings,
    )
    logins.append(("patient1", DEMO_PASSWORD, "patient"))
    for name in ("Chair 1", "Chair 2", "Chair 3", "Chair 4"):
        session.add(Chair(name=name))
    if first_id is not None:  # an outcome schedule on the demo patient's plan
        from ketacare.clinic.audit.service import Actor
        from ketacare.clinic.followup.demo import seed_schedule

        physician = Actor(ids["physician"], "physician", "physician")
        seed_schedule(session=session, actor=physician, patient_id=first_id, now=now)
    system.mark_demo(session=session)
    return logins


def logins(*, session: Session) -> list[tuple[str, str, str]]:
    """The demo logins, for printing on later runs: the password that opens each account.

    A demo seeded before the password rules still has ``demo-<username>``; an account
    whose password was changed since says so.
    """
    accounts_ = [(u, r) for u, _, r in STAFF] + [("patient1", "patient")]
    rows = session.execute(
        select(User.username, User.password_hash).where(
            User.username.in_([u for u, _ in accounts_])
        )
    ).all()
    hashes: dict[str, str] = dict(rows)
    found: list[tuple[str, str, str]] = []
    for username, role in accounts_:
        stored = hashes.get(username)
        if stored is None:
            continue
        for candidate in (DEMO_PASSWORD, _OLD_DEMO_PASSWORD.format(username=username)):
            if accounts.password_matches(stored, candidate):
                found.append((username, candidate, role))
                break
        else:
            found.append((username, "(changed since seeding)", role))
    return found

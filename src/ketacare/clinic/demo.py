"""The demo clinic: staff accounts, patient accounts and synthetic patients.

Every person here is invented. Every demo account has the password
:data:`DEMO_PASSWORD` (``demo-<username>`` before the password rules of
:mod:`ketacare.clinic.accounts.passwords`, which refuse a password containing the
username); a database holding them is marked as a demo, and its server binds to
127.0.0.1 only.

``seed(history=True)`` (``ketacare demo``, ``make run``) builds the whole demo clinic:
two physicians, a nurse, a therapist, a researcher, an admin, patient accounts and 30
synthetic patients with months of care (:mod:`ketacare.clinic.demo_history`) under the
demo's EXAMPLE site policy (:mod:`ketacare.clinic.demo_policy`). Without ``history``
it makes only the accounts and eight patients with a draft plan: the fixture the test
suite starts every test from.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic import demo_history as history_
from ketacare.clinic.accounts import service as accounts
from ketacare.clinic.accounts.orm import User
from ketacare.clinic.audit.service import SYSTEM, Actor
from ketacare.clinic.demo_model import Person
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


PATIENTS = (
    Person(
        "Maria",
        "Jansen",
        date(1979, 4, 12),
        "female",
        68.0,
        167,
        ("G90.512", "F33.1"),
        (("sertraline", "100 mg daily"), ("pregabalin", "150 mg twice daily")),
    ),
    Person(
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
    Person(
        "Sofia",
        "Lindqvist",
        date(1990, 2, 27),
        "female",
        57.2,
        162,
        ("M79.7", "F32.1"),
        (("duloxetine", "60 mg daily"),),
    ),
    Person(
        "Tomás",
        "Herrera",
        date(1957, 7, 19),
        "male",
        78.4,
        174,
        ("B02.23",),
        (("amitriptyline", "25 mg at night"), ("lisinopril", "10 mg daily")),
    ),
    Person(
        "Aisha",
        "Rahman",
        date(1984, 9, 8),
        "female",
        73.9,
        170,
        ("E11.42", "G89.29"),
        (("metformin", "1 g twice daily"),),
    ),
    Person(
        "Lukas",
        "Becker",
        date(1995, 5, 30),
        "male",
        84.0,
        188,
        ("G54.6",),
        (("tramadol", "50 mg as needed"),),
    ),
    Person(
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
    Person(
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


def _create_staff(
    *,
    session: Session,
    staff: tuple[tuple[str, str, str], ...],
    now: datetime,
    settings: Settings,
) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
    """The staff accounts (username, full name, role), each with :data:`DEMO_PASSWORD`.

    Both demos (the test fixture and the whole clinic) make their staff the same way;
    returns the logins to print and each username's user id.
    """
    logins: list[tuple[str, str, str]] = []
    ids: dict[str, int] = {}
    for username, name, role in staff:
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
    return logins, ids


def _add_chairs(*, session: Session) -> None:
    """The demo clinic's four infusion chairs (both demos have the same ones)."""
    for name in ("Chair 1", "Chair 2", "Chair 3", "Chair 4"):
        session.add(Chair(name=name))


def seed(
    *, session: Session, now: datetime, settings: Settings, history: bool = False
) -> list[tuple[str, str, str]]:
    """Create the demo clinic; returns (username, password, role) for printing.

    ``history``: the whole demo clinic with months of care up to ``now`` (the clock the
    history steps through; the same ``now`` gives the same records). Without it, the
    accounts and eight patients only (the test suite's fixture).
    """
    if history:
        return _seed_clinic(session=session, now=now, settings=settings)
    logins, ids = _create_staff(session=session, staff=STAFF, now=now, settings=settings)
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
    _add_chairs(session=session)
    if first_id is not None:  # an outcome schedule on the demo patient's plan
        from ketacare.clinic.followup.demo import seed_schedule

        physician = Actor(ids["physician"], "physician", "physician")
        seed_schedule(session=session, actor=physician, patient_id=first_id, now=now)
    system.mark_demo(session=session)
    return logins


#: the second physician (co-signs plans above a soft limit or with limits left unset)
SECOND_PHYSICIAN = ("physician2", "Dr Quentin Cosigner", "physician")
#: patient accounts of the whole demo clinic: (username, index into :data:`PEOPLE`)
PATIENT_ACCOUNTS = (("patient1", 0), ("patient2", 1), ("patient3", 2), ("patient4", 3))


#: the patients given oral follow-on with take-home supplies when they respond (chronic
#: pain codes the oral-followon protocol lists)
_TAKE_HOME = frozenset({"G89.4", "G89.29"})


def _person(p: Person, group: str, days_ago: int) -> Person:
    """A base patient with the course of care the history gives them."""
    return replace(
        p, group=group, intake_days_ago=days_ago, take_home=p.conditions[0] in _TAKE_HOME
    )


#: the groups of the eight base patients (by their first diagnosis)
_BASE_GROUPS = (
    "crps",
    "crps",
    "fibromyalgia",
    "neuropathic",
    "neuropathic",
    "neuropathic",
    "crps",
    "neuropathic",
)
#: synthetic given names of the other patients (family names say "Demo")
_GIVEN = (
    ("Ada", "female"),
    ("Bram", "male"),
    ("Cleo", "female"),
    ("Dario", "male"),
    ("Elif", "female"),
    ("Femi", "male"),
    ("Greta", "female"),
    ("Hugo", "male"),
    ("Ines", "female"),
    ("Jonas", "male"),
    ("Kiri", "female"),
    ("Leon", "male"),
    ("Mira", "female"),
    ("Nils", "male"),
    ("Olga", "female"),
    ("Pavel", "male"),
    ("Rosa", "female"),
    ("Sami", "male"),
    ("Tara", "female"),
    ("Umar", "male"),
    ("Vera", "female"),
    ("Wim", "male"),
)
#: (group, first diagnosis, other diagnoses, medication) of the other patients, in turn
_CASES = (
    ("crps", "G90.522", (), ("gabapentin", "300 mg three times daily")),
    ("fibromyalgia", "M79.7", (), ("duloxetine", "60 mg daily")),
    ("depression", "F33.2", (), ("escitalopram", "20 mg daily")),
    ("neuropathic", "E11.42", (), ("pregabalin", "75 mg twice daily")),
    ("crps", "G56.41", (), ("amitriptyline", "10 mg at night")),
    ("fibromyalgia", "M79.7", ("F32.1",), ("amitriptyline", "25 mg at night")),
    ("depression", "F32.2", (), ("sertraline", "150 mg daily")),
    ("crps", "G90.521", (), ("pregabalin", "150 mg twice daily")),
    ("fibromyalgia", "M79.7", (), ("milnacipran", "50 mg twice daily")),
    ("depression", "F33.1", (), ("venlafaxine", "150 mg daily")),
    ("neuropathic", "B02.23", (), ("gabapentin", "600 mg three times daily")),
    ("crps", "G57.71", (), ("duloxetine", "60 mg daily")),
    ("fibromyalgia", "M79.7", (), ("pregabalin", "150 mg twice daily")),
    ("depression", "F32.2", (), ("bupropion", "300 mg daily")),
    ("crps", "G90.512", (), ("naproxen", "500 mg twice daily")),
    ("depression", "F33.2", (), ("mirtazapine", "30 mg at night")),
    ("fibromyalgia", "M79.7", ("F33.1",), ("duloxetine", "60 mg daily")),
    ("depression", "F32.1", (), ("fluoxetine", "40 mg daily")),
    ("neuropathic", "G89.29", (), ("nortriptyline", "25 mg at night")),
    ("depression", "F33.1", (), ("vortioxetine", "10 mg daily")),
    ("fibromyalgia", "M79.7", (), ("cyclobenzaprine", "10 mg at night")),
    ("depression", "F32.2", (), ("quetiapine", "50 mg at night")),
)


#: the case (index in _CASES) treated with esketamine nasal spray
_ESKETAMINE = 2


def people() -> tuple[Person, ...]:
    """The 30 patients of the whole demo clinic, in order of intake (first: patient 1).

    Intakes spread over the eight months before today; the newest are still in their
    course. Every number is drawn from the one fixed seed.
    """
    rng = random.Random(history_.SEED)
    days = sorted((rng.randint(20, 235) for _ in range(30)), reverse=True)
    days[0] = 240  # the patient account's record has the longest history
    days[-3:] = [13, 10, 5]  # three courses still going on (sessions booked ahead)
    out = [
        _person(p, g, days[i]) for i, (p, g) in enumerate(zip(PATIENTS, _BASE_GROUPS, strict=True))
    ]
    for j, ((given, sex), (group, code, more, med)) in enumerate(zip(_GIVEN, _CASES, strict=True)):
        female = sex == "female"
        out.append(
            Person(
                given=given,
                family=f"Demo-{j + 9:02d}",
                born=date(1950 + rng.randint(0, 50), rng.randint(1, 12), rng.randint(1, 28)),
                sex=sex,
                weight=round(rng.uniform(54, 78) if female else rng.uniform(66, 98), 1),
                height=rng.randint(155, 172) if female else rng.randint(168, 192),
                conditions=(code, *more),
                medications=(med,),
                group=group,
                # the third (treatment-resistant depression on escitalopram) is in an
                # esketamine nasal spray course begun five weeks ago, under the REMS
                intake_days_ago=33 if j == _ESKETAMINE else days[8 + j],
                take_home=code in _TAKE_HOME and j != _ESKETAMINE,
                esketamine=j == _ESKETAMINE,
            )
        )
    return tuple(out)


def _seed_clinic(
    *, session: Session, now: datetime, settings: Settings
) -> list[tuple[str, str, str]]:
    """The whole demo clinic: accounts, 30 patients and their months of care."""
    from ketacare.clinic.demo_policy import demo_settings

    settings = demo_settings(settings, example_policy=True)
    cast = people()
    start = now - timedelta(days=max(p.intake_days_ago for p in cast) + 1)
    logins, ids = _create_staff(
        session=session, staff=(*STAFF, SECOND_PHYSICIAN), now=start, settings=settings
    )
    _add_chairs(session=session)
    staff = history_.Staff(
        physician=Actor(ids["physician"], "physician", "physician"),
        physician2=Actor(ids["physician2"], "physician2", "physician"),
        nurse=Actor(ids["nurse"], "nurse", "nurse"),
        therapist=Actor(ids["therapist"], "therapist", "therapist"),
    )
    ctx = history_.seed_history(
        session=session, settings=settings, now=now, staff=staff, people=cast
    )
    for username, index in PATIENT_ACCOUNTS:
        person = cast[index]
        accounts.create_user(
            session=session,
            username=username,
            full_name=f"{person.given} {person.family}",
            role="patient",
            password=DEMO_PASSWORD,
            patient_id=ctx.patient_ids[index],
            now=now,
            settings=settings,
        )
        logins.append((username, DEMO_PASSWORD, "patient"))
    system.mark_demo(session=session, example_policy=True)
    return logins


def logins(*, session: Session) -> list[tuple[str, str, str]]:
    """The demo logins, for printing on later runs: the password that opens each account.

    A demo seeded before the password rules still has ``demo-<username>``; an account
    whose password was changed since says so.
    """
    accounts_ = [(u, r) for u, _, r in (*STAFF, SECOND_PHYSICIAN)] + [
        (u, "patient") for u, _ in PATIENT_ACCOUNTS
    ]
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

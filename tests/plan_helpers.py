"""Shared set-up for plan and session tests: a screened 70 kg patient and signed plans."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image, ImageDraw

#: the pre-dose checks ticked at an IV infusion session (the sessions' data file names them;
#: the screening check is not ticked: it is read from the record when dosing starts)
IV_CHECKS = [
    "fasting",
    "escort_arranged",
    "consent_current",
    "weight_current",
    "iv_access",
    "dose_verified",
    "medication_lot",
]

KETAMINE_IV = {
    "treatment": {"molecule": "ketamine", "route": "iv_infusion"},
    "vitals": {"systolic_mmhg": 118, "diastolic_mmhg": 76},
}


#: a complete monitoring order for signing supervised plans in tests (test data, not advice)
MONITORING_ORDER = {
    "vitals_interval_min": 15,
    "recovery_vitals_interval_min": 15,
    "sbp_high": 180,
    "sbp_low": 90,
    "dbp_high": 110,
    "dbp_low": 50,
    "hr_high": 120,
    "hr_low": 50,
    "spo2_low": 92,
    "rr_low": 10,
    "moaas_at_or_below": 2,
    "observation_min": 120,
}


def draft(client: Any, clinic: dict[str, Any], **dose: Any) -> dict[str, Any]:
    r = client.post(
        f"/api/v1/patients/{clinic['pid']}/plans",
        headers=clinic["team"]["physician"],
        json={"protocol": "crps-outpatient", "bag_mg": 100, "bag_ml": 100, **dose},
    )
    assert r.status_code == 201, r.text
    return r.json()


def _signed(
    client: Any, clinic: dict[str, Any], order: Any = MONITORING_ORDER, **dose: Any
) -> dict[str, Any]:
    return sign_and_cosign(client, clinic, draft(client, clinic, **dose), order)


def sign_and_cosign(
    client: Any, clinic: dict[str, Any], plan: dict[str, Any], order: Any = MONITORING_ORDER
) -> dict[str, Any]:
    """A drafted plan signed by the physician and co-signed by the second one."""
    team = clinic["team"]
    client.post(
        f"/api/v1/plans/{plan['id']}/sign",
        headers=team["physician"],
        json={
            "weight_confirmed": True,
            "reason": "site limits not configured",
            "monitoring_order": order,
        },
    )
    r = client.post(f"/api/v1/plans/{plan['id']}/cosign", headers=team["physician2"])
    assert r.status_code == 200, r.text
    return r.json()


#: the consent programs of the treatments the tests plan (core/consent/data/programs.toml)
TREATMENT_PROGRAMS = ("iv_racemic", "racemic_other", "esketamine")


def drawn_signature() -> str:
    """A drawn signature as the signing page sends it: a black stroke on a clear PNG."""
    image = Image.new("RGBA", (120, 40), (0, 0, 0, 0))
    ImageDraw.Draw(image).line(
        [(5, 30), (40, 8), (70, 32), (115, 10)], fill=(0, 0, 0, 255), width=3
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def consent_to(
    signer: tuple[Any, dict[str, str]],
    physician: tuple[Any, dict[str, str]],
    patient_id: int,
    programs: tuple[str, ...] = TREATMENT_PROGRAMS,
) -> list[int]:
    """Record the patient's countersigned consent to each program (publishing the program's
    EXAMPLE template first where the clinic has none); ``signer`` holds the tablet, the
    physician countersigns. Each agent is (client, headers). The consent ids."""
    client, headers = physician
    published: dict[str, Any] = {}
    for template in client.get("/api/v1/consent-templates", headers=headers).json():
        published.setdefault(template["program"], template)  # newest version first
    ids = []
    for program in programs:
        template = published.get(program)
        if template is None:
            r = client.post("/api/v1/consent-templates", headers=headers, json={"program": program})
            assert r.status_code == 201, r.text
            template = r.json()
        answers = {q["id"]: q["answer"] for q in template["content"]["teach_back"]}
        s_client, s_headers = signer
        got = s_client.get(f"/api/v1/patients/{patient_id}", headers=s_headers)
        assert got.status_code == 200, got.text
        name = got.json()["patient"]
        r = s_client.post(
            f"/api/v1/patients/{patient_id}/consents",
            headers=s_headers,
            json={
                "template_id": template["id"],
                "typed_name": f"{name['given_name']} {name['family_name']}",
                "signature": drawn_signature(),
                "teach_back": answers,
            },
        )
        assert r.status_code == 201, r.text
        consent_id = r.json()["id"]
        r = client.post(
            f"/api/v1/consents/{consent_id}/countersign",
            headers=headers,
            json={"capacity": "clinician"},
        )
        assert r.status_code == 200, r.text
        ids.append(consent_id)
    return ids


def rems_on_record(
    nurse: tuple[Any, dict[str, str]], physician: tuple[Any, dict[str, str]], patient_id: int
) -> None:
    """The clinic's site certified under the SPRAVATO REMS (once) and the patient enrolled
    (test identifiers, not real ones)."""
    client, headers = physician
    if not client.get("/api/v1/rems/certifications", headers=headers).json():
        r = client.post(
            "/api/v1/rems/certifications",
            headers=headers,
            json={"site": "Test clinic", "identifier": "TEST-SITE-1", "certified_on": "2025-01-02"},
        )
        assert r.status_code == 201, r.text
    n_client, n_headers = nurse
    r = n_client.post(
        f"/api/v1/patients/{patient_id}/rems-enrolment",
        headers=n_headers,
        json={"identifier": f"TEST-PT-{patient_id}", "enrolled_on": "2025-01-03"},
    )
    assert r.status_code == 201, r.text


def screened_patient(
    client: Any, team: dict[str, Any], family: str = "Patient", *, consent: bool = True
) -> int:
    """A new 70 kg patient with a signed screening for racemic IV ketamine and (unless
    ``consent`` is false) a countersigned consent to each treatment program and an
    enrolment in the SPRAVATO REMS at a certified site."""
    pid = client.post(
        "/api/v1/patients",
        headers=team["nurse"],
        json={
            "given_name": "Plan",
            "family_name": family,
            "birth_date": "1980-05-05",
            "sex": "female",
            "weight_kg": 70,
        },
    ).json()["id"]
    # no drug use: "no" to every DAST-10 item except item 3 ("able to stop ... when you want")
    no_drugs = [False, False, True] + [False] * 7
    for instrument, answers in (("ort", [False] * 10), ("dast10", no_drugs)):
        client.post(
            f"/api/v1/patients/{pid}/assessments",
            headers=team["nurse"],
            json={"instrument": instrument, "answers": answers},
        )
    sid = client.post(
        f"/api/v1/patients/{pid}/screenings", headers=team["nurse"], json=KETAMINE_IV
    ).json()["id"]
    r = client.post(
        f"/api/v1/screenings/{sid}/sign",
        headers=team["physician"],
        json={"note": "reviewed history", "valid_until": "2026-12-31"},
    )
    assert r.status_code == 200, r.text
    if consent:
        consent_to((client, team["nurse"]), (client, team["physician"]), int(pid))
        rems_on_record((client, team["nurse"]), (client, team["physician"]), int(pid))
    return int(pid)


ESKETAMINE_IN = {
    "treatment": {"molecule": "esketamine", "route": "intranasal"},
    "vitals": {"systolic_mmhg": 122, "diastolic_mmhg": 76},
}
ESK_CHECKS = [
    "fasting",
    "escort_arranged",
    "consent_current",
    "weight_current",
    "dose_verified",
    "medication_lot",
    "pulse_oximetry",  # FDA SPRAVATO REMS: a pulse oximeter on the patient
]


def esketamine_course_with_one_dose(client: Any, team: dict[str, Any], clock: Any) -> int:
    """A patient screened and planned for esketamine nasal spray who took 56 mg; returns the
    plan id. The clock stands at the dose."""
    pid = screened_patient(client, team, "Spray")
    sid = client.post(
        f"/api/v1/patients/{pid}/screenings", headers=team["nurse"], json=ESKETAMINE_IN
    ).json()["id"]
    client.post(
        f"/api/v1/screenings/{sid}/sign",
        headers=team["physician"],
        json={"note": "reviewed", "valid_until": "2026-12-31"},
    ).raise_for_status()
    plan = client.post(
        f"/api/v1/patients/{pid}/plans",
        headers=team["physician"],
        json={"protocol": "esketamine-trd"},
    ).json()
    client.post(
        f"/api/v1/plans/{plan['id']}/sign",
        headers=team["physician"],
        json={
            "weight_confirmed": True,
            "reason": "site limits not configured",
            "monitoring_order": MONITORING_ORDER,
        },
    )
    client.post(f"/api/v1/plans/{plan['id']}/cosign", headers=team["physician2"]).raise_for_status()
    session = client.post(
        f"/api/v1/plans/{plan['id']}/sessions", headers=team["nurse"], json={"session_number": 1}
    ).json()

    def record(event: dict[str, Any]) -> None:
        seq = client.get(f"/api/v1/sessions/{session['id']}", headers=team["nurse"]).json()[
            "last_seq"
        ]
        r = client.post(
            f"/api/v1/sessions/{session['id']}/events",
            headers=team["nurse"],
            json={"expected_seq": seq, "event": event},
        )
        assert r.status_code == 201, r.text

    record({"kind": "check_in"})
    record(
        {
            "kind": "vitals",
            "sbp_mmhg": 122,
            "dbp_mmhg": 76,
            "hr_per_min": 70,
            "spo2_pct": 98,
            "rr_per_min": 14,
        }
    )
    for item in ESK_CHECKS:
        record({"kind": "pre_dose_check", "item": item, "ok": True, "detail": "lot E1"})
    record({"kind": "self_administration", "devices": 2})
    return int(plan["id"])


def build_clinic(client: Any, login_api: Any) -> dict[str, Any]:
    """The clinic tests' starting point: a second physician approved, the team's API
    tokens, and a 70 kg patient with a signed screening for racemic IV ketamine, consent
    to each treatment program and REMS enrolment. ``{"pid": ..., "team": ...}``."""
    admin = login_api("admin")
    physician = login_api("physician")
    client.post(
        "/api/v1/users",
        headers=admin,
        json={
            "username": "physician2",
            "full_name": "Dr Second",
            "role": "physician",
            "password": "locum-cosigner-pw",
        },
    )
    # a clinical role needs a second person: the physician approves it
    (pending,) = client.get("/api/v1/role-requests", headers=physician).json()
    client.post(f"/api/v1/role-requests/{pending['id']}/approve", headers=physician)
    r = client.post(
        "/api/v1/auth/token", data={"username": "physician2", "password": "locum-cosigner-pw"}
    )
    team = {
        "nurse": login_api("nurse"),
        "physician": physician,
        "physician2": {"Authorization": f"Bearer {r.json()['access_token']}"},
        "therapist": login_api("therapist"),
    }
    pid = screened_patient(client, team)
    return {"pid": pid, "team": team}


def book_thursday_and_friday(client: Any, clinic: dict[str, Any], plan_id: int) -> list[int]:
    """Sessions 1 and 2 of the plan booked on chair 1, Thu 5 and Fri 6 March 09:00 (after
    the test clock); the appointment ids."""
    ids = []
    for number, day in ((1, "2026-03-05"), (2, "2026-03-06")):
        r = client.post(
            f"/api/v1/plans/{plan_id}/appointments",
            headers=clinic["team"]["nurse"],
            json={"session_number": number, "chair_id": 1, "starts_at": f"{day}T09:00:00+01:00"},
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


#: baseline vitals within every limit of MONITORING_ORDER (a whole set but for oxygen,
#: temperature and consciousness)
BASELINE_VITALS: dict[str, Any] = {
    "kind": "vitals",
    "sbp_mmhg": 124,
    "dbp_mmhg": 78,
    "hr_per_min": 72,
    "spo2_pct": 98,
    "rr_per_min": 14,
}

#: PADSS answers that allow discharge (each item at its best, an escort present)
PADSS_READY: dict[str, Any] = {
    "vital_signs": 2,
    "ambulation": 2,
    "nausea_vomiting": 2,
    "pain": 2,
    "bleeding": 2,
    "escort": True,
}


def plan_therapy(
    client: Any, team: dict[str, Any], plan_id: int, kind: str, planned_date: str | None = None
) -> dict[str, Any]:
    """A therapy session of ``kind`` planned by the physician with the clinic's therapist
    (on ``planned_date`` when given); the session as the API returns it."""
    therapist_id = client.get("/api/v1/users/me", headers=team["therapist"]).json()["id"]
    body = {"kind": kind, "therapist_id": therapist_id}
    r = client.post(
        f"/api/v1/plans/{plan_id}/therapy",
        headers=team["physician"],
        json=body | ({"planned_date": planned_date} if planned_date else {}),
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def record_event(
    client: Any, nurse: dict[str, str], sid: int, event: dict[str, Any]
) -> dict[str, Any]:
    """Append ``event`` to dosing session ``sid`` after the last entry the nurse reads; the
    session as the API answers (the append must be taken)."""
    seq = client.get(f"/api/v1/sessions/{sid}", headers=nurse).json()["last_seq"]
    r = client.post(
        f"/api/v1/sessions/{sid}/events",
        headers=nurse,
        json={"expected_seq": seq, "event": event},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def start_infusion(
    client: Any, nurse: dict[str, str], plan_id: int, number: int, rate_mg_per_h: float
) -> int:
    """Open session ``number`` of an IV plan and start its infusion at the clock's time:
    check-in, baseline vitals, every pre-dose check, the start at ``rate_mg_per_h``.
    The session's id."""
    r = client.post(
        f"/api/v1/plans/{plan_id}/sessions", headers=nurse, json={"session_number": number}
    )
    assert r.status_code == 201, r.text
    sid = int(r.json()["id"])
    record_event(client, nurse, sid, {"kind": "check_in"})
    record_event(client, nurse, sid, BASELINE_VITALS)
    for item in IV_CHECKS:
        check = {"kind": "pre_dose_check", "item": item, "ok": True, "detail": "lot K7"}
        record_event(client, nurse, sid, check)
    record_event(client, nurse, sid, {"kind": "start_infusion", "rate_mg_per_h": rate_mg_per_h})
    return sid


def patient_account(
    client: Any, admin: dict[str, str], patient_id: int, username: str, password: str
) -> dict[str, str]:
    """A patient login linked to ``patient_id`` (made by the admin): its API headers."""
    r = client.post(
        "/api/v1/users",
        headers=admin,
        json={
            "username": username,
            "full_name": username.replace(".", " ").title(),
            "role": "patient",
            "password": password,
            "patient_id": patient_id,
        },
    )
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}

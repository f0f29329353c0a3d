"""Forms never pre-select a clinical answer: each select on a clinical question starts on
an empty choice, and a form sent without one is refused naming what is missing and what
is allowed, storing nothing (the simulation page's route: test_simulation_page; the
booster decision: test_boosters)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from plan_helpers import _signed, esketamine_course_with_one_dose


def _options(html: str, name: str) -> list[str]:
    found = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert found is not None, f"no select {name}"
    return re.findall(r"<option[^>]*>", found.group(1))


def _starts_empty(html: str, name: str) -> None:
    options = _options(html, name)
    assert options[0] == '<option value="" selected>', options
    assert [o for o in options if "selected" in o] == ['<option value="" selected>'], options


def _count(app: Any, model: Any) -> int:
    with app.state.ctx.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_registration_asks_for_the_sex(app: Any, client: Any, login_page: Any) -> None:
    from ketacare.clinic.patients.orm import Patient

    csrf = login_page("nurse")
    _starts_empty(client.get("/patients/new").text, "sex")
    before = _count(app, Patient)
    form = {
        "given_name": "Ada",
        "family_name": "Quist",
        "birth_date": "1980-02-03",
        "sex": "",
        "csrf_token": csrf,
    }
    r = client.post("/patients", data=form, follow_redirects=False)
    assert r.status_code == 422
    assert "sex is missing: choose one of female, male, other, unknown" in r.text
    assert _count(app, Patient) == before
    _starts_empty(r.text, "sex")  # shown again, still not chosen
    r = client.post("/patients", data={**form, "sex": "female"}, follow_redirects=False)
    assert r.status_code == 303 and _count(app, Patient) == before + 1


def test_screening_asks_for_the_molecule_route_and_setting(
    app: Any, client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    from ketacare.clinic.screenings.orm import Screening

    csrf = login_page("physician")
    pid = clinic["pid"]
    page = client.get(f"/patients/{pid}/screening").text
    for name in ("molecule", "route", "setting"):
        _starts_empty(page, name)
    before = _count(app, Screening)
    chosen = {"molecule": "ketamine", "route": "iv_infusion", "setting": "in_clinic"}
    allowed = {
        "molecule": "ketamine, esketamine",
        "route": "iv_infusion, iv_bolus, intramuscular, intranasal, oral, sublingual",
        "setting": "in_clinic, take_home",
    }
    for missing, words in allowed.items():
        r = client.post(
            f"/patients/{pid}/screening",
            data={**chosen, missing: "", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert r.status_code == 422, (missing, r.status_code)
        assert f"{missing} is missing: choose one of {words}" in r.text
        assert _count(app, Screening) == before
    r = client.post(
        f"/patients/{pid}/screening", data={**chosen, "csrf_token": csrf}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    assert _count(app, Screening) == before + 1


def test_a_therapy_session_asks_for_its_kind(
    app: Any, client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    from ketacare.clinic.plans.orm import TherapySession

    plan = _signed(client, clinic)
    therapist = client.get("/api/v1/users/me", headers=clinic["team"]["therapist"]).json()["id"]
    csrf = login_page("physician")
    _starts_empty(client.get(f"/plans/{plan['id']}").text, "kind")
    form = {"kind": "", "therapist_id": str(therapist), "planned_date": "", "csrf_token": csrf}
    r = client.post(f"/plans/{plan['id']}/therapy", data=form, follow_redirects=False)
    assert r.status_code == 422
    assert "therapy kind is missing: choose preparation or integration" in r.text
    assert _count(app, TherapySession) == 0
    r = client.post(
        f"/plans/{plan['id']}/therapy",
        data={**form, "kind": "integration"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and _count(app, TherapySession) == 1


def test_a_drug_level_asks_for_its_analyte(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    from zoneinfo import ZoneInfo

    from ketacare.clinic.personalise.orm import DrugLevel

    plan_id = esketamine_course_with_one_dose(client, clinic["team"], clock)
    sampled = (clock.now + timedelta(hours=1)).astimezone(ZoneInfo("Europe/Amsterdam"))
    clock.now += timedelta(hours=2)
    csrf = login_page("physician")
    _starts_empty(client.get(f"/plans/{plan_id}/personalise").text, "analyte")
    form = {
        "sampled_at": sampled.strftime("%Y-%m-%dT%H:%M"),
        "analyte": "",
        "value": "40",
        "csrf_token": csrf,
    }
    r = client.post(f"/plans/{plan_id}/levels", data=form, follow_redirects=False)
    assert r.status_code == 422
    assert "analyte is missing: choose plasma or metabolite" in r.text
    assert _count(app, DrugLevel) == 0
    r = client.post(
        f"/plans/{plan_id}/levels", data={**form, "analyte": "plasma"}, follow_redirects=False
    )
    assert r.status_code == 303 and _count(app, DrugLevel) == 1

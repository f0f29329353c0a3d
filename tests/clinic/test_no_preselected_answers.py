"""Forms never pre-select a clinical answer: each select on a clinical question starts on
an empty choice, and a form sent without one is refused naming what is missing and what
is allowed, storing nothing (the simulation page's route: test_simulation_page; the
booster decision: test_boosters)."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
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


def test_the_stock_forms_choose_no_product_lot_or_outcome(
    app: Any, client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    """A controlled-substance entry on the wrong product or lot would misstate every
    milligram after it: each choice starts empty and a form sent without it is refused,
    naming it, and stores nothing."""
    from ketacare.clinic.stock.orm import StockEntry

    r = client.post(
        "/api/v1/stock/receipts",
        headers=clinic["team"]["nurse"],
        json={
            "site": "main",
            "product": "ketamine-50mg-ml-10ml-vial",
            "lot": "K-1",
            "expiry": "2030-12-31",
            "units": 10,
            "supplier": "Example Wholesale",
            "reference": "INV-1",
        },
    )
    assert r.status_code == 201, r.text
    csrf = login_page("physician")
    page = client.get("/stock").text
    for name in ("product", "lot_id", "disposal", "molecule", "form", "unit"):
        _starts_empty(page, name)
    before = _count(app, StockEntry)
    sent = {
        "/stock/receipts": {
            "site": "main",
            "product": "",
            "lot": "K-2",
            "expiry": "2030-12-31",
            "units": "5",
            "supplier": "Example Wholesale",
            "reference": "INV-2",
        },
        "/stock/counts": {"lot_id": "", "units_counted": "10"},
        "/stock/transfers": {"lot_id": "", "units": "1", "to_site": "east", "reference": "T-1"},
        "/stock/disposals": {
            "lot_id": "1",
            "units": "1",
            "disposal": "",
            "reason": "expired",
            "reference": "41-1",
        },
        "/stock/clinic-products": {
            "molecule": "",
            "label": "ketamine 100 mg troche",
            "form": "troche",
            "unit": "troche",
            "mg_per_unit": "100",
            "supplier": "Example Compounding Pharmacy",
            "statement": "label of lot 7",
        },
    }
    said = {}
    for url, form in sent.items():
        r = client.post(url, data={**form, "csrf_token": csrf}, follow_redirects=False)
        assert r.status_code in (409, 422), (url, r.status_code)
        said[url] = _stock_error(r.text)
    assert said == {
        "/stock/receipts": "product is missing: choose one of ketamine HCl injection 10 mg/mL, "
        "20 mL multiple-dose vial (200 mg); ketamine HCl injection 50 mg/mL, 10 mL "
        "multiple-dose vial (500 mg); ketamine HCl injection 100 mg/mL, 5 mL multiple-dose "
        "vial (500 mg); Spravato (esketamine) nasal spray device, 28 mg",
        "/stock/counts": "lot is missing: choose the lot from the list",
        "/stock/transfers": "lot is missing: choose the lot from the list",
        "/stock/disposals": "how the units leave is missing: choose one of returned; destroyed",
        "/stock/clinic-products": "molecule is missing: choose one of racemic ketamine; esketamine",
    }
    assert _count(app, StockEntry) == before


def _stock_error(html: str) -> str:
    found = re.search(r'data-testid="stock-error">(.*?)</p>', html, re.S)
    assert found is not None, html[:300]
    return unescape(found.group(1))
